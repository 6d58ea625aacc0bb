package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// backend is what serve needs of its store: the configuration (admin API,
// routing table, resources file) and the usage ledger, in one database.
type backend interface {
	storage.Store
	storage.Source
	storage.UsageStore
	storage.Applier
	Close() error
}

var _ backend = (*sqlite.Store)(nil)

// openBackend opens the store named by dsn (a SQLite file path), applies
// its migrations and logs them.
func openBackend(ctx context.Context, dsn string, logger *slog.Logger) (backend, error) {
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
