package tui

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

func names(rows []ModelRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.Name)
	}
	return out
}

func TestUpdateSnapshot(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)

	if got, want := strings.Join(names(m.rows()), ","), "llama-local,gpt-4o-primary,claude-haiku,gpt-4o-secondary"; got != want {
		t.Errorf("rows = %s, want trouble first: %s", got, want)
	}
	if m.connText() != "● live" {
		t.Errorf("conn = %q, want live", m.connText())
	}
	// Counters doubled over one minute: primary 100→200 requests, 10→20 failures.
	r := m.data.rates["3b909841-c0a7-4ad8-8f1b-a9df8f10b581"]
	if !r.reqOK || r.reqPerMin != 100 || !r.errOK || r.errRatio != 0.1 {
		t.Errorf("primary rates = %+v, want 100/min and 10%%", r)
	}
	// 382 requests and 25 failures in 60s across the four models.
	if tot := m.data.total; !tot.ok || tot.reqPerSec != 382.0/60 || tot.errPerSec != 25.0/60 {
		t.Errorf("totals = %+v", tot)
	}
	if n := m.data.failoversSince(t0.Add(-time.Minute)); n != 1 {
		t.Errorf("failovers in the last minute = %d, want 1", n)
	}
	if m.cursor != 8 || len(m.data.events) != 8 {
		t.Errorf("cursor = %d, events = %d; want 8 and 8", m.cursor, len(m.data.events))
	}
	if m.fetching {
		t.Error("still fetching after the result arrived")
	}
}

func TestUpdateRefreshLoop(t *testing.T) {
	c := newClock(t0)
	src := &fakeSource{clock: c}
	src.set(tutorialSnapshot(t0, 1), nil)
	src.addEvents(tutorialEvents(t0)...)
	m := New(src, Options{Now: c.Now, NoColor: true})

	// Init starts the poll; a due tick while it runs starts nothing.
	if m.Init() == nil {
		t.Fatal("Init returned no command")
	}
	m, cmd := sendCmd(t, m, refreshDueMsg{})
	if cmd != nil {
		t.Fatal("a second poll started while the first one runs")
	}

	// The poll itself: Fetch, then Events since the cursor.
	msg := m.refreshCmd()()
	rm, ok := msg.(refreshMsg)
	if !ok || rm.err != nil || len(rm.snap.Models) != 4 || len(rm.events) != 8 || rm.next != 8 {
		t.Fatalf("refreshCmd() = %#v", msg)
	}
	m, cmd = sendCmd(t, m, rm)
	if cmd == nil || m.fetching {
		t.Fatalf("after a result: cmd %v, fetching %v; want the next poll scheduled", cmd, m.fetching)
	}
	m, cmd = sendCmd(t, m, refreshDueMsg{})
	if cmd == nil || !m.fetching {
		t.Fatal("a due tick did not start a poll")
	}
	// The next poll asks only for events after the cursor.
	src.addEvents(Event{Seq: 9, Time: t0, Kind: EventProbe, Model: "claude-haiku", Detail: ProbeSucceeded})
	rm = cmd().(refreshMsg)
	if len(rm.events) != 1 || rm.events[0].Seq != 9 || rm.since != 8 {
		t.Fatalf("second poll events = %+v since %d", rm.events, rm.since)
	}
	m = send(t, m, rm)
	if len(m.data.events) != 9 || m.cursor != 9 {
		t.Errorf("events = %d cursor = %d, want 9 and 9", len(m.data.events), m.cursor)
	}
}

func TestUpdateSlowPollStartsNextAtOnce(t *testing.T) {
	c := newClock(t0)
	src := &fakeSource{}
	src.set(tutorialSnapshot(t0, 1), nil)
	m := newTestModel(t, src, c, 80, 24)
	// A poll that took longer than the refresh period starts the next one
	// at once, so data stays at least once a second fresh.
	m, cmd := sendCmd(t, m, refreshMsg{snap: tutorialSnapshot(t0, 1), took: 2 * time.Second})
	if !m.fetching || cmd == nil {
		t.Fatal("next poll not started at once")
	}
	if _, ok := cmd().(refreshMsg); !ok {
		t.Fatal("the command is not a poll")
	}
}

