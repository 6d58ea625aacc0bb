package limit

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestExactUnderConcurrency(t *testing.T) {
	tests := []struct {
		name   string
		lim    Limits
		tokens int64
		want   int64
		dim    Dimension
	}{
		{name: "rpm", lim: Limits{RPM: 50}, want: 50, dim: DimRPM},
		{name: "rpd", lim: Limits{RPD: 50}, want: 50, dim: DimRPD},
		{name: "tpm", lim: Limits{TPM: 500}, tokens: 10, want: 50, dim: DimTPM},
		{name: "tpd", lim: Limits{TPD: 500}, tokens: 10, want: 50, dim: DimTPD},
		{name: "concurrency", lim: Limits{Concurrency: 50}, want: 50, dim: DimConcurrency},
		{name: "rpm slotted above the log size", lim: Limits{RPM: int64(maxExactLog) + 50}, want: int64(maxExactLog) + 50, dim: DimRPM},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLimiter(t)
			s := callerKey("k", tt.lim)
			n := max(200, int(tt.want)+150)
			var admitted atomic.Int64
			var wrongDim atomic.Value
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					now := t0.Add(time.Duration(i%7) * time.Millisecond)
					_, rej := l.Acquire(now, tt.tokens, s)
					if rej != nil {
						if rej.Dimension != tt.dim {
							wrongDim.Store(rej.Dimension)
						}
						return
					}
					admitted.Add(1)
				}()
			}
			close(start)
			wg.Wait()
			if got := admitted.Load(); got != tt.want {
				t.Errorf("admitted %d of %d, want %d", got, n, tt.want)
			}
			if d := wrongDim.Load(); d != nil {
				t.Errorf("a rejection named %v, want %s", d, tt.dim)
			}
		})
	}
}

func TestWindowSlides(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{RPM: 3})
	for _, at := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		mustAcquire(t, l, t0.Add(at), 0, s).Done(0, 0)
	}
	rej := mustRefuse(t, l, t0.Add(59900*time.Millisecond), 0, s)
	if rej.Dimension != DimRPM || rej.Limit != 3 || rej.RetryAfter != 100*time.Millisecond {
		t.Errorf("at 59.9s: %+v, want rpm, limit 3, retry after 100ms", rej)
	}
	if want := t0.Add(60 * time.Second); !rej.ResetAt.Equal(want) {
		t.Errorf("ResetAt = %s, want %s", rej.ResetAt, want)
	}
	// One by one, as each old admission leaves the window.
	mustAcquire(t, l, t0.Add(60*time.Second), 0, s)
	if rej := mustRefuse(t, l, t0.Add(60*time.Second), 0, s); rej.RetryAfter != 10*time.Second {
		t.Errorf("just after 60s: retry after %s, want 10s", rej.RetryAfter)
	}
	mustRefuse(t, l, t0.Add(69999*time.Millisecond), 0, s)
	mustAcquire(t, l, t0.Add(70*time.Second), 0, s)
	mustRefuse(t, l, t0.Add(70*time.Second), 0, s)
	mustAcquire(t, l, t0.Add(80*time.Second), 0, s)
	mustRefuse(t, l, t0.Add(119999*time.Millisecond), 0, s)
	mustAcquire(t, l, t0.Add(120*time.Second), 0, s)
}

// TestSlidingLogIsExact checks both sides of exactness over random
// traffic: no 60 s span holds more than the limit, and a request is refused
// only when the 60 s before it hold the limit already.
func TestSlidingLogIsExact(t *testing.T) {
	const limit = 20
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{RPM: limit})
	r := rand.New(rand.NewPCG(1, 2))
	var admitted []time.Time
	now := t0
	for range 5000 {
		now = now.Add(time.Duration(r.Int64N(int64(8 * time.Second))))
		inWindow := 0
		for _, a := range admitted {
			if now.Sub(a) < time.Minute {
				inWindow++
			}
		}
		tk, rej := l.Acquire(now, 0, s)
		switch {
		case rej == nil && inWindow >= limit:
			t.Fatalf("at %s: admitted with %d in the window", now.Sub(t0), inWindow)
		case rej != nil && inWindow < limit:
			t.Fatalf("at %s: refused with %d in the window", now.Sub(t0), inWindow)
		case rej == nil:
			admitted = append(admitted, now)
			tk.Done(0, 0)
		}
	}
	if len(admitted) < 1000 {
		t.Fatalf("only %d admitted: the traffic did not exercise the limit", len(admitted))
	}
}

