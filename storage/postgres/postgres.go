// Package postgres implements storage.Store, storage.Source,
// storage.UsageStore and storage.Applier on PostgreSQL, with pgx
// (github.com/jackc/pgx/v5) and its connection pool: the shared store of
// several aisix replicas. It behaves as storage/sqlite does, and runs the
// same conformance suites (storage/storagetest).
//
// Use:
//
//	s, err := postgres.Open(ctx, "postgres://aisix@db.internal/aisix?sslmode=verify-full")
//	if err != nil { … }
//	defer s.Close()
//	go s.Watch(ctx, func(rev int64) { /* reload: s.Load(ctx) */ })
//
// Open applies the embedded migrations (migrations/NNNN_*.sql, recorded in
// schema_migrations) unless WithMigrate says otherwise; replicas that
// start together take turns under an advisory lock.
//
// Every config write runs in one transaction that first locks the
// revision row of meta, so the writes of every replica (and Apply's plan
// and writes) serialise: each statement after the lock sees everything
// committed before it. The transaction bumps the store-wide revision once,
// stamps every row it writes with it, and runs
// pg_notify('aisix_config', revision), which PostgreSQL delivers when the
// transaction commits; Watch listens for it. Load reads in one REPEATABLE
// READ, READ ONLY transaction, so a dataset is one snapshot. The usage
// ledger's writes take no lock and bump nothing.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/secrets"
)

// Interface guards.
var (
	_ storage.Store      = (*Store)(nil)
	_ storage.Source     = (*Store)(nil)
	_ storage.UsageStore = (*Store)(nil)
	_ storage.Applier    = (*Store)(nil)
)

// NotifyChannel is the channel every config write notifies, with the new
// store revision as the payload.
const NotifyChannel = "aisix_config"

// Store is the PostgreSQL store. It is safe for concurrent use, and any
// number of Stores, in any number of processes, may use one database.
type Store struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	newID func() string
	log   *slog.Logger
	mode  MigrateMode
	// name is the database's URL without its password, for messages.
	name string
	// poll is how often Watch reads the revision when no notification
	// comes.
	poll time.Duration
	// migrations is what Open found and did to the schema.
	migrations MigrationReport
	// usage is the ledger's write side (usage.go).
	usage usageWriter
	// secrets encrypts provider secrets; nil stores them as plaintext,
	// or refuses to when requireKey is set.
	secrets    *secrets.Keyring
	requireKey bool
}

// Option configures a Store.
type Option func(*Store)

// WithNow sets the clock used for created_at and updated_at (default
// time.Now). PostgreSQL keeps microseconds.
func WithNow(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithNewID sets the ID generator for new rows (default: a random UUIDv4).
func WithNewID(newID func() string) Option {
	return func(s *Store) { s.newID = newID }
}

// WithLogger sets where the store reports what it does on its own: the
// migrations Open applies, and Watch losing and regaining its connection
// (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// WithSecrets makes the store encrypt every provider secret it writes
// under kr's current key and decrypt what it reads with any key of kr
// (secrets.go). Without it (or with nil) secrets are written as
// plaintext unless WithEncryptionRequired, and a row encrypted under a
// key the store lacks reads back without its secret and is reported by
// Load as unreadable.
func WithSecrets(kr *secrets.Keyring) Option {
	return func(s *Store) { s.secrets = kr }
}

// WithEncryptionRequired makes a store without a keyring refuse every
// write of a provider secret with ErrPlaintextRefused, so a shared
// database never receives plaintext credentials (the CLI's local mode
// opens PostgreSQL so).
func WithEncryptionRequired() Option {
	return func(s *Store) { s.requireKey = true }
}

// WithPollInterval sets how often Watch reads the revision when no
// notification arrives (default 5 s).
func WithPollInterval(d time.Duration) Option {
	return func(s *Store) { s.poll = d }
}

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as pgx takes them) and, as WithMigrate says, brings
// its schema up to date: by default it applies every pending migration. A
// database whose schema is newer than this binary's is refused in every
// mode with a *SchemaError, and so is, in the modes that do not migrate,
// one whose schema is older.
func Open(ctx context.Context, url string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message may quote the URL, password and all.
		return nil, errors.New("open store: the PostgreSQL URL does not parse")
	}
	s := &Store{now: time.Now, newID: uuid.NewString, poll: 5 * time.Second}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s.name = redact(cfg)
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "aisix"
	}
	s.pool, err = pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	if err := s.pool.Ping(ctx); err != nil {
		s.pool.Close()
		return nil, fmt.Errorf("open store %s: %w", s.name, connectError{err})
	}
	if err := s.prepareSchema(ctx); err != nil {
		s.pool.Close()
		var se *SchemaError
		if errors.As(err, &se) {
			return nil, se
		}
		return nil, fmt.Errorf("open store %s: %w", s.name, err)
	}
	return s, nil
}