func TestUpdateFetchErrors(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)
	wantBackoff := []time.Duration{1, 2, 4, 8, 10, 10, 10}
	for i, want := range wantBackoff {
		c.Advance(time.Second)
		m = send(t, m, refreshMsg{err: errDown})
		if got := m.retryAt.Sub(c.Now()); got != want*time.Second {
			t.Errorf("failure %d: retry in %v, want %v", i+1, got, want*time.Second)
		}
		// Last data kept.
		if len(m.rows()) != 4 {
			t.Fatalf("failure %d: rows dropped", i+1)
		}
		conn := m.connText()
		switch {
		case i+1 < 3 && !strings.Contains(conn, "reconnecting"):
			t.Errorf("failure %d (%v after the last data): conn = %q, want reconnecting", i+1, c.Now().Sub(t0), conn)
		case i+1 >= 3 && !strings.Contains(conn, "stale since 12:03:41"):
			t.Errorf("failure %d (%v after the last data): conn = %q, want stale since 12:03:41", i+1, c.Now().Sub(t0), conn)
		}
		if !strings.Contains(m.View(), "connection refused") {
			t.Errorf("failure %d: the error is not shown", i+1)
		}
	}
	// Recovery: live again, backoff reset.
	c.Advance(time.Second)
	m = send(t, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 3)})
	if m.failures != 0 || m.connText() != "● live" || strings.Contains(m.View(), "connection refused") {
		t.Errorf("after recovery: failures %d, conn %q", m.failures, m.connText())
	}
	m = send(t, m, refreshMsg{err: errDown})
	if got := m.retryAt.Sub(c.Now()); got != time.Second {
		t.Errorf("first retry after recovery in %v, want 1s", got)
	}
}

func TestUpdateFetchErrorBeforeAnyData(t *testing.T) {
	c := newClock(t0)
	m := newTestModel(t, &fakeSource{}, c, 80, 24)
	if !strings.Contains(m.connText(), "connecting") {
		t.Errorf("conn = %q, want connecting", m.connText())
	}
	m = send(t, m, refreshMsg{err: errDown})
	v := m.View()
	for _, want := range []string{"unreachable · retry in 1s", "cannot reach the server yet: dial tcp"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
}

func TestUpdateCountdownTicks(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)
	primary := func(m Model) ModelRow {
		r, _ := m.data.modelByName("gpt-4o-primary")
		return r
	}
	tests := []struct {
		advance time.Duration
		want    string
	}{
		{0, "◔ cooldown 27s"},
		{time.Second, "◔ cooldown 26s"},
		{500 * time.Millisecond, "◔ cooldown 26s"}, // rounds up
		{500 * time.Millisecond, "◔ cooldown 25s"},
		{24 * time.Second, "◔ cooldown 1s"},
		{time.Second, "◔ cooldown 0s"},
		{time.Minute, "◔ cooldown 0s"}, // never negative while the server says cooldown
	}
	for _, tt := range tests {
		c.Advance(tt.advance)
		// Only the local clock ticks: no new snapshot.
		m = send(t, m, clockMsg(c.Now()))
		if got := m.statusText(primary(m), false); got != tt.want {
			t.Errorf("at +%v: status %q, want %q", c.Now().Sub(t0), got, tt.want)
		}
	}
	if !strings.Contains(m.View(), "◔ cooldown 0s") {
		t.Error("view does not show the countdown")
	}
}

func TestUpdateCountdownCorrectsClockSkew(t *testing.T) {
	c := newClock(t0)
	m := newTestModel(t, &fakeSource{}, c, 120, 40)
	snap := tutorialSnapshot(t0, 1) // cooldown until t0+27s, server clock
	snap.ServerTime = t0.Add(10 * time.Second)
	m = send(t, m, refreshMsg{snap: snap})
	r, _ := m.data.modelByName("gpt-4o-primary")
	if got := m.statusText(r, false); got != "◔ cooldown 17s" {
		t.Errorf("status = %q; the server is 10s ahead so 17s are left", got)
	}
}

