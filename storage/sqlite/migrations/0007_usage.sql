-- 0007_usage: the usage ledger, one row per upstream attempt (the answer
-- of a request and every failed attempt before it).
--
-- It is not configuration: writes to it do not bump meta.revision. Rows
-- are appended in batches by aisix serve and pruned by age. ts is the
-- attempt's start in Unix milliseconds (UTC), an integer so that ranges
-- and day/hour buckets are arithmetic on the index. The caller key is
-- kept by id (and its name at the time), never by the key or its hash.
-- cost_usd is NULL when the target had no price or the upstream reported
-- no tokens: no cost is ever guessed.
CREATE TABLE usage_records (
	id               INTEGER PRIMARY KEY,
	ts               INTEGER NOT NULL,
	call_id          TEXT NOT NULL,
	attempt          INTEGER NOT NULL,
	key_id           TEXT NOT NULL,
	key_name         TEXT NOT NULL DEFAULT '',
	endpoint         TEXT NOT NULL,
	alias            TEXT NOT NULL,
	target           TEXT NOT NULL,
	provider         TEXT NOT NULL DEFAULT '',
	stream           INTEGER NOT NULL DEFAULT 0 CHECK (stream IN (0, 1)),
	status           INTEGER NOT NULL,
	outcome          TEXT NOT NULL,
	status_reason    TEXT NOT NULL DEFAULT '',
	latency_us       INTEGER NOT NULL,
	ttft_us          INTEGER NOT NULL DEFAULT 0,
	input_tokens     INTEGER NOT NULL DEFAULT 0,
	output_tokens    INTEGER NOT NULL DEFAULT 0,
	cached_tokens    INTEGER NOT NULL DEFAULT 0,
	reasoning_tokens INTEGER NOT NULL DEFAULT 0,
	cost_usd         REAL
) STRICT;

CREATE INDEX usage_records_ts ON usage_records (ts);
