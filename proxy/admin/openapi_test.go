package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

type openAPIOperation struct {
	Security    *[]map[string]any          `json:"security"`
	Scope       string                     `json:"x-aisix-scope"`
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
	// The provider key test endpoint is called for real: its upstream
	// request must not leave the process.
	e := newEnv(t, withCannedUpstream)
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

// TestOpenAPIDocumentsEntries checks every entry the API returns against
// the schema the document gives it: each field is documented, each
// required field is there, nested objects too.
func TestOpenAPIDocumentsEntries(t *testing.T) {
	spent, resets := 1.5, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, func(c *Config) {
		c.LimitUsage = func(string, string) (storage.LimitUsage, bool) {
			return storage.LimitUsage{RPM: 1, BudgetSpentUSD: &spent, BudgetResetsAt: &resets}, true
		}
		c.Limits = func() []LimitRow {
			return []LimitRow{
				{Scope: LimitScopeCallerKey, ID: "k", RateLimit: storage.RateLimit{RPM: 60}, Budget: &storage.Budget{AmountUSD: 5, Period: storage.BudgetWeek},
					Usage: storage.LimitUsage{RPM: 60, BudgetSpentUSD: &spent, BudgetResetsAt: &resets}, Rejected: 2},
				{Scope: LimitScopeTarget, ID: "m", Name: "oa-limited", RateLimit: storage.RateLimit{RPM: 500}},
			}
		}
	})
	f := e.fixture(t, "oa")
	key := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", apiKeyBodyJSON(hashKey("oa"), "oa-routing", "*")).id(t)
	limitedKey := e.mustAdmin(t, 201, "POST", "/admin/v1/apikeys", `{"key_hash":"`+hashKey("oa-limited")+`","allowed_models":["*"],"rate_limit":{"rpm":60,"concurrency":2},"budget":{"amount_usd":5,"period":"week"}}`).id(t)
	limitedModel := e.mustAdmin(t, 201, "POST", "/admin/v1/models", `{"display_name":"oa-limited","provider":"openai","model_name":"m","provider_key_id":"`+f.pk+`",`+
		`"rate_limit":{"tpm":1000},"budget":{"amount_usd":9,"period":"day"},"provider_limit":{"rpm":500,"concurrency":8}}`).id(t)
	fwd := e.mustAdmin(t, 201, "POST", "/admin/v1/provider_keys", `{"display_name":"oa-fwd","provider":"openai","secret":"sk-oa-fwd-0000000000","forward_headers":["X-Trace-Id"]}`).id(t)
	doc, _ := loadOpenAPI(t, e)
	for _, c := range []struct{ path, schema string }{
		{"/admin/v1/provider_keys/" + f.pk, "ProviderKeyEntry"},
		{"/admin/v1/provider_keys/" + fwd, "ProviderKeyEntry"},
		{"/admin/v1/models/" + f.direct, "ModelEntry"},
		{"/admin/v1/models/" + f.routing, "ModelEntry"},
		{"/admin/v1/apikeys/" + key, "APIKeyEntry"},
		{"/admin/v1/apikeys/" + limitedKey, "APIKeyEntry"},
		{"/admin/v1/models/" + limitedModel, "ModelEntry"},
		{"/admin/v1/limits", "LimitPage"},
	} {
		t.Run(c.path, func(t *testing.T) {
			var v any
			e.mustAdmin(t, 200, "GET", c.path, "").decode(t, &v)
			for _, problem := range schemaProblems(doc, map[string]any{"$ref": "#/components/schemas/" + c.schema}, v, "") {
				t.Error(problem)
			}
		})
	}
}

// schemaProblems lists where v does not fit schema: undocumented or
// missing required object fields, and values of the wrong JSON type. A
// oneOf fits when one of its alternatives does.
func schemaProblems(doc map[string]any, schema map[string]any, v any, at string) []string {
	for {
		ref, ok := schema["$ref"].(string)
		if !ok {
			break
		}
		p, _ := strings.CutPrefix(ref, "#/")
		var cur any = doc
		for _, part := range strings.Split(p, "/") {
			m, _ := cur.(map[string]any)
			cur = m[part]
		}
		schema, _ = cur.(map[string]any)
	}
	if alts, ok := schema["oneOf"].([]any); ok {
		var all []string
		for _, a := range alts {
			alt, _ := a.(map[string]any)
			ps := schemaProblems(doc, alt, v, at)
			if len(ps) == 0 {
				return nil
			}
			all = append(all, ps...)
		}
		return append([]string{at + ": fits no alternative of oneOf:"}, all...)
	}
	typ, _ := schema["type"].(string)
	switch v := v.(type) {
	case map[string]any:
		if typ != "object" {
			return []string{fmt.Sprintf("%s: object, documented as %q", at, typ)}
		}
		props, _ := schema["properties"].(map[string]any)
		var out []string
		for k, x := range v {
			ps, ok := props[k].(map[string]any)
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: not documented", at, k))
				continue
			}
			out = append(out, schemaProblems(doc, ps, x, at+"."+k)...)
		}
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := v[r.(string)]; !ok {
				out = append(out, fmt.Sprintf("%s.%s: required but missing", at, r))
			}
		}
		return out
	case []any:
		if typ != "array" {
			return []string{fmt.Sprintf("%s: array, documented as %q", at, typ)}
		}
		items, _ := schema["items"].(map[string]any)
		var out []string
		for i, x := range v {
			out = append(out, schemaProblems(doc, items, x, fmt.Sprintf("%s[%d]", at, i))...)
		}
		return out
	case string:
		if typ != "string" && typ != "" {
			return []string{fmt.Sprintf("%s: string, documented as %q", at, typ)}
		}
	case float64:
		if typ != "integer" && typ != "number" {
			return []string{fmt.Sprintf("%s: number, documented as %q", at, typ)}
		}
	case bool:
		if typ != "boolean" {
			return []string{fmt.Sprintf("%s: boolean, documented as %q", at, typ)}
		}
	}
	return nil
}
