package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/storagetest"
)

// tutorialIDs are the ids of the resources the tutorial creates.
type tutorialIDs struct {
	primaryPK, secondaryPK, primaryModel, secondaryModel, chatProd, apiKey string
}

// auditPage reads GET /admin/v1/audit with query q: the records, and the
// body as sent.
func auditPage(t *testing.T, e *env, adminKey, q string) ([]storage.AuditRecord, string) {
	t.Helper()
	r := e.raw(t, "GET", "/admin/v1/audit"+q, "", "Authorization: Bearer "+adminKey)
	if r.status != 200 {
		t.Fatalf("GET /admin/v1/audit%s answered %d: %s", q, r.status, r.body)
	}
	var page struct{ Items []storage.AuditRecord }
	r.decode(t, &page)
	if page.Items == nil {
		t.Fatalf("GET /admin/v1/audit%s: no items array: %s", q, r.body)
	}
	return page.Items, string(r.body)
}

// auditLine summarises a record in one line: method, kind, id, name,
// status, then each change's action and fields (a field that changed from
// old to new as field=old>new, a secret as field=changed).
func auditLine(rec storage.AuditRecord) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s %q %d", rec.Method, rec.Kind, rec.ResourceID, rec.Name, rec.Status)
	if rec.Error != "" {
		fmt.Fprintf(&b, " error=%q", rec.Error)
	}
	for _, c := range rec.Changes {
		fmt.Fprintf(&b, " | %s %s %s %q", c.Action, c.Kind, c.ID, c.Name)
		for _, f := range c.Fields {
			switch {
			case f.Secret:
				fmt.Fprintf(&b, " %s=changed", f.Field)
			default:
				fmt.Fprintf(&b, " %s=%s>%s", f.Field, f.Old, f.New)
			}
		}
	}
	return b.String()
}

// checkTutorialAudit checks the audit trail TestTutorial's writes leave:
// one record per write, newest first, with its kind, id, name, method,
// status and field summary; and that none of secrets appears in any
// record or any log line.
func checkTutorialAudit(t *testing.T, e *env, ids tutorialIDs, adminKey string, secrets ...string) {
	t.Helper()
	recs, body := auditPage(t, e, adminKey, "?since=1h")
	createPK := func(id, name string) string {
		return fmt.Sprintf("POST provider_keys %s %q 201 | create provider_key %s %q adapter=>openai api_base=>https://api.openai.com/v1 display_name=>%s provider=>openai secret_host=>api.openai.com secret=changed",
			id, name, id, name, name)
	}
	createDirect := func(id, name, pk string) string {
		return fmt.Sprintf("POST models %s %q 201 | create model %s %q display_name=>%s model_name=>gpt-4o-mini provider=>openai provider_key_id=>%s",
			id, name, id, name, name, pk)
	}
	repoint := func(from, to, fromHost, toHost string) string {
		return fmt.Sprintf("PUT provider_keys %s \"openai-primary\" 200 | update provider_key %s \"openai-primary\" api_base=%s>%s secret_host=%s>%s",
			ids.primaryPK, ids.primaryPK, from, to, fromHost, toHost)
	}
	del := func(kind, changeKind, id, name string) string {
		return fmt.Sprintf("DELETE %s %s %q 200 | delete %s %s %q", kind, id, name, changeKind, id, name)
	}
	want := []string{
		createPK(ids.primaryPK, "openai-primary"),
		createPK(ids.secondaryPK, "openai-secondary"),
		createDirect(ids.primaryModel, "gpt-4o-primary", ids.primaryPK),
		createDirect(ids.secondaryModel, "gpt-4o-secondary", ids.secondaryPK),
		fmt.Sprintf(`POST models %s "chat-prod" 201 | create model %s "chat-prod" display_name=>chat-prod routing=>{"strategy":"failover","targets":[{"model":"gpt-4o-primary"},{"model":"gpt-4o-secondary"}],"retries":1,"max_fallbacks":1}`,
			ids.chatProd, ids.chatProd),
		fmt.Sprintf(`POST apikeys %s "" 201 | create api_key %s "" allowed_models=>["chat-prod"] key_hash=changed`, ids.apiKey, ids.apiKey),
		// The secret is sent again, equal: only the host changes.
		repoint("https://api.openai.com/v1", "https://api.openai.invalid/v1", "api.openai.com", "api.openai.invalid"),
		repoint("https://api.openai.invalid/v1", "https://api.openai.com/v1", "api.openai.invalid", "api.openai.com"),
		del("models", "model", ids.chatProd, "chat-prod"),
		del("models", "model", ids.primaryModel, "gpt-4o-primary"),
		del("models", "model", ids.secondaryModel, "gpt-4o-secondary"),
		del("apikeys", "api_key", ids.apiKey, ""),
		del("provider_keys", "provider_key", ids.primaryPK, "openai-primary"),
		del("provider_keys", "provider_key", ids.secondaryPK, "openai-secondary"),
	}
	if len(recs) != len(want) {
		t.Errorf("%d audit records, want %d (one per write)", len(recs), len(want))
	}
	for i := range min(len(recs), len(want)) {
		rec := recs[len(recs)-1-i] // newest first
		if got := auditLine(rec); got != want[i] {
			t.Errorf("audit record %d:\n got %s\nwant %s", i, got, want[i])
		}
		if rec.AdminKeyID != "bootstrap" || rec.Source != "127.0.0.1" || rec.Time.IsZero() {
			t.Errorf("audit record %d: admin_key_id %q, source %q, time %s", i, rec.AdminKeyID, rec.Source, rec.Time)
		}
		if want := "/admin/v1/" + rec.Kind; rec.Path != want && rec.Path != want+"/"+rec.ResourceID {
			t.Errorf("audit record %d: path %q", i, rec.Path)
		}
	}
	assertNoSecrets(t, e, body, append(secrets, adminKey)...)
	if n := strings.Count(e.logs.String(), `"component":"audit"`); n != len(want) {
		t.Errorf("%d audit log lines, want %d", n, len(want))
	}
}

