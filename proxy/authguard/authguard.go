// Package authguard slows caller-key guessing: every 401 (a missing or
// wrong caller key) takes a token from a small bucket kept per caller
// address, and an address whose bucket is empty is refused with 429 and
// Retry-After before its key is even looked at, until a token refills.
//
// Why 429 before auth rather than a delayed 401: a delay holds one of the
// gateway's goroutines and connections per guess and does not slow a
// guesser that sends in parallel; and a 429 given only to wrong keys would
// still tell a guesser which key was right. Refusing the address outright
// while it is over budget costs the gateway nothing and makes its guesses
// worthless. The price: while an address is over budget, a good key from
// it is refused too (for at most 1/PerSecond at a time once the guessing
// stops, and never longer than the debt it ran up); callers behind one
// NAT share its budget.
//
// Bounds: IPv4 addresses are tracked one by one, IPv6 ones by /64 (what
// one host usually gets); at most MaxAddresses entries are kept, in
// shards with a lock each (no lock shared by all requests). An entry whose
// bucket has refilled is forgotten; a full shard forgets its idle entries,
// else an arbitrary one, so an attacker spraying addresses cannot grow the
// guard, though one with more addresses than MaxAddresses can evade it
// (caller keys are long random strings: guessing one is hopeless anyway;
// the guard keeps the log and the CPU quiet).
//
// Cost to an authenticated request: Allow is one atomic load while no
// address has failed recently, else one shard lock and map lookup.
package authguard

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Options.
const (
	// DefaultBurst is how many failures in a row an address may make
	// before it is refused: a mistyped key retried a few times is fine.
	DefaultBurst = 10
	// DefaultPerSecond is how fast an address earns failures back.
	DefaultPerSecond = 1.0
	// DefaultMaxAddresses bounds the addresses tracked (about 100 bytes
	// each: some 6 MB at most).
	DefaultMaxAddresses = 65536
)

// nShards is the number of shards: enough that concurrent failures from
// different addresses rarely share a lock.
const nShards = 64

// sweepEvery is how often idle entries are swept out, at most.
const sweepEvery = time.Minute

// Options configure a Guard.
type Options struct {
	// Burst is the bucket size (default DefaultBurst); negative disables
	// the guard (New returns nil).
	Burst int
	// PerSecond is the refill rate (default DefaultPerSecond).
	PerSecond float64
	// MaxAddresses bounds the entries kept (default DefaultMaxAddresses).
	MaxAddresses int
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// CountOnly counts failures (for the metrics) and refuses nobody:
	// the guard turned off but still counting.
	CountOnly bool
}

// Guard is the per-address failure budget. A nil *Guard allows everything
// and counts nothing. Its methods are safe for concurrent use.
type Guard struct {
	burst, rate float64
	perShard    int
	now         func() time.Time
	seed        uint64
	countOnly   bool

	// entries counts the addresses tracked: while 0, Allow is one load.
	entries   atomic.Int64
	lastSweep atomic.Int64 // unix nanoseconds
	failures  atomic.Uint64
	throttled atomic.Uint64

	shards [nShards]shard
}

// shard is one lock's worth of addresses, padded to its own cache line.
type shard struct {
	mu sync.Mutex
	m  map[netip.Addr]bucket
	_  [40]byte
}

// bucket is an address's budget: tokens at time at (unix nanoseconds). It
// may go negative (down to -burst): failures that raced past Allow are
// paid back.
type bucket struct {
	tokens float64
	at     int64
}

// New returns a guard, or nil when opts.Burst is negative.
func New(opts Options) *Guard {
	if opts.Burst < 0 {
		return nil
	}
	g := &Guard{burst: float64(opts.Burst), rate: opts.PerSecond, now: opts.Now, seed: rand.Uint64() | 1, countOnly: opts.CountOnly}
	if g.burst == 0 {
		g.burst = DefaultBurst
	}
	if g.rate <= 0 {
		g.rate = DefaultPerSecond
	}
	limit := opts.MaxAddresses
	if limit <= 0 {
		limit = DefaultMaxAddresses
	}
	g.perShard = max(1, (limit+nShards-1)/nShards)
	if g.now == nil {
		g.now = time.Now
	}
	for i := range g.shards {
		g.shards[i].m = make(map[netip.Addr]bucket)
	}
	g.lastSweep.Store(g.now().UnixNano())
	return g
}

