// Package sqlite implements storage.Store and storage.Source on a SQLite file
// (modernc.org/sqlite, no cgo).
//
// One file can be opened by several processes at once (aisix serve and the
// CLI in local mode): the database runs in WAL mode, every connection waits
// on a busy timeout instead of failing, and every write runs in an IMMEDIATE
// transaction on the process's single writer connection, so writers queue
// instead of failing with "database is locked". Readers use their own pool
// and never block writers.
//
// Every write bumps one store-wide revision counter in the same transaction;
// Revision reads it, so a process notices any other process's writes by
// polling one row.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/secrets"
)

// busyTimeout is how long a connection waits for another connection's lock
// before giving up. Writes are short, so reaching it means something is stuck.
const busyTimeout = 10 * time.Second

// timeFormat is how times are stored: UTC with fixed-width nanoseconds, so
// that the text sorts in time order.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

// Interface guards.
var (
	_ storage.Store  = (*Store)(nil)
	_ storage.Source = (*Store)(nil)
)

// Store is the SQLite store. It is safe for concurrent use, and several
// Stores (in one process or many) may open the same file.
type Store struct {
	path string
	// writer has exactly one connection, so this process's writes queue in
	// database/sql instead of contending for SQLite's write lock.
	writer *sql.DB
	// reader is a pool of query_only connections for reads.
	reader *sql.DB
	now    func() time.Time
	newID  func() string
	log    *slog.Logger
	mode   MigrateMode
	// upTo, when set, stops migrating at that version (for upgrade tests).
	upTo int
	// migrations is what Open found and did to the schema.
	migrations MigrationReport
	schemaRead bool
	// usage is the ledger's write side (usage.go).
	usage usageWriter
	// secrets encrypts provider secrets; nil stores them as plaintext.
	secrets *secrets.Keyring
}

// Option configures a Store.
type Option func(*Store)

// WithNow sets the clock used for created_at and updated_at (default
// time.Now), so tests can be deterministic.
func WithNow(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// WithNewID sets the ID generator for new rows (default: a random UUIDv4).
func WithNewID(newID func() string) Option {
	return func(s *Store) { s.newID = newID }
}

// WithSecrets makes the store encrypt every provider secret it writes
// under kr's current key and decrypt what it reads with any key of kr
// (secrets.go). Without it (or with nil) secrets are written as
// plaintext, and a row encrypted under a key the store lacks reads back
// without its secret and is reported by Load as unreadable.
func WithSecrets(kr *secrets.Keyring) Option {
	return func(s *Store) { s.secrets = kr }
}

// WithLogger sets where Open reports what it fixed on its own, such as a
// database file readable by other users (default: nowhere).
func WithLogger(l *slog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// Open opens the SQLite store at path. What it may do to the file is
// WithMigrate's mode: by default it creates the file if needed and applies
// every pending migration. A file whose schema is newer than this binary's
// is refused in every mode with a *SchemaError, and so is, in the modes
// that do not migrate, one whose schema is older.
//
// The parent directory is created with mode 0700 and a new database file
// with mode 0600, since it holds provider secrets; an existing file (and
// its -wal and -shm files) with a wider mode is changed to 0600, with a
// warning to the WithLogger logger, except in MigrateNone mode. Several
// processes may Open the same file at the same time.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty database path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open store: %q: give a file path (in-memory and URI databases are not supported)", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{
		path:  abs,
		now:   time.Now,
		newID: uuid.NewString,
	}
	for _, o := range opts {
		o(s)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}

	if s.mode == MigrateNone {
		if _, err := os.Stat(abs); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(abs), 0o700); err != nil {
			return nil, fmt.Errorf("open store: create directory: %w", err)
		}
		// Create the file ourselves so that it is private; SQLite gives
		// the -wal and -shm files the same mode.
		f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
	}
	// Before any connection: SQLite gives a -wal or -shm file it creates
	// the mode of the database file. MigrateNone changes nothing.
	for _, p := range []string{abs, abs + "-wal", abs + "-shm"} {
		if s.mode != MigrateNone {
			s.makePrivate(ctx, p)
		}
	}

	s.writer, err = sql.Open("sqlite", s.dsn(true))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s.writer.SetMaxOpenConns(1)
	s.writer.SetMaxIdleConns(1)
	s.writer.SetConnMaxLifetime(0)
	s.writer.SetConnMaxIdleTime(0)
	// The first connection to a fresh file switches it to WAL, which needs
	// an exclusive lock; when two processes do that at the same moment, the
	// loser gets SQLITE_BUSY at once (SQLite does not wait where waiting
	// could deadlock). Once the file is in WAL mode this cannot happen, so
	// retrying the setup is enough.
	err = retryBusy(ctx, func() error {
		if err := s.writer.PingContext(ctx); err != nil {
			return err
		}
		return s.prepareSchema(ctx)
	})
	if err != nil {
		_ = s.writer.Close()
		var se *SchemaError
		if errors.As(err, &se) {
			return nil, se // it names the file and what to do
		}
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}

	s.reader, err = sql.Open("sqlite", s.dsn(false))
	if err != nil {
		_ = s.writer.Close()
		return nil, fmt.Errorf("open store: %w", err)
	}
	n := max(4, runtime.NumCPU())
	s.reader.SetMaxOpenConns(n)
	s.reader.SetMaxIdleConns(n)
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)
	if err := retryBusy(ctx, func() error { return s.reader.PingContext(ctx) }); err != nil {
		_ = s.reader.Close()
		_ = s.writer.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return s, nil
}

