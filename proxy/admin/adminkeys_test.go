package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/authguard"
	"github.com/aisix/aisix/storage"
)

// scopedKeys creates one stored admin key of every scope and returns the
// plaintext keys by scope.
func scopedKeys(t *testing.T, e *env) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sc := range storage.Scopes {
		r := e.admin(t, "POST", "/admin/v1/admin_keys", `{"display_name":"key-`+sc+`","scope":"`+sc+`"}`)
		var m struct {
			Key   string `json:"key"`
			Scope string `json:"scope"`
		}
		r.decode(t, &m)
		if r.status != http.StatusCreated || !strings.HasPrefix(m.Key, "ak-") || m.Scope != sc {
			t.Fatalf("create %s key: %d %s", sc, r.status, r.body)
		}
		out[sc] = m.Key
	}
	return out
}

// TestEveryRouteHasItsScope walks the router: every authenticated route
// documents its x-aisix-scope, the same the server enforces, and for every
// route and every scope of key the answer is 403 exactly when the key's
// scope ranks below the route's.
func TestEveryRouteHasItsScope(t *testing.T) {
	e := newEnv(t, withCannedUpstream)
	f := e.fixture(t, "sc")
	keys := scopedKeys(t, e)
	_, ops := loadOpenAPI(t, e)
	seen := 0
	for _, pattern := range e.srv.routes {
		want, authed := e.srv.scopes[pattern]
		op := ops[pattern]
		if !authed {
			if op.Scope != "" {
				t.Errorf("public route %s documents scope %q", pattern, op.Scope)
			}
			continue
		}
		seen++
		if op.Scope != want {
			t.Errorf("%s: document says scope %q, server enforces %q", pattern, op.Scope, want)
		}
		if _, ok := op.Responses["403"]; !ok {
			t.Errorf("%s: no documented 403", pattern)
		}
		method, path, _ := strings.Cut(pattern, " ")
		// The route's target need not exist: a key with the scope gets past
		// the check (and then a 404 or 400), one without it gets 403.
		path = strings.ReplaceAll(path, "{id}", f.direct)
		for _, sc := range storage.Scopes {
			body := ""
			if method != http.MethodGet && method != http.MethodDelete {
				body = "{}"
			}
			r := e.raw(t, method, path, body, "Authorization: Bearer "+keys[sc])
			forbidden := storage.ScopeRank(sc) < storage.ScopeRank(want)
			if got := r.status == http.StatusForbidden; got != forbidden {
				t.Errorf("%s with a %s key: %d %s; want 403: %v", pattern, sc, r.status, r.body, forbidden)
			}
			if forbidden && !strings.Contains(string(r.body), "needs scope "+want) {
				t.Errorf("%s with a %s key: 403 body %s does not name the scope", pattern, sc, r.body)
			}
		}
	}
	if seen < 25 {
		t.Errorf("only %d authenticated routes walked", seen)
	}
}

