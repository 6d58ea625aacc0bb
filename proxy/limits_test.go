package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// limitEnv is the tutorial's pair with a limiter on the env's clock that
// the test can read.
func limitEnv(t *testing.T, primary, secondary *proxytest.Upstream, fn func(ds *storage.Dataset)) (*env, *limit.Limiter) {
	t.Helper()
	ds := pair(primary, secondary, storage.Routing{})
	fn(&ds)
	var lim *limit.Limiter
	e := newEnv(t, ds, func(o *proxy.Options) {
		lim = limit.New(limit.Options{Now: o.Now})
		o.Limiter = lim
	})
	return e, lim
}

// limitError is the OpenAI envelope of a rejection.
func limitError(t *testing.T, r response) (typ, code, msg string) {
	t.Helper()
	var env struct {
		Error struct{ Type, Code, Message string }
	}
	if err := json.Unmarshal(r.body, &env); err != nil {
		t.Fatalf("429 body is not JSON: %v: %s", err, r.body)
	}
	return env.Error.Type, env.Error.Code, env.Error.Message
}

// wantRejection checks that r is a 429 of type typ and code code, and
// returns its message.
func wantRejection(t *testing.T, r response, typ, code string) string {
	t.Helper()
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("status = %d, want 429: %s", r.status, r.body)
	}
	gotTyp, gotCode, msg := limitError(t, r)
	if gotTyp != typ || gotCode != code {
		t.Errorf("error type/code = %q/%q, want %s/%s", gotTyp, gotCode, typ, code)
	}
	return msg
}

// concurrently sends n chat requests at once and returns their statuses.
func concurrently(e *env, n int, model string) map[int]int {
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := e.chat(model)
			mu.Lock()
			got[r.status]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()
	return got
}

func TestLimitCallerKeyRPMExactUnderConcurrency(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, _ := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{RPM: 50}
	})
	got := concurrently(e, 200, "chat-prod")
	if got[200] != 50 || got[429] != 150 {
		t.Fatalf("statuses = %v, want exactly 50 × 200 and 150 × 429", got)
	}
	wantHits(t, primary, 50)
	wantHits(t, secondary, 0)

	r := e.chat("chat-prod")
	if msg := wantRejection(t, r, "rate_limit_exceeded", "caller_key_rpm"); !strings.Contains(msg, "50 requests per minute") {
		t.Errorf("message = %q, want it to name the limit", msg)
	}
	// The clock has not moved: the oldest admission leaves the window in
	// exactly 60 s.
	wantHeader(t, r.header, "Retry-After", "60")
	wantHeader(t, r.header, "X-Ratelimit-Limit-Requests", "50")
	wantHeader(t, r.header, "X-Ratelimit-Remaining-Requests", "0")
	if st := e.reg.Status("id-gpt-4o-primary"); st.Failures != 0 || st.State != "healthy" {
		t.Errorf("primary status = %+v: a limiter rejection must not count against the upstream", st)
	}
	if evs := events(e.reg, health.EventLimited); len(evs) == 0 || evs[0].Reason != "caller_key_rpm" {
		t.Errorf("limited events = %+v, want caller_key_rpm", evs)
	}

	// The window slides: after a minute the key may call again.
	e.clock.Advance(60 * time.Second)
	if r := e.chat("chat-prod"); r.status != http.StatusOK {
		t.Fatalf("after the window: status = %d %s", r.status, r.body)
	}
}

func TestLimitSuccessHeaders(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, _ := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{RPM: 10, TPM: 1000}
	})
	r := e.chat("chat-prod")
	if r.status != http.StatusOK {
		t.Fatalf("status = %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Ratelimit-Limit-Requests", "10")
	wantHeader(t, r.header, "X-Ratelimit-Remaining-Requests", "9")
	wantHeader(t, r.header, "X-Ratelimit-Reset-Requests", "1m0s")
	wantHeader(t, r.header, "X-Ratelimit-Limit-Tokens", "1000")
	if r.header.Get("X-Ratelimit-Remaining-Tokens") == "" {
		t.Error("no x-ratelimit-remaining-tokens")
	}
	// A stream carries them too.
	s := e.stream("chat-prod")
	if !s.done() {
		t.Fatalf("stream did not finish: %s", s.raw)
	}
	wantHeader(t, s.header, "X-Ratelimit-Remaining-Requests", "8")

	// Without limits there are none.
	e.update(func(ds *storage.Dataset) { ds.APIKeys[0].RateLimit = nil })
	r = e.chat("chat-prod")
	if v := r.header.Get("X-Ratelimit-Limit-Requests"); v != "" {
		t.Errorf("x-ratelimit-limit-requests = %q without a limit", v)
	}
}

