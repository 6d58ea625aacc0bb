// Package demo implements `aisix demo`: the product tutorial running on
// its own, in one command, with nothing to install or configure. It starts
// `aisix serve` in-process on a temporary store and free loopback ports,
// two mock OpenAI upstreams (mockopenai), the tutorial's provider keys,
// models, routing group and caller key, and a gentle stream of traffic;
// then it opens the status dashboard with extra keys that break the
// primary upstream and restore it. Off a terminal (or with --no-tui) it
// runs a scripted failover-and-recovery scenario instead and exits.
//
// Everything it starts is stopped, and its temporary directory removed,
// when it ends: q, Ctrl-C, SIGTERM, or the end of the scenario.
package demo

import (
	"context"
	"fmt"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/demo/mockopenai"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/cli/status"
	"github.com/aisix/aisix/tui"
)

// Options are the inputs of `aisix demo`.
type Options struct {
	IO      *iostreams.IOStreams
	Version string
	// NoTUI runs the scripted scenario instead of the dashboard; it is
	// forced when stdout is not a terminal.
	NoTUI bool
	// DB is a store file to keep after the demo (--db); empty means one
	// in the temporary directory.
	DB string

	// Tests tune these; the command leaves them zero for the defaults.
	cfg stackConfig
}

// NewCmdDemo returns the demo command. runF replaces the run in tests.
func NewCmdDemo(f *cmdutil.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IO, Version: f.Version}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Watch a failover and a recovery: a gateway, two mock upstreams and traffic, in one command",
		Long: `Start everything the tutorial needs and open the status dashboard on it:
aisix serve on a temporary store and free loopback ports (127.0.0.1:3000 and
127.0.0.1:3001 when they are free), two mock OpenAI upstreams, the tutorial's
provider keys, models gpt-4o-primary and gpt-4o-secondary, the failover group
chat-prod and a caller key, and 2-4 requests a second to chat-prod.

In the dashboard, 1 makes the primary refuse connections, 2 hang, 3 answer
500, 4 answer 429; 0 restores it. q or Ctrl-C stops everything the demo
started and removes its temporary directory. The URLs and keys to reach the
running demo with curl or aisix are printed before and after the dashboard.

Off a terminal, or with --no-tui, it runs a scripted scenario instead
(healthy, break, failover, cooldown, restore, recovery), prints each step
with the response headers, and exits 0 when every step behaved.

No network, no config file: nothing is written outside a temporary
directory unless --db names a store file to keep.`,
		Example: `  aisix demo
  aisix demo --no-tui
  aisix demo --db ./demo.db`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("db") {
				db, err := cmd.Flags().GetString("db")
				if err != nil {
					return err
				}
				if db == "" {
					return cmdutil.FlagErrorf("--db needs a file name")
				}
				opts.DB = db
			}
			if !opts.IO.IsStdoutTTY() {
				opts.NoTUI = true
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			if runF != nil {
				return runF(ctx, opts)
			}
			return Run(ctx, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.NoTUI, "no-tui", false, "run the scripted scenario and exit, instead of the dashboard")
	return cmd
}

// dashboardRefresh is how often the demo's dashboard polls the server.
const dashboardRefresh = 500 * time.Millisecond

// Run runs the demo until the dashboard quits, ctx ends or the scenario
// is over, then stops everything it started.
func Run(ctx context.Context, opts *Options) (err error) {
	out := opts.IO.Out
	st, err := startStack(ctx, opts.cfg.withDefaults(), opts.DB, opts.Version)
	if err != nil {
		return err
	}
	defer func() {
		if serr := st.stop(); serr != nil && err == nil {
			err = serr
		}
		fmt.Fprintf(out, "demo stopped: gateway drained, mock upstreams closed; %s removed\n", st.dir)
	}()

	if opts.NoTUI {
		fmt.Fprintln(out, "aisix demo: a scripted failover and recovery (run it in a terminal for the live dashboard)")
		st.printAccess(out)
		return runScenario(ctx, out, st)
	}

	stopTraffic := startTraffic(ctx, st.proxyURL, st.callerKey)
	defer stopTraffic()
	fmt.Fprintln(out, "aisix demo: opening the dashboard (1-4 break the primary, 0 restores it, q quits)")
	st.printAccess(out)
	err = status.Dashboard(ctx, opts.IO, st.client, st.adminURL, dashboardRefresh, breakKeys(st.primary))
	fmt.Fprintln(out, "dashboard closed; stopping the demo that ran on:")
	st.printAccess(out)
	return err
}

// breakKeys are the dashboard's extra keys: break the primary four ways,
// or restore it.
func breakKeys(primary *mockopenai.Server) []tui.Action {
	set := func(m mockopenai.Mode) func(context.Context) string {
		return func(context.Context) string {
			if err := primary.SetMode(m); err != nil {
				return "primary: " + err.Error()
			}
			if m == mockopenai.Healthy {
				return "primary restored: it serves again once its cooldown ends"
			}
			return "primary now " + m.String()
		}
	}
	return []tui.Action{
		{Key: "1", Help: "refuse", Run: set(mockopenai.Refuse)},
		{Key: "2", Help: "hang", Run: set(mockopenai.Hang)},
		{Key: "3", Help: "500", Run: set(mockopenai.ServerError)},
		{Key: "4", Help: "429", Run: set(mockopenai.RateLimited)},
		{Key: "0", Help: "restore primary", Run: set(mockopenai.Healthy)},
	}
}
