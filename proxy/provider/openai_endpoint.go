package provider

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
)

// OpenAIConfig describes one OpenAI-wire endpoint.
type OpenAIConfig struct {
	// URLs are the upstream URL of each operation the endpoint serves
	// (OpenAIURLs); nil for one it does not serve.
	URLs OpURLs
	// Auth is the Authorization header value ("Bearer <secret>"); nil
	// sends no credential.
	Auth []string
	// ModelJSON is the upstream model name as a JSON string, spliced into
	// the caller's body in place of its model.
	ModelJSON []byte
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
	// RequestUsage asks for the usage chunk (stream_options.include_usage)
	// on a chat or completions stream whose caller did not set
	// stream_options, so every stream's tokens are counted; the chunk is
	// taken out of what the caller receives, which gets exactly what it
	// asked for. A caller that set stream_options without include_usage
	// is left alone (its stream is not counted).
	RequestUsage bool
}

// OpenAI is the OpenAI wire: the caller's body goes upstream with only its
// model value replaced, and answers come back with only theirs replaced.
// Nothing is decoded or re-encoded on the way.
type OpenAI struct{ cfg OpenAIConfig }

// NewOpenAI returns the endpoint cfg describes.
func NewOpenAI(cfg OpenAIConfig) *OpenAI { return &OpenAI{cfg: cfg} }

// OpURLs holds an upstream URL per Op.
type OpURLs [OpCountTokens + 1]*url.URL

// OpenAIURLs are the OpenAI wire's paths under base ({api_base}):
// chat/completions, completions, embeddings and responses.
func OpenAIURLs(base *url.URL) OpURLs {
	var u OpURLs
	u[OpChat] = base.JoinPath("chat", "completions")
	u[OpCompletions] = base.JoinPath("completions")
	u[OpEmbeddings] = base.JoinPath("embeddings")
	u[OpResponses] = base.JoinPath("responses")
	return u
}

// URL is the endpoint's chat-completions URL.
func (e *OpenAI) URL() *url.URL { return e.cfg.URLs[OpChat] }

// Supports reports whether the endpoint serves op.
func (e *OpenAI) Supports(op Op) bool { return int(op) < len(e.cfg.URLs) && e.cfg.URLs[op] != nil }

// Body is the caller's body with the model value replaced.
func (e *OpenAI) Body(in *Inbound) ([]byte, error) {
	if !e.Supports(in.Op) {
		return nil, ErrUnsupportedOp
	}
	sp := in.Req.ModelAt
	if e.addsUsage(in) {
		b := sp.AppendTo(make([]byte, 0, sp.Len(in.Body, e.cfg.ModelJSON)+len(includeUsage)), in.Body, e.cfg.ModelJSON)
		return appendMember(b, includeUsage), nil
	}
	return sp.AppendTo(make([]byte, 0, sp.Len(in.Body, e.cfg.ModelJSON)), in.Body, e.cfg.ModelJSON), nil
}

// includeUsage is the member Body adds to a stream the gateway counts.
var includeUsage = []byte(`"stream_options":{"include_usage":true}`)

// addsUsage reports whether Body asks for the usage chunk on in's behalf.
func (e *OpenAI) addsUsage(in *Inbound) bool {
	return e.cfg.RequestUsage && in.Req != nil && in.Req.Stream && !in.Req.StreamOptions &&
		(in.Op == OpChat || in.Op == OpCompletions)
}

// appendMember adds member to the JSON object b ends with (b ends at its
// closing brace, after optional white space, as ParseRequestFor checked).
func appendMember(b, member []byte) []byte {
	end := len(b) - 1
	for end >= 0 && b[end] != '}' {
		end--
	}
	if end < 0 {
		return b
	}
	i := skipWSBack(b, end)
	tail := b[end:]
	out := make([]byte, 0, len(b)+len(member)+1)
	out = append(out, b[:end]...)
	if i > 0 && b[i-1] != '{' {
		out = append(out, ',')
	}
	out = append(out, member...)
	return append(out, tail...)
}

// skipWSBack is the index after the last non-space byte before end.
func skipWSBack(b []byte, end int) int {
	for end > 0 {
		switch b[end-1] {
		case ' ', '\t', '\n', '\r':
			end--
			continue
		}
		break
	}
	return end
}

// NewRequest builds the POST to the chat-completions URL.
func (e *OpenAI) NewRequest(ctx context.Context, in *Inbound, body []byte) (*http.Request, error) {
	return NewChatRequest(ctx, ChatRequest{
		URL: e.cfg.URLs[in.Op], Auth: e.cfg.Auth, Body: body, Stream: in.Req.Stream,
		Caller: in.Header, Forward: e.cfg.Forward,
	})
}

// ErrNotObject is an upstream answer that is not a JSON object.
var ErrNotObject = errors.New("upstream returned a body that is not a JSON object")

// Answer is the upstream body with its model value replaced by alias.
func (e *OpenAI) Answer(dst []byte, _ *Inbound, body []byte, alias *Alias) ([]byte, error) {
	sp, err := FindModel(body)
	if err != nil {
		return dst, ErrNotObject
	}
	return sp.AppendTo(dst, body, alias.JSON), nil
}

// Stream returns the OpenAI stream relay: chat and completions chunks pass
// with their model value replaced, Responses API events as they are. It
// allocates nothing: the decoder is the alias itself.
func (e *OpenAI) Stream(in *Inbound, alias *Alias) StreamDecoder {
	if in != nil && in.Op == OpResponses {
		return (*responsesStream)(alias)
	}
	if in != nil && e.addsUsage(in) {
		return (*openAIUsageStream)(alias)
	}
	return (*openAIStream)(alias)
}

