package e2e

// Issue 9: configuration that cannot hurt. Caller headers reach upstreams by
// an allowlist, a secret only goes to the host it was entered for, api_base
// is checked, a bad stored row degrades one model instead of the server,
// caller keys follow model ids, and the store file is private.

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestConfigHeaderAllowlist: caller headers reach the upstream by an allowlist.
func TestConfigHeaderAllowlist(t *testing.T) {
	primary := newUpstream(t, "primary", "", okReply("primary"))
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	tu := setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

	sent := http.Header{
		"X-Forwarded-For":      {"203.0.113.7"},
		"Idempotency-Key":      {"idem-0001"},
		"Api-Key":              {"caller-azure-key"},
		"X-Goog-Api-Key":       {"caller-goog-key"},
		"Anthropic-Version":    {"2023-06-01"},
		"X-Amz-Security-Token": {"caller-amz-token"},
		"Openai-Organization":  {"org-caller0001"},
	}
	call := func(t *testing.T) *upstreamCall {
		t.Helper()
		a := g.mustChat(t, callerKey, chatBody("chat-prod", false), sent, 30*time.Second)
		if a.status != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
		return primary.next(t, 10*time.Second)
	}
	checkAuth := func(t *testing.T, c *upstreamCall) {
		t.Helper()
		if got := c.header.Get("Authorization"); got != "Bearer "+primarySecret {
			t.Errorf("upstream Authorization %q, want the provider secret", got)
		}
		for k, vs := range c.header {
			for _, v := range vs {
				if strings.Contains(v, callerKey) {
					t.Errorf("the caller's key reached the upstream in %s", k)
				}
			}
		}
	}

	t.Run("none of the caller's provider-ish headers reach the upstream", func(t *testing.T) {
		c := call(t)
		for k := range sent {
			if v := c.header.Values(k); len(v) > 0 {
				t.Errorf("caller header %s reached the upstream: %q", k, v)
			}
		}
		checkAuth(t, c)
	})

	t.Run("forward_headers lets one named header through", func(t *testing.T) {
		g.mustAdmin(t, http.MethodPut, "/admin/v1/provider_keys/"+tu.primaryPK, map[string]any{
			"display_name": "openai-primary", "provider": "openai", "adapter": "openai",
			"api_base": primary.base, "forward_headers": []string{"Idempotency-Key"},
		}, http.StatusOK)
		c := call(t)
		if got := c.header.Get("Idempotency-Key"); got != "idem-0001" {
			t.Errorf("Idempotency-Key at the upstream %q, want idem-0001", got)
		}
		for k := range sent {
			if k == "Idempotency-Key" {
				continue
			}
			if v := c.header.Values(k); len(v) > 0 {
				t.Errorf("caller header %s reached the upstream: %q", k, v)
			}
		}
		checkAuth(t, c)
	})
}

// field finds a field of an admin entry in its value, else beside it.
func field(t testing.TB, entry map[string]any, name string) any {
	t.Helper()
	if v, ok := entry["value"].(map[string]any); ok {
		if f, ok := v[name]; ok {
			return f
		}
	}
	return entry[name]
}

