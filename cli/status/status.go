// Package status implements `aisix status`: the live dashboard on a
// terminal, or one JSON snapshot of the status rows for scripts.
package status

import (
	"context"
	"encoding/json"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/tui"
)

// Options are the inputs of `aisix status`.
type Options struct {
	Output output.Options
	Watch  bool
	Every  time.Duration
}

// NewCmdStatus returns the status command.
func NewCmdStatus(f *cmdutil.Factory) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Live dashboard of every model's health, cooldowns and traffic",
		Long: `Show the live state of a running server: models with their status, cooldown
countdown and reason, traffic and latency; routing groups in the order their
targets would be tried now; and a feed of failovers and cooldowns.

On a terminal this is an interactive dashboard (q quits, ? shows the keys).
With -o json, or when stdout is not a terminal, it prints one snapshot of the
status rows and exits; add --watch for one JSON line per update.`,
		Example: `  aisix status
  aisix status -o json | jq '.[] | select(.status == "cooldown")'
  aisix status -o json --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Output.Quiet {
				return cmdutil.FlagErrorf("status does not take --quiet")
			}
			if opts.Output.Format == "" && !f.IO.IsStdoutTTY() {
				opts.Output.Format = output.FormatJSON
			}
			if err := opts.Output.Resolve(output.FormatTable); err != nil {
				return err
			}
			if opts.Watch && opts.Output.Format != output.FormatJSON {
				return cmdutil.FlagErrorf("--watch goes with -o json (the dashboard updates by itself)")
			}
			if opts.Every <= 0 {
				return cmdutil.FlagErrorf("--every must be positive")
			}
			return run(cmd, f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Watch, "watch", false, "with -o json: print one JSON line per update until interrupted")
	cmd.Flags().DurationVar(&opts.Every, "every", 500*time.Millisecond, "how often to refresh")
	opts.Output.AddFlags(cmd)
	return cmd
}

// Dashboard draws the live dashboard of the server behind client on ios
// (polled every every, with the extra keys actions) until the user quits
// or ctx ends. It fails fast with one line when no server answers, before
// taking over the screen. `aisix status` and `aisix demo` run it.
func Dashboard(ctx context.Context, ios *iostreams.IOStreams, client *admin.Client, url string, every time.Duration, actions []tui.Action) error {
	// The dashboard leaves signals to us: SIGINT (when keys do not come
	// from a terminal) and SIGTERM end it as q does.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if _, err := client.ModelsStatus(ctx); err != nil {
		return fmt.Errorf("status needs a running server: %w", err)
	}
	return tui.Run(ctx, &Source{Client: client, URL: url}, tui.Options{
		Server:       url,
		RefreshEvery: every,
		NoColor:      !ios.ColorEnabled(),
		Input:        ios.In,
		Output:       ios.Out,
		Actions:      actions,
	})
}

func run(cmd *cobra.Command, f *cmdutil.Factory, opts *Options) error {
	client, url, err := f.AdminClient(cmd)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	if opts.Output.Format == output.FormatTable && f.IO.IsStdoutTTY() {
		return Dashboard(ctx, f.IO, client, url, opts.Every, nil)
	}
	if !opts.Watch {
		rows, err := client.ModelsStatus(ctx)
		if err != nil {
			return fmt.Errorf("status needs a running server: %w", err)
		}
		return opts.Output.Print(f.IO, nil, rows, output.Table{})
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	enc := json.NewEncoder(f.IO.Out)
	t := time.NewTicker(opts.Every)
	defer t.Stop()
	for {
		rows, err := client.ModelsStatus(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Fprintf(f.IO.ErrOut, "aisix: status: %v (retrying)\n", err)
		} else if err := enc.Encode(rows); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
