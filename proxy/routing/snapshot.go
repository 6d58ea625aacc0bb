// Package routing turns the stored configuration into an immutable
// Snapshot that the proxy reads on every request without locks or database
// access, and keeps the current one in a Table that reloads and swaps it
// atomically when the store changes.
package routing

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/upstream"

	"github.com/aisix/aisix/storage"
)

// Defaults applied when a model leaves a field unset.
const (
	DefaultCooldown    = 30 * time.Second
	DefaultCooldownMax = 600 * time.Second
)

// Snapshot is one immutable, fully resolved view of the configuration. It
// is safe for concurrent use; nothing in it changes after Build except the
// caller-key cache and the round-robin counters, which are atomic.
type Snapshot struct {
	// Revision is the store revision the snapshot was built from.
	Revision int64

	keysByHash map[string]*CallerKey
	// keys are the caller keys of keysByHash in the dataset's order.
	keys         []*CallerKey
	models       map[string]*Model
	modelsByID   map[string]*Model
	providerKeys map[string]*ProviderKey
	sorted       []*Model
	cache        *keyCache
	configErrs   []RowError
}

// RowError is a stored row the snapshot does not serve as stored, while the
// rest of the configuration is served: a row that was skipped (or, for a
// model whose provider key was skipped, left out with it), a provider key
// kept with a ConfigError that its models answer (adapter not implemented,
// api_base unusable or refused), or a routing model with targets it cannot
// use (it serves the others). The admin API's info endpoint and the
// dashboard list them.
type RowError struct {
	// Kind is "provider_key", "model" or "api_key".
	Kind string
	ID   string
	// Name is the display name; caller keys may have none.
	Name string
	// Reason says what is wrong. It never holds a secret: an api_base
	// quoted in it has its user info and query removed.
	Reason string
}

// ConfigErrors lists the rows not served as stored, in the order the build
// found them: provider keys, then models (routing models with unusable
// targets after the skipped ones), then caller keys, each in dataset order.
// The slice is shared: do not modify it.
func (s *Snapshot) ConfigErrors() []RowError { return s.configErrs }

// CallerKey is a caller API key as the proxy needs it.
type CallerKey struct {
	ID   string
	Name string
	// All is set when allowed_models holds "*".
	All bool
	// allowed holds the ids of the models the key may call.
	allowed   map[string]struct{}
	ExpiresAt time.Time
	Disabled  bool
	// Limit is the key's rate limit and budget (scope caller_key); its
	// Limits are zero when the key has none.
	Limit limit.Subject
	// revision and allowedIDs (the ids of allowed, in the row's order) are
	// the row it was built from, so the next build can tell whether it may
	// reuse it.
	revision   int64
	allowedIDs []string
}

// AllowsModel reports whether the key may call m, by id: access follows
// the model through renames and does not pass to a new model that reuses a
// deleted one's name. A nil m (no such model) is allowed only to a "*" key,
// which then learns it does not exist.
func (k *CallerKey) AllowsModel(m *Model) bool {
	if k.All {
		return true
	}
	if m == nil {
		return false
	}
	_, ok := k.allowed[m.ID]
	return ok
}

