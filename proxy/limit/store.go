package limit

import (
	"math"
	"sync"
	"time"
)

// Store holds the counters of every scope. Each method is atomic for its
// key, the unit a shared store (Redis: one script per key) can make atomic
// too; the Limiter makes a request all-or-nothing across keys by reverting
// the keys it already admitted when a later one refuses.
type Store interface {
	// Admit checks every dimension of lim for key at now, counting
	// tokens (the estimate) against the token windows, and only if all
	// pass records the request: one admission in each request window, the
	// tokens in each token window, one concurrency slot. It returns the
	// admission and the scope's per-minute usage, or the rejection of the
	// dimension that frees last (a spent budget before any rate limit).
	Admit(key Key, lim Limits, now time.Time, tokens int64) (Admission, Usage, *Rejection)
	// Revert undoes an Admit entirely, as if it never happened.
	Revert(a *Admission)
	// Settle ends an admitted request at now: the estimate is taken back
	// from the token windows (if still in them) and the real tokens
	// added, costUSD is added to the spend of the current day, week and
	// month, and the concurrency slot is released.
	Settle(a *Admission, now time.Time, tokens int64, costUSD float64)
	// SeedSpend adds usd to the spend of key in the period p that starts
	// at start (the usage ledger's figure at start-up). A period that is
	// already over for key is ignored.
	SeedSpend(key Key, p Period, start time.Time, usd float64)
	// Status returns what key has counted at now; the zero Status for a
	// key with no state.
	Status(key Key, now time.Time) Status
}

// Status is what one scope has counted at a moment, for the admin API and
// the dashboard. A window that no limit asked for counts nothing.
type Status struct {
	InFlight int64
	// Requests and tokens counted in the current minute and day windows.
	RPM, RPD, TPM, TPD int64
	// Spend in the current day, week and month (UTC).
	SpendDayUSD, SpendWeekUSD, SpendMonthUSD float64
}

// Spend returns the spend of the current period p.
func (s Status) Spend(p Period) float64 {
	switch p {
	case PeriodWeek:
		return s.SpendWeekUSD
	case PeriodMonth:
		return s.SpendMonthUSD
	}
	return s.SpendDayUSD
}

// BatchStore is a Store that can take the scopes of one request together:
// a shared store sends them in one round trip instead of one per scope.
// Each key's operation stays atomic on its own, as in Store; the Limiter
// keeps a request all-or-nothing by reverting the admitted scopes when one
// refuses. The Limiter uses it for requests limited in two scopes or more.
type BatchStore interface {
	Store
	// AdmitBatch is Admit on every subject, each independently of the
	// others; the results go to adm, use and rej, which have
	// len(subjects) entries.
	AdmitBatch(subjects []Subject, now time.Time, tokens int64, adm []Admission, use []Usage, rej []*Rejection)
	// RevertBatch is Revert on every admission.
	RevertBatch(adm []Admission)
	// SettleBatch is Settle on every admission.
	SettleBatch(adm []Admission, now time.Time, tokens int64, costUSD float64)
}

// Sweeper is a Store that can drop the state of idle scopes.
type Sweeper interface {
	// Sweep drops the state of every scope that counts nothing at now
	// and returns how many it dropped.
	Sweep(now time.Time) int
}

// Counted flags which windows an admission was recorded in.
type Counted uint8

// The windows an admission can be recorded in.
const (
	CountedRPM Counted = 1 << iota
	CountedRPD
	CountedTPM
	CountedTPD
)

// Admission is one request admitted in one scope.
type Admission struct {
	Key Key
	// Handle is the store's own reference to the scope's state (Memory:
	// its bucket, so Settle needs no lookup); a shared store may leave it
	// nil and use Key.
	Handle any
	// At is the admission time as recorded, in unix nanoseconds.
	At int64
	// Tokens is the estimate counted in the token windows.
	Tokens int64
	// Counted says which windows At and Tokens were recorded in, so a
	// Revert or Settle after a limit change touches only those.
	Counted Counted
}

// Usage is a scope's per-minute figures right after an admission, for the
// rate-limit headers. A zero limit means none is set.
type Usage struct {
	RPM, RPMUsed int64
	RPMReset     time.Duration
	TPM, TPMUsed int64
	TPMReset     time.Duration
}

// Memory is the in-process Store: one bucket per key in a sync.Map, each
// with its own mutex, so requests of different keys never contend.
type Memory struct {
	m sync.Map // Key → *bucket
}

var (
	_ Store   = (*Memory)(nil)
	_ Sweeper = (*Memory)(nil)
)

// NewMemory returns an empty in-process Store.
func NewMemory() *Memory { return &Memory{} }

// spend is one period's spend, in nano-dollars so that sums of costs
// compare exactly with a budget.
type spend struct {
	start, next int64 // unix nanoseconds
	nano        int64
}

func nanoUSD(usd float64) int64 { return int64(math.Round(usd * 1e9)) }

