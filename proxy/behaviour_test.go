package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// gated answers OK once gate is closed.
func gated(gate <-chan struct{}) proxytest.Behavior {
	return func(w http.ResponseWriter, c *proxytest.Call) {
		select {
		case <-gate:
		case <-c.R.Context().Done():
			return
		}
		proxytest.OK()(w, c)
	}
}

// TestPrimaryDownThenRecovers: a primary that is down is skipped for its
// whole cooldown (driven by a fake clock, so no minute passes); when the
// cooldown ends exactly one request probes it while the others keep going
// to the secondary; the probe's success puts traffic back on the primary.
func TestPrimaryDownThenRecovers(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Reset())
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, storage.Routing{}))

	start := time.Now()
	r := e.chat("chat-prod")
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-secondary")
	st := e.reg.Status("id-gpt-4o-primary")
	if st.State != health.StateCooldown || st.Reason != "transport_error" {
		t.Fatalf("primary = %s/%s, want cooldown/transport_error", st.State, st.Reason)
	}
	if want := e.clock.Now().Add(30 * time.Second); !st.CooldownUntil.Equal(want) {
		t.Errorf("cooldown until %v, want %v (default 30s)", st.CooldownUntil, want)
	}

	// The primary stays down for a minute: re-armed? no, it is not even
	// called while it cools down.
	for i := 0; i < 3; i++ {
		r := e.chat("chat-prod")
		wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-secondary")
		wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-secondary=200")
	}
	wantHits(t, primary, 1)

	// The primary comes back; its answers wait on a gate so the probe can
	// be held in flight.
	gate := make(chan struct{})
	primary.Script(gated(gate))
	e.clock.Advance(29 * time.Second)
	r = e.chat("chat-prod")
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-secondary")
	wantHits(t, primary, 1)

	e.clock.Advance(2 * time.Second) // cooldown over: half-open
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateProbing {
		t.Fatalf("primary state after expiry = %s, want probing", st.State)
	}
	probe := make(chan response, 1)
	go func() { probe <- e.chat("chat-prod") }()
	if !primary.WaitHits(2, 5*time.Second) {
		t.Fatal("the probe never reached the primary")
	}
	for i := 0; i < 3; i++ {
		r := e.chat("chat-prod")
		wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-secondary")
	}
	wantHits(t, primary, 2) // exactly one probe
	close(gate)
	r = <-probe
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-primary")
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateHealthy || st.Reason != "" {
		t.Fatalf("primary after the probe = %s/%q, want healthy", st.State, st.Reason)
	}
	for i := 0; i < 3; i++ {
		r := e.chat("chat-prod")
		wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-primary")
	}
	wantHits(t, primary, 5)
	wantUnder(t, time.Since(start), 5*time.Second)

	if evs := events(e.reg, health.EventProbe); len(evs) != 1 || evs[0].Detail != "succeeded" {
		t.Errorf("probe events = %+v", evs)
	}
	if evs := events(e.reg, health.EventCooldownLeft); len(evs) != 1 || evs[0].Target != "gpt-4o-primary" {
		t.Errorf("cooldown_left events = %+v", evs)
	}
	if evs := events(e.reg, health.EventCooldownEntered); len(evs) != 1 || evs[0].Reason != "transport_error" {
		t.Errorf("cooldown_entered events = %+v", evs)
	}
}

// TestProbeFailureRearms: a failed probe re-arms the cooldown.
func TestProbeFailureRearms(t *testing.T) {
	primary := upstream(t, "primary", proxytest.ServerError(503))
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, storage.Routing{}))
	e.chat("chat-prod")
	e.clock.Advance(31 * time.Second)
	r := e.chat("chat-prod") // the probe fails, the secondary serves
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-primary=503,gpt-4o-secondary=200")
	st := e.reg.Status("id-gpt-4o-primary")
	if st.State != health.StateCooldown || !st.CooldownUntil.Equal(e.clock.Now().Add(30*time.Second)) {
		t.Fatalf("after a failed probe: %s until %v", st.State, st.CooldownUntil)
	}
	if evs := events(e.reg, health.EventProbe); len(evs) != 1 || !strings.HasPrefix(evs[0].Detail, "failed") {
		t.Errorf("probe events = %+v", evs)
	}
}