// AllowedModels is the models of s the key may call, in s's order of
// models when it may call all of them ("*"), in the key's own order
// otherwise: the same models in the same order for every snapshot of the
// same configuration. It costs the size of the key's list, not of the
// configuration.
func (k *CallerKey) AllowedModels(s *Snapshot) []*Model {
	if k.All {
		return s.sorted
	}
	out := make([]*Model, 0, len(k.allowed))
	for _, id := range k.allowedIDs {
		if m := s.modelsByID[id]; m != nil && !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// ProviderKey is a resolved upstream credential. Its String and LogValue
// never show the secret.
type ProviderKey struct {
	ID       string
	Name     string
	Provider string
	Adapter  string
	// URL is where the key's requests go: the chat-completions endpoint
	// (OpenAI), the Messages endpoint (Anthropic), the resource (Azure);
	// nil when Err is set.
	URL *url.URL
	// SecretUnbound is set when api_base points at another host than the
	// one the secret was entered for (storage.ProviderKey.SecretBound is
	// false): requests go without the credential until the secret is
	// entered again or api_base points back. The status API reports it
	// per direct model through Target.ProviderKey.
	SecretUnbound bool
	// ForwardHeaders are caller header names (canonical) this key lets
	// through beyond the adapter's allowlist.
	ForwardHeaders []string
	// Transport, when set, is the key's own transport (upstream TLS
	// files: a private CA, a client certificate); nil is the proxy's
	// shared one.
	Transport *upstream.Transport
	// Err is set when the key cannot be dispatched (adapter not
	// implemented, no base URL, upstream TLS files that do not load).
	Err *ConfigError
	// bind resolves one upstream model behind the key (see adapters.go);
	// nil when Err is set.
	bind func(model string, modelJSON []byte) (provider.Endpoint, error)
}

// String describes the key without its secret.
func (pk *ProviderKey) String() string { return "provider key " + pk.Name + " (" + pk.ID + ")" }

// LogValue keeps the secret out of logs.
func (pk *ProviderKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", pk.ID), slog.String("name", pk.Name), slog.String("adapter", pk.Adapter))
}

// ConfigError is a configuration problem found while building a snapshot
// that makes one model impossible to dispatch. The proxy answers it with
// Status and the OpenAI error Type; inside a routing group the target is
// skipped instead.
type ConfigError struct {
	Status  int
	Type    string
	Message string
}

func (e *ConfigError) Error() string { return e.Message }

// Model is a resolved model: exactly one of Direct and Group is set.
type Model struct {
	ID   string
	Name string
	// NameJSON is Name as a JSON string, spliced into responses.
	NameJSON []byte
	// OwnedBy is the model's provider label ("aisix" for routing models).
	OwnedBy string
	// Alias is the name answers carry as their model.
	Alias  provider.Alias
	Direct *Target
	Group  *Group
	// Limit is the rate limit and budget of requests that ask for this
	// model by name (scope model); zero Limits when it has none.
	Limit limit.Subject
}

// Target is a direct model: one upstream model behind one provider key.
// ProviderKey.SecretUnbound tells whether the key's secret must be entered
// again before the model gets a credential (the status API's
// secret_needs_reentry).
type Target struct {
	ID        string
	Name      string
	ModelName string
	// ModelNameJSON is ModelName as a JSON string, spliced into requests.
	ModelNameJSON []byte
	ProviderKey   *ProviderKey
	// Timeout bounds one non-streaming attempt (DefaultTimeout unless the
	// model sets one); never 0.
	Timeout time.Duration
	// StreamHeaderTimeout bounds a streaming attempt's wait for response
	// headers, StreamFirstTimeout (from the attempt's start) its wait for
	// the first content chunk, and StreamIdleTimeout every gap between
	// chunks after that. All are set (see resolveTimeouts).
	StreamHeaderTimeout time.Duration
	StreamFirstTimeout  time.Duration
	StreamIdleTimeout   time.Duration
	// Retries is the model's own retries, when RetriesSet.
	Retries    int
	RetriesSet bool
	Cooldown   Cooldown
	// ServedBy is the x-aisix-served-by header value.
	ServedBy []string
	// Price is the model's price; nil when it has none (its answers get
	// no cost).
	Price *Price
	// Limit is the deployment's own limit, provider_limit (scope target):
	// every request sent to it counts, and a walk skips it while it is at
	// its limit. Zero Limits when it has none.
	Limit limit.Subject
	// Endpoint is the adapter's resolved upstream; nil when Err is set.
	Endpoint provider.Endpoint
	// Transport is ProviderKey.Transport as an interface, nil when the
	// key has none (the proxy's shared transport), so the attempt path
	// pays one nil check.
	Transport http.RoundTripper
	// Err is set when the target cannot be dispatched.
	Err *ConfigError
}

// Cooldown is a resolved cooldown policy.
type Cooldown struct {
	// Off is set when cooldown is disabled or default_seconds is 0.
	Off             bool
	Default         time.Duration
	Max             time.Duration
	HonorRetryAfter bool
	OnTimeout       bool
	OnTransport     bool
	triggers        statusSet
}

// Triggers reports whether an upstream status starts a cooldown.
func (c *Cooldown) Triggers(status int) bool { return !c.Off && c.triggers.has(status) }

// Length is the cooldown to arm: the upstream Retry-After when there is one
// and the policy honours it (capped at Max), else Default.
func (c *Cooldown) Length(retryAfter time.Duration, hasRetryAfter bool) time.Duration {
	if c.Off {
		return 0
	}
	if hasRetryAfter && c.HonorRetryAfter && retryAfter > 0 {
		return min(retryAfter, c.Max)
	}
	return c.Default
}

// statusSet is a bitmap of HTTP statuses 0-1023.
type statusSet [16]uint64

func (s *statusSet) add(code int) {
	if code >= 0 && code < 1024 {
		s[code/64] |= 1 << (code % 64)
	}
}

func (s *statusSet) has(code int) bool {
	return code >= 0 && code < 1024 && s[code/64]&(1<<(code%64)) != 0
}

// Group is a resolved routing block.
type Group struct {
	Strategy string
	Targets  []*Target
	weights  []int
	total    int
	// Retries is the group's retries, when RetriesSet.
	Retries    int
	RetriesSet bool
	// MaxFallbacks caps the distinct targets after the first; -1 is no cap.
	MaxFallbacks int
	// RetryOn429 is false when retry_on_429 is false: a 429 goes back to
	// the caller instead of failing over.
	RetryOn429 bool
	fallbackOn statusSet
	// FailWhenAllUnavailable is when_all_unavailable: fail.
	FailWhenAllUnavailable bool
	// Timeout bounds the whole request; 0 is none.
	Timeout time.Duration
	// Continuations is how many times a committed chat-completions stream
	// may be continued on another target (stream_failure mode continue);
	// 0 is mode error: the stream ends with its terminal error event.
	Continuations int
	// Hedge, when set, starts the next target of a streaming chat
	// completion's walk in parallel when the first is slow to its first
	// content (proxy/hedge.go); nil is no hedging.
	Hedge *Hedge
	rr    *atomic.Uint64
}

// Hedge is when a group hedges: a fixed delay after the first attempt
// starts, or (P95) that target's own recent p95 time to first content.
type Hedge struct {
	After time.Duration
	P95   bool
}

// FallbackOn reports whether a status is listed in fallback_on_statuses.
func (g *Group) FallbackOn(status int) bool { return g.fallbackOn.has(status) }

// RetriesFor is the number of extra tries on t inside this group: the
// target's own retries, else the group's, else 0.
func (g *Group) RetriesFor(t *Target) int {
	if t.RetriesSet {
		return t.Retries
	}
	if g.RetriesSet {
		return g.Retries
	}
	return 0
}

// Order appends the targets in strategy order to dst: failover starts at
// the first, round_robin at a rotating index, weighted at a weighted random
// pick; the walk then goes forward from the start, wrapping. It does not
// apply max_fallbacks: the caller filters by runtime state first.
func (g *Group) Order(dst []*Target) []*Target {
	n := len(g.Targets)
	start := 0
	switch g.Strategy {
	case storage.StrategyRoundRobin:
		start = int((g.rr.Add(1) - 1) % uint64(n))
	case storage.StrategyWeighted:
		if g.total > 0 {
			r := rand.IntN(g.total)
			for i, w := range g.weights {
				if r < w {
					start = i
					break
				}
				r -= w
			}
		}
	}
	for i := 0; i < n; i++ {
		dst = append(dst, g.Targets[(start+i)%n])
	}
	return dst
}

// Budget is how many distinct targets a request may try.
func (g *Group) Budget() int {
	if g.MaxFallbacks < 0 || g.MaxFallbacks+1 > len(g.Targets) {
		return len(g.Targets)
	}
	return g.MaxFallbacks + 1
}

// Model returns the model with the given display name, or nil.
func (s *Snapshot) Model(name string) *Model { return s.models[name] }

// ModelByID returns the model with the given id, or nil.
func (s *Snapshot) ModelByID(id string) *Model { return s.modelsByID[id] }

// ProviderKey returns the provider key with the given id, or nil.
func (s *Snapshot) ProviderKey(id string) *ProviderKey { return s.providerKeys[id] }

// Models returns every model sorted by display name. The slice is shared:
// do not modify it.
func (s *Snapshot) Models() []*Model { return s.sorted }

// KeyByHash returns the caller key whose SHA-256 hex is hash, or nil.
func (s *Snapshot) KeyByHash(hash string) *CallerKey { return s.keysByHash[hash] }

// Authenticate returns the caller key for a plaintext key, or nil. Known
// keys are cached by their bytes, so SHA-256 runs once per key per
// snapshot; the cache holds at most one entry per configured key, so an
// attacker sending random keys cannot grow it.
func (s *Snapshot) Authenticate(raw string) *CallerKey {
	if raw == "" {
		return nil
	}
	if k := s.cache.get(raw); k != nil {
		return k
	}
	sum := sha256.Sum256([]byte(raw))
	var hexBuf [64]byte
	hex.Encode(hexBuf[:], sum[:])
	k := s.keysByHash[string(hexBuf[:])]
	if k != nil {
		s.cache.put(strings.Clone(raw), k)
	}
	return k
}

// keyCache maps plaintext caller keys to their CallerKey. It is sharded,
// and each shard is a copy-on-write map behind an atomic pointer: lookups
// take no lock; an insert (once per key per snapshot) copies one shard.
type keyCache struct {
	seed   maphash.Seed
	shards [64]cacheShard
}

type cacheShard struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]*CallerKey]
}