func TestUpdateClockReschedules(t *testing.T) {
	m := newTestModel(t, &fakeSource{}, newClock(t0), 80, 24)
	if _, cmd := sendCmd(t, m, clockMsg(t0)); cmd == nil {
		t.Error("clock tick did not schedule the next one")
	}
}

func TestUpdateKeys(t *testing.T) {
	type check func(t *testing.T, m Model, cmd tea.Cmd)
	selected := func(want string) check {
		return func(t *testing.T, m Model, _ tea.Cmd) {
			t.Helper()
			if r := m.rows(); len(r) == 0 || r[m.sel].Name != want || m.selKey != modelKey(r[m.sel]) {
				t.Errorf("selected %d %q, want %s", m.sel, m.selKey, want)
			}
		}
	}
	quits := func(t *testing.T, _ Model, cmd tea.Cmd) {
		t.Helper()
		if cmd == nil {
			t.Fatal("no command, want tea.Quit")
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Error("command is not tea.Quit")
		}
	}
	tests := []struct {
		name  string
		keys  []string
		check check
	}{
		{"starts on the top row", nil, selected("llama-local")},
		{"down", []string{"down"}, selected("gpt-4o-primary")},
		{"j", []string{"j", "j"}, selected("claude-haiku")},
		{"down stops at the bottom", []string{"j", "j", "j", "j", "j"}, selected("gpt-4o-secondary")},
		{"up and k", []string{"j", "j", "j", "up", "k"}, selected("gpt-4o-primary")},
		{"up stops at the top", []string{"k", "up"}, selected("llama-local")},
		{"enter opens the detail view", []string{"j", "enter"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.mode != modeDetail || m.detailKey != "3b909841-c0a7-4ad8-8f1b-a9df8f10b581" {
				t.Errorf("mode %v detail %q", m.mode, m.detailKey)
			}
			v := m.View()
			for _, want := range []string{"CONFIG", "api_base", "https://api.openai.invalid/v1", "COOLDOWN HISTORY", "RECENT EVENTS", "×2 → served by gpt-4o-secondary"} {
				if !strings.Contains(v, want) {
					t.Errorf("detail view lacks %q", want)
				}
			}
			if strings.Contains(v, "sk-should-never-show") {
				t.Error("detail view shows a secret")
			}
		}},
		{"esc goes back", []string{"j", "enter", "esc"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.mode != modeMain {
				t.Errorf("mode %v, want main", m.mode)
			}
			selected("gpt-4o-primary")(t, m, nil)
		}},
		{"filter narrows the rows", []string{"/", "p", "r", "i"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if !m.filtering || m.filter.Value() != "pri" || strings.Join(names(m.rows()), ",") != "gpt-4o-primary" {
				t.Errorf("filtering %v value %q rows %v", m.filtering, m.filter.Value(), names(m.rows()))
			}
			if m.paused {
				t.Error("p while typing a filter paused the dashboard")
			}
			v := m.View()
			if strings.Contains(v, "chat-cheap") || !strings.Contains(v, "chat-prod") || strings.Contains(v, "llama-local") {
				t.Errorf("groups and events not filtered:\n%s", v)
			}
		}},
		{"backspace edits the filter", []string{"/", "l", "x", "backspace"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.filter.Value() != "l" || strings.Join(names(m.rows()), ",") != "llama-local,claude-haiku" {
				t.Errorf("value %q rows %v", m.filter.Value(), names(m.rows()))
			}
		}},
		{"enter keeps the filter", []string{"/", "s", "e", "c", "enter"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.filtering || strings.Join(names(m.rows()), ",") != "gpt-4o-secondary" {
				t.Errorf("filtering %v rows %v", m.filtering, names(m.rows()))
			}
		}},
		{"esc while typing clears the filter", []string{"/", "s", "esc"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.filtering || m.filter.Value() != "" || len(m.rows()) != 4 {
				t.Errorf("filtering %v value %q rows %v", m.filtering, m.filter.Value(), names(m.rows()))
			}
		}},
		{"esc clears a kept filter", []string{"/", "s", "enter", "esc"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.filter.Value() != "" || len(m.rows()) != 4 {
				t.Errorf("value %q rows %v", m.filter.Value(), names(m.rows()))
			}
		}},
		{"filter with no match", []string{"/", "z", "z"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if len(m.rows()) != 0 || !strings.Contains(m.View(), "no model matches the filter") {
				t.Errorf("rows %v", names(m.rows()))
			}
			m = send(t, m, keyMsg("enter"), keyMsg("enter"))
			if m.mode != modeMain {
				t.Error("enter with no rows opened a detail view")
			}
		}},
		{"p pauses", []string{"p"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if !m.paused || !strings.Contains(m.View(), "paused at 12:03:41") {
				t.Errorf("paused %v", m.paused)
			}
		}},
		{"p again resumes", []string{"p", "p"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.paused || strings.Contains(m.View(), "paused") {
				t.Error("still paused")
			}
		}},
		{"? shows the full help", []string{"?"}, func(t *testing.T, m Model, _ tea.Cmd) {
			v := m.View()
			if !m.showHelp || !strings.Contains(v, "✖ unhealthy") || !strings.Contains(v, "↓/j") {
				t.Errorf("help not shown:\n%s", v)
			}
		}},
		{"? again hides it", []string{"?", "?"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.showHelp || m.help.ShowAll {
				t.Error("help still shown")
			}
		}},
		{"esc hides the help", []string{"?", "esc"}, func(t *testing.T, m Model, _ tea.Cmd) {
			if m.showHelp {
				t.Error("help still shown")
			}
		}},
		{"q quits", []string{"q"}, quits},
		{"ctrl+c quits", []string{"ctrl+c"}, quits},
		{"q quits from the detail view", []string{"enter", "q"}, quits},
		{"ctrl+c quits while typing a filter", []string{"/", "ctrl+c"}, quits},
		{"q while typing a filter is text", []string{"/", "q"}, func(t *testing.T, m Model, cmd tea.Cmd) {
			if cmd != nil || m.filter.Value() != "q" {
				t.Errorf("cmd %v value %q", cmd, m.filter.Value())
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := loaded(t, newClock(t0), 120, 40)
			var cmd tea.Cmd
			for _, k := range tt.keys {
				m, cmd = sendCmd(t, m, keyMsg(k))
			}
			tt.check(t, m, cmd)
		})
	}
}

func TestUpdatePauseFreezesTheView(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)
	m = send(t, m, keyMsg("p"))
	before := m.View()

	// New data and a second later: the paused view does not change, but
	// the data keeps coming in.
	c.Advance(time.Second)
	snap := tutorialSnapshot(c.Now(), 3)
	snap.Models[1].Status, snap.Models[1].Reason, snap.Models[1].CooldownUntil = StatusHealthy, "", time.Time{}
	m = send(t, m, refreshMsg{snap: snap, since: 8, next: 9, events: []Event{
		{Seq: 9, Time: c.Now(), Kind: EventCooldownLeft, Model: "chat-prod", Target: "gpt-4o-primary"},
	}}, clockMsg(c.Now()))
	if after := m.View(); after != before {
		t.Errorf("paused view changed:\n%s\n---\n%s", before, after)
	}
	if len(m.data.events) != 9 {
		t.Errorf("events while paused: %d, want 9", len(m.data.events))
	}

	m = send(t, m, keyMsg("p"))
	v := m.View()
	if !strings.Contains(v, "gpt-4o-primary left cooldown") || strings.Contains(v, "cooldown 26s") {
		t.Errorf("resumed view is not current:\n%s", v)
	}
}

