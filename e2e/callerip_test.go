package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestTrustedProxiesAndKeyGuard: the real binary with
// proxy.trusted_proxies naming loopback (the test plays the load
// balancer) logs the forwarded caller, not a spoofed leftmost entry;
// after proxy.auth_failure_burst bad keys from that caller it answers 429
// with Retry-After, while another forwarded caller still gets its 401;
// /metrics counts both.
func TestTrustedProxiesAndKeyGuard(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "primary", "", okReply("primary"))
	g := startGateway(t, serveOptions{config: "proxy:\n  trusted_proxies: [127.0.0.1]\n  auth_failure_burst: 2\n  auth_failure_per_second: 0.01\n"})
	setupTutorial(t, g, up.base, up.base, fastTimeouts)

	from := func(addr, key string) answer {
		t.Helper()
		a := g.mustChat(t, key, chatBody("chat-prod", false), http.Header{"X-Forwarded-For": {"6.6.6.6, " + addr}}, 30*time.Second)
		if l := g.accessLine(t, a.header.Get("X-Aisix-Call-Id"), 10*time.Second); l["client_ip"] != addr {
			t.Fatalf("access line client_ip %v, want %s: %v", l["client_ip"], addr, l)
		}
		return a
	}
	if a := from("198.51.100.9", callerKey); a.status != http.StatusOK {
		t.Fatalf("good key: %s", a.dump())
	}
	for range 2 {
		if a := from("198.51.100.7", "sk-wrong"); a.status != http.StatusUnauthorized {
			t.Fatalf("bad key inside the burst: %s", a.dump())
		}
	}
	a := from("198.51.100.7", "sk-wrong")
	if a.status != http.StatusTooManyRequests || a.header.Get("Retry-After") == "" || !strings.Contains(string(a.body), "auth_throttled") {
		t.Fatalf("over budget: %s", a.dump())
	}
	if a := from("198.51.100.8", "sk-wrong"); a.status != http.StatusUnauthorized {
		t.Fatalf("another caller: %s", a.dump())
	}
	g.scrapeUntil(t, []string{"aisix_auth_failures_total 3", "aisix_auth_throttled_total 1"})
}
