package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

const callerKey = "sk-caller-test"

// fakeClock drives cooldown expiry without waiting.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a proxy on a loopback server over an in-memory source.
type env struct {
	t     testing.TB
	src   *proxytest.Source
	table *routing.Table
	reg   *health.Registry
	clock *fakeClock
	srv   *proxy.Server
	front *httptest.Server
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type envOption func(*proxy.Options)

func newEnv(t testing.TB, ds storage.Dataset, opts ...envOption) *env {
	t.Helper()
	return newEnvRouting(t, ds, nil, opts...)
}

// newEnvRouting is newEnv with options for the routing table, such as
// routing.WithAzureTokens.
func newEnvRouting(t testing.TB, ds storage.Dataset, ropts []routing.Option, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, src: proxytest.NewSource(ds), clock: newFakeClock(), logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.table = routing.NewTable(e.src, logger, ropts...)
	if err := e.table.Reload(context.Background()); err != nil {
		t.Fatalf("load dataset: %v", err)
	}
	e.reg = health.NewRegistry(health.WithClock(e.clock.Now))
	o := proxy.Options{
		Table: e.table, Health: e.reg, Logger: logger, Version: "0.1.0",
		ConnectTimeout: 2 * time.Second, Now: e.clock.Now,
	}
	for _, fn := range opts {
		fn(&o)
	}
	e.srv = proxy.New(o)
	e.front = httptest.NewServer(e.srv)
	t.Cleanup(e.front.Close)
	return e
}

// update changes the dataset and reloads the table.
func (e *env) update(fn func(ds *storage.Dataset)) {
	e.t.Helper()
	e.src.Update(fn)
	if err := e.table.Reload(context.Background()); err != nil {
		e.t.Fatalf("reload: %v", err)
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
	took   time.Duration
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("response body is not JSON: %v\n%s", err, r.body)
	}
	return m
}

func (r response) errType(t testing.TB) string {
	t.Helper()
	m := r.json(t)
	e, _ := m["error"].(map[string]any)
	s, _ := e["type"].(string)
	return s
}

var client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}

// do sends a request to the proxy.
func (e *env) do(method, path, key, body string, header ...string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.front.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatalf("read response: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b, took: time.Since(start)}
}

// chat sends a chat-completions request for model.
func (e *env) chat(model string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody(model, false))
}

func chatBody(model string, stream bool) string {
	s := ""
	if stream {
		s = `,"stream":true`
	}
	return `{"model":"` + model + `","messages":[{"role":"user","content":"Say hello."}]` + s + `}`
}

// sseEvent is a parsed SSE frame as the caller sees it.
type sseEvent struct {
	name string
	data string
}

// streamResult is a whole streamed answer.
type streamResult struct {
	status   int
	header   http.Header
	events   []sseEvent
	comments int
	raw      string
	took     time.Duration
}

func (s streamResult) done() bool {
	return len(s.events) > 0 && s.events[len(s.events)-1].data == "[DONE]"
}

func (s streamResult) content(t testing.TB) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range s.events {
		if ev.name != "" || ev.data == "[DONE]" {
			continue
		}
		var ch struct {
			Model   string `json:"model"`
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev.data), &ch); err != nil {
			t.Fatalf("stream event is not JSON: %v: %q", err, ev.data)
		}
		for _, c := range ch.Choices {
			b.WriteString(c.Delta.Content)
		}
	}
	return b.String()
}

func (s streamResult) errorEvent() (sseEvent, bool) {
	for _, ev := range s.events {
		if ev.name == "error" {
			return ev, true
		}
	}
	return sseEvent{}, false
}

// stream sends a streaming request and reads the whole answer.
func (e *env) stream(model string) streamResult {
	e.t.Helper()
	return e.streamBody(chatBody(model, true))
}

// streamBody sends a streaming chat-completions request with body and
// reads the whole answer.
func (e *env) streamBody(body string) streamResult {
	e.t.Helper()
	return e.streamAt("/v1/chat/completions", body)
}

// streamAt sends a streaming request with body to path and reads the
// whole answer.
func (e *env) streamAt(path, body string) streamResult {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.front.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+callerKey)
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("stream request: %v", err)
	}
	defer resp.Body.Close()
	res := streamResult{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	res.raw = string(raw)
	res.took = time.Since(start)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return res
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	var cur sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				cur.data = strings.Join(data, "\n")
				res.events = append(res.events, cur)
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			res.comments++
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	return res
}

// Dataset builders.

func providerKey(id, base string) storage.ProviderKey {
	pk := storage.ProviderKey{ID: id, DisplayName: id, Provider: "openai", Adapter: "openai", Secret: "sk-upstream-" + id, APIBase: base}
	pk.SecretHost = pk.BaseHost() // as the store does when the secret is written
	return pk
}

func directModel(name, pkID string, mods ...func(*storage.Model)) storage.Model {
	m := storage.Model{ID: "id-" + name, DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pkID}
	for _, fn := range mods {
		fn(&m)
	}
	return m
}

func routingModel(name string, r storage.Routing) storage.Model {
	return storage.Model{ID: "id-" + name, DisplayName: name, Routing: &r}
}

func targets(names ...string) []storage.Target {
	out := make([]storage.Target, len(names))
	for i, n := range names {
		out[i] = storage.Target{Model: n}
	}
	return out
}

func callerAPIKey(id, raw string, allowed ...string) storage.APIKey {
	return storage.APIKey{ID: id, KeyHash: proxytest.KeyHash(raw), AllowedModels: allowed}
}

func ptr[T any](v T) *T { return &v }

func withTimeout(ms int64) func(*storage.Model) {
	return func(m *storage.Model) { m.Timeout = ptr(ms) }
}

func withStreamTimeout(ms int64) func(*storage.Model) {
	return func(m *storage.Model) { m.StreamTimeout = ptr(ms) }
}

func withRetries(n int) func(*storage.Model) {
	return func(m *storage.Model) { m.Retries = ptr(n) }
}

// pair is the tutorial's shape: chat-prod over gpt-4o-primary and
// gpt-4o-secondary, each on its own upstream.
func pair(primary, secondary *proxytest.Upstream, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	r.Targets = targets("gpt-4o-primary", "gpt-4o-secondary")
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-primary", primary.BaseURL()), providerKey("pk-secondary", secondary.BaseURL())},
		Models: []storage.Model{
			directModel("gpt-4o-primary", "pk-primary", mods...),
			directModel("gpt-4o-secondary", "pk-secondary", mods...),
			routingModel("chat-prod", r),
		},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

func upstream(t testing.TB, name string, script ...proxytest.Behavior) *proxytest.Upstream {
	t.Helper()
	u := proxytest.New(name, script...)
	t.Cleanup(u.Close)
	return u
}

func wantHits(t testing.TB, u *proxytest.Upstream, n int) {
	t.Helper()
	if got := u.Hits(); got != n {
		t.Errorf("upstream %s got %d requests, want %d", u.Name, got, n)
	}
}

func wantHeader(t testing.TB, h http.Header, key, want string) {
	t.Helper()
	if got := h.Get(key); got != want {
		t.Errorf("header %s = %q, want %q", key, got, want)
	}
}

func wantUnder(t testing.TB, took, limit time.Duration) {
	t.Helper()
	if took > limit {
		t.Errorf("took %v, want under %v", took, limit)
	}
}

func events(reg *health.Registry, kind string) []health.Event {
	all, _ := reg.Events(0)
	var out []health.Event
	for _, ev := range all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}
