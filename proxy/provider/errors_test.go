package provider

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestRedactErrorMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Incorrect API key provided: sk-proj-abc***wxyz. You can find your API key at https://platform.openai.com/account/api-keys.",
			"Incorrect API key provided: [key]. You can find your API key at [url]."},
		{"Rate limit reached for gpt-4o in organization org-AbCdEf123456 on tokens per min (TPM)",
			"Rate limit reached for gpt-4o in organization [id] on tokens per min (TPM)"},
		{"Project proj_Zz99Yy88 does not have access to model gpt-3.5-turbo", "Project [id] does not have access to model gpt-3.5-turbo"},
		{"upstream inference-7.internal.corp:8443 (10.1.2.3:8080) failed", "upstream [host] ([host]) failed"},
		{"dial fd00:ec2::254 refused at 12:30:45", "dial [host] refused at 12:30:45"},
		{"line\nbreak\x00", "line break"},
		{"This model's maximum context length is 128000 tokens.", "This model's maximum context length is 128000 tokens."},
	}
	for _, tt := range tests {
		if got := RedactErrorMessage(tt.in); got != tt.want {
			t.Errorf("RedactErrorMessage(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
	if got := RedactErrorMessage(strings.Repeat("é", 2000)); len(got) > maxErrorMessage+4 {
		t.Errorf("not capped: %d bytes", len(got))
	}
}

func TestSanitizeErrorBody(t *testing.T) {
	tests := []struct {
		name, body string
		status     int
		want       string
	}{
		{"openai envelope", `{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":"invalid_value","internal":{"host":"x"}}}`, 400,
			`{"error":{"message":"bad temperature","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`},
		{"numeric code", `{"error":{"message":"m","type":"t","code":400}}`, 400, `{"error":{"message":"m","type":"t","param":null,"code":400}}`},
		{"string error", `{"error":"no access from 10.0.0.1"}`, 403, `{"error":{"message":"no access from [host]","type":"invalid_request_error","param":null,"code":null}}`},
		{"not json", `<html>nginx at gw.internal.example</html>`, 429, `{"error":{"message":"upstream returned 429","type":"rate_limit_error","param":null,"code":null}}`},
		{"object code dropped", `{"error":{"message":"m","type":{"x":1},"code":["a"]}}`, 422, `{"error":{"message":"m","type":"invalid_request_error","param":null,"code":null}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeErrorBody([]byte(tt.body), tt.status)
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Errorf("not JSON: %s", got)
			}
		})
	}
}
