package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestMetricsAfterFailover: the tutorial's failover (the primary refuses
// connections, is retried once, cools down; the secondary answers) shows
// in the real binary's /metrics.
func TestMetricsAfterFailover(t *testing.T) {
	t.Parallel()
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	// Nothing listens on port 1: every call to the primary is a transport error.
	setupTutorial(t, g, "http://127.0.0.1:1/v1", secondary.base, fastTimeouts)

	a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
	if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
		t.Fatalf("status %d served by %q (attempts %q), want 200 from gpt-4o-secondary", a.status,
			a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"))
	}
	g.scrapeUntil(t, []string{
		`aisix_upstream_attempts_total{outcome="transport_error",status_reason="transport_error",target="gpt-4o-primary"} 2`,
		`aisix_retries_total{target="gpt-4o-primary"} 1`,
		`aisix_cooldowns_total{status_reason="transport_error",target="gpt-4o-primary"} 1`,
		`aisix_failovers_total{from="gpt-4o-primary",to="gpt-4o-secondary"} 1`,
		`aisix_failovers_total{from="gpt-4o-secondary",to="gpt-4o-primary"} 0`,
		`aisix_upstream_attempts_total{outcome="ok",status_reason="",target="gpt-4o-secondary"} 1`,
		`aisix_upstream_attempts_total{outcome="ok",status_reason="",target="gpt-4o-primary"} 0`,
		`aisix_target_state{state="cooldown",target="gpt-4o-primary"} 1`,
		`aisix_target_state{state="healthy",target="gpt-4o-secondary"} 1`,
		`aisix_requests_total{alias="chat-prod",endpoint="/v1/chat/completions",outcome="ok",status_class="2xx",wire="openai"} 1`,
		`aisix_request_duration_seconds_count{alias="chat-prod",endpoint="/v1/chat/completions"} 1`,
	})
}

// scrapeUntil reads /metrics until every line of want is in it (the
// request's record lands just after its answer), failing after 10 s.
func (g *gateway) scrapeUntil(t *testing.T, want []string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(g.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(b)
		var missing []string
		for _, w := range want {
			if !strings.Contains(body, w+"\n") {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks:\n%s\nscrape:\n%s", strings.Join(missing, "\n"), grepAisix(body))
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
}

func grepAisix(body string) string {
	var b strings.Builder
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "aisix_") && !strings.Contains(l, "_bucket{") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