func newKeyCache() *keyCache { return &keyCache{seed: maphash.MakeSeed()} }

func (c *keyCache) shard(raw string) *cacheShard {
	return &c.shards[maphash.String(c.seed, raw)%uint64(len(c.shards))]
}

func (c *keyCache) get(raw string) *CallerKey {
	m := c.shard(raw).m.Load()
	if m == nil {
		return nil
	}
	return (*m)[raw]
}

func (c *keyCache) put(raw string, k *CallerKey) {
	sh := c.shard(raw)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old := sh.m.Load()
	var next map[string]*CallerKey
	if old == nil {
		next = make(map[string]*CallerKey, 1)
	} else {
		if _, ok := (*old)[raw]; ok {
			return
		}
		next = make(map[string]*CallerKey, len(*old)+1)
		for kk, v := range *old {
			next[kk] = v
		}
	}
	next[raw] = k
	sh.m.Store(&next)
}

// Build resolves a dataset into a snapshot. A row the proxy cannot serve
// does not take the rest down with it: a provider key, model or caller key
// that fails Validate, shares a unique field (id, display name, key hash)
// with another row, or names a provider key that does not exist is
// skipped, and so is a direct model whose provider key was skipped. Rows
// that collide are all skipped: which of them was meant is anyone's guess.
// A routing model keeps the targets it can use: one that does not exist,
// was skipped, or is itself a routing model becomes a target that answers
// a configuration error, which the walk passes over; a group with no usable
// target still exists and answers that error. Every row not served as
// stored is listed in ConfigErrors.
//
// The error is for a dataset that cannot be used at all. No dataset is
// that today, so it is nil; a failed load is the Source's error instead.
func Build(ds storage.Dataset, opts ...Option) (*Snapshot, error) {
	return build(ds, nil, nil, newOptions(opts)), nil
}