func TestConcurrencySlots(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{Concurrency: 2})
	a := mustAcquire(t, l, t0, 0, s)
	b := mustAcquire(t, l, t0, 0, s)
	rej := mustRefuse(t, l, t0.Add(time.Hour), 0, s)
	if rej.Dimension != DimConcurrency || rej.RetryAfter != ConcurrencyRetryAfter || rej.Code() != "caller_key_concurrency" {
		t.Errorf("rejection = %+v (%s), want concurrency, 1s", rej, rej.Code())
	}
	a.Done(0, 0)
	c := mustAcquire(t, l, t0, 0, s)
	// Done again, from a deferred path: it must not free a second slot.
	a.Done(0, 0)
	a.DoneAt(t0, 0, 0)
	mustRefuse(t, l, t0, 0, s)
	b.Done(0, 0)
	c.Done(0, 0)
	mustAcquire(t, l, t0, 0, s)
	mustAcquire(t, l, t0, 0, s)
	mustRefuse(t, l, t0, 0, s)
}

func TestDoneIdempotentConcurrently(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{Concurrency: 1, TPM: 1000, Budget: &Budget{AmountUSD: 10, Period: PeriodDay}})
	tk := mustAcquire(t, l, t0, 100, s)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tk.Done(400, 1)
		}()
	}
	wg.Wait()
	// Counted once: 400 tokens, 1 USD, one slot released.
	tk = mustAcquire(t, l, t0, 600, s)
	mustRefuse(t, l, t0, 0, s)
	tk.Done(600, 8.99)
	mustRefuse(t, l, t0, 1, s) // tpm full
	var nilTicket *Ticket
	nilTicket.Done(1, 1)
}

func TestRollbackAcrossScopes(t *testing.T) {
	l, _ := newTestLimiter(t)
	key := callerKey("k", Limits{RPM: 3, RPD: 3, TPM: 300, TPD: 300, Concurrency: 3})
	strict := model("m", Limits{RPM: 1})
	mustAcquire(t, l, t0, 100, key, strict)
	rej := mustRefuse(t, l, t0, 100, key, strict)
	if rej.Scope != ScopeModel || rej.ID != "m" || rej.Code() != "model_rpm" {
		t.Fatalf("rejection = %+v, want model m rpm", rej)
	}
	// The refused request left nothing in the caller key's scope: two
	// more requests of 100 tokens fit in every dimension, a third none.
	mustAcquire(t, l, t0, 100, key)
	mustAcquire(t, l, t0, 100, key)
	mustRefuse(t, l, t0, 1, key)
}

func TestRollbackOfRequestLogKeepsOthers(t *testing.T) {
	l, _ := newTestLimiter(t)
	key := callerKey("k", Limits{RPM: 3})
	refusing := model("m", Limits{Concurrency: 1})
	hold := mustAcquire(t, l, t0, 0, model("m", Limits{Concurrency: 1}))
	mustAcquire(t, l, t0, 0, key)
	mustRefuse(t, l, t0.Add(time.Second), 0, key, refusing)
	mustAcquire(t, l, t0.Add(2*time.Second), 0, key)
	mustAcquire(t, l, t0.Add(3*time.Second), 0, key)
	// Full again; the first admission (t0) frees first, so the reverted
	// one at 1s was really removed, not the one at t0.
	if rej := mustRefuse(t, l, t0.Add(4*time.Second), 0, key); rej.RetryAfter != 56*time.Second {
		t.Errorf("retry after %s, want 56s", rej.RetryAfter)
	}
	hold.Done(0, 0)
}

func TestTokens(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{TPM: 1000})
	a := mustAcquire(t, l, t0, 800, s)
	rej := mustRefuse(t, l, t0.Add(time.Second), 300, s)
	// The 800 counted in t0's slot (t0 is 0.5 s into it) leave 61 s after
	// the slot starts.
	if rej.Dimension != DimTPM || rej.RetryAfter != 59*time.Second+500*time.Millisecond {
		t.Errorf("rejection %+v, want tpm retry after 59.5s", rej)
	}
	// The answer used 100: the estimate is replaced.
	a.DoneAt(t0.Add(2*time.Second), 100, 0)
	b := mustAcquire(t, l, t0.Add(2*time.Second), 900, s)
	b.DoneAt(t0.Add(3*time.Second), 900, 0)
	mustRefuse(t, l, t0.Add(3*time.Second), 1, s)
	// 100 at 2s leave at 62.5s, 900 at 3s at 63.5s (never before 60 s).
	mustRefuse(t, l, t0.Add(62*time.Second), 1, s)
	mustAcquire(t, l, t0.Add(62500*time.Millisecond), 100, s).Done(0, 0)
	mustRefuse(t, l, t0.Add(62500*time.Millisecond), 101, s)
	mustAcquire(t, l, t0.Add(63500*time.Millisecond), 1000, s).Done(0, 0)
}

