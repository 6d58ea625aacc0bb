package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/iostreams"
)

// runCLI runs aisix in-process on a temp SQLite file and returns exit code,
// stdout and stderr.
func runCLI(t *testing.T, db, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	in.WriteString(stdin)
	t.Setenv("AISIX_DB", db)
	t.Setenv("AISIX_SERVER", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	code := Run(context.Background(), args, ios)
	return code, out.String(), errOut.String()
}

var uuidLine = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\n$`)

func TestUsageErrorsExit2WithOneLine(t *testing.T) {
	db := filepath.Join(t.TempDir(), "aisix.db")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"unknown flag", []string{"model", "list", "--nope"}, "unknown flag: --nope"},
		{"missing required flag", []string{"model", "create", "--name", "x"}, "--provider is required"},
		{"bad output format", []string{"model", "list", "-o", "xml"}, "--output must be table, json or yaml"},
		{"quiet with json", []string{"model", "list", "-q", "-o", "json"}, "cannot be used together"},
		{"too many args", []string{"model", "get", "a", "b"}, "accepts 1 arg(s), received 2"},
		{"delete without --yes off a terminal", []string{"model", "delete", "chat-prod"}, ""},
		{"route without targets", []string{"model", "route", "chat-prod"}, "at least one --target is required"},
		{"bad target weight", []string{"model", "route", "g", "--target", "a=x"}, "weight must be a whole number"},
		{"bad timeout", []string{"model", "route", "g", "--target", "a", "--timeout", "soon"}, "--timeout must be a duration"},
		{"apikey without models", []string{"apikey", "create"}, "at least one --allow-model is required"},
		{"apikey quiet would lose key", []string{"apikey", "create", "--allow-model", "*", "-q"}, "-q would lose the generated key"},
		{"secret twice", []string{"provider-key", "create", "--name", "a", "--provider", "openai", "--secret", "x", "--secret-env", "Y"}, "give the secret once"},
		{"no secret off a terminal", []string{"provider-key", "create", "--name", "a", "--provider", "openai"}, "a secret is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, db, "", tc.args...)
			if tc.name == "delete without --yes off a terminal" {
				// The model does not exist: not found is a failure (1), not usage.
				if code != ExitFailure || !strings.Contains(errOut, `model "chat-prod" not found`) {
					t.Fatalf("code %d, stderr %q", code, errOut)
				}
				return
			}
			if code != ExitUsage {
				t.Fatalf("exit %d, want 2; stderr %q", code, errOut)
			}
			if out != "" {
				t.Errorf("stdout %q, want nothing", out)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "aisix: ") {
				t.Errorf("stderr %q, want one line starting with aisix:", errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr %q, want it to contain %q", errOut, tc.want)
			}
		})
	}
}

func TestLocalModeTutorial(t *testing.T) {
	db := filepath.Join(t.TempDir(), "aisix.db")
	t.Setenv("PRIMARY_KEY", "sk-primary-secret-000000001")

	code, out, errOut := runCLI(t, db, "", "provider-key", "create", "--name", "openai-primary", "--provider", "openai",
		"--api-base", "http://127.0.0.1:9/v1", "--secret-env", "PRIMARY_KEY", "-q")
	if code != 0 || !uuidLine.MatchString(out) || errOut != "" {
		t.Fatalf("create primary: code %d out %q err %q", code, out, errOut)
	}
	pkID := strings.TrimSpace(out)

	code, out, errOut = runCLI(t, db, "sk-secondary-secret-00000002\n", "provider-key", "create", "--name", "openai-secondary",
		"--provider", "openai", "--secret-stdin", "-o", "json")
	if code != 0 {
		t.Fatalf("create secondary: %d %s", code, errOut)
	}
	var entry struct {
		ID       string         `json:"id"`
		Value    map[string]any `json:"value"`
		Revision int64          `json:"revision"`
	}
	if err := json.Unmarshal([]byte(out), &entry); err != nil {
		t.Fatalf("json output %q: %v", out, err)
	}
	if entry.Value["secret"] != "sk-…0002" || entry.Value["display_name"] != "openai-secondary" || entry.Revision != 2 {
		t.Fatalf("entry %+v", entry)
	}

	// A secret given with --secret works, with a warning on stderr.
	code, _, errOut = runCLI(t, db, "", "provider-key", "create", "--name", "third", "--provider", "openai", "--secret", "sk-third-000000000000003")
	if code != 0 || !strings.Contains(errOut, "warning: --secret lands in your shell history") {
		t.Fatalf("create with --secret: %d %q", code, errOut)
	}

	for _, args := range [][]string{
		{"model", "create", "--name", "gpt-4o-primary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary", "-q"},
		{"model", "create", "--name", "gpt-4o-secondary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", pkID, "--timeout", "30s", "-q"},
		{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--retries", "1", "--max-fallbacks", "1", "-q"},
		{"model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--retries", "1", "--max-fallbacks", "1", "-q"},
	} {
		code, out, errOut = runCLI(t, db, "", args...)
		if code != 0 || !uuidLine.MatchString(out) {
			t.Fatalf("%v: code %d out %q err %q", args, code, out, errOut)
		}
	}

	// A target that does not exist: one line naming it, exit 1.
	code, _, errOut = runCLI(t, db, "", "model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-tertiary")
	if code != ExitFailure || errOut != "aisix: model \"chat-prod\": routing.targets[1].model: \"gpt-4o-tertiary\" is not an existing direct model\n" {
		t.Fatalf("bad target: code %d stderr %q", code, errOut)
	}

	// Piped table output: tab-separated, no header, secrets masked.
	code, out, _ = runCLI(t, db, "", "provider-key", "list")
	if code != 0 || strings.Contains(out, "secret-0000") || !strings.Contains(out, "openai-primary\t") || strings.Contains(out, "NAME") {
		t.Fatalf("list: %d %q", code, out)
	}

	// update changes only what it names and keeps the secret.
	code, out, _ = runCLI(t, db, "", "provider-key", "update", "openai-primary", "--api-base", "https://api.openai.invalid/v1", "-o", "json")
	if code != 0 || !strings.Contains(out, `"api_base": "https://api.openai.invalid/v1"`) || !strings.Contains(out, `"secret": "sk-…0001"`) {
		t.Fatalf("update: %d %q", code, out)
	}

	// apikey create prints the plaintext once, stores only its hash.
	code, out, _ = runCLI(t, db, "", "apikey", "create", "--name", "app", "--allow-model", "chat-prod", "-o", "json")
	if code != 0 {
		t.Fatalf("apikey create: %d", code)
	}
	var created struct {
		Entry struct {
			Value struct {
				KeyHash string `json:"key_hash"`
			} `json:"value"`
		} `json:"entry"`
		Plaintext string `json:"plaintext"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^sk-[0-9a-f]{48}$`).MatchString(created.Plaintext) {
		t.Fatalf("plaintext %q", created.Plaintext)
	}
	if created.Entry.Value.KeyHash != hashHex(created.Plaintext) {
		t.Fatalf("stored hash %s is not sha256 of the plaintext", created.Entry.Value.KeyHash)
	}
	code, out, _ = runCLI(t, db, "", "apikey", "list", "-o", "json")
	if code != 0 || strings.Contains(out, created.Plaintext) {
		t.Fatalf("apikey list leaks the plaintext or fails: %d", code)
	}

	// delete: refused while in use, needs --yes, then works.
	code, _, errOut = runCLI(t, db, "", "provider-key", "delete", "openai-primary", "--yes")
	if code != ExitFailure || !strings.Contains(errOut, "is used by model(s) gpt-4o-primary") {
		t.Fatalf("delete in use: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, db, "", "model", "delete", "chat-prod")
	if code != ExitUsage || !strings.Contains(errOut, "pass --yes") {
		t.Fatalf("delete without --yes: %d %q", code, errOut)
	}
	code, _, errOut = runCLI(t, db, "", "model", "delete", "chat-prod", "--yes")
	if code != 0 || !strings.Contains(errOut, "Deleted model chat-prod") {
		t.Fatalf("delete: %d %q", code, errOut)
	}
	code, out, _ = runCLI(t, db, "", "model", "list", "-o", "yaml")
	if code != 0 || strings.Contains(out, "chat-prod") || !strings.Contains(out, "display_name: gpt-4o-primary") {
		t.Fatalf("yaml list: %d %q", code, out)
	}
}

func TestStatusWithoutServerSaysSo(t *testing.T) {
	db := filepath.Join(t.TempDir(), "aisix.db")
	t.Setenv("AISIX_ADMIN_KEY", "k")
	t.Setenv("AISIX_ADMIN_ADDR", "127.0.0.1:1")
	code, _, errOut := runCLI(t, db, "", "status", "-o", "json")
	if code != ExitFailure || !strings.Contains(errOut, "status needs a running server") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("status: %d %q", code, errOut)
	}
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
