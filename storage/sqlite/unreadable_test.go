package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
)

// TestUnreadableRow: a model row whose spec no longer decodes (a newer
// binary wrote it, or a hand edit) is left out of Load and reported, so
// the rest still loads; the admin list still shows it, to be fixed or
// deleted.
func TestUnreadableRow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	s := openStore(t, path)
	ctx := t.Context()
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-0123456789abcdef"})
	mustNoErr(t, err)
	for _, name := range []string{"good", "bad"} {
		_, err := s.CreateModel(ctx, storage.Model{DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID})
		mustNoErr(t, err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	mustNoErr(t, err)
	defer db.Close()
	_, err = db.ExecContext(ctx, `UPDATE models SET spec = '{"model_name":"x","timeout":"soon"}' WHERE display_name = 'bad'`)
	mustNoErr(t, err)

	ds, err := s.Load(ctx)
	mustNoErr(t, err)
	if len(ds.Models) != 1 || ds.Models[0].DisplayName != "good" {
		t.Errorf("Load models %+v, want only the good one", ds.Models)
	}
	if len(ds.Unreadable) != 1 || ds.Unreadable[0].Name != "bad" || ds.Unreadable[0].Kind != storage.KindModelRow ||
		!strings.Contains(ds.Unreadable[0].Reason, "decode spec") {
		t.Errorf("Unreadable %+v", ds.Unreadable)
	}
	ms, err := s.ListModels(ctx)
	mustNoErr(t, err)
	if len(ms) != 2 {
		t.Errorf("ListModels lists %d models, want both", len(ms))
	}
}

// TestUnreadableAPIKeyLimits: a caller key whose stored rate_limit or
// budget no longer decodes is left out of Load and reported; the admin
// list and get still show it, without the limits, to be fixed or deleted.
func TestUnreadableAPIKeyLimits(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	s := openStore(t, path)
	ctx := t.Context()
	var bad storage.APIKey
	for i, name := range []string{"good", "bad"} {
		k, err := s.CreateAPIKey(ctx, storage.APIKey{
			DisplayName: name, KeyHash: strings.Repeat(string(rune('a'+i)), 64), AllowedModels: []string{"*"},
			RateLimit: &storage.RateLimit{RPM: 60}, Budget: &storage.Budget{AmountUSD: 5, Period: storage.BudgetDay},
		})
		mustNoErr(t, err)
		bad = k
	}
	_, err := rawDB(t, path).ExecContext(ctx, `UPDATE api_keys SET rate_limit = '{"rpm":"lots"}' WHERE display_name = 'bad'`)
	mustNoErr(t, err)

	ds, err := s.Load(ctx)
	mustNoErr(t, err)
	if len(ds.APIKeys) != 1 || ds.APIKeys[0].DisplayName != "good" || ds.APIKeys[0].RateLimit == nil {
		t.Errorf("Load API keys %+v, want only the good one, with its limits", ds.APIKeys)
	}
	if len(ds.Unreadable) != 1 || ds.Unreadable[0].Name != "bad" || ds.Unreadable[0].Kind != storage.KindAPIKey ||
		!strings.Contains(ds.Unreadable[0].Reason, "decode rate_limit") {
		t.Errorf("Unreadable %+v", ds.Unreadable)
	}
	ks, err := s.ListAPIKeys(ctx)
	mustNoErr(t, err)
	if len(ks) != 2 {
		t.Errorf("ListAPIKeys lists %d keys, want both", len(ks))
	}
	got, err := s.GetAPIKey(ctx, bad.ID)
	mustNoErr(t, err)
	if got.RateLimit != nil || got.Budget != nil {
		t.Errorf("GetAPIKey of the unreadable key = %+v %+v, want no limits", got.RateLimit, got.Budget)
	}
	// Replacing the limits fixes the row.
	got.RateLimit = &storage.RateLimit{TPM: 1000}
	_, err = s.UpdateAPIKey(ctx, got, 0)
	mustNoErr(t, err)
	ds, err = s.Load(ctx)
	mustNoErr(t, err)
	if len(ds.APIKeys) != 2 || len(ds.Unreadable) != 0 {
		t.Errorf("after the fix: %d keys, unreadable %+v", len(ds.APIKeys), ds.Unreadable)
	}
}
