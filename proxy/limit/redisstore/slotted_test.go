package redisstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
)

// t0 is limittest's: a Wednesday, half a second into a second.
var t0 = time.Date(2026, 12, 2, 10, 30, 0, 500_000_000, time.UTC)

// smallLog lowers the exact log's size, as proxy/limit's own tests do, so
// that the slotted request windows are quick to reach.
func smallLog(t *testing.T) {
	saved := maxExactLog
	maxExactLog = 100
	t.Cleanup(func() { maxExactLog = saved })
}

func mustAcquire(t *testing.T, l *limit.Limiter, now time.Time, s ...limit.Subject) *limit.Ticket {
	t.Helper()
	tk, rej := l.Acquire(now, 0, s...)
	if rej != nil {
		t.Fatalf("at %s: refused: %v", now.Sub(t0), rej)
	}
	return tk
}

func mustRefuse(t *testing.T, l *limit.Limiter, now time.Time, s ...limit.Subject) *limit.Rejection {
	t.Helper()
	tk, rej := l.Acquire(now, 0, s...)
	if rej == nil {
		tk.Done(0, 0)
		t.Fatalf("at %s: admitted, want refused", now.Sub(t0))
	}
	return rej
}

func TestSlottedUnderConcurrency(t *testing.T) {
	smallLog(t)
	ls := replicas(t, 3)
	n := maxExactLog + 50
	s := callerKey("k", limit.Limits{RPM: n, RPD: n})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n + 150 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if _, rej := ls[i%3].Acquire(t0.Add(time.Duration(i%7)*time.Millisecond), 0, s); rej == nil {
				admitted.Add(1)
			} else if rej.Dimension != limit.DimRPM && rej.Dimension != limit.DimRPD {
				t.Errorf("rejection %v, want rpm or rpd", rej)
			}
		}()
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != n {
		t.Errorf("admitted %d, want %d", got, n)
	}
	if st := ls[0].Status(s.Key, t0.Add(time.Second)); st.RPM != n || st.RPD != n {
		t.Errorf("Status %+v, want rpm and rpd %d", st, n)
	}
}

// TestLimitCrossesLogSize is proxy/limit's test of the same name: a limit
// that moves past the exact log's size and back keeps its counts,
// conservatively.
func TestLimitCrossesLogSize(t *testing.T) {
	smallLog(t)
	flush(t)
	l := limit.New(limit.Options{Store: newStore(t, Options{})})
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	rpm := func(n int64) limit.Subject { return callerKey("k", limit.Limits{RPM: n}) }
	mustAcquire(t, l, at(4), rpm(8))
	mustAcquire(t, l, at(62), rpm(8))
	for range 6 {
		mustAcquire(t, l, at(63), rpm(8))
	}
	mustRefuse(t, l, at(63), rpm(8))
	big := rpm(maxExactLog + 10)
	tk := mustAcquire(t, l, at(63), big)
	if h := tk.Headers(); h.RemainingRequests != maxExactLog+10-9 {
		t.Errorf("after growing past the log: remaining %d, want %d", h.RemainingRequests, maxExactLog+10-9)
	}
	mustRefuse(t, l, at(63), rpm(9))
	mustAcquire(t, l, at(63), rpm(10))
	mustRefuse(t, l, at(63), rpm(10))
	// The entries converted back from slots leave no earlier than their
	// slot: the one of 4 s leaves at 64.999 s, those of 62 s and 63 s
	// are there until 123 s and 124 s.
	mustRefuse(t, l, at(64), rpm(10))
	mustAcquire(t, l, at(65), rpm(10))
	mustRefuse(t, l, at(65), rpm(10))
}

// TestSlottedRevert: a refused request counted in a slotted window is
// taken back from it.
func TestSlottedRevert(t *testing.T) {
	smallLog(t)
	flush(t)
	l := limit.New(limit.Options{Store: newStore(t, Options{})})
	key := callerKey("k", limit.Limits{RPM: 200, RPD: 200})
	hold := mustAcquire(t, l, t0, callerKey("m", limit.Limits{Concurrency: 1}))
	for range 199 {
		mustAcquire(t, l, t0, key)
	}
	mustRefuse(t, l, t0, key, callerKey("m", limit.Limits{Concurrency: 1}))
	st := l.Status(key.Key, t0)
	if st.RPM != 199 || st.RPD != 199 {
		t.Errorf("after a revert: %+v, want 199 counted", st)
	}
	mustAcquire(t, l, t0, key)
	rej := mustRefuse(t, l, t0.Add(time.Second), key)
	// The rpd frees last: counted in t0's 1 min slot, which leaves 24 h
	// and 1 min after it starts.
	if want := 24*time.Hour + 58500*time.Millisecond; rej.RetryAfter != want || rej.Dimension != limit.DimRPD {
		t.Errorf("rejection %+v, want rpd retry after %s", rej, want)
	}
	// Without the rpd, the rpm's slot of t0 leaves 61 s after it starts.
	rej = mustRefuse(t, l, t0.Add(time.Second), callerKey("k", limit.Limits{RPM: 200}))
	if want := 59500 * time.Millisecond; rej.RetryAfter != want || rej.Dimension != limit.DimRPM {
		t.Errorf("rejection %+v, want rpm retry after %s", rej, want)
	}
	hold.Done(0, 0)
}
