package proxy_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
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

// frozenRelay forwards TCP between a listener and target until frozen;
// after that it swallows every byte both ways without closing, as a dead
// network path does.
type frozenRelay struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
}

func newFrozenRelay(t *testing.T, target string) *frozenRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &frozenRelay{ln: ln, target: target}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go r.pipe(u, c)
			go r.pipe(c, u)
		}
	}()
	return r
}

func (r *frozenRelay) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if r.frozen.Load() {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestHTTP2DeadConnectionPinged: a committed stream on an HTTP/2 upstream
// connection that goes dead (no bytes either way, nothing closed) ends
// once the transport's ping goes unanswered, long before the stream's own
// idle bound.
func TestHTTP2DeadConnectionPinged(t *testing.T) {
	up := proxytest.NewTLS("h2-upstream", proxytest.Stream(proxytest.StreamOptions{Chunks: []string{"a", "b"}, StallAfter: 1}))
	t.Cleanup(up.Close)
	relay := newFrozenRelay(t, strings.TrimPrefix(up.URL(), "https://"))
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-h2", "https://"+relay.ln.Addr().String()+"/v1")},
		Models:       []storage.Model{directModel("gpt-4o-h2", "pk-h2", withStreamTimeout(120_000))},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	pool := x509.NewCertPool()
	pool.AddCert(up.Certificate())
	tr := proxy.NewTransport(2 * time.Second)
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	tr.HTTP2.SendPingTimeout, tr.HTTP2.PingTimeout = 200*time.Millisecond, 200*time.Millisecond
	t.Cleanup(tr.CloseIdleConnections)
	e := newEnv(t, ds, func(o *proxy.Options) { o.Transport = tr })

	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o-h2", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || !strings.Contains(line, `"content":"a"`) {
		t.Fatalf("first chunk %q: %v", line, err)
	}
	relay.frozen.Store(true)
	start := time.Now()
	rest, _ := io.ReadAll(br)
	if !strings.Contains(string(rest), "event: error") || strings.Contains(string(rest), "[DONE]") {
		t.Errorf("stream on a dead connection ended with %q, want an error event", rest)
	}
	if took := time.Since(start); took > 30*time.Second {
		t.Errorf("dead connection noticed after %v", took)
	}
}
