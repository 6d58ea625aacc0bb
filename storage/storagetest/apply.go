package storagetest

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
)

// ApplyStore is a store that applies whole configurations.
type ApplyStore interface {
	storage.Store
	storage.Applier
}

// RunApply runs the conformance suite of storage.Applier against the
// stores newStore returns, on the terms of Run: a fresh, empty store per
// subtest.
func RunApply(t *testing.T, newStore func(t *testing.T) ApplyStore) {
	t.Helper()
	for _, tc := range applyCases {
		t.Run("Apply/"+tc.name, func(t *testing.T) {
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			tc.fn(t, s)
		})
	}
}

// tutorial is the tutorial's setup as a file states it: two provider
// keys, a direct model on each, a routing group over both and a caller
// key with a rate limit.
func tutorial() storage.Desired {
	return storage.Desired{
		ProviderKeys: []storage.ProviderKey{
			providerKey("openai-primary"),
			{DisplayName: "anthropic", Provider: "anthropic", Secret: secretFor("anthropic")},
		},
		Models: []storage.Model{
			direct("gpt-4o", "openai-primary"),
			{DisplayName: "claude-sonnet", Provider: "anthropic", ModelName: "claude-sonnet-4-5", ProviderKeyID: "anthropic"},
			routing("chat", "gpt-4o", "claude-sonnet"),
		},
		APIKeys: []storage.APIKey{{
			DisplayName: "ci-bot", KeyHash: keyHash("ci-bot"), AllowedModels: []string{"chat"},
			RateLimit: &storage.RateLimit{RPM: 60},
		}},
	}
}

func mustApply(t *testing.T, s ApplyStore, d storage.Desired, opts storage.ApplyOptions) storage.ApplyResult {
	t.Helper()
	res, err := s.Apply(t.Context(), d, opts)
	noErr(t, err, "Apply")
	return res
}

