package model

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// RouteOptions are the inputs of `model route`.
type RouteOptions struct {
	Name               string
	Strategy           string
	Targets            []string
	Retries            int
	MaxFallbacks       int
	Timeout            string
	RetryOn429         bool
	WhenAllUnavailable string
	FallbackOnStatuses []int
	StreamFailure      string
	MaxContinuations   int
	HedgeAfter         string
	Explain            bool
	Limits             modelLimits
	Output             output.Options
}

func newCmdRoute(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *RouteOptions) error) *cobra.Command {
	opts := &RouteOptions{}
	cmd := &cobra.Command{
		Use:   "route <name>",
		Short: "Create or replace a routing group (idempotent), or explain its current order",
		Long: `Create the routing model <name>, or replace its routing if it exists, so CI can
run the same command on every deploy. Targets are direct models, tried in the
order the strategy gives; targets cooling down move behind healthy ones.

Rate limit and budget flags (--rpm … --budget) count the requests that ask
for the group by name; a rerun without them keeps the group's limits.

With --explain, ask the running server for live status and print the order in
which targets would be tried right now, and why.`,
		Example: `  aisix model route chat-prod --strategy failover --target gpt-4o-primary --target gpt-4o-secondary --retries 1 --max-fallbacks 1
  aisix model route chat-prod --strategy weighted --target a=3 --target b=1
  aisix model route chat-prod --target gpt-4o-primary --rpm 600 --budget 500/month
  aisix model route chat-prod --explain`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeModels(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			fl := cmd.Flags()
			if !opts.Explain && len(opts.Targets) == 0 {
				return cmdutil.FlagErrorf("at least one --target is required")
			}
			if opts.Explain && fl.NFlag() > 1+boolToInt(fl.Changed("output")) {
				for _, n := range append([]string{"target", "strategy", "retries", "max-fallbacks", "timeout", "retry-on-429", "when-all-unavailable", "fallback-on-status", "stream-failure", "max-continuations", "hedge-after"}, opts.Limits.names()...) {
					if fl.Changed(n) {
						return cmdutil.FlagErrorf("--explain cannot be combined with --%s", n)
					}
				}
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			if opts.Explain {
				return explainRun(cmd.Context(), f, cmd, opts)
			}
			return routeRun(cmd.Context(), f, cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Strategy, "strategy", storage.StrategyFailover, "failover, round_robin or weighted")
	fl.StringArrayVar(&opts.Targets, "target", nil, "target direct model, NAME or NAME=WEIGHT (repeat, in order)")
	fl.IntVar(&opts.Retries, "retries", 0, "extra tries on the same target before failing over")
	fl.IntVar(&opts.MaxFallbacks, "max-fallbacks", -1, "how many targets after the first may be tried (default: all)")
	fl.StringVar(&opts.Timeout, "timeout", "", "deadline of the whole request, retries and failovers included, e.g. 60s")
	fl.BoolVar(&opts.RetryOn429, "retry-on-429", true, "treat an upstream 429 as retryable (false: return it to the caller)")
	fl.StringVar(&opts.WhenAllUnavailable, "when-all-unavailable", "", "when every target cools down: try_anyway (default) or fail")
	fl.IntSliceVar(&opts.FallbackOnStatuses, "fallback-on-status", nil, "extra upstream statuses that fail over (repeat or comma-separate)")
	fl.StringVar(&opts.StreamFailure, "stream-failure", "", "a chat stream cut after its first content: error (default: the terminal error event) or continue (the next healthy target continues the answer)")
	fl.IntVar(&opts.MaxContinuations, "max-continuations", 0, "with --stream-failure continue: continuations per stream, 1 to 3 (default 1)")
	fl.StringVar(&opts.HedgeAfter, "hedge-after", "", "hedge a chat stream's first token: start the next target too when the first has sent no content after this long (e.g. 200ms), or after its own recent p95 time to first token (p95)")
	fl.BoolVar(&opts.Explain, "explain", false, "print the order targets would be tried in now (needs a running server)")
	opts.Limits.add(fl)
	opts.Output.AddFlags(cmd)
	return cmd
}

func boolToInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// routing builds the routing block the flags describe.
func (o *RouteOptions) routing(cmd *cobra.Command) (*storage.Routing, error) {
	r := &storage.Routing{Strategy: o.Strategy, WhenAllUnavailable: o.WhenAllUnavailable, FallbackOnStatuses: o.FallbackOnStatuses}
	for _, t := range o.Targets {
		name, w, hasWeight := strings.Cut(t, "=")
		tgt := storage.Target{Model: name}
		if hasWeight {
			n, err := strconv.Atoi(w)
			if err != nil || n < 0 {
				return nil, cmdutil.FlagErrorf("--target %q: weight must be a whole number 0 or more", t)
			}
			tgt.Weight = &n
		}
		r.Targets = append(r.Targets, tgt)
	}
	fl := cmd.Flags()
	if fl.Changed("retries") {
		n := o.Retries
		r.Retries = &n
	}
	if o.MaxFallbacks >= 0 {
		n := o.MaxFallbacks
		r.MaxFallbacks = &n
	}
	if fl.Changed("retry-on-429") {
		b := o.RetryOn429
		r.RetryOn429 = &b
	}
	switch {
	case o.StreamFailure == "" && fl.Changed("max-continuations"):
		return nil, cmdutil.FlagErrorf("--max-continuations needs --stream-failure continue")
	case o.StreamFailure != "":
		if o.StreamFailure != storage.StreamFailureContinue && o.StreamFailure != storage.StreamFailureError {
			return nil, cmdutil.FlagErrorf("--stream-failure must be continue or error (got %q)", o.StreamFailure)
		}
		r.StreamFailure = &storage.StreamFailure{Mode: o.StreamFailure, MaxContinuations: o.MaxContinuations}
	}
	switch o.HedgeAfter {
	case "":
	case storage.HedgeAfterP95:
		r.Hedge = &storage.Hedge{After: storage.HedgeAfterP95}
	default:
		ms, err := cmdutil.ParseMillis("hedge-after", o.HedgeAfter)
		if err != nil {
			return nil, cmdutil.FlagErrorf("--hedge-after must be a duration such as 200ms, or p95 (got %q)", o.HedgeAfter)
		}
		r.Hedge = &storage.Hedge{AfterMS: ms}
	}
	if o.Timeout != "" {
		ms, err := cmdutil.ParseMillis("timeout", o.Timeout)
		if err != nil {
			return nil, err
		}
		r.Timeout = &ms
	}
	return r, nil
}

func routeRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *RouteOptions) error {
	r, err := opts.routing(cmd)
	if err != nil {
		return err
	}
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		existing, err := cmdutil.FindModel(ctx, s, opts.Name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			m := storage.Model{DisplayName: opts.Name, Routing: r}
			if err := opts.Limits.apply(cmd.Flags(), &m); err != nil {
				return err
			}
			m, err := s.CreateModel(ctx, m)
			if err != nil {
				return fmt.Errorf("model %q: %w", opts.Name, err)
			}
			return printModels(f, &opts.Output, false, m)
		case err != nil:
			return err
		case existing.Routing == nil:
			return fmt.Errorf("model %q is a direct model, not a routing group", opts.Name)
		}
		// The routing is replaced; the limits are kept unless a flag
		// changes them, so a deploy that reruns the command keeps them.
		replaced := storage.Model{ID: existing.ID, DisplayName: existing.DisplayName, Timeout: existing.Timeout, Routing: r,
			RateLimit: existing.RateLimit, Budget: existing.Budget}
		if err := opts.Limits.apply(cmd.Flags(), &replaced); err != nil {
			return err
		}
		m, err := s.UpdateModel(ctx, replaced, existing.Revision)
		if err != nil {
			return fmt.Errorf("model %q: %w", opts.Name, err)
		}
		return printModels(f, &opts.Output, false, m)
	})
}

