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
	if err := srv.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, `"level":"INFO","msg":"redis back: limits shared again"`)
	if code, _ := r.chat(t, "sk-rpm", "gpt-shared"); code != http.StatusOK {
		t.Fatalf("after Redis returned: %d", code)
	}
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
