package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/aisix/aisix/storage"
)

var _ storage.UsageStore = (*Store)(nil)

// Bounds on one ledger write, so that the writer connection, which config
// writes share, is never held for long: an AppendUsage of more records
// commits every maxUsageBatch of them in its own transaction, and a prune
// deletes pruneChunk rows per transaction.
const (
	maxUsageBatch = 500
	pruneChunk    = 5000
)

// usageCols are the columns of one usage_records row as AppendUsage
// writes it; what repeats across records is in usage_dims, named by
// dim_id.
const (
	usageCols    = "ts, call_id, attempt, dim_id, status, latency_us, ttft_us, input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd"
	usageNumCols = 12
	// usageRowsPerInsert is how many records one INSERT statement writes:
	// the driver's cost per statement (its context watch, step and reset,
	// SQLite's statement end) is paid once for them all.
	usageRowsPerInsert = 32
	// maxCachedUsageDims bounds the dimension ids a Store remembers; past
	// it, it forgets them all and looks them up again.
	maxCachedUsageDims = 4096
)

// usageDim is what a record has in common with many others: one
// usage_dims row.
type usageDim struct {
	keyID, keyName, endpoint, alias, target, provider string
	stream                                            bool
	outcome, statusReason                             string
}

func dimOf(r *storage.UsageRecord) usageDim {
	return usageDim{r.KeyID, r.KeyName, r.Endpoint, r.Alias, r.Target, r.Provider, r.Stream, r.Outcome, r.StatusReason}
}

// usageWriter is the ledger's write side of a Store: the usage_dims ids
// it has seen committed, and its INSERT statements, prepared on the
// writer connection once and kept (database/sql prepares them again on a
// new connection, and closes them with it). Its mutex is held for a whole
// AppendUsage.
type usageWriter struct {
	mu    sync.Mutex
	ids   map[usageDim]int64
	stmts map[int]*sql.Stmt // by record count: usageRowsPerInsert and powers of two below it
}

// prepare prepares the INSERT statements on db the first time, outside
// any transaction: db has the one writer connection, which a transaction
// holds.
func (w *usageWriter) prepare(ctx context.Context, db *sql.DB) error {
	if w.stmts != nil {
		return nil
	}
	stmts := map[int]*sql.Stmt{}
	for n := usageRowsPerInsert; n > 0; n /= 2 {
		st, err := db.PrepareContext(ctx, usageInsertSQL(n))
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return err
		}
		stmts[n] = st
	}
	w.stmts = stmts
	return nil
}

// AppendUsage stores records, in transactions of at most 500 records on
// the writer connection. It does not bump the store revision: the ledger
// is not configuration, and a running proxy must not reload for it.
func (s *Store) AppendUsage(ctx context.Context, records []storage.UsageRecord) error {
	w := &s.usage
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.prepare(ctx, s.writer); err != nil {
		return fmt.Errorf("append usage: %w", err)
	}
	for len(records) > 0 {
		n := min(len(records), maxUsageBatch)
		// The ids this transaction creates are remembered only once it
		// commits: a rolled back one leaves no rows for them.
		var added map[usageDim]int64
		err := s.withTx(ctx, func(tx *sql.Tx) error {
			var err error
			added, err = w.insert(ctx, tx, records[:n])
			return err
		})
		if err != nil {
			return fmt.Errorf("append usage: %w", err)
		}
		if len(added) > 0 {
			if w.ids == nil || len(w.ids)+len(added) > maxCachedUsageDims {
				w.ids = make(map[usageDim]int64, len(added))
			}
			maps.Copy(w.ids, added)
		}
		records = records[n:]
	}
	return nil
}

// insert writes records in tx, usageRowsPerInsert to a statement (the
// rest in statements of powers of two, so that few are kept), and returns
// the usage_dims ids it looked up or created, which the caller may
// remember once tx commits.
func (w *usageWriter) insert(ctx context.Context, tx *sql.Tx, records []storage.UsageRecord) (map[usageDim]int64, error) {
	var (
		added map[usageDim]int64
		stmts = map[int]*sql.Stmt{}
		args  = make([]any, 0, usageNumCols*min(len(records), usageRowsPerInsert))
	)
	defer func() {
		for _, st := range stmts {
			st.Close() // tx's copy; w keeps the statement
		}
	}()
	for len(records) > 0 {
		n := usageRowsPerInsert
		for n > len(records) {
			n /= 2
		}
		args = args[:0]
		for i := range records[:n] {
			r := &records[i]
			d := dimOf(r)
			id, ok := w.ids[d]
			if !ok {
				if id, ok = added[d]; !ok {
					var err error
					if id, err = usageDimID(ctx, tx, d); err != nil {
						return nil, err
					}
					if added == nil {
						added = map[usageDim]int64{}
					}
					added[d] = id
				}
			}
			var cost any
			if r.Priced {
				cost = r.Cost
			}
			args = append(args, r.Time.UnixMilli(), r.CallID, int64(r.Attempt), id, int64(r.Status),
				r.Latency.Microseconds(), r.TTFT.Microseconds(),
				r.InputTokens, r.OutputTokens, r.CachedTokens, r.ReasoningTokens, cost)
		}
		st := stmts[n]
		if st == nil {
			st = tx.StmtContext(ctx, w.stmts[n])
			stmts[n] = st
		}
		if _, err := st.ExecContext(ctx, args...); err != nil {
			return nil, err
		}
		records = records[n:]
	}
	return added, nil
}

