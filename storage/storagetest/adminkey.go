package storagetest

import (
	"errors"
	"testing"

	"github.com/aisix/aisix/storage"
)

// RunAdminKeys runs the admin key conformance suite on an empty
// storage.AdminKeyStore from newStore (a database store, or the admin API
// client in front of one), which must arrange for it to be closed. A store
// may leave KeyHash out of what it returns (the admin API never shows it);
// when it is there it must be the stored one.
func RunAdminKeys(t *testing.T, newStore func(t *testing.T) storage.AdminKeyStore) {
	t.Helper()
	t.Run("AdminKeys/lifecycle", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		if ks, err := s.ListAdminKeys(ctx); err != nil || len(ks) != 0 {
			t.Fatalf("empty store: %v %v", ks, err)
		}
		_, hash, err := storage.MintAdminKey()
		if err != nil {
			t.Fatal(err)
		}
		ops, err := s.CreateAdminKey(ctx, storage.AdminKey{DisplayName: "ops", Scope: storage.ScopeRead, KeyHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		if ops.ID == "" || ops.Scope != storage.ScopeRead || !sameHash(ops, hash) || ops.CreatedAt.IsZero() || !ops.RotatedAt.IsZero() {
			t.Errorf("created %+v", ops)
		}
		_, hash2, _ := storage.MintAdminKey()
		ci, err := s.CreateAdminKey(ctx, storage.AdminKey{DisplayName: "ci", Scope: storage.ScopeWrite, KeyHash: hash2})
		if err != nil {
			t.Fatal(err)
		}
		ks, err := s.ListAdminKeys(ctx)
		if err != nil || len(ks) != 2 || ks[0].DisplayName != "ci" || ks[1].DisplayName != "ops" || ks[1].ID != ops.ID || !sameHash(ks[1], hash) {
			t.Fatalf("list = %+v, %v; want ci then ops", ks, err)
		}
		_, hash3, _ := storage.MintAdminKey()
		rot, err := s.RotateAdminKey(ctx, "ops", hash3)
		if err != nil {
			t.Fatal(err)
		}
		if rot.ID != ops.ID || !sameHash(rot, hash3) || rot.Scope != storage.ScopeRead || rot.RotatedAt.IsZero() {
			t.Errorf("rotated by name: %+v", rot)
		}
		if _, err := s.RotateAdminKey(ctx, ci.ID, hash3); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("rotate to a hash another key has: %v, want ErrConflict", err)
		}
		if err := s.DeleteAdminKey(ctx, ci.ID); err != nil {
			t.Fatal(err)
		}
		if ks, _ := s.ListAdminKeys(ctx); len(ks) != 1 || ks[0].ID != ops.ID || !sameHash(ks[0], hash3) {
			t.Errorf("after delete: %+v", ks)
		}
		if err := s.DeleteAdminKey(ctx, "ci"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("delete again: %v, want ErrNotFound", err)
		}
		if _, err := s.RotateAdminKey(ctx, "nobody", hash2); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("rotate a missing key: %v, want ErrNotFound", err)
		}
	})
	t.Run("AdminKeys/refused", func(t *testing.T) {
		s := newStore(t)
		ctx := t.Context()
		_, hash, _ := storage.MintAdminKey()
		if _, err := s.CreateAdminKey(ctx, storage.AdminKey{DisplayName: "a", Scope: storage.ScopeAdmin, KeyHash: hash}); err != nil {
			t.Fatal(err)
		}
		_, other, _ := storage.MintAdminKey()
		for _, c := range []struct {
			name string
			k    storage.AdminKey
			want error
		}{
			{"taken name", storage.AdminKey{DisplayName: "a", Scope: storage.ScopeRead, KeyHash: other}, storage.ErrConflict},
			{"taken hash", storage.AdminKey{DisplayName: "b", Scope: storage.ScopeRead, KeyHash: hash}, storage.ErrConflict},
			{"unknown scope", storage.AdminKey{DisplayName: "c", Scope: "root", KeyHash: other}, storage.ErrInvalid},
			{"no name", storage.AdminKey{Scope: storage.ScopeRead, KeyHash: other}, storage.ErrInvalid},
			{"bad hash", storage.AdminKey{DisplayName: "d", Scope: storage.ScopeRead, KeyHash: "ak-plaintext"}, storage.ErrInvalid},
		} {
			if _, err := s.CreateAdminKey(ctx, c.k); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.name, err, c.want)
			}
		}
		if ks, _ := s.ListAdminKeys(ctx); len(ks) != 1 {
			t.Errorf("refused creates stored something: %+v", ks)
		}
	})
}

// sameHash reports whether k carries hash, or no hash at all.
func sameHash(k storage.AdminKey, hash string) bool { return k.KeyHash == "" || k.KeyHash == hash }
