package postgres_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/postgres/pgtest"
)

// TestSchemaVersion: SchemaVersion is the number of migration files.
func TestSchemaVersion(t *testing.T) {
	files, err := fs.Glob(os.DirFS("."), "migrations/*.sql")
	mustNoErr(t, err)
	if len(files) != postgres.SchemaVersion {
		t.Errorf("%d migration files, SchemaVersion %d", len(files), postgres.SchemaVersion)
	}
}

// TestMigrate: a fresh database gets every migration, recorded in
// schema_migrations; opening it again applies nothing.
func TestMigrate(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openStore(t, url)
	rep := s.Migrations()
	if rep.From != 0 || rep.To != postgres.SchemaVersion || len(rep.Applied) != postgres.SchemaVersion {
		t.Fatalf("first Open: %+v", rep)
	}
	for i, m := range rep.Applied {
		if m.Version != i+1 {
			t.Errorf("applied[%d] = %+v", i, m)
		}
	}
	rows, err := rawConn(t, url).Query(t.Context(), `SELECT version, name FROM schema_migrations ORDER BY version`)
	mustNoErr(t, err)
	var recorded []postgres.Migration
	for rows.Next() {
		var m postgres.Migration
		mustNoErr(t, rows.Scan(&m.Version, &m.Name))
		recorded = append(recorded, m)
	}
	mustNoErr(t, rows.Err())
	if len(recorded) != postgres.SchemaVersion || recorded[0].Name != "0001_init" || recorded[1].Name != "0002_usage" || recorded[2].Name != "0003_provider_key_secret_key_id" {
		t.Errorf("schema_migrations = %+v", recorded)
	}
	again := openStore(t, url, postgres.WithMigrate(postgres.MigrateNone))
	if rep := again.Migrations(); len(rep.Applied) != 0 || rep.From != postgres.SchemaVersion {
		t.Errorf("second Open: %+v", rep)
	}
}

// TestMigrateModes: MigrateNone refuses an empty database, MigrateNewOnly
// initialises one, and every mode refuses a newer schema.
func TestMigrateModes(t *testing.T) {
	ctx := context.Background()
	var se *postgres.SchemaError
	_, err := postgres.Open(ctx, pgtest.NewDatabase(t), postgres.WithMigrate(postgres.MigrateNone))
	if !errors.As(err, &se) || se.Version != 0 {
		t.Errorf("MigrateNone on an empty database: %v, want a *SchemaError", err)
	}
	url := pgtest.NewDatabase(t)
	s := openStore(t, url, postgres.WithMigrate(postgres.MigrateNewOnly))
	if got := s.Migrations().To; got != postgres.SchemaVersion {
		t.Errorf("MigrateNewOnly on an empty database migrated to %d", got)
	}
	_, err = rawConn(t, url).Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future', now())`)
	mustNoErr(t, err)
	for _, mode := range []postgres.MigrateMode{postgres.MigrateAll, postgres.MigrateNewOnly, postgres.MigrateNone} {
		_, err := postgres.Open(ctx, url, postgres.WithMigrate(mode))
		if !errors.As(err, &se) || se.Version != 99 {
			t.Errorf("mode %d on a newer schema: %v, want a *SchemaError", mode, err)
		}
	}
}

// TestConcurrentMigrate: replicas that start together on a fresh database
// take turns: all open, and the migrations are applied once.
func TestConcurrentMigrate(t *testing.T) {
	url := pgtest.NewDatabase(t)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied int
	)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Error(err)
				return
			}
			defer s.Close()
			mu.Lock()
			applied += len(s.Migrations().Applied)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if applied != postgres.SchemaVersion {
		t.Errorf("%d migrations applied in all, want %d", applied, postgres.SchemaVersion)
	}
}
