package e2e

// Three replicas of the real binary on one PostgreSQL (and, further down,
// one Redis): what a team running aisix behind a load balancer relies on.
// Each drill synchronises on what the replicas answer, bounded generously;
// the convergence figures are logged (go test -v -run TestReplicas), not
// asserted, beyond a bound no healthy replica comes near.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/limit/redisstore/redistest"
	"github.com/aisix/aisix/storage/postgres/pgtest"
)

// startPostgres starts a PostgreSQL server of the test's own (the drills
// stop and restart it) and returns it with the URL of a fresh database. It
// skips the test when the binaries are missing, unless CI is set.
func startPostgres(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv, err := pgtest.Start(context.Background())
	if errors.Is(err, pgtest.ErrNotInstalled) && os.Getenv("CI") == "" {
		t.Skipf("skipping: %v (install the postgresql package)", err)
	}
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(func() { _ = srv.Stop() })
	url, err := srv.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv, url
}

// replicaEnv is what every replica (and the CLI on their database) is
// given: a shared PostgreSQL holds provider secrets only encrypted.
var replicaEnv = []string{"AISIX_SECRET_KEY=" + strings.Repeat("5e", 32)}

// models lists the aliases GET /v1/models gives key, with the status.
func (g *gateway) models(ctx context.Context, key string) (int, []string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.proxy+"/v1/models", nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := g.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil, nil
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		return resp.StatusCode, nil, err
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	return resp.StatusCode, ids, nil
}

// waitKey polls g until the caller key key is accepted and returns how long
// after since that was. It fails the test after bound.
func (g *gateway) waitKey(t testing.TB, key string, since time.Time, bound time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	for {
		code, _, err := g.models(ctx, key)
		if code == http.StatusOK {
			return time.Since(since)
		}
		if ctx.Err() != nil {
			t.Fatalf("replica %s did not accept a new caller key within %v (last: %d %v)", g.proxy, bound, code, err)
		}
		time.Sleep(2 * time.Millisecond) // polling another process
	}
}

// percentile is the p-th percentile (0-100) of ds, which it sorts.
func percentile(ds []time.Duration, p int) time.Duration {
	slices.Sort(ds)
	i := (len(ds)*p + 99) / 100
	return ds[max(0, min(len(ds)-1, i-1))]
}

// chatOK sends a chat-prod request through g and fails unless it is a 200;
// it returns the target that served it.
func chatOK(t testing.TB, g *gateway, key string) string {
	t.Helper()
	a := g.mustChat(t, key, chatBody("chat-prod", false), nil, 30*time.Second)
	if a.status != http.StatusOK {
		t.Fatalf("replica %s: chat-prod answered %d: %s", g.proxy, a.status, a.body)
	}
	return a.header.Get("x-aisix-served-by")
}