func TestTokensOverLimitAloneAdmittedIntoEmptyWindow(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{TPM: 100})
	a := mustAcquire(t, l, t0, 5000, s)
	rej := mustRefuse(t, l, t0, 5000, s)
	if rej.RetryAfter != 60*time.Second+500*time.Millisecond {
		t.Errorf("retry after %s, want 60.5s (until the window is empty)", rej.RetryAfter)
	}
	a.Done(5000, 0)
}

func TestTokensTPD(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{TPD: 1000})
	mustAcquire(t, l, t0, 0, s).Done(1000, 0)
	rej := mustRefuse(t, l, t0.Add(23*time.Hour), 1, s)
	// t0 is 0.5 s into its minute slot: the slot leaves 24 h + 1 min after
	// it starts.
	if want := time.Hour + 59500*time.Millisecond; rej.Dimension != DimTPD || rej.RetryAfter != want {
		t.Errorf("rejection %+v, want tpd retry after %s", rej, want)
	}
	mustRefuse(t, l, t0.Add(24*time.Hour+59*time.Second), 1, s)
	mustAcquire(t, l, t0.Add(24*time.Hour+59500*time.Millisecond), 1000, s)
}

func TestBudgetCrossing(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{Budget: &Budget{AmountUSD: 1, Period: PeriodDay}})
	first := mustAcquire(t, l, t0, 0, s)
	stream := mustAcquire(t, l, t0, 0, s)
	first.Done(0, 0.6)
	third := mustAcquire(t, l, t0.Add(time.Minute), 0, s)
	// The stream in flight finishes over budget.
	stream.DoneAt(t0.Add(2*time.Minute), 0, 0.6)
	rej := mustRefuse(t, l, t0.Add(3*time.Minute), 0, s)
	next := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	if !rej.InsufficientQuota() || rej.Code() != "caller_key_budget" || !rej.ResetAt.Equal(next) || rej.AmountUSD != 1 {
		t.Errorf("rejection %+v, want budget until %s", rej, next)
	}
	if want := next.Sub(t0.Add(3 * time.Minute)); rej.RetryAfter != want {
		t.Errorf("retry after %s, want %s", rej.RetryAfter, want)
	}
	third.Done(0, 0.1)
	mustRefuse(t, l, next.Add(-time.Nanosecond), 0, s)
	mustAcquire(t, l, next, 0, s)
	// A rate-limit rejection is not insufficient quota.
	if r := (&Rejection{Dimension: DimRPM}); r.InsufficientQuota() {
		t.Error("an rpm rejection reports insufficient quota")
	}
}

func TestBudgetPeriodChangeKeepsSpend(t *testing.T) {
	l, _ := newTestLimiter(t)
	day := callerKey("k", Limits{Budget: &Budget{AmountUSD: 100, Period: PeriodDay}})
	month := callerKey("k", Limits{Budget: &Budget{AmountUSD: 5, Period: PeriodMonth}})
	mustAcquire(t, l, t0, 0, day).Done(0, 5)
	mustAcquire(t, l, t0.Add(24*time.Hour), 0, day)
	// Switched to a monthly budget: yesterday's spend counts this month.
	rej := mustRefuse(t, l, t0.Add(24*time.Hour), 0, month)
	if want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC); !rej.ResetAt.Equal(want) {
		t.Errorf("ResetAt = %s, want %s", rej.ResetAt, want)
	}
}

