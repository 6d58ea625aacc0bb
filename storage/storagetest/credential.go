package storagetest

import (
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
)

// Secret fixtures of the JSON credential shapes. Every value is distinctive
// so that a test can check that no error message or hint repeats one.
const (
	entraSecret   = `{"tenant_id":"tenant-v4lue","client_id":"client-v4lue","client_secret":"s3cret-v4lue"}`
	bedrockSecret = `{"access_key_id":"AKIAV4LUE","secret_access_key":"s3cret-v4lue","region":"us-east-1"}`
	vertexSecret  = `{"project":"proj-v4lue","region":"us-central1","access_token":"ya29.s3cret-v4lue"}`
)

// secretValues are the values of the fixtures above that must never show.
var secretValues = []string{"tenant-v4lue", "client-v4lue", "s3cret-v4lue", "AKIAV4LUE", "proj-v4lue", "v4lue"}

// noSecretValue fails t if s shows any value of a fixture secret.
func noSecretValue(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range secretValues {
		if strings.Contains(s, v) {
			t.Errorf("%s %q reveals secret value %q", what, s, v)
		}
	}
}

func credentialKey(name, adapter, secret string) storage.ProviderKey {
	pk := storage.ProviderKey{DisplayName: name, Adapter: adapter, Secret: secret}
	if adapter == storage.AdapterAzureOpenAI {
		pk.APIBase = "https://myres.openai.azure.com"
	}
	return pk
}

