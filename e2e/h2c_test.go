package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestH2C: a caller speaking HTTP/2 by prior knowledge on the plain proxy
// listener (h2c, as sidecars and gRPC-style clients do) is served, and a
// stream's events reach it one by one while the upstream is still sending.
func TestH2C(t *testing.T) {
	gate := make(chan struct{})
	up := newUpstream(t, "h2c-up", "", func(w http.ResponseWriter, c *upstreamCall) {
		if !c.stream {
			okReply("h2c-up")(w, c)
			return
		}
		s := startSSE(w, c)
		if !s.role() || !s.content("first ") {
			return
		}
		// The rest waits until the caller has the first event: a proxy
		// that buffered the stream would deadlock here (bounded below).
		select {
		case <-gate:
		case <-c.done:
			return
		}
		_ = s.content("second") && s.finish()
	})
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protos}
	t.Cleanup(tr.CloseIdleConnections)
	// The readiness checks go over h2c too.
	g := startGateway(t, serveOptions{client: &http.Client{Transport: tr, Timeout: 60 * time.Second}})
	pk := g.create(t, "provider_keys", map[string]any{"display_name": "up", "provider": "openai", "secret": primarySecret, "api_base": up.base})
	g.create(t, "models", map[string]any{"display_name": "gpt-h2c", "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pk})
	g.createCallerKey(t, callerKey, "gpt-h2c")

	t.Run("completion", func(t *testing.T) {
		a := g.mustChat(t, callerKey, chatBody("gpt-h2c", false), nil, 30*time.Second)
		if a.status != http.StatusOK || !strings.Contains(string(a.body), "hello from h2c-up") {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	})

	t.Run("stream flushed per event", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := g.chat(ctx, callerKey, chatBody("gpt-h2c", true), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || resp.TLS != nil {
			t.Fatalf("status %d over HTTP/%d (tls %v)", resp.StatusCode, resp.ProtoMajor, resp.TLS != nil)
		}
		var got strings.Builder
		_, err = readSSE(resp.Body, time.Now(), func(ev sseEvent) {
			c := contentOf(ev)
			got.WriteString(c)
			if c == "first " {
				close(gate)
			}
		})
		if err != nil {
			t.Fatalf("reading the stream: %v (so far %q)", err, got.String())
		}
		if got.String() != "first second" {
			t.Fatalf("content %q", got.String())
		}
	})

	t.Run("HTTP/1.1 on the same listener", func(t *testing.T) {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(g.proxy, "http://"), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := io.WriteString(conn, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.ProtoMajor != 1 || resp.StatusCode != http.StatusOK {
			t.Fatalf("HTTP/%d status %d", resp.ProtoMajor, resp.StatusCode)
		}
	})
}
