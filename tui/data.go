package tui

import (
	"maps"
	"slices"
	"time"
)

const (
	// rateWindow is the span rates are computed over.
	rateWindow = time.Minute
	// maxEvents bounds the events the dashboard remembers.
	maxEvents = 500
	// maxHistory bounds the cooldown spans remembered per model.
	maxHistory = 20
	// minRateSpan is the least time two samples must span to give a rate:
	// two polls a moment apart would mostly say 0.
	minRateSpan = 2 * time.Second
)

// counters are one model's cumulative counters in one sample.
type counters struct {
	requests uint64
	failures uint64
	// tokens is prompt plus completion tokens; cost is in US dollars.
	tokens uint64
	cost   float64
}

// countersOf returns the cumulative counters of r.
func countersOf(r ModelRow) counters {
	return counters{requests: r.Requests, failures: r.Failures, tokens: r.TokensIn + r.TokensOut, cost: r.CostUSD}
}

// before reports whether any counter of c is lower than in p: the server
// restarted, or the model was deleted and made again.
func (c counters) before(p counters) bool {
	return c.requests < p.requests || c.failures < p.failures || c.tokens < p.tokens || c.cost < p.cost
}

// sample is the counters of every model, and the rejections of every
// limited resource, at one moment (local clock).
type sample struct {
	at       time.Time
	models   map[string]counters
	rejected map[string]int64 // by limitKey
}

// modelRates are the rates derived for one model over the last minute.
type modelRates struct {
	reqPerMin float64
	reqOK     bool // false until two samples span some time
	errRatio  float64
	errOK     bool // false when there were no requests in the window
	// tokPerMin and costPerHour are valid when reqOK is.
	tokPerMin   float64
	costPerHour float64
	// priced is set once the model has cost anything since the server
	// started: a model without a price never does, and shows no cost
	// rather than a cost of nothing.
	priced bool
}

// totalRates are the rates across all models over the last minute.
type totalRates struct {
	reqPerSec float64
	errPerSec float64
	// tokPerMin and costPerHour are summed over the models.
	tokPerMin   float64
	costPerHour float64
	ok          bool
	// priced is set when any model is.
	priced bool
	// limitedPerMin is the limiters' rejections per minute, summed over
	// every limited resource; limitedOK is false until two samples span
	// some time.
	limitedPerMin float64
	limitedOK     bool
}

// cooldownSpan is one cooldown seen by the dashboard, in local time except
// until, which is the server's deadline.
type cooldownSpan struct {
	start   time.Time
	until   time.Time
	end     time.Time // zero while it lasts
	reason  string
	after   string // the status the model left cooldown into
	partial bool   // already cooling down when the dashboard first saw it
}

// viewData is everything the dashboard knows about the server. The live copy
// keeps changing while the frozen copy of a paused dashboard does not.
type viewData struct {
	snap       Snapshot
	have       bool
	receivedAt time.Time
	// skew is the server's clock minus ours, when the server tells its time.
	skew time.Duration

	samples []sample
	rates   map[string]modelRates
	total   totalRates
	// limitRates are the rejections per minute of each limited resource,
	// by limitKey, once two samples span some time.
	limitRates map[string]float64

	events  []Event
	lastSeq uint64

	history map[string][]cooldownSpan
}

// modelKey identifies a model across snapshots.
func modelKey(r ModelRow) string {
	if r.ID != "" {
		return r.ID
	}
	return r.Name
}

// limitKey identifies a limited resource across snapshots.
func limitKey(r LimitRow) string { return r.Scope + "/" + orDefault(r.ID, r.Name) }

// clone returns a deep copy, so a paused view cannot change under the user.
func (d viewData) clone() viewData {
	c := d
	c.snap.Models = slices.Clone(d.snap.Models)
	c.snap.Groups = slices.Clone(d.snap.Groups)
	c.snap.ConfigErrors = slices.Clone(d.snap.ConfigErrors)
	c.snap.Dependencies = slices.Clone(d.snap.Dependencies)
	c.snap.Limits = slices.Clone(d.snap.Limits)
	c.limitRates = maps.Clone(d.limitRates)
	c.samples = slices.Clone(d.samples)
	c.rates = maps.Clone(d.rates)
	c.events = slices.Clone(d.events)
	c.history = make(map[string][]cooldownSpan, len(d.history))
	for k, v := range d.history {
		c.history[k] = slices.Clone(v)
	}
	return c
}

