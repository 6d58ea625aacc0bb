package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/storage"
)

func TestProbes(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	e := newEnv(t, func(c *Config) { c.Ready = ready.Load })

	tests := []struct {
		name      string
		path      string
		ready     bool
		method    string
		status    int
		body      string
		ctypePref string
	}{
		{"livez", "/livez", true, "GET", 200, "ok\n", "text/plain"},
		{"livez while draining", "/livez", false, "GET", 200, "ok\n", "text/plain"},
		{"readyz", "/readyz", true, "GET", 200, "ok\n", "text/plain"},
		{"readyz draining", "/readyz", false, "GET", 503, "draining\n", "text/plain"},
		{"livez wrong method", "/livez", true, "POST", 405, "", "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready.Store(tt.ready)
			r := e.raw(t, tt.method, tt.path, "")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d (%s)", r.status, tt.status, r.body)
			}
			if tt.body != "" && string(r.body) != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctypePref) {
				t.Errorf("Content-Type %q, want %s", ct, tt.ctypePref)
			}
			if got := r.header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q, want nosniff", got)
			}
		})
	}

	t.Run("nil Ready is ready", func(t *testing.T) {
		e := newEnv(t)
		if r := e.raw(t, "GET", "/readyz", ""); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
	})
}

const wrongKey = "wrong-admin-key-zzz"

