package providerkey_test

import (
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
)

func TestAzureAPIVersion(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		v := value(t, e.Must("azure-key-0123456789abcdef", "provider-key", "create", "--name", "azure-east", "--adapter", "azure-openai",
			"--api-base", "myres", "--api-version", "2025-01-01-preview", "--secret-stdin", "-o", "json").Stdout)
		if v["api_version"] != "2025-01-01-preview" || v["api_base"] != "myres" || v["secret_host"] != "myres.openai.azure.com" {
			t.Errorf("create -o json value %v", v)
		}
		v = value(t, e.Must("", "provider-key", "update", "azure-east", "--api-version", "v1", "-o", "json").Stdout)
		if v["api_version"] != "v1" {
			t.Errorf("update --api-version v1: value %v", v)
		}
		e.TTY = true
		if out := e.Must("", "provider-key", "get", "azure-east").Stdout; !strings.Contains(out, "API VERSION") || !strings.Contains(out, "v1") {
			t.Errorf("get table:\n%s", out)
		}
		e.TTY = false
		v = value(t, e.Must("", "provider-key", "update", "azure-east", "--api-version", "", "-o", "json").Stdout)
		if _, ok := v["api_version"]; ok {
			t.Errorf("update --api-version '': value %v still has api_version", v)
		}
		r := e.Run("", "provider-key", "update", "azure-east", "--api-version", "latest")
		if r.Code != 1 || !strings.Contains(r.Stderr, "api_version: must be a date") {
			t.Errorf("bad api-version: exit %d stderr %q", r.Code, r.Stderr)
		}
		r = e.Run(primarySecret, "provider-key", "create", "--name", "o", "--provider", "openai", "--api-version", "2024-10-21", "--secret-stdin")
		if r.Code != 1 || !strings.Contains(r.Stderr, "api_version: applies to azure-openai") {
			t.Errorf("api-version on openai: exit %d stderr %q", r.Code, r.Stderr)
		}
	})
}

func TestEntraSecretMasked(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		const secret = `{"tenant_id":"tenant-v4lue","client_id":"client-v4lue","client_secret":"s3cret-v4lue"}`
		out := e.Must(secret, "provider-key", "create", "--name", "azure-entra", "--adapter", "azure-openai",
			"--api-base", "https://myres.openai.azure.com", "--secret-stdin", "-o", "json").Stdout
		if v := value(t, out); v["secret"] != `{"client_id":"…","client_secret":"…","tenant_id":"…"}` {
			t.Errorf("secret shown as %v", v["secret"])
		}
		e.TTY = true
		for _, args := range [][]string{{"provider-key", "list"}, {"provider-key", "get", "azure-entra"}, {"provider-key", "list", "-o", "json"}} {
			if out := e.Must("", args...).Stdout + out; strings.Contains(out, "v4lue") {
				t.Errorf("%q shows part of the secret:\n%s", args, out)
			}
		}
		e.TTY = false
		r := e.Run(`{"tenant_id":"tenant-v4lue","client_secret":"s3cret-v4lue"}`, "provider-key", "update", "azure-entra", "--secret-stdin")
		if r.Code != 1 || !strings.Contains(r.Stderr, "secret.client_id: is required for an Entra ID credential") || strings.Contains(r.Stderr, "v4lue") {
			t.Errorf("incomplete Entra secret: exit %d stderr %q", r.Code, r.Stderr)
		}
	})
}