func TestSeedSpend(t *testing.T) {
	l, _ := newTestLimiter(t)
	key := Key{Scope: ScopeCallerKey, ID: "k"}
	s := Subject{Key: key, Limits: Limits{Budget: &Budget{AmountUSD: 50, Period: PeriodMonth}}}
	monthStart := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// Last month's spend is over and ignored once this month is seeded.
	l.SeedSpend(key, PeriodMonth, monthStart, 30)
	l.SeedSpend(key, PeriodMonth, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1000)
	tk := mustAcquire(t, l, t0, 0, s)
	tk.Done(0, 19.99)
	mustAcquire(t, l, t0, 0, s).Done(0, 0.01)
	if rej := mustRefuse(t, l, t0, 0, s); !rej.ResetAt.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ResetAt = %s, want 2027-01-01", rej.ResetAt)
	}
	mustAcquire(t, l, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 0, s)
	// Seeding the spent budget before any request refuses the first one.
	l.SeedSpend(Key{Scope: ScopeModel, ID: "m"}, PeriodWeek, t0, 7)
	mustRefuse(t, l, t0, 0, model("m", Limits{Budget: &Budget{AmountUSD: 7, Period: PeriodWeek}}))
	mustAcquire(t, l, t0, 0, model("m", Limits{Budget: &Budget{AmountUSD: 7, Period: PeriodDay}}))
}

func TestPeriods(t *testing.T) {
	plus5 := time.FixedZone("+05", 5*3600)
	tests := []struct {
		name      string
		p         Period
		at        time.Time
		start     time.Time
		nextStart time.Time
	}{
		{"day", PeriodDay, t0, date(2026, 12, 2), date(2026, 12, 3)},
		{"day at midnight", PeriodDay, date(2026, 12, 2), date(2026, 12, 2), date(2026, 12, 3)},
		{"day in another zone is UTC's", PeriodDay, time.Date(2026, 12, 3, 2, 0, 0, 0, plus5), date(2026, 12, 2), date(2026, 12, 3)},
		{"day before leap day", PeriodDay, time.Date(2028, 2, 28, 23, 59, 59, 0, time.UTC), date(2028, 2, 28), date(2028, 2, 29)},
		{"leap day", PeriodDay, time.Date(2028, 2, 29, 12, 0, 0, 0, time.UTC), date(2028, 2, 29), date(2028, 3, 1)},
		{"week from wednesday", PeriodWeek, t0, date(2026, 11, 30), date(2026, 12, 7)},
		{"week on sunday night", PeriodWeek, time.Date(2026, 12, 6, 23, 59, 59, 999, time.UTC), date(2026, 11, 30), date(2026, 12, 7)},
		{"week at monday midnight", PeriodWeek, date(2026, 12, 7), date(2026, 12, 7), date(2026, 12, 14)},
		{"week across a year", PeriodWeek, date(2027, 1, 1), date(2026, 12, 28), date(2027, 1, 4)},
		{"week across leap day", PeriodWeek, date(2028, 3, 1), date(2028, 2, 28), date(2028, 3, 6)},
		{"month", PeriodMonth, t0, date(2026, 12, 1), date(2027, 1, 1)},
		{"month end", PeriodMonth, time.Date(2027, 1, 31, 23, 59, 59, 999999999, time.UTC), date(2027, 1, 1), date(2027, 2, 1)},
		{"february of a leap year", PeriodMonth, time.Date(2028, 2, 29, 23, 0, 0, 0, time.UTC), date(2028, 2, 1), date(2028, 3, 1)},
		{"february", PeriodMonth, date(2027, 2, 28), date(2027, 2, 1), date(2027, 3, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PeriodStart(tt.p, tt.at); !got.Equal(tt.start) || got.Location() != time.UTC {
				t.Errorf("PeriodStart = %s, want %s", got, tt.start)
			}
			if got := NextPeriodStart(tt.p, tt.at); !got.Equal(tt.nextStart) {
				t.Errorf("NextPeriodStart = %s, want %s", got, tt.nextStart)
			}
		})
	}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func TestBudgetResetsAtMonthEnd(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{Budget: &Budget{AmountUSD: 1, Period: PeriodMonth}})
	end := time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC)
	mustAcquire(t, l, end, 0, s).DoneAt(end, 0, 2)
	if rej := mustRefuse(t, l, end, 0, s); rej.RetryAfter != time.Second {
		t.Errorf("retry after %s, want 1s", rej.RetryAfter)
	}
	mustAcquire(t, l, date(2028, 3, 1), 0, s)
}

