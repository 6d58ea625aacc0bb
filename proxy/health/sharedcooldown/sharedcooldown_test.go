package sharedcooldown

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/limit/redisstore"
	"github.com/aisix/aisix/proxy/limit/redisstore/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// shareBound is how soon another replica must see a cooldown or a
// recovery: the "within a second".
const shareBound = time.Second

var prefixes atomic.Int64

// testPrefix keeps each test's keys and channel apart on the shared server.
func testPrefix() string { return fmt.Sprintf("t%d:", prefixes.Add(1)) }

// replica is one registry sharing its cooldowns, as one aisix replica.
type replica struct {
	reg    *health.Registry
	sh     *Sharer
	events chan bool // OnStateChange
}

// newReplica starts a replica on addr with prefix. The call bound is
// generous (the race detector on a busy machine): these tests are about
// sharing, not about timeouts.
func newReplica(t *testing.T, addr, prefix string, fast bool) *replica {
	t.Helper()
	ro, err := redisstore.ClientOptions("redis://"+addr+"/0", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(ro)
	r := &replica{reg: health.NewRegistry(), events: make(chan bool, 16)}
	opts := Options{Prefix: prefix, Timeout: 2 * time.Second, OnStateChange: func(d bool) { r.events <- d }}
	if fast {
		opts.RetryEvery, opts.Idle = 50*time.Millisecond, 200*time.Millisecond
	}
	r.sh = New(r.reg, c, opts)
	t.Cleanup(func() {
		_ = r.sh.Close()
		_ = c.Close()
	})
	return r
}

// fail fails one attempt of target id with a cooldown of d.
func (r *replica) fail(id string, d time.Duration) time.Time {
	t := r.reg.Target(id)
	t.Begin()
	until, _ := t.Failed("transport_error", "dial refused", d)
	return until
}

// succeed answers one attempt of target id well (a probe) and reports
// whether it recovered.
func (r *replica) succeed(id string) bool {
	t := r.reg.Target(id)
	return t.Succeeded(t.Begin(), time.Millisecond, 0)
}

// waitState waits until r's target id is in state, failing after bound,
// and returns how long it took.
func waitState(t *testing.T, r *replica, id, state string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if st := r.reg.Status(id); st.State == state {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("target %s not %s within %s: %+v", id, state, bound, r.reg.Status(id))
		}
		time.Sleep(2 * time.Millisecond) // polling another goroutine's apply
	}
}

