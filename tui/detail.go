package tui

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

// maxDetailEvents bounds the recent events in the detail view.
const maxDetailEvents = 50

func (m *Model) loc() *time.Location { return m.now.Location() }

// detailLines is the body of the detail screen: a title and the viewport.
func (m *Model) detailLines(avail int) []string {
	st := m.styles
	r, ok := m.shown().model(m.detailKey)
	title := st.section.Render(r.Name)
	if ok {
		title += "  " + st.status(r.Status).Render(m.statusText(r, false))
		if r.Reason != "" {
			title += "  " + st.status(r.Status).Render(r.Reason)
		}
	} else {
		title = st.section.Render(m.detailKey) + "  " + st.dim.Render("no longer reported by the server")
	}
	if avail <= 1 {
		return []string{title}
	}
	vp := m.vp
	vp.Height = avail - 1
	if vp.TotalLineCount() > vp.Height {
		title += st.dim.Render(fmt.Sprintf("   ↑↓ %d%%", int(vp.ScrollPercent()*100)))
	}
	lines := []string{title}
	for _, l := range strings.Split(vp.View(), "\n") {
		// The viewport pads every line to its width; trailing blanks only
		// make the screen heavier to redraw.
		lines = append(lines, strings.TrimRight(l, " "))
	}
	return lines
}

// detailContent is the scrollable text of the detail screen for the model
// being looked at: traffic, config, cooldown history and recent events.
func (m *Model) detailContent() string {
	d, now, st, loc := m.shown(), m.frameNow(), m.styles, m.loc()
	r, ok := d.model(m.detailKey)
	if !ok {
		return st.dim.Render("The server no longer reports this model; esc goes back.")
	}
	var b []string
	add := func(s ...string) { b = append(b, s...) }
	kv := func(k, v string) string { return "  " + st.headerKey.Render(padRight(k, 12)) + " " + v }
	section := func(s string) { add("", st.section.Render(s)) }

	add(kv("id", orDefault(r.ID, noValue)), kv("provider", orDefault(r.Provider, noValue)))
	status := st.status(r.Status).Render(m.statusText(r, false))
	if r.Status == StatusCooldown && !r.CooldownUntil.IsZero() {
		status += st.dim.Render(" (until " + clock(r.CooldownUntil, loc) + ")")
	}
	if r.Reason != "" {
		status += "  " + r.Reason
	}
	add(kv("status", status))
	// wrapped adds text under the values, wrapped to the screen.
	wrapped := func(text string) {
		indent := strings.Repeat(" ", 15)
		for _, l := range strings.Split(ansi.Wrap(oneLine(text), max(m.width-len(indent), 20), " "), "\n") {
			add(indent + st.errText.Render(l))
		}
	}
	if r.SecretNeedsReentry {
		add(kv("secret", st.errText.Render(symWarning+" needs re-entry")))
		wrapped("The provider key's api_base now points at another host than its secret was entered for, " +
			"so requests go there without a credential. Enter the secret again, or point api_base back.")
	}

	rt := d.rates[modelKey(r)]
	section("TRAFFIC")
	add(kv("requests", fmt.Sprintf("%d total · %s/min", r.Requests, rate(rt.reqPerMin, rt.reqOK))))
	add(kv("failures", fmt.Sprintf("%d total · %s of the last minute's requests", r.Failures, percent(rt.errRatio, rt.errOK))))
	add(kv("tokens", fmt.Sprintf("%d in · %d out · %s/min", r.TokensIn, r.TokensOut, rate(rt.tokPerMin, rt.reqOK))))
	cost := st.dim.Render("– (no price, or nothing answered yet)")
	if r.CostUSD > 0 {
		cost = costTotal(r.CostUSD) + " total · " + costRate(rt.costPerHour, rt.reqOK, rt.priced)
	}
	add(kv("cost", cost))
	add(kv("in flight", fmt.Sprint(r.InFlight)))
	add(kv("latency", fmt.Sprintf("p50 %s · p95 %s · ttft p50 %s", latency(r.LatencyP50), latency(r.LatencyP95), latency(r.TTFTP50))))
	add(kv("last ok", when(r.LastSuccessAt, now.Add(d.skew), loc)))
	add(kv("last error", when(r.LastErrorAt, now.Add(d.skew), loc)))
	if r.LastError != "" {
		wrapped(r.LastError)
	}

	section("CONFIG")
	if len(r.Config) == 0 {
		add(st.dim.Render("  none reported"))
	}
	keyW := 0
	for _, c := range r.Config {
		keyW = max(keyW, width(c.Key))
	}
	for _, c := range r.Config {
		add("  " + st.headerKey.Render(padRight(c.Key, keyW)) + "  " + oneLine(maskConfigValue(c.Key, c.Value)))
	}

	section("COOLDOWN HISTORY (seen by this dashboard)")
	spans := slices.Clone(d.history[modelKey(r)])
	slices.Reverse(spans)
	if len(spans) == 0 {
		add(st.dim.Render("  none seen"))
	}
	for _, s := range spans {
		from := clock(s.start, loc)
		if s.partial {
			from = "≤" + from
		}
		line := "  " + from + " → "
		if s.end.IsZero() {
			line += "now     "
			if !s.until.IsZero() {
				line += "  " + orDefault(s.reason, "?") + "  " + countdown(s.until.Sub(now.Add(d.skew))) + " left"
			} else {
				line += "  " + orDefault(s.reason, "?")
			}
		} else {
			line += clock(s.end, loc) + "  " + orDefault(s.reason, "?") + "  lasted " + compactDuration(s.end.Sub(s.start))
			if s.after != "" {
				line += ", then " + s.after
			}
		}
		add(line)
	}

	section("RECENT EVENTS")
	// Coalesce first, then pick the lines about this model, so a failover
	// line keeps the target that served the request in the end.
	var lines []feedLine
	for _, l := range buildFeed(d.events) {
		if l.mentions(r.Name) {
			lines = append(lines, l)
		}
	}
	slices.Reverse(lines)
	if len(lines) == 0 {
		add(st.dim.Render("  none yet"))
	}
	for i, l := range lines {
		if i >= maxDetailEvents {
			break
		}
		add("  " + m.feedText(l, true))
	}
	return strings.Join(b, "\n")
}

// when formats an absolute time with how long ago it was.
func when(t, now time.Time, loc *time.Location) string {
	if t.IsZero() {
		return "never"
	}
	return clock(t, loc) + " (" + ago(t, now) + ")"
}
