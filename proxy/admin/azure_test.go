package admin

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAzureProviderKeyWire(t *testing.T) {
	e := newEnv(t)
	const secret = `{"tenant_id":"tenant-v4lue","client_id":"client-v4lue","client_secret":"s3cret-v4lue"}`
	sb, _ := json.Marshal(secret)
	body := `{"display_name":"azure-entra","adapter":"azure-openai","api_base":"myres","api_version":"2024-10-21","secret":` + string(sb) + `}`
	r := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", body)
	if strings.Contains(string(r.body), "v4lue") {
		t.Fatalf("create response shows part of the secret: %s", r.body)
	}
	id := r.id(t)
	v := r.object(t)["value"].(map[string]any)
	const mask = `{"client_id":"…","client_secret":"…","tenant_id":"…"}`
	if v["secret"] != mask || v["api_version"] != "2024-10-21" {
		t.Errorf("value %v", v)
	}

	// The value read back, sent again, keeps the secret.
	put := `{"display_name":"azure-entra","adapter":"azure-openai","api_base":"myres","secret":` + mustJSON(t, mask) + `}`
	r = e.mustAdmin(t, 200, "PUT", "/admin/v1/provider_keys/"+id, put)
	v = r.object(t)["value"].(map[string]any)
	if v["secret"] != mask {
		t.Errorf("secret after a PUT of its mask: %v", v["secret"])
	}
	if _, ok := v["api_version"]; ok {
		t.Errorf("api_version %v shown when empty", v["api_version"])
	}

	for _, tc := range []struct{ name, body, msg string }{
		{"entra missing field", `{"display_name":"b","adapter":"azure-openai","api_base":"myres","secret":"{\"tenant_id\":\"tenant-v4lue\",\"client_secret\":\"s3cret-v4lue\"}"}`, "secret.client_id: is required for an Entra ID credential"},
		{"azure without api_base", `{"display_name":"b","adapter":"azure-openai","secret":"azure-key-0123456789"}`, "api_base: is required for azure-openai"},
		{"vendor without api_base", `{"display_name":"b","provider":"groq","adapter":"openai","secret":"gsk-0123456789"}`, "api_base: provider groq has no default base URL; set api_base"},
		{"anthropic-wire vendor without api_base", `{"display_name":"b","provider":"minimax","adapter":"anthropic","secret":"mm-0123456789"}`, "api_base: provider minimax has no default base URL; set api_base"},
		{"api_version on openai", `{"display_name":"b","provider":"openai","api_version":"v1","secret":"sk-0123456789"}`, "api_version: applies to azure-openai"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.mustAdmin(t, 400, "POST", "/admin/v1/provider_keys", tc.body)
			if !strings.Contains(string(r.body), tc.msg) || strings.Contains(string(r.body), "v4lue") {
				t.Errorf("body %s, want %q and no secret value", r.body, tc.msg)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
