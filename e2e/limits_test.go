package e2e

// Issue 15: limits and budgets through the real binary: a caller key with
// rpm, tpm, concurrency and a budget set by the CLI, a target with a
// provider limit, the headers and errors of the README, and a budget that
// survives a restart.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// limitUsage is the limit_usage of `aisix apikey get -o json`.
type limitUsage struct {
	Concurrency    int64    `json:"concurrency"`
	RPM            int64    `json:"rpm"`
	TPM            int64    `json:"tpm"`
	BudgetSpentUSD *float64 `json:"budget_spent_usd"`
}

func (g *gateway) keyUsage(t *testing.T, name string) limitUsage {
	t.Helper()
	var v struct {
		Value struct {
			LimitUsage *limitUsage `json:"limit_usage"`
		} `json:"value"`
	}
	out := g.cli(t, "", nil, "apikey", "get", name, "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Value.LimitUsage == nil {
		t.Fatalf("apikey get %s -o json: no limit_usage (%v):\n%s", name, err, out)
	}
	return *v.Value.LimitUsage
}

// cliFails runs an aisix command that must fail and returns its exit code
// and stderr.
func (g *gateway) cliFails(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "aisix"), args...)
	cmd.Env = g.env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("aisix %s: want a failure, got %v", strings.Join(args, " "), err)
	}
	return ee.ExitCode(), stderr.String()
}

