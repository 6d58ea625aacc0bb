-- 0002_api_key_models: caller keys allow models by id, not by name.
--
-- api_keys.allowed_models held display names as JSON, so renaming a model
-- cut its callers off and a new model under a deleted one's name inherited
-- its callers. The list now lives in api_key_models, one row per entry in
-- the order given: model_id names the model, NULL stands for "*" (every
-- model). Deleting a model deletes its rows (ON DELETE CASCADE), in the
-- same transaction; names are rendered by a join on read.
CREATE TABLE api_key_models (
	api_key_id TEXT NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
	position   INTEGER NOT NULL,
	model_id   TEXT REFERENCES models (id) ON DELETE CASCADE,
	PRIMARY KEY (api_key_id, position)
) STRICT, WITHOUT ROWID;

CREATE INDEX api_key_models_model_id ON api_key_models (model_id);

-- Existing names become ids. A name that names no model (the old schema
-- accepted any name, including one of a model created later or deleted
-- since) cannot be stored as an id and is dropped: it granted nothing
-- until such a model existed, and granting a model created later is the
-- very thing this migration stops. Positions keep the original order, gaps
-- and all.
INSERT INTO api_key_models (api_key_id, position, model_id)
SELECT k.id, j.key, CASE WHEN j.value = '*' THEN NULL ELSE m.id END
FROM api_keys k
JOIN json_each(k.allowed_models) j
LEFT JOIN models m ON m.display_name = j.value
WHERE j.value = '*' OR m.id IS NOT NULL;

ALTER TABLE api_keys DROP COLUMN allowed_models;