// waitSubscribed waits until r has read Redis once (subscribed), so that
// what is published next reaches it.
func waitSubscribed(t *testing.T, r *replica) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if r.sh.subscribed.Load() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("sharer never subscribed")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func wantEvent(t *testing.T, r *replica, want bool) {
	t.Helper()
	select {
	case got := <-r.events:
		if got != want {
			t.Fatalf("OnStateChange(%v), want OnStateChange(%v)", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no OnStateChange(%v) within 10s", want)
	}
}

// TestCooldownAndRecoveryShared: a cooldown entered on replica A is seen on
// B within a second, with its reason and end; a probe's success on A
// clears it on B.
func TestCooldownAndRecoveryShared(t *testing.T) {
	srv := redistest.Shared(t)
	p := testPrefix()
	a, b := newReplica(t, srv.Addr(), p, false), newReplica(t, srv.Addr(), p, false)
	waitSubscribed(t, a)
	waitSubscribed(t, b)

	until := a.fail("t1", 30*time.Second)
	took := waitState(t, b, "t1", health.StateCooldown, shareBound)
	t.Logf("cooldown on A seen on B after %s", took)
	st := b.reg.Status("t1")
	if st.Reason != "transport_error" || !st.CooldownUntil.Equal(until) {
		t.Errorf("B's cooldown: reason %q until %v, want transport_error until %v", st.Reason, st.CooldownUntil, until)
	}
	if av, _ := b.reg.Target("t1").Check(time.Now()); av != health.Cooling {
		t.Errorf("B would still route to t1: %v", av)
	}

	if !a.succeed("t1") {
		t.Fatal("A's good answer did not recover t1")
	}
	took = waitState(t, b, "t1", health.StateHealthy, shareBound)
	t.Logf("recovery on A seen on B after %s", took)

	// And the other way: B's cooldown reaches A.
	b.fail("t2", time.Minute)
	waitState(t, a, "t2", health.StateCooldown, shareBound)
}

// TestLateReplicaReadsCurrentCooldowns: a replica that starts after a
// cooldown was entered reads it from Redis; an expired one is not read.
func TestLateReplicaReadsCurrentCooldowns(t *testing.T) {
	srv := redistest.Shared(t)
	p := testPrefix()
	a := newReplica(t, srv.Addr(), p, false)
	waitSubscribed(t, a)
	a.fail("t1", time.Minute)
	a.fail("short", 50*time.Millisecond)
	// Wait for the publisher: a replica subscribed now sees t1.
	b := newReplica(t, srv.Addr(), p, false)
	waitState(t, b, "t1", health.StateCooldown, 5*time.Second)
	time.Sleep(100 * time.Millisecond) // real time for "short" to run out, and its key to expire
	c := newReplica(t, srv.Addr(), p, false)
	waitState(t, c, "t1", health.StateCooldown, 5*time.Second)
	if st := c.reg.Status("short"); st.State != health.StateHealthy {
		t.Errorf("a replica started after a cooldown ran out has it: %+v", st)
	}
}

// TestStaleRecoveryKeepsNewerCooldown: a recovery that answered an older
// cooldown neither deletes a newer one another replica stored nor clears
// it there, and a late replica still reads the newer one.
func TestStaleRecoveryKeepsNewerCooldown(t *testing.T) {
	srv := redistest.Shared(t)
	p := testPrefix()
	a, b := newReplica(t, srv.Addr(), p, false), newReplica(t, srv.Addr(), p, false)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	// A's attempt is sent while nothing cools down; B then fails t1 for
	// long, and A's answer (older news) must not clear it anywhere.
	ta := a.reg.Target("t1")
	a.fail("t1", 10*time.Second)
	waitState(t, b, "t1", health.StateCooldown, shareBound)
	tok := ta.Begin()                // sent after A's cooldown: may clear A's own
	time.Sleep(5 * time.Millisecond) // B's cooldown must be armed a later millisecond than A's
	b.fail("t1", time.Minute)        // newer, longer
	until := b.reg.Status("t1").CooldownUntil
	waitUntil(t, a, "t1", until)
	// The newer cooldown reached A and bumped its token: A's answer
	// clears nothing.
	if ta.Succeeded(tok, time.Millisecond, 0) {
		t.Fatal("an answer sent before B's newer cooldown cleared it on A")
	}
	// A probe answered on A now clears A's copy and publishes; B's
	// cooldown was armed at B's time, A's copy carries it, so it clears.
	if !a.succeed("t1") {
		t.Fatal("a fresh probe did not recover A")
	}
	waitState(t, b, "t1", health.StateHealthy, shareBound)

	// Now the stale case at Redis level: B fails t2 after A's attempt
	// was answered for an older cooldown.
	a.fail("t2", 10*time.Second)
	waitState(t, b, "t2", health.StateCooldown, shareBound)
	armedA := a.reg.Status("t2").CooldownUntil.Add(-10 * time.Second)
	time.Sleep(5 * time.Millisecond) // a later millisecond, as above
	b.fail("t2", time.Minute)
	waitUntil(t, a, "t2", b.reg.Status("t2").CooldownUntil)
	a.sh.Recovered("t2", armedA) // a recovery of A's older cooldown, as if delayed
	// A's publisher keeps order: once B hears of the marker, A's stale
	// recovery went to Redis before it.
	a.fail("marker", time.Minute)
	waitState(t, b, "marker", health.StateCooldown, shareBound)
	c := newReplica(t, srv.Addr(), p, false)
	waitState(t, c, "t2", health.StateCooldown, 5*time.Second)
	if st := b.reg.Status("t2"); st.State != health.StateCooldown {
		t.Errorf("a stale recovery cleared B's newer cooldown: %+v", st)
	}
}

// waitUntil waits until r's target id cools down until until.
func waitUntil(t *testing.T, r *replica, id string, until time.Time) {
	t.Helper()
	deadline := time.Now().Add(shareBound)
	for !r.reg.Status(id).CooldownUntil.Equal(until) {
		if time.Now().After(deadline) {
			t.Fatalf("%s's cooldown until %v not shared: %+v", id, until, r.reg.Status(id))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestSharingResumesAfterRedisRestart: Redis stopped mid-test. Local
// cooldowns keep working and never block; when Redis is back the replicas
// resubscribe, the cooldown entered while it was down is published, and
// sharing works both ways again.
func TestSharingResumesAfterRedisRestart(t *testing.T) {
	srv := redistest.New(t)
	p := testPrefix()
	a, b := newReplica(t, srv.Addr(), p, true), newReplica(t, srv.Addr(), p, true)
	waitSubscribed(t, a)
	waitSubscribed(t, b)
	a.fail("before", time.Minute)
	waitState(t, b, "before", health.StateCooldown, shareBound)

	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, a, true)
	wantEvent(t, b, true)
	// Down: cooldowns are local, and arming one does not wait for Redis.
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 500 {
				a.fail(fmt.Sprintf("down-%d-%d", i, j%5), time.Minute)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("4,000 failures with Redis down took %s: arming a cooldown waits for Redis", d)
	}
	if av, _ := a.reg.Target("down-0-0").Check(time.Now()); av != health.Cooling {
		t.Errorf("a local cooldown with Redis down: %v", av)
	}
	// Let A's publisher take in the burst, so the next news finds room.
	for deadline := time.Now().Add(10 * time.Second); len(a.sh.queue) > 0; {
		if time.Now().After(deadline) {
			t.Fatal("A's publisher never drained its queue with Redis down")
		}
		time.Sleep(time.Millisecond)
	}
	a.fail("while-down", time.Minute)
	if st := b.reg.Status("while-down"); st.State != health.StateHealthy {
		t.Fatalf("B has a cooldown it could not have heard of: %+v", st)
	}

	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, a, false)
	wantEvent(t, b, false)
	// What A entered while Redis was down reaches B (the restarted
	// server is empty: A publishes what it kept).
	waitState(t, b, "while-down", health.StateCooldown, 5*time.Second)
	b.fail("after", time.Minute)
	waitState(t, a, "after", health.StateCooldown, shareBound)
	if !b.succeed("after") {
		t.Fatal("B did not recover")
	}
	waitState(t, a, "after", health.StateHealthy, shareBound)
}

// TestRedisNeverUpKeepsLocalCooldowns: with no Redis at all from the
// start, the sharer reports it down and cooldowns work locally.
func TestRedisNeverUpKeepsLocalCooldowns(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	a := newReplica(t, fmt.Sprintf("127.0.0.1:%d", port), testPrefix(), true)
	wantEvent(t, a, true)
	a.fail("t1", time.Minute)
	if av, _ := a.reg.Target("t1").Check(time.Now()); av != health.Cooling {
		t.Fatalf("local cooldown: %v", av)
	}
	if !a.succeed("t1") {
		t.Error("local recovery")
	}
}

// TestFullQueueDrops: news that finds the queue full is dropped and
// counted, never waited for.
func TestFullQueueDrops(t *testing.T) {
	s := &Sharer{queue: make(chan message, 2)}
	for range 5 {
		s.Armed("t", "x", time.Now(), time.Now().Add(time.Minute))
	}
	s.Recovered("t", time.Now())
	if got := s.Dropped(); got != 4 {
		t.Errorf("Dropped() = %d, want 4 (6 news, room for 2)", got)
	}
}
