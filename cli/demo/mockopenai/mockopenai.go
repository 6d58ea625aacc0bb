// Package mockopenai is the mock OpenAI upstream that `aisix demo` runs
// twice on loopback: it answers POST /v1/chat/completions the way OpenAI
// does (a chat.completion with usage, or a stream of chat.completion.chunk
// events ending in data: [DONE]), at a human pace, and can be broken on
// purpose: refuse connections, hang, answer 500 or 429 with OpenAI's error
// envelope.
//
// It is written to be read, not to be fast: e2e/mockup is the benchmark
// mock.
package mockopenai

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how the upstream answers.
type Mode int32

// Modes.
const (
	// Healthy answers every request.
	Healthy Mode = iota
	// Refuse closes the port: new connections are refused and open ones
	// are cut, as when the upstream's process is gone.
	Refuse
	// Hang reads requests and never answers them.
	Hang
	// ServerError answers 500 with OpenAI's server_error envelope.
	ServerError
	// RateLimited answers 429 with OpenAI's rate-limit envelope.
	RateLimited
)

// String says what an upstream in the mode does, to finish "primary now …".
func (m Mode) String() string {
	switch m {
	case Healthy:
		return "answers normally"
	case Refuse:
		return "refuses connections"
	case Hang:
		return "hangs (accepts, never answers)"
	case ServerError:
		return "answers 500"
	case RateLimited:
		return "answers 429"
	}
	return fmt.Sprintf("mode %d", int32(m))
}

// Pace is how fast a healthy upstream answers: a wait for the first token
// drawn from [FirstToken, FirstTokenMax], then one for every further chunk
// from [Chunk, ChunkMax]. The zero Pace answers at once.
type Pace struct {
	FirstToken, FirstTokenMax time.Duration
	Chunk, ChunkMax           time.Duration
}

// HumanPace is the pace of a small hosted model on a good day.
var HumanPace = Pace{FirstToken: 150 * time.Millisecond, FirstTokenMax: 400 * time.Millisecond, Chunk: 20 * time.Millisecond, ChunkMax: 40 * time.Millisecond}

// Options configure an upstream.
type Options struct {
	// Name goes into its answers ("Hello from primary!"), so a caller can
	// tell which upstream answered.
	Name string
	Pace Pace

	// onRequest, when set, is called as each chat request arrives (tests).
	onRequest func()
}

// Server is one mock upstream on a loopback port. Its methods are safe
// for concurrent use.
type Server struct {
	opts     Options
	addr     string
	srv      *http.Server
	closing  chan struct{}
	requests atomic.Int64
	mode     atomic.Int32

	mu     sync.Mutex // guards ln, conns, closed and mode changes
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

// Start starts an upstream on a free loopback port, healthy.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for mock upstream: %w", err)
	}
	s := &Server{opts: opts, addr: ln.Addr().String(), closing: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnState:         s.track,
		// Nothing may write to the terminal the dashboard draws on.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	s.ln = ln
	go s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	// It returns when ln is closed: by Refuse, or by Close.
	_ = s.srv.Serve(ln)
}

// track keeps the open connections, so Refuse can cut them.
func (s *Server) track(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch st {
	case http.StateNew:
		s.conns[c] = struct{}{}
	case http.StateClosed, http.StateHijacked:
		delete(s.conns, c)
	}
}

// BaseURL is the api_base of the upstream: http://127.0.0.1:PORT/v1.
func (s *Server) BaseURL() string { return "http://" + s.addr + "/v1" }

// Addr is the upstream's host:port; it stays the same across modes.
func (s *Server) Addr() string { return s.addr }

// Requests is how many chat requests reached the upstream.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Mode is the current mode.
func (s *Server) Mode() Mode { return Mode(s.mode.Load()) }

// SetMode switches the upstream to m. Entering Refuse closes the port and
// cuts the open connections; leaving it listens on the same port again,
// which fails only if another process took the port meanwhile.
func (s *Server) SetMode(m Mode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("mock upstream closed")
	}
	was := Mode(s.mode.Load())
	switch {
	case m == Refuse && was != Refuse:
		_ = s.ln.Close()
		s.ln = nil
		for c := range s.conns {
			_ = c.Close()
		}
	case m != Refuse && was == Refuse:
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			return fmt.Errorf("listen again on %s: %w", s.addr, err)
		}
		s.ln = ln
		go s.serve(ln)
	}
	s.mode.Store(int32(m))
	return nil
}

