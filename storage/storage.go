// Package storage holds aisix's domain types (provider keys, models, routing
// groups, caller keys), their validation rules, the domain errors and the
// Store interface that every backend implements: storage/sqlite on a local
// file, and the admin API client for remote mode.
//
// It imports nothing but the standard library.
package storage

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Meta is what the store keeps about every row.
type Meta struct {
	// Revision grows on every write. It is taken from one store-wide counter,
	// so a row's revision is also the store revision that last wrote it.
	Revision  int64     `json:"-"`
	CreatedAt time.Time `json:"-"`
	UpdatedAt time.Time `json:"-"`
}

// Adapter names: the wire families a provider key can speak.
const (
	AdapterOpenAI      = "openai"
	AdapterAnthropic   = "anthropic"
	AdapterAzureOpenAI = "azure-openai"
	AdapterBedrock     = "bedrock"
	AdapterVertex      = "vertex"
	// AdapterGemini is Google AI Studio's Gemini API
	// (generativelanguage.googleapis.com), a plain API key sent as
	// x-goog-api-key.
	AdapterGemini = "gemini"
)

// Adapters lists every accepted adapter name.
var Adapters = []string{AdapterOpenAI, AdapterAnthropic, AdapterAzureOpenAI, AdapterBedrock, AdapterVertex, AdapterGemini}

// ProviderKey is an upstream credential plus where to send it.
type ProviderKey struct {
	ID          string
	DisplayName string
	Provider    string
	Adapter     string
	// Secret is the plaintext credential. Stores that cannot reveal it (the
	// admin API client) leave it empty; SecretHint is always set on reads.
	Secret string
	// SecretHint is the masked form of Secret (see MaskSecret).
	SecretHint string
	APIBase    string
	// SecretHost is the host name (lower case, no port) the stored secret
	// was entered for. The store sets it whenever a secret is written, from
	// BaseHost at that moment; clients never set it. A secret is only ever
	// sent to that host: see SecretBound.
	SecretHost string
	// ForwardHeaders names caller request headers (canonical form) that may
	// go upstream beyond the adapter's own allowlist.
	ForwardHeaders []string
	// APIVersion is the Azure OpenAI api-version ("2024-10-21",
	// "2025-01-01-preview" or "v1"); only azure-openai keys may set it, and
	// empty means DefaultAzureAPIVersion.
	APIVersion string
	// TLSCAFile, TLSCertFile and TLSKeyFile are PEM files on the gateway's
	// machine for upstreams behind a private CA or requiring a client
	// certificate (a private gateway to self-hosted models): the CA bundle
	// verifies the upstream instead of the system roots, and the
	// certificate and key (set together) are presented to it. They are
	// read when the proxy builds its routing snapshot; verification is
	// never skipped.
	TLSCAFile   string
	TLSCertFile string
	TLSKeyFile  string
	Meta
}

// HasUpstreamTLS reports whether the key sets any upstream TLS file.
func (pk *ProviderKey) HasUpstreamTLS() bool {
	return pk.TLSCAFile != "" || pk.TLSCertFile != "" || pk.TLSKeyFile != ""
}

// DefaultAzureAPIVersion is the api-version of an azure-openai provider key
// without api_version.
const DefaultAzureAPIVersion = "2024-10-21"

// DefaultOpenAIBase is the base URL of an openai provider key without
// api_base (and with provider empty or "openai").
const DefaultOpenAIBase = "https://api.openai.com/v1"

// DefaultAnthropicBase is the base URL of an anthropic provider key
// without api_base (and with provider empty or "anthropic").
const DefaultAnthropicBase = "https://api.anthropic.com"

// DefaultGeminiBase is the base URL of a gemini provider key without
// api_base (and with provider empty, "gemini" or "google").
const DefaultGeminiBase = "https://generativelanguage.googleapis.com"

// BaseURL is the base URL requests go to: api_base trimmed, or the
// adapter's default when there is one ("" when there is none).
func (pk *ProviderKey) BaseURL() string {
	base := strings.TrimRight(strings.TrimSpace(pk.APIBase), "/")
	if base != "" {
		if pk.EffectiveAdapter() == AdapterAzureOpenAI && azureResourceRe.MatchString(base) {
			// A bare Azure resource name.
			return "https://" + base + ".openai.azure.com"
		}
		return base
	}
	switch adapter := pk.EffectiveAdapter(); {
	case adapter == AdapterOpenAI && (pk.Provider == "" || pk.Provider == AdapterOpenAI):
		return DefaultOpenAIBase
	case adapter == AdapterAnthropic && (pk.Provider == "" || pk.Provider == AdapterAnthropic):
		return DefaultAnthropicBase
	case adapter == AdapterGemini && isGeminiVendor(pk.Provider):
		return DefaultGeminiBase
	}
	return ""
}

