package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aisix/aisix/storage"
)

// Scoped admin keys. A request's admin key is either a bootstrap key (from
// the config or the environment: scope admin, id "bootstrap") or one of
// the store's admin keys (/admin/v1/admin_keys), found by its SHA-256 in a
// set read from the store at most every adminKeyTTL (at once after this
// server's own admin key writes), so authentication does not query the
// database per request and a key made or deleted on another replica counts
// here within that time. Every route has a required scope (routeScope);
// a key whose scope ranks below it gets 403.

// kindAdminKey is the admin keys' resource kind, as logged and in URLs.
const kindAdminKey = "admin_keys"

// bootstrapID is the identity of a config or environment admin key.
const bootstrapID = "bootstrap"

// adminKeyTTL is how long the set of stored admin keys is trusted before
// the next authentication reads it again.
const adminKeyTTL = 2 * time.Second

// identity is who an authenticated request is: the admin key's id, name
// and scope.
type identity struct {
	ID, Name, Scope string
}

type identityKey struct{}

// identityOf is the identity authenticate attached to r; the zero value
// for an unauthenticated request.
func identityOf(r *http.Request) identity {
	id, _ := r.Context().Value(identityKey{}).(identity)
	return id
}

// keyIDOf is the id of r's admin key ("bootstrap" for a config key), for
// logs and the audit trail: never the key.
func keyIDOf(r *http.Request) string { return identityOf(r).ID }

// keySet is the stored admin keys by hash, as last read.
type keySet struct {
	at     time.Time
	byHash map[[sha256.Size]byte]storage.AdminKey
}

// adminKeys authenticates against the store's admin keys.
type adminKeys struct {
	store storage.AdminKeyStore // nil: bootstrap keys only
	now   func() time.Time
	cur   atomic.Pointer[keySet]
	mu    sync.Mutex // one read of the store at a time
}

// lookup is the stored admin key whose hash is sum.
func (a *adminKeys) lookup(ctx context.Context, sum [sha256.Size]byte) (storage.AdminKey, bool, error) {
	if a.store == nil {
		return storage.AdminKey{}, false, nil
	}
	set := a.cur.Load()
	if set == nil || a.now().Sub(set.at) > adminKeyTTL {
		var err error
		if set, err = a.refresh(ctx); err != nil {
			return storage.AdminKey{}, false, err
		}
	}
	k, ok := set.byHash[sum]
	return k, ok, nil
}

// refresh reads the store's admin keys again (once for concurrent callers).
func (a *adminKeys) refresh(ctx context.Context) (*keySet, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if set := a.cur.Load(); set != nil && a.now().Sub(set.at) <= adminKeyTTL {
		return set, nil
	}
	ks, err := a.store.ListAdminKeys(ctx)
	if err != nil {
		return nil, err
	}
	set := &keySet{at: a.now(), byHash: make(map[[sha256.Size]byte]storage.AdminKey, len(ks))}
	for _, k := range ks {
		var sum [sha256.Size]byte
		if b, err := hex.DecodeString(k.KeyHash); err == nil && len(b) == sha256.Size {
			copy(sum[:], b)
			set.byHash[sum] = k
		}
	}
	a.cur.Store(set)
	return set, nil
}

// invalidate makes the next authentication read the store.
func (a *adminKeys) invalidate() { a.cur.Store(nil) }

// routeScope is the scope a route needs: GET on resources read, other
// methods write; admin keys and the audit log admin; what `aisix status`
// reads status.
func routeScope(pattern string) string {
	method, path, _ := strings.Cut(pattern, " ")
	switch {
	case strings.HasPrefix(path, "/admin/v1/"+kindAdminKey), strings.HasPrefix(path, "/admin/v1/audit"):
		return storage.ScopeAdmin
	case method == http.MethodGet && statusRoutes[path]:
		return storage.ScopeStatus
	case method == http.MethodGet:
		return storage.ScopeRead
	}
	return storage.ScopeWrite
}

// statusRoutes are what the dashboard reads.
var statusRoutes = map[string]bool{
	"/admin/v1/info":          true,
	"/admin/v1/models/status": true,
	"/admin/v1/events":        true,
	"/admin/v1/limits":        true,
}

// allowed reports whether id's scope may use a route needing scope; when
// it may not, the 403 says which scope it needs.
func allowed(id identity, r *http.Request, scope string) error {
	if storage.ScopeRank(id.Scope) >= storage.ScopeRank(scope) {
		return nil
	}
	return errorf(http.StatusForbidden, "this admin key (scope %s) may not %s %s: it needs scope %s", id.Scope, r.Method, r.URL.Path, scope)
}

// AdminKeyView is an admin key as the API (and `aisix admin-key -o json`)
// shows it: never the key or its hash.
type AdminKeyView struct {
	ID          string     `json:"id"`
	DisplayName string     `json:"display_name"`
	Scope       string     `json:"scope"`
	CreatedAt   time.Time  `json:"created_at"`
	RotatedAt   *time.Time `json:"rotated_at,omitempty"`
}

