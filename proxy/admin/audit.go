package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/storage"
)

// The audit log: every admin write (whatever its outcome) and every failed
// admin authentication is one storage.AuditRecord, appended to the store
// on the write's own request and logged in one line (component "audit").
// A failed append is logged at error level; the write's answer is never
// lost for it. Records name the admin key by id (keyIDOf) and show secret
// fields only as changed (storage.SecretChange).

// sourceOf is the client's address as the audit log records it: the host
// of r.RemoteAddr, without the port.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// auditView is a stored resource as the audit log compares it: its
// display name, its fields as the API shows them (compact JSON, strings
// bare) without the secret ones, and the secret fields' stored values,
// which are compared and never shown.
type auditView struct {
	name    string
	fields  map[string]string
	secrets map[string]string
}

// auditSecrets are the secret fields of each kind: the audit log shows
// only that they changed. They are also dropped from the compared fields
// (a provider key's secret there is its mask).
var auditSecrets = map[string][]string{
	kindProviderKey: {"secret"},
	kindAPIKey:      {"key_hash"},
	kindAdminKey:    {"key"},
}

// auditIgnored are fields of the API's shape that are read-only and not
// stored, so never a change: effective settings and live limiter counts.
var auditIgnored = []string{"effective", "limit_usage", "allowed_model_ids"}

// viewOf reads the resource kind/id from the store; nil when there is
// none (not found, not a resource kind, or the read fails: the audit log
// then shows no field summary, and the write goes on regardless).
func (s *Server) viewOf(ctx context.Context, kind, id string) *auditView {
	if id == "" {
		return nil
	}
	var (
		name    string
		value   any
		secrets map[string]string
	)
	switch kind {
	case kindProviderKey:
		pk, err := s.store.GetProviderKey(ctx, id)
		if err != nil {
			return nil
		}
		name, value = pk.DisplayName, ProviderKeyEntry(pk).Value
		secrets = map[string]string{"secret": pk.Secret + "\x00" + pk.SecretHint}
	case kindModel:
		m, err := s.store.GetModel(ctx, id)
		if err != nil {
			return nil
		}
		name, value = m.DisplayName, m
	case kindAPIKey:
		k, err := s.store.GetAPIKey(ctx, id)
		if err != nil {
			return nil
		}
		name, value = k.DisplayName, APIKeyEntry(k).Value
		secrets = map[string]string{"key_hash": k.KeyHash}
	case kindAdminKey:
		k, ok := s.adminKeyByRef(ctx, id)
		if !ok {
			return nil
		}
		// The view never holds the key or its hash; a rotation shows as
		// the key's secret changed.
		name, value = k.DisplayName, AdminKeyViewOf(k)
		secrets = map[string]string{"key": k.KeyHash}
	default:
		return nil
	}
	fields, err := jsonFields(value)
	if err != nil {
		return nil
	}
	for _, f := range slices.Concat(auditSecrets[kind], auditIgnored) {
		delete(fields, f)
	}
	return &auditView{name: name, fields: fields, secrets: secrets}
}

// jsonFields is v's top-level JSON fields, each as compact JSON, strings
// without their quotes.
func jsonFields(v any) (map[string]string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		var str string
		if json.Unmarshal(v, &str) == nil {
			out[k] = str
			continue
		}
		var buf bytes.Buffer
		if json.Compact(&buf, v) == nil {
			out[k] = buf.String()
		}
	}
	return out, nil
}

// diffFields lists the fields that differ between before and after (nil
// for a resource that did not exist), sorted by name; a secret field that
// differs is storage.SecretChange. Empty and null values count as unset.
func diffFields(before, after *auditView) []storage.FieldChange {
	var b, a auditView
	if before != nil {
		b = *before
	}
	if after != nil {
		a = *after
	}
	var out []storage.FieldChange
	for _, f := range slices.Sorted(maps.Keys(mergeKeys(b.fields, a.fields))) {
		old, cur := unsetEmpty(b.fields[f]), unsetEmpty(a.fields[f])
		if old != cur {
			out = append(out, storage.FieldChange{Field: f, Old: old, New: cur})
		}
	}
	for _, f := range slices.Sorted(maps.Keys(mergeKeys(b.secrets, a.secrets))) {
		if b.secrets[f] != a.secrets[f] {
			out = append(out, storage.SecretChange(f))
		}
	}
	return out
}

func mergeKeys(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, b)
	return out
}