// Option configures Build and NewTable.
type Option func(*options)

type options struct {
	egress EgressPolicy
	// tokenClient sends Entra ID token requests; nil means a plain client
	// with tokenTimeout (serve passes one whose dialer applies the egress
	// policy).
	tokenClient *http.Client
	// authority is the Entra ID authority host URL (DefaultAuthority).
	authority string
	// vertexTokenURL, when set, is where Vertex service-account token
	// requests go instead of the key's token_uri.
	vertexTokenURL string
	// auths keeps Azure and Vertex credentials (and their cached tokens)
	// from one build to the next; nil builds new ones.
	auths *authCache
	// newTransport makes the transport of a key with upstream TLS files
	// (nil: defaultUpstreamTransport); transports keeps those transports
	// across builds (nil: new ones each build).
	newTransport func(*tls.Config) *http.Transport
	transports   *transportCache
}

func newOptions(opts []Option) options {
	var o options
	for _, fn := range opts {
		fn(&o)
	}
	return o
}

// WithEgress sets the policy every api_base host is checked against; the
// default is the zero EgressPolicy. A refused host is a ConfigError on its
// provider key, listed in ConfigErrors.
func WithEgress(p EgressPolicy) Option {
	return func(o *options) { o.egress = p }
}

// builder is the state of one build.
type builder struct {
	s    *Snapshot
	prev *Snapshot // the snapshot s replaces, or nil
	o    *options
	// skippedKeys and skippedModels hold why a provider key (by id) or a
	// model (by display name) was skipped, for the rows that refer to it.
	skippedKeys   map[string]string
	skippedModels map[string]string
}

