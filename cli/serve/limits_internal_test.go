package serve

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestBudgetsSeedFromLedger: a restart does not reset a period's spend. The
// ledger (a real SQLite file) holds this month's spend of a key and of a
// model, and last month's, which must not count.
func TestBudgetsSeedFromLedger(t *testing.T) {
	now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	rec := func(at time.Time, key, alias string, cost float64) storage.UsageRecord {
		return storage.UsageRecord{Time: at, CallID: "c", Attempt: 1, KeyID: key, Endpoint: "chat.completions", Alias: alias,
			Target: "gpt-4o-primary", Status: 200, Outcome: "ok", InputTokens: 10, OutputTokens: 9, Cost: cost, Priced: true}
	}
	if err := store.AppendUsage(context.Background(), []storage.UsageRecord{
		rec(now.Add(-time.Hour), "key-1", "chat-prod", 3),
		rec(now.Add(-48*time.Hour), "key-1", "chat-prod", 4),    // this month
		rec(now.AddDate(0, -1, 0), "key-1", "chat-prod", 100),   // last month
		rec(now.Add(-time.Hour), "key-2", "gpt-4o-primary", 50), // another key, unbudgeted
	}); err != nil {
		t.Fatal(err)
	}
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Adapter: "openai", Secret: "sk-x", APIBase: "http://127.0.0.1:1/v1"}},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"},
			{ID: "m2", DisplayName: "chat-prod", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-primary"}}},
				Budget: &storage.Budget{AmountUSD: 20, Period: storage.BudgetDay}},
		},
		APIKeys: []storage.APIKey{
			{ID: "key-1", KeyHash: proxytest.KeyHash("sk-1"), AllowedModels: []string{"*"}, Budget: &storage.Budget{AmountUSD: 10, Period: storage.BudgetMonth}},
			{ID: "key-2", KeyHash: proxytest.KeyHash("sk-2"), AllowedModels: []string{"*"}},
		},
	}
	table := tableOf(t, ds)
	clock := func() time.Time { return now }
	lim := limit.New(limit.Options{Now: clock})
	b := &budgets{lim: lim, ledger: store, logger: slog.New(slog.DiscardHandler), now: clock}
	b.seed(context.Background(), table.Snapshot())

	key := limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}
	if got := lim.Status(key, now).SpendMonthUSD; got != 7 {
		t.Errorf("key-1 month spend = %v, want 7 (this month's ledger)", got)
	}
	model := limit.Key{Scope: limit.ScopeModel, ID: "m2"}
	if got := lim.Status(model, now).SpendDayUSD; got != 3 {
		t.Errorf("chat-prod day spend = %v, want 3 (today's ledger, by alias)", got)
	}
	if got := lim.Status(limit.Key{Scope: limit.ScopeCallerKey, ID: "key-2"}, now).SpendMonthUSD; got != 0 {
		t.Errorf("key-2 (no budget) spend = %v, want no state", got)
	}
	// Seeding again (a reload) does not count twice.
	b.seed(context.Background(), table.Snapshot())
	if got := lim.Status(key, now).SpendMonthUSD; got != 7 {
		t.Errorf("after a second seed: %v, want 7", got)
	}
	// The budget refuses at 10: 7 spent, one more request of 3 crosses it.
	k := ds.APIKeys[0]
	subj := limit.Subject{Key: key, Limits: limit.Limits{Budget: &limit.Budget{AmountUSD: k.Budget.AmountUSD, Period: limit.PeriodMonth}}}
	tk, rej := lim.Acquire(now, 0, subj)
	if rej != nil {
		t.Fatalf("under budget: %v", rej)
	}
	tk.DoneAt(now, 19, 3)
	if _, rej := lim.Acquire(now, 0, subj); rej == nil || rej.Dimension != limit.DimBudget {
		t.Fatalf("over budget after the seed: rejection %v", rej)
	}

	// The admin API's view.
	u, ok := limitUsage(lim, table, clock)("caller_key", "key-1")
	if !ok || u.BudgetSpentUSD == nil || *u.BudgetSpentUSD != 10 || !u.BudgetResetsAt.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("limit usage = %+v (ok %v)", u, ok)
	}
	if _, ok := limitUsage(lim, table, clock)("caller_key", "key-2"); ok {
		t.Error("a key without limits has limit usage")
	}
}

