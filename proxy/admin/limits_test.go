package admin

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// fakeLimiter is a Config.LimitUsage that answers for the ids it knows
// and records every question.
type fakeLimiter struct {
	mu    sync.Mutex
	usage map[string]storage.LimitUsage // by scope + "/" + id
	asked []string
}

func (f *fakeLimiter) LimitUsage(scope, id string) (storage.LimitUsage, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, scope+"/"+id)
	u, ok := f.usage[scope+"/"+id]
	return u, ok
}

func (f *fakeLimiter) questions() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.asked)
}

// TestLimitUsage: GET of one caller key or model with limits shows the
// limiter's live counts as limit_usage; a list never asks, nor does a read
// of a resource without limits; a value read back, limit_usage included,
// can be sent again.
func TestLimitUsage(t *testing.T) {
	spent := 3.2
	resets := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	lim := &fakeLimiter{usage: map[string]storage.LimitUsage{}}
	e := newEnv(t, func(c *Config) { c.LimitUsage = lim.LimitUsage })
	f := e.fixture(t, "lu")

	limited := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", `{"display_name":"limited","key_hash":"`+hashKey("limited")+`","allowed_models":["*"],`+
		`"rate_limit":{"rpm":60,"tpm":100000,"concurrency":4},"budget":{"amount_usd":50,"period":"month"}}`).id(t)
	plain := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("plain"), "*")).id(t)
	quiet := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", `{"key_hash":"`+hashKey("quiet")+`","allowed_models":["*"],"rate_limit":{"rpd":10}}`).id(t)
	e.mustAdmin(t, 200, "PUT", "/admin/v1/models/"+f.routing, `{"display_name":"lu-routing","routing":{"targets":[{"model":"lu-direct"}]},"rate_limit":{"rpm":100}}`)
	lim.usage[LimitScopeCallerKey+"/"+limited] = storage.LimitUsage{Concurrency: 1, RPM: 12, TPM: 3400, RPD: 80, TPD: 9000, BudgetSpentUSD: &spent, BudgetResetsAt: &resets}
	lim.usage[LimitScopeCallerKey+"/"+plain] = storage.LimitUsage{RPM: 99}
	lim.usage[LimitScopeModel+"/"+f.routing] = storage.LimitUsage{RPM: 7}

	got := e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys/"+limited, "")
	var entry struct {
		Value struct {
			RateLimit  json.RawMessage `json:"rate_limit"`
			Budget     json.RawMessage `json:"budget"`
			LimitUsage json.RawMessage `json:"limit_usage"`
		} `json:"value"`
	}
	got.decode(t, &entry)
	for _, c := range []struct{ name, got, want string }{
		{"rate_limit", string(entry.Value.RateLimit), `{"rpm":60,"tpm":100000,"concurrency":4}`},
		{"budget", string(entry.Value.Budget), `{"amount_usd":50,"period":"month"}`},
		{"limit_usage", string(entry.Value.LimitUsage), `{"concurrency":1,"rpm":12,"rpd":80,"tpm":3400,"tpd":9000,"budget_spent_usd":3.2,"budget_resets_at":"2027-01-01T00:00:00Z"}`},
	} {
		if c.got != c.want {
			t.Errorf("GET limited key: %s = %s, want %s", c.name, c.got, c.want)
		}
	}

	// No limits: not asked, not shown. A key the limiter does not track
	// (false) shows none either.
	for _, id := range []string{plain, quiet} {
		if b := string(e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys/"+id, "").body); strings.Contains(b, "limit_usage") {
			t.Errorf("GET key %s shows limit_usage: %s", id, b)
		}
	}
	before := len(lim.questions())
	if b := string(e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys", "").body); strings.Contains(b, "limit_usage") || !strings.Contains(b, `"rate_limit":{"rpm":60`) {
		t.Errorf("list shows limit_usage or hides rate_limit: %s", b)
	}
	if b := string(e.mustAdmin(t, 200, "GET", "/admin/v1/models", "").body); strings.Contains(b, "limit_usage") {
		t.Errorf("model list shows limit_usage: %s", b)
	}
	if q := lim.questions(); len(q) != before {
		t.Errorf("lists asked the limiter %q", q[before:])
	}
	if q := lim.questions(); slices.Contains(q, LimitScopeCallerKey+"/"+plain) {
		t.Errorf("the limiter was asked about a key without limits: %q", q)
	}

	// Models: the same, scope "model".
	if b := string(e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+f.routing, "").body); !strings.Contains(b, `"limit_usage":{"concurrency":0,"rpm":7,`) {
		t.Errorf("GET limited model: %s", b)
	}
	if b := string(e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+f.direct, "").body); strings.Contains(b, "limit_usage") {
		t.Errorf("GET model without limits shows limit_usage: %s", b)
	}

	// A value read back is accepted as is.
	var read struct {
		Value json.RawMessage `json:"value"`
	}
	e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys/"+limited, "").decode(t, &read)
	e.mustAdmin(t, 200, "PUT", "/admin/v1/apikeys/"+limited, string(read.Value))
	e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+f.routing, "").decode(t, &read)
	e.mustAdmin(t, 200, "PUT", "/admin/v1/models/"+f.routing, string(read.Value))

	// The client carries limit_usage into storage.APIKey.
	c := NewClient(e.url, testAdminKey, e.hc)
	k, err := c.GetAPIKey(t.Context(), limited)
	if err != nil {
		t.Fatal(err)
	}
	if k.LimitUsage == nil || k.LimitUsage.RPM != 12 || k.LimitUsage.BudgetSpentUSD == nil || *k.LimitUsage.BudgetSpentUSD != spent ||
		!k.LimitUsage.BudgetResetsAt.Equal(resets) || k.RateLimit == nil || k.RateLimit.Concurrency != 4 || k.Budget == nil || k.Budget.Period != storage.BudgetMonth {
		t.Errorf("client GetAPIKey = %+v, limits %+v %+v", k.LimitUsage, k.RateLimit, k.Budget)
	}
}
