package tui

import (
	"testing"
	"time"
)

func TestFormatters(t *testing.T) {
	tests := []struct {
		name string
		got  string
		want string
	}{
		{"countdown rounds up", countdown(26*time.Second + time.Millisecond), "27s"},
		{"countdown exact", countdown(27 * time.Second), "27s"},
		{"countdown over", countdown(-time.Second), "0s"},
		{"countdown minutes", countdown(4*time.Minute + 5*time.Second), "4m05s"},
		{"countdown hours", countdown(62 * time.Minute), "1h02m"},
		{"duration days", compactDuration(50 * time.Hour), "2d02h"},
		{"duration negative", compactDuration(-time.Hour), "0s"},
		{"latency unknown", latency(0), "–"},
		{"latency µs", latency(400 * time.Microsecond), "400µs"},
		{"latency ms", latency(850 * time.Millisecond), "850ms"},
		{"latency s", latency(1250 * time.Millisecond), "1.25s"},
		{"latency long", latency(12300 * time.Millisecond), "12.3s"},
		{"rate unknown", rate(5, false), "–"},
		{"rate zero", rate(0, true), "0"},
		{"rate small", rate(3.45, true), "3.5"},
		{"rate", rate(42.4, true), "42"},
		{"rate large", rate(12345, true), "12.3k"},
		{"percent unknown", percent(0, false), "–"},
		{"percent zero", percent(0, true), "0%"},
		{"percent small", percent(0.025, true), "2.5%"},
		{"percent", percent(0.333, true), "33%"},
		{"percent all", percent(1, true), "100%"},
		{"cost per hour", costRate(0.42, true, true), "$0.42/h"},
		{"cost per hour tiny", costRate(0.0004, true, true), "<$0.01/h"},
		{"cost per hour rounds to a cent", costRate(0.006, true, true), "$0.01/h"},
		{"cost per hour at rest", costRate(0, true, true), "$0.00/h"},
		{"cost per hour without a price", costRate(0, true, false), "–"},
		{"cost per hour unknown", costRate(0.42, false, true), "–"},
		{"cost per hour large", costRate(123.4, true, true), "$123/h"},
		{"cost per hour huge", costRate(12345, true, true), "$12.3k/h"},
		{"cost total", costTotal(12.345), "$12.35"},
		{"cost total tiny", costTotal(0.001), "<$0.01"},
		{"cost total none", costTotal(0), "–"},
		{"clock zero", clock(time.Time{}, time.UTC), "–"},
		{"clock", clock(t0, time.UTC), "12:03:41"},
		{"ago", ago(t0.Add(-95*time.Second), t0), "1m35s ago"},
		{"ago never", ago(time.Time{}, t0), "never"},
		{"truncate", truncate("gpt-4o-secondary", 8), "gpt-4o-…"},
		{"truncate fits", truncate("gpt", 8), "gpt"},
		{"truncate zero", truncate("gpt", 0), ""},
		{"padRight", padRight("ab", 4), "ab  "},
		{"padLeft", padLeft("ab", 4), "  ab"},
		{"oneLine", oneLine("a\n  b\tc "), "a b c"},
		{"mask secret", maskConfigValue("provider_secret", "sk-1"), "(hidden)"},
		{"mask api key", maskConfigValue("API_KEY", "sk-1"), "(hidden)"},
		{"no mask", maskConfigValue("api_base", "https://x"), "https://x"},
		{"symbol unknown", statusSymbol("weird"), "?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
}

func TestJoinLR(t *testing.T) {
	tests := []struct {
		left, right string
		w           int
		want        string
	}{
		{"abc", "xy", 10, "abc     xy"},
		{"abcdefgh", "xy", 10, "abcde…  xy"},
		{"abc", "", 10, "abc"},
		{"abc", "wxyz", 4, "wxyz"},
		{"abc", "vwxyz", 4, "vwx…"},
	}
	for _, tt := range tests {
		if got := joinLR(tt.left, tt.right, tt.w); got != tt.want || width(got) > tt.w {
			t.Errorf("joinLR(%q, %q, %d) = %q, want %q", tt.left, tt.right, tt.w, got, tt.want)
		}
	}
}
