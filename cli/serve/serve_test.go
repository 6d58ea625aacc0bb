package serve

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil"
)

func testConfig(t *testing.T) *cmdutil.Config {
	t.Helper()
	return &cmdutil.Config{
		DB:             filepath.Join(t.TempDir(), "aisix.db"),
		ProxyAddr:      "127.0.0.1:0",
		AdminAddr:      "127.0.0.1:0",
		MaxBodyBytes:   1 << 20,
		LogFormat:      "json",
		LogLevel:       "info",
		DrainTimeout:   5 * time.Second,
		ReloadInterval: 50 * time.Millisecond,
	}
}

func TestRefusesToStart(t *testing.T) {
	cases := []struct {
		name  string
		setup func(c *cmdutil.Config)
		want  string
	}{
		{"no admin key", func(*cmdutil.Config) {}, "no admin key: set --admin-key, AISIX_ADMIN_KEY or admin.admin_keys"},
		{"blank admin keys", func(c *cmdutil.Config) { c.AdminKeys = []string{" ", ""} }, "no admin key"},
		{"quickstart key on all interfaces", func(c *cmdutil.Config) {
			c.AdminKey = cmdutil.QuickstartAdminKey
			c.AdminAddr = "0.0.0.0:0"
		}, "refusing the well-known quickstart admin key on non-loopback admin address 0.0.0.0:0"},
		{"quickstart key on an empty host", func(c *cmdutil.Config) {
			c.AdminKeys = []string{"strong-key", cmdutil.QuickstartAdminKey}
			c.AdminAddr = ":0"
		}, "refusing the well-known quickstart admin key"},
		{"bad log level", func(c *cmdutil.Config) {
			c.AdminKey = "k"
			c.LogLevel = "loud"
		}, "log level must be"},
		{"profiles on all interfaces", func(c *cmdutil.Config) {
			c.AdminKey = "k"
			c.PprofAddr = "0.0.0.0:0"
		}, "only a loopback address is allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.setup(c)
			err := Run(context.Background(), c, io.Discard, "test")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for the server's log writes.
type syncBuffer struct {
	ch  chan struct{} // signalled after each write
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	select {
	case b.ch <- struct{}{}:
	default:
	}
	return n, err
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor waits until the log contains s.
func (b *syncBuffer) waitFor(t *testing.T, s string) string {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if out := b.String(); strings.Contains(out, s) {
			return out
		}
		select {
		case <-b.ch:
		case <-deadline:
			t.Fatalf("log never contained %q; log:\n%s", s, b.String())
		}
	}
}

func TestServeDrainsOnCancel(t *testing.T) {
	c := testConfig(t)
	c.AdminKey = "test-admin-key-123"
	proxyAddr, adminAddr := freeAddr(t), freeAddr(t)
	c.ProxyAddr, c.AdminAddr = proxyAddr, adminAddr
	logs := &syncBuffer{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, logs, "test") }()
	logs.waitFor(t, `"msg":"aisix started"`)

	for _, u := range []string{"http://" + proxyAddr + "/readyz", "http://" + adminAddr + "/readyz", "http://" + adminAddr + "/livez"} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d", u, resp.StatusCode)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30s of cancel")
	}
	out := logs.String()
	for _, want := range []string{`"msg":"aisix draining"`, `"msg":"aisix stopped"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s", want)
		}
	}
	if strings.Contains(out, "test-admin-key-123") {
		t.Error("the admin key reached the log")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:3001": true, "localhost:3001": true, "[::1]:3001": true, "127.0.0.2:1": true,
		"0.0.0.0:3001": false, ":3001": false, "10.0.0.1:3001": false, "[::]:3001": false, "bad": false,
	} {
		if got := isLoopback(addr); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
