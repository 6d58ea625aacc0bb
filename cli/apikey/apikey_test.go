package apikey_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

func getKey(t *testing.T, e *clitest.Env, ref string) admin.APIKeyValue {
	t.Helper()
	var en admin.Entry[admin.APIKeyValue]
	out := e.Must("", "apikey", "get", ref, "-o", "json").Stdout
	if err := json.Unmarshal([]byte(out), &en); err != nil {
		t.Fatalf("apikey get -o json %q: %v", out, err)
	}
	return en.Value
}

// setup creates a provider key, two direct models and a limited caller key.
func setup(t *testing.T, e *clitest.Env) {
	t.Helper()
	e.Must("sk-primary-test-secret-0001", "provider-key", "create", "--name", "openai-primary", "--provider", "openai", "--secret-stdin", "-q")
	for _, name := range []string{"chat-prod", "embed"} {
		e.Must("", "model", "create", "--name", name, "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary", "-q")
	}
	e.Must("", "apikey", "create", "--name", "ci", "--allow-model", "chat-prod", "--rpm", "60", "--tpm", "100000", "--concurrency", "4", "--budget", "50/month", "-o", "json")
}

// TestCreateAndUpdateLimits: create takes the limit flags; update changes
// only the flags given (0 removes a dimension, --no-rate-limit and
// --no-budget remove all) and never the key's secret; list shows them.
func TestCreateAndUpdateLimits(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		setup(t, e)
		v := getKey(t, e, "ci")
		if v.RateLimit == nil || *v.RateLimit != (storage.RateLimit{RPM: 60, TPM: 100000, Concurrency: 4}) ||
			v.Budget == nil || *v.Budget != (storage.Budget{AmountUSD: 50, Period: storage.BudgetMonth}) {
			t.Fatalf("created limits %+v %+v", v.RateLimit, v.Budget)
		}
		hash := v.KeyHash
		if out := e.Must("", "apikey", "list").Stdout; !strings.Contains(out, "\trpm=60 tpm=100000 conc=4 budget=50/month\t") {
			t.Errorf("list:\n%s", out)
		}

		r := e.Must("", "apikey", "update", "ci", "--rpm", "120", "--tpm", "0", "--rpd", "5000", "--budget", "12.5/day", "-o", "json")
		if strings.Contains(r.Stdout, "plaintext") || strings.Contains(r.Stdout+r.Stderr, "sk-") {
			t.Errorf("update prints a key: %s %s", r.Stdout, r.Stderr)
		}
		v = getKey(t, e, "ci")
		if v.KeyHash != hash || v.DisplayName != "ci" || strings.Join(v.AllowedModels, ",") != "chat-prod" || v.Disabled {
			t.Errorf("update changed what it was not asked to: %+v", v)
		}
		if v.RateLimit == nil || *v.RateLimit != (storage.RateLimit{RPM: 120, RPD: 5000, Concurrency: 4}) ||
			v.Budget == nil || *v.Budget != (storage.Budget{AmountUSD: 12.5, Period: storage.BudgetDay}) {
			t.Errorf("updated limits %+v %+v", v.RateLimit, v.Budget)
		}

		e.Must("", "apikey", "update", "ci", "--name", "ci-bot", "--allow-model", "chat-prod", "--allow-model", "embed", "--disable", "--expires-in", "720h", "-q")
		v = getKey(t, e, "ci-bot")
		if strings.Join(v.AllowedModels, ",") != "chat-prod,embed" || !v.Disabled || v.ExpiresAt == nil || v.RateLimit == nil || v.KeyHash != hash {
			t.Errorf("after renaming, allowing, disabling, expiring: %+v", v)
		}
		e.Must("", "apikey", "update", "ci-bot", "--enable", "--no-expires", "--no-rate-limit", "--no-budget", "-q")
		v = getKey(t, e, "ci-bot")
		if v.Disabled || v.ExpiresAt != nil || v.RateLimit != nil || v.Budget != nil {
			t.Errorf("after --enable --no-expires --no-rate-limit --no-budget: %+v", v)
		}
		if out := e.Must("", "apikey", "get", "ci-bot").Stdout; !regexp.MustCompile(`\t-\t[0-9a-f]{12}…\n$`).MatchString(out) {
			t.Errorf("get without limits:\n%s", out)
		}
		// The last dimension set to 0 leaves no rate limit at all.
		e.Must("", "apikey", "update", "ci-bot", "--rpm", "5", "-q")
		e.Must("", "apikey", "update", "ci-bot", "--rpm", "0", "-q")
		if v = getKey(t, e, "ci-bot"); v.RateLimit != nil {
			t.Errorf("rpm 0 on the only dimension: rate_limit %+v, want none", v.RateLimit)
		}
	})
}

