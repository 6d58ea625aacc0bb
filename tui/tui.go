// Package tui is the live terminal dashboard of `aisix status`: every direct
// model's health, cooldowns and traffic, the routing groups, and a feed of
// routing events. It reads a running server through the small StatusSource
// interface it declares, and imports nothing else of aisix.
package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/help"
	"github.com/charmbracelet/bubbles/key"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/muesli/termenv"
)

const (
	// defaultRefresh is how often the server is polled unless told otherwise.
	defaultRefresh = time.Second
	// minFetchTimeout bounds one poll, so a hung server reads as down.
	minFetchTimeout = 3 * time.Second
	// defaultWidth and defaultHeight are used until the terminal says.
	defaultWidth  = 80
	defaultHeight = 24
)

// Options configure the dashboard.
type Options struct {
	// Server is the address shown in the header (the snapshot's if empty).
	Server string
	// Version is shown when the server does not report its own.
	Version string
	// RefreshEvery is how often the server is polled; 1s if zero.
	RefreshEvery time.Duration
	// Now is the clock; time.Now if nil. Tests inject a fixed one.
	Now func() time.Time
	// NoColor turns colour and text attributes off. NO_COLOR in the
	// environment does the same.
	NoColor bool
	// Input is where keys are read from (os.Stdin if nil); Run only.
	Input io.Reader
	// Output is where the dashboard is drawn (os.Stdout if nil).
	Output io.Writer
	// Actions are extra keys, listed on the bottom line in this order.
	Actions []Action
}

// viewMode is which screen is showing.
type viewMode int

const (
	modeMain viewMode = iota
	modeDetail
)

// Messages.
type (
	// clockMsg ticks every second so countdowns move without the server.
	clockMsg time.Time
	// refreshDueMsg asks for the next poll of the server.
	refreshDueMsg struct{}
	// refreshMsg is the result of one poll.
	refreshMsg struct {
		snap   Snapshot
		err    error
		events []Event
		since  uint64
		next   uint64
		evErr  error
		took   time.Duration
	}
)

// Model is the dashboard's bubbletea model. Make one with New.
type Model struct {
	src    StatusSource
	opts   Options
	ctx    context.Context // the program's lifetime; Run sets it
	styles styles
	keys   keyMap
	help   help.Model
	filter filterInput
	vp     viewport.Model

	width, height int
	now           time.Time

	// Connection to the server.
	backoffUnit time.Duration // one second, but for tests
	fetching    bool
	failures    int
	lastErr     string
	lastOK      time.Time
	retryAt     time.Time
	cursor      uint64
	eventsErr   string

	data      viewData
	frozen    viewData // what a paused dashboard shows
	paused    bool
	pausedAt  time.Time
	mode      viewMode
	filtering bool
	showHelp  bool
	sel       int    // index of the selected row
	selKey    string // key of the selected model, kept across re-sorts
	detailKey string // the model the detail view shows

	// Extra keys and the result of the last one pressed.
	actions    []Action
	actionKeys []key.Binding
	actionSeq  int
	result     string
	resultAt   time.Time
}

