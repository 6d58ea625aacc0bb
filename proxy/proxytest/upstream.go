// Package proxytest provides fake OpenAI-compatible upstreams that
// misbehave on purpose (resets, silence, 429s, cut and stalled streams,
// malformed events), and an in-memory storage.Source, for the proxy's tests,
// benchmarks and end-to-end runs.
package proxytest

import (
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one request as a Behavior sees it.
type Call struct {
	R *http.Request
	// Body is the whole request body.
	Body []byte
	// Model and Stream are read from Body.
	Model  string
	Stream bool
	// N is the number of choices asked for (1 unless the body sets n).
	N int
	// Hit numbers the upstream's requests from 1.
	Hit int
	// Path is the request's URL path; Endpoint is the operation it names
	// (EndpointChat, EndpointCompletions, EndpointEmbeddings or
	// EndpointResponses).
	Path     string
	Endpoint string
	// IncludeUsage is stream_options.include_usage.
	IncludeUsage bool
	// Done is closed when the upstream is closing; blocking behaviours
	// select on it and on R.Context().
	Done <-chan struct{}
	// Name is the upstream's name.
	Name string
}

// Behavior answers one request.
type Behavior func(w http.ResponseWriter, c *Call)

// Request is a recorded request.
type Request struct {
	// ProtoMajor is the HTTP version the request came in (1 or 2).
	ProtoMajor int
	Header     http.Header
	Body       []byte
	Model      string
	Stream     bool
	// Path is the URL path the request was sent to; Endpoint the
	// operation it names (see Call).
	Path     string
	Endpoint string
}

// The operations an Upstream serves, by the end of the POST's path.
const (
	EndpointChat        = "chat/completions"
	EndpointCompletions = "completions"
	EndpointEmbeddings  = "embeddings"
	EndpointResponses   = "responses"
)

// endpointOf is the operation path names, or "".
func endpointOf(path string) string {
	switch {
	case strings.HasSuffix(path, "/chat/completions"):
		return EndpointChat
	case strings.HasSuffix(path, "/completions"):
		return EndpointCompletions
	case strings.HasSuffix(path, "/embeddings"):
		return EndpointEmbeddings
	case strings.HasSuffix(path, "/responses"):
		return EndpointResponses
	}
	return ""
}

// Upstream is a fake OpenAI upstream on a loopback httptest server. Its
// script is a list of behaviours used in order, one per request; the last
// one repeats.
type Upstream struct {
	// Name identifies the upstream in default answers ("hello from <name>").
	Name   string
	server *httptest.Server
	done   chan struct{}
	once   sync.Mutex
	closed bool

	hits  atomic.Int64
	conns atomic.Int64
	mu    sync.Mutex
	pos   int
	plan  []Behavior
	reqs  []Request
	hitC  chan struct{}
}

// New starts an upstream that answers by the script (default: OK()).
func New(name string, script ...Behavior) *Upstream {
	u := newUnstarted(name, script)
	u.server.Start()
	return u
}

// newUnstarted is an upstream whose server is not started yet.
func newUnstarted(name string, script []Behavior) *Upstream {
	u := &Upstream{Name: name, done: make(chan struct{}), hitC: make(chan struct{}, 1)}
	u.Script(script...)
	u.server = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.server.Config.ConnState = u.connState
	return u
}

// NewTLS starts an upstream like New, served over TLS with HTTP/2 offered
// (ALPN h2), as real providers are. Its certificate is self-signed: trust
// Certificate() in the client.
func NewTLS(name string, script ...Behavior) *Upstream {
	u := newUnstarted(name, script)
	u.server.EnableHTTP2 = true
	u.server.StartTLS()
	return u
}

// Certificate is the TLS certificate of an upstream started with NewTLS
// (nil otherwise).
func (u *Upstream) Certificate() *x509.Certificate { return u.server.Certificate() }

// Script replaces the script and starts it from its first behaviour.
func (u *Upstream) Script(script ...Behavior) {
	if len(script) == 0 {
		script = []Behavior{OK()}
	}
	u.mu.Lock()
	u.plan, u.pos = script, 0
	u.mu.Unlock()
}

// URL is the server's root URL.
func (u *Upstream) URL() string { return u.server.URL }

// BaseURL is the api_base to configure: URL + "/v1".
func (u *Upstream) BaseURL() string { return u.server.URL + "/v1" }

// Conns is the number of connections accepted so far.
func (u *Upstream) Conns() int { return int(u.conns.Load()) }

func (u *Upstream) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		u.conns.Add(1)
	}
}

