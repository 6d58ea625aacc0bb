package proxy

import (
	"net/http"
	"time"

	"github.com/aisix/aisix/proxy/observe"
)

var wireNames = [...]string{wireOpenAI: "openai", wireResponses: "responses", wireAnthropic: "anthropic"}

func (w callerWire) String() string { return wireNames[w] }

// observeAttempt hands the observer the attempt on cd that just ended:
// outcome is observe.OutcomeOK or the failure's trail label, reason its
// status_reason, cooled whether it put the target in cooldown.
func (c *call) observeAttempt(cd *candidate, outcome, reason string, cooled bool) {
	o, sp := c.s.observer, c.attSpan
	if o == nil && sp == nil {
		if outcome == observe.OutcomeOK && c.usage.Known() {
			c.addUsage(cd)
		}
		return
	}
	a := &c.obs
	*a = observe.Attempt{
		CallID: c.callID, Key: c.key, Op: c.rt.op, Wire: c.rt.wire.String(),
		Model: c.model, Target: cd.t, From: c.from, N: c.attempts, Stream: c.req.Stream,
		Start: c.attStart, Latency: time.Since(c.attStart), TTFT: c.attTTFT,
		Status: c.attStatus, Outcome: outcome, Reason: reason, Cooldown: cooled, Probe: c.probing, Usage: c.usage,
		Hedge: c.hedgeMark,
	}
	c.hedgeMark = "" // a continuation after the hedge's winner is not the hedge
	if p := cd.t.Price; p != nil && c.usage.Known() {
		a.Cost, a.Priced = p.Cost(c.usage), true
	}
	if a.OK() && c.usage.Known() {
		cd.h.AddUsage(c.usage.Input, c.usage.Output, a.Cost, a.Priced)
	}
	if outcome != observe.OutcomeOK {
		c.failed = cd.t
	}
	if o != nil {
		o.Attempt(a)
	}
	if sp != nil {
		c.attSpan = nil
		sp.End(a)
	}
}

// observeRequest hands the observer the request that just ended.
func (c *call) observeRequest() {
	r := &c.obsReq
	*r = observe.Request{
		CallID: c.callID, Key: c.key, Op: c.rt.op, Wire: c.rt.wire.String(),
		Alias: clip(c.req.Model), Model: c.model, Stream: c.req.Stream,
		Start: c.start, Latency: time.Since(c.start), Upstream: c.upstream + c.waited, TTFT: c.ttft,
		Status: c.status, Attempts: c.attempts, Failovers: c.failoverN,
	}
	if c.rejected {
		r.Rejection = &c.rejection
	}
	r.LimitSkips = c.limitSkips
	switch {
	case c.outcome != "":
		r.Outcome = c.outcome
	case c.status == statusClientClosed:
		r.Outcome = observe.OutcomeClientClosed
	case c.status/100 == 2 && c.servedBy != "":
		r.Outcome = observe.OutcomeOK
	default:
		r.Outcome = observe.OutcomeError
	}
	if c.servedBy != "" && c.obs.Target != nil && c.obs.OK() {
		r.ServedBy, r.Usage, r.Cost, r.Priced = c.obs.Target, c.obs.Usage, c.obs.Cost, c.obs.Priced
	}
	if o := c.s.observer; o != nil {
		o.Request(r)
	}
	if c.span != nil {
		c.span.End(r, string(c.trail))
	}
}

// startAttemptSpan starts the span of the attempt on cd and puts its
// trace context in the header the adapters copy from: the caller's,
// cloned once per request, so the upstream gets the attempt's traceparent
// rather than the caller's.
func (c *call) startAttemptSpan(cd *candidate) {
	c.attSpan = c.span.StartAttempt(cd.t, c.attempts)
	if c.traceHdr == nil {
		c.traceHdr = c.r.Header.Clone()
		if c.traceHdr == nil {
			c.traceHdr = make(http.Header, 2)
		}
	}
	c.attSpan.Inject(c.traceHdr)
	c.in.Header = c.traceHdr
	if c.chatIn.Req != nil {
		c.chatIn.Header = c.traceHdr
	}
}

// addUsage counts the answer's tokens and cost on its target's runtime
// state (the dashboard's tokens/min and cost/hour).
func (c *call) addUsage(cd *candidate) {
	var cost float64
	p := cd.t.Price
	if p != nil {
		cost = p.Cost(c.usage)
	}
	cd.h.AddUsage(c.usage.Input, c.usage.Output, cost, p != nil)
}