type bucket struct {
	mu       sync.Mutex
	dead     bool // swept: a new bucket takes its place
	inflight int64
	rpm      reqWindow
	rpd      reqWindow
	tpm      *slotted
	tpd      *slotted
	spend    [3]spend
}

func newBucket() *bucket {
	return &bucket{rpm: reqWindow{window: time.Minute}, rpd: reqWindow{window: 24 * time.Hour}}
}

// lock returns key's bucket, locked, creating it if need be.
func (s *Memory) lock(key Key) *bucket {
	for {
		v, ok := s.m.Load(key)
		if !ok {
			v, _ = s.m.LoadOrStore(key, newBucket())
		}
		b := v.(*bucket)
		b.mu.Lock()
		if !b.dead {
			return b
		}
		b.mu.Unlock()
	}
}

// roll starts the periods that have begun by now afresh.
func (b *bucket) roll(now int64) {
	for i := range b.spend {
		sp := &b.spend[i]
		if now < sp.next {
			continue
		}
		t := time.Unix(0, now)
		sp.start = PeriodStart(periods[i], t).UnixNano()
		sp.next = NextPeriodStart(periods[i], t).UnixNano()
		sp.nano = 0
	}
}

func tokenWindow(w *slotted, limit int64, window time.Duration) *slotted {
	switch {
	case limit <= 0:
		return nil
	case w == nil:
		return newSlotted(window)
	}
	return w
}

// Admit implements Store.
func (s *Memory) Admit(key Key, lim Limits, now time.Time, tokens int64) (Admission, Usage, *Rejection) {
	tokens = max(tokens, 0)
	n := now.UnixNano()
	b := s.lock(key)
	defer b.mu.Unlock()

	b.rpm.setLimit(lim.RPM, n)
	b.rpd.setLimit(lim.RPD, n)
	b.tpm = tokenWindow(b.tpm, lim.TPM, time.Minute)
	b.tpd = tokenWindow(b.tpd, lim.TPD, 24*time.Hour)

	if lim.hasBudget() {
		b.roll(n)
		sp := b.spend[periodIndex(lim.Budget.Period)]
		if sp.nano >= nanoUSD(lim.Budget.AmountUSD) {
			reset := time.Unix(0, sp.next).UTC()
			return Admission{}, Usage{}, &Rejection{
				Scope: key.Scope, ID: key.ID, Dimension: DimBudget,
				AmountUSD: lim.Budget.AmountUSD, RetryAfter: reset.Sub(now), ResetAt: reset,
			}
		}
	}

	var (
		worst    Dimension
		worstLim int64
		retry    time.Duration
	)
	refuse := func(d Dimension, l int64, ra time.Duration) {
		if worst == "" || ra > retry {
			worst, worstLim, retry = d, l, ra
		}
	}
	if lim.Concurrency > 0 && b.inflight >= lim.Concurrency {
		refuse(DimConcurrency, lim.Concurrency, ConcurrencyRetryAfter)
	}
	if lim.RPM > 0 {
		if ok, ra := b.rpm.check(n); !ok {
			refuse(DimRPM, lim.RPM, ra)
		}
	}
	if lim.RPD > 0 {
		if ok, ra := b.rpd.check(n); !ok {
			refuse(DimRPD, lim.RPD, ra)
		}
	}
	if b.tpm != nil {
		if ra, ok := checkTokens(b.tpm, n, lim.TPM, tokens); !ok {
			refuse(DimTPM, lim.TPM, ra)
		}
	}
	if b.tpd != nil {
		if ra, ok := checkTokens(b.tpd, n, lim.TPD, tokens); !ok {
			refuse(DimTPD, lim.TPD, ra)
		}
	}
	if worst != "" {
		return Admission{}, Usage{}, &Rejection{
			Scope: key.Scope, ID: key.ID, Dimension: worst, Limit: worstLim,
			RetryAfter: retry, ResetAt: now.Add(retry),
		}
	}

	// One time for every window, so a revert finds each entry; the logs
	// never go back in time.
	at := max(n, b.rpm.log.last, b.rpd.log.last)
	a := Admission{Key: key, Handle: b, At: at, Tokens: tokens}
	var u Usage
	if lim.RPM > 0 {
		b.rpm.admit(at)
		a.Counted |= CountedRPM
		u.RPM, u.RPMUsed, u.RPMReset = lim.RPM, b.rpm.count(n), b.rpm.untilFree(n)
	}
	if lim.RPD > 0 {
		b.rpd.admit(at)
		a.Counted |= CountedRPD
	}
	if b.tpm != nil {
		b.tpm.add(at, tokens)
		a.Counted |= CountedTPM
		u.TPM, u.TPMUsed = lim.TPM, b.tpm.sum
		if b.tpm.sum > 0 {
			u.TPMReset = b.tpm.untilBelow(n, b.tpm.sum-1)
		}
	}
	if b.tpd != nil {
		b.tpd.add(at, tokens)
		a.Counted |= CountedTPD
	}
	b.inflight++
	return a, u, nil
}

