// Package proxy is aisix's OpenAI-compatible front door: caller-key auth,
// model resolution, the retry/failover/cooldown loop, streaming relay, and
// the x-aisix-* headers. It reads configuration only from a routing.Table
// snapshot and runtime state only from a health.Registry: a proxied request
// never touches the database and takes no lock shared with other requests.
package proxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/affinity"
	"github.com/aisix/aisix/proxy/authguard"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/limit"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/realip"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/proxy/upstream"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes      = 10 << 20
	DefaultConnectTimeout    = routing.DefaultConnectTimeout
	DefaultKeepAliveInterval = 15 * time.Second
	// DefaultWriteTimeout bounds how long a caller may take no bytes of its
	// answer (a stream's next chunk) before the answer is abandoned.
	DefaultWriteTimeout = 60 * time.Second
	// DefaultBodyReadTimeout bounds the time to read a request body.
	DefaultBodyReadTimeout = 30 * time.Second
	// HTTP/2 upstream liveness: a connection that has received nothing for
	// DefaultH2ReadIdle is pinged, and closed when the ping goes
	// unanswered for DefaultH2PingTimeout, failing every stream on it.
	DefaultH2ReadIdle    = 15 * time.Second
	DefaultH2PingTimeout = 15 * time.Second
	// DefaultMaxResponseBytes caps a non-streaming upstream body.
	DefaultMaxResponseBytes = 64 << 20
)

// Options configure a Server. Table is required.
type Options struct {
	// Table supplies the configuration snapshot.
	Table *routing.Table
	// Health keeps runtime state; nil gets a fresh registry.
	Health *health.Registry
	// Logger receives one access line per request at info level, and
	// warnings; nil discards.
	Logger *slog.Logger
	// Version goes into the Server header ("AISIX/<version>").
	Version string
	// MaxBodyBytes caps a request body (default 10 MiB); larger gets 413.
	MaxBodyBytes int64
	// MaxResponseBytes caps a non-streaming upstream body (default 64 MiB).
	MaxResponseBytes int64
	// ConnectTimeout bounds TCP connect and TLS handshake to an upstream
	// (default 5s). Used only when Transport is nil.
	ConnectTimeout time.Duration
	// WriteTimeout bounds how long a caller may take no bytes of its answer
	// (default 60s; negative disables). A stream whose caller stops reading
	// is ended and logged as a slow client; its upstream is cancelled, not
	// cooled.
	WriteTimeout time.Duration
	// BodyReadTimeout bounds reading a request body (default 30s; negative
	// disables); a caller that trickles or stops gets 408.
	BodyReadTimeout time.Duration
	// KeepAliveInterval is how long a committed stream may stay silent
	// before an SSE comment is sent (default 15s; negative disables).
	KeepAliveInterval time.Duration
	// Ready reports readiness for /readyz; nil means "a snapshot has been
	// loaded".
	Ready func() bool
	// Deps are the engines the server depends on (the store, Redis), listed
	// by /readyz; one that is down is reported, not a reason to be unready.
	Deps *deps.Set
	// Transport sends upstream requests; nil gets proxy/upstream's
	// HTTP/1.1 client over NewTransport's tuned *http.Transport (pooled
	// keep-alive connections, no goroutine per connection; HTTP/2 origins
	// are served by the *http.Transport). A *http.Transport given here is
	// wrapped the same way; any other RoundTripper is used as it is.
	Transport http.RoundTripper
	// Egress is the policy the default transport's dialer applies to every
	// address it connects to (names resolving to metadata or link-local
	// addresses, and with DenyPrivate private ones, are refused). Used only
	// when Transport is nil.
	Egress routing.EgressPolicy
	// Now is the clock for key expiry and Retry-After dates; nil is
	// time.Now. Cooldowns use the health registry's clock.
	Now func() time.Time
	// ResponseAffinity bounds how many Responses API response ids the
	// proxy remembers the target of (default 100,000; see proxy/affinity).
	ResponseAffinity int
	// Observer receives a record of every attempt and every request
	// (metrics, the usage ledger, traces; see proxy/observe); nil: none.
	Observer observe.Observer
	// Tracer, when set, starts a span per request and per attempt and
	// sends each attempt's trace context upstream (see proxy/tracing);
	// nil: no tracing, at no cost.
	Tracer observe.Tracer
	// AccessLogger, when set, receives the access lines (one per
	// request, at info) instead of Logger: serve gives it a batching
	// writer. nil: Logger.
	AccessLogger *slog.Logger
	// Limiter admits requests against the limits of caller keys, models
	// and targets (see proxy/limit); nil is an in-process limiter of its
	// own on the Now clock. Only configured limits cost anything.
	Limiter *limit.Limiter
	// RealIP finds the caller's address (the access line's client_ip, the
	// key guard's address) behind trusted proxies; nil trusts nobody: the
	// peer's address is the caller's.
	RealIP *realip.Resolver
	// AuthGuard slows caller-key guessing: 401s spend a per-address
	// budget, and an address over it gets 429 before its key is looked
	// at (see proxy/authguard); nil: no guard.
	AuthGuard *authguard.Guard
}

