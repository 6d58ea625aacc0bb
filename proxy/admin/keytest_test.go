package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

const testSecret = "sk-admin-keytest-secret-0123456789"

// cannedUpstream answers every request with a chat.completion, without a
// network: for tests that call the test endpoint on keys whose api_base
// is not a real upstream.
type cannedUpstream struct{}

func (cannedUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	body := `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"P"},"finish_reason":"length"}]}`
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
}

func withCannedUpstream(cfg *Config) {
	cfg.KeyCheck = keycheck.New(keycheck.Options{Transport: cannedUpstream{}})
}

// keyTestUpstream is a fake OpenAI upstream: 401 invalid_api_key, quoting
// the key it was sent, unless that is testSecret; then a chat.completion,
// or model_not_found for any model but gpt-4o-mini and gpt-x.
func keyTestUpstream(t *testing.T) (*httptest.Server, chan string) {
	t.Helper()
	auths := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		auth := r.Header.Get("Authorization")
		auths <- auth
		w.Header().Set("Content-Type", "application/json")
		switch {
		case auth != "Bearer "+testSecret:
			w.WriteHeader(401)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"message": "Incorrect API key provided: " + strings.TrimPrefix(auth, "Bearer ") + ". You can find your API key at https://platform.openai.com/account/api-keys.",
				"type":    "invalid_request_error", "param": nil, "code": "invalid_api_key"}})
		case body.Model != "gpt-4o-mini" && body.Model != "gpt-x":
			w.WriteHeader(404)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
				"message": "The model `" + body.Model + "` does not exist or you do not have access to it.",
				"type":    "invalid_request_error", "param": nil, "code": "model_not_found"}})
		default:
			_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"`+body.Model+`","choices":[{"index":0,"message":{"role":"assistant","content":"P"},"finish_reason":"length"}],"usage":{"prompt_tokens":8,"completion_tokens":1,"total_tokens":9}}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, auths
}

