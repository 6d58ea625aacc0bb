package e2e

// End-to-end tests of `aisix provider-key test` and `aisix doctor` against
// the real binary, in local mode (the CLI sends the test request itself,
// with the secret from the SQLite file) and in remote mode (the running
// server sends it), with fake OpenAI upstreams: a good key, a refused host,
// a 401 and a 404.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	doctorGoodSecret = "sk-e2e-doctor-good-0000000001"
	// doctorWrongSecret does not look like an OpenAI key, so the generic
	// redaction does not catch it when the upstream quotes it back.
	doctorWrongSecret = "mock-e2e-doctor-wrong-000002"
)

// cliRun is one run of the aisix CLI.
type cliRun struct {
	code           int
	stdout, stderr string
}

// runCLI runs aisix with env and args, bounded, and returns what it did.
func runCLI(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "aisix"), args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("aisix %s did not finish within 60s", strings.Join(args, " "))
	}
	r := cliRun{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("aisix %s: %v", strings.Join(args, " "), err)
	}
	for _, s := range []string{doctorGoodSecret, doctorWrongSecret, adminKey} {
		if strings.Contains(r.stdout+r.stderr, s) {
			t.Errorf("aisix %s printed a key:\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.stdout, r.stderr)
		}
	}
	return r
}

// keyTestResult is `provider-key test -o json`.
type keyTestResult struct {
	Status    int    `json:"status"`
	OK        bool   `json:"ok"`
	LatencyMs int64  `json:"latency_ms"`
	Error     string `json:"error"`
	Hint      string `json:"hint"`
	Model     string `json:"model"`
	URLHost   string `json:"url_host"`
}

// doctorCheck is one element of `doctor -o json`.
type doctorCheck struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// strictDecode decodes data into v, refusing fields v does not have.
func strictDecode(t *testing.T, data string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %q: %v", data, err)
	}
}

// openAIKeyCheck answers as OpenAI does: 401 invalid_api_key quoting the
// key for any key but doctorGoodSecret, 404 model_not_found for any model
// but gpt-4o-mini, a chat.completion otherwise.
func openAIKeyCheck(w http.ResponseWriter, c *upstreamCall) {
	var req struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(c.body, &req)
	switch key := strings.TrimPrefix(c.header.Get("Authorization"), "Bearer "); {
	case key != doctorGoodSecret:
		writeOpenAIError(w, http.StatusUnauthorized, "Incorrect API key provided: "+key+". You can find your API key at https://platform.openai.com/account/api-keys.", "invalid_request_error", nil, "invalid_api_key")
	case req.Model != "gpt-4o-mini":
		writeOpenAIError(w, http.StatusNotFound, "The model `"+req.Model+"` does not exist or you do not have access to it.", "invalid_request_error", nil, "model_not_found")
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(completion("P"))
	}
}