var credentialCases = []testCase{
	{"AcceptedShapes", func(t *testing.T, s storage.Store) {
		for _, tc := range []struct {
			name, adapter, secret, hint string
		}{
			{"azure-api-key", storage.AdapterAzureOpenAI, "0123456789abcdef0123456789abcdef", "012…cdef"},
			{"azure-entra", storage.AdapterAzureOpenAI, entraSecret, `{"client_id":"…","client_secret":"…","tenant_id":"…"}`},
			{"bedrock", storage.AdapterBedrock, bedrockSecret, `{"access_key_id":"…","region":"…","secret_access_key":"…"}`},
			{"bedrock-session", storage.AdapterBedrock,
				`{"access_key_id":"AKIAV4LUE","secret_access_key":"s3cret-v4lue","region":"eu-west-1","session_token":"tok-v4lue"}`,
				`{"access_key_id":"…","region":"…","secret_access_key":"…","session_token":"…"}`},
			{"bedrock-api-key", storage.AdapterBedrock, `{"api_key":"ABSKs3cret-v4lue","region":"us-east-1"}`, `{"api_key":"…","region":"…"}`},
			{"vertex-token", storage.AdapterVertex, vertexSecret, `{"access_token":"…","project":"…","region":"…"}`},
			{"vertex-sa", storage.AdapterVertex, `{"project":"proj-v4lue","region":"europe-west4","service_account_json":"{\"type\":\"service_account\"}"}`,
				`{"project":"…","region":"…","service_account_json":"…"}`},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got := mustCreateProviderKey(t, s, credentialKey(tc.name, tc.adapter, tc.secret))
				checkSecret(t, got, tc.secret)
				if got.SecretHint != tc.hint {
					t.Errorf("hint = %q, want %q", got.SecretHint, tc.hint)
				}
				noSecretValue(t, "hint", got.SecretHint)
				read, err := s.GetProviderKey(t.Context(), got.ID)
				noErr(t, err, "GetProviderKey")
				checkSecret(t, read, tc.secret)
				noSecretValue(t, "hint", read.SecretHint)
			})
		}
	}},
	{"RefusedShapes", func(t *testing.T, s storage.Store) {
		for _, tc := range []struct {
			name, adapter, secret, field string
		}{
			{"entra missing client_id", storage.AdapterAzureOpenAI, `{"tenant_id":"tenant-v4lue","client_secret":"s3cret-v4lue"}`, "secret.client_id: is required for an Entra ID credential"},
			{"entra empty tenant_id", storage.AdapterAzureOpenAI, `{"tenant_id":"","client_id":"client-v4lue","client_secret":"s3cret-v4lue"}`, "secret.tenant_id"},
			{"entra number", storage.AdapterAzureOpenAI, `{"tenant_id":"tenant-v4lue","client_id":7,"client_secret":"s3cret-v4lue"}`, "secret.client_id"},
			{"entra extra field", storage.AdapterAzureOpenAI, `{"tenant_id":"tenant-v4lue","client_id":"client-v4lue","client_secret":"s3cret-v4lue","v4lue":"x"}`, "secret: has a field"},
			{"entra broken JSON", storage.AdapterAzureOpenAI, `{"tenant_id":"tenant-v4lue",`, "secret: looks like JSON"},
			{"bedrock plain", storage.AdapterBedrock, "AKIAV4LUE-s3cret-v4lue", "secret: must be a JSON object"},
			{"bedrock no region", storage.AdapterBedrock, `{"access_key_id":"AKIAV4LUE","secret_access_key":"s3cret-v4lue"}`, "secret.region"},
			{"bedrock api key no region", storage.AdapterBedrock, `{"api_key":"ABSKs3cret-v4lue"}`, "secret.region"},
			{"bedrock api key and access key", storage.AdapterBedrock, `{"api_key":"ABSKs3cret-v4lue","region":"us-east-1","secret_access_key":"s3cret-v4lue"}`, "secret: has a field"},
			{"bedrock bad region", storage.AdapterBedrock, `{"api_key":"ABSKs3cret-v4lue","region":"v4lue.example.com/"}`, "secret.region"},
			{"vertex plain", storage.AdapterVertex, "ya29.s3cret-v4lue", "secret: must be a JSON object"},
			{"vertex no project", storage.AdapterVertex, `{"region":"us-central1","access_token":"ya29.s3cret-v4lue"}`, "secret.project"},
			{"vertex neither", storage.AdapterVertex, `{"project":"proj-v4lue","region":"us-central1"}`, "exactly one of"},
			{"vertex both", storage.AdapterVertex, `{"project":"proj-v4lue","region":"us-central1","access_token":"a-v4lue","service_account_json":"{}"}`, "exactly one of"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.CreateProviderKey(t.Context(), credentialKey("refused", tc.adapter, tc.secret))
				wantErr(t, err, storage.ErrInvalid, tc.field)
				if err != nil {
					noSecretValue(t, "error", err.Error())
				}
			})
		}
		pks, err := s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		if len(pks) != 0 {
			t.Errorf("refused creates left %d provider keys, want 0", len(pks))
		}
	}},
	{"RefusedShapeOnUpdate", func(t *testing.T, s storage.Store) {
		created := mustCreateProviderKey(t, s, credentialKey("azure", storage.AdapterAzureOpenAI, entraSecret))
		in := created
		in.Secret = `{"tenant_id":"tenant-v4lue","client_secret":"s3cret-v4lue"}`
		_, err := s.UpdateProviderKey(t.Context(), in, 0)
		wantErr(t, err, storage.ErrInvalid, "secret.client_id")
		// Moving a key to an adapter its stored secret does not fit is
		// only checked when a secret is given.
		in.Secret = bedrockSecret
		in.Adapter = storage.AdapterBedrock
		in.APIBase = ""
		updated, err := s.UpdateProviderKey(t.Context(), in, 0)
		noErr(t, err, "UpdateProviderKey to bedrock with a bedrock secret")
		checkSecret(t, updated, bedrockSecret)
	}},
	{"APIVersion", func(t *testing.T, s storage.Store) {
		in := credentialKey("azure", storage.AdapterAzureOpenAI, "0123456789abcdef0123456789abcdef")
		in.APIVersion = "2025-01-01-preview"
		created := mustCreateProviderKey(t, s, in)
		if created.APIVersion != in.APIVersion {
			t.Errorf("api_version = %q, want %q", created.APIVersion, in.APIVersion)
		}
		for _, v := range []string{"v1", "2024-10-21", ""} {
			up := created
			up.Secret = ""
			up.APIVersion = v
			got, err := s.UpdateProviderKey(t.Context(), up, 0)
			noErr(t, err, "UpdateProviderKey api_version "+v)
			read, err := s.GetProviderKey(t.Context(), got.ID)
			noErr(t, err, "GetProviderKey")
			if got.APIVersion != v || read.APIVersion != v {
				t.Errorf("api_version after update = %q, read back %q, want %q", got.APIVersion, read.APIVersion, v)
			}
		}
		for _, v := range []string{"2024-13-01", "latest", "v2", "2024-10-21-beta", "20241021"} {
			up := created
			up.Secret = ""
			up.APIVersion = v
			_, err := s.UpdateProviderKey(t.Context(), up, 0)
			wantErr(t, err, storage.ErrInvalid, "api_version")
		}
		other := providerKey("openai-key")
		other.APIVersion = "2024-10-21"
		_, err := s.CreateProviderKey(t.Context(), other)
		wantErr(t, err, storage.ErrInvalid, "api_version: applies to azure-openai")
	}},
	{"APIBaseRequired", func(t *testing.T, s storage.Store) {
		vendor := providerKey("deepseek")
		vendor.Provider = "deepseek"
		vendor.Adapter = storage.AdapterOpenAI
		_, err := s.CreateProviderKey(t.Context(), vendor)
		wantErr(t, err, storage.ErrInvalid, "api_base: provider deepseek has no default base URL; set api_base")

		azure := credentialKey("azure", storage.AdapterAzureOpenAI, "0123456789abcdef0123456789abcdef")
		azure.APIBase = ""
		_, err = s.CreateProviderKey(t.Context(), azure)
		wantErr(t, err, storage.ErrInvalid, "api_base: is required for azure-openai")

		vendor.APIBase = "https://api.deepseek.com"
		created := mustCreateProviderKey(t, s, vendor)
		created.Secret = ""
		created.APIBase = ""
		_, err = s.UpdateProviderKey(t.Context(), created, 0)
		wantErr(t, err, storage.ErrInvalid, "api_base")
	}},
	{"AzureBareResourceName", func(t *testing.T, s storage.Store) {
		in := credentialKey("azure", storage.AdapterAzureOpenAI, "0123456789abcdef0123456789abcdef")
		in.APIBase = "myres"
		got := mustCreateProviderKey(t, s, in)
		if got.APIBase != "myres" || got.BaseURL() != "https://myres.openai.azure.com" {
			t.Errorf("api_base %q, base URL %q; want myres, https://myres.openai.azure.com", got.APIBase, got.BaseURL())
		}
		if got.SecretHost != "myres.openai.azure.com" || !got.SecretBound() {
			t.Errorf("secret_host %q bound %t, want myres.openai.azure.com, true", got.SecretHost, got.SecretBound())
		}
	}},
}