func TestLimitTokensPerMinute(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	// The fake answers 19 tokens (10 in, 9 out); a request's estimate is
	// its body's bytes / 4 plus max_tokens.
	e, lim := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{TPM: 60}
	})
	body := `{"model":"chat-prod","max_tokens":10,"messages":[{"role":"user","content":"Say hello."}]}`
	for i := 0; i < 2; i++ {
		if r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body); r.status != http.StatusOK {
			t.Fatalf("request %d: status = %d %s", i, r.status, r.body)
		}
	}
	if st := lim.Status(limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}, e.clock.Now()); st.TPM != 38 {
		t.Errorf("tokens counted = %d, want 38 (the real 19 twice, not the estimates)", st.TPM)
	}
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third request: status = %d, want 429 (38 used + estimate 32 > 60)", r.status)
	}
	if _, code, _ := limitError(t, r); code != "caller_key_tpm" {
		t.Errorf("code = %q, want caller_key_tpm", code)
	}
	wantHeader(t, r.header, "X-Ratelimit-Limit-Tokens", "60")
	e.clock.Advance(62 * time.Second)
	if r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body); r.status != http.StatusOK {
		t.Fatalf("after the window: status = %d %s", r.status, r.body)
	}
}

func TestLimitConcurrencyStreamsHoldSlots(t *testing.T) {
	release := make(chan struct{})
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{WaitAfter: 1, Wait: release}))
	secondary := upstream(t, "secondary")
	e, lim := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{Concurrency: 2}
	})
	key := limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}

	// Two streams hold both slots until the upstream goes on.
	var wg sync.WaitGroup
	results := make([]streamResult, 2)
	for i := range results {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = e.stream("chat-prod") }()
	}
	if !primary.WaitHits(2, 10*time.Second) {
		t.Fatal("the two streams did not reach the upstream")
	}
	r := e.chat("chat-prod")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("third request while two stream: status = %d, want 429", r.status)
	}
	if _, code, _ := limitError(t, r); code != "caller_key_concurrency" {
		t.Errorf("code = %q, want caller_key_concurrency", code)
	}
	wantHeader(t, r.header, "Retry-After", "1")
	close(release)
	wg.Wait()
	for i, s := range results {
		if !s.done() {
			t.Errorf("stream %d did not finish: %s", i, s.raw)
		}
	}
	if st := lim.Status(key, e.clock.Now()); st.InFlight != 0 {
		t.Errorf("in flight after the streams ended = %d", st.InFlight)
	}

	// A caller that hangs up mid-stream gives its slot back at once.
	primary.Script(proxytest.Stream(proxytest.StreamOptions{WaitAfter: 1, Wait: make(chan struct{})}))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("chat-prod", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatalf("read the stream's first bytes: %v", err)
	}
	if st := lim.Status(key, e.clock.Now()); st.InFlight != 1 {
		t.Fatalf("in flight while streaming = %d, want 1", st.InFlight)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for lim.Status(key, e.clock.Now()).InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the slot of a caller that hung up was not released")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLimitBudget(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, lim := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		// 19 tokens at 1000 USD per million: 0.019 USD a request.
		for i := range ds.Models[:2] {
			ds.Models[i].Price = &storage.ModelPrice{Input: 1000, Output: 1000}
		}
		ds.APIKeys[0].Budget = &storage.Budget{AmountUSD: 0.03, Period: storage.BudgetDay}
	})
	if r := e.chat("chat-prod"); r.status != http.StatusOK {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	// The second request starts under the budget and crosses it in its
	// stream: it finishes, and the next one is refused.
	s := e.stream("chat-prod")
	if !s.done() {
		t.Fatalf("the stream that crosses the budget did not finish: %s", s.raw)
	}
	st := lim.Status(limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}, e.clock.Now())
	if st.SpendDayUSD < 0.0379 || st.SpendDayUSD > 0.0381 {
		t.Errorf("spend = %v, want 0.038", st.SpendDayUSD)
	}
	r := e.chat("chat-prod")
	// The env clock is 2026-01-01 12:00 UTC: the day resets at midnight.
	if msg := wantRejection(t, r, "insufficient_quota", "caller_key_budget"); !strings.Contains(msg, "2026-01-02T00:00:00Z") {
		t.Errorf("message = %q, want the period's reset time", msg)
	}
	wantHeader(t, r.header, "Retry-After", "43200")
	e.clock.Advance(12 * time.Hour)
	if r := e.chat("chat-prod"); r.status != http.StatusOK {
		t.Fatalf("next day: %d %s", r.status, r.body)
	}
}