// TestLimitFlagErrors: bad limit flags are usage errors (exit 2) with one
// line that names the flag; values the store refuses name the field.
func TestLimitFlagErrors(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		setup(t, e)
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"apikey", "create", "--allow-model", "*", "--budget", "50"}, 2, `--budget "50": want AMOUNT/PERIOD in USD, e.g. 50/month`},
			{[]string{"apikey", "create", "--allow-model", "*", "--budget", "50/year"}, 2, `--budget "50/year": the period must be day, week or month`},
			{[]string{"apikey", "create", "--allow-model", "*", "--budget", "0/day"}, 2, `--budget "0/day": the amount must be a number of USD above 0`},
			{[]string{"apikey", "create", "--allow-model", "*", "--budget", "lots/day"}, 2, `--budget "lots/day"`},
			{[]string{"apikey", "create", "--allow-model", "*", "--rpm", "-1"}, 2, "--rpm must be 0 (no limit) or more (got -1)"},
			{[]string{"apikey", "create", "--allow-model", "*", "--rpm", "ten"}, 2, `"ten"`},
			{[]string{"apikey", "create", "--allow-model", "*", "--concurrency", "2000000"}, 1, "rate_limit.concurrency: must be between 0 (no limit) and 1000000"},
			{[]string{"apikey", "update", "ci", "--no-budget", "--budget", "5/day"}, 2, "--no-budget and --budget cannot be used together"},
			{[]string{"apikey", "update", "ci", "--no-rate-limit", "--tpm", "5"}, 2, "--no-rate-limit and --tpm cannot be used together"},
			{[]string{"apikey", "update", "ci", "--disable", "--enable"}, 2, "--disable and --enable cannot be used together"},
			{[]string{"apikey", "update", "nope", "--rpm", "5"}, 1, "nope"},
		} {
			r := e.Run("", c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 0 && c.code == 1 {
				t.Errorf("aisix %q: exit %d, stderr %q; want exit %d and %q", c.args, r.Code, r.Stderr, c.code, c.want)
			}
		}
		if v := getKey(t, e, "ci"); v.RateLimit == nil || v.RateLimit.RPM != 60 {
			t.Errorf("refused updates changed the key: %+v", v.RateLimit)
		}
	})
}

// TestGetShowsUsage: on a terminal, `apikey get` lists each limit, and
// against a server whose limiter reports usage, the usage against each.
func TestGetShowsUsage(t *testing.T) {
	t.Run("local", func(t *testing.T) {
		e := clitest.New(t)
		setup(t, e)
		e.TTY = true
		out := e.Must("", "apikey", "get", "ci").Stdout
		for _, re := range []string{`(?m)^Limits:$`, `(?m)^  rpm +60$`, `(?m)^  tpm +100000$`, `(?m)^  concurrency +4$`, `(?m)^  budget +50\.00 USD per month$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("get on a terminal does not match %s:\n%s", re, out)
			}
		}
	})
	t.Run("remote", func(t *testing.T) {
		e := clitest.New(t)
		setup(t, e)
		st, err := sqlite.Open(context.Background(), e.DB)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		spent, resets := 3.2, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
		ts := httptest.NewServer(admin.New(admin.Config{Store: st, Keys: []string{clitest.AdminKey},
			LimitUsage: func(scope, id string) (storage.LimitUsage, bool) {
				return storage.LimitUsage{RPM: 12, TPM: 3400, Concurrency: 1, BudgetSpentUSD: &spent, BudgetResetsAt: &resets}, scope == admin.LimitScopeCallerKey
			}}))
		t.Cleanup(ts.Close)
		e.Server = ts.URL
		if v := getKey(t, e, "ci"); v.LimitUsage == nil || v.LimitUsage.RPM != 12 {
			t.Errorf("-o json limit_usage %+v", v.LimitUsage)
		}
		e.TTY = true
		out := e.Must("", "apikey", "get", "ci").Stdout
		for _, re := range []string{
			`(?m)^Limits \(used now/limit\):$`, `(?m)^  rpm +12/60$`, `(?m)^  tpm +3400/100000$`, `(?m)^  concurrency +1/4$`,
			`(?m)^  budget +3\.20/50\.00 USD \(month, resets 2027-01-01T00:00:00Z\)$`,
		} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Errorf("get on a terminal does not match %s:\n%s", re, out)
			}
		}
		if out := e.Must("", "apikey", "list", "-o", "json").Stdout; strings.Contains(out, "limit_usage") {
			t.Errorf("list shows usage: %s", out)
		}
	})
}
