package bedrock

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// errorBody is Bedrock's error answer: {"message":"…"} (some services
// spell it "Message"), with the error type in the x-amzn-ErrorType header
// and sometimes in "__type".
type errorBody struct {
	Message  string `json:"message"`
	MessageU string `json:"Message"`
	Type     string `json:"__type"`
}

func parseError(body []byte) (typ, msg string) {
	var e errorBody
	if json.Unmarshal(body, &e) != nil {
		return "", ""
	}
	msg = e.Message
	if msg == "" {
		msg = e.MessageU
	}
	return e.Type, msg
}

// errorType normalises an AWS error type: "ThrottlingException:http://…"
// and "com.amazon…#ThrottlingException" become "throttlingexception".
func errorType(t string) string {
	if i := strings.IndexByte(t, ':'); i >= 0 {
		t = t[:i]
	}
	if i := strings.LastIndexByte(t, '#'); i >= 0 {
		t = t[i+1:]
	}
	return strings.ToLower(strings.TrimSpace(t))
}

// Classify reads a Bedrock failure: an HTTP answer (status, the
// x-amzn-ErrorType header, the body) or, with status 0, an in-stream
// exception (its :exception-type and payload). The type decides when it is
// known, then the status. The message is the upstream's own: redact it
// before showing it to anyone.
func Classify(status int, typ string, body []byte) (provider.Class, string) {
	btyp, msg := parseError(body)
	if typ == "" {
		typ = btyp
	}
	return classify(status, errorType(typ), msg), msg
}

func classify(status int, typ, msg string) provider.Class {
	switch typ {
	case "throttlingexception", "toomanyrequestsexception", "servicequotaexceededexception":
		return provider.ClassRateLimited
	case "serviceunavailableexception", "modelnotreadyexception":
		return provider.ClassOverloaded
	case "accessdeniedexception":
		return provider.ClassForbidden
	case "unrecognizedclientexception", "expiredtokenexception", "invalidsignatureexception",
		"incompletesignatureexception", "missingauthenticationtokenexception":
		return provider.ClassAuth
	case "resourcenotfoundexception":
		return provider.ClassNotFound
	case "modeltimeoutexception":
		return provider.ClassTimeout
	case "internalserverexception", "modelstreamerrorexception", "modelerrorexception":
		return provider.ClassServer
	case "validationexception":
		return invalidRequest(msg)
	}
	switch {
	case status == 429:
		return provider.ClassRateLimited
	case status == 503:
		return provider.ClassOverloaded
	case status == 401:
		return provider.ClassAuth
	case status == 403:
		// UnrecognizedClientException, ExpiredTokenException and a bad
		// signature are 403s too: the credential, not the model access.
		if m := strings.ToLower(msg); strings.Contains(m, "signature") || strings.Contains(m, "security token") ||
			strings.Contains(m, "expired") || strings.Contains(m, "bearer token") || strings.Contains(m, "api key") ||
			strings.Contains(m, "authentication") || strings.Contains(m, "credential") {
			return provider.ClassAuth
		}
		return provider.ClassForbidden
	case status == 404:
		return provider.ClassNotFound
	case status == 408 || status == 504:
		return provider.ClassTimeout
	case status == 424:
		// ModelErrorException: the model failed processing the request.
		return provider.ClassServer
	case status >= 500:
		return provider.ClassServer
	case status >= 400:
		return invalidRequest(msg)
	case status == 0:
		return provider.ClassServer
	}
	return provider.ClassUnknown
}

func invalidRequest(msg string) provider.Class {
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "too long"), strings.Contains(m, "too many tokens"), strings.Contains(m, "context window"),
		strings.Contains(m, "context length"), strings.Contains(m, "exceeds the maximum"), strings.Contains(m, "max_tokens_to_sample"):
		return provider.ClassContextLength
	case strings.Contains(m, "content filter"), strings.Contains(m, "guardrail"), strings.Contains(m, "content policy"):
		return provider.ClassContentPolicy
	}
	return provider.ClassBadRequest
}

// OpenAIError rebuilds a Bedrock error answer as the OpenAI envelope
// {"error":{"message","type","param":null,"code"}}. A 4xx keeps the
// message with provider.RedactErrorMessage applied (ARNs and account ids
// removed); a 5xx, an overload or a timeout says only "upstream returned
// <status>".
func OpenAIError(status int, typ string, body []byte) []byte {
	c, msg := Classify(status, typ, body)
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
	b = provider.AppendJSONString(b, msg)
	b = append(b, `,"type":`...)
	b = provider.AppendJSONString(b, otyp)
	b = append(b, `,"param":null,"code":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = provider.AppendJSONString(b, code)
	}
	return append(b, "}}"...)
}
