package health

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Registry holds the runtime state of every direct model, by model id. All
// methods are safe for concurrent use. The request path touches only
// per-model atomics; a per-model mutex is taken only when a model changes
// state (fails, recovers), never on a plain success.
type Registry struct {
	now          func() time.Time
	probeTimeout time.Duration
	targets      sync.Map // model id → *Target

	ring  ring
	subMu sync.Mutex
	subs  atomic.Pointer[[]*subscriber]

	sharer atomic.Pointer[Sharer]
}

// Sharer is told of the cooldowns this registry arms and clears, to share
// them with other replicas (package proxy/health/sharedcooldown), which
// apply them with Target.ApplyCooldown and Target.ApplyRecovery. Its
// methods run on a request's goroutine, outside the target's lock: they
// must not block.
type Sharer interface {
	// Armed: target id's cooldown was (re)armed at armedAt, for reason,
	// until until.
	Armed(id, reason string, armedAt, until time.Time)
	// Recovered: a good answer cleared target id's cooldown, the one armed
	// at armedAt (or earlier).
	Recovered(id string, armedAt time.Time)
}

// SetSharer makes the registry tell s of every cooldown armed and cleared
// here (not of those applied from s); nil stops it.
func (r *Registry) SetSharer(s Sharer) {
	if s == nil {
		r.sharer.Store(nil)
		return
	}
	r.sharer.Store(&s)
}

func (r *Registry) share() Sharer {
	if p := r.sharer.Load(); p != nil {
		return *p
	}
	return nil
}

// Option configures a Registry.
type Option func(*Registry)

// WithClock makes the registry read time from now (tests drive cooldown
// expiry with a fake clock).
func WithClock(now func() time.Time) Option {
	return func(r *Registry) { r.now = now }
}

// WithEventCapacity sets how many recent events the ring keeps (default 1024).
func WithEventCapacity(n int) Option {
	return func(r *Registry) {
		if n > 0 {
			r.ring.slots = make([]atomic.Pointer[Event], n)
		}
	}
}

// WithProbeTimeout sets how long a half-open probe may stay unanswered
// before another request may probe instead (default 2 minutes).
func WithProbeTimeout(d time.Duration) Option {
	return func(r *Registry) {
		if d > 0 {
			r.probeTimeout = d
		}
	}
}

// NewRegistry returns an empty registry.
func NewRegistry(opts ...Option) *Registry {
	r := &Registry{now: time.Now, probeTimeout: 2 * time.Minute}
	r.ring.slots = make([]atomic.Pointer[Event], 1024)
	for _, o := range opts {
		o(r)
	}
	empty := []*subscriber(nil)
	r.subs.Store(&empty)
	return r
}

// Now is the registry's clock.
func (r *Registry) Now() time.Time { return r.now() }

// Target returns the state of the direct model with the given id, creating
// it on first use.
func (r *Registry) Target(id string) *Target {
	if v, ok := r.targets.Load(id); ok {
		return v.(*Target)
	}
	v, _ := r.targets.LoadOrStore(id, &Target{reg: r, id: id})
	return v.(*Target)
}

// Retain forgets the state of every model for which keep returns false (the
// config dropped them).
func (r *Registry) Retain(keep func(id string) bool) {
	r.targets.Range(func(k, _ any) bool {
		if !keep(k.(string)) {
			r.targets.Delete(k)
		}
		return true
	})
}

// Status returns a copy of the runtime state of the direct model with the
// given id. A model never seen reports healthy with zero counters.
func (r *Registry) Status(id string) Status {
	v, ok := r.targets.Load(id)
	if !ok {
		return Status{State: StateHealthy}
	}
	return v.(*Target).status(r.now())
}

// ModelStatus is Status under the name the admin API's StatusSource uses.
func (r *Registry) ModelStatus(id string) Status { return r.Status(id) }

// Availability is what a routing decision needs to know about a target.
type Availability int

// Availabilities.
const (
	// Available: no cooldown.
	Available Availability = iota
	// HalfOpen: the cooldown has run out; one request may probe.
	HalfOpen
	// Cooling: in cooldown until the returned time.
	Cooling
)

