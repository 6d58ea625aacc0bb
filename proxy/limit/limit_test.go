package limit

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

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

func TestExactSlottedUnderConcurrency(t *testing.T) {
	l, _ := newTestLimiter(t)
	n := maxExactLog + 50
	s := callerKey("k", Limits{RPM: n})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n + 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, rej := l.Acquire(t0.Add(time.Duration(i%7)*time.Millisecond), 0, s); rej == nil {
				admitted.Add(1)
			} else if rej.Dimension != DimRPM {
				t.Errorf("rejection %v, want rpm", rej)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != n {
		t.Errorf("admitted %d, want %d", got, n)
	}
}

// TestLimitCrossesLogSize: a limit that moves past the exact log's size and
// back keeps its counts, conservatively.
func TestLimitCrossesLogSize(t *testing.T) {
	l, _ := newTestLimiter(t)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rpm := func(n int64) Subject { return callerKey("k", Limits{RPM: n}) }
	mustAcquire(t, l, at(4), 0, rpm(8))
	mustAcquire(t, l, at(62), 0, rpm(8))
	for range 6 {
		mustAcquire(t, l, at(63), 0, rpm(8))
	}
	mustRefuse(t, l, at(63), 0, rpm(8))
	big := rpm(maxExactLog + 10)
	tk := mustAcquire(t, l, at(63), 0, big)
	if h := tk.Headers(); h.RemainingRequests != maxExactLog+10-9 {
		t.Errorf("after growing past the log: remaining %d, want %d", h.RemainingRequests, maxExactLog+10-9)
	}
	mustRefuse(t, l, at(63), 0, rpm(9))
	mustAcquire(t, l, at(63), 0, rpm(10))
	mustRefuse(t, l, at(63), 0, rpm(10))
	// The entries converted back from slots leave no earlier than their
	// slot: the one of 4 s leaves at 64.999 s, those of 62 s and 63 s
	// are there until 123 s and 124 s.
	mustRefuse(t, l, at(64), 0, rpm(10))
	mustAcquire(t, l, at(65), 0, rpm(10))
	mustRefuse(t, l, at(65), 0, rpm(10))
}

// TestLogMemoryFollowsTraffic: a high limit costs memory only for the
// requests actually in the window.
func TestLogMemoryFollowsTraffic(t *testing.T) {
	saved := maxExactLog
	maxExactLog = 1 << 16
	t.Cleanup(func() { maxExactLog = saved })
	l, _ := newTestLimiter(t)
	s := callerKey("k", Limits{RPD: 50000})
	ring := func() int {
		v, _ := l.store.(*Memory).m.Load(s.Key)
		return len(v.(*bucket).rpd.log.t)
	}
	for i := range 10 {
		mustAcquire(t, l, t0.Add(time.Duration(i)*time.Millisecond), 0, s).Done(0, 0)
	}
	if n := ring(); n > 16 {
		t.Errorf("10 requests: a ring of %d", n)
	}
	for i := range 1000 {
		mustAcquire(t, l, t0.Add(time.Second+time.Duration(i)*time.Millisecond), 0, s).Done(0, 0)
	}
	if n := ring(); n < 1010 || n > 2048 {
		t.Errorf("1010 requests: a ring of %d", n)
	}
	for i := range 10 {
		mustAcquire(t, l, t0.Add(25*time.Hour+time.Duration(i)*time.Millisecond), 0, s).Done(0, 0)
	}
	if n := ring(); n > 64 {
		t.Errorf("a day later, 10 requests: a ring of %d", n)
	}
	// Lowering the limit below what is counted keeps the newest.
	s.Limits.RPD = 5
	mustRefuse(t, l, t0.Add(25*time.Hour+time.Second), 0, s)
	if n := ring(); n != 5 {
		t.Errorf("limit 5: a ring of %d", n)
	}
}

func TestRejectedCounts(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	l := New(Options{Now: func() time.Time { return now }})
	key := Key{Scope: ScopeCallerKey, ID: "k"}
	other := Key{Scope: ScopeModel, ID: "m"}
	subs := []Subject{{Key: other, Limits: Limits{RPM: 10}}, {Key: key, Limits: Limits{RPM: 1}}}
	if _, rej := l.Acquire(now, 0, subs...); rej != nil {
		t.Fatal(rej)
	}
	for range 3 {
		if _, rej := l.Acquire(now, 0, subs...); rej == nil {
			t.Fatal("admitted over rpm 1")
		}
	}
	if got := l.Rejected(key); got != 3 {
		t.Errorf("Rejected(key) = %d, want 3", got)
	}
	if got := l.Rejected(other); got != 0 {
		t.Errorf("Rejected(other) = %d: only the scope that refused counts", got)
	}
}
