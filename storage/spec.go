package storage

import (
	"encoding/json"
	"fmt"
)

// The stored forms of a model's spec and of a caller key's limits, which
// every database store (storage/sqlite, storage/postgres) keeps as JSON.
// They are the storage format, so they have their own types rather than
// reusing this package's JSON tags, which serve the admin API: renaming an
// API field must not change what is on disk.

// modelSpec is the stored JSON of a model: every field that no constraint
// needs. A direct model's provider key and a routing model's targets are
// columns and rows of their own.
type modelSpec struct {
	Provider      string         `json:"provider,omitempty"`
	ModelName     string         `json:"model_name,omitempty"`
	Timeout       *int64         `json:"timeout,omitempty"`
	StreamTimeout *int64         `json:"stream_timeout,omitempty"`
	Retries       *int           `json:"retries,omitempty"`
	Cooldown      *cooldownSpec  `json:"cooldown,omitempty"`
	Price         *priceSpec     `json:"price,omitempty"`
	RateLimit     *rateLimitSpec `json:"rate_limit,omitempty"`
	Budget        *budgetSpec    `json:"budget,omitempty"`
	ProviderLimit *rateLimitSpec `json:"provider_limit,omitempty"`
	Routing       *routingSpec   `json:"routing,omitempty"`
}

// priceSpec is a direct model's price, USD per million tokens.
type priceSpec struct {
	Input       float64 `json:"input"`
	Output      float64 `json:"output"`
	CachedInput float64 `json:"cached_input,omitempty"`
}

type cooldownSpec struct {
	Enabled            *bool `json:"enabled,omitempty"`
	DefaultSeconds     *int  `json:"default_seconds,omitempty"`
	MaxSeconds         *int  `json:"max_seconds,omitempty"`
	HonorRetryAfter    *bool `json:"honor_retry_after,omitempty"`
	TriggerStatuses    []int `json:"trigger_statuses,omitempty"`
	TriggerOnTimeout   *bool `json:"trigger_on_timeout,omitempty"`
	TriggerOnTransport *bool `json:"trigger_on_transport,omitempty"`
}

// routingSpec is the routing block without its targets.
type routingSpec struct {
	Strategy           string         `json:"strategy,omitempty"`
	Retries            *int           `json:"retries,omitempty"`
	MaxFallbacks       *int           `json:"max_fallbacks,omitempty"`
	RetryOn429         *bool          `json:"retry_on_429,omitempty"`
	FallbackOnStatuses []int          `json:"fallback_on_statuses,omitempty"`
	WhenAllUnavailable string         `json:"when_all_unavailable,omitempty"`
	Timeout            *int64         `json:"timeout,omitempty"`
	StreamFailure      *StreamFailure `json:"stream_failure,omitempty"`
	Hedge              *Hedge         `json:"hedge,omitempty"`
}

// rateLimitSpec is the stored form of a RateLimit: in a model's spec
// (rate_limit, provider_limit) and in a caller key's rate_limit column.
type rateLimitSpec struct {
	RPM         int64 `json:"rpm,omitempty"`
	RPD         int64 `json:"rpd,omitempty"`
	TPM         int64 `json:"tpm,omitempty"`
	TPD         int64 `json:"tpd,omitempty"`
	Concurrency int64 `json:"concurrency,omitempty"`
}

// budgetSpec is the stored form of a Budget: in a model's spec and in a
// caller key's budget column.
type budgetSpec struct {
	AmountUSD float64 `json:"amount_usd"`
	Period    string  `json:"period"`
}

func toRateLimitSpec(r *RateLimit) *rateLimitSpec {
	if r == nil {
		return nil
	}
	return &rateLimitSpec{RPM: r.RPM, RPD: r.RPD, TPM: r.TPM, TPD: r.TPD, Concurrency: r.Concurrency}
}

func (r *rateLimitSpec) rateLimit() *RateLimit {
	if r == nil {
		return nil
	}
	return &RateLimit{RPM: r.RPM, RPD: r.RPD, TPM: r.TPM, TPD: r.TPD, Concurrency: r.Concurrency}
}

func toBudgetSpec(b *Budget) *budgetSpec {
	if b == nil {
		return nil
	}
	return &budgetSpec{AmountUSD: b.AmountUSD, Period: b.Period}
}

func (b *budgetSpec) budget() *Budget {
	if b == nil {
		return nil
	}
	return &Budget{AmountUSD: b.AmountUSD, Period: b.Period}
}

