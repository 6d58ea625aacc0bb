// Package observe is what the proxy tells the gateway's observers —
// metrics, the usage ledger, traces — about each request and each of its
// attempts. The proxy fills one Attempt per upstream call (the winner's
// when its answer ends: a stream's at its last event) and one Request per
// proxied request, and hands each to the Observer synchronously on the
// request's goroutine. An Observer must be quick and must not block (it
// counts, or queues a copy); it must not keep the pointer, which the
// proxy reuses.
package observe

import (
	"net/http"
	"time"

	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// Observer receives what the proxy saw. Both methods are called on the
// request's goroutine, never concurrently for one request.
type Observer interface {
	// Attempt is one upstream call that ended: answered, failed, or cut.
	Attempt(a *Attempt)
	// Request is one proxied request, after its answer was written. It is
	// called for every request that reached the endpoint, refused ones
	// (401, 404, 400) included.
	Request(r *Request)
}

// Attempt is one upstream call.
type Attempt struct {
	CallID string
	// Key is the caller key; never nil.
	Key *routing.CallerKey
	// Op is the endpoint the caller called; Wire its wire ("openai",
	// "responses", "anthropic").
	Op   provider.Op
	Wire string
	// Model is the model the caller asked for (a routing group or a
	// direct model); Target the upstream model called.
	Model  *routing.Model
	Target *routing.Target
	// From is the target of the failed attempt before this one when the
	// request failed over to Target from it; nil for the first attempt
	// and for a retry on the same target.
	From *routing.Target
	// N is the attempt's number in its request, from 1.
	N      int
	Stream bool
	Start  time.Time
	// Latency is the attempt's time to its end: the whole answer read (a
	// stream's last event), or the failure.
	Latency time.Duration
	// TTFT is a stream's time to its first content; 0 for the rest.
	TTFT time.Duration
	// Status is the upstream's HTTP status; 0 when none came (a transport
	// error, a timeout before headers). A committed stream that failed
	// mid-answer has 200 and a failing Outcome.
	Status int
	// Outcome is "ok" for an answer, else the failure's label in the
	// x-aisix-attempts trail ("429", "timeout", "stream_cut" …).
	Outcome string
	// Reason is the failure's status_reason ("rate_limited" …); "" when ok.
	Reason string
	// Cooldown is set when this failure put the target in cooldown.
	Cooldown bool
	// Probe is set when the attempt was the half-open probe of a target
	// whose cooldown had run out: OK() says whether it passed.
	Probe bool
	// Usage is the answer's token count, when the upstream reported it.
	Usage provider.Usage
	// Cost is Usage priced at the target's prices, in USD; Priced is false
	// when the target has no price (no cost is ever guessed).
	Cost   float64
	Priced bool
	// Hedge is set on the two attempts of a hedged stream (routing.hedge):
	// HedgeWon on the one that served it, HedgeLost on the one cancelled
	// when the other sent content first.
	Hedge string
}

// Hedge outcomes of an attempt.
const (
	HedgeWon  = "won"
	HedgeLost = "lost"
	// OutcomeHedgeLost is the outcome and status_reason of a hedged
	// attempt cancelled because the other one sent content first: not a
	// failure of its target.
	OutcomeHedgeLost = "hedge_lost"
)

// OK reports whether the attempt answered.
func (a *Attempt) OK() bool { return a.Outcome == OutcomeOK }

// Outcomes.
const (
	OutcomeOK = "ok"
	// Of a Request only: the caller went away before its answer was
	// complete, or stopped reading it.
	OutcomeClientClosed = "client_closed"
	OutcomeSlowClient   = "slow_client"
	// OutcomeError is a Request that was answered with an error.
	OutcomeError = "error"
	// OutcomeRateLimited is a Request its caller key's or model's limit
	// refused (Rejection says which).
	OutcomeRateLimited = "rate_limited"
)

// Request is one proxied request.
type Request struct {
	CallID string
	// Key is the caller key; nil when the request was refused before it
	// was authenticated.
	Key  *routing.CallerKey
	Op   provider.Op
	Wire string
	// Alias is the model name the caller sent (clipped); Model the model
	// it resolved to, nil when none.
	Alias  string
	Model  *routing.Model
	Stream bool
	Start  time.Time
	// Latency is the time from the request's arrival to the end of its
	// answer.
	Latency time.Duration
	// Upstream is the time spent in upstream calls (every attempt's
	// Latency), TTFT a stream's time from arrival to its first content.
	Upstream time.Duration
	TTFT     time.Duration
	// Status is the status the caller got (499 for a caller that went
	// away), Outcome "ok", "error", "client_closed", "slow_client" or
	// "rate_limited".
	Status  int
	Outcome string
	// Attempts counts upstream calls, Failovers the moves to another
	// target.
	Attempts  int
	Failovers int
	// ServedBy is the target that answered; nil when none did.
	ServedBy *routing.Target
	// Usage, Cost and Priced are the answering attempt's.
	Usage  provider.Usage
	Cost   float64
	Priced bool
	// Rejection is the caller key or model limit that refused the
	// request (Outcome rate_limited); nil otherwise.
	Rejection *limit.Rejection
	// LimitSkips are the targets passed over at their provider_limit
	// (local_rate_limit), in walk order; only valid during the call.
	LimitSkips []limit.Rejection
}

// Overhead is the gateway's own time in the request: its latency less the
// time spent waiting on upstreams.
func (r *Request) Overhead() time.Duration { return max(r.Latency-r.Upstream, 0) }

// Multi is an Observer that hands each record to every one of its
// observers in order.
type Multi []Observer

func (m Multi) Attempt(a *Attempt) {
	for _, o := range m {
		o.Attempt(a)
	}
}

func (m Multi) Request(r *Request) {
	for _, o := range m {
		o.Request(r)
	}
}

// Tracer starts the spans of proxied requests and of their upstream calls
// (proxy/tracing). The proxy calls it only when one is configured, on the
// request's goroutine. Spans are live, unlike the records, because each
// attempt's span must be named in the trace context sent upstream.
type Tracer interface {
	// StartRequest starts the span of one request to the endpoint op, as a
	// child of the caller's trace context (its traceparent) when it sent
	// one.
	StartRequest(r *http.Request, op provider.Op, callID string) RequestSpan
}

// RequestSpan is the span of one proxied request.
type RequestSpan interface {
	// StartAttempt starts the span of the request's n-th upstream call,
	// on t.
	StartAttempt(t *routing.Target, n int) AttemptSpan
	// End ends the span with the request's record and its
	// x-aisix-attempts trail (skipped targets included).
	End(r *Request, trail string)
}

// AttemptSpan is the span of one upstream call.
type AttemptSpan interface {
	// Inject sets the attempt's W3C trace context (traceparent, and
	// tracestate when there is one) in h, the header the upstream request
	// copies its trace headers from.
	Inject(h http.Header)
	// End ends the span with the attempt's record; it must not keep a.
	End(a *Attempt)
}