func TestUpdateSelectionFollowsTheModel(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)
	m = send(t, m, keyMsg("j"), keyMsg("j"), keyMsg("j")) // gpt-4o-secondary, last
	// The secondary falls into cooldown: it moves up, the selection follows.
	snap := tutorialSnapshot(c.Now(), 2)
	snap.Models[0].Status, snap.Models[0].CooldownUntil = StatusCooldown, c.Now().Add(10*time.Second)
	m = send(t, m, refreshMsg{snap: snap})
	if r := m.rows()[m.sel]; r.Name != "gpt-4o-secondary" || m.sel != 2 {
		t.Errorf("selected %d %s, want 2 gpt-4o-secondary", m.sel, r.Name)
	}
	// The selected model goes away: the selection stays in range.
	snap.Models = snap.Models[2:]
	m = send(t, m, refreshMsg{snap: snap})
	if m.sel != 1 || m.rows()[m.sel].Name != "claude-haiku" {
		t.Errorf("selected %d %q", m.sel, m.selKey)
	}
	// Everything goes away.
	snap.Models = nil
	m = send(t, m, refreshMsg{snap: snap})
	if m.sel != 0 || m.selKey != "" {
		t.Errorf("selected %d %q with no rows", m.sel, m.selKey)
	}
}

func TestUpdateDetailScrolls(t *testing.T) {
	m := loaded(t, newClock(t0), 80, 16)
	m = send(t, m, keyMsg("j"), keyMsg("enter"), keyMsg("down"), keyMsg("j"))
	if m.mode != modeDetail || m.sel != 1 || m.vp.YOffset != 2 {
		t.Fatalf("mode %v sel %d offset %d; want detail, 1, 2", m.mode, m.sel, m.vp.YOffset)
	}
	if v := m.View(); strings.Contains(v, "3b909841") || !strings.Contains(v, "TRAFFIC") {
		t.Errorf("view not scrolled:\n%s", v)
	}
	m = send(t, m, keyMsg("k"))
	if m.vp.YOffset != 1 {
		t.Errorf("offset %d after up, want 1", m.vp.YOffset)
	}
}

