package bench

import (
	"math"
	"testing"
	"time"
)

func ms(xs ...int) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(i+1) * time.Millisecond
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"p50 of 1..100", hundred, 50, 50 * time.Millisecond},
		{"p90 of 1..100", hundred, 90, 90 * time.Millisecond},
		{"p99 of 1..100", hundred, 99, 99 * time.Millisecond},
		{"p100 of 1..100", hundred, 100, 100 * time.Millisecond},
		{"p99.9 of 1..100 rounds up", hundred, 99.9, 100 * time.Millisecond},
		{"p50 of four is the second", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p51 of four is the third", ms(1, 2, 3, 4), 51, 3 * time.Millisecond},
		{"p0 clamps to the smallest", ms(1, 2, 3), 0, time.Millisecond},
		{"above 100 clamps to the largest", ms(1, 2, 3), 150, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(p%v) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	d := ms(5, 1, 4, 2, 3, 10, 9, 8, 7, 6)
	s := Summarize(d)
	want := Summary{N: 10, Min: time.Millisecond, P50: 5 * time.Millisecond, P90: 9 * time.Millisecond,
		P99: 10 * time.Millisecond, Max: 10 * time.Millisecond, Mean: 5500 * time.Microsecond}
	if s != want {
		t.Errorf("Summarize = %+v, want %+v", s, want)
	}
	if d[0] != time.Millisecond || d[9] != 10*time.Millisecond {
		t.Errorf("Summarize did not sort its input: %v", d)
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}

func TestMedianSpread(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name           string
		xs             []float64
		median, lo, hi float64
	}{
		{"odd", []float64{3, 1, 2}, 2, 1, 3},
		{"even", []float64{4, 1, 3, 2}, 2.5, 1, 4},
		{"NaNs ignored", []float64{nan, 5, nan, 1, 3}, 3, 1, 5},
		{"one", []float64{-2}, -2, -2, -2},
		{"none", nil, nan, nan, nan},
		{"only NaN", []float64{nan}, nan, nan, nan},
	}
	same := func(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.xs...)
			if got := Median(in); !same(got, tt.median) {
				t.Errorf("Median = %v, want %v", got, tt.median)
			}
			lo, hi := Spread(in)
			if !same(lo, tt.lo) || !same(hi, tt.hi) {
				t.Errorf("Spread = %v, %v, want %v, %v", lo, hi, tt.lo, tt.hi)
			}
			for i := range in {
				if !same(in[i], tt.xs[i]) {
					t.Fatalf("input modified: %v, was %v", in, tt.xs)
				}
			}
		})
	}
}

func TestCell(t *testing.T) {
	tests := []struct {
		xs     []float64
		format string
		want   string
	}{
		{[]float64{1.5, 1.2, 2.0}, "%.2f", "1.50 (1.20–2.00)"},
		{[]float64{1.5}, "%.2f", "1.50"},
		{[]float64{1.501, 1.499}, "%.2f", "1.50"},
		{[]float64{math.NaN()}, "%.2f", dash},
		{[]float64{1, 3, 2}, "%.1f ms", "2.0 ms (1.0–3.0)"},
		{[]float64{-0.5, 0.25}, "%+.2f ms", "-0.12 ms (-0.50–+0.25)"},
	}
	for _, tt := range tests {
		if got := cell(tt.xs, tt.format); got != tt.want {
			t.Errorf("cell(%v, %q) = %q, want %q", tt.xs, tt.format, got, tt.want)
		}
	}
}