// TestConfigSecretBoundToHost: a provider secret is only ever sent to the host it
// was entered for; moving api_base to another host does not take it along.
func TestConfigSecretBoundToHost(t *testing.T) {
	up1 := newUpstream(t, "upstream-1", "127.0.0.1", okReply("upstream-1"))
	up2 := newUpstream(t, "upstream-2", "127.0.0.2", okReply("upstream-2"))
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	tu := setupTutorial(t, g, up1.base, secondary.base, fastTimeouts)
	chat := func(t *testing.T) {
		t.Helper()
		if a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second); a.status != http.StatusOK {
			t.Fatalf("status %d: %s", a.status, a.body)
		}
	}
	put := func(t *testing.T, base string) {
		t.Helper()
		g.mustAdmin(t, http.MethodPut, "/admin/v1/provider_keys/"+tu.primaryPK, map[string]any{
			"display_name": "openai-primary", "provider": "openai", "adapter": "openai", "api_base": base,
		}, http.StatusOK)
	}

	chat(t)
	if got := up1.next(t, 10*time.Second).header.Get("Authorization"); got != "Bearer "+primarySecret {
		t.Fatalf("upstream 1 got Authorization %q before the move", got)
	}

	t.Run("moved to another host without a secret: no credential goes there", func(t *testing.T) {
		put(t, up2.base)
		chat(t)
		c := up2.next(t, 10*time.Second)
		if got := c.header.Get("Authorization"); got != "" {
			t.Errorf("upstream 2 on another host got Authorization %q, want none", got)
		}
		for k, vs := range c.header {
			for _, v := range vs {
				if strings.Contains(v, primarySecret) {
					t.Errorf("the secret reached another host in %s", k)
				}
			}
		}
	})

	t.Run("the key and its models say the secret needs re-entry", func(t *testing.T) {
		pk := g.mustAdmin(t, http.MethodGet, "/admin/v1/provider_keys/"+tu.primaryPK, nil, http.StatusOK)
		if v := field(t, pk, "secret_needs_reentry"); v != true {
			t.Errorf("secret_needs_reentry = %v, want true: %v", v, pk)
		}
		if v := field(t, pk, "secret_host"); v != "127.0.0.1" {
			t.Errorf("secret_host = %v, want 127.0.0.1: %v", v, pk)
		}
		if row := g.status(t, "gpt-4o-primary"); !row.SecretNeedsReentry {
			t.Errorf("models/status: gpt-4o-primary has no secret_needs_reentry: %s", row.raw)
		}
		if row := g.status(t, "gpt-4o-secondary"); row.SecretNeedsReentry {
			t.Errorf("models/status: gpt-4o-secondary says secret_needs_reentry: %s", row.raw)
		}
	})

	t.Run("moved back: the secret is sent again", func(t *testing.T) {
		put(t, up1.base)
		chat(t)
		if got := up1.next(t, 10*time.Second).header.Get("Authorization"); got != "Bearer "+primarySecret {
			t.Errorf("upstream 1 got Authorization %q after moving back", got)
		}
		pk := g.mustAdmin(t, http.MethodGet, "/admin/v1/provider_keys/"+tu.primaryPK, nil, http.StatusOK)
		if v := field(t, pk, "secret_needs_reentry"); v == true {
			t.Errorf("secret_needs_reentry still true after moving back: %v", pk)
		}
	})
}

// TestConfigDisabledAndExpiredKeys: a disabled key and an expired key get the same
// 401, so a caller cannot tell which it holds.
func TestConfigDisabledAndExpiredKeys(t *testing.T) {
	up := newUpstream(t, "up", "", okReply("up"))
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, up.base, up.base, fastTimeouts)
	g.create(t, "apikeys", map[string]any{"key_hash": sha256Hex("sk-disabled-0001"), "allowed_models": []string{"chat-prod"}, "disabled": true})
	g.create(t, "apikeys", map[string]any{"key_hash": sha256Hex("sk-expired-00001"), "allowed_models": []string{"chat-prod"}, "expires_at": "2001-01-01T00:00:00Z"})

	disabled := g.mustChat(t, "sk-disabled-0001", chatBody("chat-prod", false), nil, 30*time.Second)
	expired := g.mustChat(t, "sk-expired-00001", chatBody("chat-prod", false), nil, 30*time.Second)
	if disabled.status != http.StatusUnauthorized || expired.status != http.StatusUnauthorized {
		t.Fatalf("statuses %d and %d, want 401 for both", disabled.status, expired.status)
	}
	dm, dt, _, _ := disabled.envelope(t)
	em, et, _, _ := expired.envelope(t)
	if dm != em || dt != et {
		t.Errorf("disabled key: %q (%s); expired key: %q (%s); want the same", dm, dt, em, et)
	}
}

