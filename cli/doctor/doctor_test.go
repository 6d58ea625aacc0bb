package doctor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/cli/doctor"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

const (
	goodSecret  = "sk-doctor-good-secret-0001"
	wrongSecret = "sk-doctor-wrong-secret-0002"
)

// fakeOpenAI answers as OpenAI does: 401 invalid_api_key (quoting the key
// it got) for any key but goodSecret, 404 model_not_found for any model
// but gpt-4o-mini, a chat.completion otherwise.
func fakeOpenAI(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		w.Header().Set("Content-Type", "application/json")
		switch key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "); {
		case key != goodSecret:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":{"message":"Incorrect API key provided: `+key+`.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`)
		case body.Model != "gpt-4o-mini":
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error":{"message":"The model `+"`"+body.Model+"`"+` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`)
		default:
			_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"P"},"finish_reason":"length"}]}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/v1"
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// setup creates provider keys good, wrong, refused and nomodel with one
// direct model each, a routing group over good's and refused's, and caller
// keys: app (the group), off (disabled), soon (expires in a day) and old
// (expired, written straight to the store).
func setup(t *testing.T, e *clitest.Env, base string) {
	t.Helper()
	refused := "http://" + closedPort(t) + "/v1"
	for _, k := range []struct{ name, secret, base, model string }{
		{"good", goodSecret, base, "gpt-4o-mini"},
		{"wrong", wrongSecret, base, "gpt-4o-mini"},
		{"refused", goodSecret, refused, "gpt-4o-mini"},
		{"nomodel", goodSecret, base, "gpt-nope"},
	} {
		e.Must(k.secret, "provider-key", "create", "--name", k.name, "--provider", "openai", "--api-base", k.base, "--secret-stdin", "-q")
		e.Must("", "model", "create", "--name", k.name+"-direct", "--provider", "openai", "--model-name", k.model, "--provider-key", k.name, "-q")
	}
	e.Must("", "model", "route", "chat", "--target", "good-direct", "--target", "refused-direct", "-q")
	e.Must("", "apikey", "create", "--name", "app", "--allow-model", "chat", "-o", "json")
	e.Must("", "apikey", "create", "--name", "off", "--allow-model", "wrong-direct", "--disable", "-o", "json")
	e.Must("", "apikey", "create", "--name", "soon", "--allow-model", "chat", "--expires-in", "24h", "-o", "json")
	st, err := sqlite.Open(context.Background(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	past := time.Now().Add(-time.Hour)
	if _, err := st.CreateAPIKey(context.Background(), storage.APIKey{DisplayName: "old", KeyHash: strings.Repeat("ab", 32), AllowedModels: []string{"*"}, ExpiresAt: &past}); err != nil {
		t.Fatal(err)
	}
}

// checks runs doctor -o json and returns its checks by name.
func checks(t *testing.T, e *clitest.Env, wantCode int, args ...string) map[string]doctor.Check {
	t.Helper()
	r := e.Run("", append([]string{"doctor", "-o", "json"}, args...)...)
	if r.Code != wantCode || r.Stderr != "" {
		t.Fatalf("doctor: exit %d, want %d\nstdout: %s\nstderr: %s", r.Code, wantCode, r.Stdout, r.Stderr)
	}
	for _, s := range []string{goodSecret, wrongSecret, clitest.AdminKey} {
		if strings.Contains(r.Stdout, s) {
			t.Fatalf("doctor output holds a key:\n%s", r.Stdout)
		}
	}
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &raw); err != nil {
		t.Fatalf("-o json %q: %v", r.Stdout, err)
	}
	out := map[string]doctor.Check{}
	for _, c := range raw {
		if len(c) != 3 {
			t.Errorf("check %v: want exactly check, status, detail", c)
		}
		name, _ := c["check"].(string)
		status, _ := c["status"].(string)
		detail, _ := c["detail"].(string)
		if status != doctor.StatusOK && status != doctor.StatusWarn && status != doctor.StatusFail {
			t.Errorf("check %s: status %q", name, status)
		}
		if _, dup := out[name]; dup && name != "server.config_error" {
			t.Errorf("check %s appears twice", name)
		}
		out[name] = doctor.Check{Check: name, Status: status, Detail: detail}
	}
	return out
}

func want(t *testing.T, got map[string]doctor.Check, name, status, detail string) {
	t.Helper()
	c, ok := got[name]
	if !ok {
		t.Errorf("no check %s", name)
		return
	}
	if c.Status != status || !strings.Contains(c.Detail, detail) {
		t.Errorf("%s: %s %q\nwant %s and a detail containing %q", name, c.Status, c.Detail, status, detail)
	}
}

func TestDoctor(t *testing.T) {
	base := fakeOpenAI(t)
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		setup(t, e, base)
		got := checks(t, e, 1)
		want(t, got, "config.db", doctor.StatusOK, e.DB+" (env AISIX_DB")
		want(t, got, "config.admin_key", doctor.StatusOK, "set (env AISIX_ADMIN_KEY)")
		want(t, got, "config.output", doctor.StatusOK, "json (flag --output)")
		if e.Server == "" {
			want(t, got, "config.server", doctor.StatusOK, "not set (default): local mode")
			want(t, got, "store.schema", doctor.StatusOK, fmt.Sprintf("schema version %d (this aisix: %d), revision ", sqlite.SchemaVersion, sqlite.SchemaVersion))
			want(t, got, "store.file_mode", doctor.StatusOK, "0600")
		} else {
			want(t, got, "config.server", doctor.StatusOK, e.Server+" (env AISIX_SERVER): remote mode")
			want(t, got, "server.info", doctor.StatusOK, "aisix")
			want(t, got, "server.revision", doctor.StatusOK, "store revision")
			want(t, got, "routing", doctor.StatusOK, "1 group(s)")
		}
		want(t, got, "provider_key:good", doctor.StatusOK, "200 OK from 127.0.0.1:")
		want(t, got, "provider_key:wrong", doctor.StatusFail, "401 Unauthorized from 127.0.0.1:")
		want(t, got, "provider_key:wrong", doctor.StatusFail, "Incorrect API key provided: [key]. (invalid_api_key); hint: credentials: the upstream rejects the secret")
		want(t, got, "provider_key:refused", doctor.StatusFail, "no answer from 127.0.0.1:")
		want(t, got, "provider_key:refused", doctor.StatusFail, "connection refused; hint: wrong api_base: nothing listens at 127.0.0.1:")
		want(t, got, "provider_key:nomodel", doctor.StatusFail, "404 Not Found")
		want(t, got, "provider_key:nomodel", doctor.StatusFail, `hint: model name: the upstream has no model "gpt-nope"`)
		want(t, got, "model:nomodel-direct", doctor.StatusWarn, "no active caller key may call it")
		want(t, got, "model:wrong-direct", doctor.StatusWarn, "no active caller key may call it")
		for _, used := range []string{"model:chat", "model:good-direct", "model:refused-direct"} {
			if c, ok := got[used]; ok {
				t.Errorf("%s: %v, want no line: a caller key may call it", used, c)
			}
		}
		want(t, got, "apikey:off", doctor.StatusOK, "disabled")
		want(t, got, "apikey:soon", doctor.StatusWarn, "expires at ")
		want(t, got, "apikey:old", doctor.StatusWarn, "expired at ")
		want(t, got, "apikeys", doctor.StatusOK, "1 of 4 active")

		// Without the network nothing fails here; a secret that needs
		// entering again still does.
		got = checks(t, e, 0, "--no-network")
		want(t, got, "provider_key:wrong", doctor.StatusOK, "not tested (--no-network)")
		e.Must("", "provider-key", "update", "good", "--api-base", strings.Replace(base, "127.0.0.1", "localhost", 1))
		got = checks(t, e, 1, "--no-network")
		want(t, got, "provider_key:good", doctor.StatusFail, "secret_needs_reentry: the secret was entered for 127.0.0.1, not localhost")
		got = checks(t, e, 1)
		want(t, got, "provider_key:good", doctor.StatusFail, "401 Unauthorized")
		want(t, got, "provider_key:good", doctor.StatusFail, "hint: secret_needs_reentry: the secret was entered for 127.0.0.1, not localhost, so the request went without credentials")

		// The table: one line per check, a summary on a terminal.
		e.TTY = true
		r := e.Run("", "doctor", "--no-network")
		if r.Code != 1 || !strings.HasPrefix(r.Stdout, "CHECK ") || !strings.Contains(r.Stdout, "\n1 failed, ") {
			t.Errorf("table: exit %d\n%s", r.Code, r.Stdout)
		}
		e.TTY = false
		if r := e.Run("", "doctor", "--timeout", "1h"); r.Code != 2 {
			t.Errorf("--timeout 1h: exit %d %q", r.Code, r.Stderr)
		}
	})
}