// EncodeModelSpec returns the stored JSON of m: every field but its id,
// display name, provider key and routing targets.
func EncodeModelSpec(m *Model) ([]byte, error) {
	sp := modelSpec{
		Provider:      m.Provider,
		ModelName:     m.ModelName,
		Timeout:       m.Timeout,
		StreamTimeout: m.StreamTimeout,
		Retries:       m.Retries,
		RateLimit:     toRateLimitSpec(m.RateLimit),
		Budget:        toBudgetSpec(m.Budget),
		ProviderLimit: toRateLimitSpec(m.ProviderLimit),
	}
	// The stored forms convert field for field (a field added to either
	// side stops the conversion compiling, so the stored shape is decided
	// on purpose).
	if c := m.Cooldown; c != nil {
		cs := cooldownSpec(*c)
		sp.Cooldown = &cs
	}
	if p := m.Price; p != nil {
		ps := priceSpec(*p)
		sp.Price = &ps
	}
	if r := m.Routing; r != nil {
		sp.Routing = &routingSpec{
			Strategy:           r.Strategy,
			Retries:            r.Retries,
			MaxFallbacks:       r.MaxFallbacks,
			RetryOn429:         r.RetryOn429,
			FallbackOnStatuses: r.FallbackOnStatuses,
			WhenAllUnavailable: r.WhenAllUnavailable,
			Timeout:            r.Timeout,
			StreamFailure:      r.StreamFailure,
			Hedge:              r.Hedge,
		}
	}
	b, err := json.Marshal(sp)
	if err != nil {
		return nil, fmt.Errorf("encode model spec: %w", err)
	}
	return b, nil
}

// DecodeModelSpec fills m from its stored spec (EncodeModelSpec's). A
// model of kind KindRouting gets a non-nil Routing, whose Targets the
// caller fills. The error names m.ID and says "decode spec".
func DecodeModelSpec(m *Model, kind string, spec []byte) error {
	var sp modelSpec
	if err := json.Unmarshal(spec, &sp); err != nil {
		return fmt.Errorf("decode spec of model %q: %w", m.ID, err)
	}
	m.Provider = sp.Provider
	m.ModelName = sp.ModelName
	m.Timeout = sp.Timeout
	m.StreamTimeout = sp.StreamTimeout
	m.Retries = sp.Retries
	m.RateLimit = sp.RateLimit.rateLimit()
	m.Budget = sp.Budget.budget()
	m.ProviderLimit = sp.ProviderLimit.rateLimit()
	if c := sp.Cooldown; c != nil {
		cd := Cooldown(*c)
		m.Cooldown = &cd
	}
	if p := sp.Price; p != nil {
		mp := ModelPrice(*p)
		m.Price = &mp
	}
	if kind == KindRouting {
		r := sp.Routing
		if r == nil {
			r = &routingSpec{}
		}
		m.Routing = &Routing{
			Strategy:           r.Strategy,
			Retries:            r.Retries,
			MaxFallbacks:       r.MaxFallbacks,
			RetryOn429:         r.RetryOn429,
			FallbackOnStatuses: r.FallbackOnStatuses,
			WhenAllUnavailable: r.WhenAllUnavailable,
			Timeout:            r.Timeout,
			StreamFailure:      r.StreamFailure,
			Hedge:              r.Hedge,
		}
	}
	return nil
}

// EncodeKeyLimits returns the stored JSON of a caller key's rate limit and
// budget, nil for one that is unset (a NULL column).
func EncodeKeyLimits(k *APIKey) (rateLimit, budget []byte, err error) {
	if k.RateLimit != nil {
		if rateLimit, err = json.Marshal(toRateLimitSpec(k.RateLimit)); err != nil {
			return nil, nil, fmt.Errorf("encode rate_limit: %w", err)
		}
	}
	if k.Budget != nil {
		if budget, err = json.Marshal(toBudgetSpec(k.Budget)); err != nil {
			return nil, nil, fmt.Errorf("encode budget: %w", err)
		}
	}
	return rateLimit, budget, nil
}

// DecodeKeyLimits decodes a caller key's stored rate limit and budget
// (EncodeKeyLimits's); nil is unset. The error names the column ("decode
// rate_limit: …").
func DecodeKeyLimits(rateLimit, budget []byte) (*RateLimit, *Budget, error) {
	var (
		rl *rateLimitSpec
		b  *budgetSpec
	)
	if rateLimit != nil {
		if err := json.Unmarshal(rateLimit, &rl); err != nil {
			return nil, nil, fmt.Errorf("decode rate_limit: %w", err)
		}
	}
	if budget != nil {
		if err := json.Unmarshal(budget, &b); err != nil {
			return nil, nil, fmt.Errorf("decode budget: %w", err)
		}
	}
	return rl.rateLimit(), b.budget(), nil
}

// CheckRevision returns ErrRevisionMismatch when want is set and differs
// from got, the stored revision of the kind's resource id.
func CheckRevision(kind, id string, want, got int64) error {
	if want != 0 && want != got {
		return Errorf(ErrRevisionMismatch,
			"%s %q is at revision %d, not %d: it was changed by someone else; reload and retry", kind, id, got, want)
	}
	return nil
}