// unsetEmpty maps the JSON of an unset value ("null", "[]", "{}",
// "false", "0") to "", so that omitting a field and sending its zero
// value are the same.
func unsetEmpty(v string) string {
	switch v {
	case "null", "[]", "{}", "false", "0":
		return ""
	}
	return v
}

// auditWrite is what the audit log captures of a write before its
// handler runs.
type auditWrite struct {
	kind   string
	before *auditView
}

// beginAudit reads what a write to r is about to change; nil when the
// server keeps no audit log.
func (s *Server) beginAudit(r *http.Request, kind string) *auditWrite {
	if s.auditStore == nil {
		return nil
	}
	return &auditWrite{kind: kind, before: s.viewOf(r.Context(), kind, r.PathValue("id"))}
}

// finishAudit records the write aw began: its outcome (status, and
// errMsg when it failed) and, when it succeeded, what it changed. body
// is the handler's response body (an apply's storage.ApplyResult).
func (s *Server) finishAudit(r *http.Request, aw *auditWrite, id string, status int, body any, errMsg string) {
	if aw == nil {
		return
	}
	rec := s.auditRecord(r, aw.kind, status, errMsg)
	rec.AdminKeyID = keyIDOf(r)
	rec.ResourceID = id
	if aw.before != nil {
		rec.Name = aw.before.name
	}
	if errMsg == "" {
		rec.Changes = s.changesOf(r, aw, id, body)
		if len(rec.Changes) == 1 {
			rec.Name = rec.Changes[0].Name
		}
	}
	s.recordAudit(r.Context(), rec)
}

// changesOf is the field summary of a successful write.
func (s *Server) changesOf(r *http.Request, aw *auditWrite, id string, body any) []storage.Change {
	if aw.kind == kindApply {
		res, ok := body.(storage.ApplyResult)
		if !ok || !res.Applied {
			return nil // a dry run, or no change: nothing was written
		}
		var out []storage.Change
		for _, c := range res.Changes {
			if c.Action == storage.ActionCreate || c.Action == storage.ActionUpdate || c.Action == storage.ActionDelete {
				out = append(out, c)
			}
		}
		return out
	}
	var after *auditView
	if r.Method != http.MethodDelete {
		after = s.viewOf(r.Context(), aw.kind, id)
	}
	c := storage.Change{Kind: changeKinds[aw.kind], ID: id, Fields: diffFields(aw.before, after)}
	switch {
	case aw.before == nil && after == nil:
		return nil
	case aw.before == nil:
		c.Action, c.Name = storage.ActionCreate, after.name
	case after == nil:
		c.Action, c.Name, c.Fields = storage.ActionDelete, aw.before.name, nil
	default:
		c.Action, c.Name = storage.ActionUpdate, after.name
	}
	return []storage.Change{c}
}

// changeKinds maps the kinds of URLs to those of a storage.Change.
var changeKinds = map[string]string{
	kindProviderKey: storage.KindProviderKey,
	kindModel:       storage.KindModelRow,
	kindAPIKey:      storage.KindAPIKey,
}

// auditAuthFailure records a failed admin authentication of r; reason
// says what was wrong, never what key was sent.
func (s *Server) auditAuthFailure(r *http.Request, reason string) {
	if s.auditStore == nil {
		return
	}
	s.recordAudit(r.Context(), s.auditRecord(r, storage.AuditKindAuth, http.StatusUnauthorized, reason))
}

// auditRecord is the part of a record every entry has.
func (s *Server) auditRecord(r *http.Request, kind string, status int, errMsg string) storage.AuditRecord {
	return storage.AuditRecord{
		Time:   s.now().UTC(),
		Source: sourceOf(r),
		Method: r.Method,
		Path:   r.URL.Path,
		Kind:   kind,
		Status: status,
		Error:  errMsg,
	}
}

