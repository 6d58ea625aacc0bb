package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"
)

// v1Rows is data as schema version 1 stored it: caller keys allow models
// by name, including names no model has.
const v1Rows = `
INSERT INTO provider_keys (id, display_name, provider, adapter, secret, api_base, revision, created_at, updated_at) VALUES
	('pk-1', 'openai-primary', 'openai', '', 'sk-primary-0123456789', '', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('pk-2', 'local', 'my-gateway', 'openai', 'sk-local-0123456789', 'http://LocalHost:9000/v1', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('pk-3', 'claude', 'anthropic', '', 'sk-ant-0123456789', '', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z');
INSERT INTO models (id, display_name, kind, provider_key_id, spec, revision, created_at, updated_at) VALUES
	('m-chat', 'chat-prod', 'direct', 'pk-1', '{"provider":"openai","model_name":"gpt-4o"}', 2, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('m-mini', 'gpt-4o-mini', 'direct', 'pk-1', '{"provider":"openai","model_name":"gpt-4o-mini"}', 3, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('m-star', '*', 'direct', 'pk-1', '{"provider":"openai","model_name":"odd"}', 4, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z');
INSERT INTO api_keys (id, display_name, key_hash, allowed_models, expires_at, disabled, revision, created_at, updated_at) VALUES
	('k-1', 'app', '1111111111111111111111111111111111111111111111111111111111111111', '["gpt-4o-mini","gone","*","chat-prod"]', NULL, 0, 5, '2025-01-01T00:00:01.000000000Z', '2025-01-01T00:00:01.000000000Z'),
	('k-2', 'none', '2222222222222222222222222222222222222222222222222222222222222222', '[]', NULL, 0, 6, '2025-01-01T00:00:02.000000000Z', '2025-01-01T00:00:02.000000000Z'),
	('k-3', 'all', '3333333333333333333333333333333333333333333333333333333333333333', '["*"]', NULL, 1, 7, '2025-01-01T00:00:03.000000000Z', '2025-01-01T00:00:03.000000000Z');
UPDATE meta SET value = 7 WHERE key = 'revision';
`

// openV1 returns the path of a database at schema version 1 holding v1Rows.
func openV1(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "aisix.db")
	if err := MigrateTo(t.Context(), path, 1); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), v1Rows); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestUpgradeFromVersion1 migrates a version 1 file with data and checks
// what the rows became.
func TestUpgradeFromVersion1(t *testing.T) {
	s, err := Open(context.Background(), openV1(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()

	t.Run("secrets are bound to the current host", func(t *testing.T) {
		want := map[string]string{"pk-1": "api.openai.com", "pk-2": "localhost", "pk-3": "api.anthropic.com"}
		pks, err := s.ListProviderKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(pks) != len(want) {
			t.Fatalf("%d provider keys after the upgrade, want %d", len(pks), len(want))
		}
		for _, pk := range pks {
			if pk.SecretHost != want[pk.ID] || !pk.SecretBound() || pk.Secret == "" {
				t.Errorf("%s: secret_host %q bound %t, want %q and bound", pk.ID, pk.SecretHost, pk.SecretBound(), want[pk.ID])
			}
		}
	})

	t.Run("allowed models become ids", func(t *testing.T) {
		want := map[string]struct{ names, ids []string }{
			// "gone" names no model: dropped. "*" stays "*" even though a
			// model is called "*".
			"k-1": {[]string{"gpt-4o-mini", "*", "chat-prod"}, []string{"m-mini", "*", "m-chat"}},
			"k-2": {[]string{}, []string{}},
			"k-3": {[]string{"*"}, []string{"*"}},
		}
		ks, err := s.ListAPIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ks) != len(want) {
			t.Fatalf("%d API keys after the upgrade, want %d", len(ks), len(want))
		}
		for _, k := range ks {
			w := want[k.ID]
			if !slices.Equal(k.AllowedModels, w.names) || !slices.Equal(k.AllowedModelIDs, w.ids) {
				t.Errorf("%s: allowed %q ids %q, want %q %q", k.ID, k.AllowedModels, k.AllowedModelIDs, w.names, w.ids)
			}
			if k.Revision < 5 || k.CreatedAt.IsZero() {
				t.Errorf("%s: meta %+v lost", k.ID, k.Meta)
			}
		}
	})
}

// TestUpgradeAnthropicDefaultHost: version 5 bound the secret of an
// anthropic key without api_base to no host; version 6 binds it to the
// default host, and leaves every other key alone.
func TestUpgradeAnthropicDefaultHost(t *testing.T) {
	path := filepath.Join(t.TempDir(), "aisix.db")
	if err := MigrateTo(t.Context(), path, 5); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = db.Exec(`INSERT INTO provider_keys (id, display_name, provider, adapter, secret, api_base, secret_host, revision, created_at, updated_at) VALUES
	('a-1', 'claude', 'anthropic', '', 'sk-ant-0123456789', '', '', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('a-2', 'claude2', '', 'anthropic', 'sk-ant-0123456789', '  ', '', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('a-3', 'minimax', 'minimax', 'anthropic', 'mm-0123456789', '', '', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('a-4', 'proxied', 'anthropic', 'anthropic', 'sk-ant-0123456789', 'https://gw.example.com', 'gw.example.com', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z'),
	('o-1', 'gpt', 'openai', 'openai', 'sk-0123456789', '', '', 1, '2025-01-01T00:00:00.000000000Z', '2025-01-01T00:00:00.000000000Z')`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := map[string]string{"a-1": "api.anthropic.com", "a-2": "api.anthropic.com", "a-3": "", "a-4": "gw.example.com", "o-1": ""}
	pks, err := s.ListProviderKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range pks {
		if pk.SecretHost != want[pk.ID] {
			t.Errorf("%s: secret_host %q, want %q", pk.ID, pk.SecretHost, want[pk.ID])
		}
	}
}
