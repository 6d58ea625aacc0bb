package tui

import (
	"context"
	"time"
)

// StatusSource is everything the dashboard needs from a running server. The
// CLI adapts the admin API client to it. Both methods are polled from
// bubbletea commands, never from Update or View, and must honour ctx.
type StatusSource interface {
	// Fetch returns the current state of every model and routing group.
	// The dashboard calls it about once per Options.RefreshEvery.
	Fetch(ctx context.Context) (Snapshot, error)
	// Events returns the routing events with a sequence number greater than
	// since, oldest first, and the cursor to pass as since on the next call
	// (normally the Seq of the last event returned, or since itself when there
	// is nothing new). since is 0 on the first call, which may return the
	// server's recent history. A cursor lower than since tells the dashboard
	// the server restarted; it then starts again from 0.
	Events(ctx context.Context, since uint64) ([]Event, uint64, error)
}

// Model statuses, as reported by the server in ModelRow.Status and
// GroupTarget.Status. Any other value is shown as is, after the known bad ones.
const (
	StatusHealthy   = "healthy"
	StatusCooldown  = "cooldown"
	StatusProbing   = "probing"
	StatusUnhealthy = "unhealthy"
)

// Event kinds the feed knows how to word (the server's routing events);
// other kinds are shown generically. Model is always the name the caller
// asked for (a direct model or a routing group such as chat-prod) and
// Target the direct model concerned.
const (
	// EventAttemptFailed: one upstream attempt on Target failed with Reason;
	// Detail is the short error.
	EventAttemptFailed = "attempt_failed"
	// EventFailover: the request moved on to Target after Detail (the
	// previous target) failed with Reason.
	EventFailover = "failover"
	// EventCooldownEntered: Target went into cooldown because of Reason;
	// Detail may give the length.
	EventCooldownEntered = "cooldown_entered"
	// EventCooldownLeft: Target answered again after a cooldown.
	EventCooldownLeft = "cooldown_left"
	// EventProbe: one request tested Target after its cooldown ran out;
	// Detail is ProbeStarted, ProbeSucceeded or ProbeFailed.
	EventProbe = "probe"
	// EventServed: a request that needed more than one attempt (or a probe)
	// was served by Target; Detail may give the attempt trail.
	EventServed = "served"
	// EventConfigReloaded: a new configuration is live; Detail says which.
	EventConfigReloaded = "config_reloaded"
	// EventLimited: a limit of the gateway's own held a request back.
	// With Target, the walk skipped Target at its provider limit (Reason
	// local_rate_limit); without, a caller key's or model's limit refused
	// the request (Reason is the code, such as caller_key_rpm). Detail
	// says which limit and when it frees: "rpm 60, frees in 41s".
	EventLimited = "limited"
)

// LimitReasonTarget is the Reason of an EventLimited that skipped a
// target at its provider limit.
const LimitReasonTarget = "local_rate_limit"

// Scopes of a LimitRow.
const (
	LimitScopeCallerKey = "caller_key"
	LimitScopeModel     = "model"
	LimitScopeTarget    = "target"
)

// Details of an EventProbe.
const (
	ProbeStarted   = "started"
	ProbeSucceeded = "succeeded"
	ProbeFailed    = "failed"
)

// Snapshot is one poll of the server's runtime state. Counters are
// cumulative since StartedAt; the dashboard derives rates from successive
// snapshots itself.
type Snapshot struct {
	// Server is the address the data came from; Options.Server wins if set.
	Server string
	// Version is the server's version.
	Version string
	// StartedAt is when the server started; a change means it restarted.
	StartedAt time.Time
	// ServerTime is the server's clock when the snapshot was taken. It is
	// optional; when set, countdowns are corrected for clock skew between
	// the server and this terminal.
	ServerTime time.Time
	// Models are the direct models (those that call a provider).
	Models []ModelRow
	// Groups are the routing groups (multi-target models).
	Groups []GroupRow
	// ConfigErrors are the stored rows the server does not serve as
	// stored (skipped, or answering a configuration error); none when the
	// configuration is sound.
	ConfigErrors []ConfigError
	// Dependencies are the engines the server depends on (its store, and
	// Redis when limits are shared); each that is not ok gets a warning
	// line at the top of the screen. None from a server that tracks none.
	Dependencies []Dependency
	// RowsFrom, when set, is when the models, groups and limits shown were
	// read: the server answered, but could not read them (its store is
	// away), so they are the last ones read.
	RowsFrom time.Time
	// Limits are the caller keys, models and targets (a direct model's
	// provider limit) that have limits, with what the server counts
	// against them now; none when nothing has a limit.
	Limits []LimitRow
}