func TestDoctorAndProviderKeyTest(t *testing.T) {
	t.Parallel()
	g := startGateway(t, serveOptions{})
	up := newUpstream(t, "openai", "", openAIKeyCheck)
	refused, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct{ name, secret, base, model string }{
		{"good", doctorGoodSecret, up.base, "gpt-4o-mini"},
		{"wrong", doctorWrongSecret, up.base, "gpt-4o-mini"},
		{"refused", doctorGoodSecret, "http://" + refused + "/v1", "gpt-4o-mini"},
		{"nomodel", doctorGoodSecret, up.base, "gpt-nope"},
	} {
		pk := g.create(t, "provider_keys", map[string]any{"display_name": k.name, "provider": "openai", "secret": k.secret, "api_base": k.base})
		g.create(t, "models", map[string]any{"display_name": k.name + "-direct", "provider": "openai", "model_name": k.model, "provider_key_id": pk})
	}
	g.createCallerKey(t, callerKey, "*")
	upHost := strings.TrimPrefix(up.srv.URL, "http://")

	modes := []struct {
		name string
		env  []string
	}{
		{"local", g.env},
		{"remote", append(append([]string(nil), g.env...), "AISIX_SERVER="+g.admin)},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			env := mode.env
			keyCases := []struct {
				key      string
				want     keyTestResult
				wantHint string
			}{
				{"good", keyTestResult{Status: 200, OK: true, Model: "gpt-4o-mini", URLHost: upHost}, ""},
				{"wrong", keyTestResult{Status: 401, Model: "gpt-4o-mini", URLHost: upHost,
					Error: "Incorrect API key provided: [key]. You can find your API key at [url]. (invalid_api_key)"},
					"credentials: the upstream rejects the secret; enter it again: aisix provider-key update wrong --secret-stdin"},
				{"refused", keyTestResult{Status: 0, Model: "gpt-4o-mini", URLHost: refused, Error: "connection refused"},
					"wrong api_base: nothing listens at " + refused + " (connection refused)"},
				{"nomodel", keyTestResult{Status: 404, Model: "gpt-nope", URLHost: upHost,
					Error: "The model `gpt-nope` does not exist or you do not have access to it. (model_not_found)"},
					`model name: the upstream has no model "gpt-nope" for this key`},
			}
			for _, kc := range keyCases {
				t.Run("provider-key test "+kc.key, func(t *testing.T) {
					wantCode := 1
					if kc.want.OK {
						wantCode = 0
					}
					r := runCLI(t, env, "provider-key", "test", kc.key, "-o", "json")
					if r.code != wantCode || r.stderr != "" {
						t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", r.code, wantCode, r.stdout, r.stderr)
					}
					var got keyTestResult
					strictDecode(t, r.stdout, &got)
					for _, field := range []string{`"status"`, `"ok"`, `"latency_ms"`, `"error"`, `"hint"`, `"model"`, `"url_host"`} {
						if !strings.Contains(r.stdout, field) {
							t.Errorf("-o json lacks %s: %s", field, r.stdout)
						}
					}
					hint := got.Hint
					got.Hint, got.LatencyMs = "", 0
					if got != kc.want || !strings.HasPrefix(hint, kc.wantHint) || (hint == "") != (kc.wantHint == "") {
						t.Errorf("result %+v hint %q\nwant   %+v hint %q…", got, hint, kc.want, kc.wantHint)
					}

					// The same for people: status, latency, error, hint.
					r = runCLI(t, env, "provider-key", "test", kc.key)
					if r.code != wantCode || !strings.Contains(r.stdout, "status\t") || !strings.Contains(r.stdout, "latency\t") ||
						!strings.Contains(r.stdout, kc.want.Error) || !strings.Contains(r.stdout, kc.wantHint) {
						t.Errorf("exit %d\nstdout:\n%s\nstderr: %s", r.code, r.stdout, r.stderr)
					}
				})
			}

			t.Run("doctor", func(t *testing.T) {
				r := runCLI(t, env, "doctor", "-o", "json")
				if r.code != 1 || r.stderr != "" {
					t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
				}
				var list []doctorCheck
				strictDecode(t, r.stdout, &list)
				got := map[string]doctorCheck{}
				for _, c := range list {
					if c.Check == "" || (c.Status != "ok" && c.Status != "warn" && c.Status != "fail") {
						t.Errorf("check %+v", c)
					}
					got[c.Check] = c
				}
				expect := map[string][2]string{
					"config.db":            {"ok", g.db + " (env AISIX_DB"},
					"config.admin_key":     {"ok", "set (env AISIX_ADMIN_KEY)"},
					"provider_key:good":    {"ok", "200 OK from " + upHost},
					"provider_key:wrong":   {"fail", "401 Unauthorized from " + upHost},
					"provider_key:refused": {"fail", "hint: wrong api_base: nothing listens at " + refused},
					"provider_key:nomodel": {"fail", `hint: model name: the upstream has no model "gpt-nope"`},
					"models":               {"ok", "4, each callable"},
					"apikeys":              {"ok", "1 of 1 active"},
				}
				if mode.name == "local" {
					expect["store.schema"] = [2]string{"ok", "schema version"}
					expect["store.file_mode"] = [2]string{"ok", "0600"}
				} else {
					expect["config.server"] = [2]string{"ok", g.admin + " (env AISIX_SERVER): remote mode"}
					expect["server.info"] = [2]string{"ok", "aisix 0.1.0 at " + g.admin + ", up "}
					expect["server.revision"] = [2]string{"ok", "routing serves the store's revision"}
				}
				for name, w := range expect {
					if c := got[name]; c.Status != w[0] || !strings.Contains(c.Detail, w[1]) {
						t.Errorf("%s: %+v, want %s with %q", name, c, w[0], w[1])
					}
				}

				// The table, and --no-network: nothing fails without the tests.
				r = runCLI(t, env, "doctor")
				if r.code != 1 || !strings.Contains(r.stdout, "provider_key:wrong\tfail\t401 Unauthorized") {
					t.Errorf("doctor: exit %d\n%s", r.code, r.stdout)
				}
				r = runCLI(t, env, "doctor", "--no-network")
				if r.code != 0 || strings.Contains(r.stdout, "\tfail\t") || !strings.Contains(r.stdout, "provider_key:wrong\tok\tnot tested (--no-network)") {
					t.Errorf("doctor --no-network: exit %d\n%s%s", r.code, r.stdout, r.stderr)
				}
			})
		})
	}

	// Remote tests were sent by the server, and it logged them (without
	// the secret); local ones were not.
	lines := 0
	for _, l := range g.log.lines() {
		if m := jsonLine(l); m != nil && m["msg"] == "provider key test" {
			lines++
		}
	}
	if want := 4*2 + 4*2; lines != want {
		t.Errorf("serve logged %d provider key tests, want %d (remote mode only)", lines, want)
	}
	if strings.Contains(g.log.String(), doctorWrongSecret) || strings.Contains(g.log.String(), doctorGoodSecret) {
		t.Error("serve's log holds a provider secret")
	}
}

