package admin

import (
	"strings"
	"testing"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/storagetest"
)

// applyBody is a configuration of one provider key, a direct model on it
// (provider_key_id by name) and a caller key, sent with the given options.
func applyBody(secret, options string) string {
	return `{"desired": {
		"provider_keys": [{"display_name": "openai", "provider": "openai", "secret": "` + secret + `"}],
		"models": [{"display_name": "gpt-4o", "provider": "openai", "model_name": "gpt-4o", "provider_key_id": "openai"}],
		"api_keys": [{"display_name": "ci", "key_hash": "` + hashKey("ci") + `", "allowed_models": ["gpt-4o"], "rate_limit": {"rpm": 60}}]
	}` + options + `}`
}

func TestApplyRoute(t *testing.T) {
	e := newEnv(t)
	const secret = "sk-apply-route-0123456789abcdef"

	// A dry run plans and writes nothing: no OnChange.
	var res storage.ApplyResult
	e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody(secret, `, "dry_run": true`)).decode(t, &res)
	if res.Applied || len(res.Changes) != 3 || res.Changes[0].Action != storage.ActionCreate {
		t.Errorf("dry run = %+v", res)
	}
	if n := e.changes.Load(); n != 0 {
		t.Errorf("a dry run called OnChange %d times", n)
	}

	// The apply writes everything, and the proxy reloads once.
	r := e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody(secret, ""))
	r.decode(t, &res)
	if !res.Applied || res.Revision == 0 {
		t.Errorf("apply = %+v", res)
	}
	if n := e.changes.Load(); n != 1 {
		t.Errorf("one apply called OnChange %d times, want 1", n)
	}
	ms, err := e.store.ListModels(t.Context())
	if err != nil || len(ms) != 1 {
		t.Fatalf("models after apply: %v %+v", err, ms)
	}

	// Again: nothing changes, nothing reloads.
	e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody(secret, "")).decode(t, &res)
	if res.Applied || res.Changed() {
		t.Errorf("second apply = %+v", res)
	}
	if n := e.changes.Load(); n != 1 {
		t.Errorf("a no-op apply called OnChange (%d calls)", n)
	}

	// A rotated secret shows as changed, never as itself.
	r = e.mustAdmin(t, 200, "POST", "/admin/v1/apply", applyBody("sk-apply-rotated-0123456789", ""))
	if body := string(r.body); !strings.Contains(body, `{"field":"secret","old":"(secret)","new":"(secret)","secret":true}`) {
		t.Errorf("rotation answered %s", body)
	}

	logs := e.logs.String()
	for _, s := range []string{secret, "sk-apply-rotated-0123456789"} {
		if strings.Contains(logs, s) || strings.Contains(e.seenText(), s) {
			t.Errorf("secret %q logged or answered", s)
		}
	}
	if n := strings.Count(logs, `"path":"/admin/v1/apply"`); n != 4 {
		t.Errorf("%d log lines for 4 applies:\n%s", n, logs)
	}
}

func TestApplyRouteErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, body string
		status     int
		contains   []string
	}{
		{"every error at once", `{"desired": {
			"models": [
				{"display_name": "a", "routing": {"targets": [{"model": "gpt-4o-tertiary"}]}},
				{"display_name": "b", "provider": "openai", "model_name": "m", "provider_key_id": "nope"}
			]}}`, 400, []string{
			`models[a].routing.targets[0].model: \"gpt-4o-tertiary\" is not a model in the file or the store\nmodels[b].provider_key_id: \"nope\" is not a provider key in the file or the store"`,
			`"errors":[{"error_msg":"models[a].routing.targets[0].model: \"gpt-4o-tertiary\" is not a model in the file or the store","field":"models[a].routing.targets[0].model","kind":"invalid"}`,
		}},
		{"unknown field", `{"desired": {"models": [{"display_name": "a", "modle_name": "x"}]}}`, 400, []string{`unknown field \"modle_name\"`}},
		{"no desired", `{"prune": true}`, 400, []string{`desired: is required`}},
		{"unknown option", `{"desired": {}, "purge": true}`, 400, []string{`unknown field \"purge\"`}},
		{"masked secret", `{"desired": {"provider_keys": [{"display_name": "k", "provider": "openai", "secret": "sk-…abcd"}]}}`, 400,
			[]string{`provider_keys[k].secret: is a masked value`}},
		{"duplicate name", `{"desired": {"provider_keys": [
			{"display_name": "k", "provider": "openai", "secret": "sk-one-0123456789abcdef"},
			{"display_name": "k", "provider": "openai", "secret": "sk-two-0123456789abcdef"}]}}`, 409,
			[]string{`provider_keys[k]: the name \"k\" is listed 2 times`}},
		{"revision mismatch", `{"desired": {}, "if_revision": 99}`, 412, []string{"not 99"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.admin(t, "POST", "/admin/v1/apply", tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			for _, c := range tc.contains {
				if !strings.Contains(string(r.body), c) {
					t.Errorf("body %s\ndoes not contain %s", r.body, c)
				}
			}
		})
	}
	for _, s := range []string{"sk-one-0123456789abcdef", "sk-two-0123456789abcdef"} {
		if strings.Contains(e.seenText(), s) || strings.Contains(e.logs.String(), s) {
			t.Errorf("secret %q answered or logged", s)
		}
	}
	if n := e.changes.Load(); n != 0 {
		t.Errorf("failed applies called OnChange %d times", n)
	}
}

// BenchmarkClientApply measures the remote apply of 1,000 models and
// 10,000 caller keys: one request, one transaction.
func BenchmarkClientApply(b *testing.B) {
	d := storagetest.Large(20, 1000, 10000)
	for b.Loop() {
		b.StopTimer()
		c, _ := newClient(b)
		b.StartTimer()
		res, err := c.Apply(b.Context(), d, storage.ApplyOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if !res.Applied || len(res.Changes) != 11020 {
			b.Fatalf("applied %v, %d changes", res.Applied, len(res.Changes))
		}
	}
}
