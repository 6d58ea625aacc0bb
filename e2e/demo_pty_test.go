package e2e

import (
	"bytes"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// TestDemoDashboardInTerminal drives `aisix demo` in a pseudo-terminal as
// a person would: wait for the dashboard, break the primary with 1, watch
// the failover and the cooldown, restore it with 0, watch the probe bring
// it back, quit with q.
func TestDemoDashboardInTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the demo in a pseudo-terminal through a cooldown")
	}
	t.Parallel()
	h := newDemoHome(t)
	cmd := exec.Command(filepath.Join(binDir, "aisix"), "demo")
	cmd.Env = append(h.env, "TERM=xterm-256color")
	start := time.Now()
	tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 130})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	screen := &terminal{changed: make(chan struct{}, 1)}
	go screen.copyFrom(tty)
	// exited is closed when the demo has exited, with its result in waitErr.
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	press := func(key string) {
		t.Helper()
		if _, err := tty.Write([]byte(key)); err != nil {
			t.Fatal(err)
		}
	}

	// Answer the terminal query bubbletea makes as the process starts, as
	// a real terminal does; unanswered, it costs a 5 s timeout.
	answerColorQuery(t, screen, tty)

	// The dashboard, its key help, and traffic served by the primary.
	screen.waitFor(t, "aisix status", "● live", "1 refuse • 2 hang • 3 500 • 4 429 • 0 restore primary • ? help • q quit")
	screen.waitMatch(t, regexp.MustCompile(`▶ gpt-4o-primary \(serving\)`), "")
	t.Logf("dashboard up %v after start", time.Since(start).Round(time.Millisecond))

	pressed := time.Now()
	press("1")
	screen.waitFor(t, "primary now refuses connections")
	screen.waitFor(t, "→ served by gpt-4o-secondary")
	t.Logf("first failover on screen %v after start (%v after pressing 1)",
		time.Since(start).Round(time.Millisecond), time.Since(pressed).Round(time.Millisecond))
	screen.waitMatch(t, regexp.MustCompile(`cooldown \d+s\s+gpt-4o-primary\s+transport_error`), "")
	screen.waitFor(t, "▶ gpt-4o-secondary (serving)")

	press("0")
	screen.waitFor(t, "primary restored")
	screen.waitMatch(t, regexp.MustCompile(`gpt-4o-primary (probe succeeded|left cooldown)`), "")
	screen.waitMatch(t, regexp.MustCompile(`healthy\s+gpt-4o-primary`), "")
	t.Logf("recovered on screen %v after start", time.Since(start).Round(time.Millisecond))

	press("q")
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("aisix demo exited with %v; screen:\n%s", waitErr, tail(screen.text(), 4000))
		}
	case <-time.After(60 * time.Second):
		t.Fatal("aisix demo did not quit on q")
	}
	out := screen.text()
	for _, want := range []string{"dashboard closed", "demo stopped", "AISIX_ADMIN_KEY=admin-demo-"} {
		if !strings.Contains(out, want) {
			t.Errorf("after quitting, no %q on the terminal:\n%s", want, tail(out, 4000))
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "level=") {
		t.Errorf("a panic or serve's log reached the terminal:\n%s", tail(out, 4000))
	}
	h.checkClean(t, out)
}

// answerColorQuery waits for the background colour query (OSC 11, then a
// cursor position request) and answers both as a dark terminal would.
func answerColorQuery(t *testing.T, s *terminal, tty io.Writer) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for {
		s.mu.Lock()
		asked := bytes.Contains(s.raw.Bytes(), []byte("\x1b[6n"))
		s.mu.Unlock()
		if asked {
			break
		}
		select {
		case <-s.changed:
		case <-deadline:
			t.Fatal("the demo never queried the terminal")
		}
	}
	if _, err := io.WriteString(tty, "\x1b]11;rgb:0000/0000/0000\x1b\\\x1b[1;1R"); err != nil {
		t.Fatal(err)
	}
}

// TestDemoStopsInTerminal: Ctrl-C and SIGTERM stop the demo on its
// dashboard as q does: exit 0, everything stopped, nothing left behind.
func TestDemoStopsInTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the demo in a pseudo-terminal")
	}
	t.Parallel()
	for _, tt := range []struct {
		name string
		stop func(cmd *exec.Cmd, tty io.Writer) error
	}{
		{"ctrl+c", func(_ *exec.Cmd, tty io.Writer) error { _, err := tty.Write([]byte{0x03}); return err }},
		{"SIGTERM", func(cmd *exec.Cmd, _ io.Writer) error { return cmd.Process.Signal(syscall.SIGTERM) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newDemoHome(t)
			cmd := exec.Command(filepath.Join(binDir, "aisix"), "demo")
			cmd.Env = append(h.env, "TERM=xterm-256color")
			tty, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 30, Cols: 100})
			if err != nil {
				t.Fatal(err)
			}
			defer tty.Close()
			screen := &terminal{changed: make(chan struct{}, 1)}
			go screen.copyFrom(tty)
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			answerColorQuery(t, screen, tty)
			screen.waitFor(t, "● live", "0 restore primary")
			if err := tt.stop(cmd, tty); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("aisix demo exited with %v; screen:\n%s", err, tail(screen.text(), 4000))
				}
			case <-time.After(60 * time.Second):
				// Its goroutines, on the terminal, say where it is stuck.
				_ = cmd.Process.Signal(syscall.SIGQUIT)
				<-exited
				t.Fatalf("aisix demo did not stop:\n%s", tail(screen.text(), 60000))
			}
			screen.waitFor(t, "demo stopped")
			h.checkClean(t, screen.text())
		})
	}
}
