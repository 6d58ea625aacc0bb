package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/secrets"
	"github.com/aisix/aisix/storage/sqlite"
)

// backend is what serve needs of its store: the configuration (admin API,
// routing table, resources file) and the usage ledger, in one database.
type backend interface {
	storage.Store
	storage.Source
	storage.UsageStore
	storage.AuditStore
	storage.Applier
	// Migrations is what opening did to the schema.
	Migrations() storage.MigrationReport
	// EncryptSecrets re-encrypts provider secrets under the current key.
	EncryptSecrets(ctx context.Context, scope secrets.Scope) (secrets.Migration, error)
	// Path names the database for logs: the SQLite file, or the
	// PostgreSQL URL without its password.
	Path() string
	Close() error
}

var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)

// openBackend opens the store named by dsn (a PostgreSQL URL, else a
// SQLite file path) with the keyring kr, applies its migrations and logs
// them, and encrypts the plaintext provider secrets it holds.
//
// Without a key it refuses PostgreSQL (a shared database must not hold
// plaintext credentials) and warns once on SQLite. With one, it encrypts
// every plaintext secret under the current key in one transaction and
// logs how many; rows under a previous key stay as they are (another
// replica may not have the new key yet: aisix secrets rotate-key moves
// them), and rows under a key it lacks are reported by key ID.
func openBackend(ctx context.Context, dsn string, kr *secrets.Keyring, logger *slog.Logger) (backend, error) {
	storeLog := logger.With("component", "storage")
	var store backend
	if cmdutil.IsPostgresURL(dsn) {
		if kr == nil {
			return nil, errors.New("refusing to serve from PostgreSQL without a secret key: provider secrets in a shared database must be encrypted; run aisix secrets init and set AISIX_SECRET_KEY_FILE to the file it writes (or AISIX_SECRET_KEY)")
		}
		pg, err := postgres.Open(ctx, dsn, postgres.WithLogger(storeLog), postgres.WithSecrets(kr), postgres.WithEncryptionRequired())
		if err != nil {
			var se *storage.SchemaError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, fmt.Errorf("open database: %w", err)
		}
		store = pg
	} else {
		lite, err := sqlite.Open(ctx, dsn, sqlite.WithLogger(storeLog), sqlite.WithSecrets(kr))
		if err != nil {
			var se *sqlite.SchemaError
			if errors.As(err, &se) {
				return nil, err // it names the file and what to do
			}
			return nil, fmt.Errorf("open database %s: %w", dsn, err)
		}
		store = lite
	}
	if rep := store.Migrations(); len(rep.Applied) > 0 {
		logger.Info("database migrated", "from", rep.From, "to", rep.To)
	}
	if kr == nil {
		logger.Warn("provider secrets are stored unencrypted in the database file: run aisix secrets init and set AISIX_SECRET_KEY_FILE to encrypt them",
			"db", store.Path())
		return store, nil
	}
	m, err := store.EncryptSecrets(ctx, secrets.PlaintextOnly)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	if m.Encrypted > 0 {
		logger.Info("encrypted plaintext provider secrets", "count", m.Encrypted, "key_id", kr.CurrentID())
	}
	for id, n := range m.Unreadable {
		logger.Warn("provider secrets are encrypted with a key this server was not given; those provider keys are not served",
			"key_id", id, "count", n)
	}
	return store, nil
}

// watcher is a backend that tells of writes as they happen (PostgreSQL's
// LISTEN/NOTIFY), so replicas reload within moments, not at the next poll.
type watcher interface {
	Watch(ctx context.Context, onChange func(rev int64))
}
