package status

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/tui"
)

var t0 = time.Date(2026, 11, 26, 12, 3, 41, 0, time.UTC)

func TestReadExtras(t *testing.T) {
	// What the admin client decodes once the server sends the new fields:
	// the types here stand in for admin.Info and admin.StatusRow with
	// them, under Go names this package does not need to know.
	type info struct {
		admin.Info
		Errors json.RawMessage `json:"config_errors,omitempty"`
	}
	type row struct {
		admin.StatusRow
		Reentry *bool `json:"secret_needs_reentry,omitempty"`
	}
	yes, no := true, false
	tests := []struct {
		name        string
		info        any
		rows        any
		wantErrors  string
		wantReentry string
	}{
		{name: "an older server sends neither", info: admin.Info{Version: "0.1.0"}, rows: []admin.StatusRow{{ID: "m1"}},
			wantErrors: "[]", wantReentry: "map[]"},
		{name: "both", info: info{Errors: json.RawMessage(`[
				{"kind":"provider_key","id":"pk-7","name":"azure-east","reason":"api_base refused"},
				{"kind":"api_key","id":"k-3","reason":"key_hash: must be hex"}]`)},
			rows:       []row{{StatusRow: admin.StatusRow{ID: "m1"}, Reentry: &yes}, {StatusRow: admin.StatusRow{ID: "m2"}, Reentry: &no}, {StatusRow: admin.StatusRow{ID: "m3"}}},
			wantErrors: "[{provider_key pk-7 azure-east api_base refused} {api_key k-3  key_hash: must be hex}]", wantReentry: "map[m1:true]"},
		{name: "empty list", info: info{Errors: json.RawMessage(`[]`)}, rows: []row{}, wantErrors: "[]", wantReentry: "map[]"},
		{name: "null", info: info{Errors: json.RawMessage(`null`)}, rows: nil, wantErrors: "[]", wantReentry: "map[]"},
		{name: "not a list", info: info{Errors: json.RawMessage(`{"kind":"model"}`)}, wantErrors: "[]", wantReentry: "map[]"},
		{name: "one bad entry spoils only itself", info: info{Errors: json.RawMessage(`["junk", {"kind":7}, {}, {"kind":"model","id":"m9","name":"x","reason":"bad"}]`)},
			rows:       json.RawMessage(`[{"id":"m1","secret_needs_reentry":"yes"},{"id":"m2","secret_needs_reentry":true}]`),
			wantErrors: "[{model m9 x bad}]", wantReentry: "map[m2:true]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := readExtras(tt.info, tt.rows)
			if got := fmt.Sprint(ex.configErrors); got != tt.wantErrors {
				t.Errorf("config errors %s, want %s", got, tt.wantErrors)
			}
			if got := fmt.Sprint(ex.secretNeedsReentry); got != tt.wantReentry {
				t.Errorf("secret_needs_reentry %s, want %s", got, tt.wantReentry)
			}
		})
	}
}

func TestBuildSnapshot(t *testing.T) {
	models := []storage.Model{
		{ID: "m1", DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk1"},
		{ID: "m2", DisplayName: "gpt-4o-secondary", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: "pk2"},
		{ID: "r1", DisplayName: "chat-prod", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}}}},
	}
	rows := []admin.StatusRow{
		{ID: "m1", DisplayName: "gpt-4o-primary", Kind: storage.KindDirect, Status: "unhealthy", StatusReason: "upstream_model_not_found", DirectStats: &admin.DirectStats{Provider: "openai"}},
		{ID: "m2", DisplayName: "gpt-4o-secondary", Kind: storage.KindDirect, Status: "healthy", StatusReason: "upstream_forbidden", DirectStats: &admin.DirectStats{Provider: "openai", TokensIn: 1200, TokensOut: 340, CostUSD: 0.0125}},
		{ID: "r1", DisplayName: "chat-prod", Kind: storage.KindRouting, Status: "n/a"},
	}
	ex := extras{
		configErrors:       []tui.ConfigError{{Kind: "model", ID: "m9", Name: "broken", Reason: "retries: must be between 0 and 10"}},
		secretNeedsReentry: map[string]bool{"m2": true},
	}
	snap := buildSnapshot("http://127.0.0.1:3001", admin.Info{Version: "0.1.0", ServerTime: t0}, rows, models, t0, ex)
	if len(snap.Models) != 2 || len(snap.Groups) != 1 {
		t.Fatalf("models %d groups %d", len(snap.Models), len(snap.Groups))
	}
	if m := snap.Models[0]; m.SecretNeedsReentry || m.Reason != "upstream_model_not_found" {
		t.Errorf("gpt-4o-primary: %+v", m)
	}
	if m := snap.Models[1]; !m.SecretNeedsReentry || m.Reason != "upstream_forbidden" {
		t.Errorf("gpt-4o-secondary: %+v", m)
	}
	if m := snap.Models[1]; m.TokensIn != 1200 || m.TokensOut != 340 || m.CostUSD != 0.0125 {
		t.Errorf("gpt-4o-secondary tokens and cost: %+v", m)
	}
	if fmt.Sprint(snap.ConfigErrors) != "[{model m9 broken retries: must be between 0 and 10}]" {
		t.Errorf("config errors %v", snap.ConfigErrors)
	}
}