// build makes the snapshot of ds. prev, when not nil, is the snapshot it
// replaces: caller keys whose row did not change since are taken from it
// as they are (a CallerKey depends on its own row only), which is most of
// a rebuild's work at tens of thousands of keys.
func build(ds storage.Dataset, prev *Snapshot, counters func(id string) *atomic.Uint64, o options) *Snapshot {
	s := &Snapshot{
		Revision:     ds.Revision,
		keysByHash:   make(map[string]*CallerKey, len(ds.APIKeys)),
		keys:         make([]*CallerKey, 0, len(ds.APIKeys)),
		models:       make(map[string]*Model, len(ds.Models)),
		modelsByID:   make(map[string]*Model, len(ds.Models)),
		providerKeys: make(map[string]*ProviderKey, len(ds.ProviderKeys)),
		cache:        newKeyCache(),
	}
	b := &builder{s: s, prev: prev, o: &o, skippedKeys: map[string]string{}, skippedModels: map[string]string{}}
	for _, u := range ds.Unreadable {
		b.problem(u.Kind, u.ID, u.Name, u.Reason)
		switch u.Kind {
		case kindModel:
			b.skippedModels[u.Name] = u.Reason
		case kindProviderKey:
			b.skippedKeys[u.ID] = u.Reason
		}
	}
	b.providerKeys(ds.ProviderKeys)
	b.models(ds.Models)
	// Groups are resolved once every model exists.
	b.groups(ds.Models, counters)
	b.callerKeys(ds.APIKeys)
	s.sorted = make([]*Model, 0, len(s.models))
	for _, m := range s.models {
		s.sorted = append(s.sorted, m)
	}
	slices.SortFunc(s.sorted, func(a, b *Model) int { return strings.Compare(a.Name, b.Name) })
	return s
}

// Row kinds of a RowError.
const (
	kindProviderKey = storage.KindProviderKey
	kindModel       = storage.KindModelRow
	kindAPIKey      = storage.KindAPIKey
)

func (b *builder) problem(kind, id, name, reason string) {
	b.s.configErrs = append(b.s.configErrs, RowError{Kind: kind, ID: id, Name: name, Reason: reason})
}

// tally counts the rows sharing each value of a unique field.
func tally[T any](rows []T, field func(*T) string) map[string]int {
	n := make(map[string]int, len(rows))
	for i := range rows {
		n[field(&rows[i])]++
	}
	return n
}

func (b *builder) providerKeys(pks []storage.ProviderKey) {
	ids := tally(pks, func(pk *storage.ProviderKey) string { return pk.ID })
	for i := range pks {
		pk := &pks[i]
		var reason string
		if err := pk.Validate(); err != nil {
			reason = redactBase(err.Error(), pk.APIBase)
		} else if ids[pk.ID] > 1 {
			reason = "id " + pk.ID + " is used by more than one provider key"
		}
		if reason != "" {
			b.problem(kindProviderKey, pk.ID, pk.DisplayName, reason)
			b.skippedKeys[pk.ID] = reason
			continue
		}
		rpk := resolveProviderKey(pk, b.o)
		if rpk.Err != nil {
			b.problem(kindProviderKey, pk.ID, pk.DisplayName, rpk.Err.Message)
		}
		b.s.providerKeys[pk.ID] = rpk
	}
}

