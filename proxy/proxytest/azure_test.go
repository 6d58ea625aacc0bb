package proxytest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/azure"
	"github.com/aisix/aisix/proxy/proxytest"
)

// azurePost sends body to the chat URL of deployment on a, with auth.
func azurePost(t *testing.T, a *proxytest.Azure, auth azure.Auth, deployment, version, body string) (*http.Response, string) {
	t.Helper()
	u, err := azure.ChatURL(a.URL(), deployment, version)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u.String(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != nil {
		if err := auth.Apply(t.Context(), req.Header); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func mustAuth(t *testing.T, secret string) azure.Auth {
	t.Helper()
	a, err := azure.NewAuth(secret, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestAzure(t *testing.T) {
	a := proxytest.NewAzure(proxytest.AzureOptions{APIKey: "azure-key-0123456789", Deployments: []string{"gpt-4o", "my dep"}})
	t.Cleanup(a.Close)
	key := mustAuth(t, "azure-key-0123456789")
	const chat = `{"messages":[{"role":"user","content":"hi"}]}`

	t.Run("completion", func(t *testing.T) {
		resp, body := azurePost(t, a, key, "gpt-4o", "", chat)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		var out struct {
			Object  string `json:"object"`
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.Object != "chat.completion" || len(out.Choices) != 1 || out.Choices[0].Message.Content == "" {
			t.Errorf("body %s (%v), want an OpenAI chat.completion", body, err)
		}
		last := a.Requests()[len(a.Requests())-1]
		if last.Deployment != "gpt-4o" || last.APIVersion != azure.DefaultAPIVersion || last.Auth != "api-key" {
			t.Errorf("request %+v", last)
		}
	})
	t.Run("escaped deployment", func(t *testing.T) {
		resp, body := azurePost(t, a, key, "my dep", "2025-01-01-preview", chat)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if last := a.Requests()[len(a.Requests())-1]; last.Deployment != "my dep" {
			t.Errorf("deployment %q, want %q", last.Deployment, "my dep")
		}
	})
	t.Run("v1", func(t *testing.T) {
		resp, body := azurePost(t, a, key, "", azure.APIVersionV1, `{"model":"gpt-4o","messages":[]}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if last := a.Requests()[len(a.Requests())-1]; last.Deployment != "gpt-4o" || last.Path != "/openai/v1/chat/completions" {
			t.Errorf("request %+v", last)
		}
	})
	t.Run("stream", func(t *testing.T) {
		resp, body := azurePost(t, a, key, "gpt-4o", "", `{"stream":true,"messages":[]}`)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
			t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		var content strings.Builder
		var events []string
		sc := bufio.NewScanner(strings.NewReader(body))
		for sc.Scan() {
			data, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			events = append(events, data)
			var ch struct {
				Choices []struct {
					Delta struct{ Content string } `json:"delta"`
				} `json:"choices"`
			}
			if data != "[DONE]" && json.Unmarshal([]byte(data), &ch) == nil && len(ch.Choices) > 0 {
				content.WriteString(ch.Choices[0].Delta.Content)
			}
		}
		if content.String() != "Hello from Azure." || events[len(events)-1] != "[DONE]" {
			t.Errorf("streamed %q in %d events", content.String(), len(events))
		}
	})
	for _, tt := range []struct {
		name       string
		auth       azure.Auth
		deployment string
		version    string
		body       string
		status     int
		class      azure.Class
		code       string
	}{
		{"wrong key", mustAuth(t, "wrong-key-0123456789"), "gpt-4o", "", chat, 401, provider.ClassAuth, "401"},
		{"no key", nil, "gpt-4o", "", chat, 401, provider.ClassAuth, "401"},
		{"unknown deployment", key, "gpt-5", "", chat, 404, provider.ClassNotFound, "DeploymentNotFound"},
		{"bad api-version", key, "gpt-4o", "latest", chat, 404, provider.ClassNotFound, "404"},
		{"content filter", key, "gpt-4o", "", `{"messages":[{"role":"user","content":"` + proxytest.AzureFilterTrigger + `"}]}`, 400, provider.ClassContentPolicy, "content_filter"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := azurePost(t, a, tt.auth, tt.deployment, tt.version, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if got := azure.Classify(resp.StatusCode, []byte(body)); got != tt.class {
				t.Errorf("class %v, want %v", got, tt.class)
			}
			if got := azure.ErrorCode([]byte(body)); got != tt.code {
				t.Errorf("code %q, want %q", got, tt.code)
			}
		})
	}
	t.Run("rate limited", func(t *testing.T) {
		a.RateLimitNext(1, "6")
		resp, body := azurePost(t, a, key, "gpt-4o", "", chat)
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "6" {
			t.Fatalf("status %d retry-after %q: %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
		if azure.Classify(resp.StatusCode, []byte(body)) != provider.ClassRateLimited {
			t.Error("not classified as rate limited")
		}
		if resp, _ := azurePost(t, a, key, "gpt-4o", "", chat); resp.StatusCode != http.StatusOK {
			t.Errorf("status after the rate limit %d, want 200", resp.StatusCode)
		}
	})
}

func TestAzureBearer(t *testing.T) {
	tokens := http.NewServeMux()
	tokens.HandleFunc("POST /token", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"entra-token"}`)
	})
	srv := httptest.NewServer(tokens)
	t.Cleanup(srv.Close)
	a := proxytest.NewAzure(proxytest.AzureOptions{Token: "entra-token"})
	t.Cleanup(a.Close)
	auth, err := azure.NewAuth(`{"tenant_id":"t","client_id":"c","client_secret":"s"}`, srv.URL+"/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := azurePost(t, a, auth, "gpt-4o", "", `{"messages":[]}`)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if last := a.Requests()[0]; last.Auth != "bearer" {
		t.Errorf("auth %q, want bearer", last.Auth)
	}
	// The api-key of another resource is not accepted where a token is.
	resp, _ = azurePost(t, a, mustAuth(t, "entra-token"), "gpt-4o", "", `{"messages":[]}`)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("api-key on a token-only resource: status %d, want 401", resp.StatusCode)
	}
}

func TestAzureNext(t *testing.T) {
	a := proxytest.NewAzure(proxytest.AzureOptions{APIKey: "azure-key-0123456789"})
	t.Cleanup(a.Close)
	key := mustAuth(t, "azure-key-0123456789")
	const chat = `{"messages":[{"role":"user","content":"hi"}]}`
	a.Next(proxytest.AzureServerError(503), proxytest.AzureFilteredCompletion())
	// A request that fails authentication uses none of them.
	if resp, _ := azurePost(t, a, nil, "gpt-4o", "", chat); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no key: status %d", resp.StatusCode)
	}
	resp, body := azurePost(t, a, key, "gpt-4o", "", chat)
	if resp.StatusCode != http.StatusServiceUnavailable || azure.Classify(resp.StatusCode, []byte(body)) != provider.ClassServer {
		t.Errorf("first: status %d: %s", resp.StatusCode, body)
	}
	resp, body = azurePost(t, a, key, "gpt-4o", "", chat)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"finish_reason":"content_filter"`) || !strings.Contains(body, `"filtered":true`) {
		t.Errorf("second: status %d: %s", resp.StatusCode, body)
	}
	if resp, body = azurePost(t, a, key, "gpt-4o", "", chat); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello from Azure.") {
		t.Errorf("third (normal again): status %d: %s", resp.StatusCode, body)
	}
	if a.Hits() != 4 {
		t.Errorf("hits %d, want 4", a.Hits())
	}
}

func TestEntra(t *testing.T) {
	en := proxytest.NewEntra(proxytest.EntraOptions{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "s3cret-value", ExpiresIn: 1800})
	t.Cleanup(en.Close)
	a := proxytest.NewAzure(proxytest.AzureOptions{Entra: en})
	t.Cleanup(a.Close)
	auth, err := azure.NewAuthAt(en.Secret(), en.Authority(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if resp, body := azurePost(t, a, auth, "gpt-4o", "", `{"messages":[]}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
	}
	if en.Hits() != 1 || en.Issued() != 1 {
		t.Errorf("token requests %d, issued %d; want 1, 1", en.Hits(), en.Issued())
	}
	if last := a.Requests()[2]; last.Auth != "bearer" {
		t.Errorf("auth %q, want bearer", last.Auth)
	}
	// A token not issued by it is refused.
	if resp, _ := azurePost(t, a, mustAuth(t, "not-a-token"), "gpt-4o", "", `{"messages":[]}`); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("unknown token: status %d, want 401", resp.StatusCode)
	}

	post := func(tenant string, form url.Values) (int, string) {
		resp, err := http.PostForm(en.Authority()+"/"+tenant+"/oauth2/v2.0/token", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	good := url.Values{"grant_type": {"client_credentials"}, "client_id": {"client-1"}, "client_secret": {"s3cret-value"}, "scope": {azure.Scope}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vs := range good {
			f[key] = vs
		}
		f.Set(k, v)
		return f
	}
	for _, tt := range []struct {
		name   string
		tenant string
		form   url.Values
		status int
		code   string
	}{
		{"ok", "tenant-1", good, 200, ""},
		{"wrong secret", "tenant-1", with("client_secret", "nope"), 401, "invalid_client"},
		{"wrong tenant", "tenant-2", good, 400, "invalid_request"},
		{"wrong client", "tenant-1", with("client_id", "client-2"), 400, "unauthorized_client"},
		{"wrong scope", "tenant-1", with("scope", "https://graph.microsoft.com/.default"), 400, "invalid_scope"},
		{"wrong grant", "tenant-1", with("grant_type", "password"), 400, "unsupported_grant_type"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := post(tt.tenant, tt.form)
			var out struct {
				Error       string `json:"error"`
				AccessToken string `json:"access_token"`
				ExpiresIn   int    `json:"expires_in"`
			}
			if err := json.Unmarshal([]byte(body), &out); err != nil || status != tt.status || out.Error != tt.code {
				t.Fatalf("status %d error %q (%v), want %d %q: %s", status, out.Error, err, tt.status, tt.code, body)
			}
			if tt.code == "" && (out.AccessToken == "" || out.ExpiresIn != 1800 || !en.Valid(out.AccessToken)) {
				t.Errorf("token answer %s", body)
			}
		})
	}
	en.FailNext(503)
	if status, _ := post("tenant-1", good); status != 503 {
		t.Errorf("FailNext(503): status %d", status)
	}
	en.SetExpiresIn(30)
	if _, body := post("tenant-1", good); !strings.Contains(body, `"expires_in":30`) {
		t.Errorf("SetExpiresIn: %s", body)
	}
}
