package admin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

const (
	testAdminKey   = "admin-test-key-0f1e2d3c4b5a"
	secondAdminKey = "second-admin-key-99887766"
)

// lockedBuffer is an io.Writer safe for the concurrent slog calls of a
// server under test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is one admin server on loopback over a real SQLite file, with its
// logs and every response it sent captured.
type env struct {
	url     string
	srv     *Server
	store   storage.Store
	logs    *lockedBuffer
	changes atomic.Int64
	hc      *http.Client

	mu   sync.Mutex
	seen bytes.Buffer // every response's headers and body
}

func openStore(t testing.TB) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

func newEnv(t testing.TB, opts ...func(*Config)) *env {
	t.Helper()
	e := &env{logs: &lockedBuffer{}}
	cfg := Config{
		Keys:     []string{testAdminKey, secondAdminKey},
		Logger:   slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnChange: func() { e.changes.Add(1) },
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Store == nil {
		cfg.Store = openStore(t)
	}
	e.store = cfg.Store
	e.srv = New(cfg)
	ts := httptest.NewServer(e.srv)
	t.Cleanup(ts.Close)
	e.url = ts.URL
	e.hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(e.hc.CloseIdleConnections)
	return e
}

// reply is a response read in full.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %d response %q: %v", r.status, r.body, err)
	}
}

func (r reply) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.decode(t, &m)
	return m
}

// id is what `jq -r .id` prints.
func (r reply) id(t testing.TB) string {
	t.Helper()
	id, _ := r.object(t)["id"].(string)
	if id == "" {
		t.Fatalf("response has no id: %d %s", r.status, r.body)
	}
	return id
}

// send sends a raw request and records the response.
func (e *env) send(t testing.TB, req *http.Request) reply {
	t.Helper()
	resp, err := e.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read response of %s %s: %v", req.Method, req.URL.Path, err)
	}
	e.mu.Lock()
	_ = resp.Header.Write(&e.seen)
	e.seen.Write(body)
	e.mu.Unlock()
	return reply{status: resp.StatusCode, header: resp.Header, body: body}
}

// request builds a request; headers are "Name: value" strings. A body gets
// Content-Type application/json unless a header sets one.
func (e *env) request(t testing.TB, method, path, body string, headers ...string) *http.Request {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			t.Fatalf("bad header %q", h)
		}
		if strings.TrimSpace(value) == "<none>" {
			req.Header.Del(name)
			continue
		}
		req.Header.Set(name, strings.TrimSpace(value))
	}
	return req
}

// raw sends a request with exactly the given headers (no admin key).
func (e *env) raw(t testing.TB, method, path, body string, headers ...string) reply {
	t.Helper()
	return e.send(t, e.request(t, method, path, body, headers...))
}

// admin sends a request authenticated with the admin key.
func (e *env) admin(t testing.TB, method, path, body string, headers ...string) reply {
	t.Helper()
	return e.raw(t, method, path, body, append([]string{"Authorization: Bearer " + testAdminKey}, headers...)...)
}

// mustAdmin is admin that fails the test unless the status is want.
func (e *env) mustAdmin(t testing.TB, want int, method, path, body string, headers ...string) reply {
	t.Helper()
	r := e.admin(t, method, path, body, headers...)
	if r.status != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, r.status, want, r.body)
	}
	return r
}

func (e *env) seenText() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen.String()
}

// Request bodies, in the tutorial's shapes.

func pkBody(name, secret, apiBase string) string {
	return fmt.Sprintf(`{
"display_name": %q,
"provider": "openai",
"adapter": "openai",
"secret": %q,
"api_base": %q
}`, name, secret, apiBase)
}

func directBody(name, pkID string) string {
	return fmt.Sprintf(`{
"display_name": %q,
"provider": "openai",
"model_name": "gpt-4o-mini",
"provider_key_id": %q
}`, name, pkID)
}

func routingBody(name string, targets ...string) string {
	var ts []string
	for _, t := range targets {
		ts = append(ts, fmt.Sprintf(`{"model": %q}`, t))
	}
	return fmt.Sprintf(`{
"display_name": %q,
"routing": {
"strategy": "failover",
"targets": [%s],
"retries": 1,
"max_fallbacks": 1
}
}`, name, strings.Join(ts, ", "))
}

func hashKey(plaintext string) string {
	sum := sha256.Sum256([]byte(plaintext))
	return hex.EncodeToString(sum[:])
}

func apiKeyBodyJSON(hash string, models ...string) string {
	b, _ := json.Marshal(map[string]any{"key_hash": hash, "allowed_models": models})
	return string(b)
}

// fixture creates a provider key, a direct model on it and a routing model
// targeting the direct model, and returns their ids.
type fixture struct{ pk, direct, routing string }

func (e *env) fixture(t testing.TB, prefix string) fixture {
	t.Helper()
	var f fixture
	f.pk = e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody(prefix+"-pk", "sk-fixture-secret-000000000000", "https://api.example.com/v1")).id(t)
	f.direct = e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody(prefix+"-direct", f.pk)).id(t)
	f.routing = e.mustAdmin(t, 201, "POST", "/admin/v1/models", routingBody(prefix+"-routing", prefix+"-direct")).id(t)
	return f
}

func TestLogValuesRedact(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	secret := "sk-logvalue-secret-0000000000"
	log.Info("x", "in", providerKeyInput{DisplayName: "pk", Secret: &secret, APIKey: &secret}, "rotated", rotated{Plaintext: secret})
	if strings.Contains(buf.String(), secret) || !strings.Contains(buf.String(), `"display_name":"pk"`) {
		t.Errorf("log line %s", buf.String())
	}
}
