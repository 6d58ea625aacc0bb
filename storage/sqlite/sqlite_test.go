package sqlite_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
	"github.com/aisix/aisix/storage/storagetest"
)

func openStore(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	})
	storagetest.RunApply(t, func(t *testing.T) storagetest.ApplyStore {
		return openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	})
	storagetest.RunUsage(t, func(t *testing.T) (storage.UsageStore, storage.UsageReader) {
		s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
		return s, s
	})
	storagetest.RunAdminKeys(t, func(t *testing.T) storage.AdminKeyStore {
		return openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	})
	storagetest.RunAudit(t, func(t *testing.T) (storage.AuditStore, storage.AuditReader) {
		s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
		return s, s
	})
}

func hashOf(seed string) string {
	sum := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(sum[:])
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpen(t *testing.T) {
	t.Run("creates private parent directory and file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "a", "b", "aisix.db")
		s := openStore(t, path)
		if s.Path() != path {
			t.Errorf("Path() = %q, want %q", s.Path(), path)
		}
		di, err := os.Stat(filepath.Dir(path))
		mustNoErr(t, err)
		if m := di.Mode().Perm(); m != 0o700 {
			t.Errorf("directory mode = %o, want 700", m)
		}
		fi, err := os.Stat(path)
		mustNoErr(t, err)
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("file mode = %o, want 600", m)
		}
	})
	t.Run("path with URI characters", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "we?ird#dir %41")
		path := filepath.Join(dir, "aisix.db")
		s, err := sqlite.Open(t.Context(), path)
		mustNoErr(t, err)
		_, err = s.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-x"})
		mustNoErr(t, err)
		mustNoErr(t, s.Close())
		// Open created the file before SQLite saw the path, so only data in
		// it shows that SQLite wrote there.
		fi, err := os.Stat(path)
		mustNoErr(t, err)
		if fi.Size() == 0 {
			t.Fatal("database file at the given path is empty: SQLite wrote elsewhere")
		}
		entries, err := os.ReadDir(dir)
		mustNoErr(t, err)
		for _, e := range entries {
			if e.Name() != "aisix.db" {
				t.Errorf("unexpected file %q next to the database after Close", e.Name())
			}
		}
		s2 := openStore(t, path)
		pks, err := s2.ListProviderKeys(t.Context())
		mustNoErr(t, err)
		if len(pks) != 1 {
			t.Errorf("reopened store lists %d provider keys, want 1", len(pks))
		}
	})
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		t.Run(fmt.Sprintf("rejects %q", path), func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), path)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded, want an error")
			}
		})
	}
}

// TestDeterministic checks that WithNow and WithNewID are used for every
// row, and that times round-trip at full precision.
func TestDeterministic(t *testing.T) {
	base := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("X", 3600))
	var (
		mu    sync.Mutex
		tick  int
		nextN int
	)
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		tick++
		return base.Add(time.Duration(tick) * time.Second)
	}
	newID := func() string {
		mu.Lock()
		defer mu.Unlock()
		nextN++
		return fmt.Sprintf("id-%03d", nextN)
	}
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"), sqlite.WithNow(now), sqlite.WithNewID(newID))
	ctx := t.Context()
	// Open's migration consumed one tick for applied_at.
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-0123456789abcdefXYZ"})
	mustNoErr(t, err)
	if pk.ID != "id-001" {
		t.Errorf("id = %q, want id-001", pk.ID)
	}
	if want := base.Add(2 * time.Second); !pk.CreatedAt.Equal(want) || !pk.UpdatedAt.Equal(want) {
		t.Errorf("times = %v / %v, want %v", pk.CreatedAt, pk.UpdatedAt, want)
	}
	if pk.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at location = %v, want UTC", pk.CreatedAt.Location())
	}
	if pk.Secret != "sk-0123456789abcdefXYZ" || pk.SecretHint != "sk-…fXYZ" {
		t.Errorf("secret, hint = %q, %q", pk.Secret, pk.SecretHint)
	}
	pk.Secret = ""
	up, err := s.UpdateProviderKey(ctx, pk, pk.Revision)
	mustNoErr(t, err)
	if want := base.Add(3 * time.Second); !up.UpdatedAt.Equal(want) || !up.CreatedAt.Equal(pk.CreatedAt) {
		t.Errorf("after update: created %v updated %v, want %v %v", up.CreatedAt, up.UpdatedAt, pk.CreatedAt, want)
	}
	if up.Secret != "sk-0123456789abcdefXYZ" {
		t.Errorf("secret after update without one = %q, want the stored one", up.Secret)
	}
	if up.Revision != 2 {
		t.Errorf("revision = %d, want 2", up.Revision)
	}

	exp := base.Add(48 * time.Hour)
	for i := range 3 {
		_, err := s.CreateAPIKey(ctx, storage.APIKey{KeyHash: hashOf(fmt.Sprint(i)), AllowedModels: []string{"*"}, ExpiresAt: &exp})
		mustNoErr(t, err)
	}
	ks, err := s.ListAPIKeys(ctx)
	mustNoErr(t, err)
	for i, k := range ks {
		if want := fmt.Sprintf("id-%03d", i+2); k.ID != want {
			t.Errorf("API key %d id = %q, want %q (creation order)", i, k.ID, want)
		}
		if !k.ExpiresAt.Equal(exp) {
			t.Errorf("expires_at = %v, want %v", k.ExpiresAt, exp)
		}
	}
}

