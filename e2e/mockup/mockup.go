// Package mockup is a small, fast OpenAI-compatible upstream for the README
// walkthrough, the end-to-end tests and the benchmark rig. It answers
// POST /v1/chat/completions with a fixed chat.completion (about 500 bytes,
// with usage), or with an SSE stream of N chunks and [DONE] when the request
// asks for stream: true. It counts requests and can fail a share of them.
package mockup

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
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

var streamTrue = []byte(`"stream":true`)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/chat/completions" || r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	h.requests.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if h.opts.Delay > 0 {
		time.Sleep(h.opts.Delay)
	}
	if h.opts.FailShare > 0 && rand.Float64() < h.opts.FailShare {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"error":{"message":"mock failure","type":"server_error"}}`))
		return
	}
	if bytes.Contains(bytes.ReplaceAll(body, []byte(" "), nil), streamTrue) {
		h.stream(w)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(h.body)))
	w.Write(h.body)
}

func (h *Handler) stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
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
