package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

type appliedMigration struct {
	version   int
	name      string
	appliedAt string
}

// rawDB opens the file with the bare driver, to look at what Open did.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	mustNoErr(t, err)
	t.Cleanup(func() { mustNoErr(t, db.Close()) })
	return db
}

func appliedMigrations(t *testing.T, db *sql.DB) []appliedMigration {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), `SELECT version, name, applied_at FROM schema_migrations ORDER BY version`)
	mustNoErr(t, err)
	defer rows.Close()
	var ms []appliedMigration
	for rows.Next() {
		var m appliedMigration
		mustNoErr(t, rows.Scan(&m.version, &m.name, &m.appliedAt))
		ms = append(ms, m)
	}
	mustNoErr(t, rows.Err())
	return ms
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s, err := sqlite.Open(t.Context(), path, sqlite.WithNow(func() time.Time { return at }))
	mustNoErr(t, err)
	mustNoErr(t, s.Close())

	db := rawDB(t, path)
	want := []appliedMigration{
		{1, "0001_init", "2025-01-02T03:04:05.000000000Z"},
		{2, "0002_api_key_models", "2025-01-02T03:04:05.000000000Z"},
		{3, "0003_provider_key_secret_host", "2025-01-02T03:04:05.000000000Z"},
		{4, "0004_provider_key_forward_headers", "2025-01-02T03:04:05.000000000Z"},
		{5, "0005_provider_key_api_version", "2025-01-02T03:04:05.000000000Z"},
		{6, "0006_anthropic_default_secret_host", "2025-01-02T03:04:05.000000000Z"},
		{7, "0007_usage", "2025-01-02T03:04:05.000000000Z"},
		{8, "0008_api_key_limits", "2025-01-02T03:04:05.000000000Z"},
		{9, "0009_usage_dims", "2025-01-02T03:04:05.000000000Z"},
		{10, "0010_provider_key_secret_key_id", "2025-01-02T03:04:05.000000000Z"},
		{11, "0011_provider_key_tls", "2025-01-02T03:04:05.000000000Z"},
		{12, "0012_admin_keys", "2025-01-02T03:04:05.000000000Z"},
		{13, "0013_audit", "2025-01-02T03:04:05.000000000Z"},
	}
	if got := appliedMigrations(t, db); !slices.Equal(got, want) {
		t.Fatalf("schema_migrations = %+v, want %+v", got, want)
	}
	tables, err := queryStrings(t.Context(), db, `SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	mustNoErr(t, err)
	wantTables := []string{"admin_keys", "api_key_models", "api_keys", "audit_records", "meta", "model_targets", "models", "provider_keys", "schema_migrations", "usage_dims", "usage_records"}
	if !slices.Equal(tables, wantTables) {
		t.Errorf("tables = %q, want %q", tables, wantTables)
	}
	var mode string
	mustNoErr(t, db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode))
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}

	t.Run("reopen is a no-op", func(t *testing.T) {
		s, err := sqlite.Open(t.Context(), path, sqlite.WithNow(func() time.Time { return at.Add(time.Hour) }))
		mustNoErr(t, err)
		rev, err := s.Revision(t.Context())
		mustNoErr(t, err)
		mustNoErr(t, s.Close())
		if rev != 0 {
			t.Errorf("revision after reopen = %d, want 0", rev)
		}
		if got := appliedMigrations(t, db); !slices.Equal(got, want) {
			t.Errorf("schema_migrations after reopen = %+v, want %+v", got, want)
		}
	})

	t.Run("newer schema is refused", func(t *testing.T) {
		_, err := db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future', '')`)
		mustNoErr(t, err)
		defer func() {
			_, err := db.ExecContext(context.Background(), `DELETE FROM schema_migrations WHERE version = 99`)
			mustNoErr(t, err)
		}()
		s, err := sqlite.Open(t.Context(), path)
		if err == nil {
			_ = s.Close()
			t.Fatal("Open succeeded on a database from a newer binary")
		}
		if !strings.Contains(err.Error(), "newer") {
			t.Errorf("error = %q, want it to say the schema is newer", err)
		}
	})
}

// TestConcurrentOpen opens one fresh file from many stores at once, as two
// processes starting together would: every Open succeeds and each
// migration is applied exactly once.
func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	const n = 8
	var (
		wg     sync.WaitGroup
		start  = make(chan struct{})
		errs   = make([]error, n)
		stores = make([]*sqlite.Store, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = sqlite.Open(context.Background(), path)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { mustNoErr(t, stores[i].Close()) })
	}
	if t.Failed() {
		return
	}
	got := appliedMigrations(t, rawDB(t, path))
	for i, m := range got {
		if m.version != i+1 {
			t.Errorf("schema_migrations = %+v, want versions 1, 2, … once each", got)
			break
		}
	}
	if len(got) != sqlite.SchemaVersion {
		t.Errorf("%d migrations recorded, want %d", len(got), sqlite.SchemaVersion)
	}
	// Every store works on the shared file.
	_, err := stores[0].CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: "sk-1"})
	mustNoErr(t, err)
	for i, s := range stores {
		rev, err := s.Revision(t.Context())
		mustNoErr(t, err)
		if rev != 1 {
			t.Errorf("store %d sees revision %d, want 1", i, rev)
		}
	}
}

func queryStrings(ctx context.Context, db *sql.DB, q string) ([]string, error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
