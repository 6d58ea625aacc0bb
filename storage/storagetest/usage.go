package storagetest

import (
	"math"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// RunUsage runs the usage ledger's conformance suite. newLedger returns,
// on an empty ledger, the store records are appended to and the reader
// that queries them: the same SQLite store twice, or the SQLite store and
// the admin API client in front of it. It must arrange for both to be
// closed.
func RunUsage(t *testing.T, newLedger func(t *testing.T) (storage.UsageStore, storage.UsageReader)) {
	t.Helper()
	for _, tc := range usageCases {
		t.Run("Usage/"+tc.name, func(t *testing.T) {
			w, r := newLedger(t)
			if w == nil || r == nil {
				t.Fatal("newLedger returned nil")
			}
			tc.fn(t, w, r)
		})
	}
}

type usageCase struct {
	name string
	fn   func(t *testing.T, w storage.UsageStore, r storage.UsageReader)
}

// usageDay is the fixtures' day; every record is on it or the next.
var usageDay = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

// usageRecords are the fixtures: the tutorial's traffic on two keys, with
// a failover on chat-prod (a 429 on gpt-4o-primary, then the answer from
// gpt-4o-secondary, which has no price).
func usageRecords() []storage.UsageRecord {
	at := func(h, m int) time.Time {
		return usageDay.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
	}
	ok := func(t time.Time, call, key, alias, target string, in, out int64, cost float64, priced bool) storage.UsageRecord {
		return storage.UsageRecord{Time: t, CallID: call, Attempt: 1, KeyID: key, KeyName: key + "-name", Endpoint: "chat.completions",
			Alias: alias, Target: target, Provider: "openai", Status: 200, Outcome: "ok", Latency: 120 * time.Millisecond,
			InputTokens: in, OutputTokens: out, CachedTokens: in / 10, Cost: cost, Priced: priced}
	}
	failed := storage.UsageRecord{Time: at(10, 5), CallID: "c3", Attempt: 1, KeyID: "k1", KeyName: "k1-name", Endpoint: "chat.completions",
		Alias: "chat-prod", Target: "gpt-4o-primary", Provider: "openai", Status: 429, Outcome: "429", StatusReason: "rate_limited",
		Latency: 3 * time.Millisecond}
	secondary := ok(at(10, 5), "c3", "k1", "chat-prod", "gpt-4o-secondary", 30, 7, 0, false)
	secondary.Attempt = 2
	secondary.Stream, secondary.TTFT, secondary.ReasoningTokens = true, 40*time.Millisecond, 3
	return []storage.UsageRecord{
		ok(at(9, 0), "c1", "k1", "chat-prod", "gpt-4o-primary", 100, 20, 0.00045, true),
		ok(at(9, 30), "c2", "k2", "gpt-4o-primary", "gpt-4o-primary", 200, 40, 0.0009, true),
		failed,
		secondary,
		ok(at(24+1, 0), "c4", "k1", "chat-prod", "gpt-4o-primary", 1000, 100, 0.0035, true),
	}
}

// totals builds expected sums.
func totals(attempts, successes, in, out, cached, reasoning int64, cost float64, unpriced int64) storage.UsageTotals {
	return storage.UsageTotals{Attempts: attempts, Successes: successes, Failures: attempts - successes,
		InputTokens: in, OutputTokens: out, CachedTokens: cached, ReasoningTokens: reasoning, CostUSD: cost, Unpriced: unpriced}
}

func sameTotals(t *testing.T, what string, got, want storage.UsageTotals) {
	t.Helper()
	gotCost, wantCost := got.CostUSD, want.CostUSD
	got.CostUSD, want.CostUSD = 0, 0
	if got != want || math.Abs(gotCost-wantCost) > 1e-12 {
		got.CostUSD, want.CostUSD = gotCost, wantCost
		t.Errorf("%s: totals %+v\nwant %+v", what, got, want)
	}
}

func mustQuery(t *testing.T, r storage.UsageReader, q storage.UsageQuery) storage.UsageReport {
	t.Helper()
	rep, err := r.QueryUsage(t.Context(), q)
	noErr(t, err, "QueryUsage")
	if rep.Rows == nil {
		t.Error("QueryUsage returned nil rows, want a non-nil slice")
	}
	return rep
}

var usageCases = []usageCase{
	{"Empty", func(t *testing.T, _ storage.UsageStore, r storage.UsageReader) {
		for _, by := range [][]string{nil, {storage.UsageByDay, storage.UsageByKey}} {
			rep := mustQuery(t, r, storage.UsageQuery{GroupBy: by})
			if len(rep.Rows) != 0 || rep.Totals != (storage.UsageTotals{}) {
				t.Errorf("empty ledger by %v: %+v", by, rep)
			}
		}
	}},
	{"Totals", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		noErr(t, w.AppendUsage(t.Context(), usageRecords()), "AppendUsage")
		rep := mustQuery(t, r, storage.UsageQuery{})
		want := totals(5, 4, 1330, 167, 133, 3, 0.00485, 1)
		if len(rep.Rows) != 1 {
			t.Fatalf("ungrouped: %d rows, want 1", len(rep.Rows))
		}
		sameTotals(t, "ungrouped row", rep.Rows[0].UsageTotals, want)
		sameTotals(t, "ungrouped totals", rep.Totals, want)
		if row := rep.Rows[0]; row.Time != nil || row.KeyID != "" || row.Alias != "" || row.Target != "" {
			t.Errorf("ungrouped row names a group: %+v", row)
		}
	}},
	{"GroupByKeyAlias", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		noErr(t, w.AppendUsage(t.Context(), usageRecords()), "AppendUsage")
		rep := mustQuery(t, r, storage.UsageQuery{GroupBy: []string{storage.UsageByKey, storage.UsageByAlias}})
		want := []struct {
			key, name, alias string
			t                storage.UsageTotals
		}{
			{"k1", "k1-name", "chat-prod", totals(4, 3, 1130, 127, 113, 3, 0.00395, 1)},
			{"k2", "k2-name", "gpt-4o-primary", totals(1, 1, 200, 40, 20, 0, 0.0009, 0)},
		}
		if len(rep.Rows) != len(want) {
			t.Fatalf("by key,alias: %d rows %+v, want %d", len(rep.Rows), rep.Rows, len(want))
		}
		for i, wr := range want {
			got := rep.Rows[i]
			if got.KeyID != wr.key || got.KeyName != wr.name || got.Alias != wr.alias || got.Target != "" || got.Time != nil {
				t.Errorf("row %d: %+v, want key %s (%s) alias %s", i, got, wr.key, wr.name, wr.alias)
			}
			sameTotals(t, "row "+wr.key, got.UsageTotals, wr.t)
		}
		sameTotals(t, "totals", rep.Totals, totals(5, 4, 1330, 167, 133, 3, 0.00485, 1))
	}},
	{"GroupByTarget", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		noErr(t, w.AppendUsage(t.Context(), usageRecords()), "AppendUsage")
		rep := mustQuery(t, r, storage.UsageQuery{GroupBy: []string{storage.UsageByTarget}})
		if len(rep.Rows) != 2 || rep.Rows[0].Target != "gpt-4o-primary" || rep.Rows[1].Target != "gpt-4o-secondary" {
			t.Fatalf("by target: %+v", rep.Rows)
		}
		// The 429 is gpt-4o-primary's own failed attempt.
		sameTotals(t, "gpt-4o-primary", rep.Rows[0].UsageTotals, totals(4, 3, 1300, 160, 130, 0, 0.00485, 0))
		sameTotals(t, "gpt-4o-secondary", rep.Rows[1].UsageTotals, totals(1, 1, 30, 7, 3, 3, 0, 1))
	}},
	{"GroupByDayAndHour", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		noErr(t, w.AppendUsage(t.Context(), usageRecords()), "AppendUsage")
		rep := mustQuery(t, r, storage.UsageQuery{GroupBy: []string{storage.UsageByDay}})
		if len(rep.Rows) != 2 || rep.Rows[0].Time == nil || !rep.Rows[0].Time.Equal(usageDay) || rep.Rows[1].Time == nil || !rep.Rows[1].Time.Equal(usageDay.Add(24*time.Hour)) {
			t.Fatalf("by day: %+v", rep.Rows)
		}
		sameTotals(t, "first day", rep.Rows[0].UsageTotals, totals(4, 3, 330, 67, 33, 3, 0.00135, 1))
		rep = mustQuery(t, r, storage.UsageQuery{GroupBy: []string{storage.UsageByHour, storage.UsageByKey}})
		var got []string
		for _, row := range rep.Rows {
			got = append(got, row.Time.Format("02T15")+"/"+row.KeyID)
		}
		if want := "[14T09/k1 14T09/k2 14T10/k1 15T01/k1]"; fmtSlice(got) != want {
			t.Errorf("by hour,key: %s, want %s", fmtSlice(got), want)
		}
	}},
	{"Filters", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		noErr(t, w.AppendUsage(t.Context(), usageRecords()), "AppendUsage")
		for _, tc := range []struct {
			name string
			q    storage.UsageQuery
			want storage.UsageTotals
		}{
			{"key", storage.UsageQuery{KeyID: "k2"}, totals(1, 1, 200, 40, 20, 0, 0.0009, 0)},
			{"alias", storage.UsageQuery{Alias: "chat-prod"}, totals(4, 3, 1130, 127, 113, 3, 0.00395, 1)},
			{"target", storage.UsageQuery{Target: "gpt-4o-secondary"}, totals(1, 1, 30, 7, 3, 3, 0, 1)},
			// From inclusive, To exclusive.
			{"from", storage.UsageQuery{From: usageDay.Add(10*time.Hour + 5*time.Minute)}, totals(3, 2, 1030, 107, 103, 3, 0.0035, 1)},
			{"to", storage.UsageQuery{To: usageDay.Add(10*time.Hour + 5*time.Minute)}, totals(2, 2, 300, 60, 30, 0, 0.00135, 0)},
			{"from and to", storage.UsageQuery{From: usageDay, To: usageDay.Add(24 * time.Hour), KeyID: "k1"}, totals(3, 2, 130, 27, 13, 3, 0.00045, 1)},
			{"no match", storage.UsageQuery{Alias: "nothing"}, storage.UsageTotals{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sameTotals(t, tc.name, mustQuery(t, r, tc.q).Totals, tc.want)
			})
		}
	}},
	{"Prune", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		noErr(t, w.AppendUsage(t.Context(), usageRecords()), "AppendUsage")
		n, err := w.PruneUsage(t.Context(), usageDay.Add(10*time.Hour))
		noErr(t, err, "PruneUsage")
		if n != 2 {
			t.Errorf("pruned %d, want 2", n)
		}
		sameTotals(t, "after prune", mustQuery(t, r, storage.UsageQuery{}).Totals, totals(3, 2, 1030, 107, 103, 3, 0.0035, 1))
		if n, err := w.PruneUsage(t.Context(), usageDay); err != nil || n != 0 {
			t.Errorf("second prune: %d, %v; want 0, nil", n, err)
		}
	}},
	{"LargeBatch", func(t *testing.T, w storage.UsageStore, r storage.UsageReader) {
		// More than one transaction's worth.
		recs := make([]storage.UsageRecord, 1234)
		for i := range recs {
			recs[i] = storage.UsageRecord{Time: usageDay.Add(time.Duration(i) * time.Second), CallID: "c", Attempt: 1, KeyID: "k",
				Endpoint: "embeddings", Alias: "a", Target: "a", Status: 200, Outcome: "ok", InputTokens: 1, Cost: 0.5, Priced: true}
		}
		noErr(t, w.AppendUsage(t.Context(), recs), "AppendUsage")
		sameTotals(t, "large batch", mustQuery(t, r, storage.UsageQuery{}).Totals, totals(1234, 1234, 1234, 0, 0, 0, 617, 0))
		noErr(t, w.AppendUsage(t.Context(), nil), "AppendUsage of nothing")
	}},
	{"InvalidQuery", func(t *testing.T, _ storage.UsageStore, r storage.UsageReader) {
		for _, q := range []storage.UsageQuery{
			{GroupBy: []string{"week"}},
			{GroupBy: []string{storage.UsageByKey, storage.UsageByKey}},
			{GroupBy: []string{storage.UsageByDay, storage.UsageByHour}},
			{From: usageDay, To: usageDay.Add(-time.Hour)},
		} {
			_, err := r.QueryUsage(t.Context(), q)
			wantErr(t, err, storage.ErrInvalid)
		}
	}},
}

func fmtSlice(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}