// Dependency is one engine the server depends on.
type Dependency struct {
	// Name is "store" or "redis".
	Name string
	// Status is "ok" or "unreachable".
	Status string
	// Since is when it entered Status.
	Since time.Time
	// Revision is, for the store, the revision the server serves (its
	// last snapshot while the store is away); 0 when not told.
	Revision int64
	// Impact says what the server does without it ("limits counted per
	// replica, cooldowns local").
	Impact string
}

// LimitRow is one caller key, model or target with limits.
type LimitRow struct {
	// Scope is LimitScopeCallerKey, LimitScopeModel or LimitScopeTarget.
	Scope string
	ID    string
	// Name is the display name; caller keys may have none.
	Name string
	// Dims are the limited dimensions (rpm, rpd, tpm, tpd, concurrency),
	// each with its usage now.
	Dims []LimitDim
	// BudgetUSD is the budget's amount, 0 when there is none;
	// BudgetSpentUSD the current period's spend.
	BudgetUSD      float64
	BudgetSpentUSD float64
	// Rejected counts the requests the limits refused (a target: the
	// tries skipped) since the server started; the dashboard derives the
	// rate itself.
	Rejected int64
}

// LimitDim is one limited dimension: Used of Limit.
type LimitDim struct {
	Name  string
	Used  int64
	Limit int64
}

// ConfigError is one stored row the server does not serve as stored.
type ConfigError struct {
	// Kind is the row's kind: provider_key, model or api_key.
	Kind string
	ID   string
	// Name is its display name; caller keys may have none.
	Name string
	// Reason says what is wrong with it.
	Reason string
}

// ModelRow is the runtime state of one direct model.
type ModelRow struct {
	ID       string
	Name     string
	Provider string
	// Status is one of StatusHealthy, StatusCooldown, StatusProbing,
	// StatusUnhealthy.
	Status string
	// CooldownUntil is when the cooldown ends (server clock); zero when not
	// cooling down.
	CooldownUntil time.Time
	// Reason is why the model last failed (transport_error,
	// upstream_rate_limited, upstream_model_not_found, …); empty when
	// healthy.
	Reason string
	// SecretNeedsReentry is set when the model's provider key now points
	// at another host than its secret was entered for: the server sends
	// no credential until the secret is entered again.
	SecretNeedsReentry bool

	// Requests and Failures are cumulative attempt counters.
	Requests uint64
	Failures uint64
	// InFlight is the number of attempts running now.
	InFlight int64
	// TokensIn and TokensOut are the cumulative prompt and completion
	// tokens of the model's answers; CostUSD is what they cost at the
	// model's price, 0 when it has none.
	TokensIn  uint64
	TokensOut uint64
	CostUSD   float64

	LatencyP50 time.Duration
	LatencyP95 time.Duration
	TTFTP50    time.Duration

	LastError     string
	LastErrorAt   time.Time
	LastSuccessAt time.Time

	// Config is shown in the detail view, in order. It must never hold a
	// secret; as a second line of defence, values of keys that look like
	// secrets are hidden anyway.
	Config []KV
}

// KV is one configuration entry shown in the detail view.
type KV struct {
	Key   string
	Value string
}

// GroupRow is one routing group (a multi-target model such as chat-prod).
type GroupRow struct {
	Name string
	// Strategy is the routing strategy, e.g. failover.
	Strategy string
	// Targets are in configured order. The dashboard lists the available
	// ones first, in that order (the order they would be tried now), then
	// the skipped ones with why.
	Targets []GroupTarget
	// Serving is the target requests go to now; empty means the first
	// target that is not skipped.
	Serving string
}

// GroupTarget is one target of a routing group.
type GroupTarget struct {
	Name   string
	Status string
	// Skipped is true when the target would not be tried now.
	Skipped bool
	// Why says why it is skipped (e.g. "cooldown: transport_error").
	Why string
}

// Event is one routing event from the server's event ring.
type Event struct {
	Seq  uint64
	Time time.Time
	// Kind is one of the Event* constants (others are shown generically).
	Kind   string
	Model  string
	Target string
	Reason string
	Detail string
	// CallID is the request the event belongs to (the x-aisix-call-id of
	// its answer and the call_id of the access log); empty for events of
	// no request, or from a server that does not say.
	CallID string
}
