package proxytest

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// GeminiUpstream is a fake Google AI Studio Gemini API on a loopback
// httptest server, shaped after Google's published API reference
// (ai.google.dev/api): POST /v1beta/models/{model}:generateContent,
// :streamGenerateContent (?alt=sse: an event stream of whole
// GenerateContentResponse objects, CRLF-separated as Google sends them,
// with no end marker; without alt=sse one JSON array), :embedContent and
// :batchEmbedContents. Its script works as Upstream's, one behaviour per
// request, the last one repeating; Upstream's transport behaviours
// (Reset, Hang, Delay, Raw) work here too.
//
// Before the script runs, every request is checked as the real API does:
// no API key (x-goog-api-key header or key= query) answers 403
// PERMISSION_DENIED; a key other than Key (when set) 400 INVALID_ARGUMENT
// with reason API_KEY_INVALID; a body that is not JSON, has a top-level
// field GenerateContentRequest does not define, no contents, or a role
// other than user and model, 400 INVALID_ARGUMENT; a batch request whose
// model is not the path's, 400.
type GeminiUpstream struct {
	// Name identifies the upstream in default answers ("hello from <name>").
	Name string
	// Key, when set, is the only API key accepted. Set it before the
	// first request.
	Key string

	server *httptest.Server
	done   chan struct{}
	closed atomic.Bool
	hits   atomic.Int64
	mu     sync.Mutex
	pos    int
	plan   []Behavior
	reqs   []Request
}

// The methods a GeminiUpstream serves (Call.Endpoint and Request.Endpoint).
const (
	GeminiGenerate      = "generateContent"
	GeminiStream        = "streamGenerateContent"
	GeminiEmbed         = "embedContent"
	GeminiBatchEmbed    = "batchEmbedContents"
	geminiModelsPrefix  = "/v1beta/models/"
	geminiUnregistered  = "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."
	geminiInvalidAPIKey = "API key not valid. Please pass a valid API key."
)

// NewGemini starts a fake Gemini upstream answering by the script
// (default: GeminiOK()).
func NewGemini(name string, script ...Behavior) *GeminiUpstream {
	u := &GeminiUpstream{Name: name, done: make(chan struct{})}
	u.Script(script...)
	u.server = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.server.Start()
	return u
}

// Script replaces the script and starts it from its first behaviour.
func (u *GeminiUpstream) Script(script ...Behavior) {
	if len(script) == 0 {
		script = []Behavior{GeminiOK()}
	}
	u.mu.Lock()
	u.plan, u.pos = script, 0
	u.mu.Unlock()
}

// URL is the api_base to configure (the server root; the adapter adds
// /v1beta/models/…).
func (u *GeminiUpstream) URL() string { return u.server.URL }

// Hits is the number of requests that reached the script.
func (u *GeminiUpstream) Hits() int { return int(u.hits.Load()) }

// Requests returns the requests that reached the script, in order. Path
// holds the URL path and query.
func (u *GeminiUpstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// Close stops the server, ending blocked behaviours.
func (u *GeminiUpstream) Close() {
	if u.closed.Swap(true) {
		return
	}
	close(u.done)
	u.server.CloseClientConnections()
	u.server.Close()
}

// generateFields are the top-level fields of GenerateContentRequest.
var generateFields = map[string]bool{"contents": true, "systemInstruction": true, "tools": true, "toolConfig": true,
	"generationConfig": true, "safetySettings": true, "cachedContent": true}

func (u *GeminiUpstream) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, geminiModelsPrefix)
	model, method, ok2 := strings.Cut(rest, ":")
	if r.Method != http.MethodPost || !ok || !ok2 || model == "" || strings.Contains(model, "/") {
		geminiError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.", "")
		return
	}
	switch method {
	case GeminiGenerate, GeminiStream, GeminiEmbed, GeminiBatchEmbed:
	default:
		geminiError(w, http.StatusNotFound, "NOT_FOUND", "The requested URL was not found on this server.", "")
		return
	}
	key := r.Header.Get("X-Goog-Api-Key")
	if key == "" {
		key = r.URL.Query().Get("key")
	}
	switch {
	case key == "":
		geminiError(w, http.StatusForbidden, "PERMISSION_DENIED", geminiUnregistered, "")
		return
	case u.Key != "" && key != u.Key:
		geminiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", geminiInvalidAPIKey, "API_KEY_INVALID")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if msg := checkGeminiBody(method, model, body); msg != "" {
		geminiError(w, http.StatusBadRequest, "INVALID_ARGUMENT", msg, "")
		return
	}
	stream := method == GeminiStream
	hit := int(u.hits.Add(1))
	u.mu.Lock()
	u.reqs = append(u.reqs, Request{ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body, Model: model, Stream: stream,
		Path: r.URL.RequestURI(), Endpoint: method})
	b := u.plan[min(u.pos, len(u.plan)-1)]
	u.pos++
	u.mu.Unlock()
	b(w, &Call{R: r, Body: body, Model: model, Stream: stream, N: 1, Hit: hit, Done: u.done, Name: u.Name,
		Path: r.URL.Path, Endpoint: method})
}

