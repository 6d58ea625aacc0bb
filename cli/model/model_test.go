package model_test

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/cli/model"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// setup creates the tutorial's models: two direct models and chat-prod.
func setup(t *testing.T, e *clitest.Env) {
	t.Helper()
	e.Must("sk-primary-test-secret-0001", "provider-key", "create", "--name", "openai-primary", "--provider", "openai", "--secret-stdin", "-q")
	e.Must("", "model", "create", "--name", "gpt-4o-primary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary", "-q")
	e.Must("", "model", "create", "--name", "gpt-4o-secondary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary",
		"--timeout", "30s", "--retries", "2", "--no-cooldown", "-q")
	e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--retries", "1", "-q")
}

func effectiveOf(t *testing.T, out string) map[string]any {
	t.Helper()
	var en struct {
		Value struct {
			Effective map[string]any `json:"effective"`
		} `json:"value"`
	}
	if err := json.Unmarshal([]byte(out), &en); err != nil {
		t.Fatalf("-o json output %q: %v", out, err)
	}
	return en.Value.Effective
}

func TestGetShowsEffectiveSettings(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		setup(t, e)

		eff := effectiveOf(t, e.Must("", "model", "get", "gpt-4o-primary", "-o", "json").Stdout)
		if eff["timeout_ms"] != 300000.0 || eff["stream_header_timeout_ms"] != 30000.0 || eff["connect_timeout_ms"] != 5000.0 || eff["retries"] != 0.0 {
			t.Errorf("direct model with defaults: effective %v", eff)
		}
		if c, _ := eff["cooldown"].(map[string]any); c["enabled"] != true || c["default_seconds"] != 30.0 {
			t.Errorf("direct model with defaults: cooldown %v", eff["cooldown"])
		}
		eff = effectiveOf(t, e.Must("", "model", "get", "gpt-4o-secondary", "-o", "json").Stdout)
		if c, _ := eff["cooldown"].(map[string]any); eff["timeout_ms"] != 30000.0 || eff["stream_idle_timeout_ms"] != 30000.0 || eff["retries"] != 2.0 || c["enabled"] != false {
			t.Errorf("direct model with settings: effective %v", eff)
		}
		// max_fallbacks unset: every other target.
		eff = effectiveOf(t, e.Must("", "model", "get", "chat-prod", "-o", "json").Stdout)
		if eff["strategy"] != "failover" || eff["retries"] != 1.0 || eff["max_fallbacks"] != 1.0 || eff["retry_on_429"] != true ||
			eff["timeout_ms"] != 0.0 || eff["when_all_unavailable"] != "try_anyway" {
			t.Errorf("routing model: effective %v", eff)
		}
		if out := e.Must("", "model", "get", "chat-prod", "-o", "yaml").Stdout; !strings.Contains(out, "effective:\n") || !strings.Contains(out, "max_fallbacks: 1\n") {
			t.Errorf("-o yaml:\n%s", out)
		}
		if out := e.Must("", "model", "list", "-o", "json").Stdout; strings.Count(out, `"effective"`) != 3 {
			t.Errorf("list -o json has %d effective objects, want 3", strings.Count(out, `"effective"`))
		}

		// Piped, the table stays one row.
		if out := e.Must("", "model", "get", "chat-prod").Stdout; strings.Count(out, "\n") != 1 {
			t.Errorf("piped get:\n%s\nwant one row", out)
		}
		e.TTY = true
		out := e.Must("", "model", "get", "gpt-4o-primary").Stdout
		for _, re := range []string{
			`(?m)^Effective settings \(defaults applied\):$`,
			`(?m)^  timeout +5m0s$`,
			`(?m)^  stream header timeout +30s$`,
			`(?m)^  stream first chunk timeout +1m0s$`,
			`(?m)^  stream idle timeout +20s$`,
			`(?m)^  connect timeout +5s$`,
			`(?m)^  retries +0$`,
			`(?m)^  cooldown +30s \(at most 10m0s from Retry-After\) after status 401, 403-404, 408, 429, 500-599$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("get gpt-4o-primary on a terminal does not match %s:\n%s", re, out)
			}
		}
		out = e.Must("", "model", "get", "chat-prod").Stdout
		for _, re := range []string{`(?m)^  strategy +failover$`, `(?m)^  max fallbacks +1$`, `(?m)^  timeout +none$`, `(?m)^  retry on 429 +true$`, `(?m)^  stream failure +error \(terminal error event\)$`, `(?m)^  hedge +off$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("get chat-prod on a terminal does not match %s:\n%s", re, out)
			}
		}
		if out := e.Must("", "model", "get", "gpt-4o-secondary").Stdout; !regexp.MustCompile(`(?m)^  cooldown +off$`).MatchString(out) {
			t.Errorf("get gpt-4o-secondary:\n%s", out)
		}
	})
}

