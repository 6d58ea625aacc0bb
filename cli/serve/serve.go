// Package serve implements `aisix serve`: configuration in, then the SQLite
// store, the routing table and its watcher, the proxy and admin listeners,
// and a graceful drain on SIGINT/SIGTERM.
package serve

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/authguard"
	"github.com/aisix/aisix/proxy/certreload"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/profiling"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/proxy/tracing"
	"github.com/aisix/aisix/proxy/usage"
)

// NewCmdServe returns the serve command.
func NewCmdServe(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the proxy (127.0.0.1:3000) and the admin API (127.0.0.1:3001)",
		Long: `Run the OpenAI-compatible proxy and the admin API on the embedded SQLite store.

Settings come from flags, then AISIX_* environment variables, then the config
file (--config), then defaults. An admin key is required: --admin-key,
AISIX_ADMIN_KEY, or admin.admin_keys in the config file.

Prometheus metrics are served at /metrics on their own listener
(--metrics-addr, default 127.0.0.1:9090; "" disables), without auth unless
--metrics-token is set.`,
		Example: `  aisix serve --admin-key "$AISIX_ADMIN_KEY"
  AISIX_ADMIN_KEY=admin-local-only-change-me aisix serve --db ./aisix.db --log-format text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.Config(cmd)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return Run(ctx, cfg, f.IO.ErrOut, f.Version)
		},
	}
	fl := cmd.Flags()
	fl.String("proxy-addr", "127.0.0.1:3000", "proxy listen address")
	fl.String("admin-addr", "127.0.0.1:3001", "admin API listen address")
	fl.String("log-format", "json", "log format: json or text")
	fl.String("log-level", "info", "log level: debug, info, warn or error")
	fl.String("drain-timeout", "30s", "how long to wait for in-flight requests on shutdown")
	fl.Int64("max-body-bytes", 10<<20, "largest request body the proxy accepts")
	fl.String("stream-write-timeout", "60s", "how long a caller may take no bytes of its answer before it is ended as a slow client (0 disables)")
	fl.String("body-read-timeout", "30s", "how long reading a request body may take before the caller gets 408 (0 disables)")
	fl.Bool("allow-metadata-egress", false, "let upstreams be link-local or cloud metadata addresses (169.254.0.0/16, metadata.google.internal)")
	fl.Bool("deny-private-egress", false, "also refuse upstreams on loopback, private and unique-local addresses")
	fl.String("metrics-addr", "127.0.0.1:9090", `Prometheus /metrics listen address ("" disables)`)
	fl.String("metrics-token", "", "bearer token /metrics requires (default: none)")
	fl.String("pprof-addr", "", "loopback address to serve Go runtime profiles on, /debug/pprof/ (pprof.addr; default: off)")
	fl.String("resources", "", "a resources file (aisix apply's format) the store is made to match, --prune included, at start-up and on SIGHUP; an invalid file is refused whole and the last good configuration keeps serving")
	fl.String("redis", "", "redis:// or rediss:// URL of a Redis that replicas share rate limits, budgets and cooldowns through (default: each replica keeps its own)")
	fl.String("redis-timeout", "50ms", "bound of each Redis call; a slower answer counts as Redis down")
	fl.String("proxy-tls-cert", "", "PEM certificate chain the proxy serves TLS with (proxy.tls.cert_file; reloaded when the file changes)")
	fl.String("proxy-tls-key", "", "PEM private key of --proxy-tls-cert (proxy.tls.key_file)")
	fl.String("admin-tls-cert", "", "PEM certificate chain the admin API serves TLS with (admin.tls.cert_file; reloaded when the file changes)")
	fl.String("admin-tls-key", "", "PEM private key of --admin-tls-cert (admin.tls.key_file)")
	fl.String("admin-tls-client-ca", "", "PEM CA bundle admin clients must present a certificate from (admin.tls.client_ca_file: mTLS)")
	fl.String("otlp-endpoint", "", "send OpenTelemetry traces over OTLP/HTTP to this collector base URL, e.g. http://localhost:4318 (default $OTEL_EXPORTER_OTLP_ENDPOINT; off when empty)")
	return cmd
}

// offIfZero maps a configured 0 ("off") to the proxy's negative "off".
func offIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Run serves until ctx is cancelled, then drains and returns. Logs go to logw.
func Run(ctx context.Context, cfg *cmdutil.Config, logw io.Writer, version string) error {
	keys := cfg.AdminKeys
	if cfg.AdminKey != "" {
		keys = []string{cfg.AdminKey}
	}
	keys = nonEmpty(keys)
	if len(keys) == 0 {
		return fmt.Errorf("no admin key: set --admin-key, AISIX_ADMIN_KEY or admin.admin_keys in the config file (for a loopback-only trial: AISIX_ADMIN_KEY=%s)", cmdutil.QuickstartAdminKey)
	}
	for _, k := range keys {
		if k == cmdutil.QuickstartAdminKey && !isLoopback(cfg.AdminAddr) {
			return fmt.Errorf("refusing the well-known quickstart admin key on non-loopback admin address %s: set a strong admin key", cfg.AdminAddr)
		}
	}
	if cfg.PprofAddr != "" {
		if err := profiling.CheckAddr(cfg.PprofAddr); err != nil {
			return err
		}
	}
	lw := newLogWriter(logw)
	defer lw.Close() // last: the access lines of the drain are written
	logger, err := newLogger(lw.Direct(), cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return err
	}
	accessLogger, _ := newLogger(lw, cfg.LogFormat, cfg.LogLevel)

	started := time.Now()
	kr, err := cfg.Keyring()
	if err != nil {
		return err
	}
	store, err := openBackend(ctx, cfg.DB, kr, logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			logger.Error("close database", "err", err)
		}
	}()

	reg := health.NewRegistry()
	egress := routing.EgressPolicy{AllowMetadata: cfg.AllowMetadataEgress, DenyPrivate: cfg.DenyPrivateEgress}
	// Entra ID tokens for Azure keys, and Google OAuth2 tokens for Vertex
	// service accounts, go out under the same egress policy.
	tokens := &http.Client{Timeout: 10 * time.Second, Transport: proxy.NewEgressTransport(proxy.DefaultConnectTimeout, egress)}
	table := routing.NewTable(store, logger.With("component", "routing"),
		routing.WithEgress(egress), routing.WithAzureTokens(tokens, cfg.AzureAuthority),
		routing.WithVertexTokens(tokens, cfg.VertexTokenURL),
		// A provider key with upstream TLS files gets the proxy's tuned
		// transport with its own TLS settings.
		routing.WithUpstreamTransport(func(c *tls.Config) *http.Transport {
			t := proxy.NewEgressTransport(proxy.DefaultConnectTimeout, egress)
			t.TLSClientConfig = c
			return t
		}))
	// The engines serve depends on, for /readyz, /admin/v1/info and metrics.
	dependencies := &deps.Set{}
	dependencies.Register("store", table.StoreState)
	// File mode: the store matches the resources file before the first
	// load, and again on SIGHUP.
	resFile, err := newResourcesFile(cfg.ResourcesFile, store, logger.With("component", "resources"), func(ctx context.Context) {
		if err := table.Reload(ctx); err != nil {
			logger.Error("reload after the resources file", "err", err)
		}
	})
	if err != nil {
		return err
	}
	if resFile != nil {
		if err := resFile.apply(ctx); err != nil {
			return err
		}
	}
	if err := table.Reload(ctx); err != nil {
		return fmt.Errorf("load configuration: %w", err)
	}
	var draining atomic.Bool
	ready := func() bool { return !draining.Load() }

	// The usage ledger: one record per upstream attempt, queued off the
	// request path and written in batches; flushed after the drain. It
	// costs the SQLite writes (about 10 µs of CPU a record), so
	// usage.ledger: false turns it off; metrics still count the tokens.
	var ledger *usage.Ledger
	if cfg.UsageLedger {
		retention := cfg.UsageRetention
		if retention == 0 {
			retention = -1 // 0 in the config keeps records forever
		}
		ledger = usage.New(usage.Options{Store: store, Logger: logger.With("component", "usage"), Retention: retention})
		defer func() {
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := ledger.Close(fctx); err != nil {
				logger.Error("flush usage ledger", "err", err, "dropped_total", ledger.Dropped())
			}
		}()
	}
	// The admin audit log is pruned in the background, stopping with serve.
	auditCtx, stopAudit := context.WithCancel(context.Background())
	auditDone := make(chan struct{})
	go func() {
		defer close(auditDone)
		p := &auditPruner{store: store, retention: cfg.AuditRetention, every: auditPruneEvery, now: time.Now, logger: logger.With("component", "audit")}
		p.run(auditCtx)
	}()
	defer func() { stopAudit(); <-auditDone }()
	// Prometheus metrics observe every proxied request beside the ledger,
	// and report its drops and backlog.
	// The caller-key guard (proxy/authguard); with proxy.auth_failure_burst
	// 0 it only counts the 401s for the metrics.
	guard := authguard.New(authguard.Options{Burst: cfg.AuthFailureBurst, PerSecond: cfg.AuthFailurePerSecond, CountOnly: cfg.AuthFailureBurst == 0})
	mets := newMetricsServer(cfg.Metrics, table, reg, dependencies, version, ledger, guard, logger.With("component", "metrics"))
	observers := observe.Multi{mets}
	if ledger != nil {
		observers = append(observers, ledger)
	}

	tracer, err := newTracer(ctx, cfg.OTLPEndpoint, version, logger)
	if err != nil {
		return err
	}
	if tracer != nil {
		defer tracer.shutdown(logger)
	}

	// Shared runtime state (--redis): the limiter's store and cooldowns.
	rds, err := openRedis(cfg, reg, logger)
	if err != nil {
		return err
	}
	defer rds.Close()
	if st := rds.State(); st != nil {
		dependencies.Register("redis", deps.Degradable(st.Degraded, st.Since, deps.ImpactRedis))
	}

	// Limits: one limiter, in-process or on Redis; budgets start from the
	// ledger's spend in their current period (seeded before the first
	// request, and again for keys and models that gain a budget later).
	limiter := limit.New(rds.limiterOptions())
	defer limiter.Close()
	seeder := &budgets{lim: limiter, logger: logger.With("component", "limits"), now: time.Now, raises: rds != nil}
	if ledger != nil {
		seeder.ledger = store
	}
	seeder.seed(ctx, table.Snapshot())
	table.OnSwap(func(_, cur *routing.Snapshot) { go seeder.seed(context.Background(), cur) })

	proxyHandler := proxy.New(proxy.Options{
		Limiter:      limiter,
		Observer:     observers,
		Tracer:       tracer.hook(),
		Table:        table,
		Health:       reg,
		Logger:       logger.With("component", "proxy"),
		AccessLogger: accessLogger.With("component", "proxy"),
		Version:      version,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Ready:        ready,
		Deps:         dependencies,
		Egress:       egress,
		// 0 in the config means off; the proxy reads negative as off.
		WriteTimeout:    offIfZero(cfg.StreamWriteTimeout),
		BodyReadTimeout: offIfZero(cfg.BodyReadTimeout),
		RealIP:          cfg.RealIP,
		AuthGuard:       guard,
	})
	// Provider-key tests from the admin API go out under the same egress
	// policy as proxied requests.
	keyCheck := keycheck.New(keycheck.Options{Egress: egress, AzureAuthority: cfg.AzureAuthority, VertexTokenURL: cfg.VertexTokenURL})
	defer keyCheck.Close()
	adminHandler := admin.New(admin.Config{
		// Its own budget per address, with the proxy's settings: admin
		// guesses never lock proxy callers out, nor the other way round.
		AuthGuard:  authguard.New(authguard.Options{Burst: cfg.AuthFailureBurst, PerSecond: cfg.AuthFailurePerSecond, CountOnly: cfg.AuthFailureBurst == 0}),
		LimitUsage: limitUsage(limiter, table, time.Now),
		ResourcesFile: func() *admin.ResourcesFile {
			if resFile == nil {
				return nil
			}
			return resFile.status()
		},
		Limits:   limitRows(limiter, table, time.Now),
		KeyCheck: keyCheck,
		Store:    store,
		Keys:     keys,
		Status:   reg,
		OnChange: func() {
			if err := table.Reload(context.Background()); err != nil {
				logger.Error("reload configuration after admin write", "err", err)
			}
		},
		Ready: ready,
		Deps:  dependencies,
		Usage: store,
		// The audit log: every admin write and failed admin
		// authentication, pruned after audit.retention by the pruner above.
		Audit:       store,
		AuditLogger: logger.With("component", "audit"),
		Logger:      logger.With("component", "admin"),
		Version:     version,
		StartedAt:   started,
		ConfigRevision: func() int64 {
			if snap := table.Snapshot(); snap != nil {
				return snap.Revision
			}
			return 0
		},
		ConfigErrors: func() []admin.ConfigError {
			rows := table.Snapshot().ConfigErrors()
			out := make([]admin.ConfigError, len(rows))
			for i, r := range rows {
				out[i] = admin.ConfigError(r)
			}
			return out
		},
		Events: func(since uint64) ([]admin.Event, uint64) {
			evs, next := reg.Events(since)
			out := make([]admin.Event, len(evs))
			for i, e := range evs {
				out[i] = admin.Event(e)
			}
			return out, next
		},
	})

	proxyTLS, err := listenerTLS("proxy.tls", cfg.ProxyTLS, logger.With("component", "proxy"))
	if err != nil {
		return err
	}
	adminTLS, err := listenerTLS("admin.tls", cfg.AdminTLS, logger.With("component", "admin"))
	if err != nil {
		return err
	}
	proxyLn, err := net.Listen("tcp", cfg.ProxyAddr)
	if err != nil {
		return fmt.Errorf("listen on proxy address: %w", err)
	}
	adminLn, err := net.Listen("tcp", cfg.AdminAddr)
	if err != nil {
		proxyLn.Close()
		return fmt.Errorf("listen on admin address: %w", err)
	}
	if err := mets.listen(); err != nil {
		proxyLn.Close()
		adminLn.Close()
		return err
	}
	if cfg.PprofAddr != "" {
		ln, err := net.Listen("tcp", cfg.PprofAddr)
		if err != nil {
			proxyLn.Close()
			adminLn.Close()
			mets.close()
			return fmt.Errorf("listen on pprof address: %w", err)
		}
		// Not drained: a profile in progress ends with the process.
		srv := profiling.Server()
		srv.ErrorLog = slog.NewLogLogger(logger.Handler(), slog.LevelWarn)
		defer srv.Close()
		go srv.Serve(ln) //nolint:errcheck // returns when closed
		logger.Info("serving Go runtime profiles", "pprof_addr", ln.Addr().String())
	}
	// Both listeners speak HTTP/1.1 and HTTP/2: over TLS by ALPN, and on a
	// plain listener by prior knowledge (h2c), for callers and sidecars
	// that multiplex many streams on one connection without TLS.
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetHTTP2(true)
	protos.SetUnencryptedHTTP2(true)
	proxySrv := &http.Server{
		Handler:           mets.Wrap(proxyHandler),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         proxyTLS,
		Protocols:         &protos,
	}
	adminSrv := &http.Server{
		Handler:           adminHandler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		TLSConfig:         adminTLS,
		Protocols:         &protos,
	}

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	go table.Watch(watchCtx, cfg.ReloadInterval)
	if w, ok := store.(watcher); ok {
		go w.Watch(watchCtx, func(int64) {
			if err := table.Reload(watchCtx); err != nil && watchCtx.Err() == nil {
				logger.Warn("reload after a change notification", "err", err)
			}
		})
	}

	logger.Info("aisix started",
		"version", version,
		"proxy_addr", proxyLn.Addr().String(),
		"admin_addr", adminLn.Addr().String(),
		"proxy_tls", proxyTLS != nil,
		"admin_tls", adminTLS != nil,
		"admin_mtls", cfg.AdminTLS.ClientCAFile != "",
		"metrics_addr", mets.Addr(),
		"db", store.Path(),
		"startup_ms", time.Since(started).Milliseconds())

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveHTTP(proxySrv, proxyLn) })
	g.Go(func() error { return serveHTTP(adminSrv, adminLn) })
	g.Go(mets.serve)
	if resFile != nil {
		g.Go(func() error { resFile.watch(gctx); return nil })
	}
	g.Go(func() error {
		<-gctx.Done()
		draining.Store(true)
		logger.Info("aisix draining", "drain_timeout", cfg.DrainTimeout.String())
		sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout)
		defer cancel()
		// Admin first is not needed: both drain together under one deadline.
		var errs []error
		done := make(chan error, 2)
		go func() { done <- proxySrv.Shutdown(sctx) }()
		go func() { done <- adminSrv.Shutdown(sctx) }()
		for range 2 {
			if err := <-done; err != nil {
				errs = append(errs, err)
			}
		}
		// Metrics last, so a scrape can watch the drain.
		if err := mets.shutdown(sctx); err != nil {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			logger.Warn("drain deadline passed; closing remaining connections", "err", errors.Join(errs...))
			proxySrv.Close()
			adminSrv.Close()
			mets.close()
		}
		return nil
	})
	err = g.Wait()
	stopWatch()
	logger.Info("aisix stopped", "uptime_s", int(time.Since(started).Seconds()))
	return err
}

// serveHTTP serves srv on ln: over TLS (HTTP/2 and HTTP/1.1 by ALPN, the
// certificate from srv.TLSConfig's reloader) when srv has a TLSConfig.
func serveHTTP(srv *http.Server, ln net.Listener) error {
	var err error
	if srv.TLSConfig != nil {
		err = srv.ServeTLS(ln, "", "")
	} else {
		err = srv.Serve(ln)
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// listenerTLS is the tls.Config of a listener configured with key's
// files, nil for plain HTTP. Files that do not load are an error naming
// the setting and the file.
func listenerTLS(key string, lt cmdutil.ListenerTLS, logger *slog.Logger) (*tls.Config, error) {
	if !lt.Enabled() {
		if lt.ClientCAFile != "" {
			return nil, fmt.Errorf("%s.client_ca_file needs %s.cert_file and %s.key_file", key, key, key)
		}
		return nil, nil
	}
	r, err := certreload.New(certreload.Files{CertFile: lt.CertFile, KeyFile: lt.KeyFile, ClientCAFile: lt.ClientCAFile}, logger)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return r.TLSConfig(), nil
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level must be debug, info, warn or error (got %q)", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return slog.New(slog.NewJSONHandler(w, opts)), nil
}

// isLoopback reports whether a listen address only accepts local connections.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func nonEmpty(keys []string) []string {
	var out []string
	for _, k := range keys {
		if k = strings.TrimSpace(k); k != "" {
			out = append(out, k)
		}
	}
	return out
}

// tracer is serve's OpenTelemetry tracer; nil when tracing is off.
type tracer struct{ t *tracing.Tracer }

// newTracer starts the tracer when an OTLP endpoint is configured.
func newTracer(ctx context.Context, endpoint, version string, logger *slog.Logger) (*tracer, error) {
	if endpoint == "" {
		return nil, nil
	}
	t, err := tracing.New(ctx, tracing.Options{Endpoint: endpoint, Version: version, Logger: logger.With("component", "tracing")})
	if err != nil {
		return nil, fmt.Errorf("tracing: %w", err)
	}
	logger.Info("tracing on", "otlp_endpoint", endpoint)
	return &tracer{t: t}, nil
}

// hook is the proxy's Tracer option: a nil interface when tracing is off.
func (t *tracer) hook() observe.Tracer {
	if t == nil {
		return nil
	}
	return t.t
}

// shutdown flushes the spans still queued, after the drain.
func (t *tracer) shutdown(logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.t.Shutdown(ctx); err != nil {
		logger.Warn("flush traces", "err", err)
	}
}
