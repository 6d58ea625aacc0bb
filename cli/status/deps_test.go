package status

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// awayStore is a real SQLite store that fails its reads while down is
// set, as a PostgreSQL store does while the database is away.
type awayStore struct {
	*sqlite.Store
	down atomic.Bool
}

var errAway = errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")

func (s *awayStore) ListModels(ctx context.Context) ([]storage.Model, error) {
	if s.down.Load() {
		return nil, errAway
	}
	return s.Store.ListModels(ctx)
}

func (s *awayStore) Revision(ctx context.Context) (int64, error) {
	if s.down.Load() {
		return 0, errAway
	}
	return s.Store.Revision(ctx)
}

// TestFetchWhileTheStoreIsAway: a server that lost its store still
// answers the dashboard, with the last rows read, how old they are, and
// the dependency that is down; one that has never been read in full
// answers with no rows; a server that does not answer at all is an error.
func TestFetchWhileTheStoreIsAway(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	store := &awayStore{Store: sq}
	pk, err := sq.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-test-000000000001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sq.CreateModel(ctx, storage.Model{DisplayName: "gpt-4o", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: pk.ID}); err != nil {
		t.Fatal(err)
	}
	since := time.Date(2026, 12, 2, 5, 12, 3, 0, time.UTC)
	var set deps.Set
	set.Register("store", func() deps.State {
		if store.down.Load() {
			return deps.State{Status: deps.StatusUnreachable, Since: since, Revision: 2, Impact: "serving the last snapshot"}
		}
		return deps.State{Status: deps.StatusOK, Since: since, Revision: 2}
	})
	srv := httptest.NewServer(admin.New(admin.Config{Store: store, Keys: []string{"admin-key-for-status-test"}, Deps: &set}))
	t.Cleanup(srv.Close)
	newSource := func() *Source {
		return &Source{Client: admin.NewClient(srv.URL, "admin-key-for-status-test", srv.Client()), URL: srv.URL}
	}

	src := newSource()
	snap, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Models) != 1 || len(snap.Dependencies) != 1 || snap.Dependencies[0].Status != "ok" || !snap.RowsFrom.IsZero() {
		t.Fatalf("with the store: %+v", snap)
	}

	store.down.Store(true)
	snap, err = src.Fetch(ctx)
	if err != nil {
		t.Fatalf("with the store away: %v", err)
	}
	if len(snap.Models) != 1 || snap.Models[0].Name != "gpt-4o" || snap.RowsFrom.IsZero() {
		t.Errorf("with the store away, the last rows are not kept: %+v", snap)
	}
	if d := snap.Dependencies; len(d) != 1 || d[0].Name != "store" || d[0].Status != "unreachable" || d[0].Revision != 2 || !d[0].Since.Equal(since) {
		t.Errorf("dependencies with the store away: %+v", d)
	}

	if snap, err := newSource().Fetch(ctx); err != nil || len(snap.Models) != 0 || len(snap.Dependencies) != 1 {
		t.Errorf("a first fetch with the store away: %+v, %v", snap, err)
	}
	srv.Close()
	if _, err := src.Fetch(ctx); err == nil {
		t.Error("a server that does not answer fetched without an error")
	}
}
