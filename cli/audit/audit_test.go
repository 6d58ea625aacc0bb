package audit_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/audit"
	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// seed writes three audit records straight into e's database: a
// provider key created two days ago, a secret changed an hour ago, and a
// failed authentication a minute ago.
func seed(t *testing.T, e *clitest.Env) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for _, rec := range []storage.AuditRecord{
		{Time: now.Add(-48 * time.Hour), AdminKeyID: "bootstrap", Source: "192.0.2.1", Method: "POST", Path: "/admin/v1/provider_keys",
			Kind: "provider_keys", ResourceID: "pk1", Name: "openai", Status: 201,
			Changes: []storage.Change{{Kind: storage.KindProviderKey, Name: "openai", Action: "create", ID: "pk1",
				Fields: []storage.FieldChange{{Field: "api_base", New: "https://api.openai.com/v1"}, storage.SecretChange("secret")}}}},
		{Time: now.Add(-time.Hour), AdminKeyID: "bootstrap", Source: "192.0.2.1", Method: "PUT", Path: "/admin/v1/provider_keys/pk1",
			Kind: "provider_keys", ResourceID: "pk1", Name: "openai", Status: 200,
			Changes: []storage.Change{{Kind: storage.KindProviderKey, Name: "openai", Action: "update", ID: "pk1",
				Fields: []storage.FieldChange{storage.SecretChange("secret")}}}},
		{Time: now.Add(-time.Minute), Source: "198.51.100.7", Method: "GET", Path: "/admin/v1/models",
			Kind: storage.AuditKindAuth, Status: 401, Error: "unknown admin key"},
	} {
		if err := st.AppendAudit(t.Context(), rec); err != nil {
			t.Fatal(err)
		}
	}
}

// remote starts an admin API server that keeps the audit log on e's
// database and switches e to remote mode.
func remote(t *testing.T, e *clitest.Env) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	ts := httptest.NewServer(admin.New(admin.Config{Store: st, Audit: st, Keys: []string{clitest.AdminKey}}))
	t.Cleanup(ts.Close)
	e.Server = ts.URL
}

