package vertex_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/vertex"
	"github.com/aisix/aisix/proxy/proxytest"
)

func TestParseCredential(t *testing.T) {
	for _, tt := range []struct{ secret, want string }{
		{`{"project":"p","region":"us-central1","access_token":"ya29.x"}`, ""},
		{`{"project":"p","region":"global","service_account_json":"{}"}`, ""},
		{`ya29.s3cret`, "not a JSON object"},
		{`{"project":"p","region":"r","access_token":"ya29.s3cret","extra":"x"}`, "not a JSON object"},
		{`{"region":"r","access_token":"ya29.s3cret"}`, "project is required"},
		{`{"project":"p","access_token":"ya29.s3cret"}`, "region is required"},
		{`{"project":"p","region":"r"}`, "exactly one of"},
		{`{"project":"p","region":"r","access_token":"ya29.s3cret","service_account_json":"{}"}`, "exactly one of"},
		{`{"project":"p/../x","region":"r","access_token":"ya29.s3cret"}`, "character"},
	} {
		_, err := vertex.ParseCredential(tt.secret)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.secret, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want %q", tt.secret, err, tt.want)
		case err != nil && strings.Contains(err.Error(), "s3cret"):
			t.Errorf("error repeats the secret: %v", err)
		}
	}
}

func TestURLs(t *testing.T) {
	for _, tt := range []struct{ region, base, want string }{
		{"us-east5", "", "https://us-east5-aiplatform.googleapis.com/v1/projects/proj/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929"},
		{"global", "", "https://aiplatform.googleapis.com/v1/projects/proj/locations/global/publishers/anthropic/models/claude-sonnet-4-5@20250929"},
		{"europe-west1", "http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1/projects/proj/locations/europe-west1/publishers/anthropic/models/claude-sonnet-4-5@20250929"},
	} {
		base, err := vertex.BaseURL(tt.base, tt.region)
		if err != nil {
			t.Fatal(err)
		}
		u, err := vertex.ClaudeURLsFor(base, "proj", tt.region, "claude-sonnet-4-5@20250929")
		if err != nil {
			t.Fatal(err)
		}
		if u.Predict.String() != tt.want+":rawPredict" || u.Stream.String() != tt.want+":streamRawPredict" {
			t.Errorf("urls %s %s, want %s", u.Predict, u.Stream, tt.want)
		}
		if want := tt.want[:strings.LastIndex(tt.want, "/")] + "/count-tokens:rawPredict"; u.Count.String() != want {
			t.Errorf("count %s, want %s", u.Count, want)
		}
	}
	if _, err := vertex.BaseURL("ftp://x", "r"); err == nil {
		t.Error("ftp base accepted")
	}
	base, _ := vertex.BaseURL("", "r")
	if _, err := vertex.ClaudeURLsFor(base, "p", "r", "a/b"); err == nil {
		t.Error("model with a slash accepted")
	}
}

func newOAuth(t testing.TB) *proxytest.GoogleOAuth {
	t.Helper()
	g := proxytest.NewGoogleOAuth(proxytest.GoogleOAuthOptions{})
	t.Cleanup(g.Close)
	return g
}