// DefaultResponseAffinity is the default of Options.ResponseAffinity.
const DefaultResponseAffinity = 100_000

// Server is the proxy's http.Handler.
type Server struct {
	table  *routing.Table
	health *health.Registry
	logger *slog.Logger
	// logHandler is the access line's handler (Options.AccessLogger's,
	// else logger's).
	logHandler slog.Handler
	transport  http.RoundTripper
	now        func() time.Time
	ready      func() bool
	deps       *deps.Set

	// affinity maps Responses API response ids to the target that made them.
	affinity *affinity.Map
	observer observe.Observer
	tracer   observe.Tracer
	limiter  *limit.Limiter
	realIP   *realip.Resolver
	guard    *authguard.Guard

	serverHdr     []string
	maxBody       int64
	maxResp       int64
	keepAlive     time.Duration
	writeTimeout  time.Duration
	bodyTimeout   time.Duration
	accessEnabled bool
}

// New returns a proxy server. It registers a hook on opts.Table that
// publishes a config_reloaded event and forgets the runtime state of
// models that were removed.
func New(opts Options) *Server {
	s := &Server{
		table:        opts.Table,
		health:       opts.Health,
		logger:       opts.Logger,
		transport:    opts.Transport,
		now:          opts.Now,
		ready:        opts.Ready,
		deps:         opts.Deps,
		observer:     opts.Observer,
		tracer:       opts.Tracer,
		realIP:       opts.RealIP,
		guard:        opts.AuthGuard,
		maxBody:      opts.MaxBodyBytes,
		maxResp:      opts.MaxResponseBytes,
		keepAlive:    opts.KeepAliveInterval,
		writeTimeout: defaultDuration(opts.WriteTimeout, DefaultWriteTimeout),
		bodyTimeout:  defaultDuration(opts.BodyReadTimeout, DefaultBodyReadTimeout),
	}
	if s.health == nil {
		s.health = health.NewRegistry()
	}
	if opts.ResponseAffinity <= 0 {
		opts.ResponseAffinity = DefaultResponseAffinity
	}
	s.affinity = affinity.New(opts.ResponseAffinity)
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.limiter = opts.Limiter
	if s.limiter == nil {
		s.limiter = limit.New(limit.Options{Now: s.now})
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.maxResp <= 0 {
		s.maxResp = DefaultMaxResponseBytes
	}
	if s.keepAlive == 0 {
		s.keepAlive = DefaultKeepAliveInterval
	}
	switch tr := s.transport.(type) {
	case nil:
		ct := opts.ConnectTimeout
		if ct <= 0 {
			ct = DefaultConnectTimeout
		}
		s.transport = upstream.New(newTransport(ct, opts.Egress))
	case *http.Transport:
		// A tuned *http.Transport (NewTransport's, with a caller's TLS
		// settings) gets the same HTTP/1.1 client in front of it.
		s.transport = upstream.New(tr)
	}
	if s.ready == nil {
		s.ready = s.table.Loaded
	}
	version := opts.Version
	if version == "" {
		version = "dev"
	}
	s.serverHdr = []string{"AISIX/" + version}
	access := opts.AccessLogger
	if access == nil {
		access = s.logger
	}
	s.logHandler = access.Handler()
	s.accessEnabled = access.Enabled(context.Background(), slog.LevelInfo)
	reg := s.health
	s.table.OnSwap(func(_, cur *routing.Snapshot) {
		reg.Retain(func(id string) bool { return cur.ModelByID(id) != nil })
		reg.Publish(health.Event{Kind: health.EventConfigReloaded, Detail: "revision " + strconv.FormatInt(cur.Revision, 10)})
	})
	return s
}

// defaultDuration is d, def when d is 0, and 0 (off) when d is negative.
func defaultDuration(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// NewTransport returns the upstream transport New uses by default: pooled
// keep-alive connections with a high idle limit per host, HTTP/2 when the
// upstream offers it over TLS (plain-text upstreams speak HTTP/1.1),
// connect and TLS handshake bounded by connectTimeout, the environment's
// proxy settings, no response header timeout (the proxy bounds each
// attempt itself), and a ping-based liveness check on HTTP/2 connections,
// so that one dead connection cannot hang every stream multiplexed on it.
//
// Compression is off: the proxy rewrites the model field of every answer,
// so a gzip answer would cost a decompression per request (and a 40 KB
// reader per connection) to save bytes on what is usually a short or
// loopback hop. Buffers (each pooled connection keeps both, so each open
// stream does): a request whose headers and body fit the 8 KB write buffer
// goes out in one write, a larger one in two; answers are read through a
// 4 KB buffer, which larger reads bypass.
//
// Its dialer applies the default egress policy (routing.EgressPolicy{}) to
// every address it connects to, after name resolution: a name that
// resolves to a cloud metadata or link-local address is refused.
func NewTransport(connectTimeout time.Duration) *http.Transport {
	return newTransport(connectTimeout, routing.EgressPolicy{})
}

// NewEgressTransport is NewTransport whose dialer applies egress.
func NewEgressTransport(connectTimeout time.Duration, egress routing.EgressPolicy) *http.Transport {
	return newTransport(connectTimeout, egress)
}

func newTransport(connectTimeout time.Duration, egress routing.EgressPolicy) *http.Transport {
	d := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second, Control: egress.Control}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: connectTimeout,
		DisableCompression:  true,
		ReadBufferSize:      4 << 10,
		WriteBufferSize:     8 << 10,
		HTTP2: &http.HTTP2Config{
			SendPingTimeout: DefaultH2ReadIdle,
			PingTimeout:     DefaultH2PingTimeout,
		},
	}
}

