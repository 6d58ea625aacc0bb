package tui

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
)

// t0 is the fixed "now" of every test: 12:03:41 UTC.
var t0 = time.Date(2026, 11, 26, 12, 3, 41, 0, time.UTC)

// fakeClock is a settable clock, safe for the program's goroutines.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeSource is a StatusSource fed by the test. Fetch returns the current
// snapshot or error; Events returns the queued events after since.
type fakeSource struct {
	mu       sync.Mutex
	snap     Snapshot
	err      error
	events   []Event
	fetches  int
	fetchedC chan struct{} // receives after every Fetch, if not nil
	// clock, if set, stamps ServerTime on every snapshot, like a server
	// whose clock agrees with ours.
	clock *fakeClock
}

func (s *fakeSource) set(snap Snapshot, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap, s.err = snap, err
}

func (s *fakeSource) addEvents(evs ...Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.events = append(s.events, evs...)
}

func (s *fakeSource) Fetch(ctx context.Context) (Snapshot, error) {
	s.mu.Lock()
	s.fetches++
	snap, err, ch := s.snap, s.err, s.fetchedC
	if s.clock != nil {
		snap.ServerTime = s.clock.Now()
	}
	s.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	if err := ctx.Err(); err != nil {
		return Snapshot{}, err
	}
	return snap, err
}

func (s *fakeSource) Events(_ context.Context, since uint64) ([]Event, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Event
	next := since
	for _, e := range s.events {
		if e.Seq > since {
			out = append(out, e)
			next = e.Seq
		}
	}
	return out, next, nil
}

var errDown = errors.New("dial tcp 127.0.0.1:3001: connect: connection refused")

// tutorialSnapshot is the tutorial's setup after the primary was pointed at
// an unreachable host, plus a few models to show ordering, at time now.
// scale multiplies the counters, so two snapshots a minute apart give rates.
func tutorialSnapshot(now time.Time, scale uint64) Snapshot {
	return Snapshot{
		Server:     "http://127.0.0.1:3001",
		Version:    "0.1.0",
		StartedAt:  t0.Add(-2*time.Hour - 3*time.Minute - 14*time.Second),
		ServerTime: now,
		Models: []ModelRow{
			{
				ID: "4f49a654-b03d-4f19-a40c-9a6dc3210a55", Name: "gpt-4o-secondary", Provider: "openai",
				Status: StatusHealthy, Requests: 240 * scale, Failures: 0,
				TokensIn: 24000 * scale, TokensOut: 6000 * scale, CostUSD: 0.007 * float64(scale),
				InFlight: 2, LatencyP50: 820 * time.Millisecond, LatencyP95: 1900 * time.Millisecond, TTFTP50: 310 * time.Millisecond,
				LastSuccessAt: now.Add(-time.Second),
				Config:        []KV{{"model_name", "gpt-4o-mini"}, {"provider_key", "openai-secondary (…c727)"}, {"api_base", "https://api.openai.com/v1"}},
			},
			{
				ID: "3b909841-c0a7-4ad8-8f1b-a9df8f10b581", Name: "gpt-4o-primary", Provider: "openai",
				Status: StatusCooldown, CooldownUntil: now.Add(27 * time.Second), Reason: "transport_error",
				Requests: 100 * scale, Failures: 10 * scale, TokensIn: 500 * scale, TokensOut: 100 * scale, CostUSD: 0.00005 * float64(scale),
				LatencyP50: 640 * time.Millisecond, LatencyP95: 1200 * time.Millisecond, TTFTP50: 280 * time.Millisecond,
				LastError: "dial tcp: lookup api.openai.invalid: no such host", LastErrorAt: now.Add(-3 * time.Second),
				LastSuccessAt: now.Add(-95 * time.Second),
				Config:        []KV{{"model_name", "gpt-4o-mini"}, {"provider_key", "openai-primary (…5a)"}, {"api_base", "https://api.openai.invalid/v1"}, {"secret", "sk-should-never-show"}},
			},
			{
				ID: "9c1e", Name: "claude-haiku", Provider: "anthropic",
				Status: StatusProbing, Reason: "upstream_rate_limited", Requests: 30 * scale, Failures: 3 * scale,
				TokensIn: 3000 * scale, TokensOut: 900 * scale, // no price
				LatencyP50: 450 * time.Millisecond, LatencyP95: 980 * time.Millisecond,
				LastError: "429 Too Many Requests: rate limit reached for requests", LastErrorAt: now.Add(-40 * time.Second),
			},
			{
				ID: "77aa", Name: "llama-local", Provider: "ollama",
				Status: StatusUnhealthy, Reason: "upstream_5xx", Requests: 12 * scale, Failures: 12 * scale,
				LastError: "502 Bad Gateway", LastErrorAt: now.Add(-2 * time.Second),
			},
		},
		Groups: []GroupRow{
			{
				Name: "chat-prod", Strategy: "failover", Serving: "gpt-4o-secondary",
				Targets: []GroupTarget{
					{Name: "gpt-4o-primary", Status: StatusCooldown, Skipped: true, Why: "cooldown: transport_error"},
					{Name: "gpt-4o-secondary", Status: StatusHealthy},
				},
			},
			{
				Name: "chat-cheap", Strategy: "failover",
				Targets: []GroupTarget{
					{Name: "claude-haiku", Status: StatusProbing},
					{Name: "llama-local", Status: StatusUnhealthy, Skipped: true, Why: "unhealthy: upstream_5xx"},
				},
			},
		},
	}
}

