// Package secrets implements `aisix secrets`: the key that encrypts
// provider secrets at rest (storage/secrets) — make one (init), see which
// key every stored secret is under (status), and move them all to a new
// key (rotate-key). The commands work on the database itself (local mode,
// SQLite or PostgreSQL); over the admin API they exit 2.
package secrets

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/storage/secrets"
)

// NewCmdSecrets returns the secrets command and its subcommands.
func NewCmdSecrets(f *cmdutil.Factory) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Encrypt provider secrets at rest: init, status, rotate-key",
		Long: `Provider secrets are stored encrypted with AES-256-GCM under a key aisix
reads from AISIX_SECRET_KEY (32 bytes as base64 or 64 hex digits) or a key
file (--secret-key-file, AISIX_SECRET_KEY_FILE, or secret_key_file in the
config file: one key per line, the first encrypts, further lines are
previous keys that only decrypt; the file must not be readable by others).
AISIX_SECRET_KEY_PREVIOUS adds previous keys, comma separated.

aisix serve refuses to start on PostgreSQL without a key, warns on SQLite,
and encrypts plaintext secrets when it starts with one.

Losing the key means every provider secret must be entered again.

These commands need direct access to the database (--db); they do not work
through the admin API.`,
	}
	cmd.AddCommand(newCmdInit(f, nil), newCmdStatus(f, nil), newCmdRotate(f, nil))
	return cmd
}

// errRemote is the error of a secrets command in remote mode.
var errRemote = &cmdutil.ExitError{Code: 2, Err: errors.New("aisix secrets needs direct access to the database (--db or AISIX_DB); it does not work through the admin API (--server)")}

// local resolves the configuration and refuses remote mode.
func local(f *cmdutil.Factory, cmd *cobra.Command) (*cmdutil.Config, error) {
	cfg, err := f.Config(cmd)
	if err != nil {
		return nil, err
	}
	if cfg.IsRemote() {
		return nil, errRemote
	}
	return cfg, nil
}

// InitOptions are the inputs of `secrets init`.
type InitOptions struct {
	KeyFile string
}

func newCmdInit(f *cmdutil.Factory, runF func(context.Context, *InitOptions) error) *cobra.Command {
	opts := &InitOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Make a new secret key and encrypt the stored provider secrets with it",
		Long: `Make a new random 256-bit key and write it to a new file with mode 0600
(--key-file, default $XDG_CONFIG_HOME/aisix/secret.key). An existing file is
never overwritten. The key is written only to the file, never printed.

When no key is configured yet, the plaintext provider secrets in the
database (if it exists) are then encrypted with the new key, in one
transaction. When one is, the new file is only made: move the secrets to it
with aisix secrets rotate-key --new-key-file FILE.

Keep a copy of the file somewhere safe: without it every provider secret
must be entered again.`,
		Example: `  aisix secrets init
  aisix secrets init --key-file /etc/aisix/secret.key --db postgres://aisix@db/aisix`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := local(f, cmd); err != nil {
				return err
			}
			if opts.KeyFile == "" {
				opts.KeyFile = cmdutil.DefaultSecretKeyFile()
				if opts.KeyFile == "" {
					return cmdutil.FlagErrorf("no home directory for the default key file: give --key-file")
				}
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return initRun(cmd, f, opts)
		},
	}
	cmd.Flags().StringVar(&opts.KeyFile, "key-file", "", "where to write the new key (default $XDG_CONFIG_HOME/aisix/secret.key)")
	return cmd
}

