package messages

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFromChatGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/response/*.openai.json")
	if len(ins) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".openai.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(in, ".openai.json") + ".anthropic.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := FromChat(body, "claude-sonnet-4-5")
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, got, want)
		})
	}
}

func TestFromChatNotChat(t *testing.T) {
	for _, in := range []string{``, `[]`, `{"id":"x"}`, `{"choices":[]}`, `{"choices":{}}`, `{"error":{"message":"x"}}`} {
		if _, err := FromChat([]byte(in), "a"); err != ErrNotChat {
			t.Errorf("%q: err = %v, want ErrNotChat", in, err)
		}
	}
}

func TestStopReason(t *testing.T) {
	for in, want := range map[string]string{"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
		"function_call": "tool_use", "content_filter": "refusal", "": "end_turn", "weird": "end_turn"} {
		if got := StopReason(in); got != want {
			t.Errorf("StopReason(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestErrorType(t *testing.T) {
	for status, want := range map[int]string{400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
		403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error", 500: "api_error",
		503: "overloaded_error", 529: "overloaded_error", 504: "timeout_error", 409: "invalid_request_error", 502: "api_error"} {
		if got := ErrorType(status); got != want {
			t.Errorf("ErrorType(%d) = %q, want %q", status, got, want)
		}
	}
}

func TestErrorBody(t *testing.T) {
	for _, c := range []struct {
		status int
		in     string
		want   string
	}{
		{429, `{"error":{"message":"Rate limit reached for gpt-4.1","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}`,
			`{"type":"error","error":{"type":"rate_limit_error","message":"Rate limit reached for gpt-4.1"}}`},
		{401, `{"error":{"message":"Incorrect API key provided: sk-proj-abc123xyz","type":"invalid_request_error"}}`,
			`{"type":"error","error":{"type":"authentication_error","message":"Incorrect API key provided: [key]"}}`},
		{529, `<html>overloaded</html>`, `{"type":"error","error":{"type":"overloaded_error","message":"upstream returned 529"}}`},
		{500, `{"error":"boom"}`, `{"type":"error","error":{"type":"api_error","message":"upstream returned 500"}}`},
		{400, ``, `{"type":"error","error":{"type":"invalid_request_error","message":"upstream returned 400"}}`},
	} {
		jsonEqual(t, ErrorBody(c.status, []byte(c.in)), []byte(c.want))
	}
}