// Hits is the number of requests received (on any endpoint it serves).
func (u *Upstream) Hits() int { return int(u.hits.Load()) }

// Requests returns the recorded requests.
func (u *Upstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// WaitHits blocks until the upstream has received at least n requests or
// timeout passes, and reports whether it got them.
func (u *Upstream) WaitHits(n int, timeout time.Duration) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for u.Hits() < n {
		select {
		case <-u.hitC:
		case <-deadline.C:
			return u.Hits() >= n
		}
	}
	return true
}

// Close releases blocked behaviours and shuts the server down.
func (u *Upstream) Close() {
	u.once.Lock()
	if !u.closed {
		u.closed = true
		close(u.done)
	}
	u.once.Unlock()
	u.server.CloseClientConnections()
	u.server.Close()
}

func (u *Upstream) serve(w http.ResponseWriter, r *http.Request) {
	ep := endpointOf(r.URL.Path)
	if r.Method != http.MethodPost || ep == "" {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var parsed struct {
		Model         string `json:"model"`
		Stream        bool   `json:"stream"`
		N             int    `json:"n"`
		StreamOptions *struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	_ = json.Unmarshal(body, &parsed)
	if parsed.N < 1 {
		parsed.N = 1
	}
	hit := int(u.hits.Add(1))
	u.mu.Lock()
	u.reqs = append(u.reqs, Request{ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body, Model: parsed.Model, Stream: parsed.Stream,
		Path: r.URL.Path, Endpoint: ep})
	b := u.plan[min(u.pos, len(u.plan)-1)]
	u.pos++
	u.mu.Unlock()
	select {
	case u.hitC <- struct{}{}:
	default:
	}
	b(w, &Call{R: r, Body: body, Model: parsed.Model, Stream: parsed.Stream, N: parsed.N, Hit: hit, Done: u.done, Name: u.Name,
		Path: r.URL.Path, Endpoint: ep, IncludeUsage: parsed.StreamOptions != nil && parsed.StreamOptions.IncludeUsage})
}

// Sequence plays bs in turn across requests; it is the same as passing
// them to New or Script, for building scripts from parts.
func Sequence(bs ...Behavior) []Behavior { return bs }

// Times repeats b n times, for scripts like Times(2, Reset()) then OK().
func Times(n int, b Behavior) []Behavior {
	out := make([]Behavior, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// OK answers like OpenAI: a chat.completion (or, for stream requests, a
// normal stream) saying "hello from <name>", with the model it was asked
// for and as many choices as n asks. On the other endpoints it answers
// their own objects: Embedding(), TextCompletion or its stream,
// ResponseObject or ResponseStream.
func OK() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		switch c.Endpoint {
		case EndpointEmbeddings:
			Embedding()(w, c)
			return
		case EndpointCompletions:
			if c.Stream {
				TextCompletionStream(StreamOptions{})(w, c)
				return
			}
			TextCompletion("hello from "+c.Name)(w, c)
			return
		case EndpointResponses:
			if c.Stream {
				ResponseStream(ResponseStreamOptions{})(w, c)
				return
			}
			ResponseObject("hello from "+c.Name)(w, c)
			return
		}
		if c.Stream {
			Stream(StreamOptions{})(w, c)
			return
		}
		Completion("hello from "+c.Name)(w, c)
	}
}

// Completion answers a chat.completion with the given content in every
// choice.
func Completion(content string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		choices := make([]map[string]any, c.N)
		for i := range choices {
			choices[i] = map[string]any{
				"index":         i,
				"message":       map[string]any{"role": "assistant", "content": content},
				"finish_reason": "stop",
			}
		}
		b, _ := json.Marshal(map[string]any{
			"id": "chatcmpl-" + c.Name, "object": "chat.completion", "created": 1767225600,
			"model": c.Model, "choices": choices,
			"usage": map[string]int{"prompt_tokens": 10, "completion_tokens": 9, "total_tokens": 19},
		})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Server", "fake-upstream")
		_, _ = w.Write(b)
	}
}

// Raw answers 200 with the given body as is.
func Raw(contentType, body string) Behavior {
	return func(w http.ResponseWriter, _ *Call) {
		w.Header().Set("Content-Type", contentType)
		_, _ = io.WriteString(w, body)
	}
}

// Status answers with a status, a body and header pairs ("Retry-After", "2").
func Status(code int, body string, header ...string) Behavior {
	return func(w http.ResponseWriter, _ *Call) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// RateLimited answers 429, with Retry-After when retryAfter is not empty.
func RateLimited(retryAfter string) Behavior {
	body := `{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}`
	if retryAfter == "" {
		return Status(http.StatusTooManyRequests, body)
	}
	return Status(http.StatusTooManyRequests, body, "Retry-After", retryAfter)
}

// ServerError answers the given 5xx with an upstream body that names an
// internal host (the proxy must not echo it).
func ServerError(code int) Behavior {
	return Status(code, `{"error":{"message":"backend 10.1.2.3:8443 unavailable","type":"server_error"}}`)
}

// ContextLengthExceeded answers OpenAI's context-window 400.
func ContextLengthExceeded() Behavior {
	return Status(http.StatusBadRequest, `{"error":{"message":"This model's maximum context length is 8192 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`)
}

// ContentPolicy answers a content-policy 400.
func ContentPolicy() Behavior {
	return Status(http.StatusBadRequest, `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`)
}

// Reset closes the connection with a TCP RST before sending anything.
func Reset() Behavior {
	return func(w http.ResponseWriter, _ *Call) {
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic(http.ErrAbortHandler)
		}
		conn, _, err := hj.Hijack()
		if err != nil {
			return
		}
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close()
	}
}

// Hang never answers: it holds the request until the caller gives up or
// the upstream closes.
func Hang() Behavior {
	return func(_ http.ResponseWriter, c *Call) {
		select {
		case <-c.R.Context().Done():
		case <-c.Done:
		}
	}
}

// Delay waits d (or until the caller gives up) and then behaves like b.
func Delay(d time.Duration, b Behavior) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			b(w, c)
		case <-c.R.Context().Done():
		case <-c.Done:
		}
	}
}

