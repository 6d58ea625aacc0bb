package model_test

import (
	"encoding/json"
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
		for _, re := range []string{`(?m)^  strategy +failover$`, `(?m)^  max fallbacks +1$`, `(?m)^  timeout +none$`, `(?m)^  retry on 429 +true$`} {
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