func items(t *testing.T, out string) []storage.AuditRecord {
	t.Helper()
	var page struct {
		Items []storage.AuditRecord `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil || page.Items == nil {
		t.Fatalf("-o json: %v\n%s", err, out)
	}
	return page.Items
}

func TestAudit(t *testing.T) {
	for _, mode := range []string{"local", "remote"} {
		t.Run(mode, func(t *testing.T) {
			e := clitest.New(t)
			seed(t, e)
			if mode == "remote" {
				remote(t, e)
			}
			recs := items(t, e.Must("", "audit", "-o", "json").Stdout)
			if len(recs) != 3 || recs[0].Kind != "auth" || recs[2].Method != "POST" {
				t.Fatalf("all records: %+v", recs)
			}
			recs = items(t, e.Must("", "audit", "--since", "1d", "-o", "json").Stdout)
			if len(recs) != 2 || recs[1].Changes[0].Fields[0] != storage.SecretChange("secret") {
				t.Errorf("--since 1d: %+v", recs)
			}
			recs = items(t, e.Must("", "audit", "--until", "30m", "--limit", "1", "-o", "json").Stdout)
			if len(recs) != 1 || recs[0].Method != "PUT" {
				t.Errorf("--until 30m --limit 1: %+v", recs)
			}

			// Piped: tab-separated rows, RFC 3339 times, no header.
			lines := strings.Split(strings.TrimSuffix(e.Must("", "audit", "--since", "1d").Stdout, "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("piped: %q", lines)
			}
			cells := strings.Split(lines[1], "\t")
			want := []string{"bootstrap", "192.0.2.1", "PUT", "provider_keys", "openai", "pk1", "200", "update provider_key openai: secret (changed)"}
			if _, err := time.Parse(time.RFC3339, cells[0]); err != nil || strings.Join(cells[1:], "|") != strings.Join(want, "|") {
				t.Errorf("piped row %q, want a time then %q", cells, want)
			}
			if !strings.HasSuffix(lines[0], "\t-\t-\t401\terror: unknown admin key") {
				t.Errorf("piped auth row %q", lines[0])
			}

			// On a terminal: a header, and (none) when nothing matches.
			e.TTY = true
			out := e.Must("", "audit").Stdout
			if !strings.HasPrefix(out, "TIME") || !strings.Contains(out, "create provider_key openai: api_base, secret (changed)") {
				t.Errorf("table:\n%s", out)
			}
			if out := e.Must("", "audit", "--until", "2000-01-01T00:00:00Z").Stdout; out != "(none)\n" {
				t.Errorf("no match, terminal: %q", out)
			}
		})
	}
}

// TestAuditRemoteWrite: a write made through the CLI in remote mode is in
// the audit log, without the caller key the server minted.
func TestAuditRemoteWrite(t *testing.T) {
	e := clitest.New(t)
	remote(t, e)
	created := e.Must("", "apikey", "create", "--name", "team-a", "--allow-model", "*", "-o", "json").Stdout
	recs := items(t, e.Must("", "audit", "-o", "json").Stdout)
	if len(recs) != 1 {
		t.Fatalf("%d records after one write: %+v", len(recs), recs)
	}
	r := recs[0]
	if r.Method != "POST" || r.Kind != "apikeys" || r.Name != "team-a" || r.Status != 201 || r.AdminKeyID != "bootstrap" || r.Source != "127.0.0.1" {
		t.Errorf("record %+v", r)
	}
	var out struct {
		Entry struct {
			Value struct {
				KeyHash string `json:"key_hash"`
			} `json:"value"`
		} `json:"entry"`
		Plaintext string `json:"plaintext"`
	}
	if err := json.Unmarshal([]byte(created), &out); err != nil || out.Plaintext == "" || out.Entry.Value.KeyHash == "" {
		t.Fatalf("apikey create -o json: %v\n%s", err, created)
	}
	raw := e.Must("", "audit", "-o", "json").Stdout
	for _, s := range []string{out.Plaintext, out.Entry.Value.KeyHash, clitest.AdminKey} {
		if strings.Contains(raw, s) {
			t.Errorf("the audit log shows the secret %q", s)
		}
	}
}

// TestFlags: flag errors exit 2 with one line naming the flag, before
// any store is opened.
func TestFlags(t *testing.T) {
	e := clitest.New(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--since", "last week"}, "--since must be an RFC 3339 time"},
		{[]string{"--until", "soon"}, "--until must be"},
		{[]string{"--since", "1h", "--until", "2h"}, "--until must not be before since"},
		{[]string{"--limit", "0"}, "--limit must be between 1 and 1000"},
		{[]string{"--limit", "1001"}, "--limit must be between 1 and 1000"},
		{[]string{"-o", "csv"}, "--output"},
	} {
		r := e.Run("", append([]string{"audit"}, c.args...)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.want) || strings.Count(r.Stderr, "\n") != 1 {
			t.Errorf("audit %q: exit %d, stderr %q; want 2 naming %s", c.args, r.Code, r.Stderr, c.want)
		}
	}
}

// TestSince: --since counts back from the factory's clock.
func TestSince(t *testing.T) {
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	ios, _, _, _ := iostreams.Test()
	f := cmdutil.New(ios, "test")
	f.Now = func() time.Time { return now }
	var got *audit.Options
	cmd := audit.NewCmdAudit(f, func(_ context.Context, o *audit.Options) error { got = o; return nil })
	cmd.SetArgs([]string{"--since", "1d", "--until", "2026-03-15T11:00:00Z"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	want := storage.AuditQuery{Since: now.Add(-24 * time.Hour), Until: now.Add(-time.Hour), Limit: storage.DefaultAuditLimit}
	if got == nil || !got.Query.Since.Equal(want.Since) || !got.Query.Until.Equal(want.Until) || got.Query.Limit != want.Limit {
		t.Errorf("query %+v, want %+v", got, want)
	}
}
