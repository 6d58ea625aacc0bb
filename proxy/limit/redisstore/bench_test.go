package redisstore

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisix/aisix/proxy/limit"
)

// countHook counts a client's round trips: each command sent alone and
// each pipeline, but not a new connection's handshake.
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" { // a new connection's handshake
			h.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// benchLimits sets every dimension, high enough that nothing is refused at
// one request per simulated millisecond; like proxy/limit's benchmarks.
var benchLimits = limit.Limits{
	RPM: 1 << 16, RPD: 1 << 40, TPM: 1 << 40, TPD: 1 << 40, Concurrency: 1 << 20,
	Budget: &limit.Budget{AmountUSD: 1e9, Period: limit.PeriodMonth},
}

// benchStores are the stores compared: Memory and Redis.
func benchStores(b *testing.B) []struct {
	name  string
	store func(*testing.B) (limit.Store, *countHook)
} {
	return []struct {
		name  string
		store func(*testing.B) (limit.Store, *countHook)
	}{
		{"memory", func(*testing.B) (limit.Store, *countHook) { return limit.NewMemory(), nil }},
		{"redis", func(b *testing.B) (limit.Store, *countHook) {
			flush(b)
			c := client(b, requireServer(b).Addr(), time.Second)
			h := &countHook{}
			c.AddHook(h)
			s := New(c, Options{Timeout: time.Second})
			b.Cleanup(func() { _ = s.Close() })
			return s, h
		}},
	}
}

func runBench(b *testing.B, subjects func(i int) []limit.Subject) {
	for _, bs := range benchStores(b) {
		b.Run(bs.name, func(b *testing.B) {
			st, h := bs.store(b)
			l := limit.New(limit.Options{Store: st})
			b.Cleanup(func() { _ = l.Close() })
			t0 := time.Now()
			step := func(i int) {
				now := t0.Add(time.Duration(i) * time.Millisecond)
				tk, rej := l.Acquire(now, 100, subjects(i)...)
				if rej != nil {
					b.Fatalf("refused: %v", rej)
				}
				tk.DoneAt(now, 120, 0.0001)
			}
			b.ReportAllocs()
			var cpu0 time.Duration
			if h != nil {
				cpu0 = serverCPU(b)
			}
			i := 0
			for b.Loop() {
				step(i)
				i++
			}
			if h != nil {
				b.ReportMetric(float64(h.n.Load())/float64(i), "roundtrips/op")
				b.ReportMetric(float64(serverCPU(b)-cpu0)/float64(i)/1e3, "redis-µs/op")
				// Per script, in the state the loop left.
				scriptCosts(b, func(j int) { step(i + j) })
			}
			if s, ok := st.(*Store); ok && s.Degraded() {
				b.Fatal("store degraded during the benchmark")
			}
		})
	}
}

// BenchmarkAcquireDone is one request with one limited scope, every
// dimension set.
func BenchmarkAcquireDone(b *testing.B) {
	s := []limit.Subject{callerKey("k", benchLimits)}
	runBench(b, func(int) []limit.Subject { return s })
}

// BenchmarkAcquireDoneKeyAndModel is the usual request: a caller key and a
// model, both limited.
func BenchmarkAcquireDoneKeyAndModel(b *testing.B) {
	s := []limit.Subject{callerKey("k", benchLimits), {Key: limit.Key{Scope: limit.ScopeModel, ID: "m"}, Limits: benchLimits}}
	runBench(b, func(int) []limit.Subject { return s })
}

// BenchmarkAcquireDoneRPMConcurrency is a caller key with rpm and
// concurrency only.
func BenchmarkAcquireDoneRPMConcurrency(b *testing.B) {
	s := []limit.Subject{callerKey("k", limit.Limits{RPM: 1 << 16, Concurrency: 64})}
	runBench(b, func(int) []limit.Subject { return s })
}

// BenchmarkAcquireDoneHighLimits is the caller key of the e2e bench
// (e2e/bench): rpm, tpm and concurrency that never refuse, the rpm above
// the exact log's size, so counted in 1 s slots.
func BenchmarkAcquireDoneHighLimits(b *testing.B) {
	s := []limit.Subject{callerKey("k", limit.Limits{RPM: 1_000_000_000, TPM: 1_000_000_000_000, Concurrency: 100_000})}
	runBench(b, func(int) []limit.Subject { return s })
}

// BenchmarkAcquireDegraded is Acquire+Done while Redis is down: the
// fallback's cost, which should be Memory's.
func BenchmarkAcquireDegraded(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	s := New(client(b, addr, bound), Options{HealthEvery: time.Hour})
	b.Cleanup(func() { _ = s.Close() })
	l := limit.New(limit.Options{Store: s})
	sub := callerKey("k", benchLimits)
	t0 := time.Now()
	l.Acquire(t0, 0, sub) // degrades
	if !s.Degraded() {
		b.Fatal("not degraded")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		tk, rej := l.Acquire(now, 100, sub)
		if rej != nil {
			b.Fatalf("refused: %v", rej)
		}
		tk.DoneAt(now, 120, 0.0001)
		i++
	}
}

// BenchmarkPing is the floor: one round trip to the test's redis-server.
func BenchmarkPing(b *testing.B) {
	c := client(b, requireServer(b).Addr(), time.Second)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
}