func TestEventOf(t *testing.T) {
	e := admin.Event{Seq: 4, Time: t0, Kind: "attempt_failed", Model: "chat-prod", Target: "gpt-4o-primary", TargetID: "m1",
		Reason: "transport_error", Detail: "dial tcp: no such host", CallID: "3f2a1b9c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"}
	want := tui.Event{Seq: 4, Time: t0, Kind: "attempt_failed", Model: "chat-prod", Target: "gpt-4o-primary",
		Reason: "transport_error", Detail: "dial tcp: no such host", CallID: "3f2a1b9c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"}
	if got := eventOf(e); got != want {
		t.Errorf("eventOf = %+v, want %+v", got, want)
	}
}

// TestLimits: the dashboard's limit rows keep the limited dimensions in
// order and the budget; a server without the limits route (404) has none,
// without an error; a group target at its provider limit is skipped as
// "provider limit".
func TestLimits(t *testing.T) {
	spent := 41.2
	got := limitRowOf(admin.LimitRow{Scope: "caller_key", ID: "k1", Name: "ci", Rejected: 12,
		RateLimit: storage.RateLimit{RPM: 60, TPM: 100000},
		Budget:    &storage.Budget{AmountUSD: 50, Period: storage.BudgetMonth},
		Usage:     storage.LimitUsage{RPM: 58, TPM: 91000, RPD: 400, BudgetSpentUSD: &spent}})
	want := tui.LimitRow{Scope: "caller_key", ID: "k1", Name: "ci", Rejected: 12, BudgetUSD: 50, BudgetSpentUSD: 41.2,
		Dims: []tui.LimitDim{{Name: "rpm", Used: 58, Limit: 60}, {Name: "tpm", Used: 91000, Limit: 100000}}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("limitRowOf = %+v, want %+v", got, want)
	}

	for _, c := range []struct {
		name    string
		status  int
		body    string
		rows    int
		wantErr bool
	}{
		{"an older server", http.StatusNotFound, `{"error_msg":"no such route: GET /admin/v1/limits"}`, 0, false},
		{"a server with limits", http.StatusOK, `{"limits":[{"scope":"target","id":"m1","name":"gpt-4o-primary","rate_limit":{"rpm":50},"usage":{"concurrency":0,"rpm":50,"rpd":0,"tpm":0,"tpd":0},"rejected":3,"at_limit":["rpm"]}]}`, 1, false},
		{"a failing server", http.StatusInternalServerError, `{"error_msg":"internal error"}`, 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/admin/v1/limits" {
					http.NotFound(w, r)
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				fmt.Fprint(w, c.body)
			}))
			defer srv.Close()
			rows, err := fetchLimits(t.Context(), admin.NewClient(srv.URL, "k", srv.Client()))
			if (err != nil) != c.wantErr || len(rows) != c.rows {
				t.Errorf("fetchLimits = %+v, %v", rows, err)
			}
		})
	}

	m := storage.Model{ID: "r1", DisplayName: "chat-prod", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}}}}
	byName := map[string]admin.StatusRow{
		"gpt-4o-primary": {DisplayName: "gpt-4o-primary", Status: "healthy", DirectStats: &admin.DirectStats{Provider: "openai",
			ProviderLimit: &storage.RateLimit{RPM: 50}, ProviderLimitUsage: &storage.LimitUsage{RPM: 50}, AtProviderLimit: true}},
		"gpt-4o-secondary": {DisplayName: "gpt-4o-secondary", Status: "healthy", DirectStats: &admin.DirectStats{Provider: "openai"}},
	}
	g := group(m, byName, t0)
	if g.Serving != "gpt-4o-secondary" || len(g.Targets) != 2 || g.Targets[1].Name != "gpt-4o-primary" || !g.Targets[1].Skipped || g.Targets[1].Why != "provider limit" {
		t.Errorf("group = %+v", g)
	}
}
