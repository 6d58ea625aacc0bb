package sqlite_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// v1File returns a database file at schema version 1.
func v1File(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aisix.db")
	mustNoErr(t, sqlite.MigrateTo(t.Context(), path, 1))
	return path
}

func schemaVersion(t *testing.T, path string) int {
	t.Helper()
	ms := appliedMigrations(t, rawDB(t, path))
	if len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// wantSchemaError fails t unless err is a *SchemaError for path at version
// got, whose one-line message is want.
func wantSchemaError(t *testing.T, err error, path string, got int, want string) {
	t.Helper()
	var se *sqlite.SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T), want a *sqlite.SchemaError", err, err)
	}
	if se.Path != path || se.Version != got || se.Want != sqlite.SchemaVersion {
		t.Errorf("schema error %+v, want path %s version %d want %d", se, path, got, sqlite.SchemaVersion)
	}
	if err.Error() != want {
		t.Errorf("message %q\nwant    %q", err.Error(), want)
	}
}

func TestMigrateModes(t *testing.T) {
	older := func(path string) string {
		return fmt.Sprintf(`database %s is at schema version 1, this aisix needs %d: run "aisix migrate" (or restart aisix serve)`, path, sqlite.SchemaVersion)
	}
	for _, mode := range []sqlite.MigrateMode{sqlite.MigrateNewOnly, sqlite.MigrateNone} {
		t.Run(fmt.Sprintf("mode %d refuses an older file and leaves it alone", mode), func(t *testing.T) {
			path := v1File(t)
			_, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate(mode))
			wantSchemaError(t, err, path, 1, older(path))
			if v := schemaVersion(t, path); v != 1 {
				t.Errorf("schema version %d after a refused Open, want 1", v)
			}
		})
	}

	t.Run("MigrateAll upgrades an older file and reports it", func(t *testing.T) {
		path := v1File(t)
		s := openStore(t, path)
		rep := s.Migrations()
		if rep.From != 1 || rep.To != sqlite.SchemaVersion || len(rep.Applied) != sqlite.SchemaVersion-1 || rep.Applied[0].Version != 2 {
			t.Errorf("report %+v, want from 1 to %d applying 2…%d", rep, sqlite.SchemaVersion, sqlite.SchemaVersion)
		}
		if rep.Applied[0].Name != "0002_api_key_models" {
			t.Errorf("first applied %+v, want 0002_api_key_models", rep.Applied[0])
		}
		again := openStore(t, path).Migrations()
		if again.From != sqlite.SchemaVersion || again.To != sqlite.SchemaVersion || len(again.Applied) != 0 {
			t.Errorf("report of a current file %+v, want nothing applied", again)
		}
	})

	t.Run("MigrateNewOnly initialises a new file", func(t *testing.T) {
		for name, prepare := range map[string]func(path string){
			"nonexistent": func(string) {},
			"empty file":  func(path string) { mustNoErr(t, os.WriteFile(path, nil, 0o600)) },
		} {
			t.Run(name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "sub", "aisix.db")
				mustNoErr(t, os.MkdirAll(filepath.Dir(path), 0o700))
				prepare(path)
				s := openStore(t, path, sqlite.WithMigrate(sqlite.MigrateNewOnly))
				rep := s.Migrations()
				if rep.From != 0 || rep.To != sqlite.SchemaVersion || len(rep.Applied) != sqlite.SchemaVersion {
					t.Errorf("report %+v, want every migration applied", rep)
				}
				_, err := s.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-new-0123456789"})
				mustNoErr(t, err)
			})
		}
	})

	t.Run("MigrateNone creates nothing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing", "aisix.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate(sqlite.MigrateNone))
		if err == nil {
			_ = s.Close()
			t.Fatal("Open of a missing file succeeded")
		}
		if _, err := os.Stat(filepath.Dir(path)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("directory of a missing file: %v, want it not created", err)
		}
		empty := filepath.Join(t.TempDir(), "empty.db")
		mustNoErr(t, os.WriteFile(empty, nil, 0o600))
		if s, err := sqlite.Open(t.Context(), empty, sqlite.WithMigrate(sqlite.MigrateNone)); err == nil {
			_ = s.Close()
			t.Error("Open of an empty file succeeded")
		}
		if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
			t.Errorf("empty file after Open: %v, %v; want it untouched", fi, err)
		}
	})

	t.Run("MigrateNone opens a current file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "aisix.db")
		w := openStore(t, path)
		_, err := w.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-cur-0123456789"})
		mustNoErr(t, err)
		s := openStore(t, path, sqlite.WithMigrate(sqlite.MigrateNone))
		pks, err := s.ListProviderKeys(t.Context())
		mustNoErr(t, err)
		if len(pks) != 1 {
			t.Errorf("listed %d provider keys, want 1", len(pks))
		}
	})

	t.Run("every mode refuses a newer file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "aisix.db")
		mustNoErr(t, openStore(t, path).Close())
		_, err := rawDB(t, path).ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', '')`, sqlite.SchemaVersion+1)
		mustNoErr(t, err)
		want := fmt.Sprintf("database %s is at schema version %d, newer than this aisix (%d): upgrade aisix", path, sqlite.SchemaVersion+1, sqlite.SchemaVersion)
		for _, mode := range []sqlite.MigrateMode{sqlite.MigrateAll, sqlite.MigrateNewOnly, sqlite.MigrateNone} {
			_, err := sqlite.Open(t.Context(), path, sqlite.WithMigrate(mode))
			var se *sqlite.SchemaError
			if !errors.As(err, &se) || err.Error() != want {
				t.Errorf("mode %d: error %v, want %q", mode, err, want)
			}
		}
		if got := appliedMigrations(t, rawDB(t, path)); !slices.ContainsFunc(got, func(m appliedMigration) bool { return m.version == sqlite.SchemaVersion+1 }) {
			t.Errorf("schema_migrations %+v lost the newer version", got)
		}
	})
}
