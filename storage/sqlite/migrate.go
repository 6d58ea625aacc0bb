package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"

	"github.com/aisix/aisix/storage"
)

// migrationFS holds the schema migrations: NNNN_name.sql, applied in order
// of NNNN. They are forward-only: an applied file is never edited, only
// followed by a new one.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion is the schema version this binary uses: the number of its
// embedded migrations (a test checks that they agree).
const SchemaVersion = 13

// migration is one numbered schema change.
type migration = storage.MigrationFile

// migrationSteps are the Go steps of migrations whose data change SQL
// cannot express (it needs the storage package's rules), by version. Each
// runs in the migration's transaction, right after its SQL.
var migrationSteps = map[int]func(ctx context.Context, tx *sql.Tx) error{
	3: fillSecretHosts,
}

// fillSecretHosts binds every stored secret to the host its key's base URL
// names now (migration 0003).
func fillSecretHosts(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, provider, adapter, api_base FROM provider_keys`)
	if err != nil {
		return err
	}
	var pks []storage.ProviderKey
	for rows.Next() {
		var pk storage.ProviderKey
		if err := rows.Scan(&pk.ID, &pk.Provider, &pk.Adapter, &pk.APIBase); err != nil {
			rows.Close()
			return err
		}
		pks = append(pks, pk)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, pk := range pks {
		if _, err := tx.ExecContext(ctx, `UPDATE provider_keys SET secret_host = ? WHERE id = ?`, pk.BaseHost(), pk.ID); err != nil {
			return err
		}
	}
	return nil
}

// MigrateMode says what Open may do to the schema (see
// storage.MigrateMode). For SQLite, MigrateAll and MigrateNewOnly create
// the file if needed; MigrateNone creates neither the file nor its
// directory.
type MigrateMode = storage.MigrateMode

// The modes of WithMigrate.
const (
	MigrateAll     = storage.MigrateAll
	MigrateNewOnly = storage.MigrateNewOnly
	MigrateNone    = storage.MigrateNone
)

// WithMigrate sets what Open may do to the schema (default MigrateAll).
func WithMigrate(m MigrateMode) Option {
	return func(s *Store) { s.mode = m }
}

// SchemaError means the database's schema version is not the one this
// binary uses, and Open was not allowed to, or cannot, change that.
type SchemaError = storage.SchemaError

// Migration names one schema migration.
type Migration = storage.Migration

// MigrationReport is what Open found and did to the schema.
type MigrationReport = storage.MigrationReport

// Migrations reports what Open found and did to the schema.
func (s *Store) Migrations() MigrationReport { return s.migrations }

// schemaState reads, without writing, the schema version of the file and
// whether it is empty (no tables at all: a new file).
func schemaState(ctx context.Context, q querier) (version int, empty bool, err error) {
	var tables int
	if err := q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table'`).Scan(&tables); err != nil {
		return 0, false, fmt.Errorf("read schema: %w", err)
	}
	if tables == 0 {
		return 0, true, nil
	}
	var has int
	err = q.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&has)
	if err != nil || has == 0 {
		return 0, false, err
	}
	if err := q.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return version, false, nil
}

// prepareSchema brings the schema to this binary's version, or checks it
// is there, as the store's MigrateMode allows.
func (s *Store) prepareSchema(ctx context.Context) error {
	ms, err := storage.ReadMigrations(migrationFS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	want := len(ms)
	if s.upTo > 0 {
		want = min(want, s.upTo)
	}
	version, empty, err := schemaState(ctx, s.writer)
	if err != nil {
		return err
	}
	if !s.schemaRead {
		// Open retries this when busy: From is what the first try found.
		s.schemaRead = true
		s.migrations.From = version
	}
	s.migrations.To = version
	switch {
	case version > len(ms):
		return &SchemaError{Path: s.path, Version: version, Want: len(ms)}
	case version == want:
		return nil
	case s.mode == MigrateNone, s.mode == MigrateNewOnly && !empty:
		return &SchemaError{Path: s.path, Version: version, Want: want}
	}
	return s.migrate(ctx, ms[:want])
}

// migrate applies every pending migration of ms, each in its own IMMEDIATE
// transaction that first checks whether the version is already recorded: if
// two processes open a fresh file at once, the second waits for the first's
// write lock, then sees the version and skips it.
func (s *Store) migrate(ctx context.Context, ms []migration) error {
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		) STRICT`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	// One time stamps every migration applied by this Open.
	now := formatTime(s.now())
	for _, m := range ms {
		if m.Version <= s.migrations.To {
			continue
		}
		applied := false
		err := s.withTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil // another process applied it first
			}
			if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
				return err
			}
			if step := migrationSteps[m.Version]; step != nil {
				if err := step(ctx, tx); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, now)
			applied = err == nil
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		if applied {
			s.migrations.Applied = append(s.migrations.Applied, Migration{Version: m.Version, Name: m.Name})
		}
		s.migrations.To = m.Version
	}
	return nil
}

// MigrateTo creates the database at path if needed and migrates it to
// schema version, and no further, then closes it. It exists so that tests
// can make files of older versions; it never downgrades (a newer file is
// left alone, and refused with a *SchemaError).
func MigrateTo(ctx context.Context, path string, version int, opts ...Option) error {
	if version < 1 {
		return fmt.Errorf("migrate %s: no schema version %d", path, version)
	}
	opts = append(opts, func(s *Store) { s.upTo = version })
	s, err := Open(ctx, path, opts...)
	if err != nil {
		return err
	}
	return s.Close()
}
