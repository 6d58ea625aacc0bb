// Package routing turns the stored configuration into an immutable
// Snapshot that the proxy reads on every request without locks or database
// access, and keeps the current one in a Table that reloads and swaps it
// atomically when the store changes.
package routing

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aisix/aisix/storage"
)

// Defaults applied when a model leaves a field unset.
const (
	DefaultCooldown    = 30 * time.Second
	DefaultCooldownMax = 600 * time.Second
	// DefaultOpenAIBase is used for an openai provider key without api_base.
	DefaultOpenAIBase = "https://api.openai.com/v1"
)

// Snapshot is one immutable, fully resolved view of the configuration. It
// is safe for concurrent use; nothing in it changes after Build except the
// caller-key cache and the round-robin counters, which are atomic.
type Snapshot struct {
	// Revision is the store revision the snapshot was built from.
	Revision int64

	keysByHash   map[string]*CallerKey
	models       map[string]*Model
	modelsByID   map[string]*Model
	providerKeys map[string]*ProviderKey
	sorted       []*Model
	cache        *keyCache
	configErrs   []RowError
}

// RowError is a stored row the snapshot could not use: it was skipped (or,
// for a model whose provider key was skipped, left out with it) and the
// rest of the configuration is served. The admin API's info endpoint and
// the dashboard list them.
type RowError struct {
	// Kind is "provider_key", "model" or "api_key".
	Kind   string
	ID     string
	Name   string
	Reason string
}

// ConfigErrors lists the rows skipped when the snapshot was built. The
// slice is shared: do not modify it.
func (s *Snapshot) ConfigErrors() []RowError { return s.configErrs }

// CallerKey is a caller API key as the proxy needs it.
type CallerKey struct {
	ID   string
	Name string
	// All is set when allowed_models holds "*".
	All       bool
	allowed   map[string]struct{}
	ExpiresAt time.Time
	Disabled  bool
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

// Allows reports whether the key may call the model alias name.
func (k *CallerKey) Allows(name string) bool {
	if k.All {
		return true
	}
	_, ok := k.allowed[name]
	return ok
}

// ProviderKey is a resolved upstream credential. Its String and LogValue
// never show the secret.
type ProviderKey struct {
	ID       string
	Name     string
	Provider string
	Adapter  string
	// URL is the prebuilt chat-completions endpoint, nil when Err is set.
	URL *url.URL
	// Auth is the prebuilt Authorization header value; nil when the secret
	// is not bound to the host api_base names now (SecretUnbound).
	Auth []string
	// SecretUnbound is set when api_base points at another host than the
	// one the secret was entered for: requests go without the credential
	// until the secret is entered again or api_base points back.
	SecretUnbound bool
	// ForwardHeaders are caller header names (canonical) this key lets
	// through beyond the adapter's allowlist.
	ForwardHeaders []string
	// Err is set when the key cannot be dispatched (adapter not
	// implemented, no base URL).
	Err *ConfigError
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
	Direct  *Target
	Group   *Group
}

// Target is a direct model: one upstream model behind one provider key.
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
	rr      *atomic.Uint64
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

// Build resolves a dataset into a snapshot. It fails on a dataset the proxy
// must not serve from: invalid resources, duplicate names, ids or key
// hashes, or references to provider keys or targets that do not exist.
// Problems that affect one model only (an adapter not implemented yet, a
// routing target that is itself a routing model) do not fail the build:
// that model answers a clear configuration error instead.
func Build(ds storage.Dataset) (*Snapshot, error) {
	return build(ds, nil)
}

func build(ds storage.Dataset, counters func(id string) *atomic.Uint64) (*Snapshot, error) {
	s := &Snapshot{
		Revision:     ds.Revision,
		keysByHash:   make(map[string]*CallerKey, len(ds.APIKeys)),
		models:       make(map[string]*Model, len(ds.Models)),
		modelsByID:   make(map[string]*Model, len(ds.Models)),
		providerKeys: make(map[string]*ProviderKey, len(ds.ProviderKeys)),
		cache:        newKeyCache(),
	}
	for i := range ds.ProviderKeys {
		pk := &ds.ProviderKeys[i]
		if err := pk.Validate(); err != nil {
			return nil, fmt.Errorf("provider key %s: %w", pk.ID, err)
		}
		if _, dup := s.providerKeys[pk.ID]; dup {
			return nil, fmt.Errorf("provider key id %s: duplicate", pk.ID)
		}
		s.providerKeys[pk.ID] = resolveProviderKey(pk)
	}
	for i := range ds.Models {
		m := &ds.Models[i]
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("model %s (%s): %w", m.DisplayName, m.ID, err)
		}
		if _, dup := s.models[m.DisplayName]; dup {
			return nil, fmt.Errorf("model display name %q: duplicate", m.DisplayName)
		}
		if _, dup := s.modelsByID[m.ID]; dup {
			return nil, fmt.Errorf("model id %s: duplicate", m.ID)
		}
		rm := &Model{ID: m.ID, Name: m.DisplayName, NameJSON: jsonString(m.DisplayName), OwnedBy: m.Provider}
		if m.Routing == nil {
			pk := s.providerKeys[m.ProviderKeyID]
			if pk == nil {
				return nil, fmt.Errorf("model %s: provider key %s does not exist", m.DisplayName, m.ProviderKeyID)
			}
			rm.Direct = resolveTarget(m, pk)
		} else {
			rm.OwnedBy = "aisix"
		}
		s.models[m.DisplayName] = rm
		s.modelsByID[m.ID] = rm
	}
	// Groups are resolved once every model exists.
	for i := range ds.Models {
		m := &ds.Models[i]
		if m.Routing == nil {
			continue
		}
		g, err := s.resolveGroup(m, counters)
		if err != nil {
			return nil, err
		}
		s.models[m.DisplayName].Group = g
	}
	for i := range ds.APIKeys {
		k := &ds.APIKeys[i]
		if err := k.Validate(); err != nil {
			return nil, fmt.Errorf("caller key %s: %w", k.ID, err)
		}
		if _, dup := s.keysByHash[k.KeyHash]; dup {
			return nil, fmt.Errorf("caller key %s: duplicate key hash", k.ID)
		}
		ck := &CallerKey{ID: k.ID, Name: k.DisplayName, Disabled: k.Disabled, allowed: make(map[string]struct{}, len(k.AllowedModels))}
		if k.ExpiresAt != nil {
			ck.ExpiresAt = *k.ExpiresAt
		}
		for _, name := range k.AllowedModels {
			if name == "*" {
				ck.All = true
			}
			ck.allowed[name] = struct{}{}
			if m := s.models[name]; m != nil {
				ck.allowed[m.ID] = struct{}{}
			}
		}
		s.keysByHash[k.KeyHash] = ck
	}
	s.sorted = make([]*Model, 0, len(s.models))
	for _, m := range s.models {
		s.sorted = append(s.sorted, m)
	}
	slices.SortFunc(s.sorted, func(a, b *Model) int { return strings.Compare(a.Name, b.Name) })
	return s, nil
}

