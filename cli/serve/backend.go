package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/sqlite"
)

// backend is what serve needs of its store: the configuration (admin API,
// routing table, resources file) and the usage ledger, in one database.
type backend interface {
	storage.Store
	storage.Source
	storage.UsageStore
	storage.Applier
	// Path names the database for logs: the SQLite file, or the
	// PostgreSQL URL without its password.
	Path() string
	Close() error
}

var (
	_ backend = (*sqlite.Store)(nil)
	_ backend = (*postgres.Store)(nil)
)

// IsPostgresURL reports whether a --db value names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgresURL(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// openBackend opens the store named by dsn (a PostgreSQL URL, else a
// SQLite file path), applies its migrations and logs them.
func openBackend(ctx context.Context, dsn string, logger *slog.Logger) (backend, error) {
	if IsPostgresURL(dsn) {
		store, err := postgres.Open(ctx, dsn, postgres.WithLogger(logger.With("component", "storage")))
		if err != nil {
			var se *storage.SchemaError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, fmt.Errorf("open database: %w", err)
		}
		if rep := store.Migrations(); len(rep.Applied) > 0 {
			logger.Info("database migrated", "from", rep.From, "to", rep.To)
		}
		logger.Warn("provider secrets are stored unencrypted in this PostgreSQL database: restrict who can read it (encryption at rest is not implemented yet)",
			"db", store.Path())
		return store, nil
	}
	store, err := sqlite.Open(ctx, dsn, sqlite.WithLogger(logger.With("component", "storage")))
	if err != nil {
		var se *sqlite.SchemaError
		if errors.As(err, &se) {
			return nil, err // it names the file and what to do
		}
		return nil, fmt.Errorf("open database %s: %w", dsn, err)
	}
	if rep := store.Migrations(); len(rep.Applied) > 0 {
		logger.Info("database migrated", "from", rep.From, "to", rep.To)
	}
	return store, nil
}

// watcher is a backend that tells of writes as they happen (PostgreSQL's
// LISTEN/NOTIFY), so replicas reload within moments, not at the next poll.
type watcher interface {
	Watch(ctx context.Context, onChange func(rev int64))
}
