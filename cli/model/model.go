// Package model implements `aisix model`: direct models (create, list, get,
// update, delete) and routing groups (`aisix model route NAME …`).
package model

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/limits"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// NewCmdModel returns the model command group.
func NewCmdModel(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "model <command>",
		Aliases: []string{"models"},
		Short:   "Manage direct models and routing groups",
	}
	cmd.AddCommand(newCmdCreate(f, nil), newCmdList(f), newCmdGet(f), newCmdUpdate(f, nil), newCmdDelete(f), newCmdRoute(f, nil))
	return cmd
}

// directFlags are the settings of a direct model shared by create and update.
type directFlags struct {
	name, provider, modelName, providerKey string
	timeout, streamTimeout                 string
	retries                                int
	cooldownSeconds, cooldownMax           int
	noCooldown                             bool
	priceInput, priceOutput, priceCached   float64
	noPrice                                bool
	modelLimits
	providerLimit limits.RateFlags
}

// modelLimits are the rate limit and budget flags of a model, direct or
// routing: they count the requests that ask for it by name.
type modelLimits struct {
	rateLimit limits.RateFlags
	budget    limits.BudgetFlags
}

func (l *modelLimits) add(fl *pflag.FlagSet) {
	l.rateLimit.Add(fl, "", "the requests that ask for this model", "no-rate-limit")
	l.budget.Add(fl, "the requests that ask for this model", true)
}

// names are the flags' names.
func (l *modelLimits) names() []string {
	return append(l.rateLimit.Names(), l.budget.Names()...)
}

// apply sets the limits given on fl on m.
func (l *modelLimits) apply(fl *pflag.FlagSet, m *storage.Model) error {
	var err error
	if m.RateLimit, err = l.rateLimit.Apply(fl, m.RateLimit); err != nil {
		return err
	}
	m.Budget, err = l.budget.Apply(fl, m.Budget)
	return err
}

func (d *directFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&d.name, "name", "", "display name: what callers send as model (unique)")
	fl.StringVar(&d.provider, "provider", "", "vendor label, e.g. openai")
	fl.StringVar(&d.modelName, "model-name", "", "model id sent upstream, e.g. gpt-4o-mini")
	fl.StringVar(&d.providerKey, "provider-key", "", "provider key name or id")
	fl.StringVar(&d.timeout, "timeout", "", "deadline of one non-streaming attempt, e.g. 30s (0: none)")
	fl.StringVar(&d.streamTimeout, "stream-timeout", "", "deadline for the first chunk and each gap between chunks, e.g. 10s")
	fl.IntVar(&d.retries, "retries", 0, "extra tries on this model after a retryable failure")
	fl.IntVar(&d.cooldownSeconds, "cooldown-seconds", 0, "cooldown length when the upstream gives no Retry-After (default 30; 0 turns cooldown off)")
	fl.IntVar(&d.cooldownMax, "cooldown-max-seconds", 0, "cap on a cooldown taken from Retry-After (default 600)")
	fl.BoolVar(&d.noCooldown, "no-cooldown", false, "never cool this model down")
	fl.Float64Var(&d.priceInput, "price-input", 0, "USD per million prompt tokens, for the usage ledger's cost")
	fl.Float64Var(&d.priceOutput, "price-output", 0, "USD per million completion tokens")
	fl.Float64Var(&d.priceCached, "price-cached-input", 0, "USD per million cached prompt tokens (default: the input price)")
	fl.BoolVar(&d.noPrice, "no-price", false, "remove the model's price (its calls get no cost)")
	d.modelLimits.add(fl)
	d.providerLimit.Add(fl, "provider-", "every request sent to this upstream deployment", "no-provider-limit")
}

