package routing_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

func ptr[T any](v T) *T { return &v }

func dataset() storage.Dataset {
	return storage.Dataset{
		Revision: 3,
		ProviderKeys: []storage.ProviderKey{
			{ID: "pk1", DisplayName: "openai-primary", Provider: "openai", Adapter: "openai", Secret: "sk-one", APIBase: "https://api.openai.com/v1", SecretHost: "api.openai.com"},
			{ID: "pk2", DisplayName: "openai-secondary", Provider: "openai", Secret: "sk-two", APIBase: "http://127.0.0.1:9/v1/", SecretHost: "127.0.0.1"},
		},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk1",
				Timeout: ptr(int64(2000)), Retries: ptr(2)},
			{ID: "m2", DisplayName: "gpt-4o-secondary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk2",
				StreamTimeout: ptr(int64(700)), Cooldown: &storage.Cooldown{DefaultSeconds: ptr(5), TriggerStatuses: []int{503}}},
			{ID: "r1", DisplayName: "chat-prod", Routing: &storage.Routing{
				Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}}, Retries: ptr(1), MaxFallbacks: ptr(1)}},
		},
		APIKeys: []storage.APIKey{
			{ID: "k1", KeyHash: proxytest.KeyHash("sk-caller"), AllowedModels: []string{"chat-prod"}},
			{ID: "k2", KeyHash: proxytest.KeyHash("sk-all"), AllowedModels: []string{"*"}},
		},
	}
}

func TestBuild(t *testing.T) {
	s, err := routing.Build(dataset())
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision != 3 {
		t.Errorf("revision %d", s.Revision)
	}
	m := s.Model("gpt-4o-primary")
	if m == nil || m.Direct == nil || s.ModelByID("m1") != m {
		t.Fatalf("direct model not resolved: %+v", m)
	}
	d := m.Direct
	if d.ProviderKey.URL.String() != "https://api.openai.com/v1/chat/completions" || upstreamHeader(t, d, "Authorization") != "Bearer sk-one" {
		t.Errorf("upstream %s auth %v", d.ProviderKey.URL, upstreamHeader(t, d, "Authorization"))
	}
	if d.Timeout != 2*time.Second || d.StreamIdleTimeout != 2*time.Second || d.StreamHeaderTimeout != 2*time.Second || d.Retries != 2 || !d.RetriesSet {
		t.Errorf("timeouts %v/%v retries %d", d.Timeout, d.StreamIdleTimeout, d.Retries)
	}
	if string(d.ModelNameJSON) != `"gpt-4o-mini"` || string(m.NameJSON) != `"gpt-4o-primary"` {
		t.Errorf("JSON names %s %s", d.ModelNameJSON, m.NameJSON)
	}
	if !d.Cooldown.Triggers(429) || !d.Cooldown.Triggers(599) || d.Cooldown.Triggers(400) || d.Cooldown.Default != 30*time.Second {
		t.Errorf("default cooldown %+v", d.Cooldown)
	}
	sec := s.Model("gpt-4o-secondary").Direct
	if sec.ProviderKey.URL.String() != "http://127.0.0.1:9/v1/chat/completions" {
		t.Errorf("trailing slash not trimmed: %s", sec.ProviderKey.URL)
	}
	if sec.Cooldown.Triggers(429) || !sec.Cooldown.Triggers(503) || sec.Cooldown.Length(0, false) != 5*time.Second {
		t.Errorf("custom cooldown %+v", sec.Cooldown)
	}
	if sec.Timeout != routing.DefaultTimeout || sec.StreamIdleTimeout != 700*time.Millisecond || sec.StreamFirstTimeout != 700*time.Millisecond {
		t.Errorf("timeouts %v/%v", sec.Timeout, sec.StreamIdleTimeout)
	}
	g := s.Model("chat-prod").Group
	if g == nil || len(g.Targets) != 2 || g.Targets[0] != d || g.Budget() != 2 || g.RetriesFor(d) != 2 || g.RetriesFor(sec) != 1 || !g.RetryOn429 {
		t.Fatalf("group %+v", g)
	}
	var names []string
	for _, m := range s.Models() {
		names = append(names, m.Name)
	}
	if fmt.Sprint(names) != "[chat-prod gpt-4o-primary gpt-4o-secondary]" {
		t.Errorf("sorted models %v", names)
	}
	if got := fmt.Sprint(s.ProviderKey("pk1")); strings.Contains(got, "sk-one") {
		t.Errorf("provider key String leaks the secret: %s", got)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "pk", s.ProviderKey("pk1"))
	if strings.Contains(logBuf.String(), "sk-one") {
		t.Errorf("provider key logs its secret: %s", logBuf.String())
	}
}

// rowErrors is a snapshot's config errors as "kind id: reason" lines.
func rowErrors(s *routing.Snapshot) []string {
	var out []string
	for _, re := range s.ConfigErrors() {
		out = append(out, re.Kind+" "+re.ID+" "+re.Name+": "+re.Reason)
	}
	return out
}

func TestBuildSkipsBadRows(t *testing.T) {
	ds := dataset()
	ds.ProviderKeys = append(ds.ProviderKeys, storage.ProviderKey{ID: "pk-bad", DisplayName: "broken", Provider: "openai",
		Secret: "sk-bad-secret", APIBase: "ftp://user:hunter2@files.example/v1"})
	ds.Models = append(ds.Models,
		storage.Model{ID: "m-bad", DisplayName: "too-many-retries", Provider: "openai", ModelName: "x", ProviderKeyID: "pk1", Retries: ptr(99)},
		storage.Model{ID: "m-orphan", DisplayName: "orphan", Provider: "openai", ModelName: "x", ProviderKeyID: "pk-bad"})
	ds.APIKeys = append(ds.APIKeys, storage.APIKey{ID: "k-bad", KeyHash: "sk-plain", AllowedModels: []string{"*"}})
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"chat-prod", "gpt-4o-primary", "gpt-4o-secondary"} {
		if s.Model(name) == nil {
			t.Errorf("good model %s not served", name)
		}
	}
	if s.Model("too-many-retries") != nil || s.Model("orphan") != nil || s.ProviderKey("pk-bad") != nil {
		t.Error("a bad row is served")
	}
	if len(s.Models()) != 3 {
		t.Errorf("models %d, want 3", len(s.Models()))
	}
	if s.Authenticate("sk-caller") == nil || s.Authenticate("sk-all") == nil {
		t.Error("good caller keys not served")
	}
	got := strings.Join(rowErrors(s), "\n")
	for _, want := range []string{
		`provider_key pk-bad broken: api_base: must`,
		"model m-bad too-many-retries: retries: must be between 0 and",
		"model m-orphan orphan: its provider key pk-bad was skipped: api_base: must",
		"api_key k-bad : key_hash: must be",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("config errors lack %q:\n%s", want, got)
		}
	}
	if len(s.ConfigErrors()) != 4 {
		t.Errorf("%d config errors, want 4:\n%s", len(s.ConfigErrors()), got)
	}
	if strings.Contains(got, "hunter2") || strings.Contains(got, "sk-bad-secret") {
		t.Errorf("config errors leak a credential:\n%s", got)
	}
}

