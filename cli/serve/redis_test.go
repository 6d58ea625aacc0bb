package serve

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/limit/redisstore"
	"github.com/aisix/aisix/proxy/limit/redisstore/redistest"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// redisPassword is in every test Redis URL (the default user has no
// password, so Redis accepts any): it must never reach a log.
const redisPassword = "s3cret-redis-pass"

const redisAdminKey = "test-admin-key-redis"

// redisURL is srv's URL with a user and the test password.
func redisURL(srv *redistest.Server) string {
	return "redis://default:" + redisPassword + "@" + srv.Addr() + "/0"
}

// replica is one in-process aisix serve of a multi-replica test.
type replica struct {
	proxy, admin string
	logs         *syncBuffer
}

// startReplica starts serve on db with Redis at redisURL and waits until
// it has started; it is stopped when t ends. edit adjusts the config.
func startReplica(t *testing.T, db, redisURL string, edit func(*cmdutil.Config)) *replica {
	t.Helper()
	c := testConfig(t)
	c.DB, c.AdminKey, c.Redis, c.RedisPrefix = db, redisAdminKey, redisURL, "aisix:"
	// The race detector on a busy machine is slow: a tight bound would
	// fall back to per-replica counting, which these tests count as a
	// failure to share.
	c.RedisTimeout = 2 * time.Second
	r := &replica{proxy: freeAddr(t), admin: freeAddr(t), logs: &syncBuffer{ch: make(chan struct{}, 1)}}
	c.ProxyAddr, c.AdminAddr = r.proxy, r.admin
	c.Metrics.Addr = ""
	c.UsageLedger = true
	if edit != nil {
		edit(c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, r.logs, "test") }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
		if strings.Contains(r.logs.String(), redisPassword) {
			t.Errorf("the Redis password reached the log:\n%s", r.logs.String())
		}
	})
	r.logs.waitFor(t, `"msg":"aisix started"`)
	return r
}

// chat sends one chat completion with caller key and returns its status.
func (r *replica) chat(t *testing.T, key, model string) (int, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.proxy+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0, nil
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// getJSON reads an admin API path into v.
func (r *replica) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.admin+path, nil)
	req.Header.Set("Authorization", "Bearer "+redisAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", path, err, b)
	}
}

// seedStore writes provider key, models and caller keys into a new SQLite
// file the replicas will share, and the usage records (their KeyID a
// caller key's display name); it returns the file and the caller keys'
// ids by display name.
func seedStore(t *testing.T, upstreams map[string]string, keys []storage.APIKey, usage []storage.UsageRecord) (string, map[string]string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "aisix.db")
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for name, base := range upstreams {
		pk, err := st.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk-" + name, Provider: "openai", Adapter: "openai",
			Secret: "sk-upstream-test-0001", APIBase: base})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateModel(ctx, storage.Model{DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID}); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]string{}
	for _, k := range keys {
		k, err := st.CreateAPIKey(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		ids[k.DisplayName] = k.ID
	}
	for i := range usage {
		usage[i].KeyID = ids[usage[i].KeyID]
	}
	if len(usage) > 0 {
		if err := st.AppendUsage(ctx, usage); err != nil {
			t.Fatal(err)
		}
	}
	return db, ids
}

