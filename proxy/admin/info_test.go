package admin

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/storage"
)

func TestInfo(t *testing.T) {
	started := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	now := started.Add(time.Hour)
	var configRev int64
	c, e := newClient(t, func(cfg *Config) {
		cfg.Version = "9.9.9"
		cfg.StartedAt = started
		cfg.Now = func() time.Time { return now }
		cfg.ConfigRevision = func() int64 { return configRev }
		cfg.ConfigErrors = func() []ConfigError {
			return []ConfigError{{Kind: "model", ID: "m1", Name: "broken", Reason: "retries: must be between 0 and 10"}}
		}
	})
	ctx := context.Background()

	in, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Version: "9.9.9", StartedAt: started, ServerTime: now,
		ConfigErrors: []ConfigError{{Kind: "model", ID: "m1", Name: "broken", Reason: "retries: must be between 0 and 10"}},
		Dependencies: []Dependency{}}
	if !reflect.DeepEqual(in, want) {
		t.Errorf("info %+v, want %+v", in, want)
	}

	id := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("info"), "*")).id(t)
	k, err := e.store.GetAPIKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	in, err = c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if in.StoreRevision != k.Revision || in.ConfigRevision != 0 {
		t.Errorf("revisions store %d config %d, want %d and 0", in.StoreRevision, in.ConfigRevision, k.Revision)
	}
	configRev = k.Revision
	if in, err = c.Info(ctx); err != nil || in.ConfigRevision != k.Revision {
		t.Errorf("config revision %d, %v; want %d", in.ConfigRevision, err, k.Revision)
	}
	if r := e.raw(t, "GET", "/admin/v1/info", ""); r.status != 401 {
		t.Errorf("info without a key: %d", r.status)
	}
}

func TestEvents(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []Event{
		{Seq: 1, Time: t0, Kind: "attempt_failed", Model: "chat-prod", Target: "gpt-4o-primary", TargetID: "a", Reason: "transport_error", CallID: "c1"},
		{Seq: 2, Time: t0.Add(time.Millisecond), Kind: "failover", Model: "chat-prod", Target: "gpt-4o-secondary", Detail: "gpt-4o-primary"},
		{Seq: 3, Time: t0.Add(2 * time.Millisecond), Kind: "cooldown_entered", Target: "gpt-4o-primary", Reason: "transport_error", Detail: "30s"},
	}
	var gotSince []uint64
	c, e := newClient(t, func(cfg *Config) {
		cfg.Events = func(since uint64) ([]Event, uint64) {
			gotSince = append(gotSince, since)
			if since >= uint64(len(all)) {
				return nil, since
			}
			return all[since:], uint64(len(all))
		}
	})
	ctx := context.Background()

	tests := []struct {
		since    uint64
		wantSeqs []uint64
		wantNext uint64
	}{
		{0, []uint64{1, 2, 3}, 3},
		{2, []uint64{3}, 3},
		{3, nil, 3},
	}
	for _, tt := range tests {
		evs, next, err := c.Events(ctx, tt.since)
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for i, ev := range evs {
			seqs = append(seqs, ev.Seq)
			if ev != all[ev.Seq-1] {
				t.Errorf("event %d: %+v, want %+v", i, ev, all[ev.Seq-1])
			}
		}
		if len(seqs) != len(tt.wantSeqs) || next != tt.wantNext {
			t.Errorf("since %d: seqs %v next %d, want %v next %d", tt.since, seqs, next, tt.wantSeqs, tt.wantNext)
		}
	}
	if len(gotSince) != 3 || gotSince[1] != 2 {
		t.Errorf("source called with %v", gotSince)
	}
	if r := e.mustAdmin(t, 200, "GET", "/admin/v1/events?since=3", ""); string(r.body) != `{"events":[],"next":3}`+"\n" {
		t.Errorf("empty page %s", r.body)
	}
	checkErrorEnvelope(t, e.mustAdmin(t, 400, "GET", "/admin/v1/events?since=-1", ""), "since")

	t.Run("no source", func(t *testing.T) {
		c, _ := newClient(t)
		evs, next, err := c.Events(ctx, 7)
		if err != nil || len(evs) != 0 || next != 7 {
			t.Errorf("events %v next %d err %v", evs, next, err)
		}
	})
}

// unreachableStore is a store whose revision probe fails while down is set,
// as a PostgreSQL store's does while the database is away.
type unreachableStore struct {
	storage.Store
	down atomic.Bool
}

func (s *unreachableStore) Revision(ctx context.Context) (int64, error) {
	if s.down.Load() {
		return 0, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
	}
	return s.Store.(storage.Source).Revision(ctx)
}

func (s *unreachableStore) Load(ctx context.Context) (storage.Dataset, error) {
	return s.Store.(storage.Source).Load(ctx)
}

// TestInfoDependencies: GET /admin/v1/info lists the dependencies, and
// answers while the store is unreachable (store_revision 0); /readyz stays
// 200 and says which dependency is down.
func TestInfoDependencies(t *testing.T) {
	since := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	store := &unreachableStore{Store: openStore(t)}
	var set deps.Set
	set.Register("store", func() deps.State {
		if store.down.Load() {
			return deps.State{Status: deps.StatusUnreachable, Since: since, Revision: 7, LastError: "connection refused"}
		}
		return deps.State{Status: deps.StatusOK, Since: since, Revision: 7}
	})
	c, e := newClient(t, func(cfg *Config) { cfg.Store = store; cfg.Deps = &set })
	ctx := context.Background()
	in, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Dependencies) != 1 || in.Dependencies[0].Name != "store" || !in.Dependencies[0].OK() || in.Dependencies[0].Revision != 7 {
		t.Errorf("dependencies %+v", in.Dependencies)
	}
	if r := e.raw(t, "GET", "/readyz", ""); r.status != 200 || string(r.body) != "ok\n" {
		t.Errorf("readyz: %d %q", r.status, r.body)
	}

	store.down.Store(true)
	in, err = c.Info(ctx)
	if err != nil {
		t.Fatalf("info while the store is down: %v", err)
	}
	if in.StoreRevision != 0 || len(in.Dependencies) != 1 || in.Dependencies[0].Status != deps.StatusUnreachable || !in.Dependencies[0].Since.Equal(since) {
		t.Errorf("info while down: %+v", in)
	}
	r := e.raw(t, "GET", "/readyz?verbose", "")
	if want := "ok\n[+]ready ok\n[-]store unreachable since 2030-05-06T07:08:09Z (serving revision 7): connection refused\n"; r.status != 200 || string(r.body) != want {
		t.Errorf("readyz?verbose while down: %d\n%s\nwant\n%s", r.status, r.body, want)
	}
	r = e.raw(t, "GET", "/readyz", "", "Accept: application/json")
	if r.status != 200 || !strings.Contains(string(r.body), `"status":"unreachable"`) {
		t.Errorf("readyz json: %d %s", r.status, r.body)
	}
}
