package proxy_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// TestHTTP2 keeps both HTTP/2 legs of the contract: callers that speak
// HTTP/2 to the proxy, and upstreams that offer HTTP/2 over TLS (as real
// providers do) reached through the default transport, plain and streaming.
func TestHTTP2(t *testing.T) {
	up := proxytest.NewTLS("h2-upstream")
	t.Cleanup(up.Close)
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-h2", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-h2", "pk-h2")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	tr := proxy.NewTransport(2 * time.Second)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	t.Cleanup(tr.CloseIdleConnections)
	e := newEnv(t, ds, func(o *proxy.Options) { o.Transport = tr })

	// The same handler behind an HTTP/2 TLS listener, for HTTP/2 callers.
	front := httptest.NewUnstartedServer(e.srv)
	front.EnableHTTP2 = true
	front.StartTLS()
	t.Cleanup(front.Close)
	h2client := front.Client()
	h2client.Timeout = 30 * time.Second

	for _, tt := range []struct {
		name   string
		stream bool
	}{{"plain", false}, {"stream", true}} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, front.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o-h2", tt.stream)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+callerKey)
			resp, err := h2client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("read answer: %v", err)
			}
			if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
				t.Fatalf("status %d over HTTP/%d: %s", resp.StatusCode, resp.ProtoMajor, body)
			}
			wantHeader(t, resp.Header, "X-Aisix-Served-By", "gpt-4o-h2")
			if resp.Header.Get("X-Aisix-Call-Id") == "" || !strings.HasPrefix(resp.Header.Get("Server"), "AISIX/") {
				t.Errorf("headers %v", resp.Header)
			}
			if !strings.Contains(string(body), `"model":"gpt-4o-h2"`) || strings.Contains(string(body), `"model":"gpt-4o-mini"`) {
				t.Errorf("answer does not carry the alias as its model: %s", body)
			}
			if tt.stream && !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
				t.Errorf("stream does not end with [DONE]: %q", body)
			}
			reqs := up.Requests()
			if last := reqs[len(reqs)-1]; last.ProtoMajor != 2 || last.Stream != tt.stream || last.Model != "gpt-4o-mini" {
				t.Errorf("upstream got HTTP/%d stream=%v model=%q, want HTTP/2 stream=%v model gpt-4o-mini", last.ProtoMajor, last.Stream, last.Model, tt.stream)
			}
		})
	}
	// And an HTTP/1.1 caller on the same proxy still reaches the HTTP/2 upstream.
	if r := e.chat("gpt-4o-h2"); r.status != http.StatusOK {
		t.Errorf("HTTP/1.1 caller: status %d: %s", r.status, r.body)
	}
}
