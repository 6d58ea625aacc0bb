package proxytest

import (
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// AnthropicUpstream is a fake Anthropic Messages API (POST /v1/messages,
// and POST /v1/messages/count_tokens) on a loopback httptest server, shaped after Anthropic's API reference.
// Like Upstream, its script is a list of behaviours used in order, one
// per request, the last one repeating; Upstream's transport behaviours
// (Reset, Hang, Delay) work here too.
//
// Before the script runs, every request is checked as the real API
// checks it: no x-api-key answers 401 authentication_error, a key other
// than Key (when set) 401 too, and no anthropic-version header 400
// invalid_request_error.
type AnthropicUpstream struct {
	// Name identifies the upstream in default answers ("hello from <name>").
	Name string
	// Key, when set, is the only x-api-key accepted. Set it before the
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

// NewAnthropic starts a fake Anthropic upstream answering by the script
// (default: AnthropicOK()).
func NewAnthropic(name string, script ...Behavior) *AnthropicUpstream {
	u := &AnthropicUpstream{Name: name, done: make(chan struct{})}
	u.Script(script...)
	u.server = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.server.Config.ErrorLog = log.New(io.Discard, "", 0)
	u.server.Start()
	return u
}

// Script replaces the script and starts it from its first behaviour.
func (u *AnthropicUpstream) Script(script ...Behavior) {
	if len(script) == 0 {
		script = []Behavior{AnthropicOK()}
	}
	u.mu.Lock()
	u.plan, u.pos = script, 0
	u.mu.Unlock()
}

// URL is the api_base to configure (the server root; the bridge adds
// /v1/messages).
func (u *AnthropicUpstream) URL() string { return u.server.URL }

// Hits is the number of requests that reached the script.
func (u *AnthropicUpstream) Hits() int { return int(u.hits.Load()) }

// Requests returns the requests that reached the script, in order.
func (u *AnthropicUpstream) Requests() []Request {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]Request(nil), u.reqs...)
}

// Close stops the server, ending blocked behaviours.
func (u *AnthropicUpstream) Close() {
	if u.closed.Swap(true) {
		return
	}
	close(u.done)
	u.server.CloseClientConnections()
	u.server.Close()
}

func (u *AnthropicUpstream) serve(w http.ResponseWriter, r *http.Request) {
	ep := ""
	if r.URL.Path == "/v1/messages/count_tokens" {
		ep = EndpointCountTokens
	}
	if r.Method != http.MethodPost || (r.URL.Path != "/v1/messages" && ep == "") {
		anthropicError(w, http.StatusNotFound, "not_found_error", "Not Found")
		return
	}
	key := r.Header.Get("X-Api-Key")
	switch {
	case key == "":
		anthropicError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return
	case u.Key != "" && key != u.Key:
		anthropicError(w, http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
		return
	case r.Header.Get("Anthropic-Version") == "":
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "anthropic-version: header is required")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var parsed struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	if json.Unmarshal(body, &parsed) != nil {
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "There was an issue with the format or content of your request.")
		return
	}
	hit := int(u.hits.Add(1))
	u.mu.Lock()
	u.reqs = append(u.reqs, Request{ProtoMajor: r.ProtoMajor, Header: r.Header.Clone(), Body: body, Model: parsed.Model, Stream: parsed.Stream,
		Path: r.URL.Path, Endpoint: ep})
	b := u.plan[min(u.pos, len(u.plan)-1)]
	u.pos++
	u.mu.Unlock()
	w.Header().Set("Request-Id", "req_fake"+strconv.Itoa(hit))
	b(w, &Call{R: r, Body: body, Model: parsed.Model, Stream: parsed.Stream, N: 1, Hit: hit, Done: u.done, Name: u.Name,
		Path: r.URL.Path, Endpoint: ep})
}

func anthropicError(w http.ResponseWriter, code int, typ, msg string) {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg},
		"request_id": "req_fake" + strconv.Itoa(code)})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// AnthropicTool is one tool_use block of a fake answer.
type AnthropicTool struct {
	ID, Name string
	// Input is the tool input as a JSON object.
	Input string
	// Fragments split Input for input_json_delta events in a stream
	// (default: the whole Input in one event).
	Fragments []string
}

// EndpointCountTokens is the Endpoint of a request to
// /v1/messages/count_tokens ("" is /v1/messages).
const EndpointCountTokens = "count_tokens"

// AnthropicOK answers "hello from <name>", streamed when the request asks;
// a count_tokens request gets AnthropicCountTokens(10).
func AnthropicOK() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		if c.Endpoint == EndpointCountTokens {
			AnthropicCountTokens(10)(w, c)
			return
		}
		if c.Stream {
			AnthropicStream(AnthropicStreamOptions{})(w, c)
			return
		}
		AnthropicMessage("hello from "+c.Name)(w, c)
	}
}

