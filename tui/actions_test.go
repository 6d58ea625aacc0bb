package tui

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/exp/golden"
)

// demoActions are the demo's keys, each counting its runs in ran[key].
func demoActions(ran map[string]*atomic.Int32) []Action {
	act := func(k, help, result string) Action {
		ran[k] = &atomic.Int32{}
		return Action{Key: k, Help: help, Run: func(context.Context) string {
			ran[k].Add(1)
			return result
		}}
	}
	return []Action{
		act("1", "refuse", "primary now refuses connections"),
		act("3", "500", "primary now answers 500"),
		act("0", "restore primary", "primary answers normally again"),
	}
}

// withActionsModel is the loaded dashboard with opts.Actions set.
func withActionsModel(t *testing.T, c *fakeClock, w, h int, actions []Action) Model {
	t.Helper()
	m := New(&fakeSource{}, Options{Server: "127.0.0.1:3001", Version: "0.1.0", Now: c.Now, NoColor: true, Actions: actions})
	m = send(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	c.Advance(-time.Minute)
	m = send(t, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 1)})
	c.Advance(time.Minute)
	return send(t, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 2), events: tutorialEvents(c.Now()), next: 8})
}

// lastLine is the bottom line of the screen.
func lastLine(m Model) string {
	lines := strings.Split(m.View(), "\n")
	return lines[len(lines)-1]
}

func TestUpdateActions(t *testing.T) {
	c := newClock(t0)
	ran := map[string]*atomic.Int32{}
	m := withActionsModel(t, c, 120, 40, demoActions(ran))

	if got, want := lastLine(m), "1 refuse • 3 500 • 0 restore primary • ? help • q quit"; got != want {
		t.Errorf("bottom line %q, want %q", got, want)
	}

	// The key shows the action running, and its command runs it.
	m, cmd := sendCmd(t, m, keyMsg("3"))
	if cmd == nil {
		t.Fatal("the action key returned no command")
	}
	if !strings.Contains(m.View(), "500…") {
		t.Errorf("no running action on screen:\n%s", m.View())
	}
	if n := ran["3"].Load(); n != 0 {
		t.Fatalf("the action ran in Update (%d runs)", n)
	}
	msg := cmd()
	if n := ran["3"].Load(); n != 1 {
		t.Fatalf("the command ran the action %d times, want 1", n)
	}
	m = send(t, m, msg)
	if !strings.Contains(m.View(), "primary now answers 500") {
		t.Errorf("the result is not on screen:\n%s", m.View())
	}

	// It stays a few seconds, then goes; the layout keeps its line.
	c.Advance(resultFor - time.Second)
	m = send(t, m, clockMsg(c.Now()))
	if !strings.Contains(m.View(), "primary now answers 500") {
		t.Error("the result went too soon")
	}
	c.Advance(time.Second)
	m = send(t, m, clockMsg(c.Now()))
	if strings.Contains(m.View(), "primary now answers 500") {
		t.Error("the result is still on screen after it expired")
	}
	if n := strings.Count(m.View(), "\n") + 1; n != 40 {
		t.Errorf("screen has %d lines, want 40", n)
	}

	// A result that comes after a later action started is not shown: the
	// later one's is awaited.
	m, first := sendCmd(t, m, keyMsg("1"))
	m, second := sendCmd(t, m, keyMsg("0"))
	m = send(t, m, first())
	if v := m.View(); strings.Contains(v, "refuses connections") || !strings.Contains(v, "restore primary…") {
		t.Errorf("an older action's result replaced a running one:\n%s", v)
	}
	m = send(t, m, second())
	if !strings.Contains(m.View(), "primary answers normally again") {
		t.Errorf("the last action's result is not on screen:\n%s", m.View())
	}

	// While filtering, the digits are the filter's.
	m, cmd = sendCmd(t, send(t, m, keyMsg("/")), keyMsg("1"))
	if cmd != nil || m.filter.Value() != "1" {
		t.Errorf("while filtering, 1 gave a command (%v) and filter %q", cmd != nil, m.filter.Value())
	}
	m = send(t, m, keyMsg("esc"))

	// In the detail view the actions still work.
	m = send(t, m, keyMsg("enter"))
	if _, cmd = sendCmd(t, m, keyMsg("1")); cmd == nil {
		t.Error("the action key did nothing in the detail view")
	}
}

func TestUsableActions(t *testing.T) {
	run := func(context.Context) string { return "done" }
	got := usableActions([]Action{
		{Key: "1", Help: "one", Run: run},
		{Key: "q", Help: "clashes with quit", Run: run},
		{Key: "j", Help: "clashes with down", Run: run},
		{Key: "2", Help: "no run"},
		{Help: "no key", Run: run},
		{Key: "1", Help: "taken by an earlier action", Run: run},
		{Key: "x", Help: "x", Run: run},
	}, newKeyMap())
	var keys []string
	for _, a := range got {
		keys = append(keys, a.Key+"="+a.Help)
	}
	if s := strings.Join(keys, ","); s != "1=one,x=x" {
		t.Errorf("usable actions %s, want 1=one,x=x", s)
	}

	// The dashboard's own keys still do their job.
	c := newClock(t0)
	m := New(&fakeSource{}, Options{Now: c.Now, NoColor: true, Actions: []Action{{Key: "q", Help: "nope", Run: run}}})
	if _, cmd := sendCmd(t, m, keyMsg("q")); cmd == nil {
		t.Fatal("q returned no command")
	} else if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q did not quit")
	}
}

func TestActionPanicIsAResult(t *testing.T) {
	c := newClock(t0)
	m := withActionsModel(t, c, 80, 24, []Action{{Key: "1", Help: "refuse", Run: func(context.Context) string { panic("boom") }}})
	m, cmd := sendCmd(t, m, keyMsg("1"))
	m = send(t, m, cmd())
	if !strings.Contains(m.View(), "refuse failed: boom") {
		t.Errorf("no failure on screen:\n%s", m.View())
	}
}

func TestActionGetsTheProgramContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var got error
	m := New(&fakeSource{}, Options{NoColor: true, Actions: []Action{{Key: "1", Help: "x", Run: func(ctx context.Context) string {
		got = ctx.Err()
		return ""
	}}}})
	m.ctx = ctx
	_, cmd := sendCmd(t, m, keyMsg("1"))
	cmd()
	if got == nil {
		t.Error("the action's context is not the program's")
	}
}

// TestViewWithActions compares the screens with the demo's keys with
// testdata/TestViewWithActions/<case>.golden.
func TestViewWithActions(t *testing.T) {
	tests := []struct {
		name string
		w, h int
		keys []string
	}{
		{name: "result_120x40", w: 120, h: 40, keys: []string{"3"}},
		{name: "idle_80x24", w: 80, h: 24},
		{name: "help_80x24", w: 80, h: 24, keys: []string{"?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := withActionsModel(t, newClock(t0), tt.w, tt.h, demoActions(map[string]*atomic.Int32{}))
			for _, k := range tt.keys {
				var cmd tea.Cmd
				m, cmd = sendCmd(t, m, keyMsg(k))
				if cmd != nil {
					m = send(t, m, cmd())
				}
			}
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}
