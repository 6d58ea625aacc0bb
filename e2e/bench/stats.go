// Package bench is the benchmark rig behind `make bench`: an open-loop and
// closed-loop HTTP load generator, /proc readers for a process's CPU time and
// peak memory, and a runner that starts the mock upstream, aisix (and nginx
// when installed) on loopback and prints a markdown table. It is tooling for
// the repository, not part of the aisix binary.
package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p <= 100) of sorted, which
// must be in ascending order, by the nearest-rank method: the smallest value
// such that at least p% of the values are less than or equal to it. It
// returns 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

// Summary is the distribution of a set of latencies.
type Summary struct {
	N    int
	Min  time.Duration
	P50  time.Duration
	P90  time.Duration
	P99  time.Duration
	Max  time.Duration
	Mean time.Duration
}

// Summarize sorts d in place and returns its distribution.
func Summarize(d []time.Duration) Summary {
	if len(d) == 0 {
		return Summary{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return Summary{
		N:    len(d),
		Min:  d[0],
		P50:  Percentile(d, 50),
		P90:  Percentile(d, 90),
		P99:  Percentile(d, 99),
		Max:  d[len(d)-1],
		Mean: sum / time.Duration(len(d)),
	}
}

// Median returns the median of xs (the mean of the two middle values for an
// even count), ignoring NaNs; NaN when there is no value.
func Median(xs []float64) float64 {
	v := finite(xs)
	if len(v) == 0 {
		return math.NaN()
	}
	slices.Sort(v)
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// Spread returns the smallest and largest of xs, ignoring NaNs; NaNs when
// there is no value.
func Spread(xs []float64) (lo, hi float64) {
	v := finite(xs)
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	return slices.Min(v), slices.Max(v)
}

func finite(xs []float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		if !math.IsNaN(x) {
			out = append(out, x)
		}
	}
	return out
}
