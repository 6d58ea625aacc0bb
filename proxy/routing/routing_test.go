package routing_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

func ptr[T any](v T) *T { return &v }

func dataset() storage.Dataset {
	return storage.Dataset{
		Revision: 3,
		ProviderKeys: []storage.ProviderKey{
			{ID: "pk1", DisplayName: "openai-primary", Provider: "openai", Adapter: "openai", Secret: "sk-one", APIBase: "https://api.openai.com/v1"},
			{ID: "pk2", DisplayName: "openai-secondary", Provider: "openai", Secret: "sk-two", APIBase: "http://127.0.0.1:9/v1/"},
		},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "gpt-4o-primary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk1",
				Timeout: ptr(int64(2000)), Retries: ptr(2)},
			{ID: "m2", DisplayName: "gpt-4o-secondary", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk2",
				StreamTimeout: ptr(int64(700)), Cooldown: &storage.Cooldown{DefaultSeconds: ptr(5), TriggerStatuses: []int{503}}},
			{ID: "r1", DisplayName: "chat-prod", Routing: &storage.Routing{
				Targets: []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}}, Retries: ptr(1), MaxFallbacks: ptr(1)}},
		},
		APIKeys: []storage.APIKey{
			{ID: "k1", KeyHash: proxytest.KeyHash("sk-caller"), AllowedModels: []string{"chat-prod"}},
			{ID: "k2", KeyHash: proxytest.KeyHash("sk-all"), AllowedModels: []string{"*"}},
		},
	}
}

func TestBuild(t *testing.T) {
	s, err := routing.Build(dataset())
	if err != nil {
		t.Fatal(err)
	}
	if s.Revision != 3 {
		t.Errorf("revision %d", s.Revision)
	}
	m := s.Model("gpt-4o-primary")
	if m == nil || m.Direct == nil || s.ModelByID("m1") != m {
		t.Fatalf("direct model not resolved: %+v", m)
	}
	d := m.Direct
	if d.ProviderKey.URL.String() != "https://api.openai.com/v1/chat/completions" || d.ProviderKey.Auth[0] != "Bearer sk-one" {
		t.Errorf("upstream %s auth %v", d.ProviderKey.URL, d.ProviderKey.Auth)
	}
	if d.Timeout != 2*time.Second || d.StreamIdleTimeout != 2*time.Second || d.StreamHeaderTimeout != 2*time.Second || d.Retries != 2 || !d.RetriesSet {
		t.Errorf("timeouts %v/%v retries %d", d.Timeout, d.StreamIdleTimeout, d.Retries)
	}
	if string(d.ModelNameJSON) != `"gpt-4o-mini"` || string(m.NameJSON) != `"gpt-4o-primary"` {
		t.Errorf("JSON names %s %s", d.ModelNameJSON, m.NameJSON)
	}
	if !d.Cooldown.Triggers(429) || !d.Cooldown.Triggers(599) || d.Cooldown.Triggers(400) || d.Cooldown.Default != 30*time.Second {
		t.Errorf("default cooldown %+v", d.Cooldown)
	}
	sec := s.Model("gpt-4o-secondary").Direct
	if sec.ProviderKey.URL.String() != "http://127.0.0.1:9/v1/chat/completions" {
		t.Errorf("trailing slash not trimmed: %s", sec.ProviderKey.URL)
	}
	if sec.Cooldown.Triggers(429) || !sec.Cooldown.Triggers(503) || sec.Cooldown.Length(0, false) != 5*time.Second {
		t.Errorf("custom cooldown %+v", sec.Cooldown)
	}
	if sec.Timeout != routing.DefaultTimeout || sec.StreamIdleTimeout != 700*time.Millisecond || sec.StreamFirstTimeout != 700*time.Millisecond {
		t.Errorf("timeouts %v/%v", sec.Timeout, sec.StreamIdleTimeout)
	}
	g := s.Model("chat-prod").Group
	if g == nil || len(g.Targets) != 2 || g.Targets[0] != d || g.Budget() != 2 || g.RetriesFor(d) != 2 || g.RetriesFor(sec) != 1 || !g.RetryOn429 {
		t.Fatalf("group %+v", g)
	}
	var names []string
	for _, m := range s.Models() {
		names = append(names, m.Name)
	}
	if fmt.Sprint(names) != "[chat-prod gpt-4o-primary gpt-4o-secondary]" {
		t.Errorf("sorted models %v", names)
	}
	if got := fmt.Sprint(s.ProviderKey("pk1")); strings.Contains(got, "sk-one") {
		t.Errorf("provider key String leaks the secret: %s", got)
	}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "pk", s.ProviderKey("pk1"))
	if strings.Contains(logBuf.String(), "sk-one") {
		t.Errorf("provider key logs its secret: %s", logBuf.String())
	}
}

