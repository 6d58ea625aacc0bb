package storagetest

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/secrets"
)

// SecretStore is a store that encrypts provider secrets at rest
// (storage/sqlite and storage/postgres opened WithSecrets).
type SecretStore interface {
	storage.Store
	storage.Source
	storage.Applier
	EncryptSecrets(ctx context.Context, scope secrets.Scope) (secrets.Migration, error)
	SecretKeyCounts(ctx context.Context) (map[string]int, error)
}

// SecretDB is one empty database the suite may open several times, each
// time with another keyring (nil: none), and change behind the store's
// back with Exec (plain SQL without parameters, valid in every dialect).
type SecretDB struct {
	Open func(t *testing.T, kr *secrets.Keyring) SecretStore
	Exec func(t *testing.T, sql string)
}

// TestKeyring returns a keyring of new random keys: a current one and n
// previous ones.
func TestKeyring(t testing.TB, previous ...*secrets.Keyring) *secrets.Keyring {
	t.Helper()
	cur, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var prev [][]byte
	for _, p := range previous {
		prev = append(prev, rawKey(p.CurrentID()))
	}
	kr, err := secrets.NewKeyring(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	rawKeys.Store(kr.CurrentID(), cur)
	return kr
}

// rawKeys remembers the keys TestKeyring made, by ID, so a later keyring
// can carry an earlier one as a previous key.
var rawKeys sync.Map

func rawKey(id string) []byte {
	k, _ := rawKeys.Load(id)
	b, _ := k.([]byte)
	return b
}

// RunSecrets runs the encryption-at-rest checks against the databases
// newDB returns (one per subtest).
func RunSecrets(t *testing.T, newDB func(t *testing.T) SecretDB) {
	t.Helper()
	t.Run("ReadsBackUnderEveryKey", func(t *testing.T) {
		db := newDB(t)
		old := TestKeyring(t)
		s := db.Open(t, old)
		pk, err := s.CreateProviderKey(t.Context(), providerKey("a"))
		noErr(t, err, "create")
		checkSecret(t, pk, secretFor("a"))
		updated := pk
		updated.Secret = secretFor("a2")
		_, err = s.UpdateProviderKey(t.Context(), updated, 0)
		noErr(t, err, "update")
		counts, err := s.SecretKeyCounts(t.Context())
		noErr(t, err, "counts")
		if len(counts) != 1 || counts[old.CurrentID()] != 1 {
			t.Fatalf("SecretKeyCounts = %v, want one row under %s", counts, old.CurrentID())
		}

		// A store with the key as a previous one reads it.
		next := TestKeyring(t, old)
		got, err := db.Open(t, next).GetProviderKey(t.Context(), pk.ID)
		noErr(t, err, "get under the next keyring")
		checkSecret(t, got, secretFor("a2"))
	})

	t.Run("UnknownKeyIsReportedNotFatal", func(t *testing.T) {
		db := newDB(t)
		kr := TestKeyring(t)
		plain := db.Open(t, nil)
		good, err := plain.CreateProviderKey(t.Context(), providerKey("plain"))
		noErr(t, err, "create plaintext")
		enc, err := db.Open(t, kr).CreateProviderKey(t.Context(), providerKey("sealed"))
		noErr(t, err, "create encrypted")

		for name, other := range map[string]SecretStore{"no keyring": plain, "another keyring": db.Open(t, TestKeyring(t))} {
			t.Run(name, func(t *testing.T) {
				ds, err := other.Load(t.Context())
				noErr(t, err, "load")
				if len(ds.ProviderKeys) != 1 || ds.ProviderKeys[0].ID != good.ID || ds.ProviderKeys[0].Secret != secretFor("plain") {
					t.Errorf("Load provider keys = %+v, want only the plaintext one", ds.ProviderKeys)
				}
				if len(ds.Unreadable) != 1 || ds.Unreadable[0].ID != enc.ID || ds.Unreadable[0].Kind != storage.KindProviderKey ||
					!strings.Contains(ds.Unreadable[0].Reason, kr.CurrentID()) || !strings.Contains(ds.Unreadable[0].Reason, "AISIX_SECRET_KEY") {
					t.Errorf("Unreadable = %+v, want the encrypted key, naming key %s", ds.Unreadable, kr.CurrentID())
				}
				got, err := other.GetProviderKey(t.Context(), enc.ID)
				noErr(t, err, "get")
				if got.Secret != "" || !strings.Contains(got.SecretHint, kr.CurrentID()) {
					t.Errorf("Get = secret %q hint %q, want no secret and a hint naming the key", got.Secret, got.SecretHint)
				}
				list, err := other.ListProviderKeys(t.Context())
				noErr(t, err, "list")
				if len(list) != 2 {
					t.Errorf("ListProviderKeys shows %d keys, want both", len(list))
				}
			})
		}
	})

	t.Run("SwappedCiphertextDoesNotDecrypt", func(t *testing.T) {
		db := newDB(t)
		kr := TestKeyring(t)
		s := db.Open(t, kr)
		a, err := s.CreateProviderKey(t.Context(), providerKey("a"))
		noErr(t, err, "create a")
		_, err = s.CreateProviderKey(t.Context(), providerKey("b"))
		noErr(t, err, "create b")
		db.Exec(t, `UPDATE provider_keys SET secret = (SELECT secret FROM provider_keys WHERE display_name = 'b') WHERE display_name = 'a'`)
		ds, err := s.Load(t.Context())
		noErr(t, err, "load")
		if len(ds.ProviderKeys) != 1 || len(ds.Unreadable) != 1 || ds.Unreadable[0].ID != a.ID ||
			!strings.Contains(ds.Unreadable[0].Reason, "does not decrypt") {
			t.Fatalf("after swapping b's ciphertext into a: keys %+v unreadable %+v", ds.ProviderKeys, ds.Unreadable)
		}
		for _, u := range ds.Unreadable {
			noSecretValue(t, "unreadable reason", u.Reason)
		}
	})

	t.Run("EncryptSecrets", func(t *testing.T) {
		db := newDB(t)
		old := TestKeyring(t)
		plain := db.Open(t, nil)
		_, err := plain.CreateProviderKey(t.Context(), providerKey("plain"))
		noErr(t, err, "create plaintext")
		_, err = db.Open(t, old).CreateProviderKey(t.Context(), providerKey("old"))
		noErr(t, err, "create under the old key")
		lost := TestKeyring(t)
		_, err = db.Open(t, lost).CreateProviderKey(t.Context(), providerKey("lost"))
		noErr(t, err, "create under a lost key")
		rev, err := plain.Revision(t.Context())
		noErr(t, err, "revision")

		cur := TestKeyring(t, old)
		s := db.Open(t, cur)
		m, err := s.EncryptSecrets(t.Context(), secrets.PlaintextOnly)
		noErr(t, err, "encrypt plaintext")
		if m.Encrypted != 1 || m.Rotated != 0 || m.Unreadable[lost.CurrentID()] != 1 {
			t.Fatalf("PlaintextOnly = %+v", m)
		}
		m, err = s.EncryptSecrets(t.Context(), secrets.AllRows)
		noErr(t, err, "rotate")
		if m.Encrypted != 0 || m.Rotated != 1 || m.Unreadable[lost.CurrentID()] != 1 {
			t.Fatalf("AllRows = %+v", m)
		}
		counts, err := s.SecretKeyCounts(t.Context())
		noErr(t, err, "counts")
		if counts[cur.CurrentID()] != 2 || counts[lost.CurrentID()] != 1 || counts[""] != 0 {
			t.Fatalf("SecretKeyCounts = %v", counts)
		}
		// Nothing a reader sees changed, so the revision did not move.
		if after, _ := s.Revision(t.Context()); after != rev {
			t.Errorf("revision %d after re-encryption, want %d", after, rev)
		}
		// Only the current key is needed from now on.
		alone, err := secrets.NewKeyring(rawKey(cur.CurrentID()))
		noErr(t, err, "keyring")
		ds, err := db.Open(t, alone).Load(t.Context())
		noErr(t, err, "load")
		if len(ds.ProviderKeys) != 2 || len(ds.Unreadable) != 1 {
			t.Fatalf("Load with only the new key: %d keys, unreadable %+v", len(ds.ProviderKeys), ds.Unreadable)
		}
		for _, pk := range ds.ProviderKeys {
			checkSecret(t, pk, secretFor(pk.DisplayName))
		}
	})

	t.Run("ApplyEncrypts", func(t *testing.T) {
		db := newDB(t)
		kr := TestKeyring(t)
		s := db.Open(t, kr)
		d := tutorial()
		mustApply(t, s, d, storage.ApplyOptions{})
		counts, err := s.SecretKeyCounts(t.Context())
		noErr(t, err, "counts")
		if len(counts) != 1 || counts[kr.CurrentID()] != len(d.ProviderKeys) {
			t.Fatalf("after apply: SecretKeyCounts = %v, want every key under %s", counts, kr.CurrentID())
		}
		// The same file again changes nothing: the stored secrets decrypt
		// to what it says.
		if res := mustApply(t, s, d, storage.ApplyOptions{}); res.Changed() {
			t.Errorf("second apply changed %v", planOf(res.Changes))
		}
	})
}
