package routing_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// TestVertexConfigErrors: a vertex key whose secret or api_base cannot be
// used is a config_error that quotes neither; a Gemini model goes to the
// project's publishers/google models with the bearer token, and a model
// name that is not a model id is a config_error.
func TestVertexConfigErrors(t *testing.T) {
	for _, tt := range []struct {
		name, secret, base, want string
	}{
		{"bad service account", `{"project":"p","region":"r","service_account_json":"{\"client_email\":\"a@b\",\"private_key\":\"s3cret-not-a-key\"}"}`, "", "private_key is not a PEM RSA private key"},
		{"not JSON", `ya29.s3cret`, "", "not a JSON object"},
		{"api_base with a query", `{"project":"p","region":"r","access_token":"ya29.s3cret"}`, "https://vertex.example/?k=s3cret", "query"},
		{"metadata host", `{"project":"p","region":"r","access_token":"ya29.s3cret"}`, "http://169.254.169.254", "api_base"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pk := storage.ProviderKey{ID: "v", DisplayName: "v", Provider: "vertex", Adapter: "vertex", Secret: tt.secret, APIBase: tt.base}
			pk.SecretHost = pk.BaseHost()
			s, _ := routing.Build(storage.Dataset{ProviderKeys: []storage.ProviderKey{pk},
				Models: []storage.Model{{ID: "m", DisplayName: "m", Provider: "vertex", ModelName: "claude-haiku-4-5", ProviderKeyID: "v"}}})
			for _, ce := range s.ConfigErrors() {
				if strings.Contains(fmt.Sprint(ce), "s3cret") {
					t.Errorf("config error quotes the secret: %v", ce)
				}
			}
			m := s.Model("m")
			if m == nil {
				if !strings.Contains(fmt.Sprint(s.ConfigErrors()), tt.want) {
					t.Errorf("config errors %v, want one about %q", s.ConfigErrors(), tt.want)
				}
				return
			}
			d := m.Direct
			if d.Err == nil || d.Err.Type != "config_error" || !strings.Contains(d.Err.Message, tt.want) || strings.Contains(d.Err.Message, "s3cret") {
				t.Errorf("err = %+v, want config_error about %q", d.Err, tt.want)
			}
		})
	}
	pk := storage.ProviderKey{ID: "v", DisplayName: "v", Provider: "vertex", Adapter: "vertex", Secret: `{"project":"p","region":"global","access_token":"ya29.t"}`}
	s, _ := routing.Build(storage.Dataset{ProviderKeys: []storage.ProviderKey{pk},
		Models: []storage.Model{
			{ID: "c", DisplayName: "c", Provider: "vertex", ModelName: "claude-haiku-4-5@20251001", ProviderKeyID: "v"},
			{ID: "g", DisplayName: "g", Provider: "vertex", ModelName: "gemini-2.5-pro", ProviderKeyID: "v"},
			{ID: "bad", DisplayName: "bad", Provider: "vertex", ModelName: "gemini/../x", ProviderKeyID: "v"},
		}})
	if d := s.Model("c").Direct; d.Err != nil || d.Endpoint == nil || d.ProviderKey.URL.String() != "https://aiplatform.googleapis.com" {
		t.Errorf("claude: %+v %v", d.Err, d.ProviderKey.URL)
	}
	d := s.Model("g").Direct
	if d.Err != nil || d.Endpoint == nil {
		t.Fatalf("gemini: %+v", d.Err)
	}
	req := upstreamRequest(t, d, `{"model":"g","messages":[{"role":"user","content":"hi"}]}`)
	if want := "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/gemini-2.5-pro:generateContent"; req.URL.String() != want {
		t.Errorf("url %s, want %s", req.URL, want)
	}
	if req.Header.Get("Authorization") != "Bearer ya29.t" || req.Header.Get("X-Goog-Api-Key") != "" {
		t.Errorf("headers %v", req.Header)
	}
	if d := s.Model("bad").Direct; d.Err == nil || d.Err.Type != "config_error" || !strings.Contains(d.Err.Message, "is not a Vertex AI model id") {
		t.Errorf("bad model name: %+v", d.Err)
	}
}
