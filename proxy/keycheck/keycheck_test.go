package keycheck_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// The secret does not look like an OpenAI key, so only the checker's own
// removal of the secret keeps it out of an upstream message that quotes it.
const secret = "mock-secret-0123456789abcdef"

// openAIError writes OpenAI's error envelope.
func openAIError(w http.ResponseWriter, status int, msg, typ string, code any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": code}})
}

// completion writes a chat.completion as OpenAI answers a max_tokens 1 request.
func completion(w http.ResponseWriter, model string) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"`+model+
		`","choices":[{"index":0,"message":{"role":"assistant","content":"P"},"finish_reason":"length"}],`+
		`"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}`)
}

// seen is one request a fake upstream received.
type seen struct {
	path, auth string
	body       map[string]any
}

// upstream starts a fake OpenAI upstream whose /v1/chat/completions answers
// with h; every request it receives is sent on the returned channel.
func upstream(t *testing.T, h func(w http.ResponseWriter, r *http.Request, body map[string]any)) (string, <-chan seen) {
	t.Helper()
	ch := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		ch <- seen{path: r.URL.Path, auth: r.Header.Get("Authorization"), body: body}
		if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
			openAIError(w, http.StatusNotFound, "Invalid URL ("+r.Method+" "+r.URL.Path+")", "invalid_request_error", nil)
			return
		}
		h(w, r, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, ch
}

func providerKey(base string) storage.ProviderKey {
	pk := storage.ProviderKey{ID: "pk-1", DisplayName: "openai-primary", Provider: "openai", Adapter: "openai", Secret: secret, APIBase: base}
	pk.SecretHost = pk.BaseHost()
	return pk
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func check(t *testing.T, c *keycheck.Checker, pk storage.ProviderKey, req keycheck.Request) keycheck.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Check(ctx, pk, req)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	b, _ := json.Marshal(res)
	if strings.Contains(string(b), secret) {
		t.Errorf("result holds the secret: %s", b)
	}
	return res
}

func TestCheckClassifies(t *testing.T) {
	answers := map[string]func(w http.ResponseWriter, r *http.Request, body map[string]any){
		"ok": func(w http.ResponseWriter, _ *http.Request, body map[string]any) {
			completion(w, body["model"].(string))
		},
		"401": func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			openAIError(w, 401, "Incorrect API key provided: "+secret+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", "invalid_api_key")
		},
		"403": func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			openAIError(w, 403, "Project `proj_abc123XYZ` does not have access to model `gpt-4o-mini`", "invalid_request_error", "model_not_found")
		},
		"404 model": func(w http.ResponseWriter, _ *http.Request, body map[string]any) {
			openAIError(w, 404, "The model `"+body["model"].(string)+"` does not exist or you do not have access to it.", "invalid_request_error", "model_not_found")
		},
		"429": func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			openAIError(w, 429, "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota")
		},
		"500": func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			openAIError(w, 500, "The server had an error while processing your request.", "server_error", nil)
		},
		"400": func(w http.ResponseWriter, _ *http.Request, _ map[string]any) {
			openAIError(w, 400, "Unsupported parameter: 'max_tokens' is not supported with this model.", "invalid_request_error", "unsupported_parameter")
		},
	}
	cases := []struct {
		name, answer string
		// base turns the upstream's URL into the api_base.
		base                  func(u string) string
		wantStatus            int
		wantOK                bool
		wantError, wantHint   string
		wantPath, wantNoError string
	}{
		{name: "ok", answer: "ok", wantStatus: 200, wantOK: true},
		{name: "api_base with trailing slash", answer: "ok", base: func(u string) string { return u + "/v1/" }, wantStatus: 200, wantOK: true},
		{name: "api_base with the endpoint pasted", answer: "ok", base: func(u string) string { return u + "/v1/chat/completions" }, wantStatus: 200, wantOK: true},
		{name: "401 invalid_api_key", answer: "401", wantStatus: 401,
			wantError: "Incorrect API key provided: [key]. You can find your API key at [url]. (invalid_api_key)", wantHint: "credentials: the upstream rejects the secret; enter it again: aisix provider-key update openai-primary --secret-stdin"},
		{name: "403", answer: "403", wantStatus: 403, wantError: "[id]", wantHint: "access:"},
		{name: "404 model_not_found", answer: "404 model", wantStatus: 404, wantError: "The model `gpt-nope` does not exist", wantHint: `model name: the upstream has no model "gpt-nope"`},
		{name: "404 on the path", answer: "ok", base: func(u string) string { return u }, wantPath: "/chat/completions", wantStatus: 404, wantError: "Invalid URL (POST /chat/completions)", wantHint: "wrong api_base:"},
		{name: "429 quota", answer: "429", wantStatus: 429, wantError: "You exceeded your current quota", wantHint: "rate limit or quota:"},
		{name: "500", answer: "500", wantStatus: 500, wantError: "The server had an error", wantHint: "upstream failure:"},
		{name: "400", answer: "400", wantStatus: 400, wantError: "max_tokens", wantHint: "request refused:"},
	}
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u, reqs := upstream(t, answers[tc.answer])
			base := u + "/v1"
			if tc.base != nil {
				base = tc.base(u)
			}
			model := "gpt-4o-mini"
			if tc.answer == "404 model" {
				model = "gpt-nope"
			}
			res := check(t, c, providerKey(base), keycheck.Request{Model: model})
			if res.Status != tc.wantStatus || res.OK != tc.wantOK || res.Model != model || res.URLHost != strings.TrimPrefix(u, "http://") {
				t.Errorf("result %+v", res)
			}
			if !strings.Contains(res.Error, tc.wantError) || (tc.wantError == "") != (res.Error == "") {
				t.Errorf("error %q, want it to contain %q", res.Error, tc.wantError)
			}
			if !strings.HasPrefix(res.Hint, tc.wantHint) || (tc.wantHint == "") != (res.Hint == "") {
				t.Errorf("hint %q, want it to start with %q", res.Hint, tc.wantHint)
			}
			got := <-reqs
			wantPath := "/v1/chat/completions"
			if tc.wantPath != "" {
				wantPath = tc.wantPath
			}
			if got.path != wantPath || got.auth != "Bearer "+secret {
				t.Errorf("upstream saw path %q, Authorization set %v (want the secret)", got.path, got.auth != "")
			}
			msgs, _ := got.body["messages"].([]any)
			if got.body["model"] != model || got.body["max_tokens"] != float64(1) || len(msgs) != 1 {
				t.Errorf("upstream saw body %v, want the minimal request", got.body)
			}
		})
	}
}

