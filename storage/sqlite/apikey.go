package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/aisix/aisix/storage"
)

const apiKeyColumns = `id, display_name, key_hash, expires_at, disabled, rate_limit, budget, revision, created_at, updated_at`

// errBadLimits marks a caller key row whose rate_limit or budget could not
// be decoded.
var errBadLimits = errors.New("unreadable API key limits")

// scanAPIKey scans a caller key. Limits that do not decode return the row
// without them and an error wrapping errBadLimits, so a list can carry on
// past it.
func scanAPIKey(sc scanner) (storage.APIKey, error) {
	var (
		k                 storage.APIKey
		name, expires     sql.NullString
		rateLimit, budget []byte
		created, updated  string
	)
	err := sc.Scan(&k.ID, &name, &k.KeyHash, &expires, &k.Disabled, &rateLimit, &budget, &k.Revision, &created, &updated)
	if err != nil {
		return storage.APIKey{}, err
	}
	k.DisplayName = name.String
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
	rl, b, err := storage.DecodeKeyLimits(rateLimit, budget)
	if err != nil {
		return k, fmt.Errorf("%w: API key %q: %w", errBadLimits, k.ID, err)
	}
	k.RateLimit, k.Budget = rl, b
	return k, nil
}

// limitArgs are the rate_limit and budget column values of k: JSON text,
// or NULL when unset.
func limitArgs(k *storage.APIKey) (rateLimit, budget any, err error) {
	rl, b, err := storage.EncodeKeyLimits(k)
	if err != nil {
		return nil, nil, err
	}
	return textOrNull(rl), textOrNull(b), nil
}

