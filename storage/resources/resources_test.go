package resources_test

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/resources"
	"go.yaml.in/yaml/v3"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func env(vars map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

// tutorial is the product tutorial's setup in the reference product's
// shapes (api_key, provider_key by name, key_env, ${VAR}); the CLI's tests
// read it too.
var tutorial = func() string {
	b, err := os.ReadFile(filepath.Join("testdata", "tutorial.yaml"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

var tutorialEnv = map[string]string{
	"UPSTREAM":                 "http://127.0.0.1:9000/v1",
	"PRIMARY_OPENAI_API_KEY":   "sk-mock-primary-0000000001",
	"SECONDARY_OPENAI_API_KEY": "sk-mock-secondary-000000002",
	"CALLER_KEY":               "sk-failover-demo",
}

func ptr[T any](v T) *T { return &v }

func TestLoadReferenceShapes(t *testing.T) {
	f, err := resources.Load("resources.yaml", []byte(tutorial), resources.Options{Env: env(tutorialEnv)})
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Summary(); got != "2 provider keys, 3 models, 1 caller key" {
		t.Errorf("Summary = %q", got)
	}
	d := f.Desired()
	want := storage.Desired{
		ProviderKeys: []storage.ProviderKey{
			{DisplayName: "openai-primary", Provider: "openai", Adapter: "openai", APIBase: "http://127.0.0.1:9000/v1", Secret: "sk-mock-primary-0000000001"},
			{DisplayName: "openai-secondary", Provider: "openai", APIBase: "http://127.0.0.1:9000/v1", Secret: "sk-mock-secondary-000000002"},
		},
		Models: []storage.Model{
			{DisplayName: "chat-prod", Routing: &storage.Routing{Strategy: "failover",
				Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}}, Retries: ptr(1), MaxFallbacks: ptr(1)}},
			{DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "openai-primary"},
			{DisplayName: "gpt-4o-secondary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "openai-secondary"},
		},
		APIKeys: []storage.APIKey{{DisplayName: "demo",
			// printf '%s' sk-failover-demo | sha256sum
			KeyHash:       "3e2fa30897707230cc2b747ba8a16aac5767d6b2339932e4bfe1307049a1fae2",
			AllowedModels: []string{"chat-prod"}}},
	}
	if !reflect.DeepEqual(d, want) {
		t.Fatalf("Desired:\n got %+v\nwant %+v", d, want)
	}
	if strings.Contains(string(mustMarshal(t, f, "yaml")), "sk-failover-demo") {
		t.Errorf("key_env: the plaintext is kept")
	}

	// The same document as JSON.
	var generic any
	if err := yamlToAny(tutorial, &generic); err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(generic, "", "  ")
	fj, err := resources.Load("resources.json", js, resources.Options{Env: env(tutorialEnv)})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fj.Desired(), d) {
		t.Errorf("JSON Desired differs:\n%+v\n%+v", fj.Desired(), d)
	}
}

func mustMarshal(t *testing.T, f *resources.File, format string) []byte {
	t.Helper()
	b, err := resources.Marshal(f, format)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestErrorsTogether(t *testing.T) {
	const doc = `_format_version: "2"
provider_keys:
  - display_name: pk
    provider: openai
    secret: s1
    secret_env: ALSO
  - display_name: pk
    provider: nope
    secret_env: MISSING
  - display_name: pk3
    adapter: openai
    provider: openai
    api_base: ftp://x
    secret: x
models:
  - display_name: a
    provider: openai
    model_name: m
    provider_key: ghost
    timeout_ms: 5
  - display_name: g
    routing:
      targets:
        - model: a
        - model: gpt-4o-tertiary
        - model: g
      retries: 2
  - display_name: bad
    provider: openai
    model_name: m
    provider_key: pk
    retries: lots
    price: {input: 1, output: -1}
api_keys:
  - display_name: k
    key_hash: ABC
    allowed_models: [a, nothere]
  - display_name: k2
    allowed_models: ["*"]
    expires_at: tomorrow
  - allowed_models: ["*"]
    key_env: UNSET
guardrails: []
`
	_, err := resources.Load("resources.yaml", []byte(doc), resources.Options{Env: env(nil)})
	var es resources.Errors
	if !errors.As(err, &es) {
		t.Fatalf("err = %v", err)
	}
	want := []string{
		`resources.yaml:1:18: _format_version: must be "1" (got "2")`,
		`resources.yaml:6:17: provider_keys[0].secret_env: give the secret once: secret is set too`,
		`resources.yaml:7:5: provider_keys[1].adapter: is required unless provider is one of openai, anthropic, azure-openai, bedrock, vertex, gemini`,
		`resources.yaml:7:19: provider_keys[1].display_name: "pk" is defined twice (also provider_keys[0])`,
		`resources.yaml:13:15: provider_keys[2].api_base: must be an http or https URL (got scheme "ftp")`,
		`resources.yaml:19:19: models[0].provider_key: "ghost" is not a provider key in this file or the store`,
		`resources.yaml:20:5: models[0].timeout_ms: unknown field`,
		`resources.yaml:25:18: models[1].routing.targets[1].model: "gpt-4o-tertiary" is not a model in this file or the store`,
		`resources.yaml:26:18: models[1].routing.targets[2].model: "g" is a routing model: targets must be direct models`,
		`resources.yaml:32:14: models[2].retries: must be an integer`,
		`resources.yaml:33:31: models[2].price.output: must be a number of USD per million tokens between 0 and 1e+06`,
		`resources.yaml:36:15: api_keys[0].key_hash: must be the lower-case hex SHA-256 of the key (64 characters 0-9a-f)`,
		`resources.yaml:37:25: api_keys[0].allowed_models[1]: "nothere" is not a model in this file or the store`,
		`resources.yaml:38:5: api_keys[1]: needs a key: one of key_hash or key_env`,
		`resources.yaml:40:17: api_keys[1].expires_at: must be an RFC 3339 time such as 2027-01-01T00:00:00Z`,
		`resources.yaml:41:5: api_keys[2].display_name: is required`,
		`resources.yaml:42:14: api_keys[2].key_env: environment variable UNSET is not set`,
		`resources.yaml:43:1: guardrails: unknown field`,
	}
	var got []string
	for _, e := range es {
		got = append(got, e.Error())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if err.Error() != strings.Join(got, "\n") {
		t.Errorf("Error() is not one error a line: %q", err.Error())
	}
}

func yamlToAny(doc string, v *any) error { return yaml.Unmarshal([]byte(doc), v) }

func TestUnknownFields(t *testing.T) {
	const doc = `_format_version: "1"
models:
  - display_name: a
    provider: openai
    model_name: m
    provider_key: pk
    timeout_ms: 5
guardrails: []
`
	known := &resources.Known{ProviderKeys: []string{"pk"}}
	_, err := resources.Load("r.yaml", []byte(doc), resources.Options{Known: known})
	if err == nil || err.Error() != "r.yaml:7:5: models[0].timeout_ms: unknown field\nr.yaml:8:1: guardrails: unknown field" {
		t.Fatalf("err = %v", err)
	}
	f, err := resources.Load("r.yaml", []byte(doc), resources.Options{Known: known, AllowUnknown: true})
	if err != nil {
		t.Fatal(err)
	}
	if f.Warnings.Error() != "r.yaml:7:5: models[0].timeout_ms: unknown field, ignored\nr.yaml:8:1: guardrails: unknown field, ignored" {
		t.Errorf("warnings = %v", f.Warnings)
	}
	// Without Known the provider key is missing.
	if _, err := resources.Load("r.yaml", []byte(doc), resources.Options{AllowUnknown: true}); err == nil ||
		!strings.Contains(err.Error(), `models[0].provider_key: "pk" is not a provider key in this file or the store`) {
		t.Errorf("without Known: %v", err)
	}
}

func TestSecretsAndSubstitution(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "openai.key"), []byte("sk-from-file-0000000001\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := `_format_version: "1"
provider_keys:
  - display_name: from-file
    provider: openai
    secret_file: openai.key
  - display_name: literal
    provider: openai
    secret: "$${NOT_A_VAR}-${PART}"
  - display_name: missing-file
    provider: openai
    secret_file: /nonexistent/secret
models:
  - display_name: m
    provider: openai
    model_name: ${MODEL}
    provider_key: from-file
    timeout: ${TIMEOUT}
`
	name := filepath.Join(dir, "resources.yaml")
	vars := map[string]string{"PART": "x", "MODEL": "gpt-4o-mini", "TIMEOUT": "30000"}
	_, err := resources.Load(name, []byte(doc), resources.Options{Env: env(vars)})
	if err == nil || err.Error() != name+":11:18: provider_keys[2].secret_file: read /nonexistent/secret: no such file or directory" {
		t.Fatalf("err = %v", err)
	}
	doc = strings.Replace(doc, "/nonexistent/secret", "openai.key", 1)
	f, err := resources.Load(name, []byte(doc), resources.Options{Env: env(vars)})
	if err != nil {
		t.Fatal(err)
	}
	d := f.Desired()
	if d.ProviderKeys[0].Secret != "sk-from-file-0000000001" || d.ProviderKeys[1].Secret != "${NOT_A_VAR}-x" {
		t.Errorf("secrets: %q %q", d.ProviderKeys[0].Secret, d.ProviderKeys[1].Secret)
	}
	if d.Models[0].ModelName != "gpt-4o-mini" || d.Models[0].Timeout == nil || *d.Models[0].Timeout != 30000 {
		t.Errorf("model: %+v", d.Models[0])
	}
	// A missing variable names itself and where it is used.
	delete(vars, "MODEL")
	_, err = resources.Load(name, []byte(doc), resources.Options{Env: env(vars)})
	if err == nil || err.Error() != name+":15:17: models[0].model_name: environment variable MODEL is not set (used as ${MODEL})" {
		t.Errorf("missing var: %v", err)
	}
}

// TestMissingVariableOnce: a field whose ${VAR} is missing reports that,
// not also the rules its unsubstituted value breaks.
func TestMissingVariableOnce(t *testing.T) {
	const doc = "_format_version: \"1\"\nprovider_keys:\n  - {display_name: p, provider: openai, api_base: \"${UP}\", secret: x}\n"
	_, err := resources.Load("r.yaml", []byte(doc), resources.Options{Env: env(nil)})
	if err == nil || err.Error() != "r.yaml:3:51: provider_keys[0].api_base: environment variable UP is not set (used as ${UP})" {
		t.Errorf("err = %v", err)
	}
}

func TestFormatVersionAndSyntax(t *testing.T) {
	for _, tc := range []struct{ doc, want string }{
		{"", `r.yaml: the file is empty: it needs at least _format_version: "1"`},
		{"models: []\n", `r.yaml:1:1: _format_version: is required ("1")`},
		{"_format_version: \"1\"\nmodels: {a: 1}\n", `r.yaml:2:9: models: must be a list`},
		{"_format_version: \"1\"\nmodels:\n  - display_name: [x\n", `r.yaml:2:1: syntax error: did not find expected`},
		{`{"_format_version": "1", "models": [{"display_name": "x", "routing": {"targets": []}}]}`,
			`r.yaml:1:82: models[0].routing.targets: needs at least one target`},
	} {
		_, err := resources.Load("r.yaml", []byte(tc.doc), resources.Options{})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %s", tc.doc, err, tc.want)
		}
	}
}

// dataset is a store's content with every field Export writes.
func dataset() storage.Dataset {
	exp := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	meta := storage.Meta{Revision: 7, CreatedAt: exp, UpdatedAt: exp}
	return storage.Dataset{
		Revision: 9,
		ProviderKeys: []storage.ProviderKey{
			{ID: "id-pk2", DisplayName: "openai-secondary", Provider: "openai", Secret: "s2", SecretHint: "***", Meta: meta},
			{ID: "id-pk1", DisplayName: "azure.prod", Provider: "azure", Adapter: "azure-openai", APIBase: "myres",
				APIVersion: "2025-01-01-preview", ForwardHeaders: []string{"X-Trace"}, Secret: "s1", SecretHost: "myres.openai.azure.com", Meta: meta},
		},
		Models: []storage.Model{
			{ID: "id-m2", DisplayName: "chat-prod", RateLimit: &storage.RateLimit{RPM: 60}, Budget: &storage.Budget{AmountUSD: 5, Period: "day"},
				Routing: &storage.Routing{Strategy: "weighted", Targets: []storage.Target{{Model: "gpt-4o", Weight: ptr(3)}, {Model: "gpt-4o-azure"}},
					Retries: ptr(2), MaxFallbacks: ptr(1), RetryOn429: ptr(true), FallbackOnStatuses: []int{500, 503},
					WhenAllUnavailable: "try_anyway", Timeout: ptr(int64(60000))}, Meta: meta},
			{ID: "id-m1", DisplayName: "gpt-4o", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: "id-pk2",
				Timeout: ptr(int64(30000)), StreamTimeout: ptr(int64(10000)), Retries: ptr(0),
				Cooldown:      &storage.Cooldown{Enabled: ptr(true), DefaultSeconds: ptr(30), TriggerStatuses: []int{429}},
				Price:         &storage.ModelPrice{Input: 2.5, Output: 10, CachedInput: 1.25},
				ProviderLimit: &storage.RateLimit{TPM: 30000}, Meta: meta},
			{ID: "id-m3", DisplayName: "gpt-4o-azure", Provider: "azure", ModelName: "gpt-4o-dep", ProviderKeyID: "id-pk1",
				Price: &storage.ModelPrice{Input: 0, Output: 0}, Meta: meta},
		},
		APIKeys: []storage.APIKey{
			{ID: "id-k1", DisplayName: "team-a", KeyHash: strings.Repeat("ab", 32), AllowedModels: []string{"chat-prod"},
				AllowedModelIDs: []string{"id-m2"}, ExpiresAt: &exp, Disabled: true,
				RateLimit: &storage.RateLimit{RPM: 10, Concurrency: 2}, Budget: &storage.Budget{AmountUSD: 100, Period: "month"}, Meta: meta},
			{ID: "id-k2", DisplayName: "all", KeyHash: strings.Repeat("cd", 32), AllowedModels: []string{"*"}, Meta: meta},
			{ID: "id-k3", KeyHash: strings.Repeat("ef", 32), AllowedModels: []string{"*"}, Meta: meta},
		},
	}
}

// desiredOf is what a file exported from ds must state: ds by name,
// sorted, without ids and metadata, secrets as the environment gives them.
func desiredOf(ds storage.Dataset, secrets map[string]string) storage.Desired {
	f := resources.Export(ds, nil)
	names := map[string]string{}
	for _, pk := range ds.ProviderKeys {
		names[pk.ID] = pk.DisplayName
	}
	var d storage.Desired
	for _, p := range f.ProviderKeys {
		for _, pk := range ds.ProviderKeys {
			if pk.DisplayName == p.DisplayName {
				d.ProviderKeys = append(d.ProviderKeys, storage.ProviderKey{DisplayName: pk.DisplayName, Provider: pk.Provider,
					Adapter: pk.Adapter, APIBase: pk.APIBase, APIVersion: pk.APIVersion, ForwardHeaders: pk.ForwardHeaders,
					Secret: secrets[resources.SecretEnvName(pk.DisplayName)]})
			}
		}
	}
	for _, fm := range f.Models {
		for _, m := range ds.Models {
			if m.DisplayName == fm.DisplayName {
				m.ID, m.Meta = "", storage.Meta{}
				if m.ProviderKeyID != "" {
					m.ProviderKeyID = names[m.ProviderKeyID]
				}
				d.Models = append(d.Models, m)
			}
		}
	}
	for _, fk := range f.APIKeys {
		for _, k := range ds.APIKeys {
			if k.DisplayName == fk.DisplayName {
				k.ID, k.Meta, k.AllowedModelIDs = "", storage.Meta{}, nil
				d.APIKeys = append(d.APIKeys, k)
			}
		}
	}
	return d
}

func TestExportRoundTrip(t *testing.T) {
	ds := dataset()
	f := resources.Export(ds, nil)
	if len(f.Skipped) != 1 || !strings.Contains(f.Skipped[0], "id-k3") {
		t.Errorf("Skipped = %q", f.Skipped)
	}
	if got := strings.Join(f.SecretEnvs(), " "); got != "AISIX_SECRET_AZURE_PROD AISIX_SECRET_OPENAI_SECONDARY" {
		t.Errorf("SecretEnvs = %s", got)
	}
	secrets := map[string]string{"AISIX_SECRET_AZURE_PROD": "azure-key-1", "AISIX_SECRET_OPENAI_SECONDARY": "sk-2"}
	for _, format := range []string{"yaml", "json"} {
		t.Run(format, func(t *testing.T) {
			out := mustMarshal(t, f, format)
			golden := filepath.Join("testdata", "export."+format)
			if *update {
				if err := os.WriteFile(golden, out, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != string(want) {
				t.Errorf("export differs from %s (go test -update):\n%s", golden, out)
			}
			for _, s := range []string{"s1", "s2", "id-", "revision", "created"} {
				if strings.Contains(string(out), s+"\n") || strings.Contains(string(out), `"`+s) {
					t.Errorf("export holds %q:\n%s", s, out)
				}
			}
			g, err := resources.Load("export."+format, out, resources.Options{Env: env(secrets)})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := g.Desired(), desiredOf(ds, secrets); !reflect.DeepEqual(got, want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(want)
				t.Errorf("Desired after the round trip:\n got %s\nwant %s", gj, wj)
			}
			if again := mustMarshal(t, g, format); string(again) != string(out) {
				t.Errorf("Load → Marshal is not the same document:\n%s", again)
			}
		})
	}
	only := resources.Export(ds, []string{resources.KindModels})
	if len(only.ProviderKeys) != 0 || len(only.APIKeys) != 0 || len(only.Models) != 3 {
		t.Errorf("--kind models: %+v", only)
	}
}

