// Package mockup is a small, fast OpenAI-compatible upstream for the README
// walkthrough, the end-to-end tests and the benchmark rig. It answers
// POST /v1/chat/completions with a fixed chat.completion (about 500 bytes,
// with usage), or with an SSE stream of N chunks and [DONE] when the request
// asks for stream: true. It counts requests and can fail a share of them.
//
// The hot path is written for speed, so that the mock costs as little CPU as
// possible in benchmarks: request bodies are read into pooled buffers, the
// stream flag is found by a byte scan instead of a JSON decode, and response
// headers are set from preallocated values.
package mockup

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Options tune the mock.
type Options struct {
	// Chunks is the number of content chunks in a stream (default 20).
	Chunks int
	// Delay is added before the response headers.
	Delay time.Duration
	// ChunkDelay is added between streamed chunks.
	ChunkDelay time.Duration
	// FailShare is the share of requests (0..1) answered with 500.
	FailShare float64
}

// Handler is the mock upstream.
type Handler struct {
	opts     Options
	requests atomic.Int64
	body     []byte
	bodyLen  []string
	chunks   [][]byte
}

// New returns a mock upstream handler.
func New(opts Options) *Handler {
	if opts.Chunks <= 0 {
		opts.Chunks = 20
	}
	h := &Handler{opts: opts}
	h.body = []byte(`{"id":"chatcmpl-mock0001","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_mock00001"}`)
	h.bodyLen = []string{strconv.Itoa(len(h.body))}
	for i := 0; i < opts.Chunks; i++ {
		h.chunks = append(h.chunks, []byte(fmt.Sprintf(
			"data: {\"id\":\"chatcmpl-mock0001\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)))
	}
	h.chunks = append(h.chunks,
		[]byte("data: {\"id\":\"chatcmpl-mock0001\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"),
		[]byte("data: [DONE]\n\n"))
	return h
}

// Requests returns how many chat requests the mock has received.
func (h *Handler) Requests() int64 { return h.requests.Load() }

// Preallocated header values: assigning them skips canonicalisation and
// allocation on every response.
var (
	hdrJSON     = []string{"application/json"}
	hdrSSE      = []string{"text/event-stream"}
	hdrNoCache  = []string{"no-cache"}
	failureBody = []byte(`{"error":{"message":"mock failure","type":"server_error"}}`)
)

// bufPool holds request body buffers.
var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	h.requests.Add(1)
	buf := bufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer bufPool.Put(buf)
	if _, err := buf.ReadFrom(r.Body); err != nil {
		return
	}
	if h.opts.Delay > 0 {
		time.Sleep(h.opts.Delay)
	}
	hdr := w.Header()
	if h.opts.FailShare > 0 && rand.Float64() < h.opts.FailShare {
		hdr["Content-Type"] = hdrJSON
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write(failureBody)
		return
	}
	if wantsStream(buf.Bytes()) {
		h.stream(w)
		return
	}
	hdr["Content-Type"] = hdrJSON
	hdr["Content-Length"] = h.bodyLen
	_, _ = w.Write(h.body)
}

var streamKey = []byte(`"stream"`)

// wantsStream reports whether a JSON request body sets "stream" to true,
// allowing whitespace around the colon. It scans bytes rather than decoding,
// like the original check (which removed spaces and looked for
// "stream":true), and also accepts tabs and newlines.
func wantsStream(body []byte) bool {
	for len(body) > 0 {
		i := bytes.Index(body, streamKey)
		if i < 0 {
			return false
		}
		rest := skipSpace(body[i+len(streamKey):])
		if len(rest) > 0 && rest[0] == ':' {
			if bytes.HasPrefix(skipSpace(rest[1:]), []byte("true")) {
				return true
			}
		}
		body = body[i+len(streamKey):]
	}
	return false
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

func (h *Handler) stream(w http.ResponseWriter) {
	hdr := w.Header()
	hdr["Content-Type"] = hdrSSE
	hdr["Cache-Control"] = hdrNoCache
	fl, _ := w.(http.Flusher)
	for _, c := range h.chunks {
		if h.opts.ChunkDelay > 0 {
			time.Sleep(h.opts.ChunkDelay)
		}
		if _, err := w.Write(c); err != nil {
			return
		}
		if fl != nil {
			fl.Flush()
		}
	}
}
