package tui

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"
)

const (
	ellipsis = "…"
	noValue  = "–"
)

// Status symbols: each status reads without colour.
const (
	symHealthy   = "●"
	symCooldown  = "◔"
	symProbing   = "◐"
	symUnhealthy = "✖"
	symUnknown   = "?"
	symCursor    = "▸"
	symServing   = "▶"
	// symWarning marks what an operator must fix: a config error, a
	// secret to enter again.
	symWarning = "⚠"
)

// secretReentryText is the reason cell of a model whose secret must be
// entered again; it wins over the failure reason, which follows from it.
const secretReentryText = symWarning + " secret: re-enter"

func statusSymbol(status string) string {
	switch status {
	case StatusHealthy:
		return symHealthy
	case StatusCooldown:
		return symCooldown
	case StatusProbing:
		return symProbing
	case StatusUnhealthy:
		return symUnhealthy
	}
	return symUnknown
}

// statusRank orders statuses trouble first.
func statusRank(status string) int {
	switch status {
	case StatusUnhealthy:
		return 0
	case StatusCooldown:
		return 1
	case StatusProbing:
		return 2
	case StatusHealthy:
		return 4
	}
	return 3
}

// width is the number of terminal cells s takes, ignoring escape codes.
func width(s string) int { return ansi.StringWidth(s) }

// truncate cuts s to at most w cells, ending it with … when it was cut.
func truncate(s string, w int) string {
	if w <= 0 {
		return ""
	}
	if width(s) <= w {
		return s
	}
	return ansi.Truncate(s, w, ellipsis)
}

// padRight truncates or pads s with spaces to exactly w cells.
func padRight(s string, w int) string {
	s = truncate(s, w)
	if n := w - width(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// padLeft truncates or pads s with leading spaces to exactly w cells.
func padLeft(s string, w int) string {
	s = truncate(s, w)
	if n := w - width(s); n > 0 {
		s = strings.Repeat(" ", n) + s
	}
	return s
}

// oneLine collapses whitespace (including newlines) so a message fits a row.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// countdown formats the time left until a deadline, rounded up to whole
// seconds so 0s only shows once the deadline has passed: 27s, 4m05s, 1h02m.
func countdown(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	secs := int64(math.Ceil(d.Seconds()))
	return compactDuration(time.Duration(secs) * time.Second)
}

// compactDuration formats d at second resolution, with at most two units.
func compactDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	secs := int64(d / time.Second)
	days, secs := secs/86400, secs%86400
	hours, secs := secs/3600, secs%3600
	mins, secs := secs/60, secs%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%02dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh%02dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm%02ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

// latency formats a latency figure: 850ms, 1.25s, 12.3s; – when unknown.
func latency(d time.Duration) string {
	switch {
	case d <= 0:
		return noValue
	case d < time.Millisecond:
		return fmt.Sprintf("%dµs", d/time.Microsecond)
	case d < time.Second:
		return fmt.Sprintf("%dms", d/time.Millisecond)
	case d < 10*time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// rate formats a per-unit rate: 0, 3.5, 42, 12.3k; – when unknown.
func rate(v float64, ok bool) string {
	switch {
	case !ok:
		return noValue
	case v == 0:
		return "0"
	case v < 10:
		return fmt.Sprintf("%.1f", v)
	case v < 10000:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1fk", v/1000)
}

// percent formats a ratio in [0,1] as 0%, 2.5%, 33%; – when unknown.
func percent(v float64, ok bool) string {
	switch {
	case !ok:
		return noValue
	case v == 0:
		return "0%"
	case v < 0.1:
		return fmt.Sprintf("%.1f%%", v*100)
	}
	return fmt.Sprintf("%.0f%%", v*100)
}

// clock formats a wall time as 15:04:05 in loc.
func clock(t time.Time, loc *time.Location) string {
	if t.IsZero() {
		return noValue
	}
	return t.In(loc).Format("15:04:05")
}

// ago formats how long ago t was, relative to now: "3s ago".
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return compactDuration(now.Sub(t)) + " ago"
}

// secretKeyWords are substrings of config keys whose values are never shown,
// in case a source forgets that Config must not carry secrets.
var secretKeyWords = []string{"secret", "password", "token", "api_key", "apikey", "authorization", "credential"}

func maskConfigValue(k, v string) string {
	lk := strings.ToLower(k)
	for _, w := range secretKeyWords {
		if strings.Contains(lk, w) {
			return "(hidden)"
		}
	}
	return v
}

// costRate formats a cost per hour in US dollars: $0.42/h, <$0.01/h for a
// tiny one, $0.00/h for a priced model at rest; – when unknown or when the
// model has no price (it has never cost anything), so a free-looking
// $0.00 is never a missing price.
func costRate(v float64, ok, priced bool) string {
	if !ok || !priced {
		return noValue
	}
	return dollars(v) + "/h"
}

// costTotal formats a cumulative cost in US dollars: $12.34, <$0.01; –
// when it is 0 (no price, or nothing answered yet).
func costTotal(v float64) string {
	if v <= 0 {
		return noValue
	}
	return dollars(v)
}

// dollars formats a non-negative amount: $0.00, <$0.01, $0.42, $123, $12.3k.
func dollars(v float64) string {
	switch {
	case v <= 0:
		return "$0.00"
	case v < 0.005:
		return "<$0.01"
	case v < 100:
		return fmt.Sprintf("$%.2f", v)
	case v < 10000:
		return fmt.Sprintf("$%.0f", v)
	}
	return fmt.Sprintf("$%.1fk", v/1000)
}

// count formats a whole number compactly: 58, 9.1k, 91k, 100k, 1.2M.
func count(n int64) string {
	v := float64(n)
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 10_000:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1000), ".0") + "k"
	case n < 1_000_000:
		return fmt.Sprintf("%.0fk", math.Floor(v/1000))
	case n < 10_000_000:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", v/1e6), ".0") + "M"
	}
	return fmt.Sprintf("%.0fM", math.Floor(v/1e6))
}
