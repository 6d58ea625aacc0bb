package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// This file holds the wire types of the admin API: what goes over HTTP, as
// opposed to the storage types. Secrets only ever travel inwards.

// Entry is the envelope of every GET, POST and PUT response: the resource's
// id, its value and the store revision of its last write. The CLI prints
// the same shape for -o json.
type Entry[T any] struct {
	ID        string     `json:"id"`
	Value     T          `json:"value"`
	Revision  int64      `json:"revision"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

func newEntry[T any](id string, v T, m storage.Meta) Entry[T] {
	return Entry[T]{ID: id, Value: v, Revision: m.Revision, CreatedAt: timePtr(m.CreatedAt), UpdatedAt: timePtr(m.UpdatedAt)}
}

// meta rebuilds the storage metadata an entry carries.
func (e *Entry[T]) meta() storage.Meta {
	m := storage.Meta{Revision: e.Revision}
	if e.CreatedAt != nil {
		m.CreatedAt = *e.CreatedAt
	}
	if e.UpdatedAt != nil {
		m.UpdatedAt = *e.UpdatedAt
	}
	return m
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// deleted is the body of a successful DELETE.
type deleted struct {
	Deleted bool   `json:"deleted"`
	ID      string `json:"id"`
}

// errorBody is the error envelope. Field is set, in addition to the message,
// when a validation error names one field; the client uses it to rebuild the
// storage.Error.
type errorBody struct {
	ErrorMsg string `json:"error_msg"`
	Field    string `json:"field,omitempty"`
	// Errors lists each error when there are several (an apply reports
	// every error of the configuration at once); ErrorMsg then holds all
	// their messages, one a line.
	Errors []errorBody `json:"errors,omitempty"`
	// Kind is set within Errors: invalid, not_found, conflict or
	// revision_mismatch.
	Kind string `json:"kind,omitempty"`
}

// providerKeyInput is the body of a provider key POST or PUT.
type providerKeyInput struct {
	DisplayName string `json:"display_name"`
	Provider    string `json:"provider"`
	Adapter     string `json:"adapter"`
	// Secret and APIKey are two spellings of the same field.
	Secret  *string `json:"secret"`
	APIKey  *string `json:"api_key"`
	APIBase string  `json:"api_base"`
	// ForwardHeaders replaces the list; omitted or [] forwards none.
	ForwardHeaders []string `json:"forward_headers"`
	// APIVersion is the Azure OpenAI api-version (azure-openai only).
	APIVersion string `json:"api_version,omitempty"`
	// TLSCAFile, TLSCertFile and TLSKeyFile are upstream TLS files on the
	// gateway's machine (storage.ProviderKey's); omitted is none.
	TLSCAFile   string `json:"tls_ca_file,omitempty"`
	TLSCertFile string `json:"tls_cert_file,omitempty"`
	TLSKeyFile  string `json:"tls_key_file,omitempty"`
	// SecretHost and SecretNeedsReentry are read-only: accepted, so that a
	// value read back can be sent again, and ignored (the store binds a
	// secret to a host itself).
	SecretHost         json.RawMessage `json:"secret_host,omitempty"`
	SecretNeedsReentry json.RawMessage `json:"secret_needs_reentry,omitempty"`
}

// LogValue keeps the secret out of any log line that mentions the input.
func (in providerKeyInput) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("display_name", in.DisplayName),
		slog.String("provider", in.Provider),
		slog.String("adapter", in.Adapter),
		slog.String("api_base", in.APIBase),
		slog.Any("forward_headers", in.ForwardHeaders),
		slog.String("api_version", in.APIVersion),
		slog.String("tls_ca_file", in.TLSCAFile),
		slog.String("tls_cert_file", in.TLSCertFile),
		slog.String("tls_key_file", in.TLSKeyFile),
		slog.String("secret", "REDACTED"),
	)
}

// secret returns the secret given under either spelling, and whether one was
// given at all.
func (in *providerKeyInput) secret() (string, bool, error) {
	switch {
	case in.Secret != nil && in.APIKey != nil:
		if *in.Secret != *in.APIKey {
			return "", false, storage.FieldErrorf("secret", "secret and api_key are two names for the same field; give one of them")
		}
		return *in.Secret, true, nil
	case in.Secret != nil:
		return *in.Secret, true, nil
	case in.APIKey != nil:
		return *in.APIKey, true, nil
	}
	return "", false, nil
}

// toStorage is the provider key the input describes, with the secret
// already resolved from its two spellings.
func (in *providerKeyInput) toStorage(id, secret string) storage.ProviderKey {
	return storage.ProviderKey{
		ID:             id,
		DisplayName:    in.DisplayName,
		Provider:       in.Provider,
		Adapter:        in.Adapter,
		Secret:         secret,
		APIBase:        in.APIBase,
		ForwardHeaders: in.ForwardHeaders,
		APIVersion:     in.APIVersion,
		TLSCAFile:      in.TLSCAFile,
		TLSCertFile:    in.TLSCertFile,
		TLSKeyFile:     in.TLSKeyFile,
	}
}

// looksMasked reports whether s is the masked form a GET returns rather than a
// real secret, so a value read back and sent again cannot replace the stored
// credential with "***".
func looksMasked(s string) bool {
	return s == "***" || strings.Contains(s, "…")
}

// ProviderKeyValue is the value of a provider key entry: the secret masked.
type ProviderKeyValue struct {
	DisplayName string `json:"display_name"`
	Provider    string `json:"provider,omitempty"`
	Adapter     string `json:"adapter,omitempty"`
	// Secret is masked (see storage.MaskSecret); never the plaintext. A
	// JSON secret shows only its field names: {"client_id":"…",…}.
	Secret  string `json:"secret"`
	APIBase string `json:"api_base,omitempty"`
	// ForwardHeaders are the caller headers (canonical names) sent
	// upstream beyond the adapter's own; omitted when none.
	ForwardHeaders []string `json:"forward_headers,omitempty"`
	// APIVersion is the Azure OpenAI api-version of an azure-openai key;
	// omitted when empty (the default, storage.DefaultAzureAPIVersion).
	APIVersion string `json:"api_version,omitempty"`
	// TLSCAFile, TLSCertFile and TLSKeyFile are the key's upstream TLS
	// files (paths, never their contents); omitted when unset.
	TLSCAFile   string `json:"tls_ca_file,omitempty"`
	TLSCertFile string `json:"tls_cert_file,omitempty"`
	TLSKeyFile  string `json:"tls_key_file,omitempty"`
	// SecretHost is the host the secret was entered for; the proxy sends
	// it nowhere else.
	SecretHost string `json:"secret_host"`
	// SecretNeedsReentry is set when api_base now names another host than
	// SecretHost: requests go there without the credential until the
	// secret is sent again (or api_base points back).
	SecretNeedsReentry bool `json:"secret_needs_reentry"`
}

// ProviderKeyEntry is the entry of pk as the API returns it: the secret is
// masked (pk.SecretHint, or storage.MaskSecret of pk.Secret).
func ProviderKeyEntry(pk storage.ProviderKey) Entry[ProviderKeyValue] {
	hint := pk.SecretHint
	if pk.Secret != "" || hint == "" {
		hint = storage.MaskSecret(pk.Secret)
	}
	v := ProviderKeyValue{
		DisplayName: pk.DisplayName,
		Provider:    pk.Provider,
		Adapter:     pk.Adapter,
		Secret:      hint,
		APIBase:     pk.APIBase,

		ForwardHeaders:     pk.ForwardHeaders,
		APIVersion:         pk.APIVersion,
		TLSCAFile:          pk.TLSCAFile,
		TLSCertFile:        pk.TLSCertFile,
		TLSKeyFile:         pk.TLSKeyFile,
		SecretHost:         pk.SecretHost,
		SecretNeedsReentry: !pk.SecretBound(),
	}
	return newEntry(pk.ID, v, pk.Meta)
}

// ModelValue is the value of a model entry: the model as stored, in the
// shape a POST or PUT sends, and the settings the proxy enforces for it
// once defaults apply.
type ModelValue struct {
	storage.Model
	// Effective is a DirectEffective or a RoutingEffective; read-only.
	// (storage.Model's LimitUsage, read-only too, is set only on a GET of
	// the one model, when it has limits and the server runs a limiter.)
	Effective any `json:"effective"`
}

// modelInput is the body of a model POST or PUT: storage.Model's shape,
// no unknown fields. A value read back may be sent again: its effective
// and limit_usage objects are accepted and ignored.
type modelInput struct{ storage.Model }

// UnmarshalJSON decodes a model strictly, dropping effective and
// limit_usage. (A struct embedding storage.Model beside an Effective field
// would do the same, but name fields "Model.timeout" in type errors.)
func (in *modelInput) UnmarshalJSON(b []byte) error {
	return decodeStrict(b, &in.Model, []string{"effective", "limit_usage"}, limitFields{
		"rate_limit": &storage.RateLimit{}, "budget": &storage.Budget{}, "provider_limit": &storage.RateLimit{},
	})
}

// limitFields are the limit objects of a body, by field name, each with a
// value to decode it into.
type limitFields map[string]any

// decodeStrict decodes the JSON object b into dst with no unknown fields,
// after dropping the read-only fields a value read back may carry. An
// unknown field inside one of the limit objects is named with its path
// (rate_limit.rps), which the decoder alone would not say.
func decodeStrict(b []byte, dst any, readOnly []string, limits limitFields) error {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	dropped := false
	for _, name := range readOnly {
		if _, ok := fields[name]; ok {
			delete(fields, name)
			dropped = true
		}
	}
	if dropped {
		var err error
		if b, err = json.Marshal(fields); err != nil {
			return err
		}
	}
	for name, v := range limits {
		raw, ok := fields[name]
		if !ok {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err := dec.Decode(v)
		if unknown, ok := strings.CutPrefix(fmt.Sprint(err), "json: unknown field "); ok {
			if field, err := strconv.Unquote(unknown); err == nil {
				path := name + "." + field
				return &apiError{status: http.StatusBadRequest, field: path, msg: fmt.Sprintf("unknown field %q", path)}
			}
		}
		// Any other error is the full decode's to report, with its path.
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(dst)
}

// DirectEffective is what a direct model's settings come to: every bound
// in milliseconds, never 0 (unbounded), since defaults fill what the model
// leaves unset.
type DirectEffective struct {
	TimeoutMs                 int64             `json:"timeout_ms"`
	StreamHeaderTimeoutMs     int64             `json:"stream_header_timeout_ms"`
	StreamFirstChunkTimeoutMs int64             `json:"stream_first_chunk_timeout_ms"`
	StreamIdleTimeoutMs       int64             `json:"stream_idle_timeout_ms"`
	ConnectTimeoutMs          int64             `json:"connect_timeout_ms"`
	Retries                   int               `json:"retries"`
	Cooldown                  EffectiveCooldown `json:"cooldown"`
}

// EffectiveCooldown is a direct model's cooldown once defaults apply.
type EffectiveCooldown struct {
	Enabled        bool  `json:"enabled"`
	DefaultSeconds int64 `json:"default_seconds"`
	MaxSeconds     int64 `json:"max_seconds"`
	// TriggerStatuses are the upstream statuses that start a cooldown, in
	// order; empty when cooldown is off.
	TriggerStatuses []int `json:"trigger_statuses"`
}

// RoutingEffective is what a routing model's settings come to.
type RoutingEffective struct {
	Strategy string `json:"strategy"`
	Retries  int    `json:"retries"`
	// MaxFallbacks is how many targets after the first a request may try:
	// the configured number, capped at the targets there are.
	MaxFallbacks int  `json:"max_fallbacks"`
	RetryOn429   bool `json:"retry_on_429"`
	// TimeoutMs bounds the whole request; 0 is none beyond the attempts'.
	TimeoutMs          int64  `json:"timeout_ms"`
	WhenAllUnavailable string `json:"when_all_unavailable"`
	// StreamFailure is what a committed stream that fails does: mode
	// "error" (the terminal error event) or "continue" with its
	// max_continuations.
	StreamFailure storage.StreamFailure `json:"stream_failure"`
	// Hedge is the hedged first token, null when the model does not hedge.
	Hedge *storage.Hedge `json:"hedge"`
}

// EffectiveOf is m's effective settings (routing.EffectiveOf) in the
// admin API's shape: a DirectEffective or a RoutingEffective.
func EffectiveOf(m *storage.Model) any {
	e := routing.EffectiveOf(m)
	if r := m.Routing; r != nil {
		most := max(len(r.Targets)-1, 0)
		fallbacks := e.MaxFallbacks
		if fallbacks < 0 || fallbacks > most {
			fallbacks = most
		}
		return RoutingEffective{
			Strategy:           e.Strategy,
			Retries:            e.RoutingRetries,
			MaxFallbacks:       fallbacks,
			RetryOn429:         e.RetryOn429,
			TimeoutMs:          e.RoutingTimeout.Milliseconds(),
			WhenAllUnavailable: e.WhenAllUnavailable,
			StreamFailure:      storage.StreamFailure{Mode: e.StreamFailure, MaxContinuations: e.Continuations},
			Hedge:              effectiveHedge(e),
		}
	}
	return DirectEffective{
		TimeoutMs:                 e.Timeout.Milliseconds(),
		StreamHeaderTimeoutMs:     e.StreamHeaderTimeout.Milliseconds(),
		StreamFirstChunkTimeoutMs: e.StreamFirstChunkTimeout.Milliseconds(),
		StreamIdleTimeoutMs:       e.StreamIdleTimeout.Milliseconds(),
		ConnectTimeoutMs:          e.ConnectTimeout.Milliseconds(),
		Retries:                   e.Retries,
		Cooldown: EffectiveCooldown{
			Enabled:         e.CooldownEnabled,
			DefaultSeconds:  int64(e.CooldownDefault / time.Second),
			MaxSeconds:      int64(e.CooldownMax / time.Second),
			TriggerStatuses: nonNil(e.CooldownTriggers),
		},
	}
}

// effectiveHedge is e's hedge in the API's shape, nil when none.
func effectiveHedge(e routing.Effective) *storage.Hedge {
	switch {
	case e.HedgeP95:
		return &storage.Hedge{After: storage.HedgeAfterP95}
	case e.HedgeAfter > 0:
		return &storage.Hedge{AfterMS: e.HedgeAfter.Milliseconds()}
	}
	return nil
}

// ModelEntry is the entry of m as the API returns it, effective settings
// included.
func ModelEntry(m storage.Model) Entry[ModelValue] {
	return newEntry(m.ID, ModelValue{Model: m, Effective: EffectiveOf(&m)}, m.Meta)
}

// apiKeyInput is the body of a caller key POST or PUT.
type apiKeyInput struct {
	DisplayName   string   `json:"display_name"`
	KeyHash       string   `json:"key_hash"`
	AllowedModels []string `json:"allowed_models"`
	// AllowedModelIDs is read-only: accepted, so that a value read back
	// can be sent again, and ignored (allowed_models decides).
	AllowedModelIDs json.RawMessage `json:"allowed_model_ids,omitempty"`
	// ExpiresAt is parsed by hand to name the field in the error.
	ExpiresAt *string            `json:"expires_at"`
	Disabled  bool               `json:"disabled"`
	RateLimit *storage.RateLimit `json:"rate_limit,omitempty"`
	Budget    *storage.Budget    `json:"budget,omitempty"`
	// LimitUsage is read-only: accepted, so that a value read back can be
	// sent again, and ignored.
	LimitUsage json.RawMessage `json:"limit_usage,omitempty"`
}

// UnmarshalJSON decodes a caller key strictly, naming an unknown field
// inside rate_limit or budget with its path.
func (in *apiKeyInput) UnmarshalJSON(b []byte) error {
	type plain apiKeyInput // without this method
	return decodeStrict(b, (*plain)(in), nil, limitFields{"rate_limit": &storage.RateLimit{}, "budget": &storage.Budget{}})
}

func (in *apiKeyInput) toStorage(id string) (storage.APIKey, error) {
	k := storage.APIKey{
		ID:            id,
		DisplayName:   in.DisplayName,
		KeyHash:       in.KeyHash,
		AllowedModels: in.AllowedModels,
		Disabled:      in.Disabled,
		RateLimit:     in.RateLimit,
		Budget:        in.Budget,
	}
	if in.ExpiresAt != nil && *in.ExpiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *in.ExpiresAt)
		if err != nil {
			return k, storage.FieldErrorf("expires_at", "must be an RFC 3339 time such as 2030-01-02T15:04:05Z (got %q)", *in.ExpiresAt)
		}
		k.ExpiresAt = &t
	}
	return k, nil
}

// APIKeyValue is the value of a caller key entry.
type APIKeyValue struct {
	DisplayName string `json:"display_name,omitempty"`
	KeyHash     string `json:"key_hash"`
	// AllowedModels are the current names of the allowed models, in order.
	AllowedModels []string `json:"allowed_models"`
	// AllowedModelIDs are their ids, which is what the store keeps
	// ("*" as is); read-only.
	AllowedModelIDs []string   `json:"allowed_model_ids"`
	ExpiresAt       *time.Time `json:"expires_at,omitempty"`
	Disabled        bool       `json:"disabled"`
	// RateLimit and Budget are omitted when the key has none.
	RateLimit *storage.RateLimit `json:"rate_limit,omitempty"`
	Budget    *storage.Budget    `json:"budget,omitempty"`
	// LimitUsage is what the running gateway counts now against those
	// limits; read-only, only on a GET of the one key, when it has limits
	// and the server runs a limiter.
	LimitUsage *storage.LimitUsage `json:"limit_usage,omitempty"`
}

// APIKeyEntry is the entry of k as the API returns it; allowed_models and
// allowed_model_ids are never null.
func APIKeyEntry(k storage.APIKey) Entry[APIKeyValue] {
	return newEntry(k.ID, APIKeyValue{
		DisplayName:     k.DisplayName,
		KeyHash:         k.KeyHash,
		AllowedModels:   nonNil(k.AllowedModels),
		AllowedModelIDs: nonNil(k.AllowedModelIDs),
		ExpiresAt:       k.ExpiresAt,
		Disabled:        k.Disabled,
		RateLimit:       k.RateLimit,
		Budget:          k.Budget,
		LimitUsage:      k.LimitUsage,
	}, k.Meta)
}

// nonNil returns s, or an empty slice for nil, so that JSON shows [] and
// not null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// rotated is the body of a successful rotate: the new entry and the only copy
// of the plaintext key that will ever exist outside the caller.
type rotated struct {
	Entry     Entry[APIKeyValue] `json:"entry"`
	Plaintext string             `json:"plaintext"`
}

// LogValue keeps the plaintext key out of any log line.
func (r rotated) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", r.Entry.ID), slog.String("plaintext", "REDACTED"))
}

// Model statuses beyond the health states.
const (
	// StatusNotApplicable is the status of a routing model: runtime state is
	// tracked on the direct models it targets.
	StatusNotApplicable = "not_applicable"
)

// StatusRow is one row of GET /admin/v1/models/status.
type StatusRow struct {
	ID          string `json:"id"`
	DisplayName string `json:"display_name"`
	// Kind is storage.KindDirect or storage.KindRouting.
	Kind string `json:"kind"`
	// Status is one of the health.State* values for a direct model and
	// StatusNotApplicable for a routing model.
	Status string `json:"status"`
	// CooldownUntil is set only while a cooldown is still running.
	CooldownUntil *SystemTime `json:"cooldown_until,omitempty"`
	// StatusReason says why the model last failed; empty when unknown.
	StatusReason string `json:"status_reason,omitempty"`
	// DirectStats is set on direct rows only.
	*DirectStats
}

// DirectStats are the live counters of a direct model, for the dashboard.
type DirectStats struct {
	Provider string `json:"provider"`
	// Endpoints are the proxy endpoints the model serves
	// (routing.EndpointsOf its provider key's adapter); a routing group
	// skips a target on an endpoint it does not serve.
	Endpoints     []string   `json:"endpoints,omitempty"`
	Requests      uint64     `json:"requests"`
	Failures      uint64     `json:"failures"`
	InFlight      int64      `json:"in_flight"`
	Probing       bool       `json:"probing,omitempty"`
	LatencyP50Ms  float64    `json:"latency_p50_ms"`
	LatencyP95Ms  float64    `json:"latency_p95_ms"`
	TTFTP50Ms     float64    `json:"ttft_p50_ms"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrorAt   *time.Time `json:"last_error_at,omitempty"`
	LastSuccessAt *time.Time `json:"last_success_at,omitempty"`
	// TokensIn, TokensOut and CostUSD are cumulative since the server
	// started (cost at the model's price; 0 without one).
	TokensIn  uint64  `json:"tokens_in"`
	TokensOut uint64  `json:"tokens_out"`
	CostUSD   float64 `json:"cost_usd"`
	// SecretNeedsReentry is set when the model's provider key points at
	// another host than the one its secret was entered for: requests go
	// without the credential until the secret is entered again.
	SecretNeedsReentry bool `json:"secret_needs_reentry,omitempty"`
	// ProviderLimit is the model's provider_limit, when it has one;
	// ProviderLimitUsage what the limiter counts against it now (when the
	// server runs a limiter), and AtProviderLimit is set while a dimension
	// is at its limit: a routing group skips the target (local_rate_limit)
	// until it frees.
	ProviderLimit      *storage.RateLimit  `json:"provider_limit,omitempty"`
	ProviderLimitUsage *storage.LimitUsage `json:"provider_limit_usage,omitempty"`
	AtProviderLimit    bool                `json:"at_provider_limit,omitempty"`
}

