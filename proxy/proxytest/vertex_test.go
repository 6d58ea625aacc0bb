package proxytest_test

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
)

// assertion signs claims with key as a service account's JWT.
func assertion(t *testing.T, key *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": kid})
	c, _ := json.Marshal(claims)
	signed := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + enc.EncodeToString(sig)
}

// TestGoogleOAuthChecksAssertion: the fake token endpoint issues a token
// only for an assertion Google would accept.
func TestGoogleOAuthChecksAssertion(t *testing.T) {
	g := proxytest.NewGoogleOAuth(proxytest.GoogleOAuthOptions{})
	defer g.Close()
	var sa struct{ PrivateKey, PrivateKeyID, ClientEmail, TokenURI string }
	var raw map[string]string
	_ = json.Unmarshal([]byte(g.ServiceAccountJSON()), &raw)
	sa.PrivateKey, sa.PrivateKeyID, sa.ClientEmail, sa.TokenURI = raw["private_key"], raw["private_key_id"], raw["client_email"], raw["token_uri"]
	blk, _ := pem.Decode([]byte(sa.PrivateKey))
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	key := k.(*rsa.PrivateKey)
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	now := time.Now().Unix()
	good := func() map[string]any {
		return map[string]any{"iss": sa.ClientEmail, "scope": proxytest.GoogleScope, "aud": sa.TokenURI, "iat": now, "exp": now + 3600}
	}
	with := func(k string, v any) map[string]any { c := good(); c[k] = v; return c }
	for _, tt := range []struct {
		name   string
		key    *rsa.PrivateKey
		kid    string
		claims map[string]any
		grant  string
		want   int
	}{
		{"good", key, sa.PrivateKeyID, good(), "", 200},
		{"another key", other, sa.PrivateKeyID, good(), "", 400},
		{"wrong kid", key, "nope", good(), "", 400},
		{"wrong iss", key, sa.PrivateKeyID, with("iss", "x@y"), "", 400},
		{"wrong scope", key, sa.PrivateKeyID, with("scope", "https://www.googleapis.com/auth/userinfo.email"), "", 400},
		{"wrong aud", key, sa.PrivateKeyID, with("aud", "https://oauth2.googleapis.com/token"), "", 400},
		{"expired", key, sa.PrivateKeyID, with("exp", now-1), "", 400},
		{"too long", key, sa.PrivateKeyID, with("exp", now+7200), "", 400},
		{"wrong grant", key, sa.PrivateKeyID, good(), "client_credentials", 400},
	} {
		grant := tt.grant
		if grant == "" {
			grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
		}
		resp, err := http.PostForm(sa.TokenURI, url.Values{"grant_type": {grant}, "assertion": {assertion(t, tt.key, tt.kid, tt.claims)}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, b)
		}
		if tt.want == 200 {
			var tok struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
				TokenType   string `json:"token_type"`
			}
			if json.Unmarshal(b, &tok) != nil || !g.Valid(tok.AccessToken) || tok.ExpiresIn != 3599 || tok.TokenType != "Bearer" {
				t.Errorf("token answer %s", b)
			}
		}
	}
	if g.Hits() != 9 || g.Issued() != 1 {
		t.Errorf("hits %d issued %d", g.Hits(), g.Issued())
	}
}

// TestVertexChecksRequests: the fake Vertex refuses what Vertex refuses.
func TestVertexChecksRequests(t *testing.T) {
	v := proxytest.NewVertex("v", proxytest.VertexOptions{Token: "ya29.ok"})
	defer v.Close()
	base := v.URL() + "/v1/projects/proj-test/locations/us-central1/publishers/anthropic/models/"
	good := `{"anthropic_version":"vertex-2023-10-16","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`
	for _, tt := range []struct {
		name, path, token, body string
		want                    int
	}{
		{"good", base + "claude-haiku-4-5:rawPredict", "ya29.ok", good, 200},
		{"stream", base + "claude-haiku-4-5:streamRawPredict", "ya29.ok", strings.Replace(good, `{`, `{"stream":true,`, 1), 200},
		{"count", base + "count-tokens:rawPredict", "ya29.ok", strings.Replace(good, `{`, `{"model":"claude-haiku-4-5",`, 1), 200},
		{"no token", base + "claude-haiku-4-5:rawPredict", "", good, 401},
		{"wrong token", base + "claude-haiku-4-5:rawPredict", "ya29.no", good, 401},
		{"wrong project", strings.Replace(base, "proj-test", "other", 1) + "claude-haiku-4-5:rawPredict", "ya29.ok", good, 404},
		{"wrong region", strings.Replace(base, "us-central1", "europe-west4", 1) + "claude-haiku-4-5:rawPredict", "ya29.ok", good, 404},
		{"model in body", base + "claude-haiku-4-5:rawPredict", "ya29.ok", strings.Replace(good, `{`, `{"model":"claude-haiku-4-5",`, 1), 400},
		{"no anthropic_version", base + "claude-haiku-4-5:rawPredict", "ya29.ok", `{"max_tokens":5,"messages":[]}`, 400},
		{"stream on rawPredict", base + "claude-haiku-4-5:rawPredict", "ya29.ok", strings.Replace(good, `{`, `{"stream":true,`, 1), 400},
	} {
		req, _ := http.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
		if tt.token != "" {
			req.Header.Set("Authorization", "Bearer "+tt.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, b)
		}
		if tt.want != 200 && !strings.Contains(string(b), `"error"`) {
			t.Errorf("%s: not an error envelope: %s", tt.name, b)
		}
	}
	if v.Hits() != 3 || v.Denied() != 7 {
		t.Errorf("hits %d denied %d", v.Hits(), v.Denied())
	}
	if r := v.Requests(); len(r) != 3 || r[0].Model != "claude-haiku-4-5" || !r[1].Stream || r[2].Endpoint != proxytest.EndpointCountTokens {
		t.Errorf("requests %+v", r)
	}
}