func TestAuth(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 64 })
	huge := strings.Repeat("x", 10_000)

	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		status  int
	}{
		{"no key", "GET", "/admin/v1/models", "", nil, 401},
		{"wrong bearer", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer " + wrongKey}, 401},
		{"bearer prefix is case-sensitive", "GET", "/admin/v1/models", "", []string{"Authorization: bearer " + testAdminKey}, 401},
		{"bearer without key", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer "}, 401},
		{"basic scheme", "GET", "/admin/v1/models", "", []string{"Authorization: Basic " + testAdminKey}, 401},
		{"basic scheme never falls back to x-api-key", "GET", "/admin/v1/models", "", []string{"Authorization: Basic abc", "X-Api-Key: " + testAdminKey}, 401},
		{"prefix of a key", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer " + testAdminKey[:10]}, 401},
		{"key plus suffix", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer " + testAdminKey + "x"}, 401},
		{"bearer", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer " + testAdminKey}, 200},
		{"bearer with padding is trimmed", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer    " + testAdminKey + "  "}, 200},
		{"second admin key", "GET", "/admin/v1/models", "", []string{"Authorization: Bearer " + secondAdminKey}, 200},
		{"x-api-key without authorization", "GET", "/admin/v1/models", "", []string{"X-Api-Key: " + testAdminKey}, 200},
		{"wrong x-api-key", "GET", "/admin/v1/models", "", []string{"X-Api-Key: " + wrongKey}, 401},
		{"bad key before broken body", "POST", "/admin/v1/models", "{not json", []string{"Authorization: Bearer " + wrongKey}, 401},
		{"bad key before oversized body", "POST", "/admin/v1/models", huge, []string{"Authorization: Bearer " + wrongKey}, 401},
		{"bad key before wrong content type", "POST", "/admin/v1/models", "{}", []string{"Authorization: Bearer " + wrongKey, "Content-Type: text/plain"}, 401},
		{"bad key before unknown id", "DELETE", "/admin/v1/models/nope", "", nil, 401},
		{"bad key before rotate", "POST", "/admin/v1/apikeys/nope/rotate", "", nil, 401},
		{"bad key before models status", "GET", "/admin/v1/models/status", "", nil, 401},
		{"bad key before unknown admin route", "GET", "/admin/v1/nothing", "", nil, 401},
		{"bad key before wrong method", "PATCH", "/admin/v1/models", "", nil, 401},
		{"openapi needs no key", "GET", "/admin/openapi.json", "", nil, 200},
		{"livez needs no key", "GET", "/livez", "", nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.changes.Load()
			r := e.raw(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if e.changes.Load() != before {
				t.Errorf("OnChange called")
			}
			if tt.status != 401 {
				return
			}
			checkErrorEnvelope(t, r, "missing or malformed admin authorization")
			if r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("no WWW-Authenticate header")
			}
		})
	}

	logs := e.logs.String()
	if n := strings.Count(logs, `"msg":"admin authentication failed"`); n != 17 {
		t.Errorf("%d failed-auth log lines, want 17:\n%s", n, logs)
	}
	for _, leak := range []string{testAdminKey, testAdminKey[:10], secondAdminKey, wrongKey} {
		if strings.Contains(logs, leak) {
			t.Errorf("log contains key material %q:\n%s", leak, logs)
		}
	}
}

// checkErrorEnvelope checks a JSON error answer and, when want is not
// empty, that its message contains want.
func checkErrorEnvelope(t testing.TB, r reply, want string) map[string]any {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("error body is not JSON: %q", r.body)
	}
	msg, ok := m["error_msg"].(string)
	if !ok || msg == "" {
		t.Fatalf("no error_msg in %s", r.body)
	}
	for k := range m {
		if k != "error_msg" && k != "field" {
			t.Errorf("unexpected key %q in error body %s", k, r.body)
		}
	}
	if want != "" && !strings.Contains(msg, want) {
		t.Errorf("error_msg %q, want it to contain %q", msg, want)
	}
	return m
}

func TestProviderKeys(t *testing.T) {
	const secret = "sk-provider-secret-abcdef0123456789"
	e := newEnv(t)

	// Create.
	r := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("openai-primary", secret, "https://api.openai.com/v1"))
	id := r.id(t)
	if loc := r.header.Get("Location"); loc != "/admin/v1/provider_keys/"+id {
		t.Errorf("Location %q", loc)
	}
	var created Entry[ProviderKeyValue]
	r.decode(t, &created)
	want := ProviderKeyValue{DisplayName: "openai-primary", Provider: "openai", Adapter: "openai", Secret: "sk-…6789", APIBase: "https://api.openai.com/v1", SecretHost: "api.openai.com"}
	if !reflect.DeepEqual(created.Value, want) {
		t.Errorf("value %+v, want %+v", created.Value, want)
	}
	if created.Revision <= 0 || created.CreatedAt == nil || created.UpdatedAt == nil {
		t.Errorf("entry metadata missing: %s", r.body)
	}
	if et := r.header.Get("ETag"); et != strconv.Quote(strconv.FormatInt(created.Revision, 10)) {
		t.Errorf("ETag %q for revision %d", et, created.Revision)
	}
	if e.changes.Load() != 1 {
		t.Errorf("OnChange called %d times after one create", e.changes.Load())
	}

	// Get and list agree.
	var got Entry[ProviderKeyValue]
	e.mustAdmin(t, 200, "GET", "/admin/v1/provider_keys/"+id, "").decode(t, &got)
	if !reflect.DeepEqual(stripTimes(got), stripTimes(created)) {
		t.Errorf("get %+v, want %+v", got, created)
	}
	var list []Entry[ProviderKeyValue]
	e.mustAdmin(t, 200, "GET", "/admin/v1/provider_keys", "").decode(t, &list)
	if len(list) != 1 || list[0].ID != id || list[0].Value.Secret != "sk-…6789" {
		t.Errorf("list %+v", list)
	}

	storedSecret := func() string {
		t.Helper()
		pk, err := e.store.GetProviderKey(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		return pk.Secret
	}

	steps := []struct {
		name       string
		body       string
		headers    []string
		status     int
		wantSecret string
		wantMask   string
		wantBase   string
		// wantHost is the secret's host; the secret needs re-entry when
		// api_base names another.
		wantHost string
	}{
		{"put as in the tutorial", pkBody("openai-primary", secret, "https://api.openai.invalid/v1"), nil, 200, secret, "sk-…6789", "https://api.openai.invalid/v1", "api.openai.invalid"},
		{"put without secret keeps it", `{"display_name":"openai-primary","provider":"openai","adapter":"openai","api_base":"https://b.example/v1"}`, nil, 200, secret, "sk-…6789", "https://b.example/v1", "api.openai.invalid"},
		{"put with the masked value keeps it", `{"display_name":"openai-primary","provider":"openai","secret":"sk-…6789","api_base":"https://c.example/v1"}`, nil, 200, secret, "sk-…6789", "https://c.example/v1", "api.openai.invalid"},
		{"put back to the secret's host", `{"display_name":"openai-primary","provider":"openai","api_base":"https://api.openai.invalid/v1"}`, nil, 200, secret, "sk-…6789", "https://api.openai.invalid/v1", "api.openai.invalid"},
		{"put with a foreign mask", `{"display_name":"openai-primary","provider":"openai","secret":"sk-…0000"}`, nil, 400, secret, "", "", ""},
		{"put with empty secret", `{"display_name":"openai-primary","provider":"openai","secret":""}`, nil, 400, secret, "", "", ""},
		{"put via api_key alias", `{"display_name":"openai-primary","provider":"openai","api_key":"short-key"}`, nil, 200, "short-key", "***", "", "api.openai.com"},
		{"both spellings equal", `{"display_name":"openai-primary","provider":"openai","secret":"sk-new-secret-1234567890","api_key":"sk-new-secret-1234567890"}`, nil, 200, "sk-new-secret-1234567890", "sk-…7890", "", "api.openai.com"},
		{"both spellings differ", `{"display_name":"openai-primary","provider":"openai","secret":"a","api_key":"b"}`, nil, 400, "sk-new-secret-1234567890", "", "", ""},
		{"read-only fields sent back are ignored", `{"display_name":"openai-primary","provider":"openai","secret":"sk-…7890","secret_host":"d.example","secret_needs_reentry":false,"api_base":"https://d.example/v1"}`, nil, 200, "sk-new-secret-1234567890", "sk-…7890", "https://d.example/v1", "api.openai.com"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before := e.changes.Load()
			r := e.admin(t, "PUT", "/admin/v1/provider_keys/"+id, st.body, st.headers...)
			if r.status != st.status {
				t.Fatalf("status %d, want %d: %s", r.status, st.status, r.body)
			}
			if s := storedSecret(); s != st.wantSecret {
				t.Errorf("stored secret %q, want %q", s, st.wantSecret)
			}
			wantChanges := before
			if st.status == 200 {
				wantChanges++
				var e2 Entry[ProviderKeyValue]
				r.decode(t, &e2)
				if e2.Value.Secret != st.wantMask || e2.Value.APIBase != st.wantBase {
					t.Errorf("value %+v, want secret %q and api_base %q", e2.Value, st.wantMask, st.wantBase)
				}
				pk := storage.ProviderKey{Provider: e2.Value.Provider, APIBase: e2.Value.APIBase}
				if reentry := pk.BaseHost() != st.wantHost; e2.Value.SecretHost != st.wantHost || e2.Value.SecretNeedsReentry != reentry {
					t.Errorf("secret_host %q, secret_needs_reentry %t; want %q, %t", e2.Value.SecretHost, e2.Value.SecretNeedsReentry, st.wantHost, reentry)
				}
			} else {
				checkErrorEnvelope(t, r, "secret")
			}
			if got := e.changes.Load(); got != wantChanges {
				t.Errorf("OnChange count %d, want %d", got, wantChanges)
			}
		})
	}

	t.Run("forward_headers", func(t *testing.T) {
		r := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", `{"display_name":"fwd","provider":"openai","secret":"sk-fwd-secret-000000000","forward_headers":["x-trace-id","OpenAI-Beta"]}`)
		v := r.object(t)["value"].(map[string]any)
		assertJSONEqual(t, v["forward_headers"], `["X-Trace-Id","Openai-Beta"]`)
		fid := r.id(t)
		// A PUT replaces the list; one without it forwards nothing, and the
		// value then omits the field.
		r = e.mustAdmin(t, 200, "PUT", "/admin/v1/provider_keys/"+fid, `{"display_name":"fwd","provider":"openai","forward_headers":["x-tenant"]}`)
		assertJSONEqual(t, r.object(t)["value"].(map[string]any)["forward_headers"], `["X-Tenant"]`)
		r = e.mustAdmin(t, 200, "PUT", "/admin/v1/provider_keys/"+fid, `{"display_name":"fwd","provider":"openai","forward_headers":[]}`)
		if _, ok := r.object(t)["value"].(map[string]any)["forward_headers"]; ok {
			t.Errorf("value %s lists forward_headers after clearing them", r.body)
		}
		e.mustAdmin(t, 200, "DELETE", "/admin/v1/provider_keys/"+fid, "")
	})

	t.Run("create with api_key alias", func(t *testing.T) {
		r := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", `{"display_name":"alias","provider":"openai","api_key":"sk-alias-secret-000011112222"}`)
		pk, err := e.store.GetProviderKey(context.Background(), r.id(t))
		if err != nil || pk.Secret != "sk-alias-secret-000011112222" {
			t.Fatalf("stored %q, %v", pk.Secret, err)
		}
	})

	// Delete.
	r = e.mustAdmin(t, 200, "DELETE", "/admin/v1/provider_keys/"+id, "")
	if string(bytes.TrimSpace(r.body)) != fmt.Sprintf(`{"deleted":true,"id":%q}`, id) {
		t.Errorf("delete body %s", r.body)
	}
	checkErrorEnvelope(t, e.mustAdmin(t, 404, "GET", "/admin/v1/provider_keys/"+id, ""), "")
	checkErrorEnvelope(t, e.mustAdmin(t, 404, "DELETE", "/admin/v1/provider_keys/"+id, ""), "")
}

func stripTimes[T any](e Entry[T]) Entry[T] {
	e.CreatedAt, e.UpdatedAt = nil, nil
	return e
}

// modelValue returns the value of a model entry without its read-only
// effective object, which it checks is there: what the model stores.
func modelValue(t *testing.T, r reply) map[string]any {
	t.Helper()
	v, _ := r.object(t)["value"].(map[string]any)
	if _, ok := v["effective"].(map[string]any); !ok {
		t.Errorf("model entry without an effective object: %s", r.body)
	}
	delete(v, "effective")
	return v
}

func TestModels(t *testing.T) {
	e := newEnv(t)
	pk := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("pk", "sk-model-test-secret-0000", "https://x.example/v1")).id(t)

	full := fmt.Sprintf(`{
		"display_name": "full",
		"provider": "openai",
		"model_name": "gpt-4o-mini",
		"provider_key_id": %q,
		"timeout": 30000,
		"stream_timeout": 5000,
		"retries": 2,
		"cooldown": {"enabled": true, "default_seconds": 30, "max_seconds": 600, "honor_retry_after": true,
			"trigger_statuses": [429, 500], "trigger_on_timeout": true, "trigger_on_transport": false}
	}`, pk)
	r := e.mustAdmin(t, 201, "POST", "/admin/v1/models", full)
	fullID := r.id(t)
	if loc := r.header.Get("Location"); loc != "/admin/v1/models/"+fullID {
		t.Errorf("Location %q", loc)
	}
	assertJSONEqual(t, modelValue(t, r), full)

	routing := `{
		"display_name": "group",
		"timeout": 60000,
		"routing": {"strategy": "weighted", "targets": [{"model": "full", "weight": 3}],
			"retries": 1, "max_fallbacks": 0, "retry_on_429": false, "fallback_on_statuses": [404],
			"when_all_unavailable": "try_anyway", "timeout": 90000,
			"stream_failure": {"mode": "continue", "max_continuations": 2}}
	}`
	r = e.mustAdmin(t, 201, "POST", "/admin/v1/models", routing)
	groupID := r.id(t)
	assertJSONEqual(t, modelValue(t, r), routing)

	// A model response echoes exactly the fields sent (and the effective
	// settings, checked in TestModelEffective).
	r = e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("plain", pk))
	plainID := r.id(t)
	assertJSONEqual(t, modelValue(t, r), directBody("plain", pk))

	var list []Entry[storage.Model]
	e.mustAdmin(t, 200, "GET", "/admin/v1/models", "").decode(t, &list)
	stored, err := e.store.ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var ids, storeIDs []string
	for i := range list {
		ids = append(ids, list[i].ID)
		storeIDs = append(storeIDs, stored[i].ID)
	}
	if !slices.Equal(ids, storeIDs) || len(ids) != 3 {
		t.Errorf("list ids %v, want %v (store order)", ids, storeIDs)
	}
	for _, id := range []string{fullID, groupID, plainID} {
		if !slices.Contains(ids, id) {
			t.Errorf("list lacks %s", id)
		}
	}

	// Full replace: fields left out are gone.
	rev := r.object(t)["revision"].(float64)
	r = e.mustAdmin(t, 200, "PUT", "/admin/v1/models/"+fullID, directBody("full", pk))
	assertJSONEqual(t, modelValue(t, r), directBody("full", pk))
	if got := r.object(t)["revision"].(float64); got <= rev {
		t.Errorf("revision %v after update, want > %v", got, rev)
	}
	assertJSONEqual(t, modelValue(t, e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+fullID, "")), directBody("full", pk))

	// Deleting a target of a routing model is refused; the group goes first.
	checkErrorEnvelope(t, e.mustAdmin(t, 409, "DELETE", "/admin/v1/models/"+fullID, ""), "")
	e.mustAdmin(t, 200, "DELETE", "/admin/v1/models/"+groupID, "")
	e.mustAdmin(t, 200, "DELETE", "/admin/v1/models/"+fullID, "")
	if got := e.changes.Load(); got != 7 {
		t.Errorf("OnChange called %d times, want 7 (one per successful write)", got)
	}
}