// troubledSnapshot is tutorialSnapshot with rows the server could not
// serve as stored, and claude-haiku's provider key moved to another host
// without its secret.
func troubledSnapshot(now time.Time, scale uint64) Snapshot {
	s := tutorialSnapshot(now, scale)
	s.ConfigErrors = []ConfigError{
		{Kind: "provider_key", ID: "pk-7", Name: "azure-east", Reason: `provider key "azure-east" has an unusable api_base: host 169.254.169.254 is a cloud metadata address, refused by the egress policy`},
		{Kind: "model", ID: "m-12", Name: "gpt-4o-batch", Reason: "retries: must be between 0 and 10"},
		{Kind: "api_key", ID: "k-3f2a", Reason: "key_hash: must be the lower-case hex SHA-256 of the key (64 characters 0-9a-f)"},
	}
	for i := range s.Models {
		if r := &s.Models[i]; r.Name == "claude-haiku" {
			r.SecretNeedsReentry, r.Reason = true, "upstream_auth_failure"
		}
	}
	return s
}

// manyConfigErrors is n config errors about models.
func manyConfigErrors(n int) []ConfigError {
	out := make([]ConfigError, n)
	for i := range out {
		out[i] = ConfigError{Kind: "model", ID: fmt.Sprint("m", i), Name: fmt.Sprint("broken-", i), Reason: "provider key pk-x does not exist"}
	}
	return out
}

// tutorialEvents is what the server's ring holds at t0: the tutorial's
// failover as the server publishes it, and a few others.
func tutorialEvents(now time.Time) []Event {
	const trail = "gpt-4o-primary transport_error, gpt-4o-primary transport_error, gpt-4o-secondary 200"
	return []Event{
		{Seq: 1, Time: now.Add(-5 * time.Minute), Kind: EventConfigReloaded, Detail: "revision 7"},
		{Seq: 2, Time: now.Add(-62 * time.Second), Kind: EventProbe, Model: "llama-local", Target: "llama-local", Detail: ProbeStarted},
		{Seq: 3, Time: now.Add(-2 * time.Second), Kind: EventAttemptFailed, Model: "llama-local", Target: "llama-local", Reason: "upstream_5xx", Detail: "502 Bad Gateway"},
		{Seq: 4, Time: now.Add(-1 * time.Second), Kind: EventAttemptFailed, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "transport_error", Detail: "dial tcp: lookup api.openai.invalid: no such host"},
		{Seq: 5, Time: now.Add(-1 * time.Second), Kind: EventAttemptFailed, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "transport_error", Detail: "dial tcp: lookup api.openai.invalid: no such host"},
		{Seq: 6, Time: now, Kind: EventCooldownEntered, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "transport_error", Detail: "30s"},
		{Seq: 7, Time: now, Kind: EventFailover, Model: "chat-prod", Target: "gpt-4o-secondary", Reason: "transport_error", Detail: "gpt-4o-primary"},
		{Seq: 8, Time: now, Kind: EventServed, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: trail},
	}
}

// callEvents is one more request through chat-prod after tutorialEvents,
// as a server that tells call ids publishes it: the primary's 429 puts it
// in cooldown and the secondary serves.
func callEvents(now time.Time) []Event {
	const call = "3f2a1b9c-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
	return []Event{
		{Seq: 9, Time: now, Kind: EventCooldownEntered, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "upstream_rate_limited", Detail: "until 2026-11-26T12:04:11Z", CallID: call},
		{Seq: 10, Time: now, Kind: EventAttemptFailed, Model: "chat-prod", Target: "gpt-4o-primary", Reason: "429", Detail: "429 Too Many Requests: rate limit reached", CallID: call},
		{Seq: 11, Time: now, Kind: EventFailover, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "from gpt-4o-primary", CallID: call},
		{Seq: 12, Time: now, Kind: EventServed, Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "gpt-4o-primary=429,gpt-4o-secondary=200", CallID: call},
	}
}