func initRun(cmd *cobra.Command, f *cmdutil.Factory, opts *InitOptions) error {
	cfg, err := f.Config(cmd)
	if err != nil {
		return err
	}
	configured, err := cfg.Keyring()
	if err != nil {
		return err
	}
	raw, err := secrets.GenerateKey()
	if err != nil {
		return err
	}
	kr, err := secrets.NewKeyring(raw)
	if err != nil {
		return err
	}
	if err := secrets.WriteKeyFile(opts.KeyFile, raw); err != nil {
		return err
	}
	out := f.IO.Out
	fmt.Fprintf(out, "Wrote a new secret key (key id %s) to %s.\n", kr.CurrentID(), opts.KeyFile)
	fmt.Fprintf(out, "Keep a copy somewhere safe: without it every provider secret must be entered again.\n")
	if configured != nil {
		fmt.Fprintf(out, "A key is already configured (key id %s), so nothing was encrypted with the new one.\n", configured.CurrentID())
		fmt.Fprintf(out, "To move the stored secrets to it: aisix secrets rotate-key --new-key-file %s\n", opts.KeyFile)
		return nil
	}
	fmt.Fprintf(out, "Use it by setting AISIX_SECRET_KEY_FILE=%s (or --secret-key-file, or secret_key_file in the config file) for aisix serve and every command.\n", opts.KeyFile)

	if !cmdutil.IsPostgresURL(cfg.DB) {
		if _, err := os.Stat(cfg.DB); errors.Is(err, os.ErrNotExist) {
			return nil // nothing stored yet; serve will encrypt what it gets
		}
	}
	s, err := f.LocalStore(cmd, kr)
	if err != nil {
		fmt.Fprintf(f.IO.ErrOut, "aisix: the stored secrets were not encrypted (%v); aisix serve encrypts them when it starts with the key\n", err)
		return nil
	}
	defer s.Close()
	m, err := s.EncryptSecrets(cmd.Context(), secrets.PlaintextOnly)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Encrypted %d provider secret(s) in %s.\n", m.Encrypted, s.Path())
	if m.Encrypted > 0 {
		fmt.Fprintf(out, "Restart a running aisix serve with the key, or it cannot read them when it next reloads.\n")
	}
	return unreadable(f, m)
}

// unreadable reports rows left under a key that is not loaded, and fails
// the command quietly if there are any.
func unreadable(f *cmdutil.Factory, m secrets.Migration) error {
	if len(m.Unreadable) == 0 {
		return nil
	}
	for _, id := range slices.Sorted(maps.Keys(m.Unreadable)) {
		fmt.Fprintf(f.IO.ErrOut, "aisix: %d provider secret(s) are encrypted with key %s, which is not loaded; they were left as they were (give that key as a previous key, or enter those secrets again with aisix provider-key update)\n", m.Unreadable[id], id)
	}
	return cmdutil.ErrSilent
}

// StatusOptions are the inputs of `secrets status`.
type StatusOptions struct {
	Output output.Options
}

// Status is the machine shape of `secrets status -o json`.
type Status struct {
	Database       string   `json:"database"`
	CurrentKeyID   string   `json:"current_key_id"`
	PreviousKeyIDs []string `json:"previous_key_ids"`
	// Secrets counts the stored provider secrets by key, plaintext ones
	// under key_id "".
	Secrets []StatusRow `json:"secrets"`
}

// StatusRow is how many provider secrets are under one key.
type StatusRow struct {
	KeyID string `json:"key_id"`
	// State is "plaintext", "current", "previous" or "unknown" (a key
	// that is not loaded: those secrets cannot be read).
	State string `json:"state"`
	Count int    `json:"count"`
}

// Secret states.
const (
	StatePlaintext = "plaintext"
	StateCurrent   = "current"
	StatePrevious  = "previous"
	StateUnknown   = "unknown"
)

