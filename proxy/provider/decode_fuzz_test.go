package provider

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter: an upstream's Retry-After (seconds or an HTTP
// date) is a non-negative, bounded wait or ignored; never a panic.
func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"0", "1.5", "120", "-1", "NaN", "+Inf", "1e308", "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 01 Jan 2026 12:00:05 GMT", " 3 ", ""} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := ParseRetryAfter(v, now)
		if ok && d < 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v, negative", v, d)
		}
		if !ok && d != 0 {
			t.Fatalf("ParseRetryAfter(%q) = %v without ok", v, d)
		}
	})
}

// FuzzDecodeUsage: an upstream's usage object (whole or scanned out of a
// chunk) never yields negative counts or panics.
func FuzzDecodeUsage(f *testing.F) {
	for _, s := range []string{`{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}`,
		`{"usage":{"input_tokens":1,"output_tokens":2,"input_tokens_details":{"cached_tokens":1}}}`,
		`{"prompt_tokens":-5}`, `{"prompt_tokens":1e99}`, `{"prompt_tokens":"3"}`, `null`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, u := range []func([]byte) (Usage, bool){DecodeUsage, ScanUsage} {
			got, _ := u(b)
			if got.Input < 0 || got.Output < 0 || got.Cached < 0 {
				t.Fatalf("negative usage %+v from %q", got, b)
			}
		}
	})
}

// FuzzSanitizeErrorBody: whatever an upstream answers with an error
// status, the caller gets OpenAI's error envelope, valid JSON with a
// message.
func FuzzSanitizeErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":{"message":"bad key sk-abc123","type":"invalid_request_error","code":null,"param":"model"}}`,
		`{"message":"nope"}`, `<html>502</html>`, `{"error":"just a string"}`, `{"error":{"code":429,"type":{"x":1}}}`, ``} {
		f.Add([]byte(s), 400)
	}
	f.Fuzz(func(t *testing.T, body []byte, status int) {
		out := SanitizeErrorBody(body, status)
		var env struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(out, &env); err != nil {
			t.Fatalf("invalid envelope %q from %q: %v", out, body, err)
		}
		if strings.TrimSpace(env.Error.Message) == "" {
			t.Fatalf("no message in %s", out)
		}
	})
}

// FuzzParseFields: the request fields the translators read themselves
// (stop, tool_choice) fail with an error or parse; never a panic.
func FuzzParseFields(f *testing.F) {
	for _, s := range []string{`"x"`, `["a","b"]`, `[]`, `null`, `"auto"`, `{"type":"function","function":{"name":"f"}}`, `{"type":"allowed_tools"}`, `[1]`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = ParseStop(raw)
		_, _ = ParseToolChoice(raw)
	})
}
