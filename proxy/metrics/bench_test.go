package metrics

import (
	"fmt"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
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

// BenchmarkSwapLarge measures resolving the series of a snapshot with
// 1,000 models and 10,000 caller keys: what every admin write costs the
// metrics at that size (it used to walk keys × models).
func BenchmarkSwapLarge(b *testing.B) {
	var ds storage.Dataset
	ds.ProviderKeys = []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Adapter: "openai", Secret: "sk-pk", APIBase: "http://127.0.0.1:1/v1"}}
	ds.ProviderKeys[0].SecretHost = ds.ProviderKeys[0].BaseHost()
	for i := range 1000 {
		name := fmt.Sprintf("m-%04d", i)
		ds.Models = append(ds.Models, storage.Model{ID: "id-" + name, DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"})
	}
	for i := range 10000 {
		ds.APIKeys = append(ds.APIKeys, storage.APIKey{ID: fmt.Sprintf("key-%05d", i), DisplayName: fmt.Sprintf("key-%05d", i),
			KeyHash: proxytest.KeyHash(fmt.Sprintf("sk-%05d", i)), AllowedModels: []string{fmt.Sprintf("m-%04d", i%1000)}})
	}
	snap, err := routing.Build(ds)
	if err != nil || len(snap.Models()) != 1000 || len(snap.CallerKeys()) != 10000 {
		b.Fatalf("snapshot: %v, %v", err, snap.ConfigErrors())
	}
	m := New(Options{Version: "bench"})
	b.ReportAllocs()
	for b.Loop() {
		m.Swap(snap)
	}
}
