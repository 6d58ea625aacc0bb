// Package providerkey implements `aisix provider-key`: create, list, get,
// update and delete upstream credentials. Secrets are read from stdin, an
// environment variable or a hidden prompt, and never printed.
package providerkey

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// NewCmdProviderKey returns the provider-key command group.
func NewCmdProviderKey(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "provider-key <command>",
		Aliases: []string{"provider-keys", "pk"},
		Short:   "Manage upstream provider keys (credentials and API bases)",
	}
	cmd.AddCommand(newCmdCreate(f, nil), newCmdList(f, nil), newCmdGet(f, nil), newCmdUpdate(f, nil), newCmdDelete(f, nil), newCmdTest(f, nil))
	return cmd
}

// CreateOptions are the inputs of `provider-key create`.
type CreateOptions struct {
	Name, Provider, Adapter, APIBase string
	// APIVersion is the Azure OpenAI api-version (azure-openai only).
	APIVersion     string
	ForwardHeaders []string
	// TLS is the upstream TLS files (paths on the gateway's machine).
	TLS    upstreamTLS
	Secret cmdutil.SecretFlags
	Output output.Options
}

// upstreamTLS are the --tls-* flags' values.
type upstreamTLS struct{ CAFile, CertFile, KeyFile string }

// upstreamTLSFlags are the --tls-* flags, with their usage.
var upstreamTLSFlags = [...]struct{ name, usage string }{
	{"tls-ca-file", "PEM CA bundle (absolute path on the gateway's machine) that verifies the upstream instead of the system roots"},
	{"tls-cert-file", "PEM client certificate (absolute path on the gateway's machine) presented to the upstream; with --tls-key-file"},
	{"tls-key-file", "PEM private key of --tls-cert-file (absolute path on the gateway's machine)"},
}

// addUpstreamTLSFlags adds the --tls-* flags, bound to u; extra is added
// to each usage.
func addUpstreamTLSFlags(cmd *cobra.Command, u *upstreamTLS, extra string) {
	for i, dst := range []*string{&u.CAFile, &u.CertFile, &u.KeyFile} {
		cmd.Flags().StringVar(dst, upstreamTLSFlags[i].name, "", upstreamTLSFlags[i].usage+extra)
	}
}

