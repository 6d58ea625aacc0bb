// Package limits holds the rate limit and budget flags that `apikey` and
// `model` share (--rpm, --tpm, --budget 50/month, …) and how those
// commands print limits and their live usage.
package limits

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/storage"
)

// RateFlags are --rpm, --rpd, --tpm, --tpd and --concurrency, under a
// prefix (--provider-rpm …), and optionally the flag that removes them all.
type RateFlags struct {
	prefix, remove                  string
	rpm, rpd, tpm, tpd, concurrency int64
	none                            bool
}

type dimension struct {
	name  string // the flag's name without the prefix, and the JSON field
	short string // the column's name in Compact
	help  string
}

var dimensions = []dimension{
	{"rpm", "rpm", "requests per minute"},
	{"rpd", "rpd", "requests per day"},
	{"tpm", "tpm", "tokens (prompt plus completion) per minute"},
	{"tpd", "tpd", "tokens per day"},
	{"concurrency", "conc", "requests in flight at once"},
}

func (r *RateFlags) values() []*int64 {
	return []*int64{&r.rpm, &r.rpd, &r.tpm, &r.tpd, &r.concurrency}
}

func fields(l *storage.RateLimit) []*int64 {
	return []*int64{&l.RPM, &l.RPD, &l.TPM, &l.TPD, &l.Concurrency}
}

// Add registers the flags on fl: prefix is put before each name
// ("provider-"), what says what is limited, for the help text, and remove
// names the flag that removes every dimension ("" registers none).
func (r *RateFlags) Add(fl *pflag.FlagSet, prefix, what, remove string) {
	r.prefix, r.remove = prefix, remove
	vals := r.values()
	for i, d := range dimensions {
		fl.Int64Var(vals[i], prefix+d.name, 0, fmt.Sprintf("limit %s to this many %s (0: no limit)", what, d.help))
	}
	if remove != "" {
		fl.BoolVar(&r.none, remove, false, fmt.Sprintf("remove every --%srpm … --%sconcurrency limit of %s", prefix, prefix, what))
	}
}

// Names are the flags' names, the removing one included.
func (r *RateFlags) Names() []string {
	var names []string
	for _, d := range dimensions {
		names = append(names, r.prefix+d.name)
	}
	if r.remove != "" {
		names = append(names, r.remove)
	}
	return names
}

// Apply returns cur changed by the flags given on fl: each dimension given
// is set (0 removes it), the removing flag removes them all. A result that
// limits nothing is nil. cur itself is not changed.
func (r *RateFlags) Apply(fl *pflag.FlagSet, cur *storage.RateLimit) (*storage.RateLimit, error) {
	var given []string
	vals := r.values()
	for i, d := range dimensions {
		name := r.prefix + d.name
		if !fl.Changed(name) {
			continue
		}
		if *vals[i] < 0 {
			return nil, cmdutil.FlagErrorf("--%s must be 0 (no limit) or more (got %d)", name, *vals[i])
		}
		given = append(given, name)
	}
	if r.none {
		if len(given) > 0 {
			return nil, cmdutil.FlagErrorf("--%s and --%s cannot be used together", r.remove, given[0])
		}
		return nil, nil
	}
	if len(given) == 0 {
		return cur, nil
	}
	out := &storage.RateLimit{}
	if cur != nil {
		*out = *cur
	}
	outs := fields(out)
	for i, d := range dimensions {
		if fl.Changed(r.prefix + d.name) {
			*outs[i] = *vals[i]
		}
	}
	if out.IsZero() {
		return nil, nil
	}
	return out, nil
}

// BudgetFlags are --budget AMOUNT/PERIOD and optionally --no-budget.
type BudgetFlags struct {
	value string
	none  bool
}

// Add registers --budget, and --no-budget when remove is set; what says
// whose spend is capped, for the help text.
func (b *BudgetFlags) Add(fl *pflag.FlagSet, what string, remove bool) {
	fl.StringVar(&b.value, "budget", "", fmt.Sprintf("cap the spend of %s in USD per day, week or month (UTC), e.g. 50/month or 12.5/day", what))
	if remove {
		fl.BoolVar(&b.none, "no-budget", false, "remove the budget of "+what)
	}
}

