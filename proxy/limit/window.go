package limit

import "time"

// maxExactLog is the largest request limit counted with an exact sliding
// log (8 bytes per admission). Above it a request window is a slotted
// counter, like the token windows. A variable only so tests can lower it.
var maxExactLog int64 = 1 << 16

// slotFor is the slot width of a slotted window: 1 s for a minute window,
// 1 min for a day window.
func slotFor(window time.Duration) time.Duration {
	if window <= time.Minute {
		return time.Second
	}
	return time.Minute
}

// ringLog is an exact sliding log: the admission times (unix nanoseconds,
// non-decreasing) of the requests still in the window, in a ring of at most
// limit entries. The ring grows with the traffic and shrinks after it, so a
// high limit costs memory only when it is used: 8 bytes per request in the
// window.
type ringLog struct {
	t     []int64
	head  int // index of the oldest entry
	n     int // entries in the window
	last  int64
	limit int
}

// minLog is the smallest ring allocated, and the size below which it is not
// shrunk.
const minLog = 8

// setLimit applies a changed limit: on a lower one the newest entries are
// kept (the older ones cannot matter: the window is full without them).
func (r *ringLog) setLimit(limit int) {
	r.limit = limit
	if r.n > limit {
		r.head = (r.head + r.n - limit) % len(r.t)
		r.n = limit
	}
	if len(r.t) > limit {
		r.realloc(limit)
	}
}

// realloc moves the entries to a ring of size entries.
func (r *ringLog) realloc(size int) {
	t := make([]int64, size)
	for i := range r.n {
		t[i] = r.t[(r.head+i)%len(r.t)]
	}
	r.t, r.head = t, 0
}

// expire drops the entries that have left the window at now.
func (r *ringLog) expire(now int64, window time.Duration) {
	for r.n > 0 && now-r.t[r.head] >= int64(window) {
		r.head = (r.head + 1) % len(r.t)
		r.n--
	}
	if len(r.t) > minLog && r.n < len(r.t)/4 {
		r.realloc(len(r.t) / 2)
	}
}

// check reports whether one more fits at now, and if not how long until the
// oldest leaves. expire must have run.
func (r *ringLog) check(now int64, window time.Duration) (bool, time.Duration) {
	if r.n < r.limit {
		return true, 0
	}
	return false, time.Duration(r.t[r.head] + int64(window) - now)
}

// push records an admission at now and returns the time recorded (never
// before the newest entry, so the log stays ordered).
func (r *ringLog) push(now int64) int64 {
	if now < r.last {
		now = r.last
	}
	if r.n == len(r.t) {
		r.realloc(min(max(2*len(r.t), minLog), r.limit))
	}
	r.t[(r.head+r.n)%len(r.t)] = now
	r.n++
	r.last = now
	return now
}

// remove drops one entry recorded at at (a reverted admission), searching
// from the newest, where it almost always is.
func (r *ringLog) remove(at int64) {
	for k := r.n - 1; k >= 0; k-- {
		i := (r.head + k) % len(r.t)
		if r.t[i] != at {
			continue
		}
		for j := k; j < r.n-1; j++ {
			r.t[(r.head+j)%len(r.t)] = r.t[(r.head+j+1)%len(r.t)]
		}
		r.n--
		return
	}
}

// untilFree is how long until the oldest entry leaves the window.
func (r *ringLog) untilFree(now int64, window time.Duration) time.Duration {
	if r.n == 0 {
		return 0
	}
	return time.Duration(r.t[r.head] + int64(window) - now)
}

// slotted is a sliding window of counters in fixed slots. It keeps one slot
// more than the window holds, so an amount counts for at least the whole
// window and at most one slot longer: it never under-counts. The newest
// slot's index and end are kept so the common case (now in the newest slot)
// needs no division.
type slotted struct {
	c       []int64
	slot    int64 // nanoseconds
	head    int64 // epoch (time/slot) of the newest slot
	headIdx int   // index of the newest slot in c
	headEnd int64 // end of the newest slot, unix nanoseconds
	sum     int64
}

func newSlotted(window time.Duration) *slotted {
	slot := slotFor(window)
	return &slotted{c: make([]int64, int(window/slot)+1), slot: int64(slot)}
}

// index is the index of epoch e in c, or -1 if e is not in the window.
func (s *slotted) index(e int64) int {
	back := s.head - e
	n := int64(len(s.c))
	if back < 0 || back >= n {
		return -1
	}
	return int((int64(s.headIdx) - back + n) % n)
}

// advance moves the window to now, clearing the slots that left it.
func (s *slotted) advance(now int64) {
	if now < s.headEnd {
		return
	}
	e := now / s.slot
	n := len(s.c)
	if steps := e - s.head; steps >= int64(n) {
		clear(s.c)
		s.sum, s.headIdx = 0, 0
	} else {
		for range steps {
			s.headIdx++
			if s.headIdx == n {
				s.headIdx = 0
			}
			s.sum -= s.c[s.headIdx]
			s.c[s.headIdx] = 0
		}
	}
	s.head, s.headEnd = e, (e+1)*s.slot
}