// apply sets on m every field whose flag was given.
func (d *directFlags) apply(ctx context.Context, s storage.Store, fl *pflag.FlagSet, m *storage.Model) error {
	if fl.Changed("name") {
		m.DisplayName = d.name
	}
	if fl.Changed("provider") {
		m.Provider = d.provider
	}
	if fl.Changed("model-name") {
		m.ModelName = d.modelName
	}
	if fl.Changed("provider-key") {
		pk, err := cmdutil.FindProviderKey(ctx, s, d.providerKey)
		if err != nil {
			return err
		}
		m.ProviderKeyID = pk.ID
	}
	if fl.Changed("timeout") {
		ms, err := cmdutil.ParseMillis("timeout", d.timeout)
		if err != nil {
			return err
		}
		m.Timeout = &ms
	}
	if fl.Changed("stream-timeout") {
		ms, err := cmdutil.ParseMillis("stream-timeout", d.streamTimeout)
		if err != nil {
			return err
		}
		m.StreamTimeout = &ms
	}
	if fl.Changed("retries") {
		r := d.retries
		m.Retries = &r
	}
	if fl.Changed("cooldown-seconds") || fl.Changed("cooldown-max-seconds") || fl.Changed("no-cooldown") {
		if m.Cooldown == nil {
			m.Cooldown = &storage.Cooldown{}
		}
		if fl.Changed("cooldown-seconds") {
			v := d.cooldownSeconds
			m.Cooldown.DefaultSeconds = &v
		}
		if fl.Changed("cooldown-max-seconds") {
			v := d.cooldownMax
			m.Cooldown.MaxSeconds = &v
		}
		if fl.Changed("no-cooldown") {
			v := !d.noCooldown
			m.Cooldown.Enabled = &v
		}
	}
	if err := d.modelLimits.apply(fl, m); err != nil {
		return err
	}
	var err error
	if m.ProviderLimit, err = d.providerLimit.Apply(fl, m.ProviderLimit); err != nil {
		return err
	}
	return d.applyPrice(fl, m)
}

// applyPrice sets the price flags given on m. A price needs both input and
// output the first time; later updates may change one of them.
func (d *directFlags) applyPrice(fl *pflag.FlagSet, m *storage.Model) error {
	set := fl.Changed("price-input") || fl.Changed("price-output") || fl.Changed("price-cached-input")
	if d.noPrice {
		if set {
			return cmdutil.FlagErrorf("--no-price and --price-* cannot be used together")
		}
		m.Price = nil
		return nil
	}
	if !set {
		return nil
	}
	if m.Price == nil {
		if !fl.Changed("price-input") || !fl.Changed("price-output") {
			return cmdutil.FlagErrorf("a model without a price needs both --price-input and --price-output")
		}
		m.Price = &storage.ModelPrice{}
	}
	if fl.Changed("price-input") {
		m.Price.Input = d.priceInput
	}
	if fl.Changed("price-output") {
		m.Price.Output = d.priceOutput
	}
	if fl.Changed("price-cached-input") {
		m.Price.CachedInput = d.priceCached
	}
	return nil
}

// CreateOptions are the inputs of `model create`.
type CreateOptions struct {
	flags  directFlags
	Output output.Options
}

func newCmdCreate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a direct model (one upstream model behind one provider key)",
		Example: `  aisix model create --name gpt-4o-primary --provider openai --model-name gpt-4o-mini --provider-key openai-primary
  ID=$(aisix model create --name gpt-4o-secondary --provider openai --model-name gpt-4o-mini --provider-key openai-secondary -q)
  aisix model create --name gpt-4o --provider openai --model-name gpt-4o --provider-key openai-primary --price-input 2.5 --price-output 10 --price-cached-input 1.25
  aisix model create --name gpt-4o-eu --provider azure --model-name gpt-4o --provider-key azure-eu --provider-rpm 600 --provider-tpm 90000 --budget 200/month`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, req := range []string{"name", "provider", "model-name", "provider-key"} {
				if !cmd.Flags().Changed(req) {
					return cmdutil.FlagErrorf("--%s is required", req)
				}
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				var m storage.Model
				if err := opts.flags.apply(ctx, s, cmd.Flags(), &m); err != nil {
					return fmt.Errorf("model %q: %w", opts.flags.name, err)
				}
				created, err := s.CreateModel(ctx, m)
				if err != nil {
					return fmt.Errorf("model %q: %w", opts.flags.name, err)
				}
				return printModels(f, &opts.Output, false, created)
			})
		},
	}
	opts.flags.add(cmd.Flags())
	opts.Output.AddFlags(cmd)
	return cmd
}

