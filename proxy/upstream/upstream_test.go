package upstream_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/upstream"
)

// countConns counts the connections a test server accepts.
func countConns(srv *httptest.Server) *atomic.Int64 {
	var n atomic.Int64
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			n.Add(1)
		}
	}
	return &n
}

func post(t *testing.T, ctx context.Context, tr http.RoundTripper, url, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestKeepAliveAndStreaming: answers with a length and chunked streams
// come back whole, each event as it is flushed, and the connection is
// reused once a body is read to its end.
func TestKeepAliveAndStreaming(t *testing.T) {
	next := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				io.WriteString(w, "data: "+string(b)+"\n\n")
				w.(http.Flusher).Flush()
				if i < 2 {
					<-next
				}
			}
			return
		}
		io.WriteString(w, "echo:"+string(b))
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	tr := upstream.New(&http.Transport{})
	defer tr.CloseIdleConnections()

	for i := range 3 {
		resp := post(t, context.Background(), tr, srv.URL+"/plain", "hi")
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "echo:hi" || resp.StatusCode != 200 {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, b, err)
		}
	}
	resp := post(t, context.Background(), tr, srv.URL+"/stream", "ev")
	buf := make([]byte, 64)
	for i := range 3 {
		n, err := io.ReadAtLeast(resp.Body, buf, len("data: ev\n\n"))
		if err != nil || string(buf[:n]) != "data: ev\n\n" {
			t.Fatalf("event %d: %q %v", i, buf[:n], err)
		}
		if i < 2 {
			next <- struct{}{}
		}
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 4 sequential requests, want 1 (keep-alive)", n)
	}
}

// TestCancelClosesUpstream: the request's context ending mid-stream closes
// the upstream connection at once, and the body read returns its cause.
func TestCancelClosesUpstream(t *testing.T) {
	gone := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: 1\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	defer srv.Close()
	tr := upstream.New(&http.Transport{})
	cause := errors.New("caller hung up")
	ctx, cancel := context.WithCancelCause(context.Background())
	resp := post(t, ctx, tr, srv.URL, "x")
	buf := make([]byte, 64)
	if _, err := resp.Body.Read(buf); err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() { _, err := resp.Body.Read(buf); readErr <- err }()
	cancel(cause)
	select {
	case err := <-readErr:
		if !errors.Is(err, cause) {
			t.Errorf("read after cancel: %v, want the cause", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("read did not return after cancel")
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream did not see the hang-up")
	}
}

// TestStaleIdleConnection: a pooled connection the upstream closed while
// idle is noticed (or retried once) and the request still succeeds.
func TestStaleIdleConnection(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	tr := upstream.New(&http.Transport{})
	defer tr.CloseIdleConnections()
	for i := range 2 {
		resp := post(t, context.Background(), tr, srv.URL, "x")
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || string(b) != "ok" {
			t.Fatalf("request %d: %q %v", i, b, err)
		}
		if i == 0 {
			srv.CloseClientConnections()
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2 (the closed one replaced)", n)
	}
}

// TestTLSOrigins: an origin that negotiates h2 over TLS is served by the
// base transport over HTTP/2; one that only speaks HTTP/1.1 is served by
// the Transport itself, with keep-alive.
func TestTLSOrigins(t *testing.T) {
	for _, tt := range []struct {
		name      string
		h2        bool
		wantMajor int
		wantProto string
	}{{"h2", true, 2, "HTTP/2.0"}, {"http1", false, 1, "HTTP/1.1"}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, r.Proto)
			}))
			conns := countConns(srv)
			srv.EnableHTTP2 = tt.h2
			srv.StartTLS()
			defer srv.Close()
			base := srv.Client().Transport.(*http.Transport).Clone()
			base.ForceAttemptHTTP2 = true
			tr := upstream.New(base)
			defer tr.CloseIdleConnections()
			for range 3 {
				resp := post(t, context.Background(), tr, srv.URL, "x")
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.ProtoMajor != tt.wantMajor || string(b) != tt.wantProto {
					t.Fatalf("served over %s (%q), want %s", resp.Proto, b, tt.wantProto)
				}
			}
			// HTTP/1.1: one connection for all three. h2: the ALPN probe's
			// connection, then the base's one.
			if want := map[bool]int64{false: 1, true: 2}[tt.h2]; conns.Load() != want {
				t.Errorf("%d TLS connections for 3 requests, want %d", conns.Load(), want)
			}
		})
	}
}

// TestUnreadBodyClosesConnection: a body closed before its end is not
// pooled (its rest would be read as the next answer).
func TestUnreadBodyClosesConnection(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 100000))
	}))
	conns := countConns(srv)
	srv.Start()
	defer srv.Close()
	tr := upstream.New(&http.Transport{})
	defer tr.CloseIdleConnections()
	resp := post(t, context.Background(), tr, srv.URL, "x")
	resp.Body.Close()
	resp = post(t, context.Background(), tr, srv.URL, "x")
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(b) != 100000 {
		t.Fatalf("second answer: %d bytes, %v", len(b), err)
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