func newCmdCreate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a provider key",
		Example: `  printf '%s' "$OPENAI_API_KEY" | aisix provider-key create --name openai-primary \
      --provider openai --api-base https://api.openai.com/v1 --secret-stdin
  aisix provider-key create --name openai-secondary --provider openai --secret-env OPENAI_API_KEY -q
  aisix provider-key create --name azure-east --adapter azure-openai --api-base myres \
      --api-version 2024-10-21 --secret-env AZURE_OPENAI_API_KEY
  # Entra ID (service principal) instead of an api-key:
  printf '%s' '{"tenant_id":"…","client_id":"…","client_secret":"…"}' | aisix provider-key create \
      --name azure-entra --adapter azure-openai --api-base https://myres.openai.azure.com --secret-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Name == "" {
				return cmdutil.FlagErrorf("--name is required")
			}
			if opts.Provider == "" && opts.Adapter == "" {
				return cmdutil.FlagErrorf("--provider or --adapter is required")
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return createRun(cmd.Context(), f, cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Name, "name", "", "display name (unique)")
	fl.StringVar(&opts.Provider, "provider", "", "vendor label, e.g. openai")
	fl.StringVar(&opts.Adapter, "adapter", "", "wire family: openai, anthropic, azure-openai, bedrock, vertex, gemini (default: from --provider)")
	fl.StringVar(&opts.APIBase, "api-base", "", "upstream base URL, e.g. https://api.openai.com/v1 (azure-openai: also a bare resource name)")
	fl.StringVar(&opts.APIVersion, "api-version", "", apiVersionUsage)
	addForwardHeaderFlag(cmd, &opts.ForwardHeaders)
	addUpstreamTLSFlags(cmd, &opts.TLS, "")
	addSecretFlags(cmd, &opts.Secret)
	opts.Output.AddFlags(cmd)
	return cmd
}

const apiVersionUsage = "Azure OpenAI api-version, e.g. 2024-10-21, 2025-01-01-preview or v1 (azure-openai only; default 2024-10-21)"

func addForwardHeaderFlag(cmd *cobra.Command, names *[]string) {
	cmd.Flags().StringArrayVar(names, "forward-header", nil, "caller request header to send upstream too, e.g. X-Trace-Id (repeat)")
}

func addSecretFlags(cmd *cobra.Command, sf *cmdutil.SecretFlags) {
	fl := cmd.Flags()
	fl.BoolVar(&sf.Stdin, "secret-stdin", false, "read the secret from standard input")
	fl.StringVar(&sf.Env, "secret-env", "", "read the secret from this environment variable")
	fl.StringVar(&sf.Value, "secret", "", "the secret itself (lands in shell history; prefer --secret-stdin)")
}

func createRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *CreateOptions) error {
	secret, err := opts.Secret.Read(f.IO, "secret", true)
	if err != nil {
		return err
	}
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{
			DisplayName: opts.Name, Provider: opts.Provider, Adapter: opts.Adapter,
			APIBase: opts.APIBase, Secret: secret, ForwardHeaders: opts.ForwardHeaders,
			APIVersion: opts.APIVersion,
			TLSCAFile:  opts.TLS.CAFile, TLSCertFile: opts.TLS.CertFile, TLSKeyFile: opts.TLS.KeyFile,
		})
		if err != nil {
			return fmt.Errorf("provider key %q: %w", opts.Name, err)
		}
		return printOne(f, &opts.Output, pk)
	})
}

// ListOptions are the inputs of `provider-key list`.
type ListOptions struct{ Output output.Options }

func newCmdList(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List provider keys (secrets masked)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				all, err := s.ListProviderKeys(ctx)
				if err != nil {
					return err
				}
				return printMany(f, &opts.Output, all)
			})
		},
	}
	opts.Output.AddFlags(cmd)
	return cmd
}

// GetOptions are the inputs of `provider-key get`.
type GetOptions struct {
	Ref    string
	Output output.Options
}

func newCmdGet(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *GetOptions) error) *cobra.Command {
	opts := &GetOptions{}
	cmd := &cobra.Command{
		Use:               "get <name|id>",
		Short:             "Show one provider key (secret masked)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				pk, err := cmdutil.FindProviderKey(ctx, s, opts.Ref)
				if err != nil {
					return err
				}
				return printOne(f, &opts.Output, pk)
			})
		},
	}
	opts.Output.AddFlags(cmd)
	return cmd
}

// UpdateOptions are the inputs of `provider-key update`: only flags that were
// set change the key.
type UpdateOptions struct {
	Ref                              string
	Name, Provider, Adapter, APIBase *string
	// APIVersion, when set, replaces the api-version ("" for the default).
	APIVersion *string
	// ForwardHeaders, when set, replaces the list (empty: forward none).
	ForwardHeaders *[]string
	// TLSCAFile, TLSCertFile and TLSKeyFile, when set, replace the
	// upstream TLS files ("" removes one).
	TLSCAFile, TLSCertFile, TLSKeyFile *string
	Secret                             cmdutil.SecretFlags
	Output                             output.Options
}

func newCmdUpdate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{}
	var (
		name, provider, adapter, apiBase, apiVersion string
		forward                                      []string
		clearForward                                 bool
		tlsFiles                                     upstreamTLS
	)
	cmd := &cobra.Command{
		Use:   "update <name|id>",
		Short: "Change a provider key; only the flags given change (the secret is kept unless a new one is given)",
		Long: `Change a provider key; only the flags given change. The secret is kept unless a
