package tui

import (
	"fmt"
	"strings"
	"time"
)

// coalesceWindow is how far apart two repeats may be and still share a line.
const coalesceWindow = time.Minute

// feedLine is one line of the event feed: one event, or several that read
// as one (repeats, or the failed attempts that led to a failover).
type feedLine struct {
	at     time.Time // time of the latest event on the line
	kind   string
	model  string
	target string // for a failover: the target that failed
	reason string
	detail string
	// servedBy is the target that served the request, for failovers.
	servedBy string
	// count is how many events (failed attempts, for a failover) the line
	// stands for.
	count int
}

// sameAs reports whether e repeats the line, for coalescing.
func (l feedLine) sameAs(o feedLine) bool {
	if l.kind != o.kind || l.model != o.model || l.target != o.target ||
		l.reason != o.reason || l.servedBy != o.servedBy {
		return false
	}
	switch l.kind {
	case EventAttemptFailed, EventFailover, EventCooldownEntered, EventCooldownLeft,
		EventProbeOK, EventProbeFailed:
		// Details of these (error texts, durations) vary between repeats.
		return true
	}
	return l.detail == o.detail
}

func lineFor(e Event) feedLine {
	l := feedLine{
		at: e.Time, kind: e.Kind, model: e.Model, target: e.Target,
		reason: e.Reason, detail: e.Detail, count: 1,
	}
	if e.Kind == EventFailover {
		l.target, l.servedBy, l.detail = e.Detail, e.Target, ""
	}
	return l
}

// coalesceLookback is how many earlier lines a new event may join, so
// repeats still coalesce when other events are interleaved with them.
const coalesceLookback = 8

// buildFeed turns events (oldest first) into feed lines (oldest first, by
// their latest event): repeats within a minute share a line with a count,
// and the failed attempts that a failover followed read as one line with it:
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
	// moveToEnd takes line i out and appends it, as it is now the latest.
	moveToEnd := func(i int) {
		l := lines[i]
		lines = append(lines[:i], lines[i+1:]...)
		lines = append(lines, l)
	}
	for _, e := range events {
		l := lineFor(e)
		if l.kind == EventFailover {
			i := find(l.at, func(o feedLine) bool {
				return o.kind == EventAttemptFailed && o.model == l.model &&
					(l.target == "" || o.target == l.target)
			})
			if i >= 0 {
				// The attempts that led to this failover.
				o := lines[i]
				o.kind, o.servedBy, o.at, o.detail = EventFailover, l.servedBy, l.at, ""
				if l.reason != "" {
					o.reason = l.reason
				}
				lines = append(lines[:i], lines[i+1:]...)
				l = o
			}
		}
		i := find(l.at, func(o feedLine) bool { return o.sameAs(l) })
		if i < 0 {
			lines = append(lines, l)
			continue
		}
		lines[i].count += l.count
		lines[i].at = l.at
		if l.detail != "" {
			lines[i].detail = l.detail
		}
		moveToEnd(i)
	}
	return lines
}

// text is the line's wording, without its time.
func (l feedLine) text() string {
	times := ""
	if l.count > 1 {
		times = fmt.Sprintf(" ×%d", l.count)
	}
	join := func(parts ...string) string {
		var b []string
		for _, p := range parts {
			if p != "" {
				b = append(b, p)
			}
		}
		return strings.Join(b, " ")
	}
	who := l.model + ":"
	if l.target != "" && l.target != l.model {
		who = l.model + ": " + l.target
	}
	switch l.kind {
	case EventAttemptFailed:
		return join(who, orDefault(l.reason, "failed")) + times
	case EventFailover:
		return join(who, l.reason) + times + " → served by " + orDefault(l.servedBy, "?")
	case EventCooldownEntered:
		s := join(l.model, "cooling down:", orDefault(l.reason, "?"))
		if l.detail != "" {
			s += " (" + l.detail + ")"
		}
		return s + times
	case EventCooldownLeft:
		s := l.model + " left cooldown"
		if l.detail != "" {
			s += " → " + l.detail
		}
		return s + times
	case EventProbeOK:
		return l.model + " probe ok" + times
	case EventProbeFailed:
		return join(l.model, "probe failed:", orDefault(l.reason, "?")) + times
	case EventConfigChanged:
		return join("config changed:", l.model, l.detail) + times
	}
	return join(l.kind, who, l.reason, l.detail) + times
}

// mentions reports whether the line is about the named model.
func (l feedLine) mentions(name string) bool {
	return name != "" && (l.model == name || l.target == name || l.servedBy == name)
}

// eventMentions reports whether e is about the named model.
func eventMentions(e Event, name string) bool {
	return name != "" && (e.Model == name || e.Target == name ||
		(e.Kind == EventFailover && e.Detail == name))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
