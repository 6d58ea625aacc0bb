package tui

import (
	"testing"
	"time"
)

func snapOf(rows ...ModelRow) Snapshot {
	return Snapshot{StartedAt: t0.Add(-time.Hour), Models: rows}
}

func TestRatesOverTheLastMinute(t *testing.T) {
	row := func(req, fail uint64) ModelRow { return ModelRow{ID: "m", Name: "m", Requests: req, Failures: fail} }
	type step struct {
		at        int // seconds after t0
		req, fail uint64
		reqPerMin float64
		reqOK     bool
		errRatio  float64
		errOK     bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"one sample has no rate", []step{{0, 10, 0, 0, false, 0, false}}},
		{"two samples", []step{{0, 10, 0, 0, false, 0, false}, {30, 40, 3, 60, true, 0.1, true}}},
		{"no requests: no error rate", []step{{0, 10, 1, 0, false, 0, false}, {10, 10, 1, 0, true, 0, false}}},
		{
			"only the last minute counts",
			[]step{
				{0, 0, 0, 0, false, 0, false},
				{30, 600, 600, 1200, true, 1, true}, // a burst of failures
				{60, 600, 600, 600, true, 1, true},
				{90, 660, 600, 60, true, 0, true}, // base is now t+30: the burst left the window
				{150, 720, 600, 60, true, 0, true},
			},
		},
		{
			"counters going back start afresh",
			[]step{{0, 100, 10, 0, false, 0, false}, {10, 110, 10, 60, true, 0, true}, {20, 5, 0, 0, false, 0, false}, {30, 15, 1, 60, true, 0.1, true}},
		},
		{
			"a clock that does not move replaces the sample",
			[]step{{0, 10, 0, 0, false, 0, false}, {0, 20, 0, 0, false, 0, false}, {60, 80, 0, 60, true, 0, true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d viewData
			for i, s := range tt.steps {
				d.applySnapshot(snapOf(row(s.req, s.fail)), t0.Add(time.Duration(s.at)*time.Second))
				got := d.rates["m"]
				if got.reqOK != s.reqOK || got.reqPerMin != s.reqPerMin || got.errOK != s.errOK || got.errRatio != s.errRatio {
					t.Errorf("step %d: rates %+v, want %+v", i, got, s)
				}
			}
		})
	}
}

func TestRatesSeededFromAYoungServer(t *testing.T) {
	row := func(req, fail uint64) ModelRow { return ModelRow{ID: "m", Name: "m", Requests: req, Failures: fail} }
	young := func(uptime time.Duration, req, fail uint64, skew time.Duration) Snapshot {
		return Snapshot{StartedAt: t0.Add(skew - uptime), ServerTime: t0.Add(skew), Models: []ModelRow{row(req, fail)}}
	}
	tests := []struct {
		name      string
		snap      Snapshot
		reqPerMin float64
		reqOK     bool
		errRatio  float64
	}{
		// Counters count from the server's start: the first snapshot of a
		// server up 10 s with 30 requests says 180/min at once.
		{"up 10s", young(10*time.Second, 30, 3, 0), 180, true, 0.1},
		{"up 10s, its clock 1h ahead", young(10*time.Second, 30, 3, time.Hour), 180, true, 0.1},
		{"up a minute", young(time.Minute, 60, 0, 0), 60, true, 0},
		// Older than the window: nothing is known of the last minute yet.
		{"up 2 minutes", young(2*time.Minute, 600, 0, 0), 0, false, 0},
		// Too short a span to mean anything.
		{"up 1s", young(time.Second, 2, 0, 0), 0, false, 0},
		{"no start time", Snapshot{Models: []ModelRow{row(30, 3)}}, 0, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var d viewData
			d.applySnapshot(tt.snap, t0)
			got := d.rates["m"]
			if got.reqOK != tt.reqOK || got.reqPerMin != tt.reqPerMin || got.errRatio != tt.errRatio {
				t.Errorf("rates %+v, want %v/min (ok %v), errors %v", got, tt.reqPerMin, tt.reqOK, tt.errRatio)
			}
			if d.total.ok != tt.reqOK || (tt.reqOK && d.total.reqPerSec != tt.reqPerMin/60) {
				t.Errorf("totals %+v, want %v/s", d.total, tt.reqPerMin/60)
			}
		})
	}

	// The seed stays the base while it is in the window, then real
	// samples take over.
	var d viewData
	poll := func(after time.Duration, req uint64) {
		now := t0.Add(after)
		d.applySnapshot(Snapshot{StartedAt: t0.Add(-10 * time.Second), ServerTime: now, Models: []ModelRow{row(req, 0)}}, now)
	}
	poll(0, 30)
	poll(30*time.Second, 30+90)
	if r := d.rates["m"]; r.reqPerMin != 180 {
		t.Errorf("30 s later: %v/min, want 180 (still from the start)", r.reqPerMin)
	}
	poll(90*time.Second, 30+90+60)
	if r := d.rates["m"]; r.reqPerMin != 60 {
		t.Errorf("90 s later: %v/min, want 60 (from the sample 30 s in)", r.reqPerMin)
	}
}

