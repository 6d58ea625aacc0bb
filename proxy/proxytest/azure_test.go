package proxytest_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
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