// checkGeminiBody is the request validation the real API makes, as far
// as the fake needs it; "" when the body is acceptable.
func checkGeminiBody(method, model string, body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) != nil || fields == nil {
		return "Invalid JSON payload received."
	}
	switch method {
	case GeminiEmbed:
		if _, ok := fields["content"]; !ok {
			return "* EmbedContentRequest.content: content is not specified"
		}
		return ""
	case GeminiBatchEmbed:
		var b struct {
			Requests []struct {
				Model   string          `json:"model"`
				Content json.RawMessage `json:"content"`
			} `json:"requests"`
		}
		if json.Unmarshal(body, &b) != nil || len(b.Requests) == 0 {
			return "* BatchEmbedContentsRequest.requests: requests is not specified"
		}
		for i, r := range b.Requests {
			if r.Model != "models/"+model {
				return fmt.Sprintf("* BatchEmbedContentsRequest.requests[%d].model: the model must be models/%s", i, model)
			}
		}
		return ""
	}
	for name := range fields {
		if !generateFields[name] {
			return fmt.Sprintf("Invalid JSON payload received. Unknown name %q: Cannot find field.", name)
		}
	}
	var req struct {
		Contents []struct {
			Role  string            `json:"role"`
			Parts []json.RawMessage `json:"parts"`
		} `json:"contents"`
	}
	if json.Unmarshal(body, &req) != nil {
		return "Invalid JSON payload received."
	}
	if len(req.Contents) == 0 {
		return "* GenerateContentRequest.contents: contents is not specified"
	}
	for i, c := range req.Contents {
		if c.Role != "" && c.Role != "user" && c.Role != "model" {
			return fmt.Sprintf("Please use a valid role: user, model. (contents[%d].role)", i)
		}
		if len(c.Parts) == 0 {
			return fmt.Sprintf("* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.", i)
		}
	}
	return ""
}

func geminiError(w http.ResponseWriter, code int, status, msg, reason string) {
	e := map[string]any{"code": code, "message": msg, "status": status}
	if reason != "" {
		e["details"] = []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
			"domain": "googleapis.com", "metadata": map[string]string{"service": "generativelanguage.googleapis.com"}}}
	}
	b, _ := json.Marshal(map[string]any{"error": e})
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// GeminiCall is one functionCall part of a fake answer.
type GeminiCall struct {
	Name string
	// Args is the call's arguments, a JSON object.
	Args string
}

// GeminiOK answers "hello from <name>" (streamed for
// streamGenerateContent), and an embedding of 3 values per input for the
// embedding methods.
func GeminiOK() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		switch c.Endpoint {
		case GeminiEmbed, GeminiBatchEmbed:
			GeminiEmbedding(0.25, -0.5, 1)(w, c)
		case GeminiStream:
			GeminiStreamAnswer(GeminiStreamOptions{})(w, c)
		default:
			GeminiText("hello from "+c.Name)(w, c)
		}
	}
}

// GeminiText answers a GenerateContentResponse with one text part,
// finishReason STOP.
func GeminiText(text string) Behavior { return geminiAnswer("", text, nil, "STOP") }

// GeminiThinking answers a thought part, then a text part.
func GeminiThinking(thought, text string) Behavior { return geminiAnswer(thought, text, nil, "STOP") }

// GeminiFunctionCalls answers an optional text part and functionCall
// parts (finishReason STOP, as the API reports a function call); streamed
// for streamGenerateContent, the calls whole in the last chunk.
func GeminiFunctionCalls(text string, calls ...GeminiCall) Behavior {
	plain := geminiAnswer("", text, calls, "STOP")
	return func(w http.ResponseWriter, c *Call) {
		if c.Stream {
			var chunks []string
			if text != "" {
				chunks = []string{text}
			}
			GeminiStreamAnswer(GeminiStreamOptions{Chunks: chunks, NoText: text == "", Calls: calls})(w, c)
			return
		}
		plain(w, c)
	}
}

// GeminiFinish answers a text part with the given finishReason
// (MAX_TOKENS, SAFETY, …).
func GeminiFinish(text, reason string) Behavior { return geminiAnswer("", text, nil, reason) }

func geminiUsage(thoughts bool) map[string]int {
	u := map[string]int{"promptTokenCount": 10, "candidatesTokenCount": 9, "totalTokenCount": 19}
	if thoughts {
		u["thoughtsTokenCount"] = 4
		u["totalTokenCount"] = 23
	}
	return u
}

