package metrics

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// cache holds the resolved series of one snapshot's models, targets and
// caller keys, keyed by the snapshot's own pointers, so a request finds
// its series with plain map reads and no lock. It is replaced whole on
// every swap; only its lazily filled slots and copy-on-write maps change.
type cache struct {
	snap    *routing.Snapshot
	models  map[*routing.Model]*modelSeries
	targets map[*routing.Target]*targetSeries
	// direct are the direct models' targets, by name, for the state gauge.
	direct []*routing.Target
	// unknown is the series of requests that resolved no model.
	unknown *modelSeries
	names   labelNames
}

// labelNames are the label values a cache created series for, so the next
// swap can delete those of names that left the configuration.
type labelNames struct {
	aliases, targets, keys map[string]bool
}

type modelSeries struct {
	name     string
	requests [nOps][nWires][nClasses][nOutcomes]slot[prometheus.Counter]
	duration [nOps]slot[prometheus.Observer]
	ttft     prometheus.Observer
	// usage is by target of the model (immutable after the swap).
	usage map[*routing.Target]*usageSeries
}

type targetSeries struct {
	name                string
	ok                  prometheus.Counter
	upOK, upErr, upTTFT prometheus.Observer
	retries             prometheus.Counter
	probes              [len(probeResults)]prometheus.Counter
	// from holds the failovers into this target, by the target failed
	// (immutable after the swap: every pair of a routing group).
	from      map[*routing.Target]prometheus.Counter
	failures  cowMap[failKey, prometheus.Counter]
	cooldowns cowMap[string, prometheus.Counter]
}

type failKey struct{ outcome, reason string }

// usageSeries are the token and cost series of one model and target, by
// caller key.
type usageSeries struct {
	alias, target string
	byKey         cowMap[*routing.CallerKey, *keyUsage]
}

func (u *usageSeries) forKey(m *Metrics, k *routing.CallerKey) *keyUsage {
	if ku, ok := u.byKey.get(k); ok {
		return ku
	}
	return u.byKey.add(k, m.newKeyUsage(u.alias, u.target, keyLabel(k)))
}

type keyUsage struct{ in, out, cached, cost prometheus.Counter }

func (m *Metrics) newKeyUsage(alias, target, key string) *keyUsage {
	return &keyUsage{
		in:     m.tokens.WithLabelValues(alias, target, key, "input"),
		out:    m.tokens.WithLabelValues(alias, target, key, "output"),
		cached: m.tokens.WithLabelValues(alias, target, key, "cached"),
		cost:   m.cost.WithLabelValues(alias, target, key),
	}
}

func (k *keyUsage) add(a *observe.Attempt) {
	u := a.Usage
	if u.Input > 0 {
		k.in.Add(float64(u.Input))
	}
	if u.Output > 0 {
		k.out.Add(float64(u.Output))
	}
	if u.Cached > 0 {
		k.cached.Add(float64(u.Cached))
	}
	if a.Priced && a.Cost > 0 {
		k.cost.Add(a.Cost)
	}
}

// slot is a series resolved on first use: WithLabelValues once, then one
// atomic load.
type slot[T any] struct{ p atomic.Pointer[T] }

func (s *slot[T]) load() (v T, ok bool) {
	if p := s.p.Load(); p != nil {
		return *p, true
	}
	return v, false
}

func (s *slot[T]) store(v T) T {
	s.p.Store(&v)
	return v
}

// cowMap is a read-mostly map: reads are one atomic load and a map
// lookup; a miss copies the map under a lock that only misses take.
type cowMap[K comparable, V any] struct {
	mu sync.Mutex
	m  atomic.Pointer[map[K]V]
}

func (c *cowMap[K, V]) get(k K) (v V, ok bool) {
	if m := c.m.Load(); m != nil {
		v, ok = (*m)[k]
	}
	return v, ok
}