func TestLimitChanges(t *testing.T) {
	l, _ := newTestLimiter(t)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rpm := func(n int64) Subject { return callerKey("k", Limits{RPM: n}) }
	for i := range 5 {
		mustAcquire(t, l, at(i), 0, rpm(5))
	}
	mustRefuse(t, l, at(5), 0, rpm(3))
	// Shrunk to 3, the newest three (at 2, 3, 4 s) are kept: the next
	// frees when the one at 2 s leaves.
	if rej := mustRefuse(t, l, at(6), 0, rpm(3)); rej.RetryAfter != 56*time.Second {
		t.Errorf("retry after %s, want 56s", rej.RetryAfter)
	}
	mustAcquire(t, l, at(62), 0, rpm(3))
	// Grown to 8 at 63 s: the one at 3 s has left, 4 s and 62 s are in the
	// window, so 6 more fit.
	for range 6 {
		mustAcquire(t, l, at(63), 0, rpm(8))
	}
	mustRefuse(t, l, at(63), 0, rpm(8))

	// Across the exact log's size and back, the counts are kept.
	big := rpm(int64(maxExactLog) + 10)
	tk := mustAcquire(t, l, at(63), 0, big)
	if h := tk.Headers(); h.RemainingRequests != int64(maxExactLog)+10-9 {
		t.Errorf("after growing past the log: remaining %d, want %d", h.RemainingRequests, int64(maxExactLog)+10-9)
	}
	mustRefuse(t, l, at(63), 0, rpm(9))
	mustAcquire(t, l, at(63), 0, rpm(10))
	mustRefuse(t, l, at(63), 0, rpm(10))
	// The entries converted back from slots leave no earlier than their
	// slot: those of 62 s and 63 s are there until 123 s and 124 s.
	mustRefuse(t, l, at(64), 0, rpm(10))
	mustAcquire(t, l, at(64), 0, rpm(11))

	// A lower concurrency limit refuses until enough slots drain.
	c := func(n int64) Subject { return model("m", Limits{Concurrency: n}) }
	a, b, d := mustAcquire(t, l, t0, 0, c(3)), mustAcquire(t, l, t0, 0, c(3)), mustAcquire(t, l, t0, 0, c(3))
	mustRefuse(t, l, t0, 0, c(2))
	a.Done(0, 0)
	mustRefuse(t, l, t0, 0, c(2))
	b.Done(0, 0)
	mustAcquire(t, l, t0, 0, c(2)).Done(0, 0)
	d.Done(0, 0)

	// Removing a limit admits; setting it again counts from then.
	mustAcquire(t, l, at(64), 0, callerKey("k", Limits{TPM: 10}))
	mustAcquire(t, l, at(64), 0, callerKey("k", Limits{RPD: 1})).Done(0, 0)
}

func TestSweep(t *testing.T) {
	l, c := newTestLimiter(t)
	m := l.store.(*Memory)
	mustAcquire(t, l, t0, 0, callerKey("a", Limits{RPM: 1})).Done(0, 0)
	held := mustAcquire(t, l, t0, 0, callerKey("b", Limits{Concurrency: 1}))
	mustAcquire(t, l, t0, 0, callerKey("c", Limits{TPM: 10})).Done(5, 0)
	mustAcquire(t, l, t0, 0, callerKey("d", Limits{Budget: &Budget{AmountUSD: 1, Period: PeriodMonth}})).Done(0, 0.5)
	mustAcquire(t, l, t0, 0, callerKey("e", Limits{Concurrency: 1})).Done(0, 0)
	mustAcquire(t, l, t0, 0, callerKey("free", Limits{})).Done(0, 0)
	if n := m.len(); n != 5 {
		t.Fatalf("%d buckets, want 5 (none for a scope without limits)", n)
	}
	if n := l.Sweep(t0); n != 1 {
		t.Errorf("at once: swept %d, want 1 (e)", n)
	}
	if n := l.Sweep(t0.Add(62 * time.Second)); n != 2 {
		t.Errorf("after a minute: swept %d, want 2 (a, c)", n)
	}
	held.Done(0, 0)
	if n := l.Sweep(t0.Add(62 * time.Second)); n != 1 {
		t.Errorf("after Done: swept %d, want 1 (b)", n)
	}
	if n := l.Sweep(date(2027, 1, 1)); n != 1 {
		t.Errorf("next month: swept %d, want 1 (d)", n)
	}
	if n := m.len(); n != 0 {
		t.Errorf("%d buckets left, want 0", n)
	}
	// A swept scope starts afresh.
	c.Set(t0)
	mustAcquire(t, l, t0, 0, callerKey("a", Limits{RPM: 1}))
}

