// Package secrets encrypts provider secrets at rest with AES-256-GCM
// (crypto/aes and crypto/cipher; nothing else).
//
// A Keyring holds one current key, which encrypts, and any number of
// previous keys, which only decrypt, so that a key can be rotated while
// rows encrypted under the old one are still readable. Each key is known
// by an ID derived from it (KeyID) that does not reveal it; a store keeps
// the ID next to every ciphertext, so it knows which key opens it, and an
// empty ID means the row holds plaintext.
//
// A ciphertext is bound to its row by additional authenticated data (the
// provider key's ID), so a ciphertext copied to another row does not
// decrypt there.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// KeySize is the size of a key in bytes (AES-256).
const KeySize = 32

// nonceSize is GCM's standard nonce size (96 bits); every seal draws a
// fresh random one.
const nonceSize = 12

// ErrDecrypt means a ciphertext did not decrypt under the key its row
// names: it was changed, moved from another row, or the key with that ID
// is not the one it was sealed with.
var ErrDecrypt = errors.New("secret does not decrypt: the stored ciphertext was changed or belongs to another row")

// ErrMalformed means a stored ciphertext is not one this package wrote.
var ErrMalformed = errors.New("stored secret is not a valid ciphertext")

// UnknownKeyError means a row is encrypted under a key that is not in the
// keyring (or there is no keyring at all).
type UnknownKeyError struct {
	// KeyID is the ID of the key the row was sealed with.
	KeyID string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("provider secret is encrypted with key %s, which is not loaded; set AISIX_SECRET_KEY or AISIX_SECRET_KEY_FILE to that key (or give it as a previous key)", e.KeyID)
}

// key is one AES-256-GCM key and its ID.
type key struct {
	id   string
	aead cipher.AEAD
}

