package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
)

// Errors of ParseRequest. Their text is written for the caller (it becomes
// the message of a 400 invalid_request_error).
var (
	ErrInvalidJSON    = errors.New("invalid JSON request body")
	ErrMissingModel   = errors.New("model is required and must be a non-empty string")
	ErrDuplicateModel = errors.New("model is given more than once")
	ErrMissingMsgs    = errors.New("messages is required and must be an array")
	ErrEmptyMessages  = errors.New("messages array must not be empty")
)

// Request is what the proxy learns from a caller's body in one pass,
// without decoding it.
type Request struct {
	// Model is the decoded value of the top-level "model" field.
	Model string
	// ModelAt is where that value sits in the body (quotes included), so an
	// upstream body is the caller's body with only this span replaced.
	ModelAt Splice
	// Stream is true when the top-level "stream" field is true.
	Stream bool
	// PreviousResponseID is the Responses API's previous_response_id
	// (OpResponses only; "" when absent or not a string).
	PreviousResponseID string
	// StreamOptions is set when the body has a top-level stream_options,
	// IncludeUsage when it asks for the usage chunk.
	StreamOptions, IncludeUsage bool
	// MaxTokens is the largest of the top-level max_tokens,
	// max_completion_tokens and max_output_tokens that is a non-negative
	// integer; 0 when none is. Limits use it to estimate a request's
	// tokens before the answer says.
	MaxTokens int64
}

// Op is what a caller asks an upstream to do: one per proxied endpoint.
type Op uint8

// Operations.
const (
	OpChat        Op = iota // POST /v1/chat/completions
	OpEmbeddings            // POST /v1/embeddings
	OpCompletions           // POST /v1/completions (legacy text completions)
	OpResponses             // POST /v1/responses
	OpMessages              // POST /v1/messages (Anthropic)
	OpCountTokens           // POST /v1/messages/count_tokens (Anthropic)
)

