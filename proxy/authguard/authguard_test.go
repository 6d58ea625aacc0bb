package authguard_test

import (
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/authguard"
)

// clock is a manual clock for the guard.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newGuard(opts authguard.Options) (*authguard.Guard, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	opts.Now = c.now
	return authguard.New(opts), c
}

var (
	attacker = netip.MustParseAddr("198.51.100.7")
	other    = netip.MustParseAddr("198.51.100.8")
)

func TestBurstThenThrottled(t *testing.T) {
	g, clk := newGuard(authguard.Options{})
	for i := range authguard.DefaultBurst {
		if ok, _ := g.Allow(attacker); !ok {
			t.Fatalf("failure %d refused inside the burst", i+1)
		}
		g.Fail(attacker)
	}
	ok, wait := g.Allow(attacker)
	if ok || wait != time.Second {
		t.Fatalf("after the burst: ok=%v wait=%v, want refused for 1s", ok, wait)
	}
	if ok, _ := g.Allow(other); !ok {
		t.Fatal("another address is throttled")
	}
	clk.add(time.Second)
	if ok, _ := g.Allow(attacker); !ok {
		t.Fatal("a refilled token is not usable")
	}
	g.Fail(attacker)
	if ok, _ := g.Allow(attacker); ok {
		t.Fatal("the refilled token was spent but the address is allowed")
	}
	if g.Failures() != authguard.DefaultBurst+1 || g.Throttled() != 2 {
		t.Fatalf("failures=%d throttled=%d, want %d and 2", g.Failures(), g.Throttled(), authguard.DefaultBurst+1)
	}
	// Once idle (refilled to the burst), the address is forgotten and
	// Allow is back to its one-load path.
	clk.add(time.Duration(authguard.DefaultBurst) * time.Second)
	if ok, _ := g.Allow(attacker); !ok || g.Len() != 0 {
		t.Fatalf("idle address: ok=%v len=%d, want allowed and forgotten", ok, g.Len())
	}
}

func TestDebtAndRetryAfter(t *testing.T) {
	g, clk := newGuard(authguard.Options{Burst: 2, PerSecond: 0.5})
	// Failures that raced past Allow (parallel guesses) are paid back.
	for range 5 {
		g.Fail(attacker)
	}
	ok, wait := g.Allow(attacker)
	// tokens: 2-5 = -3, floored at -2; one token needs 3 / 0.5 = 6 s.
	if ok || wait != 6*time.Second {
		t.Fatalf("ok=%v wait=%v, want refused for 6s", ok, wait)
	}
	clk.add(5 * time.Second)
	if ok, _ := g.Allow(attacker); ok {
		t.Fatal("allowed before the debt is paid")
	}
	clk.add(time.Second)
	if ok, _ := g.Allow(attacker); !ok {
		t.Fatal("refused after the debt is paid")
	}
}

func TestIPv6ByPrefix(t *testing.T) {
	g, _ := newGuard(authguard.Options{Burst: 1})
	g.Fail(netip.MustParseAddr("2001:db8:1:2::1"))
	if ok, _ := g.Allow(netip.MustParseAddr("2001:db8:1:2:ffff::9")); ok {
		t.Fatal("another address of the same /64 is not throttled")
	}
	if ok, _ := g.Allow(netip.MustParseAddr("2001:db8:1:3::1")); !ok {
		t.Fatal("another /64 is throttled")
	}
}

func TestMemoryBound(t *testing.T) {
	const limit = 256
	g, _ := newGuard(authguard.Options{MaxAddresses: limit})
	// An attacker spraying addresses: many more than the bound, none idle.
	for i := range 100_000 {
		g.Fail(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if n := g.Len(); n > limit {
			t.Fatalf("after %d addresses the guard holds %d entries, bound %d", i+1, n, limit)
		}
	}
	if g.Len() == 0 {
		t.Fatal("the guard tracks nothing")
	}
}

func TestSweep(t *testing.T) {
	g, clk := newGuard(authguard.Options{})
	for i := range 1000 {
		g.Fail(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if g.Len() != 1000 {
		t.Fatalf("len %d", g.Len())
	}
	clk.add(2 * time.Minute)
	// Any later touch sweeps the idle entries out.
	g.Allow(other)
	if g.Len() != 0 {
		t.Fatalf("idle entries kept after a sweep: %d", g.Len())
	}
}

func TestNilAndDisabled(t *testing.T) {
	var g *authguard.Guard
	g.Fail(attacker)
	if ok, _ := g.Allow(attacker); !ok || g.Failures() != 0 || g.Len() != 0 {
		t.Fatal("nil guard should allow and count nothing")
	}
	if authguard.New(authguard.Options{Burst: -1}) != nil {
		t.Fatal("negative burst should disable the guard")
	}
	counting, _ := newGuard(authguard.Options{Burst: 1, CountOnly: true})
	for range 5 {
		counting.Fail(attacker)
	}
	if ok, _ := counting.Allow(attacker); !ok || counting.Failures() != 5 || counting.Len() != 0 {
		t.Fatal("a count-only guard should count failures and refuse nobody")
	}
	real, _ := newGuard(authguard.Options{Burst: 1})
	real.Fail(netip.Addr{})
	if ok, _ := real.Allow(netip.Addr{}); !ok || real.Len() != 0 || real.Failures() != 1 {
		t.Fatal("an invalid address is counted but never tracked or refused")
	}
}

func TestConcurrent(t *testing.T) {
	g := authguard.New(authguard.Options{MaxAddresses: 512})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				a := netip.AddrFrom4([4]byte{10, byte(w), byte(i >> 8), byte(i)})
				g.Allow(a)
				g.Fail(a)
			}
		})
	}
	wg.Wait()
	if g.Failures() != 16000 {
		t.Fatalf("failures %d", g.Failures())
	}
}

// BenchmarkAllowQuiet is an authenticated request's cost while no address
// has failed: one atomic load.
func BenchmarkAllowQuiet(b *testing.B) {
	g := authguard.New(authguard.Options{})
	b.ReportAllocs()
	for b.Loop() {
		g.Allow(other)
	}
}

// BenchmarkAllowBusy is its cost while other addresses are tracked: one
// shard lock and lookup.
func BenchmarkAllowBusy(b *testing.B) {
	g := authguard.New(authguard.Options{})
	g.Fail(attacker)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			g.Allow(other)
		}
	})
}
