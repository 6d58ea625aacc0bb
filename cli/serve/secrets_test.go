package serve

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/secrets"
	"github.com/aisix/aisix/storage/sqlite"
)

// TestOpenBackendSecrets: on SQLite without a key serve warns once and
// stores plaintext; started with a key it encrypts the plaintext secrets
// in one go, logs how many (never a secret), and serves them; a secret
// under a key it was not given is reported by key ID and left out.
func TestOpenBackendSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	const secret = "sk-serve-plaintext-0123456789"
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))

	b, err := openBackend(t.Context(), path, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "plain", Provider: "openai", Secret: secret}); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(logs.String(), "aisix secrets init"); n != 1 {
		t.Fatalf("keyless start logged the advice %d times, want once:\n%s", n, logs.String())
	}

	// A key this server will not have.
	lostKey, _ := secrets.GenerateKey()
	lost, _ := secrets.NewKeyring(lostKey)
	ls, err := sqlite.Open(t.Context(), path, sqlite.WithSecrets(lost))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.CreateProviderKey(t.Context(), storage.ProviderKey{DisplayName: "lost", Provider: "openai", Secret: "sk-lost-0123456789abcdef"}); err != nil {
		t.Fatal(err)
	}
	_ = ls.Close()

	logs.Reset()
	raw, _ := secrets.GenerateKey()
	kr, _ := secrets.NewKeyring(raw)
	b, err = openBackend(t.Context(), path, kr, logger)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := logs.String()
	if !strings.Contains(out, `"msg":"encrypted plaintext provider secrets","count":1,"key_id":"`+kr.CurrentID()+`"`) {
		t.Errorf("start with a key did not log the one encrypted secret:\n%s", out)
	}
	if !strings.Contains(out, `"key_id":"`+lost.CurrentID()+`","count":1`) {
		t.Errorf("the secret under an unknown key was not reported by key id:\n%s", out)
	}
	if strings.Contains(out, "sk-") || strings.Contains(out, "unencrypted") {
		t.Errorf("logs hold a secret or the keyless warning:\n%s", out)
	}
	ds, err := b.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(ds.ProviderKeys) != 1 || ds.ProviderKeys[0].Secret != secret || len(ds.Unreadable) != 1 {
		t.Fatalf("Load = %+v unreadable %+v", ds.ProviderKeys, ds.Unreadable)
	}
}