func TestUpdateDetailOfVanishedModel(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 100, 30)
	m = send(t, m, keyMsg("enter")) // llama-local
	snap := tutorialSnapshot(c.Now(), 2)
	snap.Models = snap.Models[:3]
	m = send(t, m, refreshMsg{snap: snap})
	if v := m.View(); !strings.Contains(v, "no longer reported by the server") {
		t.Errorf("view:\n%s", v)
	}
}

func TestUpdateWindowSizes(t *testing.T) {
	sizes := []struct{ w, h int }{
		{200, 60}, {120, 40}, {100, 30}, {80, 24}, {60, 20}, {40, 12}, {20, 8}, {10, 3}, {1, 1},
	}
	for _, sz := range sizes {
		for _, screen := range []string{"main", "detail", "help"} {
			t.Run(fmt.Sprintf("%s/%dx%d", screen, sz.w, sz.h), func(t *testing.T) {
				m := loaded(t, newClock(t0), 80, 24)
				switch screen {
				case "detail":
					m = send(t, m, keyMsg("enter"))
				case "help":
					m = send(t, m, keyMsg("?"))
				}
				m = send(t, m, tea.WindowSizeMsg{Width: sz.w, Height: sz.h})
				if m.width != sz.w || m.height != sz.h {
					t.Fatalf("size %dx%d", m.width, m.height)
				}
				checkFits(t, m.View(), sz.w, sz.h)
			})
		}
	}
}

func TestUpdateNarrowHidesColumns(t *testing.T) {
	tests := []struct {
		w        int
		present  []string
		excluded []string
	}{
		{160, []string{"STATUS", "MODEL", "REASON", "REQ/MIN", "ERR%", "P50", "P95", "TTFT", "INFL", "PROVIDER", "LAST ERROR"}, nil},
		{120, []string{"REQ/MIN", "ERR%", "P50", "INFL", "LAST ERROR"}, []string{"PROVIDER", "TTFT"}},
		{80, []string{"STATUS", "MODEL", "REASON", "REQ/MIN", "ERR%", "P50"}, []string{"LAST ERROR", "P95"}},
		{40, []string{"STATUS", "MODEL"}, []string{"REASON"}},
		{28, []string{"S ", "MODEL"}, []string{"STATUS"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.w), func(t *testing.T) {
			m := loaded(t, newClock(t0), tt.w, 40)
			header := m.table(m.rows(), 0, 10, tt.w)[0]
			for _, p := range tt.present {
				if !strings.Contains(header, p) {
					t.Errorf("header %q lacks %s", header, p)
				}
			}
			for _, p := range tt.excluded {
				if strings.Contains(header, p) {
					t.Errorf("header %q has %s", header, p)
				}
			}
		})
	}
}

