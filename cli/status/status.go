// Package status implements `aisix status`: the live dashboard on a
// terminal, or one JSON snapshot of the status rows for scripts.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/tui"
)

// Options are the inputs of `aisix status`.
type Options struct {
	Output output.Options
	Watch  bool
	Every  time.Duration
	// Limits prints the live limit rows instead of the status rows.
	Limits bool
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
status rows and exits; add --watch for one JSON line per update. With
--limits it prints the live limit rows instead: every caller key, model and
provider_limit that has a limit, with its usage now, its rejections since the
server started and the dimensions at their limit (GET /admin/v1/limits); the
status rows of direct models carry their provider_limit usage too.`,
		Example: `  aisix status
  aisix status -o json | jq '.[] | select(.status == "cooldown")'
  aisix status -o json --watch
  aisix status -o json --limits | jq '.[] | select(.at_limit != [])'`,
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
			if opts.Limits && opts.Output.Format != output.FormatJSON {
				return cmdutil.FlagErrorf("--limits goes with -o json (the dashboard shows the limits by itself)")
			}
			if opts.Every <= 0 {
				return cmdutil.FlagErrorf("--every must be positive")
			}
			return run(cmd, f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Watch, "watch", false, "with -o json: print one JSON line per update until interrupted")
	cmd.Flags().BoolVar(&opts.Limits, "limits", false, "with -o json: print the live limit rows instead of the status rows")
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
	fetch := func(ctx context.Context) (any, error) { return client.ModelsStatus(ctx) }
	if opts.Limits {
		fetch = func(ctx context.Context) (any, error) {
			rows, err := client.Limits(ctx)
			if errors.Is(err, storage.ErrNotFound) {
				return nil, errors.New("this server has no limits API (GET /admin/v1/limits): upgrade it")
			}
			return rows, err
		}
	}
	if !opts.Watch {
		rows, err := fetch(ctx)
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
		rows, err := fetch(ctx)
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
