// Package apikey implements `aisix apikey`: caller keys. aisix generates a
// strong key, stores only its SHA-256, and prints the plaintext exactly once.
package apikey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
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

// NewCmdAPIKey returns the apikey command group.
func NewCmdAPIKey(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "apikey <command>",
		Aliases: []string{"apikeys", "api-key"},
		Short:   "Manage caller API keys (only their SHA-256 is stored)",
	}
	cmd.AddCommand(newCmdCreate(f, nil), newCmdList(f), newCmdGet(f), newCmdUpdate(f, nil), newCmdDelete(f), newCmdRotate(f))
	return cmd
}

// CreateOptions are the inputs of `apikey create`.
type CreateOptions struct {
	Name          string
	AllowedModels []string
	KeyHash       string
	KeyStdin      bool
	KeyFile       string
	ExpiresIn     time.Duration
	Disable       bool
	RateLimit     limits.RateFlags
	Budget        limits.BudgetFlags
	Output        output.Options
}

// created is the machine shape of a create or rotate: the entry, and the
// plaintext when aisix generated it (shown this once).
type created struct {
	Entry     any    `json:"entry"`
	Plaintext string `json:"plaintext,omitempty"`
}

func newCmdCreate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *CreateOptions) error) *cobra.Command {
	opts := &CreateOptions{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a caller key and print it once",
		Example: `  aisix apikey create --name app-prod --allow-model chat-prod
  aisix apikey create --name ci --allow-model chat-prod --rpm 60 --tpm 100000 --concurrency 4 --budget 50/month
  aisix apikey create --allow-model '*' --expires-in 720h -o json
  printf '%s' "$CALLER_KEY" | aisix apikey create --allow-model chat-prod --key-stdin -q`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(opts.AllowedModels) == 0 {
				return cmdutil.FlagErrorf("at least one --allow-model is required (use '*' for every model)")
			}
			if opts.KeyHash != "" && opts.KeyStdin {
				return cmdutil.FlagErrorf("--key-hash and --key-stdin cannot be used together")
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			generated := opts.KeyHash == "" && !opts.KeyStdin
			if generated && opts.Output.Quiet && opts.KeyFile == "" {
				return cmdutil.FlagErrorf("-q would lose the generated key: add --key-file PATH, or use -o json")
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return createRun(cmd.Context(), f, cmd, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Name, "name", "", "display name (optional, unique)")
	fl.StringArrayVar(&opts.AllowedModels, "allow-model", nil, "model the key may call (repeat; '*' for all)")
	fl.StringVar(&opts.KeyHash, "key-hash", "", "store this precomputed lower-case hex SHA-256 instead of generating a key")
	fl.BoolVar(&opts.KeyStdin, "key-stdin", false, "read the plaintext key to use from standard input")
	fl.StringVar(&opts.KeyFile, "key-file", "", "also write the generated key to this file (mode 0600)")
	fl.DurationVar(&opts.ExpiresIn, "expires-in", 0, "expire the key after this long, e.g. 720h")
	fl.BoolVar(&opts.Disable, "disable", false, "create the key disabled")
	opts.RateLimit.Add(fl, "", "the key", "")
	opts.Budget.Add(fl, "the key", false)
	opts.Output.AddFlags(cmd)
	return cmd
}

func createRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *CreateOptions) error {
	k := storage.APIKey{DisplayName: opts.Name, AllowedModels: opts.AllowedModels, Disabled: opts.Disable, KeyHash: opts.KeyHash}
	var err error
	if k.RateLimit, err = opts.RateLimit.Apply(cmd.Flags(), nil); err != nil {
		return err
	}
	if k.Budget, err = opts.Budget.Apply(cmd.Flags(), nil); err != nil {
		return err
	}
	var plaintext string
	switch {
	case opts.KeyStdin:
		sf := cmdutil.SecretFlags{Stdin: true}
		key, err := sf.Read(f.IO, "key", true)
		if err != nil {
			return err
		}
		k.KeyHash = Hash(key)
	case opts.KeyHash == "":
		key, err := Generate()
		if err != nil {
			return err
		}
		plaintext, k.KeyHash = key, Hash(key)
	}
	if opts.ExpiresIn > 0 {
		t := f.Now().Add(opts.ExpiresIn).UTC().Truncate(time.Second)
		k.ExpiresAt = &t
	}
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		stored, err := s.CreateAPIKey(ctx, k)
		if err != nil {
			return err
		}
		return printCreated(f, &opts.Output, stored, plaintext, opts.KeyFile)
	})
}