// AdminKeyViewOf is k as the API shows it.
func AdminKeyViewOf(k storage.AdminKey) AdminKeyView {
	v := AdminKeyView{ID: k.ID, DisplayName: k.DisplayName, Scope: k.Scope, CreatedAt: k.CreatedAt}
	if !k.RotatedAt.IsZero() {
		t := k.RotatedAt
		v.RotatedAt = &t
	}
	return v
}

// mintedKey is a create or rotate answer: the key and, when the server
// minted it, the plaintext, shown this once.
type mintedKey struct {
	AdminKeyView
	Key string `json:"key,omitempty"`
}

// adminKeyInput is the body of POST /admin/v1/admin_keys; KeyHash is the
// SHA-256 of a key the client minted, or empty for the server to mint one.
type adminKeyInput struct {
	DisplayName string `json:"display_name"`
	Scope       string `json:"scope"`
	KeyHash     string `json:"key_hash,omitempty"`
}

// rotateInput is the optional body of POST /admin/v1/admin_keys/{id}/rotate.
type rotateInput struct {
	KeyHash string `json:"key_hash,omitempty"`
}

func (s *Server) adminKeyStore() (storage.AdminKeyStore, error) {
	if s.keyStore.store == nil {
		return nil, errorf(http.StatusNotImplemented, "this server's store keeps no admin keys")
	}
	return s.keyStore.store, nil
}

func (s *Server) listAdminKeys(_ http.ResponseWriter, r *http.Request) (response, error) {
	st, err := s.adminKeyStore()
	if err != nil {
		return response{}, err
	}
	ks, err := st.ListAdminKeys(r.Context())
	if err != nil {
		return response{}, err
	}
	out := make([]AdminKeyView, len(ks))
	for i, k := range ks {
		out[i] = AdminKeyViewOf(k)
	}
	return response{status: http.StatusOK, body: out}, nil
}

func (s *Server) createAdminKey(w http.ResponseWriter, r *http.Request) (response, error) {
	st, err := s.adminKeyStore()
	if err != nil {
		return response{}, err
	}
	var in adminKeyInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	plaintext, hash := "", in.KeyHash
	if hash == "" {
		if plaintext, hash, err = storage.MintAdminKey(); err != nil {
			return response{}, err
		}
	}
	k, err := st.CreateAdminKey(r.Context(), storage.AdminKey{DisplayName: in.DisplayName, Scope: in.Scope, KeyHash: hash})
	if err != nil {
		return response{}, err
	}
	s.keyStore.invalidate()
	return response{status: http.StatusCreated, body: mintedKey{AdminKeyView: AdminKeyViewOf(k), Key: plaintext}, id: k.ID,
		location: resourcePath(kindAdminKey, k.ID)}, nil
}

func (s *Server) rotateAdminKey(w http.ResponseWriter, r *http.Request) (response, error) {
	st, err := s.adminKeyStore()
	if err != nil {
		return response{}, err
	}
	var in rotateInput
	if r.ContentLength != 0 {
		if err := s.decodeBody(w, r, &in); err != nil {
			return response{}, err
		}
	}
	plaintext, hash := "", in.KeyHash
	if hash == "" {
		if plaintext, hash, err = storage.MintAdminKey(); err != nil {
			return response{}, err
		}
	}
	k, err := st.RotateAdminKey(r.Context(), r.PathValue("id"), hash)
	if err != nil {
		return response{}, err
	}
	s.keyStore.invalidate()
	return response{status: http.StatusOK, body: mintedKey{AdminKeyView: AdminKeyViewOf(k), Key: plaintext}, id: k.ID}, nil
}

func (s *Server) deleteAdminKey(_ http.ResponseWriter, r *http.Request) (response, error) {
	st, err := s.adminKeyStore()
	if err != nil {
		return response{}, err
	}
	if err := st.DeleteAdminKey(r.Context(), r.PathValue("id")); err != nil {
		return response{}, err
	}
	s.keyStore.invalidate()
	return deletedResponse(r.PathValue("id")), nil
}

// toStorage is the key a view shows (without its hash).
func (v AdminKeyView) toStorage() storage.AdminKey {
	k := storage.AdminKey{ID: v.ID, DisplayName: v.DisplayName, Scope: v.Scope, CreatedAt: v.CreatedAt}
	if v.RotatedAt != nil {
		k.RotatedAt = *v.RotatedAt
	}
	return k
}

// adminKeyByRef is the stored admin key with id or name ref, read from the
// store (for the audit log's field summary).
func (s *Server) adminKeyByRef(ctx context.Context, ref string) (storage.AdminKey, bool) {
	if s.keyStore.store == nil {
		return storage.AdminKey{}, false
	}
	ks, err := s.keyStore.store.ListAdminKeys(ctx)
	if err != nil {
		return storage.AdminKey{}, false
	}
	for _, k := range ks {
		if k.ID == ref || k.DisplayName == ref {
			return k, true
		}
	}
	return storage.AdminKey{}, false
}
