package cmdutil

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseDurations: the durations aisix reads itself (ParseAge's days,
// ParseMillis's bare milliseconds) parse to non-negative values or fail.
func FuzzParseDurations(f *testing.F) {
	for _, s := range []string{"30d", "7d", "36h", "90m", "1500", "1500ms", "2m", "-1d", "1e9d", "9223372036854775807", "d", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseAge(s); err == nil && d < 0 {
			t.Fatalf("ParseAge(%q) = %v", s, d)
		}
		if n, err := ParseMillis("timeout", s); err == nil && n < 0 {
			t.Fatalf("ParseMillis(%q) = %d", s, n)
		}
	})
}

// FuzzLoadConfig: any config file loads or fails with an error; never a
// panic (a list where a string is expected, a map where a list is, bad
// durations and buckets).
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{"db: /x.db\nproxy:\n  addr: 127.0.0.1:0\n  trusted_proxies: [10.0.0.0/8]\n",
		"metrics:\n  latency_buckets: [0.1, 1]\nusage:\n  retention: 7d\n", "proxy:\n  trusted_proxies: {a: 1}\n",
		"proxy:\n  auth_failure_burst: x\n", "shutdown:\n  drain_timeout: [1]\n", "redis_timeout: -1s\n", ": :\n"} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Setenv("XDG_CONFIG_HOME", dir)
	f.Setenv("HOME", dir)
	f.Setenv("AISIX_DB", filepath.Join(dir, "x.db"))
	file := filepath.Join(dir, "aisix.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if c, err := LoadConfig(nil, file); err == nil && c == nil {
			t.Fatal("nil config without an error")
		}
	})
}
