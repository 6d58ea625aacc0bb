package tui

import (
	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/lipgloss"
)

// Colours, as ANSI 256 indexes so they degrade well on 16-colour terminals.
// Every colour also has a symbol or a word next to it, so nothing is lost
// under NO_COLOR.
const (
	colorGreen   = lipgloss.Color("42")
	colorAmber   = lipgloss.Color("214")
	colorCyan    = lipgloss.Color("39")
	colorRed     = lipgloss.Color("196")
	colorMagenta = lipgloss.Color("170")
	colorDim     = lipgloss.Color("244")
	colorFaint   = lipgloss.Color("240")
	colorSelBg   = lipgloss.Color("237")
	colorTitleBg = lipgloss.Color("24")
	colorWhite   = lipgloss.Color("255")
)

// styles holds every lipgloss style the dashboard uses. They are all made
// from one renderer, so NoColor (or NO_COLOR) turns all of them off at once.
type styles struct {
	appTitle     lipgloss.Style
	headerKey    lipgloss.Style
	dim          lipgloss.Style
	section      lipgloss.Style
	colHeader    lipgloss.Style
	selected     lipgloss.Style
	errText      lipgloss.Style
	serving      lipgloss.Style
	skipped      lipgloss.Style
	paused       lipgloss.Style
	filterPrompt lipgloss.Style
	cursor       lipgloss.Style
	result       lipgloss.Style

	connLive         lipgloss.Style
	connReconnecting lipgloss.Style
	connStale        lipgloss.Style

	statusHealthy   lipgloss.Style
	statusCooldown  lipgloss.Style
	statusProbing   lipgloss.Style
	statusUnhealthy lipgloss.Style
	statusUnknown   lipgloss.Style

	eventBad      lipgloss.Style
	eventFailover lipgloss.Style
	eventCooldown lipgloss.Style
	eventGood     lipgloss.Style
	eventConfig   lipgloss.Style
	eventOther    lipgloss.Style

	limitNear lipgloss.Style
	limitAt   lipgloss.Style

	help help.Styles
}

func newStyles(r *lipgloss.Renderer) styles {
	fg := func(c lipgloss.Color) lipgloss.Style { return r.NewStyle().Foreground(c) }
	helpKey := fg(colorDim)
	helpDesc := fg(colorFaint)
	helpSep := fg(colorFaint)
	return styles{
		appTitle:     r.NewStyle().Bold(true).Foreground(colorWhite).Background(colorTitleBg),
		headerKey:    fg(colorDim),
		dim:          fg(colorDim),
		section:      r.NewStyle().Bold(true),
		colHeader:    r.NewStyle().Bold(true).Foreground(colorDim),
		selected:     r.NewStyle().Bold(true).Background(colorSelBg),
		errText:      fg(colorRed),
		serving:      r.NewStyle().Bold(true).Foreground(colorGreen),
		skipped:      fg(colorDim),
		paused:       r.NewStyle().Bold(true).Foreground(colorAmber),
		filterPrompt: r.NewStyle().Bold(true).Foreground(colorCyan),
		cursor:       r.NewStyle(),
		result:       r.NewStyle().Bold(true).Foreground(colorAmber),

		connLive:         r.NewStyle().Bold(true).Foreground(colorGreen),
		connReconnecting: r.NewStyle().Bold(true).Foreground(colorAmber),
		connStale:        r.NewStyle().Bold(true).Foreground(colorRed),

		statusHealthy:   fg(colorGreen),
		statusCooldown:  fg(colorAmber),
		statusProbing:   fg(colorCyan),
		statusUnhealthy: r.NewStyle().Bold(true).Foreground(colorRed),
		statusUnknown:   fg(colorDim),

		eventBad:      fg(colorRed),
		eventFailover: fg(colorAmber),
		eventCooldown: fg(colorCyan),
		eventGood:     fg(colorGreen),
		eventConfig:   fg(colorMagenta),
		eventOther:    r.NewStyle(),

		limitNear: fg(colorAmber),
		limitAt:   r.NewStyle().Bold(true).Foreground(colorRed),

		help: help.Styles{
			Ellipsis:       helpSep,
			ShortKey:       helpKey,
			ShortDesc:      helpDesc,
			ShortSeparator: helpSep,
			FullKey:        helpKey,
			FullDesc:       helpDesc,
			FullSeparator:  helpSep,
		},
	}
}

// status returns the style for a model status.
func (s styles) status(status string) lipgloss.Style {
	switch status {
	case StatusHealthy:
		return s.statusHealthy
	case StatusCooldown:
		return s.statusCooldown
	case StatusProbing:
		return s.statusProbing
	case StatusUnhealthy:
		return s.statusUnhealthy
	}
	return s.statusUnknown
}

// event returns the style for a feed line.
func (s styles) event(l feedLine) lipgloss.Style {
	switch l.kind {
	case EventAttemptFailed:
		return s.eventBad
	case EventFailover:
		return s.eventFailover
	case EventCooldownEntered:
		return s.eventCooldown
	case EventCooldownLeft, EventServed:
		return s.eventGood
	case EventConfigReloaded:
		return s.eventConfig
	case EventLimited:
		if l.target != "" {
			return s.eventFailover // skipped, and the walk went on
		}
		return s.eventBad // refused
	case EventProbe:
		switch l.detail {
		case ProbeSucceeded:
			return s.eventGood
		case ProbeFailed:
			return s.eventBad
		}
		return s.eventCooldown
	}
	return s.eventOther
}