// assertJSONEqual compares a decoded JSON value with a JSON document.
func assertJSONEqual(t testing.TB, got any, want string) {
	t.Helper()
	var w any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	if !reflect.DeepEqual(got, w) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		t.Errorf("JSON mismatch\n got: %s\nwant: %s", gb, wb)
	}
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t, "ak")
	chatProd := e.mustAdmin(t, 201, "POST", "/admin/v1/models", routingBody("chat-prod", "ak-direct")).id(t)
	hash := hashKey("sk-caller-one")
	r := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hash, "chat-prod"))
	id := r.id(t)
	if loc := r.header.Get("Location"); loc != "/admin/v1/apikeys/"+id {
		t.Errorf("Location %q", loc)
	}
	assertJSONEqual(t, r.object(t)["value"], fmt.Sprintf(`{"key_hash":%q,"allowed_models":["chat-prod"],"allowed_model_ids":[%q],"disabled":false}`, hash, chatProd))

	full := fmt.Sprintf(`{"display_name":"ci-bot","key_hash":%q,"allowed_models":["*","ak-direct"],"expires_at":"2031-02-03T04:05:06Z","disabled":true}`, hash)
	r = e.mustAdmin(t, 200, "PUT", "/admin/v1/apikeys/"+id, full)
	fullOut := fmt.Sprintf(`{"display_name":"ci-bot","key_hash":%q,"allowed_models":["*","ak-direct"],"allowed_model_ids":["*",%q],"expires_at":"2031-02-03T04:05:06Z","disabled":true}`, hash, f.direct)
	assertJSONEqual(t, r.object(t)["value"], fullOut)
	// The value read back is accepted as a body: allowed_model_ids is ignored.
	r = e.mustAdmin(t, 200, "PUT", "/admin/v1/apikeys/"+id, strings.Replace(fullOut, `"allowed_model_ids":["*",`, `"allowed_model_ids":["bogus",`, 1))
	assertJSONEqual(t, r.object(t)["value"], fullOut)
	k, err := e.store.GetAPIKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(time.Date(2031, 2, 3, 4, 5, 6, 0, time.UTC)) || !k.Disabled || k.DisplayName != "ci-bot" {
		t.Errorf("stored %+v", k)
	}

	r = e.mustAdmin(t, 200, "PUT", "/admin/v1/apikeys/"+id, fmt.Sprintf(`{"key_hash":%q,"allowed_models":[]}`, hash))
	assertJSONEqual(t, r.object(t)["value"], fmt.Sprintf(`{"key_hash":%q,"allowed_models":[],"allowed_model_ids":[],"disabled":false}`, hash))

	// A name no model has cannot be stored as an id.
	r = e.mustAdmin(t, 400, "PUT", "/admin/v1/apikeys/"+id, apiKeyBodyJSON(hash, "*", "no-such-model"))
	assertJSONEqual(t, r.object(t), `{"error_msg":"allowed_models[1]: \"no-such-model\" is not an existing model","field":"allowed_models[1]"}`)
	e.mustAdmin(t, 400, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("sk-caller-two"), "no-such-model"))

	// Deleting an allowed model succeeds and takes it off the key.
	e.mustAdmin(t, 200, "PUT", "/admin/v1/apikeys/"+id, apiKeyBodyJSON(hash, "chat-prod"))
	e.mustAdmin(t, 200, "DELETE", "/admin/v1/models/"+chatProd, "")
	r = e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys/"+id, "")
	assertJSONEqual(t, r.object(t)["value"], fmt.Sprintf(`{"key_hash":%q,"allowed_models":[],"allowed_model_ids":[],"disabled":false}`, hash))

	var list []Entry[APIKeyValue]
	e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys", "").decode(t, &list)
	if len(list) != 1 || list[0].ID != id {
		t.Errorf("list %+v", list)
	}
	e.mustAdmin(t, 200, "DELETE", "/admin/v1/apikeys/"+id, "")
	e.mustAdmin(t, 404, "GET", "/admin/v1/apikeys/"+id, "")
}

func TestRotate(t *testing.T) {
	e := newEnv(t)
	oldHash := hashKey("sk-before-rotation")
	e.fixture(t, "rot")
	id := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(oldHash, "rot-direct", "rot-routing")).id(t)
	before, err := e.store.GetAPIKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	changes := e.changes.Load()

	seenPlain := map[string]bool{}
	for i := range 3 {
		r := e.mustAdmin(t, 200, "POST", "/admin/v1/apikeys/"+id+"/rotate", "")
		var out rotated
		r.decode(t, &out)
		if !regexp.MustCompile(`^sk-[0-9a-f]{48}$`).MatchString(out.Plaintext) {
			t.Fatalf("plaintext %q is not sk- and 48 hex characters", out.Plaintext)
		}
		if seenPlain[out.Plaintext] {
			t.Fatalf("rotation %d repeated a plaintext", i)
		}
		seenPlain[out.Plaintext] = true
		stored, err := e.store.GetAPIKey(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if stored.KeyHash != hashKey(out.Plaintext) || out.Entry.Value.KeyHash != stored.KeyHash {
			t.Errorf("stored hash %s, entry hash %s, want sha256(plaintext) %s", stored.KeyHash, out.Entry.Value.KeyHash, hashKey(out.Plaintext))
		}
		if stored.KeyHash == oldHash {
			t.Errorf("old hash still stored")
		}
		if !slices.Equal(stored.AllowedModels, before.AllowedModels) || out.Entry.ID != id || out.Entry.Revision != stored.Revision {
			t.Errorf("rotation changed more than the hash: %+v", out.Entry)
		}
		if et := r.header.Get("ETag"); et != strconv.Quote(strconv.FormatInt(stored.Revision, 10)) {
			t.Errorf("ETag %q, revision %d", et, stored.Revision)
		}
		// Nothing but the response carries the plaintext.
		if strings.Contains(e.logs.String(), out.Plaintext) {
			t.Errorf("plaintext in the log")
		}
	}
	if got := e.changes.Load() - changes; got != 3 {
		t.Errorf("OnChange called %d times for 3 rotations", got)
	}
	ks, err := e.store.ListAPIKeys(context.Background())
	if err != nil || len(ks) != 1 {
		t.Fatalf("keys %v %v", ks, err)
	}
	checkErrorEnvelope(t, e.mustAdmin(t, 404, "POST", "/admin/v1/apikeys/nope/rotate", ""), "")
}

// failingStore fails the calls the 500 tests need and passes the rest on.
type failingStore struct{ storage.Store }

func (failingStore) ListModels(context.Context) ([]storage.Model, error) {
	return nil, errors.New("disk on fire at /var/lib/aisix")
}

func (failingStore) CreateModel(context.Context, storage.Model) (storage.Model, error) {
	return storage.Model{}, fmt.Errorf("insert model: %w", errors.New("disk on fire"))
}