// Classify reads an OpenAI-wire error answer (see ClassifyOpenAI).
func (e *OpenAI) Classify(status int, body []byte) Class { return ClassifyOpenAI(status, body) }

// ErrorBody rebuilds the upstream error (SanitizeErrorBody).
func (e *OpenAI) ErrorBody(status int, body []byte) []byte { return SanitizeErrorBody(body, status) }

// ClassifyOpenAI maps an OpenAI-wire status and error body to a Class.
func ClassifyOpenAI(status int, body []byte) Class {
	switch {
	case status >= 200 && status < 300:
		return ClassOK
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusUnauthorized:
		return ClassAuth
	case status == http.StatusPaymentRequired:
		return ClassBilling
	case status == http.StatusForbidden:
		return ClassForbidden
	case status == http.StatusNotFound:
		return ClassNotFound
	case status == http.StatusRequestTimeout:
		return ClassTimeout
	case status >= 500:
		return ClassServer
	case status == http.StatusBadRequest && IsContextLengthExceeded(body):
		return ClassContextLength
	case status == http.StatusBadRequest && (bytes.Contains(body, []byte(`"content_policy_violation"`)) ||
		bytes.Contains(body, []byte(`"content_filter"`))):
		return ClassContentPolicy
	case status >= 400 && status < 500:
		return ClassBadRequest
	}
	return ClassUnknown
}

var (
	doneData  = []byte("[DONE]")
	doneFrame = []byte("data: [DONE]\n\n")
	// inBandError is the Failure of an OpenAI-wire in-band error: the
	// wire gives no reliable class. Shared; never modified.
	inBandError = &Failure{Class: ClassUnknown}
)

// openAIStream relays OpenAI chat.completion.chunk events.
type openAIStream Alias

func (s *openAIStream) Event(dst, name, data []byte) ([]byte, EventInfo, error) {
	var info EventInfo
	data = bytes.TrimSpace(data)
	if string(name) == "error" {
		info.Error = inBandError
		return dst, info, nil
	}
	if bytes.Equal(data, doneData) {
		info.Done = true
		return append(dst, doneFrame...), info, nil
	}
	ch, err := ScanChunk(data)
	if err != nil {
		return dst, info, ErrSkipEvent
	}
	if ch.Error {
		info.Error = inBandError
		return dst, info, nil
	}
	if len(name) != 0 && string(name) != "message" {
		return dst, info, nil // an event type this wire does not define
	}
	info.Content, info.Finished = ch.Content, ch.Finished
	if bytes.Contains(data, usageKey) {
		info.Usage, _ = ScanUsage(data)
	}
	return appendFrame(dst, data, ch.Model, s.JSON), info, nil
}

func (s *openAIStream) End(dst []byte) []byte { return append(dst, doneFrame...) }

// openAIUsageStream is openAIStream for a stream whose usage chunk the
// gateway asked for: the chunk is read and not relayed, and the
// "usage":null every other chunk then carries is taken out, so the caller
// sees the stream it asked for.
type openAIUsageStream Alias

var (
	usageNull = []byte(`,"usage":null`)
	noChoices = []byte(`"choices":[]`)
)

func (s *openAIUsageStream) Event(dst, name, data []byte) ([]byte, EventInfo, error) {
	out, info, err := (*openAIStream)(s).Event(dst, name, data)
	if err != nil || info.Error != nil || info.Done || len(out) == len(dst) {
		return out, info, err
	}
	if info.Usage.Known() && !info.Content && !info.Finished && bytes.Contains(data, noChoices) {
		return dst, info, nil // the usage chunk: counted, not relayed
	}
	if i := bytes.Index(out[len(dst):], usageNull); i >= 0 {
		i += len(dst)
		out = append(out[:i], out[i+len(usageNull):]...)
	}
	return out, info, nil
}

func (s *openAIUsageStream) End(dst []byte) []byte { return append(dst, doneFrame...) }

// appendFrame appends an SSE data frame carrying data with its model value
// replaced by name.
func appendFrame(dst, data []byte, sp Splice, name []byte) []byte {
	if bytes.IndexByte(data, '\n') < 0 {
		dst = append(dst, "data: "...)
		dst = sp.AppendTo(dst, data, name)
		return append(dst, "\n\n"...)
	}
	// Multi-line data (pretty-printed JSON): one data line per line.
	return AppendData(dst, sp.AppendTo(nil, data, name))
}

// Resourcer is an Endpoint that reaches objects its upstream keeps by id:
// the Responses API's GET, DELETE and cancel on a stored response.
type Resourcer interface {
	// NewResourceRequest builds method on {URL of op}/{path...}, with no
	// body, the credential and the allowed caller headers.
	NewResourceRequest(ctx context.Context, in *Inbound, method string, op Op, path ...string) (*http.Request, error)
}

// NewResourceRequest builds a call on a stored object (Resourcer).
func (e *OpenAI) NewResourceRequest(ctx context.Context, in *Inbound, method string, op Op, path ...string) (*http.Request, error) {
	if !e.Supports(op) {
		return nil, ErrUnsupportedOp
	}
	h := make(http.Header, 4+len(e.cfg.Forward))
	copyHeaders(h, in.Header, OpenAIForwardHeaders)
	copyHeaders(h, in.Header, e.cfg.Forward)
	if e.cfg.Auth != nil {
		h["Authorization"] = e.cfg.Auth
	}
	h["Accept"] = acceptJSON
	u := e.cfg.URLs[op].JoinPath(path...)
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header = h
	return req, nil
}
