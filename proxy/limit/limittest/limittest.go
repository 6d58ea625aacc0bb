// Package limittest is the conformance suite of limit.Store: every
// implementation (the in-process limit.Memory, a shared store for several
// replicas) runs it, through a limit.Limiter, so all of them admit and
// refuse alike. Every test uses an injected clock; none sleeps.
package limittest

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
)

// Run runs the suite against the stores newStore returns, a fresh one per
// test, each empty.
func Run(t *testing.T, newStore func() limit.Store) {
	tests := []struct {
		name string
		run  func(*testing.T, func() limit.Store)
	}{
		{"ExactUnderConcurrency", testExactUnderConcurrency},
		{"WindowSlides", testWindowSlides},
		{"SlidingLogIsExact", testSlidingLogIsExact},
		{"ConcurrencySlots", testConcurrencySlots},
		{"DoneIdempotentConcurrently", testDoneIdempotentConcurrently},
		{"RollbackAcrossScopes", testRollbackAcrossScopes},
		{"RollbackOfRequestLogKeepsOthers", testRollbackOfRequestLogKeepsOthers},
		{"Tokens", testTokens},
		{"TokensOverLimitAloneAdmittedIntoEmptyWindow", testTokensOverLimitAloneAdmittedIntoEmptyWindow},
		{"TokensTPD", testTokensTPD},
		{"BudgetCrossing", testBudgetCrossing},
		{"BudgetPeriodChangeKeepsSpend", testBudgetPeriodChangeKeepsSpend},
		{"SeedSpend", testSeedSpend},
		{"BudgetResetsAtMonthEnd", testBudgetResetsAtMonthEnd},
		{"LimitChanges", testLimitChanges},
		{"HangUpReleasesSlot", testHangUpReleasesSlot},
		{"Headers", testHeaders},
		{"Status", testStatus},
		{"Cancel", testCancel},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newStore) })
	}
}

