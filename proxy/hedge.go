package proxy

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// Hedged first tokens (a routing model's hedge). When the first attempt
// of a streaming chat completion or Messages request has sent no content by the hedge
// deadline (after_ms from the attempt's start, or the target's own
// recent p95 time to first content), the next target of the walk is
// started in parallel; the first of the two to send content is
// committed and relayed, the other is cancelled at once. A request is
// hedged at most once, and only on its first attempt. The hedge is not
// started when the next target is cooling down, half-open, broken, does
// not serve the request's operation, or its provider_limit refuses it.
// Each leg has its own upstream body and decoder (one may be served
// natively, the other through the Messages translation) and its own
// attempt span and traceparent.
//
// The loser is not blamed (no cooldown: we cancelled it); its attempt is
// observed with outcome hedge_lost, and the tokens it reported, so the
// ledger and the metrics count what the hedge cost. A first attempt that
// fails before content while the hedge runs is recorded as any failure,
// and the hedge simply goes on as the next attempt of the walk: there is
// no second failover for it.
//
// With no hedge on the routing model the walk pays one nil check per
// streaming attempt.

// hedgeMinSamples is how many recent times to first content a target
// needs for after: p95; with fewer the request is not hedged.
const hedgeMinSamples = 20

var errHedgeLost = errors.New("the hedged attempt lost to the other")

// hedgeState follows the hedge of one request.
type hedgeState struct {
	g    *routing.Hedge
	used bool       // the request's first streaming attempt has been made
	b    *candidate // the target started as the hedge: the walk passes it
}

// planHedge prepares hedging for a chat-completions stream whose routing
// model asks for it.
func (c *call) planHedge() {
	g := c.model.Group
	if g == nil || g.Hedge == nil || !c.req.Stream || c.rt != routeChat && c.rt != routeMessages {
		return
	}
	c.hedge = &hedgeState{g: g.Hedge}
}

// passed reports whether the walk must pass cd: it was the hedge.
func (h *hedgeState) passed(cd *candidate) bool { return h.b == cd }

// hedgeLeg is one of the two attempts of a hedged stream, up to its
// first content.
type hedgeLeg struct {
	cd     *candidate
	body   []byte
	in     provider.Inbound // the leg's own: its header carries its traceparent
	mode   serveMode
	actx   context.Context
	cancel context.CancelCauseFunc
	wd     *watchdog
	start  time.Time
	resp   *http.Response
	st     *sseState
	dec    provider.StreamDecoder
	out    []byte
	info   provider.EventInfo
	usage  provider.Usage
	respID string
	status int
	f      *failure
	from   *routing.Target
	tk     *limit.Ticket
	// n is the leg's attempt number; span the attempt's span (the
	// first attempt's is the call's).
	n    int
	span observe.AttemptSpan
}

// hedgeAfter is the hedge deadline for an attempt on cd, and false when
// the request is not hedged (p95 with too few samples).
func (c *call) hedgeAfter(cd *candidate) (time.Duration, bool) {
	g := c.hedge.g
	if !g.P95 {
		return g.After, true
	}
	return cd.h.TTFTP95(hedgeMinSamples)
}

// hedgeCandidate is the next target of the walk after a when it may be
// hedged to now, with its provider_limit admission; nil when it may not.
func (c *call) hedgeCandidate(a *candidate) (*candidate, *limit.Ticket) {
	i := 0
	for i < len(c.cands) && &c.cands[i] != a {
		i++
	}
	if i+1 >= len(c.cands) || c.budget == 1 || c.r.Context().Err() != nil {
		return nil, nil
	}
	b := &c.cands[i+1]
	t := b.t
	if t.Err != nil || b.halfOpen || b.h == nil || !c.serves(t) {
		return nil, nil
	}
	if av, _ := b.h.Check(c.s.health.Now()); av != health.Available {
		return nil, nil
	}
	if t.Limit.Limits.IsZero() {
		return b, nil
	}
	tk, rej := c.s.limiter.Acquire(c.s.now(), c.estimateTokens(), t.Limit)
	if rej != nil {
		return nil, nil
	}
	return b, tk
}