// usageInsertSQL is the INSERT of n records.
func usageInsertSQL(n int) string {
	row := "(" + strings.Repeat("?, ", usageNumCols-1) + "?)"
	return "INSERT INTO usage_records (" + usageCols + ") VALUES " + strings.Repeat(row+", ", n-1) + row
}

// usageDimID returns the id of d's usage_dims row, adding the row if
// there is none.
func usageDimID(ctx context.Context, tx *sql.Tx, d usageDim) (int64, error) {
	args := []any{d.keyID, d.keyName, d.endpoint, d.alias, d.target, d.provider, d.stream, d.outcome, d.statusReason}
	_, err := tx.ExecContext(ctx, `INSERT INTO usage_dims (key_id, key_name, endpoint, alias, target, provider, stream, outcome, status_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, args...)
	if err != nil {
		return 0, err
	}
	var id int64
	err = tx.QueryRowContext(ctx, `SELECT id FROM usage_dims WHERE key_id = ? AND key_name = ? AND endpoint = ? AND alias = ?
		AND target = ? AND provider = ? AND stream = ? AND outcome = ? AND status_reason = ?`, args...).Scan(&id)
	return id, err
}

// PruneUsage deletes the records that started before before, a chunk per
// transaction so that config writes can go in between, and returns how
// many it deleted.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := s.withTx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM usage_records WHERE id IN
				(SELECT id FROM usage_records WHERE ts < ? LIMIT ?)`, before.UnixMilli(), pruneChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune usage: %w", err)
		}
		total += n
		if n < pruneChunk {
			return total, nil
		}
	}
}

// Bucket widths of the day and hour dimensions, in milliseconds.
const (
	msPerHour = int64(time.Hour / time.Millisecond)
	msPerDay  = 24 * msPerHour
)

// QueryUsage sums the records q selects, grouped by its dimensions, on
// the reader pool. It returns ErrInvalid for a query that fails Validate.
func (s *Store) QueryUsage(ctx context.Context, q storage.UsageQuery) (storage.UsageReport, error) {
	if err := q.Validate(); err != nil {
		return storage.UsageReport{}, err
	}
	// Every piece of SQL below is a constant chosen by the query's
	// dimensions; only the filter values are parameters.
	var (
		sel, group []string
		where      []string
		args       []any
	)
	switch {
	case q.Groups(storage.UsageByDay):
		sel, group = append(sel, fmt.Sprintf("(ts / %d) * %d", msPerDay, msPerDay)), append(group, "1")
	case q.Groups(storage.UsageByHour):
		sel, group = append(sel, fmt.Sprintf("(ts / %d) * %d", msPerHour, msPerHour)), append(group, "1")
	default:
		sel = append(sel, "0")
	}
	dims := []struct {
		dim, col string
	}{{storage.UsageByKey, "key_id"}, {storage.UsageByAlias, "alias"}, {storage.UsageByTarget, "target"}}
	for _, d := range dims {
		if q.Groups(d.dim) {
			sel = append(sel, d.col)
			group = append(group, d.col)
		} else {
			sel = append(sel, "''")
		}
	}
	// The key's latest name: max() over names is deterministic, and a
	// renamed key is one row.
	if q.Groups(storage.UsageByKey) {
		sel = append(sel, "max(key_name)")
	} else {
		sel = append(sel, "''")
	}
	if !q.From.IsZero() {
		where, args = append(where, "ts >= ?"), append(args, q.From.UnixMilli())
	}
	if !q.To.IsZero() {
		where, args = append(where, "ts < ?"), append(args, q.To.UnixMilli())
	}
	for _, f := range []struct{ col, v string }{{"key_id", q.KeyID}, {"alias", q.Alias}, {"target", q.Target}} {
		if f.v != "" {
			where, args = append(where, f.col+" = ?"), append(args, f.v)
		}
	}
	query := `SELECT ` + strings.Join(sel, ", ") + `,
		count(*), coalesce(sum(outcome = 'ok'), 0),
		coalesce(sum(input_tokens), 0), coalesce(sum(output_tokens), 0),
		coalesce(sum(cached_tokens), 0), coalesce(sum(reasoning_tokens), 0),
		total(cost_usd), coalesce(sum(outcome = 'ok' AND cost_usd IS NULL), 0)
		FROM usage_records JOIN usage_dims ON usage_dims.id = usage_records.dim_id`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	if len(group) > 0 {
		query += ` GROUP BY ` + strings.Join(group, ", ") + ` ORDER BY ` + strings.Join(group, ", ")
	}
	rows, err := s.reader.QueryContext(ctx, query, args...)
	if err != nil {
		return storage.UsageReport{}, fmt.Errorf("query usage: %w", err)
	}
	defer rows.Close()
	rep := storage.UsageReport{Rows: []storage.UsageRow{}}
	for rows.Next() {
		var (
			r      storage.UsageRow
			bucket int64
		)
		t := &r.UsageTotals
		if err := rows.Scan(&bucket, &r.KeyID, &r.Alias, &r.Target, &r.KeyName,
			&t.Attempts, &t.Successes, &t.InputTokens, &t.OutputTokens, &t.CachedTokens, &t.ReasoningTokens,
			&t.CostUSD, &t.Unpriced); err != nil {
			return storage.UsageReport{}, fmt.Errorf("query usage: %w", err)
		}
		rep.AddGroup(&q, r, bucket)
	}
	if err := rows.Err(); err != nil {
		return storage.UsageReport{}, fmt.Errorf("query usage: %w", err)
	}
	return rep, nil
}
