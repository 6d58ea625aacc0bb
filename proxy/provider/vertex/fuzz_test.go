package vertex_test

import (
	"encoding/json"
	"errors"
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

// FuzzEmbeddings: any embeddings body translates or is refused as the
// caller's, into a valid :predict body; any :predict answer translates
// into a valid OpenAI list or ErrNotPrediction, never a panic.
func FuzzEmbeddings(f *testing.F) {
	f.Add([]byte(`{"model":"e","input":["a","b"],"dimensions":3}`), []byte(`{"predictions":[{"embeddings":{"statistics":{"token_count":1},"values":[0.5]}}]}`))
	f.Add([]byte(`{"input":"x","encoding_format":"base64"}`), []byte(`{"predictions":[{"embeddings":null}]}`))
	f.Add([]byte(`{"input":[1,2]}`), []byte(`{"predictions":[]}`))
	f.Add([]byte(`null`), []byte(`[]`))
	f.Fuzz(func(t *testing.T, req, answer []byte) {
		if b, err := vertex.TranslateEmbedRequest(req); err == nil && !json.Valid(b) {
			t.Fatalf("invalid predict body %s", b)
		}
		for _, b64 := range []bool{false, true} {
			out, err := vertex.TranslateEmbedResponse(nil, answer, "emb", b64)
			switch {
			case err != nil && !errors.Is(err, vertex.ErrNotPrediction):
				t.Fatalf("error %v", err)
			case err == nil && !json.Valid(out):
				t.Fatalf("invalid list %s", out)
			}
		}
	})
}
