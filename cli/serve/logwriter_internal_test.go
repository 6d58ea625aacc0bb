package serve

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writes++
	return l.b.Write(p)
}

func (l *lockedBuffer) snapshot() (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String(), l.writes
}

func TestLogWriterBatches(t *testing.T) {
	out := &lockedBuffer{}
	lw := newLogWriter(out)
	for i := 0; i < 100; i++ {
		_, _ = lw.Write([]byte("line\n"))
	}
	// Written out within about logFlushEvery, in one write.
	deadline := time.Now().Add(10 * time.Second)
	for {
		s, n := out.snapshot()
		if s == strings.Repeat("line\n", 100) {
			if n != 1 {
				t.Errorf("100 lines took %d writes, want 1", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lines not flushed within 10s: %q", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A burst over logFlushBytes is written at once, without the timer.
	big := bytes.Repeat([]byte("x"), logFlushBytes)
	_, _ = lw.Write(big)
	if s, _ := out.snapshot(); !strings.HasSuffix(s, string(big)) {
		t.Error("a full buffer was not written at once")
	}
	// Close writes what is pending; later writes go straight through.
	_, _ = lw.Write([]byte("last\n"))
	_ = lw.Close()
	if s, _ := out.snapshot(); !strings.HasSuffix(s, "last\n") {
		t.Error("Close did not flush")
	}
	_, _ = lw.Write([]byte("after\n"))
	if s, _ := out.snapshot(); !strings.HasSuffix(s, "after\n") {
		t.Error("a write after Close was kept")
	}
}

// TestLogWriterDirect: a direct line writes what is pending first, so the
// order of lines holds.
func TestLogWriterDirect(t *testing.T) {
	out := &lockedBuffer{}
	lw := newLogWriter(out)
	defer lw.Close()
	_, _ = lw.Write([]byte("access 1\n"))
	_, _ = lw.Direct().Write([]byte("warn\n"))
	if s, _ := out.snapshot(); s != "access 1\nwarn\n" {
		t.Errorf("output = %q", s)
	}
}
