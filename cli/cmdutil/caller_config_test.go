package cmdutil

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCallerConfig: proxy.trusted_proxies from the file (a list) or
// AISIX_PROXY_TRUSTED_PROXIES (comma-separated) is parsed at load, a bad
// entry fails the load naming the key, and the guard's bucket has its
// defaults.
func TestCallerConfig(t *testing.T) {
	load := func(t *testing.T, file string, env map[string]string) (*Config, error) {
		t.Helper()
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		t.Setenv("AISIX_DB", "/tmp/x.db")
		for _, k := range []string{"AISIX_PROXY_TRUSTED_PROXIES", "AISIX_PROXY_AUTH_FAILURE_BURST", "AISIX_PROXY_AUTH_FAILURE_PER_SECOND", "AISIX_CONFIG"} {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
		for k, v := range env {
			t.Setenv(k, v)
		}
		return LoadConfig(nil, file)
	}
	lb, proxyIP := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("192.0.2.7")

	c, err := load(t, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RealIP.Empty() || c.AuthFailureBurst != 10 || c.AuthFailurePerSecond != 1 {
		t.Fatalf("defaults: trusted empty=%v burst %d rate %v", c.RealIP.Empty(), c.AuthFailureBurst, c.AuthFailurePerSecond)
	}

	file := filepath.Join(t.TempDir(), "aisix.yaml")
	if err := os.WriteFile(file, []byte("proxy:\n  trusted_proxies: [10.0.0.0/8, 192.0.2.7]\n  auth_failure_burst: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err = load(t, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.RealIP.Trusts(lb) || !c.RealIP.Trusts(proxyIP) || c.AuthFailureBurst != 0 {
		t.Fatalf("file: trusts lb %v, proxy %v; burst %d", c.RealIP.Trusts(lb), c.RealIP.Trusts(proxyIP), c.AuthFailureBurst)
	}

	c, err = load(t, "", map[string]string{"AISIX_PROXY_TRUSTED_PROXIES": "10.0.0.0/8,192.0.2.7"})
	if err != nil {
		t.Fatal(err)
	}
	if !c.RealIP.Trusts(lb) || !c.RealIP.Trusts(proxyIP) {
		t.Fatal("env list not parsed")
	}

	_, err = load(t, "", map[string]string{"AISIX_PROXY_TRUSTED_PROXIES": "10.0.0.0/8,lb.internal"})
	if err == nil || !strings.Contains(err.Error(), "proxy.trusted_proxies") || !strings.Contains(err.Error(), "lb.internal") {
		t.Fatalf("bad entry: %v", err)
	}
	if _, err = load(t, "", map[string]string{"AISIX_PROXY_AUTH_FAILURE_PER_SECOND": "0"}); err == nil {
		t.Fatal("a zero refill rate accepted")
	}
}
