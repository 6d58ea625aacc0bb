package anthropic

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// FuzzTranslateResponse: any upstream body fails with an error or
// becomes a valid chat completion.
func FuzzTranslateResponse(f *testing.F) {
	outs, _ := filepath.Glob("testdata/response/*.json")
	for _, p := range outs {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	for _, s := range []string{`{"id":"m","type":"message","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":1,"output_tokens":2}}`,
		`{"content":[{"type":"tool_use","id":"t","name":"f","input":{"a":1}}]}`, `{"content":[{"type":"thinking","thinking":"x"}]}`, `{}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := TranslateResponse(body, "alias", 1)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, body)
		}
	})
}

// FuzzErrorBody: any error body is classified and rebuilt as OpenAI's
// envelope, valid JSON.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 300000 tokens > 200000 maximum"}}`, `oops`, `{"error":"x"}`} {
		f.Add(529, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		_, _ = Classify(status, body)
		if out := OpenAIError(status, body); !json.Valid(out) {
			t.Fatalf("invalid envelope %q from %q", out, body)
		}
	})
}
