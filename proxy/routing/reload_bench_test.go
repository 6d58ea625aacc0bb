package routing_test

import (
	"context"
	"testing"

	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite/sqlitetest"
)

// wholeLoads hides a store's LoadSince: every reload loads whole.
type wholeLoads struct{ storage.Source }

// BenchmarkReloadAfterWrite is what an admin write costs the gateway at
// 1,000 models and 10,000 caller keys in SQLite: one model updated, then
// the table's reload (load and snapshot build), as the admin API runs it
// before it answers. "delta" reads the changes since the live dataset
// (storage.DeltaSource), "whole" everything.
func BenchmarkReloadAfterWrite(b *testing.B) {
	ctx := context.Background()
	s := sqlitetest.Large(b, 20, 1000, 10000)
	ms, err := s.ListModels(ctx)
	if err != nil {
		b.Fatal(err)
	}
	m := ms[0]
	for _, bc := range []struct {
		name string
		src  storage.Source
	}{{"delta", s}, {"whole", wholeLoads{s}}} {
		b.Run(bc.name, func(b *testing.B) {
			t := routing.NewTable(bc.src, nil)
			if err := t.Reload(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				timeout := int64(60000 + i%2)
				m.Timeout = &timeout
				if m, err = s.UpdateModel(ctx, m, 0); err != nil {
					b.Fatal(err)
				}
				if err := t.Reload(ctx); err != nil {
					b.Fatal(err)
				}
				if got := t.Snapshot(); got.Revision != m.Revision || len(got.CallerKeys()) != 10000 {
					b.Fatalf("snapshot at revision %d with %d keys, want %d with 10000", got.Revision, len(got.CallerKeys()), m.Revision)
				}
			}
		})
	}
}
