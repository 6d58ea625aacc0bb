package certreload_test

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/certreload"
	"github.com/aisix/aisix/proxy/proxytest"
)

// syncBuf is a log destination safe for the handshake goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// fakeClock is a clock the test moves.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// handshake runs one TLS handshake against cfg on a loopback TCP
// connection and returns the common name of the certificate the client
// saw, or the handshake's error (the server's when it refused the client).
func handshake(t *testing.T, cfg *tls.Config, client *tls.Config) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		s := tls.Server(c, cfg)
		s.SetDeadline(time.Now().Add(30 * time.Second))
		srvErr <- s.Handshake()
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	cl := tls.Client(conn, client)
	err = cl.Handshake()
	// A refused client certificate may surface only on the client's first
	// read in TLS 1.3; the server's verdict is what counts.
	if serr := <-srvErr; err == nil {
		err = serr
	}
	if err != nil {
		return "", err
	}
	return cl.ConnectionState().PeerCertificates[0].Subject.CommonName, nil
}

func TestReload(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewCA(t, "test-ca")
	certFile, keyFile := ca.Server(t, "first").WriteFiles(t, dir, "srv")
	logs := &syncBuf{}
	clk := &fakeClock{}
	clk.ns.Store(time.Now().UnixNano())
	r, err := certreload.New(certreload.Files{CertFile: certFile, KeyFile: keyFile},
		slog.New(slog.NewTextHandler(logs, nil)), certreload.WithClock(clk.now))
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Errorf("MinVersion = %x, want TLS 1.2", cfg.MinVersion)
	}
	client := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
	if cn, err := handshake(t, cfg, client); err != nil || cn != "first" {
		t.Fatalf("first handshake: %q, %v", cn, err)
	}

	// Replaced files are not looked at before the interval has passed.
	ca.Server(t, "second").WriteFiles(t, dir, "srv")
	if cn, _ := handshake(t, cfg, client); cn != "first" {
		t.Fatalf("before the interval: %q, want first", cn)
	}
	clk.add(certreload.DefaultCheckInterval + time.Millisecond)
	if cn, err := handshake(t, cfg, client); err != nil || cn != "second" {
		t.Fatalf("after the interval: %q, %v; want second", cn, err)
	}
	if n := strings.Count(logs.String(), "tls certificate reloaded"); n != 1 {
		t.Errorf("reload logged %d times, want 1:\n%s", n, logs)
	}

	// A broken file keeps the previous certificate, logged once.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.add(2 * certreload.DefaultCheckInterval)
	if cn, err := handshake(t, cfg, client); err != nil || cn != "second" {
		t.Fatalf("after a broken file: %q, %v; want second", cn, err)
	}
	clk.add(2 * certreload.DefaultCheckInterval)
	handshake(t, cfg, client)
	if n := strings.Count(logs.String(), "tls certificate reload failed"); n != 1 {
		t.Errorf("failed reload logged %d times, want 1:\n%s", n, logs)
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Errorf("log holds key material:\n%s", logs)
	}
	// Fixed again: served again.
	ca.Server(t, "third").WriteFiles(t, dir, "srv")
	if !r.Check() {
		t.Fatal("Check after a good replacement reported no new certificate")
	}
	if cn, err := handshake(t, cfg, client); err != nil || cn != "third" {
		t.Fatalf("after the fix: %q, %v; want third", cn, err)
	}
}

func TestClientCA(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewCA(t, "test-ca")
	other := proxytest.NewCA(t, "other-ca")
	certFile, keyFile := ca.Server(t, "srv").WriteFiles(t, dir, "srv")
	caFile := ca.WriteFile(t, dir, "clients.pem")
	r, err := certreload.New(certreload.Files{CertFile: certFile, KeyFile: keyFile, ClientCAFile: caFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.TLSConfig()
	for _, tt := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no certificate", nil, false},
		{"certificate of another CA", []tls.Certificate{other.Client(t, "mallory").TLSCertificate(t)}, false},
		{"certificate of the client CA", []tls.Certificate{ca.Client(t, "ops").TLSCertificate(t)}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := handshake(t, cfg, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: tt.certs})
			if (err == nil) != tt.ok {
				t.Fatalf("handshake error %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestNewRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewCA(t, "test-ca")
	certFile, keyFile := ca.Server(t, "srv").WriteFiles(t, dir, "srv")
	_, otherKey := ca.Server(t, "other").WriteFiles(t, dir, "other")
	for _, tt := range []struct {
		name  string
		files certreload.Files
		want  string
	}{
		{"missing key file", certreload.Files{CertFile: certFile}, "cert_file and key_file"},
		{"absent file", certreload.Files{CertFile: dir + "/nope.crt", KeyFile: keyFile}, "nope.crt"},
		{"key of another certificate", certreload.Files{CertFile: certFile, KeyFile: otherKey}, "does not match"},
		{"client CA not PEM", certreload.Files{CertFile: certFile, KeyFile: keyFile, ClientCAFile: keyFile}, "no PEM certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := certreload.New(tt.files, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line without key material: %q", err)
			}
		})
	}
}
