package proxy

import (
	"context"
	"testing"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// BenchmarkRoutingDecision: strategy order, runtime filtering against the
// health registry and the budget for a two-target group, as every request
// does before its first attempt.
func BenchmarkRoutingDecision(b *testing.B) {
	one := 1
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Secret: "s", APIBase: "http://127.0.0.1:9/v1"}},
		Models: []storage.Model{
			{ID: "a", DisplayName: "a", Provider: "openai", ModelName: "x", ProviderKeyID: "pk"},
			{ID: "b", DisplayName: "b", Provider: "openai", ModelName: "x", ProviderKeyID: "pk"},
			{ID: "g", DisplayName: "g", Routing: &storage.Routing{Strategy: storage.StrategyRoundRobin,
				Targets: []storage.Target{{Model: "a"}, {Model: "b"}}, MaxFallbacks: &one}},
		},
	}
	tbl := routing.NewTable(proxytest.NewSource(ds), nil)
	if err := tbl.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	s := New(Options{Table: tbl, Health: health.NewRegistry()})
	m := tbl.Snapshot().Model("g")
	c := &call{s: s, model: m}
	b.ReportAllocs()
	for b.Loop() {
		c.cands, c.order = c.cands[:0], c.order[:0]
		if !c.plan() || len(c.cands) != 2 {
			b.Fatal("no plan")
		}
	}
}
