package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/aisix/aisix/storage/secrets"
)

// Secrets returns the keyring the store was opened with (nil: none).
func (s *Store) Secrets() *secrets.Keyring { return s.secrets }

// SecretKeyCounts returns how many provider keys hold a secret under each
// key ID; "" counts the plaintext ones.
func (s *Store) SecretKeyCounts(ctx context.Context) (map[string]int, error) {
	rows, err := s.reader.QueryContext(ctx, `SELECT secret_key_id, count(*) FROM provider_keys GROUP BY secret_key_id`)
	if err != nil {
		return nil, fmt.Errorf("count provider secrets: %w", err)
	}
	defer rows.Close()
	counts := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count provider secrets: %w", err)
		}
		counts[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count provider secrets: %w", err)
	}
	return counts, nil
}

// EncryptSecrets rewrites, in one write transaction, the provider secrets
// scope names (plaintext ones, or also those under previous keys) under
// the store's current key, and says what it did. Rows under a key the
// store lacks are left as they are and counted. It needs WithSecrets.
//
// Having encrypted plaintext rows, it checkpoints and truncates the WAL,
// so the plaintext is gone from the WAL too (the writer connection runs
// with secure_delete, so it is zeroed in the database file).
//
// It does not bump the store revision: no secret changes, so a process
// that loaded the rows before still serves the right ones and need not
// reload, and one that loads them later decrypts them if it has the key
// (the rotation procedure gives every replica the new key first).
func (s *Store) EncryptSecrets(ctx context.Context, scope secrets.Scope) (secrets.Migration, error) {
	if s.secrets == nil {
		return secrets.Migration{}, errors.New("encrypt provider secrets: no secret key")
	}
	var m secrets.Migration
	err := s.withWrite(ctx, func(w *txWrite) error {
		rs, err := w.tx.QueryContext(ctx, `SELECT id, secret, secret_key_id FROM provider_keys ORDER BY id`)
		if err != nil {
			return err
		}
		var all []secrets.Row
		for rs.Next() {
			var r secrets.Row
			if err := rs.Scan(&r.ID, &r.Stored, &r.KeyID); err != nil {
				_ = rs.Close()
				return err
			}
			all = append(all, r)
		}
		if err := errors.Join(rs.Err(), rs.Close()); err != nil {
			return err
		}
		m, err = s.secrets.ReencryptRows(scope, all, func(id, stored, keyID string) error {
			return w.exec(`UPDATE provider_keys SET secret = ?, secret_key_id = ? WHERE id = ?`, stored, keyID, id)
		})
		return err
	})
	if err != nil {
		return secrets.Migration{}, fmt.Errorf("encrypt provider secrets: %w", err)
	}
	if m.Encrypted > 0 {
		// The WAL still holds the frames that wrote the plaintext: copy
		// what is current into the database file and empty the WAL. A
		// reader in another process can keep it from completing; then the
		// frames are overwritten as the WAL is reused.
		if _, err := s.writer.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			s.log.WarnContext(ctx, "checkpoint after encrypting provider secrets", "err", err)
		}
	}
	return m, nil
}
