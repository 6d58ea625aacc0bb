package tui

import (
	tea "github.com/charmbracelet/bubbletea"
)

// filterInput is the one-line name filter typed after /. It is deliberately
// small: append, backspace, ctrl+u; the cursor stays at the end.
type filterInput struct {
	value []rune
}

// maxFilterLen bounds the filter so a pasted blob cannot grow without end.
const maxFilterLen = 64

// Value is the text typed so far.
func (f filterInput) Value() string { return string(f.value) }

// update applies one key press.
func (f filterInput) update(msg tea.KeyMsg) filterInput {
	switch msg.Type {
	case tea.KeyBackspace, tea.KeyCtrlH:
		if n := len(f.value); n > 0 {
			f.value = f.value[:n-1]
		}
	case tea.KeyCtrlU:
		f.value = nil
	case tea.KeyRunes, tea.KeySpace:
		for _, r := range msg.Runes {
			if r >= ' ' && r != 0x7f && len(f.value) < maxFilterLen {
				f.value = append(f.value, r)
			}
		}
	}
	return f
}

// view renders the prompt, the text and a block cursor.
func (f filterInput) view(s styles) string {
	return s.filterPrompt.Render("/") + string(f.value) + s.cursor.Render("█") +
		s.dim.Render("   filter by name · enter keeps · esc clears")
}
