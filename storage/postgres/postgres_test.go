package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/postgres/pgtest"
	"github.com/aisix/aisix/storage/storagetest"
)

// TestMain starts one throwaway PostgreSQL server for the package's tests;
// each test gets a database of its own.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openStore opens a Store on url, closed when t ends.
func openStore(t testing.TB, url string, opts ...postgres.Option) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, opts...)
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

// migrated is a database migrated once, which newStore copies (the
// migration tests start from empty databases instead).
var migrated struct {
	once sync.Once
	name string
	err  error
}

// newStore opens a Store on a fresh database with the current schema.
func newStore(t testing.TB, opts ...postgres.Option) (*postgres.Store, string) {
	t.Helper()
	migrated.once.Do(func() {
		url, err := pgtest.Shared(t).CreateDatabase(context.Background())
		if err != nil {
			migrated.err = err
			return
		}
		s, err := postgres.Open(context.Background(), url)
		if err != nil {
			migrated.err = err
			return
		}
		migrated.err = s.Close()
		migrated.name = pgtest.DatabaseName(url)
	})
	if migrated.err != nil {
		t.Fatalf("migrate the template database: %v", migrated.err)
	}
	url := pgtest.NewDatabaseFrom(t, migrated.name)
	return openStore(t, url, opts...), url
}

// rawConn is a plain connection to url, for what the store would never do.
func rawConn(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	mustNoErr(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func mustNoErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, _ := newStore(t)
		return s
	})
	storagetest.RunApply(t, func(t *testing.T) storagetest.ApplyStore {
		s, _ := newStore(t)
		return s
	})
	storagetest.RunUsage(t, func(t *testing.T) (storage.UsageStore, storage.UsageReader) {
		s, _ := newStore(t)
		return s, s
	})
	storagetest.RunAdminKeys(t, func(t *testing.T) storage.AdminKeyStore {
		s, _ := newStore(t)
		return s
	})
	storagetest.RunAudit(t, func(t *testing.T) (storage.AuditStore, storage.AuditReader) {
		s, _ := newStore(t)
		return s, s
	})
}
