package gemini

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// envelope is Google's error body:
// {"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}}.
type envelope struct {
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
		Details []struct {
			Reason string `json:"reason"`
		} `json:"details"`
	} `json:"error"`
}

// parseEnvelope reads the error's status, message and first detail
// reason. A streaming endpoint called without alt=sse wraps the body in
// an array; its first element is read.
func parseEnvelope(body []byte) (status, msg, reason string, ok bool) {
	body = bytes.TrimSpace(body)
	var env envelope
	if len(body) > 0 && body[0] == '[' {
		var arr []envelope
		if json.Unmarshal(body, &arr) != nil || len(arr) == 0 {
			return "", "", "", false
		}
		env = arr[0]
	} else if json.Unmarshal(body, &env) != nil {
		return "", "", "", false
	}
	if env.Error == nil {
		return "", "", "", false
	}
	for _, d := range env.Error.Details {
		if d.Reason != "" {
			reason = d.Reason
			break
		}
	}
	return env.Error.Status, env.Error.Message, reason, true
}

// Classify reads an upstream non-2xx answer (status and body) or, with
// status 0, an in-band error object. The Google status decides when it is
// known, then the HTTP status:
//
//   - RESOURCE_EXHAUSTED / 429 → rate limited;
//   - UNAVAILABLE / 503 → overloaded (Gemini's 503 says "The model is
//     overloaded"; it is retried and fails over like Anthropic's 529);
//   - INVALID_ARGUMENT / 400 → bad request, or context length when the
//     message says the input token count exceeds the maximum; an
//     API_KEY_INVALID reason (which Google sends as a 400) → auth;
//   - FAILED_PRECONDITION (free tier not offered in the region, billing
//     not enabled) → billing;
//   - PERMISSION_DENIED / 403 → forbidden; UNAUTHENTICATED / 401 → auth;
//     NOT_FOUND / 404 → not found; DEADLINE_EXCEEDED / 504 → timeout;
//     INTERNAL / 500 and any other 5xx → server.
//
// The message is the upstream's own: redact it before showing it.
func Classify(status int, body []byte) (provider.Class, string) {
	st, msg, reason, _ := parseEnvelope(body)
	return classify(status, st, msg, reason), msg
}

func classify(code int, status, msg, reason string) provider.Class {
	if reason == "API_KEY_INVALID" || reason == "API_KEY_EXPIRED" {
		return provider.ClassAuth
	}
	switch status {
	case "RESOURCE_EXHAUSTED":
		return provider.ClassRateLimited
	case "UNAVAILABLE":
		return provider.ClassOverloaded
	case "INVALID_ARGUMENT", "OUT_OF_RANGE":
		return invalidRequest(msg)
	case "FAILED_PRECONDITION":
		return provider.ClassBilling
	case "PERMISSION_DENIED":
		return provider.ClassForbidden
	case "UNAUTHENTICATED":
		return provider.ClassAuth
	case "NOT_FOUND":
		return provider.ClassNotFound
	case "DEADLINE_EXCEEDED":
		return provider.ClassTimeout
	case "INTERNAL", "UNKNOWN", "DATA_LOSS":
		return provider.ClassServer
	}
	switch {
	case code == 429:
		return provider.ClassRateLimited
	case code == 503:
		return provider.ClassOverloaded
	case code == 401:
		return provider.ClassAuth
	case code == 403:
		return provider.ClassForbidden
	case code == 404:
		return provider.ClassNotFound
	case code == 504 || code == 408:
		return provider.ClassTimeout
	case code >= 500:
		return provider.ClassServer
	case code >= 400:
		return invalidRequest(msg)
	}
	return provider.ClassUnknown
}

func invalidRequest(msg string) provider.Class {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "input token count") && strings.Contains(m, "exceeds the maximum"),
		strings.Contains(m, "exceeds the maximum number of tokens"), strings.Contains(m, "context window"):
		return provider.ClassContextLength
	case strings.Contains(m, "api key not valid"), strings.Contains(m, "api key expired"):
		return provider.ClassAuth
	}
	return provider.ClassBadRequest
}

// OpenAIError rebuilds a Gemini error answer as the OpenAI envelope the
// caller gets: {"error":{"message","type","param":null,"code"}}. A 4xx
// keeps the upstream's message with provider.RedactErrorMessage applied;
// a 5xx, an overload or a timeout says only "upstream returned <status>".
func OpenAIError(status int, body []byte) []byte {
	st, msg, reason, _ := parseEnvelope(body)
	c := classify(status, st, msg, reason)
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