// TestLimitRows: the admin API's list of limits reads the live snapshot
// and a real limiter: every caller key, model and provider_limit with a
// limit, with its counts and rejections; nothing for those without.
func TestLimitRows(t *testing.T) {
	now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Adapter: "openai", Secret: "sk-x", APIBase: "http://127.0.0.1:1/v1"}},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk", ProviderLimit: &storage.RateLimit{RPM: 1, TPM: 500}},
			{ID: "m2", DisplayName: "chat-prod", Routing: &storage.Routing{Targets: []storage.Target{{Model: "gpt-4o-primary"}}},
				RateLimit: &storage.RateLimit{RPD: 100}, Budget: &storage.Budget{AmountUSD: 20, Period: storage.BudgetDay}},
			{ID: "m3", DisplayName: "plain", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"},
		},
		APIKeys: []storage.APIKey{
			{ID: "key-2", KeyHash: proxytest.KeyHash("sk-2"), AllowedModels: []string{"*"}},
			{ID: "key-1", DisplayName: "ci", KeyHash: proxytest.KeyHash("sk-1"), AllowedModels: []string{"*"}, RateLimit: &storage.RateLimit{RPM: 2, Concurrency: 4}},
		},
	}
	table := tableOf(t, ds)
	clock := func() time.Time { return now }
	lim := limit.New(limit.Options{Now: clock})
	defer lim.Close()
	snap := table.Snapshot()
	group, target := snap.Model("chat-prod").Limit, snap.Model("gpt-4o-primary").Direct.Limit
	var key limit.Subject
	for _, k := range snap.CallerKeys() { // a map's order: find key-1
		if k.ID == "key-1" {
			key = k.Limit
		}
	}
	// Two requests through the key and the group (the second still in
	// flight), a third refused by the key's rpm; one try on the target,
	// a second skipped at its rpm.
	tk, rej := lim.Acquire(now, 10, key, group)
	if rej != nil {
		t.Fatal(rej)
	}
	tk.DoneAt(now, 30, 1.5)
	if _, rej := lim.Acquire(now, 10, key, group); rej != nil {
		t.Fatal(rej)
	}
	if _, rej := lim.Acquire(now, 10, key, group); rej == nil || rej.Code() != "caller_key_rpm" {
		t.Fatalf("third request: %v", rej)
	}
	tt, rej := lim.Acquire(now, 10, target)
	if rej != nil {
		t.Fatal(rej)
	}
	tt.DoneAt(now, 30, 1.5)
	if _, rej := lim.Acquire(now, 10, target); rej == nil || rej.Code() != "target_rpm" {
		t.Fatalf("second try: %v", rej)
	}

	rows := limitRows(lim, table, clock)()
	byScope := map[string]admin.LimitRow{}
	for _, r := range rows {
		if _, dup := byScope[r.Scope]; dup {
			t.Errorf("two rows of scope %s: %+v", r.Scope, rows)
		}
		byScope[r.Scope] = r
	}
	if len(rows) != 3 {
		t.Fatalf("rows = %+v, want the key, the group and the target", rows)
	}
	k := byScope["caller_key"]
	if k.ID != "key-1" || k.Name != "ci" || k.RateLimit != (storage.RateLimit{RPM: 2, Concurrency: 4}) || k.Budget != nil ||
		k.Usage.RPM != 2 || k.Usage.Concurrency != 1 || k.Rejected != 1 {
		t.Errorf("caller key row = %+v", k)
	}
	m := byScope["model"]
	if m.ID != "m2" || m.Name != "chat-prod" || m.RateLimit.RPD != 100 || m.Budget == nil || m.Budget.AmountUSD != 20 || m.Budget.Period != "day" ||
		m.Usage.RPD != 2 || m.Usage.BudgetSpentUSD == nil || *m.Usage.BudgetSpentUSD != 1.5 || m.Rejected != 0 {
		t.Errorf("model row = %+v (usage %+v)", m, m.Usage)
	}
	tg := byScope["target"]
	if tg.ID != "m1" || tg.Name != "gpt-4o-primary" || tg.RateLimit != (storage.RateLimit{RPM: 1, TPM: 500}) || tg.Budget != nil ||
		tg.Usage.RPM != 1 || tg.Usage.TPM != 30 || tg.Rejected != 1 {
		t.Errorf("target row = %+v (usage %+v)", tg, tg.Usage)
	}
	if at := admin.AtLimitOf(&tg.RateLimit, tg.Budget, tg.Usage); len(at) != 1 || at[0] != "rpm" {
		t.Errorf("target at limit = %q, want rpm", at)
	}
}

// tableOf is a routing table loaded from ds.
func tableOf(t *testing.T, ds storage.Dataset) *routing.Table {
	t.Helper()
	table := routing.NewTable(proxytest.NewSource(ds), nil)
	if err := table.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	return table
}
