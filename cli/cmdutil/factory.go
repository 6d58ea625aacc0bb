// Package cmdutil holds what every aisix command shares: the Factory that
// supplies configuration and the store (local SQLite or remote admin API),
// the typed errors that choose exit codes, and flag helpers.
package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/secrets"
	"github.com/aisix/aisix/storage/sqlite"
)

// Factory supplies dependencies to commands. Commands never know whether
// their store is the local SQLite file or a remote server.
type Factory struct {
	IO      *iostreams.IOStreams
	Version string
	Now     func() time.Time

	// ConfigFile is the value of the persistent --config flag.
	ConfigFile string

	cfg *Config
}

// New returns a Factory on the given streams.
func New(io *iostreams.IOStreams, version string) *Factory {
	return &Factory{IO: io, Version: version, Now: time.Now}
}

// Config resolves the configuration for cmd (its flags win), once.
func (f *Factory) Config(cmd *cobra.Command) (*Config, error) {
	if f.cfg != nil {
		return f.cfg, nil
	}
	var flags = cmd.Flags()
	c, err := LoadConfig(flags, f.ConfigFile)
	if err != nil {
		return nil, err
	}
	f.cfg = c
	return c, nil
}

// IsRemote reports whether commands go through the admin API.
func (c *Config) IsRemote() bool { return c.Server != "" }

// Store opens the store the configuration names: the admin API client when a
// server is configured, the SQLite file otherwise. The caller closes it.
//
// A local file is never migrated here: a new (or empty) file is
// initialised, but one with an older schema is refused with a
// *sqlite.SchemaError that says to run `aisix migrate`; schema changes
// happen only in `aisix serve` and `aisix migrate`. Warnings (a file other
// users could read, made private) go to stderr as one line each.
func (f *Factory) Store(cmd *cobra.Command) (storage.Store, error) {
	return f.openStore(cmd, sqlite.MigrateNewOnly, NewWarnLogger(f.IO.ErrOut))
}

// openStore opens the configured store; a local file in the given mode,
// reporting to log (nil: nowhere), with the configured keyring.
func (f *Factory) openStore(cmd *cobra.Command, mode sqlite.MigrateMode, log *slog.Logger) (storage.Store, error) {
	c, err := f.Config(cmd)
	if err != nil {
		return nil, err
	}
	if c.IsRemote() {
		if c.AdminKey == "" {
			return nil, errors.New("remote mode needs an admin key: set AISIX_ADMIN_KEY or --admin-key")
		}
		hc, err := c.AdminHTTPClient(c.Server, 30*time.Second)
		if err != nil {
			return nil, err
		}
		return admin.NewClient(c.Server, c.AdminKey, hc), nil
	}
	kr, err := c.Keyring()
	if err != nil {
		return nil, err
	}
	return openLocal(contextOf(cmd), c.DB, mode, log, kr)
}

// LocalStore is a store on the database itself (SQLite or PostgreSQL),
// as local mode opens it: it encrypts provider secrets with its keyring.
type LocalStore interface {
	storage.Store
	storage.Source
	// Secrets is the keyring it was opened with (nil: none).
	Secrets() *secrets.Keyring
	// SecretKeyCounts counts provider secrets by key ID ("": plaintext).
	SecretKeyCounts(ctx context.Context) (map[string]int, error)
	// EncryptSecrets re-encrypts, in one transaction, the secrets scope
	// names under the current key.
	EncryptSecrets(ctx context.Context, scope secrets.Scope) (secrets.Migration, error)
	// Path names the database: the SQLite file, or the PostgreSQL URL
	// without its password.
	Path() string
}

var (
	_ LocalStore = (*sqlite.Store)(nil)
	_ LocalStore = (*postgres.Store)(nil)
)

// LocalStore opens the configured database directly, with kr as its
// keyring instead of the configured one (`aisix secrets` opens it with a
// new key), and never migrates it. It refuses remote mode.
func (f *Factory) LocalStore(cmd *cobra.Command, kr *secrets.Keyring) (LocalStore, error) {
	c, err := f.Config(cmd)
	if err != nil {
		return nil, err
	}
	if c.IsRemote() {
		return nil, errors.New("this command needs direct access to the database (--db), not the admin API")
	}
	return openLocal(contextOf(cmd), c.DB, sqlite.MigrateNewOnly, NewWarnLogger(f.IO.ErrOut), kr)
}

// IsPostgresURL reports whether a --db value names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openLocal opens the database dsn names in mode, reporting to log (nil:
// nowhere), with kr as its keyring. PostgreSQL is opened so that without
// a key it refuses to store a provider secret: a shared database must not
// receive plaintext credentials.
func openLocal(ctx context.Context, dsn string, mode sqlite.MigrateMode, log *slog.Logger, kr *secrets.Keyring) (LocalStore, error) {
	if IsPostgresURL(dsn) {
		popts := []postgres.Option{postgres.WithMigrate(mode), postgres.WithSecrets(kr), postgres.WithEncryptionRequired()}
		if log != nil {
			popts = append(popts, postgres.WithLogger(log))
		}
		s, err := postgres.Open(ctx, dsn, popts...)
		if err != nil {
			var se *storage.SchemaError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, fmt.Errorf("open database: %w", err)
		}
		return s, nil
	}
	opts := []sqlite.Option{sqlite.WithMigrate(mode), sqlite.WithSecrets(kr)}
	if log != nil {
		opts = append(opts, sqlite.WithLogger(log))
	}
	s, err := sqlite.Open(ctx, dsn, opts...)
	if err != nil {
		var se *sqlite.SchemaError
		if errors.As(err, &se) {
			return nil, err // one line that names the file and what to do
		}
		return nil, fmt.Errorf("open database %s: %w", dsn, err)
	}
	return s, nil
}

// contextOf is cmd's context, or Background for a command run without one.
func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// AdminClient returns a client for the admin API of a running server: the
// configured --server, or the local default admin address. Commands that
// need live state (status, route --explain) use it in both modes.
func (f *Factory) AdminClient(cmd *cobra.Command) (*admin.Client, string, error) {
	c, err := f.Config(cmd)
	if err != nil {
		return nil, "", err
	}
	url := c.Server
	if url == "" {
		scheme := "http://"
		if c.AdminTLS.Enabled() {
			scheme = "https://" // the same config file's admin.tls
		}
		url = scheme + c.AdminAddr
	}
	if c.AdminKey == "" {
		return nil, url, errors.New("no admin key: set AISIX_ADMIN_KEY or --admin-key")
	}
	hc, err := c.AdminHTTPClient(url, 10*time.Second)
	if err != nil {
		return nil, url, err
	}
	return admin.NewClient(url, c.AdminKey, hc), url, nil
}

// WithStore opens the configured store, runs fn with the command's context,
// and closes the store.
func (f *Factory) WithStore(cmd *cobra.Command, fn func(context.Context, storage.Store) error) error {
	s, err := f.Store(cmd)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(contextOf(cmd), s)
}
