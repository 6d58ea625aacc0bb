package vertex_test

import (
	"encoding/json"
	"testing"

	"github.com/aisix/aisix/proxy/provider/vertex"
)

// FuzzErrorBody: any upstream error body classifies without a panic and
// rebuilds as a valid OpenAI envelope.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`,
		`[{"error":{"code":400,"message":"x","status":"INVALID_ARGUMENT"}}]`,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`[]`, `null`, `{"error":null}`, `{"error":[1]}`, "",
	} {
		f.Add(429, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		status = 400 + (status%200+200)%200
		vertex.Classify(status, body)
		if b := vertex.OpenAIError(status, body); !json.Valid(b) {
			t.Fatalf("invalid envelope %s", b)
		}
	})
}