func newKey(raw []byte) (*key, error) {
	if len(raw) != KeySize {
		return nil, fmt.Errorf("a secret key must be %d bytes (got %d)", KeySize, len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	return &key{id: KeyID(raw), aead: aead}, nil
}

// KeyID returns the ID of a key: the first 8 bytes of the SHA-256 of a
// fixed label and the key, in hex. A hash reveals nothing usable about
// the key, and the label keeps the ID from being the plain hash of it.
func KeyID(raw []byte) string {
	h := sha256.New()
	h.Write([]byte("aisix secret key id\x00"))
	h.Write(raw)
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Keyring is a current key and the previous keys still accepted for
// decryption. It is immutable and safe for concurrent use. A nil
// *Keyring is valid: it seals nothing (Seal returns plaintext with an
// empty key ID) and opens only plaintext.
type Keyring struct {
	current  *key
	previous []*key
}

// NewKeyring returns a keyring with current as the key that encrypts and
// previous as keys that only decrypt. Each must be KeySize bytes; a
// previous key equal to the current one (or to another previous one) is
// dropped.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	c, err := newKey(current)
	if err != nil {
		return nil, err
	}
	kr := &Keyring{current: c}
	seen := map[string]bool{c.id: true}
	for i, raw := range previous {
		p, err := newKey(raw)
		if err != nil {
			return nil, fmt.Errorf("previous key %d: %w", i+1, err)
		}
		if !seen[p.id] {
			seen[p.id] = true
			kr.previous = append(kr.previous, p)
		}
	}
	return kr, nil
}

// CurrentID returns the ID of the key that encrypts ("" for a nil keyring).
func (kr *Keyring) CurrentID() string {
	if kr == nil {
		return ""
	}
	return kr.current.id
}

// PreviousIDs returns the IDs of the decrypt-only keys, in order.
func (kr *Keyring) PreviousIDs() []string {
	if kr == nil {
		return nil
	}
	ids := make([]string, len(kr.previous))
	for i, k := range kr.previous {
		ids[i] = k.id
	}
	return ids
}

// Has reports whether the keyring holds the key with the given ID.
func (kr *Keyring) Has(id string) bool { return kr.find(id) != nil }

func (kr *Keyring) find(id string) *key {
	if kr == nil {
		return nil
	}
	if kr.current.id == id {
		return kr.current
	}
	for _, k := range kr.previous {
		if k.id == id {
			return k
		}
	}
	return nil
}

// LogValue logs only the key IDs, so a keyring passed to a logger by
// mistake shows nothing secret.
func (kr *Keyring) LogValue() slog.Value {
	if kr == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(slog.String("current", kr.current.id), slog.Any("previous", kr.PreviousIDs()))
}

// Seal encrypts plaintext under the current key, bound to aad, with a
// fresh random nonce. It returns the current key's ID and the nonce
// followed by the ciphertext and tag.
func (kr *Keyring) Seal(plaintext, aad []byte) (keyID string, sealed []byte, err error) {
	if kr == nil {
		return "", nil, errors.New("seal secret: no secret key")
	}
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+kr.current.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, fmt.Errorf("seal secret: %w", err)
	}
	return kr.current.id, kr.current.aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts what Seal returned under the key keyID, checking aad. It
// returns an *UnknownKeyError if the keyring has no such key, ErrMalformed
// if sealed is too short to be a ciphertext, and ErrDecrypt if it does not
// authenticate (changed, or sealed for other aad or under another key).
func (kr *Keyring) Open(keyID string, sealed, aad []byte) ([]byte, error) {
	k := kr.find(keyID)
	if k == nil {
		return nil, &UnknownKeyError{KeyID: keyID}
	}
	if len(sealed) < nonceSize+k.aead.Overhead() {
		return nil, ErrMalformed
	}
	pt, err := k.aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], aad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}

// providerKeyAAD binds a provider secret to the row of provider key id.
func providerKeyAAD(id string) []byte { return []byte("aisix provider_keys.secret\x00" + id) }

// SealProviderSecret returns the stored form of a provider key's secret:
// with a keyring, the base64 of Seal bound to the provider key's ID, and
// the key ID; without one, the plaintext and an empty key ID.
func (kr *Keyring) SealProviderSecret(id, plaintext string) (stored, keyID string, err error) {
	if kr == nil {
		return plaintext, "", nil
	}
	keyID, sealed, err := kr.Seal([]byte(plaintext), providerKeyAAD(id))
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(sealed), keyID, nil
}

// OpenProviderSecret returns the plaintext of a provider key's stored
// secret: stored itself when keyID is empty (a plaintext row), else what
// Open gives (see its errors).
func (kr *Keyring) OpenProviderSecret(id, stored, keyID string) (string, error) {
	if keyID == "" {
		return stored, nil
	}
	if !kr.Has(keyID) {
		return "", &UnknownKeyError{KeyID: keyID}
	}
	sealed, err := base64.StdEncoding.DecodeString(stored)
	if err != nil {
		return "", ErrMalformed
	}
	pt, err := kr.Open(keyID, sealed, providerKeyAAD(id))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}

// Unreadable is the secret hint stores give a provider key whose secret
// they cannot decrypt, so lists still show the row and why it is unusable.
func Unreadable(err error) string {
	var uk *UnknownKeyError
	if errors.As(err, &uk) {
		return "(encrypted with key " + uk.KeyID + ", not loaded)"
	}
	return "(unreadable: " + strings.TrimPrefix(err.Error(), "secret ") + ")"
}

// Migration is what a store's re-encryption did: how many plaintext rows
// it encrypted, how many rows under a previous key it moved to the current
// key, and, by key ID, the rows it left as they were because no loaded key
// opens them.
type Migration struct {
	Encrypted  int            `json:"encrypted"`
	Rotated    int            `json:"rotated"`
	Unreadable map[string]int `json:"unreadable,omitempty"`
}

// Changed reports whether the re-encryption rewrote any row.
func (m Migration) Changed() bool { return m.Encrypted+m.Rotated > 0 }

// Scope is which rows a store's re-encryption rewrites.
type Scope int

const (
	// PlaintextOnly encrypts plaintext rows and leaves rows under any
	// loaded key as they are (what aisix serve does at start-up: a
	// replica never moves rows away from a key other replicas may still
	// need).
	PlaintextOnly Scope = iota
	// AllRows also moves rows under previous keys to the current key
	// (aisix secrets rotate-key).
	AllRows
)

// Reencrypt returns the stored form of one provider secret under the
// current key, given its stored form and key ID; ok is false when the row
// stays as it is (already under the current key, under a previous key
// with PlaintextOnly, or under no loaded key). It is the step of a
// store's re-encryption, shared so both stores count the same way: it
// adds the row to m.
func (kr *Keyring) Reencrypt(m *Migration, scope Scope, id, stored, keyID string) (newStored, newKeyID string, ok bool, err error) {
	if kr == nil {
		return "", "", false, errors.New("re-encrypt secrets: no secret key")
	}
	if keyID == kr.current.id || (scope == PlaintextOnly && keyID != "" && kr.Has(keyID)) {
		return "", "", false, nil
	}
	pt, err := kr.OpenProviderSecret(id, stored, keyID)
	if err != nil {
		if m.Unreadable == nil {
			m.Unreadable = map[string]int{}
		}
		m.Unreadable[keyID]++
		return "", "", false, nil
	}
	newStored, newKeyID, err = kr.SealProviderSecret(id, pt)
	if err != nil {
		return "", "", false, err
	}
	if keyID == "" {
		m.Encrypted++
	} else {
		m.Rotated++
	}
	return newStored, newKeyID, true, nil
}

// Row is one stored provider secret: its provider key's ID, its stored
// form and its key ID.
type Row struct{ ID, Stored, KeyID string }

// ReencryptRows runs Reencrypt over rows and calls write for each row to
// rewrite, stopping at write's first error.
func (kr *Keyring) ReencryptRows(scope Scope, rows []Row, write func(id, stored, keyID string) error) (Migration, error) {
	var m Migration
	for _, r := range rows {
		stored, keyID, ok, err := kr.Reencrypt(&m, scope, r.ID, r.Stored, r.KeyID)
		if err != nil {
			return Migration{}, err
		}
		if ok {
			if err := write(r.ID, stored, keyID); err != nil {
				return Migration{}, err
			}
		}
	}
	return m, nil
}

// WithPrevious returns a keyring with kr's current key, kr's previous
// keys, and then every key of old as previous keys (duplicates dropped):
// what a rotation from old to kr decrypts with.
func (kr *Keyring) WithPrevious(old *Keyring) *Keyring {
	out := &Keyring{current: kr.current}
	seen := map[string]bool{kr.current.id: true}
	add := func(k *key) {
		if !seen[k.id] {
			seen[k.id] = true
			out.previous = append(out.previous, k)
		}
	}
	for _, k := range kr.previous {
		add(k)
	}
	if old != nil {
		add(old.current)
		for _, k := range old.previous {
			add(k)
		}
	}
	return out
}
