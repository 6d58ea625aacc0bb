// Package admin is aisix's admin HTTP API (/admin/v1/…, /livez, /readyz,
// /admin/openapi.json) and its Go client. The Server manages provider keys,
// models and caller keys in a storage.Store and reports runtime model status;
// the Client implements storage.Store over that API, so the CLI's remote mode
// behaves exactly like its local one.
package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/authguard"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/storage"
)

// DefaultMaxBodyBytes caps a request body when Config.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 2 << 20

// StatusSource reports the runtime state of a direct model by id.
type StatusSource interface {
	ModelStatus(id string) health.Status
}

// Config configures a Server.
type Config struct {
	// Store holds the resources. Required.
	Store storage.Store
	// Keys are the bootstrap admin keys (scope admin), from the config or
	// the environment. With none and no stored admin keys, every
	// authenticated route answers 401.
	Keys []string
	// AdminKeys keeps the scoped admin keys (/admin/v1/admin_keys); nil
	// uses Store when it is a storage.AdminKeyStore, and without either
	// only Keys authenticate and the admin key routes answer 501.
	AdminKeys storage.AdminKeyStore
	// AuthGuard slows admin key guessing: each failed authentication spends
	// its address's budget, and an address over it gets 429 for a wrong
	// key (without a log line or an audit record of its own: they stay
	// bounded), while a right key always passes; nil: no guard.
	AuthGuard *authguard.Guard
	// Status reports runtime model state; nil reports every direct model healthy.
	Status StatusSource
	// OnChange, when set, is called after each successful write, before the
	// response is sent, so the proxy sees the change as soon as the client does.
	OnChange func()
	// Ready reports readiness for /readyz; nil is always ready.
	Ready func() bool
	// Deps are the engines the server depends on, listed by /readyz and
	// GET /admin/v1/info ("dependencies"); nil lists none.
	Deps *deps.Set
	// Logger receives one line per write and per rejected authentication;
	// nil discards.
	Logger *slog.Logger
	// MaxBodyBytes caps request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Version is reported by GET /admin/v1/info.
	Version string
	// StartedAt is the process start reported by /admin/v1/info; zero means
	// the time New was called.
	StartedAt time.Time
	// ConfigRevision, when set, reports the store revision of the routing
	// snapshot the proxy is serving, so a client can tell when a write made
	// straight to the store is live (/admin/v1/info compares it with the
	// store's own revision).
	ConfigRevision func() int64
	// ConfigErrors, when set, lists the rows the live snapshot skipped.
	ConfigErrors func() []ConfigError
	// Events, when set, returns the routing events published after since and
	// the cursor for the next call (GET /admin/v1/events). nil reports none.
	Events func(since uint64) ([]Event, uint64)
	// ResourcesFile, when set, reports serve's resources file in
	// GET /admin/v1/info.
	ResourcesFile func() *ResourcesFile
	// Usage answers GET /admin/v1/usage; nil uses Store when it is a
	// storage.UsageReader, and without either the route answers 501.
	Usage storage.UsageReader
	// KeyCheck sends the one upstream request of
	// POST /admin/v1/provider_keys/{id}/test, from this server's network
	// and under its egress policy; nil is keycheck.New with the default
	// policy (routing.EgressPolicy{}).
	KeyCheck *keycheck.Checker
	// LimitUsage, when set, reports what the running limiter counts now
	// for one caller key (scope LimitScopeCallerKey) or model
	// (LimitScopeModel) by id, and false when it tracks nothing for it.
	// GET /admin/v1/apikeys/{id} and GET /admin/v1/models/{id} show it as
	// limit_usage when the resource has a rate_limit or budget; lists
	// never do.
	LimitUsage func(scope, id string) (storage.LimitUsage, bool)
	// Limits, when set, lists every caller key, model and direct model's
	// provider_limit (scope LimitScopeTarget, by the model's id) that has
	// a limit, with the limiter's live counts and cumulative rejections:
	// GET /admin/v1/limits, and the provider_limit_usage of
	// /admin/v1/models/status. AtLimit need not be set: the server fills
	// it in. nil lists none.
	Limits func() []LimitRow
	// Audit, when set, keeps the audit log: every write and every failed
	// authentication is appended to it and logged (component "audit"),
	// and GET /admin/v1/audit lists it. nil keeps none (the route
	// answers 501).
	Audit storage.AuditStore
	// AuditLogger receives the audit log's lines; nil is Logger with
	// component "audit".
	AuditLogger *slog.Logger
}

