-- 0005_provider_key_api_version: the Azure OpenAI api-version of a
-- provider key ("2024-10-21", "2025-01-01-preview" or "v1").
--
-- Validated by the storage package; only azure-openai keys set it, and
-- empty means the default (storage.DefaultAzureAPIVersion).
ALTER TABLE provider_keys ADD COLUMN api_version TEXT NOT NULL DEFAULT '';
