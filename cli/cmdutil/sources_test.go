package cmdutil

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/pflag"
)

func TestConfigSources(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "aisix.yaml")
	if err := os.WriteFile(file, []byte("db: /from/file.db\noutput: json\nproxy:\n  addr: 127.0.0.1:4000\nadmin_key_env: MY_ADMIN_KEY\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AISIX_DB", "AISIX_SERVER", "AISIX_ADMIN_KEY", "AISIX_OUTPUT", "AISIX_PROXY_ADDR", "AISIX_CONFIG", "MY_ADMIN_KEY"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "noconfig"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(dir, "data"))
	t.Setenv("AISIX_SERVER", "http://127.0.0.1:3001")
	t.Setenv("MY_ADMIN_KEY", "k")
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	fs.String("db", "", "")
	fs.String("server", "", "")
	fs.String("output", "", "")
	if err := fs.Parse([]string{"--output", "yaml"}); err != nil {
		t.Fatal(err)
	}
	c, err := LoadConfig(fs, file)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"db":         "config file (db)",
		"server":     "env AISIX_SERVER",
		"output":     "flag --output",
		"proxy.addr": "config file (proxy.addr)",
		"admin.addr": "default",
		"admin_key":  "env MY_ADMIN_KEY (admin_key_env)",
	}
	for key, w := range want {
		if got := c.Sources[key].String(); got != w {
			t.Errorf("source of %s: %q, want %q", key, got, w)
		}
	}
	if c.FileSource.String() != "flag --config" || c.Output != "yaml" || c.AdminKey != "k" {
		t.Errorf("file source %q, output %q", c.FileSource, c.Output)
	}

	t.Setenv("AISIX_CONFIG", file)
	if c, err = LoadConfig(nil, ""); err != nil || c.FileSource.String() != "env AISIX_CONFIG" || c.Sources["output"].String() != "config file (output)" {
		t.Errorf("AISIX_CONFIG: %v %+v", err, c)
	}
	os.Unsetenv("AISIX_CONFIG")
	if c, err = LoadConfig(nil, ""); err != nil || c.File != "" || c.FileSource.String() != "default" || c.Sources["db"].String() != "default" {
		t.Errorf("no file: %v %+v", err, c)
	}
}
