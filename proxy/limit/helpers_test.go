package limit

import (
	"os"
	"sync"
	"testing"
	"time"
)

// t0 is a Wednesday, mid-month, in the middle of a minute slot.
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

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func TestMain(m *testing.M) {
	// A small log size keeps the slotted fallback's tests quick.
	maxExactLog = 100
	os.Exit(m.Run())
}

func newTestLimiter(tb testing.TB) (*Limiter, *clock) {
	tb.Helper()
	c := &clock{t: t0}
	l := New(Options{Now: c.Now})
	tb.Cleanup(func() { _ = l.Close() })
	return l, c
}

func callerKey(id string, lim Limits) Subject {
	return Subject{Key: Key{Scope: ScopeCallerKey, ID: id}, Limits: lim}
}

func mustAcquire(tb testing.TB, l *Limiter, now time.Time, tokens int64, s ...Subject) *Ticket {
	tb.Helper()
	tk, rej := l.Acquire(now, tokens, s...)
	if rej != nil {
		tb.Fatalf("Acquire at %s: refused: %v", now.Sub(t0), rej)
	}
	return tk
}

func mustRefuse(tb testing.TB, l *Limiter, now time.Time, tokens int64, s ...Subject) *Rejection {
	tb.Helper()
	tk, rej := l.Acquire(now, tokens, s...)
	if rej == nil {
		tk.Done(0, 0)
		tb.Fatalf("Acquire at %s: admitted, want refused", now.Sub(t0))
	}
	return rej
}

func model(id string, lim Limits) Subject {
	return Subject{Key: Key{Scope: ScopeModel, ID: id}, Limits: lim}
}