var opNames = [...]string{"chat.completions", "embeddings", "completions", "responses", "messages", "messages.count_tokens"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Errors of ParseRequestFor for the other operations.
var (
	ErrMissingInput  = errors.New("input is required")
	ErrMissingPrompt = errors.New("prompt is required")
)

// ParseRequest scans a chat-completions request body. The body must be one
// JSON object with a non-empty string "model" (exactly once, however its key
// is spelled with escapes) and a non-empty array "messages".
func ParseRequest(body []byte) (Request, error) { return ParseRequestFor(body, OpChat) }

// ParseRequestFor scans the request body of op: one JSON object with a
// non-empty string "model" (exactly once, however its key is spelled with
// escapes) and what op cannot do without: a non-empty array "messages"
// (chat, messages, count_tokens), an "input" that is not null or empty
// (embeddings), a "prompt" (completions). Everything else is the
// upstream's to judge.
func ParseRequestFor(body []byte, op Op) (Request, error) {
	var (
		req       Request
		models    int
		msgs      = -1 // -1 absent, -2 not an array, else element count (0 or 1+)
		input     = -1 // -1 absent, 0 null or empty, 1 present
		modelErr  bool
		dupFolded bool
	)
	end, err := eachMember(body, 0, func(m member) bool {
		switch requestKey(m) {
		case keyModel:
			models++
			s, esc, err := skipString(body, m.vs)
			if err != nil || s != m.ve {
				modelErr = true
				return true
			}
			v, ok := decodeString(body, m.vs, m.ve, esc)
			if !ok || v == "" {
				modelErr = true
				return true
			}
			req.Model = v
			req.ModelAt = Splice{At: m.vs, End: m.ve}
		case keyStream:
			req.Stream = string(body[m.vs:m.ve]) == "true"
		case keyMessages:
			if body[m.vs] != '[' {
				msgs = -2
				return true
			}
			if isEmptyValue(body, m.vs, m.ve) {
				msgs = 0
			} else {
				msgs = 1
			}
		case keyInput:
			if op == OpEmbeddings || op == OpCompletions {
				if string(body[m.vs:m.ve]) == "null" || isEmptyValue(body, m.vs, m.ve) || string(body[m.vs:m.ve]) == `""` {
					input = 0
				} else {
					input = 1
				}
			}
		case keyPrompt:
			if op == OpCompletions {
				if string(body[m.vs:m.ve]) == "null" {
					input = 0
				} else {
					input = 1
				}
			}
		case keyPrevResponse:
			if op == OpResponses && body[m.vs] == '"' {
				if s, esc, err := skipString(body, m.vs); err == nil && s == m.ve {
					req.PreviousResponseID, _ = decodeString(body, m.vs, m.ve, esc)
				}
			}
		case keyStreamOptions:
			req.StreamOptions = true
			req.IncludeUsage = includesUsage(body[m.vs:m.ve])
		case keyMaxTokens:
			if n, err := strconv.ParseInt(string(body[m.vs:m.ve]), 10, 64); err == nil && n > req.MaxTokens {
				req.MaxTokens = n
			}
		case keyModelFolded:
			// Another letter case of "model": case-insensitive decoders
			// would read it as the model, so it must not smuggle a second one.
			dupFolded = true
		}
		return true
	})
	if err != nil {
		return Request{}, ErrInvalidJSON
	}
	if end = skipWS(body, end); end != len(body) {
		return Request{}, ErrInvalidJSON
	}
	switch {
	case models > 1 || dupFolded:
		return Request{}, ErrDuplicateModel
	case models == 0 || modelErr:
		return Request{}, ErrMissingModel
	}
	switch op {
	case OpChat, OpMessages, OpCountTokens:
		switch {
		case msgs < 0:
			return Request{}, ErrMissingMsgs
		case msgs == 0:
			return Request{}, ErrEmptyMessages
		}
	case OpEmbeddings:
		if input <= 0 {
			return Request{}, ErrMissingInput
		}
	case OpCompletions:
		if input <= 0 {
			return Request{}, ErrMissingPrompt
		}
	}
	if op == OpCountTokens || op == OpEmbeddings {
		req.Stream = false
	}
	return req, nil
}

const (
	keyOther = iota
	keyModel
	keyStream
	keyMessages
	keyInput
	keyPrompt
	keyPrevResponse
	keyStreamOptions
	keyMaxTokens
	keyModelFolded
)

// requestKey classifies a top-level request member by its decoded key, so
// an escaped spelling such as "mod\u0065l" counts as "model" exactly as the
// upstream's JSON parser will read it.
func requestKey(m member) int {
	k := m.key
	if m.keyEscaped {
		k = []byte(decodeKey(m.key))
	}
	switch string(k) {
	case "model":
		return keyModel
	case "stream":
		return keyStream
	case "messages":
		return keyMessages
	case "stream_options":
		return keyStreamOptions
	case "input":
		return keyInput
	case "prompt":
		return keyPrompt
	case "previous_response_id":
		return keyPrevResponse
	case "max_tokens", "max_completion_tokens", "max_output_tokens":
		return keyMaxTokens
	}
	if len(k) == 5 && strings.EqualFold(string(k), "model") {
		return keyModelFolded
	}
	return keyOther
}

// Splice says where the top-level model value of a JSON object sits: the
// span [At, End) to replace, or, when Insert is set, the offset just after
// the opening brace where a "model" member must be added.
type Splice struct {
	At, End int
	Insert  bool
	// Empty is set with Insert when the object has no members (no comma).
	Empty bool
}

// FindModel locates the top-level "model" member of the JSON object b, for
// rewriting. A missing member gives an insertion point.
func FindModel(b []byte) (Splice, error) {
	var sp Splice
	found := false
	end, err := eachMember(b, 0, func(m member) bool {
		if m.keyIs("model") {
			sp = Splice{At: m.vs, End: m.ve}
			found = true
		}
		return true
	})
	if err != nil {
		return Splice{}, err
	}
	if skipWS(b, end) != len(b) {
		return Splice{}, errSyntax
	}
	if !found {
		return insertAt(b), nil
	}
	return sp, nil
}

func insertAt(b []byte) Splice {
	i := skipWS(b, 0) + 1 // after '{'
	return Splice{At: i, End: i, Insert: true, Empty: b[skipWS(b, i)] == '}'}
}

const modelKey = `"model":`

// Len is the length of body after the splice with val.
func (s Splice) Len(body, val []byte) int {
	n := len(body) - (s.End - s.At) + len(val)
	if s.Insert {
		n += len(modelKey)
		if !s.Empty {
			n++
		}
	}
	return n
}

// AppendTo appends body with the splice applied (val in place of the model
// value) to dst.
func (s Splice) AppendTo(dst, body, val []byte) []byte {
	dst = append(dst, body[:s.At]...)
	if s.Insert {
		dst = append(dst, modelKey...)
	}
	dst = append(dst, val...)
	if s.Insert && !s.Empty {
		dst = append(dst, ',')
	}
	return append(dst, body[s.End:]...)
}

// WriteTo writes body with the splice applied to w without building it in
// memory first.
func (s Splice) WriteTo(w io.Writer, body, val []byte) error {
	if _, err := w.Write(body[:s.At]); err != nil {
		return err
	}
	if s.Insert {
		if _, err := io.WriteString(w, modelKey); err != nil {
			return err
		}
	}
	if _, err := w.Write(val); err != nil {
		return err
	}
	if s.Insert && !s.Empty {
		if _, err := w.Write([]byte{','}); err != nil {
			return err
		}
	}
	_, err := w.Write(body[s.End:])
	return err
}

// Chunk is what the proxy learns from one streamed chat.completion.chunk.
type Chunk struct {
	// Model is where the chunk's model value sits.
	Model Splice
	// Content is set when a choice's delta carries something a caller would
	// see: text, a tool or function call, a refusal, reasoning, audio.
	Content bool
	// Finished is set when a choice has a non-null finish_reason.
	Finished bool
	// Error is set when the chunk is an in-band error ({"error": …}).
	Error bool
}

// contentKeys are the delta members that carry output.
var contentKeys = [...]string{"content", "tool_calls", "function_call", "refusal", "reasoning_content", "reasoning", "audio"}

// ScanChunk scans one SSE data payload of a chat-completions (or legacy
// completions) stream, in a
// single pass. An error means the payload is not a JSON object.
func ScanChunk(b []byte) (Chunk, error) {
	var c Chunk
	found := false
	delta := func(key []byte, esc bool, vs int) (int, error) {
		ve, err := skipValue(b, vs)
		if err != nil {
			return 0, err
		}
		if !c.Content && !isEmptyValue(b, vs, ve) {
			for _, k := range contentKeys {
				if keyEq(key, esc, k) {
					c.Content = true
					break
				}
			}
		}
		return ve, nil
	}
	choice := func(key []byte, esc bool, vs int) (int, error) {
		switch {
		case keyEq(key, esc, "finish_reason"):
			ve, err := skipValue(b, vs)
			if err == nil && string(b[vs:ve]) != "null" {
				c.Finished = true
			}
			return ve, err
		case b[vs] == '{' && (keyEq(key, esc, "delta") || keyEq(key, esc, "message")):
			return walkObject(b, vs, delta)
		case b[vs] == '"' && keyEq(key, esc, "text"):
			// A legacy text completion's choice carries its text here.
			ve, err := skipValue(b, vs)
			if err == nil && ve-vs > 2 {
				c.Content = true
			}
			return ve, err
		}
		return skipValue(b, vs)
	}
	element := func(vs int) (int, error) {
		if b[vs] != '{' {
			return skipValue(b, vs)
		}
		return walkObject(b, vs, choice)
	}
	end, err := walkObject(b, 0, func(key []byte, esc bool, vs int) (int, error) {
		switch {
		case keyEq(key, esc, "model"):
			ve, err := skipValue(b, vs)
			c.Model = Splice{At: vs, End: ve}
			found = true
			return ve, err
		case keyEq(key, esc, "error"):
			ve, err := skipValue(b, vs)
			if err == nil && string(b[vs:ve]) != "null" {
				c.Error = true
			}
			return ve, err
		case b[vs] == '[' && keyEq(key, esc, "choices"):
			return walkArray(b, vs, element)
		}
		return skipValue(b, vs)
	})
	if err != nil {
		return Chunk{}, errSyntax
	}
	if skipWS(b, end) != len(b) {
		return Chunk{}, errSyntax
	}
	if !found {
		c.Model = insertAt(b)
	}
	return c, nil
}

// FindNestedModel locates the model member of the object that is the
// top-level member key of b (a Messages stream's message_start:
// {"type":"message_start","message":{…,"model":"…"}}), as FindModel does
// for b itself, with offsets into b. ok is false when b is not an object,
// has no such member, or the member is not an object with a model.
func FindNestedModel(b []byte, key string) (sp Splice, ok bool) {
	vs, ve := -1, -1
	_, err := eachMember(b, 0, func(m member) bool {
		if m.keyIs(key) {
			vs, ve = m.vs, m.ve
			return false
		}
		return true
	})
	if err != nil || vs < 0 || b[vs] != '{' {
		return Splice{}, false
	}
	inner, err := FindModel(b[vs:ve])
	if err != nil || inner.Insert {
		return Splice{}, false
	}
	return Splice{At: vs + inner.At, End: vs + inner.End}, true
}

// includesUsage reports whether a stream_options value asks for the usage
// chunk (include_usage: true).
func includesUsage(v []byte) bool {
	if !bytes.Contains(v, []byte("include_usage")) {
		return false
	}
	var so struct {
		IncludeUsage bool `json:"include_usage"`
	}
	return json.Unmarshal(v, &so) == nil && so.IncludeUsage
}
