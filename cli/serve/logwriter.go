package serve

import (
	"io"
	"sync"
	"time"
)

// Access lines are buffered: serve writes one per request, and a write
// system call per line was about 5 % of the gateway's CPU at 1000
// requests/s. They are written out in batches, at most logFlushEvery after
// they were logged or as soon as logFlushBytes are pending, and at once on
// Close. Every other line goes through Direct, which writes what is
// pending and then the line at once, under the same lock: lines keep their
// order and are never interleaved. The slog handler already serialises its
// writes under one lock, so this one adds no contention of its own.
const (
	logFlushEvery = 100 * time.Millisecond
	logFlushBytes = 32 << 10
)

// logWriter is an io.Writer that batches writes to w.
type logWriter struct {
	mu     sync.Mutex
	w      io.Writer
	buf    []byte
	armed  bool
	closed bool
	timer  *time.Timer
}

func newLogWriter(w io.Writer) *logWriter {
	lw := &logWriter{w: w, buf: make([]byte, 0, logFlushBytes)}
	lw.timer = time.AfterFunc(time.Hour, lw.flush)
	lw.timer.Stop()
	return lw
}

// Write keeps p for the next flush; after Close it writes p through.
func (lw *logWriter) Write(p []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.closed {
		return lw.w.Write(p)
	}
	lw.buf = append(lw.buf, p...)
	switch {
	case len(lw.buf) >= logFlushBytes:
		lw.flushLocked()
	case !lw.armed:
		lw.armed = true
		lw.timer.Reset(logFlushEvery)
	}
	return len(p), nil
}

// Direct returns a writer that writes at once, after what is pending.
func (lw *logWriter) Direct() io.Writer { return directWriter{lw} }

type directWriter struct{ lw *logWriter }

func (d directWriter) Write(p []byte) (int, error) {
	lw := d.lw
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
	return lw.w.Write(p)
}

func (lw *logWriter) flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
}

func (lw *logWriter) flushLocked() {
	lw.armed = false
	if len(lw.buf) == 0 {
		return
	}
	// A failed write loses its lines: there is nowhere left to say so.
	_, _ = lw.w.Write(lw.buf)
	if cap(lw.buf) > 4*logFlushBytes {
		lw.buf = make([]byte, 0, logFlushBytes)
	} else {
		lw.buf = lw.buf[:0]
	}
}

// Close writes what is pending; later writes go straight through.
func (lw *logWriter) Close() error {
	lw.timer.Stop()
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.flushLocked()
	lw.closed = true
	return nil
}
