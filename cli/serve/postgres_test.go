package serve

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage/postgres/pgtest"
	"github.com/aisix/aisix/storage/secrets"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testSecretKey is the key (hex) serve encrypts provider secrets with in
// these tests.
const testSecretKey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// TestServeOnPostgresNeedsAKey: without a secret key serve refuses to
// start on PostgreSQL, with one line that says how to make one.
func TestServeOnPostgresNeedsAKey(t *testing.T) {
	c := testConfig(t)
	c.DB, c.AdminKey = pgtest.NewDatabase(t), "test-admin-key-pg"
	c.Metrics.Addr = ""
	var logs strings.Builder
	err := Run(t.Context(), c, &logs, "test")
	if err == nil || !strings.Contains(err.Error(), "aisix secrets init") || !strings.Contains(err.Error(), "AISIX_SECRET_KEY") ||
		strings.Contains(err.Error(), "\n") {
		t.Fatalf("Run = %v, want one line saying to run aisix secrets init", err)
	}
}

// TestServeOnPostgres: two serve replicas on one PostgreSQL database. A
// model written through the first one's admin API is served by the second
// one's proxy, picked up by its change notification, and the log names
// the database without its password.
func TestServeOnPostgres(t *testing.T) {
	url := pgtest.NewDatabase(t)
	up := proxytest.New("pg-upstream", proxytest.OK())
	t.Cleanup(up.Close)

	type replica struct{ proxy, admin string }
	start := func() (replica, *syncBuffer) {
		c := testConfig(t)
		c.DB, c.AdminKey = url, "test-admin-key-pg"
		c.Secrets = secrets.Sources{Key: testSecretKey}
		c.ReloadInterval = time.Hour // only the notification can bring the change in time
		r := replica{proxy: freeAddr(t), admin: freeAddr(t)}
		c.ProxyAddr, c.AdminAddr = r.proxy, r.admin
		c.Metrics.Addr = ""
		logs := startServe(t, c)
		return r, logs
	}
	r1, logs := start()
	r2, _ := start()
	if strings.Contains(logs.String(), "password") || !strings.Contains(logs.String(), `"db":"postgres`) {
		t.Errorf("start line does not name the database as expected:\n%s", logs.String())
	}

	admin := func(r replica, method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+r.admin+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer test-admin-key-pg")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	create := func(path, body string) string {
		t.Helper()
		code, b := admin(r1, http.MethodPost, path, body)
		if code != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, code, b)
		}
		var e struct{ ID string }
		_ = json.Unmarshal(b, &e)
		return e.ID
	}
	pk := create("/admin/v1/provider_keys", fmt.Sprintf(`{"display_name":"pk","provider":"openai","adapter":"openai","secret":"sk-pg-test-0000000001","api_base":%q}`, up.BaseURL()))
	create("/admin/v1/models", fmt.Sprintf(`{"display_name":"gpt-pg","provider":"openai","model_name":"gpt-4o-mini","provider_key_id":%q}`, pk))
	create("/admin/v1/apikeys", fmt.Sprintf(`{"key_hash":%q,"allowed_models":["*"]}`, proxytest.KeyHash("sk-pg-caller")))

	// Replica 2 serves the model within a few seconds (its revision poll
	// is an hour: only the notification can do it).
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest(http.MethodPost, "http://"+r2.proxy+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-pg","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-pg-caller")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK && resp.Header.Get("X-Aisix-Served-By") == "gpt-pg" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica 2 never served the model written through replica 1: %d %s", resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond) // polling another server's reload
	}
}
