package anthropic

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// Class is provider.Class; the names below are the classes this wire
// produces.
type Class = provider.Class

// Classes an Anthropic failure falls into (see provider.Class).
const (
	Unknown       = provider.ClassUnknown
	RateLimited   = provider.ClassRateLimited
	Overloaded    = provider.ClassOverloaded // 529 (or 503) overloaded_error
	Auth          = provider.ClassAuth
	Forbidden     = provider.ClassForbidden
	NotFound      = provider.ClassNotFound
	ContextLength = provider.ClassContextLength
	ContentPolicy = provider.ClassContentPolicy
	BadRequest    = provider.ClassBadRequest // 413 request_too_large too
	Billing       = provider.ClassBilling    // 402, or a 429 enforced_spend_limit_reached
	Timeout       = provider.ClassTimeout    // 504 timeout_error
	Server        = provider.ClassServer
)

// Failure is a classified upstream failure: a non-2xx answer or an
// in-band stream error event (see provider.Failure).
type Failure = provider.Failure

// envelope is Anthropic's error body: {"type":"error","error":{"type","message"}}.
type envelope struct {
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
		Details struct {
			ErrorCode string `json:"error_code"`
		} `json:"details"`
	} `json:"error"`
}

// spendLimit is the error_code of a 429 that a retry cannot clear: the
// organisation's monthly spend limit.
const spendLimit = "enforced_spend_limit_reached"

func parseEnvelope(body []byte) (typ, msg string) {
	var env envelope
	if json.Unmarshal(body, &env) != nil {
		return "", ""
	}
	if env.Error.Type == "rate_limit_error" && env.Error.Details.ErrorCode == spendLimit {
		return "billing_error", env.Error.Message
	}
	return env.Error.Type, env.Error.Message
}

// Classify reads an upstream non-2xx answer (status and body) or, with
// status 0, an in-band error event's data. The Anthropic error type
// decides when it is known, then the status. The message is the
// upstream's own: redact it before showing it to anyone.
func Classify(status int, body []byte) (Class, string) {
	typ, msg := parseEnvelope(body)
	return classify(status, typ, msg), msg
}

// ClassifyAs is Classify for an error whose Anthropic type and message
// were read elsewhere (a gateway in front of Claude that wraps errors in
// its own envelope, such as Vertex AI).
func ClassifyAs(status int, typ, msg string) Class { return classify(status, typ, msg) }

func classify(status int, typ, msg string) Class {
	switch typ {
	case "rate_limit_error":
		return RateLimited
	case "overloaded_error":
		return Overloaded
	case "authentication_error":
		return Auth
	case "permission_error":
		return Forbidden
	case "not_found_error":
		return NotFound
	case "request_too_large":
		return BadRequest
	case "billing_error":
		return Billing
	case "timeout_error":
		return Timeout
	case "api_error":
		return Server
	case "invalid_request_error":
		return invalidRequest(msg)
	}
	switch {
	case status == 429:
		return RateLimited
	case status == 529 || status == 503:
		return Overloaded
	case status == 401:
		return Auth
	case status == 403:
		return Forbidden
	case status == 404:
		return NotFound
	case status == 402:
		return Billing
	case status == 504 || status == 408:
		return Timeout
	case status >= 500:
		return Server
	case status >= 400:
		return invalidRequest(msg)
	}
	return Unknown
}

func invalidRequest(msg string) Class {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "prompt is too long"), strings.Contains(m, "exceeds the maximum"),
		strings.Contains(m, "context window"), strings.Contains(m, "context length"):
		return ContextLength
	case strings.Contains(m, "content filtering"), strings.Contains(m, "content policy"):
		return ContentPolicy
	}
	return BadRequest
}

// OpenAIError rebuilds an upstream error answer as the OpenAI envelope the
// caller gets: {"error":{"message","type","param":null,"code"}}, with the
// Anthropic type translated to OpenAI terms. A 4xx keeps the upstream's
// message with provider.RedactErrorMessage applied; a 5xx, an overload or
// a timeout says only "upstream returned <status>", so internal details do
// not leak.
func OpenAIError(status int, body []byte) []byte {
	typ, msg := parseEnvelope(body)
	return OpenAIErrorAs(status, typ, msg)
}

// OpenAIErrorAs is OpenAIError for an error whose Anthropic type and
// message were read elsewhere (see ClassifyAs).
func OpenAIErrorAs(status int, typ, msg string) []byte {
	c := classify(status, typ, msg)
	otyp, code := provider.OpenAIErrorType(c)
	if status >= 500 || otyp == "upstream_error" {
		msg = ""
	}
	msg = provider.RedactErrorMessage(msg)
	if msg == "" {
		msg = "upstream returned " + strconv.Itoa(status)
	}
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = appendString(b, msg)
	b = append(b, `,"type":`...)
	b = appendString(b, otyp)
	b = append(b, `,"param":null,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, code)
	}
	return append(b, "}}"...)
}
