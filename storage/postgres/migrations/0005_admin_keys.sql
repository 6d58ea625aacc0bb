-- 0005_admin_keys: scoped admin keys, as the SQLite store's migration
-- 0012. Only the SHA-256 of a key is kept; writing them does not bump the
-- store revision (they are not routing configuration).
CREATE TABLE admin_keys (
	id TEXT PRIMARY KEY,
	display_name TEXT NOT NULL UNIQUE,
	scope TEXT NOT NULL CHECK (scope IN ('status', 'read', 'write', 'admin')),
	key_hash TEXT NOT NULL UNIQUE,
	created_at TIMESTAMPTZ NOT NULL,
	rotated_at TIMESTAMPTZ
);