func TestBuildDegrades(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ds *storage.Dataset)
		// want is the config errors, one "kind id name: reason" per row.
		want []string
		// check looks at the snapshot.
		check func(t *testing.T, s *routing.Snapshot)
	}{
		{
			name:   "missing provider key",
			mutate: func(ds *storage.Dataset) { ds.Models[0].ProviderKeyID = "nope" },
			want:   []string{"model m1 gpt-4o-primary: provider key nope does not exist", `model r1 chat-prod: routing target "gpt-4o-primary" was skipped: provider key nope does not exist`},
			check: func(t *testing.T, s *routing.Snapshot) {
				g := s.Model("chat-prod").Group
				if g.Targets[0].Err == nil || g.Targets[1].Err != nil || g.Targets[1] != s.Model("gpt-4o-secondary").Direct {
					t.Errorf("targets %+v %+v", g.Targets[0], g.Targets[1])
				}
			},
		},
		{
			name:   "missing target",
			mutate: func(ds *storage.Dataset) { ds.Models[2].Routing.Targets[1].Model = "ghost" },
			want:   []string{`model r1 chat-prod: routing target "ghost" does not exist`},
			check: func(t *testing.T, s *routing.Snapshot) {
				g := s.Model("chat-prod").Group
				if len(g.Targets) != 2 || g.Targets[0].Err != nil || g.Targets[1].Err == nil || g.Targets[1].Name != "ghost" {
					t.Errorf("targets %+v", g.Targets)
				}
				if e := g.Targets[1].Err; e.Type != "config_error" || e.Status != 500 {
					t.Errorf("target error %+v", e)
				}
			},
		},
		{
			name: "every target unusable",
			mutate: func(ds *storage.Dataset) {
				ds.Models[2].Routing.Targets = []storage.Target{{Model: "ghost"}, {Model: "chat-prod"}}
			},
			want: []string{`model r1 chat-prod: routing target "ghost" does not exist; routing target "chat-prod" is a routing model, not a direct model`},
			check: func(t *testing.T, s *routing.Snapshot) {
				g := s.Model("chat-prod").Group
				if g == nil || len(g.Targets) != 2 || g.Targets[0].Err == nil || g.Targets[1].Err == nil {
					t.Errorf("group %+v", g)
				}
			},
		},
		{
			name:   "duplicate name",
			mutate: func(ds *storage.Dataset) { ds.Models[1].DisplayName = "gpt-4o-primary" },
			want: []string{
				`model m1 gpt-4o-primary: display name "gpt-4o-primary" is used by more than one model`,
				`model m2 gpt-4o-primary: display name "gpt-4o-primary" is used by more than one model`,
				`model r1 chat-prod: routing target "gpt-4o-primary" was skipped: display name "gpt-4o-primary" is used by more than one model; routing target "gpt-4o-secondary" does not exist`,
			},
			check: func(t *testing.T, s *routing.Snapshot) {
				if s.Model("gpt-4o-primary") != nil || s.ModelByID("m1") != nil || s.ModelByID("m2") != nil {
					t.Error("an ambiguous model is served")
				}
			},
		},
		{
			name:   "duplicate model id",
			mutate: func(ds *storage.Dataset) { ds.Models[1].ID = "m1" },
			want: []string{
				"model m1 gpt-4o-primary: id m1 is used by more than one model",
				"model m1 gpt-4o-secondary: id m1 is used by more than one model",
				`model r1 chat-prod: routing target "gpt-4o-primary" was skipped: id m1 is used by more than one model; routing target "gpt-4o-secondary" was skipped: id m1 is used by more than one model`,
			},
		},
		{
			name:   "duplicate provider key id",
			mutate: func(ds *storage.Dataset) { ds.ProviderKeys[1].ID = "pk1" },
			want: []string{
				"provider_key pk1 openai-primary: id pk1 is used by more than one provider key",
				"provider_key pk1 openai-secondary: id pk1 is used by more than one provider key",
				"model m1 gpt-4o-primary: its provider key pk1 was skipped: id pk1 is used by more than one provider key",
				"model m2 gpt-4o-secondary: provider key pk2 does not exist",
				`model r1 chat-prod: routing target "gpt-4o-primary" was skipped: its provider key pk1 was skipped: id pk1 is used by more than one provider key; routing target "gpt-4o-secondary" was skipped: provider key pk2 does not exist`,
			},
		},
		{
			name:   "duplicate key hash",
			mutate: func(ds *storage.Dataset) { ds.APIKeys[1].KeyHash = ds.APIKeys[0].KeyHash },
			want: []string{
				"api_key k1 : its key hash is shared with another caller key",
				"api_key k2 : its key hash is shared with another caller key",
			},
			check: func(t *testing.T, s *routing.Snapshot) {
				if s.Authenticate("sk-caller") != nil {
					t.Error("a key whose hash is shared authenticates")
				}
			},
		},
		{
			name:   "credential of another family",
			mutate: func(ds *storage.Dataset) { ds.ProviderKeys[1].Adapter = "bedrock" },
			want: []string{`provider_key pk2 openai-secondary: provider key "openai-secondary": the secret is not a Bedrock credential: ` +
				`{"access_key_id","secret_access_key","region"} (and optionally "session_token") or {"api_key","region"}`},
			check: func(t *testing.T, s *routing.Snapshot) {
				if d := s.Model("gpt-4o-secondary").Direct; d.Err == nil || d.Err.Type != "config_error" {
					t.Errorf("target error %+v", d.Err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dataset()
			tt.mutate(&ds)
			s, err := routing.Build(ds)
			if err != nil {
				t.Fatal(err)
			}
			if got := rowErrors(s); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("config errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.check != nil {
				tt.check(t, s)
			}
		})
	}
}

func TestUpstreamURL(t *testing.T) {
	tests := []struct {
		provider, adapter, base string
		want, wantErr, wantMsg  string
	}{
		{provider: "openai", base: "https://api.openai.com", want: "https://api.openai.com/v1/chat/completions"},
		{provider: "openai", base: "https://api.openai.com/", want: "https://api.openai.com/v1/chat/completions"},
		{provider: "openai", base: "HTTPS://API.OPENAI.COM", want: "https://API.OPENAI.COM/v1/chat/completions"},
		{provider: "openai", base: "", want: "https://api.openai.com/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com/v1//", want: "https://gw.example.com/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com/openai/v1/chat/completions/", want: "https://gw.example.com/openai/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com/v1/completions", want: "https://gw.example.com/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com/v1/embeddings", want: "https://gw.example.com/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com", want: "https://gw.example.com/chat/completions"},
		{provider: "openai", base: "http://127.0.0.1:8080/a/../v1", want: "http://127.0.0.1:8080/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com/my%20models/v1", want: "https://gw.example.com/my%20models/v1/chat/completions"},
		{provider: "openai", base: "https://api.openai.com:443", want: "https://api.openai.com:443/chat/completions"},
		{provider: "deepseek", adapter: "openai", base: "https://api.deepseek.com", want: "https://api.deepseek.com/chat/completions"},
		{provider: "deepseek", adapter: "openai", base: "", wantErr: "config_error", wantMsg: "no api_base"},
		{provider: "openai", base: "https://gw.example.com/v1?api-version=1", wantErr: "config_error", wantMsg: "query"},
		{provider: "openai", base: "https://gw.example.com/v1?", wantErr: "config_error", wantMsg: "query"},
		{provider: "openai", base: "https://gw.example.com/v1#x", wantErr: "config_error", wantMsg: "fragment"},
		{provider: "openai", base: "https://gw.example.com/v1#", wantErr: "config_error", wantMsg: "fragment"},
		{provider: "openai", base: "https://evil.example?x=/v1", wantErr: "config_error", wantMsg: "query"},
		{provider: "openai", base: "https://user:hunter2@gw.example.com/v1", wantErr: "config_error", wantMsg: "user info"},
		{provider: "openai", base: "https://hunter2@gw.example.com/v1", wantErr: "config_error", wantMsg: "user info"},
		{provider: "anthropic", adapter: "anthropic", base: "https://api.anthropic.com", want: "https://api.anthropic.com/v1/messages"},
		{provider: "anthropic", adapter: "anthropic", base: "", want: "https://api.anthropic.com/v1/messages"},
		{provider: "anthropic", adapter: "anthropic", base: "https://gw.example.com/anthropic/v1/messages/", want: "https://gw.example.com/anthropic/v1/messages"},
		{provider: "anthropic", adapter: "anthropic", base: "https://gw.example.com/v1", want: "https://gw.example.com/v1/messages"},
		{provider: "minimax", adapter: "anthropic", base: "", wantErr: "config_error", wantMsg: "no api_base"},
		{provider: "anthropic", adapter: "anthropic", base: "https://gw.example.com?x=1", wantErr: "config_error", wantMsg: "query"},
		{provider: "anthropic", adapter: "anthropic", base: "https://user:hunter2@gw.example.com", wantErr: "config_error", wantMsg: "user info"},
		{provider: "azure", adapter: "azure-openai", base: "myres", want: "https://myres.openai.azure.com"},
		{provider: "azure", adapter: "azure-openai", base: "https://myres.openai.azure.com/openai/deployments/gpt-4o/chat/completions", want: "https://myres.openai.azure.com"},
		{provider: "azure", adapter: "azure-openai", base: "", wantErr: "config_error", wantMsg: "no api_base"},
		{provider: "azure", adapter: "azure-openai", base: "https://user:hunter2@myres.openai.azure.com", wantErr: "config_error", wantMsg: "api_base"},
		{provider: "x", adapter: "bedrock", wantErr: "config_error", wantMsg: "not a Bedrock credential"},
		{provider: "x", adapter: "vertex", wantErr: "config_error", wantMsg: "invalid secret"},
	}
	for _, tt := range tests {
		t.Run(tt.provider+" "+tt.base, func(t *testing.T) {
			ds := dataset()
			ds.ProviderKeys[0] = storage.ProviderKey{ID: "pk1", DisplayName: "k", Provider: tt.provider, Adapter: tt.adapter, Secret: "s", APIBase: tt.base}
			s, err := routing.Build(ds)
			if err != nil {
				t.Fatal(err)
			}
			pk := s.ProviderKey("pk1")
			if pk == nil && tt.wantErr == "config_error" && tt.wantMsg != "no api_base" {
				// storage.Validate refuses the base before routing sees it:
				// the row is skipped, and the reason names no credential.
				errs := strings.Join(rowErrors(s), "\n")
				if !strings.Contains(errs, "provider_key pk1 k: api_base: must not") || strings.Contains(errs, "hunter2") {
					t.Errorf("config errors %s", errs)
				}
				return
			}
			if pk == nil {
				t.Fatalf("provider key skipped: %v", rowErrors(s))
			}
			if tt.wantErr != "" {
				if pk.Err == nil || pk.Err.Type != tt.wantErr || s.Model("gpt-4o-primary").Direct.Err != pk.Err {
					t.Fatalf("want %s config error, got %+v", tt.wantErr, pk.Err)
				}
				if !strings.Contains(pk.Err.Message, tt.wantMsg) || strings.Contains(pk.Err.Message, "hunter2") {
					t.Errorf("message %q, want one saying %q and no credential", pk.Err.Message, tt.wantMsg)
				}
				if errs := rowErrors(s); len(errs) != 1 || !strings.Contains(errs[0], pk.Err.Message) {
					t.Errorf("config errors %v", errs)
				}
				return
			}
			if pk.Err != nil || pk.URL.String() != tt.want {
				t.Errorf("got %v %v, want %s", pk.URL, pk.Err, tt.want)
			}
		})
	}
}

// TestSecretBoundToHost: a secret goes only to the host it was entered
// for; after api_base moves to another host the key sends none.
func TestSecretBoundToHost(t *testing.T) {
	tests := []struct {
		name            string
		base, host      string
		wantUnbound     bool
		wantAuth        string
		forward, wantFH []string
	}{
		{name: "bound", base: "https://gw.example.com/v1", host: "gw.example.com", wantAuth: "Bearer sk-one"},
		{name: "port does not matter", base: "https://gw.example.com:8443/v1", host: "gw.example.com", wantAuth: "Bearer sk-one"},
		{name: "moved to another host", base: "https://evil.example.net/v1", host: "gw.example.com", wantUnbound: true},
		{name: "default base", base: "", host: "api.openai.com", wantAuth: "Bearer sk-one"},
		{name: "default base, secret for another host", base: "", host: "gw.example.com", wantUnbound: true},
		{name: "never bound", base: "https://gw.example.com/v1", host: "", wantUnbound: true},
		{name: "forward headers", base: "https://gw.example.com/v1", host: "gw.example.com", wantAuth: "Bearer sk-one",
			forward: []string{"x-tenant-id", "OpenAI-Organization"}, wantFH: []string{"X-Tenant-Id", "Openai-Organization"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dataset()
			pk := &ds.ProviderKeys[0]
			pk.APIBase, pk.SecretHost, pk.ForwardHeaders = tt.base, tt.host, tt.forward
			s, err := routing.Build(ds)
			if err != nil {
				t.Fatal(err)
			}
			got := s.ProviderKey("pk1")
			if got.Err != nil {
				t.Fatal(got.Err)
			}
			if got.SecretUnbound != tt.wantUnbound || s.Model("gpt-4o-primary").Direct.ProviderKey != got {
				t.Errorf("SecretUnbound = %v, want %v", got.SecretUnbound, tt.wantUnbound)
			}
			if auth := upstreamHeader(t, s.Model("gpt-4o-primary").Direct, "Authorization"); auth != tt.wantAuth {
				t.Errorf("Auth = %q, want %q", auth, tt.wantAuth)
			}
			if fmt.Sprint(got.ForwardHeaders) != fmt.Sprint(tt.wantFH) {
				t.Errorf("ForwardHeaders = %v, want %v", got.ForwardHeaders, tt.wantFH)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	s, err := routing.Build(dataset())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second round is served by the cache
		k := s.Authenticate("sk-caller")
		if k == nil || k.ID != "k1" || !k.AllowsModel(s.Model("chat-prod")) || k.AllowsModel(s.Model("gpt-4o-primary")) {
			t.Fatalf("round %d: %+v", i, k)
		}
		if a := s.Authenticate("sk-all"); a == nil || !a.All || !a.AllowsModel(nil) {
			t.Fatalf("* key: %+v", a)
		}
		if s.Authenticate("sk-wrong") != nil || s.Authenticate("") != nil {
			t.Fatal("unknown key authenticated")
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if s.Authenticate("sk-caller") == nil || s.Authenticate(fmt.Sprint("sk-random-", j)) != nil {
					t.Error("concurrent lookup failed")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestCallerAccessByID: access follows the model id the store resolved,
// through a rename, and not to a new model that reuses an old name.
func TestCallerAccessByID(t *testing.T) {
	withIDs := func(mutate func(ds *storage.Dataset)) *routing.Snapshot {
		t.Helper()
		ds := dataset()
		ds.APIKeys[0].AllowedModels = []string{"chat-prod", "gpt-4o-primary"}
		ds.APIKeys[0].AllowedModelIDs = []string{"r1", "m1"}
		ds.APIKeys[1].AllowedModelIDs = []string{"*"}
		mutate(&ds)
		s, err := routing.Build(ds)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	tests := []struct {
		name   string
		mutate func(ds *storage.Dataset)
		model  string
		want   bool
	}{
		{name: "allowed", mutate: func(*storage.Dataset) {}, model: "gpt-4o-primary", want: true},
		{name: "not allowed", mutate: func(*storage.Dataset) {}, model: "gpt-4o-secondary", want: false},
		{name: "renamed keeps access", model: "gpt-4o-renamed", want: true, mutate: func(ds *storage.Dataset) {
			ds.Models[0].DisplayName = "gpt-4o-renamed"
			ds.Models[2].Routing.Targets[0].Model = "gpt-4o-renamed"
		}},
		{name: "new model reusing a deleted name", model: "gpt-4o-primary", want: false, mutate: func(ds *storage.Dataset) {
			// m1 deleted (the store drops it from the key), m9 takes its name.
			ds.Models[0].ID = "m9"
			ds.APIKeys[0].AllowedModelIDs = []string{"r1"}
		}},
		{name: "new model reusing the name, id still listed", model: "gpt-4o-primary", want: false, mutate: func(ds *storage.Dataset) {
			ds.Models[0].ID = "m9"
		}},
		{name: "names resolved when the source gives no ids", model: "gpt-4o-primary", want: true, mutate: func(ds *storage.Dataset) {
			ds.APIKeys[0].AllowedModelIDs = nil
		}},
		{name: "unknown name grants nothing", model: "gpt-4o-secondary", want: false, mutate: func(ds *storage.Dataset) {
			ds.APIKeys[0].AllowedModelIDs = nil
			ds.APIKeys[0].AllowedModels = []string{"ghost"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := withIDs(tt.mutate)
			k := s.Authenticate("sk-caller")
			m := s.Model(tt.model)
			if m == nil {
				t.Fatalf("no model %s", tt.model)
			}
			if got := k.AllowsModel(m); got != tt.want {
				t.Errorf("AllowsModel(%s) = %v, want %v", tt.model, got, tt.want)
			}
			if k.AllowsModel(nil) || k.AllowsModel(s.Model("ghost")) {
				t.Error("a missing model is allowed to a key without *")
			}
			all := s.Authenticate("sk-all")
			if !all.All || !all.AllowsModel(m) || !all.AllowsModel(nil) {
				t.Errorf("* key: %+v", all)
			}
		})
	}
}

func TestOrder(t *testing.T) {
	ds := dataset()
	ds.Models = append(ds.Models, storage.Model{ID: "m3", DisplayName: "third", Provider: "openai", ModelName: "x", ProviderKeyID: "pk1"})
	build := func(r storage.Routing) *routing.Group {
		ds := ds
		ds.Models = append([]storage.Model(nil), ds.Models...)
		r.Targets = append([]storage.Target(nil), r.Targets...)
		ds.Models[2].Routing = &r
		s, err := routing.Build(ds)
		if err != nil {
			t.Fatal(err)
		}
		return s.Model("chat-prod").Group
	}
	names := func(ts []*routing.Target) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return strings.Join(out, ",")
	}
	three := []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}, {Model: "third"}}
	g := build(storage.Routing{Targets: three})
	if got := names(g.Order(nil)); got != "gpt-4o-primary,gpt-4o-secondary,third" {
		t.Errorf("failover order %s", got)
	}
	g = build(storage.Routing{Strategy: storage.StrategyRoundRobin, Targets: three})
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, names(g.Order(nil)))
	}
	want := "[gpt-4o-primary,gpt-4o-secondary,third gpt-4o-secondary,third,gpt-4o-primary third,gpt-4o-primary,gpt-4o-secondary gpt-4o-primary,gpt-4o-secondary,third]"
	if fmt.Sprint(got) != want {
		t.Errorf("round robin %v", got)
	}
	w := []storage.Target{{Model: "gpt-4o-primary", Weight: ptr(0)}, {Model: "gpt-4o-secondary", Weight: ptr(1)}, {Model: "third", Weight: ptr(0)}}
	g = build(storage.Routing{Strategy: storage.StrategyWeighted, Targets: w})
	for i := 0; i < 20; i++ {
		if got := names(g.Order(nil)); got != "gpt-4o-secondary,third,gpt-4o-primary" {
			t.Fatalf("weighted order %s", got)
		}
	}
	g = build(storage.Routing{Targets: three, MaxFallbacks: ptr(0)})
	if g.Budget() != 1 {
		t.Errorf("budget %d", g.Budget())
	}
	g = build(storage.Routing{Targets: three, MaxFallbacks: ptr(10)})
	if g.Budget() != 3 {
		t.Errorf("budget %d", g.Budget())
	}
}

func TestCooldownLength(t *testing.T) {
	ds := dataset()
	ds.Models[0].Cooldown = &storage.Cooldown{MaxSeconds: ptr(10)}
	ds.Models[1].Cooldown = &storage.Cooldown{HonorRetryAfter: ptr(false), Enabled: ptr(true)}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Model("gpt-4o-primary").Direct.Cooldown
	if c.Length(3*time.Second, true) != 3*time.Second || c.Length(60*time.Second, true) != 10*time.Second || c.Length(0, false) != 30*time.Second {
		t.Errorf("retry-after lengths wrong: %+v", c)
	}
	c = s.Model("gpt-4o-secondary").Direct.Cooldown
	if c.Length(3*time.Second, true) != 30*time.Second {
		t.Errorf("honor_retry_after false ignored")
	}
	ds.Models[0].Cooldown = &storage.Cooldown{Enabled: ptr(false)}
	ds.Models[1].Cooldown = &storage.Cooldown{DefaultSeconds: ptr(0)}
	s, _ = routing.Build(ds)
	for _, name := range []string{"gpt-4o-primary", "gpt-4o-secondary"} {
		c := s.Model(name).Direct.Cooldown
		if c.Length(time.Second, true) != 0 || c.Triggers(503) {
			t.Errorf("%s: disabled cooldown still arms", name)
		}
	}
}

func TestTableReload(t *testing.T) {
	src := proxytest.NewSource(dataset())
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	tbl := routing.NewTable(src, logger)
	if tbl.Loaded() || tbl.Snapshot() == nil || tbl.Snapshot().Model("chat-prod") != nil {
		t.Fatal("a new table must hold an empty snapshot")
	}
	var swaps []int64
	tbl.OnSwap(func(_, cur *routing.Snapshot) { swaps = append(swaps, cur.Revision) })
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	good := tbl.Snapshot()
	if !tbl.Loaded() || good.Model("chat-prod") == nil {
		t.Fatal("not loaded")
	}

	// A failing store never replaces a good snapshot.
	src.Fail(errors.New("disk on fire"))
	if err := tbl.Reload(context.Background()); err == nil || tbl.Snapshot() != good {
		t.Fatal("failing store replaced the snapshot")
	}
	src.Fail(nil)
	// A dataset with a bad row is served without it.
	src.Update(func(ds *storage.Dataset) { ds.Models[0].Retries = ptr(99) })
	if err := tbl.Reload(context.Background()); err != nil || tbl.Snapshot() == good {
		t.Fatalf("recovery: %v", err)
	}
	if s := tbl.Snapshot(); s.Model("gpt-4o-primary") != nil || s.Model("chat-prod") == nil || len(s.ConfigErrors()) != 2 {
		t.Fatalf("bad row: %v", rowErrors(s))
	}
	// A reload at the revision already live builds nothing and swaps nothing.
	live := tbl.Snapshot()
	if err := tbl.Reload(context.Background()); err != nil || tbl.Snapshot() != live {
		t.Fatalf("same-revision reload: %v, snapshot replaced: %v", err, tbl.Snapshot() != live)
	}
	if fmt.Sprint(swaps) != "[3 4]" {
		t.Errorf("swaps at revisions %v", swaps)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "store unreachable; serving the last snapshot") || !strings.Contains(logs.String(), "store reachable again") ||
		strings.Contains(logs.String(), "sk-one") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

// TestTableLogsRowErrorsOncePerRevision: the skipped rows are logged at
// warn level, one line each, when a revision is loaded, and not again on
// reloads and polls of the same revision.
func TestTableLogsRowErrorsOncePerRevision(t *testing.T) {
	ds := dataset()
	ds.Models[1].Retries = ptr(99)
	ds.APIKeys[0].KeyHash = "sk-plain"
	src := proxytest.NewSource(ds)
	var logs bytes.Buffer
	var mu sync.Mutex
	tbl := routing.NewTable(src, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)))
	rowLines := func() []string {
		mu.Lock()
		defer mu.Unlock()
		var out []string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "not served as stored") {
				out = append(out, l)
			}
		}
		return out
	}
	for i := 0; i < 3; i++ {
		if err := tbl.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	lines := rowLines()
	// m2, the routing model that lost it as a target, and k1.
	if len(lines) != 3 {
		t.Fatalf("%d row lines after three reloads of one revision, want 3:\n%s", len(lines), strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=WARN") || !strings.Contains(l, "revision=3") {
			t.Errorf("row line %q", l)
		}
	}
	if !strings.Contains(lines[0], "kind=model id=m2 name=gpt-4o-secondary") || !strings.Contains(lines[2], "kind=api_key id=k1") {
		t.Errorf("row lines:\n%s", strings.Join(lines, "\n"))
	}
	src.Update(func(*storage.Dataset) {})
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(rowLines()); n != 6 {
		t.Errorf("%d row lines after a new revision, want 6", n)
	}
}

// swapWaiter registers an OnSwap hook on tbl and returns a function that
// waits for the next swap and checks its revision.
func swapWaiter(t *testing.T, tbl *routing.Table) func(want int64) {
	swapped := make(chan int64, 8)
	tbl.OnSwap(func(_, cur *routing.Snapshot) { swapped <- cur.Revision })
	return func(want int64) {
		t.Helper()
		select {
		case rev := <-swapped:
			if rev != want {
				t.Fatalf("swapped to %d, want %d", rev, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no swap to revision %d", want)
		}
	}
}

// startWatch runs tbl.Watch; stop cancels it and checks that it returns.
func startWatch(t *testing.T, tbl *routing.Table, every time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tbl.Watch(ctx, every); close(done) }()
	return func() {
		t.Helper()
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Watch did not return after cancel")
		}
	}
}

func TestTableWatch(t *testing.T) {
	src := proxytest.NewSource(dataset())
	tbl := routing.NewTable(src, nil)
	wait := swapWaiter(t, tbl)
	stop := startWatch(t, tbl, 5*time.Millisecond)
	wait(3) // the first poll loads
	src.Update(func(ds *storage.Dataset) { ds.Models[0].ModelName = "gpt-4o" })
	wait(4)
	if got := tbl.Snapshot().Model("gpt-4o-primary").Direct.ModelName; got != "gpt-4o" {
		t.Errorf("model name %s", got)
	}
	stop()
}

// restoredSource is a source whose dataset tests replace whole, revision
// included, as a restored backup does.
type restoredSource struct {
	mu sync.Mutex
	ds storage.Dataset
}

func (s *restoredSource) Revision(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ds.Revision, nil
}

func (s *restoredSource) Load(context.Context) (storage.Dataset, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ds, nil
}

func (s *restoredSource) set(ds storage.Dataset) {
	s.mu.Lock()
	s.ds = ds
	s.mu.Unlock()
}

// TestTableRevisionBackwards: a store restored to an older revision is
// loaded, by Reload and by Watch, and the step back is logged.
func TestTableRevisionBackwards(t *testing.T) {
	at := func(rev int64, modelName string) storage.Dataset {
		ds := dataset()
		ds.Revision = rev
		ds.Models[0].ModelName = modelName
		return ds
	}
	src := &restoredSource{ds: at(5, "gpt-4o")}
	var logs bytes.Buffer
	var mu sync.Mutex
	tbl := routing.NewTable(src, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil)))
	wait := swapWaiter(t, tbl)
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait(5)
	src.set(at(3, "restored"))
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := tbl.Snapshot(); got.Revision != 3 || got.Model("gpt-4o-primary").Direct.ModelName != "restored" {
		t.Fatalf("after a restore to revision 3: revision %d", got.Revision)
	}
	wait(3)
	mu.Lock()
	if !strings.Contains(logs.String(), `level=WARN msg="store revision went backwards; reloading" from=5 to=3`) {
		t.Errorf("logs:\n%s", logs.String())
	}
	mu.Unlock()

	// Watch: back to 5, then a restore to 2.
	src.set(at(5, "gpt-4o"))
	stop := startWatch(t, tbl, time.Millisecond)
	defer stop()
	wait(5)
	src.set(at(2, "older"))
	wait(2)
	if got := tbl.Snapshot().Model("gpt-4o-primary").Direct.ModelName; got != "older" {
		t.Errorf("model name %s after Watch loaded revision 2", got)
	}
}

func TestRoundRobinSurvivesReload(t *testing.T) {
	ds := dataset()
	ds.Models[2].Routing.Strategy = storage.StrategyRoundRobin
	src := proxytest.NewSource(ds)
	tbl := routing.NewTable(src, nil)
	_ = tbl.Reload(context.Background())
	first := tbl.Snapshot().Model("chat-prod").Group.Order(nil)[0].Name
	src.Update(func(*storage.Dataset) {})
	_ = tbl.Reload(context.Background())
	second := tbl.Snapshot().Model("chat-prod").Group.Order(nil)[0].Name
	if first == second {
		t.Errorf("rotation restarted after a reload: %s then %s", first, second)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkAuthenticate: a cached caller-key lookup (the hot path) and a
// first lookup that hashes.
func BenchmarkAuthenticate(b *testing.B) {
	ds := dataset()
	for i := 0; i < 10000; i++ {
		ds.APIKeys = append(ds.APIKeys, storage.APIKey{ID: fmt.Sprint("k", i), KeyHash: proxytest.KeyHash(fmt.Sprint("sk-", i)), AllowedModels: []string{"*"}})
	}
	s, err := routing.Build(ds)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s.Authenticate("sk-caller") == nil {
				b.Fatal("no key")
			}
		}
	})
	b.Run("unknown key (sha256)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s.Authenticate("sk-not-a-key-at-all") != nil {
				b.Fatal("key")
			}
		}
	})
}

