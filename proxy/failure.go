package proxy

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// action is what the walk does after a failed attempt.
type action uint8

const (
	// actRetry retries the same target when retries remain, else fails over.
	actRetry action = iota
	// actFailover goes to the next target at once.
	actFailover
	// actStop answers the caller with this failure now.
	actStop
)

// effect is what a failed attempt does to the target's health.
type effect uint8

const (
	// effFailed counts against the target (and may start a cooldown).
	effFailed effect = iota
	// effNeutral says nothing about the target: caller-side problems.
	effNeutral
)

// Reasons recorded as status_reason.
const (
	reasonTransport    = "transport_error"
	reasonTimeout      = "request_timeout"
	reasonDecode       = "upstream_decode_error"
	reasonInBand       = "upstream_in_band_error"
	reasonAuth         = "upstream_auth_failure"
	reasonForbidden    = "upstream_forbidden"
	reasonNotFound     = "upstream_model_not_found"
	reasonUpTimeout    = "upstream_request_timeout"
	reasonRateLimited  = "upstream_rate_limited"
	reasonServerError  = "upstream_server_error"
	reasonOverloaded   = "upstream_overloaded"
	reasonStatusFailed = "upstream_status_failure"
)

// failure is one failed attempt, classified once: what the walk does next,
// what it does to the target's health, and what the caller gets if it is
// the last one.
type failure struct {
	label    string // x-aisix-attempts outcome: a status code or a class
	action   action
	effect   effect
	reason   string        // status_reason
	cooldown time.Duration // cooldown to arm; 0 for none
	wait     time.Duration // for actRetry: an upstream Retry-After to wait out

	// msg is safe to show callers and the dashboard: it never holds
	// upstream text that could name internal hosts.
	msg        string
	status     int
	errType    string
	code       string // the OpenAI envelope's code, when there is one
	retryAfter string // Retry-After of the final answer
	// body, when set, is an upstream 4xx body returned untouched.
	body        []byte
	contentType string

	clientGone bool
	// recorded: the attempts that failed were recorded as they ended (a
	// hedged stream's two).
	recorded bool
}

// Causes that end an attempt's context.
var (
	errAttemptTimeout = errors.New("attempt timed out")
	errBudget         = errors.New("routing budget exhausted")
	errNoHeaders      = errors.New("no response headers")
	errNoFirstChunk   = errors.New("no first chunk")
	errStalled        = errors.New("stream stalled")
)

// isTimeout reports whether err is a deadline or timeout error.
func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// errorFailure classifies an error from the transport or from reading an
// upstream body.
func (c *call) errorFailure(t *routing.Target, actx context.Context, err error) *failure {
	if c.r.Context().Err() != nil {
		return &failure{clientGone: true, action: actStop, effect: effNeutral}
	}
	switch context.Cause(actx) {
	case errBudget:
		return c.budgetFailure()
	case errAttemptTimeout:
		return timeoutFailure(t, "upstream request timed out after "+ms(t.Timeout))
	case errNoHeaders:
		return timeoutFailure(t, "upstream sent no response headers within "+ms(t.StreamHeaderTimeout))
	case errNoFirstChunk:
		return timeoutFailure(t, "upstream sent no content within "+ms(t.StreamFirstTimeout))
	case errStalled:
		return timeoutFailure(t, "upstream sent nothing for "+ms(t.StreamIdleTimeout))
	}
	text := provider.TransportErrorText(err)
	f := &failure{
		label: "transport_error", action: actRetry, reason: reasonTransport,
		msg: "transport error: " + text, status: http.StatusBadGateway, errType: "transport_error",
	}
	if text == "connect timeout" {
		// A host that does not answer a SYN will not answer the next one
		// either: fail over at once instead of waiting again.
		f.action = actFailover
	}
	return f.coolIf(t.Cooldown.OnTransport, t)
}

// coolIf gives f the target's default cooldown when on (one of the
// target's trigger switches) is set, and returns f.
func (f *failure) coolIf(on bool, t *routing.Target) *failure {
	if on {
		f.cooldown = t.Cooldown.Length(0, false)
	}
	return f
}

// timeoutFailure is a silent upstream: no same-target retry, fail over.
func timeoutFailure(t *routing.Target, msg string) *failure {
	f := &failure{
		label: "timeout", action: actFailover, reason: reasonTimeout,
		msg: msg, status: http.StatusGatewayTimeout, errType: "timeout",
	}
	return f.coolIf(t.Cooldown.OnTimeout, t)
}

// budgetFailure ends the walk: the routing timeout has run out. That is
// nobody's fault, so it says nothing about the target that happened to be
// running: no failure counted, no cooldown.
func (c *call) budgetFailure() *failure {
	f := &failure{
		label: "timeout", action: actStop, reason: reasonTimeout, effect: effNeutral,
		msg: "request timed out after " + ms(c.model.Group.Timeout) + " (routing timeout)", status: http.StatusGatewayTimeout, errType: "timeout",
	}
	return f
}