func TestRatesTotals(t *testing.T) {
	var d viewData
	d.applySnapshot(snapOf(ModelRow{ID: "a", Requests: 10}, ModelRow{ID: "b", Requests: 0}), t0)
	if d.total.ok {
		t.Error("totals from one sample")
	}
	d.applySnapshot(snapOf(ModelRow{ID: "a", Requests: 70, Failures: 6}, ModelRow{ID: "b", Requests: 60}), t0.Add(time.Minute))
	if !d.total.ok || d.total.reqPerSec != 2 || d.total.errPerSec != 0.1 {
		t.Errorf("totals %+v, want 2 req/s and 0.1 err/s", d.total)
	}
	// A model that appears later has no rate until its second sample.
	d.applySnapshot(snapOf(ModelRow{ID: "a", Requests: 70, Failures: 6}, ModelRow{ID: "b", Requests: 60}, ModelRow{ID: "c", Requests: 5}), t0.Add(61*time.Second))
	if d.rates["c"].reqOK {
		t.Error("rate for a model seen once")
	}
}

func TestCooldownHistory(t *testing.T) {
	m := func(status, reason string, until time.Time) ModelRow {
		return ModelRow{ID: "p", Name: "p", Status: status, Reason: reason, CooldownUntil: until}
	}
	var d viewData
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	d.applySnapshot(snapOf(m(StatusCooldown, "transport_error", at(20))), at(0)) // already cooling down
	d.applySnapshot(snapOf(m(StatusCooldown, "transport_error", at(20))), at(1))
	d.applySnapshot(snapOf(m(StatusProbing, "", time.Time{})), at(20))
	d.applySnapshot(snapOf(m(StatusHealthy, "", time.Time{})), at(21))
	d.applySnapshot(snapOf(m(StatusCooldown, "upstream_rate_limited", at(60))), at(30))
	d.applySnapshot(snapOf(m(StatusCooldown, "upstream_rate_limited", at(90))), at(31)) // extended

	h := d.history["p"]
	if len(h) != 2 {
		t.Fatalf("history %+v, want 2 spans", h)
	}
	if first := h[0]; !first.partial || !first.start.Equal(at(0)) || !first.end.Equal(at(20)) || first.after != StatusProbing || first.reason != "transport_error" {
		t.Errorf("first span %+v", first)
	}
	if second := h[1]; second.partial || !second.start.Equal(at(30)) || !second.end.IsZero() || !second.until.Equal(at(90)) || second.reason != "upstream_rate_limited" {
		t.Errorf("second span %+v", second)
	}

	// Bounded.
	for i := range 3 * maxHistory {
		s := 100 + 2*i
		d.applySnapshot(snapOf(m(StatusCooldown, "x", at(s+1))), at(s))
		d.applySnapshot(snapOf(m(StatusHealthy, "", time.Time{})), at(s+1))
	}
	if n := len(d.history["p"]); n != maxHistory {
		t.Errorf("history length %d, want %d", n, maxHistory)
	}
}

func TestEventsAreBounded(t *testing.T) {
	var d viewData
	for i := range maxEvents + 10 {
		d.applyEvents([]Event{{Seq: uint64(i + 1), Time: t0}})
	}
	if len(d.events) != maxEvents || d.events[0].Seq != 11 {
		t.Errorf("events %d, first seq %d", len(d.events), d.events[0].Seq)
	}
}

func TestCloneIsIndependent(t *testing.T) {
	var d viewData
	d.applySnapshot(snapOf(ModelRow{ID: "p", Status: StatusCooldown, CooldownUntil: t0.Add(time.Minute)}), t0)
	d.applyEvents([]Event{{Seq: 1, Time: t0, Kind: EventConfigReloaded}})
	c := d.clone()
	d.applySnapshot(snapOf(ModelRow{ID: "p", Status: StatusHealthy}), t0.Add(time.Second))
	d.applyEvents([]Event{{Seq: 2, Time: t0, Kind: EventConfigReloaded}})
	if len(c.events) != 1 || !c.history["p"][0].end.IsZero() || c.snap.Models[0].Status != StatusCooldown {
		t.Errorf("clone changed with the original: %+v", c)
	}
}

