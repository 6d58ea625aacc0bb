package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/aisix/aisix/storage"
)

const apiKeyColumns = `id, display_name, key_hash, allowed_models, expires_at, disabled, revision, created_at, updated_at`

func scanAPIKey(sc scanner) (storage.APIKey, error) {
	var (
		k                storage.APIKey
		name, expires    sql.NullString
		allowed          string
		created, updated string
	)
	err := sc.Scan(&k.ID, &name, &k.KeyHash, &allowed, &expires, &k.Disabled, &k.Revision, &created, &updated)
	if err != nil {
		return storage.APIKey{}, err
	}
	k.DisplayName = name.String
	if k.AllowedModels, err = decodeAllowed(allowed); err != nil {
		return storage.APIKey{}, fmt.Errorf("decode allowed_models of API key %q: %w", k.ID, err)
	}
	if expires.Valid {
		t, err := parseTime(expires.String)
		if err != nil {
			return storage.APIKey{}, err
		}
		k.ExpiresAt = &t
	}
	if err := scanMeta(&k.Meta, k.Revision, created, updated); err != nil {
		return storage.APIKey{}, err
	}
	return k, nil
}

// decodeAllowed decodes the stored allowed_models. The result is never nil:
// nil means "not given", which validation rejects. The common ["*"] skips
// the JSON decoder, which matters when loading many keys.
func decodeAllowed(s string) ([]string, error) {
	if s == `["*"]` {
		return []string{"*"}, nil
	}
	allowed := []string{}
	if err := json.Unmarshal([]byte(s), &allowed); err != nil {
		return nil, err
	}
	if allowed == nil {
		allowed = []string{}
	}
	return allowed, nil
}

func listAPIKeys(ctx context.Context, q querier) ([]storage.APIKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	var ks []storage.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return ks, nil
}

func getAPIKey(ctx context.Context, q querier, id string) (storage.APIKey, error) {
	k, err := scanAPIKey(q.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`, id))
	if err != nil {
		return storage.APIKey{}, mapErr("get", resource{kind: kindAPIKey, id: id}, err)
	}
	return k, nil
}

// apiKeyArgs returns the stored forms of k's optional fields.
func apiKeyArgs(k *storage.APIKey) (allowed string, expires any, err error) {
	b, err := json.Marshal(k.AllowedModels)
	if err != nil {
		return "", nil, fmt.Errorf("encode allowed_models: %w", err)
	}
	if k.ExpiresAt != nil {
		expires = formatTime(*k.ExpiresAt)
	}
	return string(b), expires, nil
}

// ListAPIKeys returns every caller key, oldest first (by created_at, then
// id). It returns nil when there are none.
func (s *Store) ListAPIKeys(ctx context.Context) ([]storage.APIKey, error) {
	return listAPIKeys(ctx, s.reader)
}

// GetAPIKey returns the caller key with the given id. It returns
// ErrNotFound if there is none.
func (s *Store) GetAPIKey(ctx context.Context, id string) (storage.APIKey, error) {
	return getAPIKey(ctx, s.reader, id)
}

// CreateAPIKey stores a new caller key under a new ID and returns it.
// AllowedModels may name models that do not exist. It returns ErrInvalid if
// k fails validation, and ErrConflict if its display name or key hash is
// taken.
func (s *Store) CreateAPIKey(ctx context.Context, k storage.APIKey) (storage.APIKey, error) {
	if err := k.Validate(); err != nil {
		return storage.APIKey{}, err
	}
	allowed, expires, err := apiKeyArgs(&k)
	if err != nil {
		return storage.APIKey{}, err
	}
	r := resource{kind: kindAPIKey, id: s.newID(), name: k.DisplayName}
	var out storage.APIKey
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		rev, err := bumpRevision(ctx, tx)
		if err != nil {
			return err
		}
		now := formatTime(s.now())
		_, err = tx.ExecContext(ctx, `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			r.id, nullIfEmpty(k.DisplayName), k.KeyHash, allowed, expires, k.Disabled, rev, now, now)
		if err != nil {
			return err
		}
		out, err = getAPIKey(ctx, tx, r.id)
		return err
	})
	if err != nil {
		return storage.APIKey{}, mapErr("create", r, err)
	}
	return out, nil
}

// UpdateAPIKey replaces the caller key k.ID and returns it. It returns
// ErrNotFound if there is no such key, ErrRevisionMismatch if ifRevision is
// non-zero and not the stored revision, ErrInvalid if k fails validation,
// and ErrConflict if the new display name or key hash is taken.
func (s *Store) UpdateAPIKey(ctx context.Context, k storage.APIKey, ifRevision int64) (storage.APIKey, error) {
	if err := k.Validate(); err != nil {
		return storage.APIKey{}, err
	}
	allowed, expires, err := apiKeyArgs(&k)
	if err != nil {
		return storage.APIKey{}, err
	}
	r := resource{kind: kindAPIKey, id: k.ID, name: k.DisplayName}
	var out storage.APIKey
	err = s.withTx(ctx, func(tx *sql.Tx) error {
		var cur int64
		if err := tx.QueryRowContext(ctx, `SELECT revision FROM api_keys WHERE id = ?`, k.ID).Scan(&cur); err != nil {
			return err
		}
		if err := checkRevision(kindAPIKey, k.ID, ifRevision, cur); err != nil {
			return err
		}
		rev, err := bumpRevision(ctx, tx)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE api_keys SET
				display_name = ?, key_hash = ?, allowed_models = ?, expires_at = ?, disabled = ?,
				revision = ?, updated_at = ?
			WHERE id = ?`,
			nullIfEmpty(k.DisplayName), k.KeyHash, allowed, expires, k.Disabled, rev, formatTime(s.now()), k.ID)
		if err != nil {
			return err
		}
		out, err = getAPIKey(ctx, tx, k.ID)
		return err
	})
	if err != nil {
		return storage.APIKey{}, mapErr("update", r, err)
	}
	return out, nil
}

// DeleteAPIKey deletes the caller key id. It returns ErrNotFound if there
// is none.
func (s *Store) DeleteAPIKey(ctx context.Context, id string) error {
	r := resource{kind: kindAPIKey, id: id}
	err := s.withTx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM api_keys WHERE id = ?`, id).Scan(&one); err != nil {
			return err
		}
		if _, err := bumpRevision(ctx, tx); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM api_keys WHERE id = ?`, id)
		return err
	})
	return mapErr("delete", r, err)
}
