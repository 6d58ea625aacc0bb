// Package storagetest is the conformance suite for storage.Store
// implementations: the SQLite store and the admin API client run the same
// cases, which is what keeps local and remote modes identical.
//
// The suite accepts stores that cannot reveal provider secrets: a read may
// return Secret == "" (or the original secret), but SecretHint must always be
// storage.MaskSecret of the original. Checks on storage.Source (Revision,
// Load) run only when the store implements it.
package storagetest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
)

// Run runs the conformance suite against the stores that newStore returns.
// Every subtest calls newStore once and needs an empty store; newStore must
// arrange for the store to be closed (t.Cleanup) and fail t if it cannot
// build one.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"ProviderKey", providerKeyCases},
		{"Credential", credentialCases},
		{"Model", modelCases},
		{"APIKey", apiKeyCases},
		{"Revision", revisionCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					s := newStore(t)
					if s == nil {
						t.Fatal("newStore returned nil")
					}
					tc.fn(t, s)
				})
			}
		})
	}
}

// testCase is one named conformance check, run on a fresh store.
type testCase struct {
	name string
	fn   func(t *testing.T, s storage.Store)
}

// unknownID is an id no store will have assigned.
const unknownID = "00000000-0000-4000-8000-000000000000"

// wantErr fails t unless err wraps kind and its message contains every one
// of the given fragments.
func wantErr(t *testing.T, err, kind error, contains ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("got error %q (%T), want one that wraps %v", err, err, kind)
	}
	msg := storage.Message(err)
	for _, c := range contains {
		if !strings.Contains(msg, c) {
			t.Errorf("error message %q does not contain %q", msg, c)
		}
	}
}

// noErr fails t now if err is not nil.
func noErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// checkNewMeta checks the Meta of a freshly written row.
func checkNewMeta(t *testing.T, m storage.Meta) {
	t.Helper()
	if m.Revision <= 0 {
		t.Errorf("revision = %d, want > 0", m.Revision)
	}
	if m.CreatedAt.IsZero() {
		t.Error("created_at is not set")
	}
	if m.UpdatedAt.IsZero() {
		t.Error("updated_at is not set")
	}
	if m.UpdatedAt.Before(m.CreatedAt) {
		t.Errorf("updated_at %v is before created_at %v", m.UpdatedAt, m.CreatedAt)
	}
}

// checkUpdatedMeta checks the Meta of a row after an update of a row whose
// Meta was before.
func checkUpdatedMeta(t *testing.T, got, before storage.Meta) {
	t.Helper()
	if got.Revision <= before.Revision {
		t.Errorf("revision after update = %d, want > %d", got.Revision, before.Revision)
	}
	if !got.CreatedAt.Equal(before.CreatedAt) {
		t.Errorf("created_at changed on update: %v, was %v", got.CreatedAt, before.CreatedAt)
	}
	if got.UpdatedAt.Before(before.UpdatedAt) {
		t.Errorf("updated_at went back on update: %v, was %v", got.UpdatedAt, before.UpdatedAt)
	}
}

// sameMeta checks that two reads of an unchanged row agree.
func sameMeta(t *testing.T, got, want storage.Meta) {
	t.Helper()
	if got.Revision != want.Revision || !got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("meta = {rev %d, created %v, updated %v}, want {rev %d, created %v, updated %v}",
			got.Revision, got.CreatedAt, got.UpdatedAt, want.Revision, want.CreatedAt, want.UpdatedAt)
	}
}

// revisions checks that every write is stamped with a revision above all
// earlier ones and, for a storage.Source, that the store revision follows.
type revisions struct {
	t    *testing.T
	s    storage.Store
	last int64
}

func newRevisions(t *testing.T, s storage.Store) *revisions {
	r := &revisions{t: t, s: s}
	if src, ok := s.(storage.Source); ok {
		rev, err := src.Revision(t.Context())
		noErr(t, err, "Revision")
		r.last = rev
	}
	return r
}

// wrote records a create or update stamped with rev.
func (r *revisions) wrote(rev int64) {
	r.t.Helper()
	if rev <= r.last {
		r.t.Errorf("write got revision %d, want > %d (the previous write)", rev, r.last)
	}
	r.last = rev
	if src, ok := r.s.(storage.Source); ok {
		got, err := src.Revision(r.t.Context())
		noErr(r.t, err, "Revision")
		if got != rev {
			r.t.Errorf("store Revision() = %d after a write stamped %d, want equal", got, rev)
		}
	}
}

// deleted records a delete, which a Source must show as a new revision.
func (r *revisions) deleted() {
	r.t.Helper()
	src, ok := r.s.(storage.Source)
	if !ok {
		return
	}
	got, err := src.Revision(r.t.Context())
	noErr(r.t, err, "Revision")
	if got <= r.last {
		r.t.Errorf("store Revision() = %d after a delete, want > %d", got, r.last)
	}
	r.last = got
}

// Fixtures.

func ptr[T any](v T) *T { return &v }

// secretFor returns a secret long enough that MaskSecret shows its ends.
func secretFor(name string) string { return "sk-" + name + "-0123456789abcdef" }

func providerKey(name string) storage.ProviderKey {
	return storage.ProviderKey{
		DisplayName: name,
		Provider:    "openai",
		Secret:      secretFor(name),
	}
}

func direct(name, providerKeyID string) storage.Model {
	return storage.Model{
		DisplayName:   name,
		Provider:      "openai",
		ModelName:     "gpt-4o-mini",
		ProviderKeyID: providerKeyID,
	}
}

func routing(name string, targets ...string) storage.Model {
	m := storage.Model{DisplayName: name, Routing: &storage.Routing{Strategy: storage.StrategyFailover}}
	for _, tg := range targets {
		m.Routing.Targets = append(m.Routing.Targets, storage.Target{Model: tg})
	}
	return m
}

// keyHash returns the hash a caller key made from seed would have.
func keyHash(seed string) string {
	sum := sha256.Sum256([]byte("sk-aisix-" + seed))
	return hex.EncodeToString(sum[:])
}

func apiKey(name, seed string) storage.APIKey {
	return storage.APIKey{DisplayName: name, KeyHash: keyHash(seed), AllowedModels: []string{"*"}}
}

func mustCreateProviderKey(t *testing.T, s storage.Store, pk storage.ProviderKey) storage.ProviderKey {
	t.Helper()
	got, err := s.CreateProviderKey(t.Context(), pk)
	noErr(t, err, "CreateProviderKey "+pk.DisplayName)
	return got
}

func mustCreateModel(t *testing.T, s storage.Store, m storage.Model) storage.Model {
	t.Helper()
	got, err := s.CreateModel(t.Context(), m)
	noErr(t, err, "CreateModel "+m.DisplayName)
	return got
}

func mustCreateAPIKey(t *testing.T, s storage.Store, k storage.APIKey) storage.APIKey {
	t.Helper()
	got, err := s.CreateAPIKey(t.Context(), k)
	noErr(t, err, "CreateAPIKey "+k.DisplayName)
	return got
}

// jsonOf is v's JSON: the value shape of a model (no ID or Meta), or of a
// limit, for comparing whatever the implementation does with empty
// optional slices.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	noErr(t, err, "marshal")
	return string(b)
}

func sameModel(t *testing.T, got, want storage.Model) {
	t.Helper()
	if g, w := jsonOf(t, got), jsonOf(t, want); g != w {
		t.Errorf("model = %s\nwant    %s", g, w)
	}
	if want.ID != "" && got.ID != want.ID {
		t.Errorf("model id = %q, want %q", got.ID, want.ID)
	}
}
