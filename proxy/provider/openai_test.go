package provider

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestTransportErrorText(t *testing.T) {
	dial := func(err error) error {
		return &url.Error{Op: "Post", URL: "http://10.9.8.7:4000/v1/chat/completions",
			Err: &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(10, 9, 8, 7), Port: 4000}, Err: err}}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{name: "refused", err: dial(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}), want: "connection refused"},
		{name: "reset", err: dial(&os.SyscallError{Syscall: "read", Err: syscall.ECONNRESET}), want: "connection reset by upstream"},
		{name: "no such host", err: dial(&net.DNSError{Err: "no such host", Name: "api.openai.invalid", IsNotFound: true}), want: "DNS lookup failed: no such host"},
		{name: "dns other", err: dial(&net.DNSError{Err: "server misbehaving", Name: "x"}), want: "DNS lookup failed"},
		{name: "unreachable", err: dial(syscall.EHOSTUNREACH), want: "upstream host unreachable"},
		{name: "tls", err: dial(x509.UnknownAuthorityError{}), want: "TLS handshake failed"},
		{name: "connect timeout", err: dial(os.ErrDeadlineExceeded), want: "connect timeout"},
		{name: "eof", err: &url.Error{Op: "Post", URL: "http://10.9.8.7", Err: io.EOF}, want: "upstream closed the connection"},
		{name: "unexpected eof", err: io.ErrUnexpectedEOF, want: "upstream closed the connection"},
		{name: "anything else", err: errors.New("proxyconnect tcp: 10.1.1.1:3128 said no"), want: "upstream unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TransportErrorText(tt.err); got != tt.want {
				t.Errorf("got %q, want %q (from %v)", got, tt.want, tt.err)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"2", 2 * time.Second, true},
		{" 0.5 ", 500 * time.Millisecond, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{now.Add(30 * time.Second).Format(http.TimeFormat), 30 * time.Second, true},
		{now.Add(-30 * time.Second).Format(http.TimeFormat), 0, true},
		{"99999999", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := ParseRetryAfter(tt.in, now)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %v %v, want %v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestNewChatRequest(t *testing.T) {
	u, _ := url.Parse("https://api.example.com/v1/chat/completions")
	caller := http.Header{
		"Authorization":       {"Bearer sk-caller"},
		"X-Api-Key":           {"sk-caller"},
		"Connection":          {"keep-alive, X-Hop"},
		"X-Hop":               {"1"},
		"Keep-Alive":          {"timeout=5"},
		"Te":                  {"trailers"},
		"Accept-Encoding":     {"br"},
		"Cookie":              {"a=b"},
		"Openai-Organization": {"org-x"},
		"X-Aisix-Call-Id":     {"forged"},
		"User-Agent":          {"sdk/1"},
		"X-Stainless-Lang":    {"python"},
	}
	body := []byte(`{"model":"m"}`)
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			req, err := NewChatRequest(context.Background(), ChatRequest{URL: u, Auth: []string{"Bearer sk-up"}, Body: body, Stream: stream, Caller: caller})
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodPost || req.URL.String() != u.String() || req.Host != "api.example.com" || req.ContentLength != int64(len(body)) {
				t.Errorf("request line: %s %s host %s len %d", req.Method, req.URL, req.Host, req.ContentLength)
			}
			want := http.Header{
				"Authorization": {"Bearer sk-up"}, "Content-Type": {"application/json"},
				"User-Agent": {"sdk/1"},
			}
			if stream {
				want["Accept"] = []string{"text/event-stream"}
			} else {
				want["Accept"] = []string{"application/json"}
			}
			if fmt.Sprint(req.Header) != fmt.Sprint(want) {
				t.Errorf("header = %v\nwant %v", req.Header, want)
			}
			if req.GetBody == nil {
				t.Fatal("GetBody not set: the body cannot be replayed")
			}
			rc, _ := req.GetBody()
			b, _ := io.ReadAll(rc)
			if string(b) != string(body) {
				t.Errorf("replayed body %s", b)
			}
		})
	}
}

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestNewChatRequestOneWrite: net/http sends the headers and a body that
// fits its write buffer in one write to the connection, on a fresh and on a
// reused connection, and the upstream receives the whole body.
func TestNewChatRequestOneWrite(t *testing.T) {
	body := []byte(`{"model":"m","messages":[{"role":"user","content":"` + string(bytes.Repeat([]byte("x"), 2000)) + `"}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ := io.ReadAll(r.Body)
		if !bytes.Equal(got, body) || r.ContentLength != int64(len(body)) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	var writes, dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, writes: &writes}, nil
	}}
	defer tr.CloseIdleConnections()
	u, err := url.Parse(srv.URL + "/v1/chat/completions")
	if err != nil {
		t.Fatal(err)
	}
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprint("stream=", stream), func(t *testing.T) {
			writes.Store(0)
			req, err := NewChatRequest(context.Background(), ChatRequest{URL: u, Auth: []string{"Bearer sk-up"}, Body: body, Stream: stream,
				Caller: http.Header{"User-Agent": {"sdk/1"}}})
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				t.Fatalf("upstream status %d: body not received intact", resp.StatusCode)
			}
			if n := writes.Load(); n != 1 {
				t.Errorf("request written in %d writes, want 1 (headers flushed before the body?)", n)
			}
		})
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d connections dialled, want 1 (reused)", n)
	}
}

func TestIsContextLengthExceeded(t *testing.T) {
	if !IsContextLengthExceeded([]byte(`{"error":{"code":"context_length_exceeded"}}`)) {
		t.Error("not detected")
	}
	if IsContextLengthExceeded([]byte(`{"error":{"code":"content_policy_violation"}}`)) {
		t.Error("false positive")
	}
}

// TestNewChatRequestForward: a provider key's forward_headers let named
// caller headers through beyond the allowlist, and no Auth sends no
// credential at all (a secret not bound to the current host).
func TestNewChatRequestForward(t *testing.T) {
	u, _ := url.Parse("http://127.0.0.1:9/v1/chat/completions")
	caller := http.Header{"Idempotency-Key": {"k1"}, "X-Other": {"x"}, "Authorization": {"Bearer sk-caller"}}
	req, err := NewChatRequest(context.Background(), ChatRequest{URL: u, Body: []byte(`{}`), Caller: caller, Forward: []string{"Idempotency-Key"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := req.Header.Get("Idempotency-Key"); got != "k1" {
		t.Errorf("Idempotency-Key = %q, want k1", got)
	}
	for _, h := range []string{"X-Other", "Authorization"} {
		if v, ok := req.Header[h]; ok {
			t.Errorf("%s sent upstream: %q", h, v)
		}
	}
}