// Target is the runtime state of one direct model. It must not be copied.
type Target struct {
	reg *Registry
	id  string

	until       atomic.Int64  // cooldown end, Unix ns; 0 when none
	armedAt     atomic.Int64  // when the cooldown was last armed, Unix ns (here or on the replica that shared it)
	sharedUntil atomic.Int64  // the cooldown end the other replicas know of, Unix ns (see Failed)
	probeAt     atomic.Int64  // when a probe was claimed, Unix ns; 0 when none
	armed       atomic.Uint64 // how many times a cooldown was (re)armed
	requests    atomic.Uint64
	failures    atomic.Uint64
	cooldowns   atomic.Uint64
	inFlight    atomic.Int64
	lastSuccess atomic.Int64 // Unix ns
	tokensIn    atomic.Uint64
	tokensOut   atomic.Uint64
	costNanos   atomic.Uint64 // USD × 1e9 of the priced answers
	latency     window
	ttft        window
	// noPrefill: until when (Unix ns) the target is known not to continue
	// from a prefill (it refused one or restarted the answer).
	noPrefill atomic.Int64

	mu        sync.Mutex
	reason    string
	lastErr   string
	lastErrAt time.Time
}

// ID is the model id.
func (t *Target) ID() string { return t.id }

// PrefillMemory is how long a target that refused a prefill, or answered
// one with a new reply, is passed over for mid-stream continuations.
const PrefillMemory = 10 * time.Minute

// RefusedPrefill records that the target did not continue from a prefill
// at now: continuations pass it over for PrefillMemory.
func (t *Target) RefusedPrefill(now time.Time) {
	t.noPrefill.Store(now.Add(PrefillMemory).UnixNano())
}

// TakesPrefill reports whether the target may be sent a continuation at
// now: it has not refused a prefill in the last PrefillMemory.
func (t *Target) TakesPrefill(now time.Time) bool {
	return now.UnixNano() >= t.noPrefill.Load()
}

// Check reports whether the target may be used at now, and until when it
// cools down when it may not.
func (t *Target) Check(now time.Time) (Availability, time.Time) {
	u := t.until.Load()
	if u == 0 {
		return Available, time.Time{}
	}
	if now.UnixNano() < u {
		return Cooling, time.Unix(0, u)
	}
	return HalfOpen, time.Unix(0, u)
}

// TryProbe claims the single probe of a half-open target. It returns a token
// for ReleaseProbe and whether the claim succeeded. A probe left unanswered
// longer than the registry's probe timeout may be claimed again.
func (t *Target) TryProbe(now time.Time) (int64, bool) {
	n := now.UnixNano()
	if n == 0 {
		n = 1
	}
	p := t.probeAt.Load()
	if p != 0 && time.Duration(n-p) < t.reg.probeTimeout {
		return 0, false
	}
	if !t.probeAt.CompareAndSwap(p, n) {
		return 0, false
	}
	return n, true
}

// ProbeFree reports whether a half-open target's probe is free to claim
// at now (none claimed, or the claim went stale). Planning uses it to place
// the target; the claim itself is made when the attempt is dispatched.
func (t *Target) ProbeFree(now time.Time) bool {
	p := t.probeAt.Load()
	return p == 0 || time.Duration(now.UnixNano()-p) >= t.reg.probeTimeout
}

// ReleaseProbe gives back a probe claim that produced no verdict (the probe
// was never sent, or the caller went away).
func (t *Target) ReleaseProbe(token int64) {
	if token != 0 {
		t.probeAt.CompareAndSwap(token, 0)
	}
}

// Attempt identifies one attempt for Succeeded and Recover: it remembers
// which cooldowns had been armed when the attempt was sent.
type Attempt uint64

// Begin counts an attempt starting. Every Begin must be followed by exactly
// one of Succeeded, Failed or Neutral.
func (t *Target) Begin() Attempt {
	t.requests.Add(1)
	t.inFlight.Add(1)
	return Attempt(t.armed.Load())
}