// t0 is a Wednesday, mid-month, half a second into a second (and a minute).
var t0 = time.Date(2026, 12, 2, 10, 30, 0, 500_000_000, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func newLimiter(tb testing.TB, newStore func() limit.Store) (*limit.Limiter, *clock) {
	tb.Helper()
	c := &clock{t: t0}
	l := limit.New(limit.Options{Store: newStore(), Now: c.Now})
	tb.Cleanup(func() { _ = l.Close() })
	return l, c
}

func callerKey(id string, lim limit.Limits) limit.Subject {
	return limit.Subject{Key: limit.Key{Scope: limit.ScopeCallerKey, ID: id}, Limits: lim}
}

func model(id string, lim limit.Limits) limit.Subject {
	return limit.Subject{Key: limit.Key{Scope: limit.ScopeModel, ID: id}, Limits: lim}
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func mustAcquire(tb testing.TB, l *limit.Limiter, now time.Time, tokens int64, s ...limit.Subject) *limit.Ticket {
	tb.Helper()
	tk, rej := l.Acquire(now, tokens, s...)
	if rej != nil {
		tb.Fatalf("Acquire at %s: refused: %v", now.Sub(t0), rej)
	}
	return tk
}

func mustRefuse(tb testing.TB, l *limit.Limiter, now time.Time, tokens int64, s ...limit.Subject) *limit.Rejection {
	tb.Helper()
	tk, rej := l.Acquire(now, tokens, s...)
	if rej == nil {
		tk.Done(0, 0)
		tb.Fatalf("Acquire at %s: admitted, want refused", now.Sub(t0))
	}
	return rej
}

func testExactUnderConcurrency(t *testing.T, newStore func() limit.Store) {
	tests := []struct {
		name   string
		lim    limit.Limits
		tokens int64
		want   int64
		dim    limit.Dimension
	}{
		{name: "rpm", lim: limit.Limits{RPM: 50}, want: 50, dim: limit.DimRPM},
		{name: "rpd", lim: limit.Limits{RPD: 50}, want: 50, dim: limit.DimRPD},
		{name: "tpm", lim: limit.Limits{TPM: 500}, tokens: 10, want: 50, dim: limit.DimTPM},
		{name: "tpd", lim: limit.Limits{TPD: 500}, tokens: 10, want: 50, dim: limit.DimTPD},
		{name: "concurrency", lim: limit.Limits{Concurrency: 50}, want: 50, dim: limit.DimConcurrency},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newLimiter(t, newStore)
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

func testWindowSlides(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{RPM: 3})
	for _, at := range []time.Duration{0, 10 * time.Second, 20 * time.Second} {
		mustAcquire(t, l, t0.Add(at), 0, s).Done(0, 0)
	}
	rej := mustRefuse(t, l, t0.Add(59900*time.Millisecond), 0, s)
	if rej.Dimension != limit.DimRPM || rej.Limit != 3 || rej.RetryAfter != 100*time.Millisecond {
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

// testSlidingLogIsExact checks both sides of exactness over random
// traffic: no 60 s span holds more than the limit, and a request is refused
// only when the 60 s before it hold the limit already.
func testSlidingLogIsExact(t *testing.T, newStore func() limit.Store) {
	const rpm = 20
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{RPM: rpm})
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
		case rej == nil && inWindow >= rpm:
			t.Fatalf("at %s: admitted with %d in the window", now.Sub(t0), inWindow)
		case rej != nil && inWindow < rpm:
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

func testConcurrencySlots(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{Concurrency: 2})
	a := mustAcquire(t, l, t0, 0, s)
	b := mustAcquire(t, l, t0, 0, s)
	rej := mustRefuse(t, l, t0.Add(time.Hour), 0, s)
	if rej.Dimension != limit.DimConcurrency || rej.RetryAfter != limit.ConcurrencyRetryAfter || rej.Code() != "caller_key_concurrency" {
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

func testDoneIdempotentConcurrently(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{Concurrency: 1, TPM: 1000, Budget: &limit.Budget{AmountUSD: 10, Period: limit.PeriodDay}})
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
	var nilTicket *limit.Ticket
	nilTicket.Done(1, 1)
}

func testRollbackAcrossScopes(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	key := callerKey("k", limit.Limits{RPM: 3, RPD: 3, TPM: 300, TPD: 300, Concurrency: 3})
	strict := model("m", limit.Limits{RPM: 1})
	mustAcquire(t, l, t0, 100, key, strict)
	rej := mustRefuse(t, l, t0, 100, key, strict)
	if rej.Scope != limit.ScopeModel || rej.ID != "m" || rej.Code() != "model_rpm" {
		t.Fatalf("rejection = %+v, want model m rpm", rej)
	}
	// The refused request left nothing in the caller key's scope: two
	// more requests of 100 tokens fit in every dimension, a third none.
	mustAcquire(t, l, t0, 100, key)
	mustAcquire(t, l, t0, 100, key)
	mustRefuse(t, l, t0, 1, key)
}

func testRollbackOfRequestLogKeepsOthers(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	key := callerKey("k", limit.Limits{RPM: 3})
	refusing := model("m", limit.Limits{Concurrency: 1})
	hold := mustAcquire(t, l, t0, 0, model("m", limit.Limits{Concurrency: 1}))
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

func testTokens(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{TPM: 1000})
	a := mustAcquire(t, l, t0, 800, s)
	rej := mustRefuse(t, l, t0.Add(time.Second), 300, s)
	// The 800 counted in t0's slot (t0 is 0.5 s into it) leave 61 s after
	// the slot starts.
	if rej.Dimension != limit.DimTPM || rej.RetryAfter != 59*time.Second+500*time.Millisecond {
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

func testTokensOverLimitAloneAdmittedIntoEmptyWindow(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{TPM: 100})
	a := mustAcquire(t, l, t0, 5000, s)
	rej := mustRefuse(t, l, t0, 5000, s)
	if rej.RetryAfter != 60*time.Second+500*time.Millisecond {
		t.Errorf("retry after %s, want 60.5s (until the window is empty)", rej.RetryAfter)
	}
	a.Done(5000, 0)
}

func testTokensTPD(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{TPD: 1000})
	mustAcquire(t, l, t0, 0, s).Done(1000, 0)
	rej := mustRefuse(t, l, t0.Add(23*time.Hour), 1, s)
	// t0 is 0.5 s into its minute slot: the slot leaves 24 h + 1 min after
	// it starts.
	if want := time.Hour + 59500*time.Millisecond; rej.Dimension != limit.DimTPD || rej.RetryAfter != want {
		t.Errorf("rejection %+v, want tpd retry after %s", rej, want)
	}
	mustRefuse(t, l, t0.Add(24*time.Hour+59*time.Second), 1, s)
	mustAcquire(t, l, t0.Add(24*time.Hour+59500*time.Millisecond), 1000, s)
}

func testBudgetCrossing(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{Budget: &limit.Budget{AmountUSD: 1, Period: limit.PeriodDay}})
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
	if r := (&limit.Rejection{Dimension: limit.DimRPM}); r.InsufficientQuota() {
		t.Error("an rpm rejection reports insufficient quota")
	}
}

func testBudgetPeriodChangeKeepsSpend(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	day := callerKey("k", limit.Limits{Budget: &limit.Budget{AmountUSD: 100, Period: limit.PeriodDay}})
	month := callerKey("k", limit.Limits{Budget: &limit.Budget{AmountUSD: 5, Period: limit.PeriodMonth}})
	mustAcquire(t, l, t0, 0, day).Done(0, 5)
	mustAcquire(t, l, t0.Add(24*time.Hour), 0, day)
	// Switched to a monthly budget: yesterday's spend counts this month.
	rej := mustRefuse(t, l, t0.Add(24*time.Hour), 0, month)
	if want := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC); !rej.ResetAt.Equal(want) {
		t.Errorf("ResetAt = %s, want %s", rej.ResetAt, want)
	}
}

func testSeedSpend(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	key := limit.Key{Scope: limit.ScopeCallerKey, ID: "k"}
	s := limit.Subject{Key: key, Limits: limit.Limits{Budget: &limit.Budget{AmountUSD: 50, Period: limit.PeriodMonth}}}
	monthStart := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	// Last month's spend is over and ignored once this month is seeded.
	l.SeedSpend(key, limit.PeriodMonth, monthStart, 30)
	l.SeedSpend(key, limit.PeriodMonth, time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 1000)
	tk := mustAcquire(t, l, t0, 0, s)
	tk.Done(0, 19.99)
	mustAcquire(t, l, t0, 0, s).Done(0, 0.01)
	if rej := mustRefuse(t, l, t0, 0, s); !rej.ResetAt.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ResetAt = %s, want 2027-01-01", rej.ResetAt)
	}
	mustAcquire(t, l, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), 0, s)
	// Seeding the spent budget before any request refuses the first one.
	l.SeedSpend(limit.Key{Scope: limit.ScopeModel, ID: "m"}, limit.PeriodWeek, t0, 7)
	mustRefuse(t, l, t0, 0, model("m", limit.Limits{Budget: &limit.Budget{AmountUSD: 7, Period: limit.PeriodWeek}}))
	mustAcquire(t, l, t0, 0, model("m", limit.Limits{Budget: &limit.Budget{AmountUSD: 7, Period: limit.PeriodDay}}))
}

func testBudgetResetsAtMonthEnd(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{Budget: &limit.Budget{AmountUSD: 1, Period: limit.PeriodMonth}})
	end := time.Date(2028, 2, 29, 23, 59, 59, 0, time.UTC)
	mustAcquire(t, l, end, 0, s).DoneAt(end, 0, 2)
	if rej := mustRefuse(t, l, end, 0, s); rej.RetryAfter != time.Second {
		t.Errorf("retry after %s, want 1s", rej.RetryAfter)
	}
	mustAcquire(t, l, date(2028, 3, 1), 0, s)
}

