// Package cli is aisix's command tree: the root command, the mapping from
// errors to exit codes, and the wiring of every subcommand. Nothing but
// cmd/aisix imports it.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/adminkey"
	"github.com/aisix/aisix/cli/apikey"
	"github.com/aisix/aisix/cli/audit"
	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/demo"
	"github.com/aisix/aisix/cli/doctor"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/cli/migrate"
	"github.com/aisix/aisix/cli/model"
	"github.com/aisix/aisix/cli/providerkey"
	"github.com/aisix/aisix/cli/resources"
	secretscmd "github.com/aisix/aisix/cli/secrets"
	"github.com/aisix/aisix/cli/serve"
	"github.com/aisix/aisix/cli/status"
	"github.com/aisix/aisix/cli/usage"
)

// Version is stamped at build time with -ldflags "-X github.com/aisix/aisix/cli.Version=…".
var Version = "0.1.0"

// Exit codes.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Main runs aisix with the process's arguments and streams and returns the
// exit code.
func Main() int {
	return Run(context.Background(), os.Args[1:], iostreams.System())
}

// Run runs aisix with the given arguments on the given streams and returns
// the exit code. Tests call it in-process.
func Run(ctx context.Context, args []string, io *iostreams.IOStreams) int {
	f := cmdutil.New(io, Version)
	root := NewCmdRoot(f)
	root.SetArgs(args)
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	rejectUnknownCommands(root) // after SetOut: the completion command keeps the writer it finds
	err := root.ExecuteContext(ctx)
	return exitCode(err, io.ErrOut)
}

// NewCmdRoot builds the command tree.
func NewCmdRoot(f *cmdutil.Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "aisix",
		Short: "aisix: an OpenAI-compatible AI gateway with retries, failover and cooldowns",
		Long: `aisix serves one OpenAI-compatible endpoint and decides which upstream model
answers each request: it retries, fails over and cools broken targets down.

Manage it with the commands below, directly on the SQLite file (local mode) or
through the admin API of a running server (remote mode: --server or AISIX_SERVER).`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       Version,
	}
	root.SetVersionTemplate("aisix {{.Version}}\n")
	root.PersistentFlags().StringVar(&f.ConfigFile, "config", "", "config file (default $XDG_CONFIG_HOME/aisix/config.yaml when present)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cmdutil.FlagError{Err: err}
	})

	pf := root.PersistentFlags()
	pf.String("db", "", "SQLite database file for local mode (default $XDG_DATA_HOME/aisix/aisix.db; env AISIX_DB)")
	pf.String("server", "", "admin API URL for remote mode, e.g. http://127.0.0.1:3001 (env AISIX_SERVER)")
	pf.String("admin-key", "", "admin key for remote mode and status (prefer env AISIX_ADMIN_KEY)")
	pf.String("ca-file", "", "PEM CA bundle to verify an https:// --server with (env AISIX_CA_FILE; default: the system roots)")
	pf.String("client-cert", "", "PEM client certificate for an admin API that requires one (env AISIX_CLIENT_CERT)")
	pf.String("client-key", "", "PEM private key of --client-cert (env AISIX_CLIENT_KEY)")
	pf.Bool("insecure", false, "allow sending the admin key over plain http:// to a host that is not loopback (env AISIX_INSECURE)")
	pf.String("secret-key-file", "", "key file of the key that encrypts provider secrets at rest (env AISIX_SECRET_KEY_FILE; or the key itself in AISIX_SECRET_KEY)")

	root.AddCommand(
		serve.NewCmdServe(f),
		providerkey.NewCmdProviderKey(f),
		model.NewCmdModel(f),
		apikey.NewCmdAPIKey(f),
		adminkey.NewCmdAdminKey(f),
		status.NewCmdStatus(f),
		usage.NewCmdUsage(f, nil),
		audit.NewCmdAudit(f, nil),
		migrate.NewCmdMigrate(f, nil),
		demo.NewCmdDemo(f, nil),
		doctor.NewCmdDoctor(f, nil),
		secretscmd.NewCmdSecrets(f),
		newCmdVersion(f),
	)
	root.AddCommand(resources.NewCmds(f)...)
	return root
}

func newCmdVersion(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the aisix version",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(f.IO.Out, "aisix %s\n", f.Version)
			return err
		},
	}
}

// exitCode prints err as one line on w and chooses the exit code.
func exitCode(err error, w io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var ee *cmdutil.ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil && !errors.Is(ee.Err, cmdutil.ErrSilent) && !errors.Is(ee.Err, cmdutil.ErrCancel) {
			printError(w, ee.Err)
		}
		return ee.Code
	}
	if errors.Is(err, cmdutil.ErrSilent) || errors.Is(err, cmdutil.ErrCancel) {
		return ExitFailure
	}
	msg := printError(w, err)
	var fe *cmdutil.FlagError
	if errors.As(err, &fe) || isCobraUsageError(msg) {
		return ExitUsage
	}
	return ExitFailure
}

// printError prints err as one line and returns that line.
func printError(w io.Writer, err error) string {
	msg := strings.TrimSpace(strings.ReplaceAll(err.Error(), "\n", " "))
	fmt.Fprintf(w, "aisix: %s\n", msg)
	return msg
}

// isCobraUsageError recognises the usage errors cobra makes itself (unknown
// commands, argument counts), which do not go through the flag error func.
func isCobraUsageError(msg string) bool {
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "requires exactly", "invalid argument", "required flag"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, " "+p) {
			return true
		}
	}
	return false
}
