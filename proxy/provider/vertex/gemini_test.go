package vertex_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/vertex"
)

func geminiOn(t testing.TB, region string, auth vertex.Auth, model string) *vertex.GeminiEndpoint {
	t.Helper()
	base, err := vertex.BaseURL("", region)
	if err != nil {
		t.Fatal(err)
	}
	models, err := vertex.GeminiModelsURL(base, "proj", region)
	if err != nil {
		t.Fatal(err)
	}
	return vertex.NewGemini(vertex.GeminiConfig{Models: models, Auth: auth, Model: model})
}

func givenToken(t testing.TB) vertex.Auth {
	t.Helper()
	c, _ := vertex.ParseCredential(`{"project":"p","region":"r","access_token":"ya29.given"}`)
	a, err := vertex.NewAuth(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestGeminiRequests: the Gemini API's bodies go to the project's
// publishers/google models (the global host for region global), with the
// bearer token and never x-goog-api-key.
func TestGeminiRequests(t *testing.T) {
	for _, tt := range []struct{ region, host string }{
		{"us-central1", "https://us-central1-aiplatform.googleapis.com"},
		{"global", "https://aiplatform.googleapis.com"},
	} {
		e := geminiOn(t, tt.region, givenToken(t), "gemini-2.5-flash")
		prefix := tt.host + "/v1/projects/proj/locations/" + tt.region + "/publishers/google/models/gemini-2.5-flash"
		h := http.Header{"Authorization": {"Bearer sk-caller"}, "User-Agent": {"app/1"}, "X-Goog-Api-Key": {"AIza-caller"}}
		for _, stream := range []bool{false, true} {
			in := inbound(t, provider.OpChat, `{"model":"alias","stream":`+map[bool]string{false: "false", true: "true"}[stream]+`,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"hi"}]}`, h)
			b, err := e.Body(in)
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]json.RawMessage
			if json.Unmarshal(b, &m) != nil || m["contents"] == nil || m["systemInstruction"] == nil || m["model"] != nil {
				t.Errorf("body %s", b)
			}
			req, err := e.NewRequest(context.Background(), in, b)
			if err != nil {
				t.Fatal(err)
			}
			want, accept := prefix+":generateContent", "application/json"
			if stream {
				want, accept = prefix+":streamGenerateContent?alt=sse", "text/event-stream"
			}
			if req.URL.String() != want || req.Header.Get("Accept") != accept {
				t.Errorf("stream=%v: %s (accept %s), want %s", stream, req.URL, req.Header.Get("Accept"), want)
			}
			if req.Header.Get("Authorization") != "Bearer ya29.given" || req.Header.Get("User-Agent") != "app/1" {
				t.Errorf("headers %v", req.Header)
			}
			if _, ok := req.Header["X-Goog-Api-Key"]; ok {
				t.Errorf("x-goog-api-key sent: %v", req.Header)
			}
		}
		in := inbound(t, provider.OpEmbeddings, `{"model":"alias","input":"hi"}`, h)
		b, _ := e.Body(in)
		req, err := e.NewRequest(context.Background(), in, b)
		if err != nil || req.URL.String() != prefix+":predict" || req.Header.Get("Authorization") != "Bearer ya29.given" || req.Header.Get("X-Goog-Api-Key") != "" {
			t.Errorf("embeddings: %v %s %v", err, req.URL, req.Header)
		}
	}
	if e := geminiOn(t, "us-central1", givenToken(t), "gemini-2.5-flash"); !e.Supports(provider.OpChat) || !e.Supports(provider.OpEmbeddings) || e.Supports(provider.OpMessages) || e.Supports(provider.OpResponses) {
		t.Error("supports")
	}
}

// TestGeminiCredentialError: no token, no request.
func TestGeminiCredentialError(t *testing.T) {
	g := newOAuth(t)
	g.FailNext(400)
	e := geminiOn(t, "us-central1", saAuth(t, g, ""), "gemini-2.5-flash")
	in := inbound(t, provider.OpChat, `{"model":"alias","messages":[{"role":"user","content":"hi"}]}`, nil)
	b, _ := e.Body(in)
	if req, err := e.NewRequest(context.Background(), in, b); err == nil || req != nil {
		t.Errorf("request built without a token: %v", err)
	}
	in = inbound(t, provider.OpEmbeddings, `{"model":"alias","input":"hi"}`, nil)
	b, _ = e.Body(in)
	g.FailNext(400)
	if req, err := e.NewRequest(context.Background(), in, b); err == nil || req != nil {
		t.Errorf("embeddings request built without a token: %v", err)
	}
}

// TestGeminiEmbeddings: OpenAI's embeddings body becomes the text
// embedding :predict body of Vertex AI's reference (instances of
// content, parameters.outputDimensionality), and its predictions an
// OpenAI list with the token counts summed.
func TestGeminiEmbeddings(t *testing.T) {
	for _, tt := range []struct{ in, want, err string }{
		{`{"model":"e","input":"hi"}`, `{"instances":[{"content":"hi"}]}`, ""},
		{`{"model":"e","input":["a","b"],"dimensions":256}`, `{"instances":[{"content":"a"},{"content":"b"}],"parameters":{"outputDimensionality":256}}`, ""},
		{`{"model":"e","input":[1,2,3]}`, "", "input"},
		{`{"model":"e","input":[]}`, "", "input"},
		{`{"model":"e","input":"x","dimensions":0}`, "", "dimensions"},
		{`{"model":"e","input":"x","encoding_format":"int8"}`, "", "encoding_format"},
	} {
		got, err := vertex.TranslateEmbedRequest([]byte(tt.in))
		var re *provider.RequestError
		switch {
		case tt.err != "" && (!errors.As(err, &re) || re.Field != tt.err):
			t.Errorf("%s: error %v, want field %s", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || string(got) != tt.want):
			t.Errorf("%s: %s %v, want %s", tt.in, got, err, tt.want)
		}
	}
	answer := `{"predictions":[{"embeddings":{"statistics":{"truncated":false,"token_count":6},"values":[0.25,-0.5]}},{"embeddings":{"statistics":{"truncated":false,"token_count":4},"values":[1,0]}}],"metadata":{"billableCharacterCount":20}}`
	e := geminiOn(t, "us-central1", nil, "text-embedding-005")
	alias := &provider.Alias{Name: "emb", JSON: []byte(`"emb"`)}
	out, err := e.Answer(nil, inbound(t, provider.OpEmbeddings, `{"model":"emb","input":["a","b"]}`, nil), []byte(answer), alias)
	want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5]},{"object":"embedding","index":1,"embedding":[1,0]}],"model":"emb","usage":{"prompt_tokens":10,"total_tokens":10}}`
	if err != nil || string(out) != want {
		t.Errorf("answer %v\n%s\nwant\n%s", err, out, want)
	}
	out, err = e.Answer(nil, inbound(t, provider.OpEmbeddings, `{"model":"emb","input":"a","encoding_format":"base64"}`, nil), []byte(answer), alias)
	if err != nil || !strings.Contains(string(out), `"embedding":"AACAPgAAAL8="`) {
		t.Errorf("base64 %v %s", err, out)
	}
	for _, bad := range []string{`{}`, `{"predictions":[]}`, `{"predictions":[{}]}`, `not json`} {
		if _, err := e.Answer(nil, inbound(t, provider.OpEmbeddings, `{"model":"emb","input":"a"}`, nil), []byte(bad), alias); !errors.Is(err, vertex.ErrNotPrediction) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

// TestGeminiClassify: Vertex AI's Google envelopes read as the Gemini
// API's: a refused token is the credential's fault (401 auth, 403
// forbidden), both failed over; quota and overload are retried.
func TestGeminiClassify(t *testing.T) {
	e := geminiOn(t, "us-central1", nil, "gemini-2.5-flash")
	for _, tt := range []struct {
		status int
		body   string
		want   provider.Class
	}{
		{401, `{"error":{"code":401,"message":"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.","status":"UNAUTHENTICATED"}}`, provider.ClassAuth},
		{403, `{"error":{"code":403,"message":"Permission 'aiplatform.endpoints.predict' denied on resource","status":"PERMISSION_DENIED"}}`, provider.ClassForbidden},
		{429, `{"error":{"code":429,"message":"Resource exhausted. Please try again later.","status":"RESOURCE_EXHAUSTED"}}`, provider.ClassRateLimited},
		{503, `{"error":{"code":503,"message":"The service is currently unavailable.","status":"UNAVAILABLE"}}`, provider.ClassOverloaded},
		{404, `{"error":{"code":404,"message":"Publisher Model was not found","status":"NOT_FOUND"}}`, provider.ClassNotFound},
		{400, `{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}`, provider.ClassContextLength},
	} {
		if got := e.Classify(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("%d: %v, want %v", tt.status, got, tt.want)
		}
	}
	if b := string(e.ErrorBody(401, []byte(`{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`))); !strings.Contains(b, `"type":"authentication_error"`) || strings.Contains(b, "UNAUTHENTICATED") {
		t.Errorf("error body %s", b)
	}
}
