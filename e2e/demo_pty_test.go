package e2e

import (
	"bytes"
	"io"
	"os"
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
	d := startDemoTerm(t, 40, 130)
	screen := d.screen

	// The dashboard, its key help, and traffic served by the primary.
	screen.waitFor(t, "aisix status", "● live", "1 refuse • 2 hang • 3 500 • 4 429 • 0 restore primary • ? help • q quit")
	screen.waitMatch(t, regexp.MustCompile(`▶ gpt-4o-primary \(serving\)`), "")
	t.Logf("dashboard up %v after start", time.Since(d.start).Round(time.Millisecond))

	pressed := time.Now()
	d.press("1")
	screen.waitFor(t, "primary now refuses connections")
	screen.waitFor(t, "→ served by gpt-4o-secondary")
	t.Logf("first failover on screen %v after start (%v after pressing 1)",
		time.Since(d.start).Round(time.Millisecond), time.Since(pressed).Round(time.Millisecond))
	screen.waitMatch(t, regexp.MustCompile(`cooldown \d+s\s+gpt-4o-primary\s+transport_error`), "")
	screen.waitFor(t, "▶ gpt-4o-secondary (serving)")

	d.press("0")
	screen.waitFor(t, "primary restored")
	screen.waitMatch(t, regexp.MustCompile(`gpt-4o-primary (probe succeeded|left cooldown)`), "")
	screen.waitMatch(t, regexp.MustCompile(`healthy\s+gpt-4o-primary`), "")
	t.Logf("recovered on screen %v after start", time.Since(d.start).Round(time.Millisecond))

	d.press("q")
	out := d.waitStopped()
	for _, want := range []string{"dashboard closed", "AISIX_ADMIN_KEY=admin-demo-"} {
		if !strings.Contains(out, want) {
			t.Errorf("after quitting, no %q on the terminal:\n%s", want, tail(out, 4000))
		}
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "level=") {
		t.Errorf("a panic or serve's log reached the terminal:\n%s", tail(out, 4000))
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
		stop func(d *demoTerm) error
	}{
		{"ctrl+c", func(d *demoTerm) error { _, err := d.tty.Write([]byte{0x03}); return err }},
		{"SIGTERM", func(d *demoTerm) error { return d.cmd.Process.Signal(syscall.SIGTERM) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := startDemoTerm(t, 30, 100)
			d.screen.waitFor(t, "● live", "0 restore primary")
			if err := tt.stop(d); err != nil {
				t.Fatal(err)
			}
			d.waitStopped()
		})
	}
}

// demoTerm is `aisix demo` running in a pseudo-terminal.
type demoTerm struct {
	t      *testing.T
	home   *demoHome
	cmd    *exec.Cmd
	tty    *os.File
	screen *terminal
	start  time.Time
	// exited is closed when the demo has exited, with its result in waitErr.
	exited  chan struct{}
	waitErr error
}

// startDemoTerm starts `aisix demo` on a rows×cols terminal and answers
// its start-up query; it is killed when the test ends, if still running.
func startDemoTerm(t *testing.T, rows, cols uint16) *demoTerm {
	t.Helper()
	d := &demoTerm{t: t, home: newDemoHome(t), screen: &terminal{changed: make(chan struct{}, 1)}, exited: make(chan struct{})}
	d.cmd = exec.Command(filepath.Join(binDir, "aisix"), "demo")
	d.cmd.Env = append(d.home.env, "TERM=xterm-256color")
	d.start = time.Now()
	tty, err := pty.StartWithSize(d.cmd, &pty.Winsize{Rows: rows, Cols: cols})
	if err != nil {
		t.Fatal(err)
	}
	d.tty = tty
	go d.screen.copyFrom(tty)
	go func() { d.waitErr = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		select {
		case <-d.exited:
		default:
			_ = d.cmd.Process.Kill()
			<-d.exited
		}
		tty.Close()
	})
	d.answerColorQuery()
	return d
}

func (d *demoTerm) press(key string) {
	d.t.Helper()
	if _, err := d.tty.Write([]byte(key)); err != nil {
		d.t.Fatal(err)
	}
}

// answerColorQuery waits for the background colour query Bubble Tea makes
// as the process starts (OSC 11, then a cursor position request) and
// answers both as a dark terminal would; unanswered, it costs a 5 s
// timeout that a real terminal does not have.
func (d *demoTerm) answerColorQuery() {
	d.t.Helper()
	s := d.screen
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
			d.t.Fatal("the demo never queried the terminal")
		}
	}
	if _, err := io.WriteString(d.tty, "\x1b]11;rgb:0000/0000/0000\x1b\\\x1b[1;1R"); err != nil {
		d.t.Fatal(err)
	}
}

// waitStopped waits for the demo to exit 0 having stopped everything and
// left nothing behind, and returns what it wrote.
func (d *demoTerm) waitStopped() string {
	d.t.Helper()
	select {
	case <-d.exited:
		if d.waitErr != nil {
			d.t.Fatalf("aisix demo exited with %v; screen:\n%s", d.waitErr, tail(d.screen.text(), 4000))
		}
	case <-time.After(60 * time.Second):
		// Its goroutines, on the terminal, say where it is stuck.
		_ = d.cmd.Process.Signal(syscall.SIGQUIT)
		<-d.exited
		d.t.Fatalf("aisix demo did not stop:\n%s", tail(d.screen.text(), 60000))
	}
	d.screen.waitFor(d.t, "demo stopped")
	out := d.screen.text()
	d.home.checkClean(d.t, out)
	return out
}