// UpdateOptions are the inputs of `model update`.
type UpdateOptions struct {
	Ref    string
	flags  directFlags
	Output output.Options
}

func newCmdUpdate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{}
	cmd := &cobra.Command{
		Use:   "update <name|id>",
		Short: "Change a direct model; only the flags given change (use `model route` for groups)",
		Example: `  aisix model update gpt-4o-primary --timeout 20s --retries 1
  aisix model update gpt-4o-primary --price-input 0.15 --price-output 0.6
  aisix model update gpt-4o-primary --rpm 120 --provider-tpm 0 --no-budget`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeModels(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				m, err := cmdutil.FindModel(ctx, s, opts.Ref)
				if err != nil {
					return err
				}
				if m.Routing != nil {
					return fmt.Errorf("model %q is a routing group: change it with `aisix model route %s …`", m.DisplayName, m.DisplayName)
				}
				if err := opts.flags.apply(ctx, s, cmd.Flags(), &m); err != nil {
					return fmt.Errorf("model %q: %w", opts.Ref, err)
				}
				updated, err := s.UpdateModel(ctx, m, m.Revision)
				if err != nil {
					return fmt.Errorf("model %q: %w", opts.Ref, err)
				}
				return printModels(f, &opts.Output, false, updated)
			})
		},
	}
	opts.flags.add(cmd.Flags())
	opts.Output.AddFlags(cmd)
	return cmd
}

