package messages

import (
	"encoding/json"
	"strconv"

	"github.com/aisix/aisix/proxy/provider"
)

// ErrorType is Anthropic's error type for an HTTP status: 400
// invalid_request_error, 401 authentication_error, 402 billing_error, 403
// permission_error, 404 not_found_error, 413 request_too_large, 429
// rate_limit_error, 500 api_error, 503 and 529 overloaded_error, 504
// timeout_error; any other 4xx is invalid_request_error and any other
// status api_error.
func ErrorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 402:
		return "billing_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 503, 529:
		return "overloaded_error"
	case 504:
		return "timeout_error"
	}
	if status >= 400 && status < 500 {
		return "invalid_request_error"
	}
	return "api_error"
}

// ErrorBody is Anthropic's error envelope,
// {"type":"error","error":{"type":…,"message":…}}, for an error the
// caller gets with status: the type from ErrorType, the message from
// openAIErrorBody when it is an OpenAI error envelope (the gateway's own,
// or an upstream's rebuilt by provider.SanitizeErrorBody; it is redacted
// again all the same), else "upstream returned <status>".
func ErrorBody(status int, openAIErrorBody []byte) []byte {
	var env struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	msg := ""
	if json.Unmarshal(openAIErrorBody, &env) == nil {
		msg = provider.RedactErrorMessage(env.Error.Message)
	}
	if msg == "" {
		msg = "upstream returned " + strconv.Itoa(status)
	}
	return appendError(make([]byte, 0, 64+len(msg)), ErrorType(status), msg)
}

func appendError(b []byte, typ, msg string) []byte {
	b = append(b, `{"type":"error","error":{"type":`...)
	b = appendString(b, typ)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	return append(b, "}}"...)
}