// TestExplain: targets keep the strategy's order, cooling ones follow
// soonest end first, and each row names its provider, so a group that
// spans providers reads at a glance.
func TestExplain(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	soon, later := admin.NewSystemTime(now.Add(10*time.Second)), admin.NewSystemTime(now.Add(time.Minute))
	r := &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "claude-fallback"}, {Model: "azure-gpt4o"}, {Model: "gone"}}}
	status := map[string]admin.StatusRow{
		"gpt-4o-primary":  {DisplayName: "gpt-4o-primary", Status: "cooldown", CooldownUntil: &later, StatusReason: "transport_error", DirectStats: &admin.DirectStats{Provider: "openai"}},
		"claude-fallback": {DisplayName: "claude-fallback", Status: "cooldown", CooldownUntil: &soon, StatusReason: "upstream_overloaded", DirectStats: &admin.DirectStats{Provider: "anthropic"}},
		"azure-gpt4o":     {DisplayName: "azure-gpt4o", Status: "healthy", DirectStats: &admin.DirectStats{Provider: "azure"}},
	}
	var got []string
	for _, row := range model.Explain(r, status, now) {
		got = append(got, row.Target+"/"+row.Provider+"/"+row.Status)
	}
	want := []string{"azure-gpt4o/azure/healthy", "gone//unknown", "claude-fallback/anthropic/cooldown", "gpt-4o-primary/openai/cooldown"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("explain order\n got %v\nwant %v", got, want)
	}
}

// TestExplainProviderLimit: a target at its provider_limit now is listed
// after the others as not tried, with the dimension it is at; it takes
// nothing from the max_fallbacks budget, and the next target serves.
func TestExplainProviderLimit(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	later := admin.NewSystemTime(now.Add(time.Minute))
	one := 1
	r := &storage.Routing{MaxFallbacks: &one, Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}, {Model: "claude-fallback"}}}
	status := map[string]admin.StatusRow{
		"gpt-4o-primary": {DisplayName: "gpt-4o-primary", Status: "healthy", DirectStats: &admin.DirectStats{Provider: "openai",
			ProviderLimit: &storage.RateLimit{RPM: 50, TPM: 1000}, ProviderLimitUsage: &storage.LimitUsage{RPM: 50, TPM: 20}, AtProviderLimit: true}},
		"gpt-4o-secondary": {DisplayName: "gpt-4o-secondary", Status: "healthy", DirectStats: &admin.DirectStats{Provider: "openai",
			ProviderLimit: &storage.RateLimit{RPM: 50}, ProviderLimitUsage: &storage.LimitUsage{RPM: 49}}},
		"claude-fallback": {DisplayName: "claude-fallback", Status: "cooldown", CooldownUntil: &later, StatusReason: "transport_error", DirectStats: &admin.DirectStats{Provider: "anthropic"}},
	}
	rows := model.Explain(r, status, now)
	var got []string
	for _, row := range rows {
		got = append(got, fmt.Sprintf("%d %s tried=%v limited=%v: %s", row.Position, row.Target, row.Tried, row.AtProviderLimit, row.Why))
	}
	want := []string{
		"1 gpt-4o-secondary tried=true limited=false: healthy; serves next",
		"2 claude-fallback tried=true limited=false: cooling down for 1m0s (until 12:01:00) because of transport_error",
		"3 gpt-4o-primary tried=false limited=true: at its provider_limit (rpm 50/50): skipped as local_rate_limit until it frees",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("explain\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(want, "\n     "))
	}
}