// Succeeded records a successful attempt and then Recovers with it; it
// reports whether the target recovered.
func (t *Target) Succeeded(a Attempt, latency, ttft time.Duration) (recovered bool) {
	t.inFlight.Add(-1)
	t.latency.add(latency)
	if ttft > 0 {
		t.ttft.add(ttft)
	}
	t.lastSuccess.Store(t.reg.now().UnixNano())
	return t.Recover(a)
}

// Recover clears the cooldown, its reason and any probe after a good answer
// to attempt a, and reports whether the target was cooling down or
// half-open before. A stream calls it when it commits, so a streamed probe
// settles at its first content, not minutes later at its end. An answer to
// an attempt sent before the current cooldown was armed clears nothing: it
// is older news than the failure, and letting it clear the cooldown would
// make a failing target flap.
func (t *Target) Recover(a Attempt) (recovered bool) {
	// The common case reads two atomics and takes no lock. A reason is set
	// only together with a cooldown end, so until == 0 means no reason.
	if t.until.Load() == 0 && t.probeAt.Load() == 0 {
		return false
	}
	t.mu.Lock()
	if t.armed.Load() != uint64(a) {
		t.mu.Unlock()
		return false
	}
	recovered = t.until.Load() != 0
	armedAt := t.armedAt.Load()
	t.clearLocked()
	t.mu.Unlock()
	if sh := t.reg.share(); recovered && sh != nil {
		sh.Recovered(t.id, time.Unix(0, armedAt))
	}
	return recovered
}

// clearLocked clears the cooldown, its reason and any probe; t.mu held.
func (t *Target) clearLocked() {
	t.until.Store(0)
	t.probeAt.Store(0)
	t.reason = ""
}

// Failed records a failed attempt with its reason and a caller-safe detail.
// A positive cooldown (re)arms the cooldown to now+cooldown; it returns the
// cooldown end (zero when none) and whether the target was not cooling down
// before.
func (t *Target) Failed(reason, detail string, cooldown time.Duration) (until time.Time, entered bool) {
	t.inFlight.Add(-1)
	t.failures.Add(1)
	now := t.reg.now()
	t.mu.Lock()
	t.lastErr = detail
	t.lastErrAt = now
	if cooldown <= 0 {
		t.mu.Unlock()
		return time.Time{}, false
	}
	until = now.Add(cooldown)
	entered = t.armLocked(reason, now, until)
	// Every request in flight to a broken target fails and re-arms its
	// cooldown by a little: the other replicas hear of a cooldown entered
	// and of one pushed more than shareSlack past what they know, not of
	// every re-arm.
	sh := t.reg.share()
	share := sh != nil && (entered || until.UnixNano() > t.sharedUntil.Load()+int64(shareSlack))
	if share {
		t.sharedUntil.Store(until.UnixNano())
	}
	t.mu.Unlock()
	if share {
		sh.Armed(t.id, reason, now, until)
	}
	return until, entered
}

// shareSlack is how far a re-armed cooldown may outlast the end the other
// replicas know before they are told again.
const shareSlack = time.Second

// armLocked arms the cooldown until until, armed at armedAt, for reason,
// and reports whether the target was not cooling down before; t.mu held.
// Bumping armed makes answers to attempts sent before it unable to clear
// it (see Recover).
func (t *Target) armLocked(reason string, armedAt, until time.Time) (entered bool) {
	prev := t.until.Load()
	t.armed.Add(1)
	t.until.Store(until.UnixNano())
	if a := armedAt.UnixNano(); a > t.armedAt.Load() {
		t.armedAt.Store(a)
	}
	t.probeAt.Store(0)
	t.reason = reason
	entered = prev == 0 || prev <= t.reg.now().UnixNano()
	if entered {
		t.cooldowns.Add(1)
	}
	return entered
}

