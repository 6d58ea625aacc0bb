package proxy

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// maxShortRetryAfter is the longest upstream Retry-After the proxy waits
// out on the same target (when it fits the request's budget); a longer one
// fails over at once.
const maxShortRetryAfter = 5 * time.Second

// candidate is one target of a request's walk.
type candidate struct {
	t     *routing.Target
	h     *health.Target
	until time.Time // cooldown end, for targets that are cooling down
	// halfOpen is set for a target whose cooldown has run out: the
	// attempt on it claims the probe when it is dispatched.
	halfOpen bool
	probe    int64          // half-open probe token held by this request
	att      health.Attempt // the attempt in flight, from Begin
}

// call is the state of one proxied request. Calls are pooled.
type call struct {
	s      *Server
	rt     *route
	w      http.ResponseWriter
	r      *http.Request
	vals   *hdrVals
	callID string
	addr   netip.Addr // the caller's address (proxy/realip)
	model  *routing.Model
	req    provider.Request
	in     provider.Inbound // the request as adapters see it
	// chatIn is a Messages caller's request translated to chat
	// completions, for targets that do not speak Messages (built once).
	chatIn   provider.Inbound
	chatReq  provider.Request
	chatErr  error
	mode     serveMode // how upFor serves the request
	respID   string    // the Responses API id of the answer, once known
	body     []byte
	bodyBuf  *[]byte // pooled buffer holding body
	start    time.Time
	deadline time.Time // routing budget end; zero when none

	cands    []candidate
	cooling  []candidate
	broken   []candidate
	order    []*routing.Target
	trail    []byte
	out      []byte
	upBody   []byte
	upFor    *routing.Target
	attempts int
	failures int
	status   int
	servedBy string
	// outcome qualifies status in the access line when the caller ended
	// the request: client_closed or slow_client.
	outcome string
	last    *failure

	key *routing.CallerKey
	// The attempt in flight: its start, the upstream's status, a stream's
	// time to first content, the tokens its answer reported.
	attStart  time.Time
	attStatus int
	attTTFT   time.Duration
	usage     provider.Usage
	// upCounted: the attempt's upstream time is already in upstream (a
	// plain answer counts it when its body is read, not after it is
	// written).
	upCounted, inAttempt bool
	probing              bool // the attempt in flight is a half-open probe
	// upstream is the time spent in upstream calls, waited in pauses
	// between tries; ttft a stream's time from arrival to first content.
	upstream, waited, ttft time.Duration
	// failed is the target of the last failed attempt; from is it when
	// the attempt in flight is on another target (a failover).
	failed, from *routing.Target
	failoverN    int
	// obs and obsReq are the records handed to the observer, reused.
	obs    observe.Attempt
	obsReq observe.Request
	// With a tracer: the request's span, the attempt's in flight, and the
	// caller's header cloned to carry each attempt's trace context.
	span     observe.RequestSpan
	attSpan  observe.AttemptSpan
	traceHdr http.Header

	// Limits: the caller key's and model's admission (nil without
	// limits), the admission of the try in flight on a target with a
	// provider_limit, the subjects' buffer, the targets skipped at their
	// limit and the soonest they free, and a caller-level rejection.
	// budget is the group's max_fallbacks budget in targets (see run).
	budget int

	ticket     *limit.Ticket
	tTicket    *limit.Ticket
	subs       []limit.Subject
	limitSkips []limit.Rejection
	limitWait  time.Duration
	rejection  limit.Rejection
	rejected   bool
	// winner is the target that served the request.
	winner *routing.Target
	// cont follows a stream its routing model may continue on another
	// target (continuation.go); nil otherwise.
	cont *contState
	// hedge follows the hedged first token of a stream its routing model
	// hedges (hedge.go); nil otherwise. hedgeMark is the observe.Attempt
	// Hedge of the attempt being observed.
	hedge     *hedgeState
	hedgeMark string
}

var callPool = sync.Pool{New: func() any { return new(call) }}