func decodeFailure(t *routing.Target, msg string) *failure {
	f := &failure{
		label: "upstream_decode_error", action: actRetry, reason: reasonDecode,
		msg: msg, status: http.StatusBadGateway, errType: "upstream_decode_error",
	}
	return f.coolIf(t.Cooldown.OnTransport, t)
}

// streamAbortFailure is a stream that failed before its first content.
func streamAbortFailure(t *routing.Target, msg string) *failure {
	f := &failure{
		label: "stream_aborted", action: actRetry, reason: reasonTransport,
		msg: msg, status: http.StatusBadGateway, errType: "stream_aborted",
	}
	return f.coolIf(t.Cooldown.OnTransport, t)
}

// inBandFailure is an error event in an upstream stream, classified by
// the adapter. Before commit, a retryable class (overloaded, rate limited,
// a server error, or a wire that does not say) retries and fails over; a
// class about the target's configuration fails over at once; a class
// about the request ends the walk with a 400, as the same answer as a
// status would.
func inBandFailure(t *routing.Target, e *provider.Failure) *failure {
	f := &failure{
		label: "in_band_error", action: actRetry, reason: reasonInBand,
		msg: "upstream stream reported an error", status: http.StatusBadGateway, errType: "upstream_error",
	}
	switch e.Class {
	case provider.ClassOverloaded:
		f.reason, f.msg = reasonOverloaded, "upstream stream reported an error (overloaded)"
	case provider.ClassRateLimited:
		f.reason, f.msg, f.action = reasonRateLimited, "upstream stream reported an error (rate limited)", actFailover
	case provider.ClassAuth, provider.ClassForbidden, provider.ClassNotFound, provider.ClassBilling:
		f.action, f.msg = actFailover, "upstream stream reported an error ("+e.Class.String()+")"
	case provider.ClassContextLength:
		f.action, f.effect = actFailover, effNeutral
		f.status, f.errType, f.msg = http.StatusBadRequest, "invalid_request_error", "the prompt does not fit the model's context window"
		return f
	case provider.ClassBadRequest, provider.ClassContentPolicy:
		f.action, f.effect = actStop, effNeutral
		f.status, f.errType = http.StatusBadRequest, "invalid_request_error"
		if msg := provider.RedactErrorMessage(e.Message); msg != "" {
			f.msg = msg
		}
		return f
	}
	return f.coolIf(t.Cooldown.OnTransport, t)
}

// translateFailure is a caller request the target's wire cannot carry
// (a field the adapter cannot translate). It says nothing about the
// target; the next one may speak the caller's wire.
func translateFailure(err error) *failure {
	return &failure{
		label: "unsupported_request", action: actFailover, effect: effNeutral,
		msg: "the request cannot be sent to this target: " + err.Error(), status: http.StatusBadRequest, errType: "invalid_request_error",
	}
}

// credentialFailure is an attempt that could not get its credential (an
// Entra ID token request failed): the target's configuration, so the walk
// moves on and the target cools down as for a 401.
func (c *call) credentialFailure(t *routing.Target, actx context.Context, err error) *failure {
	if c.r.Context().Err() != nil {
		return &failure{clientGone: true, action: actStop, effect: effNeutral}
	}
	if context.Cause(actx) == errBudget {
		// The routing timeout ran out while the token request was
		// pending: nobody's fault, as for any attempt.
		return c.budgetFailure()
	}
	f := &failure{
		label: "credential_error", action: actFailover, reason: reasonAuth,
		msg: "could not get a credential for the upstream: " + credentialText(err), status: http.StatusBadGateway, errType: "upstream_error",
	}
	if t.Cooldown.Triggers(http.StatusUnauthorized) {
		f.cooldown = t.Cooldown.Length(0, false)
	}
	return f
}