func (failingStore) GetModel(context.Context, string) (storage.Model, error) {
	// A bare sentinel, wrapped: still a 404, with the default message.
	return storage.Model{}, fmt.Errorf("select: %w", storage.ErrNotFound)
}

func (failingStore) DeleteModel(context.Context, string) error {
	return context.Canceled
}

func TestErrors(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBodyBytes = 4096 })
	f := e.fixture(t, "fx")
	pkHash := hashKey("sk-existing-caller")
	keyID := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(pkHash, "*")).id(t)
	big := `{"display_name":"` + strings.Repeat("a", 5000) + `"}`

	tests := []struct {
		name    string
		method  string
		path    string
		body    string
		headers []string
		status  int
		msg     string // error_msg contains this
		field   string // the error body's field, when set
		allow   string // the Allow header, for 405
	}{
		// Invalid JSON, and where.
		{name: "syntax error", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name": "x",}`, status: 400, msg: "invalid JSON at line 1, column 22"},
		{name: "syntax error on line 3", method: "POST", path: "/admin/v1/models", body: "{\n  \"display_name\": \"x\"\n  \"provider\": \"openai\"\n}", status: 400, msg: "invalid JSON at line 3"},
		{name: "truncated", method: "POST", path: "/admin/v1/models", body: `{"display_name": "x"`, status: 400, msg: "ends before the JSON value is complete"},
		{name: "empty body", method: "POST", path: "/admin/v1/apikeys", body: "", headers: []string{"Content-Type: application/json"}, status: 400, msg: "request body is empty"},
		{name: "trailing data", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x"} {}`, status: 400, msg: "unexpected data after the JSON object"},
		{name: "not an object", method: "POST", path: "/admin/v1/models", body: `[1,2]`, status: 400, msg: "expected a JSON object, got array"},
		// Schema errors name the field.
		{name: "unknown field", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x","foo":1}`, status: 400, msg: `unknown field "foo"`, field: "foo"},
		{name: "unknown nested field", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x","routing":{"targets":[{"model":"fx-direct","x":1}]}}`, status: 400, msg: `unknown field "x"`},
		{name: "unknown provider key field", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"x","telemetry_tags":{}}`, status: 400, msg: `unknown field "telemetry_tags"`},
		{name: "unknown api key field", method: "PUT", path: "/admin/v1/apikeys/" + keyID, body: `{"key_hash":"` + pkHash + `","allowed_models":[],"team_id":"t"}`, status: 400, msg: `unknown field "team_id"`},
		{name: "unknown rate_limit field", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + pkHash + `","allowed_models":[],"rate_limit":{"rpm":60,"rps":1}}`, status: 400, msg: `unknown field "rate_limit.rps"`, field: "rate_limit.rps"},
		{name: "unknown budget field", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + pkHash + `","allowed_models":[],"budget":{"amount_usd":5,"period":"day","currency":"eur"}}`, status: 400, msg: `unknown field "budget.currency"`, field: "budget.currency"},
		{name: "unknown model provider_limit field", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x","provider_limit":{"rps":1}}`, status: 400, msg: `unknown field "provider_limit.rps"`, field: "provider_limit.rps"},
		{name: "wrong type in rate_limit", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + pkHash + `","allowed_models":[],"rate_limit":{"rpm":"lots"}}`, status: 400, msg: `field "rate_limit.rpm": expected integer`, field: "rate_limit.rpm"},
		{name: "negative rpm", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + pkHash + `","allowed_models":[],"rate_limit":{"rpm":-1}}`, status: 400, msg: "rate_limit.rpm: must be between 0 (no limit) and", field: "rate_limit.rpm"},
		{name: "budget per year", method: "POST", path: "/admin/v1/models", body: `{"display_name":"yearly","routing":{"targets":[{"model":"fx-direct"}]},"budget":{"amount_usd":5,"period":"year"}}`, status: 400, msg: `budget.period: must be day, week or month (got "year")`, field: "budget.period"},
		{name: "provider_limit on a routing model", method: "POST", path: "/admin/v1/models", body: `{"display_name":"plr","routing":{"targets":[{"model":"fx-direct"}]},"provider_limit":{"rpm":5}}`, status: 400, msg: "provider_limit: applies to direct models only", field: "provider_limit"},
		{name: "wrong type", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x","timeout":"soon"}`, status: 400, msg: `field "timeout": expected integer`, field: "timeout"},
		{name: "fraction for integer", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x","retries":1.5}`, status: 400, msg: `field "retries": expected integer`},
		{name: "nested wrong type", method: "POST", path: "/admin/v1/models", body: `{"display_name":"x","routing":{"targets":[{"model":"a","weight":"heavy"}]}}`, status: 400, msg: `field "routing.targets.0.weight": expected integer`},
		{name: "wrong type for list", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + pkHash + `","allowed_models":"*"}`, status: 400, msg: `field "allowed_models": expected array`},
		{name: "wrong type for bool", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + pkHash + `","allowed_models":[],"disabled":"yes"}`, status: 400, msg: `field "disabled": expected boolean`},
		{name: "wrong type for string", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":5}`, status: 400, msg: `field "display_name": expected string`},
		{name: "stream_failure unknown field", method: "POST", path: "/admin/v1/models", body: `{"display_name":"sf","routing":{"targets":[{"model":"fx-direct"}],"stream_failure":{"mode":"continue","hedge":1}}}`, status: 400, msg: `unknown field "hedge"`},
		{name: "stream_failure mode", method: "POST", path: "/admin/v1/models", body: `{"display_name":"sf","routing":{"targets":[{"model":"fx-direct"}],"stream_failure":{"mode":"retry"}}}`, status: 400, msg: "routing.stream_failure.mode: must be continue or error", field: "routing.stream_failure.mode"},
		{name: "stream_failure max_continuations", method: "POST", path: "/admin/v1/models", body: `{"display_name":"sf","routing":{"targets":[{"model":"fx-direct"}],"stream_failure":{"mode":"continue","max_continuations":4}}}`, status: 400, msg: "routing.stream_failure.max_continuations: must be 1 to 3", field: "routing.stream_failure.max_continuations"},
		{name: "hedge after_ms", method: "POST", path: "/admin/v1/models", body: `{"display_name":"hg","routing":{"targets":[{"model":"fx-direct"}],"hedge":{"after_ms":0,"after":"p99"}}}`, status: 400, msg: "routing.hedge.after: must be p95", field: "routing.hedge.after"},
		{name: "hedge both", method: "POST", path: "/admin/v1/models", body: `{"display_name":"hg2","routing":{"targets":[{"model":"fx-direct"}],"hedge":{"after_ms":200,"after":"p95"}}}`, status: 400, msg: "routing.hedge: set after_ms or after, not both", field: "routing.hedge"},
		// Validation and references (storage.ErrInvalid).
		{name: "missing display_name", method: "POST", path: "/admin/v1/models", body: `{"provider":"openai","model_name":"m","provider_key_id":"` + f.pk + `"}`, status: 400, msg: "display_name", field: "display_name"},
		{name: "display_name with space", method: "POST", path: "/admin/v1/models", body: `{"display_name":"a b","routing":{"targets":[{"model":"fx-direct"}]}}`, status: 400, msg: "display_name", field: "display_name"},
		{name: "direct and routing", method: "POST", path: "/admin/v1/models", body: `{"display_name":"both","provider":"openai","routing":{"targets":[{"model":"fx-direct"}]}}`, status: 400, msg: "routing"},
		{name: "unknown provider key", method: "POST", path: "/admin/v1/models", body: directBody("orphan", "no-such-key"), status: 400, msg: ""},
		{name: "unknown routing target", method: "POST", path: "/admin/v1/models", body: routingBody("dangling", "no-such-model"), status: 400, msg: ""},
		{name: "routing target is a routing model", method: "POST", path: "/admin/v1/models", body: routingBody("nested", "fx-routing"), status: 400, msg: ""},
		{name: "bad api_base", method: "POST", path: "/admin/v1/provider_keys", body: pkBody("bad-base", "sk-some-secret-000000000", "ftp://x"), status: 400, msg: "api_base", field: "api_base"},
		{name: "forward Authorization", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"fwd","provider":"openai","secret":"sk-fwd-secret-000000000","forward_headers":["X-Trace-Id","authorization"]}`, status: 400,
			msg: "forward_headers[1]: Authorization cannot be forwarded: it carries the caller's aisix key (the provider key's secret is sent instead)", field: "forward_headers[1]"},
		{name: "forward hop-by-hop", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"fwd","provider":"openai","secret":"sk-fwd-secret-000000000","forward_headers":["keep-alive"]}`, status: 400,
			msg: "forward_headers[0]: Keep-Alive cannot be forwarded: it is hop-by-hop", field: "forward_headers[0]"},
		{name: "forward a non-name", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"fwd","provider":"openai","secret":"sk-fwd-secret-000000000","forward_headers":["X-Trace-Id:"]}`, status: 400,
			msg: "forward_headers[0]: must be a header name", field: "forward_headers[0]"},
		{name: "bad adapter", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"bad-adapter","adapter":"smoke-signals","secret":"s"}`, status: 400, msg: "adapter", field: "adapter"},
		{name: "secret missing", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"nosecret","provider":"openai"}`, status: 400, msg: "secret: is required", field: "secret"},
		{name: "masked secret on create", method: "POST", path: "/admin/v1/provider_keys", body: pkBody("masked", "***", "https://x.example"), status: 400, msg: "masked", field: "secret"},
		{name: "secret and api_key differ", method: "POST", path: "/admin/v1/provider_keys", body: `{"display_name":"two","provider":"openai","secret":"a","api_key":"b"}`, status: 400, msg: "api_key", field: "secret"},
		{name: "bad key_hash", method: "POST", path: "/admin/v1/apikeys", body: apiKeyBodyJSON("ABC", "*"), status: 400, msg: "key_hash", field: "key_hash"},
		{name: "allowed_models missing", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + hashKey("x") + `"}`, status: 400, msg: "allowed_models", field: "allowed_models"},
		{name: "bad expires_at", method: "POST", path: "/admin/v1/apikeys", body: `{"key_hash":"` + hashKey("y") + `","allowed_models":[],"expires_at":"tomorrow"}`, status: 400, msg: "expires_at", field: "expires_at"},
		{name: "bad If-Match", method: "PUT", path: "/admin/v1/models/" + f.direct, body: directBody("fx-direct", f.pk), headers: []string{"If-Match: abc"}, status: 400, msg: "If-Match"},
		// Not found.
		{name: "get unknown provider key", method: "GET", path: "/admin/v1/provider_keys/nope", status: 404, msg: "not found"},
		{name: "put unknown provider key", method: "PUT", path: "/admin/v1/provider_keys/nope", body: pkBody("nope", "sk-nope-secret-0000000000", "https://x.example"), status: 404, msg: "not found"},
		{name: "delete unknown provider key", method: "DELETE", path: "/admin/v1/provider_keys/nope", status: 404, msg: "not found"},
		{name: "get unknown model", method: "GET", path: "/admin/v1/models/nope", status: 404, msg: "not found"},
		{name: "put unknown model", method: "PUT", path: "/admin/v1/models/nope", body: directBody("nope", f.pk), status: 404, msg: "not found"},
		{name: "delete unknown model", method: "DELETE", path: "/admin/v1/models/nope", status: 404, msg: "not found"},
		{name: "get unknown api key", method: "GET", path: "/admin/v1/apikeys/nope", status: 404, msg: "not found"},
		{name: "put unknown api key", method: "PUT", path: "/admin/v1/apikeys/nope", body: apiKeyBodyJSON(hashKey("z"), "*"), status: 404, msg: "not found"},
		{name: "delete unknown api key", method: "DELETE", path: "/admin/v1/apikeys/nope", status: 404, msg: "not found"},
		{name: "rotate unknown api key", method: "POST", path: "/admin/v1/apikeys/nope/rotate", status: 404, msg: "not found"},
		{name: "unknown admin route", method: "GET", path: "/admin/v1/guardrails", status: 404, msg: "no such route"},
		{name: "admin root", method: "GET", path: "/admin/v1", status: 404, msg: "no such route"},
		{name: "unknown route outside admin", method: "GET", path: "/nothing", status: 404, msg: "no such route"},
		{name: "too deep", method: "GET", path: "/admin/v1/models/" + f.direct + "/extra", status: 404, msg: "no such route"},
		// Wrong method.
		{name: "patch a collection", method: "PATCH", path: "/admin/v1/models", status: 405, msg: "not allowed", allow: "GET, HEAD, POST"},
		{name: "delete a collection", method: "DELETE", path: "/admin/v1/provider_keys", status: 405, msg: "not allowed", allow: "GET, HEAD, POST"},
		{name: "post to an entry", method: "POST", path: "/admin/v1/apikeys/" + keyID, body: "{}", status: 405, msg: "not allowed", allow: "DELETE, GET, HEAD, PUT"},
		{name: "get rotate", method: "GET", path: "/admin/v1/apikeys/" + keyID + "/rotate", status: 405, msg: "not allowed", allow: "POST"},
		{name: "post readyz", method: "POST", path: "/readyz", status: 405, msg: "not allowed", allow: "GET, HEAD"},
		// Conflicts.
		{name: "duplicate provider key name", method: "POST", path: "/admin/v1/provider_keys", body: pkBody("fx-pk", "sk-dup-secret-0000000000", "https://x.example"), status: 409, msg: "fx-pk"},
		{name: "duplicate model name", method: "POST", path: "/admin/v1/models", body: directBody("fx-direct", f.pk), status: 409, msg: "fx-direct"},
		{name: "rename onto an existing model", method: "PUT", path: "/admin/v1/models/" + f.direct, body: routingBody("fx-routing", "fx-direct"), status: 409, msg: ""},
		{name: "duplicate key_hash", method: "POST", path: "/admin/v1/apikeys", body: apiKeyBodyJSON(pkHash, "*"), status: 409, msg: ""},
		{name: "delete a provider key in use", method: "DELETE", path: "/admin/v1/provider_keys/" + f.pk, status: 409, msg: ""},
		{name: "delete a routing target", method: "DELETE", path: "/admin/v1/models/" + f.direct, status: 409, msg: ""},
		// Preconditions.
		{name: "stale If-Match", method: "PUT", path: "/admin/v1/models/" + f.direct, body: directBody("fx-direct", f.pk), headers: []string{`If-Match: "1"`}, status: 412, msg: "revision"},
		{name: "future If-Match", method: "PUT", path: "/admin/v1/provider_keys/" + f.pk, body: pkBody("fx-pk", "sk-fixture-secret-000000000000", "https://x.example"), headers: []string{"If-Match: 999999"}, status: 412, msg: "revision"},
		// Size and type.
		{name: "body too large", method: "POST", path: "/admin/v1/models", body: big, status: 413, msg: "larger than 4096 bytes"},
		{name: "no content type", method: "POST", path: "/admin/v1/models", body: `{}`, headers: []string{"Content-Type: <none>"}, status: 415, msg: "application/json"},
		{name: "text content type", method: "PUT", path: "/admin/v1/models/" + f.direct, body: `{}`, headers: []string{"Content-Type: text/plain"}, status: 415, msg: "text/plain"},
		{name: "form content type", method: "POST", path: "/admin/v1/apikeys", body: `a=b`, headers: []string{"Content-Type: application/x-www-form-urlencoded"}, status: 415, msg: "application/json"},
		{name: "json lookalike", method: "POST", path: "/admin/v1/apikeys", body: `{}`, headers: []string{"Content-Type: application/jsonx"}, status: 415, msg: "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeChanges := e.changes.Load()
			beforeData := dump(t, e.store)
			r := e.admin(t, tt.method, tt.path, tt.body, tt.headers...)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			m := checkErrorEnvelope(t, r, tt.msg)
			if tt.field != "" && m["field"] != tt.field {
				t.Errorf("field %v, want %q", m["field"], tt.field)
			}
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow %q, want %q", got, tt.allow)
			}
			if e.changes.Load() != beforeChanges {
				t.Errorf("OnChange called on a failed request")
			}
			if after := dump(t, e.store); after != beforeData {
				t.Errorf("a failed request changed the store:\nbefore %s\nafter  %s", beforeData, after)
			}
		})
	}

	t.Run("413 on a chunked body", func(t *testing.T) {
		req := e.request(t, "POST", "/admin/v1/models", "", "Authorization: Bearer "+testAdminKey, "Content-Type: application/json")
		req.Body = io.NopCloser(io.MultiReader(strings.NewReader(big)))
		req.ContentLength = -1
		r := e.send(t, req)
		if r.status != 413 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		checkErrorEnvelope(t, r, "larger than")
	})

	t.Run("json with charset is accepted", func(t *testing.T) {
		e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("charset"), "*"), "Content-Type: application/json; charset=utf-8")
	})

	t.Run("store failures", func(t *testing.T) {
		fe := newEnv(t, func(c *Config) { c.Store = failingStore{openStore(t)} })
		cases := []struct {
			name, method, path, body string
			status                   int
			msg                      string
		}{
			{"list fails", "GET", "/admin/v1/models", "", 500, "internal error"},
			{"status fails", "GET", "/admin/v1/models/status", "", 500, "internal error"},
			{"create fails", "POST", "/admin/v1/models", `{"display_name":"x"}`, 500, "internal error"},
			{"wrapped sentinel", "GET", "/admin/v1/models/abc", "", 404, "resource not found"},
			{"cancelled", "DELETE", "/admin/v1/models/abc", "", 503, "cancelled"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := fe.admin(t, c.method, c.path, c.body)
				if r.status != c.status {
					t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
				}
				m := checkErrorEnvelope(t, r, c.msg)
				if c.status == 500 && m["error_msg"] != "internal error" {
					t.Errorf("500 body %s reveals detail", r.body)
				}
			})
		}
		logs := fe.logs.String()
		if !strings.Contains(logs, "disk on fire at /var/lib/aisix") || !strings.Contains(logs, "insert model: disk on fire") {
			t.Errorf("real errors not logged:\n%s", logs)
		}
		if strings.Contains(fe.seenText(), "disk on fire") {
			t.Errorf("internal error detail sent to the client")
		}
		if fe.changes.Load() != 0 {
			t.Errorf("OnChange called on failures")
		}
	})
}