func (c *call) reset() {
	// Drop references to snapshot and health objects so a pooled call
	// does not keep an old configuration alive.
	clear(c.cands[:cap(c.cands)])
	clear(c.cooling[:cap(c.cooling)])
	clear(c.broken[:cap(c.broken)])
	clear(c.order[:cap(c.order)])
	clear(c.subs[:cap(c.subs)])
	*c = call{
		cands:      c.cands[:0],
		cooling:    c.cooling[:0],
		broken:     c.broken[:0],
		order:      c.order[:0],
		trail:      c.trail[:0],
		out:        c.out[:0],
		subs:       c.subs[:0],
		limitSkips: c.limitSkips[:0],
	}
}

// serve serves one POST to the endpoint rt.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, vals *hdrVals, rt *route) {
	c := callPool.Get().(*call)
	c.s, c.w, c.r, c.vals, c.callID, c.start, c.rt = s, w, r, vals, vals[0], time.Now(), rt
	if s.tracer != nil {
		c.span = s.tracer.StartRequest(r, rt.op, c.callID)
	}
	defer func() {
		c.settleLimits()
		if s.observer != nil || c.span != nil {
			c.observeRequest()
		}
		s.accessLog(c)
		c.releaseBody()
		c.releaseProbes()
		if cap(c.out) > 64<<10 {
			c.out = nil
		}
		c.reset()
		callPool.Put(c)
	}()

	if r.ContentLength > s.maxBody {
		refuseUnread(w, r)
		c.writeError(http.StatusRequestEntityTooLarge, "invalid_request_error", tooLargeMsg(s.maxBody), "")
		return
	}
	snap := s.table.Snapshot()
	c.addr = s.ClientAddr(r)
	key, status := s.authenticate(w, r, snap, rt.wire, c.addr)
	if key == nil {
		c.status = status
		return
	}
	c.key = key
	body, err := c.readBody()
	if err != nil {
		w.Header()["Connection"] = connClose // the rest of the body is not coming
	}
	switch {
	case errors.Is(err, errTooLarge):
		c.writeError(http.StatusRequestEntityTooLarge, "invalid_request_error", tooLargeMsg(s.maxBody), "")
		return
	case err != nil && isTimeout(err):
		c.writeError(http.StatusRequestTimeout, "invalid_request_error",
			"timed out reading the request body (limit "+s.bodyTimeout.String()+")", "request_timeout")
		return
	case err != nil:
		c.writeError(http.StatusBadRequest, "invalid_request_error", "request payload is invalid: could not read the request body", "")
		return
	}
	req, err := provider.ParseRequestFor(body, rt.op)
	if err != nil {
		c.writeError(http.StatusBadRequest, "invalid_request_error", "request payload is invalid: "+err.Error(), "")
		return
	}
	c.req, c.body = req, body
	c.in = provider.Inbound{Op: rt.op, Body: body, Req: &c.req, Header: r.Header}
	// Access before existence: a key learns nothing about names it may not
	// use. Access is by model id, so it follows renames and does not pass
	// to a new model that reuses a deleted one's name.
	c.model = snap.Model(req.Model)
	if !key.AllowsModel(c.model) {
		c.writeError(http.StatusForbidden, "permission_denied", "API key is not allowed to use model "+strconv.Quote(clip(req.Model)), "")
		return
	}
	if c.model == nil {
		c.writeError(http.StatusNotFound, "model_not_found", "model "+strconv.Quote(clip(req.Model))+" not found", "")
		return
	}
	if g := c.model.Group; g != nil && g.Timeout > 0 {
		c.deadline = c.start.Add(g.Timeout)
	}
	if !c.admit() {
		return
	}
	if !c.plan() {
		return
	}
	c.planContinuation()
	c.planHedge()
	c.run()
}

// readBody reads the caller's body under the size cap and the body read
// timeout. The buffer grows as bytes arrive: a declared Content-Length is
// only a hint (a caller may declare 10 MB and send ten bytes), so at most
// initialBodyBuf is allocated before any byte is read. A body of declared
// length up to that is read into a buffer of exactly its size (one byte
// more, to see EOF without growing): it lives as long as the call, which
// for a stream means minutes, so a pooled 8 KB buffer per open stream
// would cost more than the allocation does. A body of unknown length goes
// into a pooled, growable buffer.
func (c *call) readBody() ([]byte, error) {
	s, r := c.s, c.r
	rd, canDeadline := c.w.(interface{ SetReadDeadline(time.Time) error })
	if canDeadline && s.bodyTimeout > 0 {
		if rd.SetReadDeadline(time.Now().Add(s.bodyTimeout)) == nil {
			// Clear it once the body is in: the connection's background
			// read (which notices a caller hanging up) and the next request
			// on it must not inherit it.
			defer rd.SetReadDeadline(time.Time{})
		}
	}
	if n := r.ContentLength; n >= 0 {
		buf := make([]byte, 0, min(n, initialBodyBuf)+1)
		return readBody(r.Body, s.maxBody, &buf)
	}
	c.bodyBuf = getBuf()
	return readBody(r.Body, s.maxBody, c.bodyBuf)
}

