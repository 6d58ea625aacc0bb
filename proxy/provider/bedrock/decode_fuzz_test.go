package bedrock

import (
	"encoding/json"
	"testing"
)

// FuzzTranslateResponse: any Converse answer fails with an error or
// becomes a valid chat completion.
func FuzzTranslateResponse(f *testing.F) {
	for _, s := range []string{`{"output":{"message":{"role":"assistant","content":[{"text":"hi"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":2,"totalTokens":3}}`,
		`{"output":{"message":{"content":[{"toolUse":{"toolUseId":"t","name":"f","input":{"a":1}}}]}},"stopReason":"tool_use"}`,
		`{"output":{"message":{"content":[{"reasoningContent":{"reasoningText":{"text":"x"}}}]}}}`, `{}`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := TranslateResponse(nil, body, "id", "alias", 1)
		if err == nil && !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, body)
		}
	})
}

// FuzzErrorBody: any error answer is classified and rebuilt as OpenAI's
// envelope, valid JSON.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{`{"message":"Too many requests, please wait before trying again."}`, `{"Message":"The security token included in the request is invalid."}`, `x`} {
		f.Add(429, "ThrottlingException", []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, typ string, body []byte) {
		_, _ = Classify(status, typ, body)
		if out := OpenAIError(status, typ, body); !json.Valid(out) {
			t.Fatalf("invalid envelope %q", out)
		}
	})
}

// FuzzEmbeddings: any embeddings request translates or fails, and any
// model answer becomes valid JSON or fails, for every family.
func FuzzEmbeddings(f *testing.F) {
	for _, s := range []string{`{"input":"hi","dimensions":256}`, `{"input":["a","b"],"input_type":"search_query"}`, `{"input":[[1,2]]}`, `{"embedding":[0.1,0.2],"inputTextTokenCount":2}`,
		`{"embeddings":{"float":[[0.5]]},"texts":["a"]}`, `{"embeddings":[[0.5]]}`} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, b64 bool) {
		for _, fam := range []EmbedFamily{EmbedTitanV1, EmbedTitanV2, EmbedCohere} {
			if out, err := EmbeddingsBody(body, fam); err == nil && !json.Valid(out) {
				t.Fatalf("family %d: invalid request %q from %q", fam, out, body)
			}
			if out, err := EmbeddingsAnswer(nil, body, fam, "alias", b64); err == nil && !json.Valid(out) {
				t.Fatalf("family %d: invalid answer %q from %q", fam, out, body)
			}
		}
	})
}

// FuzzParseCredential: a provider key's secret parses or fails with an
// error; never a panic.
func FuzzParseCredential(f *testing.F) {
	for _, s := range []string{`{"region":"us-east-1","access_key_id":"AKIA","secret_access_key":"x"}`, `{"region":"eu-west-1","api_key":"k"}`, `AKIA:secret`, `{}`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = ParseCredential(s)
	})
}
