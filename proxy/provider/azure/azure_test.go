package azure_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/azure"
)

func TestChatURL(t *testing.T) {
	tests := []struct {
		name, base, deployment, version, want string
	}{
		{"resource URL", "https://myres.openai.azure.com", "gpt-4o", "",
			"https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"trailing slash", "https://myres.openai.azure.com/", "gpt-4o", "2025-01-01-preview",
			"https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2025-01-01-preview"},
		{"trailing /openai", "https://myres.openai.azure.com/openai/", "gpt-4o", "",
			"https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"pasted deployment path", " https://myres.openai.azure.com/openai/deployments/other/chat/completions?api-version=2023-05-15 ", "gpt-4o", "",
			"https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"bare resource name", "myres", "gpt-4o", "",
			"https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"bare name upper case", "MyRes-2", "gpt-4o", "",
			"https://myres-2.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"gateway prefix kept", "https://apim.example.com/aoai/openai", "gpt-4o", "",
			"https://apim.example.com/aoai/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"},
		{"port and http", "http://127.0.0.1:8080", "d", "",
			"http://127.0.0.1:8080/openai/deployments/d/chat/completions?api-version=2024-10-21"},
		{"deployment escaped", "myres", "my dep/../x?y#z", "",
			"https://myres.openai.azure.com/openai/deployments/my%20dep%2F..%2Fx%3Fy%23z/chat/completions?api-version=2024-10-21"},
		{"v1", "https://myres.openai.azure.com/openai/v1", "gpt-4o", "v1",
			"https://myres.openai.azure.com/openai/v1/chat/completions"},
		{"v1 bare name no deployment", "myres", "", "v1",
			"https://myres.openai.azure.com/openai/v1/chat/completions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, err := azure.ChatURL(tt.base, tt.deployment, tt.version)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.String(); got != tt.want {
				t.Errorf("ChatURL(%q, %q, %q) = %s\nwant %s", tt.base, tt.deployment, tt.version, got, tt.want)
			}
		})
	}
	for _, bad := range []struct{ name, base, deployment string }{
		{"empty", "", "d"},
		{"not http", "ftp://myres.openai.azure.com", "d"},
		{"user info", "https://u:hunter2@myres.openai.azure.com", "d"},
		{"no deployment", "myres", ""},
		{"space", "my res", "d"},
	} {
		t.Run("refused "+bad.name, func(t *testing.T) {
			_, err := azure.ChatURL(bad.base, bad.deployment, "")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q repeats a credential", err)
			}
		})
	}
}

