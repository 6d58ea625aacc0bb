package redisstore

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/limittest"
)

func TestConformance(t *testing.T) {
	requireServer(t)
	limittest.Run(t, func() limit.Store {
		flush(t)
		return newStore(t, Options{})
	})
}

func callerKey(id string, lim limit.Limits) limit.Subject {
	return limit.Subject{Key: limit.Key{Scope: limit.ScopeCallerKey, ID: id}, Limits: lim}
}

// replicas returns n Limiters, each with its own Store and client on the
// shared server, as n aisix replicas would be.
func replicas(t *testing.T, n int) []*limit.Limiter {
	t.Helper()
	flush(t)
	ls := make([]*limit.Limiter, n)
	for i := range ls {
		ls[i] = limit.New(limit.Options{Store: newStore(t, Options{})})
		t.Cleanup(func() { _ = ls[i].Close() })
	}
	return ls
}

func TestReplicasShareRPMExactly(t *testing.T) {
	ls := replicas(t, 3)
	s := callerKey("k", limit.Limits{RPM: 60})
	now := time.Now()
	var admitted, wrong atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tk, rej := ls[i%3].Acquire(now.Add(time.Duration(i%5)*time.Millisecond), 0, s)
			if rej != nil {
				if rej.Dimension != limit.DimRPM || rej.RetryAfter <= 59*time.Second {
					wrong.Add(1)
				}
				return
			}
			admitted.Add(1)
			tk.Done(0, 0)
		}()
	}
	close(start)
	wg.Wait()
	if got := admitted.Load(); got != 60 {
		t.Errorf("admitted %d of 300 across 3 replicas, want exactly 60", got)
	}
	if n := wrong.Load(); n != 0 {
		t.Errorf("%d rejections were not rpm with a retry after of about 60s", n)
	}
	if st := ls[1].Status(s.Key, now.Add(10*time.Millisecond)); st.RPM != 60 {
		t.Errorf("replica 2 sees RPM %d, want 60", st.RPM)
	}
}

func TestReplicasShareConcurrency(t *testing.T) {
	ls := replicas(t, 3)
	s := callerKey("k", limit.Limits{Concurrency: 2})
	now := time.Now()
	a, rej := ls[0].Acquire(now, 0, s)
	if rej != nil {
		t.Fatalf("replica 1: %v", rej)
	}
	b, rej := ls[1].Acquire(now, 0, s)
	if rej != nil {
		t.Fatalf("replica 2: %v", rej)
	}
	if _, rej := ls[2].Acquire(now, 0, s); rej == nil || rej.Dimension != limit.DimConcurrency {
		t.Fatalf("replica 3 with both slots held elsewhere: %v, want a concurrency rejection", rej)
	}
	a.Done(0, 0)
	c, rej := ls[2].Acquire(now, 0, s)
	if rej != nil {
		t.Fatalf("replica 3 after replica 1's Done: %v", rej)
	}
	if st := ls[0].Status(s.Key, now); st.InFlight != 2 {
		t.Errorf("in flight %d, want 2", st.InFlight)
	}
	b.Done(0, 0)
	c.Done(0, 0)
}

func TestReplicasShareBudget(t *testing.T) {
	ls := replicas(t, 3)
	s := callerKey("k", limit.Limits{Budget: &limit.Budget{AmountUSD: 1, Period: limit.PeriodDay}})
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tk, rej := ls[0].Acquire(now, 0, s)
	if rej != nil {
		t.Fatal(rej)
	}
	tk.DoneAt(now, 0, 0.6)
	tk, rej = ls[1].Acquire(now, 0, s)
	if rej != nil {
		t.Fatal(rej)
	}
	tk.DoneAt(now, 0, 0.4)
	rej = nil
	if _, rej = ls[2].Acquire(now, 0, s); rej == nil || !rej.InsufficientQuota() {
		t.Fatalf("replica 3 after 1.00 USD spent on replicas 1 and 2: %v, want the budget spent", rej)
	}
	if got := ls[2].Status(s.Key, now).SpendDayUSD; got != 1 {
		t.Errorf("replica 3 sees a day's spend of %v, want 1", got)
	}
	// Every replica seeds the same ledger figure at start-up: it counts once.
	m := limit.Key{Scope: limit.ScopeModel, ID: "m"}
	for _, l := range ls {
		l.SeedSpend(m, limit.PeriodMonth, now, 3)
	}
	if got := ls[0].Status(m, now).SpendMonthUSD; got != 3 {
		t.Errorf("month's spend after three replicas seeded 3 USD: %v, want 3", got)
	}
}

// TestLeaseFreesCrashedReplicasSlots: a replica that dies with a request in
// flight never calls Done; its slot frees when the lease ends.
func TestLeaseFreesCrashedReplicasSlots(t *testing.T) {
	flush(t)
	var wall atomic.Int64
	wall.Store(time.Now().UnixNano())
	clock := func() time.Time { return time.Unix(0, wall.Load()) }
	crashed := limit.New(limit.Options{Store: newStore(t, Options{Wall: clock, Lease: time.Minute})})
	alive := limit.New(limit.Options{Store: newStore(t, Options{Wall: clock, Lease: time.Minute})})
	s := callerKey("k", limit.Limits{Concurrency: 1})
	now := time.Now()
	if _, rej := crashed.Acquire(now, 0, s); rej != nil {
		t.Fatal(rej)
	}
	if _, rej := alive.Acquire(now, 0, s); rej == nil {
		t.Fatal("admitted while the other replica holds the slot")
	}
	wall.Add(int64(time.Minute))
	tk, rej := alive.Acquire(now, 0, s)
	if rej != nil {
		t.Fatalf("after the lease: %v", rej)
	}
	tk.Done(0, 0)
}
