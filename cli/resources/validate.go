package resources

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/storage/resources"
	"github.com/aisix/aisix/storage/sqlite"
)

// ValidateOptions are the inputs of `aisix validate`.
type ValidateOptions struct {
	FileOptions
}

// NewCmdValidate returns the validate command. runF, when set, replaces
// the run (for tests of the flag parsing).
func NewCmdValidate(f *cmdutil.Factory, runF func(context.Context, *ValidateOptions) error) *cobra.Command {
	opts := &ValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate -f FILE",
		Short: "Check a resources file offline: every error with its line, column and field",
		Long: `Check a resources file without changing anything and without a server:
the format, every field by the same rules the store applies, the secrets
(secret_env, secret_file and ${VAR} must resolve), duplicate names, and the
references between entries (provider_key, routing targets, allowed_models).

Every error is printed at once, one a line, as FILE:LINE:COLUMN: PATH: MESSAGE.
In local mode, when the database file exists, references may also name what
it holds. Exit 0 when the file is valid, 1 when it is not.`,
		Example: `  aisix validate -f resources.yaml
  aisix validate -f resources.yaml --allow-unknown   # warn about fields aisix does not know`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.check(); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return validateRun(cmd, f, opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

func validateRun(cmd *cobra.Command, f *cmdutil.Factory, opts *ValidateOptions) error {
	file, err := opts.load(f, localKnown(cmd, f))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f.IO.Out, "%s: ok (%s)\n", opts.File, file.Summary())
	return err
}

// localKnown is the names in the local database file, when there is one
// and it can be read as it is; nil in remote mode (validate never needs
// a server) or without a usable file.
func localKnown(cmd *cobra.Command, f *cmdutil.Factory) *resources.Known {
	cfg, err := f.Config(cmd)
	if err != nil || cfg.IsRemote() || cfg.DB == "" {
		return nil
	}
	if _, err := os.Stat(cfg.DB); err != nil {
		return nil
	}
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	kr, _ := cfg.Keyring() // so encrypted provider keys load (a bad key config is reported by the store commands)
	s, err := sqlite.Open(ctx, cfg.DB, sqlite.WithMigrate(sqlite.MigrateNone), sqlite.WithSecrets(kr))
	if err != nil {
		return nil
	}
	defer s.Close()
	ds, err := s.Load(ctx)
	if err != nil {
		return nil
	}
	return knownOf(ds)
}