// Names are the flags' names.
func (b *BudgetFlags) Names() []string { return []string{"budget", "no-budget"} }

// Apply returns cur changed by the flags given on fl.
func (b *BudgetFlags) Apply(fl *pflag.FlagSet, cur *storage.Budget) (*storage.Budget, error) {
	switch {
	case b.none && fl.Changed("budget"):
		return nil, cmdutil.FlagErrorf("--no-budget and --budget cannot be used together")
	case b.none:
		return nil, nil
	case !fl.Changed("budget"):
		return cur, nil
	}
	return ParseBudget(b.value)
}

// ParseBudget parses the value of --budget: AMOUNT/PERIOD in USD, such as
// 50/month, 12.5/day or 100/week.
func ParseBudget(s string) (*storage.Budget, error) {
	amount, period, ok := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.ParseFloat(strings.TrimSpace(amount), 64)
	if !ok || err != nil {
		return nil, cmdutil.FlagErrorf("--budget %q: want AMOUNT/PERIOD in USD, e.g. 50/month, 12.5/day or 100/week", s)
	}
	if math.IsNaN(v) || v <= 0 || v > storage.MaxBudgetUSD {
		return nil, cmdutil.FlagErrorf("--budget %q: the amount must be a number of USD above 0 and at most %g (--no-budget removes a budget)", s, float64(storage.MaxBudgetUSD))
	}
	switch period = strings.ToLower(strings.TrimSpace(period)); period {
	case storage.BudgetDay, storage.BudgetWeek, storage.BudgetMonth:
	default:
		return nil, cmdutil.FlagErrorf("--budget %q: the period must be day, week or month", s)
	}
	return &storage.Budget{AmountUSD: v, Period: period}, nil
}

// FormatBudget renders b the way --budget takes it: "50/month".
func FormatBudget(b *storage.Budget) string {
	return strconv.FormatFloat(b.AmountUSD, 'f', -1, 64) + "/" + b.Period
}

// Compact renders limits on one line, "rpm=60 tpm=100000 conc=4
// budget=50/month", or "" when there are none.
func Compact(r *storage.RateLimit, b *storage.Budget) string {
	var parts []string
	if r != nil {
		for i, v := range fields(r) {
			if *v != 0 {
				parts = append(parts, fmt.Sprintf("%s=%d", dimensions[i].short, *v))
			}
		}
	}
	if b != nil {
		parts = append(parts, "budget="+FormatBudget(b))
	}
	return strings.Join(parts, " ")
}

// Rows are the label and value rows of a `get` for limits, each label
// after prefix: "rpm  60", or with live usage "rpm  12/60" and "budget
// 3.20/50.00 USD (month, resets 2027-01-01T00:00:00Z)".
func Rows(prefix string, r *storage.RateLimit, b *storage.Budget, u *storage.LimitUsage) [][2]string {
	var rows [][2]string
	if r != nil {
		var used []*int64
		if u != nil {
			used = []*int64{&u.RPM, &u.RPD, &u.TPM, &u.TPD, &u.Concurrency}
		}
		for i, v := range fields(r) {
			if *v == 0 {
				continue
			}
			val := strconv.FormatInt(*v, 10)
			if used != nil {
				val = strconv.FormatInt(*used[i], 10) + "/" + val
			}
			rows = append(rows, [2]string{prefix + dimensions[i].name, val})
		}
	}
	if b != nil {
		val := fmt.Sprintf("%.2f USD per %s", b.AmountUSD, b.Period)
		if u != nil && u.BudgetSpentUSD != nil {
			val = fmt.Sprintf("%.2f/%.2f USD (%s", *u.BudgetSpentUSD, b.AmountUSD, b.Period)
			if u.BudgetResetsAt != nil {
				val += ", resets " + u.BudgetResetsAt.UTC().Format(time.RFC3339)
			}
			val += ")"
		}
		rows = append(rows, [2]string{prefix + "budget", val})
	}
	return rows
}

// WriteSection writes a titled section of label and value rows, as `get`
// commands print after their table on a terminal.
func WriteSection(w io.Writer, title string, rows [][2]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\n%s\n", title)
	for _, r := range rows {
		fmt.Fprintf(tw, "  %s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}
