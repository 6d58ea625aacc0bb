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

// TestLimitsRoute: GET /admin/v1/limits lists Config.Limits' rows sorted
// by scope then name, with at_limit worked out from the usage; the status
// row of a direct model with a provider_limit carries its usage; without
// Config.Limits the list is empty.
func TestLimitsRoute(t *testing.T) {
	spent := 50.0
	var rows []LimitRow
	e := newEnv(t, func(c *Config) { c.Limits = func() []LimitRow { return slices.Clone(rows) } })
	f := e.fixture(t, "lr")
	e.mustAdmin(t, 200, "PUT", "/admin/v1/models/"+f.direct, `{"display_name":"lr-direct","provider":"openai","model_name":"gpt-4o-mini","provider_key_id":"`+f.pk+`","provider_limit":{"rpm":50,"tpm":1000}}`)
	rows = []LimitRow{
		{Scope: LimitScopeTarget, ID: f.direct, Name: "lr-direct", RateLimit: storage.RateLimit{RPM: 50, TPM: 1000}, Usage: storage.LimitUsage{RPM: 50, TPM: 10}, Rejected: 3},
		{Scope: LimitScopeModel, ID: f.routing, Name: "lr-routing", RateLimit: storage.RateLimit{RPM: 100}, Usage: storage.LimitUsage{RPM: 7}},
		{Scope: LimitScopeCallerKey, ID: "k2", Name: "zeta", RateLimit: storage.RateLimit{Concurrency: 2}, Usage: storage.LimitUsage{Concurrency: 2}},
		{Scope: LimitScopeCallerKey, ID: "k1", Name: "ci", Budget: &storage.Budget{AmountUSD: 50, Period: storage.BudgetMonth},
			Usage: storage.LimitUsage{BudgetSpentUSD: &spent}, Rejected: 12, AtLimit: []string{"stale"}},
	}

	var page struct {
		Limits []json.RawMessage `json:"limits"`
	}
	e.mustAdmin(t, 200, "GET", "/admin/v1/limits", "").decode(t, &page)
	want := []string{
		`{"scope":"caller_key","id":"k1","name":"ci","rate_limit":{},"budget":{"amount_usd":50,"period":"month"},"usage":{"concurrency":0,"rpm":0,"rpd":0,"tpm":0,"tpd":0,"budget_spent_usd":50},"rejected":12,"at_limit":["budget"]}`,
		`{"scope":"caller_key","id":"k2","name":"zeta","rate_limit":{"concurrency":2},"usage":{"concurrency":2,"rpm":0,"rpd":0,"tpm":0,"tpd":0},"rejected":0,"at_limit":["concurrency"]}`,
		`{"scope":"model","id":"` + f.routing + `","name":"lr-routing","rate_limit":{"rpm":100},"usage":{"concurrency":0,"rpm":7,"rpd":0,"tpm":0,"tpd":0},"rejected":0,"at_limit":[]}`,
		`{"scope":"target","id":"` + f.direct + `","name":"lr-direct","rate_limit":{"rpm":50,"tpm":1000},"usage":{"concurrency":0,"rpm":50,"rpd":0,"tpm":10,"tpd":0},"rejected":3,"at_limit":["rpm"]}`,
	}
	if len(page.Limits) != len(want) {
		t.Fatalf("GET /admin/v1/limits: %d rows, want %d", len(page.Limits), len(want))
	}
	for i, w := range want {
		if got := string(page.Limits[i]); got != w {
			t.Errorf("row %d:\n got %s\nwant %s", i, got, w)
		}
	}

	// models/status: the direct model with a provider_limit.
	var status []map[string]json.RawMessage
	e.mustAdmin(t, 200, "GET", "/admin/v1/models/status", "").decode(t, &status)
	found := false
	for _, r := range status {
		if string(r["id"]) != `"`+f.direct+`"` {
			if _, ok := r["provider_limit"]; ok {
				t.Errorf("a model without a provider_limit has one: %s", r["id"])
			}
			continue
		}
		found = true
		for k, w := range map[string]string{
			"provider_limit":       `{"rpm":50,"tpm":1000}`,
			"provider_limit_usage": `{"concurrency":0,"rpm":50,"rpd":0,"tpm":10,"tpd":0}`,
			"at_provider_limit":    `true`,
		} {
			if got := string(r[k]); got != w {
				t.Errorf("status %s = %s, want %s", k, got, w)
			}
		}
	}
	if !found {
		t.Fatal("no status row for the direct model")
	}

	// The client.
	c := NewClient(e.url, testAdminKey, e.hc)
	got, err := c.Limits(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[0].Name != "ci" || got[0].Rejected != 12 || !slices.Equal(got[3].AtLimit, []string{"rpm"}) || got[3].RateLimit.RPM != 50 {
		t.Errorf("client Limits = %+v", got)
	}
	st, err := c.ModelsStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range st {
		if r.ID == f.direct && (r.DirectStats == nil || !r.AtProviderLimit || r.ProviderLimitUsage == nil || r.ProviderLimitUsage.RPM != 50) {
			t.Errorf("client status row %+v", r.DirectStats)
		}
	}

	// Under the limit: no at_provider_limit, the usage still shown.
	rows[0].Usage.RPM = 49
	if b := string(e.mustAdmin(t, 200, "GET", "/admin/v1/models/status", "").body); strings.Contains(b, "at_provider_limit") || !strings.Contains(b, `"provider_limit_usage":{"concurrency":0,"rpm":49`) {
		t.Errorf("under the limit: %s", b)
	}

	// No Config.Limits: an empty list, and the provider_limit without usage.
	e2 := newEnv(t)
	f2 := e2.fixture(t, "nl")
	e2.mustAdmin(t, 200, "PUT", "/admin/v1/models/"+f2.direct, `{"display_name":"nl-direct","provider":"openai","model_name":"gpt-4o-mini","provider_key_id":"`+f2.pk+`","provider_limit":{"rpm":5}}`)
	if b := string(e2.mustAdmin(t, 200, "GET", "/admin/v1/limits", "").body); strings.TrimSpace(b) != `{"limits":[]}` {
		t.Errorf("without Config.Limits: %s", b)
	}
	if b := string(e2.mustAdmin(t, 200, "GET", "/admin/v1/models/status", "").body); !strings.Contains(b, `"provider_limit":{"rpm":5}`) || strings.Contains(b, "provider_limit_usage") {
		t.Errorf("status without Config.Limits: %s", b)
	}
}