// TestServeSharesLimitsOnRedis: three replicas on one store and one Redis.
// A caller key's rpm of 6 lets exactly 6 of 18 concurrent requests through
// in total, and a budget's spend, seeded by every replica from the same
// ledger at start, counts the ledger once.
func TestServeSharesLimitsOnRedis(t *testing.T) {
	srv := redistest.New(t)
	up := proxytest.New("redis-upstream", proxytest.OK())
	t.Cleanup(up.Close)
	now := time.Now().UTC()
	db, ids := seedStore(t, map[string]string{"gpt-shared": up.BaseURL()}, []storage.APIKey{
		{DisplayName: "rpm", KeyHash: proxytest.KeyHash("sk-rpm"), AllowedModels: []string{"*"}, RateLimit: &storage.RateLimit{RPM: 6}},
		{DisplayName: "budget", KeyHash: proxytest.KeyHash("sk-budget"), AllowedModels: []string{"*"},
			Budget: &storage.Budget{AmountUSD: 100, Period: storage.BudgetMonth}},
	}, []storage.UsageRecord{{Time: now, CallID: "c1", Attempt: 1, KeyID: "budget", Endpoint: "chat.completions", Alias: "gpt-shared",
		Target: "gpt-shared", Status: 200, Outcome: "ok", Cost: 4, Priced: true}})
	var reps []*replica
	for range 3 {
		reps = append(reps, startReplica(t, db, redisURL(srv), nil))
	}

	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = map[int]int{}
	)
	for i := range 18 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _ := reps[i%3].chat(t, "sk-rpm", "gpt-shared")
			mu.Lock()
			counts[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[http.StatusOK] != 6 || counts[http.StatusTooManyRequests] != 12 {
		t.Errorf("18 requests over 3 replicas with rpm 6: %v, want 6 × 200 and 12 × 429", counts)
	}

	for i, r := range reps {
		var k struct {
			Value struct {
				LimitUsage struct {
					BudgetSpentUSD *float64 `json:"budget_spent_usd"`
				} `json:"limit_usage"`
			} `json:"value"`
		}
		r.getJSON(t, "/admin/v1/apikeys/"+ids["budget"], &k)
		if got := k.Value.LimitUsage.BudgetSpentUSD; got == nil || *got != 4 {
			t.Errorf("replica %d: budget spent %v, want 4 (the ledger's figure once, not once per replica)", i+1, fmtPtr(got))
		}
	}
	for _, r := range reps {
		if strings.Contains(r.logs.String(), "redis unreachable") {
			t.Errorf("a replica fell back to per-replica state:\n%s", r.logs.String())
		}
	}
}

func fmtPtr(p *float64) string {
	if p == nil {
		return "none"
	}
	return fmt.Sprint(*p)
}

// TestServeRedisDownAndBack: with Redis stopped, requests keep succeeding
// (limits count per replica), a Warn line says so and the state reports
// it; when Redis returns an Info line says limits are shared again.
func TestServeRedisDownAndBack(t *testing.T) {
	srv := redistest.New(t)
	up := proxytest.New("redis-upstream", proxytest.OK())
	t.Cleanup(up.Close)
	db, _ := seedStore(t, map[string]string{"gpt-shared": up.BaseURL()}, []storage.APIKey{
		{DisplayName: "rpm", KeyHash: proxytest.KeyHash("sk-rpm"), AllowedModels: []string{"*"}, RateLimit: &storage.RateLimit{RPM: 1000}},
	}, nil)
	r := startReplica(t, db, redisURL(srv), func(c *cmdutil.Config) { c.RedisTimeout = 200 * time.Millisecond })
	if code, _ := r.chat(t, "sk-rpm", "gpt-shared"); code != http.StatusOK {
		t.Fatalf("with Redis up: %d", code)
	}
	if err := srv.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if code, _ := r.chat(t, "sk-rpm", "gpt-shared"); code != http.StatusOK {
			t.Fatalf("request %d with Redis down: %d, want 200 (per-replica counting)", i+1, code)
		}
	}
	r.logs.waitFor(t, `"level":"WARN","msg":"redis unreachable or too slow: rate limits and budgets count per replica"`)
	if st := r.redisDependency(t); st.Status != "unreachable" || st.Impact == "" {
		t.Errorf("info's redis dependency with Redis down: %+v, want unreachable with its impact", st)
	}
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, `"level":"INFO","msg":"redis back: limits shared again"`)
	if code, _ := r.chat(t, "sk-rpm", "gpt-shared"); code != http.StatusOK {
		t.Fatalf("after Redis returned: %d", code)
	}
	// Both parts (limits, cooldowns) back: the dependency is ok again.
	deadline := time.Now().Add(10 * time.Second)
	for st := r.redisDependency(t); st.Status != "ok"; st = r.redisDependency(t) {
		if time.Now().After(deadline) {
			t.Fatalf("info's redis dependency after Redis returned: %+v, want ok", st)
		}
		time.Sleep(20 * time.Millisecond) // polling the cooldown sharer's reconnection
	}
}

// redisDependency is the "redis" entry of GET /admin/v1/info's dependencies.
func (r *replica) redisDependency(t *testing.T) (st struct{ Name, Status, Impact string }) {
	t.Helper()
	var info struct {
		Dependencies []struct{ Name, Status, Impact string } `json:"dependencies"`
	}
	r.getJSON(t, "/admin/v1/info", &info)
	for _, d := range info.Dependencies {
		if d.Name == "redis" {
			return d
		}
	}
	t.Fatalf("no redis dependency in GET /admin/v1/info: %+v", info)
	return st
}