// assertNoSecrets fails if any of secrets appears in body (the audit
// log as the API answers it) or in any log line.
func assertNoSecrets(t *testing.T, e *env, body string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(body, s) {
			t.Errorf("an audit record holds the secret %q", s)
		}
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("a log line holds the secret %q", s)
		}
	}
}

// withAudit keeps the audit log in the env's own SQLite store.
func withAudit(t *testing.T) func(*Config) {
	return func(c *Config) {
		st := openStore(t)
		c.Store, c.Audit = st, st
	}
}

func TestAuditFailedAuth(t *testing.T) {
	e := newEnv(t, withAudit(t))
	const wrong = "wrong-admin-key-5566778899"
	if r := e.raw(t, "PUT", "/admin/v1/models/x", `{}`, "Authorization: Bearer "+wrong); r.status != 401 {
		t.Fatalf("wrong key answered %d", r.status)
	}
	if r := e.raw(t, "GET", "/admin/v1/nowhere", ""); r.status != 401 {
		t.Fatalf("no key answered %d", r.status)
	}
	recs, body := auditPage(t, e, testAdminKey, "")
	want := []string{
		`GET auth  "" 401 error="no admin key"`,
		`PUT auth  "" 401 error="unknown admin key"`,
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records, want %d: %s", len(recs), len(want), body)
	}
	for i, rec := range recs {
		if got := auditLine(rec); got != want[i] {
			t.Errorf("record %d = %s, want %s", i, got, want[i])
		}
		if rec.AdminKeyID != "" || rec.Source != "127.0.0.1" {
			t.Errorf("record %d: admin_key_id %q, source %q", i, rec.AdminKeyID, rec.Source)
		}
	}
	if recs[1].Path != "/admin/v1/models/x" || recs[0].Path != "/admin/v1/nowhere" {
		t.Errorf("paths %q, %q", recs[1].Path, recs[0].Path)
	}
	assertNoSecrets(t, e, body, wrong, testAdminKey)
}

