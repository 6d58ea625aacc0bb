package proxy

import (
	"net/http"
	"strconv"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
)

// Limits in the request path (see proxy/limit for the algorithm).
//
// A request is admitted against its caller key's and its model's limits
// once, before the walk (admit), and settled when the request ends, its
// answer (a stream: the whole stream) complete or the caller gone. Each try
// on a target with a provider_limit is admitted against that limit before
// it is sent and settled when it ends; a target at its limit is skipped
// (local_rate_limit) without a call and without any effect on its health.
// count_tokens is never limited: it is free advice, and Messages clients
// call it before most requests.

// estimateTokens is the token estimate a request is checked against the
// token windows with before its answer says: the prompt at about four
// bytes of JSON a token, plus the completion the request allows itself
// (max_tokens, max_completion_tokens or max_output_tokens). It is replaced
// by the real count when the answer ends.
func (c *call) estimateTokens() int64 {
	return int64(len(c.body))/4 + c.req.MaxTokens
}

// admit takes the request's slot in its caller key's and model's limits.
// On a rejection it answers 429 and returns false.
func (c *call) admit() bool {
	if c.rt.op == provider.OpCountTokens {
		return true
	}
	k, m := &c.key.Limit, &c.model.Limit
	kz, mz := k.Limits.IsZero(), m.Limits.IsZero()
	if kz && mz {
		return true
	}
	subs := c.subs[:0]
	if !kz {
		subs = append(subs, *k)
	}
	if !mz {
		subs = append(subs, *m)
	}
	c.subs = subs
	t, rej := c.s.limiter.Acquire(c.s.now(), c.estimateTokens(), subs...)
	if rej != nil {
		c.reject(rej)
		return false
	}
	c.ticket = t
	return true
}

// reject answers a request its caller key's or model's limit refused:
// 429 rate_limit_exceeded (a spent budget: insufficient_quota), the code
// naming the scope and dimension, Retry-After when the limit frees.
func (c *call) reject(rej *limit.Rejection) {
	c.rejection = *rej
	c.rejected = true
	c.outcome = observe.OutcomeRateLimited
	h := c.w.Header()
	h["Retry-After"] = []string{strconv.FormatInt(limit.RetryAfterSeconds(rej.RetryAfter), 10)}
	setRejectionHeaders(h, rej)
	typ := "rate_limit_exceeded"
	if rej.InsufficientQuota() {
		typ = "insufficient_quota"
	}
	c.writeError(http.StatusTooManyRequests, typ, rejectionMessage(rej, c.rejectedWho(rej)), rej.Code())
	c.s.health.Publish(health.Event{Kind: health.EventLimited, Model: c.model.Name,
		Reason: rej.Code(), Detail: rejectionDetail(rej), CallID: c.callID})
}

// setRejectionHeaders adds OpenAI's x-ratelimit-* headers to a request or
// token rate rejection: the limit, nothing remaining, and when it frees.
func setRejectionHeaders(h http.Header, rej *limit.Rejection) {
	reset := limit.FormatReset(rej.RetryAfter)
	switch rej.Dimension {
	case limit.DimRPM, limit.DimRPD:
		h[limit.HeaderLimitRequests] = []string{strconv.FormatInt(rej.Limit, 10)}
		h[limit.HeaderRemainingRequests] = []string{"0"}
		h[limit.HeaderResetRequests] = []string{reset}
	case limit.DimTPM, limit.DimTPD:
		h[limit.HeaderLimitTokens] = []string{strconv.FormatInt(rej.Limit, 10)}
		h[limit.HeaderRemainingTokens] = []string{"0"}
		h[limit.HeaderResetTokens] = []string{reset}
	}
}

// rejectedWho names, for the caller, what a caller key or model limit
// belongs to: the operator's display names.
func (c *call) rejectedWho(rej *limit.Rejection) string {
	if rej.Scope == limit.ScopeModel {
		return "model " + strconv.Quote(c.model.Name)
	}
	if c.key.Name == "" {
		return "API key"
	}
	return "API key " + strconv.Quote(c.key.Name)
}

// rejectionMessage is the caller's message for a rejection of who: which
// limit, and when to try again.
func rejectionMessage(rej *limit.Rejection, who string) string {
	if rej.Dimension == limit.DimBudget {
		return who + " has spent its budget of " + strconv.FormatFloat(rej.AmountUSD, 'f', 2, 64) +
			" USD for this period; it resets at " + rej.ResetAt.UTC().Format(time.RFC3339)
	}
	return who + " is over its " + dimensionText(rej) + "; retry after " + limit.FormatReset(rej.RetryAfter)
}

// dimensionText names a rate limit for people: "limit of 60 requests per
// minute".
func dimensionText(rej *limit.Rejection) string {
	n := strconv.FormatInt(rej.Limit, 10)
	switch rej.Dimension {
	case limit.DimRPM:
		return "limit of " + n + " requests per minute"
	case limit.DimRPD:
		return "limit of " + n + " requests per day"
	case limit.DimTPM:
		return "limit of " + n + " tokens per minute"
	case limit.DimTPD:
		return "limit of " + n + " tokens per day"
	case limit.DimConcurrency:
		return "limit of " + n + " concurrent requests"
	}
	return string(rej.Dimension) + " limit"
}

// rejectionDetail is the dashboard's detail of a rejection.
func rejectionDetail(rej *limit.Rejection) string {
	if rej.Dimension == limit.DimBudget {
		return "budget " + strconv.FormatFloat(rej.AmountUSD, 'f', 2, 64) + " USD spent until " + rej.ResetAt.UTC().Format(time.RFC3339)
	}
	return string(rej.Dimension) + " " + strconv.FormatInt(rej.Limit, 10) + ", frees in " + limit.FormatReset(rej.RetryAfter)
}