func TestProviderKeyTest(t *testing.T) {
	e := newEnv(t)
	up, auths := keyTestUpstream(t)
	host := strings.TrimPrefix(up.URL, "http://")
	good := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("good", testSecret, up.URL+"/v1")).id(t)
	e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("good-direct", good))
	wrong := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("wrong", testSecret+"-wrong", up.URL+"/v1")).id(t)
	e.mustAdmin(t, 201, "POST", "/admin/v1/models", directBody("wrong-direct", wrong))
	unused := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("unused", testSecret, up.URL+"/v1")).id(t)
	doc, _ := loadOpenAPI(t, e)
	changes := e.changes.Load()

	cases := []struct {
		name, id, body string
		want           keycheck.Result
		wantHint       string
		wantAuth       string
	}{
		{name: "no body: the first direct model", id: good,
			want: keycheck.Result{Status: 200, OK: true, Model: "gpt-4o-mini", URLHost: host}, wantAuth: "Bearer " + testSecret},
		{name: "model and timeout", id: good, body: `{"model":"gpt-x","timeout_ms":5000}`,
			want: keycheck.Result{Status: 200, OK: true, Model: "gpt-x", URLHost: host}, wantAuth: "Bearer " + testSecret},
		{name: "empty object", id: good, body: `{}`,
			want: keycheck.Result{Status: 200, OK: true, Model: "gpt-4o-mini", URLHost: host}, wantAuth: "Bearer " + testSecret},
		{name: "model_not_found", id: good, body: `{"model":"gpt-nope"}`,
			want: keycheck.Result{Status: 404, Model: "gpt-nope", URLHost: host,
				Error: "The model `gpt-nope` does not exist or you do not have access to it. (model_not_found)"},
			wantHint: "model name:", wantAuth: "Bearer " + testSecret},
		{name: "401 quoting the secret", id: wrong,
			want: keycheck.Result{Status: 401, Model: "gpt-4o-mini", URLHost: host,
				Error: "Incorrect API key provided: [key]. You can find your API key at [url]. (invalid_api_key)"},
			wantHint: "credentials: the upstream rejects the secret; enter it again: aisix provider-key update wrong --secret-stdin", wantAuth: "Bearer " + testSecret + "-wrong"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.mustAdmin(t, 200, "POST", "/admin/v1/provider_keys/"+tc.id+"/test", tc.body)
			var got keycheck.Result
			r.decode(t, &got)
			hint := got.Hint
			got.LatencyMs, got.Hint = 0, ""
			if got != tc.want || !strings.HasPrefix(hint, tc.wantHint) || (hint == "") != (tc.wantHint == "") {
				t.Errorf("result %+v hint %q\nwant   %+v hint %q…", got, hint, tc.want, tc.wantHint)
			}
			var v any
			r.decode(t, &v)
			for _, p := range schemaProblems(doc, map[string]any{"$ref": "#/components/schemas/ProviderKeyTestResult"}, v, "") {
				t.Error(p)
			}
			if a := <-auths; a != tc.wantAuth {
				t.Errorf("upstream got another Authorization than the key's secret")
			}
		})
	}

	t.Run("admin errors", func(t *testing.T) {
		for _, c := range []struct {
			name, path, body, header string
			status                   int
			msg, field               string
		}{
			{"unknown id", "/admin/v1/provider_keys/no-such-id/test", "", "", 404, "", ""},
			{"unknown field", "/admin/v1/provider_keys/" + good + "/test", `{"modle":"x"}`, "", 400, `unknown field "modle"`, "modle"},
			{"bad JSON", "/admin/v1/provider_keys/" + good + "/test", `{"model":`, "", 400, "invalid JSON", ""},
			{"negative timeout", "/admin/v1/provider_keys/" + good + "/test", `{"timeout_ms":-1}`, "", 400, "must be between 0", "timeout_ms"},
			{"timeout too long", "/admin/v1/provider_keys/" + good + "/test", `{"timeout_ms":60000}`, "", 400, "must be between 0", "timeout_ms"},
			{"not JSON", "/admin/v1/provider_keys/" + good + "/test", `model=x`, "Content-Type: text/plain", 415, "Content-Type must be application/json", ""},
			{"no direct model", "/admin/v1/provider_keys/" + unused + "/test", "", "", 400, `no direct model uses provider key "unused"`, "model"},
		} {
			t.Run(c.name, func(t *testing.T) {
				var hdr []string
				if c.header != "" {
					hdr = append(hdr, c.header)
				}
				r := e.admin(t, "POST", c.path, c.body, hdr...)
				var eb map[string]string
				r.decode(t, &eb)
				if r.status != c.status || eb["error_msg"] == "" || !strings.Contains(eb["error_msg"], c.msg) || eb["field"] != c.field {
					t.Errorf("%d %s, want %d with error_msg containing %q, field %q", r.status, r.body, c.status, c.msg, c.field)
				}
			})
		}
		if r := e.raw(t, "POST", "/admin/v1/provider_keys/"+good+"/test", ""); r.status != 401 {
			t.Errorf("without an admin key: %d", r.status)
		}
	})

	if n := e.changes.Load(); n != changes {
		t.Errorf("a test called OnChange %d times: it writes nothing", n-changes)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"provider key test"`) || strings.Contains(logs, `"path":"/admin/v1/provider_keys/`+good+`/test","kind"`) {
		t.Errorf("logs: want a provider key test line and no admin write line:\n%s", logs)
	}
	for _, s := range []string{testSecret, testAdminKey} {
		if strings.Contains(e.seenText(), s) || strings.Contains(logs, s) {
			t.Errorf("a response or a log line holds a key")
		}
	}
}

func TestProviderKeyTestEgress(t *testing.T) {
	e := newEnv(t, func(cfg *Config) {
		cfg.KeyCheck = keycheck.New(keycheck.Options{Egress: routing.EgressPolicy{DenyPrivate: true}})
	})
	up, auths := keyTestUpstream(t)
	id := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("private", testSecret, up.URL+"/v1")).id(t)
	var got keycheck.Result
	e.mustAdmin(t, 200, "POST", "/admin/v1/provider_keys/"+id+"/test", `{"model":"gpt-4o-mini"}`).decode(t, &got)
	if got.OK || got.Status != 0 || !strings.Contains(got.Error, "refused by the egress policy") || !strings.HasPrefix(got.Hint, "egress policy:") {
		t.Errorf("result %+v", got)
	}
	select {
	case <-auths:
		t.Error("the server sent a request its egress policy refuses")
	default:
	}
}

func TestClientTestProviderKey(t *testing.T) {
	c, e := newClient(t)
	up, _ := keyTestUpstream(t)
	id := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", pkBody("good", testSecret, up.URL+"/v1")).id(t)
	ctx := context.Background()

	res, err := c.TestProviderKey(ctx, id, "gpt-x", 0)
	if err != nil || !res.OK || res.Status != 200 || res.Model != "gpt-x" {
		t.Errorf("TestProviderKey: %+v, %v", res, err)
	}
	if _, err := c.TestProviderKey(ctx, id, "", 0); !errors.Is(err, storage.ErrInvalid) || !strings.Contains(err.Error(), "no direct model") {
		t.Errorf("no model: %v, want ErrInvalid", err)
	}
	if _, err := c.TestProviderKey(ctx, "no-such-id", "m", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("unknown id: %v, want ErrNotFound", err)
	}
}