func TestSweepRacesAcquire(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{Concurrency: 1})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				l.Sweep(t0)
			}
		}
	}()
	for range 2000 {
		tk := mustAcquire(t, l, t0, 0, s)
		// The slot is held even with the sweeper running: a bucket with a
		// request in flight is never dropped.
		mustRefuse(t, l, t0, 0, s)
		tk.Done(0, 0)
	}
	close(stop)
	wg.Wait()
}

func TestSweeperGoroutine(t *testing.T) {
	c := &clock{t: t0}
	l := New(Options{Now: c.Now})
	tick := make(chan time.Time)
	l.startSweeper(tick, func() {})
	mustAcquire(t, l, t0, 0, callerKey("k", Limits{Concurrency: 1})).Done(0, 0)
	m := l.store.(*Memory)
	// The second send returns only once the first sweep is over.
	tick <- t0
	tick <- t0
	if n := m.len(); n != 0 {
		t.Errorf("%d buckets after a sweep, want 0", n)
	}
	for range 2 {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// With a real ticker, Close stops it.
	l = New(Options{SweepEvery: time.Hour})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestHeaders(t *testing.T) {
	l, _ := newTestLimiter(t)
	key := callerKey("k", Limits{RPM: 60, TPM: 1000})
	m := model("m", Limits{RPM: 10, TPM: 100000})
	mustAcquire(t, l, t0, 0, key, m).Done(0, 0)
	tk := mustAcquire(t, l, t0.Add(20*time.Millisecond), 300, key, m)
	want := Headers{
		HasRequests: true, LimitRequests: 10, RemainingRequests: 8, ResetRequests: time.Minute - 20*time.Millisecond,
		HasTokens: true, LimitTokens: 1000, RemainingTokens: 700, ResetTokens: 61*time.Second - 500*time.Millisecond - 20*time.Millisecond,
	}
	if got := tk.Headers(); got != want {
		t.Errorf("Headers() = %+v\nwant        %+v", got, want)
	}
	if h := mustAcquire(t, l, t0, 0, model("x", Limits{Concurrency: 1})).Headers(); h.HasRequests || h.HasTokens {
		t.Errorf("without minute limits: %+v, want none", h)
	}
	if got := FormatReset(want.ResetRequests); got != "59.98s" {
		t.Errorf("FormatReset = %q", got)
	}
}

func TestFormatReset(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-time.Second, "0s"},
		{time.Nanosecond, "1ms"},
		{20 * time.Millisecond, "20ms"},
		{12*time.Millisecond + time.Microsecond, "13ms"},
		{999*time.Millisecond + 100*time.Microsecond, "1s"},
		{time.Second, "1s"},
		{8640 * time.Millisecond, "8.64s"},
		{6 * time.Minute, "6m0s"},
		{59*time.Second + 999*time.Millisecond + 1, "1m0s"},
		{90500 * time.Millisecond, "1m30.5s"},
		{time.Hour + 2*time.Minute + 3*time.Second, "1h2m3s"},
	}
	for _, tt := range tests {
		if got := FormatReset(tt.d); got != tt.want {
			t.Errorf("FormatReset(%d) = %q, want %q", tt.d, got, tt.want)
		}
	}
	for d, want := range map[time.Duration]int64{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, time.Minute: 60} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

func TestRejectionError(t *testing.T) {
	r := &Rejection{Scope: ScopeTarget, ID: "t1", Dimension: DimTPM, Limit: 100, RetryAfter: 1500 * time.Millisecond}
	if got, want := r.Error(), "target t1 over its tpm limit of 100, retry after 1.5s"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if r.Code() != "target_tpm" {
		t.Errorf("Code() = %q", r.Code())
	}
}

// TestHangUpReleasesSlot is the proxy's pattern: Done deferred on the
// request's path, so a client that hangs up mid-stream frees its slot at
// once, and the normal end's Done is then a no-op.
func TestHangUpReleasesSlot(t *testing.T) {
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{Concurrency: 1, TPM: 1000})
	hangUp := make(chan struct{})
	ended := make(chan struct{})
	tk := mustAcquire(t, l, t0, 200, s)
	go func() {
		defer close(ended)
		defer tk.Done(50, 0) // the deferred path: what was streamed so far
		<-hangUp
	}()
	// The stream holds its slot.
	mustRefuse(t, l, t0, 0, s)
	close(hangUp)
	<-ended
	tk.Done(200, 0) // the normal end, too late: ignored
	// The slot is free and only the 50 tokens of the deferred Done count.
	mustAcquire(t, l, t0, 950, s)
}
