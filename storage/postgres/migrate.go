package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
const SchemaVersion = 6

// migrateLock is the key of the advisory lock Open holds while it reads
// and migrates the schema, so that replicas starting together take turns.
const migrateLock = 0x616973697801 // "aisix", 1

// MigrateMode says what Open may do to the schema (see
// storage.MigrateMode).
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

// Migrations returns what Open did to the schema.
func (s *Store) Migrations() MigrationReport { return s.migrations }

// prepareSchema reads the schema version and migrates as s.mode says, on
// one connection that holds the migration lock throughout.
func (s *Store) prepareSchema(ctx context.Context) error {
	ms, err := storage.ReadMigrations(migrationFS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrateLock)); err != nil {
		return fmt.Errorf("lock schema: %w", err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrateLock))
	}()
	c := conn.Conn()
	version, empty, err := schemaState(ctx, c)
	if err != nil {
		return err
	}
	s.migrations.From, s.migrations.To = version, version
	switch {
	case version > len(ms):
		return &SchemaError{Path: s.Path(), Version: version, Want: len(ms)}
	case version == len(ms):
		return nil
	case s.mode == MigrateNone, s.mode == MigrateNewOnly && !empty:
		return &SchemaError{Path: s.Path(), Version: version, Want: len(ms)}
	}
	if _, err := c.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TIMESTAMPTZ NOT NULL
		)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	now := s.now().UTC()
	for _, m := range ms[version:] {
		err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.Version, m.Name, now)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.Name, err)
		}
		s.migrations.Applied = append(s.migrations.Applied, Migration{Version: m.Version, Name: m.Name})
		s.migrations.To = m.Version
		s.log.InfoContext(ctx, "applied database migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

// schemaState returns the highest applied migration (0 for none) and
// whether the database has no tables of ours at all.
func schemaState(ctx context.Context, c *pgx.Conn) (version int, empty bool, err error) {
	var exists bool
	if err := c.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	if !exists {
		var meta bool
		if err := c.QueryRow(ctx, `SELECT to_regclass('meta') IS NOT NULL`).Scan(&meta); err != nil {
			return 0, false, fmt.Errorf("read schema version: %w", err)
		}
		if meta {
			return 0, false, errors.New("the database has aisix tables but no schema_migrations table")
		}
		return 0, true, nil
	}
	if err := c.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return version, version == 0, nil
}
