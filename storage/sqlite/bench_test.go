package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
	"github.com/aisix/aisix/storage/storagetest"
)

// fill writes storagetest.Large's configuration one resource at a time.
func fill(tb testing.TB, s *sqlite.Store, providerKeys, models, apiKeys int) {
	tb.Helper()
	ctx := context.Background()
	d := storagetest.Large(providerKeys, models, apiKeys)
	pkIDs := make(map[string]string, providerKeys)
	for _, pk := range d.ProviderKeys {
		pk, err := s.CreateProviderKey(ctx, pk)
		mustNoErr(tb, err)
		pkIDs[pk.DisplayName] = pk.ID
	}
	for _, m := range d.Models {
		if m.Routing == nil {
			m.ProviderKeyID = pkIDs[m.ProviderKeyID]
		}
		_, err := s.CreateModel(ctx, m)
		mustNoErr(tb, err)
	}
	for _, k := range d.APIKeys {
		_, err := s.CreateAPIKey(ctx, k)
		mustNoErr(tb, err)
	}
}

// BenchmarkApply measures one apply that creates 1,000 models and 10,000
// caller keys in an empty store, and the no-op apply of the same
// configuration again.
func BenchmarkApply(b *testing.B) {
	d := storagetest.Large(20, 1000, 10000)
	ctx := context.Background()
	b.Run("create", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			s := openStore(b, filepath.Join(b.TempDir(), "aisix.db"))
			b.StartTimer()
			res, err := s.Apply(ctx, d, storage.ApplyOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if !res.Applied || len(res.Changes) != 11020 {
				b.Fatalf("applied %v, %d changes", res.Applied, len(res.Changes))
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		s := openStore(b, filepath.Join(b.TempDir(), "aisix.db"))
		_, err := s.Apply(ctx, d, storage.ApplyOptions{})
		mustNoErr(b, err)
		b.ReportAllocs()
		for b.Loop() {
			res, err := s.Apply(ctx, d, storage.ApplyOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if res.Applied {
				b.Fatal("the second apply wrote")
			}
		}
	})
}

// BenchmarkLoad measures the proxy's full reload at 1,000 models and
// 10,000 caller keys.
func BenchmarkLoad(b *testing.B) { benchLoad(b) }

// BenchmarkLoadEncrypted is BenchmarkLoad with the 20 provider secrets
// encrypted at rest: what a reload pays to decrypt them.
func BenchmarkLoadEncrypted(b *testing.B) {
	benchLoad(b, sqlite.WithSecrets(storagetest.TestKeyring(b)))
}

func benchLoad(b *testing.B, opts ...sqlite.Option) {
	s := openStore(b, filepath.Join(b.TempDir(), "aisix.db"), opts...)
	fill(b, s, 20, 1000, 10000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ds, err := s.Load(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds.ProviderKeys) != 20 || len(ds.Models) != 1000 || len(ds.APIKeys) != 10000 || len(ds.Unreadable) != 0 {
			b.Fatalf("loaded %d provider keys, %d models, %d API keys, %d unreadable", len(ds.ProviderKeys), len(ds.Models), len(ds.APIKeys), len(ds.Unreadable))
		}
	}
}

// BenchmarkRevision measures the change probe a running serve polls.
func BenchmarkRevision(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "aisix.db"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Revision(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateAPIKey measures one write transaction.
func BenchmarkCreateAPIKey(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "aisix.db"))
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		if _, err := s.CreateAPIKey(ctx, storage.APIKey{KeyHash: hashOf(fmt.Sprint(i)), AllowedModels: []string{"*"}}); err != nil {
			b.Fatal(err)
		}
	}
}