// isGeminiVendor reports whether provider names Google's own Gemini API
// (whose default base a gemini key may use).
func isGeminiVendor(provider string) bool {
	return provider == "" || provider == AdapterGemini || provider == "google"
}

// BaseHost is the lower-case host name (no port) of BaseURL, "" when it
// has none.
func (pk *ProviderKey) BaseHost() string {
	u, err := url.Parse(pk.BaseURL())
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Hostname())
}

// SecretBound reports whether the stored secret may be sent to BaseHost:
// api_base still points at the host the secret was entered for. After an
// api_base change to another host without a new secret it is false, and
// requests go there without the credential until the secret is entered
// again or api_base points back.
func (pk *ProviderKey) SecretBound() bool {
	return pk.SecretHost == pk.BaseHost()
}

// EffectiveAdapter is the adapter a provider key dispatches to: its Adapter,
// or its Provider when that names an adapter.
func (pk *ProviderKey) EffectiveAdapter() string {
	if pk.Adapter != "" {
		return pk.Adapter
	}
	for _, a := range Adapters {
		if pk.Provider == a {
			return a
		}
	}
	return ""
}

// Strategies of a routing model.
const (
	StrategyFailover   = "failover"
	StrategyRoundRobin = "round_robin"
	StrategyWeighted   = "weighted"
)

// Policies for when every routing candidate is cooling down.
const (
	WhenAllUnavailableFail      = "fail"
	WhenAllUnavailableTryAnyway = "try_anyway"
)

// Model kinds.
const (
	KindDirect  = "direct"
	KindRouting = "routing"
)

// Model is either a direct model (Provider, ModelName, ProviderKeyID) that
// calls one upstream model, or a routing model (Routing) that spreads calls
// over direct models. The JSON tags give the admin API's value shape.
type Model struct {
	ID          string `json:"-"`
	DisplayName string `json:"display_name"`

	Provider      string `json:"provider,omitempty"`
	ModelName     string `json:"model_name,omitempty"`
	ProviderKeyID string `json:"provider_key_id,omitempty"`
	// Timeout bounds one non-streaming attempt, in milliseconds; nil or 0 is none.
	Timeout *int64 `json:"timeout,omitempty"`
	// StreamTimeout bounds the wait for the first chunk and every gap between
	// chunks, in milliseconds; nil or 0 falls back to Timeout.
	StreamTimeout *int64 `json:"stream_timeout,omitempty"`
	// Retries is the number of extra tries on this model after a retryable failure.
	Retries  *int      `json:"retries,omitempty"`
	Cooldown *Cooldown `json:"cooldown,omitempty"`
	// Price is what the upstream charges for this model; nil when unknown,
	// and then its calls are recorded without a cost. Direct models only.
	Price *ModelPrice `json:"price,omitempty"`

	// RateLimit limits the requests that ask for this model by name (the
	// alias, for a routing model); Budget caps their spend.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	Budget    *Budget    `json:"budget,omitempty"`
	// ProviderLimit is the upstream deployment's own limit (direct models
	// only): every request sent to this model counts, whichever name the
	// caller asked for, and a routing walk skips the model while it is at
	// its limit (local_rate_limit) instead of sending a request that would
	// come back 429.
	ProviderLimit *RateLimit `json:"provider_limit,omitempty"`

	Routing *Routing `json:"routing,omitempty"`

	// LimitUsage is read-only and never stored: the admin API's read of
	// one model fills it from the running gateway's limiter (usage against
	// RateLimit and Budget).
	LimitUsage *LimitUsage `json:"limit_usage,omitempty"`

	Meta `json:"-"`
}

// Kind is KindRouting for a routing model and KindDirect otherwise.
func (m *Model) Kind() string {
	if m.Routing != nil {
		return KindRouting
	}
	return KindDirect
}

// Cooldown tunes how a direct model is taken out of rotation after failures.
// Every field is optional; nil means the default.
type Cooldown struct {
	Enabled            *bool `json:"enabled,omitempty"`
	DefaultSeconds     *int  `json:"default_seconds,omitempty"`
	MaxSeconds         *int  `json:"max_seconds,omitempty"`
	HonorRetryAfter    *bool `json:"honor_retry_after,omitempty"`
	TriggerStatuses    []int `json:"trigger_statuses,omitempty"`
	TriggerOnTimeout   *bool `json:"trigger_on_timeout,omitempty"`
	TriggerOnTransport *bool `json:"trigger_on_transport,omitempty"`
}

