package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/routing"
)

// TestWatchdogPhases: the header bound applies until headers come, then the
// first-chunk bound (from the attempt's start), then the idle bound per
// gap. Each bound fires no earlier than it should; waits for the firing are
// generous.
func TestWatchdogPhases(t *testing.T) {
	tgt := &routing.Target{StreamHeaderTimeout: 50 * time.Millisecond, StreamFirstTimeout: 300 * time.Millisecond, StreamIdleTimeout: 100 * time.Millisecond}
	var runWith func(t *testing.T, tgt *routing.Target, steps func(wd *watchdog), want error, notBefore time.Duration)
	run := func(t *testing.T, steps func(wd *watchdog), want error, notBefore time.Duration) {
		t.Helper()
		runWith(t, tgt, steps, want, notBefore)
	}
	_ = run
	runWith = func(t *testing.T, tgt *routing.Target, steps func(wd *watchdog), want error, notBefore time.Duration) {
		t.Helper()
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		start := time.Now()
		wd := startWatchdog(start, tgt, time.Time{}, cancel)
		defer wd.stop()
		steps(wd)
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Second):
			t.Fatal("watchdog never fired")
		}
		if took := time.Since(start); took < notBefore {
			t.Errorf("fired after %v, before its bound %v", took, notBefore)
		}
		if got := context.Cause(ctx); got != want {
			t.Errorf("cause %v, want %v", got, want)
		}
	}
	t.Run("no headers", func(t *testing.T) {
		run(t, func(*watchdog) {}, errNoHeaders, 50*time.Millisecond)
	})
	t.Run("headers, no content", func(t *testing.T) {
		run(t, func(wd *watchdog) { wd.headers() }, errNoFirstChunk, 300*time.Millisecond)
	})
	t.Run("committed, then silent", func(t *testing.T) {
		// A first-chunk bound far beyond the sleep, so a slow machine
		// cannot make it fire first.
		long := &routing.Target{StreamHeaderTimeout: 50 * time.Millisecond, StreamFirstTimeout: time.Minute, StreamIdleTimeout: 100 * time.Millisecond}
		runWith(t, long, func(wd *watchdog) {
			wd.headers()
			time.Sleep(120 * time.Millisecond) // past the header bound: must not fire
			wd.commit()
			wd.waiting(true)
		}, errStalled, 220*time.Millisecond)
	})
	t.Run("committed, blocked on the caller: not upstream silence", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		wd := startWatchdog(time.Now(), tgt, time.Time{}, cancel)
		defer wd.stop()
		wd.headers()
		wd.commit()
		wd.waiting(true)
		wd.waiting(false) // a read returned; the relay now writes to a slow caller
		select {
		case <-ctx.Done():
			t.Fatalf("idle bound fired while the relay was not waiting on the upstream: %v", context.Cause(ctx))
		case <-time.After(500 * time.Millisecond): // five idle bounds
		}
	})
	t.Run("budget before the bounds", func(t *testing.T) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		start := time.Now()
		wd := startWatchdog(start, tgt, start.Add(20*time.Millisecond), cancel)
		defer wd.stop()
		<-ctx.Done()
		if got := context.Cause(ctx); got != errBudget {
			t.Errorf("cause %v, want the routing budget", got)
		}
	})
}
