package azure

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// Class is provider.Class: Classify maps Azure's statuses and error codes
// into the classes every adapter shares.
type Class = provider.Class

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
		return provider.ClassOK
	case status == http.StatusTooManyRequests:
		return provider.ClassRateLimited
	case status == http.StatusUnauthorized:
		return provider.ClassAuth
	case status == http.StatusForbidden:
		return provider.ClassForbidden
	case status == http.StatusNotFound:
		return provider.ClassNotFound
	case status >= 500:
		return provider.ClassServer
	case status == http.StatusBadRequest:
		code, inner := errorCodes(body)
		switch {
		case strings.EqualFold(code, "content_filter") || strings.EqualFold(inner, "ResponsibleAIPolicyViolation"):
			return provider.ClassContentPolicy
		case code == "context_length_exceeded":
			return provider.ClassContextLength
		}
	}
	return provider.ClassBadRequest
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