// Health returns the registry the server records into.
func (s *Server) Health() *health.Registry { return s.health }

// hdrVals holds a request's own header values: call id, attempts trail,
// Content-Length, overhead.
type hdrVals [4]string

var (
	hdrServer   = "Server"
	hdrCallID   = "X-Aisix-Call-Id"
	hdrServedBy = "X-Aisix-Served-By"
	hdrAttempts = "X-Aisix-Attempts"
	hdrOverhead = "X-Aisix-Overhead-Ms"
	textPlain   = []string{"text/plain; charset=utf-8"}
	appJSON     = []string{"application/json"}
	noSniff     = []string{"nosniff"}
)

// ServeHTTP routes the proxy's four endpoints. Every response carries
// Server and x-aisix-call-id, errors included.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h[hdrServer] = s.serverHdr
	// One allocation for the per-request header values: the call id here,
	// x-aisix-attempts and Content-Length in chat. Each header gets a
	// full-capacity sub-slice, so an append can never reach a neighbour.
	vals := new(hdrVals)
	vals[0] = newCallID()
	h[hdrCallID] = vals[0:1:1]
	switch r.URL.Path {
	case "/v1/chat/completions":
		s.post(w, r, vals, routeChat)
	case "/v1/embeddings":
		s.post(w, r, vals, routeEmbeddings)
	case "/v1/completions":
		s.post(w, r, vals, routeCompletions)
	case "/v1/responses":
		s.post(w, r, vals, routeResponses)
	case "/v1/messages":
		s.post(w, r, vals, routeMessages)
	case "/v1/messages/count_tokens":
		s.post(w, r, vals, routeCountTokens)
	case "/v1/models":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet)
			return
		}
		s.listModels(w, r)
	case "/livez":
		plain(w, http.StatusOK, "ok\n")
	case "/readyz":
		s.readyz(w, r)
	default:
		if id, rest, ok := responsePath(r.URL.Path); ok {
			s.responseResource(w, r, vals, id, rest)
			return
		}
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown route "+strconv.Quote(r.URL.Path), "")
	}
}

// post serves a POST-only endpoint.
func (s *Server) post(w http.ResponseWriter, r *http.Request, vals *hdrVals, rt *route) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeErrorFor(w, rt.wire, http.StatusMethodNotAllowed, "invalid_request_error", "method not allowed", "")
		return
	}
	s.serve(w, r, vals, rt)
}

func plain(w http.ResponseWriter, status int, body string) {
	h := w.Header()
	h["Content-Type"] = textPlain
	h["X-Content-Type-Options"] = noSniff
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method not allowed", "")
}