// ApplyCooldown applies a cooldown another replica armed at armedAt, until
// until, without telling the Sharer. It changes nothing when the target
// already cools down at least as long, or when until has passed; else it
// arms the cooldown as Failed does (answers to attempts sent before it
// cannot clear it) and reports true.
func (t *Target) ApplyCooldown(reason string, armedAt, until time.Time) bool {
	if !until.After(t.reg.now()) {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.UnixNano() <= t.until.Load() {
		return false
	}
	t.armLocked(reason, armedAt, until)
	t.sharedUntil.Store(until.UnixNano())
	return true
}

// ApplyRecovery applies another replica's good answer that cleared the
// cooldown armed there at armedAt, without telling the Sharer. A cooldown
// armed here after armedAt is newer news than that answer and stays;
// otherwise the cooldown (or half-open state) is cleared as Recover clears
// it, and ApplyRecovery reports whether there was one.
func (t *Target) ApplyRecovery(armedAt time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.until.Load() == 0 || t.armedAt.Load() > armedAt.UnixNano() {
		return false
	}
	t.clearLocked()
	return true
}

// Neutral records an attempt that says nothing about the target's health:
// the caller went away, or the upstream rejected the caller's request.
func (t *Target) Neutral() {
	t.inFlight.Add(-1)
}

// AddUsage counts the tokens of one answer and, when priced, its cost in
// USD (atomics on the target's own state: no lock shared by all requests).
func (t *Target) AddUsage(in, out int64, cost float64, priced bool) {
	if in > 0 {
		t.tokensIn.Add(uint64(in))
	}
	if out > 0 {
		t.tokensOut.Add(uint64(out))
	}
	if priced && cost > 0 {
		t.costNanos.Add(uint64(cost*1e9 + 0.5))
	}
}

func (t *Target) status(now time.Time) Status {
	st := Status{
		State:     StateHealthy,
		Requests:  t.requests.Load(),
		Failures:  t.failures.Load(),
		InFlight:  t.inFlight.Load(),
		Cooldowns: t.cooldowns.Load(),
		TokensIn:  t.tokensIn.Load(),
		TokensOut: t.tokensOut.Load(),
		CostUSD:   float64(t.costNanos.Load()) / 1e9,
	}
	if ls := t.lastSuccess.Load(); ls != 0 {
		st.LastSuccessAt = time.Unix(0, ls)
	}
	st.LatencyP50, st.LatencyP95 = t.latency.percentiles()
	st.TTFTP50, _ = t.ttft.percentiles()
	t.mu.Lock()
	st.LastError, st.LastErrorAt = t.lastErr, t.lastErrAt
	reason := t.reason
	t.mu.Unlock()
	if u := t.until.Load(); u != 0 {
		st.CooldownUntil = time.Unix(0, u)
		st.Reason = reason
		st.State = StateCooldown
		if now.UnixNano() >= u {
			st.State = StateProbing
		}
		st.ProbeInFlight = t.probeAt.Load() != 0
	}
	return st
}

// TTFTP95 is the p95 of the target's recent times to first content, and
// false when fewer than min samples are known.
func (t *Target) TTFTP95(min int) (time.Duration, bool) {
	if n := t.ttft.n.Load(); n < uint64(min) {
		return 0, false
	}
	_, p95 := t.ttft.percentiles()
	return p95, true
}

// window keeps the most recent samples of a duration, lock-free: writers
// claim a slot with one atomic add; readers copy and sort.
type window struct {
	n atomic.Uint64
	v [windowSize]atomic.Int64
}

const windowSize = 256

func (w *window) add(d time.Duration) {
	i := w.n.Add(1) - 1
	w.v[i%windowSize].Store(int64(d))
}

// percentiles returns the p50 and p95 of the recent samples.
func (w *window) percentiles() (p50, p95 time.Duration) {
	n := w.n.Load()
	if n == 0 {
		return 0, 0
	}
	if n > windowSize {
		n = windowSize
	}
	buf := make([]int64, n)
	for i := range buf {
		buf[i] = w.v[i].Load()
	}
	slices.Sort(buf)
	return time.Duration(buf[pct(len(buf), 50)]), time.Duration(buf[pct(len(buf), 95)])
}

// pct is the index of the p-th percentile (nearest rank) in n sorted samples.
func pct(n, p int) int {
	i := (n*p + 99) / 100
	if i < 1 {
		i = 1
	}
	return i - 1
}