func TestDoctorLocalStore(t *testing.T) {
	e := clitest.New(t)
	got := checks(t, e, 1, "--no-network")
	want(t, got, "store.schema", doctor.StatusFail, "no database at "+e.DB)
	if _, err := os.Stat(e.DB); !os.IsNotExist(err) {
		t.Errorf("doctor created the database: %v", err)
	}

	if err := sqlite.MigrateTo(context.Background(), e.DB, 3); err != nil {
		t.Fatal(err)
	}
	got = checks(t, e, 1, "--no-network")
	want(t, got, "store.schema", doctor.StatusFail, fmt.Sprintf("is at schema version 3, this aisix needs %d: run \"aisix migrate\"", sqlite.SchemaVersion))
	e.Must("", "migrate")

	if err := os.Chmod(e.DB, 0o644); err != nil {
		t.Fatal(err)
	}
	got = checks(t, e, 0, "--no-network")
	want(t, got, "store.schema", doctor.StatusOK, fmt.Sprintf("schema version %d", sqlite.SchemaVersion))
	want(t, got, "store.file_mode", doctor.StatusWarn, filepath.Base(e.DB)+" is 0644: other users can read the provider secrets")
	if fi, err := os.Stat(e.DB); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("doctor changed the file mode: %v %v", fi.Mode(), err)
	}
	want(t, got, "provider_keys", doctor.StatusWarn, "none")
	want(t, got, "apikeys", doctor.StatusWarn, "none")
}

