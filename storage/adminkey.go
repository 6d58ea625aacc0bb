package storage

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// AdminKey is a scoped key to the admin API. The store keeps only the
// lower-case hex SHA-256 of the key; the plaintext is shown once, when it
// is minted, and never again.
type AdminKey struct {
	ID          string
	DisplayName string
	// Scope is what the key may do: ScopeAdmin, ScopeWrite, ScopeRead or
	// ScopeStatus.
	Scope   string
	KeyHash string
	// CreatedAt is when the key was made; RotatedAt when its secret was
	// last replaced (zero: never).
	CreatedAt time.Time
	RotatedAt time.Time
}

// Admin key scopes, from the most to the least allowed.
const (
	// ScopeAdmin may do everything, admin keys and the audit log included.
	ScopeAdmin = "admin"
	// ScopeWrite may read and write every resource but admin keys.
	ScopeWrite = "write"
	// ScopeRead may only read (GET), secrets masked as for every key.
	ScopeRead = "read"
	// ScopeStatus may only read what the live dashboard (`aisix status`)
	// needs: the server's info, model status, events and limits.
	ScopeStatus = "status"
)

// Scopes lists the scopes from the least to the most allowed.
var Scopes = []string{ScopeStatus, ScopeRead, ScopeWrite, ScopeAdmin}

// ScopeRank is scope's place in Scopes (status 1 … admin 4), 0 for an
// unknown scope: a key's scope allows a route when its rank is at least
// the route's.
func ScopeRank(scope string) int {
	for i, s := range Scopes {
		if s == scope {
			return i + 1
		}
	}
	return 0
}

// AdminKeyStore keeps admin keys. It is apart from Store: the proxy never
// reads admin keys, and an admin key write does not change the routing
// configuration (no store revision).
type AdminKeyStore interface {
	// ListAdminKeys returns every admin key, by display name.
	ListAdminKeys(ctx context.Context) ([]AdminKey, error)
	// CreateAdminKey stores k (its KeyHash set by the caller, who minted
	// the key); an empty ID gets a new one. A taken name or hash is
	// ErrConflict.
	CreateAdminKey(ctx context.Context, k AdminKey) (AdminKey, error)
	// RotateAdminKey replaces the hash of the key with id or display name
	// ref: the old key stops working at once.
	RotateAdminKey(ctx context.Context, ref, keyHash string) (AdminKey, error)
	// DeleteAdminKey removes the key with id or display name ref.
	DeleteAdminKey(ctx context.Context, ref string) error
}

// ValidateAdminKey checks an admin key before it is stored.
func ValidateAdminKey(k AdminKey) error {
	if err := ValidateDisplayName("display_name", k.DisplayName); err != nil {
		return err
	}
	if ScopeRank(k.Scope) == 0 {
		return FieldErrorf("scope", "must be one of status, read, write, admin (got %q)", k.Scope)
	}
	return ValidateKeyHash(k.KeyHash)
}

// ValidateKeyHash checks a key's stored form: lower-case hex SHA-256.
func ValidateKeyHash(h string) error {
	if !isKeyHash(h) {
		return FieldErrorf("key_hash", "must be the lower-case hex SHA-256 of the key (64 characters 0-9a-f)")
	}
	return nil
}

// isKeyHash reports whether h is 64 lower-case hex characters. Every
// caller key of a snapshot build passes through it (a regexp took a
// fifth of a build at 10,000 keys).
func isKeyHash(h string) bool {
	if len(h) != 64 {
		return false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// MintAdminKey returns a new admin key ("ak-" and 48 hex characters: 192
// bits) and its hash.
func MintAdminKey() (plaintext, hash string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	plaintext = "ak-" + hex.EncodeToString(b[:])
	return plaintext, HashKey(plaintext), nil
}

// HashKey is the stored form of a key: the lower-case hex SHA-256 of it.
func HashKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
