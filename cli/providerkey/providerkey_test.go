package providerkey_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
)

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
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
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

func TestForwardHeaders(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		v := value(t, e.Must(primarySecret, "provider-key", "create", "--name", "openai-primary", "--provider", "openai",
			"--forward-header", "x-trace-id", "--forward-header", "OpenAI-Beta", "--secret-stdin", "-o", "json").Stdout)
		if got := fmt.Sprint(v["forward_headers"]); got != "[X-Trace-Id Openai-Beta]" {
			t.Errorf("create: forward_headers %s, want [X-Trace-Id Openai-Beta]", got)
		}

		// Other flags keep the list.
		v = value(t, e.Must("", "provider-key", "update", "openai-primary", "--api-base", "https://api.openai.com/v1", "-o", "json").Stdout)
		if got := fmt.Sprint(v["forward_headers"]); got != "[X-Trace-Id Openai-Beta]" {
			t.Errorf("update without the flag: forward_headers %s, want them kept", got)
		}
		// Given flags replace it.
		v = value(t, e.Must("", "provider-key", "update", "openai-primary", "--forward-header", "X-Tenant", "-o", "json").Stdout)
		if got := fmt.Sprint(v["forward_headers"]); got != "[X-Tenant]" {
			t.Errorf("update --forward-header: forward_headers %s, want [X-Tenant]", got)
		}
		e.TTY = true
		if out := e.Must("", "provider-key", "get", "openai-primary").Stdout; !strings.Contains(out, "FORWARD HEADERS") || !strings.Contains(out, "X-Tenant") {
			t.Errorf("get table:\n%s", out)
		}
		e.TTY = false
		v = value(t, e.Must("", "provider-key", "update", "openai-primary", "--clear-forward-headers", "-o", "json").Stdout)
		if _, ok := v["forward_headers"]; ok {
			t.Errorf("update --clear-forward-headers: value %v still lists forward_headers", v)
		}

		r := e.Run("", "provider-key", "update", "openai-primary", "--forward-header", "Authorization")
		if r.Code != 1 || !strings.Contains(r.Stderr, "forward_headers[0]: Authorization cannot be forwarded") || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("forwarding Authorization: exit %d stderr %q", r.Code, r.Stderr)
		}
		r = e.Run("", "provider-key", "update", "openai-primary", "--forward-header", "X-A", "--clear-forward-headers")
		if r.Code != 2 || !strings.Contains(r.Stderr, "cannot be used together") {
			t.Errorf("both flags: exit %d stderr %q", r.Code, r.Stderr)
		}
	})
}

func TestAPIBaseWithCredentialsRefused(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		r := e.Run(primarySecret, "provider-key", "create", "--name", "p", "--provider", "openai",
			"--api-base", "https://user:hunter2@api.example.com/v1", "--secret-stdin")
		if r.Code != 1 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "api_base: must not contain user info") {
			t.Errorf("exit %d stderr %q, want one line naming api_base", r.Code, r.Stderr)
		}
		if strings.Contains(r.Stderr+r.Stdout, "hunter2") {
			t.Errorf("output repeats the password: %q %q", r.Stdout, r.Stderr)
		}
	})
}