func TestLimitModelScope(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, _ := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.Models[2].RateLimit = &storage.RateLimit{RPM: 1} // chat-prod, the alias
	})
	if r := e.chat("chat-prod"); r.status != http.StatusOK {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	r := e.chat("chat-prod")
	if _, code, msg := limitError(t, r); r.status != 429 || code != "model_rpm" || !strings.Contains(msg, `model "chat-prod"`) {
		t.Errorf("second: %d code=%q msg=%q, want 429 model_rpm naming chat-prod", r.status, code, msg)
	}
	// The direct models the group routes to are not limited by the alias.
	if r := e.chat("gpt-4o-primary"); r.status != http.StatusOK {
		t.Errorf("a direct model under a limited alias: %d %s", r.status, r.body)
	}
}

func TestLimitProviderLimitSkipsTarget(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, _ := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.Models[0].ProviderLimit = &storage.RateLimit{RPM: 1}
	})
	if r := e.chat("chat-prod"); r.status != http.StatusOK || r.header.Get("X-Aisix-Served-By") != "gpt-4o-primary" {
		t.Fatalf("first: %d served by %q", r.status, r.header.Get("X-Aisix-Served-By"))
	}
	r := e.chat("chat-prod")
	if r.status != http.StatusOK {
		t.Fatalf("second: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-secondary")
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-primary=local_rate_limit,gpt-4o-secondary=200")
	wantHits(t, primary, 1)
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != "healthy" || st.Failures != 0 {
		t.Errorf("primary = %+v: a target at its own limit is not unhealthy", st)
	}
	if evs := events(e.reg, health.EventFailover); len(evs) != 0 {
		t.Errorf("failover events = %+v: a skip at the limit is not a failover", evs)
	}
	if evs := events(e.reg, health.EventLimited); len(evs) != 1 || evs[0].Target != "gpt-4o-primary" || evs[0].Reason != "local_rate_limit" {
		t.Errorf("limited events = %+v", evs)
	}

	// Both at their limits: 429 with the earliest Retry-After, nothing sent.
	e.update(func(ds *storage.Dataset) { ds.Models[1].ProviderLimit = &storage.RateLimit{RPM: 1} })
	e.clock.Advance(30 * time.Second)
	// A limit newly set counts from then: secondary takes one more.
	if r := e.chat("chat-prod"); r.status != 200 || r.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
		t.Fatalf("secondary's first request under its new limit: %d %s", r.status, r.body)
	}
	// Now primary frees in 30 s and secondary in 60 s.
	r = e.chat("chat-prod")
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("all at their limits: %d %s", r.status, r.body)
	}
	if typ, code, _ := limitError(t, r); typ != "rate_limit_exceeded" || code != "target_rpm" {
		t.Errorf("type/code = %q/%q", typ, code)
	}
	wantHeader(t, r.header, "Retry-After", "30")
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-primary=local_rate_limit,gpt-4o-secondary=local_rate_limit")
	wantHits(t, primary, 1)
	wantHits(t, secondary, 2)

	// A direct model called by name obeys its provider limit too.
	r = e.chat("gpt-4o-secondary")
	if _, code, _ := limitError(t, r); r.status != 429 || code != "target_rpm" {
		t.Errorf("direct model at its limit: %d %q", r.status, code)
	}
}

