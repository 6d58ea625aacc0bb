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
	*modelNamed
	// usage is by target of the model (immutable after the swap).
	usage map[*routing.Target]*usageSeries
}

// modelNamed is the series of one model name (alias), kept across swaps
// while the name is configured.
type modelNamed struct {
	name     string
	requests [nOps][nWires][nClasses][nOutcomes]slot[prometheus.Counter]
	duration [nOps]slot[prometheus.Observer]
	ttft     prometheus.Observer
}

type targetSeries struct {
	*targetNamed
	// from holds the failovers into this target, by the target failed
	// (immutable after the swap: every pair of a routing group).
	from map[*routing.Target]prometheus.Counter
}

// targetNamed is the series of one target name, kept across swaps while
// the name is configured.
type targetNamed struct {
	name                string
	ok                  prometheus.Counter
	upOK, upErr, upTTFT prometheus.Observer
	retries             prometheus.Counter
	probes              [len(probeResults)]prometheus.Counter
	failures            cowMap[failKey, prometheus.Counter]
	cooldowns           cowMap[string, prometheus.Counter]
}

// named holds the series already resolved for the label values of the
// live configuration, so that a swap after a one-row write resolves the
// series of that row, not those of every model, target and caller key
// again (at 1,000 models and 10,000 keys that was most of a write's
// cost). An entry goes when its name leaves the configuration, with the
// series forget deletes; a name that comes back gets new ones.
type named struct {
	models  map[string]*modelNamed  // under Metrics.mu
	targets map[string]*targetNamed // under Metrics.mu
	mu      sync.Mutex              // guards usage: requests may add to it
	usage   map[usageKey]*keyUsage
}

type usageKey struct{ alias, target, key string }

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
	n := &m.named
	k := usageKey{alias, target, key}
	n.mu.Lock()
	defer n.mu.Unlock()
	if ku := n.usage[k]; ku != nil {
		return ku
	}
	ku := &keyUsage{
		in:     m.tokens.WithLabelValues(alias, target, key, "input"),
		out:    m.tokens.WithLabelValues(alias, target, key, "output"),
		cached: m.tokens.WithLabelValues(alias, target, key, "cached"),
		cost:   m.cost.WithLabelValues(alias, target, key),
	}
	if n.usage == nil {
		n.usage = map[usageKey]*keyUsage{}
	}
	n.usage[k] = ku
	return ku
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
	c.unknown = &modelSeries{modelNamed: &modelNamed{}, usage: map[*routing.Target]*usageSeries{}} // no first token ever: no ttft
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
		c.models[md] = ms
		c.names.aliases[md.Name] = true
		if md.Group != nil && md.Group.Hedge != nil {
			// A hedging group's series exist from its first snapshot, at zero.
			m.hedges.WithLabelValues(md.Name, observe.HedgeWon)
			m.hedges.WithLabelValues(md.Name, observe.HedgeLost)
		}
		ts := modelTargets(md)
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
			// In the model's order of targets, not the map's: the same
			// pairs every swap, so the series made by the last one serve.
			for _, t := range modelTargets(md) {
				us := ms.usage[t]
				if us == nil {
					continue
				}
				if n >= maxUsagePrecreate {
					return
				}
				us.forKey(m, k)
				n++
			}
		}
	}
}

// newModelSeries is the series of model name in a new cache: its named
// ones as resolved by an earlier swap when there was one. Called under mu.
// modelTargets is md's target, or its group's targets in order.
func modelTargets(md *routing.Model) []*routing.Target {
	switch {
	case md.Direct != nil:
		return []*routing.Target{md.Direct}
	case md.Group != nil:
		return md.Group.Targets
	}
	return nil
}

func (m *Metrics) newModelSeries(name string) *modelSeries {
	n := m.named.models[name]
	if n == nil {
		n = &modelNamed{name: name, ttft: m.ttft.WithLabelValues(name)}
		n.requests[provider.OpChat][0][2][0].store(m.requests.WithLabelValues(endpoints[provider.OpChat], wires[0], name, classes[2], outcomes[0]))
		n.duration[provider.OpChat].store(m.duration.WithLabelValues(endpoints[provider.OpChat], name))
		if m.named.models == nil {
			m.named.models = map[string]*modelNamed{}
		}
		m.named.models[name] = n
	}
	return &modelSeries{modelNamed: n, usage: map[*routing.Target]*usageSeries{}}
}

// newTargetSeries is newModelSeries for target name. Called under mu.
func (m *Metrics) newTargetSeries(name string) *targetSeries {
	n := m.named.targets[name]
	if n == nil {
		n = &targetNamed{
			name:    name,
			ok:      m.attempts.WithLabelValues(name, "ok", ""),
			upOK:    m.upstream.WithLabelValues(name, "ok"),
			upErr:   m.upstream.WithLabelValues(name, "error"),
			upTTFT:  m.upTTFT.WithLabelValues(name),
			retries: m.retries.WithLabelValues(name),
		}
		for i, r := range probeResults {
			n.probes[i] = m.probes.WithLabelValues(name, r)
		}
		for _, r := range cooldownReasons {
			n.cooldowns.add(r, m.cooldowns.WithLabelValues(name, r))
		}
		if m.named.targets == nil {
			m.named.targets = map[string]*targetNamed{}
		}
		m.named.targets[name] = n
	}
	return &targetSeries{targetNamed: n, from: map[*routing.Target]prometheus.Counter{}}
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

	// What was resolved for the names that left goes with their series.
	n := &m.named
	for name := range n.models {
		if !cur.aliases[name] {
			delete(n.models, name)
		}
	}
	for name := range n.targets {
		if !cur.targets[name] {
			delete(n.targets, name)
		}
	}
	n.mu.Lock()
	for k := range n.usage {
		if !cur.aliases[k.alias] || !cur.targets[k.target] || !cur.keys[k.key] {
			delete(n.usage, k)
		}
	}
	n.mu.Unlock()
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
