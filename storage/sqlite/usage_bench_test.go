package sqlite

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// BenchmarkAppendUsage is the ledger's cost per record in batches of 256,
// as proxy/usage writes them: the CPU the gateway spends on its ledger
// per upstream attempt, off the request path. cpu-ns/op is the process's
// CPU time (user and system, every thread) per record, which other load on
// the machine does not inflate the way it does ns/op. "cancelable" writes
// with a context that can end, as the ledger's writer does (the driver
// then watches it on every statement).
func BenchmarkAppendUsage(b *testing.B) {
	b.Run("background", func(b *testing.B) { benchAppendUsage(b, context.Background()) })
	b.Run("cancelable", func(b *testing.B) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		benchAppendUsage(b, ctx)
	})
}

func benchAppendUsage(b *testing.B, ctx context.Context) {
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
	b.ResetTimer()
	start := cpuTime(b)
	for i := 0; i < b.N; i += len(batch) {
		if err := s.AppendUsage(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
