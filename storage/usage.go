package storage

import (
	"context"
	"slices"
	"strings"
	"time"
)

// UsageRecord is one upstream attempt in the usage ledger: the answer of a
// request and every failed attempt before it each have their own record.
// It names the caller key by id (and its display name at the time), never
// by the key or its hash.
type UsageRecord struct {
	// Time is when the attempt started (UTC).
	Time   time.Time
	CallID string
	// Attempt is the attempt's number in its request, from 1.
	Attempt int
	KeyID   string
	KeyName string
	// Endpoint is the operation the caller called ("chat.completions",
	// "embeddings", "responses", "messages", …).
	Endpoint string
	// Alias is the model the caller asked for (a routing model or a direct
	// one); Target the direct model that was called, Provider its provider
	// key's vendor label.
	Alias    string
	Target   string
	Provider string
	Stream   bool
	// Status is the upstream's HTTP status (0 when none came); Outcome
	// "ok" for an answer, else the failure's label ("429", "timeout", …);
	// StatusReason the failure's reason ("rate_limited", …), "" when ok.
	Status       int
	Outcome      string
	StatusReason string
	Latency      time.Duration
	// TTFT is a stream's time to its first content; 0 otherwise.
	TTFT time.Duration
	// Tokens, as the upstream reported them (0 when it did not).
	InputTokens, OutputTokens, CachedTokens, ReasoningTokens int64
	// Cost is in USD; Priced is false when the target had no price or
	// the upstream reported no tokens, and then the store keeps no cost
	// (NULL), never a guess.
	Cost   float64
	Priced bool
}

// OK reports whether the attempt answered.
func (r *UsageRecord) OK() bool { return r.Outcome == "ok" }

// Usage grouping dimensions of a UsageQuery.
const (
	UsageByDay    = "day"
	UsageByHour   = "hour"
	UsageByKey    = "key"
	UsageByAlias  = "alias"
	UsageByTarget = "target"
)

// UsageGroups lists every accepted grouping dimension.
var UsageGroups = []string{UsageByDay, UsageByHour, UsageByKey, UsageByAlias, UsageByTarget}

// UsageQuery selects and groups ledger records.
type UsageQuery struct {
	// From and To bound the records' Time: From inclusive, To exclusive;
	// a zero time leaves that side open.
	From, To time.Time
	// KeyID, Alias and Target, when set, keep only the records that match.
	KeyID  string
	Alias  string
	Target string
	// GroupBy lists grouping dimensions (UsageBy*), at most one of day and
	// hour (UTC). None sums everything in one row.
	GroupBy []string
}

// Validate checks the query: known, distinct dimensions, day or hour but
// not both, From not after To. Its errors are ErrInvalid.
func (q *UsageQuery) Validate() error {
	for i, g := range q.GroupBy {
		if !slices.Contains(UsageGroups, g) {
			return FieldErrorf("group_by", "must list some of %s (got %q)", strings.Join(UsageGroups, ", "), g)
		}
		if slices.Contains(q.GroupBy[:i], g) {
			return FieldErrorf("group_by", "lists %s twice", g)
		}
	}
	if q.Groups(UsageByDay) && q.Groups(UsageByHour) {
		return FieldErrorf("group_by", "groups by day or by hour, not both")
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return FieldErrorf("to", "must not be before from (%s)", q.From.UTC().Format(time.RFC3339))
	}
	return nil
}

// Groups reports whether the query groups by dimension g.
func (q *UsageQuery) Groups(g string) bool { return slices.Contains(q.GroupBy, g) }

// UsageTotals are the sums over a set of ledger records.
type UsageTotals struct {
	// Attempts counts records (upstream attempts); Successes the answered
	// ones, Failures the rest.
	Attempts  int64 `json:"attempts"`
	Successes int64 `json:"successes"`
	Failures  int64 `json:"failures"`

	InputTokens     int64 `json:"input_tokens"`
	OutputTokens    int64 `json:"output_tokens"`
	CachedTokens    int64 `json:"cached_tokens"`
	ReasoningTokens int64 `json:"reasoning_tokens"`

	// CostUSD sums the priced records only; Unpriced counts the answered
	// attempts that have no cost (no price on the target, or no token
	// count from the upstream), so a total never hides them.
	CostUSD  float64 `json:"cost_usd"`
	Unpriced int64   `json:"unpriced"`
}

// Add adds o to t.
func (t *UsageTotals) Add(o UsageTotals) {
	t.Attempts += o.Attempts
	t.Successes += o.Successes
	t.Failures += o.Failures
	t.InputTokens += o.InputTokens
	t.OutputTokens += o.OutputTokens
	t.CachedTokens += o.CachedTokens
	t.ReasoningTokens += o.ReasoningTokens
	t.CostUSD += o.CostUSD
	t.Unpriced += o.Unpriced
}

// UsageRow is one group of a UsageReport. Only the fields of the query's
// dimensions are set.
type UsageRow struct {
	// Time is the start of the row's UTC day or hour.
	Time    *time.Time `json:"time,omitempty"`
	KeyID   string     `json:"key_id,omitempty"`
	KeyName string     `json:"key_name,omitempty"`
	Alias   string     `json:"alias,omitempty"`
	Target  string     `json:"target,omitempty"`
	UsageTotals
}

// UsageReport is the answer to a UsageQuery: the rows, ordered by time,
// then key, alias and target, and their totals.
type UsageReport struct {
	Rows   []UsageRow  `json:"rows"`
	Totals UsageTotals `json:"totals"`
}

// UsageReader answers usage queries: the SQLite store, and the admin API
// client in remote mode.
type UsageReader interface {
	// QueryUsage sums the records q selects, grouped as q says. It
	// returns ErrInvalid for a query that fails Validate; Rows is empty
	// (not nil) when nothing matches.
	QueryUsage(ctx context.Context, q UsageQuery) (UsageReport, error)
}

// UsageStore is the usage ledger's store. It is apart from Store so that
// a config store need not keep a ledger; the SQLite store implements both.
type UsageStore interface {
	UsageReader
	// AppendUsage stores records; the caller bounds the batch, and may
	// reuse the slice once it returns. It does not change the store
	// revision (the ledger is not configuration).
	AppendUsage(ctx context.Context, records []UsageRecord) error
	// PruneUsage deletes the records from before before and returns how
	// many it deleted.
	PruneUsage(ctx context.Context, before time.Time) (int64, error)
}

// ParseUsageGroups parses a comma-separated list of grouping dimensions
// ("key,alias"), trimming spaces and dropping empty items; Validate checks
// the result.
func ParseUsageGroups(s string) []string {
	var out []string
	for _, g := range strings.Split(s, ",") {
		if g = strings.ToLower(strings.TrimSpace(g)); g != "" {
			out = append(out, g)
		}
	}
	return out
}

// AddGroup adds one group a database store summed for q to rep: it sets
// Failures from Attempts and Successes, and Time from bucketMS (the start
// of the group's UTC day or hour, in Unix milliseconds) when q groups by
// day or hour, and adds the group to the totals. The one row of a query
// without groups over no records is left out.
func (rep *UsageReport) AddGroup(q *UsageQuery, r UsageRow, bucketMS int64) {
	r.Failures = r.Attempts - r.Successes
	if q.Groups(UsageByDay) || q.Groups(UsageByHour) {
		t := time.UnixMilli(bucketMS).UTC()
		r.Time = &t
	}
	if r.Attempts == 0 {
		return
	}
	rep.Totals.Add(r.UsageTotals)
	rep.Rows = append(rep.Rows, r)
}