// AnthropicCountTokens answers a token count, {"input_tokens": n}.
func AnthropicCountTokens(n int) Behavior {
	return func(w http.ResponseWriter, _ *Call) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"input_tokens":%d}`, n)
	}
}

// AnthropicMessage answers a message with one text block, stop_reason
// end_turn.
func AnthropicMessage(text string) Behavior {
	return anthropicMessage("", text, nil, "end_turn")
}

// AnthropicThinking answers a message with a thinking block and a text
// block.
func AnthropicThinking(thinking, text string) Behavior {
	return anthropicMessage(thinking, text, nil, "end_turn")
}

// AnthropicToolUse answers a message with an optional text block and the
// tool_use blocks, stop_reason tool_use; streamed when the request asks.
func AnthropicToolUse(text string, tools ...AnthropicTool) Behavior {
	plain := anthropicMessage("", text, tools, "tool_use")
	return func(w http.ResponseWriter, c *Call) {
		if c.Stream {
			var chunks []string
			if text != "" {
				chunks = []string{text}
			}
			AnthropicStream(AnthropicStreamOptions{Chunks: chunks, NoText: text == "", Tools: tools, StopReason: "tool_use"})(w, c)
			return
		}
		plain(w, c)
	}
}

func anthropicMessage(thinking, text string, tools []AnthropicTool, stop string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var content []any
		if thinking != "" {
			content = append(content, map[string]string{"type": "thinking", "thinking": thinking, "signature": "EqQBCgIYAhIMfakesignature"})
		}
		if text != "" {
			content = append(content, map[string]string{"type": "text", "text": text})
		}
		for _, t := range tools {
			content = append(content, map[string]any{"type": "tool_use", "id": t.ID, "name": t.Name, "input": json.RawMessage(t.Input)})
		}
		if content == nil {
			content = []any{}
		}
		b, _ := json.Marshal(map[string]any{
			"id": "msg_fake" + strconv.Itoa(c.Hit), "type": "message", "role": "assistant", "model": c.Model,
			"content": content, "stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 9},
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// AnthropicError answers status with Anthropic's error envelope
// {"type":"error","error":{"type":typ,"message":msg}} and header pairs.
func AnthropicError(status int, typ, msg string, header ...string) Behavior {
	return func(w http.ResponseWriter, _ *Call) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		anthropicError(w, status, typ, msg)
	}
}

// AnthropicRateLimited answers 429 rate_limit_error, with retry-after when
// retryAfter is not empty.
func AnthropicRateLimited(retryAfter string) Behavior {
	const msg = "Number of request tokens has exceeded your per-minute rate limit"
	if retryAfter == "" {
		return AnthropicError(http.StatusTooManyRequests, "rate_limit_error", msg)
	}
	return AnthropicError(http.StatusTooManyRequests, "rate_limit_error", msg, "Retry-After", retryAfter)
}

// AnthropicOverloaded answers 529 overloaded_error.
func AnthropicOverloaded() Behavior {
	return AnthropicError(529, "overloaded_error", "Overloaded")
}

// AnthropicAuthError answers 401 authentication_error.
func AnthropicAuthError() Behavior {
	return AnthropicError(http.StatusUnauthorized, "authentication_error", "invalid x-api-key")
}

// AnthropicPermissionError answers 403 permission_error.
func AnthropicPermissionError() Behavior {
	return AnthropicError(http.StatusForbidden, "permission_error", "Your API key does not have permission to use the specified resource.")
}

// AnthropicNotFound answers 404 not_found_error naming the model.
func AnthropicNotFound() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		anthropicError(w, http.StatusNotFound, "not_found_error", "model: "+c.Model)
	}
}

// AnthropicPromptTooLong answers the context-window 400.
func AnthropicPromptTooLong() Behavior {
	return AnthropicError(http.StatusBadRequest, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum")
}

// AnthropicServerError answers 500 api_error with a message naming an
// internal host (the proxy must not echo it).
func AnthropicServerError() Behavior {
	return AnthropicError(http.StatusInternalServerError, "api_error", "Internal server error at 10.1.2.3:8443")
}

// AnthropicStreamOptions shape a streamed Messages answer.
type AnthropicStreamOptions struct {
	// Chunks are the text_delta pieces (default "hello", " from", " <name>").
	Chunks []string
	// NoText leaves out the text block.
	NoText bool
	// Thinking, when set, comes first as a thinking block (two
	// thinking_delta events and a signature_delta).
	Thinking string
	// Tools follow the text block as tool_use blocks.
	Tools []AnthropicTool
	// StopReason is message_delta's stop_reason (default end_turn, or
	// tool_use when Tools are set).
	StopReason string
	// Ping sends a ping event after message_start and between blocks.
	Ping bool
	// FirstDelay is waited after the headers, before message_start.
	FirstDelay time.Duration
	// Gap is waited between text deltas.
	Gap time.Duration
	// CutAfter > 0 aborts the connection after that many text deltas.
	CutAfter int
	// StallAfter > 0 goes silent after that many text deltas.
	StallAfter int
	// WaitAfter > 0 waits, after that many text deltas, until Wait is
	// closed.
	WaitAfter int
	Wait      <-chan struct{}
	// ErrorAt > 0 sends an in-band error event (ErrorType, default
	// overloaded_error) before text delta n and ends the stream, as the
	// API does.
	ErrorAt   int
	ErrorType string
	// ErrorMessage is the error event's message (default "Overloaded").
	ErrorMessage string
	// NoStop leaves out message_delta and message_stop.
	NoStop bool
	// StallBeforeContent goes silent after message_start (and its ping,
	// when Ping is set), before any content block.
	StallBeforeContent bool
	// PingEvery > 0 sends a ping event at that interval while the stream
	// is stalled (StallBeforeContent or StallAfter), as the API keeps a
	// slow stream alive.
	PingEvery time.Duration
	// CutBeforeContent aborts the connection after message_start and the
	// text block's content_block_start, before any delta.
	CutBeforeContent bool
	// MalformedAt > 0 sends, in place of text delta n, a
	// content_block_delta event whose data is not JSON.
	MalformedAt int
}

// AnthropicStream answers a text/event-stream in the order the API
// documents: message_start, then per content block content_block_start,
// content_block_delta events and content_block_stop, then message_delta
// and message_stop.
func AnthropicStream(o AnthropicStreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		chunks := o.Chunks
		if chunks == nil {
			chunks = []string{"hello", " from", " " + c.Name}
		}
		stop := o.StopReason
		if stop == "" {
			stop = "end_turn"
			if len(o.Tools) > 0 {
				stop = "tool_use"
			}
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		send := func(name string, data any) {
			b, _ := json.Marshal(data)
			_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
			if fl != nil {
				fl.Flush()
			}
		}
		if fl != nil {
			fl.Flush()
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
		ping := func() {
			if o.Ping {
				send("ping", map[string]string{"type": "ping"})
			}
		}
		// stall keeps the stream open and silent (but for PingEvery pings)
		// until the client or the server goes away.
		stall := func() {
			var tick <-chan time.Time
			if o.PingEvery > 0 {
				tk := time.NewTicker(o.PingEvery)
				defer tk.Stop()
				tick = tk.C
			}
			for {
				select {
				case <-tick:
					send("ping", map[string]string{"type": "ping"})
				case <-c.R.Context().Done():
					return
				case <-c.Done:
					return
				}
			}
		}
		if !wait(o.FirstDelay) {
			return
		}
		send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
			"id": "msg_fake" + strconv.Itoa(c.Hit), "type": "message", "role": "assistant", "content": []any{},
			"model": c.Model, "stop_reason": nil, "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1},
		}})
		ping()
		if o.StallBeforeContent {
			stall()
			return
		}
		index := 0
		blockStart := func(block map[string]any) {
			send("content_block_start", map[string]any{"type": "content_block_start", "index": index, "content_block": block})
		}
		delta := func(d map[string]any) {
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": index, "delta": d})
		}
		blockStop := func() {
			send("content_block_stop", map[string]any{"type": "content_block_stop", "index": index})
			index++
			ping()
		}
		if o.Thinking != "" {
			blockStart(map[string]any{"type": "thinking", "thinking": "", "signature": ""})
			half := len(o.Thinking) / 2
			delta(map[string]any{"type": "thinking_delta", "thinking": o.Thinking[:half]})
			delta(map[string]any{"type": "thinking_delta", "thinking": o.Thinking[half:]})
			delta(map[string]any{"type": "signature_delta", "signature": "EqQBCgIYAhIMfakesignature"})
			blockStop()
		}
		if !o.NoText {
			blockStart(map[string]any{"type": "text", "text": ""})
			if o.CutBeforeContent {
				panic(http.ErrAbortHandler)
			}
			for i, piece := range chunks {
				n := i + 1
				if o.ErrorAt == n {
					typ := o.ErrorType
					if typ == "" {
						typ = "overloaded_error"
					}
					msg := o.ErrorMessage
					if msg == "" {
						msg = "Overloaded"
					}
					send("error", map[string]any{"type": "error", "error": map[string]string{"type": typ, "message": msg}})
					return
				}
				if i > 0 && !wait(o.Gap) {
					return
				}
				if o.MalformedAt == n {
					_, _ = fmt.Fprintf(w, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"text_delta\",\"text\":\n\n", index)
					if fl != nil {
						fl.Flush()
					}
				} else {
					delta(map[string]any{"type": "text_delta", "text": piece})
				}
				if o.CutAfter == n {
					panic(http.ErrAbortHandler)
				}
				if o.StallAfter == n {
					stall()
					return
				}
				if o.WaitAfter == n && !waitFor(c, o.Wait) {
					return
				}
			}
			blockStop()
		}
		for _, t := range o.Tools {
			blockStart(map[string]any{"type": "tool_use", "id": t.ID, "name": t.Name, "input": map[string]any{}})
			frags := t.Fragments
			if frags == nil {
				frags = []string{t.Input}
			}
			delta(map[string]any{"type": "input_json_delta", "partial_json": ""})
			for _, f := range frags {
				delta(map[string]any{"type": "input_json_delta", "partial_json": f})
			}
			blockStop()
		}
		if o.NoStop {
			return
		}
		send("message_delta", map[string]any{"type": "message_delta",
			"delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]int{"output_tokens": 9}})
		send("message_stop", map[string]string{"type": "message_stop"})
	}
}