func printCreated(f *cmdutil.Factory, o *output.Options, k storage.APIKey, plaintext, keyFile string) error {
	if plaintext != "" && keyFile != "" {
		if err := os.WriteFile(keyFile, []byte(plaintext+"\n"), 0o600); err != nil {
			return fmt.Errorf("write key file: %w", err)
		}
	}
	switch {
	case o.Quiet:
		_, err := fmt.Fprintln(f.IO.Out, k.ID)
		return err
	case o.Format != output.FormatTable:
		return o.Print(f.IO, nil, created{Entry: admin.APIKeyEntry(k), Plaintext: plaintext}, output.Table{})
	}
	if err := output.WriteTable(f.IO, table([]storage.APIKey{k})); err != nil {
		return err
	}
	if plaintext != "" {
		fmt.Fprintf(f.IO.Out, "\nCaller key (shown only now; aisix stores its SHA-256):\n%s\n", plaintext)
	}
	return nil
}

func newCmdList(f *cmdutil.Factory) *cobra.Command {
	var o output.Options
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List caller keys",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Prepare(f, cmd); err != nil {
				return err
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				all, err := s.ListAPIKeys(ctx)
				if err != nil {
					return err
				}
				ids := make([]string, len(all))
				entries := make([]any, len(all))
				for i, k := range all {
					ids[i], entries[i] = k.ID, admin.APIKeyEntry(k)
				}
				return o.Print(f.IO, ids, entries, table(all))
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
		Short: "Show one caller key",
		Long: `Show one caller key. On a terminal a "Limits" section follows: its rate
limits and budget, and, when the store is a running server (--remote), what
the gateway counts now against each (rpm 12/60). -o json shows the same as
the entry's rate_limit, budget and limit_usage objects.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Prepare(f, cmd); err != nil {
				return err
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				k, err := cmdutil.FindAPIKey(ctx, s, args[0])
				if err != nil {
					return err
				}
				if k.LimitUsage == nil && (!k.RateLimit.IsZero() || k.Budget != nil) {
					// Found by name in the list, which carries no usage:
					// the read of the one key does, from a server.
					if k, err = s.GetAPIKey(ctx, k.ID); err != nil {
						return err
					}
				}
				if err := o.Print(f.IO, []string{k.ID}, admin.APIKeyEntry(k), table([]storage.APIKey{k})); err != nil {
					return err
				}
				if o.Format != output.FormatTable || o.Quiet || !f.IO.IsStdoutTTY() {
					return nil // piped tables stay one row per key
				}
				return printLimits(f, &k)
			})
		},
	}
	o.AddFlags(cmd)
	return cmd
}

// UpdateOptions are the inputs of `apikey update`.
type UpdateOptions struct {
	Ref           string
	Name          string
	AllowedModels []string
	ExpiresIn     time.Duration
	NoExpires     bool
	Disable       bool
	Enable        bool
	RateLimit     limits.RateFlags
	Budget        limits.BudgetFlags
	Output        output.Options
}

func newCmdUpdate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *UpdateOptions) error) *cobra.Command {
	opts := &UpdateOptions{}
	cmd := &cobra.Command{
		Use:   "update <name|id>",
		Short: "Change a caller key; only the flags given change (never its secret: see rotate)",
		Example: `  aisix apikey update ci --rpm 120 --budget 100/month
  aisix apikey update ci --tpm 0 --no-budget
  aisix apikey update app-prod --allow-model chat-prod --allow-model embed --no-expires`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Ref = args[0]
			fl := cmd.Flags()
			for _, pair := range [][2]string{{"disable", "enable"}, {"expires-in", "no-expires"}} {
				if fl.Changed(pair[0]) && fl.Changed(pair[1]) {
					return cmdutil.FlagErrorf("--%s and --%s cannot be used together", pair[0], pair[1])
				}
			}
			if fl.Changed("expires-in") && opts.ExpiresIn <= 0 {
				return cmdutil.FlagErrorf("--expires-in must be a positive duration such as 720h (--no-expires removes the expiry)")
			}
			if fl.Changed("allow-model") && len(opts.AllowedModels) == 0 {
				return cmdutil.FlagErrorf("--allow-model needs a model name ('*' for every model)")
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
	fl.StringVar(&opts.Name, "name", "", "new display name (\"\" removes it)")
	fl.StringArrayVar(&opts.AllowedModels, "allow-model", nil, "replace the allowed models with these (repeat; '*' for all)")
	fl.DurationVar(&opts.ExpiresIn, "expires-in", 0, "expire the key this long from now, e.g. 720h")
	fl.BoolVar(&opts.NoExpires, "no-expires", false, "remove the key's expiry")
	fl.BoolVar(&opts.Disable, "disable", false, "disable the key")
	fl.BoolVar(&opts.Enable, "enable", false, "enable the key")
	opts.RateLimit.Add(fl, "", "the key", "no-rate-limit")
	opts.Budget.Add(fl, "the key", true)
	opts.Output.AddFlags(cmd)
	return cmd
}

// apply sets on k every field whose flag was given.
func (opts *UpdateOptions) apply(f *cmdutil.Factory, fl *pflag.FlagSet, k *storage.APIKey) error {
	if fl.Changed("name") {
		k.DisplayName = opts.Name
	}
	if fl.Changed("allow-model") {
		k.AllowedModels = opts.AllowedModels
	}
	switch {
	case fl.Changed("expires-in"):
		t := f.Now().Add(opts.ExpiresIn).UTC().Truncate(time.Second)
		k.ExpiresAt = &t
	case opts.NoExpires:
		k.ExpiresAt = nil
	}
	switch {
	case opts.Disable:
		k.Disabled = true
	case opts.Enable:
		k.Disabled = false
	}
	var err error
	if k.RateLimit, err = opts.RateLimit.Apply(fl, k.RateLimit); err != nil {
		return err
	}
	k.Budget, err = opts.Budget.Apply(fl, k.Budget)
	return err
}

func updateRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *UpdateOptions) error {
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		k, err := cmdutil.FindAPIKey(ctx, s, opts.Ref)
		if err != nil {
			return err
		}
		if err := opts.apply(f, cmd.Flags(), &k); err != nil {
			return err
		}
		// The key hash is sent back as read: update never changes the secret.
		updated, err := s.UpdateAPIKey(ctx, k, k.Revision)
		if err != nil {
			return fmt.Errorf("API key %s: %w", label(k), err)
		}
		return opts.Output.Print(f.IO, []string{updated.ID}, admin.APIKeyEntry(updated), table([]storage.APIKey{updated}))
	})
}

func newCmdDelete(f *cmdutil.Factory) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete <name|id>",
		Aliases: []string{"rm"},
		Short:   "Delete a caller key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				k, err := cmdutil.FindAPIKey(ctx, s, args[0])
				if err != nil {
					return err
				}
				if err := cmdutil.ConfirmDelete(f.IO, yes, fmt.Sprintf("API key %s", label(k))); err != nil {
					return err
				}
				if err := s.DeleteAPIKey(ctx, k.ID); err != nil {
					return err
				}
				fmt.Fprintf(f.IO.ErrOut, "Deleted API key %s\n", label(k))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation (required without a terminal)")
	return cmd
}

func newCmdRotate(f *cmdutil.Factory) *cobra.Command {
	var o output.Options
	var keyFile string
	cmd := &cobra.Command{
		Use:   "rotate <name|id>",
		Short: "Replace a caller key with a new generated one; the old one stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.Prepare(f, cmd); err != nil {
				return err
			}
			if o.Quiet && keyFile == "" {
				return cmdutil.FlagErrorf("-q would lose the new key: add --key-file PATH, or use -o json")
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				k, err := cmdutil.FindAPIKey(ctx, s, args[0])
				if err != nil {
					return err
				}
				key, err := Generate()
				if err != nil {
					return err
				}
				k.KeyHash = Hash(key)
				updated, err := s.UpdateAPIKey(ctx, k, k.Revision)
				if err != nil {
					return err
				}
				return printCreated(f, &o, updated, key, keyFile)
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "also write the new key to this file (mode 0600)")
	o.AddFlags(cmd)
	return cmd
}

// Generate returns a new caller key: "sk-" and 48 hex characters (192 bits).
func Generate() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate key: %w", err)
	}
	return "sk-" + hex.EncodeToString(b), nil
}

// Hash returns the lower-case hex SHA-256 of a caller key, as stored.
func Hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

func label(k storage.APIKey) string {
	if k.DisplayName != "" {
		return fmt.Sprintf("%s (%s)", k.DisplayName, k.ID)
	}
	return k.ID
}

func table(all []storage.APIKey) output.Table {
	t := output.Table{Headers: []string{"name", "id", "allowed models", "state", "expires", "limits", "key hash"}}
	for _, k := range all {
		state := "active"
		switch {
		case k.Disabled:
			state = "disabled"
		case k.ExpiresAt != nil && k.ExpiresAt.Before(time.Now()):
			state = "expired"
		}
		expires := "-"
		if k.ExpiresAt != nil {
			expires = output.Time(*k.ExpiresAt)
		}
		t.Rows = append(t.Rows, []string{output.Or(k.DisplayName), k.ID, strings.Join(k.AllowedModels, ","), state, expires,
			output.Or(limits.Compact(k.RateLimit, k.Budget)), shortHash(k.KeyHash)})
	}
	return t
}

func shortHash(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// printLimits writes the "Limits" section of `apikey get`: each limit, and
// the usage against it when the server reported some.
func printLimits(f *cmdutil.Factory, k *storage.APIKey) error {
	rows := limits.Rows("", k.RateLimit, k.Budget, k.LimitUsage)
	if len(rows) == 0 {
		rows = [][2]string{{"none", "no rate limit or budget"}}
	}
	title := "Limits:"
	if k.LimitUsage != nil {
		title = "Limits (used now/limit):"
	}
	return limits.WriteSection(f.IO.Out, title, rows)
}
