package limit

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// benchLimits sets every dimension, high enough that nothing is refused at
// one request per simulated millisecond (60,000 a minute).
var benchLimits = Limits{
	RPM: 1 << 16, RPD: 1 << 40, TPM: 1 << 40, TPD: 1 << 40, Concurrency: 1 << 20,
	Budget: &Budget{AmountUSD: 1e9, Period: PeriodMonth},
}

func benchLimiter(b *testing.B) *Limiter {
	b.Helper()
	saved := maxExactLog
	maxExactLog = 1 << 16
	b.Cleanup(func() { maxExactLog = saved })
	l := New(Options{})
	b.Cleanup(func() { _ = l.Close() })
	return l
}

func acquireDone(b *testing.B, l *Limiter, now time.Time, s ...Subject) {
	tk, rej := l.Acquire(now, 100, s...)
	if rej != nil {
		b.Fatalf("refused: %v", rej)
	}
	tk.DoneAt(now, 120, 0.0001)
}

// BenchmarkAcquireDone is one request's limiter cost with one limited scope.
func BenchmarkAcquireDone(b *testing.B) {
	l := benchLimiter(b)
	s := callerKey("k", benchLimits)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		acquireDone(b, l, t0.Add(time.Duration(i)*time.Millisecond), s)
		i++
	}
}

// BenchmarkAcquireDoneKeyAndModel is the usual request: a caller key and a
// model, both limited.
func BenchmarkAcquireDoneKeyAndModel(b *testing.B) {
	l := benchLimiter(b)
	s := []Subject{callerKey("k", benchLimits), model("m", benchLimits)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		acquireDone(b, l, t0.Add(time.Duration(i)*time.Millisecond), s...)
		i++
	}
}

// BenchmarkAcquireDoneParallelOneKey has every goroutine on the same key:
// the worst case, all contending for one bucket.
func BenchmarkAcquireDoneParallelOneKey(b *testing.B) {
	l := benchLimiter(b)
	s := callerKey("k", benchLimits)
	var clock atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			acquireDone(b, l, t0.Add(time.Duration(clock.Add(1))*time.Millisecond), s)
		}
	})
}

// BenchmarkAcquireDoneParallelManyKeys has each goroutine on its own key
// (of 1024): buckets do not contend.
func BenchmarkAcquireDoneParallelManyKeys(b *testing.B) {
	l := benchLimiter(b)
	keys := make([]Subject, 1024)
	for i := range keys {
		keys[i] = callerKey("k"+strconv.Itoa(i), benchLimits)
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := next.Add(1)
		i := 0
		for pb.Next() {
			s := keys[(int(g)*97+i)%len(keys)]
			acquireDone(b, l, t0.Add(time.Duration(i)*time.Millisecond), s)
			i++
		}
	})
}

// BenchmarkAcquireDoneRPMConcurrency is a caller key with the usual pair of
// limits, rpm and concurrency, and nothing else.
func BenchmarkAcquireDoneRPMConcurrency(b *testing.B) {
	l := benchLimiter(b)
	s := callerKey("k", Limits{RPM: 1 << 16, Concurrency: 64})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		acquireDone(b, l, t0.Add(time.Duration(i)*time.Millisecond), s)
		i++
	}
}
