package anthropic

import (
	"testing"
)

func envelopeOf(typ, msg string) string {
	return `{"type":"error","error":{"type":"` + typ + `","message":"` + msg + `"}}`
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   Class
	}{
		{429, envelopeOf("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), RateLimited},
		{529, envelopeOf("overloaded_error", "Overloaded"), Overloaded},
		{503, `upstream connect error`, Overloaded},
		{401, envelopeOf("authentication_error", "invalid x-api-key"), Auth},
		{403, envelopeOf("permission_error", "Your API key does not have permission to use the specified resource."), Forbidden},
		{404, envelopeOf("not_found_error", "model: claude-nope"), NotFound},
		{400, envelopeOf("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"), ContextLength},
		{400, envelopeOf("invalid_request_error", "input length and `max_tokens` exceed context limit; the request exceeds the maximum"), ContextLength},
		{400, envelopeOf("invalid_request_error", "Your prompt does not fit the context window"), ContextLength},
		{400, envelopeOf("invalid_request_error", "Output blocked by content filtering policy"), ContentPolicy},
		{400, envelopeOf("invalid_request_error", "messages: field required"), BadRequest},
		{413, envelopeOf("request_too_large", "Request exceeds the maximum allowed number of bytes."), BadRequest},
		{429, `{"type":"error","error":{"type":"rate_limit_error","message":"spend limit reached","details":{"error_code":"enforced_spend_limit_reached"}},"request_id":"req_1"}`, Billing},
		{402, envelopeOf("billing_error", "credit balance too low"), Billing},
		{504, envelopeOf("timeout_error", "timed out"), Timeout},
		{500, envelopeOf("api_error", "Internal server error"), Server},
		{502, `<html>bad gateway</html>`, Server},
		{418, `not json`, BadRequest},
		{0, envelopeOf("overloaded_error", "Overloaded"), Overloaded},
		{0, `{}`, Unknown},
	}
	for _, tt := range tests {
		got, msg := Classify(tt.status, []byte(tt.body))
		if got != tt.want {
			t.Errorf("Classify(%d, %s) = %v, want %v", tt.status, tt.body, got, tt.want)
		}
		if tt.body[0] == '{' && tt.body != "{}" && msg == "" {
			t.Errorf("Classify(%d, %s): empty message", tt.status, tt.body)
		}
	}
	for _, c := range []Class{RateLimited, Overloaded, Server, Timeout} {
		if !c.Retryable() {
			t.Errorf("%v not retryable", c)
		}
	}
	for _, c := range []Class{Auth, Forbidden, NotFound, ContextLength, BadRequest, ContentPolicy, Billing} {
		if c.Retryable() {
			t.Errorf("%v retryable", c)
		}
	}
}

func TestOpenAIError(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{401, envelopeOf("authentication_error", "invalid x-api-key"),
			`{"error":{"message":"invalid x-api-key","type":"authentication_error","param":null,"code":null}}`},
		{403, envelopeOf("permission_error", "no access"),
			`{"error":{"message":"no access","type":"permission_denied","param":null,"code":null}}`},
		{429, envelopeOf("rate_limit_error", "slow down"),
			`{"error":{"message":"slow down","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`},
		{400, envelopeOf("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
			`{"error":{"message":"prompt is too long: 210000 tokens \u003e 200000 maximum","type":"invalid_request_error","param":null,"code":"context_length_exceeded"}}`},
		{400, envelopeOf("invalid_request_error", "see https://internal.example.com/x for org-abcdef12"),
			`{"error":{"message":"see [url] for [id]","type":"invalid_request_error","param":null,"code":null}}`},
		{529, envelopeOf("overloaded_error", "Overloaded on host 10.0.0.7"),
			`{"error":{"message":"upstream returned 529","type":"upstream_error","param":null,"code":null}}`},
		{500, envelopeOf("api_error", "stack trace"),
			`{"error":{"message":"upstream returned 500","type":"upstream_error","param":null,"code":null}}`},
		{404, `garbage`,
			`{"error":{"message":"upstream returned 404","type":"not_found_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		got := OpenAIError(tt.status, []byte(tt.body))
		jsonEqual(t, got, []byte(tt.want))
	}
}