func newCmdStatus(f *cmdutil.Factory, runF func(context.Context, *StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show which key each stored provider secret is encrypted with",
		Long: `Count the stored provider secrets by the key they are encrypted with:
plaintext (no key), current (the configured key), previous (a previous key:
aisix secrets rotate-key moves them to the current one) or unknown (a key
that is not loaded: those provider keys cannot be used until it is given,
or their secrets are entered again).`,
		Example: `  aisix secrets status
  aisix secrets status -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := local(f, cmd); err != nil {
				return err
			}
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if opts.Output.Quiet {
				return cmdutil.FlagErrorf("--quiet is not supported by secrets status")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return statusRun(cmd, f, opts)
		},
	}
	opts.Output.AddFlags(cmd)
	return cmd
}

func statusRun(cmd *cobra.Command, f *cmdutil.Factory, opts *StatusOptions) error {
	cfg, err := f.Config(cmd)
	if err != nil {
		return err
	}
	kr, err := cfg.Keyring()
	if err != nil {
		return err
	}
	s, err := f.LocalStore(cmd, kr)
	if err != nil {
		return err
	}
	defer s.Close()
	counts, err := s.SecretKeyCounts(cmd.Context())
	if err != nil {
		return err
	}
	st := Status{Database: s.Path(), CurrentKeyID: kr.CurrentID(), PreviousKeyIDs: kr.PreviousIDs(), Secrets: []StatusRow{}}
	if st.PreviousKeyIDs == nil {
		st.PreviousKeyIDs = []string{}
	}
	for _, id := range slices.Sorted(maps.Keys(counts)) {
		st.Secrets = append(st.Secrets, StatusRow{KeyID: id, State: state(kr, id), Count: counts[id]})
	}
	if opts.Output.Format != output.FormatTable {
		return opts.Output.Print(f.IO, nil, st, output.Table{})
	}
	t := output.Table{Headers: []string{"KEY ID", "STATE", "PROVIDER KEYS"}}
	for _, r := range st.Secrets {
		t.Rows = append(t.Rows, []string{output.Or(r.KeyID), r.State, strconv.Itoa(r.Count)})
	}
	if kr == nil {
		fmt.Fprintln(f.IO.ErrOut, "No secret key is configured: run aisix secrets init.")
	}
	if len(t.Rows) == 0 {
		_, err := fmt.Fprintln(f.IO.Out, "No provider secrets are stored.")
		return err
	}
	return output.WriteTable(f.IO, t)
}

// state classifies the key ID of stored secrets against kr.
func state(kr *secrets.Keyring, id string) string {
	switch {
	case id == "":
		return StatePlaintext
	case id == kr.CurrentID():
		return StateCurrent
	case kr.Has(id):
		return StatePrevious
	}
	return StateUnknown
}

// RotateOptions are the inputs of `secrets rotate-key`.
type RotateOptions struct {
	NewKeyFile string
}

func newCmdRotate(f *cmdutil.Factory, runF func(context.Context, *RotateOptions) error) *cobra.Command {
	opts := &RotateOptions{}
	cmd := &cobra.Command{
		Use:   "rotate-key --new-key-file FILE",
		Short: "Re-encrypt every stored provider secret with a new key, in one transaction",
		Long: `Re-encrypt every stored provider secret (plaintext ones, and those under the
configured key or its previous keys) with the first key of --new-key-file,
in one transaction: either all move or none do. Make the file with
aisix secrets init --key-file FILE. The secrets themselves do not change, so
running servers need not reload.

With several replicas, so that none ever meets a secret it cannot read:
  1. give every replica the new key as a previous key (key file: old key
     first, new key second) and restart them;
  2. make the new key current on every replica (key file: new key first,
     old key second) and restart them;
  3. run aisix secrets rotate-key --new-key-file NEW with the old key
     configured; aisix secrets status then shows every secret as current;
  4. remove the old key from every replica.
With one server, steps 2 to 4 are enough.`,
		Example: `  AISIX_SECRET_KEY_FILE=old.key aisix secrets rotate-key --new-key-file new.key`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := local(f, cmd); err != nil {
				return err
			}
			if opts.NewKeyFile == "" {
				return cmdutil.FlagErrorf("--new-key-file is required (aisix secrets init --key-file FILE makes one)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return rotateRun(cmd, f, opts)
		},
	}
	cmd.Flags().StringVar(&opts.NewKeyFile, "new-key-file", "", "key file whose first key becomes the one every secret is encrypted with")
	return cmd
}

func rotateRun(cmd *cobra.Command, f *cmdutil.Factory, opts *RotateOptions) error {
	cfg, err := f.Config(cmd)
	if err != nil {
		return err
	}
	old, err := cfg.Keyring()
	if err != nil {
		return err
	}
	keys, err := secrets.ReadKeyFile(opts.NewKeyFile)
	if err != nil {
		return err
	}
	next, err := secrets.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		return err
	}
	s, err := f.LocalStore(cmd, next.WithPrevious(old))
	if err != nil {
		return err
	}
	defer s.Close()
	m, err := s.EncryptSecrets(cmd.Context(), secrets.AllRows)
	if err != nil {
		return err
	}
	out := f.IO.Out
	fmt.Fprintf(out, "Re-encrypted %d provider secret(s) in %s with key %s (%d were plaintext, %d under previous keys).\n",
		m.Encrypted+m.Rotated, s.Path(), next.CurrentID(), m.Encrypted, m.Rotated)
	fmt.Fprintf(out, "Every server must now have %s as its key file (or its key current); keep the old key as a previous key until all do.\n", opts.NewKeyFile)
	return unreadable(f, m)
}