// redact names the database of cfg without its password.
func redact(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("postgres://%s@%s:%d/%s", c.User, c.Host, c.Port, c.Database)
}

// Path names the database for messages: its URL without the password
// (postgres://user@host:port/db). It is the counterpart of the SQLite
// store's file path.
func (s *Store) Path() string { return s.name }

// Close closes the connection pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// querier is what *pgxpool.Pool and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// withTx runs fn in a transaction with opts. It commits if fn returns nil
// and rolls back if fn returns an error or panics (the panic is re-raised
// after the rollback).
func (s *Store) withTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) (err error) {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(ctx); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// readTx is a snapshot: every statement of the transaction sees the
// database as it was at its first.
var readTx = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}

// withReadTx runs fn in a read-only snapshot transaction.
func (s *Store) withReadTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return s.withTx(ctx, readTx, fn)
}

// readOne runs read in one read transaction (see withReadTx) and returns
// its result: for reads made of several queries that must agree.
func readOne[T any](ctx context.Context, s *Store, read func(pgx.Tx) (T, error)) (T, error) {
	var v T
	err := s.withReadTx(ctx, func(tx pgx.Tx) error {
		var err error
		v, err = read(tx)
		return err
	})
	return v, err
}

// txWrite is one config write transaction as the row writers see it: the
// revision every row it writes is stamped with (bumped once, by the first
// write) and the time of the writes.
type txWrite struct {
	ctx context.Context
	tx  pgx.Tx
	now time.Time
	rev int64
	// secrets seals the provider secrets the transaction writes; with
	// requireKey, a nil one refuses to.
	secrets    *secrets.Keyring
	requireKey bool
}

// withWrite runs fn in a config write transaction (READ COMMITTED) that
// first locks the revision row: config writers queue there, whichever
// replica they run in, and every later statement sees what they
// committed.
func (s *Store) withWrite(ctx context.Context, fn func(w *txWrite) error) error {
	return s.withTx(ctx, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT value FROM meta WHERE key = 'revision' FOR UPDATE`); err != nil {
			return fmt.Errorf("lock revision: %w", err)
		}
		// PostgreSQL keeps microseconds: round now so that what a write
		// returns is what a later read gives.
		return fn(&txWrite{ctx: ctx, tx: tx, now: s.now().UTC().Truncate(time.Microsecond), secrets: s.secrets, requireKey: s.requireKey})
	})
}

// revision returns the revision of this transaction's writes, bumping the
// store revision (and queueing its notification) the first time.
func (w *txWrite) revision() (int64, error) {
	if w.rev != 0 {
		return w.rev, nil
	}
	var rev int64
	err := w.tx.QueryRow(w.ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value`).Scan(&rev)
	if err != nil {
		return 0, fmt.Errorf("bump revision: %w", err)
	}
	if _, err := w.tx.Exec(w.ctx, `SELECT pg_notify($1, $2)`, NotifyChannel, fmt.Sprint(rev)); err != nil {
		return 0, fmt.Errorf("notify revision: %w", err)
	}
	w.rev = rev
	return rev, nil
}

// exec runs one statement of the transaction (pgx prepares and caches
// each distinct query per connection).
func (w *txWrite) exec(query string, args ...any) error {
	_, err := w.tx.Exec(w.ctx, query, args...)
	return err
}

// Revision returns the store-wide revision. It changes on every config
// write, by any process.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'revision'`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// Load reads the whole dataset, secrets included, and its revision in one
// REPEATABLE READ, READ ONLY transaction, so the result is a consistent
// snapshot. Rows that do not decode are left out and listed in Unreadable.
func (s *Store) Load(ctx context.Context) (storage.Dataset, error) {
	ds, err := readOne(ctx, s, func(tx pgx.Tx) (storage.Dataset, error) { return loadDataset(ctx, tx, s.secrets, true) })
	if err != nil {
		return storage.Dataset{}, fmt.Errorf("load dataset: %w", err)
	}
	return ds, nil
}

