package storage

import (
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// MigrationFile is one numbered schema change of a database store:
// migrations/NNNN_name.sql in the store's embedded files.
type MigrationFile struct {
	Version int
	// Name is the file name without .sql ("0001_init").
	Name string
	SQL  string
}

// ReadMigrations reads fsys's migrations/*.sql and checks that they are
// numbered 1, 2, 3, … without gaps or duplicates (NNNN_description.sql,
// zero-padded, so that name order is number order).
func ReadMigrations(fsys fs.FS) ([]MigrationFile, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]MigrationFile, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", base)
		}
		if v != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", base, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, MigrationFile{Version: v, Name: strings.TrimSuffix(base, ".sql"), SQL: string(b)})
	}
	return ms, nil
}

// MigrateMode says what a database store's Open may do to its schema.
type MigrateMode int

const (
	// MigrateAll applies every pending migration (creating a SQLite file
	// if needed): what aisix serve and aisix migrate do. It is the default.
	MigrateAll MigrateMode = iota
	// MigrateNewOnly initialises a new, empty database, but refuses one
	// with an older schema (a *SchemaError): management commands leave
	// upgrades to aisix migrate and serve.
	MigrateNewOnly
	// MigrateNone changes nothing: the database must exist and have this
	// binary's schema, else Open fails (a *SchemaError for an older or
	// newer one). For shell completion, which must not have side effects.
	MigrateNone
)

// SchemaError means a database's schema version is not the one this
// binary uses, and Open was not allowed to, or cannot, change that.
type SchemaError struct {
	// Path names the database: a SQLite file, or a PostgreSQL URL
	// without its password.
	Path string
	// Version is the database's schema version; Want is this binary's.
	Version, Want int
}

func (e *SchemaError) Error() string {
	if e.Version > e.Want {
		return fmt.Sprintf("database %s is at schema version %d, newer than this aisix (%d): upgrade aisix", e.Path, e.Version, e.Want)
	}
	return fmt.Sprintf("database %s is at schema version %d, this aisix needs %d: run \"aisix migrate\" (or restart aisix serve)", e.Path, e.Version, e.Want)
}

// Migration names one schema migration.
type Migration struct {
	Version int    `json:"version"`
	Name    string `json:"name"`
}

// MigrationReport is what a database store's Open found and did to the
// schema.
type MigrationReport struct {
	// From is the schema version the database had (0 for a new one).
	From int `json:"from_version"`
	// To is the version it has now.
	To int `json:"version"`
	// Applied lists the migrations this Open applied, oldest first; empty
	// when the database was current (or another process migrated it
	// first).
	Applied []Migration `json:"applied"`
}