func TestReplicasOnPostgres(t *testing.T) {
	_, url := startPostgres(t)
	primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(completion("hello from the primary"))
	})
	secondary := newUpstream(t, "secondary", "", func(w http.ResponseWriter, c *upstreamCall) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(completion("hello from the secondary"))
	})
	replicas := make([]*gateway, 3)
	for i := range replicas {
		replicas[i] = startGateway(t, serveOptions{db: url, env: replicaEnv})
	}
	one := replicas[0]
	setupTutorial(t, one, primary.base, secondary.base, fastTimeouts)
	for _, g := range replicas {
		g.waitKey(t, callerKey, time.Now(), 10*time.Second)
		if by := chatOK(t, g, callerKey); by != "gpt-4o-primary" {
			t.Fatalf("replica %s: served by %q, want gpt-4o-primary", g.proxy, by)
		}
	}

	t.Run("writes converge", func(t *testing.T) {
		// Each write is a new caller key through replica 1's admin API;
		// replicas 2 and 3 are polled until they accept it.
		const writes = 100
		var lags []time.Duration
		for i := range writes {
			key := fmt.Sprintf("sk-converge-%03d", i)
			one.createCallerKey(t, key, "chat-prod")
			written := time.Now()
			var wg sync.WaitGroup
			got := make([]time.Duration, 2)
			for j, g := range replicas[1:] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[j] = g.waitKey(t, key, written, 10*time.Second)
				}()
			}
			wg.Wait()
			lags = append(lags, got...)
		}
		p50, p99, worst := percentile(lags, 50), percentile(lags, 99), percentile(lags, 100)
		t.Logf("convergence over %d writes seen by 2 replicas: p50 %v, p99 %v, max %v", writes, p50, p99, worst)
		if p99 > time.Second {
			t.Errorf("p99 convergence %v is over 1 s", p99)
		}
	})

	t.Run("local-mode CLI write", func(t *testing.T) {
		// The CLI on the same URL writes straight to PostgreSQL; every
		// replica serves the key it made.
		cmd := one.command("apikey", "create", "--name", "from-cli", "--allow-model", "chat-prod", "--key-stdin", "-q")
		cmd.Stdin = strings.NewReader("sk-from-the-cli\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aisix apikey create: %v\n%s", err, out)
		}
		written := time.Now()
		for _, g := range replicas {
			lag := g.waitKey(t, "sk-from-the-cli", written, 10*time.Second)
			t.Logf("replica %s serves the CLI's key after %v", g.proxy, lag)
			chatOK(t, g, "sk-from-the-cli")
		}
	})

	t.Run("apply of 1000 models is one reload on every replica", func(t *testing.T) {
		var file strings.Builder
		file.WriteString("_format_version: \"1\"\nmodels:\n")
		for i := range 1000 {
			fmt.Fprintf(&file, "  - {display_name: bulk-%04d, provider: openai, model_name: gpt-4o-mini, provider_key: openai-primary}\n", i)
		}
		file.WriteString("api_keys:\n  - {display_name: bulk, key_env: BULK_KEY, allowed_models: [bulk-0999]}\n")
		path := filepath.Join(t.TempDir(), "bulk.yaml")
		if err := os.WriteFile(path, []byte(file.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		before := make([]float64, len(replicas))
		for i, g := range replicas {
			before[i] = metricValue(t, g, "aisix_config_reloads_total")
		}
		cmd := one.command("apply", "-f", path, "-o", "json")
		cmd.Env = append(cmd.Env, "BULK_KEY=sk-bulk-applied")
		start := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("aisix apply: %v\n%s", err, out)
		}
		applied := time.Now()
		for i, g := range replicas {
			lag := g.waitKey(t, "sk-bulk-applied", applied, 30*time.Second)
			_, ids, err := g.models(context.Background(), "sk-bulk-applied")
			if err != nil || !slices.Equal(ids, []string{"bulk-0999"}) {
				t.Fatalf("replica %s: /v1/models for the bulk key: %v %v", g.proxy, ids, err)
			}
			if n := metricValue(t, g, "aisix_config_reloads_total") - before[i]; n != 1 {
				t.Errorf("replica %s reloaded %v times for one apply, want 1", g.proxy, n)
			}
			t.Logf("replica %s serves the 1000-model apply %v after it returned (apply took %v)", g.proxy, lag, applied.Sub(start))
		}
	})

	t.Run("one usage ledger", func(t *testing.T) {
		// Each replica serves a caller key of this subtest's; the ledger in
		// PostgreSQL has every replica's attempts, whichever one served.
		const key = "sk-ledger-all-replicas"
		id := one.createCallerKey(t, key, "chat-prod")
		for _, g := range replicas {
			g.waitKey(t, key, time.Now(), 10*time.Second)
			for range 2 {
				chatOK(t, g, key)
			}
		}
		waitUsage(t, one, id, 6, 20*time.Second)
	})
}

// waitUsage polls `aisix usage` until the caller key id has want
// successes in the ledger, and fails the test if it gets more or bound
// passes first.
func waitUsage(t *testing.T, g *gateway, id string, want int64, bound time.Duration) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		var rep usageReport
		out := g.run(t, "usage", "-o", "json", "--by", "key")
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("aisix usage -o json: %v\n%s", err, out)
		}
		var got int64
		for _, r := range rep.Rows {
			if r.KeyID == id {
				got = r.Successes
			}
		}
		if got == want {
			return
		}
		if got > want || time.Now().After(deadline) {
			t.Fatalf("the ledger has %d successes for key %s, want %d: %+v", got, id, want, rep.Rows)
		}
		time.Sleep(50 * time.Millisecond) // polling the ledger other processes write
	}
}

// command is an aisix CLI command in local mode on the gateway's database.
func (g *gateway) command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "aisix"), args...)
	cmd.Env = g.env
	return cmd
}