// StreamOptions shape a streamed answer.
type StreamOptions struct {
	// Chunks are the content pieces (default "hello", " from", " <name>").
	Chunks []string
	// RoleChunk sends a role-only first chunk (no content), as OpenAI does;
	// a text completion stream sends a chunk with empty text instead.
	RoleChunk bool
	// FirstDelay is waited after the headers, before the first event.
	FirstDelay time.Duration
	// Gap is waited between content chunks.
	Gap time.Duration
	// CutBeforeContent aborts the connection after the headers (and the
	// role chunk), before any content.
	CutBeforeContent bool
	// CutAfter > 0 aborts the connection after that many content chunks.
	CutAfter int
	// StallAfter > 0 goes silent after that many content chunks.
	StallAfter int
	// WaitAfter > 0 waits, after that many content chunks, until Wait is
	// closed (or the request ends), then goes on: a test holds the stream
	// open until it has seen what it waits for.
	WaitAfter int
	Wait      <-chan struct{}
	// MalformedAt > 0 sends a malformed event before content chunk n (1-based).
	MalformedAt int
	// ErrorAt > 0 sends an in-band error event before content chunk n.
	ErrorAt int
	// Tools follow the content as tool_calls deltas (chat only): per tool
	// a first delta with id, type and name, then its arguments in
	// Fragments; finish_reason is then tool_calls. Chunks may be empty
	// ([]string{}) for a tool-only answer.
	Tools []ToolCall
	// NoFinish leaves out the finish_reason chunk.
	NoFinish bool
	// NoDone leaves out data: [DONE].
	NoDone bool
	// EmptyFirst sends an empty event ("data: \n\n") first.
	EmptyFirst bool
	// HoldAfterDone keeps the response open this long after data: [DONE]
	// before ending it.
	HoldAfterDone time.Duration
}

// ToolCall is one streamed tool call of a chat answer.
type ToolCall struct {
	ID, Name string
	// Fragments are the pieces of the arguments JSON, one delta each.
	Fragments []string
}

