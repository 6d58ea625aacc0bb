package providerkey_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
)

// fakeOpenAI answers chat completions as OpenAI does: 401 invalid_api_key
// (quoting the key it got) unless the key is primarySecret, a
// chat.completion otherwise.
func fakeOpenAI(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); key != primarySecret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided: `+key+`.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
			return
		}
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"P"},"finish_reason":"length"}]}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func TestProviderKeyTest(t *testing.T) {
	base := fakeOpenAI(t)
	const wrongSecret = "sk-wrong-test-secret-9999"
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		e.Must(primarySecret, "provider-key", "create", "--name", "good", "--provider", "openai", "--api-base", base, "--secret-stdin", "-q")
		e.Must(wrongSecret, "provider-key", "create", "--name", "wrong", "--provider", "openai", "--api-base", base, "--secret-stdin", "-q")
		e.Must(primarySecret, "provider-key", "create", "--name", "unused", "--provider", "openai", "--api-base", base, "--secret-stdin", "-q")
		e.Must("", "model", "create", "--name", "good-direct", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "good", "-q")
		e.Must("", "model", "create", "--name", "wrong-direct", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "wrong", "-q")

		var res map[string]any
		r := e.Must("", "provider-key", "test", "good", "-o", "json")
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("-o json %q: %v", r.Stdout, err)
		}
		for _, k := range []string{"status", "ok", "latency_ms", "error", "hint", "model", "url_host"} {
			if _, ok := res[k]; !ok {
				t.Errorf("-o json lacks %q: %s", k, r.Stdout)
			}
		}
		if len(res) != 7 || res["status"] != float64(200) || res["ok"] != true || res["model"] != "gpt-4o-mini" || res["error"] != "" {
			t.Errorf("-o json %s", r.Stdout)
		}

		e.TTY = true
		r = e.Must("", "provider-key", "test", "good", "--model", "gpt-x")
		if !strings.Contains(r.Stdout, "status:        200 OK") || !strings.Contains(r.Stdout, "model:         gpt-x") || strings.Contains(r.Stdout, "hint") {
			t.Errorf("table:\n%s", r.Stdout)
		}

		r = e.Run("", "provider-key", "test", "wrong")
		if r.Code != 1 || r.Stderr != "" || !strings.Contains(r.Stdout, "status:        401 Unauthorized") ||
			!strings.Contains(r.Stdout, "error:         Incorrect API key provided: [key]. (invalid_api_key)") ||
			!strings.Contains(r.Stdout, "hint:          credentials: the upstream rejects the secret; enter it again: aisix provider-key update wrong --secret-stdin") {
			t.Errorf("401: exit %d\nstdout:\n%s\nstderr: %q", r.Code, r.Stdout, r.Stderr)
		}
		if strings.Contains(r.Stdout+r.Stderr, wrongSecret) {
			t.Errorf("the output holds the secret")
		}
		e.TTY = false
		r = e.Run("", "provider-key", "test", "wrong", "-o", "json")
		if r.Code != 1 || !strings.Contains(r.Stdout, `"status": 401`) || strings.Contains(r.Stdout, wrongSecret) {
			t.Errorf("401 -o json: exit %d %s", r.Code, r.Stdout)
		}

		r = e.Run("", "provider-key", "test", "unused")
		if r.Code != 1 || r.Stderr != "aisix: provider key \"unused\": no direct model uses it; give --model\n" {
			t.Errorf("no model: exit %d stderr %q", r.Code, r.Stderr)
		}
		r = e.Run("", "provider-key", "test", "nope")
		if r.Code != 1 || r.Stderr != "aisix: provider key \"nope\" not found\n" {
			t.Errorf("unknown key: exit %d stderr %q", r.Code, r.Stderr)
		}
		for _, to := range []string{"0", "1h", "soon"} {
			if r := e.Run("", "provider-key", "test", "good", "--timeout", to); r.Code != 2 || !strings.Contains(r.Stderr, "--timeout") {
				t.Errorf("--timeout %s: exit %d stderr %q", to, r.Code, r.Stderr)
			}
		}
	})
}
