package metrics

import (
	"context"
	"testing"

	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage/sqlite/sqlitetest"
)

// BenchmarkSwapLarge is what the metrics add to an admin write at 1,000
// models (one in ten a routing group) and 10,000 caller keys: resolving
// the series of the new snapshot (and pre-creating the usage series of up
// to maxUsagePrecreate key and target pairs), as the table's swap hook
// runs it. It used to walk keys × models.
func BenchmarkSwapLarge(b *testing.B) {
	ctx := context.Background()
	s := sqlitetest.Large(b, 20, 1000, 10000)
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