// statusFailure classifies an upstream non-2xx answer by whose fault it
// is. A status that says something about the target (401, 403, 404, 408,
// 429, 5xx and every other 4xx but the three below) moves the walk on: the
// next target may well answer. A status about the request itself (400
// other than a context-length overflow, 413, 422: a bad parameter, a prompt
// too large, a content-policy refusal) is returned to the caller at once;
// another target would refuse it too. A status that arms a cooldown always
// moves the walk on, whatever its class, except a 429 in a group that set
// retry_on_429: false. body is only valid during the call; a passed-on
// body is rebuilt, never echoed (see sanitizeErrorBody).
func (c *call) statusFailure(t *routing.Target, resp *http.Response, body []byte) *failure {
	code := resp.StatusCode
	var cls provider.Class
	if hc, ok := t.Endpoint.(provider.HeaderClassifier); ok {
		cls = hc.ClassifyResponse(code, resp.Header, body)
	} else {
		cls = t.Endpoint.Classify(code, body)
	}
	if cr, ok := t.Endpoint.(provider.CredentialRefuser); ok && cls == provider.ClassAuth && resp.Request != nil {
		cr.CredentialRefused(resp.Request.Header)
	}
	ra, hasRA := provider.ParseRetryAfter(resp.Header.Get("Retry-After"), c.s.now())
	f := &failure{label: strconv.Itoa(code), status: code, reason: statusReason(code)}
	switch {
	case cls == provider.ClassOverloaded:
		f.reason = reasonOverloaded
	case cls == provider.ClassAuth && code == http.StatusForbidden:
		// A refused credential reported as a 403 (Bedrock's
		// UnrecognizedClientException, a bad signature): the credential,
		// not the model access.
		f.reason = reasonAuth
	}
	passthrough := func() {
		f.body = t.Endpoint.ErrorBody(code, body)
		f.contentType = "application/json"
		if hasRA {
			f.retryAfter = retryAfterSeconds(ra)
		}
	}
	g := c.model.Group
	optedOut429 := false
	switch {
	case code == http.StatusTooManyRequests:
		passthrough()
		switch {
		case g != nil && !g.RetryOn429:
			f.action, optedOut429 = actStop, true
		case hasRA && ra <= maxShortRetryAfter && ra < c.budgetLeft():
			f.action, f.wait = actRetry, max(ra, time.Millisecond)
		default:
			f.action = actFailover
		}
	case g != nil && g.FallbackOn(code):
		f.action = actRetry
		if code < 500 {
			passthrough()
		}
	case code >= 500, code == http.StatusRequestTimeout:
		f.action = actRetry
	case cls == provider.ClassContextLength:
		// Never retried on the same model; the next target's window may
		// be larger. The caller's prompt is the cause: no cooldown.
		f.action, f.effect = actFailover, effNeutral
		passthrough()
	case cls == provider.ClassAuth && callerFault(code):
		// A refused credential reported as a 400 (Gemini's
		// API_KEY_INVALID): the target's configuration, as a 401 is.
		f.action, f.reason = actFailover, reasonAuth
		if t.Cooldown.Triggers(http.StatusUnauthorized) {
			f.effect, f.cooldown = effFailed, t.Cooldown.Length(0, false)
		}
	case cls == provider.ClassBilling && callerFault(code):
		// The account's billing or region refused as a 400 (Gemini's
		// FAILED_PRECONDITION: billing not enabled, free tier not offered
		// where the gateway runs): the target's, as a 403 is.
		f.action, f.reason = actFailover, reasonForbidden
		if t.Cooldown.Triggers(http.StatusForbidden) {
			f.effect, f.cooldown = effFailed, t.Cooldown.Length(0, false)
		}
	case callerFault(code), cls == provider.ClassContentPolicy:
		f.action, f.effect = actStop, effNeutral
		passthrough()
	case code >= 400:
		// The target's configuration: its credentials (401), its access to
		// the model or region (403), the model itself (404), billing
		// (402), a retired model (410). A retry on it is pointless.
		f.action = actFailover
	default:
		f.action = actRetry // 1xx/3xx: not a usable answer
	}
	if f.body == nil {
		f.errType = "upstream_error"
		f.status = http.StatusBadGateway
		switch code {
		case http.StatusUnauthorized:
			f.msg = "upstream rejected the provider credentials (401)"
		case http.StatusForbidden:
			f.msg = "upstream refused access to the model (403)"
			if f.reason == reasonAuth {
				f.msg = "upstream rejected the provider credentials (403)"
			}
		case http.StatusNotFound:
			f.msg = "upstream does not know the model (404)"
		default:
			f.msg = "upstream returned " + strconv.Itoa(code)
		}
	} else {
		f.msg = "upstream returned " + strconv.Itoa(code)
	}
	if t.Cooldown.Triggers(code) {
		f.effect = effFailed
		f.cooldown = t.Cooldown.Length(ra, hasRA)
		if f.action == actStop && !optedOut429 {
			f.action = actFailover
		}
	}
	return f
}

// callerFault reports whether an upstream status is about the caller's
// request rather than the target.
func callerFault(code int) bool {
	switch code {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return true
	}
	return false
}

func statusReason(code int) string {
	switch {
	case code == http.StatusUnauthorized:
		return reasonAuth
	case code == http.StatusForbidden:
		return reasonForbidden
	case code == http.StatusNotFound:
		return reasonNotFound
	case code == http.StatusRequestTimeout:
		return reasonUpTimeout
	case code == http.StatusTooManyRequests:
		return reasonRateLimited
	case code >= 500:
		return reasonServerError
	}
	return reasonStatusFailed
}

func ms(d time.Duration) string {
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

// credentialText says in a few words why a credential could not be had:
// the adapter's own words ("entra id token request refused (401)"), which
// name no secret and quote no token endpoint, with its package prefix
// and any Go error chain after a colon left out.
func credentialText(err error) string {
	if err == nil {
		return "token request failed"
	}
	msg := err.Error()
	if pkg, rest, ok := strings.Cut(msg, ": "); ok && !strings.Contains(pkg, " ") {
		msg = rest // "azure: …", "vertex: …"
	}
	if i := strings.Index(msg, ": "); i >= 0 {
		msg = msg[:i]
	}
	if msg = provider.RedactErrorMessage(msg); msg == "" {
		return "token request failed"
	}
	return msg
}