// TestVertexGoogleModels: the fake serves Google's models as Vertex AI's
// REST reference does (bodies written from it, not from an adapter):
// generateContent, streamGenerateContent with alt=sse (events, the last
// with a finishReason, no end marker) and the text-embedding :predict;
// an API key, a missing or wrong bearer token is 401 UNAUTHENTICATED.
func TestVertexGoogleModels(t *testing.T) {
	v := proxytest.NewVertex("vg", proxytest.VertexOptions{Token: "ya29.ok"})
	defer v.Close()
	base := v.URL() + "/v1/projects/proj-test/locations/us-central1/publishers/google/models/"
	gen := `{"contents":[{"role":"user","parts":[{"text":"Why is the sky blue?"}]}],"generationConfig":{"maxOutputTokens":64}}`
	embed := `{"instances":[{"content":"What is life?","task_type":"RETRIEVAL_QUERY"},{"content":"a b c"}],"parameters":{"outputDimensionality":3,"autoTruncate":true}}`
	post := func(path, body string, h ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, path, strings.NewReader(body))
		for i := 0; i+1 < len(h); i += 2 {
			req.Header.Set(h[i], h[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bearer := []string{"Authorization", "Bearer ya29.ok"}
	for _, tt := range []struct {
		name, path, body string
		h                []string
		want             int
		has              string
	}{
		{"generate", base + "gemini-2.5-flash:generateContent", gen, bearer, 200, `"finishReason":"STOP"`},
		{"stream", base + "gemini-2.5-flash:streamGenerateContent?alt=sse", gen, bearer, 200, "data: {"},
		{"predict", base + "text-embedding-005:predict", embed, bearer, 200, `"token_count":3`},
		{"api key", base + "gemini-2.5-flash:generateContent", gen, []string{"X-Goog-Api-Key", "AIza-k"}, 401, `"UNAUTHENTICATED"`},
		{"api key and token", base + "gemini-2.5-flash:generateContent", gen, append([]string{"X-Goog-Api-Key", "AIza-k"}, bearer...), 401, `"UNAUTHENTICATED"`},
		{"key query", base + "gemini-2.5-flash:generateContent?key=AIza-k", gen, nil, 401, `"UNAUTHENTICATED"`},
		{"no token", base + "gemini-2.5-flash:generateContent", gen, nil, 401, `"UNAUTHENTICATED"`},
		{"wrong token", base + "gemini-2.5-flash:generateContent", gen, []string{"Authorization", "Bearer ya29.no"}, 401, `"code":401`},
		{"wrong project", strings.Replace(base, "proj-test", "other", 1) + "gemini-2.5-flash:generateContent", gen, bearer, 404, `"NOT_FOUND"`},
		{"AI Studio path", v.URL() + "/v1beta/models/gemini-2.5-flash:generateContent", gen, bearer, 404, `"NOT_FOUND"`},
		{"no contents", base + "gemini-2.5-flash:generateContent", `{"generationConfig":{}}`, bearer, 400, `"INVALID_ARGUMENT"`},
		{"unknown field", base + "gemini-2.5-flash:generateContent", `{"messages":[],"contents":[{"role":"user","parts":[{"text":"x"}]}]}`, bearer, 400, `"INVALID_ARGUMENT"`},
		{"AI Studio embed body", base + "text-embedding-005:predict", `{"content":{"parts":[{"text":"x"}]}}`, bearer, 400, `"INVALID_ARGUMENT"`},
		{"bad parameter", base + "text-embedding-005:predict", `{"instances":[{"content":"x"}],"parameters":{"dimensions":3}}`, bearer, 400, `"INVALID_ARGUMENT"`},
	} {
		status, body := post(tt.path, tt.body, tt.h...)
		if status != tt.want || !strings.Contains(body, tt.has) {
			t.Errorf("%s: %d %s", tt.name, status, body)
		}
	}
	_, stream := post(base+"gemini-2.5-flash:streamGenerateContent?alt=sse", gen, bearer...)
	if strings.Contains(stream, "[DONE]") || !strings.Contains(stream[strings.LastIndex(stream, "data: "):], `"finishReason":"STOP"`) {
		t.Errorf("stream:\n%s", stream)
	}
	r := v.Requests()
	if len(r) != 4 || r[0].Endpoint != proxytest.GeminiGenerate || r[1].Path != "/v1/projects/proj-test/locations/us-central1/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse" ||
		!r[1].Stream || r[2].Endpoint != proxytest.VertexPredict || r[2].Model != "text-embedding-005" {
		t.Errorf("requests %+v", r)
	}
	if v.Denied() != 11 {
		t.Errorf("denied %d", v.Denied())
	}
}