// setLimitHeaders adds OpenAI's x-ratelimit-* headers to a successful
// answer when the caller key or the model has an rpm or tpm limit: the
// tightest of them as the request was admitted.
func (c *call) setLimitHeaders(h http.Header) {
	if c.ticket == nil {
		return
	}
	lh := c.ticket.Headers()
	if !lh.HasRequests && !lh.HasTokens {
		return
	}
	// Up to six values: their text in one string, their slices in one
	// array (two allocations, not twelve, on every limited request).
	var (
		names [6]string
		ends  [6]int
		n     int
		buf   [128]byte
	)
	b := buf[:0]
	add := func(name string, nb []byte) {
		b, names[n], ends[n] = nb, name, len(nb)
		n++
	}
	if lh.HasRequests {
		add(limit.HeaderLimitRequests, strconv.AppendInt(b, lh.LimitRequests, 10))
		add(limit.HeaderRemainingRequests, strconv.AppendInt(b, lh.RemainingRequests, 10))
		add(limit.HeaderResetRequests, limit.AppendReset(b, lh.ResetRequests))
	}
	if lh.HasTokens {
		add(limit.HeaderLimitTokens, strconv.AppendInt(b, lh.LimitTokens, 10))
		add(limit.HeaderRemainingTokens, strconv.AppendInt(b, lh.RemainingTokens, 10))
		add(limit.HeaderResetTokens, limit.AppendReset(b, lh.ResetTokens))
	}
	text := string(b)
	vals := make([]string, n)
	start := 0
	for i := range n {
		vals[i] = text[start:ends[i]]
		h[names[i]] = vals[i : i+1 : i+1]
		start = ends[i]
	}
}

// settleLimits ends the request's admission: the real tokens and cost of
// the answer replace the estimate, and the slots are released. A request
// that was never sent upstream (every target skipped: at its own limit,
// misconfigured, unable to serve the endpoint) is taken back as if it had
// never been admitted.
func (c *call) settleLimits() {
	t := c.ticket
	if t == nil {
		return
	}
	c.ticket = nil
	if c.attempts == 0 {
		t.Cancel()
		return
	}
	tokens, cost := c.answerSpend()
	t.Done(tokens, cost)
}

// answerSpend is the tokens and cost of the answer that served the
// request (none when nothing did). An answer whose upstream reported no
// usage keeps its estimate: its tokens were spent, even if nobody said
// how many.
func (c *call) answerSpend() (int64, float64) {
	if c.winner == nil {
		return 0, 0
	}
	if !c.usage.Known() {
		return c.estimateTokens(), 0
	}
	tokens := c.usage.Input + c.usage.Output
	if p := c.winner.Price; p != nil {
		return tokens, p.Cost(c.usage)
	}
	return tokens, 0
}

// admitTarget takes a slot in cd's provider_limit for the try about to be
// sent. When the target is at its limit it records the skip
// (local_rate_limit: the trail, an event, the failure the caller gets if
// no other target answers, with the earliest Retry-After of the skipped
// targets) and returns false; nothing is said about the target's health.
func (c *call) admitTarget(cd *candidate) bool {
	t := cd.t
	if t.Limit.Limits.IsZero() {
		return true
	}
	tk, rej := c.s.limiter.Acquire(c.s.now(), c.estimateTokens(), t.Limit)
	if rej == nil {
		c.tTicket = tk
		return true
	}
	if cd.probe != 0 {
		cd.h.ReleaseProbe(cd.probe)
		cd.probe = 0
	}
	c.addTrail(t.Name, labelLocalRateLimit)
	c.limitSkips = append(c.limitSkips, *rej)
	if c.limitWait == 0 || rej.RetryAfter < c.limitWait {
		c.limitWait = rej.RetryAfter
	}
	c.s.health.Publish(health.Event{Kind: health.EventLimited, Model: c.model.Name, Target: t.Name, TargetID: t.ID,
		Reason: labelLocalRateLimit, Detail: rejectionDetail(rej), CallID: c.callID})
	c.skipped(&failure{label: labelLocalRateLimit, action: actFailover, effect: effNeutral,
		status: http.StatusTooManyRequests, errType: "rate_limit_exceeded", code: rej.Code(),
		msg: rejectionMessage(rej, "model "+strconv.Quote(t.Name)+" (its provider_limit; no other target of "+
			strconv.Quote(c.model.Name)+" could serve the request)"),
		retryAfter: strconv.FormatInt(limit.RetryAfterSeconds(c.limitWait), 10)})
	return false
}

// labelLocalRateLimit is the trail label of a target skipped at its own
// provider_limit.
const labelLocalRateLimit = "local_rate_limit"

// settleTarget ends the try's admission in its target's provider_limit
// with the tokens and cost of its answer (none for a failed try).
func (c *call) settleTarget(cd *candidate, answered bool) {
	t := c.tTicket
	if t == nil {
		return
	}
	c.tTicket = nil
	var tokens int64
	var cost float64
	switch {
	case answered && c.usage.Known():
		tokens = c.usage.Input + c.usage.Output
		if p := cd.t.Price; p != nil {
			cost = p.Cost(c.usage)
		}
	case answered && c.winner == cd.t:
		tokens = c.estimateTokens() // answered without a usage report
	}
	t.Done(tokens, cost)
}