// TestWhenAllUnavailable: with every target cooling down, try_anyway (the
// default) tries the one whose cooldown ends first; fail answers 503 with
// Retry-After until the earliest end.
func TestWhenAllUnavailable(t *testing.T) {
	tests := []struct {
		name       string
		policy     string
		wantStatus int
		wantServed string
		wantRA     string
	}{
		{name: "try_anyway by default", wantStatus: 200, wantServed: "gpt-4o-secondary"},
		{name: "fail", policy: storage.WhenAllUnavailableFail, wantStatus: 503, wantRA: "15"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primary := upstream(t, "primary", proxytest.RateLimited("60"), proxytest.OK())
			secondary := upstream(t, "secondary", proxytest.RateLimited("20"), proxytest.OK())
			e := newEnv(t, pair(primary, secondary, storage.Routing{WhenAllUnavailable: tt.policy}))
			if r := e.chat("chat-prod"); r.status != 429 {
				t.Fatalf("both rate limited: status %d, want the last 429", r.status)
			}
			e.clock.Advance(5 * time.Second)
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantStatus, r.body)
			}
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			wantHeader(t, r.header, "Retry-After", tt.wantRA)
			if tt.wantStatus == 503 {
				if r.errType(t) != "all_candidates_unavailable" {
					t.Errorf("error type = %s", r.errType(t))
				}
				wantHits(t, primary, 1)
				wantHits(t, secondary, 1)
			}
		})
	}
}

// TestFilterThenBudget: cooling targets move behind healthy ones before
// max_fallbacks cuts the walk, so a healthy third target is still tried.
func TestFilterThenBudget(t *testing.T) {
	a := upstream(t, "a", proxytest.Reset())
	b := upstream(t, "b", proxytest.OK(), proxytest.ServerError(503))
	c := upstream(t, "c")
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pa", a.BaseURL()), providerKey("pb", b.BaseURL()), providerKey("pc", c.BaseURL())},
		Models: []storage.Model{
			directModel("a", "pa"), directModel("b", "pb"), directModel("c", "pc"),
			routingModel("group", storage.Routing{Targets: targets("a", "b", "c"), MaxFallbacks: ptr(1)}),
		},
		APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "group")},
	}
	e := newEnv(t, ds)
	r := e.chat("group")
	wantHeader(t, r.header, "X-Aisix-Attempts", "a=transport_error,b=200")
	r = e.chat("group") // a cools down: walk is [b, c]
	wantHeader(t, r.header, "X-Aisix-Attempts", "b=503,c=200")
	wantHeader(t, r.header, "X-Aisix-Served-By", "c")
	c.Script(proxytest.ServerError(503))
	// Now a and b cool down (a since earlier): the healthy c goes first,
	// then the cooldown that ends first (a), and the budget of two stops
	// there: b is not tried.
	r = e.chat("group")
	wantHeader(t, r.header, "X-Aisix-Attempts", "c=503,a=transport_error")
	if r.status != http.StatusBadGateway {
		t.Errorf("status %d, want 502", r.status)
	}
	wantHits(t, a, 2)
	wantHits(t, b, 2)
}