func TestCheckTransportFailures(t *testing.T) {
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)

	t.Run("connection refused", func(t *testing.T) {
		addr := closedPort(t)
		res := check(t, c, providerKey("http://"+addr+"/v1"), keycheck.Request{Model: "gpt-4o-mini"})
		if res.Status != 0 || res.OK || res.Error != "connection refused" || !strings.HasPrefix(res.Hint, "wrong api_base: nothing listens at "+addr) || res.URLHost != addr {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("TLS", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { completion(w, "x") }))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake error is the point
		srv.StartTLS()
		t.Cleanup(srv.Close)
		res := check(t, c, providerKey(srv.URL+"/v1"), keycheck.Request{Model: "gpt-4o-mini"})
		if res.Status != 0 || res.OK || res.Error != "TLS handshake failed" || !strings.HasPrefix(res.Hint, "TLS:") {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("https to a plain HTTP port", func(t *testing.T) {
		u, _ := upstream(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { completion(w, "x") })
		res := check(t, c, providerKey(strings.Replace(u, "http://", "https://", 1)+"/v1"), keycheck.Request{Model: "gpt-4o-mini"})
		if res.Status != 0 || res.OK || !strings.HasPrefix(res.Hint, "TLS:") {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		t.Cleanup(func() { close(release) })
		u, _ := upstream(t, func(_ http.ResponseWriter, r *http.Request, _ map[string]any) {
			select {
			case <-r.Context().Done():
			case <-release:
			}
		})
		res := check(t, c, providerKey(u+"/v1"), keycheck.Request{Model: "gpt-4o-mini", Timeout: 300 * time.Millisecond})
		if res.Status != 0 || res.OK || res.Error != "no answer within 300ms" || !strings.HasPrefix(res.Hint, "timeout:") || res.LatencyMs < 250 {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("egress policy at connect time", func(t *testing.T) {
		// A name that resolves to a refused address: the dialer's Control
		// refuses it, as the proxy's does.
		refusing := keycheck.New(keycheck.Options{Transport: &http.Transport{
			DialContext: func(_ context.Context, _, _ string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: routing.EgressPolicy{DenyPrivate: true}.Check("", netip.MustParseAddr("10.1.2.3"))}
			},
		}})
		res := check(t, refusing, providerKey("https://models.internal.example/v1"), keycheck.Request{Model: "gpt-4o-mini"})
		if res.Status != 0 || res.Error != "host 10.1.2.3 is a private address, refused by the egress policy" || !strings.HasPrefix(res.Hint, "egress policy: models.internal.example resolves to an address the gateway refuses (private)") {
			t.Errorf("result %+v", res)
		}
	})

	t.Run("DNS", func(t *testing.T) {
		dns := keycheck.New(keycheck.Options{Transport: &http.Transport{
			DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
				host, _, _ := net.SplitHostPort(addr)
				return nil, &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}}
			},
		}})
		res := check(t, dns, providerKey("https://api.openai.invalid/v1"), keycheck.Request{Model: "gpt-4o-mini"})
		if res.Status != 0 || res.Error != "DNS lookup failed: no such host" || res.Hint != "DNS: api.openai.invalid does not resolve; check the host name in api_base" || res.URLHost != "api.openai.invalid" {
			t.Errorf("result %+v", res)
		}
	})
}

func TestCheckSecretNeedsReentry(t *testing.T) {
	u, reqs := upstream(t, func(w http.ResponseWriter, r *http.Request, body map[string]any) {
		if r.Header.Get("Authorization") == "" {
			openAIError(w, 401, "You didn't provide an API key.", "invalid_request_error", nil)
			return
		}
		completion(w, body["model"].(string))
	})
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	pk := providerKey(u + "/v1")
	pk.SecretHost = "api.openai.com"
	res := check(t, c, pk, keycheck.Request{Model: "gpt-4o-mini"})
	want := "secret_needs_reentry: the secret was entered for api.openai.com, not 127.0.0.1, so the request went without credentials; enter it again: aisix provider-key update openai-primary --secret-stdin"
	if res.Status != 401 || res.OK || res.Hint != want {
		t.Errorf("result %+v\nwant hint %q", res, want)
	}
	if got := <-reqs; got.auth != "" {
		t.Errorf("the request carried an Authorization header to a host the secret is not bound to")
	}

	// Another failure is named after it.
	pk.APIBase = "http://" + closedPort(t) + "/v1"
	res = check(t, c, pk, keycheck.Request{Model: "gpt-4o-mini"})
	if !strings.HasPrefix(res.Hint, "secret_needs_reentry: ") || !strings.Contains(res.Hint, "; also: wrong api_base: nothing listens") {
		t.Errorf("hint %q", res.Hint)
	}
}

func TestCheckEgressPolicy(t *testing.T) {
	u, reqs := upstream(t, func(w http.ResponseWriter, _ *http.Request, _ map[string]any) { completion(w, "x") })
	c := keycheck.New(keycheck.Options{Egress: routing.EgressPolicy{DenyPrivate: true}})
	t.Cleanup(c.Close)
	res := check(t, c, providerKey(u+"/v1"), keycheck.Request{Model: "gpt-4o-mini"})
	if res.Status != 0 || res.OK || !strings.Contains(res.Error, "refused by the egress policy") || !strings.HasPrefix(res.Hint, "egress policy:") || res.URLHost != "127.0.0.1" {
		t.Errorf("result %+v", res)
	}
	select {
	case <-reqs:
		t.Error("a request reached a host the egress policy refuses")
	default:
	}

}

func TestCheckUnusableKey(t *testing.T) {
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	// An adapter no build knows (a store refuses it; a check of the row
	// says why, sends nothing).
	pk := providerKey("http://" + closedPort(t) + "/v1")
	pk.Provider, pk.Adapter = "foo", "foo"
	res := check(t, c, pk, keycheck.Request{Model: "foo-1"})
	if res.OK || res.Status != 0 || !strings.Contains(res.Error, "adapter: must be one of") || !strings.HasPrefix(res.Hint, "fix the provider key: adapter:") {
		t.Errorf("result %+v", res)
	}
}

func TestCheckErrors(t *testing.T) {
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	if _, err := c.Check(context.Background(), providerKey("http://127.0.0.1:1/v1"), keycheck.Request{}); !errors.Is(err, keycheck.ErrNoModel) {
		t.Errorf("no model: %v", err)
	}
	u, reqs := upstream(t, func(_ http.ResponseWriter, r *http.Request, _ map[string]any) { <-r.Context().Done() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// The caller goes away once the upstream has the request.
		<-reqs
		cancel()
	}()
	if _, err := c.Check(ctx, providerKey(u+"/v1"), keycheck.Request{Model: "m"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
}

func TestModelFor(t *testing.T) {
	pk := providerKey("https://api.openai.com/v1")
	models := []storage.Model{
		{ID: "r", DisplayName: "a-group", Routing: &storage.Routing{}},
		{ID: "o", DisplayName: "b-other", ModelName: "other", ProviderKeyID: "pk-2"},
		{ID: "d", DisplayName: "c-direct", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID},
		{ID: "e", DisplayName: "d-direct", ModelName: "gpt-4o", ProviderKeyID: pk.ID},
	}
	if m, err := keycheck.ModelFor(pk, models, ""); m != "gpt-4o-mini" || err != nil {
		t.Errorf("ModelFor: %q %v", m, err)
	}
	if m, err := keycheck.ModelFor(pk, models, " gpt-x "); m != "gpt-x" || err != nil {
		t.Errorf("ModelFor with a model: %q %v", m, err)
	}
	_, err := keycheck.ModelFor(pk, models[:2], "")
	if !errors.Is(err, keycheck.ErrNoModel) || err.Error() != `provider key "openai-primary": no model to test with: no direct model uses it; give a model name` {
		t.Errorf("ModelFor without a model: %v", err)
	}
}

// TestCheckAnthropic: a key check speaks the key's own wire: an Anthropic
// key is tested with a Messages request, and Anthropic's error envelope
// is read for the result.
func TestCheckAnthropic(t *testing.T) {
	up := proxytest.NewAnthropic("claude", proxytest.AnthropicOK(), proxytest.AnthropicAuthError())
	t.Cleanup(up.Close)
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	pk := storage.ProviderKey{ID: "pk-a", DisplayName: "anth", Provider: "anthropic", Adapter: "anthropic", Secret: "sk-ant-test-1234", APIBase: up.URL()}
	pk.SecretHost = pk.BaseHost()
	res := check(t, c, pk, keycheck.Request{Model: "claude-sonnet-4-5"})
	if !res.OK || res.Status != 200 {
		t.Fatalf("result %+v", res)
	}
	if reqs := up.Requests(); len(reqs) != 1 || reqs[0].Header.Get("X-Api-Key") != "sk-ant-test-1234" {
		t.Errorf("requests %+v", reqs)
	}
	res = check(t, c, pk, keycheck.Request{Model: "claude-sonnet-4-5"})
	if res.OK || res.Status != 401 || res.Error == "" || strings.Contains(res.Error+res.Hint, "sk-ant-test-1234") {
		t.Errorf("401 result %+v", res)
	}
}

func TestCheckGemini(t *testing.T) {
	up := proxytest.NewGemini("gem")
	up.Key = "AIzaSyD-test-key-1234"
	t.Cleanup(up.Close)
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	pk := storage.ProviderKey{ID: "pk-g", DisplayName: "gem", Provider: "google", Adapter: "gemini", Secret: "AIzaSyD-test-key-1234", APIBase: up.URL()}
	pk.SecretHost = pk.BaseHost()
	res := check(t, c, pk, keycheck.Request{Model: "gemini-2.5-flash"})
	if !res.OK || res.Status != 200 {
		t.Fatalf("result %+v", res)
	}
	if reqs := up.Requests(); len(reqs) != 1 || reqs[0].Header.Get("X-Goog-Api-Key") != "AIzaSyD-test-key-1234" {
		t.Errorf("requests %+v", reqs)
	}
	// Google answers a wrong key with a 400 API_KEY_INVALID: the hint is
	// about the credential.
	pk.Secret = "AIzaSyD-wrong-key-5678"
	res = check(t, c, pk, keycheck.Request{Model: "gemini-2.5-flash"})
	if res.OK || res.Status != 400 || !strings.Contains(res.Hint, "credentials") || !strings.Contains(res.Error, "API key not valid") ||
		strings.Contains(res.Error+res.Hint, "wrong-key") {
		t.Errorf("invalid key result %+v", res)
	}
}

// TestCheckVertexGemini: a vertex key's Gemini model is checked with one
// real generateContent under the key's bearer token; a token Vertex
// refuses is a 401 with the credentials hint, quoting no token.
func TestCheckVertexGemini(t *testing.T) {
	v := proxytest.NewVertex("vg", proxytest.VertexOptions{Token: "ya29.check-token"})
	t.Cleanup(v.Close)
	c := keycheck.New(keycheck.Options{})
	t.Cleanup(c.Close)
	pk := storage.ProviderKey{ID: "pk-v", DisplayName: "vtx", Provider: "vertex", Adapter: "vertex",
		Secret: `{"project":"proj-test","region":"us-central1","access_token":"ya29.check-token"}`, APIBase: v.URL()}
	pk.SecretHost = pk.BaseHost()
	res := check(t, c, pk, keycheck.Request{Model: "gemini-2.5-flash"})
	if !res.OK || res.Status != 200 {
		t.Fatalf("result %+v", res)
	}
	if reqs := v.Requests(); len(reqs) != 1 || reqs[0].Endpoint != proxytest.GeminiGenerate || reqs[0].Header.Get("Authorization") != "Bearer ya29.check-token" {
		t.Errorf("requests %+v", reqs)
	}
	pk.Secret = `{"project":"proj-test","region":"us-central1","access_token":"ya29.stale-token"}`
	res = check(t, c, pk, keycheck.Request{Model: "gemini-2.5-flash"})
	if res.OK || res.Status != 401 || !strings.Contains(res.Hint, "credentials") || strings.Contains(res.Error+res.Hint, "ya29.") {
		t.Errorf("refused token result %+v", res)
	}
}