// dump renders the whole store, to check that a failed request wrote nothing.
func dump(t testing.TB, st storage.Store) string {
	t.Helper()
	ctx := context.Background()
	pks, err1 := st.ListProviderKeys(ctx)
	ms, err2 := st.ListModels(ctx)
	ks, err3 := st.ListAPIKeys(ctx)
	if err := errors.Join(err1, err2, err3); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal([]any{pks, ms, ks})
	return string(b)
}

func TestIfMatch(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t, "im")
	rev := func(r reply) int64 {
		t.Helper()
		var en Entry[json.RawMessage]
		r.decode(t, &en)
		if et := r.header.Get("ETag"); et != strconv.Quote(strconv.FormatInt(en.Revision, 10)) {
			t.Errorf("ETag %q, revision %d", et, en.Revision)
		}
		return en.Revision
	}
	cur := rev(e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+f.direct, ""))

	steps := []struct {
		name    string
		ifMatch string
		status  int
	}{
		{"bare current revision", "%d", 200},
		{"quoted current revision", `"%d"`, 200},
		{"stale revision", "%d-1", 412},
		{"no If-Match is unconditional", "", 200},
		{"star is unconditional", "*", 200},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			var hdrs []string
			switch {
			case st.ifMatch == "%d-1":
				hdrs = []string{fmt.Sprintf("If-Match: %d", cur-1)}
			case strings.Contains(st.ifMatch, "%d"):
				hdrs = []string{"If-Match: " + fmt.Sprintf(st.ifMatch, cur)}
			case st.ifMatch != "":
				hdrs = []string{"If-Match: " + st.ifMatch}
			}
			r := e.admin(t, "PUT", "/admin/v1/models/"+f.direct, directBody("im-direct", f.pk), hdrs...)
			if r.status != st.status {
				t.Fatalf("status %d, want %d: %s", r.status, st.status, r.body)
			}
			if r.status != 200 {
				checkErrorEnvelope(t, r, "revision")
				return
			}
			next := rev(r)
			if next <= cur {
				t.Errorf("revision %d after a write, was %d", next, cur)
			}
			cur = next
			if got := rev(e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+f.direct, "")); got != cur {
				t.Errorf("GET shows revision %d, the write returned %d", got, cur)
			}
		})
	}

	// Two operators read the same revision; the second write loses with 412.
	r := e.mustAdmin(t, 200, "GET", "/admin/v1/provider_keys/"+f.pk, "")
	base := rev(r)
	e.mustAdmin(t, 200, "PUT", "/admin/v1/provider_keys/"+f.pk, pkBody("im-pk", "sk-operator-one-00000000000", "https://one.example"), fmt.Sprintf("If-Match: %d", base))
	e.mustAdmin(t, 412, "PUT", "/admin/v1/provider_keys/"+f.pk, pkBody("im-pk", "sk-operator-two-00000000000", "https://two.example"), fmt.Sprintf("If-Match: %d", base))
	pk, err := e.store.GetProviderKey(context.Background(), f.pk)
	if err != nil || pk.APIBase != "https://one.example" || pk.Secret != "sk-operator-one-00000000000" {
		t.Errorf("stored %+v %v, want operator one's write", pk, err)
	}
}