// Scopes of Config.LimitUsage.
const (
	LimitScopeCallerKey = "caller_key"
	LimitScopeModel     = "model"
)

// Server is the admin API. It is an http.Handler.
type Server struct {
	store    storage.Store
	keys     [][sha256.Size]byte
	status   StatusSource
	onChange func()
	ready    func() bool
	deps     *deps.Set
	log      *slog.Logger
	maxBody  int64
	now      func() time.Time

	version    string
	startedAt  time.Time
	configRev  func() int64
	configErrs func() []ConfigError
	events     func(since uint64) ([]Event, uint64)
	keyCheck   *keycheck.Checker
	limitUsage func(scope, id string) (storage.LimitUsage, bool)
	limits     func() []LimitRow
	// usageReader answers usage queries; nil when there is no ledger.
	usageReader storage.UsageReader
	// auditStore keeps the audit log; nil when there is none.
	auditStore storage.AuditStore
	auditLog   *slog.Logger

	keyStore adminKeys
	guard    *authguard.Guard

	mux *http.ServeMux
	// routes lists every registered pattern, for the OpenAPI test, and
	// scopes the scope each authenticated one needs.
	routes        []string
	scopes        map[string]string
	resourcesFile func() *ResourcesFile
}

// New returns a Server for cfg.
func New(cfg Config) *Server {
	s := &Server{
		store:         cfg.Store,
		status:        cfg.Status,
		onChange:      cfg.OnChange,
		ready:         cfg.Ready,
		deps:          cfg.Deps,
		log:           cfg.Logger,
		maxBody:       cfg.MaxBodyBytes,
		now:           cfg.Now,
		version:       cfg.Version,
		startedAt:     cfg.StartedAt,
		configRev:     cfg.ConfigRevision,
		configErrs:    cfg.ConfigErrors,
		events:        cfg.Events,
		keyCheck:      cfg.KeyCheck,
		limitUsage:    cfg.LimitUsage,
		resourcesFile: cfg.ResourcesFile,
		limits:        cfg.Limits,
		auditStore:    cfg.Audit,
		mux:           http.NewServeMux(),
		scopes:        map[string]string{},
	}
	for _, k := range cfg.Keys {
		// An empty key would match a request that sends "Bearer " and nothing.
		if k = strings.TrimSpace(k); k != "" {
			s.keys = append(s.keys, sha256.Sum256([]byte(k)))
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.startedAt.IsZero() {
		s.startedAt = s.now()
	}
	if s.keyCheck == nil {
		s.keyCheck = keycheck.New(keycheck.Options{})
	}
	s.keyStore = adminKeys{store: cfg.AdminKeys, now: s.now}
	s.guard = cfg.AuthGuard
	if ks, ok := cfg.Store.(storage.AdminKeyStore); ok && s.keyStore.store == nil {
		s.keyStore.store = ks
	}
	s.auditLog = cfg.AuditLogger
	if s.auditLog == nil {
		s.auditLog = s.log.With("component", "audit")
	}
	s.usageReader = cfg.Usage
	if ur, ok := cfg.Store.(storage.UsageReader); ok && s.usageReader == nil {
		s.usageReader = ur
	}
	s.registerRoutes()
	return s
}

func (s *Server) registerRoutes() {
	s.handle("GET /livez", http.HandlerFunc(s.livez))
	s.handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.handle("GET /admin/openapi.json", http.HandlerFunc(serveOpenAPI))

	s.handleAPI("GET /admin/v1/provider_keys", kindProviderKey, listHandler(s.store.ListProviderKeys, ProviderKeyEntry))
	s.handleAPI("POST /admin/v1/provider_keys", kindProviderKey, s.createProviderKey)
	s.handleAPI("GET /admin/v1/provider_keys/{id}", kindProviderKey, getHandler(s.store.GetProviderKey, ProviderKeyEntry))
	s.handleAPI("PUT /admin/v1/provider_keys/{id}", kindProviderKey, s.updateProviderKey)
	s.handleAPI("DELETE /admin/v1/provider_keys/{id}", kindProviderKey, deleteHandler(s.store.DeleteProviderKey))
	s.handleAction("POST /admin/v1/provider_keys/{id}/test", s.testProviderKey)

	s.handleAPI("GET /admin/v1/models", kindModel, listHandler(s.store.ListModels, ModelEntry))
	s.handleAPI("POST /admin/v1/models", kindModel, s.createModel)
	s.handleAPI("GET /admin/v1/models/status", kindModel, s.modelsStatus)
	s.handleAPI("GET /admin/v1/models/{id}", kindModel, s.getModel)
	s.handleAPI("PUT /admin/v1/models/{id}", kindModel, s.updateModel)
	s.handleAPI("DELETE /admin/v1/models/{id}", kindModel, deleteHandler(s.store.DeleteModel))

	s.handleAPI("GET /admin/v1/apikeys", kindAPIKey, listHandler(s.store.ListAPIKeys, APIKeyEntry))
	s.handleAPI("POST /admin/v1/apikeys", kindAPIKey, s.createAPIKey)
	s.handleAPI("GET /admin/v1/apikeys/{id}", kindAPIKey, s.getAPIKey)
	s.handleAPI("PUT /admin/v1/apikeys/{id}", kindAPIKey, s.updateAPIKey)
	s.handleAPI("DELETE /admin/v1/apikeys/{id}", kindAPIKey, deleteHandler(s.store.DeleteAPIKey))
	s.handleAPI("POST /admin/v1/apikeys/{id}/rotate", kindAPIKey, s.rotateAPIKey)

	s.handleAPI("POST /admin/v1/apply", kindApply, s.apply)

	s.handleAPI("GET /admin/v1/"+kindAdminKey, kindAdminKey, s.listAdminKeys)
	s.handleAPI("POST /admin/v1/"+kindAdminKey, kindAdminKey, s.createAdminKey)
	s.handleAPI("DELETE /admin/v1/"+kindAdminKey+"/{id}", kindAdminKey, s.deleteAdminKey)
	s.handleAPI("POST /admin/v1/"+kindAdminKey+"/{id}/rotate", kindAdminKey, s.rotateAdminKey)

	s.handleAPI("GET /admin/v1/info", "", s.info)
	s.handleAPI("GET /admin/v1/events", "", s.listEvents)
	s.handleAPI("GET /admin/v1/usage", "", s.usage)
	s.handleAPI("GET /admin/v1/limits", "", s.listLimits)
	s.handleAPI("GET /admin/v1/audit", "", s.listAudit)
}

func (s *Server) handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
	s.routes = append(s.routes, pattern)
}

// ServeHTTP routes r. Requests the router cannot place (unknown path, wrong
// method) get the JSON error envelope instead of ServeMux's plain text, and
// under /admin/v1 only after authentication, so an anonymous client cannot
// map the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	h, pattern := s.mux.Handler(r)
	if pattern != "" {
		// Through the mux, not h: only ServeHTTP fills in r.PathValue.
		s.mux.ServeHTTP(w, r)
		return
	}
	if isAdminAPIPath(r.URL.Path) {
		if _, ok := s.authenticate(w, r); !ok {
			return
		}
	}
	// Let the mux decide between 404 and 405 (and compute Allow), but keep
	// only its verdict.
	rec := &discardWriter{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch rec.status {
	case http.StatusMethodNotAllowed:
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		s.writeError(w, r, errorf(http.StatusMethodNotAllowed, "method %s not allowed on %s", r.Method, r.URL.Path))
	default:
		s.writeError(w, r, errorf(http.StatusNotFound, "no such route: %s %s", r.Method, r.URL.Path))
	}
}

func isAdminAPIPath(p string) bool {
	return p == "/admin/v1" || strings.HasPrefix(p, "/admin/v1/")
}

// discardWriter records the status and headers a handler writes and drops
// the body.
type discardWriter struct {
	header http.Header
	status int
}

func (d *discardWriter) Header() http.Header { return d.header }

func (d *discardWriter) Write(p []byte) (int, error) {
	if d.status == 0 {
		d.status = http.StatusOK
	}
	return len(p), nil
}

func (d *discardWriter) WriteHeader(status int) {
	if d.status == 0 {
		d.status = status
	}
}

func (s *Server) livez(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

// readyz answers /readyz (deps.ServeReadyz): ready until the drain,
// whatever the dependencies' state.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	deps.ServeReadyz(w, r, []deps.Check{{Name: "ready", OK: s.ready == nil || s.ready(), Fail: "draining"}}, s.deps.States())
}

func writeText(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body+"\n")
}

