// Package usage implements `aisix usage`: the usage ledger's sums, per
// day or hour, caller key, model and target, as a table for people or as
// JSON or CSV for scripts, from the local store or a remote server.
package usage

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/storage"
)

// Formats of -o beyond output's.
const formatCSV = "csv"

// Options are the inputs of `aisix usage`.
type Options struct {
	Since    time.Duration
	From, To time.Time
	// Key is a caller key's name or id; Alias and Target model names.
	Key, Alias, Target string
	By                 []string
	Format             string
}

// NewCmdUsage returns the usage command. runF, when set, replaces the run
// (for tests of the flag parsing).
func NewCmdUsage(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	var since, from, to, by string
	cmd := &cobra.Command{
		Use:   "usage",
		Short: "Show tokens, cost and attempts from the usage ledger",
		Long: `Show what the gateway's callers used: one ledger record per upstream attempt
(the answer and every failed attempt before it), summed per group.

--by groups by any of day or hour (UTC), key, alias (the model the caller
asked for) and target (the direct model that was called). Costs come from
the prices of the direct models (model create/update --price-*), fixed when
the call was made; answers of models without a price are counted as
unpriced, never guessed. Records are kept for usage.retention (default 30d).

On a terminal the table ends with a TOTAL row; piped, rows are
tab-separated without a header. -o json prints {"rows": [...], "totals": {...}},
the admin API's shape; -o csv prints a header and one line per row.`,
		Example: `  aisix usage --since 7d --by key,alias
  aisix usage --from 2026-03-01 --to 2026-04-01 --by day -o csv
  aisix usage --key team-a --by alias,target -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.parse(f, cmd, since, from, to, by); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				return run(ctx, f, s, opts)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&since, "since", "", "only the last period, e.g. 7d, 24h")
	fl.StringVar(&from, "from", "", "start, inclusive: a date (2026-03-01, UTC) or an RFC 3339 time")
	fl.StringVar(&to, "to", "", "end, exclusive: a date or an RFC 3339 time")
	fl.StringVar(&opts.Key, "key", "", "only this caller key (name or id)")
	fl.StringVar(&opts.Alias, "alias", "", "only calls to this model name")
	fl.StringVar(&opts.Target, "target", "", "only attempts on this direct model")
	fl.StringVar(&by, "by", "", "group by a comma-separated list of day, hour, key, alias, target")
	fl.StringVarP(&opts.Format, "output", "o", "", "output format: table, json or csv")
	return cmd
}

// parse validates the flags into opts before anything is opened.
func (o *Options) parse(f *cmdutil.Factory, cmd *cobra.Command, since, from, to, by string) error {
	if since != "" && from != "" {
		return cmdutil.FlagErrorf("--since and --from cannot be used together")
	}
	now := f.Now()
	if since != "" {
		d, err := cmdutil.ParseAge(since)
		if err != nil || d == 0 {
			return cmdutil.FlagErrorf("--since must be a period such as 7d or 12h (got %q)", since)
		}
		o.Since, o.From = d, now.Add(-d)
	}
	var err error
	if from != "" {
		if o.From, err = parseTime(from); err != nil {
			return cmdutil.FlagErrorf("--from %v", err)
		}
	}
	if to != "" {
		if o.To, err = parseTime(to); err != nil {
			return cmdutil.FlagErrorf("--to %v", err)
		}
	}
	o.By = storage.ParseUsageGroups(by)
	q := storage.UsageQuery{From: o.From, To: o.To, GroupBy: o.By}
	if err := q.Validate(); err != nil {
		msg := storage.Message(err)
		msg = strings.Replace(strings.Replace(msg, "group_by:", "--by", 1), "to:", "--to", 1)
		return cmdutil.FlagErrorf("%s", msg)
	}
	if o.Format == "" {
		cfg, err := f.Config(cmd)
		if err != nil {
			return err
		}
		o.Format = cfg.Output
	}
	switch o.Format {
	case "", output.FormatTable:
		o.Format = output.FormatTable
	case output.FormatJSON, formatCSV:
	default:
		return cmdutil.FlagErrorf("--output must be table, json or csv (got %q)", o.Format)
	}
	return nil
}

// parseTime reads a UTC date or an RFC 3339 time.
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("must be a date such as 2026-03-01 or an RFC 3339 time such as 2026-03-01T09:00:00Z (got %q)", s)
}

func run(ctx context.Context, f *cmdutil.Factory, s storage.Store, o *Options) error {
	ur, ok := s.(storage.UsageReader)
	if !ok {
		return errors.New("this store keeps no usage ledger")
	}
	q := storage.UsageQuery{From: o.From, To: o.To, Alias: o.Alias, Target: o.Target, GroupBy: o.By}
	if o.Key != "" {
		// A deleted key's records stay in the ledger: a ref that names no
		// current key is taken as the id it was.
		k, err := cmdutil.FindAPIKey(ctx, s, o.Key)
		switch {
		case err == nil:
			q.KeyID = k.ID
		case errors.Is(err, storage.ErrNotFound):
			q.KeyID = o.Key
		default:
			return err
		}
	}
	rep, err := ur.QueryUsage(ctx, q)
	if err != nil {
		return err
	}
	switch o.Format {
	case output.FormatJSON:
		return output.WriteJSON(f.IO.Out, rep)
	case formatCSV:
		return writeCSV(f.IO.Out, o.By, rep)
	}
	t := output.Table{Headers: headers(o.By)}
	for _, r := range rep.Rows {
		t.Rows = append(t.Rows, cells(o.By, r, false))
	}
	if f.IO.IsStdoutTTY() && len(rep.Rows) > 0 {
		total := storage.UsageRow{UsageTotals: rep.Totals}
		row := cells(o.By, total, false)
		row[0] = "TOTAL"
		t.Rows = append(t.Rows, row)
	}
	return output.WriteTable(f.IO, t)
}

// groupColumns are the dimension columns of a report, in their order.
func groupColumns(by []string) []string {
	var cols []string
	switch {
	case slices.Contains(by, storage.UsageByDay):
		cols = append(cols, "day")
	case slices.Contains(by, storage.UsageByHour):
		cols = append(cols, "hour")
	}
	for _, d := range []string{storage.UsageByKey, storage.UsageByAlias, storage.UsageByTarget} {
		if slices.Contains(by, d) {
			cols = append(cols, d)
		}
	}
	return cols
}

var sumHeaders = []string{"attempts", "ok", "failed", "input", "output", "cached", "reasoning", "cost_usd", "unpriced"}

func headers(by []string) []string {
	cols := groupColumns(by)
	if len(cols) == 0 {
		cols = []string{"all"}
	}
	return append(cols, sumHeaders...)
}

// cells renders one row; csv keeps the key id and name apart.
func cells(by []string, r storage.UsageRow, csv bool) []string {
	var out []string
	for _, c := range groupColumns(by) {
		switch c {
		case "day":
			out = append(out, timeCell(r.Time, time.DateOnly, csv))
		case "hour":
			out = append(out, timeCell(r.Time, "2006-01-02 15:00", csv))
		case storage.UsageByKey:
			if csv {
				out = append(out, r.KeyID, r.KeyName)
			} else {
				out = append(out, keyCell(r))
			}
		case storage.UsageByAlias:
			out = append(out, r.Alias)
		case storage.UsageByTarget:
			out = append(out, r.Target)
		}
	}
	if len(out) == 0 && !csv {
		out = append(out, "all")
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	cost := strconv.FormatFloat(r.CostUSD, 'f', 6, 64)
	if !csv {
		cost = "$" + cost
	}
	return append(out, n(r.Attempts), n(r.Successes), n(r.Failures), n(r.InputTokens), n(r.OutputTokens),
		n(r.CachedTokens), n(r.ReasoningTokens), cost, n(r.Unpriced))
}

func timeCell(t *time.Time, layout string, rfc bool) string {
	if t == nil {
		return ""
	}
	if rfc {
		return t.UTC().Format(time.RFC3339)
	}
	return t.UTC().Format(layout)
}

// keyCell names a caller key by its name, or its id when it has none.
func keyCell(r storage.UsageRow) string {
	if r.KeyName != "" {
		return r.KeyName
	}
	return r.KeyID
}

func writeCSV(w io.Writer, by []string, rep storage.UsageReport) error {
	cw := csv.NewWriter(w)
	var head []string
	for _, c := range groupColumns(by) {
		if c == storage.UsageByKey {
			head = append(head, "key_id", "key_name")
			continue
		}
		head = append(head, c)
	}
	if err := cw.Write(append(head, sumHeaders...)); err != nil {
		return err
	}
	for _, r := range rep.Rows {
		if err := cw.Write(cells(by, r, true)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}