// add stores v under k unless k is there already, and returns what is.
func (c *cowMap[K, V]) add(k K, v V) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]V
	if p := c.m.Load(); p != nil {
		old = *p
		if cur, ok := old[k]; ok {
			return cur
		}
	}
	next := make(map[K]V, len(old)+1)
	for kk, vv := range old {
		next[kk] = vv
	}
	next[k] = v
	c.m.Store(&next)
	return v
}

// cooldownReasons are the status_reasons whose cooldown series exist from
// the start (the usual ones); others appear on first use.
var cooldownReasons = []string{"transport_error", "request_timeout", "upstream_rate_limited", "upstream_server_error", "upstream_overloaded"}

// Swap resolves the series of snapshot s (nil: none configured) and makes
// them the ones requests use; the series of names s no longer has are
// deleted. Options.Table's swaps call it.
func (m *Metrics) Swap(s *routing.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &cache{
		snap:    s,
		models:  map[*routing.Model]*modelSeries{},
		targets: map[*routing.Target]*targetSeries{},
		names:   labelNames{aliases: map[string]bool{"": true}, targets: map[string]bool{}, keys: map[string]bool{}},
	}
	// A caller asking for a model that does not exist gets a 404.
	c.unknown = &modelSeries{usage: map[*routing.Target]*usageSeries{}} // no first token ever: no ttft
	c.unknown.requests[provider.OpChat][0][4][1].store(m.requests.WithLabelValues(endpoints[provider.OpChat], wires[0], "", classes[4], outcomes[1]))
	if s != nil {
		m.resolve(c, s)
	}
	if old := m.cache.Swap(c); old != nil {
		m.forget(old.names, c.names)
	}
}

func (m *Metrics) resolve(c *cache, s *routing.Snapshot) {
	models := s.Models()
	for _, md := range models {
		if t := md.Direct; t != nil {
			c.targets[t] = m.newTargetSeries(t.Name)
			c.direct = append(c.direct, t)
			c.names.targets[t.Name] = true
		}
	}
	for _, md := range models {
		ms := m.newModelSeries(md.Name)
		ms.requests[provider.OpChat][0][2][0].store(m.requests.WithLabelValues(endpoints[provider.OpChat], wires[0], md.Name, classes[2], outcomes[0]))
		ms.duration[provider.OpChat].store(m.duration.WithLabelValues(endpoints[provider.OpChat], md.Name))
		c.models[md] = ms
		c.names.aliases[md.Name] = true
		if md.Group != nil && md.Group.Hedge != nil {
			// A hedging group's series exist from its first snapshot, at zero.
			m.hedges.WithLabelValues(md.Name, observe.HedgeWon)
			m.hedges.WithLabelValues(md.Name, observe.HedgeLost)
		}
		var ts []*routing.Target
		if md.Direct != nil {
			ts = []*routing.Target{md.Direct}
		} else if md.Group != nil {
			ts = md.Group.Targets
		}
		for _, t := range ts {
			if c.targets[t] == nil {
				continue // a target the group cannot use: never attempted
			}
			ms.usage[t] = &usageSeries{alias: md.Name, target: t.Name}
		}
		if md.Group == nil {
			continue
		}
		for _, to := range ts {
			tsr := c.targets[to]
			for _, from := range ts {
				if tsr == nil || from == to || c.targets[from] == nil || tsr.from[from] != nil {
					continue
				}
				tsr.from[from] = m.failovers.WithLabelValues(from.Name, to.Name)
			}
		}
	}
	keys := s.CallerKeys()
	for _, k := range keys {
		c.names.keys[keyLabel(k)] = true
	}
	// Usage series ahead of use, up to maxUsagePrecreate: the walk follows
	// each key's own list and stops there, so a large configuration
	// (10,000 keys × 1,000 models) costs about that many steps, not
	// keys × models.
	n := 0
	for _, k := range keys {
		for _, md := range k.AllowedModels(s) {
			if n >= maxUsagePrecreate {
				return
			}
			ms := c.models[md]
			if ms == nil {
				continue
			}
			for _, us := range ms.usage {
				if n >= maxUsagePrecreate {
					return
				}
				us.forKey(m, k)
				n++
			}
		}
	}
}

