package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// fill writes providerKeys provider keys, models models (one in ten a
// routing model over three direct ones) and apiKeys caller keys.
func fill(tb testing.TB, s *sqlite.Store, providerKeys, models, apiKeys int) {
	tb.Helper()
	ctx := context.Background()
	pkIDs := make([]string, providerKeys)
	for i := range pkIDs {
		pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{
			DisplayName: fmt.Sprintf("pk-%04d", i), Provider: "openai", Secret: fmt.Sprintf("sk-%04d-0123456789abcdef", i),
		})
		mustNoErr(tb, err)
		pkIDs[i] = pk.ID
	}
	routers := models / 10
	direct := models - routers
	for i := range direct {
		_, err := s.CreateModel(ctx, storage.Model{
			DisplayName: fmt.Sprintf("direct-%04d", i), Provider: "openai", ModelName: "gpt-4o",
			ProviderKeyID: pkIDs[i%len(pkIDs)], Timeout: new(int64(30000)), Retries: new(2),
			Cooldown: &storage.Cooldown{TriggerStatuses: []int{429, 503}},
		})
		mustNoErr(tb, err)
	}
	for i := range routers {
		var targets []storage.Target
		for j := range 3 {
			targets = append(targets, storage.Target{Model: fmt.Sprintf("direct-%04d", (3*i+j)%direct), Weight: new(j + 1)})
		}
		_, err := s.CreateModel(ctx, storage.Model{
			DisplayName: fmt.Sprintf("router-%04d", i),
			Routing:     &storage.Routing{Strategy: storage.StrategyWeighted, Targets: targets, MaxFallbacks: new(2)},
		})
		mustNoErr(tb, err)
	}
	for i := range apiKeys {
		allowed := []string{"*"}
		if i%4 == 0 {
			allowed = []string{"router-0001", "direct-0002"}
		}
		_, err := s.CreateAPIKey(ctx, storage.APIKey{
			DisplayName: fmt.Sprintf("key-%05d", i), KeyHash: hashOf(fmt.Sprint(i)), AllowedModels: allowed,
		})
		mustNoErr(tb, err)
	}
}

// BenchmarkLoad measures the proxy's full reload at 1,000 models and
// 10,000 caller keys.
func BenchmarkLoad(b *testing.B) {
	s := openStore(b, filepath.Join(b.TempDir(), "aisix.db"))
	fill(b, s, 20, 1000, 10000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		ds, err := s.Load(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if len(ds.Models) != 1000 || len(ds.APIKeys) != 10000 {
			b.Fatalf("loaded %d models, %d API keys", len(ds.Models), len(ds.APIKeys))
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