// recordAudit logs rec in one line (component "audit") and appends it
// to the store. The
// request's context may end as soon as the answer is sent, so the append
// runs under a context of its own, bounded by auditAppendTimeout.
func (s *Server) recordAudit(ctx context.Context, rec storage.AuditRecord) {
	attrs := []slog.Attr{
		slog.String("admin_key_id", rec.AdminKeyID),
		slog.String("source", rec.Source),
		slog.String("method", rec.Method),
		slog.String("path", rec.Path),
		slog.String("kind", rec.Kind),
		slog.String("id", rec.ResourceID),
		slog.String("name", rec.Name),
		slog.Int("status", rec.Status),
	}
	if rec.Error != "" {
		attrs = append(attrs, slog.String("error_msg", rec.Error))
	}
	if len(rec.Changes) > 0 {
		if b, err := json.Marshal(rec.Changes); err == nil {
			attrs = append(attrs, slog.String("changes", string(b)))
		}
	}
	s.auditLog.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditAppendTimeout)
	defer cancel()
	if err := s.auditStore.AppendAudit(actx, rec); err != nil {
		s.auditLog.LogAttrs(ctx, slog.LevelError, "audit record not stored",
			slog.String("method", rec.Method),
			slog.String("path", rec.Path),
			slog.Int("status", rec.Status),
			slog.String("error", err.Error()))
	}
}

// auditAppendTimeout bounds one append of an audit record.
const auditAppendTimeout = 10 * time.Second

// The read side: GET /admin/v1/audit.

// auditList is the body of GET /admin/v1/audit.
type auditList struct {
	Items []storage.AuditRecord `json:"items"`
}

// auditParams are the query parameters GET /admin/v1/audit takes.
var auditParams = []string{"since", "until", "limit"}

// listAudit answers the records since and until select (RFC 3339 times,
// or durations before now such as 24h or 7d), newest first, at most limit
// (default 100, at most 1000): {"items": […]}.
func (s *Server) listAudit(_ http.ResponseWriter, r *http.Request) (response, error) {
	if s.auditStore == nil {
		return response{}, errorf(http.StatusNotImplemented, "this server keeps no audit log")
	}
	q, err := parseAuditQuery(r.URL.Query(), s.now())
	if err != nil {
		return response{}, err
	}
	recs, err := s.auditStore.ListAudit(r.Context(), q)
	if err != nil {
		return response{}, err
	}
	if recs == nil {
		recs = []storage.AuditRecord{}
	}
	return response{status: http.StatusOK, body: auditList{Items: recs}}, nil
}

func parseAuditQuery(v url.Values, now time.Time) (storage.AuditQuery, error) {
	for name := range v {
		if !slices.Contains(auditParams, name) {
			return storage.AuditQuery{}, storage.FieldErrorf(name, "is not a parameter of the audit query (known: %s)", strings.Join(auditParams, ", "))
		}
	}
	var (
		q   storage.AuditQuery
		err error
	)
	if q.Since, err = ParseAuditTime("since", v.Get("since"), now); err != nil {
		return q, err
	}
	if q.Until, err = ParseAuditTime("until", v.Get("until"), now); err != nil {
		return q, err
	}
	if l := v.Get("limit"); l != "" {
		if q.Limit, err = strconv.Atoi(l); err != nil || q.Limit < 1 {
			return q, storage.FieldErrorf("limit", "must be a whole number between 1 and %d (got %q)", storage.MaxAuditLimit, l)
		}
	}
	return q, q.Validate()
}

// ParseAuditTime reads a time of the audit query: an RFC 3339 time, or a
// duration before now (24h, 90m, or days such as 7d); "" is the zero
// time. The CLI's --since and --until take the same forms.
func ParseAuditTime(field, s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if d, ok := parseAgo(s); ok {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, storage.FieldErrorf(field, "must be an RFC 3339 time such as 2026-03-14T09:00:00Z, or a duration before now such as 24h or 7d (got %q)", s)
}

// parseAgo reads a non-negative duration: Go's form (90m, 24h) or whole
// days (7d).
func parseAgo(s string) (time.Duration, bool) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100000 {
			return 0, false
		}
		return time.Duration(n) * 24 * time.Hour, true
	}
	d, err := time.ParseDuration(s)
	return d, err == nil && d >= 0
}

// auditValues is the query string of q.
func auditValues(q storage.AuditQuery) url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

var _ storage.AuditReader = (*Client)(nil)

// ListAudit reads the server's audit log (GET /admin/v1/audit), newest
// first. It returns storage.ErrInvalid for a query the server refuses.
func (c *Client) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditRecord, error) {
	path := "/admin/v1/audit"
	if v := auditValues(q); len(v) > 0 {
		path += "?" + v.Encode()
	}
	var out auditList
	if err := c.do(ctx, http.MethodGet, path, nil, 0, &out); err != nil {
		return nil, err
	}
	if out.Items == nil {
		out.Items = []storage.AuditRecord{}
	}
	return out.Items, nil
}