// TestAuth covers caller authentication and access before existence.
func TestAuth(t *testing.T) {
	up := upstream(t, "up")
	past := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	ds := pair(up, up, storage.Routing{})
	ds.APIKeys = append(ds.APIKeys,
		callerAPIKey("restricted", "sk-restricted", "chat-prod"),
		storage.APIKey{ID: "off", KeyHash: proxytest.KeyHash("sk-off"), AllowedModels: []string{"*"}, Disabled: true},
		storage.APIKey{ID: "old", KeyHash: proxytest.KeyHash("sk-old"), AllowedModels: []string{"*"}, ExpiresAt: &past},
	)
	e := newEnv(t, ds)
	tests := []struct {
		name      string
		header    []string
		model     string
		wantCode  int
		wantType  string
		wantMatch string
	}{
		{name: "no key", model: "chat-prod", wantCode: 401, wantType: "invalid_api_key", wantMatch: "missing or malformed"},
		{name: "not bearer", header: []string{"Authorization", "Basic abc"}, model: "chat-prod", wantCode: 401, wantType: "invalid_api_key"},
		{name: "unknown key", header: []string{"Authorization", "Bearer sk-nope"}, model: "chat-prod", wantCode: 401, wantType: "invalid_api_key", wantMatch: "invalid API key"},
		{name: "disabled key", header: []string{"Authorization", "Bearer sk-off"}, model: "chat-prod", wantCode: 401, wantType: "invalid_api_key", wantMatch: "invalid API key"},
		{name: "expired key", header: []string{"Authorization", "Bearer sk-old"}, model: "chat-prod", wantCode: 401, wantType: "invalid_api_key", wantMatch: "invalid API key"},
		{name: "x-api-key", header: []string{"X-Api-Key", callerKey}, model: "chat-prod", wantCode: 200},
		{name: "lower-case bearer", header: []string{"Authorization", "bearer " + callerKey}, model: "chat-prod", wantCode: 200},
		{name: "allowed alias", header: []string{"Authorization", "Bearer sk-restricted"}, model: "chat-prod", wantCode: 200},
		{name: "existing name not allowed", header: []string{"Authorization", "Bearer sk-restricted"}, model: "gpt-4o-primary", wantCode: 403, wantType: "permission_denied"},
		{name: "unknown name not allowed", header: []string{"Authorization", "Bearer sk-restricted"}, model: "no-such-model", wantCode: 403, wantType: "permission_denied"},
		{name: "unknown name for a * key", header: []string{"Authorization", "Bearer " + callerKey}, model: "no-such-model", wantCode: 404, wantType: "model_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/v1/chat/completions", "", chatBody(tt.model, false), tt.header...)
			if r.status != tt.wantCode {
				t.Fatalf("status = %d, want %d: %s", r.status, tt.wantCode, r.body)
			}
			wantHeader(t, r.header, "Server", "AISIX/0.1.0")
			if r.header.Get("X-Aisix-Call-Id") == "" {
				t.Error("no x-aisix-call-id on the response")
			}
			if tt.wantType != "" && r.errType(t) != tt.wantType {
				t.Errorf("type = %q, want %q", r.errType(t), tt.wantType)
			}
			if tt.wantMatch != "" && !strings.Contains(string(r.body), tt.wantMatch) {
				t.Errorf("body %s lacks %q", r.body, tt.wantMatch)
			}
		})
	}
}

