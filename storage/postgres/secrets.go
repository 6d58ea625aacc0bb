package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aisix/aisix/storage/secrets"
)

// Secrets returns the keyring the store was opened with (nil: none).
func (s *Store) Secrets() *secrets.Keyring { return s.secrets }

// SecretKeyCounts returns how many provider keys hold a secret under each
// key ID; "" counts the plaintext ones.
func (s *Store) SecretKeyCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT secret_key_id, count(*) FROM provider_keys GROUP BY secret_key_id`)
	if err != nil {
		return nil, fmt.Errorf("count provider secrets: %w", err)
	}
	counts := map[string]int{}
	var id string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		counts[id] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count provider secrets: %w", err)
	}
	return counts, nil
}

// EncryptSecrets rewrites, in one config write transaction (so it waits
// for, and is waited for by, every other replica's writes), the provider
// secrets scope names (plaintext ones, or also those under previous keys)
// under the store's current key, and says what it did. Rows under a key
// the store lacks are left as they are and counted. It needs WithSecrets.
//
// It neither bumps the store revision nor notifies: no secret changes, so
// a replica that loaded the rows before still serves the right ones and
// need not reload, and one that loads them later decrypts them if it has
// the key (the rotation procedure gives every replica the new key first).
func (s *Store) EncryptSecrets(ctx context.Context, scope secrets.Scope) (secrets.Migration, error) {
	if s.secrets == nil {
		return secrets.Migration{}, errors.New("encrypt provider secrets: no secret key")
	}
	var m secrets.Migration
	err := s.withWrite(ctx, func(w *txWrite) error {
		rows, err := w.tx.Query(ctx, `SELECT id, secret, secret_key_id FROM provider_keys ORDER BY id FOR UPDATE`)
		if err != nil {
			return err
		}
		var all []secrets.Row
		var r secrets.Row
		if _, err := pgx.ForEachRow(rows, []any{&r.ID, &r.Stored, &r.KeyID}, func() error {
			all = append(all, r)
			return nil
		}); err != nil {
			return err
		}
		m, err = s.secrets.ReencryptRows(scope, all, func(id, stored, keyID string) error {
			return w.exec(`UPDATE provider_keys SET secret = $1, secret_key_id = $2 WHERE id = $3`, stored, keyID, id)
		})
		return err
	})
	if err != nil {
		return secrets.Migration{}, fmt.Errorf("encrypt provider secrets: %w", err)
	}
	return m, nil
}