new one is given, and stays bound to the host it was entered for: after
--api-base moves the key to another host, requests go there without it
(shown as "re-enter for HOST") until the secret is given again or --api-base
points back.`,
		Example: `  aisix provider-key update openai-primary --api-base https://api.openai.invalid/v1
  printf '%s' "$NEW_KEY" | aisix provider-key update openai-primary --secret-stdin
  aisix provider-key update openai-primary --forward-header X-Trace-Id --forward-header OpenAI-Beta
  aisix provider-key update openai-primary --clear-forward-headers`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			fl := cmd.Flags()
			if fl.Changed("name") {
				opts.Name = &name
			}
			if fl.Changed("provider") {
				opts.Provider = &provider
			}
			if fl.Changed("adapter") {
				opts.Adapter = &adapter
			}
			if fl.Changed("api-base") {
				opts.APIBase = &apiBase
			}
			if fl.Changed("api-version") {
				opts.APIVersion = &apiVersion
			}
			if fl.Changed("tls-ca-file") {
				opts.TLSCAFile = &tlsFiles.CAFile
			}
			if fl.Changed("tls-cert-file") {
				opts.TLSCertFile = &tlsFiles.CertFile
			}
			if fl.Changed("tls-key-file") {
				opts.TLSKeyFile = &tlsFiles.KeyFile
			}
			switch {
			case clearForward && fl.Changed("forward-header"):
				return cmdutil.FlagErrorf("--forward-header and --clear-forward-headers cannot be used together")
			case clearForward:
				opts.ForwardHeaders = &[]string{}
			case fl.Changed("forward-header"):
				opts.ForwardHeaders = &forward
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return updateRun(cmd.Context(), f, cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "new display name")
	fl.StringVar(&provider, "provider", "", "vendor label")
	fl.StringVar(&adapter, "adapter", "", "wire family")
	fl.StringVar(&apiBase, "api-base", "", "upstream base URL")
	fl.StringVar(&apiVersion, "api-version", "", apiVersionUsage+"; \"\" for the default")
	addForwardHeaderFlag(cmd, &forward)
	fl.BoolVar(&clearForward, "clear-forward-headers", false, "forward no caller headers beyond the adapter's own")
	addUpstreamTLSFlags(cmd, &tlsFiles, "; \"\" removes it")
	addSecretFlags(cmd, &opts.Secret)
	opts.Output.AddFlags(cmd)
	return cmd
}

func updateRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *UpdateOptions) error {
	secret, err := opts.Secret.Read(f.IO, "secret", false)
	if err != nil {
		return err
	}
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		pk, err := cmdutil.FindProviderKey(ctx, s, opts.Ref)
		if err != nil {
			return err
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&pk.DisplayName, opts.Name)
		set(&pk.Provider, opts.Provider)
		set(&pk.Adapter, opts.Adapter)
		set(&pk.APIBase, opts.APIBase)
		set(&pk.APIVersion, opts.APIVersion)
		set(&pk.TLSCAFile, opts.TLSCAFile)
		set(&pk.TLSCertFile, opts.TLSCertFile)
		set(&pk.TLSKeyFile, opts.TLSKeyFile)
		if opts.ForwardHeaders != nil {
			pk.ForwardHeaders = *opts.ForwardHeaders // the given flags replace the list
		}
		pk.Secret = secret // empty keeps the stored secret
		updated, err := s.UpdateProviderKey(ctx, pk, pk.Revision)
		if err != nil {
			return fmt.Errorf("provider key %q: %w", opts.Ref, err)
		}
		return printOne(f, &opts.Output, updated)
	})
}

// DeleteOptions are the inputs of `provider-key delete`.
type DeleteOptions struct {
	Ref string
	Yes bool
}

func newCmdDelete(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *DeleteOptions) error) *cobra.Command {
	opts := &DeleteOptions{}
	cmd := &cobra.Command{
		Use:               "delete <name|id>",
		Aliases:           []string{"rm"},
		Short:             "Delete a provider key (refused while a model uses it)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeNames(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				pk, err := cmdutil.FindProviderKey(ctx, s, opts.Ref)
				if err != nil {
					return err
				}
				if err := cmdutil.ConfirmDelete(f.IO, opts.Yes, fmt.Sprintf("provider key %q", pk.DisplayName)); err != nil {
					return err
				}
				if err := s.DeleteProviderKey(ctx, pk.ID); err != nil {
					return err
				}
				fmt.Fprintf(f.IO.ErrOut, "Deleted provider key %s (%s)\n", pk.DisplayName, pk.ID)
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation (required without a terminal)")
	return cmd
}

func printOne(f *cmdutil.Factory, o *output.Options, pk storage.ProviderKey) error {
	return o.Print(f.IO, []string{pk.ID}, admin.ProviderKeyEntry(pk), table([]storage.ProviderKey{pk}))
}

func printMany(f *cmdutil.Factory, o *output.Options, all []storage.ProviderKey) error {
	ids := make([]string, len(all))
	entries := make([]any, len(all))
	for i, pk := range all {
		ids[i] = pk.ID
		entries[i] = admin.ProviderKeyEntry(pk)
	}
	return o.Print(f.IO, ids, entries, table(all))
}

func table(all []storage.ProviderKey) output.Table {
	t := output.Table{Headers: []string{"name", "id", "provider", "adapter", "api base", "api version", "secret", "forward headers", "revision", "updated"}}
	for _, pk := range all {
		t.Rows = append(t.Rows, []string{pk.DisplayName, pk.ID, output.Or(pk.Provider), output.Or(pk.EffectiveAdapter()),
			output.Or(pk.APIBase), output.Or(pk.APIVersion), secretColumn(pk), output.Or(strings.Join(pk.ForwardHeaders, ",")),
			fmt.Sprint(pk.Revision), output.Time(pk.UpdatedAt)})
	}
	return t
}

// secretColumn is the masked secret, and a note when it was entered for
// another host than api_base names now, so the proxy does not send it.
func secretColumn(pk storage.ProviderKey) string {
	hint := pk.SecretHint
	if hint == "" {
		hint = storage.MaskSecret(pk.Secret)
	}
	if pk.SecretBound() {
		return hint
	}
	if host := pk.BaseHost(); host != "" {
		return hint + " (re-enter for " + host + ")"
	}
	return hint + " (re-enter)"
}

// completeNames completes provider key names from the configured store.
func completeNames(f *cmdutil.Factory) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return cmdutil.CompleteNames(f, func(ctx context.Context, s storage.Store) ([]string, error) {
		all, err := s.ListProviderKeys(ctx)
		names := make([]string, len(all))
		for i, pk := range all {
			names[i] = pk.DisplayName
		}
		return names, err
	})
}
