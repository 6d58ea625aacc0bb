-- 0004_provider_key_forward_headers: caller request headers a provider key
-- lets through to its upstream beyond the adapter's own allowlist.
--
-- A JSON array of header names in canonical form (X-Trace-Id), validated
-- by the storage package; existing keys forward none.
ALTER TABLE provider_keys ADD COLUMN forward_headers TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(forward_headers));
