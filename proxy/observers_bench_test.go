package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/metrics"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/usage"
	"github.com/aisix/aisix/storage/sqlite"
)

// BenchmarkObservers is a plain chat request with the access log on, then
// with the Prometheus observer, then with it and the usage ledger over a
// real SQLite file (its writer goroutine runs in the benchmark, so its
// CPU and allocations per record are in the figures): what serve's
// observers cost per request.
func BenchmarkObservers(b *testing.B) {
	logged := func(o *proxy.Options) { o.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil)) }
	b.Run("log", func(b *testing.B) { benchPathWith(b, "/v1/chat/completions", chatBody("chat-prod", false), logged) })
	b.Run("log+metrics", func(b *testing.B) {
		m := metrics.New(metrics.Options{})
		benchPathWith(b, "/v1/chat/completions", chatBody("chat-prod", false), logged, func(o *proxy.Options) { o.Observer = m })
	})
	b.Run("log+metrics+ledger", func(b *testing.B) {
		m := metrics.New(metrics.Options{})
		st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "u.db"), sqlite.WithMigrate(sqlite.MigrateAll))
		if err != nil {
			b.Fatal(err)
		}
		l := usage.New(usage.Options{Store: st})
		b.Cleanup(func() { _ = l.Close(context.Background()); _ = st.Close() })
		benchPathWith(b, "/v1/chat/completions", chatBody("chat-prod", false), logged, func(o *proxy.Options) { o.Observer = observe.Multi{m, l} })
	})
}
