package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/secrets"
)

const providerKeyColumns = `id, display_name, provider, adapter, secret, api_base, secret_host, forward_headers,
	api_version, revision, created_at, updated_at, secret_key_id, tls_ca_file, tls_cert_file, tls_key_file`

// errBadSecret marks a provider key whose secret could not be decrypted.
var errBadSecret = errors.New("unreadable provider secret")

// scanProviderKey scans a provider key and decrypts its secret with kr. A
// secret that does not decrypt returns the row without it (SecretHint
// says why) and an error wrapping errBadSecret, so a list can carry on.
func scanProviderKey(sc scanner, kr *secrets.Keyring) (storage.ProviderKey, error) {
	var (
		pk               storage.ProviderKey
		forward, keyID   string
		created, updated string
	)
	err := sc.Scan(&pk.ID, &pk.DisplayName, &pk.Provider, &pk.Adapter, &pk.Secret, &pk.APIBase, &pk.SecretHost,
		&forward, &pk.APIVersion, &pk.Revision, &created, &updated, &keyID,
		&pk.TLSCAFile, &pk.TLSCertFile, &pk.TLSKeyFile)
	if err != nil {
		return storage.ProviderKey{}, err
	}
	// Most keys forward nothing: skip the decoder for them.
	if forward != "[]" {
		if err := json.Unmarshal([]byte(forward), &pk.ForwardHeaders); err != nil {
			return storage.ProviderKey{}, fmt.Errorf("decode forward_headers of provider key %q: %w", pk.ID, err)
		}
	}
	if err := scanMeta(&pk.Meta, pk.Revision, created, updated); err != nil {
		return storage.ProviderKey{}, err
	}
	if pk.Secret, err = kr.OpenProviderSecret(pk.ID, pk.Secret, keyID); err != nil {
		pk.SecretHint = secrets.Unreadable(err)
		return pk, fmt.Errorf("%w: %w", errBadSecret, err)
	}
	pk.SecretHint = storage.MaskSecret(pk.Secret)
	return pk, nil
}

// listProviderKeys lists every provider key. A row whose secret does not
// decrypt is left out and reported in bad when bad is not nil (the
// proxy's Load), and listed without its secret otherwise.
func listProviderKeys(ctx context.Context, q querier, kr *secrets.Keyring, bad *[]storage.UnreadableRow) ([]storage.ProviderKey, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+providerKeyColumns+` FROM provider_keys ORDER BY display_name`)
	if err != nil {
		return nil, fmt.Errorf("list provider keys: %w", err)
	}
	defer rows.Close()
	var pks []storage.ProviderKey
	for rows.Next() {
		pk, err := scanProviderKey(rows, kr)
		switch {
		case errors.Is(err, errBadSecret) && bad != nil:
			*bad = append(*bad, storage.UnreadableRow{Kind: storage.KindProviderKey, ID: pk.ID, Name: pk.DisplayName, Reason: err.Error()})
			continue
		case errors.Is(err, errBadSecret):
		case err != nil:
			return nil, fmt.Errorf("list provider keys: %w", err)
		}
		pks = append(pks, pk)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list provider keys: %w", err)
	}
	return pks, nil
}

// getProviderKey reads one provider key; one whose secret does not
// decrypt comes back without it.
func getProviderKey(ctx context.Context, q querier, kr *secrets.Keyring, id string) (storage.ProviderKey, error) {
	pk, err := scanProviderKey(q.QueryRowContext(ctx, `SELECT `+providerKeyColumns+` FROM provider_keys WHERE id = ?`, id), kr)
	if err != nil && !errors.Is(err, errBadSecret) {
		return storage.ProviderKey{}, mapErr("get", resource{kind: kindProviderKey, id: id}, err)
	}
	return pk, nil
}

