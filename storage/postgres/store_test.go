package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
)

const testSecret = "sk-0123456789abcdef"

// TestUnreadableRow: a model whose spec and a caller key whose limits no
// longer decode (a newer binary wrote them, or a hand edit) are left out
// of Load and reported, so the rest still loads; the admin lists still
// show them, to be fixed or deleted.
func TestUnreadableRow(t *testing.T) {
	s, url := newStore(t)
	ctx := t.Context()
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: testSecret})
	mustNoErr(t, err)
	for i, name := range []string{"good", "bad"} {
		_, err := s.CreateModel(ctx, storage.Model{DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID})
		mustNoErr(t, err)
		_, err = s.CreateAPIKey(ctx, storage.APIKey{DisplayName: name, KeyHash: strings.Repeat(string(rune('a'+i)), 64),
			AllowedModels: []string{"*"}, RateLimit: &storage.RateLimit{RPM: 60}})
		mustNoErr(t, err)
	}
	raw := rawConn(t, url)
	_, err = raw.Exec(ctx, `UPDATE models SET spec = '{"model_name":"x","timeout":"soon"}' WHERE display_name = 'bad'`)
	mustNoErr(t, err)
	_, err = raw.Exec(ctx, `UPDATE api_keys SET rate_limit = '{"rpm":"lots"}' WHERE display_name = 'bad'`)
	mustNoErr(t, err)

	ds, err := s.Load(ctx)
	mustNoErr(t, err)
	if len(ds.Models) != 1 || ds.Models[0].DisplayName != "good" {
		t.Errorf("Load models %+v, want only the good one", ds.Models)
	}
	if len(ds.APIKeys) != 1 || ds.APIKeys[0].DisplayName != "good" || ds.APIKeys[0].RateLimit == nil {
		t.Errorf("Load API keys %+v, want only the good one, with its limits", ds.APIKeys)
	}
	if len(ds.Unreadable) != 2 {
		t.Fatalf("Unreadable %+v, want the bad model and the bad key", ds.Unreadable)
	}
	if u := ds.Unreadable[0]; u.Kind != storage.KindModelRow || u.Name != "bad" || !strings.Contains(u.Reason, "decode spec") {
		t.Errorf("Unreadable[0] = %+v", u)
	}
	if u := ds.Unreadable[1]; u.Kind != storage.KindAPIKey || u.Name != "bad" || !strings.Contains(u.Reason, "decode rate_limit") {
		t.Errorf("Unreadable[1] = %+v", u)
	}
	ms, err := s.ListModels(ctx)
	mustNoErr(t, err)
	ks, err := s.ListAPIKeys(ctx)
	mustNoErr(t, err)
	if len(ms) != 2 || len(ks) != 2 {
		t.Errorf("the admin lists show %d models and %d keys, want both of each", len(ms), len(ks))
	}
}

// TestLoadIsOneSnapshot: while another Store keeps creating a direct
// model with a routing model on it and deleting both, every Load sees
// either both or neither, and no row newer than its revision.
func TestLoadIsOneSnapshot(t *testing.T) {
	s, url := newStore(t)
	w := openStore(t, url)
	ctx := t.Context()
	pk, err := w.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: testSecret})
	mustNoErr(t, err)

	var cycles atomic.Int64
	stop := make(chan struct{})
	writerErr := make(chan error, 1)
	go func() {
		writerErr <- func() error {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return nil
				default:
				}
				d, err := w.CreateModel(ctx, storage.Model{DisplayName: fmt.Sprint("d", i), Provider: "openai", ModelName: "m", ProviderKeyID: pk.ID})
				if err != nil {
					return err
				}
				r, err := w.CreateModel(ctx, storage.Model{DisplayName: fmt.Sprint("r", i),
					Routing: &storage.Routing{Targets: []storage.Target{{Model: d.DisplayName}}}})
				if err != nil {
					return err
				}
				if err := w.DeleteModel(ctx, r.ID); err != nil {
					return err
				}
				if err := w.DeleteModel(ctx, d.ID); err != nil {
					return err
				}
				cycles.Add(1)
			}
		}()
	}()
	// Load until the writer has been through enough cycles for the loads
	// to have overlapped its writes.
	for loads := 0; loads < 200 || cycles.Load() < 50; loads++ {
		ds, err := s.Load(ctx)
		mustNoErr(t, err)
		names := map[string]bool{}
		for _, m := range ds.Models {
			names[m.DisplayName] = true
			if m.Revision > ds.Revision {
				t.Fatalf("model %s at revision %d in a dataset at %d", m.DisplayName, m.Revision, ds.Revision)
			}
		}
		for _, m := range ds.Models {
			if m.Routing == nil {
				continue
			}
			if len(m.Routing.Targets) != 1 || !names[m.Routing.Targets[0].Model] {
				t.Fatalf("routing model %s targets %+v, which the same Load does not have", m.DisplayName, m.Routing.Targets)
			}
		}
	}
	close(stop)
	mustNoErr(t, <-writerErr)
}

