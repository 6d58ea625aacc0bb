package tui

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const (
	// coalesceWindow is how far apart two repeats may be and still share a
	// line.
	coalesceWindow = time.Minute
	// coalesceLookback is how many earlier lines a new event may join, so
	// repeats still coalesce when other events are interleaved with them.
	coalesceLookback = 8
)

// feedLine is one line of the event feed: one event, or several that read
// as one (repeats, or the failed attempts that led to a failover and the
// target that served the request in the end).
type feedLine struct {
	at     time.Time // time of the latest event on the line
	kind   string
	model  string
	target string // for a failover: the target that failed
	reason string
	detail string
	// next is the target a failover moved to; served says it answered.
	next   string
	served bool
	// count is how many events (failed attempts, for a failover) the line
	// stands for.
	count int
	// until is the end of a cooldown, when the event's detail gives it.
	until time.Time
	// revFrom and revTo are the revisions a line of config reloads
	// spans, when the events' details name them.
	revFrom, revTo int64
}

// subject is who a line is about: the target, or the model asked for.
func (l feedLine) subject() string { return orDefault(l.target, l.model) }

// sameAs reports whether o repeats the line, for coalescing.
func (l feedLine) sameAs(o feedLine) bool {
	if l.kind != o.kind || l.model != o.model || l.target != o.target ||
		l.reason != o.reason || l.next != o.next || l.served != o.served {
		return false
	}
	switch l.kind {
	case EventAttemptFailed, EventFailover, EventCooldownEntered, EventCooldownLeft:
		// Details of these (error texts, durations) vary between repeats.
		return true
	case EventConfigReloaded:
		// A burst of writes (a setup script) is one line: its revisions
		// are kept as a range.
		return l.revTo > 0 && o.revTo > 0 || l.detail == o.detail
	}
	return l.detail == o.detail
}

func lineFor(e Event) feedLine {
	l := feedLine{
		at: e.Time, kind: e.Kind, model: e.Model, target: e.Target,
		reason: e.Reason, detail: e.Detail, count: 1,
	}
	switch e.Kind {
	case EventFailover:
		// The server words it "from gpt-4o-primary"; a bare name works too.
		l.target, l.next, l.detail = strings.TrimPrefix(e.Detail, "from "), e.Target, ""
	case EventServed:
		l.target, l.next, l.served = "", e.Target, true
	case EventConfigReloaded:
		if n, err := strconv.ParseInt(strings.TrimPrefix(e.Detail, "revision "), 10, 64); err == nil && n > 0 {
			l.revFrom, l.revTo = n, n
		}
	case EventCooldownEntered:
		// "until 2026-11-26T06:37:31Z" reads better as a local clock time.
		if ts, ok := strings.CutPrefix(e.Detail, "until "); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				l.until, l.detail = t, ""
			}
		}
	}
	return l
}

// buildFeed turns events (oldest first) into feed lines (oldest first, by
// their latest event): repeats within a minute share a line with a count,
// and the failed attempts, the failover they caused and the target that
// served the request in the end read as one line:
//
//	chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary
func buildFeed(events []Event) []feedLine {
	var lines []feedLine
	// find returns the index of the latest recent line that ok accepts.
	find := func(at time.Time, ok func(feedLine) bool) int {
		for i := len(lines) - 1; i >= 0 && i >= len(lines)-coalesceLookback; i-- {
			if at.Sub(lines[i].at) > coalesceWindow {
				break
			}
			if ok(lines[i]) {
				return i
			}
		}
		return -1
	}
	// take removes line i and returns it.
	take := func(i int) feedLine {
		l := lines[i]
		lines = append(lines[:i], lines[i+1:]...)
		return l
	}
	for _, e := range events {
		l := lineFor(e)
		switch l.kind {
		case EventFailover:
			// The failed attempts that led to this failover.
			i := find(l.at, func(o feedLine) bool {
				return o.kind == EventAttemptFailed && o.model == l.model &&
					(l.target == "" || o.target == l.target)
			})
			if i >= 0 {
				o := take(i)
				o.kind, o.next, o.at, o.detail = EventFailover, l.next, l.at, ""
				if l.reason != "" {
					o.reason = l.reason
				}
				l = o
			}
		case EventServed:
			// The failover (or failed attempts) this request got over.
			i := find(l.at, func(o feedLine) bool {
				return o.model == l.model && !o.served &&
					((o.kind == EventFailover && o.next == l.next) || o.kind == EventAttemptFailed)
			})
			if i >= 0 {
				o := take(i)
				o.kind, o.next, o.served, o.at, o.detail = EventFailover, l.next, true, l.at, ""
				l = o
			}
		}
		i := find(l.at, func(o feedLine) bool { return o.sameAs(l) })
		if i < 0 {
			lines = append(lines, l)
			continue
		}
		o := take(i)
		o.count += l.count
		o.at = l.at
		if l.detail != "" {
			o.detail = l.detail
		}
		if !l.until.IsZero() {
			o.until = l.until // a repeated cooldown ends when the last one does
		}
		if l.revTo > 0 {
			o.revFrom, o.revTo = min(o.revFrom, l.revFrom), max(o.revTo, l.revTo)
		}
		lines = append(lines, o)
	}
	return lines
}

// text is the line's wording, without its time; times in it are shown in
// loc.
func (l feedLine) text(loc *time.Location) string {
	times := ""
	if l.count > 1 {
		times = fmt.Sprintf(" ×%d", l.count)
	}
	who := l.model + ":"
	if l.target != "" && l.target != l.model {
		who = l.model + ": " + l.target
	}
	if l.model == "" {
		who = l.target + ":"
	}
	switch l.kind {
	case EventAttemptFailed:
		return join(who, orDefault(l.reason, "failed")) + times
	case EventFailover:
		to := " → " + orDefault(l.next, "?")
		if l.served {
			to = " → served by " + orDefault(l.next, "?")
		}
		return join(who, l.reason) + times + to
	case EventServed:
		return l.model + ": served by " + orDefault(l.next, "?") + times
	case EventCooldownEntered:
		s := join(l.subject(), "cooling down:", orDefault(l.reason, "?"))
		switch {
		case !l.until.IsZero():
			s += " (until " + clock(l.until, loc) + ")"
		case l.detail != "":
			s += " (" + l.detail + ")"
		}
		return s + times
	case EventCooldownLeft:
		return l.subject() + " left cooldown" + times
	case EventProbe:
		s := join(l.subject(), "probe", orDefault(l.detail, "?"))
		if l.reason != "" {
			s += ": " + l.reason
		}
		return s + times
	case EventConfigReloaded:
		if l.revFrom < l.revTo {
			return fmt.Sprintf("config reloaded%s (revisions %d–%d)", times, l.revFrom, l.revTo)
		}
		return join("config reloaded", l.detail) + times
	}
	return join(l.kind, who, l.reason, l.detail) + times
}

// join joins the non-empty parts with spaces.
func join(parts ...string) string {
	var b []string
	for _, p := range parts {
		if p != "" {
			b = append(b, p)
		}
	}
	return strings.Join(b, " ")
}

// mentions reports whether the line is about the named model.
func (l feedLine) mentions(name string) bool {
	return name != "" && (l.model == name || l.target == name || l.next == name)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
