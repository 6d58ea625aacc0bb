package storage_test

import (
	"errors"
	"testing"

	"github.com/aisix/aisix/storage"
)

func TestMaskSecret(t *testing.T) {
	for _, tt := range []struct{ name, secret, want string }{
		{"long", "sk-proj-abcdefghijklmnop1234", "sk-…1234"},
		{"short", "sk-short", "***"},
		{"entra", `{"tenant_id":"t-v4lue","client_id":"c-v4lue","client_secret":"s-v4lue"}`, `{"client_id":"…","client_secret":"…","tenant_id":"…"}`},
		{"leading space", ` {"region":"us-east-1"}`, `{"region":"…"}`},
		{"broken JSON", `{"tenant_id":"t-v4lue","client_secret":"s-v4lu`, "***"},
		{"empty object", `{}`, "***"},
		{"nested values", `{"project":"p-v4lue","service_account_json":{"private_key":"k-v4lue"}}`, `{"project":"…","service_account_json":"…"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := storage.MaskSecret(tt.secret); got != tt.want {
				t.Errorf("MaskSecret(%q) = %q, want %q", tt.secret, got, tt.want)
			}
		})
	}
}

func TestAzureBaseURL(t *testing.T) {
	for _, tt := range []struct{ adapter, base, want string }{
		{storage.AdapterAzureOpenAI, "myres", "https://myres.openai.azure.com"},
		{storage.AdapterAzureOpenAI, " https://myres.openai.azure.com/ ", "https://myres.openai.azure.com"},
		{storage.AdapterOpenAI, "myres", "myres"},
	} {
		pk := storage.ProviderKey{Adapter: tt.adapter, APIBase: tt.base}
		if got := pk.BaseURL(); got != tt.want {
			t.Errorf("%s %q: BaseURL = %q, want %q", tt.adapter, tt.base, got, tt.want)
		}
	}
}

func TestGeminiBaseURL(t *testing.T) {
	for _, tt := range []struct{ provider, base, want string }{
		{"", "", storage.DefaultGeminiBase},
		{"gemini", "", storage.DefaultGeminiBase},
		{"google", "", storage.DefaultGeminiBase},
		{"acme", "", ""},
		{"acme", "https://gemini-proxy.example.com/", "https://gemini-proxy.example.com"},
	} {
		pk := storage.ProviderKey{DisplayName: "g", Provider: tt.provider, Adapter: storage.AdapterGemini, APIBase: tt.base}
		if got := pk.BaseURL(); got != tt.want {
			t.Errorf("provider %q base %q: BaseURL = %q, want %q", tt.provider, tt.base, got, tt.want)
		}
		err := pk.ValidateWrite()
		if wantErr := tt.want == ""; (err != nil) != wantErr {
			t.Errorf("provider %q base %q: ValidateWrite = %v, want an error: %v", tt.provider, tt.base, err, wantErr)
		}
	}
	// provider "gemini" alone names the adapter.
	pk := storage.ProviderKey{Provider: "gemini"}
	if got := pk.EffectiveAdapter(); got != storage.AdapterGemini {
		t.Errorf("EffectiveAdapter = %q", got)
	}
}

func TestValidateSecretFor(t *testing.T) {
	for _, tt := range []struct {
		name, adapter, secret, field string
	}{
		{"azure key", storage.AdapterAzureOpenAI, "0123456789abcdef", ""},
		{"azure entra", storage.AdapterAzureOpenAI, `{"tenant_id":"t","client_id":"c","client_secret":"s"}`, ""},
		{"azure entra blank", storage.AdapterAzureOpenAI, `{"tenant_id":" ","client_id":"c","client_secret":"s"}`, "secret.tenant_id"},
		{"openai JSON-looking", storage.AdapterOpenAI, `{"anything":1}`, ""},
		{"bedrock session", storage.AdapterBedrock, `{"access_key_id":"a","secret_access_key":"s","region":"r","session_token":"t"}`, ""},
		{"bedrock api key", storage.AdapterBedrock, `{"api_key":"k","region":"us-east-1"}`, ""},
		{"bedrock api key and access key", storage.AdapterBedrock, `{"api_key":"k","region":"r","access_key_id":"a"}`, "secret"},
		{"bedrock api key no region", storage.AdapterBedrock, `{"api_key":"k"}`, "secret.region"},
		{"bedrock empty session", storage.AdapterBedrock, `{"access_key_id":"a","secret_access_key":"s","region":"r","session_token":""}`, "secret.session_token"},
		{"vertex sa", storage.AdapterVertex, `{"project":"p","region":"r","service_account_json":"{}"}`, ""},
		{"vertex array", storage.AdapterVertex, `["p"]`, "secret"},
		{"gemini key", storage.AdapterGemini, "AIzaSyD-fake-key-0123456789", ""},
		{"gemini JSON", storage.AdapterGemini, `{"project":"p","region":"r","access_token":"t"}`, "secret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := storage.ValidateSecretFor(tt.adapter, tt.secret)
			var e *storage.Error
			switch {
			case tt.field == "" && err != nil:
				t.Errorf("err = %v, want none", err)
			case tt.field != "" && (err == nil || !errors.As(err, &e) || e.Field != tt.field):
				t.Errorf("err = %v, want one naming %s", err, tt.field)
			}
		})
	}
}
