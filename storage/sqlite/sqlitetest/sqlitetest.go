// Package sqlitetest opens SQLite stores for tests and benchmarks of the
// packages above storage: a fresh file in the test's temp directory,
// closed when the test ends.
package sqlitetest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
	"github.com/aisix/aisix/storage/storagetest"
)

// Large returns a store holding storagetest.Large(providerKeys, models,
// apiKeys), written in one apply.
func Large(tb testing.TB, providerKeys, models, apiKeys int) *sqlite.Store {
	tb.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(tb.TempDir(), "aisix.db"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	if _, err := s.Apply(ctx, storagetest.Large(providerKeys, models, apiKeys), storage.ApplyOptions{}); err != nil {
		tb.Fatal(err)
	}
	return s
}
