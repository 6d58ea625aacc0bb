package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type openAPIOperation struct {
	Security    *[]map[string]any          `json:"security"`
	RequestBody map[string]any             `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

var openAPIMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// loadOpenAPI fetches the served document and returns its operations as
// "METHOD /path" → operation.
func loadOpenAPI(t *testing.T, e *env) (map[string]any, map[string]openAPIOperation) {
	t.Helper()
	r := e.raw(t, "GET", "/admin/openapi.json", "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /admin/openapi.json: %d %s", r.status, r.header.Get("Content-Type"))
	}
	var doc map[string]any
	r.decode(t, &doc)
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Fatalf("openapi version %q, want 3.0.x", v)
	}
	var typed struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	r.decode(t, &typed)
	ops := map[string]openAPIOperation{}
	for path, item := range typed.Paths {
		for method, raw := range item {
			if !slices.Contains(openAPIMethods, method) {
				continue
			}
			var op openAPIOperation
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	return doc, ops
}

// TestOpenAPIMatchesRouter checks that the document and the router list
// exactly the same routes, and that every documented operation, called for
// real, answers one of its documented statuses.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnv(t)
	f := e.fixture(t, "oa")
	keyID := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("oa"), "*")).id(t)
	doc, ops := loadOpenAPI(t, e)

	t.Run("every documented route is served", func(t *testing.T) {
		for key := range ops {
			method, path, _ := strings.Cut(key, " ")
			req := httptest.NewRequest(method, strings.ReplaceAll(path, "{id}", "some-id"), nil)
			if _, pattern := e.srv.mux.Handler(req); pattern != key {
				t.Errorf("%s is documented but the router matches %q", key, pattern)
			}
		}
	})

	t.Run("every served route is documented", func(t *testing.T) {
		if len(e.srv.routes) != len(ops) {
			t.Errorf("router has %d routes, document has %d operations", len(e.srv.routes), len(ops))
		}
		for _, pattern := range e.srv.routes {
			if _, ok := ops[pattern]; !ok {
				t.Errorf("route %q is not in the document", pattern)
			}
		}
	})

	t.Run("operations answer documented statuses", func(t *testing.T) {
		ids := map[string]string{"provider_keys": f.pk, "models": f.direct, "apikeys": keyID}
		for key, op := range ops {
			method, path, _ := strings.Cut(key, " ")
			public := op.Security != nil && len(*op.Security) == 0
			calls := []struct{ name, path, body string }{}
			switch {
			case strings.Contains(path, "{id}"):
				kind := strings.Split(path, "/")[3]
				calls = append(calls,
					struct{ name, path, body string }{"unknown id", strings.ReplaceAll(path, "{id}", "unknown-id"), "{}"},
					struct{ name, path, body string }{"existing id, empty object", strings.ReplaceAll(path, "{id}", ids[kind]), "{}"})
			case method == "POST":
				calls = append(calls, struct{ name, path, body string }{"empty object", path, "{}"})
			default:
				calls = append(calls, struct{ name, path, body string }{"plain", path, ""})
			}
			for _, c := range calls {
				body := c.body
				if op.RequestBody == nil {
					body = ""
				}
				if method == "DELETE" && c.name != "unknown id" {
					continue // keep the fixture; deletes are covered elsewhere
				}
				r := e.admin(t, method, c.path, body)
				if _, ok := op.Responses[strconv.Itoa(r.status)]; !ok {
					t.Errorf("%s (%s) answered %d, which the document does not list: %s", key, c.name, r.status, r.body)
				}
				if !public {
					if _, ok := op.Responses["401"]; !ok {
						t.Errorf("%s does not document 401", key)
					}
				}
				if op.RequestBody != nil {
					for _, s := range []string{"400", "413", "415"} {
						if _, ok := op.Responses[s]; !ok {
							t.Errorf("%s takes a body but does not document %s", key, s)
						}
					}
				}
			}
		}
	})

	t.Run("every reference resolves", func(t *testing.T) {
		var walk func(v any)
		walk = func(v any) {
			switch v := v.(type) {
			case map[string]any:
				for k, x := range v {
					if k == "$ref" {
						ref, _ := x.(string)
						if !resolves(doc, ref) {
							t.Errorf("dangling $ref %q", ref)
						}
						continue
					}
					walk(x)
				}
			case []any:
				for _, x := range v {
					walk(x)
				}
			}
		}
		walk(doc)
	})

	t.Run("the public routes need no key", func(t *testing.T) {
		for key, op := range ops {
			if op.Security == nil || len(*op.Security) != 0 {
				continue
			}
			method, path, _ := strings.Cut(key, " ")
			if r := e.raw(t, method, path, ""); r.status != http.StatusOK {
				t.Errorf("%s without a key: %d", key, r.status)
			}
		}
	})
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[part]; !ok {
			return false
		}
	}
	return true
}
