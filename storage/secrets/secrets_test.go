package secrets_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/storage/secrets"
)

func mustKey(t testing.TB) []byte {
	t.Helper()
	k, err := secrets.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustRing(t testing.TB, cur []byte, prev ...[]byte) *secrets.Keyring {
	t.Helper()
	kr, err := secrets.NewKeyring(cur, prev...)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func TestKeyID(t *testing.T) {
	k := mustKey(t)
	id := secrets.KeyID(k)
	if len(id) != 16 || id != secrets.KeyID(k) {
		t.Fatalf("KeyID = %q, want 16 stable hex digits", id)
	}
	if strings.Contains(hex.EncodeToString(k), id) {
		t.Fatal("the key id is part of the key's hex")
	}
	if id == secrets.KeyID(mustKey(t)) {
		t.Fatal("two keys share an id")
	}
}

func TestSealOpen(t *testing.T) {
	k1, k2 := mustKey(t), mustKey(t)
	kr := mustRing(t, k1)
	aad := []byte("row-1")
	id, sealed, err := kr.Seal([]byte("sk-secret"), aad)
	if err != nil {
		t.Fatal(err)
	}
	if id != secrets.KeyID(k1) || bytes.Contains(sealed, []byte("sk-secret")) {
		t.Fatalf("Seal = %q, %x", id, sealed)
	}
	_, again, _ := kr.Seal([]byte("sk-secret"), aad)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one plaintext are equal: the nonce is not fresh")
	}
	pt, err := kr.Open(id, sealed, aad)
	if err != nil || string(pt) != "sk-secret" {
		t.Fatalf("Open = %q, %v", pt, err)
	}

	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	flippedNonce := bytes.Clone(sealed)
	flippedNonce[0] ^= 1
	for _, tc := range []struct {
		name   string
		kr     *secrets.Keyring
		id     string
		sealed []byte
		aad    []byte
		want   error
	}{
		{"tampered ciphertext", kr, id, tampered, aad, secrets.ErrDecrypt},
		{"tampered nonce", kr, id, flippedNonce, aad, secrets.ErrDecrypt},
		{"wrong aad", kr, id, sealed, []byte("row-2"), secrets.ErrDecrypt},
		{"truncated", kr, id, sealed[:10], aad, secrets.ErrMalformed},
		{"empty", kr, id, nil, aad, secrets.ErrMalformed},
		{"wrong key under the right id", mustRing(t, k2), secrets.KeyID(k2), sealed, aad, secrets.ErrDecrypt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.kr.Open(tc.id, tc.sealed, tc.aad)
			if !errors.Is(err, tc.want) || pt != nil {
				t.Fatalf("Open = %q, %v; want %v", pt, err, tc.want)
			}
		})
	}
	t.Run("unknown key", func(t *testing.T) {
		_, err := mustRing(t, k2).Open(id, sealed, aad)
		var uk *secrets.UnknownKeyError
		if !errors.As(err, &uk) || uk.KeyID != id || !strings.Contains(err.Error(), "AISIX_SECRET_KEY") {
			t.Fatalf("Open = %v, want an UnknownKeyError naming %s", err, id)
		}
	})
	t.Run("previous key decrypts, current encrypts", func(t *testing.T) {
		rotated := mustRing(t, k2, k1)
		pt, err := rotated.Open(id, sealed, aad)
		if err != nil || string(pt) != "sk-secret" {
			t.Fatalf("Open = %q, %v", pt, err)
		}
		nid, _, _ := rotated.Seal(pt, aad)
		if nid != secrets.KeyID(k2) {
			t.Fatalf("Seal used %s, want the current key %s", nid, secrets.KeyID(k2))
		}
	})
	t.Run("nil keyring", func(t *testing.T) {
		var none *secrets.Keyring
		if _, _, err := none.Seal([]byte("x"), nil); err == nil {
			t.Fatal("nil keyring sealed")
		}
		if _, err := none.Open(id, sealed, aad); !errors.As(err, new(*secrets.UnknownKeyError)) {
			t.Fatalf("nil Open = %v", err)
		}
	})
}

func TestProviderSecret(t *testing.T) {
	kr := mustRing(t, mustKey(t))
	stored, id, err := kr.SealProviderSecret("pk-1", `{"client_secret":"s3cr3t"}`)
	if err != nil || id != kr.CurrentID() || strings.Contains(stored, "s3cr3t") {
		t.Fatalf("Seal = %q, %q, %v", stored, id, err)
	}
	if pt, err := kr.OpenProviderSecret("pk-1", stored, id); err != nil || pt != `{"client_secret":"s3cr3t"}` {
		t.Fatalf("Open = %q, %v", pt, err)
	}
	if _, err := kr.OpenProviderSecret("pk-2", stored, id); !errors.Is(err, secrets.ErrDecrypt) {
		t.Fatalf("a ciphertext moved to another row opened: %v", err)
	}
	if _, err := kr.OpenProviderSecret("pk-1", "not base64!", id); !errors.Is(err, secrets.ErrMalformed) {
		t.Fatalf("malformed = %v", err)
	}
	var none *secrets.Keyring
	if s, id, err := none.SealProviderSecret("pk-1", "plain"); s != "plain" || id != "" || err != nil {
		t.Fatalf("nil Seal = %q %q %v", s, id, err)
	}
	if pt, err := none.OpenProviderSecret("pk-1", "plain", ""); pt != "plain" || err != nil {
		t.Fatalf("plaintext row = %q, %v", pt, err)
	}
	if _, err := none.OpenProviderSecret("pk-1", stored, id); !strings.Contains(err.Error(), id) {
		t.Fatalf("nil keyring on an encrypted row = %v, want the key id", err)
	}
}

