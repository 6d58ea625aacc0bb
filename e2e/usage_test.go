package e2e

// Issue 14: the usage ledger. Every upstream attempt is recorded with its
// tokens and its cost at the model's price; `aisix usage` sums them per
// caller key and model, in local and in remote mode.

import (
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// usageRow is one row (or the totals) of `aisix usage -o json`.
type usageRow struct {
	KeyID     string  `json:"key_id"`
	Alias     string  `json:"alias"`
	Target    string  `json:"target"`
	Attempts  int64   `json:"attempts"`
	Successes int64   `json:"successes"`
	Failures  int64   `json:"failures"`
	Input     int64   `json:"input_tokens"`
	Output    int64   `json:"output_tokens"`
	CostUSD   float64 `json:"cost_usd"`
	Unpriced  int64   `json:"unpriced"`
}

type usageReport struct {
	Rows   []usageRow `json:"rows"`
	Totals usageRow   `json:"totals"`
}

// TestUsageLedger: the tutorial's traffic, a failover included, shows in
// `aisix usage --by key,alias` with its tokens and cost, and the failed
// attempt as its own record.
func TestUsageLedger(t *testing.T) {
	// The primary's first answer is a 429: the first request fails over
	// to the secondary; the next ones are the primary's.
	primary := newUpstream(t, "primary", "", script(
		errorReply(http.StatusTooManyRequests, `{"error":{"message":"Rate limit reached","type":"requests","param":null,"code":"rate_limit_exceeded"}}`),
		okReply("primary")))
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	tu := setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{
		direct:  map[string]any{"timeout": 5000, "stream_timeout": 5000, "cooldown": map[string]any{"enabled": false}},
		routing: map[string]any{"retries": 0},
	})
	directKey := "sk-usage-direct"
	directKeyID := g.createCallerKey(t, directKey, "gpt-4o-secondary")

	// Prices through the CLI, in remote mode: the write reloads the proxy
	// before it returns.
	g.run(t, "--server", g.admin, "model", "update", "gpt-4o-primary", "--price-input", "2.5", "--price-output", "10", "-q")
	g.run(t, "--server", g.admin, "model", "update", "gpt-4o-secondary", "--price-input", "1", "--price-output", "4", "-q")

	for i, want := range []string{"secondary", "primary", "primary"} {
		a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
		if a.status != http.StatusOK || !strings.Contains(string(a.body), "hello from "+want) {
			t.Fatalf("request %d: %s", i+1, a.dump())
		}
	}
	if a := g.mustChat(t, directKey, chatBody("gpt-4o-secondary", false), nil, 30*time.Second); a.status != http.StatusOK {
		t.Fatalf("direct request: %s", a.dump())
	}

	// The ledger is written off the request path, within about a second.
	usage := func(t *testing.T, args ...string) usageReport {
		t.Helper()
		var rep usageReport
		out := g.run(t, append([]string{"usage", "-o", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("aisix usage -o json: %v\n%s", err, out)
		}
		return rep
	}
	deadline := time.Now().Add(15 * time.Second)
	for usage(t).Totals.Attempts < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("the ledger has %d records after 15s, want 5; log:\n%s", usage(t).Totals.Attempts, g.log.String())
		}
		time.Sleep(100 * time.Millisecond) // polling another process
	}

	// 10 prompt and 3 completion tokens per answer: on the primary
	// (2.5/10 per 1M) 55e-6 USD, on the secondary (1/4) 22e-6.
	near := func(got, want float64) bool { return math.Abs(got-want) < 1e-12 }
	for _, mode := range []struct {
		name string
		args []string
	}{{"local", nil}, {"remote", []string{"--server", g.admin}}} {
		t.Run(mode.name, func(t *testing.T) {
			rep := usage(t, append([]string{"--since", "1h", "--by", "key,alias"}, mode.args...)...)
			byKey := map[string]usageRow{}
			for _, r := range rep.Rows {
				byKey[r.KeyID+"/"+r.Alias] = r
			}
			if len(rep.Rows) != 2 {
				t.Fatalf("rows %+v, want 2", rep.Rows)
			}
			chat := byKey[tu.apiKey+"/chat-prod"]
			if chat.Attempts != 4 || chat.Successes != 3 || chat.Failures != 1 || chat.Input != 30 || chat.Output != 9 ||
				!near(chat.CostUSD, 2*55e-6+22e-6) || chat.Unpriced != 0 {
				t.Errorf("tutorial key on chat-prod: %+v", chat)
			}
			direct := byKey[directKeyID+"/gpt-4o-secondary"]
			if direct.Attempts != 1 || direct.Successes != 1 || direct.Input != 10 || !near(direct.CostUSD, 22e-6) {
				t.Errorf("direct key on gpt-4o-secondary: %+v", direct)
			}
			if tot := rep.Totals; tot.Attempts != 5 || tot.Failures != 1 || !near(tot.CostUSD, 2*55e-6+2*22e-6) {
				t.Errorf("totals %+v", tot)
			}

			// The failed attempt is the primary's own record.
			rep = usage(t, append([]string{"--key", tu.apiKey, "--by", "target"}, mode.args...)...)
			if len(rep.Rows) != 2 || rep.Rows[0].Target != "gpt-4o-primary" || rep.Rows[0].Attempts != 3 || rep.Rows[0].Failures != 1 ||
				rep.Rows[1].Target != "gpt-4o-secondary" || rep.Rows[1].Attempts != 1 || rep.Rows[1].Failures != 0 {
				t.Errorf("tutorial key by target: %+v", rep.Rows)
			}
		})
	}

	// The table a person reads, and the admin API behind remote mode.
	out := g.run(t, "usage", "--by", "alias", "-o", "csv")
	if !strings.HasPrefix(out, "alias,attempts,ok,failed,input,output,cached,reasoning,cost_usd,unpriced\nchat-prod,4,3,1,30,9,0,0,0.000132,0\n") {
		t.Errorf("aisix usage -o csv:\n%s", out)
	}
	if code, body := g.adminDo(t, http.MethodGet, "/admin/v1/usage?group_by=week", nil); code != http.StatusBadRequest || !strings.Contains(string(body), `"error_msg"`) {
		t.Errorf("bad group_by: %d %s", code, body)
	}

	// A record still queued when serve is told to stop is written by its
	// drain, not lost.
	if a := g.mustChat(t, directKey, chatBody("gpt-4o-secondary", false), nil, 30*time.Second); a.status != http.StatusOK {
		t.Fatalf("last request: %s", a.dump())
	}
	g.stop()
	if n := usage(t).Totals.Attempts; n != 6 {
		t.Errorf("after stopping serve the ledger has %d records, want 6", n)
	}
}
