package providerkey_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
)

// modes runs fn in local mode and in remote mode (through the admin API).
func modes(t *testing.T, fn func(t *testing.T, e *clitest.Env)) {
	t.Run("local", func(t *testing.T) { fn(t, clitest.New(t)) })
	t.Run("remote", func(t *testing.T) { fn(t, clitest.New(t).Remote()) })
}

// value decodes the value of an entry printed with -o json.
func value(t *testing.T, out string) map[string]any {
	t.Helper()
	var e struct {
		Value map[string]any `json:"value"`
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("-o json output %q: %v", out, err)
	}
	return e.Value
}

const primarySecret = "sk-primary-test-secret-0001"

func TestSecretBoundToHost(t *testing.T) {
	modes(t, func(t *testing.T, e *clitest.Env) {
		e.Must(primarySecret, "provider-key", "create", "--name", "openai-primary", "--provider", "openai",
			"--api-base", "https://api.openai.com/v1", "--secret-stdin", "-q")

		// The tutorial's failover trigger keeps working, and says what it did.
		v := value(t, e.Must("", "provider-key", "update", "openai-primary", "--api-base", "https://api.openai.invalid/v1", "-o", "json").Stdout)
		if v["api_base"] != "https://api.openai.invalid/v1" || v["secret_host"] != "api.openai.com" || v["secret_needs_reentry"] != true {
			t.Errorf("update -o json value %v, want the secret still bound to api.openai.com and needing re-entry", v)
		}
		v = value(t, e.Must("", "provider-key", "get", "openai-primary", "-o", "json").Stdout)
		if v["secret_host"] != "api.openai.com" || v["secret_needs_reentry"] != true || v["secret"] != "sk-…0001" {
			t.Errorf("get -o json value %v", v)
		}
		if out := e.Must("", "provider-key", "get", "openai-primary", "-o", "yaml").Stdout; !strings.Contains(out, "secret_needs_reentry: true") || !strings.Contains(out, "secret_host: api.openai.com") {
			t.Errorf("get -o yaml:\n%s", out)
		}
		e.TTY = true
		for _, args := range [][]string{{"provider-key", "list"}, {"provider-key", "get", "openai-primary"}} {
			out := e.Must("", args...).Stdout
			if !strings.Contains(out, "sk-…0001 (re-enter for api.openai.invalid)") {
				t.Errorf("%q:\n%s\nwant the secret marked for re-entry", args, out)
			}
		}

		// Entering the secret again binds it to the new host.
		e.TTY = false
		v = value(t, e.Must(primarySecret, "provider-key", "update", "openai-primary", "--secret-stdin", "-o", "json").Stdout)
		if v["secret_host"] != "api.openai.invalid" || v["secret_needs_reentry"] != false {
			t.Errorf("after re-entering the secret: %v", v)
		}
		e.TTY = true
		if out := e.Must("", "provider-key", "list").Stdout; strings.Contains(out, "re-enter") {
			t.Errorf("list after re-entry:\n%s", out)
		}
		if out := e.Must("", "provider-key", "list", "-o", "json").Stdout; strings.Contains(out, primarySecret) {
			t.Errorf("list -o json shows the secret: %s", out)
		}
	})
}