// TestPriceFlags: --price-* set a direct model's price, update changes one
// of them, --no-price removes it, and a routing group refuses one.
func TestPriceFlags(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		setup(t, e)
		priceOf := func(name string) *storage.ModelPrice {
			t.Helper()
			var en admin.Entry[storage.Model]
			if err := json.Unmarshal([]byte(e.Must("", "model", "get", name, "-o", "json").Stdout), &en); err != nil {
				t.Fatal(err)
			}
			return en.Value.Price
		}
		if p := priceOf("gpt-4o-primary"); p != nil {
			t.Fatalf("new model has price %+v", p)
		}
		if r := e.Run("", "model", "update", "gpt-4o-primary", "--price-input", "2.5"); r.Code != 2 || !strings.Contains(r.Stderr, "--price-output") {
			t.Errorf("input price alone on an unpriced model: exit %d, stderr %q", r.Code, r.Stderr)
		}
		e.Must("", "model", "update", "gpt-4o-primary", "--price-input", "2.5", "--price-output", "10", "--price-cached-input", "1.25", "-q")
		if p := priceOf("gpt-4o-primary"); p == nil || *p != (storage.ModelPrice{Input: 2.5, Output: 10, CachedInput: 1.25}) {
			t.Errorf("price after update: %+v", p)
		}
		e.Must("", "model", "update", "gpt-4o-primary", "--price-output", "12", "-q")
		if p := priceOf("gpt-4o-primary"); p == nil || *p != (storage.ModelPrice{Input: 2.5, Output: 12, CachedInput: 1.25}) {
			t.Errorf("price after changing output: %+v", p)
		}
		if out := e.Must("", "model", "list").Stdout; !strings.Contains(out, "price=2.5/12/1.25") {
			t.Errorf("list does not show the price:\n%s", out)
		}
		e.TTY = true
		if out := e.Must("", "model", "get", "gpt-4o-primary").Stdout; !regexp.MustCompile(`(?m)^  price +\$2\.5 in, \$12 out, \$1\.25 cached in, per 1M tokens$`).MatchString(out) {
			t.Errorf("get on a terminal:\n%s", out)
		}
		e.TTY = false
		if r := e.Run("", "model", "update", "gpt-4o-primary", "--price-input", "-1"); r.Code == 0 || !strings.Contains(r.Stderr, "price.input") {
			t.Errorf("negative price: exit %d, stderr %q", r.Code, r.Stderr)
		}
		e.Must("", "model", "update", "gpt-4o-primary", "--no-price", "-q")
		if p := priceOf("gpt-4o-primary"); p != nil {
			t.Errorf("price after --no-price: %+v", p)
		}
		e.Must("", "model", "create", "--name", "gpt-4o-priced", "--provider", "openai", "--model-name", "gpt-4o", "--provider-key", "openai-primary",
			"--price-input", "0.15", "--price-output", "0.6", "-q")
		if p := priceOf("gpt-4o-priced"); p == nil || *p != (storage.ModelPrice{Input: 0.15, Output: 0.6}) {
			t.Errorf("price on create: %+v", p)
		}
	})
}