// TestRequestValidation covers the body checks.
func TestRequestValidation(t *testing.T) {
	up := upstream(t, "up")
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.MaxBodyBytes = 1024 })
	big := `{"model":"chat-prod","messages":[{"role":"user","content":"` + strings.Repeat("x", 2000) + `"}]}`
	tests := []struct {
		name     string
		body     string
		chunked  bool
		wantCode int
		wantMsg  string
	}{
		{name: "over the limit", body: big, wantCode: 413, wantMsg: "request body exceeds 1024-byte limit"},
		{name: "over the limit, chunked", body: big, chunked: true, wantCode: 413, wantMsg: "request body exceeds 1024-byte limit"},
		{name: "broken JSON", body: `{"model":"chat-prod",`, wantCode: 400, wantMsg: "invalid JSON"},
		{name: "trailing garbage", body: `{"model":"chat-prod","messages":[{}]} x`, wantCode: 400, wantMsg: "invalid JSON"},
		{name: "no model", body: `{"messages":[{"role":"user","content":"hi"}]}`, wantCode: 400, wantMsg: "model is required"},
		{name: "no messages", body: `{"model":"chat-prod"}`, wantCode: 400, wantMsg: "messages is required"},
		{name: "empty messages", body: `{"model":"chat-prod","messages":[]}`, wantCode: 400, wantMsg: "messages array must not be empty"},
		{name: "a second model smuggled with an escaped key", body: `{"model":"chat-prod","mod\u0065l":"gpt-4","messages":[{}]}`, wantCode: 400, wantMsg: "more than once"},
		{name: "a second model in another case", body: `{"model":"chat-prod","Model":"gpt-4","messages":[{}]}`, wantCode: 400, wantMsg: "more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tt.body)
			if tt.chunked {
				body = io.MultiReader(body) // hides the length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", body)
			req.Header.Set("Authorization", "Bearer "+callerKey)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.wantCode || !strings.Contains(string(b), tt.wantMsg) {
				t.Fatalf("got %d %s, want %d with %q", resp.StatusCode, b, tt.wantCode, tt.wantMsg)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("content-type = %q", got)
			}
		})
	}
	if up.Hits() != 0 {
		t.Errorf("invalid requests reached the upstream %d times", up.Hits())
	}
}