func TestUpdateEventsRestartAndErrors(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)

	// Repeated events are dropped by sequence number.
	m = send(t, m, refreshMsg{snap: tutorialSnapshot(t0, 2), since: 8, next: 8, events: tutorialEvents(t0)[5:]})
	if len(m.data.events) != 8 {
		t.Errorf("events = %d after a repeat, want 8", len(m.data.events))
	}
	// Events failing leaves the snapshot live and says so.
	m = send(t, m, refreshMsg{snap: tutorialSnapshot(t0, 2), since: 8, evErr: errors.New("events: 404 not found")})
	if m.failures != 0 || !strings.Contains(m.View(), "unavailable: events: 404 not found") || m.cursor != 8 {
		t.Errorf("failures %d cursor %d", m.failures, m.cursor)
	}
	// A cursor going backwards restarts from 0.
	m = send(t, m, refreshMsg{snap: tutorialSnapshot(t0, 2), since: 8, next: 2})
	if m.cursor != 0 || m.eventsErr != "" {
		t.Errorf("cursor = %d, want 0", m.cursor)
	}
	// A server restart (new StartedAt) forgets sequence numbers, so the new
	// server's events are shown, and rates start afresh.
	snap := tutorialSnapshot(t0, 1)
	snap.StartedAt = t0
	m = send(t, m, refreshMsg{snap: snap, since: 0, next: 1, events: []Event{{Seq: 1, Time: t0, Kind: EventConfigReloaded, Detail: "revision 1"}}})
	if m.cursor != 0 || m.data.lastSeq != 0 {
		t.Errorf("after restart: cursor %d lastSeq %d", m.cursor, m.data.lastSeq)
	}
	m = send(t, m, refreshMsg{snap: snap, since: 0, next: 1, events: []Event{{Seq: 1, Time: t0, Kind: EventConfigReloaded, Detail: "revision 1"}}})
	if m.cursor != 1 || !strings.Contains(m.View(), "config reloaded revision 1") {
		t.Errorf("after restart: cursor %d", m.cursor)
	}
	if r := m.data.rates["3b909841-c0a7-4ad8-8f1b-a9df8f10b581"]; r.reqOK {
		t.Errorf("rates across a restart: %+v", r)
	}
}

func TestRefreshCmdSurvivesAPanickingSource(t *testing.T) {
	m := New(panicSource{}, Options{NoColor: true})
	msg, ok := m.refreshCmd()().(refreshMsg)
	if !ok || msg.err == nil || !strings.Contains(msg.err.Error(), "panicked") {
		t.Fatalf("msg = %#v", msg)
	}
}

type panicSource struct{}

func (panicSource) Fetch(context.Context) (Snapshot, error) { panic("boom") }
func (panicSource) Events(context.Context, uint64) ([]Event, uint64, error) {
	return nil, 0, nil
}

