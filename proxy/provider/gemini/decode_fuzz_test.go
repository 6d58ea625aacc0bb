package gemini

import (
	"encoding/json"
	"testing"
)

// FuzzTranslateResponse: any generateContent answer fails with an error
// or becomes a valid chat completion.
func FuzzTranslateResponse(f *testing.F) {
	for _, s := range []string{`{"candidates":[{"content":{"parts":[{"text":"hi"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":1,"candidatesTokenCount":2}}`,
		`{"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}}}]}}]}`, `{"promptFeedback":{"blockReason":"SAFETY"}}`,
		`{"candidates":[{"finishReason":"SAFETY"}]}`, `{}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := TranslateResponse(body, "alias", 1)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, body)
		}
	})
}

// FuzzErrorBody: any error answer is classified and rebuilt as OpenAI's
// envelope, valid JSON.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}`,
		`[{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}]`, `x`} {
		f.Add(429, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		_, _ = Classify(status, body)
		if out := OpenAIError(status, body); !json.Valid(out) {
			t.Fatalf("invalid envelope %q", out)
		}
	})
}

// FuzzEmbed: any embeddings request translates or fails, and any answer
// becomes valid JSON or fails.
func FuzzEmbed(f *testing.F) {
	for _, s := range []string{`{"input":"hi"}`, `{"input":["a","b"],"dimensions":8}`, `{"embedding":{"values":[0.1]}}`, `{"embeddings":[{"values":[0.1,0.2]}]}`} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		if out, err := TranslateEmbedRequest(body, "text-embedding-004"); err == nil && !json.Valid(out) {
			t.Fatalf("invalid request %q", out)
		}
		if out, err := TranslateEmbedResponse(nil, body, "alias", b64); err == nil && !json.Valid(out) {
			t.Fatalf("invalid answer %q", out)
		}
	})
}
