package cmdutil

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestConfigPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "aisix.yaml")
	if err := os.WriteFile(file, []byte("proxy:\n  addr: 127.0.0.1:4000\nadmin:\n  addr: 127.0.0.1:4001\n  admin_keys: [file-key-1, file-key-2]\ndb: /from/file.db\nlog:\n  format: text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	newFlags := func() *pflag.FlagSet {
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.String("proxy-addr", "127.0.0.1:3000", "")
		fs.String("admin-addr", "127.0.0.1:3001", "")
		fs.String("db", "", "")
		fs.String("admin-key", "", "")
		fs.String("log-format", "json", "")
		return fs
	}
	cases := []struct {
		name      string
		env       map[string]string
		args      []string
		file      string
		wantProxy string
		wantAdmin string
		wantDB    string
		wantLog   string
		wantKeys  []string
		wantKey   string
	}{
		{name: "defaults", wantProxy: "127.0.0.1:3000", wantAdmin: "127.0.0.1:3001", wantDB: filepath.Join(dir, "data", "aisix", "aisix.db"), wantLog: "json"},
		{name: "file over default", file: file, wantProxy: "127.0.0.1:4000", wantAdmin: "127.0.0.1:4001", wantDB: "/from/file.db", wantLog: "text", wantKeys: []string{"file-key-1", "file-key-2"}},
		{name: "env over file", file: file, env: map[string]string{"AISIX_PROXY_ADDR": "127.0.0.1:5000", "AISIX_DB": "/from/env.db", "AISIX_ADMIN_KEY": "env-key"},
			wantProxy: "127.0.0.1:5000", wantAdmin: "127.0.0.1:4001", wantDB: "/from/env.db", wantLog: "text", wantKeys: []string{"file-key-1", "file-key-2"}, wantKey: "env-key"},
		{name: "flag over env", file: file, env: map[string]string{"AISIX_PROXY_ADDR": "127.0.0.1:5000"}, args: []string{"--proxy-addr", "127.0.0.1:6000", "--log-format", "json", "--admin-key", "flag-key"},
			wantProxy: "127.0.0.1:6000", wantAdmin: "127.0.0.1:4001", wantDB: "/from/file.db", wantLog: "json", wantKeys: []string{"file-key-1", "file-key-2"}, wantKey: "flag-key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{"AISIX_PROXY_ADDR", "AISIX_ADMIN_ADDR", "AISIX_DB", "AISIX_ADMIN_KEY", "AISIX_LOG_FORMAT", "AISIX_CONFIG"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
			t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "noconfig"))
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := newFlags()
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(fs, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.ProxyAddr != tc.wantProxy || c.AdminAddr != tc.wantAdmin || c.DB != tc.wantDB || c.LogFormat != tc.wantLog || c.AdminKey != tc.wantKey {
				t.Fatalf("got proxy %s admin %s db %s log %s key %q", c.ProxyAddr, c.AdminAddr, c.DB, c.LogFormat, c.AdminKey)
			}
			if len(c.AdminKeys) != len(tc.wantKeys) {
				t.Fatalf("admin keys %v, want %v", c.AdminKeys, tc.wantKeys)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("AISIX_DB", "/tmp/x.db")
	if _, err := LoadConfig(nil, filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("a named config file that does not exist must be an error")
	}
	t.Setenv("AISIX_LOG_FORMAT", "xml")
	if _, err := LoadConfig(nil, ""); err == nil {
		t.Fatal("log format xml must be refused")
	}
	t.Setenv("AISIX_LOG_FORMAT", "")
	t.Setenv("AISIX_DRAIN_TIMEOUT", "soon")
	if _, err := LoadConfig(nil, ""); err == nil {
		t.Fatal("a bad drain timeout must be refused")
	}
}

func TestMetricsConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("AISIX_DB", "/tmp/x.db")
	t.Setenv("AISIX_METRICS_ADDR", "")
	t.Setenv("AISIX_METRICS_TOKEN", "")
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "aisix.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadConfig(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Addr != "127.0.0.1:9090" || c.Metrics.Token != "" || c.Metrics.LatencyBuckets != nil {
		t.Fatalf("defaults: %+v", c.Metrics)
	}
	c, err = LoadConfig(nil, write("metrics:\n  token: t0k\n  latency_buckets: [0.1, 1, 30]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Token != "t0k" || len(c.Metrics.LatencyBuckets) != 3 || c.Metrics.LatencyBuckets[2] != 30 {
		t.Fatalf("from the file: %+v", c.Metrics)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("metrics-addr", "127.0.0.1:9090", "")
	if err := fs.Parse([]string{"--metrics-addr", ""}); err != nil {
		t.Fatal(err)
	}
	if c, err = LoadConfig(fs, ""); err != nil || c.Metrics.Addr != "" {
		t.Fatalf("--metrics-addr \"\": %+v, %v", c, err)
	}
	if _, err := LoadConfig(nil, write("metrics:\n  latency_buckets: [1, 0.5]\n")); err == nil || !strings.Contains(err.Error(), "metrics.latency_buckets") {
		t.Fatalf("descending buckets: %v", err)
	}
}

func TestParseAge(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"30d", 30 * 24 * time.Hour, true},
		{"1.5d", 36 * time.Hour, true},
		{"12h", 12 * time.Hour, true},
		{"0", 0, true},
		{"-1d", 0, false},
		{"-5m", 0, false},
		{"week", 0, false},
		{"", 0, false},
	} {
		got, err := ParseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestUsageLedgerConfig(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("AISIX_DB", "/tmp/x.db")
	c, err := LoadConfig(nil, "")
	if err != nil || !c.UsageLedger {
		t.Fatalf("default: ledger %v, %v", c != nil && c.UsageLedger, err)
	}
	t.Setenv("AISIX_USAGE_LEDGER", "false")
	if c, err = LoadConfig(nil, ""); err != nil || c.UsageLedger {
		t.Fatalf("AISIX_USAGE_LEDGER=false: ledger %v, %v", c != nil && c.UsageLedger, err)
	}
}