// TestLimitRejectedBeforeTargetsDoesNotCount: a request admitted by the
// caller key but sent nowhere (every target at its limit) is given back.
func TestLimitNeverSentIsGivenBack(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, lim := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{RPM: 5}
		ds.Models[0].ProviderLimit = &storage.RateLimit{RPM: 1}
		ds.Models[1].ProviderLimit = &storage.RateLimit{RPM: 1}
	})
	for i := 0; i < 2; i++ {
		if r := e.chat("chat-prod"); r.status != 200 {
			t.Fatalf("request %d: %d", i, r.status)
		}
	}
	for i := 0; i < 3; i++ {
		if r := e.chat("chat-prod"); r.status != 429 {
			t.Fatalf("request at the targets' limits: %d", r.status)
		}
	}
	if st := lim.Status(limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}, e.clock.Now()); st.RPM != 2 || st.InFlight != 0 {
		t.Errorf("caller key counts %d requests (%d in flight), want the 2 that were sent", st.RPM, st.InFlight)
	}
}

func TestLimitAnthropicEnvelope(t *testing.T) {
	primary, secondary := upstream(t, "primary"), upstream(t, "secondary")
	e, _ := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{RPM: 1}
	})
	body := `{"model":"chat-prod","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
	if r := e.do(http.MethodPost, "/v1/messages", callerKey, body); r.status != 200 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	// count_tokens is never limited.
	if r := e.do(http.MethodPost, "/v1/messages/count_tokens", callerKey, body); r.status != 200 {
		t.Fatalf("count_tokens at the limit: %d %s", r.status, r.body)
	}
	r := e.do(http.MethodPost, "/v1/messages", callerKey, body)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("second: %d %s", r.status, r.body)
	}
	var env struct {
		Type  string
		Error struct{ Type, Message string }
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.Type != "error" || env.Error.Type != "rate_limit_error" {
		t.Errorf("body = %s, want Anthropic's rate_limit_error envelope", r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
}

func noCooldown(m *storage.Model) { m.Cooldown = &storage.Cooldown{Enabled: ptr(false)} }

// TestLimitSkipUsesNoFallback: a target skipped at its provider_limit does
// not use up max_fallbacks; one that failed does.
func TestLimitSkipUsesNoFallback(t *testing.T) {
	a := upstream(t, "a")
	b := upstream(t, "b", proxytest.ServerError(500))
	c := upstream(t, "c")
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-a", a.BaseURL()), providerKey("pk-b", b.BaseURL()), providerKey("pk-c", c.BaseURL())},
		Models: []storage.Model{
			directModel("m-a", "pk-a", noCooldown, func(m *storage.Model) { m.ProviderLimit = &storage.RateLimit{RPM: 1} }),
			directModel("m-b", "pk-b", noCooldown), directModel("m-c", "pk-c", noCooldown),
			routingModel("grp", storage.Routing{Targets: targets("m-a", "m-b", "m-c"), MaxFallbacks: ptr(1), Retries: ptr(0)}),
		},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	if r := e.chat("grp"); r.status != 200 || r.header.Get("X-Aisix-Served-By") != "m-a" {
		t.Fatalf("first: %d %v", r.status, r.header)
	}
	r := e.chat("grp")
	if r.status != 200 {
		t.Fatalf("second: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "m-a=local_rate_limit,m-b=500,m-c=200")
	// Without the skip, max_fallbacks 1 stops after two targets called.
	e.update(func(ds *storage.Dataset) { ds.Models[0].ProviderLimit = nil })
	a.Script(proxytest.ServerError(500))
	r = e.chat("grp")
	if r.status == 200 {
		t.Fatalf("max_fallbacks 1 reached a third target: %v", r.header)
	}
	wantHits(t, c, 1)
}

// TestLimitNoUsageKeepsEstimate: an answer without a usage report counts
// its estimate, not zero tokens.
func TestLimitNoUsageKeepsEstimate(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Raw("application/json",
		`{"id":"chatcmpl-1","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}`))
	secondary := upstream(t, "secondary")
	e, lim := limitEnv(t, primary, secondary, func(ds *storage.Dataset) {
		ds.APIKeys[0].RateLimit = &storage.RateLimit{TPM: 1000}
	})
	body := `{"model":"chat-prod","max_tokens":100,"messages":[{"role":"user","content":"Say hello."}]}`
	if r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	want := int64(len(body)/4 + 100)
	if st := lim.Status(limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}, e.clock.Now()); st.TPM != want {
		t.Errorf("tokens counted = %d, want the estimate %d", st.TPM, want)
	}
}
