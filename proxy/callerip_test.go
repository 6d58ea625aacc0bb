package proxy_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/authguard"
	"github.com/aisix/aisix/proxy/metrics"
	"github.com/aisix/aisix/proxy/realip"
	"github.com/aisix/aisix/storage"
)

// accessLines starts a proxy whose access lines go to a JSON writer and
// returns the env and a function that waits for the next line.
func accessLines(t *testing.T, trusted []string, more ...envOption) (*env, func() map[string]any) {
	t.Helper()
	up := upstream(t, "primary")
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	ri, err := realip.Parse(trusted)
	if err != nil {
		t.Fatal(err)
	}
	gw := &gateWriter{gate: make(chan struct{}), wrote: make(chan struct{}, 64)}
	close(gw.gate)
	opts := append([]envOption{func(o *proxy.Options) {
		o.AccessLogger = slog.New(slog.NewJSONHandler(gw, nil))
		o.RealIP = ri
	}}, more...)
	e := newEnv(t, ds, opts...)
	seen := 0
	next := func() map[string]any {
		t.Helper()
		for {
			if lines := gw.all(); len(lines) > seen {
				seen++
				var m map[string]any
				if err := json.Unmarshal(lines[seen-1], &m); err != nil {
					t.Fatal(err)
				}
				return m
			}
			select {
			case <-gw.wrote:
			case <-time.After(20 * time.Second):
				t.Fatal("no access line")
			}
		}
	}
	return e, next
}

// TestAccessLineClientIP: the access line's client_ip is the forwarded
// caller only when the peer (here 127.0.0.1) is a trusted proxy, and then
// the rightmost untrusted hop, not a spoofed leftmost entry.
func TestAccessLineClientIP(t *testing.T) {
	const xff = "6.6.6.6, 198.51.100.9, 127.0.0.1"
	t.Run("trusted peer", func(t *testing.T) {
		e, next := accessLines(t, []string{"127.0.0.0/8"})
		if r := e.do("POST", "/v1/chat/completions", callerKey, chatBody("gpt-4o-primary", false), "X-Forwarded-For", xff); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if got := next()["client_ip"]; got != "198.51.100.9" {
			t.Fatalf("client_ip %v, want 198.51.100.9", got)
		}
	})
	t.Run("untrusted peer", func(t *testing.T) {
		e, next := accessLines(t, []string{"10.0.0.0/8"})
		e.do("POST", "/v1/chat/completions", callerKey, chatBody("gpt-4o-primary", false), "X-Forwarded-For", xff)
		if got := next()["client_ip"]; got != "127.0.0.1" {
			t.Fatalf("client_ip %v, want the peer 127.0.0.1", got)
		}
	})
	t.Run("nobody trusted", func(t *testing.T) {
		e, next := accessLines(t, nil)
		e.do("POST", "/v1/chat/completions", "wrong", chatBody("gpt-4o-primary", false), "X-Forwarded-For", xff)
		if l := next(); l["client_ip"] != "127.0.0.1" || l["status"] != 401.0 {
			t.Fatalf("line %v, want the peer 127.0.0.1 with status 401", l)
		}
	})
}

// TestAuthGuard: a burst of bad keys from one address, then 429 with
// Retry-After before the key is looked at (a good key from that address
// too, until a token refills); another address is unaffected; the counts
// reach /metrics.
func TestAuthGuard(t *testing.T) {
	clock := newFakeClock()
	guard := authguard.New(authguard.Options{Burst: 3, PerSecond: 1, Now: clock.Now})
	e, next := accessLines(t, []string{"127.0.0.1"}, func(o *proxy.Options) { o.AuthGuard = guard })
	m := metrics.New(metrics.Options{AuthFailures: guard.Failures, AuthThrottled: guard.Throttled})
	body := chatBody("gpt-4o-primary", false)
	from := func(addr, key string) response {
		t.Helper()
		r := e.do("POST", "/v1/chat/completions", key, body, "X-Forwarded-For", addr)
		if l := next(); l["client_ip"] != addr || l["status"] != float64(r.status) {
			t.Fatalf("access line %v, want client_ip %s status %d", l, addr, r.status)
		}
		return r
	}
	const attacker, other = "198.51.100.7", "203.0.113.4"
	for i := range 3 {
		if r := from(attacker, "sk-guess"); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: status %d, want 401", i+1, r.status)
		}
	}
	r := from(attacker, "sk-guess")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" || !strings.Contains(string(r.body), `"auth_throttled"`) {
		t.Fatalf("over budget: %d Retry-After %q %s, want 429 auth_throttled after 1", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := from(attacker, callerKey); r.status != http.StatusTooManyRequests {
		t.Fatalf("good key from a throttled address: %d, want 429 (the key is not looked at)", r.status)
	}
	// Anthropic's envelope on /v1/messages.
	mr := e.do("POST", "/v1/messages", "sk-guess", `{"model":"gpt-4o-primary","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, "X-Forwarded-For", attacker)
	next()
	if mr.status != http.StatusTooManyRequests || mr.json(t)["type"] != "error" {
		t.Fatalf("messages: %d %s, want 429 in Anthropic's envelope", mr.status, mr.body)
	}
	if r := from(other, "sk-guess"); r.status != http.StatusUnauthorized {
		t.Fatalf("another address: %d, want 401", r.status)
	}
	if r := from(other, callerKey); r.status != http.StatusOK {
		t.Fatalf("another address, good key: %d, want 200", r.status)
	}
	clock.Advance(time.Second)
	if r := from(attacker, callerKey); r.status != http.StatusOK {
		t.Fatalf("good key after a token refilled: %d, want 200", r.status)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	text, _ := io.ReadAll(rec.Body)
	for _, want := range []string{"aisix_auth_failures_total 4\n", "aisix_auth_throttled_total 3\n"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