// callerKey extracts the caller's key: Authorization: Bearer <key>, or
// x-api-key when there is no Authorization header. A Messages caller's
// x-api-key comes first: that is where the Anthropic SDKs put it.
func callerKey(r *http.Request, wire callerWire) (string, bool) {
	if v := r.Header["X-Api-Key"]; wire == wireAnthropic && len(v) > 0 {
		k := strings.TrimSpace(v[0])
		return k, k != ""
	}
	if v := r.Header["Authorization"]; len(v) > 0 {
		a := v[0]
		if len(a) < 7 || !strings.EqualFold(a[:7], "bearer ") {
			return "", false
		}
		k := strings.TrimSpace(a[7:])
		return k, k != ""
	}
	if v := r.Header["X-Api-Key"]; len(v) > 0 {
		k := strings.TrimSpace(v[0])
		return k, k != ""
	}
	return "", false
}

// authenticate resolves the caller key or writes the refusal, and
// returns its status: 401 for a missing or wrong key (spending addr's
// budget in the guard), 429 when addr is over that budget (the key is not
// looked at: a guess from a throttled address learns nothing).
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, snap *routing.Snapshot, wire callerWire, addr netip.Addr) (*routing.CallerKey, int) {
	if ok, wait := s.guard.Allow(addr); !ok {
		refuseUnread(w, r)
		secs := strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
		w.Header()["Retry-After"] = []string{secs}
		writeErrorFor(w, wire, http.StatusTooManyRequests, "rate_limit_exceeded",
			"too many requests with a missing or invalid API key from this address; retry after "+secs+"s", "auth_throttled")
		return nil, http.StatusTooManyRequests
	}
	raw, ok := callerKey(r, wire)
	if !ok {
		s.guard.Fail(addr)
		refuseUnread(w, r)
		msg := "missing or malformed Authorization header"
		if wire == wireAnthropic {
			msg = "missing or malformed x-api-key or Authorization header"
		}
		writeErrorFor(w, wire, http.StatusUnauthorized, "invalid_api_key", msg, "")
		return nil, http.StatusUnauthorized
	}
	key := snap.Authenticate(raw)
	switch {
	case key == nil, key.Disabled, !key.ExpiresAt.IsZero() && !s.now().Before(key.ExpiresAt):
		// One text for unknown, disabled and expired keys: a caller cannot
		// tell which keys exist.
		s.guard.Fail(addr)
		refuseUnread(w, r)
		writeErrorFor(w, wire, http.StatusUnauthorized, "invalid_api_key", "invalid API key", "")
		return nil, http.StatusUnauthorized
	}
	return key, http.StatusOK
}

// ClientAddr is the caller's address of r: the peer's, or behind trusted
// proxies the one X-Forwarded-For names (see proxy/realip).
func (s *Server) ClientAddr(r *http.Request) netip.Addr { return s.realIP.Request(r) }

// refuseUnread prepares the answer to a request refused before its body
// is read: Connection: close keeps net/http from waiting to discard a body
// that may never come (a caller with a bad key need not send it).
func refuseUnread(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		w.Header()["Connection"] = connClose
	}
}

// listModels answers GET /v1/models: every alias the key may call,
// routing groups included, sorted.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) {
	snap := s.table.Snapshot()
	key, _ := s.authenticate(w, r, snap, wireOpenAI, s.ClientAddr(r))
	if key == nil {
		return
	}
	created := strconv.AppendInt(nil, s.now().Unix(), 10)
	b := make([]byte, 0, 256)
	b = append(b, `{"object":"list","data":[`...)
	first := true
	for _, m := range snap.Models() {
		if !key.AllowsModel(m) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `{"id":`...)
		b = append(b, m.NameJSON...)
		b = append(b, `,"object":"model","created":`...)
		b = append(b, created...)
		b = append(b, `,"owned_by":`...)
		owner := m.OwnedBy
		if owner == "" {
			owner = "aisix"
		}
		b = provider.AppendJSONString(b, owner)
		b = append(b, '}')
	}
	b = append(b, "]}"...)
	h := w.Header()
	h["Content-Type"] = appJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}

// readyz answers /readyz (deps.ServeReadyz): ready once a snapshot is
// loaded and until the drain, whatever the dependencies' state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	deps.ServeReadyz(w, r, []deps.Check{
		{Name: "snapshot", OK: s.table.Loaded(), Detail: "revision " + strconv.FormatInt(s.table.Snapshot().Revision, 10), Fail: "not ready"},
		{Name: "ready", OK: s.ready(), Fail: "not ready"},
	}, s.deps.States())
}