func testLimitChanges(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rpm := func(n int64) limit.Subject { return callerKey("k", limit.Limits{RPM: n}) }
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

	// A lower concurrency limit refuses until enough slots drain.
	c := func(n int64) limit.Subject { return model("m", limit.Limits{Concurrency: n}) }
	a, b, d := mustAcquire(t, l, t0, 0, c(3)), mustAcquire(t, l, t0, 0, c(3)), mustAcquire(t, l, t0, 0, c(3))
	mustRefuse(t, l, t0, 0, c(2))
	a.Done(0, 0)
	mustRefuse(t, l, t0, 0, c(2))
	b.Done(0, 0)
	mustAcquire(t, l, t0, 0, c(2)).Done(0, 0)
	d.Done(0, 0)

	// Removing a limit admits; setting it again counts from then.
	mustAcquire(t, l, at(63), 0, callerKey("k", limit.Limits{TPM: 10}))
	mustAcquire(t, l, at(63), 0, callerKey("k", limit.Limits{RPD: 1})).Done(0, 0)
}

// testHangUpReleasesSlot is the proxy's pattern: Done deferred on the
// request's path, so a client that hangs up mid-stream frees its slot at
// once, and the normal end's Done is then a no-op.
func testHangUpReleasesSlot(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{Concurrency: 1, TPM: 1000})
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