// hedgedStream is the first streaming attempt of a hedged request, on a.
func (c *call) hedgedStream(a *candidate, body []byte) (*failure, bool) {
	h := c.hedge
	h.used = true
	after, ok := c.hedgeAfter(a)
	if !ok {
		return c.streamAttempt(a, body)
	}
	done := make(chan *hedgeLeg, 2)
	la := &hedgeLeg{cd: a, body: body, in: *c.inbound(), mode: c.mode, start: c.attStart, n: c.attempts, span: c.attSpan}
	c.startLeg(la, done)
	tm := time.NewTimer(after)
	select {
	case l := <-done:
		tm.Stop()
		return c.finishAlone(l)
	case <-tm.C:
	}
	b, tk := c.hedgeCandidate(a)
	if b == nil {
		return c.finishAlone(<-done)
	}
	bbody, bin, bmode, err := c.bodyFor(b.t)
	if err != nil {
		if tk != nil {
			tk.Done(0, 0)
		}
		return c.finishAlone(<-done)
	}
	h.b = b
	c.attempts++
	c.failoverN++
	b.att = b.h.Begin()
	c.s.health.Publish(health.Event{Kind: health.EventFailover, Model: c.model.Name,
		Target: b.t.Name, TargetID: b.t.ID, Detail: "hedge for " + a.t.Name + " after " + ms(after), CallID: c.callID})
	la.tk, c.tTicket = c.tTicket, nil
	lb := &hedgeLeg{cd: b, body: bbody, in: *bin, mode: bmode, start: time.Now(), tk: tk, from: a.t, n: c.attempts}
	if c.span != nil {
		lb.span = c.span.StartAttempt(b.t, lb.n)
		lb.in.Header = c.r.Header.Clone()
		if lb.in.Header == nil {
			lb.in.Header = make(http.Header, 2)
		}
		lb.span.Inject(lb.in.Header)
	}
	c.startLeg(lb, done)

	var win *hedgeLeg
	var last *failure
	pending := 2
	for pending > 0 {
		l := <-done
		pending--
		if l.f == nil {
			win = l
			break
		}
		c.legFailed(l)
		last = l.f
	}
	if win == nil {
		f := *last
		if f.action == actRetry {
			f.action = actFailover // the walk goes on after the hedge, not back
		}
		f.recorded = true
		c.useLeg(lb)
		c.upstream += lb.start.Sub(la.start) // an upstream was in flight since the first leg began
		c.attSpan = nil                      // both legs' spans ended with their failures
		return &f, false
	}
	lose := la
	if win == la {
		lose = lb
	}
	if pending > 0 {
		lose.cancel(errHedgeLost)
		<-done
		c.legLost(lose)
	}
	c.useLeg(win)
	c.hedgeMark = observe.HedgeWon
	if win == lb {
		c.attSpan = lb.span
		// The wait on the first leg before the hedge was upstream time,
		// not the gateway's: the attempt's own latency starts at its
		// start, the request's upstream time at the first leg's.
		c.upstream += lb.start.Sub(la.start)
	}
	c.relay(win.cd, win.actx, win.cancel, win.st, win.dec, win.wd, win.start, win.info)
	if win.tk != nil {
		c.tTicket = win.tk
		c.settleTarget(win.cd, true)
	}
	win.close(c)
	return nil, true
}

// startLeg starts the leg's attempt, up to its first content, on a
// goroutine that sends the leg on done when it has it or has failed.
func (c *call) startLeg(l *hedgeLeg, done chan<- *hedgeLeg) {
	l.actx, l.cancel = context.WithCancelCause(c.r.Context())
	l.wd = startWatchdog(l.start, l.cd.t, c.deadline, l.cancel)
	go func() {
		c.legFirst(l)
		done <- l
	}()
}