func TestLimits(t *testing.T) {
	t.Parallel()
	// The primary holds a stream whose prompt says "hold" open until the
	// caller goes away; everything else is answered at once.
	primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
		if c.stream && bytes.Contains(c.body, []byte("hold")) {
			s := startSSE(w, c)
			_ = s.role() && s.content("held")
			c.hang()
			return
		}
		okReply("primary")(w, c)
	})
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{
		direct: map[string]any{"timeout": 5000, "stream_timeout": 10000, "cooldown": map[string]any{"enabled": false}},
	})

	// A bad budget is one readable line and exit 2.
	if code, stderr := g.cliFails(t, "--server", g.admin, "apikey", "create", "--name", "bad", "--allow-model", "chat-prod", "--budget", "50/year"); code != 2 ||
		strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "--budget") {
		t.Errorf("--budget 50/year: exit %d, stderr %q", code, stderr)
	}

	t.Run("rpm", func(t *testing.T) {
		g.cli(t, "sk-limits-rpm", nil, "apikey", "create", "--name", "ci", "--allow-model", "chat-prod",
			"--rpm", "3", "--tpm", "100000", "--key-stdin", "-q")
		for i := 0; i < 3; i++ {
			a := g.mustChat(t, "sk-limits-rpm", chatBody("chat-prod", false), nil, 30*time.Second)
			if a.status != http.StatusOK {
				t.Fatalf("request %d: %s", i+1, a.dump())
			}
			if got, want := a.header.Get("X-Ratelimit-Remaining-Requests"), strconv.Itoa(2-i); got != want || a.header.Get("X-Ratelimit-Limit-Requests") != "3" {
				t.Errorf("request %d: x-ratelimit-*-requests = %q of %q, want %s of 3", i+1, got, a.header.Get("X-Ratelimit-Limit-Requests"), want)
			}
			if a.header.Get("X-Ratelimit-Limit-Tokens") != "100000" || a.header.Get("X-Ratelimit-Reset-Requests") == "" {
				t.Errorf("request %d: token or reset headers missing:\n%s", i+1, a.dump())
			}
		}
		a := g.mustChat(t, "sk-limits-rpm", chatBody("chat-prod", false), nil, 30*time.Second)
		if a.status != http.StatusTooManyRequests {
			t.Fatalf("4th request in a minute: %s", a.dump())
		}
		msg, typ, _, code := a.envelope(t)
		if typ != "rate_limit_exceeded" || code != "caller_key_rpm" || !strings.Contains(msg, `API key "ci"`) {
			t.Errorf("429: type %q code %v message %q", typ, code, msg)
		}
		if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After = %q, want 1-60 seconds", a.header.Get("Retry-After"))
		}
		if a.header.Get("X-Ratelimit-Remaining-Requests") != "0" {
			t.Errorf("429 without x-ratelimit-remaining-requests: 0:\n%s", a.dump())
		}
		// The Anthropic-wire endpoint answers in its own envelope.
		req, _ := http.NewRequest(http.MethodPost, g.proxy+"/v1/messages",
			strings.NewReader(`{"model":"chat-prod","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", "sk-limits-rpm")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := g.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var env struct {
			Type  string `json:"type"`
			Error struct {
				Type string `json:"type"`
			} `json:"error"`
		}
		err = json.NewDecoder(resp.Body).Decode(&env)
		resp.Body.Close()
		if resp.StatusCode != 429 || err != nil || env.Type != "error" || env.Error.Type != "rate_limit_error" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("/v1/messages over the limit: %d %+v (%v)", resp.StatusCode, env, err)
		}
		if u := g.keyUsage(t, "ci"); u.RPM != 3 || u.TPM != 3*13 {
			t.Errorf("apikey get ci: limit_usage %+v, want rpm 3 and tpm 39", u)
		}
		g.scrapeUntil(t, []string{`aisix_limit_rejections_total{dimension="rpm",scope="caller_key"} 2`})
		// A limiter rejection never counts against the upstream.
		if r := g.status(t, "gpt-4o-primary"); r.Status != "healthy" {
			t.Errorf("primary after rejections: %s", r.raw)
		}
	})

	t.Run("burst", func(t *testing.T) {
		// 200 requests at once against rpm 50: exactly 50 get through.
		g.cli(t, "sk-limits-burst", nil, "apikey", "create", "--name", "burst", "--allow-model", "chat-prod", "--rpm", "50", "--key-stdin", "-q")
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				resp, err := g.chat(ctx, "sk-limits-burst", chatBody("chat-prod", false), nil)
				status := -1
				if err == nil {
					status = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				got[status]++
				mu.Unlock()
			}()
		}
		close(start)
		wg.Wait()
		if got[200] != 50 || got[429] != 150 {
			t.Errorf("200 concurrent requests against rpm 50: %v, want exactly 50 × 200 and 150 × 429", got)
		}
	})

	t.Run("concurrency", func(t *testing.T) {
		g.cli(t, "sk-limits-conc", nil, "apikey", "create", "--name", "conc", "--allow-model", "chat-prod",
			"--concurrency", "1", "--key-stdin", "-q")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := g.chat(ctx, "sk-limits-conc", `{"model":"chat-prod","stream":true,"messages":[{"role":"user","content":"hold"}]}`, nil)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 256)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatalf("the held stream: %v", err)
		}
		a := g.mustChat(t, "sk-limits-conc", chatBody("chat-prod", false), nil, 30*time.Second)
		if _, _, _, code := a.envelope(t); a.status != 429 || code != "caller_key_concurrency" || a.header.Get("Retry-After") != "1" {
			t.Errorf("while a stream holds the slot: %s", a.dump())
		}
		// Hanging up releases the slot at once.
		cancel()
		resp.Body.Close()
		deadline := time.Now().Add(10 * time.Second)
		for g.keyUsage(t, "conc").Concurrency != 0 {
			if time.Now().After(deadline) {
				t.Fatal("the slot of a caller that hung up was not released within 10s")
			}
			time.Sleep(20 * time.Millisecond) // polling another process
		}
		if a := g.mustChat(t, "sk-limits-conc", chatBody("chat-prod", false), nil, 30*time.Second); a.status != 200 {
			t.Errorf("after the hang-up: %s", a.dump())
		}
	})

	t.Run("provider_limit", func(t *testing.T) {
		g.cli(t, "", nil, "model", "update", "gpt-4o-primary", "--provider-rpm", "1", "-q")
		if a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second); a.status != 200 || a.header.Get("X-Aisix-Served-By") != "gpt-4o-primary" {
			t.Fatalf("first under the provider limit: %s", a.dump())
		}
		a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
		if a.status != 200 || a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" ||
			a.header.Get("X-Aisix-Attempts") != "gpt-4o-primary=local_rate_limit,gpt-4o-secondary=200" {
			t.Fatalf("primary at its provider limit: %s", a.dump())
		}
		if r := g.status(t, "gpt-4o-primary"); r.Status != "healthy" || !strings.Contains(r.raw, `"at_provider_limit":true`) {
			t.Errorf("a target at its own limit is healthy and says it is at its limit: %s", r.raw)
		}
		// --explain, the limit rows and the admin API say so too.
		var explain []struct {
			Target          string `json:"target"`
			Tried           bool   `json:"tried"`
			AtProviderLimit bool   `json:"at_provider_limit"`
			Why             string `json:"why"`
		}
		out := g.cli(t, "", nil, "model", "route", "chat-prod", "--explain", "-o", "json")
		if err := json.Unmarshal([]byte(out), &explain); err != nil || len(explain) != 2 || explain[0].Target != "gpt-4o-secondary" ||
			explain[1].Target != "gpt-4o-primary" || explain[1].Tried || !explain[1].AtProviderLimit || !strings.Contains(explain[1].Why, "local_rate_limit") {
			t.Errorf("model route --explain -o json (%v):\n%s", err, out)
		}
		var rows []struct {
			Scope    string   `json:"scope"`
			Name     string   `json:"name"`
			Rejected int64    `json:"rejected"`
			AtLimit  []string `json:"at_limit"`
		}
		out = g.cli(t, "", nil, "status", "-o", "json", "--limits")
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("status -o json --limits: %v\n%s", err, out)
		}
		found := false
		for _, r := range rows {
			if r.Scope == "target" && r.Name == "gpt-4o-primary" {
				found = r.Rejected == 1 && len(r.AtLimit) == 1 && r.AtLimit[0] == "rpm"
			}
		}
		if !found {
			t.Errorf("status -o json --limits has no target gpt-4o-primary at rpm with 1 rejection:\n%s", out)
		}
		if code, body := g.adminDo(t, http.MethodGet, "/admin/v1/limits", nil); code != 200 || !strings.Contains(string(body), `"scope":"target"`) {
			t.Errorf("GET /admin/v1/limits: %d %s", code, body)
		}
		g.cli(t, "", nil, "model", "update", "gpt-4o-secondary", "--provider-rpm", "1", "-q")
		// A limit newly set counts from then: the secondary takes one more.
		if a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second); a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
			t.Fatalf("secondary's first under its new limit: %s", a.dump())
		}
		a = g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
		if _, typ, _, code := a.envelope(t); a.status != 429 || typ != "rate_limit_exceeded" || code != "target_rpm" ||
			a.header.Get("X-Aisix-Attempts") != "gpt-4o-primary=local_rate_limit,gpt-4o-secondary=local_rate_limit" {
			t.Errorf("every target at its limit: %s", a.dump())
		}
		if ra, err := strconv.Atoi(a.header.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
			t.Errorf("Retry-After = %q", a.header.Get("Retry-After"))
		}
		g.cli(t, "", nil, "model", "update", "gpt-4o-primary", "--no-provider-limit", "-q")
		g.cli(t, "", nil, "model", "update", "gpt-4o-secondary", "--no-provider-limit", "-q")

		// A model's own limit shows its live usage in model get.
		g.cli(t, "", nil, "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--rpm", "1000", "-q")
		if a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second); a.status != 200 {
			t.Fatalf("under the alias limit: %s", a.dump())
		}
		if out := g.cli(t, "", nil, "model", "get", "chat-prod", "-o", "json"); !strings.Contains(out, `"limit_usage"`) || !strings.Contains(out, `"rpm": 1`) {
			t.Errorf("model get chat-prod -o json has no limit_usage with rpm 1:\n%s", out)
		}
		g.cli(t, "", nil, "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--no-rate-limit", "-q")
	})

	t.Run("budget", func(t *testing.T) {
		// 13 tokens at 1000 USD per million: 0.013 USD a request.
		g.cli(t, "", nil, "model", "update", "gpt-4o-primary", "--price-input", "1000", "--price-output", "1000", "-q")
		g.cli(t, "", nil, "model", "update", "gpt-4o-secondary", "--price-input", "1000", "--price-output", "1000", "-q")
		g.cli(t, "sk-limits-budget", nil, "apikey", "create", "--name", "budget", "--allow-model", "chat-prod",
			"--budget", "0.02/day", "--key-stdin", "-q")
		for i := 0; i < 2; i++ {
			if a := g.mustChat(t, "sk-limits-budget", chatBody("chat-prod", false), nil, 30*time.Second); a.status != 200 {
				t.Fatalf("request %d under the budget: %s", i+1, a.dump())
			}
		}
		refused := func(t *testing.T) {
			t.Helper()
			a := g.mustChat(t, "sk-limits-budget", chatBody("chat-prod", false), nil, 30*time.Second)
			msg, typ, _, code := a.envelope(t)
			reset := time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour).Format(time.RFC3339)
			if a.status != 429 || typ != "insufficient_quota" || code != "caller_key_budget" || !strings.Contains(msg, reset) {
				t.Errorf("over the budget: %s", a.dump())
			}
		}
		refused(t)
		if u := g.keyUsage(t, "budget"); u.BudgetSpentUSD == nil || *u.BudgetSpentUSD < 0.0259 || *u.BudgetSpentUSD > 0.0261 {
			t.Errorf("budget spent = %v, want 0.026", u.BudgetSpentUSD)
		}
		// A restart does not reset the day's spend: it is read back from
		// the usage ledger.
		g.restart(t)
		refused(t)
		if u := g.keyUsage(t, "budget"); u.BudgetSpentUSD == nil || *u.BudgetSpentUSD < 0.0259 {
			t.Errorf("budget spent after a restart = %v, want 0.026", u.BudgetSpentUSD)
		}
	})
}
