package sqlite_test

import (
	"bytes"
	"database/sql"
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
	const created, updated, applied = "sk-created-0123456789abcdef", "sk-updated-0123456789abcdef", `{"client_secret":"applied-s3cr3t-value"}`
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
	_ = applied
}