func TestAuditRotateApplyAndFailures(t *testing.T) {
	e := newEnv(t, withAudit(t))
	const secret = "sk-audit-apply-0123456789abcdef"
	// A dry run is recorded, and changes nothing.
	e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody(secret, `, "dry_run": true`))
	var res storage.ApplyResult
	e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody(secret, "")).decode(t, &res)
	ci := res.Changes[2].ID
	var rot rotated
	e.mustAdmin(t, 200, "POST", "/admin/v1/apikeys/"+ci+"/rotate", "").decode(t, &rot)
	e.mustAdmin(t, 404, "DELETE", "/admin/v1/models/no-such-model", "")
	e.mustAdmin(t, 400, "POST", "/admin/v1/provider_keys", pkBody("bad", "", "https://api.example.com/v1"))
	// A new secret for the same key, through apply, shown as changed; the
	// caller key's hash goes back to the file's.
	e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody(secret+"-2", ""))
	// Writes that are not resource writes (a provider key test) and reads
	// are not recorded.
	e.mustAdmin(t, 200, "GET", "/admin/v1/models", "")

	recs, body := auditPage(t, e, testAdminKey, "?limit=10")
	pk, model := res.Changes[0].ID, res.Changes[1].ID
	want := []string{
		fmt.Sprintf(`POST apply  "" 200 | update provider_key %s "openai" secret=changed | update api_key %s "ci" key_hash=changed`, pk, ci),
		`POST provider_keys  "" 400 error="secret: is required"`,
		`DELETE models no-such-model "" 404 error="model \"no-such-model\" not found"`,
		fmt.Sprintf(`POST apikeys %s "ci" 200 | update api_key %s "ci" key_hash=changed`, ci, ci),
		fmt.Sprintf(`POST apply  "" 200 | create provider_key %s "openai" | create model %s "gpt-4o" | create api_key %s "ci"`, pk, model, ci),
		`POST apply  "" 200`,
	}
	var got []string
	for _, rec := range recs {
		got = append(got, auditLine(rec))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("records:\n got %s\nwant %s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	assertNoSecrets(t, e, body, secret, secret+"-2", rot.Plaintext, rot.Entry.Value.KeyHash, hashKey("ci"), testAdminKey)

	// limit and since select.
	if recs, _ := auditPage(t, e, testAdminKey, "?limit=2"); len(recs) != 2 || auditLine(recs[0]) != want[0] {
		t.Errorf("limit=2: %d records", len(recs))
	}
	if recs, _ := auditPage(t, e, testAdminKey, "?until=2000-01-01T00:00:00Z"); len(recs) != 0 {
		t.Errorf("until 2000: %d records", len(recs))
	}
}

func TestAuditQueryErrors(t *testing.T) {
	e := newEnv(t, withAudit(t))
	for _, tc := range []struct{ q, msg string }{
		{"?limit=1001", "limit: must be between 1 and 1000"},
		{"?limit=0", "limit: must be a whole number between 1 and 1000"},
		{"?limit=ten", "limit: must be a whole number"},
		{"?since=yesterday", "since: must be an RFC 3339 time"},
		{"?since=1h&until=2h", "until: must not be before since"},
		{"?from=1h", "from: is not a parameter of the audit query"},
	} {
		r := e.mustAdmin(t, 400, "GET", "/admin/v1/audit"+tc.q, "")
		if msg, _ := r.object(t)["error_msg"].(string); !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: error_msg %q, want it to contain %q", tc.q, msg, tc.msg)
		}
	}
	// Without an audit store the route answers 501 and writes go on.
	plain := newEnv(t)
	plain.mustAdmin(t, 501, "GET", "/admin/v1/audit", "")
	plain.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("p", "sk-plain-0123456789abcdef", "https://api.example.com/v1"))
	if strings.Contains(plain.logs.String(), `"component":"audit"`) {
		t.Error("a server without an audit log logged an audit line")
	}
}

// failingAudit is an audit store whose appends fail.
type failingAudit struct{ storage.AuditStore }

func (failingAudit) AppendAudit(context.Context, storage.AuditRecord) error {
	return errors.New("disk full")
}

func TestAuditAppendFailureKeepsWrite(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		st := openStore(t)
		c.Store, c.Audit = st, failingAudit{st}
	})
	id := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("kept", "sk-kept-0123456789abcdef", "https://api.example.com/v1")).id(t)
	if _, err := e.store.GetProviderKey(context.Background(), id); err != nil {
		t.Fatalf("the write is lost: %v", err)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"level":"ERROR","msg":"audit record not stored"`) || !strings.Contains(logs, "disk full") {
		t.Errorf("no error line for the failed append:\n%s", logs)
	}
}

func TestSourceOf(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:4321":   "192.0.2.1",
		"[2001:db8::1]:80": "2001:db8::1",
		"@":                "@", // a unix socket's peer: kept as is
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = addr
		if got := sourceOf(r); got != want {
			t.Errorf("sourceOf(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestParseAuditTime(t *testing.T) {
	now := time.Date(2026, 3, 14, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"":                     {},
		"24h":                  now.Add(-24 * time.Hour),
		"1d":                   now.Add(-24 * time.Hour),
		"90m":                  now.Add(-90 * time.Minute),
		"2026-03-01T00:00:00Z": time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC),
	} {
		got, err := ParseAuditTime("since", in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseAuditTime(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"-1h", "xd", "-2d", "soon"} {
		if _, err := ParseAuditTime("since", in, now); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("ParseAuditTime(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

// TestClientAuditConformance: the audit log read through the admin API
// client answers what the SQLite store answers.
func TestClientAuditConformance(t *testing.T) {
	storagetest.RunAudit(t, func(t *testing.T) (storage.AuditStore, storage.AuditReader) {
		c, e := newClient(t, withAudit(t))
		return e.store.(storage.AuditStore), c
	})
}
