package health_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func TestCooldownStateMachine(t *testing.T) {
	clk := newClock()
	r := health.NewRegistry(health.WithClock(clk.Now))
	if st := r.Status("never-seen"); st.State != health.StateHealthy || st.Requests != 0 {
		t.Fatalf("unknown model: %+v", st)
	}
	tg := r.Target("m1")
	if r.Target("m1") != tg {
		t.Fatal("Target is not stable")
	}
	steps := []struct {
		name      string
		do        func()
		wantAv    health.Availability
		wantState string
		wantRsn   string
	}{
		{name: "fresh", do: func() {}, wantAv: health.Available, wantState: health.StateHealthy},
		{name: "failure without cooldown", do: func() { tg.Begin(); tg.Failed("upstream_server_error", "upstream returned 500", 0) },
			wantAv: health.Available, wantState: health.StateHealthy},
		{name: "failure with cooldown", do: func() {
			tg.Begin()
			tg.Failed("transport_error", "transport error: connection refused", 30*time.Second)
		},
			wantAv: health.Cooling, wantState: health.StateCooldown, wantRsn: "transport_error"},
		{name: "time passes, still cooling", do: func() { clk.Advance(29 * time.Second) },
			wantAv: health.Cooling, wantState: health.StateCooldown, wantRsn: "transport_error"},
		{name: "cooldown over: half-open", do: func() { clk.Advance(2 * time.Second) },
			wantAv: health.HalfOpen, wantState: health.StateProbing, wantRsn: "transport_error"},
		{name: "failed probe re-arms", do: func() {
			if _, ok := tg.TryProbe(clk.Now()); !ok {
				t.Fatal("probe not granted")
			}
			tg.Begin()
			tg.Failed("upstream_server_error", "upstream returned 503", 10*time.Second)
		}, wantAv: health.Cooling, wantState: health.StateCooldown, wantRsn: "upstream_server_error"},
		{name: "half-open again", do: func() { clk.Advance(11 * time.Second) },
			wantAv: health.HalfOpen, wantState: health.StateProbing, wantRsn: "upstream_server_error"},
		{name: "successful probe heals", do: func() {
			tok, ok := tg.TryProbe(clk.Now())
			if !ok {
				t.Fatal("probe not granted")
			}
			if _, ok := tg.TryProbe(clk.Now()); ok {
				t.Fatal("a second probe was granted while the first is in flight")
			}
			a := tg.Begin()
			if !tg.Succeeded(a, 40*time.Millisecond, 0) {
				t.Error("Succeeded did not report the recovery")
			}
			tg.ReleaseProbe(tok) // settled already: a no-op
		}, wantAv: health.Available, wantState: health.StateHealthy},
	}
	for _, s := range steps {
		s.do()
		av, _ := tg.Check(clk.Now())
		st := r.Status("m1")
		if av != s.wantAv || st.State != s.wantState || st.Reason != s.wantRsn {
			t.Fatalf("%s: availability %v, status %s/%q; want %v %s/%q", s.name, av, st.State, st.Reason, s.wantAv, s.wantState, s.wantRsn)
		}
	}
	st := r.Status("m1")
	if st.Requests != 4 || st.Failures != 3 || st.InFlight != 0 || st.Cooldowns != 2 || st.LastError != "upstream returned 503" || st.LastSuccessAt.IsZero() {
		t.Errorf("counters %+v", st)
	}
	if st.LatencyP50 != 40*time.Millisecond || !st.CooldownUntil.IsZero() {
		t.Errorf("latency %v cooldown %v", st.LatencyP50, st.CooldownUntil)
	}
}

func TestProbeRelease(t *testing.T) {
	clk := newClock()
	r := health.NewRegistry(health.WithClock(clk.Now), health.WithProbeTimeout(time.Minute))
	tg := r.Target("m")
	tg.Begin()
	tg.Failed("transport_error", "x", time.Second)
	clk.Advance(2 * time.Second)
	tok, ok := tg.TryProbe(clk.Now())
	if !ok {
		t.Fatal("no probe")
	}
	if st := r.Status("m"); !st.ProbeInFlight {
		t.Error("probe not shown")
	}
	tg.ReleaseProbe(tok)
	if _, ok := tg.TryProbe(clk.Now()); !ok {
		t.Fatal("released probe not granted again")
	}
	// A probe that never answers is taken over after the probe timeout.
	if _, ok := tg.TryProbe(clk.Now()); ok {
		t.Fatal("granted twice")
	}
	clk.Advance(2 * time.Minute)
	if _, ok := tg.TryProbe(clk.Now()); !ok {
		t.Fatal("stuck probe never taken over")
	}
}

