package serve

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestServeMetrics: serve answers /metrics on its own listener, behind the
// configured token, with a refused proxied request counted.
func TestServeMetrics(t *testing.T) {
	c := testConfig(t)
	c.AdminKey = "test-admin-key-123"
	c.ProxyAddr, c.Metrics.Addr = freeAddr(t), freeAddr(t)
	c.Metrics.Token = "scrape-token-456"
	logs := &syncBuffer{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logs, "test") }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s of cancel")
		}
	}()
	logs.waitFor(t, `"metrics_addr":"`+c.Metrics.Addr+`"`)

	resp, err := http.Post("http://"+c.ProxyAddr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"nope","messages":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	scrape := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+c.Metrics.Addr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := scrape(""); code != http.StatusUnauthorized {
		t.Fatalf("scrape without the token: %d, want 401", code)
	}
	// The answer reaches the client (the access line flushes it) just
	// before the handler returns and the in-flight gauge drops: scrape
	// until it has.
	code, body := scrape(c.Metrics.Token)
	for deadline := time.Now().Add(10 * time.Second); code == 200 && !strings.Contains(body, "aisix_requests_in_flight 0\n") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		code, body = scrape(c.Metrics.Token)
	}
	if code != 200 {
		t.Fatalf("scrape: %d", code)
	}
	for _, want := range []string{
		`aisix_requests_total{alias="",endpoint="/v1/chat/completions",outcome="error",status_class="4xx",wire="openai"} 1`,
		`aisix_build_info{version="test"} 1`,
		"aisix_requests_in_flight 0",
		"aisix_config_reloads_total 0",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("exposition lacks %s", want)
		}
	}
	if strings.Contains(logs.String(), c.Metrics.Token) {
		t.Error("the metrics token reached the log")
	}
}
