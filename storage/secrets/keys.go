package secrets

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ParseKey decodes a key written as 64 hex digits or as base64 (standard
// or URL alphabet, padded or not) of KeySize bytes. Surrounding space is
// ignored. The error never contains s: name says what was being parsed.
func ParseKey(name, s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*KeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("%s is not a 256-bit key: give 32 random bytes as 64 hex digits or as base64 (aisix secrets init makes one)", name)
}

// Sources are where a keyring comes from. Key and File are exclusive
// ways to give the current key; Previous adds decrypt-only keys.
type Sources struct {
	// Key is a key in ParseKey's forms (AISIX_SECRET_KEY).
	Key string
	// File is a key file (see ReadKeyFile).
	File string
	// Previous is a comma-separated list of keys that only decrypt
	// (AISIX_SECRET_KEY_PREVIOUS).
	Previous string
}

// Load builds the keyring the sources name, or returns nil, nil when
// they name no key at all. Previous keys without a current one are
// refused: something must encrypt.
func Load(src Sources) (*Keyring, error) {
	var keys [][]byte
	switch {
	case strings.TrimSpace(src.Key) != "" && src.File != "":
		return nil, errors.New("both AISIX_SECRET_KEY and a secret key file are set: use one")
	case strings.TrimSpace(src.Key) != "":
		k, err := ParseKey("AISIX_SECRET_KEY", src.Key)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	case src.File != "":
		ks, err := ReadKeyFile(src.File)
		if err != nil {
			return nil, err
		}
		keys = append(keys, ks...)
	}
	for i, p := range strings.Split(src.Previous, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, err := ParseKey(fmt.Sprintf("AISIX_SECRET_KEY_PREVIOUS entry %d", i+1), p)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	if strings.TrimSpace(src.Key) == "" && src.File == "" {
		return nil, errors.New("AISIX_SECRET_KEY_PREVIOUS is set without a current key: set AISIX_SECRET_KEY or a secret key file too")
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// ReadKeyFile reads a key file: one key per line in ParseKey's forms,
// the first the current key and any further ones previous keys; blank
// lines and lines starting with # are ignored. Like ssh with a private
// key, it refuses a file that its group or other users may read or
// write, and a file with no key.
func ReadKeyFile(path string) ([][]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key file %s is not a regular file", path)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return nil, fmt.Errorf("secret key file %s has mode %04o, which lets other users read it: run chmod 600 %s", path, m, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secret key file: %w", err)
	}
	var keys [][]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := ParseKey(fmt.Sprintf("line %d of secret key file %s", n, path), line)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("secret key file %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("secret key file %s holds no key", path)
	}
	return keys, nil
}

// GenerateKey returns a new random key.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("generate secret key: %w", err)
	}
	return k, nil
}

// WriteKeyFile writes key, base64-encoded, to a new file at path with
// mode 0600 (its directory is created with mode 0700). It refuses to
// replace an existing file: that would lose the key in it.
func WriteKeyFile(path string, key []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write secret key file: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("secret key file %s already exists: refusing to overwrite it (it may hold the only copy of a key)", path)
		}
		return fmt.Errorf("write secret key file: %w", err)
	}
	content := "# aisix secret key (AES-256), key id " + KeyID(key) + ". Losing it means re-entering every provider secret.\n" +
		base64.StdEncoding.EncodeToString(key) + "\n"
	if _, err := f.WriteString(content); err != nil {
		_ = f.Close()
		return fmt.Errorf("write secret key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write secret key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write secret key file: %w", err)
	}
	return nil
}