const bearerPrefix = "Bearer "

// authenticate checks the admin key of r and answers 401 itself when it is
// missing or wrong (503 when the stored admin keys cannot be read). It
// returns who the key is. It never reads the body and never logs key
// material.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request) (identity, bool) {
	key, reason := adminKey(r)
	if reason == "" {
		sum := sha256.Sum256([]byte(key))
		if s.keyMatches(sum) {
			return identity{ID: bootstrapID, Scope: storage.ScopeAdmin}, true
		}
		k, ok, err := s.keyStore.lookup(r.Context(), sum)
		if err != nil {
			s.log.LogAttrs(r.Context(), slog.LevelError, "admin keys could not be read", slog.String("error", err.Error()))
			s.writeError(w, r, errorf(http.StatusServiceUnavailable, "admin keys could not be read from the store; bootstrap admin keys still work"))
			return identity{}, false
		}
		if ok {
			return identity{ID: k.ID, Name: k.DisplayName, Scope: k.Scope}, true
		}
		reason = "unknown admin key"
	}
	addr := peerAddr(r)
	if ok, wait := s.guard.Allow(addr); !ok {
		// Over budget: answered without a log line or an audit record,
		// so a flood of guesses cannot flood either.
		secs := strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10)
		w.Header().Set("Retry-After", secs)
		s.writeError(w, r, errorf(http.StatusTooManyRequests, "too many failed admin authentications from this address; retry after %ss", secs))
		return identity{}, false
	}
	s.guard.Fail(addr)
	s.log.LogAttrs(r.Context(), slog.LevelWarn, "admin authentication failed",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("remote_addr", r.RemoteAddr),
		slog.String("reason", reason),
	)
	s.auditAuthFailure(r, reason)
	w.Header().Set("WWW-Authenticate", `Bearer realm="aisix-admin"`)
	s.writeError(w, r, errorf(http.StatusUnauthorized, "missing or malformed admin authorization"))
	return identity{}, false
}

// peerAddr is r's TCP peer address (the invalid Addr when it has none).
func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// adminKey extracts the admin key from r: Authorization: Bearer, or
// x-api-key when there is no Authorization header at all. reason is non-empty
// when no usable key was sent.
func adminKey(r *http.Request) (key, reason string) {
	if auth, ok := r.Header["Authorization"]; ok {
		if len(auth) != 1 {
			return "", "more than one authorization header"
		}
		if !strings.HasPrefix(auth[0], bearerPrefix) {
			return "", "authorization is not a bearer token"
		}
		key = strings.TrimSpace(auth[0][len(bearerPrefix):])
	} else {
		key = strings.TrimSpace(r.Header.Get("X-Api-Key"))
	}
	if key == "" {
		return "", "no admin key"
	}
	return key, ""
}

// keyMatches compares a key's hash sum with every bootstrap key's in
// constant time. Hashing both sides first gives equal lengths, so the
// comparison time reveals neither the length nor a prefix of a configured
// key.
func (s *Server) keyMatches(sum [sha256.Size]byte) bool {
	match := 0
	for i := range s.keys {
		match |= subtle.ConstantTimeCompare(sum[:], s.keys[i][:])
	}
	return match == 1
}
