package tui

import (
	"fmt"
	"slices"
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
	// call is the request a line of one request's events stands for; its
	// hops are the targets it tried, in order. Empty for other lines.
	call string
	hops []hop
}

// hop is one target a request tried: its failed attempts there, and the
// cooldown they put it in.
type hop struct {
	target string
	reason string
	// count is the failed attempts seen; 0 when only a cooldown or the
	// failover away from it was seen.
	count    int
	cooldown bool
	until    time.Time
	cdDetail string
}

// callIDLen is how much of a call id the feed shows: enough to grep the
// access log for.
const callIDLen = 8

// byCall reports whether an event joins the line of its request: the
// failed attempts, failovers, cooldowns and the final answer of one call.
func byCall(e Event) bool {
	if e.CallID == "" {
		return false
	}
	switch e.Kind {
	case EventAttemptFailed, EventFailover, EventServed, EventCooldownEntered:
		return true
	}
	return false
}

// callLine starts the line of e's request.
func callLine(e Event) feedLine {
	l := feedLine{at: e.Time, model: e.Model, call: e.CallID}
	l.add(e)
	return l
}

// add records one more event of the line's request.
func (l *feedLine) add(e Event) {
	l.at = e.Time
	l.count++
	last := func() *hop {
		if len(l.hops) == 0 {
			return nil
		}
		return &l.hops[len(l.hops)-1]
	}
	switch e.Kind {
	case EventAttemptFailed:
		switch h := last(); {
		case h != nil && h.target == e.Target && h.count == 0:
			// The cooldown (published first) or the failover away from
			// it came before the attempt itself.
			h.count, h.reason = 1, orDefault(e.Reason, h.reason)
		case h != nil && h.target == e.Target && h.reason == e.Reason:
			h.count++
		default:
			l.hops = append(l.hops, hop{target: e.Target, reason: e.Reason, count: 1})
		}
		if l.next == e.Target {
			l.next = ""
		}
		l.detail = e.Detail
	case EventCooldownEntered:
		h := last()
		if h == nil || h.target != e.Target {
			l.hops = append(l.hops, hop{target: e.Target, reason: e.Reason})
			h = last()
		}
		h.cooldown, h.until, h.cdDetail = true, time.Time{}, e.Detail
		if ts, ok := strings.CutPrefix(e.Detail, "until "); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				h.until, h.cdDetail = t, ""
			}
		}
	case EventFailover:
		from := strings.TrimPrefix(e.Detail, "from ")
		if h := last(); from != "" && (h == nil || h.target != from) {
			l.hops = append(l.hops, hop{target: from, reason: e.Reason})
		} else if h != nil && h.reason == "" {
			h.reason = e.Reason
		}
		l.next = e.Target
	case EventServed:
		l.next, l.served = e.Target, true
	}
	// The line reads as the kind of its furthest step, for its colour.
	switch {
	case l.served || l.next != "":
		l.kind = EventFailover
	case slices.ContainsFunc(l.hops, func(h hop) bool { return h.count > 0 }):
		l.kind = EventAttemptFailed
	default:
		l.kind = EventCooldownEntered
	}
	if len(l.hops) > 0 {
		l.target, l.reason = l.hops[0].target, l.hops[0].reason
	}
}

// callText is the wording of a line of one request:
//
//	chat-prod: gpt-4o-primary transport_error ×2 (cooldown until 12:04:11) → served by gpt-4o-secondary (call 3f2a1b9c…)
func (l feedLine) callText(loc *time.Location) string {
	var steps []string
	for i, h := range l.hops {
		name := h.target
		if i == 0 && h.target == l.model {
			name = "" // a direct model's own retries
		}
		s := join(name, orDefault(h.reason, "failed"))
		if h.count > 1 {
			s += fmt.Sprintf(" ×%d", h.count)
		}
		if h.cooldown {
			switch {
			case !h.until.IsZero():
				s += " (cooldown until " + clock(h.until, loc) + ")"
			case h.cdDetail != "":
				s += " (cooldown " + h.cdDetail + ")"
			default:
				s += " (cooldown)"
			}
		}
		steps = append(steps, s)
	}
	switch {
	case l.served:
		steps = append(steps, "served by "+orDefault(l.next, "?"))
	case l.next != "":
		steps = append(steps, l.next)
	}
	id := l.call
	if r := []rune(id); len(r) > callIDLen {
		id = string(r[:callIDLen]) + ellipsis
	}
	return join(orDefault(l.model, l.target)+":", strings.Join(steps, " → ")) + " (call " + id + ")"
}

// names are the models the line is about: the model asked for and every
// target it names.
func (l feedLine) names() []string {
	names := []string{l.model, l.target, l.next}
	for _, h := range l.hops {
		names = append(names, h.target)
	}
	return names
}

// subject is who a line is about: the target, or the model asked for.
func (l feedLine) subject() string { return orDefault(l.target, l.model) }

// sameAs reports whether o repeats the line, for coalescing.
func (l feedLine) sameAs(o feedLine) bool {
	if l.call != "" || o.call != "" {
		return false // a request's line stands for that request alone
	}
	if l.kind != o.kind || l.model != o.model || l.target != o.target ||
		l.reason != o.reason || l.next != o.next || l.served != o.served {
		return false
	}
	switch l.kind {
	case EventAttemptFailed, EventFailover, EventCooldownEntered, EventCooldownLeft, EventLimited:
		// Details of these (error texts, durations, when a limit frees)
		// vary between repeats.
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
// their latest event). The failed attempts, failovers and cooldowns of one
// request and the target that served it in the end read as one line, found
// by the events' call id:
//
//	chat-prod: gpt-4o-primary transport_error ×2 (cooldown until 12:04:11) → served by gpt-4o-secondary (call 3f2a1b9c…)
//
// Events without a call id (an older server) are joined by guesswork
// instead: the attempts, failover and answer of one model within a minute
// read as one line, and repeats within a minute share a line with a count:
//
//	chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary
func buildFeed(events []Event) []feedLine {
	var lines []feedLine
	// find returns the index of the latest recent line without a call id
	// that ok accepts.
	find := func(at time.Time, ok func(feedLine) bool) int {
		for i := len(lines) - 1; i >= 0 && i >= len(lines)-coalesceLookback; i-- {
			if at.Sub(lines[i].at) > coalesceWindow {
				break
			}
			if lines[i].call == "" && ok(lines[i]) {
				return i
			}
		}
		return -1
	}
	// findCall returns the index of the line of request id. A request's
	// attempts may span minutes (timeouts), so it looks at every line.
	findCall := func(id string) int {
		for i := len(lines) - 1; i >= 0; i-- {
			if lines[i].call == id {
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
		if byCall(e) {
			l := callLine(e)
			if i := findCall(e.CallID); i >= 0 {
				l = take(i)
				l.add(e)
			}
			lines = append(lines, l)
			continue
		}
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
	if l.call != "" {
		return l.callText(loc)
	}
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
	case EventLimited:
		// A target skipped at its provider limit, or a request refused
		// by a caller key's or model's limit:
		//	chat-prod: gpt-4o-primary skipped: at its provider limit (rpm 50, frees in 12s)
		//	chat-prod: refused: caller_key_rpm (rpm 60, frees in 41s)
		s := who + " refused: " + orDefault(l.reason, "limit")
		if l.target != "" {
			s = who + " skipped: at its provider limit"
		}
		if l.detail != "" {
			s += " (" + l.detail + ")"
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
	return name != "" && slices.Contains(l.names(), name)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
