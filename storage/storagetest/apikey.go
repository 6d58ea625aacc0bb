package storagetest

import (
	"cmp"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// sameAPIKey compares the fields a caller sets.
func sameAPIKey(t *testing.T, got, want storage.APIKey) {
	t.Helper()
	if got.DisplayName != want.DisplayName || got.KeyHash != want.KeyHash || got.Disabled != want.Disabled {
		t.Errorf("API key = {name %q, key_hash %q, disabled %t}, want {%q, %q, %t}",
			got.DisplayName, got.KeyHash, got.Disabled, want.DisplayName, want.KeyHash, want.Disabled)
	}
	if !slices.Equal(got.AllowedModels, want.AllowedModels) {
		t.Errorf("allowed_models = %q, want %q", got.AllowedModels, want.AllowedModels)
	}
	// Ids are the store's: compare them when want came from a store.
	if want.AllowedModelIDs != nil && !slices.Equal(got.AllowedModelIDs, want.AllowedModelIDs) {
		t.Errorf("allowed model ids = %q, want %q", got.AllowedModelIDs, want.AllowedModelIDs)
	}
	if len(got.AllowedModelIDs) != len(got.AllowedModels) {
		t.Errorf("allowed model ids = %q for allowed_models %q, want one id per name", got.AllowedModelIDs, got.AllowedModels)
	}
	switch {
	case got.ExpiresAt == nil && want.ExpiresAt == nil:
	case got.ExpiresAt == nil || want.ExpiresAt == nil || !got.ExpiresAt.Equal(*want.ExpiresAt):
		t.Errorf("expires_at = %v, want %v", fmtTime(got.ExpiresAt), fmtTime(want.ExpiresAt))
	}
	if g, w := jsonOf(t, got.RateLimit), jsonOf(t, want.RateLimit); g != w {
		t.Errorf("rate_limit = %s, want %s", g, w)
	}
	if g, w := jsonOf(t, got.Budget), jsonOf(t, want.Budget); g != w {
		t.Errorf("budget = %s, want %s", g, w)
	}
	if got.LimitUsage != nil {
		t.Errorf("limit_usage = %+v, want none: stores never keep it", got.LimitUsage)
	}
	if want.ID != "" && got.ID != want.ID {
		t.Errorf("API key id = %q, want %q", got.ID, want.ID)
	}
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.Format(time.RFC3339Nano)
}

var apiKeyCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		rv := newRevisions(t, s)
		expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		for _, in := range []storage.APIKey{
			apiKey("ci-bot", "one"),
			{
				DisplayName:   "team-a",
				KeyHash:       keyHash("two"),
				AllowedModels: []string{"chat-prod", "gpt-4o"},
				ExpiresAt:     &expires,
				Disabled:      true,
				RateLimit:     &storage.RateLimit{RPM: 60, RPD: 10_000, TPM: 100_000, TPD: 5_000_000, Concurrency: 4},
				Budget:        &storage.Budget{AmountUSD: 50, Period: storage.BudgetMonth},
			},
			{KeyHash: keyHash("three"), AllowedModels: []string{}, RateLimit: &storage.RateLimit{TPM: 1000}},
			{KeyHash: keyHash("four"), AllowedModels: []string{"*"}, Budget: &storage.Budget{AmountUSD: 0.25, Period: storage.BudgetDay}},
		} {
			created := mustCreateAPIKey(t, s, in)
			rv.wrote(created.Revision)
			if created.ID == "" {
				t.Fatal("created API key has no id")
			}
			sameAPIKey(t, created, in)
			checkNewMeta(t, created.Meta)
			got, err := s.GetAPIKey(t.Context(), created.ID)
			noErr(t, err, "GetAPIKey")
			sameAPIKey(t, got, created)
			sameMeta(t, got.Meta, created.Meta)
		}
	}},
	{"Unnamed", func(t *testing.T, s storage.Store) {
		// display_name is optional and only unique when set.
		a := mustCreateAPIKey(t, s, apiKey("", "one"))
		b := mustCreateAPIKey(t, s, apiKey("", "two"))
		if a.DisplayName != "" || b.DisplayName != "" {
			t.Errorf("display names = %q, %q, want empty", a.DisplayName, b.DisplayName)
		}
		if a.ID == b.ID {
			t.Errorf("two API keys got the same id %q", a.ID)
		}
	}},
	{"List", func(t *testing.T, s storage.Store) {
		ks, err := s.ListAPIKeys(t.Context())
		noErr(t, err, "ListAPIKeys")
		if len(ks) != 0 {
			t.Fatalf("new store lists %d API keys, want 0", len(ks))
		}
		want := map[string]storage.APIKey{}
		for _, seed := range []string{"c", "a", "b", "d"} {
			k := mustCreateAPIKey(t, s, apiKey("key-"+seed, seed))
			want[k.ID] = k
		}
		ks, err = s.ListAPIKeys(t.Context())
		noErr(t, err, "ListAPIKeys")
		if len(ks) != len(want) {
			t.Fatalf("listed %d API keys, want %d", len(ks), len(want))
		}
		for _, k := range ks {
			w, ok := want[k.ID]
			if !ok {
				t.Errorf("listed unknown API key %q", k.ID)
				continue
			}
			sameAPIKey(t, k, w)
			sameMeta(t, k.Meta, w.Meta)
		}
		sorted := slices.IsSortedFunc(ks, func(a, b storage.APIKey) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		if !sorted {
			t.Error("API keys are not listed by created_at, then id")
		}
	}},
	{"Update", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		rv := newRevisions(t, s)
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		in := apiKey("ci-bot", "one")
		in.ExpiresAt = &expires
		in.RateLimit = &storage.RateLimit{RPM: 60, Concurrency: 2}
		in.Budget = &storage.Budget{AmountUSD: 5, Period: storage.BudgetDay}
		created := mustCreateAPIKey(t, s, in)
		rv.wrote(created.Revision)

		limited := created
		limited.RateLimit = &storage.RateLimit{TPM: 5000}
		limited.Budget = &storage.Budget{AmountUSD: 100, Period: storage.BudgetWeek}
		limitedOut, err := s.UpdateAPIKey(t.Context(), limited, created.Revision)
		noErr(t, err, "UpdateAPIKey of the limits")
		rv.wrote(limitedOut.Revision)
		sameAPIKey(t, limitedOut, limited) // replaced, not merged: rpm is gone

		up := storage.APIKey{
			ID:            created.ID,
			DisplayName:   "ci-bot-rotated",
			KeyHash:       keyHash("rotated"),
			AllowedModels: []string{"gpt-4o", "chat-prod"},
			Disabled:      true,
		}
		updated, err := s.UpdateAPIKey(t.Context(), up, limitedOut.Revision)
		noErr(t, err, "UpdateAPIKey")
		rv.wrote(updated.Revision)
		sameAPIKey(t, updated, up) // full replace: expires_at and the limits are cleared
		checkUpdatedMeta(t, updated.Meta, limitedOut.Meta)

		got, err := s.GetAPIKey(t.Context(), created.ID)
		noErr(t, err, "GetAPIKey")
		sameAPIKey(t, got, up)
		sameMeta(t, got.Meta, updated.Meta)

		// The old hash is free again.
		mustCreateAPIKey(t, s, apiKey("new", "one"))
	}},
	{"UpdateRevisionMismatch", func(t *testing.T, s storage.Store) {
		created := mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))
		first := apiKey("first-writer", "one")
		first.ID = created.ID
		updated, err := s.UpdateAPIKey(t.Context(), first, created.Revision)
		noErr(t, err, "UpdateAPIKey with the current revision")

		second := apiKey("second-writer", "one")
		second.ID = created.ID
		_, err = s.UpdateAPIKey(t.Context(), second, created.Revision)
		wantErr(t, err, storage.ErrRevisionMismatch)

		got, err := s.GetAPIKey(t.Context(), created.ID)
		noErr(t, err, "GetAPIKey")
		sameAPIKey(t, got, first)
		sameMeta(t, got.Meta, updated.Meta)
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		created := mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))
		rv.wrote(created.Revision)
		noErr(t, s.DeleteAPIKey(t.Context(), created.ID), "DeleteAPIKey")
		rv.deleted()
		_, err := s.GetAPIKey(t.Context(), created.ID)
		wantErr(t, err, storage.ErrNotFound)
		ks, err := s.ListAPIKeys(t.Context())
		noErr(t, err, "ListAPIKeys")
		if len(ks) != 0 {
			t.Errorf("lists %d API keys after delete, want 0", len(ks))
		}
		wantErr(t, s.DeleteAPIKey(t.Context(), created.ID), storage.ErrNotFound)
		mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))
	}},
	{"NotFound", func(t *testing.T, s storage.Store) {
		_, err := s.GetAPIKey(t.Context(), unknownID)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		in := apiKey("ghost", "ghost")
		in.ID = unknownID
		_, err = s.UpdateAPIKey(t.Context(), in, 0)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		_, err = s.UpdateAPIKey(t.Context(), in, 7)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		wantErr(t, s.DeleteAPIKey(t.Context(), unknownID), storage.ErrNotFound, unknownID)
	}},
	{"Duplicates", func(t *testing.T, s storage.Store) {
		mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))
		_, err := s.CreateAPIKey(t.Context(), apiKey("other", "one"))
		wantErr(t, err, storage.ErrConflict, "key_hash")
		_, err = s.CreateAPIKey(t.Context(), apiKey("ci-bot", "two"))
		wantErr(t, err, storage.ErrConflict, "ci-bot")

		other := mustCreateAPIKey(t, s, apiKey("team-a", "two"))
		in := other
		in.KeyHash = keyHash("one")
		_, err = s.UpdateAPIKey(t.Context(), in, 0)
		wantErr(t, err, storage.ErrConflict, "key_hash")
		in = other
		in.DisplayName = "ci-bot"
		_, err = s.UpdateAPIKey(t.Context(), in, 0)
		wantErr(t, err, storage.ErrConflict, "ci-bot")
	}},
	{"Invalid", func(t *testing.T, s storage.Store) {
		upper := []byte(keyHash("one"))
		for i, c := range upper {
			if c >= 'a' && c <= 'f' {
				upper[i] = c - 'a' + 'A'
			}
		}
		tests := []struct {
			name  string
			edit  func(*storage.APIKey)
			field string
		}{
			{"no key hash", func(k *storage.APIKey) { k.KeyHash = "" }, "key_hash"},
			{"short key hash", func(k *storage.APIKey) { k.KeyHash = "abc123" }, "key_hash"},
			{"upper-case key hash", func(k *storage.APIKey) { k.KeyHash = string(upper) }, "key_hash"},
			{"no allowed models", func(k *storage.APIKey) { k.AllowedModels = nil }, "allowed_models"},
			{"empty allowed model", func(k *storage.APIKey) { k.AllowedModels = []string{"gpt-4o", ""} }, "allowed_models[1]"},
			{"space in display name", func(k *storage.APIKey) { k.DisplayName = "ci bot" }, "display_name"},
			{"negative rpm", func(k *storage.APIKey) { k.RateLimit = &storage.RateLimit{RPM: -1} }, "rate_limit.rpm"},
			{"rpd too big", func(k *storage.APIKey) { k.RateLimit = &storage.RateLimit{RPD: storage.MaxRateLimit + 1} }, "rate_limit.rpd"},
			{"concurrency too big", func(k *storage.APIKey) {
				k.RateLimit = &storage.RateLimit{Concurrency: storage.MaxConcurrency + 1}
			}, "rate_limit.concurrency"},
			{"budget of 0", func(k *storage.APIKey) { k.Budget = &storage.Budget{Period: storage.BudgetMonth} }, "budget.amount_usd"},
			{"negative budget", func(k *storage.APIKey) { k.Budget = &storage.Budget{AmountUSD: -1, Period: storage.BudgetMonth} }, "budget.amount_usd"},
			{"budget per year", func(k *storage.APIKey) { k.Budget = &storage.Budget{AmountUSD: 10, Period: "year"} }, "budget.period"},
			{"budget without period", func(k *storage.APIKey) { k.Budget = &storage.Budget{AmountUSD: 10} }, "budget.period"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := apiKey("ci-bot", "one")
				tt.edit(&in)
				_, err := s.CreateAPIKey(t.Context(), in)
				wantErr(t, err, storage.ErrInvalid, tt.field)
			})
		}
		created := mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))
		for _, tt := range tests {
			t.Run("update "+tt.name, func(t *testing.T) {
				in := created
				tt.edit(&in)
				_, err := s.UpdateAPIKey(t.Context(), in, 0)
				wantErr(t, err, storage.ErrInvalid, tt.field)
			})
		}
		got, err := s.GetAPIKey(t.Context(), created.ID)
		noErr(t, err, "GetAPIKey")
		sameAPIKey(t, got, created)
		sameMeta(t, got.Meta, created.Meta)
	}},
	{"AllowedModelsByID", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		m := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		r := mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		k := mustCreateAPIKey(t, s, storage.APIKey{DisplayName: "app", KeyHash: keyHash("app"), AllowedModels: []string{"chat-prod", "*", "gpt-4o"}})
		if want := []string{r.ID, "*", m.ID}; !slices.Equal(k.AllowedModelIDs, want) {
			t.Errorf("allowed model ids = %q, want %q (ids in the order given, \"*\" as is)", k.AllowedModelIDs, want)
		}
		// Ids the client sends are ignored: names decide.
		in := k
		in.AllowedModelIDs = []string{m.ID}
		in.AllowedModels = []string{"gpt-4o"}
		up, err := s.UpdateAPIKey(t.Context(), in, 0)
		noErr(t, err, "UpdateAPIKey")
		if !slices.Equal(up.AllowedModels, []string{"gpt-4o"}) || !slices.Equal(up.AllowedModelIDs, []string{m.ID}) {
			t.Errorf("after update: allowed %q ids %q, want [gpt-4o] [%s]", up.AllowedModels, up.AllowedModelIDs, m.ID)
		}
	}},
	{"RenameKeepsAccess", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		m := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		r := mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		k := mustCreateAPIKey(t, s, storage.APIKey{DisplayName: "app", KeyHash: keyHash("app"), AllowedModels: []string{"chat-prod", "gpt-4o"}})

		r.DisplayName = "chat-prod-v2"
		_, err := s.UpdateModel(t.Context(), r, r.Revision)
		noErr(t, err, "UpdateModel rename")
		got, err := s.GetAPIKey(t.Context(), k.ID)
		noErr(t, err, "GetAPIKey")
		if want := []string{"chat-prod-v2", "gpt-4o"}; !slices.Equal(got.AllowedModels, want) {
			t.Errorf("allowed_models after rename = %q, want %q (the new name)", got.AllowedModels, want)
		}
		if want := []string{r.ID, m.ID}; !slices.Equal(got.AllowedModelIDs, want) {
			t.Errorf("allowed model ids after rename = %q, want %q", got.AllowedModelIDs, want)
		}
		// A new model under the old name is not the one the key allows.
		mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		got, err = s.GetAPIKey(t.Context(), k.ID)
		noErr(t, err, "GetAPIKey")
		if want := []string{"chat-prod-v2", "gpt-4o"}; !slices.Equal(got.AllowedModels, want) {
			t.Errorf("allowed_models after reusing the old name = %q, want %q", got.AllowedModels, want)
		}
		ks, err := s.ListAPIKeys(t.Context())
		noErr(t, err, "ListAPIKeys")
		if len(ks) != 1 {
			t.Fatalf("listed %d API keys, want 1", len(ks))
		}
		sameAPIKey(t, ks[0], got)
	}},
	{"DeleteAndRecreateDoesNotGrant", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		m := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		r := mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		k := mustCreateAPIKey(t, s, storage.APIKey{DisplayName: "app", KeyHash: keyHash("app"), AllowedModels: []string{"chat-prod", "gpt-4o"}})
		other := mustCreateAPIKey(t, s, apiKey("all", "all"))
		rv := newRevisions(t, s)

		// The tutorial deletes chat-prod while a key still allows it.
		noErr(t, s.DeleteModel(t.Context(), r.ID), "DeleteModel of an allowed model")
		rv.deleted()
		got, err := s.GetAPIKey(t.Context(), k.ID)
		noErr(t, err, "GetAPIKey")
		if !slices.Equal(got.AllowedModels, []string{"gpt-4o"}) || !slices.Equal(got.AllowedModelIDs, []string{m.ID}) {
			t.Errorf("after delete: allowed %q ids %q, want [gpt-4o] [%s]", got.AllowedModels, got.AllowedModelIDs, m.ID)
		}
		if got.Revision <= k.Revision {
			t.Errorf("revision of a key whose model was deleted = %d, want > %d", got.Revision, k.Revision)
		}
		untouched, err := s.GetAPIKey(t.Context(), other.ID)
		noErr(t, err, "GetAPIKey")
		sameAPIKey(t, untouched, other)
		sameMeta(t, untouched.Meta, other.Meta)

		again := mustCreateModel(t, s, routing("chat-prod", "gpt-4o"))
		rv.wrote(again.Revision)
		got, err = s.GetAPIKey(t.Context(), k.ID)
		noErr(t, err, "GetAPIKey")
		if !slices.Equal(got.AllowedModels, []string{"gpt-4o"}) {
			t.Errorf("allowed_models after recreating chat-prod = %q, want [gpt-4o]: a new model is not granted to old keys", got.AllowedModels)
		}
		if src, ok := s.(storage.Source); ok {
			ds, err := src.Load(t.Context())
			noErr(t, err, "Load")
			for _, lk := range ds.APIKeys {
				if lk.ID == k.ID && !slices.Equal(lk.AllowedModelIDs, []string{m.ID}) {
					t.Errorf("Load: allowed model ids = %q, want [%s]", lk.AllowedModelIDs, m.ID)
				}
			}
		}
	}},
	{"UnknownAllowedModel", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		in := storage.APIKey{DisplayName: "app", KeyHash: keyHash("app"), AllowedModels: []string{"gpt-4o", "no-such-model"}}
		_, err := s.CreateAPIKey(t.Context(), in)
		wantErr(t, err, storage.ErrInvalid, "allowed_models[1]", `"no-such-model"`)
		var de *storage.Error
		if errors.As(err, &de) && de.Field != "allowed_models[1]" {
			t.Errorf("field = %q, want allowed_models[1]", de.Field)
		}
		k0 := mustCreateAPIKey(t, s, apiKey("app", "app"))
		k := k0
		k.AllowedModels = []string{"no-such-model"}
		_, err = s.UpdateAPIKey(t.Context(), k, 0)
		wantErr(t, err, storage.ErrInvalid, "allowed_models[0]", `"no-such-model"`)
		ks, err := s.ListAPIKeys(t.Context())
		noErr(t, err, "ListAPIKeys")
		if len(ks) != 1 {
			t.Fatalf("after refused writes: %d API keys, want 1", len(ks))
		}
		sameAPIKey(t, ks[0], k0)
	}},
}
