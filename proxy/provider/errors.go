package provider

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxErrorMessage caps the message of a rebuilt upstream error.
const maxErrorMessage = 1024

// SanitizeErrorBody rebuilds an upstream error body into OpenAI's error
// envelope for the caller: the upstream's type, code and param are kept
// (when they are a string, a number or null), its message is kept with
// anything that identifies the gateway's account or network removed (see
// RedactErrorMessage), and everything else is dropped. A body that is not
// an error envelope becomes a plain "upstream returned <status>" error.
// Upstream error bodies are never echoed verbatim: a provider's message can
// name the organisation, the project, part of the key, or the internal host
// that answered.
func SanitizeErrorBody(body []byte, status int) []byte {
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	var e struct {
		Message string          `json:"message"`
		Type    json.RawMessage `json:"type"`
		Code    json.RawMessage `json:"code"`
		Param   json.RawMessage `json:"param"`
	}
	msg := ""
	if json.Unmarshal(body, &env) == nil {
		switch {
		case len(env.Error) > 0 && env.Error[0] == '{':
			if json.Unmarshal(env.Error, &e) == nil {
				msg = e.Message
			}
		case len(env.Error) > 0 && env.Error[0] == '"':
			_ = json.Unmarshal(env.Error, &msg)
		default:
			msg = env.Message
		}
	}
	msg = RedactErrorMessage(msg)
	if msg == "" {
		msg = "upstream returned " + strconv.Itoa(status)
	}
	b := make([]byte, 0, 96+len(msg))
	b = append(b, `{"error":{"message":`...)
	b = AppendJSONString(b, msg)
	b = append(b, `,"type":`...)
	if typ := scalar(e.Type); typ != "null" {
		b = append(b, typ...)
	} else {
		b = AppendJSONString(b, defaultErrorType(status))
	}
	b = append(b, `,"param":`...)
	b = append(b, scalar(e.Param)...)
	b = append(b, `,"code":`...)
	b = append(b, scalar(e.Code)...)
	return append(b, "}}"...)
}

// scalar returns raw re-encoded when it is a JSON string, number or null,
// and "null" otherwise (objects, arrays, nothing).
func scalar(raw json.RawMessage) string {
	if len(raw) == 0 {
		return "null"
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil || len(s) > 128 {
			return "null"
		}
		return string(AppendJSONString(nil, RedactErrorMessage(s)))
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		var n json.Number
		if json.Unmarshal(raw, &n) != nil {
			return "null"
		}
		return n.String()
	}
	return "null"
}

func defaultErrorType(status int) string {
	switch {
	case status == 429:
		return "rate_limit_error"
	case status >= 500:
		return "upstream_error"
	}
	return "invalid_request_error"
}

// Patterns RedactErrorMessage removes, most specific first.
var redactions = []struct {
	re   *regexp.Regexp
	with string
}{
	// URLs, with any scheme: they name hosts, paths and sometimes keys.
	{regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]*[^\s"'<>.,;:!?)]`), "[url]"},
	// AWS ARNs (they name the account, region and resource) and bare
	// 12-digit AWS account ids.
	{regexp.MustCompile(`\barn:aws[a-z-]*:[^\s"'<>,;()]*`), "[arn]"},
	{regexp.MustCompile(`\b\d{12}\b`), "[id]"},
	// Key fragments: OpenAI-style sk-/pk-/rk- keys, masked or not
	// ("sk-abc***wxyz"), AWS access key ids, Google API keys, bearer tokens.
	{regexp.MustCompile(`\b(?:sk|pk|rk)-[A-Za-z0-9_*…\-]{3,}(?:\.[A-Za-z0-9_*…\-]+)*`), "[key]"},
	{regexp.MustCompile(`\b(?:AKIA|ASIA)[A-Z0-9]{12,}\b`), "[key]"},
	{regexp.MustCompile(`\bAIza[A-Za-z0-9_\-]{20,}`), "[key]"},
	{regexp.MustCompile(`(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]+`), "[key]"},
	// Organisation, project and user ids.
	{regexp.MustCompile(`\b(?:org|proj|user|acct)[-_][A-Za-z0-9]{4,}\b`), "[id]"},
	// IP addresses, with an optional port.
	{regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b`), "[host]"},
	// IPv6 addresses: three colons at least, so times (12:30:45) stay.
	{regexp.MustCompile(`\[?(?:[0-9a-fA-F]{0,4}:){3,7}[0-9a-fA-F]{1,4}\]?(?::\d+)?`), "[host]"},
	// Host names: dotted names ending in a letters-only label, with an
	// optional port ("inference-7.internal.corp:8443", "api.openai.com").
	// Model names such as gpt-3.5-turbo do not match: their last label has
	// a digit.
	{regexp.MustCompile(`\b(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}\b(?::\d+)?`), "[host]"},
}

// RedactErrorMessage removes from an upstream error message what would
// tell a caller about the gateway's provider account or network: URLs,
// key fragments, organisation and project ids, IP addresses and host
// names. It also drops control characters and caps the length.
func RedactErrorMessage(msg string) string {
	if msg == "" {
		return ""
	}
	if !utf8.ValidString(msg) {
		msg = strings.ToValidUTF8(msg, "\uFFFD")
	}
	msg = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, msg)
	for _, r := range redactions {
		msg = r.re.ReplaceAllString(msg, r.with)
	}
	if len(msg) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return strings.TrimSpace(msg)
}