// slotOf is the index of the slot of t, or -1 if t is out of the window.
func (s *slotted) slotOf(t int64) int {
	switch {
	case t >= s.headEnd:
		return -1
	case t >= s.headEnd-s.slot:
		return s.headIdx
	}
	return s.index(t / s.slot)
}

// add counts v at now.
func (s *slotted) add(now, v int64) {
	s.advance(now)
	if i := s.slotOf(now); i >= 0 {
		s.c[i] += v
		s.sum += v
	}
}

// sub takes back v counted at at, if its slot is still in the window.
func (s *slotted) sub(at, v int64) {
	i := s.slotOf(at)
	if i < 0 {
		return
	}
	v = min(v, s.c[i])
	s.c[i] -= v
	s.sum -= v
}

// each calls f with every slot's epoch and count, oldest first.
func (s *slotted) each(f func(e, v int64) bool) {
	n := len(s.c)
	i := s.headIdx
	for k := range n {
		if i++; i == n {
			i = 0
		}
		if !f(s.head-int64(n)+1+int64(k), s.c[i]) {
			return
		}
	}
}

// untilBelow is how long from now until the counted sum drops to at most
// target, as the oldest slots leave. advance must have run.
func (s *slotted) untilBelow(now, target int64) time.Duration {
	if s.sum <= target {
		return 0
	}
	n := int64(len(s.c))
	left := s.sum
	var d time.Duration
	s.each(func(e, v int64) bool {
		left -= v
		if left <= target {
			// Slot e leaves when the newest slot is e+n.
			d = time.Duration((e+n)*s.slot - now)
			return false
		}
		return true
	})
	return d
}

// empty reports whether nothing is counted. advance must have run.
func (s *slotted) empty() bool { return s.sum == 0 }

// reqWindow counts requests in a sliding window: an exact log up to
// maxExactLog, a slotted counter above.
type reqWindow struct {
	window time.Duration
	limit  int64
	log    ringLog
	sl     *slotted
}

// setLimit applies a (possibly changed) limit. A change within one mode
// keeps the counts (the log keeps its newest entries); a change across
// maxExactLog converts the counts, conservatively.
func (w *reqWindow) setLimit(limit int64, now int64) {
	if limit == w.limit {
		return
	}
	wasExact := w.limit > 0 && w.limit <= maxExactLog
	w.limit = limit
	switch {
	case limit <= 0:
		w.log, w.sl = ringLog{}, nil
	case limit <= maxExactLog:
		if !wasExact && w.sl != nil {
			// Slotted to exact: each counted request becomes an entry
			// at the end of its slot (or now), so none leaves early.
			sl := w.sl
			w.sl = nil
			w.log = ringLog{limit: int(limit)}
			sl.advance(now)
			skip := max(sl.sum-limit, 0)
			sl.each(func(e, c int64) bool {
				at := min((e+1)*sl.slot-1, now)
				for ; c > 0; c-- {
					if skip > 0 {
						skip--
						continue
					}
					w.log.push(at)
				}
				return true
			})
			return
		}
		w.log.setLimit(int(limit))
	default:
		if wasExact {
			sl := newSlotted(w.window)
			for k := 0; k < w.log.n; k++ {
				sl.add(w.log.t[(w.log.head+k)%len(w.log.t)], 1)
			}
			sl.advance(now)
			w.sl, w.log = sl, ringLog{}
		} else if w.sl == nil {
			w.sl = newSlotted(w.window)
		}
	}
}

// check reports whether one more request fits at now and if not, how long
// until one does.
func (w *reqWindow) check(now int64) (bool, time.Duration) {
	if w.sl != nil {
		w.sl.advance(now)
		if w.sl.sum < w.limit {
			return true, 0
		}
		return false, w.sl.untilBelow(now, w.limit-1)
	}
	w.log.expire(now, w.window)
	return w.log.check(now, w.window)
}

// admit records one request at now (check must have passed) and returns the
// time recorded, for a revert.
func (w *reqWindow) admit(now int64) int64 {
	if w.sl != nil {
		w.sl.add(now, 1)
		return now
	}
	return w.log.push(now)
}

func (w *reqWindow) revert(at int64) {
	if w.sl != nil {
		w.sl.sub(at, 1)
		return
	}
	w.log.remove(at)
}

// count is the number of requests in the window.
func (w *reqWindow) count(now int64) int64 {
	if w.sl != nil {
		w.sl.advance(now)
		return w.sl.sum
	}
	w.log.expire(now, w.window)
	return int64(w.log.n)
}

func (w *reqWindow) untilFree(now int64) time.Duration {
	if w.sl != nil {
		return w.sl.untilBelow(now, w.sl.sum-1)
	}
	return w.log.untilFree(now, w.window)
}
