package tui

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/charmbracelet/bubbles/key"
	tea "github.com/charmbracelet/bubbletea"
)

// resultFor is how long an action's result stays on the screen.
const resultFor = 5 * time.Second

// Action is an extra key of the dashboard, given by its caller (the demo's
// "break the primary" keys). Pressing Key runs Run in the background; what
// it returns is shown above the key help for a few seconds.
type Action struct {
	// Key is the key as bubbletea names it: "1", "x", "ctrl+b". An action
	// whose key the dashboard uses itself (q, ?, p, /, j, k, arrows, enter,
	// esc) is left out.
	Key string
	// Help is the short text next to the key on the bottom line: "refuse".
	Help string
	// Run does the action and says what happened in one line ("primary
	// now answers 500"). It runs outside Update, with the program's
	// context, and must honour it.
	Run func(ctx context.Context) string
}

// actionDoneMsg is what an action's Run returned.
type actionDoneMsg struct {
	seq  int
	text string
}

// usableActions drops the actions without a key or Run, and those whose
// key the dashboard uses itself or an earlier action took.
func usableActions(actions []Action, km keyMap) []Action {
	taken := map[string]bool{}
	for _, b := range []key.Binding{km.Up, km.Down, km.Enter, km.Back, km.Filter, km.Pause, km.Help, km.Quit} {
		for _, k := range b.Keys() {
			taken[k] = true
		}
	}
	var out []Action
	for _, a := range actions {
		if a.Key == "" || a.Run == nil || taken[a.Key] {
			continue
		}
		taken[a.Key] = true
		out = append(out, a)
	}
	return out
}

// actionBindings are the actions as key bindings, for the help view.
func actionBindings(actions []Action) []key.Binding {
	out := make([]key.Binding, len(actions))
	for i, a := range actions {
		out[i] = key.NewBinding(key.WithKeys(a.Key), key.WithHelp(a.Key, a.Help))
	}
	return out
}

// actionFor returns the action bound to the key pressed.
func (m *Model) actionFor(msg tea.KeyMsg) (Action, bool) {
	i := slices.IndexFunc(m.actions, func(a Action) bool { return a.Key == msg.String() })
	if i < 0 {
		return Action{}, false
	}
	return m.actions[i], true
}

// startAction shows that a is running and returns the command that runs it.
func (m *Model) startAction(a Action) tea.Cmd {
	m.actionSeq++
	m.result, m.resultAt = a.Help+"…", m.now
	ctx, seq := m.ctx, m.actionSeq
	return func() (msg tea.Msg) {
		defer func() {
			// A failing action must not take the terminal down with it.
			if p := recover(); p != nil {
				msg = actionDoneMsg{seq: seq, text: fmt.Sprintf("%s failed: %v", a.Help, p)}
			}
		}()
		return actionDoneMsg{seq: seq, text: oneLine(a.Run(ctx))}
	}
}

// finishAction shows an action's result, unless a later action started
// since (its own result will follow).
func (m *Model) finishAction(msg actionDoneMsg) {
	if msg.seq == m.actionSeq {
		m.result, m.resultAt = msg.text, m.now
	}
}

// resultText is the action result on screen now, if any.
func (m *Model) resultText() string {
	if m.result == "" || m.now.Sub(m.resultAt) >= resultFor {
		return ""
	}
	return m.result
}

// withActions is a help key map with the actions added: the short help
// becomes the actions, ? and q (the rest is one ? away), the full help
// gets a column of them.
type withActions struct {
	keys    keyMap
	actions []key.Binding
}

// ShortHelp is the bottom line: the actions, then help and quit.
func (k withActions) ShortHelp() []key.Binding {
	return append(slices.Clone(k.actions), k.keys.Help, k.keys.Quit)
}

// FullHelp is the dashboard's full help and a column of actions.
func (k withActions) FullHelp() [][]key.Binding {
	return append(k.keys.FullHelp(), k.actions)
}
