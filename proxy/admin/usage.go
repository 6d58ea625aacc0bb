package admin

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aisix/aisix/storage"
)

// The usage ledger's read side: GET /admin/v1/usage.

// usage answers a usage query from the query string: from and to (RFC
// 3339 times, or dates YYYY-MM-DD, UTC), key (a caller key id), alias,
// target, and group_by (a comma-separated list of day, hour, key, alias,
// target). The answer is a storage.UsageReport: {"rows": […], "totals": {…}}.
func (s *Server) usage(_ http.ResponseWriter, r *http.Request) (response, error) {
	if s.usageReader == nil {
		return response{}, errorf(http.StatusNotImplemented, "this server keeps no usage ledger")
	}
	q, err := parseUsageQuery(r.URL.Query())
	if err != nil {
		return response{}, err
	}
	rep, err := s.usageReader.QueryUsage(r.Context(), q)
	if err != nil {
		return response{}, err
	}
	if rep.Rows == nil {
		rep.Rows = []storage.UsageRow{}
	}
	return response{status: http.StatusOK, body: rep}, nil
}

// usageParams are the query parameters GET /admin/v1/usage takes.
var usageParams = []string{"from", "to", "key", "alias", "target", "group_by"}

func parseUsageQuery(v url.Values) (storage.UsageQuery, error) {
	for name := range v {
		if !slices.Contains(usageParams, name) {
			return storage.UsageQuery{}, storage.FieldErrorf(name, "is not a parameter of the usage query (known: %s)", strings.Join(usageParams, ", "))
		}
	}
	q := storage.UsageQuery{
		KeyID:   v.Get("key"),
		Alias:   v.Get("alias"),
		Target:  v.Get("target"),
		GroupBy: storage.ParseUsageGroups(v.Get("group_by")),
	}
	var err error
	if q.From, err = parseUsageTime("from", v.Get("from")); err != nil {
		return storage.UsageQuery{}, err
	}
	if q.To, err = parseUsageTime("to", v.Get("to")); err != nil {
		return storage.UsageQuery{}, err
	}
	return q, q.Validate()
}

// parseUsageTime reads an RFC 3339 time or a UTC date; "" is the zero time.
func parseUsageTime(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, storage.FieldErrorf(field, "must be an RFC 3339 time such as 2026-03-14T09:00:00Z, or a date such as 2026-03-14 (got %q)", s)
}

// usageValues is the query string of q.
func usageValues(q storage.UsageQuery) url.Values {
	v := url.Values{}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	for name, val := range map[string]string{"key": q.KeyID, "alias": q.Alias, "target": q.Target} {
		if val != "" {
			v.Set(name, val)
		}
	}
	if len(q.GroupBy) > 0 {
		v.Set("group_by", strings.Join(q.GroupBy, ","))
	}
	return v
}

var _ storage.UsageReader = (*Client)(nil)

// QueryUsage reads the server's usage ledger (GET /admin/v1/usage). It
// returns storage.ErrInvalid for a query the server refuses.
func (c *Client) QueryUsage(ctx context.Context, q storage.UsageQuery) (storage.UsageReport, error) {
	path := "/admin/v1/usage"
	if v := usageValues(q); len(v) > 0 {
		path += "?" + v.Encode()
	}
	var rep storage.UsageReport
	if err := c.do(ctx, http.MethodGet, path, nil, 0, &rep); err != nil {
		return storage.UsageReport{}, err
	}
	if rep.Rows == nil {
		rep.Rows = []storage.UsageRow{}
	}
	return rep, nil
}