// upstreamHeader is header name of the request target's endpoint builds
// for a minimal chat request.
func upstreamHeader(t *testing.T, target *routing.Target, name string) string {
	t.Helper()
	req := upstreamRequest(t, target, `{"model":"x","messages":[{"role":"user","content":"hi"}]}`)
	return req.Header.Get(name)
}

func upstreamRequest(t *testing.T, target *routing.Target, body string) *http.Request {
	t.Helper()
	if target.Endpoint == nil {
		t.Fatalf("target %s has no endpoint (%v)", target.Name, target.Err)
	}
	preq, err := provider.ParseRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	in := &provider.Inbound{Body: []byte(body), Req: &preq, Header: http.Header{}}
	ub, err := target.Endpoint.Body(in)
	if err != nil {
		t.Fatal(err)
	}
	req, err := target.Endpoint.NewRequest(context.Background(), in, ub)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestOwnedBy: /v1/models shows a direct model's provider label (a
// vendor on the openai adapter shows its own name); a routing model is
// aisix's.
func TestOwnedBy(t *testing.T) {
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{
			{ID: "ds", DisplayName: "deepseek", Provider: "deepseek", Adapter: "openai", Secret: "s", APIBase: "https://api.deepseek.com"},
			{ID: "an", DisplayName: "anth", Adapter: "anthropic", Secret: "s"},
		},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "deepseek-chat", Provider: "deepseek", ModelName: "deepseek-chat", ProviderKeyID: "ds"},
			{ID: "m2", DisplayName: "claude", Provider: "anthropic", ModelName: "claude-sonnet-4-5", ProviderKeyID: "an"},
			{ID: "m3", DisplayName: "group", Routing: &storage.Routing{Targets: []storage.Target{{Model: "claude"}}}},
		},
	}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	if errs := s.ConfigErrors(); len(errs) > 0 {
		t.Fatalf("config errors %v", errs)
	}
	for name, want := range map[string]string{"deepseek-chat": "deepseek", "claude": "anthropic", "group": "aisix"} {
		if got := s.Model(name).OwnedBy; got != want {
			t.Errorf("%s: owned_by %q, want %q", name, got, want)
		}
	}
}

