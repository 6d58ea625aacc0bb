package e2e

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
)

// TestProvidersGemini: a Gemini (AI Studio) provider key made with the
// README's CLI commands, through the real binary: chat (plain and
// streamed) and embeddings reach proxytest's fake Gemini API (written
// from Google's reference; it refuses a missing or wrong key and unknown
// request fields) and come back in OpenAI's shape under the alias.
func TestProvidersGemini(t *testing.T) {
	t.Parallel()
	const secret = "AIzaSyD-e2e-gemini-0000000001"
	fake := proxytest.NewGemini("gemini-e2e")
	fake.Key = secret
	t.Cleanup(fake.Close)
	g := startGateway(t, serveOptions{})
	g.cli(t, secret, nil, "provider-key", "create", "--name", "gemini-main", "--provider", "google", "--adapter", "gemini",
		"--api-base", fake.URL(), "--secret-stdin", "-q")
	g.cli(t, "", nil, "model", "create", "--name", "gemini-flash", "--provider", "google", "--model-name", "gemini-2.5-flash",
		"--provider-key", "gemini-main", "-q")
	g.cli(t, "", nil, "model", "create", "--name", "gemini-embed", "--provider", "google", "--model-name", "gemini-embedding-001",
		"--provider-key", "gemini-main", "-q")
	const key = "sk-e2e-gemini-caller"
	g.createCallerKey(t, key, "gemini-flash", "gemini-embed")

	var a answer
	for deadline := time.Now().Add(10 * time.Second); ; {
		a = g.mustChat(t, key, chatBody("gemini-flash", false), nil, 5*time.Second)
		if a.status == http.StatusOK || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if a.status != http.StatusOK || !strings.Contains(string(a.body), `"model":"gemini-flash"`) ||
		!strings.Contains(string(a.body), `"content":"hello from gemini-e2e"`) {
		t.Fatalf("plain chat:\n%s", a.dump())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := g.chat(ctx, key, chatBody("gemini-flash", true), nil)
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := readSSE(resp.Body, time.Now(), nil)
	resp.Body.Close()
	var text strings.Builder
	for _, ev := range evs {
		text.WriteString(contentOf(ev))
	}
	if resp.StatusCode != 200 || text.String() != "hello from gemini-e2e" || lastEvent(evs).data != "[DONE]" {
		t.Errorf("stream: %d %q %+v", resp.StatusCode, text.String(), evs)
	}

	req, _ := http.NewRequest(http.MethodPost, g.proxy+"/v1/embeddings", strings.NewReader(`{"model":"gemini-embed","input":["a","b"]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	er, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer er.Body.Close()
	var body strings.Builder
	_, _ = io.Copy(&body, er.Body)
	if er.StatusCode != 200 || !strings.Contains(body.String(), `"index":1`) || !strings.Contains(body.String(), `"model":"gemini-embed"`) {
		t.Errorf("embeddings: %d %s", er.StatusCode, body.String())
	}
	for _, r := range fake.Requests() {
		if r.Header.Get("X-Goog-Api-Key") != secret || r.Header.Get("Authorization") != "" || strings.Contains(r.Path, "key=") {
			t.Errorf("upstream request %s headers %v", r.Path, r.Header)
		}
	}
}
