package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/bubbles/key"
)

// headerHeight is the header's two lines and its rule.
const headerHeight = 3

// View draws the whole screen: exactly height lines, none wider than width.
func (m Model) View() string {
	lines := m.headerLines()
	footer := m.footerLines()
	avail := max(m.height-len(lines)-len(footer), 0)
	var body []string
	if m.mode == modeDetail {
		body = m.detailLines(avail)
	} else {
		body = m.mainLines(avail)
	}
	if len(body) > avail {
		body = body[:avail]
	}
	lines = append(lines, body...)
	for len(lines) < m.height-len(footer) {
		lines = append(lines, "")
	}
	lines = append(lines, footer...)
	if len(lines) > m.height {
		lines = lines[:m.height]
	}
	for i, l := range lines {
		lines[i] = truncate(l, m.width)
	}
	return strings.Join(lines, "\n")
}

// joinLR puts left and right on one line of width w, cutting left first.
func joinLR(left, right string, w int) string {
	lw, rw := width(left), width(right)
	switch {
	case right == "":
		return truncate(left, w)
	case lw+2+rw <= w:
		return left + strings.Repeat(" ", w-lw-rw) + right
	case rw+2 < w:
		left = truncate(left, w-rw-2)
		return left + strings.Repeat(" ", w-width(left)-rw) + right
	}
	return truncate(right, w)
}

func (m *Model) headerLines() []string {
	d, now, st := m.shown(), m.frameNow(), m.styles
	server := orDefault(m.opts.Server, d.snap.Server)
	left := st.appTitle.Render(" aisix status ") + " " + server
	if v := orDefault(d.snap.Version, m.opts.Version); v != "" {
		if !strings.HasPrefix(v, "v") {
			v = "v" + v
		}
		left += "  " + v
	}
	if d.have && !d.snap.StartedAt.IsZero() {
		left += "  " + st.headerKey.Render("up") + " " + compactDuration(now.Add(d.skew).Sub(d.snap.StartedAt))
	}
	line1 := joinLR(left, m.connText(), m.width)

	tot := d.total
	failovers := d.failoversSince(now.Add(d.skew).Add(-rateWindow))
	counts := map[string]int{}
	for _, r := range d.snap.Models {
		counts[r.Status]++
	}
	var byStatus []string
	for _, s := range []string{StatusHealthy, StatusProbing, StatusCooldown, StatusUnhealthy} {
		if counts[s] > 0 {
			byStatus = append(byStatus, st.status(s).Render(statusSymbol(s))+" "+fmt.Sprint(counts[s]))
		}
	}
	kv := func(k, v string) string { return st.headerKey.Render(k) + " " + v }
	// prio orders which parts go first on a narrow line, as in the table:
	// the highest goes first, 0 never goes.
	type part struct {
		text string
		prio int
	}
	parts := []part{
		{text: kv("req/s", rate(tot.reqPerSec, tot.ok))},
		{text: kv("err/s", rate(tot.errPerSec, tot.ok))},
		{text: kv("tok/min", rate(tot.tokPerMin, tot.ok)), prio: 2},
		{text: kv("cost", costRate(tot.costPerHour, tot.ok, tot.priced)), prio: 1},
		{text: kv("failovers/1m", fmt.Sprint(failovers)), prio: 3},
	}
	if len(d.snap.Limits) > 0 {
		v := rate(tot.limitedPerMin, tot.limitedOK) + "/min"
		if tot.limitedPerMin > 0 {
			v = st.limitNear.Render(v)
		}
		parts = append(parts, part{text: kv("limited", v), prio: 2})
	}
	parts = append(parts, part{text: kv("models", fmt.Sprint(len(d.snap.Models))) + " " + strings.Join(byStatus, " ")})
	var right2 string
	switch {
	case m.paused:
		right2 = st.paused.Render("‖ paused at " + clock(m.pausedAt, m.loc()) + " · p resumes")
	case m.failures > 0 && m.lastErr != "":
		right2 = st.errText.Render(truncate(m.lastErr, max(m.width/2, 20)))
	}
	room := m.width
	if right2 != "" {
		room -= width(right2) + 2
	}
	left2 := ""
	for {
		var texts []string
		drop, best := -1, 0
		for i, p := range parts {
			texts = append(texts, p.text)
			if p.prio > best {
				drop, best = i, p.prio
			}
		}
		left2 = strings.Join(texts, "   ")
		if width(left2) <= room || drop < 0 {
			break
		}
		parts = slices.Delete(parts, drop, drop+1)
	}
	line2 := joinLR(left2, right2, m.width)
	rule := st.dim.Render(strings.Repeat("─", m.width))
	return []string{line1, line2, rule}
}