// TestAnthropicEndpoint: an anthropic key's requests go to /v1/messages
// with x-api-key and anthropic-version, never a Bearer credential, and
// the body is the Messages translation.
func TestAnthropicEndpoint(t *testing.T) {
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{{ID: "an", DisplayName: "anth", Provider: "anthropic", Adapter: "anthropic",
			Secret: "sk-ant-1", APIBase: "https://gw.example.com/v1", SecretHost: "gw.example.com"}},
		Models: []storage.Model{{ID: "m", DisplayName: "claude", Provider: "anthropic", ModelName: "claude-sonnet-4-5", ProviderKeyID: "an"}},
	}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	req := upstreamRequest(t, s.Model("claude").Direct, `{"model":"claude","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}]}`)
	if req.URL.String() != "https://gw.example.com/v1/messages" {
		t.Errorf("url %s", req.URL)
	}
	if req.Header.Get("X-Api-Key") != "sk-ant-1" || req.Header.Get("Anthropic-Version") != "2023-06-01" || req.Header.Get("Authorization") != "" {
		t.Errorf("headers %v", req.Header)
	}
	b, _ := io.ReadAll(req.Body)
	var body struct {
		Model     string `json:"model"`
		System    any    `json:"system"`
		MaxTokens int    `json:"max_tokens"`
		Messages  []struct {
			Role string `json:"role"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	if body.Model != "claude-sonnet-4-5" || body.System == nil || body.MaxTokens <= 0 || len(body.Messages) != 1 || body.Messages[0].Role != "user" {
		t.Errorf("body %s", b)
	}
}

// TestEndpointsOf: what the admin API says a model serves is what its
// adapter's endpoint does, natively or through the proxy's Messages
// translation (a chat target serves Messages callers and estimates
// count_tokens).
func TestEndpointsOf(t *testing.T) {
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{
			{ID: "o", DisplayName: "o", Provider: "openai", Adapter: "openai", Secret: "s", SecretHost: "api.openai.com"},
			{ID: "z", DisplayName: "z", Provider: "azure", Adapter: "azure-openai", Secret: "s", APIBase: "myres"},
			{ID: "a", DisplayName: "a", Provider: "anthropic", Adapter: "anthropic", Secret: "s"},
			{ID: "v", DisplayName: "v", Provider: "vertex", Adapter: "vertex", Secret: `{"project":"p","region":"us-east5","access_token":"ya29.t"}`},
			{ID: "b", DisplayName: "b", Provider: "bedrock", Adapter: "bedrock", Secret: `{"api_key":"k","region":"us-east-1"}`},
			{ID: "g", DisplayName: "g", Provider: "google", Adapter: "gemini", Secret: "s"},
		},
		Models: []storage.Model{
			{ID: "mo", DisplayName: "mo", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: "o"},
			{ID: "mz", DisplayName: "mz", Provider: "azure", ModelName: "gpt-4o", ProviderKeyID: "z"},
			{ID: "ma", DisplayName: "ma", Provider: "anthropic", ModelName: "claude", ProviderKeyID: "a"},
			{ID: "mv", DisplayName: "mv", Provider: "vertex", ModelName: "claude-haiku-4-5@20251001", ProviderKeyID: "v"},
			{ID: "mg", DisplayName: "mg", Provider: "vertex", ModelName: "gemini-2.5-flash", ProviderKeyID: "v"},
			{ID: "mb", DisplayName: "mb", Provider: "bedrock", ModelName: "us.anthropic.claude-3-5-sonnet-20240620-v1:0", ProviderKeyID: "b"},
			{ID: "mbe", DisplayName: "mbe", Provider: "bedrock", ModelName: "amazon.titan-embed-text-v2:0", ProviderKeyID: "b"},
			{ID: "mgg", DisplayName: "mgg", Provider: "google", ModelName: "gemini-2.5-flash", ProviderKeyID: "g"},
		},
	}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	ops := []provider.Op{provider.OpChat, provider.OpEmbeddings, provider.OpCompletions, provider.OpResponses, provider.OpMessages, provider.OpCountTokens}
	if got := strings.Join(routing.EndpointsOfModel("vertex", "gemini-2.5-flash"), ","); got != "chat.completions,embeddings,messages,messages.count_tokens" {
		t.Errorf("gemini on vertex: %s", got)
	}
	for _, m := range []string{"mo", "mz", "ma", "mv", "mg", "mb", "mbe", "mgg"} {
		d := s.Model(m).Direct
		var got []string
		for _, op := range ops {
			served := d.Endpoint.Supports(op) ||
				(op == provider.OpMessages || op == provider.OpCountTokens) && d.Endpoint.Supports(provider.OpChat)
			if served {
				got = append(got, op.String())
			}
		}
		if want := routing.EndpointsOfModel(d.ProviderKey.Adapter, d.ModelName); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s (%s): serves %v, EndpointsOf says %v", m, d.ProviderKey.Adapter, got, want)
		}
	}
}

// TestBedrockKeys: a Bedrock key goes to its region's host, or to
// api_base (a VPC endpoint; a pasted operation URL keeps only its host);
// a secret that is not a Bedrock credential is a config error naming no
// part of it.
func TestBedrockKeys(t *testing.T) {
	tests := []struct {
		secret, base, want, wantErr string
	}{
		{secret: `{"access_key_id":"AKIAX","secret_access_key":"s3cr3t","region":"eu-west-3"}`, want: "https://bedrock-runtime.eu-west-3.amazonaws.com"},
		{secret: `{"api_key":"k","region":"us-east-1"}`, base: "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com/", want: "https://vpce-1.bedrock-runtime.us-east-1.vpce.amazonaws.com"},
		{secret: `{"api_key":"k","region":"us-east-1"}`, base: "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse", want: "https://bedrock-runtime.us-east-1.amazonaws.com"},
		{secret: `{"access_key_id":"AKIAX","secret_access_key":"s3cr3t"}`, wantErr: "not a Bedrock credential"},
		{secret: `{"api_key":"s3cr3t","region":"x.evil.com/"}`, wantErr: "not a Bedrock credential"},
	}
	for _, tt := range tests {
		pk := storage.ProviderKey{ID: "pk1", DisplayName: "k", Provider: "bedrock", Adapter: "bedrock", Secret: tt.secret, APIBase: tt.base}
		pk.SecretHost = pk.BaseHost()
		ds := dataset()
		ds.ProviderKeys[0] = pk
		s, err := routing.Build(ds)
		if err != nil {
			t.Fatal(err)
		}
		got := s.ProviderKey("pk1")
		if got == nil {
			t.Fatalf("%s: key skipped", tt.secret)
		}
		if tt.wantErr != "" {
			if got.Err == nil || !strings.Contains(got.Err.Message, tt.wantErr) || strings.Contains(got.Err.Message, "s3cr3t") {
				t.Errorf("%s: err %+v", tt.secret, got.Err)
			}
			continue
		}
		if got.Err != nil || got.URL.String() != tt.want {
			t.Errorf("%s %s: url %v err %v, want %s", tt.secret, tt.base, got.URL, got.Err, tt.want)
			continue
		}
		if _, err := got.Endpoint("us.anthropic.claude-3-5-haiku-20241022-v1:0"); err != nil {
			t.Errorf("endpoint: %v", err)
		}
	}
}

// TestGeminiEndpoint: a gemini key's requests go to
// {base}/v1beta/models/{model}:generateContent with x-goog-api-key, never
// a Bearer credential nor a key in the URL; a vendor without api_base,
// and a model name that is not a model id, are configuration errors.
func TestGeminiEndpoint(t *testing.T) {
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{
			{ID: "g", DisplayName: "gem", Provider: "google", Adapter: "gemini", Secret: "AIza-test", SecretHost: "generativelanguage.googleapis.com"},
			{ID: "v", DisplayName: "vendor", Provider: "acme", Adapter: "gemini", Secret: "k"},
		},
		Models: []storage.Model{
			{ID: "m", DisplayName: "flash", Provider: "google", ModelName: "models/gemini-2.5-flash", ProviderKeyID: "g"},
			{ID: "bad", DisplayName: "bad", Provider: "google", ModelName: "gemini/../x", ProviderKeyID: "g"},
			{ID: "mv", DisplayName: "mv", Provider: "acme", ModelName: "gemini-2.5-flash", ProviderKeyID: "v"},
		},
	}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	req := upstreamRequest(t, s.Model("flash").Direct, `{"model":"flash","messages":[{"role":"user","content":"hi"}]}`)
	if req.URL.String() != "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent" {
		t.Errorf("url %s", req.URL)
	}
	if req.Header.Get("X-Goog-Api-Key") != "AIza-test" || req.Header.Get("Authorization") != "" || strings.Contains(req.URL.String(), "AIza") {
		t.Errorf("headers %v url %s", req.Header, req.URL)
	}
	errs := strings.Join(rowErrors(s), "\n")
	if want := `provider key "vendor" has no api_base for provider "acme"`; !strings.Contains(errs, want) {
		t.Errorf("config errors lack %q:\n%s", want, errs)
	}
	if d := s.Model("bad").Direct; d.Err == nil || !strings.Contains(d.Err.Message, "is not a Gemini model id") {
		t.Errorf("bad model name: target error %+v", d.Err)
	}
}

// TestStreamFailureContinuations: stream_failure mode continue gives the
// group its continuations (0 means 1); mode error or none gives none.
func TestStreamFailureContinuations(t *testing.T) {
	for _, c := range []struct {
		sf   *storage.StreamFailure
		want int
	}{
		{nil, 0},
		{&storage.StreamFailure{Mode: storage.StreamFailureError, MaxContinuations: 2}, 0},
		{&storage.StreamFailure{Mode: storage.StreamFailureContinue}, 1},
		{&storage.StreamFailure{Mode: storage.StreamFailureContinue, MaxContinuations: 3}, 3},
	} {
		if got := oneTargetGroup(t, storage.Routing{StreamFailure: c.sf}).Continuations; got != c.want {
			t.Errorf("stream_failure %+v: continuations %d, want %d", c.sf, got, c.want)
		}
	}
}

// TestHedge: routing.hedge gives the group its hedge deadline.
func TestHedge(t *testing.T) {
	for _, c := range []struct {
		h    *storage.Hedge
		want *routing.Hedge
	}{
		{nil, nil},
		{&storage.Hedge{AfterMS: 200}, &routing.Hedge{After: 200 * time.Millisecond}},
		{&storage.Hedge{After: storage.HedgeAfterP95}, &routing.Hedge{P95: true}},
	} {
		got := oneTargetGroup(t, storage.Routing{Hedge: c.h}).Hedge
		if (got == nil) != (c.want == nil) || got != nil && *got != *c.want {
			t.Errorf("hedge %+v: group hedge %+v, want %+v", c.h, got, c.want)
		}
	}
}

// oneTargetGroup is the group the routing r (its targets replaced by one
// direct model) builds.
func oneTargetGroup(t *testing.T, r storage.Routing) *routing.Group {
	t.Helper()
	r.Targets = []storage.Target{{Model: "a"}}
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Adapter: "openai", Secret: "sk-x", APIBase: "https://api.openai.com/v1"}},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "a", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"},
			{ID: "g", DisplayName: "group", Routing: &r},
		},
	}
	tbl := routing.NewTable(proxytest.NewSource(ds), slog.New(slog.DiscardHandler))
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tbl.Snapshot().Model("group").Group
}
