package health

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Event kinds.
const (
	// EventAttemptFailed: one upstream attempt failed (Reason, Detail).
	EventAttemptFailed = "attempt_failed"
	// EventFailover: the request moved from one target to the next
	// (Target is the next one, Detail names the previous one).
	EventFailover = "failover"
	// EventCooldownEntered: Target went into cooldown (Reason, Detail gives
	// the length).
	EventCooldownEntered = "cooldown_entered"
	// EventCooldownLeft: Target answered again after a cooldown.
	EventCooldownLeft = "cooldown_left"
	// EventProbe: one request tested a target whose cooldown ran out
	// (Detail: started, succeeded, failed).
	EventProbe = "probe"
	// EventServed: a request that needed more than one attempt (or a
	// probe) was served (Detail: the attempt trail).
	EventServed = "served"
	// EventConfigReloaded: a new configuration snapshot is live (Detail
	// names the revision).
	EventConfigReloaded = "config_reloaded"
	// EventLimited: a limit refused a request (Reason: the limit's code,
	// such as caller_key_rpm) or a target at its provider_limit was
	// skipped (Target set, Reason local_rate_limit); Detail says which
	// limit and when it frees.
	EventLimited = "limited"
)

// Event is one routing event for the dashboard. Plain successes are not
// events (the counters cover them), so the ring holds the interesting part.
type Event struct {
	// Seq numbers events from 1, in publication order.
	Seq  uint64
	Time time.Time
	Kind string
	// Model is the alias the caller asked for.
	Model string
	// Target is the display name of the direct model concerned.
	Target string
	// TargetID is its id.
	TargetID string
	Reason   string
	Detail   string
	CallID   string
}

// ring is a lock-free ring of the most recent events. Writers take a
// sequence number with one atomic add and publish into the slot; readers
// detect slots that were overwritten or are still being written.
type ring struct {
	next  atomic.Uint64
	slots []atomic.Pointer[Event]
}

type subscriber struct {
	ch      chan Event
	mu      sync.RWMutex
	closed  bool
	dropped atomic.Uint64
}

// Publish records an event (stamping Seq, and Time when zero) and offers it
// to every subscriber without blocking: a subscriber whose buffer is full
// misses it. It returns the event's sequence number.
func (r *Registry) Publish(ev Event) uint64 {
	seq := r.ring.next.Add(1)
	ev.Seq = seq
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	e := ev
	r.ring.slots[seq%uint64(len(r.ring.slots))].Store(&e)
	for _, s := range *r.subs.Load() {
		s.mu.RLock()
		if !s.closed {
			select {
			case s.ch <- ev:
			default:
				s.dropped.Add(1)
			}
		}
		s.mu.RUnlock()
	}
	return seq
}

// Events returns the events published after since that the ring still
// holds, oldest first, and the cursor to pass next time. A cursor from the
// future (another process) is treated as 0.
func (r *Registry) Events(since uint64) ([]Event, uint64) {
	last := r.ring.next.Load()
	if since > last {
		since = 0
	}
	if since == last {
		return nil, last
	}
	n := uint64(len(r.ring.slots))
	start := since + 1
	if last-since > n {
		start = last - n + 1
	}
	out := make([]Event, 0, last-start+1)
	for seq := start; seq <= last; seq++ {
		e := r.ring.slots[seq%n].Load()
		switch {
		case e == nil || e.Seq < seq:
			// Claimed but not written yet: stop here, the caller gets it
			// next time.
			return out, seq - 1
		case e.Seq > seq:
			continue // overwritten by a newer lap
		}
		out = append(out, *e)
	}
	return out, last
}

// Subscribe returns a channel that receives every event published from now
// on until ctx is done, when the channel is closed. Events that do not fit
// in the buffer are dropped for this subscriber (use Events to catch up).
func (r *Registry) Subscribe(ctx context.Context, buffer int) <-chan Event {
	if buffer <= 0 {
		buffer = 256
	}
	s := &subscriber{ch: make(chan Event, buffer)}
	r.subMu.Lock()
	cur := *r.subs.Load()
	next := make([]*subscriber, 0, len(cur)+1)
	next = append(append(next, cur...), s)
	r.subs.Store(&next)
	r.subMu.Unlock()
	go func() {
		<-ctx.Done()
		r.subMu.Lock()
		cur := *r.subs.Load()
		next := make([]*subscriber, 0, len(cur))
		for _, o := range cur {
			if o != s {
				next = append(next, o)
			}
		}
		r.subs.Store(&next)
		r.subMu.Unlock()
		s.mu.Lock()
		s.closed = true
		close(s.ch)
		s.mu.Unlock()
	}()
	return s.ch
}
