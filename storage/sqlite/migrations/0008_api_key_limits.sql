-- 0008_api_key_limits: the rate limit and budget of a caller key.
--
-- Both are JSON, NULL when unset: rate_limit {rpm, rpd, tpm, tpd,
-- concurrency} (an omitted or 0 field is no limit on it), budget
-- {amount_usd, period}. Validated by the storage package; a value that
-- does not decode leaves the key out of the proxy's load, reported as
-- unreadable, like a model spec that does not decode. Models keep theirs
-- in models.spec.
ALTER TABLE api_keys ADD COLUMN rate_limit TEXT CHECK (rate_limit IS NULL OR json_valid(rate_limit));
ALTER TABLE api_keys ADD COLUMN budget TEXT CHECK (budget IS NULL OR json_valid(budget));