func TestDoctorSecretNeedsReentry(t *testing.T) {
	t.Parallel()
	g := startGateway(t, serveOptions{})
	up := newUpstream(t, "openai", "", openAIKeyCheck)
	pk := g.create(t, "provider_keys", map[string]any{"display_name": "moved", "provider": "openai", "secret": doctorGoodSecret, "api_base": up.base})
	g.create(t, "models", map[string]any{"display_name": "moved-direct", "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pk})
	g.createCallerKey(t, callerKey, "*")
	// api_base moves to another name for the same upstream without the
	// secret: requests go there without credentials.
	g.mustAdmin(t, http.MethodPut, "/admin/v1/provider_keys/"+pk, map[string]any{"display_name": "moved", "provider": "openai",
		"api_base": strings.Replace(up.base, "127.0.0.1", "localhost", 1)}, http.StatusOK)

	for _, env := range [][]string{g.env, append(append([]string(nil), g.env...), "AISIX_SERVER="+g.admin)} {
		r := runCLI(t, env, "provider-key", "test", "moved", "-o", "json")
		var got keyTestResult
		strictDecode(t, r.stdout, &got)
		if r.code != 1 || got.Status != 401 || !strings.HasPrefix(got.Hint, "secret_needs_reentry: the secret was entered for 127.0.0.1, not localhost, so the request went without credentials") {
			t.Errorf("exit %d result %+v", r.code, got)
		}
		if c := up.next(t, 30*time.Second); c.header.Get("Authorization") != "" {
			t.Error("the test sent the secret to a host it is not bound to")
		}
		r = runCLI(t, env, "doctor", "--no-network")
		if r.code != 1 || !strings.Contains(r.stdout, "provider_key:moved\tfail\tsecret_needs_reentry:") {
			t.Errorf("doctor --no-network: exit %d\n%s", r.code, r.stdout)
		}
	}
}