// textOrNull binds b as TEXT (a STRICT column refuses a BLOB), nil as NULL.
func textOrNull(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// allowedQuery renders the allowed models of caller keys, one row per
// entry: the key, then the model's id and current display name, both NULL
// for the entry that allows every model.
const allowedQuery = `SELECT a.api_key_id, a.model_id, m.display_name
	FROM api_key_models a LEFT JOIN models m ON m.id = a.model_id`

// allowed is one caller key's allowed models, names and ids in stored order.
type allowed struct{ names, ids []string }

// queryAllowed runs allowedQuery with the given filter and order and groups
// the rows by caller key.
func queryAllowed(ctx context.Context, q querier, rest string, args ...any) (map[string]*allowed, error) {
	rows, err := q.QueryContext(ctx, allowedQuery+rest, args...)
	if err != nil {
		return nil, fmt.Errorf("list allowed models: %w", err)
	}
	defer rows.Close()
	out := make(map[string]*allowed)
	var (
		// Rows come grouped by key; RawBytes and the last key seen spare
		// Load a string and a map lookup per row.
		keyID, modelID, name sql.RawBytes
		last                 *allowed
		lastID               string
	)
	for rows.Next() {
		if err := rows.Scan(&keyID, &modelID, &name); err != nil {
			return nil, fmt.Errorf("list allowed models: %w", err)
		}
		if last == nil || string(keyID) != lastID {
			lastID = string(keyID)
			last = &allowed{}
			out[lastID] = last
		}
		if modelID == nil {
			last.names = append(last.names, "*")
			last.ids = append(last.ids, "*")
			continue
		}
		last.names = append(last.names, string(name))
		last.ids = append(last.ids, string(modelID))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list allowed models: %w", err)
	}
	return out, nil
}

// setAllowed fills k's allowed models from a (nil: none). Neither list is
// ever nil: nil means "not given", which validation rejects.
func setAllowed(k *storage.APIKey, a *allowed) {
	if a == nil {
		k.AllowedModels, k.AllowedModelIDs = []string{}, []string{}
		return
	}
	k.AllowedModels, k.AllowedModelIDs = a.names, a.ids
}

// listAPIKeys lists every caller key. A row whose limits do not decode is
// left out and reported in bad when bad is not nil (the proxy's Load), and
// listed without its limits otherwise (the admin API, so the row can still
// be seen, replaced or deleted).
func listAPIKeys(ctx context.Context, q querier, bad *[]storage.UnreadableRow) ([]storage.APIKey, error) {
	all, err := queryAllowed(ctx, q, ` ORDER BY a.api_key_id, a.position`)
	if err != nil {
		return nil, err
	}
	rows, err := q.QueryContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	defer rows.Close()
	var ks []storage.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		switch {
		case errors.Is(err, errBadLimits) && bad != nil:
			*bad = append(*bad, storage.UnreadableRow{Kind: storage.KindAPIKey, ID: k.ID, Name: k.DisplayName, Reason: err.Error()})
			continue
		case errors.Is(err, errBadLimits):
		case err != nil:
			return nil, fmt.Errorf("list API keys: %w", err)
		}
		setAllowed(&k, all[k.ID])
		ks = append(ks, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return ks, nil
}

// getAPIKey returns caller key id; limits that do not decode are left out,
// as listAPIKeys does for the admin API, so the key can be seen and fixed.
func getAPIKey(ctx context.Context, q querier, id string) (storage.APIKey, error) {
	k, err := scanAPIKey(q.QueryRowContext(ctx, `SELECT `+apiKeyColumns+` FROM api_keys WHERE id = ?`, id))
	if err != nil && !errors.Is(err, errBadLimits) {
		return storage.APIKey{}, mapErr("get", resource{kind: kindAPIKey, id: id}, err)
	}
	a, err := queryAllowed(ctx, q, ` WHERE a.api_key_id = ? ORDER BY a.position`, id)
	if err != nil {
		return storage.APIKey{}, err
	}
	setAllowed(&k, a[id])
	return k, nil
}

// resolveAllowed returns the stored form of the model names a caller key
// allows: each model's id, nil for "*". It returns ErrInvalid, naming the
// entry, for a name no model has: an id cannot be stored for it.
func resolveAllowed(ctx context.Context, tx *sql.Tx, names []string) ([]any, error) {
	ids := make([]any, len(names))
	for i, name := range names {
		if name == "*" {
			continue
		}
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM models WHERE display_name = ?`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, storage.FieldErrorf(fmt.Sprintf("allowed_models[%d]", i), "%q is not an existing model", name)
		}
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// writeAllowed stores ids as the allowed models of caller key id,
// replacing what it had when replace is set.
func (w *txWrite) writeAllowed(id string, ids []any, replace bool) error {
	if replace {
		if err := w.exec(`DELETE FROM api_key_models WHERE api_key_id = ?`, id); err != nil {
			return err
		}
	}
	for i, mid := range ids {
		if err := w.exec(`INSERT INTO api_key_models (api_key_id, position, model_id) VALUES (?, ?, ?)`, id, i, mid); err != nil {
			return err
		}
	}
	return nil
}

// apiKeyArgs are the rate_limit and budget columns of k and the revision
// to stamp it with.
func (w *txWrite) apiKeyArgs(k *storage.APIKey) (rateLimit, budget any, rev int64, err error) {
	if rateLimit, budget, err = limitArgs(k); err != nil {
		return nil, nil, 0, err
	}
	rev, err = w.revision()
	return rateLimit, budget, rev, err
}

// insertAPIKey stores k under id, allowing the models ids (resolveAllowed's).
func (w *txWrite) insertAPIKey(id string, k *storage.APIKey, ids []any) error {
	rateLimit, budget, rev, err := w.apiKeyArgs(k)
	if err != nil {
		return err
	}
	err = w.exec(`INSERT INTO api_keys (`+apiKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, nullIfEmpty(k.DisplayName), k.KeyHash, expiresArg(k), k.Disabled, rateLimit, budget, rev, w.now, w.now)
	if err != nil {
		return err
	}
	return w.writeAllowed(id, ids, false)
}

// updateAPIKey replaces the caller key k.ID, as insertAPIKey stores one.
func (w *txWrite) updateAPIKey(k *storage.APIKey, ids []any) error {
	rateLimit, budget, rev, err := w.apiKeyArgs(k)
	if err != nil {
		return err
	}
	err = w.exec(`UPDATE api_keys SET
			display_name = ?, key_hash = ?, expires_at = ?, disabled = ?,
			rate_limit = ?, budget = ?, revision = ?, updated_at = ?
		WHERE id = ?`,
		nullIfEmpty(k.DisplayName), k.KeyHash, expiresArg(k), k.Disabled, rateLimit, budget, rev, w.now, k.ID)
	if err != nil {
		return err
	}
	return w.writeAllowed(k.ID, ids, true)
}

// deleteAPIKey deletes the caller key id.
func (w *txWrite) deleteAPIKey(id string) error {
	if _, err := w.revision(); err != nil {
		return err
	}
	return w.exec(`DELETE FROM api_keys WHERE id = ?`, id)
}

func expiresArg(k *storage.APIKey) any {
	if k.ExpiresAt == nil {
		return nil
	}
	return formatTime(*k.ExpiresAt)
}

// ListAPIKeys returns every caller key, oldest first (by created_at, then
// id), with allowed models named by their current display names. It
// returns nil when there are none.
func (s *Store) ListAPIKeys(ctx context.Context) ([]storage.APIKey, error) {
	// Keys and their allowed models come from two queries; one snapshot
	// keeps them consistent.
	return readOne(ctx, s, func(tx *sql.Tx) ([]storage.APIKey, error) { return listAPIKeys(ctx, tx, nil) })
}

// GetAPIKey returns the caller key with the given id. It returns
// ErrNotFound if there is none.
func (s *Store) GetAPIKey(ctx context.Context, id string) (storage.APIKey, error) {
	return readOne(ctx, s, func(tx *sql.Tx) (storage.APIKey, error) { return getAPIKey(ctx, tx, id) })
}

// CreateAPIKey stores a new caller key under a new ID and returns it. Its
// AllowedModels are stored as the ids of the models they name, so the key
// keeps its access when a model is renamed. It returns ErrInvalid if k
// fails validation or allows a model that does not exist, and ErrConflict
// if its display name or key hash is taken.
func (s *Store) CreateAPIKey(ctx context.Context, k storage.APIKey) (storage.APIKey, error) {
	if err := k.Validate(); err != nil {
		return storage.APIKey{}, err
	}
	r := resource{kind: kindAPIKey, id: s.newID(), name: k.DisplayName}
	var out storage.APIKey
	err := s.withWrite(ctx, func(w *txWrite) error {
		ids, err := resolveAllowed(ctx, w.tx, k.AllowedModels)
		if err != nil {
			return err
		}
		if err := w.insertAPIKey(r.id, &k, ids); err != nil {
			return err
		}
		out, err = getAPIKey(ctx, w.tx, r.id)
		return err
	})
	if err != nil {
		return storage.APIKey{}, mapErr("create", r, err)
	}
	return out, nil
}

// UpdateAPIKey replaces the caller key k.ID and returns it. It returns
// ErrNotFound if there is no such key, ErrRevisionMismatch if ifRevision is
// non-zero and not the stored revision, ErrInvalid if k fails validation or
// allows a model that does not exist, and ErrConflict if the new display
// name or key hash is taken.
func (s *Store) UpdateAPIKey(ctx context.Context, k storage.APIKey, ifRevision int64) (storage.APIKey, error) {
	if err := k.Validate(); err != nil {
		return storage.APIKey{}, err
	}
	r := resource{kind: kindAPIKey, id: k.ID, name: k.DisplayName}
	var out storage.APIKey
	err := s.withWrite(ctx, func(w *txWrite) error {
		var cur int64
		if err := w.tx.QueryRowContext(ctx, `SELECT revision FROM api_keys WHERE id = ?`, k.ID).Scan(&cur); err != nil {
			return err
		}
		if err := storage.CheckRevision(kindAPIKey, k.ID, ifRevision, cur); err != nil {
			return err
		}
		ids, err := resolveAllowed(ctx, w.tx, k.AllowedModels)
		if err != nil {
			return err
		}
		if err := w.updateAPIKey(&k, ids); err != nil {
			return err
		}
		out, err = getAPIKey(ctx, w.tx, k.ID)
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
	err := s.withWrite(ctx, func(w *txWrite) error {
		var one int
		if err := w.tx.QueryRowContext(ctx, `SELECT 1 FROM api_keys WHERE id = ?`, id).Scan(&one); err != nil {
			return err
		}
		return w.deleteAPIKey(id)
	})
	return mapErr("delete", r, err)
}