func (b *builder) models(ms []storage.Model) {
	s := b.s
	names := tally(ms, func(m *storage.Model) string { return m.DisplayName })
	ids := tally(ms, func(m *storage.Model) string { return m.ID })
	for i := range ms {
		m := &ms[i]
		var reason string
		switch err := m.Validate(); {
		case err != nil:
			reason = err.Error()
		case names[m.DisplayName] > 1:
			reason = fmt.Sprintf("display name %q is used by more than one model", m.DisplayName)
		case ids[m.ID] > 1:
			reason = "id " + m.ID + " is used by more than one model"
		case m.Routing != nil:
		case b.skippedKeys[m.ProviderKeyID] != "":
			reason = fmt.Sprintf("its provider key %s was skipped: %s", m.ProviderKeyID, b.skippedKeys[m.ProviderKeyID])
		case s.providerKeys[m.ProviderKeyID] == nil:
			reason = "provider key " + m.ProviderKeyID + " does not exist"
		}
		if reason != "" {
			b.problem(kindModel, m.ID, m.DisplayName, reason)
			b.skippedModels[m.DisplayName] = reason
			continue
		}
		rm := &Model{ID: m.ID, Name: m.DisplayName, NameJSON: jsonString(m.DisplayName), OwnedBy: m.Provider}
		rm.Alias = provider.Alias{Name: rm.Name, JSON: rm.NameJSON}
		rm.Limit = subject(limit.ScopeModel, m.ID, m.RateLimit, m.Budget)
		if m.Routing == nil {
			rm.Direct = resolveTarget(m, s.providerKeys[m.ProviderKeyID])
		} else {
			rm.OwnedBy = "aisix"
		}
		s.models[m.DisplayName] = rm
		s.modelsByID[m.ID] = rm
	}
}

func (b *builder) groups(ms []storage.Model, counters func(string) *atomic.Uint64) {
	for i := range ms {
		m := &ms[i]
		rm := b.s.models[m.DisplayName]
		if m.Routing == nil || rm == nil || rm.ID != m.ID {
			continue // a direct model, or a skipped row
		}
		var problems []string
		rm.Group, problems = b.resolveGroup(m, counters)
		if len(problems) > 0 {
			b.problem(kindModel, m.ID, m.DisplayName, strings.Join(problems, "; "))
		}
	}
}

func (b *builder) callerKeys(keys []storage.APIKey) {
	s := b.s
	hashes := tally(keys, func(k *storage.APIKey) string { return k.KeyHash })
	for i := range keys {
		k := &keys[i]
		// A key reused from prev was built from this very row, which was
		// valid then and is now.
		ck := b.reuse(k)
		var reason string
		if ck == nil {
			if err := k.Validate(); err != nil {
				reason = err.Error()
			}
		}
		if reason == "" && hashes[k.KeyHash] > 1 {
			reason = "its key hash is shared with another caller key"
		}
		if reason != "" {
			b.problem(kindAPIKey, k.ID, k.DisplayName, reason)
			continue
		}
		if ck == nil {
			ck = b.callerKey(k)
		}
		s.keysByHash[k.KeyHash] = ck
		s.keys = append(s.keys, ck)
	}
}

// reuse returns prev's CallerKey of k when k's row is the one it was built
// from (same id and revision, same allowed model ids), nil otherwise.
func (b *builder) reuse(k *storage.APIKey) *CallerKey {
	if b.prev == nil || len(k.AllowedModelIDs) == 0 || k.Revision == 0 {
		return nil
	}
	ck := b.prev.keysByHash[k.KeyHash]
	if ck == nil || ck.ID != k.ID || ck.revision != k.Revision || !slices.Equal(ck.allowedIDs, k.AllowedModelIDs) {
		return nil
	}
	return ck
}

// callerKey resolves a caller key's access by model id, from
// AllowedModelIDs as the store fills it. A Source that leaves the ids
// empty (older test fixtures, for one) gets AllowedModels resolved to ids
// here instead, by the display names in this dataset: names of models that
// do not exist (or were skipped) grant nothing, and such a key follows no
// rename, since the names it holds are the ones that were stored.
func (b *builder) callerKey(k *storage.APIKey) *CallerKey {
	ck := &CallerKey{ID: k.ID, Name: k.DisplayName, Disabled: k.Disabled,
		Limit:    subject(limit.ScopeCallerKey, k.ID, k.RateLimit, k.Budget),
		revision: k.Revision}
	if k.ExpiresAt != nil {
		ck.ExpiresAt = *k.ExpiresAt
	}
	ids := k.AllowedModelIDs
	if len(ids) == 0 {
		ids = make([]string, 0, len(k.AllowedModels))
		for _, name := range k.AllowedModels {
			if name == "*" {
				ids = append(ids, name)
			} else if m := b.s.models[name]; m != nil {
				ids = append(ids, m.ID)
			}
		}
	}
	ck.allowedIDs = ids
	ck.allowed = make(map[string]struct{}, len(ids))
	for _, id := range ids {
		if id == "*" {
			ck.All = true
			continue
		}
		ck.allowed[id] = struct{}{}
	}
	return ck
}