func (s *Snapshot) resolveGroup(m *storage.Model, counters func(string) *atomic.Uint64) (*Group, error) {
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
	for _, st := range r.FallbackOnStatuses {
		g.fallbackOn.add(st)
	}
	if counters != nil {
		g.rr = counters(m.ID)
	} else {
		g.rr = new(atomic.Uint64)
	}
	for _, t := range r.Targets {
		tm := s.models[t.Model]
		if tm == nil {
			return nil, fmt.Errorf("model %s: routing target %q does not exist", m.DisplayName, t.Model)
		}
		target := tm.Direct
		if target == nil {
			// A routing model as a target: not dispatchable, skipped as a
			// configuration error at request time.
			target = &Target{
				ID: tm.ID, Name: tm.Name, ServedBy: []string{tm.Name},
				Err: &ConfigError{Status: http.StatusInternalServerError, Type: "config_error",
					Message: fmt.Sprintf("routing target %q is a routing model, not a direct model", tm.Name)},
			}
		}
		w := 1
		if t.Weight != nil {
			w = *t.Weight
		}
		g.Targets = append(g.Targets, target)
		g.weights = append(g.weights, w)
		g.total += w
	}
	return g, nil
}

func resolveProviderKey(pk *storage.ProviderKey) *ProviderKey {
	out := &ProviderKey{
		ID: pk.ID, Name: pk.DisplayName, Provider: pk.Provider, Adapter: pk.EffectiveAdapter(),
		Auth: []string{"Bearer " + pk.Secret},
	}
	if out.Adapter != storage.AdapterOpenAI {
		out.Err = &ConfigError{Status: http.StatusNotImplemented, Type: "not_implemented",
			Message: fmt.Sprintf("the %q adapter of provider key %q is not implemented yet", out.Adapter, pk.DisplayName)}
		return out
	}
	u, err := chatURL(pk)
	if err != nil {
		out.Err = &ConfigError{Status: http.StatusBadGateway, Type: "config_error", Message: err.Error()}
		return out
	}
	out.URL = u
	return out
}

// chatURL builds {api_base}/chat/completions: white space and a trailing
// slash trimmed, a pasted endpoint suffix removed, /v1 added to the bare
// api.openai.com host only, and the OpenAI default used for an openai key
// without a base.
func chatURL(pk *storage.ProviderKey) (*url.URL, error) {
	base := strings.TrimRight(strings.TrimSpace(pk.APIBase), "/")
	for _, suffix := range []string{"/chat/completions", "/completions", "/embeddings"} {
		base = strings.TrimSuffix(base, suffix)
	}
	if base == "" {
		if pk.Provider != "" && pk.Provider != storage.AdapterOpenAI {
			return nil, fmt.Errorf("provider key %q has no api_base for provider %q", pk.DisplayName, pk.Provider)
		}
		base = DefaultOpenAIBase
	}
	if base == "https://api.openai.com" {
		base += "/v1"
	}
	u, err := url.Parse(base + "/chat/completions")
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("provider key %q has an unusable api_base", pk.DisplayName)
	}
	return u, nil
}

func resolveTarget(m *storage.Model, pk *ProviderKey) *Target {
	t := &Target{
		ID: m.ID, Name: m.DisplayName, ModelName: m.ModelName, ModelNameJSON: jsonString(m.ModelName),
		ProviderKey: pk, ServedBy: []string{m.DisplayName}, Err: pk.Err,
		Cooldown: resolveCooldown(m.Cooldown),
	}
	to := resolveTimeouts(m)
	t.Timeout, t.StreamHeaderTimeout, t.StreamFirstTimeout, t.StreamIdleTimeout = to.timeout, to.header, to.first, to.idle
	if m.Retries != nil {
		t.Retries, t.RetriesSet = *m.Retries, true
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
