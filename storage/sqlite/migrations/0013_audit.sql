-- 0013_audit: the admin audit log, one row per admin write (whatever its
-- outcome) and per failed admin authentication.
--
-- It is not configuration: writes to it do not bump meta.revision. Rows
-- are appended by aisix serve and pruned by age. ts is the time in Unix
-- microseconds (UTC). The admin key is kept by id, never the key; changes
-- is the JSON field summary, secrets only ever shown as changed.
CREATE TABLE audit_records (
	id           INTEGER PRIMARY KEY,
	ts           INTEGER NOT NULL,
	admin_key_id TEXT NOT NULL DEFAULT '',
	source       TEXT NOT NULL DEFAULT '',
	method       TEXT NOT NULL,
	path         TEXT NOT NULL,
	kind         TEXT NOT NULL DEFAULT '',
	resource_id  TEXT NOT NULL DEFAULT '',
	name         TEXT NOT NULL DEFAULT '',
	changes      TEXT NOT NULL DEFAULT '[]',
	status       INTEGER NOT NULL,
	error        TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX audit_records_ts ON audit_records (ts);