// resolveGroup resolves a routing block. It returns, beside the group,
// what is wrong with the targets it cannot use.
func (b *builder) resolveGroup(m *storage.Model, counters func(string) *atomic.Uint64) (*Group, []string) {
	r := m.Routing
	g := &Group{
		Strategy:               r.Strategy,
		MaxFallbacks:           -1,
		RetryOn429:             r.RetryOn429 == nil || *r.RetryOn429,
		Timeout:                millis(r.Timeout),
		FailWhenAllUnavailable: r.WhenAllUnavailable == storage.WhenAllUnavailableFail,
	}
	if g.Strategy == "" {
		g.Strategy = storage.StrategyFailover
	}
	if r.Retries != nil {
		g.Retries, g.RetriesSet = *r.Retries, true
	}
	if r.MaxFallbacks != nil {
		g.MaxFallbacks = *r.MaxFallbacks
	}
	if sf := r.StreamFailure; sf != nil && sf.Mode == storage.StreamFailureContinue {
		g.Continuations = max(sf.MaxContinuations, 1)
	}
	if h := r.Hedge; h != nil {
		g.Hedge = &Hedge{After: time.Duration(h.AfterMS) * time.Millisecond, P95: h.After == storage.HedgeAfterP95}
	}
	for _, st := range r.FallbackOnStatuses {
		g.fallbackOn.add(st)
	}
	if counters != nil {
		g.rr = counters(m.ID)
	} else {
		g.rr = new(atomic.Uint64)
	}
	var problems []string
	for _, t := range r.Targets {
		target, ok := b.target(t.Model)
		if !ok {
			problems = append(problems, target.Err.Message)
		}
		w := 1
		if t.Weight != nil {
			w = *t.Weight
		}
		g.Targets = append(g.Targets, target)
		g.weights = append(g.weights, w)
		g.total += w
	}
	return g, problems
}

// target resolves a routing target by name. One that is not a direct
// model (missing, skipped, a routing model) is a target with Err, passed
// over as a configuration error at request time, and ok is false. A direct
// model whose provider key has Err is ok: the key is the row at fault.
func (b *builder) target(name string) (t *Target, ok bool) {
	tm := b.s.models[name]
	if tm != nil && tm.Direct != nil {
		return tm.Direct, true
	}
	broken := &Target{Name: name, ServedBy: []string{name}}
	switch {
	case tm != nil:
		broken.ID = tm.ID
		broken.Err = configError("routing target %q is a routing model, not a direct model", name)
	case b.skippedModels[name] != "":
		broken.Err = configError("routing target %q was skipped: %s", name, b.skippedModels[name])
	default:
		broken.Err = configError("routing target %q does not exist", name)
	}
	return broken, false
}

// configError is a configuration problem of one routing target.
func configError(format string, a ...any) *ConfigError {
	return &ConfigError{Status: http.StatusInternalServerError, Type: "config_error", Message: fmt.Sprintf(format, a...)}
}