func newCmdList(f *cmdutil.Factory) *cobra.Command {
	var o output.Options
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List models and routing groups",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Prepare(f, cmd); err != nil {
				return err
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				all, err := s.ListModels(ctx)
				if err != nil {
					return err
				}
				return printModels(f, &o, true, all...)
			})
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func newCmdGet(f *cmdutil.Factory) *cobra.Command {
	var o output.Options
	cmd := &cobra.Command{
		Use:   "get <name|id>",
		Short: "Show one model and the settings it runs with",
		Long: `Show one model. On a terminal an "Effective settings" section follows: what
the proxy enforces once defaults fill what the model leaves unset (timeouts,
retries, cooldown; for a routing group its strategy and failover budget).
-o json and -o yaml carry the same as the entry's "effective" object.`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeModels(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Prepare(f, cmd); err != nil {
				return err
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				m, err := cmdutil.FindModel(ctx, s, args[0])
				if err != nil {
					return err
				}
				if m.LimitUsage == nil && (!m.RateLimit.IsZero() || m.Budget != nil) {
					// Found by name in the list, which carries no usage:
					// the read of the one model does, from a server.
					if m, err = s.GetModel(ctx, m.ID); err != nil {
						return err
					}
				}
				if err := printModels(f, &o, false, m); err != nil {
					return err
				}
				if o.Format != output.FormatTable || o.Quiet || !f.IO.IsStdoutTTY() {
					return nil // piped tables stay one row per model
				}
				if err := printEffective(f.IO.Out, &m); err != nil {
					return err
				}
				return printLimits(f.IO.Out, &m)
			})
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func newCmdDelete(f *cmdutil.Factory) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:               "delete <name|id>",
		Aliases:           []string{"rm"},
		Short:             "Delete a model (refused while a routing group targets it)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeModels(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				m, err := cmdutil.FindModel(ctx, s, args[0])
				if err != nil {
					return err
				}
				if err := cmdutil.ConfirmDelete(f.IO, yes, fmt.Sprintf("model %q", m.DisplayName)); err != nil {
					return err
				}
				if err := s.DeleteModel(ctx, m.ID); err != nil {
					return err
				}
				fmt.Fprintf(f.IO.ErrOut, "Deleted model %s (%s)\n", m.DisplayName, m.ID)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (required without a terminal)")
	return cmd
}

// printModels prints one model as an entry, or a list as an array.
func printModels(f *cmdutil.Factory, o *output.Options, list bool, all ...storage.Model) error {
	ids := make([]string, len(all))
	entries := make([]any, len(all))
	t := output.Table{Headers: []string{"name", "id", "kind", "upstream", "details", "revision"}}
	for i, m := range all {
		ids[i] = m.ID
		entries[i] = admin.ModelEntry(m)
		t.Rows = append(t.Rows, []string{m.DisplayName, m.ID, m.Kind(), upstream(m), details(m), fmt.Sprint(m.Revision)})
	}
	if list {
		return o.Print(f.IO, ids, entries, t)
	}
	return o.Print(f.IO, ids, entries[0], t)
}

func upstream(m storage.Model) string {
	if m.Routing == nil {
		return m.Provider + "/" + m.ModelName
	}
	names := make([]string, len(m.Routing.Targets))
	for i, t := range m.Routing.Targets {
		names[i] = t.Model
		if t.Weight != nil {
			names[i] += fmt.Sprintf("=%d", *t.Weight)
		}
	}
	return strings.Join(names, ",")
}

func details(m storage.Model) string {
	var parts []string
	if r := m.Routing; r != nil {
		strategy := r.Strategy
		if strategy == "" {
			strategy = storage.StrategyFailover
		}
		parts = append(parts, strategy)
		if r.Retries != nil {
			parts = append(parts, fmt.Sprintf("retries=%d", *r.Retries))
		}
		if r.MaxFallbacks != nil {
			parts = append(parts, fmt.Sprintf("max_fallbacks=%d", *r.MaxFallbacks))
		}
		if r.Timeout != nil && *r.Timeout > 0 {
			parts = append(parts, "timeout="+cmdutil.FormatMillis(r.Timeout))
		}
		if l := limits.Compact(m.RateLimit, m.Budget); l != "" {
			parts = append(parts, l)
		}
		return strings.Join(parts, " ")
	}
	if m.Timeout != nil && *m.Timeout > 0 {
		parts = append(parts, "timeout="+cmdutil.FormatMillis(m.Timeout))
	}
	if m.StreamTimeout != nil && *m.StreamTimeout > 0 {
		parts = append(parts, "stream_timeout="+cmdutil.FormatMillis(m.StreamTimeout))
	}
	if m.Retries != nil {
		parts = append(parts, fmt.Sprintf("retries=%d", *m.Retries))
	}
	if p := m.Price; p != nil {
		parts = append(parts, "price="+formatPrice(p))
	}
	if l := limits.Compact(m.RateLimit, m.Budget); l != "" {
		parts = append(parts, l)
	}
	if l := limits.Compact(m.ProviderLimit, nil); l != "" {
		parts = append(parts, "provider["+l+"]")
	}
	return output.Or(strings.Join(parts, " "))
}

// completeModels completes model names from the configured store.
func completeModels(f *cmdutil.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return cmdutil.CompleteNames(f, func(ctx context.Context, s storage.Store) ([]string, error) {
		all, err := s.ListModels(ctx)
		names := make([]string, len(all))
		for i, m := range all {
			names[i] = m.DisplayName
		}
		return names, err
	})
}

// printEffective writes the "Effective settings" section of `model get`.
func printEffective(w io.Writer, m *storage.Model) error {
	var rows [][2]string
	switch e := admin.EffectiveOf(m).(type) {
	case admin.DirectEffective:
		cooldown := "off"
		if c := e.Cooldown; c.Enabled {
			cooldown = fmt.Sprintf("%s (at most %s from Retry-After) after %s", seconds(c.DefaultSeconds), seconds(c.MaxSeconds), statusRanges(c.TriggerStatuses))
		}
		rows = [][2]string{
			{"timeout", millis(e.TimeoutMs)},
			{"stream header timeout", millis(e.StreamHeaderTimeoutMs)},
			{"stream first chunk timeout", millis(e.StreamFirstChunkTimeoutMs)},
			{"stream idle timeout", millis(e.StreamIdleTimeoutMs)},
			{"connect timeout", millis(e.ConnectTimeoutMs)},
			{"retries", strconv.Itoa(e.Retries)},
			{"cooldown", cooldown},
			{"price", priceText(m.Price)},
		}
	case admin.RoutingEffective:
		timeout := "none"
		if e.TimeoutMs > 0 {
			timeout = millis(e.TimeoutMs)
		}
		rows = [][2]string{
			{"strategy", e.Strategy},
			{"retries", strconv.Itoa(e.Retries)},
			{"max fallbacks", strconv.Itoa(e.MaxFallbacks)},
			{"retry on 429", strconv.FormatBool(e.RetryOn429)},
			{"timeout", timeout},
			{"when all unavailable", e.WhenAllUnavailable},
			{"stream failure", streamFailureText(e.StreamFailure)},
			{"hedge", hedgeText(e.Hedge)},
		}
	}
	return limits.WriteSection(w, "Effective settings (defaults applied):", rows)
}

// streamFailureText is the effective stream_failure: "error (terminal
// error event)" or "continue (at most 2 continuations)".
func streamFailureText(sf storage.StreamFailure) string {
	if sf.Mode != storage.StreamFailureContinue {
		return "error (terminal error event)"
	}
	if sf.MaxContinuations == 1 {
		return "continue (at most 1 continuation)"
	}
	return fmt.Sprintf("continue (at most %d continuations)", sf.MaxContinuations)
}

// hedgeText is the effective hedge: "off", "after 200ms" or "after the
// first target's p95 time to first token".
func hedgeText(h *storage.Hedge) string {
	switch {
	case h == nil:
		return "off"
	case h.After == storage.HedgeAfterP95:
		return "after the first target's p95 time to first token"
	}
	return "after " + millis(h.AfterMS)
}

// printLimits writes the "Limits" section of `model get`.
func printLimits(w io.Writer, m *storage.Model) error {
	rows := append(limits.Rows("", m.RateLimit, m.Budget, m.LimitUsage), limits.Rows("provider ", m.ProviderLimit, nil, nil)...)
	if len(rows) == 0 {
		rows = [][2]string{{"none", "no rate limit, budget or provider limit"}}
	}
	title := "Limits:"
	if m.LimitUsage != nil {
		title = "Limits (used now/limit):"
	}
	return limits.WriteSection(w, title, rows)
}

// formatPrice renders a price as input/output[/cached] USD per million
// tokens: "2.5/10/1.25".
func formatPrice(p *storage.ModelPrice) string {
	s := strconv.FormatFloat(p.Input, 'g', -1, 64) + "/" + strconv.FormatFloat(p.Output, 'g', -1, 64)
	if p.CachedInput != 0 {
		s += "/" + strconv.FormatFloat(p.CachedInput, 'g', -1, 64)
	}
	return s
}

// priceText is the price row of `model get`.
func priceText(p *storage.ModelPrice) string {
	if p == nil {
		return "none (calls are recorded without a cost)"
	}
	cached := p.CachedInput
	if cached == 0 {
		cached = p.Input
	}
	return fmt.Sprintf("$%s in, $%s out, $%s cached in, per 1M tokens",
		strconv.FormatFloat(p.Input, 'g', -1, 64), strconv.FormatFloat(p.Output, 'g', -1, 64), strconv.FormatFloat(cached, 'g', -1, 64))
}

func millis(ms int64) string { return (time.Duration(ms) * time.Millisecond).String() }

func seconds(s int64) string { return (time.Duration(s) * time.Second).String() }

// statusRanges renders ascending statuses compactly: "401, 408, 429, 500-599".
func statusRanges(sts []int) string {
	if len(sts) == 0 {
		return "no status"
	}
	var parts []string
	for i := 0; i < len(sts); {
		j := i
		for j+1 < len(sts) && sts[j+1] == sts[j]+1 {
			j++
		}
		if j > i {
			parts = append(parts, fmt.Sprintf("%d-%d", sts[i], sts[j]))
		} else {
			parts = append(parts, strconv.Itoa(sts[i]))
		}
		i = j + 1
	}
	return "status " + strings.Join(parts, ", ")
}