// applySnapshot records a snapshot received at now (local clock).
func (d *viewData) applySnapshot(s Snapshot, now time.Time) {
	restarted := d.have && !s.StartedAt.Equal(d.snap.StartedAt)
	prev := d.snap
	d.snap = s
	d.have = true
	d.receivedAt = now
	d.skew = 0
	if !s.ServerTime.IsZero() {
		d.skew = s.ServerTime.Sub(now)
	}
	d.trackCooldowns(prev.Models, s.Models, now)
	d.addSample(s, now, restarted)
}

// addSample appends the snapshot's counters and recomputes the rates over
// the last minute. A restart, or any counter going backwards, starts the
// history afresh rather than showing negative rates.
func (d *viewData) addSample(s Snapshot, now time.Time, restarted bool) {
	cur := sample{at: now, models: make(map[string]counters, len(s.Models))}
	for _, r := range s.Models {
		cur.models[modelKey(r)] = countersOf(r)
	}
	if len(s.Limits) > 0 {
		cur.rejected = make(map[string]int64, len(s.Limits))
		for _, r := range s.Limits {
			cur.rejected[limitKey(r)] = r.Rejected
		}
	}
	if n := len(d.samples); n > 0 {
		last := d.samples[n-1]
		for k, c := range cur.models {
			if p, ok := last.models[k]; ok && c.before(p) {
				restarted = true
				break
			}
		}
		if !now.After(last.at) {
			// A clock that does not move (tests, or a clock step back):
			// replace the last sample rather than divide by zero.
			d.samples = d.samples[:n-1]
		}
	}
	if restarted {
		d.samples = nil
	}
	if len(d.samples) == 0 {
		d.seed(s, cur, now)
	}
	d.samples = append(d.samples, cur)
	// Keep one sample at or before the window start, so the rates span a
	// whole minute once the dashboard has run that long.
	cut := 0
	for cut+1 < len(d.samples) && !d.samples[cut+1].at.After(now.Add(-rateWindow)) {
		cut++
	}
	d.samples = slices.Delete(d.samples, 0, cut)

	d.rates = make(map[string]modelRates, len(cur.models))
	d.total = totalRates{}
	var totReq, totFail uint64
	var totTok, totCost float64
	var totSpan time.Duration
	priced := false
	for k, c := range cur.models {
		priced = priced || c.cost > 0
		base, ok := d.baseFor(k)
		if !ok {
			d.rates[k] = modelRates{priced: c.cost > 0}
			continue
		}
		span := now.Sub(base.at)
		if span < minRateSpan {
			d.rates[k] = modelRates{priced: c.cost > 0}
			continue
		}
		b := base.models[k]
		dreq, dfail := c.requests-b.requests, c.failures-b.failures
		r := modelRates{
			reqPerMin:   float64(dreq) / span.Minutes(),
			reqOK:       true,
			tokPerMin:   float64(c.tokens-b.tokens) / span.Minutes(),
			costPerHour: max(0, c.cost-b.cost) / span.Hours(),
			priced:      c.cost > 0,
		}
		if dreq > 0 {
			r.errRatio = min(1, float64(dfail)/float64(dreq))
			r.errOK = true
		}
		d.rates[k] = r
		totReq += dreq
		totFail += dfail
		totTok += r.tokPerMin
		totCost += r.costPerHour
		totSpan = max(totSpan, span)
	}
	d.total = totalRates{priced: priced}
	if totSpan > 0 {
		d.total = totalRates{
			reqPerSec:   float64(totReq) / totSpan.Seconds(),
			errPerSec:   float64(totFail) / totSpan.Seconds(),
			tokPerMin:   totTok,
			costPerHour: totCost,
			ok:          true,
			priced:      priced,
		}
	}
	d.limitRejectionRates(cur, now)
}

// limitRejectionRates derives each limited resource's rejections per
// minute from the oldest sample that has it. A counter lower than before
// (the server restarted) counts as no rejections.
func (d *viewData) limitRejectionRates(cur sample, now time.Time) {
	d.limitRates = nil
	for k, n := range cur.rejected {
		i := slices.IndexFunc(d.samples[:len(d.samples)-1], func(s sample) bool { _, ok := s.rejected[k]; return ok })
		if i < 0 {
			continue
		}
		base := d.samples[i]
		span := now.Sub(base.at)
		if span < minRateSpan {
			continue
		}
		if d.limitRates == nil {
			d.limitRates = make(map[string]float64, len(cur.rejected))
		}
		r := float64(max(0, n-base.rejected[k])) / span.Minutes()
		d.limitRates[k] = r
		d.total.limitedPerMin += r
		d.total.limitedOK = true
	}
}