func geminiAnswer(thought, text string, calls []GeminiCall, finish string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var parts []any
		if thought != "" {
			parts = append(parts, map[string]any{"text": thought, "thought": true})
		}
		if text != "" {
			parts = append(parts, map[string]any{"text": text})
		}
		for i, fc := range calls {
			p := map[string]any{"functionCall": map[string]any{"name": fc.Name, "args": json.RawMessage(fc.Args)}}
			if i == 0 {
				p["thoughtSignature"] = "CiQBVKhc7fakeSignature"
			}
			parts = append(parts, p)
		}
		b, _ := json.Marshal(map[string]any{
			"candidates": []any{map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "finishReason": finish, "index": 0,
				"safetyRatings": []any{map[string]string{"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}}}},
			"usageMetadata": geminiUsage(thought != ""),
			"modelVersion":  c.Model,
			"responseId":    "gemresp" + strconv.Itoa(c.Hit),
		})
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = w.Write(b)
	}
}

// GeminiBlocked answers 200 with no candidates and
// promptFeedback.blockReason reason, as the API does for a blocked
// prompt (one event when streaming).
func GeminiBlocked(reason string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		b, _ := json.Marshal(map[string]any{
			"promptFeedback": map[string]any{"blockReason": reason, "safetyRatings": []any{}},
			"usageMetadata":  map[string]int{"promptTokenCount": 10, "totalTokenCount": 10},
			"modelVersion":   c.Model, "responseId": "gemresp" + strconv.Itoa(c.Hit),
		})
		if c.Stream {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = fmt.Fprintf(w, "data: %s\r\n\r\n", b)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = w.Write(b)
	}
}

// GeminiEmbedding answers an EmbedContentResponse ({"embedding":
// {"values"}}) or, for batchEmbedContents, one embedding per request.
func GeminiEmbedding(values ...float64) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var out any = map[string]any{"embedding": map[string]any{"values": values}}
		if c.Endpoint == GeminiBatchEmbed {
			var b struct {
				Requests []json.RawMessage `json:"requests"`
			}
			_ = json.Unmarshal(c.Body, &b)
			list := make([]any, len(b.Requests))
			for i := range list {
				list[i] = map[string]any{"values": values}
			}
			out = map[string]any{"embeddings": list}
		}
		b, _ := json.Marshal(out)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		_, _ = w.Write(b)
	}
}

// GeminiError answers status with Google's error envelope
// {"error":{"code","message","status"}} and header pairs.
func GeminiError(code int, status, msg string, header ...string) Behavior {
	return func(w http.ResponseWriter, _ *Call) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		geminiError(w, code, status, msg, "")
	}
}

// GeminiRateLimited answers 429 RESOURCE_EXHAUSTED, with Retry-After when
// retryAfter is not empty.
func GeminiRateLimited(retryAfter string) Behavior {
	const msg = "You exceeded your current quota, please check your plan and billing details."
	if retryAfter == "" {
		return GeminiError(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", msg)
	}
	return GeminiError(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED", msg, "Retry-After", retryAfter)
}

// GeminiOverloaded answers 503 UNAVAILABLE.
func GeminiOverloaded() Behavior {
	return GeminiError(http.StatusServiceUnavailable, "UNAVAILABLE", "The model is overloaded. Please try again later.")
}

// GeminiServerError answers 500 INTERNAL with a message naming an
// internal host (the proxy must not echo it).
func GeminiServerError() Behavior {
	return GeminiError(http.StatusInternalServerError, "INTERNAL", "An internal error has occurred at 10.1.2.3:8443.")
}

// GeminiPermissionDenied answers 403 PERMISSION_DENIED.
func GeminiPermissionDenied() Behavior {
	return GeminiError(http.StatusForbidden, "PERMISSION_DENIED", "The caller does not have permission")
}

// GeminiNotFound answers 404 NOT_FOUND naming the model.
func GeminiNotFound() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		geminiError(w, http.StatusNotFound, "NOT_FOUND", "models/"+c.Model+" is not found for API version v1beta, or is not supported for generateContent.", "")
	}
}

// GeminiTooLong answers the context-window 400.
func GeminiTooLong() Behavior {
	return GeminiError(http.StatusBadRequest, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).")
}

