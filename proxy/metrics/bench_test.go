package metrics

import (
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
)

// records are one answered request's records on the tutorial config.
func (f *fixture) records() (*observe.Attempt, *observe.Request) {
	a := &observe.Attempt{Key: f.key, Op: provider.OpChat, Wire: "openai", Model: f.group, Target: f.prim.Direct, N: 1,
		Latency: 300 * time.Millisecond, Status: 200, Outcome: observe.OutcomeOK,
		Usage: provider.Usage{Input: 12, Output: 7}, Cost: 0.0001, Priced: true}
	r := &observe.Request{Key: f.key, Op: provider.OpChat, Wire: "openai", Alias: "chat-prod", Model: f.group,
		Latency: 301 * time.Millisecond, Upstream: 300 * time.Millisecond, Status: 200, Outcome: observe.OutcomeOK,
		Attempts: 1, ServedBy: f.prim.Direct}
	return a, r
}

// BenchmarkObserve is one answered request: its Attempt and its Request.
func BenchmarkObserve(b *testing.B) {
	f := newFixture(b)
	a, r := f.records()
	b.ReportAllocs()
	for b.Loop() {
		f.m.Attempt(a)
		f.m.Request(r)
	}
}

// BenchmarkObserveParallel is BenchmarkObserve from GOMAXPROCS goroutines
// (go test -bench Observe -cpu 1,2,4).
func BenchmarkObserveParallel(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		a, r := f.records()
		for pb.Next() {
			f.m.Attempt(a)
			f.m.Request(r)
		}
	})
}

// BenchmarkObserveFailover is the tutorial's failover: two failed
// attempts on the primary (the second a retry that starts a cooldown),
// the answer from the secondary, the request.
func BenchmarkObserveFailover(b *testing.B) {
	f := newFixture(b)
	b.ReportAllocs()
	for b.Loop() {
		f.failover()
	}
}
