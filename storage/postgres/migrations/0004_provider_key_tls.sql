-- 0004_provider_key_tls: upstream TLS of a provider key, as the SQLite
-- store's migration 0011: a CA bundle that verifies the upstream instead
-- of the system roots, and a client certificate and key (set together).
-- Paths of PEM files on the gateway's machine; empty is none.
ALTER TABLE provider_keys
	ADD COLUMN tls_ca_file TEXT NOT NULL DEFAULT '',
	ADD COLUMN tls_cert_file TEXT NOT NULL DEFAULT '',
	ADD COLUMN tls_key_file TEXT NOT NULL DEFAULT '';