// checkTokens checks tokens more against w's limit: a request fits if the
// window is empty (so one request larger than the limit is not refused
// forever) or if what is counted plus tokens stays within the limit.
func checkTokens(w *slotted, now, limit, tokens int64) (time.Duration, bool) {
	w.advance(now)
	if w.sum == 0 || w.sum+tokens <= limit {
		return 0, true
	}
	return w.untilBelow(now, max(limit-tokens, 0)), false
}

// Revert implements Store.
func (s *Memory) Revert(a *Admission) {
	b, ok := a.Handle.(*bucket)
	if !ok {
		return
	}
	at := a.At
	b.mu.Lock()
	defer b.mu.Unlock()
	if a.Counted&CountedRPM != 0 && b.rpm.limit > 0 {
		b.rpm.revert(at)
	}
	if a.Counted&CountedRPD != 0 && b.rpd.limit > 0 {
		b.rpd.revert(at)
	}
	if a.Counted&CountedTPM != 0 && b.tpm != nil {
		b.tpm.sub(at, a.Tokens)
	}
	if a.Counted&CountedTPD != 0 && b.tpd != nil {
		b.tpd.sub(at, a.Tokens)
	}
	b.inflight--
}

// Settle implements Store.
func (s *Memory) Settle(a *Admission, now time.Time, tokens int64, costUSD float64) {
	b, ok := a.Handle.(*bucket)
	if !ok {
		return
	}
	tokens = max(tokens, 0)
	at, n := a.At, now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tpm != nil {
		if a.Counted&CountedTPM != 0 {
			b.tpm.advance(n)
			b.tpm.sub(at, a.Tokens)
		}
		b.tpm.add(n, tokens)
	}
	if b.tpd != nil {
		if a.Counted&CountedTPD != 0 {
			b.tpd.advance(n)
			b.tpd.sub(at, a.Tokens)
		}
		b.tpd.add(n, tokens)
	}
	if c := nanoUSD(costUSD); c > 0 {
		b.roll(n)
		for i := range b.spend {
			b.spend[i].nano += c
		}
	}
	b.inflight--
}

// SeedSpend implements Store.
func (s *Memory) SeedSpend(key Key, p Period, start time.Time, usd float64) {
	if !p.Valid() || usd <= 0 {
		return
	}
	st := PeriodStart(p, start)
	b := s.lock(key)
	defer b.mu.Unlock()
	sp := &b.spend[periodIndex(p)]
	switch ns := st.UnixNano(); {
	case ns < sp.start:
		return
	case ns > sp.start:
		sp.start, sp.next, sp.nano = ns, NextPeriodStart(p, st).UnixNano(), 0
	}
	sp.nano += nanoUSD(usd)
}

// Status implements Store.
func (s *Memory) Status(key Key, now time.Time) Status {
	v, ok := s.m.Load(key)
	if !ok {
		return Status{}
	}
	b := v.(*bucket)
	n := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.dead {
		return Status{}
	}
	st := Status{InFlight: b.inflight, RPM: b.rpm.count(n), RPD: b.rpd.count(n)}
	if b.tpm != nil {
		b.tpm.advance(n)
		st.TPM = b.tpm.sum
	}
	if b.tpd != nil {
		b.tpd.advance(n)
		st.TPD = b.tpd.sum
	}
	b.roll(n)
	st.SpendDayUSD = float64(b.spend[0].nano) / 1e9
	st.SpendWeekUSD = float64(b.spend[1].nano) / 1e9
	st.SpendMonthUSD = float64(b.spend[2].nano) / 1e9
	return st
}

// Sweep implements Sweeper: a bucket with nothing in flight, nothing in
// any window and no spend in the current periods is dropped. A bucket with
// spend this month is kept until the month ends.
func (s *Memory) Sweep(now time.Time) int {
	n := now.UnixNano()
	dropped := 0
	s.m.Range(func(k, v any) bool {
		b := v.(*bucket)
		b.mu.Lock()
		if b.idle(n) {
			b.dead = true
			s.m.CompareAndDelete(k, b)
			dropped++
		}
		b.mu.Unlock()
		return true
	})
	return dropped
}

func (b *bucket) idle(now int64) bool {
	if b.inflight != 0 || b.rpm.count(now) != 0 || b.rpd.count(now) != 0 {
		return false
	}
	for _, w := range [2]*slotted{b.tpm, b.tpd} {
		if w != nil {
			w.advance(now)
			if !w.empty() {
				return false
			}
		}
	}
	b.roll(now)
	for _, sp := range b.spend {
		if sp.nano != 0 {
			return false
		}
	}
	return true
}

// len is the number of buckets, for tests.
func (s *Memory) len() int {
	n := 0
	s.m.Range(func(any, any) bool { n++; return true })
	return n
}
