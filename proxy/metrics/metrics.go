// Package metrics is the gateway's Prometheus exposition: an
// observe.Observer that counts requests and attempts, a collector that
// reads runtime state (target health, the configuration) at scrape time,
// an in-flight wrapper for the proxy handler, and the /metrics handler.
//
// Every label value comes from the configuration (model, target and
// caller-key names, route templates) or from a small fixed set (status
// class, outcome, status_reason), never from what a caller sent: a model
// name that resolves to no model is the alias "". Series for configured
// models, targets and caller keys are created on every snapshot swap, so
// dashboards do not start empty, and those of names the configuration
// dropped are deleted.
//
// The hot path takes no lock shared by requests: the series of each
// configured model, target and caller key are resolved once per snapshot
// into a cache behind an atomic.Pointer, keyed by the snapshot's pointers.
package metrics

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

const ns = "aisix"

// DefaultLatencyBuckets are the buckets, in seconds, of the end-to-end,
// upstream and time-to-first-token histograms: LLM answers take from a few
// milliseconds (an embedding, a refusal) to minutes (a long stream).
var DefaultLatencyBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120, 300, 600}

// DefaultOverheadBuckets are the buckets, in seconds, of the gateway's own
// time in a request: tens of microseconds to a second.
var DefaultOverheadBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1}

// maxUsagePrecreate caps the token and cost series created ahead of use
// (caller key × model × target): past it, they appear on first use. Both
// ways the count is bounded by the configuration.
const maxUsagePrecreate = 2048

// Options configure a Metrics.
type Options struct {
	// Table is the routing table: its snapshots name the models, targets
	// and caller keys, its swaps count reloads. nil: call Swap yourself.
	Table *routing.Table
	// State returns a direct model's runtime state ("healthy", "probing",
	// "cooldown"; health.Registry.Status(id).State), read at scrape time.
	// nil: no aisix_target_state.
	State func(targetID string) string
	// UsageDropped returns how many usage records the usage ledger
	// dropped (its queue was full), read at scrape time. nil reads 0.
	UsageDropped func() uint64
	// UsageBacklog returns how many usage records the ledger keeps to
	// write again because the store refused them; nil reports 0.
	UsageBacklog func() int
	// LatencyBuckets and OverheadBuckets replace the default histogram
	// buckets, in seconds (ascending).
	LatencyBuckets  []float64
	OverheadBuckets []float64
	// Token, when set, is the bearer token /metrics requires.
	Token string
	// Version is aisix_build_info's version label.
	Version string
	// Deps are the dependencies aisix_dependency_up reports, read at
	// scrape time; nil reports none.
	Deps *deps.Set
	// AuthFailures and AuthThrottled return how many requests the proxy
	// answered 401 (a missing or wrong caller key) and how many it refused
	// 429 because their address was over its failure budget
	// (proxy/authguard), read at scrape time; nil reads 0.
	AuthFailures, AuthThrottled func() uint64
}

// Metrics holds the gateway's metrics. It implements observe.Observer;
// all methods are safe for concurrent use.
type Metrics struct {
	reg      *prometheus.Registry
	table    *routing.Table
	state    func(string) string
	deps     *deps.Set
	token    [sha256.Size]byte
	hasToken bool

	inFlight prometheus.Gauge

	requests  *prometheus.CounterVec   // endpoint, wire, alias, status_class, outcome
	duration  *prometheus.HistogramVec // endpoint, alias
	ttft      *prometheus.HistogramVec // alias
	overhead  *prometheus.HistogramVec // endpoint
	attempts  *prometheus.CounterVec   // target, outcome, status_reason
	upstream  *prometheus.HistogramVec // target, outcome (ok, error)
	upTTFT    *prometheus.HistogramVec // target
	failovers *prometheus.CounterVec   // from, to
	hedges    *prometheus.CounterVec   // alias, outcome (won, lost)
	retries   *prometheus.CounterVec   // target
	cooldowns *prometheus.CounterVec   // target, status_reason
	probes    *prometheus.CounterVec   // target, result
	tokens    *prometheus.CounterVec   // alias, target, caller_key, kind
	cost      *prometheus.CounterVec   // alias, target, caller_key
	reloads   prometheus.Counter
	build     prometheus.Histogram
	limited   *prometheus.CounterVec // scope, dimension
	// limitedBy holds limited's series, made at start-up: both label sets
	// are fixed.
	limitedBy [nScopes][nDims]prometheus.Counter

	overheadBy [nOps]prometheus.Observer

	mu    sync.Mutex // serialises Swap
	cache atomic.Pointer[cache]
	// named keeps, from one swap to the next, the series resolved for
	// each label value still configured (see named).
	named named
}