// TestLimitFlags: direct models take --rpm … --budget and --provider-*,
// update changes only the flags given, routing groups take --rpm and
// --budget and keep them when `model route` runs again, and get and list
// show them.
func TestLimitFlags(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		setup(t, e)
		modelOf := func(name string) storage.Model {
			t.Helper()
			var en admin.Entry[storage.Model]
			if err := json.Unmarshal([]byte(e.Must("", "model", "get", name, "-o", "json").Stdout), &en); err != nil {
				t.Fatal(err)
			}
			return en.Value
		}
		e.Must("", "model", "update", "gpt-4o-primary", "--rpm", "60", "--tpd", "1000000", "--budget", "20/week",
			"--provider-rpm", "500", "--provider-concurrency", "8", "-q")
		m := modelOf("gpt-4o-primary")
		if m.RateLimit == nil || *m.RateLimit != (storage.RateLimit{RPM: 60, TPD: 1_000_000}) || m.Budget == nil || *m.Budget != (storage.Budget{AmountUSD: 20, Period: storage.BudgetWeek}) ||
			m.ProviderLimit == nil || *m.ProviderLimit != (storage.RateLimit{RPM: 500, Concurrency: 8}) {
			t.Fatalf("limits after update: %+v %+v %+v", m.RateLimit, m.Budget, m.ProviderLimit)
		}
		if out := e.Must("", "model", "list").Stdout; !strings.Contains(out, "rpm=60 tpd=1000000 budget=20/week provider[rpm=500 conc=8]") {
			t.Errorf("list:\n%s", out)
		}
		e.Must("", "model", "update", "gpt-4o-primary", "--provider-rpm", "0", "--no-budget", "--timeout", "10s", "-q")
		m = modelOf("gpt-4o-primary")
		if m.RateLimit == nil || m.RateLimit.RPM != 60 || m.Budget != nil || m.ProviderLimit == nil || *m.ProviderLimit != (storage.RateLimit{Concurrency: 8}) {
			t.Errorf("after --provider-rpm 0 --no-budget: %+v %+v %+v", m.RateLimit, m.Budget, m.ProviderLimit)
		}
		e.Must("", "model", "update", "gpt-4o-primary", "--no-rate-limit", "--no-provider-limit", "-q")
		if m = modelOf("gpt-4o-primary"); m.RateLimit != nil || m.ProviderLimit != nil {
			t.Errorf("after --no-rate-limit --no-provider-limit: %+v %+v", m.RateLimit, m.ProviderLimit)
		}
		e.Must("", "model", "create", "--name", "gpt-4o-limited", "--provider", "openai", "--model-name", "gpt-4o", "--provider-key", "openai-primary",
			"--provider-tpm", "90000", "--budget", "200/month", "-q")
		if m = modelOf("gpt-4o-limited"); m.ProviderLimit == nil || m.ProviderLimit.TPM != 90000 || m.Budget == nil || m.Budget.AmountUSD != 200 {
			t.Errorf("limits on create: %+v %+v", m.ProviderLimit, m.Budget)
		}

		// Routing groups: rate limit and budget, kept by a rerun.
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--rpm", "600", "--budget", "500/month", "-q")
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "-q")
		if m = modelOf("chat-prod"); m.RateLimit == nil || m.RateLimit.RPM != 600 || m.Budget == nil || m.Budget.Period != storage.BudgetMonth || len(m.Routing.Targets) != 2 {
			t.Errorf("routing group after a rerun: %+v %+v %+v", m.RateLimit, m.Budget, m.Routing)
		}
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--stream-failure", "continue", "--max-continuations", "2", "-q")
		if m = modelOf("chat-prod"); m.Routing.StreamFailure == nil || *m.Routing.StreamFailure != (storage.StreamFailure{Mode: "continue", MaxContinuations: 2}) {
			t.Errorf("routing group with --stream-failure continue: %+v", m.Routing.StreamFailure)
		}
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--hedge-after", "200ms", "-q")
		if m = modelOf("chat-prod"); m.Routing.Hedge == nil || *m.Routing.Hedge != (storage.Hedge{AfterMS: 200}) {
			t.Errorf("routing group with --hedge-after 200ms: %+v", m.Routing.Hedge)
		}
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--stream-failure", "continue", "--max-continuations", "2", "--hedge-after", "200ms", "-q")
		e.TTY = true
		out := e.Must("", "model", "get", "chat-prod").Stdout
		e.TTY = false
		for _, re := range []string{`(?m)^  stream failure +continue \(at most 2 continuations\)$`, `(?m)^  hedge +after 200ms$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("get chat-prod with continuation and a hedge does not match %s:\n%s", re, out)
			}
		}
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--hedge-after", "p95", "-q")
		if m = modelOf("chat-prod"); m.Routing.Hedge == nil || *m.Routing.Hedge != (storage.Hedge{After: "p95"}) {
			t.Errorf("routing group with --hedge-after p95: %+v", m.Routing.Hedge)
		}
		e.Must("", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--no-budget", "--tpm", "5000", "-q")
		if m = modelOf("chat-prod"); m.RateLimit == nil || *m.RateLimit != (storage.RateLimit{RPM: 600, TPM: 5000}) || m.Budget != nil {
			t.Errorf("routing group after --no-budget --tpm: %+v %+v", m.RateLimit, m.Budget)
		}
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--provider-rpm", "5"}, 2, "unknown flag: --provider-rpm"},
			{[]string{"model", "route", "chat-prod", "--explain", "--rpm", "5"}, 2, "--explain cannot be combined with --rpm"},
			{[]string{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--stream-failure", "retry"}, 2, `--stream-failure must be continue or error (got "retry")`},
			{[]string{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--max-continuations", "2"}, 2, "--max-continuations needs --stream-failure continue"},
			{[]string{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--stream-failure", "continue", "--max-continuations", "4"}, 1, "routing.stream_failure.max_continuations: must be 1 to 3"},
			{[]string{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--hedge-after", "soon"}, 2, `--hedge-after must be a duration such as 200ms, or p95 (got "soon")`},
			{[]string{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--hedge-after", "0"}, 1, "routing.hedge.after_ms: must be 1 to 600000"},
			{[]string{"model", "update", "gpt-4o-primary", "--budget", "5/year"}, 2, `--budget "5/year": the period must be day, week or month`},
			{[]string{"model", "update", "gpt-4o-primary", "--provider-tpd", "-1"}, 2, "--provider-tpd must be 0 (no limit) or more"},
			{[]string{"model", "update", "gpt-4o-primary", "--no-provider-limit", "--provider-rpm", "1"}, 2, "--no-provider-limit and --provider-rpm cannot be used together"},
			{[]string{"model", "update", "gpt-4o-primary", "--provider-concurrency", "2000000"}, 1, "provider_limit.concurrency: must be between 0 (no limit) and 1000000"},
		} {
			r := e.Run("", c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 && c.code == 1 {
				t.Errorf("aisix %q: exit %d, stderr %q; want exit %d and %q", c.args, r.Code, r.Stderr, c.code, c.want)
			}
		}

		e.TTY = true
		out = e.Must("", "model", "get", "gpt-4o-limited").Stdout
		for _, re := range []string{`(?m)^Limits:$`, `(?m)^  budget +200\.00 USD per month$`, `(?m)^  provider tpm +90000$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("get on a terminal does not match %s:\n%s", re, out)
			}
		}
		if out := e.Must("", "model", "get", "chat-prod").Stdout; !regexp.MustCompile(`(?m)^  rpm +600$`).MatchString(out) {
			t.Errorf("get chat-prod on a terminal:\n%s", out)
		}
	})
}
