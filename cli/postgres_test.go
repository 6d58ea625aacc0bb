package cli

import (
	"os"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestLocalModeOnPostgres: the CLI's local mode on a PostgreSQL URL, as on
// a SQLite file: create, list, apply a file, export. Without a secret key
// it refuses to store a provider secret; with one, what it stores is
// encrypted.
func TestLocalModeOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	// A fresh database gets its schema from serve or migrate, as a new
	// SQLite file would from its first use.
	if code, _, errOut := runCLI(t, url, "", "migrate"); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errOut)
	}
	t.Setenv("AISIX_SECRET_KEY_FILE", "")
	t.Setenv("AISIX_SECRET_KEY_PREVIOUS", "")
	t.Setenv("AISIX_SECRET_KEY", "")
	code, out, errOut := runCLI(t, url, "sk-pg-cli-secret-000001", "provider-key", "create", "--name", "pk", "--provider", "openai",
		"--api-base", "http://127.0.0.1:9/v1", "--secret-stdin", "-q")
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "unencrypted") ||
		!strings.Contains(errOut, "aisix secrets init") || strings.Contains(errOut, "sk-pg-cli-secret") {
		t.Fatalf("provider-key create without a key: exit %d\n%s%s", code, out, errOut)
	}
	t.Setenv("AISIX_SECRET_KEY", strings.Repeat("ab", 32))
	if code, _, errOut := runCLI(t, url, "sk-pg-cli-secret-000001", "provider-key", "create", "--name", "pk", "--provider", "openai",
		"--api-base", "http://127.0.0.1:9/v1", "--secret-stdin", "-q"); code != 0 {
		t.Fatalf("provider-key create: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, url, "", "model", "create", "--name", "m1", "--provider", "openai", "--model-name", "gpt-4o-mini",
		"--provider-key", "pk", "-q"); code != 0 {
		t.Fatalf("model create: exit %d: %s", code, errOut)
	}
	file := t.TempDir() + "/r.yaml"
	if err := os.WriteFile(file, []byte(`_format_version: "1"
provider_keys:
  - {display_name: pk, provider: openai, api_base: "http://127.0.0.1:9/v1", secret: sk-pg-cli-secret-000001}
models:
  - {display_name: m1, provider: openai, model_name: gpt-4o-mini, provider_key: pk}
  - {display_name: m2, provider: openai, model_name: gpt-4o, provider_key: pk}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, url, "", "apply", "-f", file); code != 0 || !strings.Contains(out, "+ create model m2") {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, url, "", "model", "list", "-o", "json")
	if code != 0 || !strings.Contains(out, `"display_name": "m1"`) || !strings.Contains(out, `"display_name": "m2"`) {
		t.Fatalf("model list: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, url, "", "export")
	if code != 0 || !strings.Contains(out, "display_name: m2") || strings.Contains(out, "sk-pg-cli-secret") {
		t.Fatalf("export: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, url, "", "secrets", "status", "-o", "json")
	if code != 0 || !strings.Contains(out, `"state": "current"`) || strings.Contains(out, "plaintext") {
		t.Fatalf("secrets status: exit %d\n%s%s", code, out, errOut)
	}
}