// legFirst opens the leg's stream and reads it up to its first content.
func (c *call) legFirst(l *hedgeLeg) {
	t, in := l.cd.t, &l.in
	l.resp, l.f = c.openStreamStatus(t, l.actx, in, l.body, &l.status)
	if l.f != nil {
		return
	}
	l.wd.headers()
	maxEvent, maxHeld := c.streamLimits()
	l.st = getSSE(l.resp.Body, l.wd, maxEvent)
	l.dec = c.decoderFor(t, in, l.mode, c.body)
	if f, ok := l.dec.(provider.Framer); ok {
		l.st.src = f.Frames(l.st.br, maxEvent)
	}
	l.out, l.info, l.f = c.firstContent(t, l.actx, l.st, l.dec, nil, &l.usage, &l.respID, maxHeld)
}

// close ends the leg's upstream request and gives back its reader.
func (l *hedgeLeg) close(c *call) {
	if l.st != nil {
		maxEvent, _ := c.streamLimits()
		putSSE(l.st, maxEvent)
		l.st = nil
	}
	if l.resp != nil {
		_ = l.resp.Body.Close()
	}
	l.wd.stop()
	l.cancel(nil)
}

// useLeg makes l the call's attempt in flight, for the records.
func (c *call) useLeg(l *hedgeLeg) {
	c.attStart, c.attStatus, c.attTTFT, c.usage = l.start, l.status, 0, l.usage
	c.respID, c.from, c.probing = l.respID, l.from, l.cd.probe != 0
	c.attSpan = l.span
	if l.f == nil {
		c.out = append(c.out[:0], l.out...)
	}
}

// finishAlone ends a hedged request's first attempt that ran alone: no
// hedge was started, so it is the call's attempt as any other.
func (c *call) finishAlone(l *hedgeLeg) (*failure, bool) {
	defer l.close(c)
	c.attStatus, c.usage, c.respID = l.status, l.usage, l.respID
	if l.f != nil {
		return l.f, false
	}
	c.out = append(c.out[:0], l.out...)
	c.relay(l.cd, l.actx, l.cancel, l.st, l.dec, l.wd, l.start, l.info)
	return nil, true
}

// legFailed records a leg that failed before content while the other ran.
func (c *call) legFailed(l *hedgeLeg) {
	c.useLeg(l)
	c.recordFailure(l.cd, l.f)
	c.settleLeg(l)
	l.close(c)
}

// legLost records the leg the other beat to its first content: it was
// cancelled by us, so its target is not blamed, but its attempt and its
// tokens are counted.
func (c *call) legLost(l *hedgeLeg) {
	cd := l.cd
	cd.h.Neutral()
	if cd.probe != 0 {
		cd.h.ReleaseProbe(cd.probe)
		cd.probe = 0
	}
	c.useLeg(l)
	c.addTrail(cd.t.Name, observe.OutcomeHedgeLost)
	c.hedgeMark = observe.HedgeLost
	c.observeAttempt(cd, observe.OutcomeHedgeLost, observe.OutcomeHedgeLost, false)
	if l.usage.Known() {
		c.addUsage(cd) // observeAttempt counts only answers' tokens
	}
	c.hedgeMark = ""
	c.settleLeg(l)
	l.close(c)
}

// settleLeg settles the provider_limit admission of a leg that did not
// serve the request with the tokens it reported (its prompt's estimate
// when it reported none: the upstream read it).
func (c *call) settleLeg(l *hedgeLeg) {
	if l.tk == nil {
		return
	}
	tokens, cost := int64(0), 0.0
	if l.usage.Known() {
		tokens = l.usage.Input + l.usage.Output
		if p := l.cd.t.Price; p != nil {
			cost = p.Cost(l.usage)
		}
	}
	l.tk.Done(tokens, cost)
	l.tk = nil
}