// connText is the connection state: live, reconnecting or stale since T.
// It always describes now, even while the view is paused.
func (m *Model) connText() string {
	st := m.styles
	retry := "retrying…"
	if !m.fetching {
		retry = "retry in " + countdown(m.retryAt.Sub(m.now))
	}
	switch {
	case m.failures == 0 && !m.data.have:
		return st.dim.Render("◌ connecting…")
	case m.failures == 0:
		return st.connLive.Render(symHealthy + " live")
	case !m.data.have:
		return st.connStale.Render(symUnhealthy + " unreachable · " + retry)
	case m.now.Sub(m.lastOK) < m.staleAfter():
		return st.connReconnecting.Render(symProbing + " reconnecting · " + retry)
	}
	return st.connStale.Render(symUnhealthy + " stale since " + clock(m.lastOK, m.loc()) + " · " + retry)
}

// mainLines is the body of the main screen: models, groups, events.
func (m *Model) mainLines(avail int) []string {
	d, st := m.shown(), m.styles
	if !d.have {
		msg := "  waiting for the first status from the server…"
		if m.failures > 0 {
			msg = "  cannot reach the server yet: " + m.lastErr
		}
		return []string{"", st.dim.Render(msg)}
	}
	// A dependency that is down goes first, one line each: what the
	// server runs without. Then config errors: they are what to fix. They
	// take at most a third of the screen, so the models keep the rest.
	top := m.dependencyLines(d.snap, max(1, (avail-1)/3))
	avail = max(avail-len(top), 0)
	if errs := d.snap.ConfigErrors; len(errs) > 0 {
		h := min(1+min(len(errs), maxConfigErrorLines), max(1, (avail-1)/3))
		top = append(m.configErrorsSection(errs, h), "")
		avail = max(avail-len(top), 0)
	}
	// Then what is near or at its limits, in at most a third of what is
	// left; nothing at all while every limit has room.
	if ls := m.limitLines(); len(ls) > 0 {
		h := min(1+min(len(ls), maxLimitLines), max(1, (avail-1)/3))
		sec := append(m.limitsSection(ls, h), "")
		top = append(top, sec...)
		avail = max(avail-len(sec), 0)
	}
	rows := m.rows()
	groups := m.groups()
	feed := m.feed()

	// Heights: the models table first (it is the point), but it leaves
	// groups and events a few lines when it can spare them; each section
	// below the table costs a blank line too.
	modelsWant := 2 + max(1, len(rows))
	groupsWant := 0
	if len(groups) > 0 {
		groupsWant = 1 + len(groups)
	}
	eventsWant := 1 + max(1, len(feed))
	eventsMin, groupsMin := min(eventsWant, 3), min(groupsWant, 3)

	rem := avail
	mh := min(modelsWant, rem)
	need := 1 + eventsMin
	if groupsWant > 0 {
		need += 1 + groupsMin
	}
	if rem-mh < need {
		mh = min(mh, max(min(modelsWant, 6), rem-need))
	}
	rem -= mh
	gh := 0
	if groupsWant > 0 && rem >= 3 {
		gh = min(groupsWant, rem-1)
		if rem-1-gh < 1+eventsMin {
			gh = min(rem-1, max(groupsMin, rem-1-(1+eventsMin)))
		}
		rem -= 1 + gh
	}
	eh := 0
	if rem >= 3 {
		eh = rem - 1
	}

	lines := append(top, m.modelsSection(rows, mh)...)
	if gh > 0 {
		lines = append(lines, "")
		lines = append(lines, m.groupsSection(groups, gh)...)
	}
	if eh > 0 {
		lines = append(lines, "")
		lines = append(lines, m.eventsSection(feed, eh)...)
	}
	return lines
}

func (m *Model) modelsSection(rows []ModelRow, h int) []string {
	d, st := m.shown(), m.styles
	title := st.section.Render("MODELS") + " " + fmt.Sprint(len(d.snap.Models))
	if f := m.filterText(); f != "" {
		title += st.dim.Render(fmt.Sprintf("   filter %q: %d shown · esc clears", f, len(rows)))
	}
	n := max(h-2, 1)
	offset := 0
	if m.sel >= n {
		offset = m.sel - n + 1
	}
	if more := len(rows) - offset - n; more > 0 {
		title += st.dim.Render(fmt.Sprintf("   ↓ %d more", more))
	}
	if offset > 0 {
		title += st.dim.Render(fmt.Sprintf("   ↑ %d more", offset))
	}
	lines := []string{title}
	if len(rows) == 0 {
		msg := "  no direct models reported by the server"
		if m.filterText() != "" {
			msg = "  no model matches the filter"
		}
		return append(lines, st.dim.Render(msg))
	}
	return append(lines, m.table(rows, offset, n, m.width)...)
}

