package status

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aisix/aisix/cli/model"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/tui"
)

// Source adapts the admin API client to the dashboard's StatusSource.
type Source struct {
	Client *admin.Client
	URL    string
	// Now is the clock used to order groups; nil means time.Now.
	Now func() time.Time

	mu   sync.Mutex
	last tui.Snapshot // the last snapshot read in full
	have bool
}

var _ tui.StatusSource = (*Source)(nil)

// Fetch reads the status rows, the models and the server info. A server
// whose store is away cannot list its models but still answers GET
// /admin/v1/info: then the snapshot is the last one read in full, with
// the server's info and dependencies now and RowsFrom saying how old its
// rows are, so the dashboard says what is wrong instead of "unreachable".
func (s *Source) Fetch(ctx context.Context) (tui.Snapshot, error) {
	snap, err := s.fetch(ctx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.last, s.have = snap, true
		return snap, nil
	}
	info, ierr := s.Client.Info(ctx)
	if ierr != nil || !anyDown(info.Dependencies) {
		return tui.Snapshot{}, err
	}
	last := tui.Snapshot{Server: s.URL}
	if s.have {
		last = s.last
		if last.RowsFrom.IsZero() {
			last.RowsFrom = last.ServerTime
		}
	}
	last.Version, last.StartedAt, last.ServerTime = info.Version, info.StartedAt, info.ServerTime
	last.Dependencies = dependenciesOf(info.Dependencies)
	return last, nil
}

func anyDown(ds []admin.Dependency) bool {
	for _, d := range ds {
		if !d.OK() {
			return true
		}
	}
	return false
}

// dependenciesOf maps the info's dependencies to the dashboard's.
func dependenciesOf(ds []admin.Dependency) []tui.Dependency {
	out := make([]tui.Dependency, len(ds))
	for i, d := range ds {
		out[i] = tui.Dependency{Name: d.Name, Status: d.Status, Since: d.Since, Revision: d.Revision, Impact: d.Impact}
	}
	return out
}

