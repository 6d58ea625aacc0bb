package messages

import (
	"encoding/json"
	"testing"
)

// FuzzCountTokens: any count_tokens body is estimated (non-negative) or
// refused with an error.
func FuzzCountTokens(f *testing.F) {
	for _, s := range []string{`{"model":"m","messages":[{"role":"user","content":"hello"}]}`, `{"system":[{"type":"text","text":"s"}],"tools":[{"name":"f","input_schema":{}}]}`, `{}`, `[]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if n, err := CountTokensEstimate(body); err == nil && n < 0 {
			t.Fatalf("negative estimate %d", n)
		}
	})
}

// FuzzErrorBody: any OpenAI error body becomes Anthropic's error
// envelope, valid JSON.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":{"message":"m","type":"invalid_request_error"}}`, `x`, `{"error":null}`} {
		f.Add(400, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if out := ErrorBody(status, body); !json.Valid(out) {
			t.Fatalf("invalid envelope %q", out)
		}
	})
}
