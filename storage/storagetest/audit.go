package storagetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aisix/aisix/storage"
)

// RunAudit runs the audit log's conformance suite. newAudit returns, on
// an empty log, the store records are appended to and the reader that
// lists them: the same store twice, or a store and the admin API client
// in front of it. It must arrange for both to be closed.
func RunAudit(t *testing.T, newAudit func(t *testing.T) (storage.AuditStore, storage.AuditReader)) {
	t.Helper()
	for _, tc := range auditCases {
		t.Run("Audit/"+tc.name, func(t *testing.T) {
			w, r := newAudit(t)
			if w == nil || r == nil {
				t.Fatal("newAudit returned nil")
			}
			tc.fn(t, w, r)
		})
	}
}

type auditCase struct {
	name string
	fn   func(t *testing.T, w storage.AuditStore, r storage.AuditReader)
}

// auditStart is the fixtures' first record's time.
var auditStart = time.Date(2026, 3, 14, 9, 0, 0, 0, time.UTC)

// auditRecords are the fixtures, oldest first, one minute apart: a
// create, an update that changes a secret, a failed write, a failed
// authentication and an apply.
func auditRecords() []storage.AuditRecord {
	at := func(m int) time.Time { return auditStart.Add(time.Duration(m) * time.Minute) }
	return []storage.AuditRecord{
		{Time: at(0), AdminKeyID: "bootstrap", Source: "192.0.2.1", Method: "POST", Path: "/admin/v1/provider_keys",
			Kind: "provider_keys", ResourceID: "pk1", Name: "openai-prod", Status: 201,
			Changes: []storage.Change{{Kind: storage.KindProviderKey, Name: "openai-prod", Action: "create", ID: "pk1",
				Fields: []storage.FieldChange{{Field: "api_base", New: "https://api.openai.com/v1"}, storage.SecretChange("secret")}}}},
		{Time: at(1), AdminKeyID: "bootstrap", Source: "2001:db8::1", Method: "PUT", Path: "/admin/v1/provider_keys/pk1",
			Kind: "provider_keys", ResourceID: "pk1", Name: "openai-prod", Status: 200,
			Changes: []storage.Change{{Kind: storage.KindProviderKey, Name: "openai-prod", Action: "update", ID: "pk1",
				Fields: []storage.FieldChange{storage.SecretChange("secret")}}}},
		{Time: at(2), AdminKeyID: "bootstrap", Source: "192.0.2.1", Method: "DELETE", Path: "/admin/v1/models/nope",
			Kind: "models", ResourceID: "nope", Status: 404, Error: "model nope not found"},
		{Time: at(3), Source: "198.51.100.7", Method: "GET", Path: "/admin/v1/models",
			Kind: storage.AuditKindAuth, Status: 401, Error: "unknown admin key"},
		{Time: at(4), AdminKeyID: "bootstrap", Source: "192.0.2.1", Method: "POST", Path: "/admin/v1/apply",
			Kind: "apply", Status: 200, Changes: []storage.Change{
				{Kind: storage.KindModelRow, Name: "gpt-4o", Action: "create", ID: "m1"},
				{Kind: storage.KindAPIKey, Name: "team-a", Action: "update", ID: "k1", Fields: []storage.FieldChange{storage.SecretChange("key_hash")}},
			}},
	}
}

// appendAll appends recs in order.
func appendAll(t *testing.T, w storage.AuditStore, recs []storage.AuditRecord) {
	t.Helper()
	for _, rec := range recs {
		if err := w.AppendAudit(context.Background(), rec); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
	}
}

// newestFirst returns recs reversed.
func newestFirst(recs []storage.AuditRecord) []storage.AuditRecord {
	out := make([]storage.AuditRecord, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		out = append(out, recs[i])
	}
	return out
}