// TestRedisURLRefused: a bad --redis is one line that does not quote the
// URL (it may hold a password).
func TestRedisURLRefused(t *testing.T) {
	for _, raw := range []string{"http://u:" + redisPassword + "@h:1", "redis://u:" + redisPassword + "@h:bad/0", "://" + redisPassword} {
		c := testConfig(t)
		c.AdminKey, c.Redis = redisAdminKey, raw
		err := Run(context.Background(), c, io.Discard, "test")
		if err == nil || !strings.Contains(err.Error(), "--redis") || strings.Contains(err.Error(), redisPassword) {
			t.Errorf("--redis %q: err %v, want a --redis error without the password", raw, err)
		}
	}
}

// TestBudgetsSeedSharedStore: on a shared store every replica seeds the
// ledger's whole figure and the store keeps the larger of it and its own
// count: spend already counted in Redis (some of it not in the ledger yet,
// some of the ledger from before Redis) is neither added twice nor lost,
// however many replicas seed.
func TestBudgetsSeedSharedStore(t *testing.T) {
	srv := redistest.New(t)
	now := time.Date(2026, 12, 15, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Adapter: "openai", Secret: "sk-x", APIBase: "http://127.0.0.1:1/v1"}},
		Models:       []storage.Model{{ID: "m1", DisplayName: "gpt", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"}},
		APIKeys: []storage.APIKey{{ID: "key-1", KeyHash: proxytest.KeyHash("sk-1"), AllowedModels: []string{"*"},
			Budget: &storage.Budget{AmountUSD: 100, Period: storage.BudgetMonth}}},
	}
	table := tableOf(t, ds)
	key := limit.Key{Scope: limit.ScopeCallerKey, ID: "key-1"}
	replica := func() (*limit.Limiter, *budgets) {
		st, err := redisstore.Open(srv.URL(), redisstore.Options{Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		lim := limit.New(limit.Options{Store: st, Now: clock})
		return lim, &budgets{lim: lim, ledger: store, logger: slog.New(slog.DiscardHandler), now: clock, raises: true}
	}
	// A replica that runs already has counted 3 in Redis; the ledger holds
	// 4 for the month (1 from before Redis, and the 3).
	lim1, _ := replica()
	subj := limit.Subject{Key: key, Limits: limit.Limits{Budget: &limit.Budget{AmountUSD: 100, Period: limit.PeriodMonth}}}
	tk, rej := lim1.Acquire(now, 0, subj)
	if rej != nil {
		t.Fatal(rej)
	}
	tk.Done(0, 3)
	rec := storage.UsageRecord{Time: now.Add(-time.Hour), CallID: "c", Attempt: 1, KeyID: "key-1", Endpoint: "chat.completions", Alias: "gpt",
		Target: "gpt", Status: 200, Outcome: "ok", Cost: 1, Priced: true}
	rec2 := rec
	rec2.CallID, rec2.Cost = "c2", 3
	if err := store.AppendUsage(context.Background(), []storage.UsageRecord{rec, rec2}); err != nil {
		t.Fatal(err)
	}
	// Three replicas start and seed.
	for i := range 3 {
		lim, b := replica()
		b.seed(context.Background(), table.Snapshot())
		if got := lim.Status(key, now).SpendMonthUSD; got != 4 {
			t.Fatalf("after replica %d seeded: spend %v, want 4", i+1, got)
		}
	}
	if got := lim1.Status(key, now).SpendMonthUSD; got != 4 {
		t.Errorf("the running replica reads %v, want 4", got)
	}
}

// addRouter adds a failover model over targets to the store file db.
func addRouter(t *testing.T, db, name string, targets ...string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r := &storage.Routing{Strategy: "failover"}
	for _, tg := range targets {
		r.Targets = append(r.Targets, storage.Target{Model: tg})
	}
	if _, err := st.CreateModel(context.Background(), storage.Model{DisplayName: name, Routing: r}); err != nil {
		t.Fatal(err)
	}
}

// TestServeSharesCooldowns: two replicas on one store and one Redis. A
// target that fails on replica 1 goes into cooldown there, and replica 2,
// which never saw it fail, skips it: its first attempt goes to the next
// target, and the broken upstream hears nothing from it.
func TestServeSharesCooldowns(t *testing.T) {
	srv := redistest.New(t)
	broken := proxytest.New("broken", proxytest.ServerError(http.StatusServiceUnavailable))
	t.Cleanup(broken.Close)
	good := proxytest.New("good", proxytest.OK())
	t.Cleanup(good.Close)
	db, _ := seedStore(t, map[string]string{"gpt-broken": broken.BaseURL(), "gpt-good": good.BaseURL()}, []storage.APIKey{
		{DisplayName: "caller", KeyHash: proxytest.KeyHash("sk-caller"), AllowedModels: []string{"*"}},
	}, nil)
	addRouter(t, db, "chat", "gpt-broken", "gpt-good")
	r1 := startReplica(t, db, redisURL(srv), nil)
	r2 := startReplica(t, db, redisURL(srv), nil)

	code, h := r1.chat(t, "sk-caller", "chat")
	if code != http.StatusOK || h.Get("X-Aisix-Served-By") != "gpt-good" || h.Get("X-Aisix-Attempts") != "gpt-broken=503,gpt-good=200" {
		t.Fatalf("replica 1: %d served by %q, attempts %q, want 200 from gpt-good after failing over", code, h.Get("X-Aisix-Served-By"), h.Get("X-Aisix-Attempts"))
	}
	if broken.Hits() != 1 {
		t.Fatalf("broken upstream hits %d, want 1", broken.Hits())
	}
	// Replica 2 hears of the cooldown within a second: poll its status API
	// (not its proxy, which would try the target while it has not heard).
	start := time.Now()
	for {
		var rows []struct {
			DisplayName string `json:"display_name"`
			Status      string `json:"status"`
		}
		r2.getJSON(t, "/admin/v1/models/status", &rows)
		state := ""
		for _, row := range rows {
			if row.DisplayName == "gpt-broken" {
				state = row.Status
			}
		}
		if state == "cooldown" {
			break
		}
		if time.Since(start) > time.Second {
			t.Fatalf("replica 2 did not see the cooldown within 1s: gpt-broken is %q", state)
		}
		time.Sleep(5 * time.Millisecond) // polling another replica's Redis subscriber
	}
	t.Logf("replica 2 saw replica 1's cooldown after %s", time.Since(start))
	code, h = r2.chat(t, "sk-caller", "chat")
	if code != http.StatusOK || h.Get("X-Aisix-Served-By") != "gpt-good" || h.Get("X-Aisix-Attempts") != "gpt-good=200" {
		t.Errorf("replica 2: %d served by %q, attempts %q, want gpt-good at the first attempt (the broken target skipped)", code, h.Get("X-Aisix-Served-By"), h.Get("X-Aisix-Attempts"))
	}
	if broken.Hits() != 1 {
		t.Errorf("broken upstream hits %d after replica 2's request, want still 1", broken.Hits())
	}
}

// TestRedisState: degraded while any part has fallen back, since the last
// change, with one log line per part's transition.
func TestRedisState(t *testing.T) {
	var nilRedis *sharedRedis
	if nilRedis.State() != nil || nilRedis.Close() != nil {
		t.Fatal("no --redis: State and Close must be nil-safe")
	}
	logs := &syncBuffer{ch: make(chan struct{}, 1)}
	s := newRedisState("redis://default:xxxxx@h:6379/0", slog.New(slog.NewJSONHandler(logs, nil)))
	start := s.Since()
	if s.Degraded() || s.Detail() != "" {
		t.Fatalf("new state: degraded %v, detail %q", s.Degraded(), s.Detail())
	}
	s.set(partLimits, true)
	down := s.Since()
	if !s.Degraded() || down.Before(start) || s.Detail() != "rate limits and budgets count per replica" {
		t.Fatalf("limits down: degraded %v since %v, detail %q", s.Degraded(), down, s.Detail())
	}
	s.set(partLimits, true) // no change, no line
	s.set(partCooldowns, true)
	if !s.Since().Equal(down) {
		t.Error("Since moved while the state stayed degraded")
	}
	s.set(partLimits, false)
	if !s.Degraded() || s.Detail() != "cooldowns are local to each replica" {
		t.Errorf("cooldowns still down: degraded %v, detail %q", s.Degraded(), s.Detail())
	}
	s.set(partCooldowns, false)
	if s.Degraded() || s.Since().Before(down) {
		t.Errorf("all back: degraded %v since %v", s.Degraded(), s.Since())
	}
	out := logs.String()
	if n := strings.Count(out, `"level":"WARN"`); n != 2 {
		t.Errorf("%d Warn lines, want 2 (one per part):\n%s", n, out)
	}
	if n := strings.Count(out, `"level":"INFO","msg":"redis back`); n != 2 {
		t.Errorf("%d Info lines, want 2:\n%s", n, out)
	}
}