func TestAPIKeyAuth(t *testing.T) {
	a, err := azure.NewAuth("0123456789abcdef", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Authorization": {"Bearer caller-key"}}
	if err := a.Apply(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if h.Get("api-key") != "0123456789abcdef" || h.Get("Authorization") != "" {
		t.Errorf("headers %v, want api-key only", h)
	}
}

// tokenServer is a fake Entra ID token endpoint that counts its requests
// and answers tokens that live expiresIn seconds.
func tokenServer(t *testing.T, expiresIn int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			t.Error(err)
		}
		f := r.PostForm
		if f.Get("grant_type") != "client_credentials" || f.Get("client_id") != "client-1" ||
			f.Get("client_secret") != "s3cret" || f.Get("scope") != azure.Scope {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`))
			return
		}
		i := n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"token_type": "Bearer", "expires_in": expiresIn,
			"access_token": "tok-" + string(rune('0'+i)),
		})
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

const entra = `{"tenant_id":"tenant-1","client_id":"client-1","client_secret":"s3cret"}`

func bearer(t *testing.T, a azure.Auth) string {
	t.Helper()
	h := http.Header{"Api-Key": {"stale"}}
	if err := a.Apply(t.Context(), h); err != nil {
		t.Fatal(err)
	}
	if h.Get("api-key") != "" {
		t.Errorf("api-key %q left beside a bearer token", h.Get("api-key"))
	}
	return h.Get("Authorization")
}

func TestEntraAuthCachesToken(t *testing.T) {
	srv, n := tokenServer(t, 3600)
	a, err := azure.NewAuth(entra, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if got := bearer(t, a); got != "Bearer tok-1" {
			t.Fatalf("Authorization = %q, want Bearer tok-1", got)
		}
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d token requests for 20 Apply calls, want 1", got)
	}
}

func TestEntraAuthConcurrent(t *testing.T) {
	srv, n := tokenServer(t, 3600)
	a, err := azure.NewAuth(entra, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			h := http.Header{}
			if err := a.Apply(t.Context(), h); err != nil || h.Get("Authorization") != "Bearer tok-1" {
				t.Errorf("Apply: %v, Authorization %q", err, h.Get("Authorization"))
			}
		})
	}
	wg.Wait()
	if got := n.Load(); got != 1 {
		t.Errorf("%d token requests for 16 concurrent Apply calls, want 1", got)
	}
}

func TestEntraAuthCanceled(t *testing.T) {
	srv, n := tokenServer(t, 3600)
	a, err := azure.NewAuth(entra, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := a.Apply(ctx, http.Header{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Apply with a canceled context: %v", err)
	}
	if n.Load() != 0 {
		t.Error("a canceled Apply fetched a token")
	}
}

func TestEntraAuthRefreshesNearExpiry(t *testing.T) {
	// A token that lives 30 s is inside the one-minute refresh margin, so
	// each Apply sees it as expired and fetches a new one.
	srv, n := tokenServer(t, 30)
	a, err := azure.NewAuth(entra, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if got := bearer(t, a); got != "Bearer tok-1" {
		t.Fatalf("first Authorization = %q", got)
	}
	if got := bearer(t, a); got != "Bearer tok-2" {
		t.Fatalf("second Authorization = %q, want a refreshed token", got)
	}
	if got := n.Load(); got != 2 {
		t.Errorf("%d token requests, want 2", got)
	}
}

func TestEntraAuthTokenError(t *testing.T) {
	srv, _ := tokenServer(t, 3600)
	a, err := azure.NewAuth(`{"tenant_id":"tenant-1","client_id":"client-1","client_secret":"wrong-v4lue"}`, srv.URL, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	err = a.Apply(t.Context(), http.Header{})
	if err == nil {
		t.Fatal("no error for a refused client secret")
	}
	if strings.Contains(err.Error(), "wrong-v4lue") {
		t.Errorf("error %q repeats the secret", err)
	}
}

func TestNewAuthRefusesBadSecrets(t *testing.T) {
	for name, secret := range map[string]string{
		"empty":         "  ",
		"broken JSON":   `{"tenant_id":"t-v4lue"`,
		"missing field": `{"tenant_id":"t-v4lue","client_id":"c-v4lue"}`,
		"empty field":   `{"tenant_id":"t-v4lue","client_id":"","client_secret":"s-v4lue"}`,
		"unknown field": `{"tenant_id":"t-v4lue","client_id":"c-v4lue","client_secret":"s-v4lue","x":"y"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := azure.NewAuth(secret, "", nil)
			if !errors.Is(err, azure.ErrInvalidSecret) {
				t.Fatalf("err = %v, want ErrInvalidSecret", err)
			}
			if strings.Contains(err.Error(), "v4lue") {
				t.Errorf("error %q repeats the secret", err)
			}
		})
	}
}

func TestTokenURL(t *testing.T) {
	if got, want := azure.TokenURL("contoso.onmicrosoft.com"), "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"; got != want {
		t.Errorf("TokenURL = %s, want %s", got, want)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status  int
		fixture string
		want    azure.Class
	}{
		{200, "", provider.ClassOK},
		{429, "rate_limited.json", provider.ClassRateLimited},
		{401, "unauthorized.json", provider.ClassAuth},
		{403, "forbidden.json", provider.ClassForbidden},
		{404, "deployment_not_found.json", provider.ClassNotFound},
		{400, "content_filter.json", provider.ClassContentPolicy},
		{400, "inner_policy_only.json", provider.ClassContentPolicy},
		{400, "context_length.json", provider.ClassContextLength},
		{400, "bad_request.json", provider.ClassBadRequest},
		{400, "", provider.ClassBadRequest},
		{422, "bad_request.json", provider.ClassBadRequest},
		{500, "server_error.json", provider.ClassServer},
		{503, "", provider.ClassServer},
	}
	for _, tt := range tests {
		t.Run(tt.fixture+" "+http.StatusText(tt.status), func(t *testing.T) {
			var body []byte
			if tt.fixture != "" {
				var err error
				if body, err = os.ReadFile(filepath.Join("testdata", tt.fixture)); err != nil {
					t.Fatal(err)
				}
			}
			if got := azure.Classify(tt.status, body); got != tt.want {
				t.Errorf("Classify(%d, %s) = %v, want %v", tt.status, tt.fixture, got, tt.want)
			}
		})
	}
	if !provider.ClassRateLimited.Retryable() || !provider.ClassServer.Retryable() || provider.ClassContentPolicy.Retryable() {
		t.Error("Retryable: want rate limits and server errors only")
	}
	if got := azure.ErrorCode([]byte(`{"error":{"code":"DeploymentNotFound"}}`)); got != "DeploymentNotFound" {
		t.Errorf("ErrorCode = %q", got)
	}
	if got := azure.ErrorCode([]byte(`{"error":{"code":429}}`)); got != "429" {
		t.Errorf("ErrorCode of a number = %q", got)
	}
}

// TestSovereignClouds: a resource in Azure Government or Azure China gets
// its token from that cloud's authority, for that cloud's audience.
func TestSovereignClouds(t *testing.T) {
	for host, want := range map[string][2]string{
		"myres.openai.azure.com": {"https://login.microsoftonline.com", azure.Scope},
		"myres.openai.azure.us":  {"https://login.microsoftonline.us", "https://cognitiveservices.azure.us/.default"},
		"MyRes.OpenAI.Azure.CN":  {"https://login.chinacloudapi.cn", "https://cognitiveservices.azure.cn/.default"},
		"apim.example.com":       {"https://login.microsoftonline.com", azure.Scope},
	} {
		if a, s := azure.AuthorityFor(host), azure.ScopeFor(host); a != want[0] || s != want[1] {
			t.Errorf("%s: authority %s scope %s, want %v", host, a, s, want)
		}
	}
}
