-- 0009_usage_dims: the usage ledger keeps what repeats across records
-- once, in usage_dims, and each record names its row by dim_id.
--
-- A record's dimensions (caller key and its name, endpoint, alias,
-- target, provider, stream, outcome, status reason) take a handful of
-- values in a busy gateway; writing them per record was most of the
-- ledger's cost. A usage_dims row is never changed or deleted, so a
-- process may keep the ids it has seen (pruning records leaves their
-- dimensions; they are few). dim_id has no foreign key constraint: it
-- would cost a lookup per record, and only the store writes it.
--
-- Existing records keep their ids, times and values.
CREATE TABLE usage_dims (
	id            INTEGER PRIMARY KEY,
	key_id        TEXT NOT NULL,
	key_name      TEXT NOT NULL DEFAULT '',
	endpoint      TEXT NOT NULL,
	alias         TEXT NOT NULL,
	target        TEXT NOT NULL,
	provider      TEXT NOT NULL DEFAULT '',
	stream        INTEGER NOT NULL DEFAULT 0 CHECK (stream IN (0, 1)),
	outcome       TEXT NOT NULL,
	status_reason TEXT NOT NULL DEFAULT '',
	UNIQUE (key_id, key_name, endpoint, alias, target, provider, stream, outcome, status_reason)
) STRICT;

INSERT INTO usage_dims (key_id, key_name, endpoint, alias, target, provider, stream, outcome, status_reason)
	SELECT key_id, key_name, endpoint, alias, target, provider, stream, outcome, status_reason
	FROM usage_records
	GROUP BY key_id, key_name, endpoint, alias, target, provider, stream, outcome, status_reason
	ORDER BY min(id);

CREATE TABLE usage_records_v9 (
	id               INTEGER PRIMARY KEY,
	ts               INTEGER NOT NULL,
	call_id          TEXT NOT NULL,
	attempt          INTEGER NOT NULL,
	dim_id           INTEGER NOT NULL,
	status           INTEGER NOT NULL,
	latency_us       INTEGER NOT NULL,
	ttft_us          INTEGER NOT NULL DEFAULT 0,
	input_tokens     INTEGER NOT NULL DEFAULT 0,
	output_tokens    INTEGER NOT NULL DEFAULT 0,
	cached_tokens    INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens INTEGER NOT NULL DEFAULT 0,
	cost_usd         REAL
) STRICT;

INSERT INTO usage_records_v9 (id, ts, call_id, attempt, dim_id, status, latency_us, ttft_us,
		input_tokens, output_tokens, cached_tokens, reasoning_tokens, cost_usd)
	SELECT r.id, r.ts, r.call_id, r.attempt, d.id, r.status, r.latency_us, r.ttft_us,
		r.input_tokens, r.output_tokens, r.cached_tokens, r.reasoning_tokens, r.cost_usd
	FROM usage_records r JOIN usage_dims d
		ON d.key_id = r.key_id AND d.key_name = r.key_name AND d.endpoint = r.endpoint AND d.alias = r.alias
		AND d.target = r.target AND d.provider = r.provider AND d.stream = r.stream AND d.outcome = r.outcome
		AND d.status_reason = r.status_reason;

DROP TABLE usage_records;
ALTER TABLE usage_records_v9 RENAME TO usage_records;
CREATE INDEX usage_records_ts ON usage_records (ts);