// TestLoadRevealsSecrets checks that the proxy's Load gets plaintext secrets
// (the conformance suite accepts stores that hide them).
func TestLoadRevealsSecrets(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	const secret = "sk-live-0123456789abcdef"
	_, err := s.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: secret})
	mustNoErr(t, err)
	ds, err := s.Load(t.Context())
	mustNoErr(t, err)
	if len(ds.ProviderKeys) != 1 || ds.ProviderKeys[0].Secret != secret {
		t.Fatalf("Load provider keys = %+v, want one with the plaintext secret", ds.ProviderKeys)
	}
}

// TestErrorMessages pins the wording that the admin API shows to operators.
func TestErrorMessages(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"), sqlite.WithNewID(seqIDs()))
	ctx := t.Context()
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "openai-primary", Provider: "openai", Secret: "sk-1"})
	mustNoErr(t, err)
	m, err := s.CreateModel(ctx, storage.Model{DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: pk.ID})
	mustNoErr(t, err)
	_, err = s.CreateModel(ctx, storage.Model{DisplayName: "gpt-4o-secondary", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: pk.ID})
	mustNoErr(t, err)
	r, err := s.CreateModel(ctx, storage.Model{DisplayName: "chat-prod", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-primary"}}}})
	mustNoErr(t, err)
	_, err = s.CreateAPIKey(ctx, storage.APIKey{KeyHash: hashOf("a"), AllowedModels: []string{"*"}})
	mustNoErr(t, err)

	tests := []struct {
		name  string
		err   error
		kind  error
		field string
		msg   string
	}{
		{"duplicate provider key name",
			func() error {
				_, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "openai-primary", Provider: "openai", Secret: "sk-2"})
				return err
			}(),
			storage.ErrConflict, "", `name "openai-primary" already in use by another provider key`},
		{"duplicate model name",
			func() error {
				_, err := s.CreateModel(ctx, storage.Model{DisplayName: "chat-prod", Provider: "openai", ModelName: "x", ProviderKeyID: pk.ID})
				return err
			}(),
			storage.ErrConflict, "", `name "chat-prod" already in use by another model`},
		{"duplicate key hash",
			func() error {
				_, err := s.CreateAPIKey(ctx, storage.APIKey{KeyHash: hashOf("a"), AllowedModels: []string{"*"}})
				return err
			}(),
			storage.ErrConflict, "", `key_hash already in use by another API key`},
		{"unknown provider key",
			func() error {
				_, err := s.CreateModel(ctx, storage.Model{DisplayName: "x", Provider: "openai", ModelName: "x", ProviderKeyID: "nope"})
				return err
			}(),
			storage.ErrInvalid, "provider_key_id", `provider_key_id: provider key "nope" does not exist`},
		{"missing target",
			func() error {
				_, err := s.CreateModel(ctx, storage.Model{DisplayName: "x", Routing: &storage.Routing{Targets: []storage.Target{
					{Model: "gpt-4o-primary"}, {Model: "gpt-4o-tertiary"},
				}}})
				return err
			}(),
			storage.ErrInvalid, "routing.targets[1].model", `routing.targets[1].model: "gpt-4o-tertiary" is not an existing direct model`},
		{"provider key in use",
			s.DeleteProviderKey(ctx, pk.ID),
			storage.ErrConflict, "", `provider key "openai-primary" is used by model(s) gpt-4o-primary, gpt-4o-secondary`},
		{"model targeted",
			s.DeleteModel(ctx, m.ID),
			storage.ErrConflict, "", `model "gpt-4o-primary" is a target of routing model(s) chat-prod`},
		{"targeted model to routing",
			func() error {
				_, err := s.UpdateModel(ctx, storage.Model{ID: m.ID, DisplayName: "gpt-4o-primary", Routing: &storage.Routing{
					Targets: []storage.Target{{Model: "gpt-4o-secondary"}},
				}}, 0)
				return err
			}(),
			storage.ErrConflict, "", `model "gpt-4o-primary" is a target of routing model(s) chat-prod; remove it from them before turning it into a routing model`},
		{"not found",
			s.DeleteModel(ctx, "id-999"),
			storage.ErrNotFound, "", `model "id-999" not found`},
		{"stale revision",
			func() error {
				_, err := s.UpdateModel(ctx, storage.Model{ID: r.ID, DisplayName: "chat-prod", Routing: &storage.Routing{
					Targets: []storage.Target{{Model: "gpt-4o-secondary"}},
				}}, r.Revision-1)
				return err
			}(),
			storage.ErrRevisionMismatch, "", fmt.Sprintf(`model "%s" is at revision %d, not %d: it was changed by someone else; reload and retry`, r.ID, r.Revision, r.Revision-1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var de *storage.Error
			if !errors.As(tt.err, &de) {
				t.Fatalf("error %v (%T) is not a *storage.Error", tt.err, tt.err)
			}
			if !errors.Is(tt.err, tt.kind) {
				t.Errorf("kind = %v, want %v", de.Kind, tt.kind)
			}
			if de.Field != tt.field {
				t.Errorf("field = %q, want %q", de.Field, tt.field)
			}
			if de.Message != tt.msg {
				t.Errorf("message = %q\nwant      %q", de.Message, tt.msg)
			}
		})
	}
}