func listAudit(t *testing.T, r storage.AuditReader, q storage.AuditQuery) []storage.AuditRecord {
	t.Helper()
	got, err := r.ListAudit(context.Background(), q)
	if err != nil {
		t.Fatalf("ListAudit(%+v): %v", q, err)
	}
	if got == nil {
		t.Fatalf("ListAudit(%+v) = nil, want a non-nil slice", q)
	}
	return got
}

func wantAudit(t *testing.T, got, want []storage.AuditRecord) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("records:\n got %+v\nwant %+v", got, want)
	}
}

var auditCases = []auditCase{
	{"Empty", func(t *testing.T, _ storage.AuditStore, r storage.AuditReader) {
		if got := listAudit(t, r, storage.AuditQuery{}); len(got) != 0 {
			t.Errorf("empty log lists %d records", len(got))
		}
	}},
	{"RoundTripNewestFirst", func(t *testing.T, w storage.AuditStore, r storage.AuditReader) {
		recs := auditRecords()
		appendAll(t, w, recs)
		wantAudit(t, listAudit(t, r, storage.AuditQuery{}), newestFirst(recs))
	}},
	{"SameTimeNewestAppendFirst", func(t *testing.T, w storage.AuditStore, r storage.AuditReader) {
		recs := auditRecords()[:2]
		recs[1].Time = recs[0].Time
		appendAll(t, w, recs)
		wantAudit(t, listAudit(t, r, storage.AuditQuery{}), newestFirst(recs))
	}},
	{"SinceUntilLimit", func(t *testing.T, w storage.AuditStore, r storage.AuditReader) {
		recs := auditRecords()
		appendAll(t, w, recs)
		q := storage.AuditQuery{Since: auditStart.Add(time.Minute), Until: auditStart.Add(4 * time.Minute)}
		wantAudit(t, listAudit(t, r, q), newestFirst(recs[1:4]))
		q.Limit = 2
		wantAudit(t, listAudit(t, r, q), newestFirst(recs[2:4]))
		wantAudit(t, listAudit(t, r, storage.AuditQuery{Since: auditStart.Add(10 * time.Minute)}), []storage.AuditRecord{})
	}},
	{"DefaultLimit", func(t *testing.T, w storage.AuditStore, r storage.AuditReader) {
		rec := auditRecords()[0]
		for i := range storage.DefaultAuditLimit + 5 {
			rec.Time = auditStart.Add(time.Duration(i) * time.Second)
			appendAll(t, w, []storage.AuditRecord{rec})
		}
		got := listAudit(t, r, storage.AuditQuery{})
		if len(got) != storage.DefaultAuditLimit {
			t.Fatalf("%d records without a limit, want %d", len(got), storage.DefaultAuditLimit)
		}
		if want := auditStart.Add(time.Duration(storage.DefaultAuditLimit+4) * time.Second); !got[0].Time.Equal(want) {
			t.Errorf("first record at %s, want the newest, %s", got[0].Time, want)
		}
	}},
	{"InvalidQuery", func(t *testing.T, _ storage.AuditStore, r storage.AuditReader) {
		for _, q := range []storage.AuditQuery{
			{Limit: storage.MaxAuditLimit + 1},
			{Limit: -1},
			{Since: auditStart, Until: auditStart.Add(-time.Second)},
		} {
			if _, err := r.ListAudit(context.Background(), q); !errors.Is(err, storage.ErrInvalid) {
				t.Errorf("ListAudit(%+v) = %v, want ErrInvalid", q, err)
			}
		}
	}},
	{"Prune", func(t *testing.T, w storage.AuditStore, r storage.AuditReader) {
		recs := auditRecords()
		appendAll(t, w, recs)
		n, err := w.PruneAudit(context.Background(), auditStart.Add(2*time.Minute))
		if err != nil {
			t.Fatalf("PruneAudit: %v", err)
		}
		if n != 2 {
			t.Errorf("PruneAudit deleted %d records, want 2", n)
		}
		wantAudit(t, listAudit(t, r, storage.AuditQuery{}), newestFirst(recs[2:]))
	}},
}
