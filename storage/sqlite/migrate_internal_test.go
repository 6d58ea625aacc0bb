package sqlite

import (
	"testing"

	"github.com/aisix/aisix/storage"
)

// TestEmbeddedMigrations: the embedded files read, and SchemaVersion counts them.
func TestEmbeddedMigrations(t *testing.T) {
	t.Run("embedded", func(t *testing.T) {
		ms, err := storage.ReadMigrations(migrationFS)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 0 || ms[0].Name != "0001_init" {
			t.Fatalf("embedded migrations = %+v, want 0001_init first", ms)
		}
		if len(ms) != SchemaVersion {
			t.Errorf("%d embedded migrations, but SchemaVersion is %d: bump it with a new migration", len(ms), SchemaVersion)
		}
	})
}
