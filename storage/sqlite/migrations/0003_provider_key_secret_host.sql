-- 0003_provider_key_secret_host: a provider key's secret is bound to the
-- host it was entered for.
--
-- secret_host is the lower-case host name (no port) of the key's base URL
-- when its secret was last written. The store sets it whenever a secret is
-- written; an api_base change to another host without a new secret keeps
-- it, and the proxy then sends no credential there. The Go step of this
-- migration (fillSecretHosts) sets it for existing keys to the host their
-- base URL names now: the secret was entered for the current api_base.
ALTER TABLE provider_keys ADD COLUMN secret_host TEXT NOT NULL DEFAULT '';
