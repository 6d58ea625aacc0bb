// Package migrate implements `aisix migrate`: bring the local SQLite
// database to the schema this binary uses. Apart from `aisix serve`, which
// does the same when it starts, it is the only command that changes the
// schema of an existing database.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/output"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/sqlite"
)

// Options are the inputs of `migrate`.
type Options struct {
	Output output.Options
}

// Result is the machine shape of `migrate -o json`: the database file and
// what was done to its schema.
type Result struct {
	Database string `json:"database"`
	sqlite.MigrationReport
}

// NewCmdMigrate returns the migrate command.
func NewCmdMigrate(f *cmdutil.Factory, runF func(context.Context, *cobra.Command, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Upgrade the local database to this aisix's schema",
		Long: `Apply every pending schema migration to the local database (--db: a SQLite
file or a postgres:// URL), each in its own transaction, and print what was
applied. aisix serve does the same
when it starts; other commands refuse a database with an older schema and
point here. Running it again on a current database changes nothing.`,
		Example: `  aisix migrate
  aisix migrate --db /var/lib/aisix/aisix.db -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.Prepare(f, cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), cmd, opts)
			}
			return migrateRun(cmd.Context(), f, cmd, opts)
		},
	}
	opts.Output.AddFlags(cmd)
	return cmd
}

// migrated is a store migrate opened: SQLite or PostgreSQL.
type migrated interface {
	Path() string
	Migrations() storage.MigrationReport
	Close() error
}

// open opens db, SQLite or PostgreSQL, applying every pending migration.
func open(ctx context.Context, db string, log *slog.Logger) (migrated, error) {
	if cmdutil.IsPostgresURL(db) {
		return postgres.Open(ctx, db, postgres.WithMigrate(postgres.MigrateAll), postgres.WithLogger(log))
	}
	return sqlite.Open(ctx, db, sqlite.WithMigrate(sqlite.MigrateAll), sqlite.WithLogger(log))
}

func migrateRun(ctx context.Context, f *cmdutil.Factory, cmd *cobra.Command, opts *Options) error {
	cfg, err := f.Config(cmd)
	if err != nil {
		return err
	}
	if cfg.IsRemote() {
		return errors.New("aisix migrate works on a local database (--db); a server migrates its own when aisix serve starts")
	}
	if ctx == nil {
		ctx = context.Background()
	}
	s, err := open(ctx, cfg.DB, cmdutil.NewWarnLogger(f.IO.ErrOut))
	if err != nil {
		var se *storage.SchemaError
		if errors.As(err, &se) {
			return err
		}
		if cmdutil.IsPostgresURL(cfg.DB) {
			return fmt.Errorf("migrate database: %w", err) // pgx's error names the host, never the password
		}
		return fmt.Errorf("migrate database %s: %w", cfg.DB, err)
	}
	res := Result{Database: s.Path(), MigrationReport: s.Migrations()}
	if err := s.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", res.Database, err)
	}
	if res.Applied == nil {
		res.Applied = []sqlite.Migration{}
	}
	names := make([]string, len(res.Applied))
	for i, m := range res.Applied {
		names[i] = m.Name
	}
	switch {
	case opts.Output.Quiet:
		return opts.Output.Print(f.IO, names, nil, output.Table{})
	case opts.Output.Format != output.FormatTable:
		return opts.Output.Print(f.IO, nil, res, output.Table{})
	}
	out := f.IO.Out
	if len(res.Applied) == 0 {
		_, err := fmt.Fprintf(out, "Database %s is up to date (schema version %d).\n", res.Database, res.To)
		return err
	}
	for _, m := range res.Applied {
		fmt.Fprintf(out, "Applied %s\n", m.Name)
	}
	_, err = fmt.Fprintf(out, "Database %s is at schema version %d (was %d).\n", res.Database, res.To, res.From)
	return err
}
