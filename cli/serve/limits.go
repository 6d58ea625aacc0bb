package serve

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// budgets seeds the limiter's budget spend from the usage ledger, so that a
// restart (or a budget set on a key that has been spending) does not
// start a period from zero. Each budgeted caller key and model is seeded
// once per period: with what the ledger holds for the period less what the
// limiter already counted.
//
// With a shared store (Redis), every replica seeds, at its own start, the
// same figure of the same ledger (PostgreSQL): adding it would count the
// period's spend once per replica. The shared store's SeedSpend raises the
// spend to at least the figure instead (raises), so the whole ledger
// figure is passed and the result is max(shared spend, ledger) however
// many replicas seed, in whatever order; neither side is lost — the
// shared count holds what the ledger has not written yet, the ledger what
// Redis lost (a restart, a fallback to per-replica counting).
type budgets struct {
	lim    *limit.Limiter
	ledger storage.UsageReader
	logger *slog.Logger
	now    func() time.Time
	// raises is true when the limiter's store raises the spend to a seed
	// instead of adding it.
	raises bool

	mu     sync.Mutex
	seeded map[seedKey]bool
}

type seedKey struct {
	key   limit.Key
	start time.Time
}

// seed seeds every budgeted key and model of snap not yet seeded for its
// current period.
func (b *budgets) seed(ctx context.Context, snap *routing.Snapshot) {
	if b == nil || b.ledger == nil || snap == nil {
		return
	}
	now := b.now()
	var subs []limit.Subject
	for _, k := range snap.CallerKeys() {
		if k.Limit.Limits.Budget != nil {
			subs = append(subs, k.Limit)
		}
	}
	for _, m := range snap.Models() {
		if m.Limit.Limits.Budget != nil {
			subs = append(subs, m.Limit)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.seeded == nil {
		b.seeded = map[seedKey]bool{}
	}
	// One ledger query per period and scope, only when something needs it.
	spent := map[seedKey]float64{}
	queried := map[seedKey]bool{}
	for _, s := range subs {
		p := s.Limits.Budget.Period
		if !p.Valid() {
			continue
		}
		start := limit.PeriodStart(p, now)
		sk := seedKey{s.Key, start}
		if b.seeded[sk] {
			continue
		}
		qk := seedKey{limit.Key{Scope: s.Key.Scope}, start}
		if !queried[qk] {
			queried[qk] = true
			if err := b.query(ctx, s.Key.Scope, start, snap, spent); err != nil {
				b.logger.Warn("budgets: could not read the usage ledger; spend counts from now", "err", err)
				return
			}
		}
		b.seeded[sk] = true
		have := b.lim.Status(s.Key, now).Spend(p)
		if d := spent[sk] - have; d > 0 {
			if b.raises {
				d = spent[sk]
			}
			b.lim.SeedSpend(s.Key, p, start, d)
		}
	}
}

// query adds to spent the ledger's cost since start of every caller key
// (by id) or every model (by the alias callers asked for, resolved to the
// model's id in snap).
func (b *budgets) query(ctx context.Context, scope limit.Scope, start time.Time, snap *routing.Snapshot, spent map[seedKey]float64) error {
	by := storage.UsageByKey
	if scope == limit.ScopeModel {
		by = storage.UsageByAlias
	}
	rep, err := b.ledger.QueryUsage(ctx, storage.UsageQuery{From: start, GroupBy: []string{by}})
	if err != nil {
		return err
	}
	for _, r := range rep.Rows {
		id := r.KeyID
		if scope == limit.ScopeModel {
			m := snap.Model(r.Alias)
			if m == nil {
				continue
			}
			id = m.ID
		}
		spent[seedKey{limit.Key{Scope: scope, ID: id}, start}] += r.CostUSD
	}
	return nil
}

// limitUsage reads the limiter's live counts of a caller key ("caller_key")
// or model ("model") for the admin API; false when it has no limits.
func limitUsage(lim *limit.Limiter, table *routing.Table, now func() time.Time) func(scope, id string) (storage.LimitUsage, bool) {
	return func(scope, id string) (storage.LimitUsage, bool) {
		snap := table.Snapshot()
		var sub *limit.Subject
		switch limit.Scope(scope) {
		case limit.ScopeCallerKey:
			for _, k := range snap.CallerKeys() {
				if k.ID == id {
					sub = &k.Limit
					break
				}
			}
		case limit.ScopeModel:
			if m := snap.ModelByID(id); m != nil {
				sub = &m.Limit
			}
		}
		if sub == nil || sub.Limits.IsZero() {
			return storage.LimitUsage{}, false
		}
		return usageOf(lim, sub, now()), true
	}
}

// usageOf is what the limiter counts for sub at t, in the admin API's
// shape: the budget's spend and reset only when sub has a budget.
func usageOf(lim *limit.Limiter, sub *limit.Subject, t time.Time) storage.LimitUsage {
	st := lim.Status(sub.Key, t)
	u := storage.LimitUsage{Concurrency: st.InFlight, RPM: st.RPM, RPD: st.RPD, TPM: st.TPM, TPD: st.TPD}
	if bg := sub.Limits.Budget; bg != nil && bg.Period.Valid() {
		spent, reset := st.Spend(bg.Period), limit.NextPeriodStart(bg.Period, t)
		u.BudgetSpentUSD, u.BudgetResetsAt = &spent, &reset
	}
	return u
}

// limitRows lists, for GET /admin/v1/limits and the status API, every
// caller key, model and direct model's provider_limit of the live snapshot
// that has a limit, with what the limiter counts for it now and its
// rejections since start.
func limitRows(lim *limit.Limiter, table *routing.Table, now func() time.Time) func() []admin.LimitRow {
	return func() []admin.LimitRow {
		snap, t := table.Snapshot(), now()
		var rows []admin.LimitRow
		add := func(name string, sub *limit.Subject) {
			if sub.Limits.IsZero() {
				return
			}
			l := &sub.Limits
			r := admin.LimitRow{Scope: string(sub.Key.Scope), ID: sub.Key.ID, Name: name,
				RateLimit: storage.RateLimit{RPM: l.RPM, RPD: l.RPD, TPM: l.TPM, TPD: l.TPD, Concurrency: l.Concurrency},
				Usage:     usageOf(lim, sub, t), Rejected: lim.Rejected(sub.Key)}
			if b := l.Budget; b != nil && b.AmountUSD > 0 && b.Period.Valid() {
				r.Budget = &storage.Budget{AmountUSD: b.AmountUSD, Period: string(b.Period)}
			}
			rows = append(rows, r)
		}
		for _, k := range snap.CallerKeys() {
			add(k.Name, &k.Limit)
		}
		for _, m := range snap.Models() {
			add(m.Name, &m.Limit)
			if m.Direct != nil {
				add(m.Name, &m.Direct.Limit)
			}
		}
		return rows
	}
}
