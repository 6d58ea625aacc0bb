package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestSynchronousFull checks that the writer and the readers run with
// synchronous=FULL (2), so an acknowledged write survives power loss.
func TestSynchronousFull(t *testing.T) {
	s, err := Open(context.Background(), filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, db := range map[string]*sql.DB{"writer": s.writer, "reader": s.reader} {
		var level int
		if err := db.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&level); err != nil {
			t.Fatal(err)
		}
		if level != 2 {
			t.Errorf("%s: synchronous = %d, want 2 (FULL)", name, level)
		}
	}
}
