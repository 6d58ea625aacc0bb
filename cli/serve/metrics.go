package serve

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/proxy/authguard"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/metrics"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/proxy/usage"
)

// metricsServer is the Prometheus metrics of one serve and their own
// listener (none when metrics.addr is "").
type metricsServer struct {
	*metrics.Metrics
	addr string
	ln   net.Listener
	srv  *http.Server
}

func newMetricsServer(cfg cmdutil.MetricsConfig, table *routing.Table, reg *health.Registry, dependencies *deps.Set, version string, ledger *usage.Ledger, guard *authguard.Guard, logger *slog.Logger) *metricsServer {
	var dropped func() uint64
	var backlog func() int
	if ledger != nil { // nil: usage.ledger is off
		dropped, backlog = ledger.Dropped, ledger.Backlog
	}
	m := metrics.New(metrics.Options{
		Table:           table,
		Deps:            dependencies,
		State:           func(id string) string { return reg.Status(id).State },
		LatencyBuckets:  cfg.LatencyBuckets,
		OverheadBuckets: cfg.OverheadBuckets,
		Token:           cfg.Token,
		Version:         version,
		UsageDropped:    dropped,
		UsageBacklog:    backlog,
		AuthFailures:    guard.Failures,
		AuthThrottled:   guard.Throttled,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return &metricsServer{Metrics: m, addr: cfg.Addr, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
}

// listen opens the listener, unless metrics are off.
func (s *metricsServer) listen() error {
	if s.addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen on metrics address: %w", err)
	}
	s.ln = ln
	return nil
}

// Addr is the listening address, or "off".
func (s *metricsServer) Addr() string {
	if s.ln == nil {
		return "off"
	}
	return s.ln.Addr().String()
}

func (s *metricsServer) serve() error {
	if s.ln == nil {
		return nil
	}
	return serveHTTP(s.srv, s.ln)
}

func (s *metricsServer) shutdown(ctx context.Context) error {
	if s.ln == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

func (s *metricsServer) close() {
	if s.ln != nil {
		s.ln.Close()
		s.srv.Close()
	}
}
