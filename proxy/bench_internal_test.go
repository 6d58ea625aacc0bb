package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/provider"
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
	c := &call{s: s, model: m, rt: routeChat}
	b.ReportAllocs()
	for b.Loop() {
		c.cands, c.order = c.cands[:0], c.order[:0]
		if !c.plan() || len(c.cands) != 2 {
			b.Fatal("no plan")
		}
	}
}

// BenchmarkAccessLog: the one info line per request, through a JSON
// handler (as `aisix serve` configures it) into io.Discard: the cost of
// building and formatting it, without the write system call.
func BenchmarkAccessLog(b *testing.B) {
	tbl := routing.NewTable(proxytest.NewSource(storage.Dataset{}), nil)
	if err := tbl.Reload(context.Background()); err != nil {
		b.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(io.Discard, nil)).With("component", "proxy")
	s := New(Options{Table: tbl, Logger: logger})
	c := &call{s: s, w: httptest.NewRecorder(), r: httptest.NewRequest(http.MethodPost, "/v1/chat/completions", nil), callID: newCallID(), req: provider.Request{Model: "chat-prod"}, status: 200,
		servedBy: "gpt-4o-primary", attempts: 1, start: time.Now(), rt: routeChat}
	b.ReportAllocs()
	for b.Loop() {
		s.accessLog(c)
	}
}