// coolingStatus reports every model as cooling down.
type coolingStatus struct{}

func (coolingStatus) ModelStatus(string) health.Status {
	return health.Status{State: health.StateCooldown, CooldownUntil: time.Now().Add(time.Minute), Reason: "upstream_auth_failure"}
}

func TestDoctorServer(t *testing.T) {
	e := clitest.New(t)
	setup(t, e, fakeOpenAI(t))
	st, err := sqlite.Open(context.Background(), e.DB)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	rev, err := st.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dependencies := &deps.Set{}
	dependencies.Register("store", func() deps.State { return deps.State{Status: deps.StatusOK, Revision: rev - 1} })
	dependencies.Register("redis", func() deps.State {
		return deps.State{Status: deps.StatusUnreachable, Since: time.Date(2026, 12, 2, 5, 12, 3, 0, time.UTC),
			Impact: "limits counted per replica, cooldowns local"}
	})
	srv := httptest.NewServer(admin.New(admin.Config{
		Store: st, Keys: []string{clitest.AdminKey}, Status: coolingStatus{}, Version: "9.9.9",
		StartedAt:      time.Now().Add(-90 * time.Minute),
		ConfigRevision: func() int64 { return rev - 1 },
		ConfigErrors: func() []admin.ConfigError {
			return []admin.ConfigError{{Kind: "model", ID: "m1", Name: "broken", Reason: "retries: must be between 0 and 10"}}
		},
		Deps: dependencies,
	}))
	t.Cleanup(srv.Close)
	e.Server = srv.URL

	got := checks(t, e, 1, "--no-network")
	want(t, got, "server.info", doctor.StatusOK, "aisix 9.9.9 at "+srv.URL+", up 1h30m")
	want(t, got, "server.revision", doctor.StatusWarn, "recent writes are not live yet")
	want(t, got, "server.config_error", doctor.StatusWarn, "model broken: retries: must be between 0 and 10")
	want(t, got, "dependency:store", doctor.StatusOK, "store ok")
	want(t, got, "dependency:redis", doctor.StatusWarn, "redis unreachable since 2026-12-02T05:12:03Z (limits counted per replica, cooldowns local)")
	want(t, got, "routing:chat", doctor.StatusFail, "every target is cooling down: good-direct (upstream_auth_failure), refused-direct (upstream_auth_failure)")

	e.Server = "http://" + closedPort(t)
	got = checks(t, e, 1)
	want(t, got, "server.info", doctor.StatusFail, "cannot reach aisix admin API at "+e.Server)
}

// TestDoctorEncrypted: local-mode doctor tests provider keys whose
// secrets are encrypted at rest with the configured key.
func TestDoctorEncrypted(t *testing.T) {
	base := fakeOpenAI(t)
	e := clitest.New(t)
	keyFile := filepath.Join(t.TempDir(), "secret.key")
	e.Must("", "secrets", "init", "--key-file", keyFile)
	e.Vars = map[string]string{"AISIX_SECRET_KEY_FILE": keyFile}
	setup(t, e, base)
	got := checks(t, e, 1)
	want(t, got, "provider_key:good", doctor.StatusOK, "200 OK from 127.0.0.1:")
	want(t, got, "provider_key:wrong", doctor.StatusFail, "401 Unauthorized")
}
