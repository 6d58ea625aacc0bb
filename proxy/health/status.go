// Package health keeps the runtime state of every direct model: cooldowns,
// their reasons, probes, and live counters. It is keyed by model id, lives in
// memory, and survives config snapshot swaps.
package health

import "time"

// States a direct model can be in.
const (
	StateHealthy  = "healthy"
	StateCooldown = "cooldown"
	// StateProbing is a model whose cooldown has run out but which has not
	// answered since: the next request to it is a probe (half-open).
	StateProbing   = "probing"
	StateUnhealthy = "unhealthy"
)

// Status is a point-in-time copy of one model's runtime state.
type Status struct {
	State string
	// CooldownUntil is set while State is cooldown or probing.
	CooldownUntil time.Time
	// Reason says why the model last failed (transport_error, …); empty when healthy.
	Reason string

	Requests uint64
	Failures uint64
	InFlight int64

	LatencyP50 time.Duration
	LatencyP95 time.Duration
	TTFTP50    time.Duration

	LastError     string
	LastErrorAt   time.Time
	LastSuccessAt time.Time

	// ProbeInFlight is set while one request is testing a model whose
	// cooldown has run out.
	ProbeInFlight bool
	// Cooldowns counts how many times the model entered cooldown.
	Cooldowns uint64
	// TokensIn and TokensOut count the tokens of the model's answers as
	// their upstreams reported them, CostUSD their cost at the model's
	// price (0 without one); all cumulative since start.
	TokensIn, TokensOut uint64
	CostUSD             float64
}
