package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// BenchmarkAppendUsage is the ledger's cost per record in batches of 256,
// as proxy/usage writes them: the CPU the gateway spends on its ledger
// per upstream attempt, off the request path.
func BenchmarkAppendUsage(b *testing.B) {
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "u.db"), WithMigrate(MigrateAll))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	batch := make([]storage.UsageRecord, 256)
	for i := range batch {
		batch[i] = storage.UsageRecord{Time: time.Now(), CallID: "0195f1c8-7a8e-7b2a-9c1d-3f2a1b9c0d4e", Attempt: 1, KeyID: "key-1", KeyName: "app",
			Endpoint: "chat.completions", Alias: "chat-prod", Target: "gpt-4o-primary", Provider: "openai", Status: 200, Outcome: "ok",
			Latency: 3 * time.Millisecond, InputTokens: 10, OutputTokens: 9, Cost: 0.0001, Priced: true}
	}
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		if err := s.AppendUsage(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
}