func seqIDs() func() string {
	var (
		mu sync.Mutex
		n  int
	)
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("id-%03d", n)
	}
}

// TestWriteRollsBackOnPanic panics inside a write transaction (through the
// clock, which writes call after bumping the revision) and checks that the
// transaction was rolled back and the writer connection still works.
func TestWriteRollsBackOnPanic(t *testing.T) {
	var boom atomic.Bool
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"), sqlite.WithNow(func() time.Time {
		if boom.Load() {
			panic("clock exploded")
		}
		return time.Now()
	}))
	ctx := t.Context()
	before, err := s.Revision(ctx)
	mustNoErr(t, err)

	boom.Store(true)
	func() {
		defer func() {
			if p := recover(); p != "clock exploded" {
				t.Errorf("recovered %v, want the clock's panic", p)
			}
		}()
		_, _ = s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-1"})
	}()
	boom.Store(false)

	after, err := s.Revision(ctx)
	mustNoErr(t, err)
	if after != before {
		t.Errorf("revision = %d after a panicked write, want %d", after, before)
	}
	pks, err := s.ListProviderKeys(ctx)
	mustNoErr(t, err)
	if len(pks) != 0 {
		t.Errorf("a panicked write left %d provider keys", len(pks))
	}
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-1"})
	mustNoErr(t, err)
	if pk.Revision != before+1 {
		t.Errorf("next write revision = %d, want %d", pk.Revision, before+1)
	}
}