func (s *Source) fetch(ctx context.Context) (tui.Snapshot, error) {
	rows, err := s.Client.ModelsStatus(ctx)
	if err != nil {
		return tui.Snapshot{}, err
	}
	models, err := s.Client.ListModels(ctx)
	if err != nil {
		return tui.Snapshot{}, err
	}
	info, err := s.Client.Info(ctx)
	if err != nil {
		return tui.Snapshot{}, err
	}
	limits, err := fetchLimits(ctx, s.Client)
	if err != nil {
		return tui.Snapshot{}, err
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	snap := buildSnapshot(s.URL, info, rows, models, now, readExtras(info, rows))
	for _, r := range limits {
		snap.Limits = append(snap.Limits, limitRowOf(r))
	}
	return snap, nil
}

// fetchLimits reads GET /admin/v1/limits; a server too old to have the
// route (404) has no limits to show, which is not an error.
func fetchLimits(ctx context.Context, c *admin.Client) ([]admin.LimitRow, error) {
	rows, err := c.Limits(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return rows, err
}

// limitRowOf maps one admin limit row to the dashboard's: the limited
// dimensions in the order rpm, rpd, tpm, tpd, concurrency, and the budget.
func limitRowOf(r admin.LimitRow) tui.LimitRow {
	out := tui.LimitRow{Scope: r.Scope, ID: r.ID, Name: r.Name, Rejected: r.Rejected}
	for _, d := range admin.DimsOf(&r.RateLimit, r.Usage) {
		out.Dims = append(out.Dims, tui.LimitDim{Name: d.Name, Used: d.Used, Limit: d.Limit})
	}
	if b := r.Budget; b != nil && b.AmountUSD > 0 {
		out.BudgetUSD = b.AmountUSD
		if spent := r.Usage.BudgetSpentUSD; spent != nil {
			out.BudgetSpentUSD = *spent
		}
	}
	return out
}

// Events reads the routing events after since.
func (s *Source) Events(ctx context.Context, since uint64) ([]tui.Event, uint64, error) {
	evs, next, err := s.Client.Events(ctx, since)
	if err != nil {
		return nil, since, err
	}
	out := make([]tui.Event, len(evs))
	for i, e := range evs {
		out[i] = eventOf(e)
	}
	return out, next, nil
}

// eventOf maps one admin event to the dashboard's.
func eventOf(e admin.Event) tui.Event {
	return tui.Event{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Model: e.Model, Target: e.Target,
		Reason: e.Reason, Detail: e.Detail, CallID: e.CallID}
}

func buildSnapshot(url string, info admin.Info, rows []admin.StatusRow, models []storage.Model, now time.Time, ex extras) tui.Snapshot {
	snap := tui.Snapshot{Server: url, Version: info.Version, StartedAt: info.StartedAt, ServerTime: info.ServerTime,
		ConfigErrors: ex.configErrors, Dependencies: dependenciesOf(info.Dependencies)}
	byName := make(map[string]admin.StatusRow, len(rows))
	for _, r := range rows {
		byName[r.DisplayName] = r
	}
	if !info.ServerTime.IsZero() {
		now = info.ServerTime
	}
	for _, m := range models {
		if m.Routing != nil {
			snap.Groups = append(snap.Groups, group(m, byName, now))
			continue
		}
		r, ok := byName[m.DisplayName]
		if !ok || r.DirectStats == nil {
			continue
		}
		row := tui.ModelRow{
			ID: m.ID, Name: m.DisplayName, Provider: m.Provider, Status: r.Status, Reason: r.StatusReason,
			Requests: r.Requests, Failures: r.Failures, InFlight: r.InFlight,
			TokensIn: r.TokensIn, TokensOut: r.TokensOut, CostUSD: r.CostUSD,
			LatencyP50: ms(r.LatencyP50Ms), LatencyP95: ms(r.LatencyP95Ms), TTFTP50: ms(r.TTFTP50Ms),
			LastError: r.LastError, Config: config(m),
			SecretNeedsReentry: ex.secretNeedsReentry[r.ID],
		}
		if r.Probing {
			row.Status = tui.StatusProbing
		}
		if r.CooldownUntil != nil {
			row.CooldownUntil = r.CooldownUntil.Time()
		}
		if r.LastErrorAt != nil {
			row.LastErrorAt = *r.LastErrorAt
		}
		if r.LastSuccessAt != nil {
			row.LastSuccessAt = *r.LastSuccessAt
		}
		snap.Models = append(snap.Models, row)
	}
	return snap
}

func group(m storage.Model, byName map[string]admin.StatusRow, now time.Time) tui.GroupRow {
	g := tui.GroupRow{Name: m.DisplayName, Strategy: m.Routing.Strategy}
	if g.Strategy == "" {
		g.Strategy = storage.StrategyFailover
	}
	for _, r := range model.Explain(m.Routing, byName, now) {
		t := tui.GroupTarget{Name: r.Target, Status: r.Status, Skipped: !r.Tried || r.CooldownUntil != nil}
		switch {
		case r.AtProviderLimit:
			t.Why = "provider limit"
		case r.CooldownUntil != nil:
			// The dashboard words the countdown itself from the model row.
			t.Why = "cooldown: " + r.Reason
		case t.Skipped:
			t.Why = r.Why
		}
		if g.Serving == "" && r.Tried && r.CooldownUntil == nil {
			g.Serving = r.Target
		}
		g.Targets = append(g.Targets, t)
	}
	return g
}

// config lists what the detail view shows of a direct model: never a secret.
func config(m storage.Model) []tui.KV {
	kv := []tui.KV{{Key: "id", Value: m.ID}, {Key: "provider", Value: m.Provider}, {Key: "model_name", Value: m.ModelName}, {Key: "provider_key_id", Value: m.ProviderKeyID}}
	if m.Timeout != nil {
		kv = append(kv, tui.KV{Key: "timeout", Value: (time.Duration(*m.Timeout) * time.Millisecond).String()})
	}
	if m.StreamTimeout != nil {
		kv = append(kv, tui.KV{Key: "stream_timeout", Value: (time.Duration(*m.StreamTimeout) * time.Millisecond).String()})
	}
	if m.Retries != nil {
		kv = append(kv, tui.KV{Key: "retries", Value: strconv.Itoa(*m.Retries)})
	}
	if c := m.Cooldown; c != nil {
		if c.DefaultSeconds != nil {
			kv = append(kv, tui.KV{Key: "cooldown.default_seconds", Value: strconv.Itoa(*c.DefaultSeconds)})
		}
		if c.Enabled != nil {
			kv = append(kv, tui.KV{Key: "cooldown.enabled", Value: fmt.Sprint(*c.Enabled)})
		}
	}
	kv = append(kv, tui.KV{Key: "revision", Value: strconv.FormatInt(m.Revision, 10)})
	return kv
}

func ms(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }
