package redisstore

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit"
)

// TestSameAsMemory drives a Redis-backed Limiter and a limit.Memory one
// through the same random traffic (bursts, gaps shorter and longer than
// the windows, requests ended early, late, with fewer or more tokens than
// estimated, or cancelled, refusals rolled back across two scopes) and
// wants the same decisions, retry-afters, headers and Status from both:
// the scripts keep limit.Memory's windows, exact and slotted.
func TestSameAsMemory(t *testing.T) {
	// Memory's exact log size cannot be lowered from here: the slotted
	// request windows are above the real one, and refused only in the
	// other tests.
	configs := []struct {
		name       string
		key, model limit.Limits
		// skew makes some calls up to 2.5 s late, as a replica whose
		// clock is behind its peers' (exact logs excepted: Memory keeps
		// its log ordered, Redis keeps the times it is given).
		skew bool
	}{
		{"exact", limit.Limits{RPM: 6, RPD: 40, Concurrency: 3}, limit.Limits{RPM: 9, TPM: 900}, false},
		{"slotted", limit.Limits{RPM: maxExactLog + 20, RPD: maxExactLog + 60, TPM: 5000, Concurrency: 3},
			limit.Limits{TPM: 3000, TPD: 20000, Concurrency: 4}, false},
		{"tokens", limit.Limits{TPM: 800, TPD: 3000}, limit.Limits{RPM: 30, TPM: 1200}, false},
		{"budget", limit.Limits{RPM: 20, Budget: &limit.Budget{AmountUSD: 0.05, Period: limit.PeriodDay}}, limit.Limits{TPM: 2500}, false},
		{"skewed", limit.Limits{RPM: maxExactLog + 20, TPM: 900, TPD: 4000}, limit.Limits{TPM: 1500, Concurrency: 4}, true},
	}
	for _, cfg := range configs {
		for seed := range uint64(3) {
			t.Run(fmt.Sprintf("%s/%d", cfg.name, seed), func(t *testing.T) {
				flush(t)
				red := limit.New(limit.Options{Store: newStore(t, Options{})})
				mem := limit.New(limit.Options{Store: limit.NewMemory()})
				t.Cleanup(func() { _ = red.Close(); _ = mem.Close() })
				sameTraffic(t, rand.New(rand.NewPCG(seed, 17)), red, mem,
					callerKey("k", cfg.key), modelSubject("m", cfg.model), cfg.skew)
				everyKeyExpires(t)
			})
		}
	}
}

// sameTraffic runs 600 steps of random traffic on red and mem and fails
// at the first difference.
func sameTraffic(t *testing.T, rng *rand.Rand, red, mem *limit.Limiter, key, model limit.Subject, skew bool) {
	t.Helper()
	type open struct {
		r, m *limit.Ticket
		est  int64
	}
	var tickets []open
	now := t0
	gaps := []time.Duration{0, time.Millisecond, 7 * time.Millisecond, 300 * time.Millisecond, time.Second,
		2500 * time.Millisecond, 20 * time.Second, 59 * time.Second, 61 * time.Second, 10 * time.Minute, 3 * time.Hour}
	base := now
	for step := range 600 {
		if rng.IntN(3) == 0 {
			base = base.Add(gaps[rng.IntN(len(gaps))])
		}
		now = base
		if skew && rng.IntN(3) == 0 {
			now = now.Add(-time.Duration(rng.IntN(2500)) * time.Millisecond)
		}
		where := func() string { return fmt.Sprintf("step %d at %s", step, now.Sub(t0)) }
		if len(tickets) > 0 && rng.IntN(2) == 0 {
			i := rng.IntN(len(tickets))
			tk := tickets[i]
			tickets = append(tickets[:i], tickets[i+1:]...)
			if rng.IntN(8) == 0 {
				tk.r.Cancel()
				tk.m.Cancel()
			} else {
				tokens := rng.Int64N(2*tk.est + 2)
				cost := float64(rng.IntN(5)) / 1000
				tk.r.DoneAt(now, tokens, cost)
				tk.m.DoneAt(now, tokens, cost)
			}
		} else {
			subs := []limit.Subject{key}
			if rng.IntN(2) == 0 {
				subs = append(subs, model)
			}
			est := rng.Int64N(300)
			rt, rr := red.Acquire(now, est, subs...)
			mt, mr := mem.Acquire(now, est, subs...)
			switch {
			case (rr == nil) != (mr == nil):
				t.Fatalf("%s: redis refused %v, memory refused %v", where(), rr, mr)
			case rr != nil:
				if rr.Scope != mr.Scope || rr.Dimension != mr.Dimension || rr.Limit != mr.Limit || rr.RetryAfter != mr.RetryAfter {
					t.Fatalf("%s: redis refused %+v, memory %+v", where(), rr, mr)
				}
			default:
				if rh, mh := rt.Headers(), mt.Headers(); rh != mh {
					t.Fatalf("%s: redis headers %+v, memory %+v", where(), rh, mh)
				}
				tickets = append(tickets, open{rt, mt, est})
			}
		}
		for _, s := range []limit.Subject{key, model} {
			rs, ms := red.Status(s.Key, now), mem.Status(s.Key, now)
			if !sameStatus(rs, ms) {
				t.Fatalf("%s: %s status: redis %+v, memory %+v", where(), s.Key.Scope, rs, ms)
			}
		}
	}
}

// everyKeyExpires fails t if a key of the shared server has no TTL: an
// idle scope must leave nothing behind.
func everyKeyExpires(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	c := client(t, requireServer(t).Addr(), 5*time.Second)
	keys, err := c.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys after the traffic")
	}
	for _, k := range keys {
		if d, err := c.PTTL(ctx, k).Result(); err != nil || d <= 0 {
			t.Errorf("key %s: TTL %v (%v), want one", k, d, err)
		}
	}
}

func sameStatus(a, b limit.Status) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.InFlight == b.InFlight && a.RPM == b.RPM && a.RPD == b.RPD && a.TPM == b.TPM && a.TPD == b.TPD &&
		near(a.SpendDayUSD, b.SpendDayUSD) && near(a.SpendWeekUSD, b.SpendWeekUSD) && near(a.SpendMonthUSD, b.SpendMonthUSD)
}
