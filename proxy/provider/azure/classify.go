package azure

import (
	"encoding/json"
	"net/http"
	"strings"
)

// Class is what an Azure OpenAI response status and error body mean for
// the caller and for failover.
type Class int

// Classes of an Azure OpenAI response.
const (
	// ClassOK is a 2xx response.
	ClassOK Class = iota
	// ClassRateLimited is a 429 (token or request rate, or quota).
	ClassRateLimited
	// ClassAuth is a 401: a wrong api-key or token, or the wrong endpoint.
	ClassAuth
	// ClassForbidden is a 403: network rules, or a blocked resource.
	ClassForbidden
	// ClassNotFound is a 404, such as DeploymentNotFound.
	ClassNotFound
	// ClassContentPolicy is a 400 content_filter (ResponsibleAIPolicyViolation):
	// the prompt was filtered. It goes back to the caller and is not
	// failed over: another deployment would filter it too.
	ClassContentPolicy
	// ClassContextLength is a 400 context_length_exceeded.
	ClassContextLength
	// ClassBadRequest is any other 4xx.
	ClassBadRequest
	// ClassServer is a 5xx.
	ClassServer
)

var classNames = [...]string{"ok", "rate_limited", "auth", "forbidden", "not_found", "content_policy", "context_length", "bad_request", "server"}

func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "unknown"
	}
	return classNames[c]
}

// Retryable reports whether another attempt (on this deployment or
// another) may succeed: rate limits and server errors.
func (c Class) Retryable() bool { return c == ClassRateLimited || c == ClassServer }

// errorEnvelope is Azure's error body:
//
//	{"error":{"code":"content_filter","message":"…","param":"prompt","status":400,
//	  "innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{…}}}}
//
// code is a string in most answers and a number in some (429, 401).
type errorEnvelope struct {
	Error struct {
		Code       json.RawMessage `json:"code"`
		InnerError struct {
			Code json.RawMessage `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// Classify maps an Azure OpenAI response to a Class from its status and,
// for a 400, the error code of its body.
func Classify(status int, body []byte) Class {
	switch {
	case status >= 200 && status < 300:
		return ClassOK
	case status == http.StatusTooManyRequests:
		return ClassRateLimited
	case status == http.StatusUnauthorized:
		return ClassAuth
	case status == http.StatusForbidden:
		return ClassForbidden
	case status == http.StatusNotFound:
		return ClassNotFound
	case status >= 500:
		return ClassServer
	case status == http.StatusBadRequest:
		code, inner := errorCodes(body)
		switch {
		case strings.EqualFold(code, "content_filter") || strings.EqualFold(inner, "ResponsibleAIPolicyViolation"):
			return ClassContentPolicy
		case code == "context_length_exceeded":
			return ClassContextLength
		}
	}
	return ClassBadRequest
}

// ErrorCode returns the error.code of an Azure error body ("" if none),
// such as DeploymentNotFound or content_filter.
func ErrorCode(body []byte) string {
	code, _ := errorCodes(body)
	return code
}

func errorCodes(body []byte) (code, inner string) {
	var env errorEnvelope
	if json.Unmarshal(body, &env) != nil {
		return "", ""
	}
	return codeString(env.Error.Code), codeString(env.Error.InnerError.Code)
}

// codeString returns a JSON string or number code as text.
func codeString(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}
