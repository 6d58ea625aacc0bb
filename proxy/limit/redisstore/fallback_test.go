package redisstore

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/redisstore/redistest"
)

// bound is the per-call timeout of the fallback tests, the default's.
const bound = DefaultTimeout

// slack is what an answer may take beyond the bound: scheduling, the race
// detector, and a busy 2-core machine (a call held up 470 ms was seen
// under load). It stays well under what an unbounded call would take
// (go-redis's own read timeout is 3 s, its dial timeout 5 s), so the
// test still fails when the bound is lost.
const slack = 1500 * time.Millisecond

// degradingStore returns a Store on addr with the default bound, a fast
// health check, and a channel of its state changes.
func degradingStore(t *testing.T, addr string) (*Store, chan bool) {
	t.Helper()
	events := make(chan bool, 16)
	s := New(client(t, addr, bound), Options{
		HealthEvery:   20 * time.Millisecond,
		OnStateChange: func(d bool) { events <- d },
	})
	t.Cleanup(func() { _ = s.Close() })
	return s, events
}

func wantEvent(t *testing.T, events chan bool, want bool) {
	t.Helper()
	select {
	case got := <-events:
		if got != want {
			t.Fatalf("OnStateChange(%v), want OnStateChange(%v)", got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no OnStateChange(%v) within 5s", want)
	}
}

// timedAcquire is Acquire, failing the test if it took longer than the
// bound allows.
func timedAcquire(t *testing.T, l *limit.Limiter, now time.Time, s limit.Subject) (*limit.Ticket, *limit.Rejection) {
	t.Helper()
	start := time.Now()
	tk, rej := l.Acquire(now, 0, s)
	d := time.Since(start)
	t.Logf("Acquire with Redis down or degraded: %s", d)
	if d > bound+slack {
		t.Errorf("Acquire took %s with Redis down, want at most %s", d, bound+slack)
	}
	return tk, rej
}

func TestFallbackWhenRedisStopsAndReturns(t *testing.T) {
	srv := redistest.New(t)
	a, aEvents := degradingStore(t, srv.Addr())
	b, _ := degradingStore(t, srv.Addr())
	la, lb := limit.New(limit.Options{Store: a}), limit.New(limit.Options{Store: b})
	now := time.Now()

	// Shared: one admission on each replica fills the rpm of 2. The first
	// calls load the scripts; on a busy machine one may outlast the 50 ms
	// bound and fall back for a moment, which this test is not about (the
	// shared counts are exact in store_test.go, under a generous bound):
	// such a try is repeated on a new key once both stores are back.
	var s limit.Subject
	for try := 1; ; try++ {
		s = callerKey(fmt.Sprintf("k%d", try), limit.Limits{RPM: 2})
		for _, l := range []*limit.Limiter{la, lb} {
			if _, rej := l.Acquire(now, 0, s); rej != nil {
				t.Fatalf("with Redis up: %v", rej)
			}
		}
		_, rej := la.Acquire(now, 0, s)
		if !a.Degraded() && !b.Degraded() {
			if rej == nil {
				t.Fatal("a third admission across replicas with rpm 2")
			}
			break
		}
		if try == 5 {
			t.Fatal("the stores kept falling back with Redis up")
		}
		for a.Degraded() || b.Degraded() {
			time.Sleep(5 * time.Millisecond) // the health PING runs every 20 ms
		}
		// Take replica 1's events of that moment, through its return.
		for last := false; ; {
			select {
			case last = <-aEvents:
				continue
			default:
			}
			if !last {
				break
			}
			time.Sleep(time.Millisecond) // the return's event follows its state
		}
	}

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	// Down: every replica counts for itself, within the bound.
	if _, rej := timedAcquire(t, la, now, s); rej != nil {
		t.Fatalf("first request with Redis down: %v, want admitted by the fallback", rej)
	}
	if !a.Degraded() {
		t.Fatal("Degraded() = false after Redis stopped")
	}
	wantEvent(t, aEvents, true)
	if _, rej := timedAcquire(t, la, now, s); rej != nil {
		t.Fatalf("second request on replica 1: %v", rej)
	}
	if _, rej := timedAcquire(t, la, now, s); rej == nil || rej.Dimension != limit.DimRPM {
		t.Fatalf("third request on replica 1: %v, want its own rpm of 2 reached", rej)
	}
	for i := range 2 {
		if _, rej := timedAcquire(t, lb, now, s); rej != nil {
			t.Fatalf("request %d on replica 2 with Redis down: %v, want per-replica counting", i+1, rej)
		}
	}
	if !b.Degraded() {
		t.Error("replica 2 not degraded")
	}
	// A slot taken in fallback is released in the store that took it.
	c := callerKey("c", limit.Limits{Concurrency: 1})
	held, rej := timedAcquire(t, la, now, c)
	if rej != nil {
		t.Fatal(rej)
	}

	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, aEvents, false)
	if a.Degraded() {
		t.Fatal("Degraded() = true after the health check succeeded")
	}
	if got := a.mem.Status(c.Key, now).InFlight; got != 1 {
		t.Fatalf("fallback's in flight before Done: %d, want 1", got)
	}
	held.Done(0, 0)
	if got := a.mem.Status(c.Key, now).InFlight; got != 0 {
		t.Errorf("fallback's in flight after Done: %d, want 0 (Done went elsewhere)", got)
	}
	// Shared again (the restarted server is empty).
	waitShared(t, b)
	later := now.Add(time.Millisecond)
	for _, l := range []*limit.Limiter{la, lb} {
		if _, rej := l.Acquire(later, 0, s); rej != nil {
			t.Fatalf("back on Redis: %v", rej)
		}
	}
	if _, rej := la.Acquire(later, 0, s); rej == nil {
		t.Fatal("back on Redis: a third admission across replicas with rpm 2")
	}
	if st := b.Status(s.Key, later); st.RPM != 2 {
		t.Errorf("replica 2 sees RPM %d, want 2 counted in Redis", st.RPM)
	}
}

func waitShared(t *testing.T, s *Store) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for s.Degraded() {
		if time.Now().After(deadline) {
			t.Fatal("store still degraded 5s after Redis returned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFallbackClosedPort: a Store whose server was never there answers at
// once, from memory.
func TestFallbackClosedPort(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st, events := degradingStore(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	l := limit.New(limit.Options{Store: st})
	s := callerKey("k", limit.Limits{RPM: 1})
	if _, rej := timedAcquire(t, l, time.Now(), s); rej != nil {
		t.Fatal(rej)
	}
	wantEvent(t, events, true)
	if _, rej := timedAcquire(t, l, time.Now(), s); rej == nil {
		t.Error("per-replica rpm of 1 not counted in fallback")
	}
}

// TestFallbackSlowRedis: a server that accepts and never answers is down
// after the bound, not after the client's default timeouts.
func TestFallbackSlowRedis(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	st, events := degradingStore(t, ln.Addr().String())
	l := limit.New(limit.Options{Store: st})
	if _, rej := timedAcquire(t, l, time.Now(), callerKey("k", limit.Limits{RPM: 1})); rej != nil {
		t.Fatal(rej)
	}
	wantEvent(t, events, true)
	if !st.Degraded() {
		t.Error("Degraded() = false after a timeout")
	}
}

// TestSeedRaisesInFallback: the in-process fallback raises a seeded spend
// as Redis does, so seeding the same figure twice (a reload while degraded)
// counts it once.
func TestSeedRaisesInFallback(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st, events := degradingStore(t, "127.0.0.1:"+strconv.Itoa(port))
	k := limit.Key{Scope: limit.ScopeModel, ID: "m"}
	now := time.Now()
	st.SeedSpend(k, limit.PeriodMonth, now, 3) // Redis down: falls back
	wantEvent(t, events, true)
	st.SeedSpend(k, limit.PeriodMonth, now, 3)
	st.SeedSpend(k, limit.PeriodMonth, now, 2)
	if got := st.Status(k, now).SpendMonthUSD; got != 3 {
		t.Errorf("fallback spend after seeding 3, 3 and 2: %v, want 3", got)
	}
	st.SeedSpend(k, limit.PeriodMonth, now, 5)
	if got := st.Status(k, now).SpendMonthUSD; got != 5 {
		t.Errorf("fallback spend after seeding 5: %v, want 5", got)
	}
}
