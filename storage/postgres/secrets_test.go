package postgres_test

import (
	"errors"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/postgres"
	"github.com/aisix/aisix/storage/secrets"
	"github.com/aisix/aisix/storage/storagetest"
)

// TestConformanceEncrypted runs the store suites with provider secrets
// encrypted, and the encryption suite.
func TestConformanceEncrypted(t *testing.T) {
	kr := storagetest.TestKeyring(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, _ := newStore(t, postgres.WithSecrets(kr), postgres.WithEncryptionRequired())
		return s
	})
	storagetest.RunApply(t, func(t *testing.T) storagetest.ApplyStore {
		s, _ := newStore(t, postgres.WithSecrets(kr), postgres.WithEncryptionRequired())
		return s
	})
	storagetest.RunSecrets(t, func(t *testing.T) storagetest.SecretDB {
		_, url := newStore(t)
		return storagetest.SecretDB{
			Open: func(t *testing.T, kr *secrets.Keyring) storagetest.SecretStore {
				return openStore(t, url, postgres.WithSecrets(kr))
			},
			Exec: func(t *testing.T, query string) {
				_, err := rawConn(t, url).Exec(t.Context(), query)
				mustNoErr(t, err)
			},
		}
	})
}

// TestEncryptionRequired: a store that requires encryption and has no key
// refuses to write a provider secret (create, update, apply) and writes
// nothing, while other writes still work.
func TestEncryptionRequired(t *testing.T) {
	s, url := newStore(t, postgres.WithEncryptionRequired())
	ctx := t.Context()
	pk := storage.ProviderKey{DisplayName: "k", Provider: "openai", Secret: testSecret}
	_, err := s.CreateProviderKey(ctx, pk)
	if !errors.Is(err, postgres.ErrPlaintextRefused) || !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("create = %v, want ErrPlaintextRefused", err)
	}
	_, err = s.Apply(ctx, storage.Desired{ProviderKeys: []storage.ProviderKey{pk}}, storage.ApplyOptions{})
	if !errors.Is(err, postgres.ErrPlaintextRefused) {
		t.Fatalf("apply = %v, want ErrPlaintextRefused", err)
	}
	if ks, _ := s.ListProviderKeys(ctx); len(ks) != 0 {
		t.Fatalf("refused writes stored %d keys", len(ks))
	}
	// With a key the same database takes it; the keyless store may still
	// change what is not a secret.
	created, err := openStore(t, url, postgres.WithSecrets(storagetest.TestKeyring(t))).CreateProviderKey(ctx, pk)
	mustNoErr(t, err)
	created.Secret = ""
	created.APIBase = "https://api.openai.com/v1/"
	_, err = s.UpdateProviderKey(ctx, created, 0)
	mustNoErr(t, err)
	created.Secret = testSecret
	if _, err = s.UpdateProviderKey(ctx, created, 0); !errors.Is(err, postgres.ErrPlaintextRefused) {
		t.Fatalf("update with a secret = %v, want ErrPlaintextRefused", err)
	}
	if _, err := s.CreateModel(ctx, storage.Model{DisplayName: "m", Provider: "openai", ModelName: "gpt-4o-mini", ProviderKeyID: created.ID}); err != nil {
		t.Fatalf("create model without a key: %v", err)
	}
}