var _ observe.Observer = (*Metrics)(nil)

// New returns the metrics on a registry of their own (with the Go runtime
// and process collectors), following opts.Table's snapshots.
func New(opts Options) *Metrics {
	lat := opts.LatencyBuckets
	if len(lat) == 0 {
		lat = DefaultLatencyBuckets
	}
	over := opts.OverheadBuckets
	if len(over) == 0 {
		over = DefaultOverheadBuckets
	}
	m := &Metrics{reg: prometheus.NewRegistry(), table: opts.Table, state: opts.State, deps: opts.Deps}
	if opts.Token != "" {
		m.token, m.hasToken = sha256.Sum256([]byte(opts.Token)), true
	}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, labels)
	}
	histogram := func(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
		return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Name: name, Help: help, Buckets: buckets}, labels)
	}
	m.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "requests_in_flight",
		Help: "Requests the proxy listener is serving now."})
	m.requests = counter("requests_total", "Proxied requests by endpoint (route template), caller wire, alias (the model resolved; \"\" when none), status class and outcome.",
		"endpoint", "wire", "alias", "status_class", "outcome")
	m.duration = histogram("request_duration_seconds", "End-to-end latency of proxied requests, from arrival to the end of the answer.", lat, "endpoint", "alias")
	m.ttft = histogram("time_to_first_token_seconds", "Streamed requests' time from arrival to the first content.", lat, "alias")
	m.overhead = histogram("gateway_overhead_seconds", "The gateway's own time in a request: its latency less the time spent waiting on upstreams.", over, "endpoint")
	m.attempts = counter("upstream_attempts_total", "Upstream calls by target, outcome (ok, or the x-aisix-attempts label of the failure) and status_reason.",
		"target", "outcome", "status_reason")
	m.upstream = histogram("upstream_duration_seconds", "Upstream calls' time to their end (the whole answer read, or the failure), by target and outcome (ok, error).", lat, "target", "outcome")
	m.upTTFT = histogram("upstream_time_to_first_token_seconds", "Streamed upstream calls' time to their first content.", lat, "target")
	m.failovers = counter("failovers_total", "Moves of a request from a failed target to another.", "from", "to")
	m.hedges = counter("hedges_total", "Attempts of hedged streams (routing.hedge), by alias and outcome: won (it served the request) or lost (cancelled when the other sent content first; its tokens are in tokens_total).",
		"alias", "outcome")
	m.retries = counter("retries_total", "Attempts on the same target as the failed one before.", "target")
	m.cooldowns = counter("cooldowns_total", "Cooldowns a target entered, by status_reason.", "target", "status_reason")
	m.probes = counter("probes_total", "Half-open probes of a target whose cooldown ran out, by result (passed, failed, abandoned: the caller went away).", "target", "result")
	m.tokens = counter("tokens_total", "Tokens the upstreams reported, by alias, target, caller key (its name, else its id) and kind (input, output, cached).",
		"alias", "target", "caller_key", "kind")
	m.cost = counter("cost_usd_total", "Cost of the reported tokens at the targets' prices, in USD (targets without a price add nothing).",
		"alias", "target", "caller_key")
	m.limited = counter("limit_rejections_total", "Requests a limit refused (scope caller_key or model: answered 429) and targets skipped at their provider_limit (scope target: local_rate_limit), by scope and dimension (rpm, rpd, tpm, tpd, concurrency, budget).",
		"scope", "dimension")
	for s, scope := range limitScopes {
		for d, dim := range limitDims {
			if scope == limit.ScopeTarget && dim == limit.DimBudget {
				continue // a provider_limit has no budget
			}
			m.limitedBy[s][d] = m.limited.WithLabelValues(string(scope), string(dim))
		}
	}
	m.reloads = prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "config_reloads_total",
		Help: "Configuration snapshots swapped in after the first."})
	m.build = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Name: "config_build_duration_seconds",
		Help: "Time to build a configuration snapshot from the store.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9)})

	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.inFlight, m.requests, m.duration, m.ttft, m.overhead, m.attempts, m.upstream, m.upTTFT,
		m.failovers, m.hedges, m.retries, m.cooldowns, m.probes, m.tokens, m.cost, m.reloads, m.build, m.limited,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "build_info", Help: "Always 1; the version is a label.",
			ConstLabels: prometheus.Labels{"version": opts.Version}}, func() float64 { return 1 }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "usage_records_dropped_total",
			Help: "Usage records the usage ledger dropped."}, func() float64 {
			if opts.UsageDropped == nil {
				return 0
			}
			return float64(opts.UsageDropped())
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "usage_records_backlog",
			Help: "Usage records kept to write again because the store refused them (its database is away)."}, func() float64 {
			if opts.UsageBacklog == nil {
				return 0
			}
			return float64(opts.UsageBacklog())
		}),
		readCounter("auth_failures_total", "Proxy requests refused 401: a missing or wrong caller key.", opts.AuthFailures),
		readCounter("auth_throttled_total", "Proxy requests refused 429 before their caller key was checked: their address had too many 401s (proxy/authguard).", opts.AuthThrottled),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: "config_reload_failures_total",
			Help: "Configuration reloads that could not read the store (the previous snapshot kept serving)."}, func() float64 {
			if m.table == nil {
				return 0
			}
			return float64(m.table.ReloadFailures())
		}),
		&stateCollector{m: m},
		&depsCollector{m: m},
	)
	for op := range m.overheadBy {
		m.overheadBy[op] = m.overhead.WithLabelValues(endpointOf(provider.Op(op)))
	}

	if t := opts.Table; t != nil {
		first := t.Snapshot()
		m.Swap(first)
		if t.Loaded() {
			m.build.Observe(t.BuildDuration().Seconds())
		}
		t.OnSwap(func(_, cur *routing.Snapshot) {
			m.reloads.Inc()
			m.build.Observe(t.BuildDuration().Seconds())
			m.Swap(cur)
		})
		if cur := t.Snapshot(); cur != first { // swapped before the hook was in
			m.Swap(cur)
		}
	} else {
		m.Swap(nil)
	}
	return m
}