// TestConfigAPIBaseValidation: api_base is a plain base URL; credentials in it,
// a query or a fragment are refused without echoing the password, and the
// cloud metadata address never gets a secret.
func TestConfigAPIBaseValidation(t *testing.T) {
	up := newUpstream(t, "up", "", okReply("up"))
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	tu := setupTutorial(t, g, up.base, secondary.base, fastTimeouts)

	for _, tc := range []struct{ name, base string }{
		{"userinfo", "https://user:pass@api.example.com/v1"},
		{"query", "https://api.example.com/v1?x=1"},
		{"fragment", "https://api.example.com/v1#frag"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			for _, w := range []struct{ method, path, name string }{
				{http.MethodPost, "/admin/v1/provider_keys", "bad-" + tc.name},
				{http.MethodPut, "/admin/v1/provider_keys/" + tu.primaryPK, "openai-primary"},
			} {
				status, body := g.adminDo(t, w.method, w.path, map[string]any{
					"display_name": w.name, "provider": "openai", "adapter": "openai",
					"secret": "sk-bad-base-secret-0001", "api_base": tc.base,
				})
				var e struct {
					ErrorMsg string `json:"error_msg"`
				}
				_ = json.Unmarshal(body, &e)
				if status != http.StatusBadRequest || e.ErrorMsg == "" {
					t.Errorf("%s %s: status %d, want 400 with error_msg: %s", w.method, w.path, status, body)
					continue
				}
				if !strings.Contains(e.ErrorMsg, "api_base") {
					t.Errorf("%s: error_msg %q does not name api_base", w.method, e.ErrorMsg)
				}
				if strings.Contains(string(body), "pass") {
					t.Errorf("%s: the error echoes the password: %s", w.method, body)
				}
			}
		})
	}

	t.Run("169.254.169.254 never gets the secret", func(t *testing.T) {
		status, body := g.adminDo(t, http.MethodPost, "/admin/v1/provider_keys", map[string]any{
			"display_name": "metadata", "provider": "openai", "adapter": "openai",
			"secret": "sk-metadata-secret-0001", "api_base": "http://169.254.169.254/v1",
		})
		if status == http.StatusBadRequest {
			if !strings.Contains(string(body), "api_base") {
				t.Errorf("refused without naming api_base: %s", body)
			}
			return
		}
		if status != http.StatusCreated {
			t.Fatalf("status %d: %s", status, body)
		}
		var e struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &e)
		// Accepted: then the model on it must answer a configuration error
		// without any connection attempt, and a group skip it.
		g.create(t, "models", map[string]any{"display_name": "gpt-4o-metadata", "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": e.ID})
		g.create(t, "models", map[string]any{"display_name": "chat-metadata", "routing": map[string]any{
			"targets": []map[string]any{{"model": "gpt-4o-metadata"}, {"model": "gpt-4o-secondary"}}, "max_fallbacks": 1,
		}})
		g.createCallerKey(t, "sk-metadata-caller-01", "gpt-4o-metadata", "chat-metadata")

		direct := g.mustChat(t, "sk-metadata-caller-01", chatBody("gpt-4o-metadata", false), nil, 30*time.Second)
		if direct.status < 400 {
			t.Errorf("the model on 169.254.169.254 answered %d", direct.status)
		}
		if got := direct.header.Get("X-Aisix-Attempts"); !strings.Contains(got, "config_error") {
			t.Errorf("direct call: x-aisix-attempts %q, want a config_error (no connection attempt): %s", got, direct.body)
		}
		// A target known to be unusable is planned last, so the group is
		// served by the secondary without trying it; if it is tried, it
		// is a config_error, never a connection.
		group := g.mustChat(t, "sk-metadata-caller-01", chatBody("chat-metadata", false), nil, 30*time.Second)
		if got := group.header.Get("X-Aisix-Attempts"); group.status != http.StatusOK ||
			(got != "gpt-4o-secondary=200" && got != "gpt-4o-metadata=config_error,gpt-4o-secondary=200") {
			t.Errorf("group: status %d attempts %q, want the metadata target never sent to", group.status, got)
		}
	})
}

