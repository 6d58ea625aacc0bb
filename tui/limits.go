package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

const (
	// limitNearRatio is how close to a limit a resource must be to be
	// listed: 80 % of any of its limits.
	limitNearRatio = 0.8
	// maxLimitLines bounds the limited resources listed on the main screen.
	maxLimitLines = 5
)

// limitLine is one resource of the limits section: near or at a limit, or
// refusing requests.
type limitLine struct {
	row LimitRow
	// worst is the highest usage of any of its limits, as a fraction.
	worst float64
	// perMin is its rejections per minute; rateOK is false until the
	// dashboard has two samples.
	perMin float64
	rateOK bool
}

// at reports whether a limit is reached.
func (l limitLine) at() bool { return l.worst >= 1 }

// worstRatio is the highest usage of r's limits, budget included.
func worstRatio(r LimitRow) float64 {
	w := 0.0
	for _, d := range r.Dims {
		if d.Limit > 0 {
			w = max(w, float64(d.Used)/float64(d.Limit))
		}
	}
	if r.BudgetUSD > 0 {
		w = max(w, r.BudgetSpentUSD/r.BudgetUSD)
	}
	return w
}

// limitLines are the resources the limits section lists: at 80 % of a
// limit or with rejections in the last minute, worst first, and matching
// the filter.
func (m *Model) limitLines() []limitLine {
	d := m.shown()
	var out []limitLine
	for _, r := range d.snap.Limits {
		perMin, ok := d.limitRates[limitKey(r)]
		l := limitLine{row: r, worst: worstRatio(r), perMin: perMin, rateOK: ok}
		if (l.worst < limitNearRatio && perMin <= 0) || !m.matches(orDefault(r.Name, r.ID)) {
			continue
		}
		out = append(out, l)
	}
	slices.SortStableFunc(out, func(a, b limitLine) int {
		return cmp.Or(cmp.Compare(b.worst, a.worst), cmp.Compare(b.perMin, a.perMin),
			cmp.Compare(a.row.Scope, b.row.Scope), cmp.Compare(a.row.Name, b.row.Name))
	})
	return out
}

// scopeWord names a limit's scope for the section: key, model, target.
func scopeWord(scope string) string {
	if scope == LimitScopeCallerKey {
		return "key"
	}
	return scope
}

// limitsSection lists the resources near or at their limits in h lines at
// most:
//
//	key    ci              rpm 58/60  tpm 91k/100k  budget 41.20/50.00  12 rejected/min
func (m *Model) limitsSection(lines []limitLine, h int) []string {
	st := m.styles
	at := 0
	for _, l := range lines {
		if l.at() {
			at++
		}
	}
	title := st.section.Render("LIMITS") + " " + fmt.Sprint(len(lines))
	if at > 0 {
		title += " " + st.limitAt.Render(fmt.Sprintf("(%d at a limit)", at))
	}
	title, n := st.fit(title, len(lines), h)
	out := []string{title}
	scopeW, nameW := 0, 0
	for _, l := range lines[:n] {
		scopeW = max(scopeW, width(scopeWord(l.row.Scope)))
		nameW = max(nameW, width(orDefault(l.row.Name, l.row.ID)))
	}
	nameW = min(nameW, 32)
	for _, l := range lines[:n] {
		sym, style := " ", st.limitNear
		if l.at() {
			sym, style = symWarning, st.limitAt
		}
		out = append(out, "  "+style.Render(sym+" "+padRight(scopeWord(l.row.Scope), scopeW)+" "+
			padRight(orDefault(l.row.Name, l.row.ID), nameW)+"  "+limitFigures(l)))
	}
	return out
}

// limitFigures is a resource's usage against each of its limits, and its
// rejections per minute when it has any.
func limitFigures(l limitLine) string {
	var parts []string
	for _, d := range l.row.Dims {
		parts = append(parts, d.Name+" "+count(d.Used)+"/"+count(d.Limit))
	}
	if l.row.BudgetUSD > 0 {
		parts = append(parts, fmt.Sprintf("budget %.2f/%.2f", l.row.BudgetSpentUSD, l.row.BudgetUSD))
	}
	if l.perMin > 0 {
		parts = append(parts, strings.TrimSuffix(rate(l.perMin, true), ".0")+" rejected/min")
	}
	return strings.Join(parts, "  ")
}