func TestRefreshCmdTimesOut(t *testing.T) {
	m := New(blockingSource{}, Options{NoColor: true, RefreshEvery: time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	m.ctx = ctx
	cancel()
	msg := m.refreshCmd()().(refreshMsg)
	if !errors.Is(msg.err, context.Canceled) {
		t.Fatalf("err = %v, want the context's", msg.err)
	}
	if m.fetchTimeout() != minFetchTimeout {
		t.Errorf("fetch timeout %v", m.fetchTimeout())
	}
}

// blockingSource blocks until its context ends.
type blockingSource struct{}

func (blockingSource) Fetch(ctx context.Context) (Snapshot, error) {
	<-ctx.Done()
	return Snapshot{}, ctx.Err()
}

func (blockingSource) Events(ctx context.Context, _ uint64) ([]Event, uint64, error) {
	<-ctx.Done()
	return nil, 0, ctx.Err()
}

func TestNoColorHasNoEscapes(t *testing.T) {
	m := loaded(t, newClock(t0), 120, 40)
	for _, screen := range []string{"main", "detail"} {
		if strings.Contains(m.View(), "\x1b[") {
			t.Errorf("%s view has escape codes with NoColor", screen)
		}
		m = send(t, m, keyMsg("enter"))
	}
}

// checkFits checks that a view is exactly h lines, none wider than w.
func checkFits(t *testing.T, view string, w, h int) {
	t.Helper()
	lines := strings.Split(view, "\n")
	if len(lines) != h {
		t.Errorf("%d lines, want %d", len(lines), h)
	}
	for i, l := range lines {
		if width(l) > w {
			t.Errorf("line %d is %d wide: %q", i, width(l), l)
		}
	}
}

func TestUpdateConfigErrors(t *testing.T) {
	c := newClock(t0)
	m := loaded(t, c, 120, 40)
	if strings.Contains(m.View(), "CONFIG ERRORS") {
		t.Fatal("a sound configuration shows a config errors section")
	}
	m = send(t, m, refreshMsg{snap: troubledSnapshot(t0, 2), since: 8, next: 8})
	if n := len(m.shown().snap.ConfigErrors); n != 3 {
		t.Fatalf("config errors %d, want 3", n)
	}
	v := m.View()
	for _, want := range []string{"CONFIG ERRORS 3", "⚠ model         gpt-4o-batch  retries: must be between 0 and 10", "⚠ api key       k-3f2a"} {
		if !strings.Contains(v, want) {
			t.Errorf("view lacks %q:\n%s", want, v)
		}
	}
	var haiku string
	for _, l := range strings.Split(v, "\n") {
		if strings.Contains(l, "claude-haiku") && strings.Contains(l, "◐ probing") {
			haiku = l
		}
	}
	if !strings.Contains(haiku, secretReentryText) || strings.Contains(haiku, "upstream_auth_failure") {
		t.Errorf("claude-haiku row %q: want the re-entry marker instead of the reason", haiku)
	}

	// Paused, the errors stay on screen while the server heals; resumed,
	// they go.
	m = send(t, m, keyMsg("p"))
	c.Advance(time.Second)
	m = send(t, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 2), since: 8, next: 8})
	if !strings.Contains(m.View(), "CONFIG ERRORS 3") || len(m.data.snap.ConfigErrors) != 0 {
		t.Error("paused view lost its config errors, or the live data kept them")
	}
	m = send(t, m, keyMsg("p"))
	if v := m.View(); strings.Contains(v, "CONFIG ERRORS") || strings.Contains(v, secretReentryText) {
		t.Errorf("healed server still shows trouble:\n%s", v)
	}
}

func TestUpdateConfigErrorsFitEverySize(t *testing.T) {
	for _, n := range []int{1, 3, 40} {
		for _, sz := range []struct{ w, h int }{{200, 60}, {120, 40}, {80, 24}, {60, 20}, {40, 12}, {20, 8}, {10, 5}, {1, 1}} {
			t.Run(fmt.Sprintf("%d/%dx%d", n, sz.w, sz.h), func(t *testing.T) {
				s := troubledSnapshot(t0, 2)
				s.ConfigErrors = manyConfigErrors(n)
				m := send(t, loaded(t, newClock(t0), sz.w, sz.h), refreshMsg{snap: s, since: 8, next: 8})
				checkFits(t, m.View(), sz.w, sz.h)
				// The models stay on a screen of ordinary height.
				if sz.h >= 24 && !strings.Contains(m.View(), "gpt-4o-secondary") {
					t.Errorf("config errors crowd out the models:\n%s", m.View())
				}
			})
		}
	}
}
