package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// tutorial is the README's configuration: two provider keys, the primary
// and secondary direct models, a failover group chat-prod over them, and
// one caller key that may call chat-prod.
func tutorial() storage.Dataset {
	pk := func(id, base string) storage.ProviderKey {
		p := storage.ProviderKey{ID: id, DisplayName: id, Provider: "openai", Adapter: "openai", Secret: "sk-" + id, APIBase: base}
		p.SecretHost = p.BaseHost()
		return p
	}
	direct := func(name, pkID string) storage.Model {
		return storage.Model{ID: "id-" + name, DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pkID}
	}
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{pk("openai-primary", "http://127.0.0.1:1/v1"), pk("openai-secondary", "http://127.0.0.1:2/v1")},
		Models: []storage.Model{
			direct("gpt-4o-primary", "openai-primary"), direct("gpt-4o-secondary", "openai-secondary"),
			{ID: "id-chat-prod", DisplayName: "chat-prod", Routing: &storage.Routing{Strategy: "failover",
				Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}}}},
		},
		APIKeys: []storage.APIKey{{ID: "key-1", DisplayName: "demo", KeyHash: proxytest.KeyHash("sk-demo"), AllowedModels: []string{"chat-prod"}}},
	}
}

type fixture struct {
	m                  *Metrics
	src                *proxytest.Source
	table              *routing.Table
	group, prim, secnd *routing.Model
	key                *routing.CallerKey
	state              map[string]string
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{src: proxytest.NewSource(tutorial()), state: map[string]string{}}
	f.table = routing.NewTable(f.src, nil)
	if err := f.table.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	var set deps.Set
	set.Register("store", f.table.StoreState)
	f.m = New(Options{Table: f.table, State: func(id string) string {
		if s := f.state[id]; s != "" {
			return s
		}
		return "healthy"
	}, Version: "test", Deps: &set})
	f.refresh(t)
	return f
}

func (f *fixture) refresh(t testing.TB) {
	t.Helper()
	s := f.table.Snapshot()
	f.group, f.prim, f.secnd = s.Model("chat-prod"), s.Model("gpt-4o-primary"), s.Model("gpt-4o-secondary")
	if f.group == nil || f.prim == nil || f.secnd == nil || len(s.CallerKeys()) != 1 {
		t.Fatalf("tutorial snapshot incomplete: %v", s.ConfigErrors())
	}
	f.key = s.CallerKeys()[0]
}

// failover feeds the records of the tutorial's failover: the primary
// fails twice (a retry, then a cooldown), the secondary answers.
func (f *fixture) failover() {
	p, s := f.prim.Direct, f.secnd.Direct
	base := observe.Attempt{Key: f.key, Op: provider.OpChat, Wire: "openai", Model: f.group, Latency: 40 * time.Millisecond}
	a := base
	a.Target, a.N, a.Outcome, a.Reason = p, 1, "transport_error", "transport_error"
	f.m.Attempt(&a)
	a = base
	a.Target, a.N, a.Outcome, a.Reason, a.Cooldown = p, 2, "transport_error", "transport_error", true
	f.m.Attempt(&a)
	a = base
	a.Target, a.From, a.N, a.Outcome, a.Status = s, p, 3, observe.OutcomeOK, 200
	a.Usage, a.Cost, a.Priced = provider.Usage{Input: 10, Output: 9, Cached: 4}, 0.25, true
	f.m.Attempt(&a)
	f.m.Request(&observe.Request{Key: f.key, Op: provider.OpChat, Wire: "openai", Alias: "chat-prod", Model: f.group,
		Latency: 130 * time.Millisecond, Upstream: 120 * time.Millisecond, Status: 200, Outcome: observe.OutcomeOK,
		Attempts: 3, Failovers: 1, ServedBy: s})
}