func TestMarshalEscapesVariables(t *testing.T) {
	f := &resources.File{FormatVersion: "1", ProviderKeys: []resources.ProviderKey{
		{DisplayName: "p", Provider: "openai", APIBase: "https://h/${x}", SecretEnv: "S"}}}
	out := mustMarshal(t, f, "yaml")
	g, err := resources.Load("r.yaml", out, resources.Options{Env: env(map[string]string{"S": "v"})})
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if g.ProviderKeys[0].APIBase != "https://h/${x}" {
		t.Errorf("api_base = %q\n%s", g.ProviderKeys[0].APIBase, out)
	}
}

func TestSchema(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(resources.Schema(), &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	props := s["properties"].(map[string]any)
	for _, k := range []string{"_format_version", "provider_keys", "models", "api_keys"} {
		if props[k] == nil {
			t.Errorf("no property %s", k)
		}
	}
	model := props["models"].(map[string]any)["items"].(map[string]any)["properties"].(map[string]any)
	if model["provider_key"] == nil || model["routing"] == nil || model["provider_key_id"] != nil {
		t.Errorf("model properties: %v", model)
	}
}

// TestUpstreamTLSFiles: a provider key's upstream TLS files are stored
// absolute (a relative one against the resources file's directory), and a
// client certificate without its key is refused with its line.
func TestUpstreamTLSFiles(t *testing.T) {
	dir := t.TempDir()
	doc := `_format_version: "1"
provider_keys:
  - display_name: private-gw
    provider: openai
    api_base: https://gw.internal/v1
    secret: sk-private-0000000001
    tls_ca_file: tls/ca.pem
    tls_cert_file: /etc/aisix/gw.crt
    tls_key_file: /etc/aisix/gw.key
`
	name := filepath.Join(dir, "resources.yaml")
	f, err := resources.Load(name, []byte(doc), resources.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pk := f.Desired().ProviderKeys[0]
	if pk.TLSCAFile != filepath.Join(dir, "tls", "ca.pem") || pk.TLSCertFile != "/etc/aisix/gw.crt" || pk.TLSKeyFile != "/etc/aisix/gw.key" {
		t.Errorf("tls files %q %q %q", pk.TLSCAFile, pk.TLSCertFile, pk.TLSKeyFile)
	}
	doc = strings.Replace(doc, "    tls_key_file: /etc/aisix/gw.key\n", "", 1)
	_, err = resources.Load(name, []byte(doc), resources.Options{})
	if err == nil || !strings.Contains(err.Error(), "tls_cert_file") {
		t.Fatalf("cert without key: %v", err)
	}
}
