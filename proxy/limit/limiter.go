package limit

import (
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Limiter.
type Options struct {
	// Store holds the counters; nil means a new in-process Memory store.
	Store Store
	// Now is the clock Ticket.Done and the sweeper read; nil means
	// time.Now.
	Now func() time.Time
	// SweepEvery, if positive, starts a goroutine that drops idle scopes'
	// state at this interval until Close (when the Store is a Sweeper).
	SweepEvery time.Duration
}

// Limiter admits requests against the limits of their scopes.
type Limiter struct {
	store Store
	batch BatchStore // store, if it is one
	now   func() time.Time
	stop  chan struct{}
	done  chan struct{}
	once  sync.Once
	// rejected counts rejections per scope (Key → *atomic.Int64), touched
	// only when a request is refused.
	rejected sync.Map
}

// New returns a Limiter.
func New(opts Options) *Limiter {
	l := &Limiter{store: opts.Store, now: opts.Now}
	if l.store == nil {
		l.store = NewMemory()
	}
	l.batch, _ = l.store.(BatchStore)
	if l.now == nil {
		l.now = time.Now
	}
	if opts.SweepEvery > 0 {
		t := time.NewTicker(opts.SweepEvery)
		l.startSweeper(t.C, t.Stop)
	}
	return l
}

// startSweeper sweeps on every tick until Close, if the store can sweep.
func (l *Limiter) startSweeper(tick <-chan time.Time, stopTicker func()) {
	sw, ok := l.store.(Sweeper)
	if !ok {
		stopTicker()
		return
	}
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.done)
		defer stopTicker()
		for {
			select {
			case <-l.stop:
				return
			case <-tick:
				sw.Sweep(l.now())
			}
		}
	}()
}

// Close stops the sweeper, if any. It is safe to call more than once.
func (l *Limiter) Close() error {
	l.once.Do(func() {
		if l.stop != nil {
			close(l.stop)
			<-l.done
		}
	})
	return nil
}

// Sweep drops the state of idle scopes now, if the Store can, and returns
// how many it dropped.
func (l *Limiter) Sweep(now time.Time) int {
	if sw, ok := l.store.(Sweeper); ok {
		return sw.Sweep(now)
	}
	return 0
}

// SeedSpend adds usd, spent in key's period p starting at start, to what
// the budget of key counts: the usage ledger calls it at start-up so a
// restart does not reset a period's spend. Call it once per scope and
// period.
func (l *Limiter) SeedSpend(key Key, p Period, start time.Time, usd float64) {
	l.store.SeedSpend(key, p, start, usd)
}