var connClose = []string{"close"}

// initialBodyBuf is the most readBody allocates before bytes arrive.
const initialBodyBuf = 64 << 10

// maxEcho caps a caller-supplied model name echoed into errors and logs.
const maxEcho = 256

// clip caps a caller-supplied string echoed into errors and logs.
func clip(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func tooLargeMsg(n int64) string {
	return "request body exceeds " + strconv.FormatInt(n, 10) + "-byte limit"
}

func (c *call) writeError(status int, typ, msg, code string) {
	c.status = status
	writeErrorFor(c.w, c.rt.wire, status, typ, msg, code)
}

// accessLog writes the request's one info line. It goes straight to the
// handler with a record built here: no caller-PC lookup (runtime.Callers
// is a third of the cost of a line, and a source position means nothing
// for an access line) and no Logger plumbing. On HTTP/1.x the answer is
// flushed to the caller first, so the line's write (under the handler's
// lock, shared by all requests) is never between the caller and its
// answer; net/http would otherwise send it only after the handler returns.
// A stream is already flushed; HTTP/2 is left alone (an early flush there
// costs an extra empty DATA frame to end the stream).
func (s *Server) accessLog(c *call) {
	if !s.accessEnabled {
		return
	}
	if c.status != 0 && c.status != statusClientClosed && c.r.ProtoMajor == 1 {
		if f, ok := c.w.(http.Flusher); ok {
			f.Flush()
		}
	}
	rec := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
	// All attributes go in with one AddAttrs: the record keeps five
	// inline and grows its slice once for the rest, not once per call.
	var buf [16]slog.Attr
	a := append(buf[:0],
		slog.String("call_id", c.callID),
		slog.String("client_ip", addrString(c.addr)),
		slog.String("model", clip(c.req.Model)),
		slog.Bool("stream", c.req.Stream),
		slog.Int("status", c.status),
		slog.String("served_by", c.servedBy),
		slog.Int("attempts", c.attempts),
		slog.Duration("latency", rec.Time.Sub(c.start)),
	)
	if c.outcome != "" {
		a = append(a, slog.String("outcome", c.outcome))
	}
	if c.attempts > 0 {
		a = append(a, slog.Duration("overhead", max(rec.Time.Sub(c.start)-c.upstream-c.waited, 0)))
	}
	if c.failures > 0 || len(c.limitSkips) > 0 {
		a = append(a, slog.String("trail", string(c.trail)))
	}
	if c.rejected {
		a = append(a, slog.String("limit", c.rejection.Code()))
	}
	if c.ttft > 0 {
		a = append(a, slog.Duration("ttft", c.ttft))
	}
	if u := c.usage; u.Known() && c.servedBy != "" {
		a = append(a, slog.Int64("tokens_in", u.Input), slog.Int64("tokens_out", u.Output))
		if u.Cached > 0 {
			a = append(a, slog.Int64("tokens_cached", u.Cached))
		}
		if k := c.cont; k != nil && k.n > 0 {
			if usd, priced := k.cost(); priced {
				a = append(a, slog.Float64("cost_usd", usd)) // every attempt's, the cut ones estimated
			}
		} else if c.obs.Priced && c.obs.OK() {
			a = append(a, slog.Float64("cost_usd", c.obs.Cost))
		}
	}
	if c.rt.op != provider.OpChat {
		a = append(a, slog.String("endpoint", c.rt.op.String()))
	}
	if n := c.continued(); n > 0 {
		a = append(a, slog.Int("continued", n))
	}
	rec.AddAttrs(a...)
	_ = s.logHandler.Handle(context.Background(), rec)
}

// addrString is a's text for the access line; "" for a fake peer.
func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// plan builds the walk: strategy order, then runtime filtering (cooling
// targets behind healthy ones, soonest-ending cooldown first; targets that
// cannot be dispatched last), then the max_fallbacks budget. A half-open
// target (cooldown over, not yet confirmed) counts as healthy for the one
// request that wins its probe, and as cooling for the others. It writes a
// 503 and returns false when the group fails fast on all-unavailable.
func (c *call) plan() bool {
	reg := c.s.health
	now := reg.Now()
	if t := c.model.Direct; t != nil {
		// A direct model is always called, cooling or not: there is
		// nothing else. A half-open one is still marked as a probe.
		cd := candidate{t: t, h: reg.Target(t.ID)}
		av, _ := cd.h.Check(now)
		cd.halfOpen = av == health.HalfOpen
		c.cands = append(c.cands[:0], cd)
		return true
	}
	if cd, ok := c.pinned(now); ok {
		c.cands = append(c.cands[:0], cd)
		return true
	}
	g := c.model.Group
	c.order = g.Order(c.order[:0])
	healthy := c.cands[:0]
	cooling, broken := c.cooling[:0], c.broken[:0]
	for _, t := range c.order {
		if t.Err != nil {
			broken = append(broken, candidate{t: t})
			continue
		}
		ht := reg.Target(t.ID)
		av, until := ht.Check(now)
		switch av {
		case health.Available:
			healthy = append(healthy, candidate{t: t, h: ht})
		case health.HalfOpen:
			// Placed as healthy while its probe is free; the probe is
			// claimed only when the attempt is dispatched, so a request
			// that never reaches this target holds nothing.
			if ht.ProbeFree(now) {
				healthy = append(healthy, candidate{t: t, h: ht, halfOpen: true})
			} else {
				cooling = append(cooling, candidate{t: t, h: ht, until: until})
			}
		default:
			cooling = append(cooling, candidate{t: t, h: ht, until: until})
		}
	}
	c.cooling, c.broken = cooling, broken
	if len(healthy) == 0 && len(cooling) > 0 && g.FailWhenAllUnavailable {
		earliest := cooling[0].until
		for _, cd := range cooling[1:] {
			if cd.until.Before(earliest) {
				earliest = cd.until
			}
		}
		c.w.Header()["Retry-After"] = []string{retryAfterSeconds(earliest.Sub(now))}
		c.writeError(http.StatusServiceUnavailable, "all_candidates_unavailable", "all routing candidates are unavailable", "")
		return false
	}
	if len(cooling) > 1 {
		slices.SortStableFunc(cooling, func(a, b candidate) int { return a.until.Compare(b.until) })
	}
	c.cands = append(append(healthy, cooling...), broken...)
	c.budget = g.Budget()
	return true
}

// releaseBody returns the caller's body buffer, when pooled, to the pool.
// A committed stream calls it early: nothing reads the caller's body after
// commit, and a stream can stay open for minutes.
func (c *call) releaseBody() {
	if c.bodyBuf != nil {
		putBuf(c.bodyBuf)
		c.bodyBuf, c.body, c.in.Body = nil, nil, nil
	}
}

// releaseProbes gives back probe claims this request did not settle.
func (c *call) releaseProbes() {
	for i := range c.cands {
		if cd := &c.cands[i]; cd.probe != 0 {
			cd.h.ReleaseProbe(cd.probe)
			cd.probe = 0
		}
	}
}

// run walks the candidates until one answers or the walk must stop.
//
// A group's max_fallbacks budget counts the targets the walk used: those
// it sent a request to, and those it could not dispatch (config_error). A
// target passed over without a call (it does not serve the endpoint or
// the request, it is at its provider_limit, its probe is taken) uses none
// of it, so the walk goes on to the next one.
func (c *call) run() {
	var prev *candidate
	left := c.budget // 0: no budget (one candidate)
	for i := range c.cands {
		if c.budget > 0 && left == 0 {
			break
		}
		cd := &c.cands[i]
		if c.hedge != nil && c.hedge.passed(cd) {
			left-- // started as the hedge of the first attempt
			continue
		}
		if cd.halfOpen && !c.claimProbe(cd, i == len(c.cands)-1 || left == 1) {
			continue
		}
		if prev != nil && c.attempts > 0 {
			c.s.health.Publish(health.Event{Kind: health.EventFailover, Model: c.model.Name,
				Target: cd.t.Name, TargetID: cd.t.ID, Detail: "from " + prev.t.Name, CallID: c.callID})
		}
		prev = cd
		before := c.attempts
		if c.tryTarget(cd) {
			return
		}
		if cd.t.Err != nil || c.attempts > before {
			left--
		}
		if c.last != nil && c.last.action == actStop {
			break
		}
	}
	if c.rt.op == provider.OpCountTokens && c.last != nil && c.last.action != actStop && c.attempts > 0 {
		// No target could count (a key without the permission, a region
		// without the API, an outage): a token count is advice, so the
		// caller gets the gateway's estimate rather than an error.
		c.answerEstimate(&c.cands[0])
		return
	}
	c.writeFailure(c.last)
}

// claimProbe claims the half-open probe of cd as its attempt is
// dispatched. When another request claimed it since the walk was planned,
// cd is skipped (it is still cooling, as far as this request is concerned)
// unless it is the last candidate, which is tried anyway, without the
// probe, as a direct model always is.
func (c *call) claimProbe(cd *candidate, last bool) bool {
	if tok, ok := cd.h.TryProbe(c.s.health.Now()); ok {
		cd.probe = tok
		return true
	}
	return last || c.model.Direct != nil
}

// retriesFor is the number of extra tries on t for this request.
func (c *call) retriesFor(t *routing.Target) int {
	if g := c.model.Group; g != nil {
		return g.RetriesFor(t)
	}
	if t.RetriesSet {
		return t.Retries
	}
	return 0
}

// tryTarget makes the tries on one target. It returns true when the
// request is finished (answered, or the caller went away).
func (c *call) tryTarget(cd *candidate) bool {
	t := cd.t
	if t.Err != nil {
		c.addTrail(t.Name, "config_error")
		c.last = &failure{label: "config_error", action: actFailover, status: t.Err.Status, errType: t.Err.Type, msg: t.Err.Message}
		return false
	}
	if _, err := c.prepare(t); err != nil {
		// The request cannot be put in this target's wire: nothing was
		// sent, and nothing is said about the target. A probe claimed on
		// it goes back at once: the rest of the walk (a stream, perhaps)
		// must not keep other requests from probing it.
		if cd.probe != 0 {
			cd.h.ReleaseProbe(cd.probe)
			cd.probe = 0
		}
		if errors.Is(err, errUnsupportedEndpoint) {
			c.addTrail(t.Name, "unsupported_endpoint")
			c.skipped(&failure{label: "unsupported_endpoint", action: actFailover, effect: effNeutral, status: http.StatusBadRequest,
				errType: "invalid_request_error", msg: "model " + strconv.Quote(t.Name) + " does not serve " + c.rt.op.String()})
			return false
		}
		c.addTrail(t.Name, "unsupported_request")
		c.skipped(translateFailure(err))
		return false
	}
	if c.mode == modeEstimate {
		c.answerEstimate(cd)
		return true
	}
	retries := c.retriesFor(t)
	for try := 0; ; try++ {
		if c.r.Context().Err() != nil {
			c.status = statusClientClosed
			return true
		}
		if c.budgetLeft() <= 0 {
			c.last = c.budgetFailure()
			return false
		}
		if !c.admitTarget(cd) {
			return false
		}
		f, done := c.attempt(cd)
		c.settleTarget(cd, done)
		if done {
			return true
		}
		c.recordFailure(cd, f)
		c.last = f
		if f.clientGone {
			c.status = statusClientClosed
			return true
		}
		switch f.action {
		case actStop, actFailover:
			return false
		}
		if try >= retries {
			return false
		}
		wait := f.wait
		if wait == 0 {
			wait = backoff(try)
		}
		if !c.sleep(wait) {
			if c.r.Context().Err() != nil {
				c.status = statusClientClosed
				return true
			}
			return false // the wait does not fit the budget: fail over
		}
	}
}

// skipped records f, the failure of a target passed over without a call,
// as the walk's last failure unless a target that was called has already
// failed: the caller then gets that failure (its status, its
// Retry-After), not a later target's refusal of the request.
func (c *call) skipped(f *failure) {
	if c.attempts == 0 {
		c.last = f
	}
}

// statusClientClosed is what the access log records for a caller that went
// away (nginx's 499); nothing is written to the connection.
const statusClientClosed = 499

// Same-target retry backoff: base doubling per try up to the cap.
const (
	backoffBase = 10 * time.Millisecond
	backoffCap  = time.Second
)

// backoff is the pause before same-target retry number try+1. The first is
// short (10-15 ms): the failures worth a same-target retry (a reset on a
// reused connection, a 5xx blip) usually clear at once, and a request that
// discovers a refusing primary should not pay much before failing over.
// It doubles per try up to backoffCap, with up to half again of random
// jitter so that the retries of many requests do not line up. An upstream
// Retry-After, when it is followed, replaces it.
func backoff(try int) time.Duration {
	d := min(backoffBase<<min(try, 10), backoffCap)
	return d + rand.N(d/2+1)
}

// budgetLeft is the time left in the routing budget (a large value when
// there is none).
func (c *call) budgetLeft() time.Duration {
	if c.deadline.IsZero() {
		return time.Duration(1<<62 - 1)
	}
	return time.Until(c.deadline)
}

// sleep waits d unless the caller goes away first or d does not fit the
// budget; it reports whether it waited.
func (c *call) sleep(d time.Duration) bool {
	if d >= c.budgetLeft() {
		return false
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	t0 := time.Now()
	defer func() { c.waited += time.Since(t0) }()
	select {
	case <-tm.C:
		return true
	case <-c.r.Context().Done():
		return false
	}
}

func (c *call) addTrail(name, outcome string) {
	if len(c.trail) > 0 {
		c.trail = append(c.trail, ',')
	}
	c.trail = append(c.trail, name...)
	c.trail = append(c.trail, '=')
	c.trail = append(c.trail, outcome...)
}

func (c *call) addTrailStatus(name string, status int) {
	if len(c.trail) > 0 {
		c.trail = append(c.trail, ',')
	}
	c.trail = append(c.trail, name...)
	c.trail = append(c.trail, '=')
	c.trail = strconv.AppendInt(c.trail, int64(status), 10)
}

// attempt makes one upstream call. It returns done when the request is
// finished (answered), or the failure otherwise.
func (c *call) attempt(cd *candidate) (*failure, bool) {
	body, err := c.prepare(cd.t) // built (and checked) by tryTarget
	if err != nil {
		return translateFailure(err), false
	}
	c.attempts++
	c.attStart, c.attStatus, c.attTTFT, c.usage, c.upCounted = time.Now(), 0, 0, provider.Usage{}, false
	c.from, c.probing = nil, cd.probe != 0
	if c.failed != nil && c.failed != cd.t {
		c.from = c.failed
		c.failoverN++
	}
	cd.att = cd.h.Begin()
	if c.span != nil {
		c.startAttemptSpan(cd)
	}
	c.inAttempt = true
	var f *failure
	var done bool
	if c.req.Stream {
		f, done = c.streamAttempt(cd, body)
	} else {
		f, done = c.plainAttempt(cd, body)
	}
	if !c.upCounted {
		c.upstream += time.Since(c.attStart)
	}
	c.inAttempt = false
	return f, done
}

// settled publishes the events of a target that answered: the probe it
// was, the cooldown it left (recovered, from health.Recover), and the
// failover that led to it.
func (c *call) settled(cd *candidate, recovered bool) {
	t := cd.t
	reg := c.s.health
	if cd.probe != 0 {
		reg.Publish(health.Event{Kind: health.EventProbe, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
			Detail: "succeeded", CallID: c.callID})
		cd.probe = 0
	}
	if recovered {
		reg.Publish(health.Event{Kind: health.EventCooldownLeft, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
			Detail: "answered again", CallID: c.callID})
	}
	if c.failures > 0 {
		reg.Publish(health.Event{Kind: health.EventServed, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
			Detail: string(c.trail), CallID: c.callID})
	}
}

// recordFailure records a failed attempt: trail, health (cooldown), events.
func (c *call) recordFailure(cd *candidate, f *failure) {
	t := cd.t
	if f.recorded {
		return // a hedged stream's attempts, recorded as they ended
	}
	if f.clientGone {
		cd.h.Neutral()
		c.observeAttempt(cd, observe.OutcomeClientClosed, "", false)
		return
	}
	c.failures++
	c.addTrail(t.Name, f.label)
	reg := c.s.health
	entered := false
	if f.effect == effNeutral || c.rt.op == provider.OpCountTokens {
		// A failed token count says little about the target's answers
		// (CountTokens is a permission and an API of its own): it never
		// cools the target that serves the messages themselves.
		cd.h.Neutral()
	} else {
		var until time.Time
		until, entered = cd.h.Failed(f.reason, f.msg, f.cooldown)
		if entered {
			reg.Publish(health.Event{Kind: health.EventCooldownEntered, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
				Reason: f.reason, Detail: "until " + until.UTC().Format(time.RFC3339), CallID: c.callID})
		}
	}
	reg.Publish(health.Event{Kind: health.EventAttemptFailed, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
		Reason: f.label, Detail: f.msg, CallID: c.callID})
	c.observeAttempt(cd, f.label, f.reason, entered)
	if cd.probe != 0 {
		reg.Publish(health.Event{Kind: health.EventProbe, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
			Reason: f.reason, Detail: "failed: " + f.msg, CallID: c.callID})
		if f.effect == effNeutral || f.cooldown <= 0 {
			cd.h.ReleaseProbe(cd.probe)
		}
		cd.probe = 0
	}
}

// writeFailure answers the caller with the last failure.
func (c *call) writeFailure(f *failure) {
	if f == nil {
		f = &failure{status: http.StatusBadGateway, errType: "upstream_error", msg: "no upstream could be tried"}
	}
	h := c.w.Header()
	if len(c.trail) > 0 {
		c.setAttempts(h, -1)
	}
	if f.retryAfter != "" {
		h["Retry-After"] = []string{f.retryAfter}
	}
	if f.body != nil {
		body := errorBodyFor(c.rt.wire, f.status, f.body)
		if f.contentType == "" {
			h["Content-Type"] = appJSON
		} else {
			h["Content-Type"] = []string{f.contentType}
		}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		c.status = f.status
		c.w.WriteHeader(f.status)
		_, _ = c.w.Write(body)
		return
	}
	status := f.status
	if c.rt.wire == wireAnthropic && f.reason == reasonOverloaded {
		// Anthropic's own word for it: its SDKs and Claude Code back off
		// on a 529 overloaded_error, and treat a 502 as a server fault.
		status = statusOverloaded
	}
	c.writeError(status, f.errType, f.msg, f.code)
}

// statusOverloaded is Anthropic's overloaded status.
const statusOverloaded = 529

// setAttempts sets x-aisix-attempts to the trail, x-aisix-overhead-ms
// and, when contentLength is not negative, Content-Length, from one string
// allocation.
func (c *call) setAttempts(h http.Header, contentLength int) {
	var buf [256]byte
	b := append(buf[:0], c.trail...)
	n1 := len(b)
	b = strconv.AppendFloat(b, float64(c.overhead())/1e6, 'f', 3, 64)
	n2 := len(b)
	if contentLength >= 0 {
		b = strconv.AppendInt(b, int64(contentLength), 10)
	}
	s := string(b)
	c.vals[1] = s[:n1]
	h[hdrAttempts] = c.vals[1:2:2]
	c.vals[3] = s[n1:n2]
	h[hdrOverhead] = c.vals[3:4:4]
	if contentLength >= 0 {
		c.vals[2] = s[n2:]
		h["Content-Length"] = c.vals[2:3:3]
	}
}

// overhead is the gateway's own time in the request so far: the time
// since it arrived less the time spent on upstream calls (the one in
// flight included) and in pauses between tries.
func (c *call) overhead() time.Duration {
	d := time.Since(c.start) - c.upstream - c.waited
	if c.inAttempt && !c.upCounted {
		d -= time.Since(c.attStart)
	}
	return max(d, 0)
}

// readBody reads r into *bp, growing it, up to limit bytes.
func readBody(r io.Reader, limit int64, bp *[]byte) ([]byte, error) {
	b := (*bp)[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			*bp = b
			return nil, errTooLarge
		}
		if err == io.EOF {
			*bp = b
			return b, nil
		}
		if err != nil {
			*bp = b
			return nil, err
		}
	}
}

var errTooLarge = errors.New("body too large")

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(bp *[]byte) {
	if cap(*bp) > 1<<20 {
		return // let the GC have outsized buffers
	}
	*bp = (*bp)[:0]
	bufPool.Put(bp)
}