// ExplainRow is one target of `model route --explain`.
type ExplainRow struct {
	Position      int        `json:"position"`
	Target        string     `json:"target"`
	Provider      string     `json:"provider,omitempty"`
	Endpoints     []string   `json:"endpoints,omitempty"`
	Status        string     `json:"status"`
	CooldownUntil *time.Time `json:"cooldown_until,omitempty"`
	Reason        string     `json:"reason,omitempty"`
	// AtProviderLimit is set when the target is at its provider_limit
	// now: the proxy skips it (local_rate_limit) until it frees.
	AtProviderLimit bool   `json:"at_provider_limit,omitempty"`
	Tried           bool   `json:"tried"`
	Why             string `json:"why"`
}

// explainRun reads the group from the running server and its targets' live
// status, and orders them the way the proxy does: the strategy's order, then
// healthy targets before cooling ones (soonest cooldown end first), then the
// max_fallbacks budget.
func explainRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *RouteOptions) error {
	client, url, err := f.AdminClient(cmd)
	if err != nil {
		return err
	}
	m, err := cmdutil.FindModel(ctx, client, opts.Name)
	if err != nil {
		return fmt.Errorf("explain needs a running server at %s: %w", url, err)
	}
	if m.Routing == nil {
		return fmt.Errorf("model %q is a direct model, not a routing group", opts.Name)
	}
	rows, err := client.ModelsStatus(ctx)
	if err != nil {
		return fmt.Errorf("explain needs a running server at %s: %w", url, err)
	}
	byName := make(map[string]admin.StatusRow, len(rows))
	for _, r := range rows {
		byName[r.DisplayName] = r
	}
	now := f.Now()
	out := Explain(m.Routing, byName, now)
	if opts.Output.Format == output.FormatJSON || opts.Output.Format == output.FormatYAML {
		return opts.Output.Print(f.IO, nil, out, output.Table{})
	}
	strategy := m.Routing.Strategy
	if strategy == "" {
		strategy = storage.StrategyFailover
	}
	fmt.Fprintf(f.IO.Out, "%s (%s): order of attempts right now\n", m.DisplayName, strategy)
	t := output.Table{Headers: []string{"#", "target", "provider", "status", "why"}}
	for _, r := range out {
		pos := fmt.Sprint(r.Position)
		if !r.Tried {
			pos = "-"
		}
		t.Rows = append(t.Rows, []string{pos, r.Target, output.Or(r.Provider), r.Status, r.Why})
	}
	return output.WriteTable(f.IO, t)
}

