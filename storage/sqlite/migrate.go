package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// migrationFS holds the schema migrations: NNNN_name.sql, applied in order
// of NNNN. They are forward-only: an applied file is never edited, only
// followed by a new one.
//
//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion is the schema version this binary uses: the number of its
// embedded migrations (a test checks that they agree).
const SchemaVersion = 2

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads the embedded migrations and checks that they are
// numbered 1, 2, 3, … without gaps or duplicates.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	// fs.Glob returns names in lexical order, which is numeric order for
	// zero-padded prefixes; the numbering check below enforces both.
	ms := make([]migration, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		if !ok {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", base, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(base, ".sql"), sql: string(b)})
	}
	return ms, nil
}

// migrate applies every pending migration, each in its own IMMEDIATE
// transaction that first checks whether the version is already recorded: if
// two processes open a fresh file at once, the second waits for the first's
// write lock, then sees the version and skips it.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	err = s.withTx(ctx, func(tx *sql.Tx) error {
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
	var newest int
	if err := s.writer.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if newest > len(ms) {
		return fmt.Errorf("database schema version %d is newer than this binary supports (%d): upgrade aisix", newest, len(ms))
	}
	// One time stamps every migration applied by this Open.
	now := formatTime(s.now())
	for _, m := range ms {
		if m.version <= newest || (s.upTo > 0 && m.version > s.upTo) {
			continue
		}
		err := s.withTx(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil // another process applied it first
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.version, m.name, now)
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}
