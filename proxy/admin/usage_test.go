package admin

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
	"github.com/aisix/aisix/storage/storagetest"
)

// TestClientUsageConformance: usage queries through the client and the
// admin API answer what the SQLite store answers.
func TestClientUsageConformance(t *testing.T) {
	storagetest.RunUsage(t, func(t *testing.T) (storage.UsageStore, storage.UsageReader) {
		c, e := newClient(t)
		return e.store.(storage.UsageStore), c
	})
}

func TestUsageEndpoint(t *testing.T) {
	e := newEnv(t)
	day := time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)
	recs := []storage.UsageRecord{
		{Time: day, CallID: "c1", Attempt: 1, KeyID: "k1", KeyName: "team-a", Endpoint: "chat.completions", Alias: "chat-prod", Target: "gpt-4o-primary",
			Status: 429, Outcome: "429", StatusReason: "rate_limited"},
		{Time: day, CallID: "c1", Attempt: 2, KeyID: "k1", KeyName: "team-a", Endpoint: "chat.completions", Alias: "chat-prod", Target: "gpt-4o-secondary",
			Status: 200, Outcome: "ok", InputTokens: 10, OutputTokens: 5, Cost: 0.25, Priced: true},
		{Time: day.Add(24 * time.Hour), CallID: "c2", Attempt: 1, KeyID: "k2", Endpoint: "embeddings", Alias: "embed", Target: "embed",
			Status: 200, Outcome: "ok", InputTokens: 7},
	}
	if err := e.store.(storage.UsageStore).AppendUsage(t.Context(), recs); err != nil {
		t.Fatal(err)
	}

	t.Run("grouped", func(t *testing.T) {
		r := e.mustAdmin(t, 200, "GET", "/admin/v1/usage?group_by=day,key,alias&from=2026-03-14&to=2026-03-16", "")
		var rep struct {
			Rows   []map[string]any `json:"rows"`
			Totals map[string]any   `json:"totals"`
		}
		r.decode(t, &rep)
		if len(rep.Rows) != 2 {
			t.Fatalf("rows %v", rep.Rows)
		}
		first := rep.Rows[0]
		if first["time"] != "2026-03-14T00:00:00Z" || first["key_id"] != "k1" || first["key_name"] != "team-a" || first["alias"] != "chat-prod" ||
			first["attempts"] != 2.0 || first["successes"] != 1.0 || first["failures"] != 1.0 || first["cost_usd"] != 0.25 || first["unpriced"] != 0.0 {
			t.Errorf("first row %v", first)
		}
		if _, ok := first["target"]; ok {
			t.Errorf("target set without grouping by it: %v", first)
		}
		if rep.Totals["attempts"] != 3.0 || rep.Totals["unpriced"] != 1.0 || rep.Totals["input_tokens"] != 17.0 {
			t.Errorf("totals %v", rep.Totals)
		}
	})
	t.Run("filtered", func(t *testing.T) {
		var rep storage.UsageReport
		e.mustAdmin(t, 200, "GET", "/admin/v1/usage?target=gpt-4o-primary", "").decode(t, &rep)
		if rep.Totals.Attempts != 1 || rep.Totals.Failures != 1 {
			t.Errorf("target filter: %+v", rep)
		}
		e.mustAdmin(t, 200, "GET", "/admin/v1/usage?key=nobody", "").decode(t, &rep)
		if rep.Rows == nil || len(rep.Rows) != 0 || rep.Totals.Attempts != 0 {
			t.Errorf("no match: %+v", rep)
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for _, c := range []struct{ query, want string }{
			{"group_by=week", "group_by"},
			{"group_by=day,hour", "group_by"},
			{"from=yesterday", "from"},
			{"from=2026-03-15&to=2026-03-14", "to"},
			{"model=x", "not a parameter"},
		} {
			r := e.admin(t, "GET", "/admin/v1/usage?"+c.query, "")
			var body errorBody
			if err := json.Unmarshal(r.body, &body); err != nil || r.status != http.StatusBadRequest || !strings.Contains(body.ErrorMsg, c.want) {
				t.Errorf("?%s: %d %s, want 400 naming %q", c.query, r.status, r.body, c.want)
			}
		}
	})
	t.Run("needs the admin key", func(t *testing.T) {
		if r := e.raw(t, "GET", "/admin/v1/usage", ""); r.status != http.StatusUnauthorized {
			t.Errorf("without a key: %d", r.status)
		}
	})
}

// TestUsageWithoutLedger: a store that keeps no ledger answers 501.
func TestUsageWithoutLedger(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Store = noLedger{openStore(t)} })
	if r := e.admin(t, "GET", "/admin/v1/usage", ""); r.status != http.StatusNotImplemented || !strings.Contains(string(r.body), "no usage ledger") {
		t.Errorf("%d %s", r.status, r.body)
	}
}

// noLedger hides the SQLite store's ledger methods.
type noLedger struct{ storage.Store }