// GeminiStreamOptions shape a streamed answer.
type GeminiStreamOptions struct {
	// Chunks are the text pieces, one per event (default "hello",
	// " from", " <name>").
	Chunks []string
	// NoText sends no text chunks.
	NoText bool
	// Thought, when set, comes first as a thought part.
	Thought string
	// Calls come whole in the last event, with the finishReason.
	Calls []GeminiCall
	// FinishReason is the last event's (default STOP).
	FinishReason string
	// FirstDelay is waited after the headers, before the first event.
	FirstDelay time.Duration
	// Gap is waited between events.
	Gap time.Duration
	// CutAfter > 0 aborts the connection after that many text events.
	CutAfter int
	// StallAfter > 0 goes silent after that many text events.
	StallAfter int
	// ErrorAt > 0 sends an error object ({"error":{…}}, ErrorStatus,
	// default UNAVAILABLE with code 503) in place of text event n and
	// ends the stream.
	ErrorAt     int
	ErrorStatus string
	// MalformedAt > 0 sends, in place of text event n, data that is not
	// JSON.
	MalformedAt int
	// NoFinish leaves out the finishReason (the stream just ends).
	NoFinish bool
	// StallBeforeContent sends the headers and goes silent.
	StallBeforeContent bool
	// CutBeforeContent sends the headers and aborts the connection.
	CutBeforeContent bool
}

// GeminiStreamAnswer answers :streamGenerateContent. With alt=sse it is
// a text/event-stream of "data: <GenerateContentResponse>" events
// separated by CRLF CRLF, the last carrying finishReason and the final
// usageMetadata; without alt=sse the same objects as one JSON array.
func GeminiStreamAnswer(o GeminiStreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		chunks := o.Chunks
		if chunks == nil && !o.NoText {
			chunks = []string{"hello", " from", " " + c.Name}
		}
		if o.NoText {
			chunks = nil
		}
		finish := o.FinishReason
		if finish == "" {
			finish = "STOP"
		}
		id := "gemresp" + strconv.Itoa(c.Hit)
		event := func(parts []any, finish string, usage map[string]int) []byte {
			cand := map[string]any{"content": map[string]any{"parts": parts, "role": "model"}, "index": 0}
			if finish != "" {
				cand["finishReason"] = finish
			}
			b, _ := json.Marshal(map[string]any{"candidates": []any{cand}, "usageMetadata": usage, "modelVersion": c.Model, "responseId": id})
			return b
		}
		partial := map[string]int{"promptTokenCount": 10, "totalTokenCount": 10}
		if c.R.URL.Query().Get("alt") != "sse" {
			// The JSON-array form.
			var all []json.RawMessage
			for _, ch := range chunks {
				all = append(all, event([]any{map[string]any{"text": ch}}, "", partial))
			}
			all = append(all, event([]any{map[string]any{"text": ""}}, finish, geminiUsage(false)))
			b, _ := json.Marshal(all)
			w.Header().Set("Content-Type", "application/json; charset=UTF-8")
			_, _ = w.Write(b)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		flush := func() {
			if fl != nil {
				fl.Flush()
			}
		}
		flush()
		send := func(b []byte) {
			_, _ = fmt.Fprintf(w, "data: %s\r\n\r\n", b)
			flush()
		}
		wait := func(d time.Duration) bool {
			if d <= 0 {
				return true
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-c.R.Context().Done():
			case <-c.Done:
			}
			return false
		}
		stall := func() {
			select {
			case <-c.R.Context().Done():
			case <-c.Done:
			}
		}
		if o.CutBeforeContent {
			panic(http.ErrAbortHandler)
		}
		if o.StallBeforeContent {
			stall()
			return
		}
		if !wait(o.FirstDelay) {
			return
		}
		if o.Thought != "" {
			send(event([]any{map[string]any{"text": o.Thought, "thought": true}}, "", partial))
		}
		for i, ch := range chunks {
			n := i + 1
			if i > 0 && !wait(o.Gap) {
				return
			}
			if o.ErrorAt == n {
				st, code := o.ErrorStatus, 503
				if st == "" {
					st = "UNAVAILABLE"
				}
				if st == "RESOURCE_EXHAUSTED" {
					code = 429
				} else if st == "INTERNAL" {
					code = 500
				}
				b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": "An internal error has occurred at 10.1.2.3:8443.", "status": st}})
				send(b)
				return
			}
			if o.MalformedAt == n {
				_, _ = fmt.Fprintf(w, "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \r\n\r\n")
				flush()
				continue
			}
			send(event([]any{map[string]any{"text": ch}}, "", partial))
			if o.CutAfter == n {
				panic(http.ErrAbortHandler)
			}
			if o.StallAfter == n {
				stall()
				return
			}
		}
		if o.NoFinish {
			return
		}
		var parts []any
		for i, fc := range o.Calls {
			p := map[string]any{"functionCall": map[string]any{"name": fc.Name, "args": json.RawMessage(fc.Args)}}
			if i == 0 {
				p["thoughtSignature"] = "CiQBVKhc7fakeSignature"
			}
			parts = append(parts, p)
		}
		if parts == nil {
			parts = []any{map[string]any{"text": ""}}
		}
		send(event(parts, finish, geminiUsage(false)))
	}
}
