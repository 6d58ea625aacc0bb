package sqlite_test

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestLoadSince drives a store through random writes (caller keys
// created, updated, deleted and made unreadable; models created, renamed
// and deleted, which re-renders or cascades the keys' allowed lists) and,
// after every few of them, checks that LoadSince from the last result
// returns exactly what a full Load does: rows, order, allowed names and
// unreadable rows. A chain of deltas would drift on any row it missed.
func TestLoadSince(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	s := openStore(t, path)
	ctx := t.Context()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	mustNoErr(t, err)
	defer db.Close()

	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-0123456789abcdef"})
	mustNoErr(t, err)
	rng := rand.New(rand.NewPCG(7, 11))
	var models []storage.Model
	var keys []storage.APIKey
	seq := 0
	newModel := func() {
		seq++
		m, err := s.CreateModel(ctx, storage.Model{DisplayName: fmt.Sprintf("m%d", seq), Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID})
		mustNoErr(t, err)
		models = append(models, m)
	}
	allowed := func() []string {
		if len(models) == 0 || rng.IntN(5) == 0 {
			return []string{"*"}
		}
		var names []string
		for _, i := range rng.Perm(len(models))[:1+rng.IntN(min(3, len(models)))] {
			names = append(names, models[i].DisplayName)
		}
		if rng.IntN(4) == 0 {
			names = append(names, "*")
		}
		return names
	}
	var routers []storage.Model
	newRouter := func() {
		var direct []storage.Model
		for _, m := range models {
			if m.Routing == nil {
				direct = append(direct, m)
			}
		}
		if len(direct) < 2 {
			return
		}
		seq++
		w := 1 + rng.IntN(5)
		m, err := s.CreateModel(ctx, storage.Model{DisplayName: fmt.Sprintf("r%d", seq), Routing: &storage.Routing{
			Targets: []storage.Target{{Model: direct[rng.IntN(len(direct))].DisplayName, Weight: &w}, {Model: direct[0].DisplayName}},
		}})
		if err != nil && strings.Contains(err.Error(), "listed twice") {
			return // both picks were direct[0]
		}
		mustNoErr(t, err)
		routers = append(routers, m)
	}
	for range 3 {
		newModel()
	}
	newRouter()
	prev, err := s.Load(ctx)
	mustNoErr(t, err)
	check := func(step int) {
		t.Helper()
		full, err := s.Load(ctx)
		mustNoErr(t, err)
		got, err := s.LoadSince(ctx, prev)
		mustNoErr(t, err)
		if !reflect.DeepEqual(got, full) {
			t.Fatalf("step %d: LoadSince differs from Load\n got %d keys, %d unreadable: %+v\nwant %d keys, %d unreadable: %+v",
				step, len(got.APIKeys), len(got.Unreadable), got, len(full.APIKeys), len(full.Unreadable), full)
		}
		prev = got
	}
	for step := range 150 {
		switch op := rng.IntN(20); {
		case op < 6 || len(keys) == 0:
			seq++
			k, err := s.CreateAPIKey(ctx, storage.APIKey{DisplayName: fmt.Sprintf("k%d", seq), KeyHash: fmt.Sprintf("%064x", seq), AllowedModels: allowed()})
			mustNoErr(t, err)
			keys = append(keys, k)
		case op < 10:
			i := rng.IntN(len(keys))
			k, err := s.GetAPIKey(ctx, keys[i].ID)
			mustNoErr(t, err)
			k.AllowedModels, k.Disabled = allowed(), rng.IntN(2) == 0
			if rng.IntN(3) == 0 {
				k.RateLimit = &storage.RateLimit{RPM: int64(1 + rng.IntN(100))}
			}
			k, err = s.UpdateAPIKey(ctx, k, 0)
			mustNoErr(t, err)
			keys[i] = k
		case op < 12:
			i := rng.IntN(len(keys))
			mustNoErr(t, s.DeleteAPIKey(ctx, keys[i].ID))
			keys = append(keys[:i], keys[i+1:]...)
		case op < 13:
			// What a newer binary would write: limits this one cannot
			// decode, under a new revision.
			i := rng.IntN(len(keys))
			tx, err := db.BeginTx(ctx, nil)
			mustNoErr(t, err)
			_, err = tx.ExecContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision'`)
			mustNoErr(t, err)
			_, err = tx.ExecContext(ctx, `UPDATE api_keys SET rate_limit = '{"rpm":"lots"}', revision = (SELECT value FROM meta WHERE key = 'revision') WHERE id = ?`, keys[i].ID)
			mustNoErr(t, err)
			mustNoErr(t, tx.Commit())
		case op < 15:
			newModel()
		case op < 17 && len(models) > 0:
			i := rng.IntN(len(models))
			m, err := s.GetModel(ctx, models[i].ID)
			mustNoErr(t, err)
			seq++
			m.DisplayName = fmt.Sprintf("renamed%d", seq)
			m, err = s.UpdateModel(ctx, m, 0)
			mustNoErr(t, err)
			models[i] = m
		case op < 18 && len(models) > 1:
			i := rng.IntN(len(models))
			if err := s.DeleteModel(ctx, models[i].ID); err != nil {
				// A routing model's target is refused (ON DELETE RESTRICT).
				if !strings.Contains(err.Error(), "target") && !strings.Contains(err.Error(), "use") {
					t.Fatal(err)
				}
				break
			}
			gone := models[i].DisplayName
			models = append(models[:i], models[i+1:]...)
			if rng.IntN(2) == 0 && len(models) > 0 {
				// Another model takes the deleted one's name.
				j := rng.IntN(len(models))
				m, err := s.GetModel(ctx, models[j].ID)
				mustNoErr(t, err)
				m.DisplayName = gone
				models[j], err = s.UpdateModel(ctx, m, 0)
				mustNoErr(t, err)
			}
			// The keys' cached rows now name a deleted model: re-read.
			for j := range keys {
				k, err := s.GetAPIKey(ctx, keys[j].ID)
				mustNoErr(t, err)
				keys[j] = k
			}
		}
		switch rng.IntN(12) {
		case 0:
			newRouter()
		case 1:
			if len(routers) > 0 {
				// A routing model whose spec a newer binary wrote.
				r := routers[rng.IntN(len(routers))]
				tx, err := db.BeginTx(ctx, nil)
				mustNoErr(t, err)
				_, err = tx.ExecContext(ctx, `UPDATE meta SET value = value + 1 WHERE key = 'revision'`)
				mustNoErr(t, err)
				_, err = tx.ExecContext(ctx, `UPDATE models SET spec = '{"timeout":"soon"}', revision = (SELECT value FROM meta WHERE key = 'revision') WHERE id = ?`, r.ID)
				mustNoErr(t, err)
				mustNoErr(t, tx.Commit())
			}
		}
		if rng.IntN(3) == 0 {
			check(step)
		}
	}
	check(150)
	var badKeys, badModels, routing int
	for _, u := range prev.Unreadable {
		switch u.Kind {
		case storage.KindAPIKey:
			badKeys++
		case storage.KindModelRow:
			badModels++
		}
	}
	for _, m := range prev.Models {
		if m.Routing != nil {
			routing++
		}
	}
	if len(prev.APIKeys) < 20 || badKeys == 0 || badModels == 0 || routing == 0 {
		t.Fatalf("the walk ended with %d keys, %d routing models, %d unreadable keys and %d unreadable models: too few to have tested much",
			len(prev.APIKeys), routing, badKeys, badModels)
	}
}

// TestLoadSinceRevisionBack: a store whose revision went below prev's (a
// backup restored) is loaded whole, not as changes.
func TestLoadSinceRevisionBack(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "aisix.db"))
	ctx := t.Context()
	_, err := s.CreateAPIKey(ctx, storage.APIKey{DisplayName: "a", KeyHash: strings.Repeat("a", 64), AllowedModels: []string{"*"}})
	mustNoErr(t, err)
	full, err := s.Load(ctx)
	mustNoErr(t, err)
	// A prev from "the future" holding a key the store never had.
	future := storage.Dataset{Revision: full.Revision + 10, APIKeys: []storage.APIKey{{ID: "ghost", Meta: storage.Meta{CreatedAt: time.Now()}}}}
	got, err := s.LoadSince(ctx, future)
	mustNoErr(t, err)
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("LoadSince from a later revision = %+v, want the full load %+v", got, full)
	}
}

var _ storage.DeltaSource = (*sqlite.Store)(nil)
