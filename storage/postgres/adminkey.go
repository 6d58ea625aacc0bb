package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aisix/aisix/storage"
)

// Admin keys (storage.AdminKeyStore), as the SQLite store keeps them: a
// table of their own, written without a store revision or notification.

const adminKeyColumns = `id, display_name, scope, key_hash, created_at, rotated_at`

func scanAdminKey(row pgx.Row) (storage.AdminKey, error) {
	var k storage.AdminKey
	var rotated *time.Time
	if err := row.Scan(&k.ID, &k.DisplayName, &k.Scope, &k.KeyHash, &k.CreatedAt, &rotated); err != nil {
		return storage.AdminKey{}, err
	}
	k.CreatedAt = k.CreatedAt.UTC()
	if rotated != nil {
		k.RotatedAt = rotated.UTC()
	}
	return k, nil
}

// ListAdminKeys returns every admin key, by display name.
func (s *Store) ListAdminKeys(ctx context.Context) ([]storage.AdminKey, error) {
	return readOne(ctx, s, func(tx pgx.Tx) ([]storage.AdminKey, error) {
		rows, err := tx.Query(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys ORDER BY display_name`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := []storage.AdminKey{}
		for rows.Next() {
			k, err := scanAdminKey(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		return out, rows.Err()
	})
}

// CreateAdminKey stores k; ErrConflict when its name or hash is taken.
func (s *Store) CreateAdminKey(ctx context.Context, k storage.AdminKey) (storage.AdminKey, error) {
	if err := storage.ValidateAdminKey(k); err != nil {
		return storage.AdminKey{}, err
	}
	if k.ID == "" {
		k.ID = s.newID()
	}
	k.CreatedAt, k.RotatedAt = s.now().UTC().Truncate(time.Microsecond), time.Time{}
	r := resource{kind: kindAdminKey, id: k.ID, name: k.DisplayName}
	err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO admin_keys (id, display_name, scope, key_hash, created_at) VALUES ($1, $2, $3, $4, $5)`,
			k.ID, k.DisplayName, k.Scope, k.KeyHash, k.CreatedAt)
		return err
	})
	if err != nil {
		return storage.AdminKey{}, mapErr("create", r, err)
	}
	return k, nil
}

// RotateAdminKey replaces the hash of the key with id or name ref.
func (s *Store) RotateAdminKey(ctx context.Context, ref, keyHash string) (storage.AdminKey, error) {
	if err := storage.ValidateKeyHash(keyHash); err != nil {
		return storage.AdminKey{}, err
	}
	r := resource{kind: kindAdminKey, id: ref}
	var out storage.AdminKey
	err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		out, err = scanAdminKey(tx.QueryRow(ctx, `UPDATE admin_keys SET key_hash = $1, rotated_at = $2 WHERE id = $3 OR display_name = $3 RETURNING `+adminKeyColumns,
			keyHash, s.now().UTC().Truncate(time.Microsecond), ref))
		return err
	})
	if err != nil {
		return storage.AdminKey{}, mapErr("rotate", r, err)
	}
	return out, nil
}

// DeleteAdminKey removes the key with id or name ref.
func (s *Store) DeleteAdminKey(ctx context.Context, ref string) error {
	r := resource{kind: kindAdminKey, id: ref}
	err := s.withTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM admin_keys WHERE id = $1 OR display_name = $1`, ref)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		return nil
	})
	return mapErr("delete", r, err)
}
