package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/charmbracelet/lipgloss"
)

const colGap = "  "

// column is one column of the models table.
type column struct {
	title string
	// prio orders which columns go first on a narrow terminal: the highest
	// goes first, 0 never goes.
	prio  int
	right bool
	minW  int
	maxW  int
	// natW is the least natural width, so the column does not jump as
	// statuses and reasons come and go.
	natW int
	// flex columns take what width is left, down to minW.
	flex bool
	cell func(r ModelRow) cell
}

// cell is one table cell; style is applied after padding.
type cell struct {
	text  string
	style *lipgloss.Style
}

// rows returns the models on screen: filtered by name, trouble first.
func (m *Model) rows() []ModelRow {
	d := m.shown()
	var rows []ModelRow
	for _, r := range d.snap.Models {
		if m.matches(r.Name) {
			rows = append(rows, r)
		}
	}
	slices.SortStableFunc(rows, func(a, b ModelRow) int {
		if c := cmp.Compare(statusRank(a.Status), statusRank(b.Status)); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return rows
}

// statusText is the status cell: symbol, word, and the cooldown countdown.
func (m *Model) statusText(r ModelRow, compact bool) string {
	s := statusSymbol(r.Status)
	if !compact {
		s += " " + orDefault(r.Status, "unknown")
	}
	if left := m.cooldownLeft(r); left != "" {
		s += " " + left
	}
	return s
}

func (m *Model) columns() []column {
	d := m.shown()
	st := m.styles
	styled := func(text string, s lipgloss.Style) cell { return cell{text: text, style: &s} }
	return []column{
		{title: "STATUS", minW: 1, natW: width("◔ cooldown 27s"), maxW: 20, cell: func(r ModelRow) cell {
			return styled(m.statusText(r, false), st.status(r.Status))
		}},
		{title: "MODEL", minW: 8, maxW: 32, cell: func(r ModelRow) cell {
			return cell{text: r.Name}
		}},
		{title: "REASON", prio: 1, minW: 6, natW: width("transport_error"), maxW: 24, cell: func(r ModelRow) cell {
			if r.SecretNeedsReentry {
				return styled(secretReentryText, st.errText)
			}
			if r.Reason == "" {
				return cell{}
			}
			return styled(r.Reason, st.status(r.Status))
		}},
		{title: "REQ/MIN", prio: 2, right: true, minW: 7, maxW: 8, cell: func(r ModelRow) cell {
			rt := d.rates[modelKey(r)]
			return cell{text: rate(rt.reqPerMin, rt.reqOK)}
		}},
		{title: "ERR%", prio: 3, right: true, minW: 4, maxW: 5, cell: func(r ModelRow) cell {
			rt := d.rates[modelKey(r)]
			c := cell{text: percent(rt.errRatio, rt.errOK)}
			if rt.errOK && rt.errRatio > 0 {
				c.style = &st.errText
			}
			return c
		}},
		{title: "TOK/MIN", prio: 7, right: true, minW: 7, maxW: 8, cell: func(r ModelRow) cell {
			rt := d.rates[modelKey(r)]
			return cell{text: rate(rt.tokPerMin, rt.reqOK)}
		}},
		{title: "COST", prio: 8, right: true, minW: 5, maxW: 9, cell: func(r ModelRow) cell {
			rt := d.rates[modelKey(r)]
			return cell{text: costRate(rt.costPerHour, rt.reqOK, rt.priced)}
		}},
		{title: "P50", prio: 4, right: true, minW: 5, maxW: 7, cell: func(r ModelRow) cell {
			return cell{text: latency(r.LatencyP50)}
		}},
		{title: "P95", prio: 9, right: true, minW: 5, maxW: 7, cell: func(r ModelRow) cell {
			return cell{text: latency(r.LatencyP95)}
		}},
		{title: "TTFT", prio: 10, right: true, minW: 5, maxW: 7, cell: func(r ModelRow) cell {
			return cell{text: latency(r.TTFTP50)}
		}},
		{title: "INFL", prio: 5, right: true, minW: 4, maxW: 6, cell: func(r ModelRow) cell {
			return cell{text: fmt.Sprint(r.InFlight)}
		}},
		{title: "PROVIDER", prio: 11, minW: 6, maxW: 12, cell: func(r ModelRow) cell {
			return cell{text: r.Provider}
		}},
		{title: "LAST ERROR", prio: 6, flex: true, minW: 20, maxW: 72, cell: func(r ModelRow) cell {
			if r.LastError == "" {
				return cell{}
			}
			if r.Status == StatusHealthy {
				// Old news once the model answers again.
				return styled(oneLine(r.LastError), st.dim)
			}
			return styled(oneLine(r.LastError), st.errText)
		}},
	}
}

// table renders the models table (header and rows from offset, at most n
// rows) to fit width w.
func (m *Model) table(rows []ModelRow, offset, n, w int) []string {
	cols := m.columns()
	cells := make([][]cell, len(rows))
	for i, r := range rows {
		cells[i] = make([]cell, len(cols))
		for j, c := range cols {
			cells[i][j] = c.cell(r)
			cells[i][j].text = oneLine(cells[i][j].text)
		}
	}
	// Natural widths from the titles and every row, so columns do not
	// jump while scrolling.
	widths := make([]int, len(cols))
	for j, c := range cols {
		nat := max(width(c.title), c.natW)
		for i := range rows {
			nat = max(nat, width(cells[i][j].text))
		}
		widths[j] = min(max(nat, c.minW), c.maxW)
	}
	// The compact status (symbol and countdown) is the last resort.
	compactStatus := false
	visible := make([]bool, len(cols))
	for j := range visible {
		visible[j] = true
	}
	markW := width(symCursor) + 1
	total := func() int {
		t, k := markW, 0
		for j := range cols {
			if visible[j] {
				t += widths[j]
				k++
			}
		}
		return t + (k-1)*len(colGap)
	}
	for total() > w {
		// Shrink a flex column before dropping anything.
		shrunk := false
		for j, c := range cols {
			if visible[j] && c.flex && widths[j] > c.minW {
				widths[j] = max(c.minW, widths[j]-(total()-w))
				shrunk = true
				break
			}
		}
		if shrunk {
			continue
		}
		drop, best := -1, 0
		for j, c := range cols {
			if visible[j] && c.prio > best {
				drop, best = j, c.prio
			}
		}
		if drop >= 0 {
			visible[drop] = false
			continue
		}
		// Only status and name are left: compact the status, then narrow
		// the name; whatever still does not fit is cut at the edge.
		if !compactStatus {
			compactStatus = true
			nat := width(cols[0].title[:1])
			for _, r := range rows {
				nat = max(nat, width(m.statusText(r, true)))
			}
			widths[0] = nat
			for i, r := range rows {
				cells[i][0].text = m.statusText(r, true)
			}
			continue
		}
		widths[1] = max(cols[1].minW, widths[1]-(total()-w))
		break
	}

	render := func(texts []cell, header bool, selected bool) string {
		var b strings.Builder
		first := true
		for j, c := range cols {
			if !visible[j] {
				continue
			}
			if !first {
				b.WriteString(colGap)
			}
			first = false
			title := c.title
			if header && j == 0 && compactStatus {
				title = "S"
			}
			t := texts[j].text
			if header {
				t = title
			}
			if c.right {
				t = padLeft(t, widths[j])
			} else {
				t = padRight(t, widths[j])
			}
			if !header && !selected && texts[j].style != nil {
				t = texts[j].style.Render(t)
			}
			b.WriteString(t)
		}
		return b.String()
	}

	lines := []string{m.styles.colHeader.Render(strings.Repeat(" ", markW) + render(make([]cell, len(cols)), true, false))}
	for i := offset; i < len(rows) && i < offset+n; i++ {
		if i == m.sel {
			line := padRight(symCursor+" "+render(cells[i], false, true), w)
			lines = append(lines, m.styles.selected.Render(line))
			continue
		}
		lines = append(lines, strings.Repeat(" ", markW)+render(cells[i], false, false))
	}
	return lines
}

// cooldownLeft is the countdown text for a model row, or "" if it is not
// cooling down.
func (m *Model) cooldownLeft(r ModelRow) string {
	if r.Status != StatusCooldown || r.CooldownUntil.IsZero() {
		return ""
	}
	return countdown(m.shown().remaining(r, m.frameNow()))
}
