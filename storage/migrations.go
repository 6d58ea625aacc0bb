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