// Close stops the upstream and ends the requests it holds.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	return s.srv.Close()
}

// chatRequest is what the mock reads of a chat-completions request.
type chatRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Stream        bool `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// ServeHTTP answers one request as OpenAI would in the current mode.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Request-Id", "req_"+randomHex(16))
	w.Header().Set("Openai-Version", "2020-10-01")
	if r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
		return
	}
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "Invalid method for URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", "")
		return
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		writeError(w, http.StatusUnauthorized, "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", "invalid_request_error", "")
		return
	}
	n := s.requests.Add(1)
	if s.opts.onRequest != nil {
		s.opts.onRequest()
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		return // the caller went away
	}
	var req chatRequest
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" || len(req.Messages) == 0 {
		writeError(w, http.StatusBadRequest, "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)", "invalid_request_error", "")
		return
	}
	switch s.Mode() {
	case Hang:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		panic(http.ErrAbortHandler)
	case ServerError:
		writeError(w, http.StatusInternalServerError, "The server had an error while processing your request. Sorry about that!", "server_error", "")
		return
	case RateLimited:
		h := w.Header()
		h.Set("X-Ratelimit-Limit-Requests", "500")
		h.Set("X-Ratelimit-Remaining-Requests", "0")
		h.Set("X-Ratelimit-Reset-Requests", "120ms")
		writeError(w, http.StatusTooManyRequests, "Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 500, Used 500, Requested 1. Please try again in 120ms. Visit https://platform.openai.com/account/rate-limits to learn more.", "requests", "rate_limit_exceeded")
		return
	}
	a := s.newAnswer(n, &req)
	if req.Stream {
		s.stream(w, r, a, req.StreamOptions != nil && req.StreamOptions.IncludeUsage)
		return
	}
	// A plain answer comes when the whole text is generated.
	s.wait(r.Context(), s.opts.Pace.FirstToken, s.opts.Pace.FirstTokenMax)
	for range a.tokens[1:] {
		s.wait(r.Context(), s.opts.Pace.Chunk, s.opts.Pace.ChunkMax)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(a.completion())
}

// stream writes a as server-sent events, flushing each.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, a *answer, withUsage bool) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if rc.Flush() != nil {
		return
	}
	send := func(v any) bool {
		b, err := json.Marshal(v)
		if err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	s.wait(r.Context(), s.opts.Pace.FirstToken, s.opts.Pace.FirstTokenMax)
	// OpenAI's order: the role (with empty content), the content, an
	// empty delta with the finish reason, the usage when asked for.
	if !send(a.chunk(roleDelta{Role: "assistant"}, nil)) {
		return
	}
	for i, tok := range a.tokens {
		if i > 0 {
			s.wait(r.Context(), s.opts.Pace.Chunk, s.opts.Pace.ChunkMax)
		}
		if !send(a.chunk(contentDelta{Content: tok}, nil)) {
			return
		}
	}
	stop := "stop"
	if !send(a.chunk(struct{}{}, &stop)) {
		return
	}
	if withUsage && !send(a.usageChunk()) {
		return
	}
	if _, err := io.WriteString(w, "data: [DONE]\n\n"); err == nil {
		_ = rc.Flush()
	}
}

// wait waits a random time in [lo, hi]. When the request or the upstream
// ends first it aborts the handler: the connection is cut, no partial
// answer goes out as if it were whole.
func (s *Server) wait(ctx context.Context, lo, hi time.Duration) {
	d := lo
	if hi > lo {
		d += rand.N(hi - lo)
	}
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-t.C:
		return
	case <-ctx.Done():
	case <-s.closing:
	}
	panic(http.ErrAbortHandler)
}

// writeError writes OpenAI's error envelope; code "" is null, as OpenAI
// sends it for most errors.
func writeError(w http.ResponseWriter, status int, msg, typ, code string) {
	var c any
	if code != "" {
		c = code
	}
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": c}})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}
