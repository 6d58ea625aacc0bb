package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/aisix/aisix/storage"
)

// Admin keys (storage.AdminKeyStore): a table of their own on the writer
// connection, written without a store revision (the proxy never reads
// them).

const adminKeyColumns = `id, display_name, scope, key_hash, created_at, rotated_at`

func scanAdminKey(sc scanner) (storage.AdminKey, error) {
	var k storage.AdminKey
	var created, rotated string
	if err := sc.Scan(&k.ID, &k.DisplayName, &k.Scope, &k.KeyHash, &created, &rotated); err != nil {
		return storage.AdminKey{}, err
	}
	var err error
	if k.CreatedAt, err = parseTime(created); err != nil {
		return storage.AdminKey{}, err
	}
	if rotated != "" {
		if k.RotatedAt, err = parseTime(rotated); err != nil {
			return storage.AdminKey{}, err
		}
	}
	return k, nil
}

// ListAdminKeys returns every admin key, by display name.
func (s *Store) ListAdminKeys(ctx context.Context) ([]storage.AdminKey, error) {
	return readOne(ctx, s, func(tx *sql.Tx) ([]storage.AdminKey, error) {
		rows, err := tx.QueryContext(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys ORDER BY display_name`)
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
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO admin_keys (`+adminKeyColumns+`) VALUES (?, ?, ?, ?, ?, '')`,
			k.ID, k.DisplayName, k.Scope, k.KeyHash, formatTime(k.CreatedAt))
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
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE admin_keys SET key_hash = ?, rotated_at = ? WHERE id = ? OR display_name = ?`,
			keyHash, formatTime(s.now()), ref, ref)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows
		}
		out, err = scanAdminKey(tx.QueryRowContext(ctx, `SELECT `+adminKeyColumns+` FROM admin_keys WHERE key_hash = ?`, keyHash))
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
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM admin_keys WHERE id = ? OR display_name = ?`, ref, ref)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return sql.ErrNoRows
		}
		return nil
	})
	return mapErr("delete", r, err)
}