func testHeaders(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	key := callerKey("k", limit.Limits{RPM: 60, TPM: 1000})
	m := model("m", limit.Limits{RPM: 10, TPM: 100000})
	mustAcquire(t, l, t0, 0, key, m).Done(0, 0)
	tk := mustAcquire(t, l, t0.Add(20*time.Millisecond), 300, key, m)
	want := limit.Headers{
		HasRequests: true, LimitRequests: 10, RemainingRequests: 8, ResetRequests: time.Minute - 20*time.Millisecond,
		HasTokens: true, LimitTokens: 1000, RemainingTokens: 700, ResetTokens: 61*time.Second - 500*time.Millisecond - 20*time.Millisecond,
	}
	if got := tk.Headers(); got != want {
		t.Errorf("Headers() = %+v\nwant        %+v", got, want)
	}
	if h := mustAcquire(t, l, t0, 0, model("x", limit.Limits{Concurrency: 1})).Headers(); h.HasRequests || h.HasTokens {
		t.Errorf("without minute limits: %+v, want none", h)
	}
	if got := limit.FormatReset(want.ResetRequests); got != "59.98s" {
		t.Errorf("FormatReset = %q", got)
	}
}

func testStatus(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	key := limit.Key{Scope: limit.ScopeCallerKey, ID: "k"}
	if st := l.Status(key, t0); st != (limit.Status{}) {
		t.Errorf("before any request: %+v, want zero", st)
	}
	s := limit.Subject{Key: key, Limits: limit.Limits{
		RPM: 10, RPD: 100, TPM: 1000, TPD: 10000, Concurrency: 5,
		Budget: &limit.Budget{AmountUSD: 10, Period: limit.PeriodWeek},
	}}
	l.SeedSpend(key, limit.PeriodMonth, t0, 20)
	mustAcquire(t, l, t0, 100, s).Done(300, 1.25)
	held := mustAcquire(t, l, t0.Add(time.Second), 50, s)
	want := limit.Status{
		InFlight: 1, RPM: 2, RPD: 2, TPM: 350, TPD: 350,
		SpendDayUSD: 1.25, SpendWeekUSD: 1.25, SpendMonthUSD: 21.25,
	}
	if st := l.Status(key, t0.Add(time.Second)); st != want {
		t.Errorf("Status = %+v\nwant     %+v", st, want)
	}
	if got := want.Spend(limit.PeriodMonth); got != 21.25 {
		t.Errorf("Spend(month) = %v", got)
	}
	held.Done(50, 0)
	// Two minutes on, the minute windows are empty.
	want = limit.Status{RPD: 2, TPD: 350, SpendDayUSD: 1.25, SpendWeekUSD: 1.25, SpendMonthUSD: 21.25}
	if st := l.Status(key, t0.Add(2*time.Minute)); st != want {
		t.Errorf("two minutes on: %+v\nwant          %+v", st, want)
	}
	// The next week (Monday 7 December) starts the day's and the week's
	// spend afresh, and the day windows are empty.
	want = limit.Status{SpendMonthUSD: 21.25}
	if st := l.Status(key, date(2026, 12, 7)); st != want {
		t.Errorf("next Monday: %+v\nwant        %+v", st, want)
	}
}

func testCancel(t *testing.T, newStore func() limit.Store) {
	l, _ := newLimiter(t, newStore)
	s := callerKey("k", limit.Limits{RPM: 1, TPM: 100, Concurrency: 1})
	key := s.Key
	tk := mustAcquire(t, l, t0, 100, s)
	mustRefuse(t, l, t0, 0, s)
	// Every target was at its limit: the request was never sent.
	tk.Cancel()
	if st := l.Status(key, t0); st.RPM != 0 || st.TPM != 0 || st.InFlight != 0 {
		t.Errorf("after Cancel: %+v, want nothing counted", st)
	}
	tk.Done(100, 1) // after Cancel: ignored
	tk = mustAcquire(t, l, t0, 100, s)
	tk.Done(100, 0)
	tk.Cancel() // after Done: ignored
	mustRefuse(t, l, t0, 0, s)
}