// burst sends n chat-prod requests with key, spread evenly over the
// replicas and conc at a time on each, and counts the answers by status.
// Every answer must be a 200 or a 429.
func burst(t *testing.T, replicas []*gateway, key string, n, conc int) (ok, limited map[*gateway]int) {
	t.Helper()
	ok, limited = map[*gateway]int{}, map[*gateway]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, g := range replicas {
		jobs := make(chan struct{}, n)
		for range n / len(replicas) {
			jobs <- struct{}{}
		}
		close(jobs)
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					resp, err := g.chat(ctx, key, chatBody("chat-prod", false), nil)
					if err != nil {
						cancel()
						t.Errorf("replica %s: %v", g.proxy, err)
						return
					}
					_ = resp.Body.Close()
					cancel()
					mu.Lock()
					switch resp.StatusCode {
					case http.StatusOK:
						ok[g]++
					case http.StatusTooManyRequests:
						limited[g]++
					default:
						t.Errorf("replica %s: status %d, want 200 or 429", g.proxy, resp.StatusCode)
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	return ok, limited
}

// perReplica lists m's counts in the replicas' order.
func perReplica(replicas []*gateway, m map[*gateway]int) []int {
	out := make([]int, len(replicas))
	for i, g := range replicas {
		out[i] = m[g]
	}
	return out
}

func total(m map[*gateway]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// createLimitedKey stores a caller key for chat-prod with an rpm limit and
// waits until every replica accepts it.
func createLimitedKey(t *testing.T, replicas []*gateway, key string, rpm int) {
	t.Helper()
	replicas[0].create(t, "apikeys", map[string]any{
		"key_hash": sha256Hex(key), "allowed_models": []string{"chat-prod"},
		"rate_limit": map[string]any{"rpm": rpm},
	})
	for _, g := range replicas {
		g.waitKey(t, key, time.Now(), 10*time.Second)
	}
}

// readyDetail is the replica's /readyz?verbose.
func (g *gateway) readyDetail(t testing.TB) (int, string) {
	t.Helper()
	resp, err := g.client.Get(g.proxy + "/readyz?verbose")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = io.Copy(&b, resp.Body)
	return resp.StatusCode, b.String()
}

// waitReadyDetail polls /readyz?verbose until it contains want.
func (g *gateway) waitReadyDetail(t testing.TB, want string, bound time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		code, body := g.readyDetail(t)
		if code == http.StatusOK && strings.Contains(body, want) {
			return time.Since(start)
		}
		if time.Since(start) > bound {
			t.Fatalf("replica %s: /readyz?verbose has no %q within %v: %d %s", g.proxy, want, bound, code, body)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
}

func TestReplicasWithRedis(t *testing.T) {
	pg, url := startPostgres(t)
	rd := redistest.New(t)
	var broken atomic.Bool
	primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
		if broken.Load() {
			writeOpenAIError(w, http.StatusInternalServerError, "The server had an error while processing your request.", "server_error", nil, nil)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(completion("hello from the primary"))
	})
	secondary := newUpstream(t, "secondary", "", func(w http.ResponseWriter, c *upstreamCall) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(completion("hello from the secondary"))
	})
	// A generous Redis bound: on a busy machine under -race a call may
	// outlast the default 50 ms, fall back for a moment and count per
	// replica, which the exact-count drills would report as a miscount.
	// A stopped Redis refuses connections at once, so the drills of
	// Redis going away do not wait on it.
	replicas := make([]*gateway, 3)
	for i := range replicas {
		replicas[i] = startGateway(t, serveOptions{db: url, env: replicaEnv, args: []string{"--redis", rd.URL(), "--redis-timeout", "1s"}})
	}
	one := replicas[0]
	setupTutorial(t, one, primary.base, secondary.base, fastTimeouts)
	for _, g := range replicas {
		g.waitKey(t, callerKey, time.Now(), 10*time.Second)
	}

	t.Run("shared rpm is exact", func(t *testing.T) {
		createLimitedKey(t, replicas, "sk-shared-rpm", 60)
		ok, limited := burst(t, replicas, "sk-shared-rpm", 300, 8)
		t.Logf("rpm 60 over 3 replicas, 300 concurrent requests: %d ok, %d limited (ok per replica: %v)", total(ok), total(limited), perReplica(replicas, ok))
		if total(ok) != 60 || total(limited) != 240 {
			t.Fatalf("%d ok and %d limited, want exactly 60 and 240", total(ok), total(limited))
		}
	})

	t.Run("a cooldown found by one replica is skipped by the others", func(t *testing.T) {
		broken.Store(true)
		if by := chatOK(t, one, callerKey); by != "gpt-4o-secondary" {
			t.Fatalf("replica 1 with a broken primary: served by %q", by)
		}
		found := time.Now()
		if st := one.status(t, "gpt-4o-primary").Status; st != "cooldown" {
			t.Fatalf("replica 1: primary is %q after failing, want cooldown", st)
		}
		for _, g := range replicas[1:] {
			for g.status(t, "gpt-4o-primary").Status != "cooldown" {
				if time.Since(found) > 10*time.Second {
					t.Fatalf("replica %s never saw the primary's cooldown", g.proxy)
				}
				time.Sleep(5 * time.Millisecond) // polling another process
			}
			t.Logf("replica %s sees the cooldown %v after replica 1 entered it", g.proxy, time.Since(found))
		}
		hits := primary.hits.Load()
		for _, g := range replicas[1:] {
			if by := chatOK(t, g, callerKey); by != "gpt-4o-secondary" {
				t.Fatalf("replica %s: served by %q, want the secondary", g.proxy, by)
			}
		}
		if n := primary.hits.Load() - hits; n != 0 {
			t.Fatalf("replicas 2 and 3 sent %d requests to the primary another replica had cooled down", n)
		}
		broken.Store(false)
	})

	t.Run("Redis down: per-replica limits, then shared again", func(t *testing.T) {
		createLimitedKey(t, replicas, "sk-redis-down", 5)
		if err := rd.Stop(); err != nil {
			t.Fatal(err)
		}
		for _, g := range replicas {
			g.waitReadyDetail(t, "[-]redis", 10*time.Second)
		}
		ok, limited := burst(t, replicas, "sk-redis-down", 30, 2)
		t.Logf("Redis down, rpm 5, 10 requests per replica: ok per replica %v, %d limited", perReplica(replicas, ok), total(limited))
		for _, g := range replicas {
			if ok[g] != 5 {
				t.Errorf("replica %s let %d through with Redis down, want its own 5", g.proxy, ok[g])
			}
		}
		for _, g := range replicas {
			chatOK(t, g, callerKey) // no limit: always served
		}
		if err := rd.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, g := range replicas {
			lag := g.waitReadyDetail(t, "[+]redis", 30*time.Second)
			t.Logf("replica %s shares again %v after Redis restarted", g.proxy, lag)
		}
		createLimitedKey(t, replicas, "sk-redis-back", 30)
		ok, limited = burst(t, replicas, "sk-redis-back", 90, 4)
		if total(ok) != 30 {
			t.Fatalf("after Redis returned: %d ok, %d limited, want exactly 30 ok", total(ok), total(limited))
		}
	})

	t.Run("PostgreSQL down: every replica serves its last snapshot, then catches up", func(t *testing.T) {
		const outageKey = "sk-during-the-outage"
		outageID := one.createCallerKey(t, outageKey, "chat-prod")
		for _, g := range replicas {
			g.waitKey(t, outageKey, time.Now(), 10*time.Second)
		}
		if err := pg.Halt(); err != nil {
			t.Fatal(err)
		}
		for _, g := range replicas {
			g.waitReadyDetail(t, "[-]store", 30*time.Second)
			for range 2 {
				chatOK(t, g, outageKey)
			}
		}
		// Each replica's ledger has tried to write them, been refused, and
		// keeps them.
		for _, g := range replicas {
			deadline := time.Now().Add(30 * time.Second)
			for metricValue(t, g, "aisix_usage_records_backlog") < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("replica %s: the usage ledger never kept the records the database refused", g.proxy)
				}
				time.Sleep(20 * time.Millisecond) // polling another process
			}
		}
		if err := pg.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		restarted := time.Now()
		// The first write after the restart (replica 1's pool reconnects).
		var id string
		for {
			code, data := one.adminDo(t, http.MethodPost, "/admin/v1/apikeys", map[string]any{
				"key_hash": sha256Hex("sk-after-pg-restart"), "allowed_models": []string{"chat-prod"},
			})
			if code == http.StatusCreated {
				var e map[string]any
				_ = json.Unmarshal(data, &e)
				id, _ = e["id"].(string)
				break
			}
			if time.Since(restarted) > 30*time.Second {
				t.Fatalf("replica 1 cannot write 30 s after PostgreSQL restarted: %d %s", code, data)
			}
			time.Sleep(50 * time.Millisecond) // polling another process
		}
		if id == "" {
			t.Fatal("no id for the key written after the restart")
		}
		for _, g := range replicas {
			lag := g.waitKey(t, "sk-after-pg-restart", restarted, 30*time.Second)
			t.Logf("replica %s serves a write made after PostgreSQL restarted %v after the restart", g.proxy, lag)
			chatOK(t, g, "sk-after-pg-restart")
		}
		// The usage of the requests served while the database was away
		// was kept and written when it returned.
		waitUsage(t, one, outageID, 6, 30*time.Second)
	})
}

// metricValue reads one unlabelled sample from the replica's /metrics.
func metricValue(t testing.TB, g *gateway, name string) float64 {
	t.Helper()
	resp, err := g.client.Get(g.metrics + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	t.Fatalf("/metrics of %s has no sample %s", g.proxy, name)
	return 0
}
