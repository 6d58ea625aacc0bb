package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
)

// checkSecret checks what a read reveals of a provider key's secret: the
// plaintext or nothing, and always the hint of the original.
func checkSecret(t *testing.T, got storage.ProviderKey, secret string) {
	t.Helper()
	if got.Secret != "" && got.Secret != secret {
		t.Errorf("secret of %q = %q, want the original or empty", got.DisplayName, got.Secret)
	}
	if want := storage.MaskSecret(secret); got.SecretHint != want {
		t.Errorf("secret_hint of %q = %q, want %q", got.DisplayName, got.SecretHint, want)
	}
}

// sameProviderKey compares the fields a caller sets (the secret through
// checkSecret).
func sameProviderKey(t *testing.T, got, want storage.ProviderKey, secret string) {
	t.Helper()
	if got.DisplayName != want.DisplayName || got.Provider != want.Provider ||
		got.Adapter != want.Adapter || got.APIBase != want.APIBase {
		t.Errorf("provider key = {name %q, provider %q, adapter %q, api_base %q}, want {%q, %q, %q, %q}",
			got.DisplayName, got.Provider, got.Adapter, got.APIBase,
			want.DisplayName, want.Provider, want.Adapter, want.APIBase)
	}
	if want.ID != "" && got.ID != want.ID {
		t.Errorf("provider key id = %q, want %q", got.ID, want.ID)
	}
	checkSecret(t, got, secret)
}