func TestBuildRejectsBadDatasets(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(ds *storage.Dataset)
		want   string
	}{
		{name: "missing provider key", mutate: func(ds *storage.Dataset) { ds.Models[0].ProviderKeyID = "nope" }, want: "provider key nope does not exist"},
		{name: "missing target", mutate: func(ds *storage.Dataset) { ds.Models[2].Routing.Targets[1].Model = "ghost" }, want: `routing target "ghost" does not exist`},
		{name: "duplicate name", mutate: func(ds *storage.Dataset) { ds.Models[1].DisplayName = "gpt-4o-primary" }, want: "duplicate"},
		{name: "duplicate key hash", mutate: func(ds *storage.Dataset) { ds.APIKeys[1].KeyHash = ds.APIKeys[0].KeyHash }, want: "duplicate key hash"},
		{name: "invalid model", mutate: func(ds *storage.Dataset) { ds.Models[0].Retries = ptr(99) }, want: "retries"},
		{name: "invalid key hash", mutate: func(ds *storage.Dataset) { ds.APIKeys[0].KeyHash = "sk-plain" }, want: "key_hash"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ds := dataset()
			tt.mutate(&ds)
			_, err := routing.Build(ds)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestUpstreamURL(t *testing.T) {
	tests := []struct {
		provider, adapter, base string
		want, wantErr           string
	}{
		{provider: "openai", base: "https://api.openai.com", want: "https://api.openai.com/v1/chat/completions"},
		{provider: "openai", base: "", want: "https://api.openai.com/v1/chat/completions"},
		{provider: "openai", base: "https://gw.example.com/openai/v1/chat/completions/", want: "https://gw.example.com/openai/v1/chat/completions"},
		{provider: "deepseek", adapter: "openai", base: "https://api.deepseek.com", want: "https://api.deepseek.com/chat/completions"},
		{provider: "deepseek", adapter: "openai", base: "", wantErr: "config_error"},
		{provider: "anthropic", adapter: "anthropic", base: "https://api.anthropic.com", wantErr: "not_implemented"},
		{provider: "x", adapter: "bedrock", wantErr: "not_implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.provider+" "+tt.base, func(t *testing.T) {
			ds := dataset()
			ds.ProviderKeys[0] = storage.ProviderKey{ID: "pk1", DisplayName: "k", Provider: tt.provider, Adapter: tt.adapter, Secret: "s", APIBase: tt.base}
			s, err := routing.Build(ds)
			if err != nil {
				t.Fatal(err)
			}
			pk := s.ProviderKey("pk1")
			if tt.wantErr != "" {
				if pk.Err == nil || pk.Err.Type != tt.wantErr || s.Model("gpt-4o-primary").Direct.Err != pk.Err {
					t.Fatalf("want %s config error, got %+v", tt.wantErr, pk.Err)
				}
				return
			}
			if pk.Err != nil || pk.URL.String() != tt.want {
				t.Errorf("got %v %v, want %s", pk.URL, pk.Err, tt.want)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	s, err := routing.Build(dataset())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // the second round is served by the cache
		k := s.Authenticate("sk-caller")
		if k == nil || k.ID != "k1" || !k.Allows("chat-prod") || k.Allows("gpt-4o-primary") {
			t.Fatalf("round %d: %+v", i, k)
		}
		if a := s.Authenticate("sk-all"); a == nil || !a.All || !a.Allows("anything") {
			t.Fatalf("* key: %+v", a)
		}
		if s.Authenticate("sk-wrong") != nil || s.Authenticate("") != nil {
			t.Fatal("unknown key authenticated")
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				if s.Authenticate("sk-caller") == nil || s.Authenticate(fmt.Sprint("sk-random-", j)) != nil {
					t.Error("concurrent lookup failed")
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestOrder(t *testing.T) {
	ds := dataset()
	ds.Models = append(ds.Models, storage.Model{ID: "m3", DisplayName: "third", Provider: "openai", ModelName: "x", ProviderKeyID: "pk1"})
	build := func(r storage.Routing) *routing.Group {
		ds := ds
		ds.Models = append([]storage.Model(nil), ds.Models...)
		r.Targets = append([]storage.Target(nil), r.Targets...)
		ds.Models[2].Routing = &r
		s, err := routing.Build(ds)
		if err != nil {
			t.Fatal(err)
		}
		return s.Model("chat-prod").Group
	}
	names := func(ts []*routing.Target) string {
		var out []string
		for _, t := range ts {
			out = append(out, t.Name)
		}
		return strings.Join(out, ",")
	}
	three := []storage.Target{{Model: "gpt-4o-primary"}, {Model: "gpt-4o-secondary"}, {Model: "third"}}
	g := build(storage.Routing{Targets: three})
	if got := names(g.Order(nil)); got != "gpt-4o-primary,gpt-4o-secondary,third" {
		t.Errorf("failover order %s", got)
	}
	g = build(storage.Routing{Strategy: storage.StrategyRoundRobin, Targets: three})
	var got []string
	for i := 0; i < 4; i++ {
		got = append(got, names(g.Order(nil)))
	}
	want := "[gpt-4o-primary,gpt-4o-secondary,third gpt-4o-secondary,third,gpt-4o-primary third,gpt-4o-primary,gpt-4o-secondary gpt-4o-primary,gpt-4o-secondary,third]"
	if fmt.Sprint(got) != want {
		t.Errorf("round robin %v", got)
	}
	w := []storage.Target{{Model: "gpt-4o-primary", Weight: ptr(0)}, {Model: "gpt-4o-secondary", Weight: ptr(1)}, {Model: "third", Weight: ptr(0)}}
	g = build(storage.Routing{Strategy: storage.StrategyWeighted, Targets: w})
	for i := 0; i < 20; i++ {
		if got := names(g.Order(nil)); got != "gpt-4o-secondary,third,gpt-4o-primary" {
			t.Fatalf("weighted order %s", got)
		}
	}
	g = build(storage.Routing{Targets: three, MaxFallbacks: ptr(0)})
	if g.Budget() != 1 {
		t.Errorf("budget %d", g.Budget())
	}
	g = build(storage.Routing{Targets: three, MaxFallbacks: ptr(10)})
	if g.Budget() != 3 {
		t.Errorf("budget %d", g.Budget())
	}
}

func TestCooldownLength(t *testing.T) {
	ds := dataset()
	ds.Models[0].Cooldown = &storage.Cooldown{MaxSeconds: ptr(10)}
	ds.Models[1].Cooldown = &storage.Cooldown{HonorRetryAfter: ptr(false), Enabled: ptr(true)}
	s, err := routing.Build(ds)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Model("gpt-4o-primary").Direct.Cooldown
	if c.Length(3*time.Second, true) != 3*time.Second || c.Length(60*time.Second, true) != 10*time.Second || c.Length(0, false) != 30*time.Second {
		t.Errorf("retry-after lengths wrong: %+v", c)
	}
	c = s.Model("gpt-4o-secondary").Direct.Cooldown
	if c.Length(3*time.Second, true) != 30*time.Second {
		t.Errorf("honor_retry_after false ignored")
	}
	ds.Models[0].Cooldown = &storage.Cooldown{Enabled: ptr(false)}
	ds.Models[1].Cooldown = &storage.Cooldown{DefaultSeconds: ptr(0)}
	s, _ = routing.Build(ds)
	for _, name := range []string{"gpt-4o-primary", "gpt-4o-secondary"} {
		c := s.Model(name).Direct.Cooldown
		if c.Length(time.Second, true) != 0 || c.Triggers(503) {
			t.Errorf("%s: disabled cooldown still arms", name)
		}
	}
}

func TestTableReload(t *testing.T) {
	src := proxytest.NewSource(dataset())
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	tbl := routing.NewTable(src, logger)
	if tbl.Loaded() || tbl.Snapshot() == nil || tbl.Snapshot().Model("chat-prod") != nil {
		t.Fatal("a new table must hold an empty snapshot")
	}
	var swaps []int64
	tbl.OnSwap(func(_, cur *routing.Snapshot) { swaps = append(swaps, cur.Revision) })
	if err := tbl.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	good := tbl.Snapshot()
	if !tbl.Loaded() || good.Model("chat-prod") == nil {
		t.Fatal("not loaded")
	}

	// A bad dataset never replaces a good snapshot.
	src.Update(func(ds *storage.Dataset) { ds.Models[2].Routing.Targets[0].Model = "ghost" })
	if err := tbl.Reload(context.Background()); err == nil {
		t.Fatal("bad dataset accepted")
	}
	if tbl.Snapshot() != good {
		t.Fatal("bad dataset replaced the snapshot")
	}
	// Neither does a failing store.
	src.Fail(errors.New("disk on fire"))
	if err := tbl.Reload(context.Background()); err == nil || tbl.Snapshot() != good {
		t.Fatal("failing store replaced the snapshot")
	}
	src.Fail(nil)
	src.Update(func(ds *storage.Dataset) { ds.Models[2].Routing.Targets[0].Model = "gpt-4o-primary" })
	if err := tbl.Reload(context.Background()); err != nil || tbl.Snapshot() == good {
		t.Fatalf("recovery: %v", err)
	}
	// A reload at the revision already live builds nothing and swaps nothing.
	live := tbl.Snapshot()
	if err := tbl.Reload(context.Background()); err != nil || tbl.Snapshot() != live {
		t.Fatalf("same-revision reload: %v, snapshot replaced: %v", err, tbl.Snapshot() != live)
	}
	if fmt.Sprint(swaps) != "[3 5]" {
		t.Errorf("swaps at revisions %v", swaps)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "still serving the previous snapshot") || strings.Contains(logs.String(), "sk-one") {
		t.Errorf("logs:\n%s", logs.String())
	}
}

func TestTableWatch(t *testing.T) {
	src := proxytest.NewSource(dataset())
	tbl := routing.NewTable(src, nil)
	swapped := make(chan int64, 8)
	tbl.OnSwap(func(_, cur *routing.Snapshot) { swapped <- cur.Revision })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tbl.Watch(ctx, 5*time.Millisecond); close(done) }()
	wait := func(want int64) {
		t.Helper()
		select {
		case rev := <-swapped:
			if rev != want {
				t.Fatalf("swapped to %d, want %d", rev, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no swap to revision %d", want)
		}
	}
	wait(3) // the first poll loads
	src.Update(func(ds *storage.Dataset) { ds.Models[0].ModelName = "gpt-4o" })
	wait(4)
	if got := tbl.Snapshot().Model("gpt-4o-primary").Direct.ModelName; got != "gpt-4o" {
		t.Errorf("model name %s", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after cancel")
	}
}

func TestRoundRobinSurvivesReload(t *testing.T) {
	ds := dataset()
	ds.Models[2].Routing.Strategy = storage.StrategyRoundRobin
	src := proxytest.NewSource(ds)
	tbl := routing.NewTable(src, nil)
	_ = tbl.Reload(context.Background())
	first := tbl.Snapshot().Model("chat-prod").Group.Order(nil)[0].Name
	src.Update(func(*storage.Dataset) {})
	_ = tbl.Reload(context.Background())
	second := tbl.Snapshot().Model("chat-prod").Group.Order(nil)[0].Name
	if first == second {
		t.Errorf("rotation restarted after a reload: %s then %s", first, second)
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// BenchmarkAuthenticate: a cached caller-key lookup (the hot path) and a
// first lookup that hashes.
func BenchmarkAuthenticate(b *testing.B) {
	ds := dataset()
	for i := 0; i < 10000; i++ {
		ds.APIKeys = append(ds.APIKeys, storage.APIKey{ID: fmt.Sprint("k", i), KeyHash: proxytest.KeyHash(fmt.Sprint("sk-", i)), AllowedModels: []string{"*"}})
	}
	s, err := routing.Build(ds)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s.Authenticate("sk-caller") == nil {
				b.Fatal("no key")
			}
		}
	})
	b.Run("unknown key (sha256)", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if s.Authenticate("sk-not-a-key-at-all") != nil {
				b.Fatal("key")
			}
		}
	})
}