// planOf renders changes one a line: action kind name, and the fields of
// an update.
func planOf(changes []storage.Change) string {
	var b strings.Builder
	for _, c := range changes {
		b.WriteString(c.Action + " " + c.Kind + " " + c.Name)
		for _, f := range c.Fields {
			b.WriteString(" " + f.Field)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// storeRevision is the store revision: the Source's when there is one,
// else the given fallback (what the last apply said).
func storeRevision(t *testing.T, s storage.Store, fallback int64) int64 {
	t.Helper()
	if src, ok := s.(storage.Source); ok {
		rev, err := src.Revision(t.Context())
		noErr(t, err, "Revision")
		return rev
	}
	return fallback
}

// snapshot is everything a store lists, as JSON with ids and revisions:
// two equal snapshots mean nothing was written in between.
func snapshot(t *testing.T, s storage.Store) string {
	t.Helper()
	pks, err := s.ListProviderKeys(t.Context())
	noErr(t, err, "ListProviderKeys")
	ms, err := s.ListModels(t.Context())
	noErr(t, err, "ListModels")
	ks, err := s.ListAPIKeys(t.Context())
	noErr(t, err, "ListAPIKeys")
	type row struct {
		ID  string
		Rev int64
		V   any
	}
	var rows []row
	for _, pk := range pks {
		pk.Secret = "" // a client cannot read it
		rows = append(rows, row{pk.ID, pk.Revision, pk})
	}
	for _, m := range ms {
		rows = append(rows, row{m.ID, m.Revision, m})
	}
	for _, k := range ks {
		rows = append(rows, row{k.ID, k.Revision, k})
	}
	return jsonOf(t, rows)
}

// revisionsOf lists the revision of every stored row by name.
func revisionsOf(t *testing.T, s storage.Store) map[string]int64 {
	t.Helper()
	out := make(map[string]int64)
	pks, err := s.ListProviderKeys(t.Context())
	noErr(t, err, "ListProviderKeys")
	for _, pk := range pks {
		out[storage.KindProviderKey+" "+pk.DisplayName] = pk.Revision
	}
	ms, err := s.ListModels(t.Context())
	noErr(t, err, "ListModels")
	for _, m := range ms {
		out[storage.KindModelRow+" "+m.DisplayName] = m.Revision
	}
	ks, err := s.ListAPIKeys(t.Context())
	noErr(t, err, "ListAPIKeys")
	for _, k := range ks {
		out[storage.KindAPIKey+" "+k.DisplayName] = k.Revision
	}
	return out
}

var applyCases = []applyCase{
	{"CreateFromEmpty", func(t *testing.T, s ApplyStore) {
		before := storeRevision(t, s, 0)
		res := mustApply(t, s, tutorial(), storage.ApplyOptions{})
		want := `create provider_key anthropic
create provider_key openai-primary
create model claude-sonnet
create model gpt-4o
create model chat
create api_key ci-bot
`
		if got := planOf(res.Changes); got != want {
			t.Errorf("changes:\n%swant\n%s", got, want)
		}
		if !res.Applied {
			t.Error("Applied = false after creating everything")
		}
		for _, c := range res.Changes {
			if c.ID == "" {
				t.Errorf("%s %s: no id", c.Kind, c.Name)
			}
		}
		if before != 0 && res.Revision != before+1 {
			t.Errorf("revision = %d after one apply at %d, want %d (one revision)", res.Revision, before, before+1)
		}
		if got := storeRevision(t, s, res.Revision); got != res.Revision {
			t.Errorf("store revision = %d, apply said %d", got, res.Revision)
		}
		revs := revisionsOf(t, s)
		if len(revs) != 6 {
			t.Errorf("stored %d rows, want 6: %v", len(revs), revs)
		}
		for name, rev := range revs {
			if rev != res.Revision {
				t.Errorf("%s has revision %d, want the apply's %d", name, rev, res.Revision)
			}
		}
		// References by name were stored as ids.
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		pks, err := s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		pkID := map[string]string{}
		for _, pk := range pks {
			pkID[pk.DisplayName] = pk.ID
		}
		for _, m := range ms {
			if m.DisplayName == "gpt-4o" && m.ProviderKeyID != pkID["openai-primary"] {
				t.Errorf("gpt-4o provider_key_id = %q, want %q", m.ProviderKeyID, pkID["openai-primary"])
			}
			if m.DisplayName == "chat" {
				sameModel(t, m, routing("chat", "gpt-4o", "claude-sonnet"))
			}
		}
		ks, err := s.ListAPIKeys(t.Context())
		noErr(t, err, "ListAPIKeys")
		if len(ks) != 1 || ks[0].RateLimit == nil || ks[0].RateLimit.RPM != 60 || !slices.Equal(ks[0].AllowedModels, []string{"chat"}) {
			t.Errorf("caller keys = %+v", ks)
		}
	}},
	{"SecondApplyChangesNothing", func(t *testing.T, s ApplyStore) {
		first := mustApply(t, s, tutorial(), storage.ApplyOptions{})
		snap := snapshot(t, s)
		res := mustApply(t, s, tutorial(), storage.ApplyOptions{})
		if res.Applied || res.Changed() || res.Revision != first.Revision {
			t.Errorf("second apply: applied %v, revision %d (first %d), changes:\n%s", res.Applied, res.Revision, first.Revision, planOf(res.Changes))
		}
		for _, c := range res.Changes {
			if c.Action != storage.ActionUnchanged || c.ID == "" {
				t.Errorf("%s %s: %s (id %q), want unchanged with its id", c.Kind, c.Name, c.Action, c.ID)
			}
		}
		if snapshot(t, s) != snap {
			t.Error("a no-op apply changed the stored rows")
		}
		if got := storeRevision(t, s, res.Revision); got != first.Revision {
			t.Errorf("store revision = %d after a no-op apply, want %d", got, first.Revision)
		}
	}},
	{"UpdateOneField", func(t *testing.T, s ApplyStore) {
		first := mustApply(t, s, tutorial(), storage.ApplyOptions{})
		d := tutorial()
		d.Models[0].ModelName = "gpt-4o-2024-11-20"
		d.APIKeys[0].RateLimit.RPM = 120
		res := mustApply(t, s, d, storage.ApplyOptions{})
		want := []storage.Change{
			{Kind: storage.KindModelRow, Name: "gpt-4o", Action: storage.ActionUpdate,
				Fields: []storage.FieldChange{{Field: "model_name", Old: `"gpt-4o-mini"`, New: `"gpt-4o-2024-11-20"`}}},
			{Kind: storage.KindAPIKey, Name: "ci-bot", Action: storage.ActionUpdate,
				Fields: []storage.FieldChange{{Field: "rate_limit.rpm", Old: "60", New: "120"}}},
		}
		var got []storage.Change
		for _, c := range res.Changes {
			if c.Action != storage.ActionUnchanged {
				c.ID = ""
				got = append(got, c)
			}
		}
		if jsonOf(t, got) != jsonOf(t, want) {
			t.Errorf("changes = %s\nwant      %s", jsonOf(t, got), jsonOf(t, want))
		}
		if !res.Applied || res.Revision <= first.Revision {
			t.Errorf("applied %v at revision %d, want a new one after %d", res.Applied, res.Revision, first.Revision)
		}
		revs := revisionsOf(t, s)
		for name, rev := range revs {
			wantRev := first.Revision
			if name == "model gpt-4o" || name == "api_key ci-bot" {
				wantRev = res.Revision
			}
			if rev != wantRev {
				t.Errorf("%s at revision %d, want %d", name, rev, wantRev)
			}
		}
	}},
	{"SecretShownOnlyAsChanged", func(t *testing.T, s ApplyStore) {
		mustApply(t, s, tutorial(), storage.ApplyOptions{})
		d := tutorial()
		d.ProviderKeys[1].Secret = "sk-rotated-secret-0123456789"
		d.APIKeys[0].KeyHash = keyHash("rotated")
		res := mustApply(t, s, d, storage.ApplyOptions{})
		out := jsonOf(t, res)
		for _, secret := range []string{"sk-rotated-secret-0123456789", keyHash("rotated"), keyHash("ci-bot"), secretFor("openai-primary")} {
			if strings.Contains(out, secret) {
				t.Errorf("the result shows a secret: %s", out)
			}
		}
		for _, c := range res.Changes {
			switch c.Name {
			case "anthropic", "ci-bot":
				if len(c.Fields) != 1 || !c.Fields[0].Secret || c.Fields[0].Old != c.Fields[0].New {
					t.Errorf("%s: %+v, want one field shown only as changed", c.Name, c.Fields)
				}
			default:
				if c.Action != storage.ActionUnchanged {
					t.Errorf("%s: %s, want unchanged", c.Name, c.Action)
				}
			}
		}
		// An empty secret keeps the stored one.
		d.ProviderKeys[1].Secret = ""
		res = mustApply(t, s, d, storage.ApplyOptions{})
		if res.Changed() {
			t.Errorf("an empty secret changed:\n%s", planOf(res.Changes))
		}
		pks, err := s.ListProviderKeys(t.Context())
		noErr(t, err, "ListProviderKeys")
		for _, pk := range pks {
			if pk.DisplayName == "anthropic" && pk.SecretHint != storage.MaskSecret("sk-rotated-secret-0123456789") {
				t.Errorf("anthropic secret hint = %q, want the rotated secret's", pk.SecretHint)
			}
		}
	}},
	{"OrderIndependent", func(t *testing.T, s ApplyStore) {
		want := planOf(mustApply(t, s, tutorial(), storage.ApplyOptions{DryRun: true}).Changes)
		r := rand.New(rand.NewPCG(1, 2))
		for range 5 {
			d := tutorial()
			r.Shuffle(len(d.ProviderKeys), func(i, j int) { d.ProviderKeys[i], d.ProviderKeys[j] = d.ProviderKeys[j], d.ProviderKeys[i] })
			r.Shuffle(len(d.Models), func(i, j int) { d.Models[i], d.Models[j] = d.Models[j], d.Models[i] })
			if got := planOf(mustApply(t, s, d, storage.ApplyOptions{DryRun: true}).Changes); got != want {
				t.Fatalf("shuffled file plans\n%swant\n%s", got, want)
			}
		}
		d := tutorial()
		slices.Reverse(d.Models) // the routing group before its targets
		if res := mustApply(t, s, d, storage.ApplyOptions{}); !res.Applied {
			t.Error("reversed file not applied")
		}
	}},
	{"AllOrNothing", func(t *testing.T, s ApplyStore) {
		for _, seeded := range []bool{false, true} {
			var rev int64
			if seeded {
				rev = mustApply(t, s, tutorial(), storage.ApplyOptions{}).Revision
			}
			rev = storeRevision(t, s, rev)
			snap := snapshot(t, s)
			d := tutorial()
			d.Models[0].ModelName = "gpt-4o-2024-11-20"
			d.ProviderKeys = append(d.ProviderKeys, providerKey("extra"))
			d.APIKeys = append(d.APIKeys, storage.APIKey{
				DisplayName: "last", KeyHash: keyHash("last"), AllowedModels: []string{"chat", "gpt-4o-tertiary"},
			})
			_, err := s.Apply(t.Context(), d, storage.ApplyOptions{})
			wantErr(t, err, storage.ErrInvalid, `api_keys[last].allowed_models[1]: "gpt-4o-tertiary" is not a model in the file or the store`)
			if snapshot(t, s) != snap {
				t.Error("a failed apply wrote something")
			}
			if got := storeRevision(t, s, rev); got != rev {
				t.Errorf("store revision = %d after a failed apply, want %d", got, rev)
			}
		}
	}},
	{"RollsBackAFailedWrite", func(t *testing.T, s ApplyStore) {
		// A clash only the write finds: the key hash of a stored key the
		// file does not manage. Everything before it is rolled back.
		mustCreateAPIKey(t, s, storage.APIKey{KeyHash: keyHash("taken"), AllowedModels: []string{"*"}})
		rev := storeRevision(t, s, 0)
		snap := snapshot(t, s)
		d := tutorial()
		d.APIKeys[0].KeyHash = keyHash("taken")
		_, err := s.Apply(t.Context(), d, storage.ApplyOptions{})
		wantErr(t, err, storage.ErrConflict, "key_hash")
		if snapshot(t, s) != snap {
			t.Error("a failed apply wrote something")
		}
		if got := storeRevision(t, s, rev); got != rev {
			t.Errorf("store revision = %d after a failed apply, want %d", got, rev)
		}
		// With prune the stored key goes first, and its hash is free.
		mustApply(t, s, d, storage.ApplyOptions{Prune: true})
	}},
	{"EveryErrorAtOnce", func(t *testing.T, s ApplyStore) {
		d := tutorial()
		d.Models[2].Routing.Targets[1].Model = "gpt-4o-tertiary"
		d.Models = append(d.Models, direct("gpt-4o", "nowhere"))
		_, err := s.Apply(t.Context(), d, storage.ApplyOptions{})
		wantErr(t, err, storage.ErrInvalid,
			`models[chat].routing.targets[1].model: "gpt-4o-tertiary" is not a model in the file or the store`,
			`models[gpt-4o].provider_key_id: "nowhere" is not a provider key in the file or the store`,
			`models[gpt-4o]: the name "gpt-4o" is listed 2 times`)
	}},
	{"DryRun", func(t *testing.T, s ApplyStore) {
		rev := storeRevision(t, s, 0)
		res := mustApply(t, s, tutorial(), storage.ApplyOptions{DryRun: true})
		if res.Applied || !res.Changed() || len(res.Changes) != 6 {
			t.Errorf("dry run: applied %v, changes:\n%s", res.Applied, planOf(res.Changes))
		}
		for _, c := range res.Changes {
			if c.ID != "" {
				t.Errorf("dry run create of %s has id %q", c.Name, c.ID)
			}
		}
		if snap := snapshot(t, s); snap != "null" {
			t.Errorf("dry run wrote %s", snap)
		}
		if got := storeRevision(t, s, rev); got != rev || res.Revision != rev {
			t.Errorf("revision %d (result %d) after a dry run, want %d", got, res.Revision, rev)
		}
	}},
	{"Prune", func(t *testing.T, s ApplyStore) {
		mustApply(t, s, tutorial(), storage.ApplyOptions{})
		mustCreateAPIKey(t, s, storage.APIKey{KeyHash: keyHash("anonymous"), AllowedModels: []string{"*"}})
		d := storage.Desired{
			ProviderKeys: tutorial().ProviderKeys[:1],
			Models:       tutorial().Models[:1],
		}
		kept := snapshot(t, s)
		res := mustApply(t, s, d, storage.ApplyOptions{})
		want := `unchanged provider_key openai-primary
unmanaged provider_key anthropic
unchanged model gpt-4o
unmanaged model chat
unmanaged model claude-sonnet
unmanaged api_key 
unmanaged api_key ci-bot
`
		if got := planOf(res.Changes); got != want || res.Applied {
			t.Errorf("without prune (applied %v):\n%swant\n%s", res.Applied, got, want)
		}
		if snapshot(t, s) != kept {
			t.Error("an apply without prune changed what the file does not name")
		}
		res = mustApply(t, s, d, storage.ApplyOptions{Prune: true})
		want = `delete api_key 
delete api_key ci-bot
delete model chat
delete model claude-sonnet
delete provider_key anthropic
unchanged provider_key openai-primary
unchanged model gpt-4o
`
		if got := planOf(res.Changes); got != want || !res.Applied {
			t.Errorf("with prune (applied %v):\n%swant\n%s", res.Applied, got, want)
		}
		revs := revisionsOf(t, s)
		if len(revs) != 2 || revs["provider_key openai-primary"] == 0 || revs["model gpt-4o"] == 0 {
			t.Errorf("after prune the store holds %v, want openai-primary and gpt-4o", revs)
		}
		if got := storeRevision(t, s, res.Revision); got != res.Revision {
			t.Errorf("store revision = %d, apply said %d", got, res.Revision)
		}
	}},
	{"PruneRefusesReferencesToThePruned", func(t *testing.T, s ApplyStore) {
		mustApply(t, s, tutorial(), storage.ApplyOptions{})
		d := tutorial()
		d.ProviderKeys = d.ProviderKeys[:1] // anthropic goes, claude-sonnet still uses it
		_, err := s.Apply(t.Context(), d, storage.ApplyOptions{Prune: true})
		wantErr(t, err, storage.ErrInvalid, `models[claude-sonnet].provider_key_id: "anthropic" is not a provider key in the file`)
		// Without prune the stored key is still there to refer to.
		mustApply(t, s, d, storage.ApplyOptions{})
	}},
	{"IfRevision", func(t *testing.T, s ApplyStore) {
		first := mustApply(t, s, tutorial(), storage.ApplyOptions{})
		d := tutorial()
		d.Models[0].ModelName = "gpt-4o-2024-11-20"
		snap := snapshot(t, s)
		_, err := s.Apply(t.Context(), d, storage.ApplyOptions{IfRevision: first.Revision + 5})
		wantErr(t, err, storage.ErrRevisionMismatch)
		if snapshot(t, s) != snap {
			t.Error("a refused apply wrote something")
		}
		res := mustApply(t, s, d, storage.ApplyOptions{IfRevision: first.Revision})
		if !res.Applied {
			t.Error("apply at the current revision not applied")
		}
	}},
	{"KindChange", func(t *testing.T, s ApplyStore) {
		mustApply(t, s, tutorial(), storage.ApplyOptions{})
		// gpt-4o becomes a routing model over claude-sonnet, and chat stops
		// targeting it, in one apply.
		d := tutorial()
		d.Models[0] = routing("gpt-4o", "claude-sonnet")
		d.Models[2] = routing("chat", "claude-sonnet")
		res := mustApply(t, s, d, storage.ApplyOptions{Prune: true})
		if !res.Applied {
			t.Fatalf("not applied:\n%s", planOf(res.Changes))
		}
		ms, err := s.ListModels(t.Context())
		noErr(t, err, "ListModels")
		for _, m := range ms {
			if m.DisplayName == "gpt-4o" {
				sameModel(t, m, routing("gpt-4o", "claude-sonnet"))
			}
		}
		// A stored routing model the file does not name keeps its target
		// a direct model.
		mustCreateModel(t, s, routing("legacy", "claude-sonnet"))
		d.Models[1] = routing("claude-sonnet", "gpt-4o")
		_, err = s.Apply(t.Context(), d, storage.ApplyOptions{})
		wantErr(t, err, storage.ErrConflict, `models[claude-sonnet]: would become a routing model, but routing model "legacy" (not in the file) targets it`)
	}},
}

// applyCase is one named check of RunApply, run on a fresh store.
type applyCase struct {
	name string
	fn   func(t *testing.T, s ApplyStore)
}

// Large is a configuration of providerKeys provider keys, models
// models (one in ten a routing model over three direct ones) and apiKeys
// caller keys, references by name, as Apply takes it: for benchmarks.
func Large(providerKeys, models, apiKeys int) storage.Desired {
	var d storage.Desired
	for i := range providerKeys {
		d.ProviderKeys = append(d.ProviderKeys, storage.ProviderKey{
			DisplayName: fmt.Sprintf("pk-%04d", i), Provider: "openai", Secret: fmt.Sprintf("sk-%04d-0123456789abcdef", i),
		})
	}
	routers := models / 10
	direct := models - routers
	for i := range direct {
		d.Models = append(d.Models, storage.Model{
			DisplayName: fmt.Sprintf("direct-%04d", i), Provider: "openai", ModelName: "gpt-4o",
			ProviderKeyID: fmt.Sprintf("pk-%04d", i%providerKeys), Timeout: new(int64(30000)), Retries: new(2),
			Cooldown: &storage.Cooldown{TriggerStatuses: []int{429, 503}},
		})
	}
	for i := range routers {
		var targets []storage.Target
		for j := range 3 {
			targets = append(targets, storage.Target{Model: fmt.Sprintf("direct-%04d", (3*i+j)%direct), Weight: new(j + 1)})
		}
		d.Models = append(d.Models, storage.Model{
			DisplayName: fmt.Sprintf("router-%04d", i),
			Routing:     &storage.Routing{Strategy: storage.StrategyWeighted, Targets: targets, MaxFallbacks: new(2)},
		})
	}
	for i := range apiKeys {
		allowed := []string{"*"}
		if i%4 == 0 {
			allowed = []string{"router-0001", "direct-0002"}
		}
		d.APIKeys = append(d.APIKeys, storage.APIKey{
			DisplayName: fmt.Sprintf("key-%05d", i), KeyHash: keyHash(fmt.Sprint(i)), AllowedModels: allowed,
		})
	}
	return d
}