// makePrivate changes the file at path to mode 0600 when it exists with
// any permission beyond that, and says so: the file holds provider secrets.
// It never fails Open; a file it cannot change is reported too.
func (s *Store) makePrivate(ctx context.Context, path string) {
	fi, err := os.Stat(path)
	if err != nil {
		return // no such file (yet); anything worse surfaces when SQLite opens it
	}
	mode := fi.Mode().Perm()
	if mode&^0o600 == 0 {
		return
	}
	attrs := []slog.Attr{slog.String("path", path), slog.String("mode", fmt.Sprintf("%04o", mode))}
	if err := os.Chmod(path, 0o600); err != nil {
		s.log.LogAttrs(ctx, slog.LevelWarn,
			fmt.Sprintf("database file %s has mode %04o, which lets other users read it, and it could not be changed to 0600: %v", path, mode, err),
			attrs...)
		return
	}
	s.log.LogAttrs(ctx, slog.LevelWarn,
		fmt.Sprintf("database file %s had mode %04o, which let other users read it; changed it to 0600", path, mode),
		attrs...)
}

// dsn returns the driver DSN for path. The pragmas live in the DSN so that
// every pooled connection gets them, busy_timeout first so that the others
// wait for locks instead of failing. The writer begins IMMEDIATE
// transactions: taking the write lock at BEGIN means a transaction never has
// to upgrade a read lock, which is where SQLite returns SQLITE_BUSY without
// waiting.
//
// synchronous is FULL: in WAL mode NORMAL may lose the last transactions on
// power loss, and an acknowledged configuration write (a rotated secret, a
// revoked key) must survive it. Config writes are rare, so the extra fsync
// per commit costs nothing that matters; reads are unaffected.
//
// In MigrateNone mode nothing may write: the file is opened with mode=rw,
// so SQLite does not create it either if it disappears in between, and
// journal_mode is left as it is (switching it writes the file; an aisix
// database is in WAL mode already).
func (s *Store) dsn(writer bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	if s.mode != MigrateNone {
		q.Add("_pragma", "journal_mode(WAL)")
	}
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if writer {
		// Deleted and overwritten content (a provider secret's plaintext
		// before it was encrypted, a revoked key) is zeroed in the file
		// rather than left in free space.
		q.Add("_pragma", "secure_delete(1)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	if s.mode == MigrateNone {
		q.Set("mode", "rw")
	}
	// A file: URI, escaped, so that a path with '?', '#' or '%' still names
	// the right file.
	u := url.URL{Scheme: "file", Path: s.path, RawQuery: q.Encode()}
	return u.String()
}

// retryBusy calls fn until it returns something other than SQLITE_BUSY or
// SQLITE_LOCKED, for at most busyTimeout, backing off between tries. It is
// for Open only: every later statement waits on busy_timeout instead.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(busyTimeout)
	delay := 2 * time.Millisecond
	for {
		err := fn()
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		// Jitter, so that processes that collided do not collide again.
		wait := delay/2 + time.Duration(rand.Int64N(int64(delay)))
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// Path returns the absolute path of the database file.
func (s *Store) Path() string { return s.path }

// Close closes both connection pools. The last connection to close
// checkpoints the WAL into the database file.
func (s *Store) Close() error {
	return errors.Join(s.reader.Close(), s.writer.Close())
}

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// withTx runs fn in a write transaction on the writer connection. It commits
// if fn returns nil and rolls back if fn returns an error or panics (the
// panic is re-raised after the rollback).
func (s *Store) withTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = tx.Commit(); err != nil {
		return fmt.Errorf("commit transaction: %w", err)
	}
	return nil
}

// withReadTx runs fn in a read-only transaction on the reader pool, so that
// everything fn reads comes from one snapshot of the database.
func (s *Store) withReadTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("begin read transaction: %w", err)
	}
	// A read-only transaction has nothing to commit; rolling back ends it.
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// readOne runs read in one read transaction (see withReadTx) and returns
// its result: for reads made of several queries that must agree.
func readOne[T any](ctx context.Context, s *Store, read func(*sql.Tx) (T, error)) (T, error) {
	var v T
	err := s.withReadTx(ctx, func(tx *sql.Tx) error {
		var err error
		v, err = read(tx)
		return err
	})
	return v, err
}