func TestSecretsNeverLeak(t *testing.T) {
	const secret = "sk-DISTINCTIVE-leakcheck-5e1f0a9b7c3d"
	const secret2 = "sk-DISTINCTIVE-second-8a7b6c5d4e3f"
	e := newEnv(t)

	id := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("leak", secret, "https://api.example/v1")).id(t)
	e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", `{"display_name":"leak2","provider":"openai","api_key":"`+secret2+`"}`)
	e.mustAdmin(t, 200, "GET", "/admin/v1/provider_keys/"+id, "")
	e.mustAdmin(t, 200, "GET", "/admin/v1/provider_keys", "")
	e.mustAdmin(t, 200, "PUT", "/admin/v1/provider_keys/"+id, pkBody("leak", secret, "https://api.openai.invalid/v1"))
	// Failing writes that carry the secret.
	e.mustAdmin(t, 409, "POST", "/admin/v1/provider_keys", pkBody("leak", secret, "https://api.example/v1"))
	e.mustAdmin(t, 400, "POST", "/admin/v1/provider_keys", pkBody("leak3", secret, "not a url"))
	e.mustAdmin(t, 400, "POST", "/admin/v1/provider_keys", `{"display_name":"leak4","secret":"`+secret+`","bogus":true}`)
	e.mustAdmin(t, 400, "POST", "/admin/v1/provider_keys", `{"display_name":"leak5","secret":"`+secret+`",}`)
	e.mustAdmin(t, 400, "POST", "/admin/v1/provider_keys", `{"display_name":"leak6","secret":"`+secret+"\\nline"+`"}`)
	e.mustAdmin(t, 400, "PUT", "/admin/v1/provider_keys/"+id, `{"display_name":"leak","secret":"`+secret+`","api_key":"`+secret2+`"}`)
	e.mustAdmin(t, 412, "PUT", "/admin/v1/provider_keys/"+id, pkBody("leak", secret, "https://api.example/v1"), "If-Match: 1")
	e.mustAdmin(t, 404, "PUT", "/admin/v1/provider_keys/nope", pkBody("leak", secret, "https://api.example/v1"))
	e.raw(t, "POST", "/admin/v1/provider_keys", pkBody("leak7", secret, "https://api.example/v1"), "Authorization: Bearer "+secret)
	e.mustAdmin(t, 200, "DELETE", "/admin/v1/provider_keys/"+id, "")

	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"admin write"`) {
		t.Fatalf("no write was logged: %s", logs)
	}
	for name, text := range map[string]string{"responses": e.seenText(), "logs": logs} {
		for _, leak := range []string{secret, secret2, "DISTINCTIVE", testAdminKey} {
			if strings.Contains(text, leak) {
				t.Errorf("%s contain %q", name, leak)
			}
		}
	}
}

func TestWriteLog(t *testing.T) {
	e := newEnv(t)
	r := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("logged", "sk-logged-secret-000000000", "https://x.example"))
	id := r.id(t)
	var en Entry[ProviderKeyValue]
	r.decode(t, &en)
	e.mustAdmin(t, 404, "DELETE", "/admin/v1/models/nope", "")
	e.mustAdmin(t, 200, "GET", "/admin/v1/provider_keys", "")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(e.logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per write (2), none for reads: %v", len(lines), lines)
	}
	want := []map[string]any{
		{"msg": "admin write", "level": "INFO", "method": "POST", "path": "/admin/v1/provider_keys", "kind": "provider_keys", "id": id, "status": 201.0, "revision": float64(en.Revision)},
		{"msg": "admin write", "level": "WARN", "method": "DELETE", "path": "/admin/v1/models/nope", "kind": "models", "id": "nope", "status": 404.0},
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, lines[i][k], v)
			}
		}
	}
}

// fakeStatus is a StatusSource with fixed answers.
type fakeStatus map[string]health.Status

func (f fakeStatus) ModelStatus(id string) health.Status { return f[id] }

func TestModelsStatus(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	status := fakeStatus{}
	e := newEnv(t, func(c *Config) {
		c.Status = status
		c.Now = func() time.Time { return now }
	})

	t.Run("empty store", func(t *testing.T) {
		r := e.mustAdmin(t, 200, "GET", "/admin/v1/models/status", "")
		if string(r.body) != "[]\n" {
			t.Errorf("body %q, want []", r.body)
		}
	})

	pk := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("st-pk", "sk-status-secret-00000000", "https://x.example")).id(t)
	cooling := e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("cooling", pk)).id(t)
	healthy := e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("healthy", pk)).id(t)
	group := e.mustAdmin(t, 201, "POST", "/admin/v1/models", routingBody("group", "cooling", "healthy")).id(t)
	expired := e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("expired", pk)).id(t)
	busy := e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("busy", pk)).id(t)

	until := now.Add(30*time.Second + 512*time.Millisecond)
	status[cooling] = health.Status{State: health.StateCooldown, CooldownUntil: until, Reason: "transport_error", Requests: 3, Failures: 3, LastError: "dial tcp: no such host", LastErrorAt: now.Add(-time.Second)}
	status[expired] = health.Status{State: health.StateProbing, CooldownUntil: now.Add(-time.Second), Reason: "upstream_server_error"}
	status[busy] = health.Status{State: health.StateHealthy, Requests: 10, InFlight: 2, TokensIn: 1200, TokensOut: 340, CostUSD: 0.0064, LatencyP50: 1500 * time.Microsecond, LatencyP95: 20 * time.Millisecond, TTFTP50: 250 * time.Millisecond, LastSuccessAt: now.Add(-2 * time.Second)}

	r := e.mustAdmin(t, 200, "GET", "/admin/v1/models/status", "")
	var got []map[string]any
	r.decode(t, &got)
	stored, err := e.store.ListModels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]any{}
	for i, row := range got {
		if row["id"] != stored[i].ID {
			t.Errorf("row %d is %v, want %s (store order)", i, row["id"], stored[i].ID)
		}
		byID[row["id"].(string)] = row
	}
	want := fmt.Sprintf(`{%q:
		{"id":%q,"display_name":"cooling","kind":"direct","status":"cooldown",
		 "cooldown_until":{"secs_since_epoch":%d,"nanos_since_epoch":512000000},"status_reason":"transport_error",
		 "provider":"openai","endpoints":["chat.completions","embeddings","completions","responses","messages","messages.count_tokens"],"requests":3,"failures":3,"in_flight":0,"latency_p50_ms":0,"latency_p95_ms":0,"ttft_p50_ms":0,"tokens_in":0,"tokens_out":0,"cost_usd":0,
		 "last_error":"dial tcp: no such host","last_error_at":"2030-01-01T11:59:59Z"},
		%q:{"id":%q,"display_name":"healthy","kind":"direct","status":"healthy",
		 "provider":"openai","endpoints":["chat.completions","embeddings","completions","responses","messages","messages.count_tokens"],"requests":0,"failures":0,"in_flight":0,"latency_p50_ms":0,"latency_p95_ms":0,"ttft_p50_ms":0,"tokens_in":0,"tokens_out":0,"cost_usd":0},
		%q:{"id":%q,"display_name":"group","kind":"routing","status":"not_applicable"},
		%q:{"id":%q,"display_name":"expired","kind":"direct","status":"healthy","status_reason":"upstream_server_error","probing":true,
		 "provider":"openai","endpoints":["chat.completions","embeddings","completions","responses","messages","messages.count_tokens"],"requests":0,"failures":0,"in_flight":0,"latency_p50_ms":0,"latency_p95_ms":0,"ttft_p50_ms":0,"tokens_in":0,"tokens_out":0,"cost_usd":0},
		%q:{"id":%q,"display_name":"busy","kind":"direct","status":"healthy",
		 "provider":"openai","endpoints":["chat.completions","embeddings","completions","responses","messages","messages.count_tokens"],"requests":10,"failures":0,"in_flight":2,"latency_p50_ms":1.5,"latency_p95_ms":20,"ttft_p50_ms":250,"tokens_in":1200,"tokens_out":340,"cost_usd":0.0064,
		 "last_success_at":"2030-01-01T11:59:58Z"}
	}`, cooling, cooling, until.Unix(), healthy, healthy, group, group, expired, expired, busy, busy)
	assertJSONEqual(t, byID, want)

	t.Run("nil source: every direct model healthy", func(t *testing.T) {
		e2 := newEnv(t, func(c *Config) { c.Store = e.store })
		var rows []StatusRow
		e2.mustAdmin(t, 200, "GET", "/admin/v1/models/status", "").decode(t, &rows)
		if len(rows) != 5 {
			t.Fatalf("%d rows", len(rows))
		}
		for _, row := range rows {
			want := health.StateHealthy
			if row.Kind == storage.KindRouting {
				want = StatusNotApplicable
			}
			if row.Status != want || row.CooldownUntil != nil || row.StatusReason != "" {
				t.Errorf("row %+v", row)
			}
		}
	})
}

// TestConcurrentWriters runs 50 writers through HTTP at once: no 5xx, and
// optimistic concurrency loses no update.
func TestConcurrentWriters(t *testing.T) {
	const writers = 50
	e := newEnv(t)
	pk := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("cc-pk", "sk-concurrent-secret-0000", "https://x.example")).id(t)
	shared := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("shared"), "*")).id(t)
	startChanges := e.changes.Load()

	var (
		wg        sync.WaitGroup
		writes    atomic.Int64
		conflicts atomic.Int64
		mu        sync.Mutex
		failures  []string
	)
	fail := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf(format, a...))
	}
	start := make(chan struct{})
	began := time.Now()
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			// Independent writes: a model of its own, then two updates.
			r := e.admin(t, "POST", "/admin/v1/models", directBody(fmt.Sprintf("cc-%d", i), pk))
			if r.status != 201 {
				fail("writer %d create: %d %s", i, r.status, r.body)
				return
			}
			writes.Add(1)
			id := r.id(t)
			for j := range 2 {
				r = e.admin(t, "PUT", "/admin/v1/models/"+id, fmt.Sprintf(`{"display_name":"cc-%d","provider":"openai","model_name":"m%d","provider_key_id":%q}`, i, j, pk))
				if r.status != 200 {
					fail("writer %d update: %d %s", i, r.status, r.body)
					return
				}
				writes.Add(1)
			}
			// A contended read-modify-write on one shared key, allowing the
			// writer's own model: retry on 412.
			name := fmt.Sprintf("cc-%d", i)
			for attempt := 0; ; attempt++ {
				if attempt == 500 {
					fail("writer %d: no progress after %d attempts", i, attempt)
					return
				}
				r := e.admin(t, "GET", "/admin/v1/apikeys/"+shared, "")
				if r.status != 200 {
					fail("writer %d get: %d %s", i, r.status, r.body)
					return
				}
				var en Entry[APIKeyValue]
				r.decode(t, &en)
				body := apiKeyBodyJSON(en.Value.KeyHash, append(en.Value.AllowedModels, name)...)
				r = e.admin(t, "PUT", "/admin/v1/apikeys/"+shared, body, fmt.Sprintf("If-Match: %d", en.Revision))
				if r.status == 412 {
					conflicts.Add(1)
					continue
				}
				if r.status != 200 {
					fail("writer %d shared update: %d %s", i, r.status, r.body)
					return
				}
				writes.Add(1)
				return
			}
		}()
	}
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	for _, f := range failures {
		t.Error(f)
	}

	var en Entry[APIKeyValue]
	e.mustAdmin(t, 200, "GET", "/admin/v1/apikeys/"+shared, "").decode(t, &en)
	if len(en.Value.AllowedModels) != writers+1 {
		t.Errorf("shared key has %d models, want %d: lost updates", len(en.Value.AllowedModels), writers+1)
	}
	for i := range writers {
		if !slices.Contains(en.Value.AllowedModels, fmt.Sprintf("cc-%d", i)) {
			t.Errorf("update of writer %d lost", i)
		}
	}
	ms, err := e.store.ListModels(context.Background())
	if err != nil || len(ms) != writers {
		t.Errorf("%d models, %v; want %d", len(ms), err, writers)
	}
	if got := e.changes.Load() - startChanges; got != writes.Load() {
		t.Errorf("OnChange called %d times for %d successful writes", got, writes.Load())
	}
	if strings.Contains(e.logs.String(), "locked") || strings.Contains(e.seenText(), "locked") {
		t.Errorf("a database lock error surfaced")
	}
	t.Logf("%d writes by %d writers in %v (%.0f writes/s), %d If-Match conflicts retried",
		writes.Load(), writers, elapsed.Round(time.Millisecond), float64(writes.Load())/elapsed.Seconds(), conflicts.Load())
}

// TestModelEffective checks the read-only effective object of every model
// entry (POST, PUT, GET, list): the settings the proxy enforces once
// defaults apply, and that a value read back is accepted as a body.
func TestModelEffective(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t, "ef")
	var defaultTriggers []string
	for _, st := range []int{401, 403, 404, 408, 429} {
		defaultTriggers = append(defaultTriggers, strconv.Itoa(st))
	}
	for st := 500; st <= 599; st++ {
		defaultTriggers = append(defaultTriggers, strconv.Itoa(st))
	}
	effective := func(t *testing.T, r reply) any {
		t.Helper()
		v, _ := r.object(t)["value"].(map[string]any)
		return v["effective"]
	}
	for _, c := range []struct{ name, body, want string }{
		{"direct with defaults", directBody("d-plain", f.pk),
			`{"timeout_ms":300000,"stream_header_timeout_ms":30000,"stream_first_chunk_timeout_ms":60000,"stream_idle_timeout_ms":20000,"connect_timeout_ms":5000,"retries":0,
			"cooldown":{"enabled":true,"default_seconds":30,"max_seconds":600,"trigger_statuses":[` + strings.Join(defaultTriggers, ",") + `]}}`},
		{"direct with settings", fmt.Sprintf(`{"display_name":"d-set","provider":"openai","model_name":"m","provider_key_id":%q,
			"timeout":30000,"stream_timeout":5000,"retries":2,"cooldown":{"default_seconds":10,"max_seconds":60,"trigger_statuses":[429,503]}}`, f.pk),
			`{"timeout_ms":30000,"stream_header_timeout_ms":5000,"stream_first_chunk_timeout_ms":5000,"stream_idle_timeout_ms":5000,"connect_timeout_ms":5000,"retries":2,
			"cooldown":{"enabled":true,"default_seconds":10,"max_seconds":60,"trigger_statuses":[429,503]}}`},
		{"direct without cooldown", fmt.Sprintf(`{"display_name":"d-off","provider":"openai","model_name":"m","provider_key_id":%q,"timeout":1000,"cooldown":{"enabled":false}}`, f.pk),
			`{"timeout_ms":1000,"stream_header_timeout_ms":1000,"stream_first_chunk_timeout_ms":1000,"stream_idle_timeout_ms":1000,"connect_timeout_ms":5000,"retries":0,
			"cooldown":{"enabled":false,"default_seconds":30,"max_seconds":600,"trigger_statuses":[]}}`},
		{"routing with defaults", `{"display_name":"r-plain","routing":{"targets":[{"model":"ef-direct"},{"model":"d-plain"},{"model":"d-set"}]}}`,
			`{"strategy":"failover","retries":0,"max_fallbacks":2,"retry_on_429":true,"timeout_ms":0,"when_all_unavailable":"try_anyway","stream_failure":{"mode":"error"},"hedge":null}`},
		{"routing as in the tutorial", routingBody("chat-prod", "ef-direct", "d-plain"),
			`{"strategy":"failover","retries":1,"max_fallbacks":1,"retry_on_429":true,"timeout_ms":0,"when_all_unavailable":"try_anyway","stream_failure":{"mode":"error"},"hedge":null}`},
		{"routing with more fallbacks than targets", `{"display_name":"r-many","routing":{"strategy":"round_robin","targets":[{"model":"ef-direct"},{"model":"d-set"}],
			"max_fallbacks":5,"retry_on_429":false,"timeout":9000,"when_all_unavailable":"fail"}}`,
			`{"strategy":"round_robin","retries":0,"max_fallbacks":1,"retry_on_429":false,"timeout_ms":9000,"when_all_unavailable":"fail","stream_failure":{"mode":"error"},"hedge":null}`},
		{"routing that continues and hedges", `{"display_name":"r-cont","routing":{"targets":[{"model":"ef-direct"},{"model":"d-set"}],
			"stream_failure":{"mode":"continue"},"hedge":{"after_ms":250}}}`,
			`{"strategy":"failover","retries":0,"max_fallbacks":1,"retry_on_429":true,"timeout_ms":0,"when_all_unavailable":"try_anyway","stream_failure":{"mode":"continue","max_continuations":1},"hedge":{"after_ms":250}}`},
		{"routing that hedges at p95", `{"display_name":"r-p95","routing":{"targets":[{"model":"ef-direct"},{"model":"d-set"}],
			"stream_failure":{"mode":"continue","max_continuations":3},"hedge":{"after":"p95"}}}`,
			`{"strategy":"failover","retries":0,"max_fallbacks":1,"retry_on_429":true,"timeout_ms":0,"when_all_unavailable":"try_anyway","stream_failure":{"mode":"continue","max_continuations":3},"hedge":{"after":"p95"}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.mustAdmin(t, 201, "POST", "/admin/v1/models", c.body)
			assertJSONEqual(t, effective(t, r), c.want)
			id := r.id(t)
			got := e.mustAdmin(t, 200, "GET", "/admin/v1/models/"+id, "")
			assertJSONEqual(t, effective(t, got), c.want)

			// The value read back, effective and all, is a valid PUT body; a
			// doctored effective object changes nothing.
			v := got.object(t)["value"].(map[string]any)
			v["effective"] = map[string]any{"timeout_ms": 1, "bogus": true}
			body, err := json.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			put := e.mustAdmin(t, 200, "PUT", "/admin/v1/models/"+id, string(body))
			assertJSONEqual(t, effective(t, put), c.want)
			assertJSONEqual(t, modelValue(t, put), c.body)
		})
	}
	var list []map[string]any
	e.mustAdmin(t, 200, "GET", "/admin/v1/models", "").decode(t, &list)
	for _, en := range list {
		if _, ok := en["value"].(map[string]any)["effective"].(map[string]any); !ok {
			t.Errorf("listed entry %v has no effective object", en["id"])
		}
	}
	// Unknown fields are still refused next to effective.
	checkErrorEnvelope(t, e.mustAdmin(t, 400, "POST", "/admin/v1/models",
		`{"display_name":"x","routing":{"targets":[{"model":"ef-direct"}]},"effective":{},"bogus":1}`), "bogus")
}
