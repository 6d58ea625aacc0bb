package storagetest

import (
	"cmp"
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
	switch {
	case got.ExpiresAt == nil && want.ExpiresAt == nil:
	case got.ExpiresAt == nil || want.ExpiresAt == nil || !got.ExpiresAt.Equal(*want.ExpiresAt):
		t.Errorf("expires_at = %v, want %v", fmtTime(got.ExpiresAt), fmtTime(want.ExpiresAt))
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
		rv := newRevisions(t, s)
		expires := time.Now().Add(30 * 24 * time.Hour).UTC().Truncate(time.Second)
		for _, in := range []storage.APIKey{
			apiKey("ci-bot", "one"),
			{
				DisplayName: "team-a",
				KeyHash:     keyHash("two"),
				// Caller keys may name models that do not exist (yet).
				AllowedModels: []string{"chat-prod", "no-such-model"},
				ExpiresAt:     &expires,
				Disabled:      true,
			},
			{KeyHash: keyHash("three"), AllowedModels: []string{}},
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
		rv := newRevisions(t, s)
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
		in := apiKey("ci-bot", "one")
		in.ExpiresAt = &expires
		created := mustCreateAPIKey(t, s, in)
		rv.wrote(created.Revision)

		up := storage.APIKey{
			ID:            created.ID,
			DisplayName:   "ci-bot-rotated",
			KeyHash:       keyHash("rotated"),
			AllowedModels: []string{"gpt-4o", "chat-prod"},
			Disabled:      true,
		}
		updated, err := s.UpdateAPIKey(t.Context(), up, created.Revision)
		noErr(t, err, "UpdateAPIKey")
		rv.wrote(updated.Revision)
		sameAPIKey(t, updated, up) // full replace: expires_at is cleared
		checkUpdatedMeta(t, updated.Meta, created.Meta)

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
}