func saAuth(t testing.TB, g *proxytest.GoogleOAuth, tokenURL string) vertex.Auth {
	t.Helper()
	c, err := vertex.ParseCredential(g.Secret("proj-test", "us-central1"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := vertex.NewAuth(c, tokenURL, &http.Client{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestServiceAccountToken: the JWT the fake verifies (signature, iss,
// scope, aud, iat/exp) gets a token, fetched once for many concurrent
// requests and read from the cache after.
func TestServiceAccountToken(t *testing.T) {
	g := newOAuth(t)
	a := saAuth(t, g, "")
	var wg sync.WaitGroup
	vals := make([]string, 50)
	for i := range vals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := http.Header{}
			if err := a.Apply(context.Background(), h); err != nil {
				t.Error(err)
			}
			vals[i] = h.Get("Authorization")
		}()
	}
	wg.Wait()
	if g.Hits() != 1 || g.Issued() != 1 {
		t.Errorf("token requests %d issued %d, want 1", g.Hits(), g.Issued())
	}
	for _, v := range vals {
		if v != vals[0] || !strings.HasPrefix(v, "Bearer ya29.") || !g.Valid(strings.TrimPrefix(v, "Bearer ")) {
			t.Fatalf("authorization %q", v)
		}
	}
}

// TestServiceAccountRefresh: a token within a minute of its expiry is
// replaced.
func TestServiceAccountRefresh(t *testing.T) {
	g := newOAuth(t)
	g.SetExpiresIn(30)
	a := saAuth(t, g, "")
	h1, h2 := http.Header{}, http.Header{}
	if err := a.Apply(context.Background(), h1); err != nil {
		t.Fatal(err)
	}
	g.SetExpiresIn(3599)
	if err := a.Apply(context.Background(), h2); err != nil {
		t.Fatal(err)
	}
	if g.Hits() != 2 || h1.Get("Authorization") == h2.Get("Authorization") {
		t.Errorf("hits %d; %q %q", g.Hits(), h1.Get("Authorization"), h2.Get("Authorization"))
	}
	if err := a.Apply(context.Background(), h2); err != nil || g.Hits() != 2 {
		t.Errorf("fresh token not reused: %v, hits %d", err, g.Hits())
	}
}

// TestServiceAccountFailure: a refused assertion or an outage is an error
// that quotes neither the key nor the endpoint's answer; the next Apply
// tries again.
func TestServiceAccountFailure(t *testing.T) {
	g := newOAuth(t)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	js, _ := json.Marshal(map[string]string{"project": "p", "region": "r", "service_account_json": g.ServiceAccountJSONWith(other)})
	c, err := vertex.ParseCredential(string(js))
	if err != nil {
		t.Fatal(err)
	}
	wrong, err := vertex.NewAuth(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	err = wrong.Apply(context.Background(), http.Header{})
	if err == nil || !strings.Contains(err.Error(), "refused (400)") {
		t.Fatalf("wrong key: %v", err)
	}
	a := saAuth(t, g, "")
	g.FailNext(503)
	err2 := a.Apply(context.Background(), http.Header{})
	if err2 == nil {
		t.Fatal("outage: no error")
	}
	for _, e := range []error{err, err2} {
		for _, leak := range []string{"Invalid JWT", "Backend Error", "10.1.2.3", "PRIVATE KEY", "127.0.0.1"} {
			if strings.Contains(e.Error(), leak) {
				t.Errorf("error leaks %q: %v", leak, e)
			}
		}
	}
	if err := a.Apply(context.Background(), http.Header{}); err != nil {
		t.Errorf("after the outage: %v", err)
	}
}

// TestServiceAccountTokenURL: the token URL override receives the
// requests; the assertion's audience stays the key's token_uri.
func TestServiceAccountTokenURL(t *testing.T) {
	g := newOAuth(t)
	c, _ := vertex.ParseCredential(g.Secret("p", "r"))
	var sa map[string]string
	_ = json.Unmarshal([]byte(c.ServiceAccountJSON), &sa)
	sa["token_uri"] = "http://127.0.0.1:1/unreachable"
	b, _ := json.Marshal(sa)
	c.ServiceAccountJSON = string(b)
	a, err := vertex.NewAuth(c, g.URL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The fake wants aud = its own URL: refused, but it was asked.
	if err := a.Apply(context.Background(), http.Header{}); err == nil || g.Hits() != 1 {
		t.Errorf("override not used: %v, hits %d", err, g.Hits())
	}
}

// TestServiceAccountStalled: Apply gives up when its ctx does; the token
// request goes on, and the next caller gets its token.
func TestServiceAccountStalled(t *testing.T) {
	g := newOAuth(t)
	a := saAuth(t, g, "")
	g.Stall()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Apply(ctx, http.Header{}); err == nil {
		t.Fatal("stalled token request: no error")
	}
	g.Release()
	if err := a.Apply(context.Background(), http.Header{}); err != nil || g.Hits() != 1 {
		t.Errorf("after release: %v, hits %d", err, g.Hits())
	}
}

func TestBadServiceAccount(t *testing.T) {
	for _, sa := range []string{`not json`, `{"type":"authorized_user","client_email":"a","private_key":"b"}`,
		`{"client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\nczNjcmV0\n-----END PRIVATE KEY-----\n"}`, `{"private_key":"x"}`} {
		js, _ := json.Marshal(map[string]string{"project": "p", "region": "r", "service_account_json": sa})
		c, err := vertex.ParseCredential(string(js))
		if err != nil {
			t.Fatal(err)
		}
		_, err = vertex.NewAuth(c, "", nil)
		if err == nil || strings.Contains(err.Error(), "czNjcmV0") {
			t.Errorf("%s: %v", sa, err)
		}
	}
}

func TestAccessToken(t *testing.T) {
	c, _ := vertex.ParseCredential(`{"project":"p","region":"r","access_token":"ya29.given"}`)
	a, err := vertex.NewAuth(c, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	if err := a.Apply(context.Background(), h); err != nil || h.Get("Authorization") != "Bearer ya29.given" {
		t.Errorf("%v %q", err, h.Get("Authorization"))
	}
}

func claude(t testing.TB, auth vertex.Auth, forward ...string) *vertex.ClaudeEndpoint {
	t.Helper()
	base, _ := vertex.BaseURL("", "us-east5")
	urls, err := vertex.ClaudeURLsFor(base, "proj", "us-east5", "claude-haiku-4-5@20251001")
	if err != nil {
		t.Fatal(err)
	}
	return vertex.NewClaude(vertex.ClaudeConfig{URLs: urls, Auth: auth, Model: "claude-haiku-4-5@20251001", Forward: forward})
}

func inbound(t testing.TB, op provider.Op, body string, h http.Header) *provider.Inbound {
	t.Helper()
	req, err := provider.ParseRequestFor([]byte(body), op)
	if err != nil {
		t.Fatal(err)
	}
	return &provider.Inbound{Op: op, Body: []byte(body), Req: &req, Header: h}
}

func TestClaudeBodies(t *testing.T) {
	e := claude(t, nil)
	var m map[string]json.RawMessage
	in := inbound(t, provider.OpChat, `{"model":"alias","stream":true,"messages":[{"role":"user","content":"hi"}]}`, nil)
	b, err := e.Body(in)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(b, &m)
	if _, ok := m["model"]; ok || string(m["anthropic_version"]) != `"vertex-2023-10-16"` || string(m["stream"]) != "true" || m["max_tokens"] == nil {
		t.Errorf("chat body %s", b)
	}
	req, _ := e.NewRequest(context.Background(), in, b)
	if !strings.HasSuffix(req.URL.Path, "claude-haiku-4-5@20251001:streamRawPredict") || req.Header.Get("Accept") != "text/event-stream" {
		t.Errorf("stream request %s %v", req.URL, req.Header)
	}

	in = inbound(t, provider.OpMessages, `{"model":"alias","max_tokens":10,"messages":[{"role":"user","content":"<doc>a & b</doc>"}]}`, nil)
	b, _ = e.Body(in)
	if !strings.Contains(string(b), `"<doc>a & b</doc>"`) {
		t.Errorf("the caller's text was re-escaped: %s", b)
	}
	m = nil
	_ = json.Unmarshal(b, &m)
	if _, ok := m["model"]; ok || string(m["anthropic_version"]) != `"vertex-2023-10-16"` || string(m["max_tokens"]) != "10" {
		t.Errorf("messages body %s", b)
	}
	req, _ = e.NewRequest(context.Background(), in, b)
	if !strings.HasSuffix(req.URL.Path, ":rawPredict") || strings.Contains(req.URL.Path, "count-tokens") {
		t.Errorf("messages url %s", req.URL)
	}

	in = inbound(t, provider.OpCountTokens, `{"model":"alias","messages":[{"role":"user","content":"hi"}]}`, nil)
	b, _ = e.Body(in)
	m = nil
	_ = json.Unmarshal(b, &m)
	if string(m["model"]) != `"claude-haiku-4-5@20251001"` || string(m["anthropic_version"]) != `"vertex-2023-10-16"` {
		t.Errorf("count body %s", b)
	}
	req, _ = e.NewRequest(context.Background(), in, b)
	if !strings.HasSuffix(req.URL.Path, "/publishers/anthropic/models/count-tokens:rawPredict") {
		t.Errorf("count url %s", req.URL)
	}
}

func TestClaudeHeaders(t *testing.T) {
	c, _ := vertex.ParseCredential(`{"project":"p","region":"r","access_token":"ya29.given"}`)
	a, _ := vertex.NewAuth(c, "", nil)
	h := http.Header{"Anthropic-Beta": {"context-1m-2025-08-07"}, "Authorization": {"Bearer sk-caller"}, "User-Agent": {"claude-cli"}}
	body := `{"model":"alias","messages":[{"role":"user","content":"hi"}]}`
	for _, forward := range [][]string{nil, {"Anthropic-Beta"}} {
		e := claude(t, a, forward...)
		in := inbound(t, provider.OpMessages, body, h)
		b, _ := e.Body(in)
		req, err := e.NewRequest(context.Background(), in, b)
		if err != nil {
			t.Fatal(err)
		}
		if req.Header.Get("Authorization") != "Bearer ya29.given" || req.Header.Get("User-Agent") != "claude-cli" {
			t.Errorf("headers %v", req.Header)
		}
		if got := req.Header.Get("Anthropic-Beta"); (got != "") != (forward != nil) {
			t.Errorf("forward %v: anthropic-beta %q", forward, got)
		}
		if req.Header.Get("X-Api-Key") != "" || req.Header.Get("Anthropic-Version") != "" {
			t.Errorf("Anthropic's own headers sent: %v", req.Header)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   provider.Class
	}{
		{429, `{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`, provider.ClassRateLimited},
		{429, ``, provider.ClassRateLimited},
		{529, `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`, provider.ClassOverloaded},
		{503, `{"error":{"code":503,"message":"unavailable","status":"UNAVAILABLE"}}`, provider.ClassOverloaded},
		{401, `{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`, provider.ClassAuth},
		{403, `{"error":{"code":403,"message":"Permission denied","status":"PERMISSION_DENIED"}}`, provider.ClassForbidden},
		{404, `{"error":{"code":404,"message":"Publisher Model not found.","status":"NOT_FOUND"}}`, provider.ClassNotFound},
		{400, `{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}`, provider.ClassBadRequest},
		{400, `{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 210000 tokens > 200000 maximum"}}`, provider.ClassContextLength},
		{400, `[{"error":{"code":400,"message":"prompt is too long","status":"INVALID_ARGUMENT"}}]`, provider.ClassContextLength},
		{500, `{"error":{"code":500,"message":"Internal error","status":"INTERNAL"}}`, provider.ClassServer},
		{504, `{"error":{"code":504,"message":"Deadline","status":"DEADLINE_EXCEEDED"}}`, provider.ClassTimeout},
	} {
		if got, _ := vertex.Classify(tt.status, []byte(tt.body)); got != tt.want {
			t.Errorf("%d %s: %v, want %v", tt.status, tt.body, got, tt.want)
		}
	}
	b := vertex.OpenAIError(429, []byte(`{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`))
	if !strings.Contains(string(b), `"type":"rate_limit_error"`) || strings.Contains(string(b), "RESOURCE_EXHAUSTED") {
		t.Errorf("openai error %s", b)
	}
	b = vertex.OpenAIError(503, []byte(`{"error":{"code":503,"message":"down at 10.1.2.3","status":"UNAVAILABLE"}}`))
	if strings.Contains(string(b), "10.1.2.3") {
		t.Errorf("5xx message leaked: %s", b)
	}
}

func TestClaudeAnswer(t *testing.T) {
	e := claude(t, nil)
	alias := &provider.Alias{Name: "chat", JSON: []byte(`"chat"`)}
	msg := `{"id":"msg_1","type":"message","role":"assistant","model":"claude-haiku-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":1}}`
	out, err := e.Answer(nil, inbound(t, provider.OpChat, `{"model":"chat","messages":[{"role":"user","content":"x"}]}`, nil), []byte(msg), alias)
	if err != nil || !strings.Contains(string(out), `"object":"chat.completion"`) || !strings.Contains(string(out), `"model":"chat"`) {
		t.Errorf("%v %s", err, out)
	}
	out, err = e.Answer(nil, inbound(t, provider.OpMessages, `{"model":"chat","max_tokens":5,"messages":[{"role":"user","content":"x"}]}`, nil), []byte(msg), alias)
	if err != nil || !strings.Contains(string(out), `"model":"chat"`) || !strings.Contains(string(out), `"type":"message"`) {
		t.Errorf("%v %s", err, out)
	}
}
