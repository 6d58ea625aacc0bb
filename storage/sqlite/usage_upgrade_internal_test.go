package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// ledgerRecords is traffic with many dimension tuples: keys (one renamed),
// aliases, targets, streams, outcomes, prices, over three days.
func ledgerRecords() []storage.UsageRecord {
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	var rs []storage.UsageRecord
	for i := range 300 {
		r := storage.UsageRecord{
			Time:     day.Add(time.Duration(i) * 17 * time.Minute),
			CallID:   fmt.Sprintf("call-%d", i/2),
			Attempt:  1 + i%2,
			KeyID:    fmt.Sprintf("k%d", i%3),
			KeyName:  fmt.Sprintf("k%d-name", i%3),
			Endpoint: []string{"chat.completions", "embeddings", "messages"}[i%3],
			Alias:    []string{"chat-prod", "gpt-4o-mini"}[i%2],
			Target:   []string{"gpt-4o-primary", "gpt-4o-secondary", "claude"}[i%3],
			Provider: []string{"openai", "anthropic"}[i%2],
			Stream:   i%4 == 0,
			Status:   200, Outcome: "ok",
			Latency: time.Duration(i) * time.Millisecond, TTFT: time.Duration(i%4) * time.Millisecond,
			InputTokens: int64(i), OutputTokens: int64(2 * i), CachedTokens: int64(i / 3), ReasoningTokens: int64(i % 5),
			Cost: float64(i) / 1e5, Priced: i%5 != 0,
		}
		if i%7 == 0 {
			r.Status, r.Outcome, r.StatusReason, r.Priced = 429, "429", "rate_limited", false
		}
		if i > 200 && r.KeyID == "k1" {
			r.KeyName = "k1-renamed"
		}
		rs = append(rs, r)
	}
	return rs
}

// ledgerQueries are every grouping, alone and combined, with and without
// filters and bounds.
func ledgerQueries() []storage.UsageQuery {
	day := time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)
	groups := [][]string{nil, {"key"}, {"alias"}, {"target"}, {"day"}, {"hour", "key"}, {"day", "key", "alias", "target"}}
	var qs []storage.UsageQuery
	for _, g := range groups {
		qs = append(qs,
			storage.UsageQuery{GroupBy: g},
			storage.UsageQuery{GroupBy: g, KeyID: "k1"},
			storage.UsageQuery{GroupBy: g, Alias: "chat-prod", Target: "claude"},
			storage.UsageQuery{GroupBy: g, From: day.Add(20 * time.Hour), To: day.Add(50 * time.Hour)},
		)
	}
	return qs
}

// insertV8 writes rs into a schema version 8 ledger as that version's
// store did.
func insertV8(t *testing.T, path string, rs []storage.UsageRecord) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, r := range rs {
		var cost any
		if r.Priced {
			cost = r.Cost
		}
		_, err := db.ExecContext(t.Context(), `INSERT INTO usage_records (ts, call_id, attempt, key_id, key_name, endpoint, alias, target, provider,
			stream, status, outcome, status_reason, latency_us, ttft_us,
			input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.Time.UnixMilli(), r.CallID, r.Attempt, r.KeyID, r.KeyName, r.Endpoint, r.Alias, r.Target, r.Provider,
			r.Stream, r.Status, r.Outcome, r.StatusReason, r.Latency.Microseconds(), r.TTFT.Microseconds(),
			r.InputTokens, r.OutputTokens, r.CachedTokens, r.ReasoningTokens, cost)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpgradeUsageDims migrates a schema 8 ledger holding records and
// checks that every query answers as it does on the same records appended
// to a current store, that the records kept their ids and call ids, and
// that appends after the upgrade use the dimensions the upgrade made.
func TestUpgradeUsageDims(t *testing.T) {
	ctx := t.Context()
	rs := ledgerRecords()
	path := filepath.Join(t.TempDir(), "old.db")
	if err := MigrateTo(ctx, path, 8); err != nil {
		t.Fatal(err)
	}
	insertV8(t, path, rs)
	old, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if got := old.Migrations(); got.From != 8 || got.To != SchemaVersion {
		t.Fatalf("migrations %+v, want from 8 to %d", got, SchemaVersion)
	}
	cur, err := Open(ctx, filepath.Join(t.TempDir(), "new.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cur.Close()
	if err := cur.AppendUsage(ctx, rs); err != nil {
		t.Fatal(err)
	}
	for _, q := range ledgerQueries() {
		want, err := cur.QueryUsage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		got, err := old.QueryUsage(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Rows) == 0 {
			t.Errorf("%+v: no rows", q)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%+v: upgraded store reports\n%+v\nwant\n%+v", q, got, want)
		}
	}

	var n, ids, calls, dims int
	err = old.reader.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT id), count(DISTINCT call_id),
		(SELECT count(*) FROM usage_dims) FROM usage_records WHERE id BETWEEN 1 AND ?`, len(rs)).Scan(&n, &ids, &calls, &dims)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(rs) || ids != len(rs) || calls != len(rs)/2 {
		t.Errorf("%d records, %d ids, %d call ids after the upgrade, want %d, %d, %d", n, ids, calls, len(rs), len(rs), len(rs)/2)
	}
	if err := old.AppendUsage(ctx, rs); err != nil {
		t.Fatal(err)
	}
	var after int
	if err := old.reader.QueryRowContext(ctx, `SELECT count(*) FROM usage_dims`).Scan(&after); err != nil {
		t.Fatal(err)
	}
	if after != dims {
		t.Errorf("%d dimension rows after appending the same records again, want %d", after, dims)
	}
}

// TestUsageRolledBackDims: a batch that fails leaves no dimension id in
// the store's memory that the database does not have.
func TestUsageRolledBackDims(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "u.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.writer.ExecContext(ctx, `CREATE TRIGGER boom BEFORE INSERT ON usage_records
		WHEN NEW.call_id = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END`); err != nil {
		t.Fatal(err)
	}
	r := storage.UsageRecord{Time: time.Now(), CallID: "c1", Attempt: 1, KeyID: "k-new", KeyName: "new", Endpoint: "chat.completions",
		Alias: "a", Target: "t", Status: 200, Outcome: "ok"}
	bad := r
	bad.CallID = "boom"
	if err := s.AppendUsage(ctx, []storage.UsageRecord{r, bad}); err == nil {
		t.Fatal("AppendUsage succeeded despite the trigger")
	}
	if _, err := s.writer.ExecContext(ctx, `DROP TRIGGER boom`); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendUsage(ctx, []storage.UsageRecord{r}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.QueryUsage(ctx, storage.UsageQuery{GroupBy: []string{storage.UsageByKey}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rows) != 1 || rep.Rows[0].KeyID != "k-new" || rep.Rows[0].Attempts != 1 {
		t.Errorf("rows %+v, want one attempt of k-new", rep.Rows)
	}
}
