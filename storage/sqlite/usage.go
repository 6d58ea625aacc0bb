package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
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

const usageInsert = `INSERT INTO usage_records (ts, call_id, attempt, key_id, key_name, endpoint, alias, target, provider,
	stream, status, outcome, status_reason, latency_us, ttft_us,
	input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// AppendUsage stores records, in transactions of at most 500 records on
// the writer connection. It does not bump the store revision: the ledger
// is not configuration, and a running proxy must not reload for it.
func (s *Store) AppendUsage(ctx context.Context, records []storage.UsageRecord) error {
	for len(records) > 0 {
		n := min(len(records), maxUsageBatch)
		if err := s.withTx(ctx, func(tx *sql.Tx) error { return insertUsage(ctx, tx, records[:n]) }); err != nil {
			return fmt.Errorf("append usage: %w", err)
		}
		records = records[n:]
	}
	return nil
}

func insertUsage(ctx context.Context, tx *sql.Tx, records []storage.UsageRecord) error {
	st, err := tx.PrepareContext(ctx, usageInsert)
	if err != nil {
		return err
	}
	defer st.Close()
	for i := range records {
		r := &records[i]
		var cost any
		if r.Priced {
			cost = r.Cost
		}
		stream := 0
		if r.Stream {
			stream = 1
		}
		_, err := st.ExecContext(ctx, r.Time.UnixMilli(), r.CallID, r.Attempt, r.KeyID, r.KeyName, r.Endpoint,
			r.Alias, r.Target, r.Provider, stream, r.Status, r.Outcome, r.StatusReason,
			r.Latency.Microseconds(), r.TTFT.Microseconds(),
			r.InputTokens, r.OutputTokens, r.CachedTokens, r.ReasoningTokens, cost)
		if err != nil {
			return err
		}
	}
	return nil
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
		FROM usage_records`
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
	timed := q.Groups(storage.UsageByDay) || q.Groups(storage.UsageByHour)
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
		t.Failures = t.Attempts - t.Successes
		if timed {
			bt := time.UnixMilli(bucket).UTC()
			r.Time = &bt
		}
		if t.Attempts == 0 {
			continue // no group: the one row of an empty ledger
		}
		rep.Totals.Add(r.UsageTotals)
		rep.Rows = append(rep.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return storage.UsageReport{}, fmt.Errorf("query usage: %w", err)
	}
	return rep, nil
}