func TestFailoverCounts(t *testing.T) {
	f := newFixture(t)
	f.failover()
	m := f.m
	cases := []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"primary failures", m.attempts.WithLabelValues("gpt-4o-primary", "transport_error", "transport_error"), 2},
		{"secondary ok", m.attempts.WithLabelValues("gpt-4o-secondary", "ok", ""), 1},
		{"primary ok", m.attempts.WithLabelValues("gpt-4o-primary", "ok", ""), 0},
		{"retry on primary", m.retries.WithLabelValues("gpt-4o-primary"), 1},
		{"no retry on secondary", m.retries.WithLabelValues("gpt-4o-secondary"), 0},
		{"failover", m.failovers.WithLabelValues("gpt-4o-primary", "gpt-4o-secondary"), 1},
		{"no failover back", m.failovers.WithLabelValues("gpt-4o-secondary", "gpt-4o-primary"), 0},
		{"cooldown", m.cooldowns.WithLabelValues("gpt-4o-primary", "transport_error"), 1},
		{"request", m.requests.WithLabelValues("/v1/chat/completions", "openai", "chat-prod", "2xx", "ok"), 1},
		{"input tokens", m.tokens.WithLabelValues("chat-prod", "gpt-4o-secondary", "demo", "input"), 10},
		{"output tokens", m.tokens.WithLabelValues("chat-prod", "gpt-4o-secondary", "demo", "output"), 9},
		{"cached tokens", m.tokens.WithLabelValues("chat-prod", "gpt-4o-secondary", "demo", "cached"), 4},
		{"cost", m.cost.WithLabelValues("chat-prod", "gpt-4o-secondary", "demo"), 0.25},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := testutil.ToFloat64(tc.c); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	if n := histCount(t, m, "aisix_upstream_duration_seconds", map[string]string{"target": "gpt-4o-primary", "outcome": "error"}); n != 2 {
		t.Errorf("primary error latencies: %d, want 2", n)
	}
	if n := histCount(t, m, "aisix_request_duration_seconds", map[string]string{"alias": "chat-prod"}); n != 1 {
		t.Errorf("request latencies: %d, want 1", n)
	}
	if n := histCount(t, m, "aisix_gateway_overhead_seconds", map[string]string{"endpoint": "/v1/chat/completions"}); n != 1 {
		t.Errorf("overhead observations: %d, want 1", n)
	}
}

// histCount is the sample count of the histogram series of family name
// whose labels include want.
func histCount(t *testing.T, m *Metrics, name string, want map[string]string) uint64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range mt.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			n += mt.GetHistogram().GetSampleCount()
		}
	}
	return n
}

func TestProbesAndTTFT(t *testing.T) {
	f := newFixture(t)
	p := f.prim.Direct
	for _, tc := range []struct {
		outcome string
		result  string
	}{{observe.OutcomeOK, "passed"}, {"503", "failed"}, {observe.OutcomeClientClosed, "abandoned"}} {
		f.m.Attempt(&observe.Attempt{Key: f.key, Model: f.prim, Target: p, N: 1, Probe: true, Outcome: tc.outcome, Stream: true, TTFT: time.Second})
		if got := testutil.ToFloat64(f.m.probes.WithLabelValues("gpt-4o-primary", tc.result)); got != 1 {
			t.Errorf("probe %s: %v, want 1", tc.result, got)
		}
	}
	if n := histCount(t, f.m, "aisix_upstream_time_to_first_token_seconds", map[string]string{"target": "gpt-4o-primary"}); n != 3 {
		t.Errorf("upstream ttft observations: %d, want 3", n)
	}
	f.m.Request(&observe.Request{Op: provider.OpChat, Wire: "openai", Model: f.prim, Status: 200, Outcome: "ok", Stream: true, TTFT: 2 * time.Second})
	if n := histCount(t, f.m, "aisix_time_to_first_token_seconds", map[string]string{"alias": "gpt-4o-primary"}); n != 1 {
		t.Errorf("ttft observations: %d, want 1", n)
	}
}