// New returns the dashboard for src. It polls src once Init runs.
func New(src StatusSource, opts Options) Model {
	if opts.RefreshEvery <= 0 {
		opts.RefreshEvery = defaultRefresh
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	out := opts.Output
	if out == nil {
		out = os.Stdout
	}
	r := lipgloss.NewRenderer(out)
	if opts.NoColor {
		r.SetColorProfile(termenv.Ascii)
	}
	st := newStyles(r)

	h := help.New()
	h.Styles = st.help
	km := newKeyMap()
	actions := usableActions(opts.Actions, km)

	m := Model{
		src:    src,
		opts:   opts,
		ctx:    context.Background(),
		styles: st,
		keys:   km,
		help:   h,
		vp:     viewport.New(defaultWidth, defaultHeight),
		now:    opts.Now(),
		// Init starts the first poll; no other may start before it ends.
		fetching:    true,
		backoffUnit: time.Second,
		actions:     actions,
		actionKeys:  actionBindings(actions),
	}
	m.setSize(defaultWidth, defaultHeight)
	return m
}

// Run draws the dashboard on opts.Output (alternate screen) and reads keys
// from opts.Input until the user quits or ctx ends. It returns nil then.
//
// Run handles no signals: the caller ends ctx on SIGINT and SIGTERM
// (signal.NotifyContext). Bubble Tea's own handler would race with the
// caller's and can leave the program hanging on its way out.
func Run(ctx context.Context, src StatusSource, opts Options) error {
	m := New(src, opts)
	m.ctx = ctx
	popts := []tea.ProgramOption{tea.WithContext(ctx), tea.WithAltScreen(), tea.WithoutSignalHandler()}
	if opts.Input != nil {
		popts = append(popts, tea.WithInput(opts.Input))
	}
	if opts.Output != nil {
		popts = append(popts, tea.WithOutput(opts.Output))
	}
	_, err := tea.NewProgram(m, popts...).Run()
	switch {
	case err == nil, errors.Is(err, tea.ErrInterrupted):
		return nil
	case errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil:
		return nil
	}
	return fmt.Errorf("run dashboard: %w", err)
}

// Init starts the first poll and the clock.
func (m Model) Init() tea.Cmd {
	return tea.Batch(m.refreshCmd(), clockCmd())
}

// fetchTimeout bounds one poll.
func (m Model) fetchTimeout() time.Duration {
	return max(minFetchTimeout, 3*m.opts.RefreshEvery)
}

// staleAfter is how old the data may get, while the server fails, before
// the header calls it stale rather than reconnecting.
func (m Model) staleAfter() time.Duration {
	return max(3*time.Second, 3*m.opts.RefreshEvery)
}

// backoff is the wait before retry n (1-based) of a failing server:
// 1s, 2s, 4s, 8s, then 10s, in units of one second (tests shrink it).
func backoff(n int, unit time.Duration) time.Duration {
	n = min(max(n, 1), 5)
	return min(10*unit, unit<<(n-1))
}

func clockCmd() tea.Cmd {
	return tea.Every(time.Second, func(t time.Time) tea.Msg { return clockMsg(t) })
}

func refreshAfter(d time.Duration) tea.Cmd {
	return tea.Tick(d, func(time.Time) tea.Msg { return refreshDueMsg{} })
}

// refreshCmd polls the source once: the snapshot, then new events.
func (m Model) refreshCmd() tea.Cmd {
	ctx, src, since, timeout := m.ctx, m.src, m.cursor, m.fetchTimeout()
	return func() (msg tea.Msg) {
		start := time.Now()
		defer func() {
			// A misbehaving source must not take the terminal down with it.
			if p := recover(); p != nil {
				msg = refreshMsg{err: fmt.Errorf("status source panicked: %v", p), took: time.Since(start)}
			}
		}()
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		snap, err := src.Fetch(ctx)
		if err != nil {
			return refreshMsg{err: err, took: time.Since(start)}
		}
		evs, next, evErr := src.Events(ctx, since)
		return refreshMsg{snap: snap, events: evs, since: since, next: next, evErr: evErr, took: time.Since(start)}
	}
}

// Update handles one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	m.now = m.opts.Now()
	var cmd tea.Cmd
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.setSize(msg.Width, msg.Height)
	case clockMsg:
		cmd = clockCmd()
	case refreshDueMsg:
		if !m.fetching {
			m.fetching = true
			cmd = m.refreshCmd()
		}
	case refreshMsg:
		cmd = m.handleRefresh(msg)
	case actionDoneMsg:
		m.finishAction(msg)
	case tea.KeyMsg:
		var quit bool
		cmd, quit = m.handleKey(msg)
		if quit {
			return m, tea.Quit
		}
	}
	m.syncSelection()
	if m.mode == modeDetail {
		m.vp.SetContent(m.detailContent())
	}
	return m, cmd
}

func (m *Model) handleRefresh(msg refreshMsg) tea.Cmd {
	m.fetching = false
	if msg.err != nil {
		m.failures++
		m.lastErr = oneLine(msg.err.Error())
		d := backoff(m.failures, m.backoffUnit)
		m.retryAt = m.now.Add(d)
		return refreshAfter(d)
	}
	restarted := m.data.have && !msg.snap.StartedAt.Equal(m.data.snap.StartedAt)
	m.failures = 0
	m.lastErr = ""
	m.lastOK = m.now
	m.data.applySnapshot(msg.snap, m.now)
	if restarted {
		// The server restarted: its event numbers start again, so forget
		// ours and read its ring from the start on the next poll.
		m.data.lastSeq = 0
		m.cursor = 0
	}
	switch {
	case msg.evErr != nil:
		m.eventsErr = oneLine(msg.evErr.Error())
	case restarted:
		// These events were asked for with the old server's cursor.
		m.eventsErr = ""
	case msg.next < msg.since:
		// A cursor going backwards also means a restart; events already
		// seen are still dropped by their sequence number.
		m.eventsErr = ""
		m.cursor = 0
	default:
		m.eventsErr = ""
		m.data.applyEvents(msg.events)
		m.cursor = msg.next
	}
	wait := m.opts.RefreshEvery - msg.took
	if wait <= 0 {
		m.fetching = true
		return m.refreshCmd()
	}
	return refreshAfter(wait)
}