// ModelPrice is a direct model's price in USD per million tokens: prompt
// tokens (Input), completion tokens (Output, reasoning included), and
// prompt tokens the provider read from its cache (CachedInput; 0 or
// omitted prices them at Input). A call's cost is its tokens times these.
type ModelPrice struct {
	Input       float64 `json:"input"`
	Output      float64 `json:"output"`
	CachedInput float64 `json:"cached_input,omitempty"`
}

// Routing is the routing block of a routing model.
type Routing struct {
	Strategy           string   `json:"strategy,omitempty"`
	Targets            []Target `json:"targets"`
	Retries            *int     `json:"retries,omitempty"`
	MaxFallbacks       *int     `json:"max_fallbacks,omitempty"`
	RetryOn429         *bool    `json:"retry_on_429,omitempty"`
	FallbackOnStatuses []int    `json:"fallback_on_statuses,omitempty"`
	WhenAllUnavailable string   `json:"when_all_unavailable,omitempty"`
	// Timeout bounds the whole request, retries and failovers included, in ms.
	Timeout *int64 `json:"timeout,omitempty"`
	// StreamFailure is what a committed stream that fails does; nil is
	// mode error (the terminal error event).
	StreamFailure *StreamFailure `json:"stream_failure,omitempty"`
	// Hedge starts the next target of the walk in parallel when a
	// chat-completions stream's first target is slow to its first
	// content; nil is no hedging.
	Hedge *Hedge `json:"hedge,omitempty"`
}

// Hedge is a routing model's hedged first token: when the first target
// of a streaming chat completion has sent no content AfterMS
// milliseconds (1..MaxHedgeAfterMS) after the attempt started, or its
// own recent p95 time to first token (After "p95"), the next target
// is started in parallel; the first to send content serves the request.
// Exactly one of AfterMS and After is set.
type Hedge struct {
	AfterMS int64  `json:"after_ms,omitempty"`
	After   string `json:"after,omitempty"`
}

// HedgeAfterP95 is Hedge.After's one value.
const HedgeAfterP95 = "p95"

// MaxHedgeAfterMS is the longest fixed hedge delay: ten minutes.
const MaxHedgeAfterMS = 600000

// StreamFailure is a routing model's policy for a chat-completions stream
// that fails after its first content reached the caller: mode error ends
// it with a terminal error event; mode continue sends the conversation,
// with the text so far as a partial assistant turn, to the next healthy
// target and relays its continuation into the same stream, at most
// MaxContinuations times (1..3; 0 means 1).
type StreamFailure struct {
	Mode             string `json:"mode"`
	MaxContinuations int    `json:"max_continuations,omitempty"`
}

// Stream failure modes.
const (
	StreamFailureError    = "error"
	StreamFailureContinue = "continue"
)

// MaxContinuationsLimit is the most continuations a stream may have.
const MaxContinuationsLimit = 3

// Target is one entry of a routing model: the display name of a direct model.
type Target struct {
	Model  string `json:"model"`
	Weight *int   `json:"weight,omitempty"`
}

// APIKey is a caller key. Only the SHA-256 of the plaintext is stored.
type APIKey struct {
	ID          string
	DisplayName string
	// KeyHash is the lower-case hex SHA-256 of the plaintext key.
	KeyHash string
	// AllowedModels lists model display names the key may call; "*" allows
	// all. It is what clients read and write.
	AllowedModels []string
	// AllowedModelIDs is what the store keeps: the ids of the models named
	// in AllowedModels ("*" kept as is), in the same order. Stores set it on
	// read and ignore it on write, resolving names to ids instead. Renaming
	// a model keeps its callers; deleting a model removes it from every
	// key, so a new model with the same name is not granted to old keys.
	AllowedModelIDs []string
	ExpiresAt       *time.Time
	Disabled        bool
	// RateLimit limits the requests made with this key; Budget caps their
	// spend. nil is no limit.
	RateLimit *RateLimit
	Budget    *Budget
	// LimitUsage is read-only and never stored: the admin API's read of
	// one key fills it from the running gateway's limiter.
	LimitUsage *LimitUsage
	Meta
}