// readCounter is a counter read at scrape time from read; 0 when read is
// nil, so the family exists from start-up.
func readCounter(name, help string, read func() uint64) prometheus.CounterFunc {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help}, func() float64 {
		if read == nil {
			return 0
		}
		return float64(read())
	})
}

// Registry is the metrics' own registry.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition, behind the bearer token when one is set
// (compared in constant time).
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
	if !m.hasToken {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], m.token[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="aisix metrics"`)
			http.Error(w, "missing or wrong metrics token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Wrap counts the requests next is serving in aisix_requests_in_flight.
func (m *Metrics) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		next.ServeHTTP(w, r)
	})
}

// Request implements observe.Observer.
func (m *Metrics) Request(r *observe.Request) {
	if r.Rejection != nil {
		m.countRejection(r.Rejection)
	}
	for i := range r.LimitSkips {
		m.countRejection(&r.LimitSkips[i])
	}
	c := m.cache.Load()
	ms := c.unknown
	if r.Model != nil {
		ms = c.models[r.Model]
	}
	op, wire, class, outcome := int(r.Op), wireIndex(r.Wire), classIndex(r.Status), outcomeIndex(r.Outcome)
	if ms == nil || op >= nOps || wire < 0 || outcome < 0 {
		m.requestSlow(r)
		return
	}
	rs := &ms.requests[op][wire][class][outcome]
	cnt, ok := rs.load()
	if !ok {
		cnt = rs.store(m.requests.WithLabelValues(endpoints[op], wires[wire], ms.name, classes[class], outcomes[outcome]))
	}
	cnt.Inc()
	ds := &ms.duration[op]
	dur, ok := ds.load()
	if !ok {
		dur = ds.store(m.duration.WithLabelValues(endpoints[op], ms.name))
	}
	dur.Observe(r.Latency.Seconds())
	if r.TTFT > 0 && ms.ttft != nil {
		ms.ttft.Observe(r.TTFT.Seconds())
	}
	m.overheadBy[op].Observe(r.Overhead().Seconds())
}

// requestSlow is Request for a record the cache does not know: a model of
// a snapshot swapped out while the request ran, or a label value outside
// the fixed sets. Its labels are still configuration names.
func (m *Metrics) requestSlow(r *observe.Request) {
	alias := ""
	if r.Model != nil {
		alias = r.Model.Name
	}
	ep := endpointOf(r.Op)
	m.requests.WithLabelValues(ep, r.Wire, alias, classes[classIndex(r.Status)], r.Outcome).Inc()
	m.duration.WithLabelValues(ep, alias).Observe(r.Latency.Seconds())
	if r.TTFT > 0 {
		m.ttft.WithLabelValues(alias).Observe(r.TTFT.Seconds())
	}
	m.overhead.WithLabelValues(ep).Observe(r.Overhead().Seconds())
}

// Attempt implements observe.Observer.
func (m *Metrics) Attempt(a *observe.Attempt) {
	if a.Target == nil {
		return
	}
	c := m.cache.Load()
	ts := c.targets[a.Target]
	if ts == nil {
		m.attemptSlow(a)
		return
	}
	if a.Hedge != "" {
		m.hedge(a)
	}
	ok := a.OK()
	if ok {
		ts.ok.Inc()
	} else {
		k := failKey{a.Outcome, a.Reason}
		cnt, found := ts.failures.get(k)
		if !found {
			cnt = ts.failures.add(k, m.attempts.WithLabelValues(ts.name, a.Outcome, a.Reason))
		}
		cnt.Inc()
	}
	switch {
	case ok || a.Outcome == observe.OutcomeSlowClient:
		ts.upOK.Observe(a.Latency.Seconds())
	case a.Outcome != observe.OutcomeClientClosed:
		ts.upErr.Observe(a.Latency.Seconds())
	}
	if a.TTFT > 0 {
		ts.upTTFT.Observe(a.TTFT.Seconds())
	}
	switch {
	case a.From != nil:
		cnt := ts.from[a.From]
		if cnt == nil {
			cnt = m.failovers.WithLabelValues(a.From.Name, ts.name)
		}
		cnt.Inc()
	case a.N > 1:
		ts.retries.Inc()
	}
	if a.Cooldown {
		cnt, found := ts.cooldowns.get(a.Reason)
		if !found {
			cnt = ts.cooldowns.add(a.Reason, m.cooldowns.WithLabelValues(ts.name, a.Reason))
		}
		cnt.Inc()
	}
	if a.Probe {
		ts.probes[probeResult(a)].Inc()
	}
	if a.Usage.Known() || a.Priced {
		var ku *keyUsage
		if ms := c.models[a.Model]; ms != nil && a.Key != nil {
			if us := ms.usage[a.Target]; us != nil {
				ku = us.forKey(m, a.Key)
			}
		}
		if ku == nil {
			ku = m.keyUsageSlow(a)
		}
		ku.add(a)
	}
}

// attemptSlow is Attempt for a target the cache does not know (its
// snapshot was swapped out while the request ran).
func (m *Metrics) attemptSlow(a *observe.Attempt) {
	t := a.Target.Name
	m.attempts.WithLabelValues(t, a.Outcome, a.Reason).Inc()
	if a.Hedge != "" {
		m.hedge(a)
	}
	switch {
	case a.OK() || a.Outcome == observe.OutcomeSlowClient:
		m.upstream.WithLabelValues(t, "ok").Observe(a.Latency.Seconds())
	case a.Outcome != observe.OutcomeClientClosed:
		m.upstream.WithLabelValues(t, "error").Observe(a.Latency.Seconds())
	}
	if a.TTFT > 0 {
		m.upTTFT.WithLabelValues(t).Observe(a.TTFT.Seconds())
	}
	switch {
	case a.From != nil:
		m.failovers.WithLabelValues(a.From.Name, t).Inc()
	case a.N > 1:
		m.retries.WithLabelValues(t).Inc()
	}
	if a.Cooldown {
		m.cooldowns.WithLabelValues(t, a.Reason).Inc()
	}
	if a.Probe {
		m.probes.WithLabelValues(t, probeResults[probeResult(a)]).Inc()
	}
	if a.Usage.Known() || a.Priced {
		m.keyUsageSlow(a).add(a)
	}
}

// hedge counts an attempt of a hedged stream (rare: its series are not
// cached).
func (m *Metrics) hedge(a *observe.Attempt) {
	alias := ""
	if a.Model != nil {
		alias = a.Model.Name
	}
	m.hedges.WithLabelValues(alias, a.Hedge).Inc()
}

func (m *Metrics) keyUsageSlow(a *observe.Attempt) *keyUsage {
	alias, key := "", ""
	if a.Model != nil {
		alias = a.Model.Name
	}
	if a.Key != nil {
		key = keyLabel(a.Key)
	}
	return m.newKeyUsage(alias, a.Target.Name, key)
}

// Probe results.
var probeResults = [...]string{"passed", "failed", "abandoned"}

func probeResult(a *observe.Attempt) int {
	switch a.Outcome {
	case observe.OutcomeOK, observe.OutcomeSlowClient:
		return 0
	case observe.OutcomeClientClosed:
		return 2
	}
	return 1
}

// keyLabel is a caller key's label value: its name, else its id.
func keyLabel(k *routing.CallerKey) string {
	if k.Name != "" {
		return k.Name
	}
	return k.ID
}

// The fixed label sets, indexed.
const (
	nOps      = int(provider.OpCountTokens) + 1
	nWires    = 3
	nClasses  = 6
	nOutcomes = 5
	nScopes   = 3
	nDims     = 6
)

var (
	limitScopes = [nScopes]limit.Scope{limit.ScopeCallerKey, limit.ScopeModel, limit.ScopeTarget}
	limitDims   = [nDims]limit.Dimension{limit.DimRPM, limit.DimRPD, limit.DimTPM, limit.DimTPD, limit.DimConcurrency, limit.DimBudget}
)

// countRejection counts one limit rejection in its pre-made series.
func (m *Metrics) countRejection(rej *limit.Rejection) {
	s, d := slices.Index(limitScopes[:], rej.Scope), slices.Index(limitDims[:], rej.Dimension)
	if s < 0 || d < 0 || m.limitedBy[s][d] == nil {
		m.limited.WithLabelValues(string(rej.Scope), string(rej.Dimension)).Inc()
		return
	}
	m.limitedBy[s][d].Inc()
}

// endpoints are the route templates, by provider.Op.
var endpoints = [nOps]string{
	provider.OpChat:        "/v1/chat/completions",
	provider.OpEmbeddings:  "/v1/embeddings",
	provider.OpCompletions: "/v1/completions",
	provider.OpResponses:   "/v1/responses",
	provider.OpMessages:    "/v1/messages",
	provider.OpCountTokens: "/v1/messages/count_tokens",
}

func endpointOf(op provider.Op) string {
	if int(op) < nOps {
		return endpoints[op]
	}
	return op.String()
}

var (
	wires    = [nWires]string{"openai", "responses", "anthropic"}
	classes  = [nClasses]string{"unknown", "1xx", "2xx", "3xx", "4xx", "5xx"}
	outcomes = [nOutcomes]string{observe.OutcomeOK, observe.OutcomeError, observe.OutcomeClientClosed, observe.OutcomeSlowClient, observe.OutcomeRateLimited}
)

func wireIndex(w string) int {
	switch w {
	case "openai":
		return 0
	case "responses":
		return 1
	case "anthropic":
		return 2
	}
	return -1
}

func classIndex(status int) int {
	if c := status / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

func outcomeIndex(o string) int {
	switch o {
	case observe.OutcomeOK:
		return 0
	case observe.OutcomeError:
		return 1
	case observe.OutcomeClientClosed:
		return 2
	case observe.OutcomeSlowClient:
		return 3
	case observe.OutcomeRateLimited:
		return 4
	}
	return -1
}