func (l *Limiter) countRejection(key Key) {
	v, ok := l.rejected.Load(key)
	if !ok {
		v, _ = l.rejected.LoadOrStore(key, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Rejected returns how many requests key's limits refused since the
// Limiter started (a cumulative counter: the dashboard derives a rate).
func (l *Limiter) Rejected(key Key) int64 {
	if v, ok := l.rejected.Load(key); ok {
		return v.(*atomic.Int64).Load()
	}
	return 0
}

// Status returns what key has counted at now: requests in flight, requests
// and tokens in the windows, spend in the current periods.
func (l *Limiter) Status(key Key, now time.Time) Status { return l.store.Status(key, now) }

// Acquire admits a request at now against every subject, with
// estimatedTokens counted against the token windows until Done replaces
// them with the real figure. It is all-or-nothing: on a rejection no
// subject keeps any count of the request. Subjects without limits are
// skipped. now should read the same clock as Options.Now. The caller must
// end the returned Ticket with Done (or Cancel): a Ticket never ended holds
// its concurrency slots for good.
func (l *Limiter) Acquire(now time.Time, estimatedTokens int64, subjects ...Subject) (*Ticket, *Rejection) {
	if l.batch != nil && limited(subjects) > 1 {
		return l.acquireBatch(l.batch, now, estimatedTokens, subjects)
	}
	t := &Ticket{l: l}
	t.adm = t.buf[:0]
	for i := range subjects {
		s := &subjects[i]
		if s.Limits.IsZero() {
			continue
		}
		a, u, rej := l.store.Admit(s.Key, s.Limits, now, estimatedTokens)
		if rej != nil {
			for j := range t.adm {
				l.store.Revert(&t.adm[j])
			}
			l.countRejection(s.Key)
			return nil, rej
		}
		t.adm = append(t.adm, a)
		t.headers.add(&u)
	}
	return t, nil
}

// limited counts the subjects with a limit.
func limited(subjects []Subject) int {
	n := 0
	for i := range subjects {
		if !subjects[i].Limits.IsZero() {
			n++
		}
	}
	return n
}

// acquireBatch is Acquire through a BatchStore: every limited subject is
// admitted at once, and if any refuses, the others are reverted and the
// first refusal in subject order is the answer, as on the one-by-one path.
func (l *Limiter) acquireBatch(bs BatchStore, now time.Time, tokens int64, subjects []Subject) (*Ticket, *Rejection) {
	var (
		subBuf [3]Subject
		useBuf [3]Usage
		rejBuf [3]*Rejection
	)
	subs := subBuf[:0]
	for i := range subjects {
		if !subjects[i].Limits.IsZero() {
			subs = append(subs, subjects[i])
		}
	}
	t := &Ticket{l: l}
	t.adm = t.buf[:0]
	if len(subs) > len(t.buf) {
		t.adm = make([]Admission, 0, len(subs))
	}
	t.adm = t.adm[:len(subs)]
	use, rej := useBuf[:0], rejBuf[:0]
	if len(subs) > len(useBuf) {
		use, rej = make([]Usage, 0, len(subs)), make([]*Rejection, 0, len(subs))
	}
	use, rej = use[:len(subs)], rej[:len(subs)]
	bs.AdmitBatch(subs, now, tokens, t.adm, use, rej)
	first := -1
	admitted := t.adm[:0]
	for i := range subs {
		switch {
		case rej[i] == nil:
			admitted = append(admitted, t.adm[i])
		case first < 0:
			first = i
		}
	}
	if first >= 0 {
		if len(admitted) > 0 {
			bs.RevertBatch(admitted)
		}
		l.countRejection(subs[first].Key)
		return nil, rej[first]
	}
	for i := range use {
		t.headers.add(&use[i])
	}
	return t, nil
}

// add keeps, for requests and for tokens, the scope with the fewest
// remaining under its per-minute limit.
func (h *Headers) add(u *Usage) {
	{
		if u.RPM > 0 {
			rem := max(u.RPM-u.RPMUsed, 0)
			if !h.HasRequests || rem < h.RemainingRequests {
				h.HasRequests, h.LimitRequests, h.RemainingRequests, h.ResetRequests = true, u.RPM, rem, u.RPMReset
			}
		}
		if u.TPM > 0 {
			rem := max(u.TPM-u.TPMUsed, 0)
			if !h.HasTokens || rem < h.RemainingTokens {
				h.HasTokens, h.LimitTokens, h.RemainingTokens, h.ResetTokens = true, u.TPM, rem, u.TPMReset
			}
		}
	}
}

// Ticket is an admitted request. Call Done when its answer is complete (a
// stream: at its end) or abandoned.
type Ticket struct {
	l       *Limiter
	done    atomic.Bool
	headers Headers
	adm     []Admission
	buf     [3]Admission // caller key, model, target: no second allocation
}

// Headers returns the figures of the rate-limit headers, as they stood
// when the request was admitted.
func (t *Ticket) Headers() Headers { return t.headers }

// Done ends the request at the Limiter's clock: tokens (the real total)
// replace the estimate in the token windows, costUSD is added to the
// budgets' spend, and the concurrency slots are released. Only the first
// call counts, so Done is safe on a deferred path as well as on the normal
// one; a nil Ticket is ignored.
func (t *Ticket) Done(tokens int64, costUSD float64) {
	if t == nil {
		return
	}
	t.DoneAt(t.l.now(), tokens, costUSD)
}

// DoneAt is Done at now.
func (t *Ticket) DoneAt(now time.Time, tokens int64, costUSD float64) {
	if t == nil || !t.done.CompareAndSwap(false, true) {
		return
	}
	if t.l.batch != nil && len(t.adm) > 1 {
		t.l.batch.SettleBatch(t.adm, now, tokens, costUSD)
		return
	}
	for i := range t.adm {
		t.l.store.Settle(&t.adm[i], now, tokens, costUSD)
	}
}

// Cancel ends the request as if it had never been admitted: its requests,
// estimate and slots are taken back from every scope. It is for a request
// that was never sent, such as one whose every target is at its own limit.
// Like Done, only the first of Done and Cancel counts.
func (t *Ticket) Cancel() {
	if t == nil || !t.done.CompareAndSwap(false, true) {
		return
	}
	if t.l.batch != nil && len(t.adm) > 1 {
		t.l.batch.RevertBatch(t.adm)
		return
	}
	for i := range t.adm {
		t.l.store.Revert(&t.adm[i])
	}
}