// corruptModel writes an invalid spec for the model named name straight
// into the SQLite file, as a broken migration or a hand edit would, and
// bumps the store revision so the running serve reloads.
func corruptModel(t testing.TB, db, name string) {
	t.Helper()
	conn, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var rev int64
	if err := tx.QueryRowContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision' RETURNING value`).Scan(&rev); err != nil {
		t.Fatal(err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE models SET spec = '{"model_name":"gpt-4o-mini","timeout":"soon"}', revision = ? WHERE display_name = ?`, rev, name)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("no model row %q", name)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestConfigBadRowDegrades: one unreadable stored row takes out that model only.
func TestConfigBadRowDegrades(t *testing.T) {
	primary := newUpstream(t, "primary", "", okReply("primary"))
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)
	g.createCallerKey(t, "sk-degrade-caller-01", "chat-prod", "gpt-4o-secondary")

	corruptModel(t, g.db, "gpt-4o-primary")
	if err := waitSync(g.admin, adminKey); err != nil {
		t.Fatalf("serve did not take the store with the bad row: %v", err)
	}

	serves := func(t *testing.T) {
		t.Helper()
		if a := g.mustChat(t, "sk-degrade-caller-01", chatBody("gpt-4o-secondary", false), nil, 30*time.Second); a.status != http.StatusOK {
			t.Errorf("gpt-4o-secondary: status %d: %s", a.status, a.body)
		}
		a := g.mustChat(t, "sk-degrade-caller-01", chatBody("chat-prod", false), nil, 30*time.Second)
		if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
			t.Errorf("chat-prod: status %d served by %q, want 200 from gpt-4o-secondary: %s", a.status, a.header.Get("X-Aisix-Served-By"), a.body)
		}
	}
	listsError := func(t *testing.T) {
		t.Helper()
		var info struct {
			ConfigErrors []json.RawMessage `json:"config_errors"`
		}
		_, body := g.adminDo(t, http.MethodGet, "/admin/v1/info", nil)
		if err := json.Unmarshal(body, &info); err != nil {
			t.Fatalf("info: %v: %s", err, body)
		}
		for _, raw := range info.ConfigErrors {
			var e struct {
				Name   string `json:"name"`
				Reason string `json:"reason"`
			}
			if json.Unmarshal(raw, &e) == nil && e.Name == "gpt-4o-primary" && e.Reason != "" {
				return
			}
		}
		t.Errorf("GET /admin/v1/info lists no config_errors entry for gpt-4o-primary with a reason: %s", body)
	}

	t.Run("every other model is served", serves)
	t.Run("info lists the bad row", listsError)
	t.Run("serve restarts on the same store", func(t *testing.T) {
		g.restart(t)
		serves(t)
		listsError(t)
	})
}

// TestConfigAllowedModelsFollowIDs: a caller key's access follows the model
// through a rename and does not pass to a new model reusing a deleted name.
func TestConfigAllowedModelsFollowIDs(t *testing.T) {
	up := newUpstream(t, "up", "", okReply("up"))
	g := startGateway(t, serveOptions{})
	tu := setupTutorial(t, g, up.base, up.base, fastTimeouts)
	routing := map[string]any{"strategy": "failover", "targets": []map[string]any{{"model": "gpt-4o-primary"}, {"model": "gpt-4o-secondary"}}, "retries": 1, "max_fallbacks": 1}

	t.Run("rename keeps access", func(t *testing.T) {
		g.mustAdmin(t, http.MethodPut, "/admin/v1/models/"+tu.chat, map[string]any{"display_name": "chat-main", "routing": routing}, http.StatusOK)
		if a := g.mustChat(t, callerKey, chatBody("chat-main", false), nil, 30*time.Second); a.status != http.StatusOK {
			t.Errorf("chat-main after the rename: status %d: %s", a.status, a.body)
		}
	})
	t.Run("a new model with a deleted one's name is not granted", func(t *testing.T) {
		g.mustAdmin(t, http.MethodDelete, "/admin/v1/models/"+tu.chat, nil, http.StatusOK)
		g.create(t, "models", map[string]any{"display_name": "chat-main", "routing": routing})
		if a := g.mustChat(t, callerKey, chatBody("chat-main", false), nil, 30*time.Second); a.status != http.StatusForbidden {
			t.Errorf("the new chat-main: status %d, want 403: %s", a.status, a.body)
		}
	})
}

// TestConfigStoreFileMode: the SQLite file holds provider secrets: serve keeps it
// 0600, and says so when it finds it more open.
func TestConfigStoreFileMode(t *testing.T) {
	g := startGateway(t, serveOptions{})
	mode := func() os.FileMode {
		st, err := os.Stat(g.db)
		if err != nil {
			t.Fatal(err)
		}
		return st.Mode().Perm()
	}
	if m := mode(); m != 0o600 {
		t.Errorf("a new store is %04o, want 0600", m)
	}
	g.stop()
	if err := os.Chmod(g.db, 0o644); err != nil {
		t.Fatal(err)
	}
	before := len(g.log.lines())
	g.restart(t)
	if m := mode(); m != 0o600 {
		t.Errorf("after a restart on a 0644 store it is %04o, want 0600", m)
	}
	warned := false
	for _, l := range g.log.lines()[before:] {
		m := jsonLine(l)
		low := strings.ToLower(l)
		if m != nil && m["level"] == "WARN" && (strings.Contains(low, "0644") || strings.Contains(low, "mode") || strings.Contains(low, "permission")) {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning about the store's file mode in the log:\n%s", tail(g.log.String(), 3000))
	}
}

// wantDefaults is the "effective" object of a direct model with no timeout.
var wantDefaults = map[string]float64{
	"timeout_ms":                    300000,
	"stream_header_timeout_ms":      30000,
	"stream_first_chunk_timeout_ms": 60000,
	"stream_idle_timeout_ms":        20000,
	"connect_timeout_ms":            5000,
}

// effectiveOf finds the "effective" object of an admin entry: beside the
// value (preferred) or inside it.
func effectiveOf(t testing.TB, entry []byte) map[string]any {
	t.Helper()
	var e struct {
		Effective map[string]any `json:"effective"`
		Value     struct {
			Effective map[string]any `json:"effective"`
		} `json:"value"`
	}
	if err := json.Unmarshal(entry, &e); err != nil {
		t.Fatalf("not an entry: %v: %s", err, entry)
	}
	if e.Effective != nil {
		return e.Effective
	}
	if e.Value.Effective == nil {
		t.Fatalf("no \"effective\" object in %s", entry)
	}
	return e.Value.Effective
}

func checkEffective(t testing.TB, eff map[string]any, want map[string]float64) {
	t.Helper()
	for k, v := range want {
		if got, ok := eff[k].(float64); !ok || got != v {
			t.Errorf("effective.%s = %v, want %v (effective: %v)", k, eff[k], v, eff)
		}
	}
}

// TestConfigEffectiveTimeouts: the defaults the proxy enforces are visible, so
// nobody has to guess them (the 300 s default itself cannot be waited out).
func TestConfigEffectiveTimeouts(t *testing.T) {
	up := newUpstream(t, "up", "", okReply("up"))
	g := startGateway(t, serveOptions{})
	tu := setupTutorial(t, g, up.base, up.base, tutorialConfig{})
	streamOnly := g.create(t, "models", map[string]any{"display_name": "stream-timeout-only", "provider": "openai",
		"model_name": "gpt-4o-mini", "provider_key_id": tu.primaryPK, "stream_timeout": 1500})
	timeoutOnly := g.create(t, "models", map[string]any{"display_name": "timeout-only", "provider": "openai",
		"model_name": "gpt-4o-mini", "provider_key_id": tu.primaryPK, "timeout": 1000})

	get := func(t *testing.T, id string) []byte {
		code, body := g.adminDo(t, http.MethodGet, "/admin/v1/models/"+id, nil)
		if code != http.StatusOK {
			t.Fatalf("GET model: %d %s", code, body)
		}
		return body
	}
	t.Run("admin API shows the defaults of a model with no timeout", func(t *testing.T) {
		checkEffective(t, effectiveOf(t, get(t, tu.primary)), wantDefaults)
	})
	t.Run("aisix model get -o json shows the same effective object", func(t *testing.T) {
		api := effectiveOf(t, get(t, tu.primary))
		cli := effectiveOf(t, []byte(g.run(t, "model", "get", "gpt-4o-primary", "-o", "json")))
		checkEffective(t, cli, wantDefaults)
		if !reflect.DeepEqual(api, cli) {
			t.Errorf("CLI effective %v differs from the admin API's %v", cli, api)
		}
	})
	t.Run("stream_timeout bounds headers, first chunk and gaps", func(t *testing.T) {
		checkEffective(t, effectiveOf(t, get(t, streamOnly)), map[string]float64{
			"timeout_ms": 300000, "stream_header_timeout_ms": 1500, "stream_first_chunk_timeout_ms": 1500,
			"stream_idle_timeout_ms": 1500, "connect_timeout_ms": 5000,
		})
	})
	t.Run("timeout alone also bounds the stream", func(t *testing.T) {
		checkEffective(t, effectiveOf(t, get(t, timeoutOnly)), map[string]float64{
			"timeout_ms": 1000, "stream_header_timeout_ms": 1000, "stream_first_chunk_timeout_ms": 1000,
			"stream_idle_timeout_ms": 1000, "connect_timeout_ms": 5000,
		})
	})
}