// Explain orders the targets of r the way the proxy would try them now, given
// the live status rows by display name.
func Explain(r *storage.Routing, status map[string]admin.StatusRow, now time.Time) []ExplainRow {
	type cand struct {
		row     ExplainRow
		until   time.Time
		cool    bool
		limited bool
	}
	var cands []cand
	for _, t := range r.Targets {
		st, ok := status[t.Model]
		c := cand{row: ExplainRow{Target: t.Model, Status: "unknown"}}
		if ok {
			c.row.Status = st.Status
			c.row.Reason = st.StatusReason
			if st.DirectStats != nil {
				c.row.Provider, c.row.Endpoints = st.Provider, st.Endpoints
				c.limited = st.AtProviderLimit
				c.row.AtProviderLimit = c.limited
			}
			if st.CooldownUntil != nil {
				until := st.CooldownUntil.Time()
				if until.After(now) {
					c.until, c.cool = until, true
					c.row.CooldownUntil = &until
				}
			}
		}
		switch {
		case c.limited:
			c.row.Why = "at its provider_limit (" + atLimitText(st.ProviderLimit, st.ProviderLimitUsage) +
				"): skipped as local_rate_limit until it frees"
		case c.cool:
			c.row.Why = fmt.Sprintf("cooling down for %s (until %s) because of %s", until(c.until, now), c.until.UTC().Format(time.TimeOnly), output.Or(c.row.Reason))
		case c.row.Status == "probing":
			c.row.Why = "cooldown over: the next request is a probe"
		case ok:
			c.row.Why = "healthy"
		default:
			c.row.Why = "not a known direct model"
		}
		cands = append(cands, c)
	}
	// Healthy targets keep the strategy's order; cooling ones follow, soonest
	// end first; those at their provider_limit come last: the proxy skips
	// them for now.
	sort.SliceStable(cands, func(i, j int) bool {
		if cands[i].limited != cands[j].limited {
			return !cands[i].limited
		}
		if cands[i].cool != cands[j].cool {
			return !cands[i].cool
		}
		if cands[i].cool {
			return cands[i].until.Before(cands[j].until)
		}
		return false
	})
	live := len(cands)
	for live > 0 && cands[live-1].limited {
		live--
	}
	budget := live
	if r.MaxFallbacks != nil && *r.MaxFallbacks+1 < budget {
		budget = *r.MaxFallbacks + 1
	}
	allCool := live > 0
	for _, c := range cands[:live] {
		allCool = allCool && c.cool
	}
	out := make([]ExplainRow, len(cands))
	for i, c := range cands {
		c.row.Position = i + 1
		c.row.Tried = i < budget
		switch {
		case c.limited:
			// Not tried for now; its why says so.
		case !c.row.Tried:
			c.row.Why += "; beyond the max_fallbacks budget"
		case allCool && r.WhenAllUnavailable == storage.WhenAllUnavailableFail:
			c.row.Tried = false
			c.row.Why += "; not tried: every target is cooling down and when_all_unavailable is fail (503)"
		}
		if c.row.Tried && i == 0 && !c.cool {
			c.row.Why += "; serves next"
		}
		out[i] = c.row
	}
	switch r.Strategy {
	case storage.StrategyRoundRobin:
		if len(out) > 0 {
			out[0].Why += " (round_robin rotates the first pick per request)"
		}
	case storage.StrategyWeighted:
		if len(out) > 0 {
			out[0].Why += " (weighted picks the first at random by weight)"
		}
	}
	return out
}

// atLimitText names the dimensions of pl that u has reached, with the
// usage against the limit: "rpm 50/50, tpm 200000/200000".
func atLimitText(pl *storage.RateLimit, u *storage.LimitUsage) string {
	var parts []string
	if u != nil {
		for _, d := range admin.DimsOf(pl, *u) {
			if d.Used >= d.Limit {
				parts = append(parts, fmt.Sprintf("%s %d/%d", d.Name, d.Used, d.Limit))
			}
		}
	}
	if len(parts) == 0 {
		return "now"
	}
	return strings.Join(parts, ", ")
}

func until(t, now time.Time) string {
	return t.Sub(now).Round(time.Second).String()
}
