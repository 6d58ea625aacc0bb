package storage

import (
	"math"
	"time"
)

// Bounds of limit fields: a bigger value is a typo, not a limit.
const (
	// MaxRateLimit caps rpm, rpd, tpm and tpd.
	MaxRateLimit = 1_000_000_000_000
	// MaxConcurrency caps a concurrency limit.
	MaxConcurrency = 1_000_000
	// MaxBudgetUSD caps a budget's amount.
	MaxBudgetUSD = 1e9
)

// Budget periods: calendar periods in UTC (a day from 00:00, a week from
// Monday 00:00, a month from the 1st at 00:00).
const (
	BudgetDay   = "day"
	BudgetWeek  = "week"
	BudgetMonth = "month"
)

// RateLimit is the rate limit of a caller key or a model: requests per
// minute and per day, tokens (prompt plus completion) per minute and per
// day, and requests in flight at once. A field that is omitted or 0 is no
// limit on that dimension. On a caller key it counts every request made
// with the key; on a model, every request that asks for the model by name
// (the group alias for a routing model); as a direct model's
// ProviderLimit, every request sent to that upstream deployment, whichever
// name the caller asked for.
type RateLimit struct {
	RPM         int64 `json:"rpm,omitempty"`
	RPD         int64 `json:"rpd,omitempty"`
	TPM         int64 `json:"tpm,omitempty"`
	TPD         int64 `json:"tpd,omitempty"`
	Concurrency int64 `json:"concurrency,omitempty"`
}

// IsZero reports whether r limits nothing (a nil r included).
func (r *RateLimit) IsZero() bool {
	return r == nil || (r.RPM == 0 && r.RPD == 0 && r.TPM == 0 && r.TPD == 0 && r.Concurrency == 0)
}

// Budget is a spend cap in USD per calendar period in UTC, counted from the
// cost of each call (so only calls to priced models count).
type Budget struct {
	AmountUSD float64 `json:"amount_usd"`
	// Period is BudgetDay, BudgetWeek or BudgetMonth.
	Period string `json:"period"`
}

func (r *RateLimit) validate(field string) error {
	if r == nil {
		return nil
	}
	for _, f := range []struct {
		name string
		v    int64
		max  int64
	}{
		{"rpm", r.RPM, MaxRateLimit}, {"rpd", r.RPD, MaxRateLimit},
		{"tpm", r.TPM, MaxRateLimit}, {"tpd", r.TPD, MaxRateLimit},
		{"concurrency", r.Concurrency, MaxConcurrency},
	} {
		if f.v < 0 || f.v > f.max {
			return FieldErrorf(field+"."+f.name, "must be between 0 (no limit) and %d", f.max)
		}
	}
	return nil
}

func (b *Budget) validate(field string) error {
	if b == nil {
		return nil
	}
	if math.IsNaN(b.AmountUSD) || math.IsInf(b.AmountUSD, 0) || b.AmountUSD <= 0 || b.AmountUSD > MaxBudgetUSD {
		return FieldErrorf(field+".amount_usd", "must be a number of USD above 0 and at most %g", float64(MaxBudgetUSD))
	}
	switch b.Period {
	case BudgetDay, BudgetWeek, BudgetMonth:
		return nil
	case "":
		return FieldErrorf(field+".period", "is required (day, week or month)")
	}
	return FieldErrorf(field+".period", "must be day, week or month (got %q)", b.Period)
}

// LimitUsage is what a running gateway counts now against the limits of a
// caller key (or a model): requests in flight, requests and tokens in the
// sliding minute and day windows, and the spend of the budget's current
// period. Stores never keep it; the admin API fills it in from the live
// limiter on a single-resource read, when the key has limits.
type LimitUsage struct {
	Concurrency int64 `json:"concurrency"`
	RPM         int64 `json:"rpm"`
	RPD         int64 `json:"rpd"`
	TPM         int64 `json:"tpm"`
	TPD         int64 `json:"tpd"`
	// BudgetSpentUSD is the spend in the budget's current period, and
	// BudgetResetsAt the start of the next one; both only with a budget.
	BudgetSpentUSD *float64   `json:"budget_spent_usd,omitempty"`
	BudgetResetsAt *time.Time `json:"budget_resets_at,omitempty"`
}
