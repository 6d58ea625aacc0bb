package limit

import (
	"fmt"
	"time"
)

// Scope is the kind of thing a limit is set on.
type Scope string

// The scopes a limit can be set on.
const (
	ScopeCallerKey Scope = "caller_key"
	ScopeModel     Scope = "model"
	ScopeTarget    Scope = "target"
)

// Dimension is what a limit counts.
type Dimension string

// The dimensions of a limit.
const (
	DimRPM         Dimension = "rpm"
	DimRPD         Dimension = "rpd"
	DimTPM         Dimension = "tpm"
	DimTPD         Dimension = "tpd"
	DimConcurrency Dimension = "concurrency"
	DimBudget      Dimension = "budget"
)

// Period is the calendar period of a spend budget, in UTC.
type Period string

// The budget periods: a day from 00:00 UTC, a week from Monday 00:00 UTC,
// a month from the 1st at 00:00 UTC.
const (
	PeriodDay   Period = "day"
	PeriodWeek  Period = "week"
	PeriodMonth Period = "month"
)

// Valid reports whether p is one of the three periods.
func (p Period) Valid() bool {
	return p == PeriodDay || p == PeriodWeek || p == PeriodMonth
}

// Budget is a spend cap per calendar period. A Budget with a zero amount or
// a Period other than the three is no limit (validation is the storage
// layer's).
type Budget struct {
	AmountUSD float64
	Period    Period
}

// Limits are the limits of one scope. A zero field (or a nil Budget, or a
// Budget with a zero amount) means no limit on that dimension.
type Limits struct {
	RPM         int64
	RPD         int64
	TPM         int64
	TPD         int64
	Concurrency int64
	Budget      *Budget
}

// IsZero reports whether l limits nothing.
func (l *Limits) IsZero() bool {
	return l.RPM <= 0 && l.RPD <= 0 && l.TPM <= 0 && l.TPD <= 0 && l.Concurrency <= 0 && !l.hasBudget()
}

func (l *Limits) hasBudget() bool {
	return l.Budget != nil && l.Budget.AmountUSD > 0 && l.Budget.Period.Valid()
}

// Key names the state of one scope: a caller key id, a model id or a
// target id.
type Key struct {
	Scope Scope
	ID    string
}

// Subject is one scope a request is counted against, with the limits that
// apply to it now. Limits are read on every Acquire, so a changed limit
// takes effect on the next request.
type Subject struct {
	Key    Key
	Limits Limits
}

// Rejection says which limit refused a request and when to try again.
type Rejection struct {
	Scope     Scope
	ID        string
	Dimension Dimension
	// Limit is the limit that refused, in the dimension's unit (requests,
	// tokens, slots); for DimBudget see AmountUSD.
	Limit int64
	// AmountUSD is the budget that is spent, for DimBudget.
	AmountUSD float64
	// RetryAfter is how long until the limit frees: until enough old
	// admissions or tokens leave the window, until the next period for a
	// budget, or a short fixed value for concurrency.
	RetryAfter time.Duration
	// ResetAt is when the limit frees: the start of the next period for a
	// budget, now+RetryAfter otherwise.
	ResetAt time.Time
}

// Code names the scope and the dimension, such as "caller_key_rpm" or
// "model_budget".
func (r *Rejection) Code() string { return string(r.Scope) + "_" + string(r.Dimension) }

// InsufficientQuota reports whether the rejection is a spent budget
// (OpenAI's insufficient_quota) rather than a rate limit
// (rate_limit_exceeded).
func (r *Rejection) InsufficientQuota() bool { return r.Dimension == DimBudget }

// Error makes a Rejection usable as an error.
func (r *Rejection) Error() string {
	if r.Dimension == DimBudget {
		return fmt.Sprintf("%s %s budget of %.2f USD spent until %s", r.Scope, r.ID, r.AmountUSD, r.ResetAt.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s %s over its %s limit of %d, retry after %s", r.Scope, r.ID, r.Dimension, r.Limit, FormatReset(r.RetryAfter))
}

// ConcurrencyRetryAfter is the Retry-After of a concurrency rejection: a
// slot frees when some request ends, which the limiter cannot predict, so
// it answers a short, honest value.
const ConcurrencyRetryAfter = time.Second
