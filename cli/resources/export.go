package resources

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/resources"
)

// ExportOptions are the inputs of `aisix export`.
type ExportOptions struct {
	Format string
	Kinds  []string
	// Out is the file to write, "" for stdout.
	Out string
}

// NewCmdExport returns the export command. runF, when set, replaces the run.
func NewCmdExport(f *cmdutil.Factory, runF func(context.Context, *ExportOptions) error) *cobra.Command {
	opts := &ExportOptions{}
	var kinds string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the store as a resources file that apply accepts",
		Long: `Write the store's provider keys, models and caller keys as a resources file:
no ids, revisions or timestamps, entries sorted by name, references by name.
Applying it to the same store changes nothing.

Secrets are never written. Each provider key gets a placeholder,
secret_env: AISIX_SECRET_<NAME> (the name upper-cased, other characters than
letters and digits as _): set those variables before applying the file
elsewhere, or replace them with your own secret_env, secret_file or ${VAR}.
Caller keys are written as key_hash; a caller key without a display name
cannot be named in a file and is left out, with a note on stderr.`,
		Example: `  aisix export > resources.yaml
  aisix export -o json --kind models,api_keys
  aisix --server https://gw.example.com export -f prod.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch opts.Format {
			case "":
				opts.Format = "yaml"
			case "yaml", "json":
			default:
				return cmdutil.FlagErrorf("--output must be yaml or json (got %q)", opts.Format)
			}
			for _, k := range strings.Split(kinds, ",") {
				if k = strings.TrimSpace(k); k == "" {
					continue
				}
				if !slices.Contains(resources.Kinds, k) {
					return cmdutil.FlagErrorf("--kind must list %s (got %q)", strings.Join(resources.Kinds, ", "), k)
				}
				opts.Kinds = append(opts.Kinds, k)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				return exportRun(ctx, f, s, opts)
			})
		},
	}
	cmd.Flags().StringVarP(&opts.Format, "output", "o", "", "output format: yaml or json")
	cmd.Flags().StringVar(&kinds, "kind", "", "only these kinds: a comma-separated list of provider_keys, models, api_keys")
	cmd.Flags().StringVarP(&opts.Out, "file", "f", "", "write to this file instead of stdout")
	return cmd
}

func exportRun(ctx context.Context, f *cmdutil.Factory, s storage.Store, opts *ExportOptions) error {
	ds, err := readStore(ctx, s)
	if err != nil {
		return err
	}
	file := resources.Export(ds, opts.Kinds)
	data, err := resources.Marshal(file, opts.Format)
	if err != nil {
		return err
	}
	if opts.Out == "" {
		if _, err := f.IO.Out.Write(data); err != nil {
			return err
		}
	} else if err := os.WriteFile(opts.Out, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", opts.Out, err)
	}
	if envs := file.SecretEnvs(); len(envs) > 0 {
		fmt.Fprintf(f.IO.ErrOut, "note: secrets are not exported; before applying, set %s to the provider keys' secrets (or edit secret_env)\n", strings.Join(envs, ", "))
	}
	for _, s := range file.Skipped {
		fmt.Fprintf(f.IO.ErrOut, "note: left out %s\n", s)
	}
	for _, u := range ds.Unreadable {
		fmt.Fprintf(f.IO.ErrOut, "note: left out unreadable %s %s (%s): %s\n", kindName(u.Kind), u.Name, u.ID, u.Reason)
	}
	return nil
}

// NewCmdSchema returns the schema command.
func NewCmdSchema(f *cmdutil.Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the resources file",
		Long: `Print a JSON Schema (draft 2020-12) of the resources file, for editors and CI
linters. validate checks more: references, secrets and every value's range.`,
		Example: `  aisix schema > resources.schema.json
  # in resources.yaml, for the YAML language server:
  # yaml-language-server: $schema=./resources.schema.json`,
		Args: cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			_, err := f.IO.Out.Write(resources.Schema())
			return err
		},
	}
}
