package admin

import (
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/storage"
)

var uuidRe = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestTutorial runs the admin half of the product tutorial "Multi-Target
// Model Failover" with its request bodies as printed, and checks what the
// page shows or relies on.
func TestTutorial(t *testing.T) {
	const (
		adminKey              = "admin-local-only-change-me"
		primaryOpenAIAPIKey   = "sk-tutorial-primary-0123456789abcdef"
		secondaryOpenAIAPIKey = "sk-tutorial-secondary-fedcba9876543210"
		callerKey             = "sk-failover-demo"
	)
	now := time.Now()
	status := fakeStatus{}
	e := newEnv(t, func(c *Config) {
		c.Store = openStore(t)
		c.Keys = []string{adminKey}
		c.Status = status
		c.Now = func() time.Time { return now }
		c.Audit = c.Store.(storage.AuditStore)
	})
	// printf '%s' "${CALLER_KEY}" | shasum -a 256 | awk '{print $1}'
	callerKeyHash := hashKey(callerKey)
	curl := func(method, path, body string) reply {
		t.Helper()
		return e.raw(t, method, path, body, "Authorization: Bearer "+adminKey)
	}
	// jq -r .id
	jqID := func(r reply) string {
		t.Helper()
		if r.status != 201 {
			t.Fatalf("create answered %d: %s", r.status, r.body)
		}
		id := r.id(t)
		if !uuidRe.MatchString(id) {
			t.Fatalf("id %q is not a UUIDv4", id)
		}
		return id
	}

	primaryPKID := jqID(curl("POST", "/admin/v1/provider_keys", `{
"display_name": "openai-primary",
"provider": "openai",
"adapter": "openai",
"secret": "`+primaryOpenAIAPIKey+`",
"api_base": "https://api.openai.com/v1"
}`))
	secondaryPKID := jqID(curl("POST", "/admin/v1/provider_keys", `{
"display_name": "openai-secondary",
"provider": "openai",
"adapter": "openai",
"secret": "`+secondaryOpenAIAPIKey+`",
"api_base": "https://api.openai.com/v1"
}`))
	primaryModelID := jqID(curl("POST", "/admin/v1/models", `{
"display_name": "gpt-4o-primary",
"provider": "openai",
"model_name": "gpt-4o-mini",
"provider_key_id": "`+primaryPKID+`"
}`))
	secondaryModelID := jqID(curl("POST", "/admin/v1/models", `{
"display_name": "gpt-4o-secondary",
"provider": "openai",
"model_name": "gpt-4o-mini",
"provider_key_id": "`+secondaryPKID+`"
}`))
	chatProdID := jqID(curl("POST", "/admin/v1/models", `{
"display_name": "chat-prod",
"routing": {
"strategy": "failover",
"targets": [
{"model": "gpt-4o-primary"},
{"model": "gpt-4o-secondary"}
],
"retries": 1,
"max_fallbacks": 1
}
}`))
	apiKeyID := jqID(curl("POST", "/admin/v1/apikeys", `{
"key_hash": "`+callerKeyHash+`",
"allowed_models": ["chat-prod"]
}`))
	ids := map[string]bool{}
	for _, id := range []string{primaryPKID, secondaryPKID, primaryModelID, secondaryModelID, chatProdID, apiKeyID} {
		if ids[id] {
			t.Fatalf("id %s captured twice", id)
		}
		ids[id] = true
	}

	// Trigger failover: point the primary key at an unreachable host.
	r := curl("PUT", "/admin/v1/provider_keys/"+primaryPKID, `{
"display_name": "openai-primary",
"provider": "openai",
"adapter": "openai",
"secret": "`+primaryOpenAIAPIKey+`",
"api_base": "https://api.openai.invalid/v1"
}`)
	if r.status != 200 {
		t.Fatalf("PUT answered %d: %s", r.status, r.body)
	}
	// The secret was sent again, so it is bound to the new host.
	assertJSONEqual(t, r.object(t)["value"], `{"display_name":"openai-primary","provider":"openai","adapter":"openai","secret":"sk-…cdef","api_base":"https://api.openai.invalid/v1","secret_host":"api.openai.invalid","secret_needs_reentry":false}`)

	// The proxy would now put the primary in cooldown; the status rows show
	// it as printed.
	until := now.Add(30 * time.Second).Truncate(time.Second)
	status[primaryModelID] = health.Status{State: health.StateCooldown, CooldownUntil: until, Reason: "transport_error"}
	r = curl("GET", "/admin/v1/models/status", "")
	if r.status != 200 {
		t.Fatalf("status answered %d: %s", r.status, r.body)
	}
	var rows []map[string]any
	r.decode(t, &rows)
	if len(rows) != 3 {
		t.Fatalf("%d status rows, want 3: %s", len(rows), r.body)
	}
	printed := fmt.Sprintf(`[
{
"id": %q,
"display_name": "gpt-4o-primary",
"kind": "direct",
"status": "cooldown",
"cooldown_until": {
"secs_since_epoch": %d,
"nanos_since_epoch": 0
},
"status_reason": "transport_error"
},
{
"id": %q,
"display_name": "gpt-4o-secondary",
"kind": "direct",
"status": "healthy"
},
{
"id": %q,
"display_name": "chat-prod",
"kind": "routing",
"status": "not_applicable"
}
]`, primaryModelID, until.Unix(), secondaryModelID, chatProdID)
	var want []map[string]any
	if err := json.Unmarshal([]byte(printed), &want); err != nil {
		t.Fatal(err)
	}
	// The rows come in store order, which need not be the printed one:
	// match them by id.
	byID := map[string]map[string]any{}
	for _, row := range rows {
		id, _ := row["id"].(string)
		byID[id] = row
	}
	for _, w := range want {
		row := byID[w["id"].(string)]
		if row == nil {
			t.Errorf("no status row for %s", w["display_name"])
			continue
		}
		// Every printed field, exactly; direct rows may carry more (counters).
		for k, v := range w {
			gb, _ := json.Marshal(row[k])
			wb, _ := json.Marshal(v)
			if string(gb) != string(wb) {
				t.Errorf("%s: %s = %s, want %s", w["display_name"], k, gb, wb)
			}
		}
		for _, absent := range []string{"cooldown_until", "status_reason"} {
			if _, printed := w[absent]; !printed {
				if _, ok := row[absent]; ok {
					t.Errorf("%s has %s, which the tutorial does not print", w["display_name"], absent)
				}
			}
		}
	}
	if len(byID[chatProdID]) != 4 {
		t.Errorf("routing row has extra fields: %v", byID[chatProdID])
	}

	// Clean up, in the printed order.
	r = curl("PUT", "/admin/v1/provider_keys/"+primaryPKID, `{
"display_name": "openai-primary",
"provider": "openai",
"adapter": "openai",
"secret": "`+primaryOpenAIAPIKey+`",
"api_base": "https://api.openai.com/v1"
}`)
	if r.status != 200 {
		t.Fatalf("restoring PUT answered %d: %s", r.status, r.body)
	}
	for _, d := range []struct{ kind, id string }{
		{"models", chatProdID},
		{"models", primaryModelID},
		{"models", secondaryModelID},
		{"apikeys", apiKeyID},
		{"provider_keys", primaryPKID},
		{"provider_keys", secondaryPKID},
	} {
		r := curl("DELETE", "/admin/v1/"+d.kind+"/"+d.id, "")
		if r.status != 200 {
			t.Fatalf("DELETE %s/%s answered %d: %s", d.kind, d.id, r.status, r.body)
		}
		assertJSONEqual(t, r.object(t), fmt.Sprintf(`{"deleted":true,"id":%q}`, d.id))
	}
	for _, kind := range []string{"provider_keys", "models", "apikeys", "models/status"} {
		if r := curl("GET", "/admin/v1/"+kind, ""); r.status != 200 || string(r.body) != "[]\n" {
			t.Errorf("GET %s after clean-up: %d %q, want []", kind, r.status, r.body)
		}
	}
	checkTutorialAudit(t, e, tutorialIDs{
		primaryPK: primaryPKID, secondaryPK: secondaryPKID,
		primaryModel: primaryModelID, secondaryModel: secondaryModelID, chatProd: chatProdID, apiKey: apiKeyID,
	}, adminKey, primaryOpenAIAPIKey, secondaryOpenAIAPIKey, callerKey, callerKeyHash)
}
