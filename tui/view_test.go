package tui

import (
	"strings"
	"testing"
	"time"

	"github.com/charmbracelet/x/exp/golden"
)

// TestView compares View with testdata/TestView/<case>.golden, drawn
// without colour at fixed sizes. Refresh with: go test ./tui -run TestView -update
func TestView(t *testing.T) {
	tests := []struct {
		name  string
		w, h  int
		setup func(t *testing.T, m Model, c *fakeClock) Model
	}{
		{name: "main_120x40", w: 120, h: 40},
		{name: "main_150x40", w: 150, h: 40},
		{name: "main_80x24", w: 80, h: 24},
		{name: "main_60x20", w: 60, h: 20},
		{name: "main_40x12", w: 40, h: 12},
		{name: "countdown_ticked_120x40", w: 120, h: 40, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			c.Advance(5 * time.Second)
			return send(t, m, clockMsg(c.Now()))
		}},
		{name: "detail_120x40", w: 120, h: 40, setup: func(t *testing.T, m Model, _ *fakeClock) Model {
			return send(t, m, keyMsg("j"), keyMsg("enter"))
		}},
		{name: "detail_80x24", w: 80, h: 24, setup: func(t *testing.T, m Model, _ *fakeClock) Model {
			return send(t, m, keyMsg("j"), keyMsg("enter"))
		}},
		{name: "help_80x24", w: 80, h: 24, setup: func(t *testing.T, m Model, _ *fakeClock) Model {
			return send(t, m, keyMsg("?"))
		}},
		{name: "filter_80x24", w: 80, h: 24, setup: func(t *testing.T, m Model, _ *fakeClock) Model {
			return send(t, m, keyMsg("/"), keyMsg("g"), keyMsg("p"), keyMsg("t"))
		}},
		{name: "selected_third_80x24", w: 80, h: 24, setup: func(t *testing.T, m Model, _ *fakeClock) Model {
			return send(t, m, keyMsg("j"), keyMsg("j"))
		}},
		{name: "reconnecting_120x40", w: 120, h: 40, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			c.Advance(time.Second)
			return send(t, m, refreshMsg{err: errDown})
		}},
		{name: "call_ids_120x40", w: 120, h: 40, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			return send(t, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 2), events: callEvents(c.Now()), since: 8, next: 12})
		}},
		{name: "call_ids_detail_120x40", w: 120, h: 40, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			m = send(t, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 2), events: callEvents(c.Now()), since: 8, next: 12})
			return send(t, m, keyMsg("j"), keyMsg("enter"))
		}},
		{name: "config_errors_120x40", w: 120, h: 40, setup: troubled},
		{name: "config_errors_80x24", w: 80, h: 24, setup: troubled},
		{name: "config_errors_40x12", w: 40, h: 12, setup: troubled},
		{name: "config_errors_many_80x24", w: 80, h: 24, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			s := troubledSnapshot(c.Now(), 2)
			s.ConfigErrors = manyConfigErrors(9)
			return send(t, m, refreshMsg{snap: s, since: 8, next: 8})
		}},
		{name: "dependencies_down_120x40", w: 120, h: 40, setup: depsDown},
		{name: "dependencies_down_80x24", w: 80, h: 24, setup: depsDown},
		{name: "dependencies_down_40x12", w: 40, h: 12, setup: depsDown},
		{name: "limits_120x40", w: 120, h: 40, setup: limited},
		{name: "limits_80x24", w: 80, h: 24, setup: limited},
		{name: "limits_40x12", w: 40, h: 12, setup: limited},
		{name: "detail_secret_80x24", w: 80, h: 24, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			m = troubled(t, m, c)
			return send(t, m, keyMsg("j"), keyMsg("j"), keyMsg("enter"))
		}},
		{name: "stale_paused_120x40", w: 120, h: 40, setup: func(t *testing.T, m Model, c *fakeClock) Model {
			m = send(t, m, keyMsg("p"))
			for range 4 {
				c.Advance(2 * time.Second)
				m = send(t, m, refreshMsg{err: errDown})
			}
			return m
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock(t0)
			m := loaded(t, c, tt.w, tt.h)
			if tt.setup != nil {
				m = tt.setup(t, m, c)
			}
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

// depsDown feeds a snapshot whose server has lost its store (the rows are
// its last ones) and Redis.
func depsDown(t *testing.T, m Model, c *fakeClock) Model {
	s := tutorialSnapshot(c.Now(), 2)
	s.Dependencies = []Dependency{
		{Name: "store", Status: "unreachable", Since: c.Now().Add(-90 * time.Second), Revision: 42},
		{Name: "redis", Status: "unreachable", Since: c.Now().Add(-30 * time.Second), Impact: "limits counted per replica, cooldowns local"},
		{Name: "other", Status: "ok", Since: c.Now().Add(-time.Hour)},
	}
	s.RowsFrom = c.Now().Add(-91 * time.Second)
	return send(t, m, refreshMsg{snap: s, since: 8, next: 8})
}

// troubled feeds the troubled snapshot to m.
func troubled(t *testing.T, m Model, c *fakeClock) Model {
	return send(t, m, refreshMsg{snap: troubledSnapshot(c.Now(), 2), since: 8, next: 8})
}

// TestViewWithoutData covers the screens before the first snapshot.
func TestViewWithoutData(t *testing.T) {
	tests := []struct {
		name string
		msgs []any
	}{
		{name: "connecting_80x24"},
		{name: "unreachable_80x24", msgs: []any{refreshMsg{err: errDown}}},
		{name: "no_models_80x24", msgs: []any{refreshMsg{snap: Snapshot{Version: "0.1.0", StartedAt: t0.Add(-time.Minute)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newTestModel(t, &fakeSource{}, newClock(t0), 80, 24)
			for _, msg := range tt.msgs {
				m = send(t, m, msg)
			}
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

// TestViewFirstPoll is the first screen after one poll: a server up a few
// seconds already has rates (its counters count from its start), an older
// one shows – until two polls span enough time.
func TestViewFirstPoll(t *testing.T) {
	tests := []struct {
		name   string
		uptime time.Duration
	}{
		{name: "young_server_80x24", uptime: 10 * time.Second},
		{name: "old_server_80x24", uptime: 2 * time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock(t0)
			m := newTestModel(t, &fakeSource{}, c, 80, 24)
			s := tutorialSnapshot(t0, 1)
			s.StartedAt = t0.Add(-tt.uptime)
			m = send(t, m, refreshMsg{snap: s})
			golden.RequireEqual(t, []byte(m.View()))
		})
	}
}

// TestHeaderTotals checks the header's tokens/min and cost/hour across
// models, and that a narrow header drops failovers before them.
func TestHeaderTotals(t *testing.T) {
	unpriced := func(s Snapshot) Snapshot {
		for i := range s.Models {
			s.Models[i].CostUSD = 0
		}
		return s
	}
	tests := []struct {
		name   string
		w      int
		prep   func(Snapshot) Snapshot
		want   []string
		absent []string
	}{
		{name: "wide", w: 120, want: []string{"tok/min 34.5k", "cost $0.42/h", "failovers/1m 1", "models 4"}},
		{name: "80 columns drop failovers first", w: 80, want: []string{"tok/min 34.5k", "cost $0.42/h", "models 4"}, absent: []string{"failovers"}},
		{name: "no model has a price", w: 120, prep: unpriced, want: []string{"tok/min 34.5k", "cost –"}, absent: []string{"$"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock(t0)
			m := newTestModel(t, &fakeSource{}, c, tt.w, 24)
			prep := tt.prep
			if prep == nil {
				prep = func(s Snapshot) Snapshot { return s }
			}
			c.Advance(-time.Minute)
			m = send(t, m, refreshMsg{snap: prep(tutorialSnapshot(c.Now(), 1))})
			c.Advance(time.Minute)
			m = send(t, m, refreshMsg{snap: prep(tutorialSnapshot(c.Now(), 2)), events: tutorialEvents(c.Now()), next: 8})
			line := m.headerLines()[1]
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("header %q lacks %q", line, w)
				}
			}
			for _, w := range tt.absent {
				if strings.Contains(line, w) {
					t.Errorf("header %q has %q", line, w)
				}
			}
		})
	}
}