// Stream answers a text/event-stream of chat.completion.chunk events.
// When the request sets stream_options.include_usage, a usage chunk
// (empty choices) comes before [DONE], as OpenAI sends it.
func Stream(o StreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		finish := `"stop"`
		if len(o.Tools) > 0 {
			finish = `"tool_calls"`
		}
		sseChunks(w, c, o, chunkFormat{
			role:    func() string { return chunk(c, `{"role":"assistant","content":""}`, "null") },
			content: func(s string) string { return chunk(c, `{"content":`+jsonString(s)+`}`, "null") },
			finish:  func() string { return chunk(c, `{}`, finish) },
			usage: func() string {
				return fmt.Sprintf("data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":9,\"total_tokens\":19}}\n\n",
					c.Name, c.Model)
			},
			tools: func(send func(string)) {
				for i, t := range o.Tools {
					send(chunk(c, fmt.Sprintf(`{"tool_calls":[{"index":%d,"id":%s,"type":"function","function":{"name":%s,"arguments":""}}]}`,
						i, jsonString(t.ID), jsonString(t.Name)), "null"))
					for _, f := range t.Fragments {
						send(chunk(c, fmt.Sprintf(`{"tool_calls":[{"index":%d,"function":{"arguments":%s}}]}`, i, jsonString(f)), "null"))
					}
				}
			},
		})
	}
}

// TextCompletionStream answers a legacy completions stream: text_completion
// objects whose choices carry text pieces (finish_reason null), a last one
// with finish_reason stop, then data: [DONE]; a usage chunk with empty
// choices comes before [DONE] when the request sets
// stream_options.include_usage. Tools is ignored.
func TextCompletionStream(o StreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		sseChunks(w, c, o, chunkFormat{
			role:    func() string { return textChunk(c, "", "null") },
			content: func(s string) string { return textChunk(c, s, "null") },
			finish:  func() string { return textChunk(c, "", `"stop"`) },
			usage: func() string {
				return fmt.Sprintf("data: {\"id\":\"cmpl-%s\",\"object\":\"text_completion\",\"created\":1767225600,\"model\":%q,\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}\n\n",
					c.Name, c.Model)
			},
		})
	}
}

// chunkFormat builds the frames of one kind of chunk stream.
type chunkFormat struct {
	role, finish, usage func() string
	content             func(string) string
	tools               func(send func(string))
}

func sseChunks(w http.ResponseWriter, c *Call, o StreamOptions, f chunkFormat) {
	chunks := o.Chunks
	if chunks == nil {
		chunks = []string{"hello", " from", " " + c.Name}
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	flush()
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
	send := func(s string) {
		_, _ = io.WriteString(w, s)
		flush()
	}
	if !wait(o.FirstDelay) {
		return
	}
	if o.EmptyFirst {
		send("data: \n\n")
	}
	if o.RoleChunk {
		send(f.role())
	}
	if o.CutBeforeContent {
		panic(http.ErrAbortHandler)
	}
	for i, piece := range chunks {
		n := i + 1
		if o.MalformedAt == n {
			send("data: {\"id\":\"broken\",\"choices\":[{\"delta\":\n\n")
		}
		if o.ErrorAt == n {
			send(`data: {"error":{"message":"internal failure at 10.0.0.7","type":"server_error"}}` + "\n\n")
		}
		if i > 0 && !wait(o.Gap) {
			return
		}
		send(f.content(piece))
		if o.CutAfter == n {
			panic(http.ErrAbortHandler)
		}
		if o.StallAfter == n {
			select {
			case <-c.R.Context().Done():
			case <-c.Done:
			}
			return
		}
		if o.WaitAfter == n && !waitFor(c, o.Wait) {
			return
		}
	}
	if f.tools != nil {
		f.tools(send)
	}
	if !o.NoFinish {
		send(f.finish())
	}
	if c.IncludeUsage {
		send(f.usage())
	}
	if !o.NoDone {
		send("data: [DONE]\n\n")
	}
	wait(o.HoldAfterDone)
}

func chunk(c *Call, delta, finish string) string {
	return fmt.Sprintf("data: {\"id\":\"chatcmpl-%s\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":%q,\"choices\":[{\"index\":0,\"delta\":%s,\"finish_reason\":%s}]}\n\n",
		c.Name, c.Model, delta, finish)
}

func textChunk(c *Call, text, finish string) string {
	return fmt.Sprintf("data: {\"id\":\"cmpl-%s\",\"object\":\"text_completion\",\"created\":1767225600,\"model\":%q,\"choices\":[{\"text\":%s,\"index\":0,\"logprobs\":null,\"finish_reason\":%s}]}\n\n",
		c.Name, c.Model, jsonString(text), finish)
}

// waitFor waits until ch is closed, and reports false when the request
// or the upstream ended first.
func waitFor(c *Call, ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-c.R.Context().Done():
	case <-c.Done:
	}
	return false
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
