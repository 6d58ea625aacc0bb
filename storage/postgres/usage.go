package postgres

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisix/aisix/storage"
)

// Bounds on one ledger write: an AppendUsage of more records commits
// every maxUsageBatch of them in its own transaction, and a prune deletes
// pruneChunk rows per transaction, so neither holds locks for long.
const (
	maxUsageBatch = 500
	pruneChunk    = 5000
	// maxCachedUsageDims bounds the dimension ids a Store remembers; past
	// it, it forgets them all and looks them up again.
	maxCachedUsageDims = 4096
)

// usageCols are the columns of one usage_records row as AppendUsage
// writes it; what repeats across records is in usage_dims, named by
// dim_id.
var usageCols = []string{"ts", "call_id", "attempt", "dim_id", "status", "latency_us", "ttft_us",
	"input_tokens", "output_tokens", "cached_tokens", "reasoning_tokens", "cost_usd"}

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
// it has seen committed. Its mutex is held for a whole AppendUsage.
type usageWriter struct {
	mu  sync.Mutex
	ids map[usageDim]int64
}

// AppendUsage stores records, in transactions of at most 500 records,
// each written with one COPY. It neither bumps the store revision nor
// notifies: the ledger is not configuration, and no proxy reloads for it.
func (s *Store) AppendUsage(ctx context.Context, records []storage.UsageRecord) error {
	w := &s.usage
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(records) > 0 {
		n := min(len(records), maxUsageBatch)
		// The ids this transaction creates are remembered only once it
		// commits: a rolled back one leaves no rows for them.
		var added map[usageDim]int64
		err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
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

// insert writes records in tx and returns the usage_dims ids it looked up
// or created, which the caller may remember once tx commits.
func (w *usageWriter) insert(ctx context.Context, tx pgx.Tx, records []storage.UsageRecord) (map[usageDim]int64, error) {
	var added map[usageDim]int64
	rows := make([][]any, len(records))
	for i := range records {
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
		rows[i] = []any{r.Time.UnixMilli(), r.CallID, int32(r.Attempt), id, int32(r.Status),
			r.Latency.Microseconds(), r.TTFT.Microseconds(),
			r.InputTokens, r.OutputTokens, r.CachedTokens, r.ReasoningTokens, cost}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"usage_records"}, usageCols, pgx.CopyFromRows(rows)); err != nil {
		return nil, err
	}
	return added, nil
}

// usageDimID returns the id of d's usage_dims row, adding the row if
// there is none. Under READ COMMITTED the SELECT sees a row another
// writer committed in between.
func usageDimID(ctx context.Context, tx pgx.Tx, d usageDim) (int64, error) {
	args := []any{d.keyID, d.keyName, d.endpoint, d.alias, d.target, d.provider, d.stream, d.outcome, d.statusReason}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO usage_dims (key_id, key_name, endpoint, alias, target, provider, stream, outcome, status_reason)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING id`, args...).Scan(&id)
	if !errors.Is(err, pgx.ErrNoRows) {
		return id, err
	}
	err = tx.QueryRow(ctx, `SELECT id FROM usage_dims WHERE key_id = $1 AND key_name = $2 AND endpoint = $3 AND alias = $4
		AND target = $5 AND provider = $6 AND stream = $7 AND outcome = $8 AND status_reason = $9`, args...).Scan(&id)
	return id, err
}

// PruneUsage deletes the records that started before before, a chunk per
// transaction, and returns how many it deleted.
func (s *Store) PruneUsage(ctx context.Context, before time.Time) (int64, error) {
	var total int64
	for {
		tag, err := s.pool.Exec(ctx, `DELETE FROM usage_records WHERE id IN
			(SELECT id FROM usage_records WHERE ts < $1 LIMIT $2)`, before.UnixMilli(), pruneChunk)
		if err != nil {
			return total, fmt.Errorf("prune usage: %w", err)
		}
		n := tag.RowsAffected()
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

// QueryUsage sums the records q selects, grouped by its dimensions. It
// returns ErrInvalid for a query that fails Validate.
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
		sel = append(sel, "0::bigint")
	}
	dims := []struct {
		dim, col string
	}{{storage.UsageByKey, "key_id"}, {storage.UsageByAlias, "alias"}, {storage.UsageByTarget, "target"}}
	for _, d := range dims {
		if q.Groups(d.dim) {
			sel = append(sel, d.col)
			group = append(group, d.col)
		} else {
			sel = append(sel, "''::text")
		}
	}
	// The key's latest name: max() over names is deterministic, and a
	// renamed key is one row.
	if q.Groups(storage.UsageByKey) {
		sel = append(sel, "max(key_name)")
	} else {
		sel = append(sel, "''::text")
	}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if !q.From.IsZero() {
		where = append(where, "ts >= "+arg(q.From.UnixMilli()))
	}
	if !q.To.IsZero() {
		where = append(where, "ts < "+arg(q.To.UnixMilli()))
	}
	for _, f := range []struct{ col, v string }{{"key_id", q.KeyID}, {"alias", q.Alias}, {"target", q.Target}} {
		if f.v != "" {
			where = append(where, f.col+" = "+arg(f.v))
		}
	}
	query := `SELECT ` + strings.Join(sel, ", ") + `,
		count(*), count(*) FILTER (WHERE outcome = 'ok'),
		coalesce(sum(input_tokens), 0)::bigint, coalesce(sum(output_tokens), 0)::bigint,
		coalesce(sum(cached_tokens), 0)::bigint, coalesce(sum(reasoning_tokens), 0)::bigint,
		coalesce(sum(cost_usd), 0)::float8, count(*) FILTER (WHERE outcome = 'ok' AND cost_usd IS NULL)
		FROM usage_records JOIN usage_dims ON usage_dims.id = usage_records.dim_id`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	if len(group) > 0 {
		query += ` GROUP BY ` + strings.Join(group, ", ") + ` ORDER BY ` + strings.Join(group, ", ")
	}
	rows, err := s.pool.Query(ctx, query, args...)
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