// TestFamiliesAtStartup: every family is exposed before any traffic.
func TestFamiliesAtStartup(t *testing.T) {
	f := newFixture(t)
	mfs, err := f.m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, mf := range mfs {
		have[mf.GetName()] = true
	}
	for _, name := range []string{
		"aisix_requests_total", "aisix_requests_in_flight", "aisix_request_duration_seconds", "aisix_time_to_first_token_seconds",
		"aisix_gateway_overhead_seconds", "aisix_upstream_attempts_total", "aisix_upstream_duration_seconds",
		"aisix_upstream_time_to_first_token_seconds", "aisix_failovers_total", "aisix_retries_total", "aisix_cooldowns_total",
		"aisix_probes_total", "aisix_target_state", "aisix_tokens_total", "aisix_cost_usd_total", "aisix_config_reloads_total",
		"aisix_config_reload_failures_total", "aisix_config_errors", "aisix_config_revision", "aisix_config_build_duration_seconds",
		"aisix_usage_records_dropped_total", "aisix_usage_records_backlog", "aisix_build_info", "go_goroutines", "process_open_fds",
		"aisix_dependency_up", "aisix_dependency_since_timestamp_seconds", "aisix_store_last_contact_age_seconds",
		"aisix_auth_failures_total", "aisix_auth_throttled_total",
	} {
		if !have[name] {
			t.Errorf("family %s missing at start-up", name)
		}
	}
	if n := histCount(t, f.m, "aisix_config_build_duration_seconds", nil); n != 1 {
		t.Errorf("build durations at start: %d, want 1 (the first load)", n)
	}
}

// TestSeriesBoundedByConfig: 10,000 distinct unknown model names, and as
// many requests of every shape on a known one, create no series beyond
// the fixed label sets.
func TestSeriesBoundedByConfig(t *testing.T) {
	f := newFixture(t)
	before := testutil.CollectAndCount(f.m.requests)
	for i := range 10000 {
		f.m.Request(&observe.Request{Op: provider.OpChat, Wire: "openai", Alias: fmt.Sprintf("no-such-model-%d", i),
			Status: 404, Outcome: observe.OutcomeError})
	}
	if got := testutil.CollectAndCount(f.m.requests); got != before {
		t.Fatalf("requests series: %d after 10,000 unknown models, %d before", got, before)
	}
	if got := testutil.ToFloat64(f.m.requests.WithLabelValues("/v1/chat/completions", "openai", "", "4xx", "error")); got != 10000 {
		t.Fatalf("unknown-model requests: %v, want 10000", got)
	}
	total := func() int {
		mfs, err := f.m.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "aisix_") {
				n += len(mf.GetMetric())
			}
		}
		return n
	}
	all := total()
	for i := range 10000 {
		f.m.Request(&observe.Request{Op: provider.OpChat, Wire: "openai", Alias: fmt.Sprint("x", i), Status: 400 + i%100, Outcome: observe.OutcomeError})
	}
	if got := total(); got != all {
		t.Fatalf("aisix series: %d after the traffic, %d before", got, all)
	}
}