// handleKey handles a key press; quit says the program should end.
func (m *Model) handleKey(msg tea.KeyMsg) (cmd tea.Cmd, quit bool) {
	if msg.Type == tea.KeyCtrlC {
		return nil, true
	}
	if m.filtering {
		switch msg.Type {
		case tea.KeyEsc:
			m.filtering = false
			m.filter = filterInput{}
		case tea.KeyEnter:
			m.filtering = false
		default:
			m.filter = m.filter.update(msg)
		}
		m.sel = 0
		return nil, false
	}
	switch {
	case key.Matches(msg, m.keys.Quit):
		return nil, true
	case key.Matches(msg, m.keys.Help):
		m.showHelp = !m.showHelp
		m.help.ShowAll = m.showHelp
		m.layoutDetail()
		return nil, false
	case key.Matches(msg, m.keys.Pause):
		m.paused = !m.paused
		if m.paused {
			m.frozen = m.data.clone()
			m.pausedAt = m.now
		} else {
			m.frozen = viewData{}
		}
		return nil, false
	}
	if a, ok := m.actionFor(msg); ok {
		return m.startAction(a), false
	}
	if m.showHelp && key.Matches(msg, m.keys.Back) {
		m.showHelp = false
		m.help.ShowAll = false
		m.layoutDetail()
		return nil, false
	}
	if m.mode == modeDetail {
		if key.Matches(msg, m.keys.Back) {
			m.mode = modeMain
			return nil, false
		}
		m.vp.SetContent(m.detailContent())
		m.vp, cmd = m.vp.Update(msg)
		return cmd, false
	}
	rows := m.rows()
	switch {
	case key.Matches(msg, m.keys.Up):
		m.moveSelection(-1, rows)
	case key.Matches(msg, m.keys.Down):
		m.moveSelection(1, rows)
	case key.Matches(msg, m.keys.Enter):
		if len(rows) > 0 {
			m.mode = modeDetail
			m.detailKey = m.selKey
			m.vp.SetContent(m.detailContent())
			m.vp.GotoTop()
		}
	case key.Matches(msg, m.keys.Filter):
		m.filtering = true
	case key.Matches(msg, m.keys.Back):
		m.filter = filterInput{}
	}
	return nil, false
}

func (m *Model) moveSelection(delta int, rows []ModelRow) {
	if len(rows) == 0 {
		return
	}
	m.sel = min(max(m.sel+delta, 0), len(rows)-1)
	m.selKey = modelKey(rows[m.sel])
}

// syncSelection keeps the selection on the same model when rows re-sort,
// and inside the list when rows go away.
func (m *Model) syncSelection() {
	rows := m.rows()
	if len(rows) == 0 {
		m.sel = 0
		m.selKey = ""
		return
	}
	for i, r := range rows {
		if modelKey(r) == m.selKey {
			m.sel = i
			return
		}
	}
	m.sel = min(max(m.sel, 0), len(rows)-1)
	m.selKey = modelKey(rows[m.sel])
}

func (m *Model) setSize(w, h int) {
	m.width, m.height = max(w, 1), max(h, 1)
	m.help.Width = m.width
	m.layoutDetail()
}

// layoutDetail sizes the detail viewport to what the header and footer leave.
func (m *Model) layoutDetail() {
	m.vp.Width = m.width
	m.vp.Height = max(m.height-headerHeight-1-m.footerHeight(), 1)
}

// shown is the data on screen: the frozen copy while paused.
func (m *Model) shown() *viewData {
	if m.paused {
		return &m.frozen
	}
	return &m.data
}

// frameNow is the time the screen is drawn for: frozen while paused.
func (m *Model) frameNow() time.Time {
	if m.paused {
		return m.pausedAt
	}
	return m.now
}

// filterText is the current name filter, lower-cased.
func (m *Model) filterText() string {
	return strings.ToLower(strings.TrimSpace(m.filter.Value()))
}

func (m *Model) matches(name string) bool {
	f := m.filterText()
	return f == "" || strings.Contains(strings.ToLower(name), f)
}
