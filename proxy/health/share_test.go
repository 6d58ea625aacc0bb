package health_test

import (
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
)

// recordingSharer records what a registry tells its Sharer.
type recordingSharer struct {
	mu        sync.Mutex
	armed     []string
	recovered []time.Time
}

func (s *recordingSharer) Armed(id, reason string, armedAt, until time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.armed = append(s.armed, id+" "+reason+" "+until.Sub(armedAt).String())
}

func (s *recordingSharer) Recovered(id string, armedAt time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recovered = append(s.recovered, armedAt)
}

// TestSharerHook: a cooldown armed here and a recovery here are told to
// the Sharer; cooldowns and recoveries applied from it are not (they would
// echo between replicas).
func TestSharerHook(t *testing.T) {
	clk := newClock()
	r := health.NewRegistry(health.WithClock(clk.Now))
	sh := &recordingSharer{}
	r.SetSharer(sh)
	tg := r.Target("m1")

	tg.Begin()
	tg.Failed("transport_error", "dial refused", 30*time.Second)
	if len(sh.armed) != 1 || sh.armed[0] != "m1 transport_error 30s" {
		t.Fatalf("Armed calls %v, want one for m1's 30s cooldown", sh.armed)
	}
	// No cooldown, no call.
	tg.Begin()
	tg.Failed("bad_request", "x", 0)
	if len(sh.armed) != 1 {
		t.Errorf("a failure without cooldown was shared: %v", sh.armed)
	}
	// Re-armed by the requests in flight: a little later is not news, a
	// cooldown pushed more than a second past the shared end is.
	clk.Advance(500 * time.Millisecond)
	tg.Begin()
	tg.Failed("transport_error", "again", 30*time.Second)
	if len(sh.armed) != 1 {
		t.Errorf("a re-arm 0.5s later was shared: %v", sh.armed)
	}
	tg.Begin()
	tg.Failed("status_429", "retry after 60s", time.Minute)
	if len(sh.armed) != 2 || sh.armed[1] != "m1 status_429 1m0s" {
		t.Fatalf("a cooldown pushed 30s further: Armed calls %v, want a second one", sh.armed)
	}
	armedAt := clk.Now()
	clk.Advance(61 * time.Second)
	if !tg.Succeeded(tg.Begin(), time.Millisecond, 0) {
		t.Fatal("probe's success did not recover")
	}
	if len(sh.recovered) != 1 || !sh.recovered[0].Equal(armedAt) {
		t.Fatalf("Recovered calls %v, want one naming the cooldown armed at %v", sh.recovered, armedAt)
	}
	// A plain success of a healthy target tells nothing.
	tg.Succeeded(tg.Begin(), time.Millisecond, 0)
	if len(sh.recovered) != 1 {
		t.Errorf("a plain success was shared: %v", sh.recovered)
	}

	// Applied from another replica: not told back.
	now := clk.Now()
	if !tg.ApplyCooldown("status_503", now.Add(-time.Second), now.Add(time.Minute)) {
		t.Fatal("ApplyCooldown of a new cooldown reported false")
	}
	if !tg.ApplyRecovery(now) {
		t.Fatal("ApplyRecovery of the applied cooldown reported false")
	}
	if len(sh.armed) != 2 || len(sh.recovered) != 1 {
		t.Errorf("applied state echoed to the Sharer: armed %v, recovered %v", sh.armed, sh.recovered)
	}
	r.SetSharer(nil)
	tg.Begin()
	tg.Failed("transport_error", "x", time.Second)
	if len(sh.armed) != 2 {
		t.Error("told after SetSharer(nil)")
	}
}

// TestApplyCooldownAndRecovery: the token rules hold for shared state. A
// remote cooldown blocks the target and cannot be cleared by the answer to
// an attempt sent before it; a shorter or expired remote cooldown changes
// nothing; a remote recovery does not clear a cooldown armed here after
// the one it answered.
func TestApplyCooldownAndRecovery(t *testing.T) {
	clk := newClock()
	r := health.NewRegistry(health.WithClock(clk.Now))
	tg := r.Target("m1")
	now := clk.Now()

	inFlight := tg.Begin() // sent before the remote cooldown
	if !tg.ApplyCooldown("transport_error", now, now.Add(30*time.Second)) {
		t.Fatal("ApplyCooldown reported false")
	}
	if av, until := tg.Check(now); av != health.Cooling || !until.Equal(now.Add(30*time.Second)) {
		t.Fatalf("after a remote cooldown: %v until %v", av, until)
	}
	if st := r.Status("m1"); st.State != health.StateCooldown || st.Reason != "transport_error" || st.Cooldowns != 1 {
		t.Errorf("status %+v, want a cooldown for transport_error, counted once", st)
	}
	if tg.Succeeded(inFlight, time.Millisecond, 0) {
		t.Error("an answer to an attempt sent before the remote cooldown cleared it")
	}
	if av, _ := tg.Check(now); av != health.Cooling {
		t.Fatal("remote cooldown cleared by a stale answer")
	}
	for name, until := range map[string]time.Time{"shorter": now.Add(10 * time.Second), "equal": now.Add(30 * time.Second), "expired": now.Add(-time.Second)} {
		if tg.ApplyCooldown("x", now, until) {
			t.Errorf("%s remote cooldown applied", name)
		}
	}
	if !tg.ApplyCooldown("status_503", now.Add(time.Second), now.Add(time.Minute)) {
		t.Error("a longer remote cooldown not applied")
	}

	// A cooldown armed here after the one a remote probe answered stays.
	clk.Advance(2 * time.Second)
	tg.Begin()
	tg.Failed("transport_error", "again", 5*time.Minute)
	if tg.ApplyRecovery(now.Add(time.Second)) {
		t.Fatal("a remote recovery of an older cooldown cleared a newer local one")
	}
	if av, _ := tg.Check(clk.Now()); av != health.Cooling {
		t.Fatal("not cooling after a stale remote recovery")
	}
	// One that answered the newest cooldown clears it, half-open included.
	clk.Advance(10 * time.Minute)
	if av, _ := tg.Check(clk.Now()); av != health.HalfOpen {
		t.Fatalf("after the cooldown ran out: %v, want half-open", av)
	}
	if !tg.ApplyRecovery(clk.Now()) {
		t.Fatal("remote recovery of the current cooldown reported false")
	}
	if av, _ := tg.Check(clk.Now()); av != health.Available {
		t.Errorf("after the remote recovery: %v, want available", av)
	}
	if tg.ApplyRecovery(clk.Now()) {
		t.Error("ApplyRecovery of a healthy target reported true")
	}
}
