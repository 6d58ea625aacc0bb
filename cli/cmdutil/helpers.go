package cmdutil

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

var uuidRe = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// FindProviderKey returns the provider key whose id or display name is ref.
// It returns an ErrNotFound error naming ref when there is none.
func FindProviderKey(ctx context.Context, s storage.Store, ref string) (storage.ProviderKey, error) {
	if uuidRe.MatchString(ref) {
		pk, err := s.GetProviderKey(ctx, ref)
		if !errors.Is(err, storage.ErrNotFound) {
			return pk, err
		}
	}
	all, err := s.ListProviderKeys(ctx)
	if err != nil {
		return storage.ProviderKey{}, err
	}
	for _, pk := range all {
		if pk.DisplayName == ref {
			return pk, nil
		}
	}
	return storage.ProviderKey{}, storage.Errorf(storage.ErrNotFound, "provider key %q not found", ref)
}

// FindModel returns the model whose id or display name is ref.
func FindModel(ctx context.Context, s storage.Store, ref string) (storage.Model, error) {
	if uuidRe.MatchString(ref) {
		m, err := s.GetModel(ctx, ref)
		if !errors.Is(err, storage.ErrNotFound) {
			return m, err
		}
	}
	all, err := s.ListModels(ctx)
	if err != nil {
		return storage.Model{}, err
	}
	for _, m := range all {
		if m.DisplayName == ref {
			return m, nil
		}
	}
	return storage.Model{}, storage.Errorf(storage.ErrNotFound, "model %q not found", ref)
}

// FindAPIKey returns the caller key whose id or display name is ref.
func FindAPIKey(ctx context.Context, s storage.Store, ref string) (storage.APIKey, error) {
	if uuidRe.MatchString(ref) {
		k, err := s.GetAPIKey(ctx, ref)
		if !errors.Is(err, storage.ErrNotFound) {
			return k, err
		}
	}
	all, err := s.ListAPIKeys(ctx)
	if err != nil {
		return storage.APIKey{}, err
	}
	for _, k := range all {
		if k.DisplayName == ref && ref != "" {
			return k, nil
		}
	}
	return storage.APIKey{}, storage.Errorf(storage.ErrNotFound, "API key %q not found", ref)
}

// ConfirmDelete asks before deleting on a terminal; without one it needs --yes.
func ConfirmDelete(ios *iostreams.IOStreams, yes bool, what string) error {
	if yes {
		return nil
	}
	if !ios.IsStdinTTY() {
		return FlagErrorf("refusing to delete %s without confirmation: pass --yes", what)
	}
	fmt.Fprintf(ios.ErrOut, "Delete %s? [y/N] ", what)
	line, err := bufio.NewReader(ios.In).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	fmt.Fprintln(ios.ErrOut, "Not deleted.")
	return ErrCancel
}

// SecretFlags are the ways a command can take a secret without a positional
// argument.
type SecretFlags struct {
	Stdin bool
	Env   string
	Value string
}

// Read returns the secret from the flag that was set: stdin, an environment
// variable, a hidden prompt on a terminal, or --secret (with a warning). It
// returns "" and no error when none was given and no prompt is possible and
// required is false.
func (sf *SecretFlags) Read(ios *iostreams.IOStreams, name string, required bool) (string, error) {
	n := 0
	for _, set := range []bool{sf.Stdin, sf.Env != "", sf.Value != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		return "", FlagErrorf("give the %s once: --%s, --%s-stdin or --%s-env", name, name, name, name)
	}
	switch {
	case sf.Stdin:
		b, err := io.ReadAll(io.LimitReader(ios.In, 64<<10))
		if err != nil {
			return "", fmt.Errorf("read %s from stdin: %w", name, err)
		}
		s := strings.TrimRight(string(b), "\r\n")
		if s == "" {
			return "", FlagErrorf("empty %s on stdin", name)
		}
		return s, nil
	case sf.Env != "":
		s := os.Getenv(sf.Env)
		if s == "" {
			return "", FlagErrorf("environment variable %s is empty or not set", sf.Env)
		}
		return s, nil
	case sf.Value != "":
		fmt.Fprintf(ios.ErrOut, "warning: --%s lands in your shell history; prefer --%s-stdin or --%s-env\n", name, name, name)
		return sf.Value, nil
	}
	if !required {
		return "", nil
	}
	if fd := ios.StdinFd(); fd >= 0 && ios.IsStdinTTY() {
		fmt.Fprintf(ios.ErrOut, "%s: ", strings.ToUpper(name[:1])+name[1:])
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(ios.ErrOut)
		if err != nil {
			return "", fmt.Errorf("read %s: %w", name, err)
		}
		if len(b) == 0 {
			return "", FlagErrorf("empty %s", name)
		}
		return string(b), nil
	}
	return "", FlagErrorf("a %s is required: use --%s-stdin, --%s-env VAR or --%s", name, name, name, name)
}

// ParseMillis reads a duration flag as milliseconds: "30s", "1500ms", "2m",
// or a bare number of milliseconds.
func ParseMillis(flag, s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, FlagErrorf("--%s must not be negative", flag)
		}
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, FlagErrorf("--%s must be a duration such as 30s or 1500ms (got %q)", flag, s)
	}
	return d.Milliseconds(), nil
}

// FormatMillis renders a millisecond setting for a table.
func FormatMillis(ms *int64) string {
	if ms == nil || *ms == 0 {
		return "-"
	}
	return (time.Duration(*ms) * time.Millisecond).String()
}

// CompleteNames returns a cobra completion function that offers the names
// list reads from the configured store, for the first argument only. It
// never creates, migrates or otherwise changes a local database: when the
// file does not exist or its schema is not current, it offers nothing.
func CompleteNames(f *Factory, list func(context.Context, storage.Store) ([]string, error)) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		s, err := f.openStore(cmd, sqlite.MigrateNone, nil)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer s.Close()
		names, err := list(cmd.Context(), s)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return names, cobra.ShellCompDirectiveNoFileComp
	}
}