var providerKeyCases = []testCase{
	{"CreateAndGet", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		in := storage.ProviderKey{
			DisplayName: "openai-primary",
			Provider:    "openai",
			Adapter:     storage.AdapterOpenAI,
			Secret:      "sk-proj-abcdefghijklmnop1234",
			APIBase:     "https://api.openai.com/v1",
		}
		created := mustCreateProviderKey(t, s, in)
		rv.wrote(created.Revision)
		if created.ID == "" {
			t.Fatal("created provider key has no id")
		}
		sameProviderKey(t, created, in, in.Secret)
		checkNewMeta(t, created.Meta)

		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		sameProviderKey(t, got, created, in.Secret)
		sameMeta(t, got.Meta, created.Meta)

		other := mustCreateProviderKey(t, s, providerKey("anthropic-main"))
		rv.wrote(other.Revision)
		if other.ID == created.ID {
			t.Errorf("two provider keys got the same id %q", other.ID)
		}
	}},
	{"ShortSecretIsMaskedWhole", func(t *testing.T, s storage.Store) {
		in := providerKey("short")
		in.Secret = "sk-short"
		got := mustCreateProviderKey(t, s, in)
		checkSecret(t, got, in.Secret)
		if got.SecretHint != "***" {
			t.Errorf("hint of a short secret = %q, want ***", got.SecretHint)
		}
	}},
	{"List", func(t *testing.T, s storage.Store) {
		pks, err := s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		if len(pks) != 0 {
			t.Fatalf("new store lists %d provider keys, want 0", len(pks))
		}
		for _, name := range []string{"b-key", "c-key", "a-key"} {
			mustCreateProviderKey(t, s, providerKey(name))
		}
		pks, err = s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		var names []string
		for _, pk := range pks {
			names = append(names, pk.DisplayName)
			checkSecret(t, pk, secretFor(pk.DisplayName))
			checkNewMeta(t, pk.Meta)
		}
		if got, want := names, []string{"a-key", "b-key", "c-key"}; !slices.Equal(got, want) {
			t.Errorf("listed %q, want %q (sorted by display name)", got, want)
		}
	}},
	{"Update", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		created := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		rv.wrote(created.Revision)
		in := storage.ProviderKey{
			ID:          created.ID,
			DisplayName: "openai-renamed",
			Provider:    "my-gateway",
			Adapter:     storage.AdapterOpenAI,
			Secret:      "sk-rotated-secret-zyxwvutsrq",
			APIBase:     "http://127.0.0.1:8080/v1",
		}
		updated, err := s.UpdateProviderKey(t.Context(), in, 0)
		noErr(t, err, "UpdateProviderKey")
		rv.wrote(updated.Revision)
		sameProviderKey(t, updated, in, in.Secret)
		checkUpdatedMeta(t, updated.Meta, created.Meta)

		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		sameProviderKey(t, got, in, in.Secret)
		sameMeta(t, got.Meta, updated.Meta)
	}},
	{"UpdateWithoutSecretKeepsIt", func(t *testing.T, s storage.Store) {
		orig := providerKey("openai-primary")
		created := mustCreateProviderKey(t, s, orig)
		in := created
		in.Secret = ""
		in.SecretHint = ""
		in.APIBase = "https://example.com/v1"
		updated, err := s.UpdateProviderKey(t.Context(), in, created.Revision)
		noErr(t, err, "UpdateProviderKey")
		if updated.APIBase != in.APIBase {
			t.Errorf("api_base = %q, want %q", updated.APIBase, in.APIBase)
		}
		checkSecret(t, updated, orig.Secret)
		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		checkSecret(t, got, orig.Secret)
		if src, ok := s.(storage.Source); ok {
			ds, err := src.Load(t.Context())
			noErr(t, err, "Load")
			if len(ds.ProviderKeys) != 1 {
				t.Fatalf("Load returned %d provider keys, want 1", len(ds.ProviderKeys))
			}
			checkSecret(t, ds.ProviderKeys[0], orig.Secret)
		}
	}},
	{"UpdateRevisionMismatch", func(t *testing.T, s storage.Store) {
		created := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		first := created
		first.DisplayName = "first-writer"
		first.Secret = ""
		updated, err := s.UpdateProviderKey(t.Context(), first, created.Revision)
		noErr(t, err, "UpdateProviderKey with the current revision")

		second := created
		second.DisplayName = "second-writer"
		second.Secret = ""
		_, err = s.UpdateProviderKey(t.Context(), second, created.Revision)
		wantErr(t, err, storage.ErrRevisionMismatch)

		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		if got.DisplayName != "first-writer" {
			t.Errorf("display_name = %q after a rejected update, want %q", got.DisplayName, "first-writer")
		}
		sameMeta(t, got.Meta, updated.Meta)
	}},
	{"Delete", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		created := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		rv.wrote(created.Revision)
		noErr(t, s.DeleteProviderKey(t.Context(), created.ID), "DeleteProviderKey")
		rv.deleted()
		_, err := s.GetProviderKey(t.Context(), created.ID)
		wantErr(t, err, storage.ErrNotFound)
		pks, err := s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		if len(pks) != 0 {
			t.Errorf("lists %d provider keys after delete, want 0", len(pks))
		}
		wantErr(t, s.DeleteProviderKey(t.Context(), created.ID), storage.ErrNotFound)
		// The name is free again.
		mustCreateProviderKey(t, s, providerKey("openai-primary"))
	}},
	{"NotFound", func(t *testing.T, s storage.Store) {
		_, err := s.GetProviderKey(t.Context(), unknownID)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		in := providerKey("ghost")
		in.ID = unknownID
		_, err = s.UpdateProviderKey(t.Context(), in, 0)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		_, err = s.UpdateProviderKey(t.Context(), in, 7)
		wantErr(t, err, storage.ErrNotFound, unknownID)
		wantErr(t, s.DeleteProviderKey(t.Context(), unknownID), storage.ErrNotFound, unknownID)
	}},
	{"DuplicateName", func(t *testing.T, s storage.Store) {
		mustCreateProviderKey(t, s, providerKey("openai-primary"))
		_, err := s.CreateProviderKey(t.Context(), providerKey("openai-primary"))
		wantErr(t, err, storage.ErrConflict, "openai-primary")

		other := mustCreateProviderKey(t, s, providerKey("openai-backup"))
		other.DisplayName = "openai-primary"
		_, err = s.UpdateProviderKey(t.Context(), other, 0)
		wantErr(t, err, storage.ErrConflict, "openai-primary")

		// Keeping one's own name is not a conflict.
		other.DisplayName = "openai-backup"
		other.Provider = "openai-compatible"
		other.Adapter = storage.AdapterOpenAI
		other.APIBase = "https://llm.example.com/v1"
		_, err = s.UpdateProviderKey(t.Context(), other, 0)
		noErr(t, err, "UpdateProviderKey keeping its name")
	}},
	{"Invalid", func(t *testing.T, s storage.Store) {
		tests := []struct {
			name  string
			edit  func(*storage.ProviderKey)
			field string
		}{
			{"no display name", func(pk *storage.ProviderKey) { pk.DisplayName = "" }, "display_name"},
			{"space in display name", func(pk *storage.ProviderKey) { pk.DisplayName = "open ai" }, "display_name"},
			{"unknown adapter", func(pk *storage.ProviderKey) { pk.Adapter = "cohere" }, "adapter"},
			{"no adapter for unknown provider", func(pk *storage.ProviderKey) { pk.Provider = "mistral" }, "adapter"},
			{"api_base not a URL", func(pk *storage.ProviderKey) { pk.APIBase = "ftp://example.com" }, "api_base"},
			{"forward header not a token", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"X-Ok", "X Bad"} }, "forward_headers[1]"},
			{"forward header empty", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{""} }, "forward_headers[0]"},
			{"forward Authorization", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"authorization"} }, "forward_headers[0]"},
			{"forward X-Api-Key", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"x-api-key"} }, "forward_headers[0]"},
			{"forward Host", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"X-Ok", "HOST"} }, "forward_headers[1]"},
			{"forward Content-Length", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"content-length"} }, "forward_headers[0]"},
			{"forward Connection", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"Connection"} }, "forward_headers[0]"},
			{"forward Transfer-Encoding", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"transfer-encoding"} }, "forward_headers[0]"},
			{"forward Upgrade", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"Upgrade"} }, "forward_headers[0]"},
			{"forward header twice", func(pk *storage.ProviderKey) { pk.ForwardHeaders = []string{"X-Trace-Id", "x-trace-id"} }, "forward_headers[1]"},
			{"too many forward headers", func(pk *storage.ProviderKey) {
				pk.ForwardHeaders = nil
				for i := range storage.MaxForwardHeaders + 1 {
					pk.ForwardHeaders = append(pk.ForwardHeaders, fmt.Sprintf("X-H%d", i))
				}
			}, "forward_headers"},
			{"no secret", func(pk *storage.ProviderKey) { pk.Secret = "" }, "secret"},
			{"secret with line break", func(pk *storage.ProviderKey) { pk.Secret = "sk-abc\r\nX-Evil: 1" }, "secret"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := providerKey("valid-name")
				tt.edit(&in)
				_, err := s.CreateProviderKey(t.Context(), in)
				wantErr(t, err, storage.ErrInvalid, tt.field)
			})
		}
		pks, err := s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		if len(pks) != 0 {
			t.Errorf("invalid creates left %d provider keys, want 0", len(pks))
		}

		created := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		for _, tt := range tests[:len(tests)-2] { // an empty secret on update keeps the stored one
			t.Run("update "+tt.name, func(t *testing.T) {
				in := created
				tt.edit(&in)
				_, err := s.UpdateProviderKey(t.Context(), in, 0)
				wantErr(t, err, storage.ErrInvalid, tt.field)
			})
		}
		in := created
		in.Secret = "sk-abc\nX-Evil: 1"
		_, err = s.UpdateProviderKey(t.Context(), in, 0)
		wantErr(t, err, storage.ErrInvalid, "secret")
		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		sameProviderKey(t, got, created, secretFor("openai-primary"))
		sameMeta(t, got.Meta, created.Meta)
	}},
	{"DeleteInUse", func(t *testing.T, s storage.Store) {
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		m1 := mustCreateModel(t, s, direct("gpt-4o-primary", pk.ID))
		m2 := mustCreateModel(t, s, direct("gpt-4o-mini", pk.ID))
		err := s.DeleteProviderKey(t.Context(), pk.ID)
		wantErr(t, err, storage.ErrConflict, "openai-primary", "gpt-4o-primary", "gpt-4o-mini")
		_, err = s.GetProviderKey(t.Context(), pk.ID)
		noErr(t, err, "GetProviderKey after a refused delete")

		noErr(t, s.DeleteModel(t.Context(), m1.ID), "DeleteModel")
		noErr(t, s.DeleteModel(t.Context(), m2.ID), "DeleteModel")
		noErr(t, s.DeleteProviderKey(t.Context(), pk.ID), "DeleteProviderKey once unused")
	}},
	{"SecretBoundToHost", func(t *testing.T, s storage.Store) {
		bound := func(t *testing.T, pk storage.ProviderKey, host string, ok bool) {
			t.Helper()
			if pk.SecretHost != host || pk.SecretBound() != ok {
				t.Errorf("%s (api_base %q): secret_host %q, bound %t; want %q, %t",
					pk.DisplayName, pk.APIBase, pk.SecretHost, pk.SecretBound(), host, ok)
			}
		}
		for _, tc := range []struct{ name, apiBase, host string }{
			{"default-base", "", "api.openai.com"},
			{"loopback", "http://127.0.0.1:9000/v1", "127.0.0.1"},
			{"upper-case", "https://API.OpenAI.com:443/v1", "api.openai.com"},
		} {
			in := providerKey(tc.name)
			in.APIBase = tc.apiBase
			in.SecretHost = "attacker.example" // clients never set it
			bound(t, mustCreateProviderKey(t, s, in), tc.host, true)
		}

		created := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		created.APIBase = "https://api.openai.com/v1"
		created.Secret = ""
		up, err := s.UpdateProviderKey(t.Context(), created, 0)
		noErr(t, err, "UpdateProviderKey")
		bound(t, up, "api.openai.com", true)

		// The tutorial's failover trigger: another host, no secret.
		in := up
		in.APIBase = "https://api.openai.invalid/v1"
		in.Secret = ""
		up, err = s.UpdateProviderKey(t.Context(), in, 0)
		noErr(t, err, "UpdateProviderKey to another host")
		bound(t, up, "api.openai.com", false)
		checkSecret(t, up, secretFor("openai-primary"))
		got, err := s.GetProviderKey(t.Context(), up.ID)
		noErr(t, err, "GetProviderKey")
		bound(t, got, "api.openai.com", false)
		if src, ok := s.(storage.Source); ok {
			ds, err := src.Load(t.Context())
			noErr(t, err, "Load")
			for _, pk := range ds.ProviderKeys {
				if pk.ID == up.ID {
					bound(t, pk, "api.openai.com", false)
				}
			}
		}

		// Pointing back binds it again.
		in.APIBase = "https://api.openai.com/v1"
		up, err = s.UpdateProviderKey(t.Context(), in, 0)
		noErr(t, err, "UpdateProviderKey back")
		bound(t, up, "api.openai.com", true)

		// Sending the secret again binds it to the new host.
		in.APIBase = "https://api.openai.invalid/v1"
		in.Secret = "sk-reentered-0123456789abcdef"
		in.SecretHost = "api.openai.com"
		up, err = s.UpdateProviderKey(t.Context(), in, 0)
		noErr(t, err, "UpdateProviderKey with a secret")
		bound(t, up, "api.openai.invalid", true)
		checkSecret(t, up, in.Secret)
	}},
	{"ForwardHeaders", func(t *testing.T, s storage.Store) {
		in := providerKey("openai-primary")
		in.ForwardHeaders = []string{"x-trace-id", "OpenAI-Beta", "X-REQUEST-ID"}
		created := mustCreateProviderKey(t, s, in)
		want := []string{"X-Trace-Id", "Openai-Beta", "X-Request-Id"}
		if !slices.Equal(created.ForwardHeaders, want) {
			t.Errorf("forward_headers = %q, want %q (canonical, in order)", created.ForwardHeaders, want)
		}
		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		if !slices.Equal(got.ForwardHeaders, want) {
			t.Errorf("read back forward_headers = %q, want %q", got.ForwardHeaders, want)
		}
		if src, ok := s.(storage.Source); ok {
			ds, err := src.Load(t.Context())
			noErr(t, err, "Load")
			if len(ds.ProviderKeys) != 1 || !slices.Equal(ds.ProviderKeys[0].ForwardHeaders, want) {
				t.Errorf("Load forward_headers = %v, want %q", ds.ProviderKeys, want)
			}
		}

		// An update replaces the list, like every other field.
		up := got
		up.Secret = ""
		up.ForwardHeaders = []string{"x-tenant"}
		got, err = s.UpdateProviderKey(t.Context(), up, 0)
		noErr(t, err, "UpdateProviderKey")
		if !slices.Equal(got.ForwardHeaders, []string{"X-Tenant"}) {
			t.Errorf("forward_headers after update = %q, want [X-Tenant]", got.ForwardHeaders)
		}
		up.ForwardHeaders = nil
		got, err = s.UpdateProviderKey(t.Context(), up, 0)
		noErr(t, err, "UpdateProviderKey")
		if len(got.ForwardHeaders) != 0 {
			t.Errorf("forward_headers after clearing = %q, want none", got.ForwardHeaders)
		}
		other := mustCreateProviderKey(t, s, providerKey("plain"))
		if len(other.ForwardHeaders) != 0 {
			t.Errorf("forward_headers of a key without = %q, want none", other.ForwardHeaders)
		}
	}},
	{"UpstreamTLS", func(t *testing.T, s storage.Store) {
		in := providerKey("private-gateway")
		in.TLSCAFile, in.TLSCertFile, in.TLSKeyFile = "/etc/aisix/gw-ca.pem", "/etc/aisix/gw.crt", "/etc/aisix/gw.key"
		created := mustCreateProviderKey(t, s, in)
		tlsOf := func(pk storage.ProviderKey) [3]string { return [3]string{pk.TLSCAFile, pk.TLSCertFile, pk.TLSKeyFile} }
		want := tlsOf(in)
		got, err := s.GetProviderKey(t.Context(), created.ID)
		noErr(t, err, "GetProviderKey")
		if tlsOf(created) != want || tlsOf(got) != want {
			t.Errorf("tls files = %q, read back %q, want %q", tlsOf(created), tlsOf(got), want)
		}
		if src, ok := s.(storage.Source); ok {
			ds, err := src.Load(t.Context())
			noErr(t, err, "Load")
			if len(ds.ProviderKeys) != 1 || tlsOf(ds.ProviderKeys[0]) != want {
				t.Errorf("Load tls files = %v, want %q", ds.ProviderKeys, want)
			}
		}
		up := got
		up.Secret = ""
		up.TLSCertFile, up.TLSKeyFile = "", ""
		got, err = s.UpdateProviderKey(t.Context(), up, 0)
		noErr(t, err, "UpdateProviderKey")
		if tlsOf(got) != [3]string{"/etc/aisix/gw-ca.pem", "", ""} {
			t.Errorf("tls files after clearing the client certificate = %q", tlsOf(got))
		}
		up.TLSCertFile = "/etc/aisix/gw.crt"
		_, err = s.UpdateProviderKey(t.Context(), up, 0)
		wantErr(t, err, storage.ErrInvalid, "tls_cert_file")
	}},
	{"APIBase", func(t *testing.T, s storage.Store) {
		for i, base := range []string{
			"http://127.0.0.1:9000/v1",
			"https://api.openai.invalid/v1",
			"https://api.openai.com",
			"https://api.openai.com/v1/",
			"HTTPS://API.OPENAI.COM/v1",
			"http://[::1]:8080/v1",
			"http://localhost:11434/v1",
		} {
			in := providerKey(fmt.Sprintf("ok-%d", i))
			in.APIBase = base
			got := mustCreateProviderKey(t, s, in)
			if got.APIBase != base {
				t.Errorf("api_base %q read back as %q", base, got.APIBase)
			}
		}
		const password = "hunter2-0123456789"
		created := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		for _, tc := range []struct{ name, base, says string }{
			{"user and password", "https://admin:" + password + "@api.example.com/v1", "user info"},
			{"user only", "https://" + password + "@api.example.com/v1", "user info"},
			{"password with a bad escape", "https://u:" + password + "%zz@api.example.com/v1", "valid URL"},
			{"query", "https://api.example.com/v1?key=" + password, "query"},
			{"empty query", "https://api.example.com/v1?", "query"},
			{"fragment", "https://api.example.com/v1#" + password, "fragment"},
			{"space", "https://api.example.com/v1 " + password, "spaces"},
			{"inner space", "https://api.example .com/v1", "spaces"},
			{"tab", "https://api.example.com/\tv1", "control"},
			{"newline", "https://api.example.com/v1\n" + password, "control"},
			{"no scheme", "api.example.com/v1", "http or https"},
			{"other scheme", "ftp://api.example.com", "ftp"},
			{"no host", "https:///v1", "host"},
			{"port only", "http://:9000/v1", "host"},
			{"opaque", "https:api.example.com", "host"},
			{"bad port", "http://api.example.com:port/v1", "valid URL"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				in := providerKey("bad-base")
				in.APIBase = tc.base
				_, err := s.CreateProviderKey(t.Context(), in)
				wantErr(t, err, storage.ErrInvalid, "api_base", tc.says)
				var de *storage.Error
				if errors.As(err, &de) && de.Field != "api_base" {
					t.Errorf("field = %q, want api_base", de.Field)
				}
				if strings.Contains(err.Error(), password) {
					t.Errorf("error %q repeats a credential", err)
				}
				up := created
				up.Secret = ""
				up.APIBase = tc.base
				_, err = s.UpdateProviderKey(t.Context(), up, 0)
				wantErr(t, err, storage.ErrInvalid, "api_base", tc.says)
			})
		}
	}},
}
