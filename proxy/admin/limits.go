package admin

import (
	"cmp"
	"net/http"
	"slices"

	"github.com/aisix/aisix/storage"
)

// LimitScopeTarget is the scope of a direct model's provider_limit in
// GET /admin/v1/limits (the deployment's own limit, by the model's id).
const LimitScopeTarget = "target"

// LimitRow is one row of GET /admin/v1/limits: a caller key, a model or a
// direct model's provider_limit (scope target) that has any limit, with
// what the running limiter counts against it now.
type LimitRow struct {
	// Scope is LimitScopeCallerKey, LimitScopeModel or LimitScopeTarget.
	Scope string `json:"scope"`
	ID    string `json:"id"`
	// Name is the display name; caller keys may have none.
	Name string `json:"name,omitempty"`
	// RateLimit is the rate limit (for a target: its provider_limit).
	RateLimit storage.RateLimit `json:"rate_limit"`
	// Budget is the spend budget; caller keys and models only.
	Budget *storage.Budget `json:"budget,omitempty"`
	// Usage is what the limiter counts now.
	Usage storage.LimitUsage `json:"usage"`
	// Rejected counts the requests the limit refused (for a target: the
	// tries it skipped) since the server started.
	Rejected int64 `json:"rejected"`
	// AtLimit names the dimensions whose usage has reached the limit now:
	// rpm, rpd, tpm, tpd, concurrency, and budget when its spend has
	// reached the amount. The server fills it in from the fields above.
	AtLimit []string `json:"at_limit"`
}

// LimitDim is one dimension a rate limit sets: its name (rpm, rpd, tpm,
// tpd, concurrency), the limit, and the usage against it.
type LimitDim struct {
	Name  string
	Limit int64
	Used  int64
}

// DimsOf lists the dimensions rl limits, in the order rpm, rpd, tpm, tpd,
// concurrency, with u's usage of each; none for a nil rl.
func DimsOf(rl *storage.RateLimit, u storage.LimitUsage) []LimitDim {
	if rl == nil {
		return nil
	}
	var out []LimitDim
	for _, d := range []LimitDim{
		{"rpm", rl.RPM, u.RPM}, {"rpd", rl.RPD, u.RPD}, {"tpm", rl.TPM, u.TPM}, {"tpd", rl.TPD, u.TPD},
		{"concurrency", rl.Concurrency, u.Concurrency},
	} {
		if d.Limit > 0 {
			out = append(out, d)
		}
	}
	return out
}

// AtLimitOf names the dimensions of rl and b that u has reached, in the
// order rpm, rpd, tpm, tpd, concurrency, budget; empty, not nil, when none.
func AtLimitOf(rl *storage.RateLimit, b *storage.Budget, u storage.LimitUsage) []string {
	out := []string{}
	for _, d := range DimsOf(rl, u) {
		if d.Used >= d.Limit {
			out = append(out, d.Name)
		}
	}
	if b != nil && b.AmountUSD > 0 && u.BudgetSpentUSD != nil && *u.BudgetSpentUSD >= b.AmountUSD {
		out = append(out, "budget")
	}
	return out
}

// limitRows returns Config.Limits' rows with at_limit filled in, sorted by
// scope then name (then id); none without Config.Limits.
func (s *Server) limitRows() []LimitRow {
	rows := []LimitRow{}
	if s.limits != nil {
		rows = append(rows, s.limits()...)
	}
	for i := range rows {
		rows[i].AtLimit = AtLimitOf(&rows[i].RateLimit, rows[i].Budget, rows[i].Usage)
	}
	slices.SortFunc(rows, func(a, b LimitRow) int {
		return cmp.Or(cmp.Compare(a.Scope, b.Scope), cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID))
	})
	return rows
}

// limitPage is the body of GET /admin/v1/limits.
type limitPage struct {
	Limits []LimitRow `json:"limits"`
}

func (s *Server) listLimits(_ http.ResponseWriter, _ *http.Request) (response, error) {
	return response{status: http.StatusOK, body: limitPage{Limits: s.limitRows()}}, nil
}

// targetLimits returns the rows of scope target by id, for models/status.
func targetLimits(rows []LimitRow) map[string]LimitRow {
	out := map[string]LimitRow{}
	for _, r := range rows {
		if r.Scope == LimitScopeTarget {
			out[r.ID] = r
		}
	}
	return out
}
