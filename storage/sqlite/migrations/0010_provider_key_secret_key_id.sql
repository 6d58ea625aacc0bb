-- 0010_provider_key_secret_key_id: provider secrets encrypted at rest.
--
-- secret_key_id names the key (storage/secrets.KeyID) that secret is
-- encrypted under; then secret holds the base64 of an AES-256-GCM nonce,
-- ciphertext and tag, bound to the row's id. Empty means secret is
-- plaintext, as every row written before this migration is; a store
-- opened with a key encrypts those when asked (aisix serve does it at
-- start-up).
ALTER TABLE provider_keys ADD COLUMN secret_key_id TEXT NOT NULL DEFAULT '';
