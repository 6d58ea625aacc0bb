package status

import (
	"encoding/json"
	"fmt"
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
