// Package adminkey implements `aisix admin-key`: scoped keys to the admin
// API. aisix mints a strong key, stores only its SHA-256 (through the
// store or the admin API: the plaintext never travels), and prints the
// plaintext exactly once.
package adminkey

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
)

// NewCmdAdminKey returns the admin-key command group.
func NewCmdAdminKey(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "admin-key <command>",
		Aliases: []string{"admin-keys"},
		Short:   "Manage scoped admin API keys (only their SHA-256 is stored)",
		Long: `Manage scoped keys to the admin API. A key's scope is what it may do:

  status  what the live dashboard (aisix status) reads: info, model status, events, limits
  read    every GET (secrets masked as always)
  write   every resource but admin keys and the audit log
  admin   everything

The admin keys from the config or the environment (AISIX_ADMIN_KEY,
admin.admin_keys) keep working with scope admin.`,
	}
	cmd.AddCommand(newCmdCreate(f), newCmdList(f), newCmdDelete(f), newCmdRotate(f))
	return cmd
}

// keyStore is the store as an admin key store: a database, or the admin
// API of a running server (--remote).
func keyStore(s storage.Store) (storage.AdminKeyStore, error) {
	ks, ok := s.(storage.AdminKeyStore)
	if !ok {
		return nil, fmt.Errorf("this store keeps no admin keys")
	}
	return ks, nil
}

// minted is the machine shape of a create or rotate: the key's entry and
// the plaintext, shown this once.
type minted struct {
	Entry     admin.AdminKeyView `json:"entry"`
	Plaintext string             `json:"plaintext"`
}

func newCmdCreate(f *cmdutil.Factory) *cobra.Command {
	var o output.Options
	var name, scope, keyFile string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a scoped admin key and print it once",
		Example: `  aisix admin-key create --name dashboard --scope status
  aisix admin-key create --name ci --scope write --key-file ci.key -q
  aisix admin-key create --name auditor --scope read -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if name == "" {
				return cmdutil.FlagErrorf("--name is required")
			}
			if storage.ScopeRank(scope) == 0 {
				return cmdutil.FlagErrorf("--scope must be one of %s (got %q)", strings.Join(storage.Scopes, ", "), scope)
			}
			return mintAndStore(f, cmd, &o, keyFile, func(ctx context.Context, ks storage.AdminKeyStore, hash string) (storage.AdminKey, error) {
				return ks.CreateAdminKey(ctx, storage.AdminKey{DisplayName: name, Scope: scope, KeyHash: hash})
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&name, "name", "", "display name (required, unique)")
	fl.StringVar(&scope, "scope", "", "status, read, write or admin (required)")
	fl.StringVar(&keyFile, "key-file", "", "also write the key to this file (mode 0600)")
	o.AddFlags(cmd)
	return cmd
}

// mintAndStore is create and rotate: a new key minted here, its hash
// stored by store (the plaintext never leaves this process but for the
// output), and the key printed once.
func mintAndStore(f *cmdutil.Factory, cmd *cobra.Command, o *output.Options, keyFile string,
	store func(ctx context.Context, ks storage.AdminKeyStore, hash string) (storage.AdminKey, error)) error {
	if err := o.Prepare(f, cmd); err != nil {
		return err
	}
	if o.Quiet && keyFile == "" {
		return cmdutil.FlagErrorf("-q would lose the new key: add --key-file PATH, or use -o json")
	}
	plaintext, hash, err := storage.MintAdminKey()
	if err != nil {
		return err
	}
	return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
		ks, err := keyStore(s)
		if err != nil {
			return err
		}
		k, err := store(ctx, ks, hash)
		if err != nil {
			return err
		}
		return printMinted(f, o, k, plaintext, keyFile)
	})
}

func printMinted(f *cmdutil.Factory, o *output.Options, k storage.AdminKey, plaintext, keyFile string) error {
	if keyFile != "" {
		if err := os.WriteFile(keyFile, []byte(plaintext+"\n"), 0o600); err != nil {
			return fmt.Errorf("write key file: %w", err)
		}
	}
	switch {
	case o.Quiet:
		_, err := fmt.Fprintln(f.IO.Out, k.ID)
		return err
	case o.Format != output.FormatTable:
		return o.Print(f.IO, nil, minted{Entry: admin.AdminKeyViewOf(k), Plaintext: plaintext}, output.Table{})
	}
	if err := output.WriteTable(f.IO, table([]storage.AdminKey{k})); err != nil {
		return err
	}
	_, err := fmt.Fprintf(f.IO.Out, "\nAdmin key (shown only now; aisix stores its SHA-256):\n%s\n", plaintext)
	return err
}

func newCmdList(f *cmdutil.Factory) *cobra.Command {
	var o output.Options
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List admin keys (never a key or its hash)",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Prepare(f, cmd); err != nil {
				return err
			}
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				ks, err := keyStore(s)
				if err != nil {
					return err
				}
				all, err := ks.ListAdminKeys(ctx)
				if err != nil {
					return err
				}
				ids := make([]string, len(all))
				views := make([]admin.AdminKeyView, len(all))
				for i, k := range all {
					ids[i], views[i] = k.ID, admin.AdminKeyViewOf(k)
				}
				return o.Print(f.IO, ids, views, table(all))
			})
		},
	}
	o.AddFlags(cmd)
	return cmd
}

func newCmdDelete(f *cmdutil.Factory) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:     "delete <name|id>",
		Aliases: []string{"rm"},
		Short:   "Delete an admin key: it stops working at once",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return f.WithStore(cmd, func(ctx context.Context, s storage.Store) error {
				ks, err := keyStore(s)
				if err != nil {
					return err
				}
				if err := cmdutil.ConfirmDelete(f.IO, yes, "admin key "+args[0]); err != nil {
					return err
				}
				if err := ks.DeleteAdminKey(ctx, args[0]); err != nil {
					return err
				}
				_, err = fmt.Fprintf(f.IO.ErrOut, "Deleted admin key %s\n", args[0])
				return err
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
		Short: "Replace an admin key's secret (same id and scope); the old one stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return mintAndStore(f, cmd, &o, keyFile, func(ctx context.Context, ks storage.AdminKeyStore, hash string) (storage.AdminKey, error) {
				return ks.RotateAdminKey(ctx, args[0], hash)
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "also write the new key to this file (mode 0600)")
	o.AddFlags(cmd)
	return cmd
}

func table(all []storage.AdminKey) output.Table {
	t := output.Table{Headers: []string{"name", "id", "scope", "created", "rotated"}}
	for _, k := range all {
		rotated := "-"
		if !k.RotatedAt.IsZero() {
			rotated = output.Time(k.RotatedAt)
		}
		t.Rows = append(t.Rows, []string{k.DisplayName, k.ID, k.Scope, output.Time(k.CreatedAt), rotated})
	}
	return t
}