// Allow reports whether a request from addr may have its caller key
// checked; when not, retryAfter is when the next token refills (at least
// 1 s, for Retry-After) and the refusal is counted as throttled. An
// invalid addr (a test's fake peer) is always allowed.
func (g *Guard) Allow(addr netip.Addr) (ok bool, retryAfter time.Duration) {
	if g == nil || g.entries.Load() == 0 || !addr.IsValid() {
		return true, 0
	}
	now := g.now().UnixNano()
	g.maybeSweep(now)
	k := key(addr)
	s := g.shard(k)
	s.mu.Lock()
	b, found := s.m[k]
	var tokens float64
	if found {
		tokens = g.refill(b, now)
		if tokens >= g.burst {
			delete(s.m, k)
			g.entries.Add(-1)
		}
	}
	s.mu.Unlock()
	if !found || tokens >= 1 {
		return true, 0
	}
	g.throttled.Add(1)
	wait := time.Duration((1 - tokens) / g.rate * float64(time.Second))
	return false, max(wait, time.Second)
}

// Fail records a failed authentication (a 401) from addr.
func (g *Guard) Fail(addr netip.Addr) {
	if g == nil {
		return
	}
	g.failures.Add(1)
	if g.countOnly || !addr.IsValid() {
		return
	}
	now := g.now().UnixNano()
	k := key(addr)
	s := g.shard(k)
	s.mu.Lock()
	b, found := s.m[k]
	if found {
		b.tokens = g.refill(b, now)
	} else {
		if len(s.m) >= g.perShard {
			g.makeRoom(s, now)
		}
		b.tokens = g.burst
		g.entries.Add(1)
	}
	b.tokens = max(b.tokens-1, -g.burst)
	b.at = now
	s.m[k] = b
	s.mu.Unlock()
	g.maybeSweep(now)
}

// Failures is how many failed authentications Fail recorded.
func (g *Guard) Failures() uint64 {
	if g == nil {
		return 0
	}
	return g.failures.Load()
}

// Throttled is how many requests Allow refused.
func (g *Guard) Throttled() uint64 {
	if g == nil {
		return 0
	}
	return g.throttled.Load()
}

// Len is how many addresses the guard tracks now.
func (g *Guard) Len() int {
	if g == nil {
		return 0
	}
	return int(g.entries.Load())
}

// refill is b's tokens at now, capped at the burst.
func (g *Guard) refill(b bucket, now int64) float64 {
	return math.Min(g.burst, b.tokens+float64(now-b.at)/float64(time.Second)*g.rate)
}

// makeRoom frees one entry of the full shard s (locked): its idle ones
// if any, else an arbitrary one (map order).
func (g *Guard) makeRoom(s *shard, now int64) {
	if g.sweepShard(s, now) > 0 {
		return
	}
	for k := range s.m {
		delete(s.m, k)
		g.entries.Add(-1)
		return
	}
}

// sweepShard deletes the idle entries (refilled to the burst) of s
// (locked) and returns how many.
func (g *Guard) sweepShard(s *shard, now int64) int {
	n := 0
	for k, b := range s.m {
		if g.refill(b, now) >= g.burst {
			delete(s.m, k)
			n++
		}
	}
	g.entries.Add(int64(-n))
	return n
}

// maybeSweep sweeps every shard when the last sweep is older than
// sweepEvery; one caller does it, the others go on. It runs on the paths
// that already touch the guard, so that once failures stop, Allow goes
// back to a single atomic load.
func (g *Guard) maybeSweep(now int64) {
	last := g.lastSweep.Load()
	if now-last < int64(sweepEvery) || !g.lastSweep.CompareAndSwap(last, now) {
		return
	}
	for i := range g.shards {
		s := &g.shards[i]
		s.mu.Lock()
		g.sweepShard(s, now)
		s.mu.Unlock()
	}
}

// key is the address an entry is kept under: IPv6 addresses by their /64.
func key(a netip.Addr) netip.Addr {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// shard picks k's shard with a seeded mix of its bytes, so an attacker
// cannot aim many addresses at one shard.
func (g *Guard) shard(k netip.Addr) *shard {
	b := k.As16()
	x := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])
	x = (x ^ g.seed) * 0xff51afd7ed558ccd
	x ^= x >> 33
	return &g.shards[x%nShards]
}