// TestAdminKeyLifecycle: a key works at once, a rotated key's old secret
// stops working at once and its new one works, a deleted key stops
// working, and neither list nor log shows a key or its hash.
func TestAdminKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	keys := scopedKeys(t, e)
	read := keys[storage.ScopeRead]
	if r := e.raw(t, "GET", "/admin/v1/models", "", "Authorization: Bearer "+read); r.status != http.StatusOK {
		t.Fatalf("read key on GET models: %d %s", r.status, r.body)
	}
	if r := e.raw(t, "POST", "/admin/v1/models", `{"display_name":"x"}`, "Authorization: Bearer "+read); r.status != http.StatusForbidden {
		t.Errorf("read key on POST models: %d %s, want 403", r.status, r.body)
	}
	// The status key is what the dashboard needs, and nothing more.
	st := keys[storage.ScopeStatus]
	for _, p := range []string{"/admin/v1/info", "/admin/v1/models/status", "/admin/v1/events", "/admin/v1/limits"} {
		if r := e.raw(t, "GET", p, "", "Authorization: Bearer "+st); r.status != http.StatusOK {
			t.Errorf("status key on %s: %d %s", p, r.status, r.body)
		}
	}
	if r := e.raw(t, "GET", "/admin/v1/provider_keys", "", "Authorization: Bearer "+st); r.status != http.StatusForbidden {
		t.Errorf("status key on provider_keys: %d, want 403", r.status)
	}

	r := e.admin(t, "POST", "/admin/v1/admin_keys/key-read/rotate", "")
	var rot struct {
		Key string `json:"key"`
		ID  string `json:"id"`
	}
	r.decode(t, &rot)
	if r.status != http.StatusOK || rot.Key == "" || rot.Key == read {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	if r := e.raw(t, "GET", "/admin/v1/models", "", "Authorization: Bearer "+read); r.status != http.StatusUnauthorized {
		t.Errorf("old secret after rotate: %d, want 401", r.status)
	}
	if r := e.raw(t, "GET", "/admin/v1/models", "", "Authorization: Bearer "+rot.Key); r.status != http.StatusOK {
		t.Errorf("new secret after rotate: %d", r.status)
	}
	// A write key may not manage admin keys.
	if r := e.raw(t, "POST", "/admin/v1/admin_keys", `{"display_name":"esc","scope":"admin"}`, "Authorization: Bearer "+keys[storage.ScopeWrite]); r.status != http.StatusForbidden {
		t.Errorf("write key creating an admin key: %d, want 403", r.status)
	}
	list := e.admin(t, "GET", "/admin/v1/admin_keys", "")
	var views []map[string]any
	list.decode(t, &views)
	if list.status != http.StatusOK || len(views) != 4 {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	for _, k := range append([]string{rot.Key}, keys[storage.ScopeAdmin], keys[storage.ScopeWrite], st) {
		if strings.Contains(string(list.body), k) || strings.Contains(string(list.body), storage.HashKey(k)) {
			t.Errorf("list shows a key or its hash: %s", list.body)
		}
		if strings.Contains(e.logs.String(), k) {
			t.Errorf("the log holds an admin key")
		}
	}
	if r := e.admin(t, "DELETE", "/admin/v1/admin_keys/"+rot.ID, ""); r.status != http.StatusOK {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r := e.raw(t, "GET", "/admin/v1/models", "", "Authorization: Bearer "+rot.Key); r.status != http.StatusUnauthorized {
		t.Errorf("deleted key: %d, want 401", r.status)
	}
	// Writes are logged with the key's id, never the key.
	var found bool
	for _, line := range strings.Split(e.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "admin write" && m["kind"] == "admin_keys" && m["admin_key"] == "bootstrap" {
			found = true
		}
	}
	if !found {
		t.Errorf("no admin write line naming the bootstrap key:\n%s", e.logs.String())
	}
}

// TestAdminKeysInTheAuditLog: admin key writes and a refused write are in
// the audit log with the admin key's id, the refusal with its 403, and no
// key or key hash anywhere in it.
func TestAdminKeysInTheAuditLog(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, func(c *Config) { c.Store, c.Audit = st, st })
	keys := scopedKeys(t, e)
	ks, err := st.ListAdminKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, k := range ks {
		ids[k.Scope] = k.ID
	}
	if r := e.raw(t, "POST", "/admin/v1/models", `{"display_name":"x"}`, "Authorization: Bearer "+keys[storage.ScopeRead]); r.status != http.StatusForbidden {
		t.Fatalf("read key writing: %d", r.status)
	}
	rot := e.admin(t, "POST", "/admin/v1/admin_keys/key-write/rotate", "")
	if rot.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", rot.status, rot.body)
	}
	r := e.admin(t, "GET", "/admin/v1/audit?since=1h", "")
	var out struct {
		Items []storage.AuditRecord `json:"items"`
	}
	r.decode(t, &out)
	var creates, refused, rotated int
	for _, rec := range out.Items {
		switch {
		case rec.Kind == kindAdminKey && rec.Method == "POST" && rec.Status == http.StatusCreated && rec.AdminKeyID == bootstrapID:
			creates++
		case rec.Kind == "models" && rec.Status == http.StatusForbidden && rec.AdminKeyID == ids[storage.ScopeRead]:
			refused++
		case rec.Kind == kindAdminKey && strings.HasSuffix(rec.Path, "/rotate") && rec.Status == http.StatusOK && rec.Name == "key-write":
			rotated++
			if len(rec.Changes) != 1 || !strings.Contains(fmt.Sprint(rec.Changes[0].Fields), "key") {
				t.Errorf("rotation's change summary: %+v", rec.Changes)
			}
		}
	}
	if creates != 4 || refused != 1 || rotated != 1 {
		t.Errorf("audit: %d admin key creates, %d refused writes, %d rotations; want 4, 1, 1:\n%s", creates, refused, rotated, r.body)
	}
	var m struct{ Key string }
	rot.decode(t, &m)
	for _, k := range append([]string{m.Key}, keys[storage.ScopeAdmin], keys[storage.ScopeRead], keys[storage.ScopeWrite], keys[storage.ScopeStatus]) {
		if strings.Contains(string(r.body), k) || strings.Contains(string(r.body), storage.HashKey(k)) {
			t.Errorf("the audit log holds an admin key or its hash")
		}
	}
}

// TestAdminAuthGuard: wrong admin keys from one address spend its budget
// (each one logged and audited), then get 429 with Retry-After and no log
// line or audit record of their own; a right key from that address still
// passes.
func TestAdminAuthGuard(t *testing.T) {
	st := openStore(t)
	e := newEnv(t, func(c *Config) {
		c.Store, c.Audit = st, st
		c.AuthGuard = authguard.New(authguard.Options{Burst: 3, PerSecond: 0.001})
	})
	var statuses []int
	for range 6 {
		statuses = append(statuses, e.raw(t, "GET", "/admin/v1/models", "", "Authorization: Bearer not-a-key").status)
	}
	if fmt.Sprint(statuses) != "[401 401 401 429 429 429]" {
		t.Errorf("statuses %v, want three 401s then 429s", statuses)
	}
	r := e.raw(t, "GET", "/admin/v1/models", "", "Authorization: Bearer not-a-key")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), "too many failed admin authentications") {
		t.Errorf("throttled answer: %d %q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := e.admin(t, "GET", "/admin/v1/models", ""); r.status != http.StatusOK {
		t.Errorf("the right key from the throttled address: %d, want 200", r.status)
	}
	if n := strings.Count(e.logs.String(), "admin authentication failed"); n != 3 {
		t.Errorf("%d failure log lines, want 3 (throttled ones are not logged)", n)
	}
	recs, err := st.ListAudit(t.Context(), storage.AuditQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	auth := 0
	for _, rec := range recs {
		if rec.Kind == storage.AuditKindAuth {
			auth++
		}
	}
	if auth != 3 {
		t.Errorf("%d failed-auth audit records, want 3", auth)
	}
}