// txWrite is one write transaction as the row writers see it: the
// revision every row it writes is stamped with (the store revision, bumped
// once, by the first write), the time of the writes, and the statements it
// prepared, which a transaction that writes thousands of rows (Apply)
// reuses.
type txWrite struct {
	ctx   context.Context
	tx    *sql.Tx
	now   string
	rev   int64
	stmts map[string]*sql.Stmt
	// secrets seals the provider secrets the transaction writes.
	secrets *secrets.Keyring
}

// withWrite runs fn in a write transaction (see withTx).
func (s *Store) withWrite(ctx context.Context, fn func(w *txWrite) error) error {
	return s.withTx(ctx, func(tx *sql.Tx) error {
		return fn(&txWrite{ctx: ctx, tx: tx, now: formatTime(s.now()), stmts: make(map[string]*sql.Stmt), secrets: s.secrets})
	})
}

// revision returns the revision of this transaction's writes, bumping the
// store revision the first time.
func (w *txWrite) revision() (int64, error) {
	if w.rev == 0 {
		rev, err := bumpRevision(w.ctx, w.tx)
		if err != nil {
			return 0, err
		}
		w.rev = rev
	}
	return w.rev, nil
}

// exec runs query with args, preparing it on first use. The transaction
// closes its statements when it ends.
func (w *txWrite) exec(query string, args ...any) error {
	st, ok := w.stmts[query]
	if !ok {
		var err error
		if st, err = w.tx.PrepareContext(w.ctx, query); err != nil {
			return err
		}
		w.stmts[query] = st
	}
	_, err := st.ExecContext(w.ctx, args...)
	return err
}

// bumpRevision increments the store-wide revision inside tx and returns the
// new value, which the caller stamps on the row it writes.
func bumpRevision(ctx context.Context, tx *sql.Tx) (int64, error) {
	var rev int64
	err := tx.QueryRowContext(ctx,
		`UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value`).Scan(&rev)
	if err != nil {
		return 0, fmt.Errorf("bump revision: %w", err)
	}
	return rev, nil
}

// Revision returns the store-wide revision. It changes on every write made
// by any process that has the file open.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	if err := s.reader.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'revision'`).Scan(&rev); err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// Load reads the whole dataset, secrets included, and its revision in one
// read transaction, so the result is a consistent snapshot.
func (s *Store) Load(ctx context.Context) (storage.Dataset, error) {
	ds, err := readOne(ctx, s, func(tx *sql.Tx) (storage.Dataset, error) { return loadDataset(ctx, tx, s.secrets, true) })
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
	if err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'revision'`).Scan(&ds.Revision); err != nil {
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

// mapErr turns an error from a store operation into a domain error where it
// has one: sql.ErrNoRows into ErrNotFound, unique violations into
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
	if errors.Is(err, sql.ErrNoRows) {
		return storage.Errorf(storage.ErrNotFound, "%s %q not found", r.kind, r.id)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		msg := se.Error()
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			switch {
			case strings.Contains(msg, ".display_name"):
				return storage.Errorf(storage.ErrConflict, "name %q already in use by another %s", r.name, r.kind)
			case strings.Contains(msg, ".key_hash"):
				return storage.Errorf(storage.ErrConflict, "key_hash already in use by another %s", r.kind)
			case strings.Contains(msg, ".id"):
				return storage.Errorf(storage.ErrConflict, "%s id %q already exists", r.kind, r.id)
			}
			return storage.Errorf(storage.ErrConflict, "%s conflicts with an existing one", r.kind)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			if op == "delete" {
				return storage.Errorf(storage.ErrConflict, "%s %q is still in use", r.kind, r.id)
			}
			return storage.Errorf(storage.ErrInvalid, "%s refers to something that does not exist", r.kind)
		case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
			return storage.Errorf(storage.ErrInvalid, "%s is not valid: %s", r.kind, msg)
		}
	}
	return fmt.Errorf("%s %s: %w", op, r.kind, err)
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("parse stored time %q: %w", s, err)
	}
	return t.UTC(), nil
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// scanMeta parses the stored revision and times into m.
func scanMeta(m *storage.Meta, rev int64, created, updated string) error {
	var err error
	m.Revision = rev
	if m.CreatedAt, err = parseTime(created); err != nil {
		return err
	}
	m.UpdatedAt, err = parseTime(updated)
	return err
}
