-- 0001_init: the configuration schema of the aisix store on PostgreSQL,
-- the same tables as the SQLite store's migrations 0001 to 0008.
--
-- Every config write locks meta's revision row first (so writes from every
-- replica serialise), bumps it once and stamps each row it writes with the
-- new value, so a row's revision is also the store revision that last
-- wrote it; the transaction also runs pg_notify('aisix_config', revision).
--
-- Names sort and compare byte-wise (COLLATE "C"), as SQLite's do,
-- whatever the database's locale.

CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value BIGINT NOT NULL
);

INSERT INTO meta (key, value) VALUES ('revision', 0);

CREATE TABLE provider_keys (
	id              TEXT PRIMARY KEY,
	display_name    TEXT COLLATE "C" NOT NULL UNIQUE,
	provider        TEXT NOT NULL DEFAULT '',
	adapter         TEXT NOT NULL DEFAULT '',
	secret          TEXT NOT NULL,
	api_base        TEXT NOT NULL DEFAULT '',
	-- The host (lower case, no port) the secret was entered for.
	secret_host     TEXT NOT NULL DEFAULT '',
	-- Header names (canonical form) forwarded beyond the adapter's own.
	forward_headers JSONB NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(forward_headers) = 'array'),
	api_version     TEXT NOT NULL DEFAULT '',
	revision        BIGINT NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL,
	updated_at      TIMESTAMPTZ NOT NULL
);

-- spec holds every model field that no constraint needs (storage.EncodeModelSpec).
CREATE TABLE models (
	id              TEXT PRIMARY KEY,
	display_name    TEXT COLLATE "C" NOT NULL UNIQUE,
	kind            TEXT NOT NULL CHECK (kind IN ('direct', 'routing')),
	provider_key_id TEXT REFERENCES provider_keys (id) ON DELETE RESTRICT,
	spec            JSONB NOT NULL DEFAULT '{}',
	revision        BIGINT NOT NULL,
	created_at      TIMESTAMPTZ NOT NULL,
	updated_at      TIMESTAMPTZ NOT NULL,
	CHECK ((kind = 'direct') = (provider_key_id IS NOT NULL))
);

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
);

CREATE INDEX model_targets_target_model_id ON model_targets (target_model_id);

-- display_name is optional: NULL when unset, so any number of unnamed keys
-- can coexist under the UNIQUE constraint. rate_limit and budget are
-- JSON, NULL when unset (storage.EncodeKeyLimits).
CREATE TABLE api_keys (
	id           TEXT PRIMARY KEY,
	display_name TEXT COLLATE "C" UNIQUE,
	key_hash     TEXT NOT NULL UNIQUE,
	expires_at   TIMESTAMPTZ,
	disabled     BOOLEAN NOT NULL DEFAULT false,
	rate_limit   JSONB,
	budget       JSONB,
	revision     BIGINT NOT NULL,
	created_at   TIMESTAMPTZ NOT NULL,
	updated_at   TIMESTAMPTZ NOT NULL
);

CREATE INDEX api_keys_created_at_id ON api_keys (created_at, id);

-- A caller key's allowed models, one row per entry in the order given:
-- model_id names the model, NULL stands for "*" (every model). Deleting a
-- model deletes its rows, so a new model under its name is not granted.
CREATE TABLE api_key_models (
	api_key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
	position   INTEGER NOT NULL,
	model_id   TEXT REFERENCES models (id) ON DELETE CASCADE,
	PRIMARY KEY (api_key_id, position)
);

CREATE INDEX api_key_models_model_id ON api_key_models (model_id);