func TestReencrypt(t *testing.T) {
	old, cur, lost := mustKey(t), mustKey(t), mustKey(t)
	oldRing, lostRing := mustRing(t, old), mustRing(t, lost)
	kr := mustRing(t, cur, old)
	sOld, idOld, _ := oldRing.SealProviderSecret("a", "sk-a")
	sLost, idLost, _ := lostRing.SealProviderSecret("b", "sk-b")
	sCur, idCur, _ := kr.SealProviderSecret("c", "sk-c")
	var m secrets.Migration
	rows := []struct{ id, stored, keyID string }{{"a", sOld, idOld}, {"b", sLost, idLost}, {"c", sCur, idCur}, {"d", "sk-d", ""}}
	for _, r := range rows {
		ns, nid, ok, err := kr.Reencrypt(&m, secrets.AllRows, r.id, r.stored, r.keyID)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if pt, err := kr.OpenProviderSecret(r.id, ns, nid); err != nil || pt != "sk-"+r.id || nid != kr.CurrentID() {
				t.Fatalf("row %s re-encrypted to %q under %s: %v", r.id, pt, nid, err)
			}
		}
	}
	if m.Encrypted != 1 || m.Rotated != 1 || m.Unreadable[idLost] != 1 || len(m.Unreadable) != 1 {
		t.Fatalf("Migration = %+v", m)
	}
	var p secrets.Migration
	for _, r := range rows {
		if _, _, ok, _ := kr.Reencrypt(&p, secrets.PlaintextOnly, r.id, r.stored, r.keyID); ok != (r.keyID == "") {
			t.Errorf("PlaintextOnly rewrote row %s: %v", r.id, ok)
		}
	}
	if p.Encrypted != 1 || p.Rotated != 0 || p.Unreadable[idLost] != 1 {
		t.Fatalf("PlaintextOnly Migration = %+v", p)
	}
}

func TestParseKey(t *testing.T) {
	k := mustKey(t)
	for name, s := range map[string]string{
		"hex":        hex.EncodeToString(k),
		"base64":     base64.StdEncoding.EncodeToString(k),
		"raw base64": base64.RawURLEncoding.EncodeToString(k),
		"spaces":     "  " + base64.StdEncoding.EncodeToString(k) + "\n",
	} {
		got, err := secrets.ParseKey("k", s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("%s: ParseKey = %x, %v", name, got, err)
		}
	}
	for name, s := range map[string]string{
		"short":        base64.StdEncoding.EncodeToString(k[:16]),
		"long hex":     hex.EncodeToString(append(k, 1)),
		"passphrase":   "correct horse battery staple",
		"empty":        "",
		"bad hex 64ch": strings.Repeat("zz", 32),
	} {
		_, err := secrets.ParseKey("AISIX_SECRET_KEY", s)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if s != "" && strings.Contains(err.Error(), s) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q echoes the value or is not one line", name, err)
		}
	}
}

func TestLoad(t *testing.T) {
	k1, k2, k3 := mustKey(t), mustKey(t), mustKey(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "secret.key")
	if err := secrets.WriteKeyFile(file, k1); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode())
	}
	if err := secrets.WriteKeyFile(file, k2); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite = %v", err)
	}
	two := filepath.Join(dir, "two.key")
	content := "# rotated\n" + hex.EncodeToString(k2) + "\n\n" + base64.StdEncoding.EncodeToString(k1) + "\n"
	if err := os.WriteFile(two, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(hex.EncodeToString(k1)), 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.key")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		src      secrets.Sources
		current  []byte
		previous [][]byte
		err      string
	}{
		{name: "none", src: secrets.Sources{}},
		{name: "env", src: secrets.Sources{Key: hex.EncodeToString(k1)}, current: k1},
		{name: "file", src: secrets.Sources{File: file}, current: k1},
		{name: "file with a previous key", src: secrets.Sources{File: two}, current: k2, previous: [][]byte{k1}},
		{name: "env previous", src: secrets.Sources{Key: hex.EncodeToString(k3), Previous: hex.EncodeToString(k1) + ", " + hex.EncodeToString(k2)}, current: k3, previous: [][]byte{k1, k2}},
		{name: "both", src: secrets.Sources{Key: hex.EncodeToString(k1), File: file}, err: "use one"},
		{name: "open file", src: secrets.Sources{File: open}, err: "chmod 600"},
		{name: "empty file", src: secrets.Sources{File: empty}, err: "holds no key"},
		{name: "missing file", src: secrets.Sources{File: filepath.Join(dir, "nope")}, err: "no such file"},
		{name: "previous only", src: secrets.Sources{Previous: hex.EncodeToString(k1)}, err: "without a current key"},
		{name: "bad previous", src: secrets.Sources{Key: hex.EncodeToString(k1), Previous: "abc"}, err: "PREVIOUS entry 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := secrets.Load(tc.src)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.current == nil {
				if kr != nil {
					t.Fatalf("Load = %v, want no keyring", kr)
				}
				return
			}
			if kr.CurrentID() != secrets.KeyID(tc.current) {
				t.Fatalf("current %s, want %s", kr.CurrentID(), secrets.KeyID(tc.current))
			}
			var want []string
			for _, p := range tc.previous {
				want = append(want, secrets.KeyID(p))
			}
			if got := kr.PreviousIDs(); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("previous %v, want %v", got, want)
			}
		})
	}
}
