-- 0006_anthropic_default_secret_host: an anthropic provider key without
-- api_base sends its secret to the default base, https://api.anthropic.com.
--
-- Until this version the store knew only OpenAI's default base, so such a
-- key's secret was bound to no host (secret_host ''): spelling the
-- default out, or clearing it again, then looked like a move to another
-- host and unbound the secret. Those keys were entered for the default
-- host; bind them to it, as the store now does for new ones.
UPDATE provider_keys SET secret_host = 'api.anthropic.com'
 WHERE secret_host = ''
   AND trim(api_base) = ''
   AND (adapter = 'anthropic' OR (adapter = '' AND provider = 'anthropic'))
   AND provider IN ('', 'anthropic');