// TestUpstreamRequest: only the model value changes on the way up; the
// provider key's credential replaces the caller's; hop-by-hop headers and
// the caller's credentials stay behind; every choice comes back.
func TestUpstreamRequest(t *testing.T) {
	up := upstream(t, "up")
	e := newEnv(t, pair(up, up, storage.Routing{}))
	body := "{\n  \"messages\": [{\"role\":\"user\",\"content\":\"h\u00e9llo \\\"q\\\"\"}],\n  \"model\" : \"chat-prod\",\n" +
		"  \"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],\n" +
		"  \"response_format\":{\"type\":\"json_object\"}, \"n\": 2, \"temperature\": 0.5e0\n}"
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body,
		"Connection", "X-Hop", "X-Hop", "secret-hop", "X-Custom", "dropped", "OpenAI-Organization", "org-caller",
		"X-Aisix-Served-By", "forged", "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
		"X-Forwarded-For", "10.0.0.1", "Idempotency-Key", "k1", "Api-Key", "azure-key", "X-Goog-Api-Key", "g-key",
		"Anthropic-Version", "2023-06-01", "X-Amz-Security-Token", "tok")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	reqs := up.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream requests", len(reqs))
	}
	got := reqs[0]
	want := strings.Replace(body, `"chat-prod"`, `"gpt-4o-mini"`, 1)
	if string(got.Body) != want {
		t.Errorf("upstream body:\n%s\nwant:\n%s", got.Body, want)
	}
	wantHeader(t, got.Header, "Authorization", "Bearer sk-upstream-pk-primary")
	// An allowlist, not a denylist: trace context goes up, nothing else.
	wantHeader(t, got.Header, "Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	for _, h := range []string{"X-Hop", "Openai-Organization", "X-Aisix-Served-By", "X-Api-Key", "X-Custom",
		"X-Forwarded-For", "Idempotency-Key", "Api-Key", "X-Goog-Api-Key", "Anthropic-Version", "X-Amz-Security-Token"} {
		if v := got.Header.Get(h); v != "" {
			t.Errorf("header %s forwarded upstream: %q", h, v)
		}
	}
	for k, vs := range got.Header {
		for _, v := range vs {
			if strings.Contains(v, callerKey) {
				t.Errorf("caller key forwarded in %s", k)
			}
		}
	}
	var resp struct {
		Model   string `json:"model"`
		Choices []struct {
			Index int `json:"index"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Model != "chat-prod" || len(resp.Choices) != 2 {
		t.Errorf("response model %q with %d choices, want chat-prod with 2", resp.Model, len(resp.Choices))
	}
	wantHeader(t, r.header, "Content-Type", "application/json")
	if r.header.Get("X-Aisix-Served-By") != "gpt-4o-primary" {
		t.Errorf("served-by = %q", r.header.Get("X-Aisix-Served-By"))
	}
}

// TestStrategies checks the order each strategy starts from.
func TestStrategies(t *testing.T) {
	tests := []struct {
		name     string
		routing  storage.Routing
		requests int
		want     []string // served-by, in order
	}{
		{name: "failover always starts at the first", routing: storage.Routing{Strategy: storage.StrategyFailover},
			requests: 3, want: []string{"a", "a", "a"}},
		{name: "round_robin rotates the start", routing: storage.Routing{Strategy: storage.StrategyRoundRobin},
			requests: 6, want: []string{"a", "b", "c", "a", "b", "c"}},
		{name: "weighted never starts at a zero weight", routing: storage.Routing{Strategy: storage.StrategyWeighted,
			Targets: []storage.Target{{Model: "a", Weight: ptr(0)}, {Model: "b", Weight: ptr(0)}, {Model: "c", Weight: ptr(5)}}},
			requests: 5, want: []string{"c", "c", "c", "c", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b, c := upstream(t, "a"), upstream(t, "b"), upstream(t, "c")
			r := tt.routing
			if r.Targets == nil {
				r.Targets = targets("a", "b", "c")
			}
			e := newEnv(t, storage.Dataset{
				ProviderKeys: []storage.ProviderKey{providerKey("pa", a.BaseURL()), providerKey("pb", b.BaseURL()), providerKey("pc", c.BaseURL())},
				Models:       []storage.Model{directModel("a", "pa"), directModel("b", "pb"), directModel("c", "pc"), routingModel("group", r)},
				APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
			})
			var got []string
			for i := 0; i < tt.requests; i++ {
				got = append(got, e.chat("group").header.Get("X-Aisix-Served-By"))
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("served by %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("weighted spreads by weight", func(t *testing.T) {
		a, b := upstream(t, "a"), upstream(t, "b")
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{providerKey("pa", a.BaseURL()), providerKey("pb", b.BaseURL())},
			Models: []storage.Model{directModel("a", "pa"), directModel("b", "pb"), routingModel("group", storage.Routing{
				Strategy: storage.StrategyWeighted, Targets: []storage.Target{{Model: "a", Weight: ptr(7)}, {Model: "b", Weight: ptr(3)}}})},
			APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "*")},
		})
		for i := 0; i < 200; i++ {
			e.chat("group")
		}
		// 70/30 expected; the bounds are many standard deviations wide.
		if a.Hits() < 100 || b.Hits() < 25 {
			t.Errorf("a=%d b=%d, want about 140/60", a.Hits(), b.Hits())
		}
	})
}

// TestDirectModel: retries apply to direct models; a direct model in
// cooldown is still called and its status shows the cooldown.
func TestDirectModel(t *testing.T) {
	up := upstream(t, "up", proxytest.ServerError(500), proxytest.OK(), proxytest.ServerError(500), proxytest.OK())
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("solo", "pk", withRetries(1))},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	}
	e := newEnv(t, ds)
	r := e.chat("solo")
	if r.status != 200 || r.json(t)["model"] != "solo" {
		t.Fatalf("status %d body %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "solo=500,solo=200")
	wantHeader(t, r.header, "X-Aisix-Served-By", "solo")

	e.update(func(ds *storage.Dataset) { ds.Models[0].Retries = nil })
	r = e.chat("solo")
	if r.status != 502 {
		t.Fatalf("status %d, want 502", r.status)
	}
	if st := e.reg.Status("id-solo"); st.State != health.StateCooldown {
		t.Fatalf("state %s, want cooldown", st.State)
	}
	r = e.chat("solo") // still called while cooling down: nothing else to try
	if r.status != 200 {
		t.Fatalf("status %d, want 200 from the cooling direct model", r.status)
	}
	if st := e.reg.Status("id-solo"); st.State != health.StateHealthy || st.Requests != 4 || st.Failures != 2 {
		t.Errorf("status = %+v", st)
	}
}

// TestUnknownAdapter: a provider key whose adapter no build knows (a row
// the store would refuse, written into the source directly) is skipped
// with its direct model, which is then not found; a group passes over
// it, and a group of only it answers the configuration error. (An
// adapter storage lists but routing does not implement answers 501
// not_implemented: routing's TestResolveUnimplementedAdapter.)
func TestUnknownAdapter(t *testing.T) {
	up := upstream(t, "up")
	foo := storage.ProviderKey{ID: "pk-foo", DisplayName: "foo", Provider: "foo", Adapter: "foo", Secret: "s", APIBase: up.BaseURL()}
	foo.SecretHost = foo.BaseHost()
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{foo, providerKey("pk", up.BaseURL())},
		Models: []storage.Model{
			directModel("foo-direct", "pk-foo", func(m *storage.Model) { m.ModelName = "foo-1" }), directModel("gpt", "pk"),
			routingModel("group", storage.Routing{Targets: targets("foo-direct", "gpt")}),
			routingModel("broken", storage.Routing{Targets: targets("foo-direct")}),
		},
		APIKeys: []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	})
	r := e.chat("foo-direct")
	if r.status != 404 || r.errType(t) != "model_not_found" {
		t.Errorf("direct: %d %s", r.status, r.body)
	}
	r = e.chat("group")
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt")
	r = e.chat("broken")
	if r.status != 500 || r.errType(t) != "config_error" || !strings.Contains(string(r.body), "adapter: must be one of") {
		t.Errorf("group of one unknown-adapter target: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "foo-direct=config_error")
	if up.Hits() != 1 {
		t.Errorf("upstream hits %d, want 1 (the group's)", up.Hits())
	}
}

// TestModelsEndpoint lists the aliases a key may use.
func TestModelsEndpoint(t *testing.T) {
	up := upstream(t, "up")
	ds := pair(up, up, storage.Routing{})
	ds.APIKeys = append(ds.APIKeys, callerAPIKey("r", "sk-r", "chat-prod", "ghost"))
	e := newEnv(t, ds)
	list := func(key string) []string {
		r := e.do(http.MethodGet, "/v1/models", key, "")
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		var body struct {
			Object string `json:"object"`
			Data   []struct {
				ID, Object, OwnedBy string
			} `json:"data"`
		}
		if err := json.Unmarshal(r.body, &body); err != nil || body.Object != "list" {
			t.Fatalf("body %s: %v", r.body, err)
		}
		var ids []string
		for _, d := range body.Data {
			ids = append(ids, d.ID)
		}
		return ids
	}
	if got := fmt.Sprint(list(callerKey)); got != "[chat-prod gpt-4o-primary gpt-4o-secondary]" {
		t.Errorf("* key sees %s", got)
	}
	if got := fmt.Sprint(list("sk-r")); got != "[chat-prod]" {
		t.Errorf("restricted key sees %s", got)
	}
	if r := e.do(http.MethodGet, "/v1/models", "", ""); r.status != 401 {
		t.Errorf("no key: %d", r.status)
	}
}

// TestProbesEndpoints covers /livez, /readyz and unknown routes.
func TestProbesEndpoints(t *testing.T) {
	up := upstream(t, "up")
	ready := true
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.Ready = func() bool { return ready } })
	if r := e.do(http.MethodGet, "/livez", "", ""); r.status != 200 || string(r.body) != "ok\n" {
		t.Errorf("livez: %d %q", r.status, r.body)
	}
	if r := e.do(http.MethodGet, "/readyz", "", ""); r.status != 200 {
		t.Errorf("readyz: %d", r.status)
	}
	ready = false
	if r := e.do(http.MethodGet, "/readyz", "", ""); r.status != 503 {
		t.Errorf("readyz while not ready: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/v1/chat/completions", callerKey, ""); r.status != 405 {
		t.Errorf("GET chat: %d", r.status)
	}
	if r := e.do(http.MethodGet, "/nope", "", ""); r.status != 404 || r.header.Get("Server") != "AISIX/0.1.0" {
		t.Errorf("unknown route: %d %v", r.status, r.header)
	}
}

// TestClientHangUp: a caller that goes away cancels the upstream request
// at once, and nothing is counted against the target.
func TestClientHangUp(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			started, cancelled := make(chan struct{}), make(chan struct{})
			hold := func(w http.ResponseWriter, c *proxytest.Call) {
				if c.Stream {
					w.Header().Set("Content-Type", "text/event-stream")
					_, _ = io.WriteString(w, `data: {"model":"m","choices":[{"index":0,"delta":{"content":"x"}}]}`+"\n\n")
					w.(http.Flusher).Flush()
				}
				close(started)
				<-c.R.Context().Done()
				close(cancelled)
			}
			up := upstream(t, "up", hold)
			e := newEnv(t, pair(up, up, storage.Routing{}))
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+"/v1/chat/completions",
				strings.NewReader(chatBody("chat-prod", stream)))
			req.Header.Set("Authorization", "Bearer "+callerKey)
			errc := make(chan error, 1)
			go func() {
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				errc <- err
			}()
			<-started
			hungUp := time.Now()
			cancel()
			select {
			case <-cancelled:
			case <-time.After(5 * time.Second):
				t.Fatal("the upstream request was not cancelled")
			}
			wantUnder(t, time.Since(hungUp), time.Second)
			<-errc
			// The handler finishes right after; wait for its bookkeeping.
			deadline := time.Now().Add(5 * time.Second)
			for e.reg.Status("id-gpt-4o-primary").InFlight != 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			st := e.reg.Status("id-gpt-4o-primary")
			if st.Failures != 0 || st.State != health.StateHealthy || st.InFlight != 0 {
				t.Errorf("a hang-up was counted against the target: %+v", st)
			}
		})
	}
}

// TestKeepAlive: a committed stream that goes quiet gets SSE comments.
func TestKeepAlive(t *testing.T) {
	up := upstream(t, "up", proxytest.Stream(proxytest.StreamOptions{Chunks: []string{"a", "b"}, Gap: 400 * time.Millisecond}))
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.KeepAliveInterval = 50 * time.Millisecond })
	r := e.stream("chat-prod")
	if r.comments == 0 || !r.done() || r.content(t) != "ab" {
		t.Errorf("comments=%d done=%v raw:\n%s", r.comments, r.done(), r.raw)
	}
}

// TestEventsAndReload: the event ring tells the failover story and
// records config reloads.
func TestEventsAndReload(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Reset())
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, storage.Routing{Retries: ptr(1)}))
	r := e.chat("chat-prod")
	callID := r.header.Get("X-Aisix-Call-Id")
	all, next := e.reg.Events(0)
	var kinds []string
	for _, ev := range all {
		kinds = append(kinds, ev.Kind)
		if ev.CallID != callID {
			t.Errorf("event %s has call id %q, want %q", ev.Kind, ev.CallID, callID)
		}
	}
	want := "[cooldown_entered attempt_failed attempt_failed failover served]"
	if fmt.Sprint(kinds) != want {
		t.Errorf("events %v, want %s", kinds, want)
	}
	if last := all[len(all)-1]; last.Detail != "gpt-4o-primary=transport_error,gpt-4o-primary=transport_error,gpt-4o-secondary=200" {
		t.Errorf("served detail = %q", last.Detail)
	}
	e.update(func(ds *storage.Dataset) { ds.Models[1].ModelName = "gpt-4o" })
	evs, _ := e.reg.Events(next)
	if len(evs) != 1 || evs[0].Kind != health.EventConfigReloaded {
		t.Errorf("after reload: %+v", evs)
	}
}
