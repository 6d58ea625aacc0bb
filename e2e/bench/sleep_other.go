//go:build !(linux && (amd64 || arm64))

package bench

import "time"

// sleeper waits with the Go timer, which may fire up to a millisecond late
// when the process is idle.
type sleeper struct{}

func newSleeper() *sleeper { return &sleeper{} }

func (s *sleeper) close() {}

// waitUntil returns at t, or as soon after as the Go timer allows.
func (s *sleeper) waitUntil(t time.Time) {
	if d := time.Until(t); d > 0 {
		time.Sleep(d)
	}
}
