-- 0012_admin_keys: scoped admin keys. Only the SHA-256 of a key is kept;
-- scope is what it may do (status < read < write < admin). Admin keys are
-- not part of the routing configuration: writing them does not bump the
-- store revision.
CREATE TABLE admin_keys (
	id TEXT PRIMARY KEY,
	display_name TEXT NOT NULL UNIQUE,
	scope TEXT NOT NULL CHECK (scope IN ('status', 'read', 'write', 'admin')),
	key_hash TEXT NOT NULL UNIQUE,
	created_at TEXT NOT NULL,
	rotated_at TEXT NOT NULL DEFAULT ''
) STRICT;