// TestSwapFollowsConfig: a reload creates the new model's series and
// deletes the dropped one's; records of the old snapshot still count.
func TestSwapFollowsConfig(t *testing.T) {
	f := newFixture(t)
	oldGroup, oldPrim := f.group, f.prim.Direct
	f.src.Update(func(ds *storage.Dataset) {
		ds.Models = append(ds.Models[:2], storage.Model{ID: "id-chat-next", DisplayName: "chat-next",
			Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-secondary"}, {Model: "gpt-4o-primary"}}}})
	})
	if err := f.table.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(f.m.reloads); got != 1 {
		t.Errorf("reloads: %v, want 1", got)
	}
	text := expose(t, f.m)
	if strings.Contains(text, `alias="chat-prod"`) {
		t.Error("series of the dropped chat-prod remain")
	}
	if !strings.Contains(text, `aisix_requests_total{alias="chat-next",endpoint="/v1/chat/completions",outcome="ok",status_class="2xx",wire="openai"} 0`) {
		t.Error("no zero series for the new chat-next")
	}
	// A request that started on the old snapshot ends after the swap.
	f.m.Attempt(&observe.Attempt{Key: f.key, Model: oldGroup, Target: oldPrim, N: 1, Outcome: "ok"})
	f.m.Request(&observe.Request{Op: provider.OpChat, Wire: "openai", Model: oldGroup, Status: 200, Outcome: "ok"})
	if got := testutil.ToFloat64(f.m.attempts.WithLabelValues("gpt-4o-primary", "ok", "")); got != 1 {
		t.Errorf("attempt on the old snapshot's target: %v, want 1", got)
	}
}

func TestTargetState(t *testing.T) {
	f := newFixture(t)
	f.state[f.prim.Direct.ID] = "cooldown"
	text := expose(t, f.m)
	for _, want := range []string{
		`aisix_target_state{state="cooldown",target="gpt-4o-primary"} 1`,
		`aisix_target_state{state="healthy",target="gpt-4o-primary"} 0`,
		`aisix_target_state{state="healthy",target="gpt-4o-secondary"} 1`,
		`aisix_config_revision 1`,
		`aisix_config_errors{kind="model"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

func TestUsageDropped(t *testing.T) {
	var dropped uint64 = 7
	m := New(Options{UsageDropped: func() uint64 { return dropped }})
	if !strings.Contains(expose(t, m), "aisix_usage_records_dropped_total 7\n") {
		t.Error("dropped usage records not read at scrape")
	}
}

func TestInFlight(t *testing.T) {
	m := New(Options{})
	var during float64
	h := m.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { during = testutil.ToFloat64(m.inFlight) }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/v1/chat/completions", nil))
	if during != 1 || testutil.ToFloat64(m.inFlight) != 0 {
		t.Fatalf("in flight: %v during, %v after", during, testutil.ToFloat64(m.inFlight))
	}
}

func TestHandlerToken(t *testing.T) {
	for _, tc := range []struct {
		name, token, header string
		want                int
	}{
		{"no token configured", "", "", 200},
		{"right token", "s3cret", "Bearer s3cret", 200},
		{"wrong token", "s3cret", "Bearer nope", 401},
		{"other scheme", "s3cret", "Basic s3cret", 401},
		{"none sent", "s3cret", "", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{Token: tc.token}).Handler()
			req := httptest.NewRequest("GET", "/metrics", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("status %d, want %d", rec.Code, tc.want)
			}
		})
	}
}

func TestCustomBuckets(t *testing.T) {
	m := New(Options{LatencyBuckets: []float64{1, 10}})
	m.Request(&observe.Request{Op: provider.OpChat, Wire: "openai", Status: 404, Outcome: "error", Latency: 2 * time.Second})
	text := expose(t, m)
	if !strings.Contains(text, `aisix_request_duration_seconds_bucket{alias="",endpoint="/v1/chat/completions",le="10"} 1`) ||
		strings.Contains(text, `aisix_request_duration_seconds_bucket{alias="",endpoint="/v1/chat/completions",le="0.5"}`) {
		t.Fatalf("latency buckets not the configured ones:\n%s", grep(text, "aisix_request_duration_seconds_bucket"))
	}
}

// TestPromtool checks the exposition with promtool (Debian's prometheus
// package); CI must have it.
func TestPromtool(t *testing.T) {
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found; CI installs the prometheus package")
		}
		t.Skip("promtool not installed")
	}
	f := newFixture(t)
	f.failover()
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(expose(t, f.m))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// expose is the text exposition the handler serves.
func expose(t testing.TB, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}

func grep(text, prefix string) string {
	var b strings.Builder
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestLimitRejections(t *testing.T) {
	f := newFixture(t)
	text := expose(t, f.m)
	for _, want := range []string{
		`aisix_limit_rejections_total{dimension="rpm",scope="caller_key"} 0`,
		`aisix_limit_rejections_total{dimension="budget",scope="model"} 0`,
		`aisix_limit_rejections_total{dimension="tpm",scope="target"} 0`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("at start-up the exposition lacks %s", want)
		}
	}
	if strings.Contains(text, `dimension="budget",scope="target"`) {
		t.Error("a target scope budget series exists: provider limits have no budget")
	}
	f.m.Request(&observe.Request{Key: f.key, Op: provider.OpChat, Wire: "openai", Alias: "chat-prod", Model: f.group,
		Status: 429, Outcome: observe.OutcomeRateLimited,
		Rejection: &limit.Rejection{Scope: limit.ScopeCallerKey, Dimension: limit.DimRPM, Limit: 60}})
	f.m.Request(&observe.Request{Key: f.key, Op: provider.OpChat, Wire: "openai", Alias: "chat-prod", Model: f.group,
		Status: 200, Outcome: observe.OutcomeOK, ServedBy: f.secnd.Direct,
		LimitSkips: []limit.Rejection{{Scope: limit.ScopeTarget, ID: f.prim.ID, Dimension: limit.DimTPM, Limit: 1000}}})
	text = expose(t, f.m)
	for _, want := range []string{
		`aisix_limit_rejections_total{dimension="rpm",scope="caller_key"} 1`,
		`aisix_limit_rejections_total{dimension="tpm",scope="target"} 1`,
		`aisix_requests_total{alias="chat-prod",endpoint="/v1/chat/completions",outcome="rate_limited",status_class="4xx",wire="openai"} 1`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
}

// TestDependencyUp: aisix_dependency_up{dependency="store"} is 1 from
// start-up, 0 once the store stops answering (the snapshot keeps
// serving), and 1 again when it is back.
func TestDependencyUp(t *testing.T) {
	f := newFixture(t)
	up := func() string {
		t.Helper()
		for _, line := range strings.Split(expose(t, f.m), "\n") {
			if strings.HasPrefix(line, `aisix_dependency_up{dependency="store"} `) {
				return strings.TrimPrefix(line, `aisix_dependency_up{dependency="store"} `)
			}
		}
		t.Fatal("no aisix_dependency_up for the store")
		return ""
	}
	if got := up(); got != "1" {
		t.Errorf("at start-up: %s, want 1", got)
	}
	f.src.Fail(errors.New("connection refused"))
	if err := f.table.Reload(context.Background()); err == nil {
		t.Fatal("reload of a failing store succeeded")
	}
	if got := up(); got != "0" {
		t.Errorf("while the store fails: %s, want 0", got)
	}
	f.src.Fail(nil)
	if err := f.table.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := up(); got != "1" {
		t.Errorf("after the store is back: %s, want 1", got)
	}
}

// TestHedges: the two attempts of a hedged stream count in hedges_total
// by the group's alias, and the loser's reported tokens in tokens_total.
func TestHedges(t *testing.T) {
	f := newFixture(t)
	lost := &observe.Attempt{Key: f.key, Model: f.group, Target: f.prim.Direct, N: 1, Stream: true,
		Outcome: observe.OutcomeHedgeLost, Reason: observe.OutcomeHedgeLost, Hedge: observe.HedgeLost, Usage: provider.Usage{Input: 10}}
	won := &observe.Attempt{Key: f.key, Model: f.group, Target: f.secnd.Direct, From: f.prim.Direct, N: 2, Stream: true,
		Outcome: observe.OutcomeOK, Hedge: observe.HedgeWon, Usage: provider.Usage{Input: 10, Output: 5}}
	f.m.Attempt(lost)
	f.m.Attempt(won)
	for _, tc := range []struct {
		name string
		c    prometheus.Collector
		want float64
	}{
		{"won", f.m.hedges.WithLabelValues("chat-prod", "won"), 1},
		{"lost", f.m.hedges.WithLabelValues("chat-prod", "lost"), 1},
		{"loser's attempt", f.m.attempts.WithLabelValues("gpt-4o-primary", "hedge_lost", "hedge_lost"), 1},
		{"loser's input tokens", f.m.tokens.WithLabelValues("chat-prod", "gpt-4o-primary", "demo", "input"), 10},
	} {
		if got := testutil.ToFloat64(tc.c); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestHedgeSeriesFromStart: a hedging group's hedges_total series exist at
// zero from its first snapshot (dashboards do not start empty), and go
// when the group is deleted.
func TestHedgeSeriesFromStart(t *testing.T) {
	ds := tutorial()
	ds.Models[2].Routing.Hedge = &storage.Hedge{AfterMS: 200}
	src := proxytest.NewSource(ds)
	table := routing.NewTable(src, nil)
	if err := table.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	m := New(Options{Table: table, Version: "test"})
	m.Swap(table.Snapshot())
	if n := testutil.CollectAndCount(m.hedges); n != 2 {
		t.Errorf("%d hedges_total series before any request, want won and lost for chat-prod", n)
	}
	if got := testutil.ToFloat64(m.hedges.WithLabelValues("chat-prod", "won")); got != 0 {
		t.Errorf("won = %v, want 0", got)
	}
	src.Update(func(ds *storage.Dataset) {
		ds.Models = ds.Models[:2]
		ds.APIKeys[0].AllowedModels = []string{"*"}
	})
	if err := table.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Swap(table.Snapshot())
	if n := testutil.CollectAndCount(m.hedges); n != 0 {
		t.Errorf("%d hedges_total series after the group was deleted, want 0", n)
	}
}

// TestSwapKeepsNamedSeries: a swap after a write that leaves a model, its
// targets and the caller key alone keeps their counts (the series resolved
// for them are reused), and a model that leaves the configuration and
// comes back starts again from zero, like every series of a new name.
func TestSwapKeepsNamedSeries(t *testing.T) {
	f := newFixture(t)
	a, r := f.records()
	f.m.Attempt(a)
	f.m.Request(r)
	reload := func(fn func(ds *storage.Dataset)) {
		t.Helper()
		f.src.Update(fn)
		if err := f.table.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		if f.table.Snapshot().Model("chat-prod") != nil {
			f.refresh(t)
		}
	}
	counts := func() (req, att, tok float64) {
		return testutil.ToFloat64(f.m.requests.WithLabelValues("/v1/chat/completions", "openai", "chat-prod", "2xx", "ok")),
			testutil.ToFloat64(f.m.attempts.WithLabelValues("gpt-4o-primary", "ok", "")),
			testutil.ToFloat64(f.m.tokens.WithLabelValues("chat-prod", "gpt-4o-primary", "demo", "input"))
	}
	// An unrelated write: a model added.
	reload(func(ds *storage.Dataset) {
		m := ds.Models[0]
		m.ID, m.DisplayName = "id-extra", "extra"
		ds.Models = append(ds.Models, m)
	})
	a, r = f.records()
	f.m.Attempt(a)
	f.m.Request(r)
	if req, att, tok := counts(); req != 2 || att != 2 || tok != 24 {
		t.Fatalf("after an unrelated swap: requests %v, attempts %v, input tokens %v; want 2, 2, 24", req, att, tok)
	}
	// chat-prod leaves, then comes back: a new name, new series.
	var group storage.Model
	reload(func(ds *storage.Dataset) {
		group = ds.Models[2]
		ds.Models = append(ds.Models[:2], ds.Models[3:]...)
	})
	reload(func(ds *storage.Dataset) { ds.Models = append(ds.Models, group) })
	if req, _, tok := counts(); req != 0 || tok != 0 {
		t.Fatalf("chat-prod back after it left: requests %v, input tokens %v; want 0, 0", req, tok)
	}
	a, r = f.records()
	f.m.Attempt(a)
	f.m.Request(r)
	if req, _, tok := counts(); req != 1 || tok != 12 {
		t.Fatalf("chat-prod back, one request: requests %v, input tokens %v; want 1, 12", req, tok)
	}
}

// TestSwapSeriesStable: more key and model pairs than are pre-created, and
// swap after swap of the same configuration pre-creates the same ones, so
// the series (and the memory) do not grow with the number of admin writes.
func TestSwapSeriesStable(t *testing.T) {
	var ds storage.Dataset
	ds.ProviderKeys = []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Adapter: "openai", Secret: "sk-pk", APIBase: "http://127.0.0.1:1/v1"}}
	ds.ProviderKeys[0].SecretHost = ds.ProviderKeys[0].BaseHost()
	for i := range 100 {
		name := fmt.Sprintf("m-%03d", i)
		ds.Models = append(ds.Models, storage.Model{ID: "id-" + name, DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"})
	}
	for i := range 1000 {
		ds.APIKeys = append(ds.APIKeys, storage.APIKey{ID: fmt.Sprintf("key-%04d", i), DisplayName: fmt.Sprintf("key-%04d", i),
			KeyHash: proxytest.KeyHash(fmt.Sprintf("sk-%04d", i)), AllowedModels: []string{fmt.Sprintf("m-%03d", i%100), fmt.Sprintf("m-%03d", (i+1)%100), fmt.Sprintf("m-%03d", (i+2)%100)}})
	}
	m := New(Options{Version: "test"})
	var counts []int
	for range 4 {
		snap, err := routing.Build(ds)
		if err != nil || len(snap.CallerKeys()) != 1000 {
			t.Fatalf("snapshot: %v, %v", err, snap.ConfigErrors())
		}
		m.Swap(snap)
		counts = append(counts, testutil.CollectAndCount(m.tokens))
	}
	if counts[0] != 3*maxUsagePrecreate || slices.Min(counts) != slices.Max(counts) {
		t.Fatalf("token series after each of 4 swaps of one configuration: %v, want %d every time", counts, 3*maxUsagePrecreate)
	}
}