func (m *Metrics) newModelSeries(name string) *modelSeries {
	return &modelSeries{name: name, ttft: m.ttft.WithLabelValues(name), usage: map[*routing.Target]*usageSeries{}}
}

func (m *Metrics) newTargetSeries(name string) *targetSeries {
	ts := &targetSeries{
		name:    name,
		ok:      m.attempts.WithLabelValues(name, "ok", ""),
		upOK:    m.upstream.WithLabelValues(name, "ok"),
		upErr:   m.upstream.WithLabelValues(name, "error"),
		upTTFT:  m.upTTFT.WithLabelValues(name),
		retries: m.retries.WithLabelValues(name),
		from:    map[*routing.Target]prometheus.Counter{},
	}
	for i, r := range probeResults {
		ts.probes[i] = m.probes.WithLabelValues(name, r)
	}
	for _, r := range cooldownReasons {
		ts.cooldowns.add(r, m.cooldowns.WithLabelValues(name, r))
	}
	return ts
}

// forget deletes the series of the label values in old that cur lacks.
func (m *Metrics) forget(old, cur labelNames) {
	del := func(label string, vecs ...interface {
		DeletePartialMatch(prometheus.Labels) int
	}) func(string) {
		return func(v string) {
			for _, vec := range vecs {
				vec.DeletePartialMatch(prometheus.Labels{label: v})
			}
		}
	}
	gone := func(o, c map[string]bool, fn func(string)) {
		for v := range o {
			if !c[v] {
				fn(v)
			}
		}
	}
	gone(old.aliases, cur.aliases, del("alias", m.requests, m.duration, m.ttft, m.tokens, m.cost, m.hedges))
	gone(old.targets, cur.targets, del("target", m.attempts, m.upstream, m.upTTFT, m.retries, m.cooldowns, m.probes, m.tokens, m.cost))
	gone(old.targets, cur.targets, del("from", m.failovers))
	gone(old.targets, cur.targets, del("to", m.failovers))
	gone(old.keys, cur.keys, del("caller_key", m.tokens, m.cost))
}

// stateCollector reads runtime state at scrape time: each direct model's
// health state, and the configuration's revision and rows not served.
type stateCollector struct{ m *Metrics }

var (
	stateDesc = prometheus.NewDesc(ns+"_target_state",
		"1 for a target's current state (healthy, probing: its cooldown ran out and the next request probes it, cooldown), 0 for the others.",
		[]string{"target", "state"}, nil)
	revisionDesc = prometheus.NewDesc(ns+"_config_revision",
		"The store revision the live configuration snapshot was built from.", nil, nil)
	configErrorsDesc = prometheus.NewDesc(ns+"_config_errors",
		"Stored rows the live snapshot does not serve as stored, by kind (provider_key, model, api_key).", []string{"kind"}, nil)

	states      = [...]string{"healthy", "probing", "cooldown"}
	configKinds = [...]string{storage.KindProviderKey, storage.KindModelRow, storage.KindAPIKey}
)

func (sc *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- stateDesc
	ch <- revisionDesc
	ch <- configErrorsDesc
}

func (sc *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c := sc.m.cache.Load()
	if state := sc.m.state; state != nil {
		for _, t := range c.direct {
			cur := state(t.ID)
			for _, st := range states {
				v := 0.0
				if st == cur {
					v = 1
				}
				ch <- prometheus.MustNewConstMetric(stateDesc, prometheus.GaugeValue, v, t.Name, st)
			}
		}
	}
	var rev int64
	var errs []routing.RowError
	if c.snap != nil {
		rev, errs = max(c.snap.Revision, 0), c.snap.ConfigErrors()
	}
	ch <- prometheus.MustNewConstMetric(revisionDesc, prometheus.GaugeValue, float64(rev))
	for _, kind := range configKinds {
		n := 0
		for _, e := range errs {
			if e.Kind == kind {
				n++
			}
		}
		ch <- prometheus.MustNewConstMetric(configErrorsDesc, prometheus.GaugeValue, float64(n), kind)
	}
}