// ListProviderKeys returns every provider key, secrets included, sorted by
// display name. It returns nil when there are none. A key whose secret
// cannot be decrypted (encrypted under a key the store was not given)
// is listed without it, its SecretHint saying why.
func (s *Store) ListProviderKeys(ctx context.Context) ([]storage.ProviderKey, error) {
	return listProviderKeys(ctx, s.reader, s.secrets, nil)
}

// GetProviderKey returns the provider key with the given id, secret
// included (or, as ListProviderKeys, without it if it cannot be
// decrypted). It returns ErrNotFound if there is none.
func (s *Store) GetProviderKey(ctx context.Context, id string) (storage.ProviderKey, error) {
	return getProviderKey(ctx, s.reader, s.secrets, id)
}

// CreateProviderKey stores a new provider key under a new ID and returns it,
// its secret bound to the host of its base URL (SecretHost; the one given
// is ignored) and its ForwardHeaders in canonical form. It returns
// ErrInvalid if pk fails validation or has no secret, and ErrConflict if
// its display name is taken.
func (s *Store) CreateProviderKey(ctx context.Context, pk storage.ProviderKey) (storage.ProviderKey, error) {
	forward, err := providerKeyArgs(&pk)
	if err != nil {
		return storage.ProviderKey{}, err
	}
	if err := storage.ValidateSecretFor(pk.EffectiveAdapter(), pk.Secret); err != nil {
		return storage.ProviderKey{}, err
	}
	r := resource{kind: kindProviderKey, id: s.newID(), name: pk.DisplayName}
	var out storage.ProviderKey
	err = s.withWrite(ctx, func(w *txWrite) error {
		if err := w.insertProviderKey(r.id, &pk, forward); err != nil {
			return err
		}
		out, err = getProviderKey(ctx, w.tx, s.secrets, r.id)
		return err
	})
	if err != nil {
		return storage.ProviderKey{}, mapErr("create", r, err)
	}
	return out, nil
}

// insertProviderKey stores pk under id, its secret bound to its base
// URL's host and encrypted under the current key if the store has one;
// forward is providerKeyArgs's.
func (w *txWrite) insertProviderKey(id string, pk *storage.ProviderKey, forward string) error {
	rev, err := w.revision()
	if err != nil {
		return err
	}
	secret, keyID, err := w.secrets.SealProviderSecret(id, pk.Secret)
	if err != nil {
		return err
	}
	return w.exec(`INSERT INTO provider_keys (`+providerKeyColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, pk.DisplayName, pk.Provider, pk.Adapter, secret, pk.APIBase, pk.BaseHost(), forward, pk.APIVersion, rev, w.now, w.now, keyID,
		pk.TLSCAFile, pk.TLSCertFile, pk.TLSKeyFile)
}

// updateProviderKey replaces the provider key pk.ID. A new secret is bound
// to the host it is sent to from now on (and encrypted as
// insertProviderKey's); no secret keeps the stored one and its host.
func (w *txWrite) updateProviderKey(pk *storage.ProviderKey, forward string) error {
	rev, err := w.revision()
	if err != nil {
		return err
	}
	var secret, keyID string
	if pk.Secret != "" {
		if secret, keyID, err = w.secrets.SealProviderSecret(pk.ID, pk.Secret); err != nil {
			return err
		}
	}
	return w.exec(`UPDATE provider_keys SET
			display_name = ?1, provider = ?2, adapter = ?3,
			secret = CASE WHEN ?4 = '' THEN secret ELSE ?4 END,
			secret_key_id = CASE WHEN ?4 = '' THEN secret_key_id ELSE ?12 END,
			secret_host = CASE WHEN ?4 = '' THEN secret_host ELSE ?5 END,
			api_base = ?6, forward_headers = ?7, revision = ?8, updated_at = ?9,
			api_version = ?11, tls_ca_file = ?13, tls_cert_file = ?14, tls_key_file = ?15
		WHERE id = ?10`,
		pk.DisplayName, pk.Provider, pk.Adapter, secret, pk.BaseHost(), pk.APIBase, forward, rev, w.now, pk.ID,
		pk.APIVersion, keyID, pk.TLSCAFile, pk.TLSCertFile, pk.TLSKeyFile)
}