// maxConfigErrorLines bounds the config errors listed on the main screen.
const maxConfigErrorLines = 5

// configErrorsSection lists the rows the server does not serve as stored:
// kind, name (the id of a row without one) and reason, in h lines at most.
// dependencyLines are the warning lines of the dependencies that are not
// ok, at most h: "⚠ store unreachable since 05:12:03 — serving revision 42
// (last snapshot)", "⚠ redis unreachable since 05:12:03 — limits counted
// per replica, cooldowns local".
func (m *Model) dependencyLines(s Snapshot, h int) []string {
	st := m.styles
	var lines []string
	for _, d := range s.Dependencies {
		if d.Status == "ok" || d.Status == "" || len(lines) >= h {
			continue
		}
		line := "  " + st.errText.Render(symWarning+" "+d.Name+" "+d.Status+" since "+clock(d.Since, m.loc()))
		switch {
		case d.Revision > 0:
			line += " — serving revision " + fmt.Sprint(d.Revision) + " (last snapshot)"
		case d.Impact != "":
			line += " — " + d.Impact
		}
		if !s.RowsFrom.IsZero() && len(lines) == 0 {
			line += st.dim.Render(" · rows as of " + clock(s.RowsFrom, m.loc()))
		}
		lines = append(lines, line)
	}
	if len(lines) > 0 {
		lines = append(lines, "")
	}
	return lines
}

func (m *Model) configErrorsSection(errs []ConfigError, h int) []string {
	st := m.styles
	title, n := st.fit(st.section.Render("CONFIG ERRORS")+" "+st.errText.Render(fmt.Sprint(len(errs))), len(errs), h)
	lines := []string{title}
	kindW, nameW := 0, 0
	for _, e := range errs[:n] {
		kindW = max(kindW, width(kindText(e.Kind)))
		nameW = max(nameW, width(orDefault(e.Name, e.ID)))
	}
	nameW = min(nameW, 32)
	for _, e := range errs[:n] {
		lines = append(lines, "  "+st.errText.Render(symWarning)+" "+padRight(kindText(e.Kind), kindW)+"  "+
			padRight(orDefault(e.Name, e.ID), nameW)+"  "+st.dim.Render(oneLine(e.Reason)))
	}
	return lines
}

// fit is how many of total items a section of h lines (its title
// included) lists, and its title, which says how many more there are.
func (s styles) fit(title string, total, h int) (string, int) {
	n := min(total, max(h-1, 0))
	if more := total - n; more > 0 {
		title += s.dim.Render(fmt.Sprintf("   … %d more", more))
	}
	return title, n
}

// kindText words a config error's kind: provider_key is "provider key".
func kindText(kind string) string { return strings.ReplaceAll(kind, "_", " ") }

// groups returns the routing groups on screen: those whose name, or one of
// whose targets' names, matches the filter.
func (m *Model) groups() []GroupRow {
	var out []GroupRow
	for _, g := range m.shown().snap.Groups {
		ok := m.matches(g.Name)
		for _, t := range g.Targets {
			ok = ok || m.matches(t.Name)
		}
		if ok {
			out = append(out, g)
		}
	}
	return out
}

func (m *Model) groupsSection(groups []GroupRow, h int) []string {
	st := m.styles
	lines := []string{st.section.Render("ROUTING GROUPS") + " " + fmt.Sprint(len(groups))}
	nameW, stratW := 0, 0
	for _, g := range groups {
		nameW = max(nameW, width(g.Name))
		stratW = max(stratW, width(g.Strategy))
	}
	nameW = min(nameW, 32)
	for i, g := range groups {
		if i == h-2 && len(groups) > h-1 {
			lines = append(lines, st.dim.Render(fmt.Sprintf("  … %d more", len(groups)-i)))
			break
		}
		lines = append(lines, "  "+m.groupLine(g, nameW, stratW))
	}
	return lines
}

