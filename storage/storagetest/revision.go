package storagetest

import (
	"testing"

	"github.com/aisix/aisix/storage"
)

var revisionCases = []testCase{
	{"GrowsOnEveryWrite", func(t *testing.T, s storage.Store) {
		rv := newRevisions(t, s)
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		rv.wrote(pk.Revision)
		m := mustCreateModel(t, s, direct("gpt-4o", pk.ID))
		rv.wrote(m.Revision)
		r := mustCreateModel(t, s, routing("chat", "gpt-4o"))
		rv.wrote(r.Revision)
		k := mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))
		rv.wrote(k.Revision)

		pk.Secret = ""
		pk, err := s.UpdateProviderKey(t.Context(), pk, pk.Revision)
		noErr(t, err, "UpdateProviderKey")
		rv.wrote(pk.Revision)
		m, err = s.UpdateModel(t.Context(), m, m.Revision)
		noErr(t, err, "UpdateModel")
		rv.wrote(m.Revision)
		k, err = s.UpdateAPIKey(t.Context(), k, k.Revision)
		noErr(t, err, "UpdateAPIKey")
		rv.wrote(k.Revision)

		// A failed write changes nothing.
		before := rv.last
		_, err = s.CreateModel(t.Context(), direct("gpt-4o", pk.ID))
		wantErr(t, err, storage.ErrConflict)
		if src, ok := s.(storage.Source); ok {
			got, err := src.Revision(t.Context())
			noErr(t, err, "Revision")
			if got != before {
				t.Errorf("Revision() = %d after a failed write, want %d", got, before)
			}
		}

		noErr(t, s.DeleteAPIKey(t.Context(), k.ID), "DeleteAPIKey")
		rv.deleted()
		noErr(t, s.DeleteModel(t.Context(), r.ID), "DeleteModel")
		rv.deleted()
		noErr(t, s.DeleteModel(t.Context(), m.ID), "DeleteModel")
		rv.deleted()
		noErr(t, s.DeleteProviderKey(t.Context(), pk.ID), "DeleteProviderKey")
		rv.deleted()

		// A write after deletes still gets a higher revision.
		rv.wrote(mustCreateProviderKey(t, s, providerKey("again")).Revision)
	}},
	{"Load", func(t *testing.T, s storage.Store) {
		src, ok := s.(storage.Source)
		if !ok {
			t.Skip("store does not implement storage.Source")
		}
		ds, err := src.Load(t.Context())
		noErr(t, err, "Load")
		if len(ds.ProviderKeys)+len(ds.Models)+len(ds.APIKeys) != 0 {
			t.Fatalf("Load of a new store returned %d/%d/%d rows, want none",
				len(ds.ProviderKeys), len(ds.Models), len(ds.APIKeys))
		}
		pk := mustCreateProviderKey(t, s, providerKey("openai-primary"))
		m := mustCreateModel(t, s, fullDirect("gpt-4o", pk.ID))
		r := mustCreateModel(t, s, fullRouting("chat", "gpt-4o"))
		k := mustCreateAPIKey(t, s, apiKey("ci-bot", "one"))

		ds, err = src.Load(t.Context())
		noErr(t, err, "Load")
		rev, err := src.Revision(t.Context())
		noErr(t, err, "Revision")
		if ds.Revision != rev || ds.Revision != k.Revision {
			t.Errorf("Load revision = %d, want %d (Revision) = %d (last write)", ds.Revision, rev, k.Revision)
		}
		if len(ds.ProviderKeys) != 1 || len(ds.Models) != 2 || len(ds.APIKeys) != 1 {
			t.Fatalf("Load returned %d/%d/%d rows, want 1/2/1",
				len(ds.ProviderKeys), len(ds.Models), len(ds.APIKeys))
		}
		sameProviderKey(t, ds.ProviderKeys[0], pk, secretFor("openai-primary"))
		sameModel(t, ds.Models[0], r) // "chat" sorts before "gpt-4o"
		sameModel(t, ds.Models[1], m)
		sameAPIKey(t, ds.APIKeys[0], k)
	}},
}