// seed starts the history of a server that started less than a minute
// ago with a sample of zero counters at its start: the counters count from
// there, so the first snapshot already gives true rates rather than
// nothing (or a 0 from two polls a moment apart).
func (d *viewData) seed(s Snapshot, cur sample, now time.Time) {
	if s.StartedAt.IsZero() {
		return
	}
	uptime := now.Add(d.skew).Sub(s.StartedAt)
	if uptime <= 0 || uptime > rateWindow {
		return
	}
	zero := make(map[string]counters, len(cur.models))
	for k := range cur.models {
		zero[k] = counters{}
	}
	var none map[string]int64
	if cur.rejected != nil {
		none = make(map[string]int64, len(cur.rejected))
		for k := range cur.rejected {
			none[k] = 0
		}
	}
	d.samples = append(d.samples, sample{at: now.Add(-uptime), models: zero, rejected: none})
}

// baseFor returns the oldest sample that has the model, if it is older than
// the newest one.
func (d *viewData) baseFor(k string) (sample, bool) {
	for i, s := range d.samples[:len(d.samples)-1] {
		if _, ok := s.models[k]; ok {
			return d.samples[i], true
		}
	}
	return sample{}, false
}

// trackCooldowns records cooldowns entered and left between two snapshots.
func (d *viewData) trackCooldowns(prev, cur []ModelRow, now time.Time) {
	if d.history == nil {
		d.history = make(map[string][]cooldownSpan)
	}
	before := make(map[string]ModelRow, len(prev))
	for _, r := range prev {
		before[modelKey(r)] = r
	}
	for _, r := range cur {
		k := modelKey(r)
		spans := d.history[k]
		open := len(spans) > 0 && spans[len(spans)-1].end.IsZero()
		switch {
		case r.Status == StatusCooldown && open:
			last := &spans[len(spans)-1]
			last.until = r.CooldownUntil
			if r.Reason != "" {
				last.reason = r.Reason
			}
		case r.Status == StatusCooldown:
			_, seen := before[k]
			spans = append(spans, cooldownSpan{
				start:   now,
				until:   r.CooldownUntil,
				reason:  r.Reason,
				partial: !seen,
			})
			if len(spans) > maxHistory {
				spans = slices.Delete(spans, 0, len(spans)-maxHistory)
			}
		case open:
			last := &spans[len(spans)-1]
			last.end = now
			last.after = r.Status
		}
		d.history[k] = spans
	}
}

// applyEvents appends new events, dropping any already seen.
func (d *viewData) applyEvents(evs []Event) {
	for _, e := range evs {
		if e.Seq != 0 && e.Seq <= d.lastSeq {
			continue
		}
		d.events = append(d.events, e)
		d.lastSeq = max(d.lastSeq, e.Seq)
	}
	if n := len(d.events); n > maxEvents {
		d.events = slices.Delete(d.events, 0, n-maxEvents)
	}
}

// failoversSince counts failover events at or after t.
func (d *viewData) failoversSince(t time.Time) int {
	n := 0
	for _, e := range d.events {
		if e.Kind == EventFailover && !e.Time.Before(t) {
			n++
		}
	}
	return n
}

// model returns the model with key k from the current snapshot.
func (d *viewData) model(k string) (ModelRow, bool) {
	for _, r := range d.snap.Models {
		if modelKey(r) == k {
			return r, true
		}
	}
	return ModelRow{}, false
}

// modelByName returns the model named name from the current snapshot.
func (d *viewData) modelByName(name string) (ModelRow, bool) {
	for _, r := range d.snap.Models {
		if r.Name == name {
			return r, true
		}
	}
	return ModelRow{}, false
}

// remaining is how long the cooldown of r has left at local time now,
// corrected for the server's clock skew.
func (d *viewData) remaining(r ModelRow, now time.Time) time.Duration {
	if r.CooldownUntil.IsZero() {
		return 0
	}
	return r.CooldownUntil.Sub(now.Add(d.skew))
}
