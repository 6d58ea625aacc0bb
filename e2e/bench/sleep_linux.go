//go:build linux && (amd64 || arm64)

package bench

import (
	"os"
	"syscall"
	"time"
	"unsafe"
)

// spinWindow is the last stretch before a deadline that a sleeper spins
// through: a timer wakes a few tens of microseconds late.
const spinWindow = 80 * time.Microsecond

// sleeper waits for a point in time precisely: on a timerfd read through
// the Go netpoller, then a short spin on the clock. The plain Go timer
// behind time.Sleep can fire up to a millisecond late when the process is
// idle (the netpoller waits in whole milliseconds), which would add up to a
// millisecond of the generator's own noise to every open-loop latency; a
// nanosleep is precise but blocks a thread in a system call, and the Go
// scheduler then delays the goroutines that handle responses (measured: a
// 1 ms latency floor at 1000 rps). A timerfd parks only the goroutine.
type sleeper struct {
	f   *os.File
	fd  uintptr
	buf [8]byte
}

const (
	clockMonotonic = 1
	tfdNonblock    = syscall.O_NONBLOCK
	tfdCloexec     = syscall.O_CLOEXEC
)

// newSleeper returns a sleeper, or nil when no timerfd can be made (then
// waitUntil falls back to time.Sleep).
func newSleeper() *sleeper {
	fd, _, e := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, clockMonotonic, tfdNonblock|tfdCloexec, 0)
	if e != 0 {
		return nil
	}
	return &sleeper{f: os.NewFile(fd, "timerfd"), fd: fd}
}

// close releases the timerfd.
func (s *sleeper) close() {
	if s != nil {
		s.f.Close()
	}
}

// waitUntil returns at t, or at once when t has passed.
func (s *sleeper) waitUntil(t time.Time) {
	if s == nil {
		if d := time.Until(t); d > 0 {
			time.Sleep(d)
		}
		return
	}
	if d := time.Until(t) - spinWindow; d > 0 {
		// struct itimerspec: it_interval (zero: one shot), it_value (relative).
		spec := [4]int64{0, 0, int64(d / time.Second), int64(d % time.Second)}
		_, _, e := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, s.fd, 0, uintptr(unsafe.Pointer(&spec)), 0, 0, 0)
		if e == 0 {
			_, _ = s.f.Read(s.buf[:])
		} else {
			time.Sleep(d)
		}
	}
	for time.Now().Before(t) {
	}
}