func TestTokenAndCostRates(t *testing.T) {
	row := func(id string, in, out uint64, cost float64) ModelRow {
		return ModelRow{ID: id, Name: id, Requests: in / 100, TokensIn: in, TokensOut: out, CostUSD: cost}
	}
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	started := t0.Add(-time.Hour)
	snap := func(start time.Time, rows ...ModelRow) Snapshot { return Snapshot{StartedAt: start, Models: rows} }

	t.Run("two snapshots a minute apart", func(t *testing.T) {
		var d viewData
		d.applySnapshot(snap(started, row("priced", 1000, 200, 0.01), row("free", 500, 100, 0)), at(0))
		d.applySnapshot(snap(started, row("priced", 4000, 800, 0.02), row("free", 1100, 200, 0)), at(60))
		p, f := d.rates["priced"], d.rates["free"]
		if !p.reqOK || p.tokPerMin != 3600 || !approx(p.costPerHour, 0.6) || !p.priced {
			t.Errorf("priced: %+v, want 3600 tok/min, $0.60/h", p)
		}
		if !f.reqOK || f.tokPerMin != 700 || f.costPerHour != 0 || f.priced {
			t.Errorf("free: %+v, want 700 tok/min, no price", f)
		}
		if tot := d.total; !tot.ok || tot.tokPerMin != 4300 || !approx(tot.costPerHour, 0.6) || !tot.priced {
			t.Errorf("total: %+v, want 4300 tok/min, $0.60/h", tot)
		}
		if got := costRate(f.costPerHour, f.reqOK, f.priced); got != noValue {
			t.Errorf("free model's cost %q, want %q", got, noValue)
		}
	})
	t.Run("a restart never gives negative rates", func(t *testing.T) {
		var d viewData
		d.applySnapshot(snap(started, row("m", 9000, 3000, 5)), at(0))
		d.applySnapshot(snap(started, row("m", 9600, 3100, 5.5)), at(30))
		// The server restarted: its counters start again from 0.
		d.applySnapshot(snap(at(50), row("m", 200, 50, 0.1)), at(60))
		r := d.rates["m"]
		if r.tokPerMin < 0 || r.costPerHour < 0 || d.total.tokPerMin < 0 || d.total.costPerHour < 0 {
			t.Fatalf("negative rate after a restart: %+v, total %+v", r, d.total)
		}
		// Seeded from the new start 10 s before: 250 tokens in 10 s.
		if !r.reqOK || r.tokPerMin != 1500 || !approx(r.costPerHour, 36) {
			t.Errorf("after restart: %+v, want 1500 tok/min, $36/h", r)
		}
	})
	t.Run("tokens going back without a restart start afresh", func(t *testing.T) {
		var d viewData
		d.applySnapshot(snap(started, row("m", 9000, 3000, 5)), at(0))
		d.applySnapshot(snap(started, row("m", 100, 10, 5)), at(30))
		if r := d.rates["m"]; r.reqOK || r.tokPerMin != 0 || r.costPerHour != 0 {
			t.Errorf("rates %+v, want none until two new samples", r)
		}
	})
	t.Run("no model has a price", func(t *testing.T) {
		var d viewData
		d.applySnapshot(snap(started, row("a", 100, 10, 0), row("b", 0, 0, 0)), at(0))
		d.applySnapshot(snap(started, row("a", 700, 70, 0), row("b", 0, 0, 0)), at(60))
		if tot := d.total; tot.priced || costRate(tot.costPerHour, tot.ok, tot.priced) != noValue {
			t.Errorf("total %+v shows a cost", tot)
		}
	})
}

func approx(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 }

// TestLimitRejectionRates: rejections per minute come from successive
// snapshots' cumulative counters, over the last minute; a counter that
// went down (the server restarted) counts as none, not as negative.
func TestLimitRejectionRates(t *testing.T) {
	snap := func(key, target int64) Snapshot {
		s := snapOf(ModelRow{ID: "m", Name: "m"})
		s.Limits = []LimitRow{
			{Scope: LimitScopeCallerKey, ID: "k", Name: "ci", Rejected: key},
			{Scope: LimitScopeTarget, ID: "m", Name: "m", Rejected: target},
		}
		return s
	}
	type step struct {
		at          int // seconds after t0
		key, target int64
		keyPerMin   float64
		total       float64
		ok          bool
	}
	for _, tt := range []struct {
		name  string
		steps []step
	}{
		{"one sample has no rate", []step{{0, 5, 0, 0, 0, false}}},
		{"two samples", []step{{0, 5, 0, 0, 0, false}, {30, 11, 2, 12, 16, true}}},
		{"only the last minute counts", []step{{0, 0, 0, 0, 0, false}, {30, 30, 0, 60, 60, true}, {60, 30, 0, 30, 30, true}, {90, 30, 0, 0, 0, true}}},
		{"a counter that went down counts as none", []step{{0, 50, 9, 0, 0, false}, {30, 3, 10, 0, 2, true}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var d viewData
			for i, s := range tt.steps {
				d.applySnapshot(snap(s.key, s.target), t0.Add(time.Duration(s.at)*time.Second))
				_, ok := d.limitRates["caller_key/k"]
				if got := d.limitRates["caller_key/k"]; ok != s.ok || !approx(got, s.keyPerMin) || d.total.limitedOK != s.ok || !approx(d.total.limitedPerMin, s.total) {
					t.Errorf("step %d: key %v/min (ok %v), total %v/min (ok %v); want %v, %v, %v",
						i, got, ok, d.total.limitedPerMin, d.total.limitedOK, s.keyPerMin, s.total, s.ok)
				}
			}
		})
	}
}