// deleteProviderKey deletes the provider key id, which no model may use.
func (w *txWrite) deleteProviderKey(id string) error {
	if _, err := w.revision(); err != nil {
		return err
	}
	return w.exec(`DELETE FROM provider_keys WHERE id = ?`, id)
}

// providerKeyArgs validates pk and returns the stored form of its
// forward_headers (canonical names, as JSON).
func providerKeyArgs(pk *storage.ProviderKey) (forward string, err error) {
	if err := pk.ValidateWrite(); err != nil {
		return "", err
	}
	names, err := storage.CanonicalForwardHeaders(pk.ForwardHeaders)
	if err != nil {
		return "", err
	}
	if names == nil {
		return "[]", nil
	}
	b, err := json.Marshal(names)
	if err != nil {
		return "", fmt.Errorf("encode forward_headers: %w", err)
	}
	return string(b), nil
}

// UpdateProviderKey replaces the provider key pk.ID and returns it. A
// non-empty Secret replaces the stored one and binds it to the host of the
// new base URL; an empty Secret keeps the stored one and the host it was
// entered for, so after an api_base change to another host the key reads
// back with SecretBound false until the secret is sent again or api_base
// points back. The SecretHost given is ignored. It returns ErrNotFound if there is no such
// key, ErrRevisionMismatch if ifRevision is non-zero and not the stored
// revision, ErrInvalid if pk fails validation, and ErrConflict if the new
// display name is taken.
func (s *Store) UpdateProviderKey(ctx context.Context, pk storage.ProviderKey, ifRevision int64) (storage.ProviderKey, error) {
	forward, err := providerKeyArgs(&pk)
	if err != nil {
		return storage.ProviderKey{}, err
	}
	if pk.Secret != "" {
		if err := storage.ValidateSecretFor(pk.EffectiveAdapter(), pk.Secret); err != nil {
			return storage.ProviderKey{}, err
		}
	}
	r := resource{kind: kindProviderKey, id: pk.ID, name: pk.DisplayName}
	var out storage.ProviderKey
	err = s.withWrite(ctx, func(w *txWrite) error {
		var cur int64
		if err := w.tx.QueryRowContext(ctx, `SELECT revision FROM provider_keys WHERE id = ?`, pk.ID).Scan(&cur); err != nil {
			return err
		}
		if err := storage.CheckRevision(kindProviderKey, pk.ID, ifRevision, cur); err != nil {
			return err
		}
		if err := w.updateProviderKey(&pk, forward); err != nil {
			return err
		}
		out, err = getProviderKey(ctx, w.tx, s.secrets, pk.ID)
		return err
	})
	if err != nil {
		return storage.ProviderKey{}, mapErr("update", r, err)
	}
	return out, nil
}

// DeleteProviderKey deletes the provider key id. It returns ErrNotFound if
// there is none, and ErrConflict, naming them, if models still use it.
func (s *Store) DeleteProviderKey(ctx context.Context, id string) error {
	r := resource{kind: kindProviderKey, id: id}
	err := s.withWrite(ctx, func(w *txWrite) error {
		var name string
		if err := w.tx.QueryRowContext(ctx, `SELECT display_name FROM provider_keys WHERE id = ?`, id).Scan(&name); err != nil {
			return err
		}
		users, err := queryNames(ctx, w.tx, `SELECT display_name FROM models WHERE provider_key_id = ? ORDER BY display_name`, id)
		if err != nil {
			return err
		}
		if len(users) > 0 {
			return storage.Errorf(storage.ErrConflict, "provider key %q is used by model(s) %s", name, strings.Join(users, ", "))
		}
		return w.deleteProviderKey(id)
	})
	return mapErr("delete", r, err)
}

// queryNames runs a query that returns one text column.
func queryNames(ctx context.Context, q querier, query string, args ...any) ([]string, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