// SystemTime is a point in time as the reference product prints it: whole
// seconds and nanoseconds since the Unix epoch.
type SystemTime struct {
	Secs  int64 `json:"secs_since_epoch"`
	Nanos int64 `json:"nanos_since_epoch"`
}

// NewSystemTime converts t.
func NewSystemTime(t time.Time) SystemTime {
	return SystemTime{Secs: t.Unix(), Nanos: int64(t.Nanosecond())}
}

// Time converts st back to a time.Time.
func (st SystemTime) Time() time.Time {
	return time.Unix(st.Secs, st.Nanos)
}

func millis(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// Info describes the running server (GET /admin/v1/info).
type Info struct {
	Version    string    `json:"version"`
	StartedAt  time.Time `json:"started_at"`
	ServerTime time.Time `json:"server_time"`
	// StoreRevision is the store-wide revision; 0 when the store cannot
	// tell, or cannot be reached (see Dependencies).
	StoreRevision int64 `json:"store_revision"`
	// ConfigRevision is the store revision the proxy's routing snapshot was
	// built from; 0 when unknown. Equal to StoreRevision once every write is
	// live.
	ConfigRevision int64 `json:"config_revision"`
	// ConfigErrors lists the stored rows the proxy could not use (skipped,
	// or kept but undispatchable); everything else is served. Never null.
	ConfigErrors []ConfigError `json:"config_errors"`
	// ResourcesFile is serve's file mode (--resources), when it is on.
	ResourcesFile *ResourcesFile `json:"resources_file,omitempty"`
	// Dependencies are the engines the server depends on ("store", and
	// "redis" when limits are shared), each ok or unreachable since when;
	// while the store is unreachable the server keeps serving its last
	// snapshot (Revision). Never null; empty when the server tracks none.
	Dependencies []Dependency `json:"dependencies"`
}

// Dependency is one engine the server depends on, as /readyz reports it.
type Dependency = deps.State

// ResourcesFile is the state of serve's resources file: the last apply
// that succeeded and the last one that was refused (the file is applied at
// start-up and on SIGHUP).
type ResourcesFile struct {
	Path string `json:"path"`
	// AppliedAt and AppliedRevision are those of the last good apply.
	AppliedAt       *time.Time `json:"applied_at,omitempty"`
	AppliedRevision int64      `json:"applied_revision,omitempty"`
	// LastError is why the last attempt was refused, when the attempt
	// after the last good apply failed; RejectedAt is when.
	LastError  string     `json:"last_error,omitempty"`
	RejectedAt *time.Time `json:"rejected_at,omitempty"`
}

// ConfigError is one stored row the proxy's snapshot could not use.
type ConfigError struct {
	// Kind is "provider_key", "model" or "api_key".
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Reason string `json:"reason"`
}

// Event is one routing event for the dashboard: a failed attempt, a
// failover, a cooldown entered or left, a probe, a configuration reload.
type Event struct {
	// Seq numbers events from 1, in publication order.
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`
	// Model is the alias the caller asked for.
	Model string `json:"model,omitempty"`
	// Target is the display name of the direct model concerned.
	Target   string `json:"target,omitempty"`
	TargetID string `json:"target_id,omitempty"`
	Reason   string `json:"reason,omitempty"`
	Detail   string `json:"detail,omitempty"`
	CallID   string `json:"call_id,omitempty"`
}

// eventPage is the body of GET /admin/v1/events.
type eventPage struct {
	Events []Event `json:"events"`
	// Next is the cursor to pass as since on the next call.
	Next uint64 `json:"next"`
}

// providerKeyTestInput is the optional body of
// POST /admin/v1/provider_keys/{id}/test. The answer is a keycheck.Result.
type providerKeyTestInput struct {
	// Model is the upstream model name to ask for; empty is the
	// model_name of the key's first direct model (by display name).
	Model string `json:"model,omitempty"`
	// TimeoutMs bounds the test; 0 is keycheck.DefaultTimeout.
	TimeoutMs int64 `json:"timeout_ms,omitempty"`
}

// request is the check the input asks for.
func (in *providerKeyTestInput) request() (keycheck.Request, error) {
	if in.TimeoutMs < 0 || in.TimeoutMs > keycheck.MaxTimeout.Milliseconds() {
		return keycheck.Request{}, storage.FieldErrorf("timeout_ms", "must be between 0 (the default, %d) and %d", keycheck.DefaultTimeout.Milliseconds(), keycheck.MaxTimeout.Milliseconds())
	}
	return keycheck.Request{Model: strings.TrimSpace(in.Model), Timeout: time.Duration(in.TimeoutMs) * time.Millisecond}, nil
}

// applyInput is the body of POST /admin/v1/apply: a whole configuration
// and how to apply it (storage.ApplyOptions). Each resource has the shape
// its own POST takes, secrets included, except that a direct model's
// provider_key_id holds its provider key's display_name: references are
// by name, as in a configuration file.
type applyInput struct {
	// Desired is required: an empty configuration is {} (which, with
	// prune, deletes everything).
	Desired    *desiredInput `json:"desired"`
	Prune      bool          `json:"prune,omitempty"`
	DryRun     bool          `json:"dry_run,omitempty"`
	IfRevision int64         `json:"if_revision,omitempty"`
}

// desiredInput is a storage.Desired on the wire.
type desiredInput struct {
	ProviderKeys []providerKeyInput `json:"provider_keys"`
	Models       []modelInput       `json:"models"`
	APIKeys      []apiKeyInput      `json:"api_keys"`
}

// toStorage is the configuration the input describes, or every error its
// entries have (a provider key's secret given twice or masked, a caller
// key's expires_at that is not a time), each naming its entry as
// storage.Plan does.
func (in *desiredInput) toStorage() (storage.Desired, error) {
	d := storage.Desired{
		ProviderKeys: make([]storage.ProviderKey, 0, len(in.ProviderKeys)),
		Models:       make([]storage.Model, 0, len(in.Models)),
		APIKeys:      make([]storage.APIKey, 0, len(in.APIKeys)),
	}
	var errs []error
	for i := range in.ProviderKeys {
		pk := &in.ProviderKeys[i]
		secret, _, err := pk.secret()
		if err == nil && looksMasked(secret) {
			err = storage.FieldErrorf("secret", "is a masked value as shown by GET; send the real secret, or omit it to keep the stored one")
		}
		if err != nil {
			errs = append(errs, storage.ResourceError("provider_keys", pk.DisplayName, i, err))
		}
		d.ProviderKeys = append(d.ProviderKeys, pk.toStorage("", secret))
	}
	for i := range in.Models {
		d.Models = append(d.Models, in.Models[i].Model)
	}
	for i := range in.APIKeys {
		k, err := in.APIKeys[i].toStorage("")
		if err != nil {
			errs = append(errs, storage.ResourceError("api_keys", k.DisplayName, i, err))
		}
		d.APIKeys = append(d.APIKeys, k)
	}
	return d, errors.Join(errs...)
}

// desiredBody is d on the wire: what Client.Apply sends.
func desiredBody(d storage.Desired) *desiredInput {
	in := &desiredInput{
		ProviderKeys: make([]providerKeyInput, 0, len(d.ProviderKeys)),
		Models:       make([]modelInput, 0, len(d.Models)),
		APIKeys:      make([]apiKeyInput, 0, len(d.APIKeys)),
	}
	for _, pk := range d.ProviderKeys {
		in.ProviderKeys = append(in.ProviderKeys, providerKeyBody(pk))
	}
	for _, m := range d.Models {
		in.Models = append(in.Models, modelInput{m})
	}
	for _, k := range d.APIKeys {
		in.APIKeys = append(in.APIKeys, apiKeyBody(k))
	}
	return in
}
