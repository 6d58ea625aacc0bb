-- 0011_provider_key_tls: upstream TLS of a provider key, for private
-- gateways to self-hosted models: a CA bundle that verifies the upstream
-- instead of the system roots, and a client certificate and key (set
-- together) presented to it. Paths of PEM files on the gateway's machine,
-- read when the routing snapshot is built; empty is none.
ALTER TABLE provider_keys ADD COLUMN tls_ca_file TEXT NOT NULL DEFAULT '';
ALTER TABLE provider_keys ADD COLUMN tls_cert_file TEXT NOT NULL DEFAULT '';
ALTER TABLE provider_keys ADD COLUMN tls_key_file TEXT NOT NULL DEFAULT '';
