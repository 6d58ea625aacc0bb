-- 0003_provider_key_secret_key_id: provider secrets encrypted at rest, as
-- the SQLite store's migration 0010.
--
-- secret_key_id names the key (storage/secrets.KeyID) that secret is
-- encrypted under; then secret holds the base64 of an AES-256-GCM nonce,
-- ciphertext and tag, bound to the row's id. Empty means secret is
-- plaintext; aisix serve encrypts such rows at start-up, and refuses to
-- start on PostgreSQL without a key.
ALTER TABLE provider_keys ADD COLUMN secret_key_id TEXT COLLATE "C" NOT NULL DEFAULT '';