// loadDataset reads the revision and every row through q, which must be
// one transaction. With unreadable, rows that do not decode are left out
// and listed in Unreadable (what the proxy loads); without, they are
// listed with what their columns say (what Apply compares with).
func loadDataset(ctx context.Context, q querier, kr *secrets.Keyring, unreadable bool) (storage.Dataset, error) {
	var ds storage.Dataset
	if err := q.QueryRow(ctx, `SELECT value FROM meta WHERE key = 'revision'`).Scan(&ds.Revision); err != nil {
		return ds, fmt.Errorf("read revision: %w", err)
	}
	var bad *[]storage.UnreadableRow
	if unreadable {
		bad = &ds.Unreadable
	}
	var err error
	if ds.ProviderKeys, err = listProviderKeys(ctx, q, kr, bad); err != nil {
		return ds, err
	}
	if ds.Models, err = listModels(ctx, q, bad); err != nil {
		return ds, err
	}
	ds.APIKeys, err = listAPIKeys(ctx, q, bad)
	return ds, err
}

// Resource kinds, as they appear in messages.
const (
	kindProviderKey = "provider key"
	kindModel       = "model"
	kindAPIKey      = "API key"
	kindAdminKey    = "admin key"
)

// resource names what a statement was reading or writing, for messages.
type resource struct {
	kind string
	id   string
	// name is the display name being written, if any.
	name string
}

// PostgreSQL error codes (SQLSTATE) that mapErr translates.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeNotNullViolation    = "23502"
)

// mapErr turns an error from a store operation into a domain error where it
// has one: pgx.ErrNoRows into ErrNotFound, unique violations into
// ErrConflict, foreign-key violations into ErrConflict on delete and
// ErrInvalid otherwise, check and not-null violations into ErrInvalid.
// Domain errors pass through unchanged; anything else is wrapped with op.
func mapErr(op string, r resource, err error) error {
	if err == nil {
		return nil
	}
	var de *storage.Error
	if errors.As(err, &de) {
		return err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.Errorf(storage.ErrNotFound, "%s %q not found", r.kind, r.id)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeUniqueViolation:
			switch c := pe.ConstraintName; {
			case strings.Contains(c, "display_name"):
				return storage.Errorf(storage.ErrConflict, "name %q already in use by another %s", r.name, r.kind)
			case strings.Contains(c, "key_hash"):
				return storage.Errorf(storage.ErrConflict, "key_hash already in use by another %s", r.kind)
			case strings.HasSuffix(c, "_pkey"):
				return storage.Errorf(storage.ErrConflict, "%s id %q already exists", r.kind, r.id)
			}
			return storage.Errorf(storage.ErrConflict, "%s conflicts with an existing one", r.kind)
		case codeForeignKeyViolation:
			if op == "delete" {
				return storage.Errorf(storage.ErrConflict, "%s %q is still in use", r.kind, r.id)
			}
			return storage.Errorf(storage.ErrInvalid, "%s refers to something that does not exist", r.kind)
		case codeCheckViolation, codeNotNullViolation:
			return storage.Errorf(storage.ErrInvalid, "%s is not valid: %s", r.kind, pe.Message)
		}
	}
	return fmt.Errorf("%s %s: %w", op, r.kind, err)
}

// queryNames runs a query that returns one text column.
func queryNames(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(names) == 0 {
		names = nil
	}
	return names, err
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// connectError is a failed connection said in one line: the server's own
// error (a refused login, a missing database) or the network's (a refused
// or timed-out dial), not pgx's list of every address it tried.
type connectError struct{ err error }

func (e connectError) Unwrap() error { return e.err }

func (e connectError) Error() string {
	var pgErr *pgconn.PgError
	if errors.As(e.err, &pgErr) {
		return "cannot connect: " + pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	}
	var opErr *net.OpError
	if errors.As(e.err, &opErr) {
		return "cannot connect: " + opErr.Error()
	}
	return e.err.Error()
}