func TestPercentiles(t *testing.T) {
	r := health.NewRegistry()
	tg := r.Target("m")
	for i := 1; i <= 100; i++ {
		a := tg.Begin()
		tg.Succeeded(a, time.Duration(i)*time.Millisecond, time.Duration(i)*time.Microsecond)
	}
	st := r.Status("m")
	if st.LatencyP50 != 50*time.Millisecond || st.LatencyP95 != 95*time.Millisecond || st.TTFTP50 != 50*time.Microsecond {
		t.Errorf("p50 %v p95 %v ttft %v", st.LatencyP50, st.LatencyP95, st.TTFTP50)
	}
	for i := 0; i < 1000; i++ { // the window keeps only recent samples
		a := tg.Begin()
		tg.Succeeded(a, time.Second, 0)
	}
	if st := r.Status("m"); st.LatencyP50 != time.Second || st.LatencyP95 != time.Second {
		t.Errorf("window not rolling: %v %v", st.LatencyP50, st.LatencyP95)
	}
}

func TestRetain(t *testing.T) {
	r := health.NewRegistry()
	r.Target("keep").Begin()
	r.Target("drop").Begin()
	r.Retain(func(id string) bool { return id == "keep" })
	if r.Status("keep").Requests != 1 || r.Status("drop").Requests != 0 {
		t.Error("Retain kept the wrong models")
	}
}

func TestEventsRing(t *testing.T) {
	clk := newClock()
	r := health.NewRegistry(health.WithClock(clk.Now), health.WithEventCapacity(4))
	if evs, next := r.Events(0); len(evs) != 0 || next != 0 {
		t.Fatalf("empty ring: %v %d", evs, next)
	}
	for i := 1; i <= 3; i++ {
		r.Publish(health.Event{Kind: health.EventAttemptFailed, Detail: fmt.Sprint(i)})
	}
	evs, next := r.Events(0)
	if len(evs) != 3 || next != 3 || evs[0].Seq != 1 || evs[2].Detail != "3" || !evs[0].Time.Equal(clk.Now()) {
		t.Fatalf("events %+v next %d", evs, next)
	}
	if evs, n := r.Events(next); len(evs) != 0 || n != 3 {
		t.Fatalf("nothing new: %v %d", evs, n)
	}
	for i := 4; i <= 9; i++ {
		r.Publish(health.Event{Kind: health.EventFailover, Detail: fmt.Sprint(i)})
	}
	evs, next = r.Events(3) // 4..9 published, the ring holds 6..9
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Detail)
	}
	if fmt.Sprint(got) != "[6 7 8 9]" || next != 9 {
		t.Errorf("after overflow: %v next %d", got, next)
	}
	if evs, _ := r.Events(1000); len(evs) != 4 {
		t.Errorf("a cursor from the future must restart: %d events", len(evs))
	}
}

func TestSubscribeNeverBlocks(t *testing.T) {
	r := health.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	slow := r.Subscribe(ctx, 2) // never read until the end
	fast := r.Subscribe(ctx, 100)
	done := make(chan struct{})
	go func() {
		for i := 0; i < 50; i++ {
			r.Publish(health.Event{Kind: health.EventServed})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Publish blocked on a slow subscriber")
	}
	if n := len(fast); n != 50 {
		t.Errorf("fast subscriber got %d events", n)
	}
	if n := len(slow); n != 2 {
		t.Errorf("slow subscriber buffered %d events", n)
	}
	cancel()
	deadline := time.After(5 * time.Second)
	for range fast { // drains, then closes
		select {
		case <-deadline:
			t.Fatal("channel not closed after cancel")
		default:
		}
	}
}

// TestConcurrentUse exercises every method at once under -race.
func TestConcurrentUse(t *testing.T) {
	r := health.NewRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := r.Subscribe(ctx, 8)
	go func() {
		for range sub {
		}
	}()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			var cursor uint64
			for i := 0; i < 500; i++ {
				tg := r.Target(fmt.Sprint("m", i%3))
				a := tg.Begin()
				switch i % 4 {
				case 0:
					tg.Failed("transport_error", "x", time.Millisecond)
				case 1:
					tg.Neutral()
				default:
					tg.Succeeded(a, time.Millisecond, time.Microsecond)
				}
				if tok, ok := tg.TryProbe(time.Now()); ok {
					tg.ReleaseProbe(tok)
				}
				r.Publish(health.Event{Kind: health.EventServed})
				var evs []health.Event
				evs, cursor = r.Events(cursor)
				for j := 1; j < len(evs); j++ {
					if evs[j].Seq <= evs[j-1].Seq {
						t.Errorf("events out of order")
						return
					}
				}
				_ = r.Status(fmt.Sprint("m", g%3))
			}
		}(g)
	}
	wg.Wait()
	for i := 0; i < 3; i++ {
		if st := r.Status(fmt.Sprint("m", i)); st.InFlight != 0 {
			t.Errorf("m%d in flight %d", i, st.InFlight)
		}
	}
}
