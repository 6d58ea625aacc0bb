package vertex

import (
	"bytes"
	"encoding/json"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/anthropic"
)

// envelope is either error body Vertex AI answers with: Google's
// {"error":{"code":429,"message","status":"RESOURCE_EXHAUSTED"}} for a
// failure of the platform (quota, credential, permission, an unknown
// model), or Anthropic's {"type":"error","error":{"type","message"}} for
// one of Claude's own. Streaming errors may come as a one-element array.
type envelope struct {
	Error struct {
		Type    string `json:"type"`
		Status  string `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// googleTypes maps a google.rpc status to the Anthropic error type of the
// same meaning.
var googleTypes = map[string]string{
	"RESOURCE_EXHAUSTED":  "rate_limit_error",
	"UNAVAILABLE":         "overloaded_error",
	"UNAUTHENTICATED":     "authentication_error",
	"PERMISSION_DENIED":   "permission_error",
	"NOT_FOUND":           "not_found_error",
	"INVALID_ARGUMENT":    "invalid_request_error",
	"FAILED_PRECONDITION": "invalid_request_error",
	"OUT_OF_RANGE":        "invalid_request_error",
	"DEADLINE_EXCEEDED":   "timeout_error",
	"INTERNAL":            "api_error",
	"UNKNOWN":             "api_error",
}

// parse reads either envelope into an Anthropic error type and message.
func parse(body []byte) (typ, msg string) {
	var env envelope
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '[' {
		var list []envelope
		if json.Unmarshal(b, &list) != nil || len(list) == 0 {
			return "", ""
		}
		env = list[0]
	} else if json.Unmarshal(b, &env) != nil {
		return "", ""
	}
	if env.Error.Type != "" {
		// Anthropic's envelope: its own reading (a spend-limit 429 is
		// billing).
		c, m := anthropic.Classify(0, body)
		if c == provider.ClassBilling {
			return "billing_error", m
		}
		return env.Error.Type, env.Error.Message
	}
	return googleTypes[env.Error.Status], env.Error.Message
}

// Classify reads a Vertex AI non-2xx answer: the error type decides when
// it is known (an Anthropic type, or a Google status), then the HTTP
// status (429 rate limited, 529 and 503 overloaded, 401, 403, 404, 400
// the caller's unless the message says the prompt is too long). The
// message is the upstream's own: redact it before showing it to anyone.
func Classify(status int, body []byte) (provider.Class, string) {
	typ, msg := parse(body)
	return anthropic.ClassifyAs(status, typ, msg), msg
}

// OpenAIError rebuilds a Vertex AI error answer as the OpenAI envelope the
// caller gets (see anthropic.OpenAIError): a 4xx keeps its message,
// redacted; a 5xx says only "upstream returned <status>".
func OpenAIError(status int, body []byte) []byte {
	typ, msg := parse(body)
	return anthropic.OpenAIErrorAs(status, typ, msg)
}