// groupLine is one routing group: the targets in the order they would be
// tried now, the serving one marked, then the skipped ones and why.
func (m *Model) groupLine(g GroupRow, nameW, stratW int) string {
	st, d := m.styles, m.shown()
	var tried, skipped []GroupTarget
	for _, t := range g.Targets {
		if t.Skipped {
			skipped = append(skipped, t)
		} else {
			tried = append(tried, t)
		}
	}
	serving := g.Serving
	if serving == "" && len(tried) > 0 {
		serving = tried[0].Name
	}
	var parts []string
	for _, t := range tried {
		if t.Name == serving {
			parts = append(parts, st.serving.Render(symServing+" "+t.Name+" (serving)"))
			continue
		}
		parts = append(parts, st.status(t.Status).Render(statusSymbol(t.Status))+" "+t.Name)
	}
	s := padRight(g.Name, nameW) + "  "
	if stratW > 0 {
		s += st.dim.Render(padRight(g.Strategy, stratW)) + "  "
	}
	if len(tried) == 0 {
		s += st.errText.Render(symUnhealthy + " no target available")
	} else {
		s += strings.Join(parts, " → ")
	}
	if len(skipped) == 0 {
		return s
	}
	var sk []string
	for _, t := range skipped {
		why := orDefault(t.Why, t.Status)
		if r, ok := d.modelByName(t.Name); ok {
			if left := m.cooldownLeft(r); left != "" {
				// Word it from the model row, with a countdown that ticks
				// here, rather than the server's text frozen at the poll.
				why = join("cooldown:", r.Reason) + ", " + left
			}
		}
		item := st.status(t.Status).Render(statusSymbol(t.Status)) + " " + t.Name
		if why != "" {
			item += st.dim.Render(" (" + why + ")")
		}
		sk = append(sk, item)
	}
	return s + "   " + st.dim.Render("skipped:") + " " + strings.Join(sk, ", ")
}

// feed returns the event feed lines on screen, newest first.
func (m *Model) feed() []feedLine {
	lines := buildFeed(m.shown().events)
	slices.Reverse(lines)
	if m.filterText() == "" {
		return lines
	}
	var out []feedLine
	for _, l := range lines {
		if slices.ContainsFunc(l.names(), func(n string) bool { return n != "" && m.matches(n) }) {
			out = append(out, l)
		}
	}
	return out
}

func (m *Model) eventsSection(feed []feedLine, h int) []string {
	st := m.styles
	title := st.section.Render("EVENTS")
	if m.eventsErr != "" {
		title += " " + st.errText.Render("unavailable: "+m.eventsErr)
	}
	lines := []string{title}
	if len(feed) == 0 {
		return append(lines, st.dim.Render("  no routing events yet"))
	}
	for i, l := range feed {
		if i >= h-1 {
			break
		}
		lines = append(lines, "  "+m.feedText(l, false))
	}
	return lines
}

// feedText is one feed line with its time; withDetail adds error texts.
func (m *Model) feedText(l feedLine, withDetail bool) string {
	st := m.styles
	s := st.dim.Render(clock(l.at, m.loc())) + " " + st.event(l).Render(l.text(m.loc()))
	if withDetail && l.detail != "" && (l.kind == EventAttemptFailed || l.call != "") {
		s += st.dim.Render(" — " + oneLine(l.detail))
	}
	return s
}

func (m *Model) footerLines() []string {
	st := m.styles
	if m.filtering {
		return []string{m.filter.view(st)}
	}
	var km interface {
		ShortHelp() []key.Binding
		FullHelp() [][]key.Binding
	} = m.keys
	switch {
	case m.mode == modeDetail:
		km = detailKeys(m.keys)
	case len(m.actions) > 0:
		km = withActions{keys: m.keys, actions: m.actionKeys}
	}
	lines := strings.Split(m.help.View(km), "\n")
	if len(m.actions) > 0 {
		// A line of its own, always there, so the layout does not jump
		// when a result comes and goes.
		lines = append([]string{st.result.Render(m.resultText())}, lines...)
	}
	if m.showHelp {
		legend := strings.Join([]string{
			st.statusHealthy.Render(symHealthy) + " healthy",
			st.statusProbing.Render(symProbing) + " probing",
			st.statusCooldown.Render(symCooldown) + " cooldown",
			st.statusUnhealthy.Render(symUnhealthy) + " unhealthy",
			st.errText.Render(symWarning) + " to fix",
		}, "  ")
		lines = append([]string{"", legend,
			st.dim.Render("REQ/MIN, ERR%, TOK/MIN, COST: last minute · TTFT: first token · INFL: in flight"),
		}, lines...)
	}
	return lines
}

// footerHeight is how many lines the footer takes now.
func (m *Model) footerHeight() int { return len(m.footerLines()) }

// detailKeys is the key map the help shows on the detail screen.
type detailKeys keyMap

// ShortHelp is the one-line help of the detail screen.
func (k detailKeys) ShortHelp() []key.Binding {
	return []key.Binding{
		key.NewBinding(key.WithKeys("up", "down"), key.WithHelp("↑/↓", "scroll")),
		k.Back, k.Pause, k.Help, k.Quit,
	}
}

// FullHelp is the full help of the detail screen.
func (k detailKeys) FullHelp() [][]key.Binding {
	return [][]key.Binding{{k.Up, k.Down}, {k.Back, k.Pause}, {k.Help, k.Quit}}
}