// newTestModel returns a colourless model at size w×h on clock c.
func newTestModel(tb testing.TB, src StatusSource, c *fakeClock, w, h int) Model {
	tb.Helper()
	m := New(src, Options{Server: "127.0.0.1:3001", Version: "0.1.0", Now: c.Now, NoColor: true})
	return send(tb, m, tea.WindowSizeMsg{Width: w, Height: h})
}

// send feeds msgs to m's Update in order and returns the final model.
func send(tb testing.TB, m Model, msgs ...tea.Msg) Model {
	tb.Helper()
	for _, msg := range msgs {
		nm, _ := m.Update(msg)
		m = nm.(Model)
	}
	return m
}

// sendCmd feeds one message and returns the model and its command.
func sendCmd(tb testing.TB, m Model, msg tea.Msg) (Model, tea.Cmd) {
	tb.Helper()
	nm, cmd := m.Update(msg)
	return nm.(Model), cmd
}

func keyMsg(k string) tea.KeyMsg {
	switch k {
	case "up":
		return tea.KeyMsg{Type: tea.KeyUp}
	case "down":
		return tea.KeyMsg{Type: tea.KeyDown}
	case "enter":
		return tea.KeyMsg{Type: tea.KeyEnter}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	case "backspace":
		return tea.KeyMsg{Type: tea.KeyBackspace}
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
}

// loaded returns a model that has seen two snapshots a minute apart (so it
// has rates) and the tutorial's events, at t0 on clock c.
func loaded(tb testing.TB, c *fakeClock, w, h int) Model {
	tb.Helper()
	m := newTestModel(tb, &fakeSource{}, c, w, h)
	c.Advance(-time.Minute)
	m = send(tb, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 1)})
	c.Advance(time.Minute)
	return send(tb, m, refreshMsg{snap: tutorialSnapshot(c.Now(), 2), events: tutorialEvents(c.Now()), next: 8})
}

// limitedSnapshot is tutorialSnapshot with limits: the ci key near its
// rpm, tpm and budget and refusing 12 requests a minute, a nameless key at
// its concurrency, claude-haiku at its provider limit (so chat-cheap skips
// it), and chat-prod with room. scale multiplies the rejection counters.
func limitedSnapshot(now time.Time, scale int64) Snapshot {
	s := tutorialSnapshot(now, uint64(scale))
	s.Limits = []LimitRow{
		{Scope: LimitScopeCallerKey, ID: "k-1", Name: "ci", Rejected: 12 * scale, BudgetUSD: 50, BudgetSpentUSD: 41.2,
			Dims: []LimitDim{{"rpm", 58, 60}, {"tpm", 91_000, 100_000}}},
		{Scope: LimitScopeCallerKey, ID: "k-9", Rejected: 7, Dims: []LimitDim{{"concurrency", 4, 4}}},
		{Scope: LimitScopeModel, ID: "m-2", Name: "chat-prod", Dims: []LimitDim{{"rpd", 10, 100}}, BudgetUSD: 500, BudgetSpentUSD: 12},
		{Scope: LimitScopeTarget, ID: "9c1e", Name: "claude-haiku", Rejected: 5 * scale, Dims: []LimitDim{{"rpm", 50, 50}, {"tpm", 1200, 200_000}}},
	}
	for i := range s.Groups {
		if g := &s.Groups[i]; g.Name == "chat-cheap" {
			g.Targets[0].Skipped, g.Targets[0].Why = true, "provider limit"
		}
	}
	return s
}

// limitEvents are what the limits of limitedSnapshot publish.
func limitEvents(now time.Time) []Event {
	return []Event{
		{Seq: 9, Time: now, Kind: EventLimited, Model: "chat-cheap", Target: "claude-haiku", Reason: LimitReasonTarget, Detail: "rpm 50, frees in 12s", CallID: "c-1"},
		{Seq: 10, Time: now, Kind: EventLimited, Model: "chat-prod", Reason: "caller_key_rpm", Detail: "rpm 60, frees in 41s", CallID: "c-2"},
	}
}

// limited feeds limitedSnapshot a minute after loaded's first snapshot,
// over one with the counters of loaded's start.
func limited(t *testing.T, m Model, c *fakeClock) Model {
	c.Advance(-time.Minute)
	m = send(t, m, refreshMsg{snap: limitedSnapshot(c.Now(), 1), since: 8, next: 8})
	c.Advance(time.Minute)
	return send(t, m, refreshMsg{snap: limitedSnapshot(c.Now(), 2), events: limitEvents(c.Now()), since: 8, next: 10})
}
