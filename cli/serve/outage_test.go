package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/postgres/pgtest"
)

// TestServeSurvivesPostgresOutage: serve on a PostgreSQL server of the
// test's own, which the test halts and restarts. While the database is
// away the replica keeps answering proxied requests from its last
// snapshot, stays ready, and says the store is unreachable in /readyz
// (both listeners), GET /admin/v1/info and aisix_dependency_up; it logs
// the loss once and the return once. After the restart it reports the
// store ok again and serves a model written by another process (as the
// CLI in local mode writes), without an admin call to reload it.
func TestServeSurvivesPostgresOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and restarts a PostgreSQL server")
	}
	ctx := context.Background()
	srv, err := pgtest.Start(ctx)
	if errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v (install the postgresql package)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	url, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	up := proxytest.New("outage-upstream", proxytest.OK())
	t.Cleanup(up.Close)

	c := testConfig(t)
	c.DB, c.AdminKey = url, "test-admin-key-outage"
	c.ReloadInterval = 250 * time.Millisecond // serve's default
	proxyAddr, adminAddr, metricsAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	c.ProxyAddr, c.AdminAddr, c.Metrics.Addr = proxyAddr, adminAddr, metricsAddr
	logs := &syncBuffer{ch: make(chan struct{}, 1)}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(runCtx, c, logs, "test") }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	})
	logs.waitFor(t, `"msg":"aisix started"`)

	get := func(u string, header ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	adminPost := func(path, body string) string {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+adminAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+c.AdminKey)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, b)
		}
		var e struct{ ID string }
		_ = json.Unmarshal(b, &e)
		return e.ID
	}
	chat := func(model string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, "http://"+proxyAddr+"/v1/chat/completions",
			strings.NewReader(fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}]}`, model)))
		req.Header.Set("Authorization", "Bearer sk-outage-caller")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Aisix-Served-By") + " " + string(b)
	}
	// within polls cond every 20 ms (another server's timers) for at most
	// bound, and returns how long it took.
	within := func(what string, bound time.Duration, cond func() bool) time.Duration {
		t.Helper()
		began := time.Now()
		for !cond() {
			if time.Since(began) > bound {
				t.Fatalf("%s: not within %v", what, bound)
			}
			time.Sleep(20 * time.Millisecond)
		}
		return time.Since(began)
	}
	storeUp := func() string {
		t.Helper()
		_, body := get("http://" + metricsAddr + "/metrics")
		for _, l := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(l, `aisix_dependency_up{dependency="store"} `); ok {
				return v
			}
		}
		return "absent"
	}

	pk := adminPost("/admin/v1/provider_keys", fmt.Sprintf(`{"display_name":"pk","provider":"openai","adapter":"openai","secret":"sk-outage-0000000001","api_base":%q}`, up.BaseURL()))
	adminPost("/admin/v1/models", fmt.Sprintf(`{"display_name":"gpt-before","provider":"openai","model_name":"gpt-4o-mini","provider_key_id":%q}`, pk))
	adminPost("/admin/v1/apikeys", fmt.Sprintf(`{"key_hash":%q,"allowed_models":["*"]}`, proxytest.KeyHash("sk-outage-caller")))
	if code, body := chat("gpt-before"); code != http.StatusOK {
		t.Fatalf("before the outage: %d %s", code, body)
	}
	if got := storeUp(); got != "1" {
		t.Fatalf("aisix_dependency_up{store} before the outage: %s", got)
	}
	_, info := get("http://"+adminAddr+"/admin/v1/info", "Authorization", "Bearer "+c.AdminKey)
	var before struct {
		ConfigRevision int64 `json:"config_revision"`
	}
	_ = json.Unmarshal([]byte(info), &before)

	// The database goes away.
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	haltedAt := time.Now()
	noticed := within("/readyz reports the store unreachable", 15*time.Second, func() bool {
		code, body := get("http://" + proxyAddr + "/readyz")
		if code != http.StatusOK {
			t.Fatalf("proxy /readyz while the database is away: %d %s", code, body)
		}
		return strings.Contains(body, "[-]store unreachable since")
	})
	t.Logf("the loss of the store reported %v after the halt", noticed.Round(time.Millisecond))
	code, body := get("http://" + proxyAddr + "/readyz?verbose")
	wantTail := fmt.Sprintf("(serving revision %d)", before.ConfigRevision)
	if code != http.StatusOK || !strings.HasPrefix(body, "ok\n[+]snapshot ok") || !strings.Contains(body, wantTail) {
		t.Errorf("proxy /readyz?verbose while down: %d\n%s", code, body)
	}
	if code, body := get("http://"+adminAddr+"/readyz", "Accept", "application/json"); code != http.StatusOK ||
		!strings.Contains(body, `"name":"store","status":"unreachable"`) {
		t.Errorf("admin /readyz (JSON) while down: %d %s", code, body)
	}
	code, info = get("http://"+adminAddr+"/admin/v1/info", "Authorization", "Bearer "+c.AdminKey)
	if code != http.StatusOK || !strings.Contains(info, `"dependencies":[{"name":"store","status":"unreachable"`) {
		t.Errorf("admin info while down: %d %s", code, info)
	}
	if strings.Contains(info, "password") {
		t.Errorf("info names a password: %s", info)
	}
	if got := storeUp(); got != "0" {
		t.Errorf("aisix_dependency_up{store} while down: %s, want 0", got)
	}
	for range 20 {
		if code, body := chat("gpt-before"); code != http.StatusOK {
			t.Fatalf("proxied request while the database is away: %d %s", code, body)
		}
	}
	// Long enough down for the probes to back off to a few seconds.
	within("the outage lasts 3 s", 10*time.Second, func() bool { return time.Since(haltedAt) > 3*time.Second })

	// It comes back; another process writes a model straight to it.
	if err := srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	restartedAt := time.Now()
	other, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.CreateModel(ctx, storage.Model{DisplayName: "gpt-after", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk}); err != nil {
		t.Fatal(err)
	}
	wroteAt := time.Now()
	served := within("the model written after the restart is served", 20*time.Second, func() bool {
		code, _ := chat("gpt-after")
		return code == http.StatusOK
	})
	ok := within("/readyz reports the store ok", 20*time.Second, func() bool {
		code, body := get("http://" + proxyAddr + "/readyz")
		return code == http.StatusOK && body == "ok\n"
	})
	t.Logf("catch-up: the write made %v after the restart served %v after it (%v after the restart); store ok by then +%v",
		wroteAt.Sub(restartedAt).Round(time.Millisecond), served.Round(time.Millisecond),
		time.Since(restartedAt).Round(time.Millisecond)-ok, ok.Round(time.Millisecond))
	if got := storeUp(); got != "1" {
		t.Errorf("aisix_dependency_up{store} after the restart: %s, want 1", got)
	}
	out := logs.String()
	if n := strings.Count(out, `"msg":"store unreachable`); n != 1 {
		t.Errorf("the loss logged %d times, want once:\n%s", n, out)
	}
	if n := strings.Count(out, `"msg":"store reachable again"`); n != 1 {
		t.Errorf("the return logged %d times, want once:\n%s", n, out)
	}
	// Apart from start-up's about provider secrets, the loss is the one
	// warning: no line per poll, per probe or per dashboard read.
	var warns []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"level":"WARN"`) && !strings.Contains(l, "provider secrets") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 1 {
		t.Errorf("%d warnings, want 1 (the loss):\n%s", len(warns), strings.Join(warns, "\n"))
	}
}
