-- 0001_init: the first schema of the aisix store.
--
-- Every write bumps meta.revision (one store-wide counter) in its own
-- transaction and stamps the written row with the new value, so a row's
-- revision is also the store revision that last wrote it, and a reader in any
-- process can notice a change by reading one row.
--
-- Times are TEXT in UTC with fixed-width nanoseconds
-- (2006-01-02T15:04:05.000000000Z), so they sort as text.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) STRICT;

INSERT INTO meta (key, value) VALUES ('revision', 0);

CREATE TABLE provider_keys (
	id           TEXT PRIMARY KEY,
	display_name TEXT NOT NULL UNIQUE,
	provider     TEXT NOT NULL DEFAULT '',
	adapter      TEXT NOT NULL DEFAULT '',
	secret       TEXT NOT NULL,
	api_base     TEXT NOT NULL DEFAULT '',
	revision     INTEGER NOT NULL,
	created_at   TEXT NOT NULL,
	updated_at   TEXT NOT NULL
) STRICT;

-- spec holds every model field that no constraint needs (provider,
-- model_name, timeouts, retries, cooldown, the routing block without its
-- targets) as JSON. Routing targets live in model_targets, by id.
CREATE TABLE models (
	id              TEXT PRIMARY KEY,
	display_name    TEXT NOT NULL UNIQUE,
	kind            TEXT NOT NULL CHECK (kind IN ('direct', 'routing')),
	provider_key_id TEXT REFERENCES provider_keys (id) ON DELETE RESTRICT,
	spec            TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(spec)),
	revision        INTEGER NOT NULL,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	CHECK ((kind = 'direct') = (provider_key_id IS NOT NULL))
) STRICT;

CREATE INDEX models_provider_key_id ON models (provider_key_id);

-- Targets are stored by id, so renaming a direct model keeps every routing
-- model that targets it correct; names are rendered by a join on read.
CREATE TABLE model_targets (
	routing_model_id TEXT NOT NULL REFERENCES models (id) ON DELETE CASCADE,
	target_model_id  TEXT NOT NULL REFERENCES models (id) ON DELETE RESTRICT,
	position         INTEGER NOT NULL,
	weight           INTEGER,
	PRIMARY KEY (routing_model_id, position),
	UNIQUE (routing_model_id, target_model_id)
) STRICT;

CREATE INDEX model_targets_target_model_id ON model_targets (target_model_id);

-- display_name is optional: NULL when unset, so any number of unnamed keys
-- can coexist under the UNIQUE constraint.
CREATE TABLE api_keys (
	id             TEXT PRIMARY KEY,
	display_name   TEXT UNIQUE,
	key_hash       TEXT NOT NULL UNIQUE,
	allowed_models TEXT NOT NULL CHECK (json_valid(allowed_models)),
	expires_at     TEXT,
	disabled       INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
	revision       INTEGER NOT NULL,
	created_at     TEXT NOT NULL,
	updated_at     TEXT NOT NULL
) STRICT;

CREATE INDEX api_keys_created_at_id ON api_keys (created_at, id);
