package routing_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestReloadKeepsUnchangedKeys: a reload after a write reuses the caller
// keys whose rows did not change and rebuilds those that did, including
// a key whose allowed model was deleted (its row is not rewritten, its
// list is), so every snapshot still answers as a fresh build would.
func TestReloadKeepsUnchangedKeys(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "aisix.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "pk", Provider: "openai", Secret: "sk-0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	var models []storage.Model
	for _, name := range []string{"m1", "m2"} {
		m, err := s.CreateModel(ctx, storage.Model{DisplayName: name, Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: pk.ID})
		if err != nil {
			t.Fatal(err)
		}
		models = append(models, m)
	}
	var keys []storage.APIKey
	for i, allowed := range [][]string{{"m1"}, {"m1", "m2"}, {"*"}} {
		k, err := s.CreateAPIKey(ctx, storage.APIKey{DisplayName: "k" + string(rune('a'+i)), KeyHash: strings.Repeat(string(rune('a'+i)), 64), AllowedModels: allowed})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	tbl := routing.NewTable(s, nil)
	if err := tbl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	byID := func() map[string]*routing.CallerKey {
		out := map[string]*routing.CallerKey{}
		for _, k := range tbl.Snapshot().CallerKeys() {
			out[k.ID] = k
		}
		return out
	}
	before := byID()

	// Key a disabled: rebuilt; b and c: the same objects.
	keys[0].Disabled = true
	if _, err := s.UpdateAPIKey(ctx, keys[0], 0); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	after := byID()
	if a := after[keys[0].ID]; a == before[keys[0].ID] || !a.Disabled {
		t.Errorf("the updated key: reused %v, disabled %v; want a new, disabled one", a == before[keys[0].ID], a.Disabled)
	}
	for _, k := range keys[1:] {
		if after[k.ID] != before[k.ID] {
			t.Errorf("key %s did not change but was rebuilt", k.DisplayName)
		}
	}

	// m2 deleted: b's list loses it without b's row being written.
	if err := s.DeleteModel(ctx, models[1].ID); err != nil {
		t.Fatal(err)
	}
	m3, err := s.CreateModel(ctx, storage.Model{DisplayName: "m2", Provider: "openai", ModelName: "gpt-4o", ProviderKeyID: pk.ID})
	if err != nil {
		t.Fatal(err)
	}
	if err := tbl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	snap := tbl.Snapshot()
	final := byID()
	b := final[keys[1].ID]
	if b == after[keys[1].ID] {
		t.Error("key b's allowed list lost a deleted model, but its old object was kept")
	}
	if !b.AllowsModel(snap.Model("m1")) || b.AllowsModel(snap.Model("m2")) {
		t.Errorf("key b allows m1 %v, the new m2 (%s) %v; want m1 only", b.AllowsModel(snap.Model("m1")), m3.ID, b.AllowsModel(snap.Model("m2")))
	}
	if final[keys[2].ID] != after[keys[2].ID] || !final[keys[2].ID].AllowsModel(snap.Model("m2")) {
		t.Error("the * key: want the same object, allowing the new m2")
	}
}

// TestReloadRebuildsKeyWhoseListChanged: a source that changes a key's
// allowed models without stamping its row (a store whose cascade does not)
// still gets the key rebuilt: reuse needs the same row and the same list.
func TestReloadRebuildsKeyWhoseListChanged(t *testing.T) {
	ctx := t.Context()
	src := proxytest.NewSource(storage.Dataset{Revision: 1,
		ProviderKeys: []storage.ProviderKey{{ID: "pk", DisplayName: "pk", Provider: "openai", Secret: "sk-0123456789abcdef"}},
		Models: []storage.Model{
			{ID: "m1", DisplayName: "m1", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"},
			{ID: "m2", DisplayName: "m2", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: "pk"},
		},
		APIKeys: []storage.APIKey{{ID: "k", KeyHash: strings.Repeat("a", 64), AllowedModels: []string{"m1", "m2"}, AllowedModelIDs: []string{"m1", "m2"}, Meta: storage.Meta{Revision: 1}}},
	})
	tbl := routing.NewTable(src, nil)
	if err := tbl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	src.Update(func(ds *storage.Dataset) {
		ds.APIKeys[0].AllowedModels, ds.APIKeys[0].AllowedModelIDs = []string{"m1"}, []string{"m1"}
	})
	if err := tbl.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	snap := tbl.Snapshot()
	k := snap.CallerKeys()[0]
	if !k.AllowsModel(snap.Model("m1")) || k.AllowsModel(snap.Model("m2")) {
		t.Errorf("after m2 left the key's list: allows m1 %v, m2 %v; want m1 only", k.AllowsModel(snap.Model("m1")), k.AllowsModel(snap.Model("m2")))
	}
}
