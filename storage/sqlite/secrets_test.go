package sqlite_test

import (
	"bytes"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/secrets"
	"github.com/aisix/aisix/storage/sqlite"
	"github.com/aisix/aisix/storage/storagetest"
)

// TestConformanceEncrypted runs the store suites with provider secrets
// encrypted, and the encryption suite.
func TestConformanceEncrypted(t *testing.T) {
	kr := storagetest.TestKeyring(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openStore(t, filepath.Join(t.TempDir(), "aisix.db"), sqlite.WithSecrets(kr))
	})
	storagetest.RunApply(t, func(t *testing.T) storagetest.ApplyStore {
		return openStore(t, filepath.Join(t.TempDir(), "aisix.db"), sqlite.WithSecrets(kr))
	})
	storagetest.RunSecrets(t, func(t *testing.T) storagetest.SecretDB {
		path := filepath.Join(t.TempDir(), "aisix.db")
		return storagetest.SecretDB{
			Open: func(t *testing.T, kr *secrets.Keyring) storagetest.SecretStore {
				return openStore(t, path, sqlite.WithSecrets(kr))
			},
			Exec: func(t *testing.T, query string) {
				db, err := sql.Open("sqlite", path)
				mustNoErr(t, err)
				defer db.Close()
				_, err = db.ExecContext(t.Context(), query)
				mustNoErr(t, err)
			},
		}
	})
}

// TestNoPlaintextOnDisk: with a keyring, neither the database file nor
// its WAL holds a provider secret after a create, an update and an apply,
// while the store still reads the secrets back.
func TestNoPlaintextOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	s := openStore(t, path, sqlite.WithSecrets(storagetest.TestKeyring(t)))
	ctx := t.Context()
	const created, updated = "sk-created-0123456789abcdef", "sk-updated-0123456789abcdef"
	pk, err := s.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: "a", Provider: "openai", Secret: created})
	mustNoErr(t, err)
	pk.Secret = updated
	_, err = s.UpdateProviderKey(ctx, pk, 0)
	mustNoErr(t, err)
	_, err = s.Apply(ctx, storage.Desired{ProviderKeys: []storage.ProviderKey{
		{DisplayName: "a", Provider: "openai", Secret: updated},
		{DisplayName: "azure", Provider: "azure-openai", APIBase: "https://x.openai.azure.com",
			Secret: `{"tenant_id":"t","client_id":"c","client_secret":"applied-s3cr3t-value"}`},
	}}, storage.ApplyOptions{})
	mustNoErr(t, err)
	ds, err := s.Load(ctx)
	mustNoErr(t, err)
	if len(ds.ProviderKeys) != 2 || ds.ProviderKeys[0].Secret != updated {
		t.Fatalf("Load = %+v", ds.ProviderKeys)
	}
	var seen int
	for _, p := range []string{path, path + "-wal"} {
		b, err := os.ReadFile(p)
		if os.IsNotExist(err) {
			continue
		}
		mustNoErr(t, err)
		seen += len(b)
		for _, secret := range []string{created, updated, "applied-s3cr3t-value", "0123456789abcdef"} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the plaintext %q", filepath.Base(p), secret)
			}
		}
	}
	if seen == 0 {
		t.Fatal("read no database bytes")
	}
}

// TestEncryptLeavesNoPlaintext: plaintext rows written without a key and
// then encrypted (what aisix secrets init and serve do) leave no trace of
// the plaintext in the database file or its WAL, even while the store is
// still open, and the secrets read back.
func TestEncryptLeavesNoPlaintext(t *testing.T) {
	for _, closed := range []bool{false, true} {
		t.Run(fmt.Sprintf("plaintext checkpointed %v", closed), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "aisix.db")
			plain, err := sqlite.Open(t.Context(), path)
			mustNoErr(t, err)
			ctx := t.Context()
			var want []string
			for i := range 20 {
				secret := fmt.Sprintf("sk-plaintext-%02d-0123456789abcdef", i)
				want = append(want, secret)
				_, err := plain.CreateProviderKey(ctx, storage.ProviderKey{DisplayName: fmt.Sprintf("k%02d", i), Provider: "openai", Secret: secret})
				mustNoErr(t, err)
			}
			if closed {
				// The last connection to close checkpoints the WAL into
				// the database file.
				mustNoErr(t, plain.Close())
			} else {
				t.Cleanup(func() { _ = plain.Close() })
			}
			s := openStore(t, path, sqlite.WithSecrets(storagetest.TestKeyring(t)))
			m, err := s.EncryptSecrets(ctx, secrets.PlaintextOnly)
			mustNoErr(t, err)
			if m.Encrypted != 20 {
				t.Fatalf("EncryptSecrets = %+v, want 20 encrypted", m)
			}
			ds, err := s.Load(ctx)
			mustNoErr(t, err)
			for i, pk := range ds.ProviderKeys {
				if pk.Secret != want[i] {
					t.Errorf("key %s reads back %q", pk.DisplayName, pk.Secret)
				}
			}
			for _, p := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(p)
				if os.IsNotExist(err) {
					continue
				}
				mustNoErr(t, err)
				if bytes.Contains(b, []byte("sk-plaintext-")) {
					t.Errorf("%s still holds plaintext secrets after encryption", filepath.Base(p))
				}
			}
		})
	}
}
