package proxytest_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/proxytest"
)

func postGemini(t *testing.T, u *proxytest.GeminiUpstream, path, key, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u.URL()+path, strings.NewReader(body))
	if key != "" {
		req.Header.Set("X-Goog-Api-Key", key)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestGeminiFakeChecks: the fake refuses what Google's API refuses.
func TestGeminiFakeChecks(t *testing.T) {
	u := proxytest.NewGemini("g")
	defer u.Close()
	u.Key = "AIza-good"
	const ok = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}`
	for _, tt := range []struct {
		name, path, key, body string
		status                int
		want                  string
	}{
		{"no key", "/v1beta/models/gemini-2.5-flash:generateContent", "", ok, 403, `"status":"PERMISSION_DENIED"`},
		{"wrong key", "/v1beta/models/gemini-2.5-flash:generateContent", "AIza-bad", ok, 400, `"reason":"API_KEY_INVALID"`},
		{"unknown field", "/v1beta/models/gemini-2.5-flash:generateContent", "AIza-good", `{"model":"x","contents":[{"parts":[{"text":"hi"}]}]}`, 400, `Unknown name \"model\"`},
		{"no contents", "/v1beta/models/gemini-2.5-flash:generateContent", "AIza-good", `{}`, 400, "contents is not specified"},
		{"bad role", "/v1beta/models/gemini-2.5-flash:generateContent", "AIza-good", `{"contents":[{"role":"assistant","parts":[{"text":"hi"}]}]}`, 400, "valid role"},
		{"bad method", "/v1beta/models/gemini-2.5-flash:chat", "AIza-good", ok, 404, "NOT_FOUND"},
		{"batch model mismatch", "/v1beta/models/e:batchEmbedContents", "AIza-good", `{"requests":[{"model":"models/other","content":{"parts":[{"text":"a"}]}}]}`, 400, "models/e"},
		{"ok", "/v1beta/models/gemini-2.5-flash:generateContent", "AIza-good", ok, 200, `"text":"hello from g"`},
		{"stream sse", "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse", "AIza-good", ok, 200, "data: {\"candidates\""},
		{"stream array", "/v1beta/models/gemini-2.5-flash:streamGenerateContent", "AIza-good", ok, 200, `[{"candidates"`},
		{"embed", "/v1beta/models/e:embedContent", "AIza-good", `{"content":{"parts":[{"text":"a"}]}}`, 200, `{"embedding":{"values":[0.25,-0.5,1]}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postGemini(t, u, tt.path, tt.key, tt.body)
			if status != tt.status || !strings.Contains(body, tt.want) {
				t.Errorf("%d %s, want %d and %s", status, body, tt.status, tt.want)
			}
		})
	}
	if n := u.Hits(); n != 4 {
		t.Errorf("hits = %d, want 4 (only accepted requests reach the script)", n)
	}
	if strings.Count(func() string {
		_, b := postGemini(t, u, "/v1beta/models/m:streamGenerateContent?alt=sse", "AIza-good", ok)
		return b
	}(), "\r\n\r\n") != 4 {
		t.Error("SSE events are not CRLF-separated")
	}
}
