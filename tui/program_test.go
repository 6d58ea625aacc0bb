package tui

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/teatest"
)

// waitTimeout bounds every wait for the screen: generous, for a busy
// 2-core machine; a passing run takes a fraction of it.
const waitTimeout = 15 * time.Second

// waitFor waits until the program has drawn all of want (since the last
// wait). Lines the renderer did not redraw are not drawn again, so wait
// for text that changes.
func waitFor(t *testing.T, tm *teatest.TestModel, want ...string) {
	t.Helper()
	teatest.WaitFor(t, tm.Output(), func(b []byte) bool {
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				return false
			}
		}
		return true
	}, teatest.WithDuration(waitTimeout), teatest.WithCheckInterval(20*time.Millisecond))
}

// recovered is the tutorial's setup after the primary's cooldown ended and
// a probe succeeded.
func recovered(now time.Time) Snapshot {
	s := tutorialSnapshot(now, 3)
	p := &s.Models[1]
	p.Status, p.Reason, p.CooldownUntil = StatusHealthy, "", time.Time{}
	s.Groups[0].Serving = "gpt-4o-primary"
	s.Groups[0].Targets[0] = GroupTarget{Name: "gpt-4o-primary", Status: StatusHealthy}
	return s
}

// TestProgram runs the dashboard as a real bubbletea program against a fake
// server and follows the tutorial: the primary cools down with a ticking
// countdown, the failover shows in the feed, the server goes away and comes
// back, the primary turns healthy again.
func TestProgram(t *testing.T) {
	c := newClock(t0)
	src := &fakeSource{clock: c}
	src.set(tutorialSnapshot(t0, 1), nil)

	m := New(src, Options{Server: "127.0.0.1:3001", Now: c.Now, NoColor: true, RefreshEvery: 100 * time.Millisecond})
	m.backoffUnit = 20 * time.Millisecond
	tm := teatest.NewTestModel(t, m, teatest.WithInitialTermSize(120, 40))

	waitFor(t, tm, "● live", "◔ cooldown 27s  gpt-4o-primary", "skipped: ◔ gpt-4o-primary (cooldown: transport_error, 27s)")

	// The failover arrives through the event cursor.
	src.addEvents(tutorialEvents(t0)...)
	waitFor(t, tm, "12:03:41 chat-prod: gpt-4o-primary transport_error ×2 → served by gpt-4o-secondary")

	// The countdown follows the local clock.
	c.Advance(time.Second)
	waitFor(t, tm, "◔ cooldown 26s")

	// The server goes away: last data kept, reconnecting, then stale.
	src.set(Snapshot{}, errDown)
	waitFor(t, tm, "reconnecting · ", "connection refused")
	c.Advance(5 * time.Second)
	waitFor(t, tm, "stale since 12:03:4") // :41 or :42, whichever poll was the last good one

	// It comes back after the cooldown ended and a probe succeeded.
	c.Advance(30 * time.Second)
	src.set(recovered(c.Now()), nil)
	src.addEvents(
		Event{Seq: 9, Time: c.Now(), Kind: EventProbe, Model: "chat-prod", Target: "gpt-4o-primary", Detail: ProbeSucceeded},
		Event{Seq: 10, Time: c.Now(), Kind: EventCooldownLeft, Model: "chat-prod", Target: "gpt-4o-primary"},
	)
	waitFor(t, tm, "● live", "▶ gpt-4o-primary (serving)", "gpt-4o-primary left cooldown")

	// Keys: into the primary's details and back.
	tm.Send(tea.KeyMsg{Type: tea.KeyDown}) // llama-local is first (unhealthy)
	tm.Send(tea.KeyMsg{Type: tea.KeyDown}) // then claude-haiku (probing), then the healthy ones
	tm.Send(tea.KeyMsg{Type: tea.KeyEnter})
	waitFor(t, tm, "COOLDOWN HISTORY", "transport_error  lasted")
	tm.Send(tea.KeyMsg{Type: tea.KeyEsc})
	waitFor(t, tm, "ROUTING GROUPS")

	tm.Type("q")
	final, ok := tm.FinalModel(t, teatest.WithFinalTimeout(waitTimeout)).(Model)
	if !ok {
		t.Fatal("final model is not a Model")
	}
	if final.failures != 0 || final.mode != modeMain || final.cursor != 10 {
		t.Errorf("final: failures %d mode %v cursor %d", final.failures, final.mode, final.cursor)
	}
	r, _ := final.data.modelByName("gpt-4o-primary")
	if r.Status != StatusHealthy {
		t.Errorf("primary %s, want healthy", r.Status)
	}
}

// syncBuffer is a bytes.Buffer safe for the program's writer goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		stop func(cancel context.CancelFunc, keys io.Writer)
		// drawn: a quit draws the last frame; a killed program may not.
		drawn bool
	}{
		{"q quits", func(_ context.CancelFunc, keys io.Writer) { _, _ = keys.Write([]byte("q")) }, true},
		{"ctrl+c quits", func(_ context.CancelFunc, keys io.Writer) { _, _ = keys.Write([]byte{0x03}) }, true},
		{"context ends", func(cancel context.CancelFunc, _ io.Writer) { cancel() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &fakeSource{fetchedC: make(chan struct{}, 1)}
			src.set(tutorialSnapshot(t0, 1), nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			in, keys := io.Pipe()
			defer in.Close()
			out := &syncBuffer{}

			done := make(chan error, 1)
			go func() {
				done <- Run(ctx, src, Options{Input: in, Output: out, NoColor: true})
			}()
			select {
			case <-src.fetchedC:
			case <-time.After(waitTimeout):
				t.Fatal("the dashboard never polled the source")
			}
			go tt.stop(cancel, keys)
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("Run = %v, want nil", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("Run did not return")
			}
			s := out.String()
			if !strings.Contains(s, "\x1b[?1049h") || !strings.Contains(s, "\x1b[?1049l") {
				t.Errorf("the alternate screen was not entered and left: %q", s)
			}
			if tt.drawn && !strings.Contains(s, "aisix status") {
				t.Errorf("no dashboard in the output: %q", s)
			}
		})
	}
}
