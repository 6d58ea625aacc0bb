package metrics

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
	"github.com/aisix/aisix/storage/storagetest"
)

// BenchmarkSwapLarge is what the metrics add to an admin write at 1,000
// models (one in ten a routing group) and 10,000 caller keys: resolving
// the series of the new snapshot (and pre-creating the usage series of up
// to maxUsagePrecreate key and target pairs), as the table's swap hook
// runs it. It used to walk keys × models.
func BenchmarkSwapLarge(b *testing.B) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "aisix.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if _, err := s.Apply(ctx, storagetest.Large(20, 1000, 10000), storage.ApplyOptions{}); err != nil {
		b.Fatal(err)
	}
	ds, err := s.Load(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Two snapshots of the same dataset: every swap resolves new pointers.
	var snaps [2]*routing.Snapshot
	for i := range snaps {
		if snaps[i], err = routing.Build(ds); err != nil {
			b.Fatal(err)
		}
	}
	m := New(Options{Version: "bench"})
	m.Swap(snaps[1])
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Swap(snaps[i%2])
		i++
	}
}
