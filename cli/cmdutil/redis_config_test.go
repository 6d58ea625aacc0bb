package cmdutil

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// TestRedisConfig: the Redis URL, timeout and prefix come from the config
// file, AISIX_REDIS* and --redis / --redis-timeout, in that order of
// precedence, with defaults of no Redis, 50ms and "aisix:".
func TestRedisConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "aisix.yaml")
	if err := os.WriteFile(file, []byte("db: /x.db\nredis: redis://file:6379/0\nredis_timeout: 20ms\nredis_prefix: \"prod:\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name        string
		file        string
		env         map[string]string
		args        []string
		wantURL     string
		wantTimeout time.Duration
		wantPrefix  string
	}{
		{name: "defaults", wantTimeout: 50 * time.Millisecond, wantPrefix: "aisix:"},
		{name: "file", file: file, wantURL: "redis://file:6379/0", wantTimeout: 20 * time.Millisecond, wantPrefix: "prod:"},
		{name: "env over file", file: file, env: map[string]string{"AISIX_REDIS": "rediss://env:6380/1", "AISIX_REDIS_TIMEOUT": "5ms", "AISIX_REDIS_PREFIX": "env:"},
			wantURL: "rediss://env:6380/1", wantTimeout: 5 * time.Millisecond, wantPrefix: "env:"},
		{name: "flag over env", file: file, env: map[string]string{"AISIX_REDIS": "rediss://env:6380/1"}, args: []string{"--redis", "redis://flag:6379/2", "--redis-timeout", "30ms"},
			wantURL: "redis://flag:6379/2", wantTimeout: 30 * time.Millisecond, wantPrefix: "prod:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("XDG_CONFIG_HOME", t.TempDir())
			t.Setenv("AISIX_DB", "/tmp/x.db")
			for _, k := range []string{"AISIX_REDIS", "AISIX_REDIS_TIMEOUT", "AISIX_REDIS_PREFIX", "AISIX_CONFIG"} {
				t.Setenv(k, "")
				os.Unsetenv(k)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
			fs.String("redis", "", "")
			fs.String("redis-timeout", "50ms", "")
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := LoadConfig(fs, tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if c.Redis != tc.wantURL || c.RedisTimeout != tc.wantTimeout || c.RedisPrefix != tc.wantPrefix {
				t.Errorf("redis %q, timeout %s, prefix %q; want %q, %s, %q", c.Redis, c.RedisTimeout, c.RedisPrefix, tc.wantURL, tc.wantTimeout, tc.wantPrefix)
			}
		})
	}
	t.Run("bad timeout", func(t *testing.T) {
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		t.Setenv("AISIX_DB", "/tmp/x.db")
		t.Setenv("AISIX_REDIS_TIMEOUT", "soon")
		if _, err := LoadConfig(nil, ""); err == nil {
			t.Error("AISIX_REDIS_TIMEOUT=soon accepted")
		}
	})
}
