package routing

import (
	"time"

	"github.com/aisix/aisix/storage"
)

// Defaults that bound every upstream call a model leaves unbounded. No
// request waits on an upstream without a bound, whatever is configured; the
// README's defaults table lists these.
const (
	// DefaultTimeout bounds one non-streaming attempt when the model sets
	// no timeout. A long generation sends its headers only at the end, so
	// minutes are legitimate; it is half the OpenAI SDK's own 10-minute
	// default, so a caller with that SDK still sees one failover.
	DefaultTimeout = 5 * time.Minute
	// DefaultStreamHeaderTimeout bounds the wait for a streaming attempt's
	// response headers when the model sets neither stream_timeout nor
	// timeout: the commonest outage, a host that accepts connections and
	// never answers, fails over within it.
	DefaultStreamHeaderTimeout = 30 * time.Second
	// DefaultStreamFirstChunkTimeout bounds, from the start of a streaming
	// attempt, the wait for its first content chunk once headers have come:
	// an upstream that answered is alive, and slow first tokens (long
	// prompts, reasoning models) are normal.
	DefaultStreamFirstChunkTimeout = 60 * time.Second
	// DefaultStreamIdleTimeout bounds every gap between chunks once a
	// stream has started answering.
	DefaultStreamIdleTimeout = 20 * time.Second
	// DefaultConnectTimeout bounds the TCP connect and TLS handshake.
	DefaultConnectTimeout = 5 * time.Second
)

// Effective is what a model's settings come to once defaults are applied:
// the values the proxy enforces. The admin API and `aisix model get` show
// it so nobody has to guess.
type Effective struct {
	// Direct models.
	Timeout                 time.Duration
	StreamHeaderTimeout     time.Duration
	StreamFirstChunkTimeout time.Duration
	StreamIdleTimeout       time.Duration
	ConnectTimeout          time.Duration
	Retries                 int
	CooldownEnabled         bool
	CooldownDefault         time.Duration
	CooldownMax             time.Duration
	CooldownTriggers        []int

	// Routing models.
	Strategy           string
	RoutingRetries     int
	MaxFallbacks       int // distinct targets after the first; -1 means all
	RetryOn429         bool
	RoutingTimeout     time.Duration // 0: none beyond the attempts' own bounds
	WhenAllUnavailable string
	// StreamFailure is stream_failure's mode ("error" when unset) and
	// Continuations its max_continuations (0 with mode error).
	StreamFailure string
	Continuations int
	// HedgeAfter is the fixed hedge delay; HedgeP95 hedges at the first
	// target's own p95 time to first token; neither: no hedging.
	HedgeAfter time.Duration
	HedgeP95   bool
}

// EffectiveOf resolves m's settings with the defaults applied.
func EffectiveOf(m *storage.Model) Effective {
	if r := m.Routing; r != nil {
		e := Effective{
			Strategy:           r.Strategy,
			MaxFallbacks:       -1,
			RetryOn429:         r.RetryOn429 == nil || *r.RetryOn429,
			RoutingTimeout:     millis(r.Timeout),
			WhenAllUnavailable: r.WhenAllUnavailable,
			StreamFailure:      storage.StreamFailureError,
		}
		if sf := r.StreamFailure; sf != nil && sf.Mode == storage.StreamFailureContinue {
			e.StreamFailure, e.Continuations = sf.Mode, max(sf.MaxContinuations, 1)
		}
		if h := r.Hedge; h != nil {
			e.HedgeAfter, e.HedgeP95 = time.Duration(h.AfterMS)*time.Millisecond, h.After == storage.HedgeAfterP95
		}
		if e.Strategy == "" {
			e.Strategy = storage.StrategyFailover
		}
		if e.WhenAllUnavailable == "" {
			e.WhenAllUnavailable = storage.WhenAllUnavailableTryAnyway
		}
		if r.Retries != nil {
			e.RoutingRetries = *r.Retries
		}
		if r.MaxFallbacks != nil {
			e.MaxFallbacks = *r.MaxFallbacks
		}
		return e
	}
	st := resolveTimeouts(m)
	cd := resolveCooldown(m.Cooldown)
	e := Effective{
		Timeout:                 st.timeout,
		StreamHeaderTimeout:     st.header,
		StreamFirstChunkTimeout: st.first,
		StreamIdleTimeout:       st.idle,
		ConnectTimeout:          DefaultConnectTimeout,
		CooldownEnabled:         !cd.Off,
		CooldownDefault:         cd.Default,
		CooldownMax:             cd.Max,
	}
	if m.Retries != nil {
		e.Retries = *m.Retries
	}
	if !cd.Off {
		for code := 100; code < 600; code++ {
			if cd.triggers.has(code) {
				e.CooldownTriggers = append(e.CooldownTriggers, code)
			}
		}
	}
	return e
}

// timeouts are a direct model's resolved attempt bounds.
type timeouts struct {
	timeout, header, first, idle time.Duration
}

// resolveTimeouts applies the defaults: timeout bounds a non-streaming
// attempt; stream_timeout (else timeout, as the reference product does)
// bounds a stream's headers, its first chunk and every gap alike; with
// neither set, the stream defaults apply.
func resolveTimeouts(m *storage.Model) timeouts {
	t := timeouts{timeout: millis(m.Timeout)}
	if t.timeout == 0 {
		t.timeout = DefaultTimeout
	}
	st := millis(m.StreamTimeout)
	if st == 0 {
		st = millis(m.Timeout)
	}
	if st > 0 {
		t.header, t.first, t.idle = st, st, st
		return t
	}
	t.header, t.first, t.idle = DefaultStreamHeaderTimeout, DefaultStreamFirstChunkTimeout, DefaultStreamIdleTimeout
	return t
}