// Dataset is everything the proxy needs, read in one consistent transaction.
type Dataset struct {
	Revision     int64
	ProviderKeys []ProviderKey
	Models       []Model
	APIKeys      []APIKey
	// Unreadable lists stored rows that could not be decoded (written by a
	// newer binary, or edited by hand); they are left out of the lists
	// above, so one bad row never stops the rest from loading.
	Unreadable []UnreadableRow
}

// UnreadableRow is a stored row a store could not decode.
type UnreadableRow struct {
	// Kind is KindProviderKey, KindModelRow or KindAPIKey.
	Kind   string
	ID     string
	Name   string
	Reason string
}

// Row kinds of an UnreadableRow.
const (
	KindProviderKey = "provider_key"
	KindModelRow    = "model"
	KindAPIKey      = "api_key"
)

// Store is the management interface shared by the local SQLite store and the
// remote admin API client. Create methods assign ID and Meta and return the
// stored resource. Update methods replace the whole resource named by its ID.
//
// Errors: ErrNotFound for an unknown id; ErrConflict for a duplicate display
// name or key hash, or a delete of something still referenced; ErrInvalid for
// a resource that fails Validate or references a missing provider key,
// target or allowed model; ErrRevisionMismatch when ifRevision is non-zero and differs from
// the stored revision.
type Store interface {
	ListProviderKeys(ctx context.Context) ([]ProviderKey, error)
	GetProviderKey(ctx context.Context, id string) (ProviderKey, error)
	CreateProviderKey(ctx context.Context, pk ProviderKey) (ProviderKey, error)
	// UpdateProviderKey replaces a provider key. An empty Secret keeps the
	// stored one, so a client that never saw the secret can still edit the rest.
	UpdateProviderKey(ctx context.Context, pk ProviderKey, ifRevision int64) (ProviderKey, error)
	DeleteProviderKey(ctx context.Context, id string) error

	ListModels(ctx context.Context) ([]Model, error)
	GetModel(ctx context.Context, id string) (Model, error)
	CreateModel(ctx context.Context, m Model) (Model, error)
	UpdateModel(ctx context.Context, m Model, ifRevision int64) (Model, error)
	DeleteModel(ctx context.Context, id string) error

	ListAPIKeys(ctx context.Context) ([]APIKey, error)
	GetAPIKey(ctx context.Context, id string) (APIKey, error)
	CreateAPIKey(ctx context.Context, k APIKey) (APIKey, error)
	UpdateAPIKey(ctx context.Context, k APIKey, ifRevision int64) (APIKey, error)
	DeleteAPIKey(ctx context.Context, id string) error

	Close() error
}

// Source is what the proxy's config loader reads: a cheap revision probe to
// notice changes, and one consistent load of everything (secrets included).
type Source interface {
	// Revision returns the store-wide revision; it changes on every write,
	// whichever process made it.
	Revision(ctx context.Context) (int64, error)
	// Load reads the whole dataset in one transaction.
	Load(ctx context.Context) (Dataset, error)
}

// A DeltaSource can also load the dataset as the changes to one it loaded
// before, reading only the rows written since: at 10,000 caller keys, a
// reload after one write reads a few rows of them instead of all.
type DeltaSource interface {
	Source
	// LoadSince returns what Load would return now, given prev, a dataset
	// this source returned and that nobody modified. The result may share
	// prev's unchanged rows and slices; neither is modified afterwards.
	LoadSince(ctx context.Context, prev Dataset) (Dataset, error)
}

// MaskSecret returns a form of secret that is safe to show: a short prefix
// and the last four characters of a long secret, "***" otherwise. A JSON
// secret (one that starts with "{": the Entra ID, Bedrock and Vertex
// credentials) reveals nothing of its values: it is masked as its field
// names, sorted, each with the value "…", such as
// {"client_id":"…","client_secret":"…","tenant_id":"…"}, or as "***" when
// it is not a JSON object of strings.
func MaskSecret(secret string) string {
	if strings.HasPrefix(strings.TrimSpace(secret), "{") {
		return maskJSONSecret(secret)
	}
	if len(secret) < 16 {
		return "***"
	}
	return secret[:3] + "…" + secret[len(secret)-4:]
}

// maskJSONSecret masks a JSON object secret as its sorted field names.
func maskJSONSecret(secret string) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(secret), &fields); err != nil || len(fields) == 0 {
		return "***"
	}
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, name := range names {
		if i > 0 {
			b.WriteByte(',')
		}
		q, err := json.Marshal(name)
		if err != nil {
			return "***"
		}
		b.Write(q)
		b.WriteString(`:"…"`)
	}
	b.WriteByte('}')
	return b.String()
}