// redactBase replaces a raw api_base quoted in msg by its scheme, host and
// path: user info and a query can carry credentials.
func redactBase(msg, base string) string {
	if base == "" {
		return msg
	}
	safe := "(unparsable)"
	if u, err := url.Parse(base); err == nil {
		safe = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	msg = strings.ReplaceAll(msg, strconv.Quote(base), strconv.Quote(safe))
	return strings.ReplaceAll(msg, base, safe)
}

// endpointSuffixes are endpoint paths people paste at the end of api_base.
var endpointSuffixes = []string{"/chat/completions", "/completions", "/embeddings", "/responses", "/images/generations"}

// openAIBase resolves {api_base}, the URL the OpenAI wire's paths
// (chat/completions, embeddings, …) go under, from the key's base URL
// (storage.ProviderKey.BaseURL: api_base without surrounding white space
// and trailing slashes, or the OpenAI default for an openai key without
// one): a pasted endpoint suffix removed, /v1 added to the bare
// api.openai.com host only, and the path joined to the parsed URL, so
// nothing in the base can move it. A base that is not http(s), has no
// host, or carries user info, a query or a fragment is refused, and so is
// a host the egress policy refuses. The error never quotes the base, which
// may hold a credential.
func openAIBase(pk *storage.ProviderKey, egress EgressPolicy) (*url.URL, error) {
	base := pk.BaseURL()
	for _, suffix := range endpointSuffixes {
		base = strings.TrimSuffix(base, suffix)
	}
	if base == "" {
		return nil, fmt.Errorf("provider key %q has no api_base for provider %q", pk.DisplayName, pk.Provider)
	}
	u, err := usableURL(pk, base, egress)
	if err != nil {
		return nil, err
	}
	if u.Path == "" {
		u.Path = "/"
		if u.Scheme == "https" && strings.EqualFold(u.Host, "api.openai.com") {
			u.Path = "/v1"
		}
	}
	return u, nil
}

func resolveTarget(m *storage.Model, pk *ProviderKey) *Target {
	t := &Target{
		ID: m.ID, Name: m.DisplayName, ModelName: m.ModelName, ModelNameJSON: jsonString(m.ModelName),
		ProviderKey: pk, ServedBy: []string{m.DisplayName}, Err: pk.Err,
		Cooldown: resolveCooldown(m.Cooldown),
		Limit:    subject(limit.ScopeTarget, m.ID, m.ProviderLimit, nil),
	}
	if t.Err == nil {
		ep, err := pk.bind(m.ModelName, t.ModelNameJSON)
		var ce *ConfigError
		switch {
		case errors.As(err, &ce):
			t.Err = ce
		case err != nil:
			t.Err = &ConfigError{Status: http.StatusBadGateway, Type: "config_error",
				Message: fmt.Sprintf("model %q cannot use provider key %q: %v", m.DisplayName, pk.Name, err)}
		}
		t.Endpoint = ep
		if pk.Transport != nil {
			t.Transport = pk.Transport
		}
	}
	to := resolveTimeouts(m)
	t.Timeout, t.StreamHeaderTimeout, t.StreamFirstTimeout, t.StreamIdleTimeout = to.timeout, to.header, to.first, to.idle
	if m.Retries != nil {
		t.Retries, t.RetriesSet = *m.Retries, true
	}
	if p := m.Price; p != nil {
		t.Price = &Price{Input: p.Input, Output: p.Output, CachedInput: p.CachedInput}
	}
	return t
}

func resolveCooldown(c *storage.Cooldown) Cooldown {
	out := Cooldown{Default: DefaultCooldown, Max: DefaultCooldownMax, HonorRetryAfter: true, OnTimeout: true, OnTransport: true}
	for _, st := range []int{401, 403, 404, 408, 429} {
		out.triggers.add(st)
	}
	for st := 500; st <= 599; st++ {
		out.triggers.add(st)
	}
	if c == nil {
		return out
	}
	if c.Enabled != nil && !*c.Enabled {
		out.Off = true
	}
	if c.DefaultSeconds != nil {
		out.Default = time.Duration(*c.DefaultSeconds) * time.Second
		if *c.DefaultSeconds == 0 {
			out.Off = true
		}
	}
	if c.MaxSeconds != nil {
		out.Max = time.Duration(*c.MaxSeconds) * time.Second
	}
	if c.HonorRetryAfter != nil {
		out.HonorRetryAfter = *c.HonorRetryAfter
	}
	if c.TriggerStatuses != nil {
		out.triggers = statusSet{}
		for _, st := range c.TriggerStatuses {
			out.triggers.add(st)
		}
	}
	if c.TriggerOnTimeout != nil {
		out.OnTimeout = *c.TriggerOnTimeout
	}
	if c.TriggerOnTransport != nil {
		out.OnTransport = *c.TriggerOnTransport
	}
	return out
}

func millis(v *int64) time.Duration {
	if v == nil || *v <= 0 {
		return 0
	}
	return time.Duration(*v) * time.Millisecond
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}
