package provider

import "strconv"

// Class is what an upstream failure means for the gateway, whatever the
// wire: every adapter classifies its provider's statuses and error bodies
// into these, and the failover loop decides on them.
type Class int

// Failure classes.
const (
	// ClassUnknown is a failure none of the other classes describe.
	ClassUnknown Class = iota
	// ClassOK is a 2xx answer.
	ClassOK
	// ClassRateLimited is a 429 (request or token rate, or quota); the
	// caller reads Retry-After.
	ClassRateLimited
	// ClassOverloaded is a provider saying it is overloaded (Anthropic's
	// 529 overloaded_error): retryable, fails over.
	ClassOverloaded
	// ClassAuth is a 401: the provider key's credential is refused.
	ClassAuth
	// ClassForbidden is a 403: project, region, network or model access.
	ClassForbidden
	// ClassNotFound is a 404, usually the model or deployment.
	ClassNotFound
	// ClassContextLength is a prompt that does not fit the model's context
	// window: the next target's window may be larger.
	ClassContextLength
	// ClassContentPolicy is a content-policy refusal: returned to the
	// caller, not failed over (another target would refuse it too).
	ClassContentPolicy
	// ClassBadRequest is any other 4xx the caller's request caused.
	ClassBadRequest
	// ClassBilling is a billing or spend-limit refusal (not retryable).
	ClassBilling
	// ClassTimeout is the provider's own timeout answer.
	ClassTimeout
	// ClassServer is a 5xx.
	ClassServer
)

var classNames = [...]string{"unknown", "ok", "rate_limited", "overloaded", "auth", "forbidden", "not_found",
	"context_length", "content_policy", "bad_request", "billing", "timeout", "server"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "class(" + strconv.Itoa(int(c)) + ")"
	}
	return classNames[c]
}

// Retryable reports whether another attempt (the same target later, or the
// next one) may succeed.
func (c Class) Retryable() bool {
	switch c {
	case ClassRateLimited, ClassOverloaded, ClassTimeout, ClassServer, ClassUnknown:
		return true
	}
	return false
}
