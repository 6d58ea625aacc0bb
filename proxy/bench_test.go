package proxy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// fastUpstream answers like the benchmark rig's mock: a fixed ~500-byte
// chat.completion, or a 20-chunk stream, with no per-request work.
func fastUpstream(b *testing.B) *httptest.Server {
	body := []byte(`{"id":"chatcmpl-mock0001","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18",` +
		`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
		`"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
		`"service_tier":"default","system_fingerprint":"fp_mock00001"}`)
	var chunks [][]byte
	for i := 0; i < 20; i++ {
		chunks = append(chunks, []byte(fmt.Sprintf("data: {\"id\":\"chatcmpl-mock0001\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)))
	}
	chunks = append(chunks, []byte("data: {\"id\":\"chatcmpl-mock0001\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"),
		[]byte("data: [DONE]\n\n"))
	clen := []string{fmt.Sprint(len(body))}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, _ := io.ReadAll(r.Body)
		h := w.Header()
		if bytes.Contains(req, []byte(`"stream":true`)) {
			h["Content-Type"] = []string{"text/event-stream"}
			fl := w.(http.Flusher)
			for _, c := range chunks {
				_, _ = w.Write(c)
				fl.Flush()
			}
			return
		}
		h["Content-Type"] = []string{"application/json"}
		h["Content-Length"] = clen
		_, _ = w.Write(body)
	}))
	b.Cleanup(srv.Close)
	return srv
}

// discard is a minimal http.ResponseWriter, so the benchmark measures the
// proxy and its upstream round trip, not a recorder.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.status = code }
func (d *discard) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }
func (d *discard) Flush()                      {}

func benchServer(b *testing.B, opts ...func(*proxy.Options)) *proxy.Server {
	return benchServerDS(b, nil, opts...)
}

// benchServerDS is benchServer with mod applied to its dataset.
func benchServerDS(b *testing.B, mod func(*storage.Dataset), opts ...func(*proxy.Options)) *proxy.Server {
	up := fastUpstream(b)
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-a", up.URL+"/v1"), providerKey("pk-b", up.URL+"/v1")},
		Models: []storage.Model{
			directModel("gpt-4o-primary", "pk-a"), directModel("gpt-4o-secondary", "pk-b"),
			routingModel("chat-prod", storage.Routing{Targets: targets("gpt-4o-primary", "gpt-4o-secondary"), Retries: ptr(1), MaxFallbacks: ptr(1)}),
		},
		APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	}
	if mod != nil {
		mod(&ds)
	}
	tbl := routing.NewTable(proxytest.NewSource(ds), nil)
	if err := tbl.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	o := proxy.Options{Table: tbl, Health: health.NewRegistry(), Version: "bench"}
	for _, fn := range opts {
		fn(&o)
	}
	return proxy.New(o)
}

func benchChat(b *testing.B, stream bool) {
	benchPath(b, "/v1/chat/completions", chatBody("chat-prod", stream))
}

func benchPath(b *testing.B, path, reqBody string) { benchPathWith(b, path, reqBody) }

func benchPathWith(b *testing.B, path, reqBody string, opts ...func(*proxy.Options)) {
	benchDS(b, path, reqBody, nil, opts...)
}

// benchDS is benchPathWith on the bench dataset changed by mod.
func benchDS(b *testing.B, path, reqBody string, mod func(*storage.Dataset), opts ...func(*proxy.Options)) {
	s := benchServerDS(b, mod, opts...)
	body := []byte(reqBody)
	rd := bytes.NewReader(body)
	req := httptest.NewRequest(http.MethodPost, path, rd)
	req.Header.Set("Authorization", "Bearer "+callerKey)
	req.Header.Set("Content-Type", "application/json")
	w := &discard{h: make(http.Header, 8)}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		w.status, w.n = 0, 0
		s.ServeHTTP(w, req)
		if w.status != http.StatusOK || w.n == 0 {
			b.Fatalf("status %d, %d bytes", w.status, w.n)
		}
	}
}

// BenchmarkChatPlain: one non-streaming request through the handler to a
// fast loopback upstream (the upstream's own cost is included).
func BenchmarkChatPlain(b *testing.B) { benchChat(b, false) }

// BenchmarkChatStream: one 20-chunk streaming request through the handler.
func BenchmarkChatStream(b *testing.B) { benchChat(b, true) }

// BenchmarkMessagesTranslated: a Messages caller served by the same chat
// upstream, translated both ways (request, answer, 20-chunk stream), to
// compare with BenchmarkChatPlain and BenchmarkChatStream.
func BenchmarkMessagesTranslated(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			benchPath(b, "/v1/messages", fmt.Sprintf(`{"model":"chat-prod","max_tokens":256,"stream":%t,`+
				`"system":[{"type":"text","text":"You are terse.","cache_control":{"type":"ephemeral"}}],`+
				`"messages":[{"role":"user","content":[{"type":"text","text":"Say hello."}]}]}`, stream))
		})
	}
}

// BenchmarkChatHTTP: one request from a keep-alive HTTP/1.1 client through
// a loopback http.Server running the proxy to the fast upstream: the whole
// path, the caller's socket and net/http's response writer included (the
// client's and the upstream's costs too).
func BenchmarkChatHTTP(b *testing.B) {
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		b.Run(name, func(b *testing.B) {
			front := httptest.NewServer(benchServer(b))
			b.Cleanup(front.Close)
			tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true}
			b.Cleanup(tr.CloseIdleConnections)
			body := []byte(chatBody("chat-prod", stream))
			rd := bytes.NewReader(body)
			req, err := http.NewRequest(http.MethodPost, front.URL+"/v1/chat/completions", nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+callerKey)
			req.Header.Set("Content-Type", "application/json")
			req.ContentLength = int64(len(body))
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				req.Body = io.NopCloser(rd)
				resp, err := tr.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || n == 0 {
					b.Fatalf("status %d, %d bytes", resp.StatusCode, n)
				}
			}
		})
	}
}

// BenchmarkChatLimited is BenchmarkChatPlain with limits that never
// refuse: the caller key's rpm, tpm and concurrency, the alias's rpm, and
// the first target's provider_limit rpm and tpm, so each request takes two
// admissions and settles both, and gets its x-ratelimit-* headers.
func BenchmarkChatLimited(b *testing.B) {
	benchDS(b, "/v1/chat/completions", chatBody("chat-prod", false), func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{RPM: 1_000_000_000, TPM: 1_000_000_000_000, Concurrency: 1000}
		ds.Models[2].RateLimit = &storage.RateLimit{RPM: 1_000_000_000}
		ds.Models[0].ProviderLimit = &storage.RateLimit{RPM: 1_000_000_000, TPM: 1_000_000_000_000}
	})
}
