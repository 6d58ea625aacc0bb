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