// TestConcurrentCreateSameName: two Stores on one database (two
// replicas) create the same name at once, many times over: each time
// exactly one wins and the other gets ErrConflict.
func TestConcurrentCreateSameName(t *testing.T) {
	a, url := newStore(t)
	b := openStore(t, url)
	ctx := t.Context()
	for i := range 20 {
		name := fmt.Sprint("pk-", i)
		var (
			wg   sync.WaitGroup
			errs [2]error
		)
		for j, s := range []*postgres.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[j] = s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: name, Provider: "openai", Secret: testSecret})
			}()
		}
		wg.Wait()
		ok, conflict := 0, 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, storage.ErrConflict):
				conflict++
			default:
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("round %d: %d created, %d conflicts (%v), want one of each", i, ok, conflict, errs)
		}
	}
	pks, err := a.ListProviderKeys(ctx)
	mustNoErr(t, err)
	if len(pks) != 20 {
		t.Errorf("%d provider keys, want 20", len(pks))
	}
}

// TestConcurrentApply: two replicas apply the same file at once; the
// applies serialise, so one writes it and the other finds nothing to do,
// and the store takes one revision for it.
func TestConcurrentApply(t *testing.T) {
	a, url := newStore(t)
	b := openStore(t, url)
	ctx := t.Context()
	d := storage.Desired{
		ProviderKeys: []storage.ProviderKey{{DisplayName: "k", Provider: "openai", Secret: testSecret}},
		Models: []storage.Model{
			{DisplayName: "m", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: "k"},
			{DisplayName: "r", Routing: &storage.Routing{Targets: []storage.Target{{Model: "m"}}}},
		},
		APIKeys: []storage.APIKey{{DisplayName: "ci", KeyHash: strings.Repeat("c", 64), AllowedModels: []string{"r"}}},
	}
	var (
		wg   sync.WaitGroup
		res  [2]storage.ApplyResult
		errs [2]error
	)
	for i, s := range []*postgres.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = s.Apply(ctx, d, storage.ApplyOptions{})
		}()
	}
	wg.Wait()
	mustNoErr(t, errors.Join(errs[:]...))
	if res[0].Applied == res[1].Applied {
		t.Fatalf("applied %t and %t, want exactly one", res[0].Applied, res[1].Applied)
	}
	rev, err := a.Revision(ctx)
	mustNoErr(t, err)
	if rev != 1 {
		t.Errorf("revision %d after one apply, want 1", rev)
	}
}

// TestUsageIsNotConfiguration: ledger writes and prunes leave the store
// revision alone, so no replica reloads for them.
func TestUsageIsNotConfiguration(t *testing.T) {
	s, _ := newStore(t)
	ctx := t.Context()
	rec := storage.UsageRecord{CallID: "c", Attempt: 1, KeyID: "k", Endpoint: "chat.completions", Alias: "a", Target: "a", Status: 200, Outcome: "ok"}
	recs := make([]storage.UsageRecord, 1200) // three batches
	for i := range recs {
		recs[i] = rec
	}
	mustNoErr(t, s.AppendUsage(ctx, recs))
	rep, err := s.QueryUsage(ctx, storage.UsageQuery{})
	mustNoErr(t, err)
	if rep.Totals.Attempts != 1200 {
		t.Errorf("%d records, want 1200", rep.Totals.Attempts)
	}
	rev, err := s.Revision(ctx)
	mustNoErr(t, err)
	if rev != 0 {
		t.Errorf("revision %d after ledger writes, want 0", rev)
	}
}

// TestConcurrentUsageDims: two replicas append records with the same new
// dimensions at once; both succeed and share one usage_dims row.
func TestConcurrentUsageDims(t *testing.T) {
	a, url := newStore(t)
	b := openStore(t, url)
	ctx := t.Context()
	rec := storage.UsageRecord{CallID: "c", Attempt: 1, KeyID: "k", Endpoint: "chat.completions", Alias: "a", Target: "a", Status: 200, Outcome: "ok"}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for _, s := range []*postgres.Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.AppendUsage(ctx, []storage.UsageRecord{rec, rec})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		mustNoErr(t, err)
	}
	var dims int
	mustNoErr(t, rawConn(t, url).QueryRow(ctx, `SELECT count(*) FROM usage_dims`).Scan(&dims))
	if dims != 1 {
		t.Errorf("%d usage_dims rows, want 1", dims)
	}
}

// TestOpenBadURL: a URL that does not parse is refused without echoing it
// (it may hold a password).
func TestOpenBadURL(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:hunter2@[::1")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Open error %v, want one that does not show the password", err)
	}
}
