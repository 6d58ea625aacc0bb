package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/affinity"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

// The Responses API keeps state upstream: a response is stored by the
// provider key that made it, and a request with previous_response_id, or
// a GET, DELETE or cancel of a response, only works there. The proxy
// remembers which target made each response id it relayed
// (proxy/affinity) and sends those calls back to it.

// remember records that t made the response id.
func (c *call) remember(t *routing.Target, id string) {
	if id == "" {
		return
	}
	c.s.affinity.Put(id, affinity.Entry{TargetID: t.ID, ModelID: c.model.ID})
}

// responseID reads the top-level id of a response object.
func responseID(body []byte) string {
	var v struct {
		ID     string `json:"id"`
		Object string `json:"object"`
	}
	if json.Unmarshal(body, &v) != nil || v.Object != "response" {
		return ""
	}
	return v.ID
}

// pinned is the one candidate of a Responses request that continues a
// response the proxy knows (previous_response_id): the target that made
// it, if it is still one of the model's. Its cooldown does not matter:
// no other target can continue that response.
func (c *call) pinned(now time.Time) (candidate, bool) {
	if c.rt.op != provider.OpResponses || c.req.PreviousResponseID == "" {
		return candidate{}, false
	}
	e, ok := c.s.affinity.Get(c.req.PreviousResponseID)
	if !ok {
		return candidate{}, false
	}
	var t *routing.Target
	if c.model.Direct != nil {
		if c.model.Direct.ID == e.TargetID {
			t = c.model.Direct
		}
	} else {
		for _, gt := range c.model.Group.Targets {
			if gt.ID == e.TargetID {
				t = gt
				break
			}
		}
	}
	if t == nil || t.Err != nil {
		return candidate{}, false
	}
	cd := candidate{t: t, h: c.s.health.Target(t.ID)}
	av, _ := cd.h.Check(now)
	cd.halfOpen = av == health.HalfOpen
	return cd, true
}

// responsePath splits /v1/responses/{id}[/cancel|/input_items].
func responsePath(path string) (id, rest string, ok bool) {
	tail, found := strings.CutPrefix(path, "/v1/responses/")
	if !found || tail == "" {
		return "", "", false
	}
	id, rest, _ = strings.Cut(tail, "/")
	switch rest {
	case "", "cancel", "input_items":
		return id, rest, id != ""
	}
	return "", "", false
}

// responseResource serves GET and DELETE /v1/responses/{id}, GET
// /v1/responses/{id}/input_items and POST /v1/responses/{id}/cancel on
// the target that made the response. One attempt, no failover: no other
// target has it.
func (s *Server) responseResource(w http.ResponseWriter, r *http.Request, vals *hdrVals, id, rest string) {
	method := http.MethodGet
	switch {
	case rest == "" && r.Method == http.MethodDelete:
		method = http.MethodDelete
	case rest == "cancel":
		method = http.MethodPost
	}
	if r.Method != method {
		allow := "GET, DELETE"
		if rest != "" {
			allow = method
		}
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "method not allowed", "")
		return
	}
	snap := s.table.Snapshot()
	key, _ := s.authenticate(w, r, snap, wireOpenAI, s.ClientAddr(r))
	if key == nil {
		return
	}
	notFound := func() {
		writeError(w, http.StatusNotFound, "invalid_request_error", "No response found with id "+strconv.Quote(clip(id))+
			" on this gateway (it routes a response's follow-ups to the target that made it, and does not know this one:"+
			" made before a restart, by another replica, or not through this gateway)", "")
	}
	e, ok := s.affinity.Get(id)
	if !ok {
		notFound()
		return
	}
	m, tm := snap.ModelByID(e.ModelID), snap.ModelByID(e.TargetID)
	if m == nil || !key.AllowsModel(m) || tm == nil || tm.Direct == nil || tm.Direct.Err != nil {
		notFound() // a key learns nothing about responses it may not use
		return
	}
	t := tm.Direct
	rs, ok := t.Endpoint.(provider.Resourcer)
	if !ok || !t.Endpoint.Supports(provider.OpResponses) {
		notFound()
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), t.Timeout)
	defer cancel()
	in := &provider.Inbound{Op: provider.OpResponses, Header: r.Header}
	var path []string
	if rest == "" {
		path = []string{id}
	} else {
		path = []string{id, rest}
	}
	req, err := rs.NewResourceRequest(ctx, in, method, provider.OpResponses, path...)
	if err != nil {
		writeError(w, http.StatusBadGateway, "upstream_error", "could not get a credential for the upstream (token request failed)", "")
		return
	}
	if rest == "input_items" {
		// Pagination (after, limit, order) goes as the caller gave it.
		req.URL.RawQuery = r.URL.RawQuery
	}
	h := w.Header()
	h[hdrServedBy] = t.ServedBy
	resp, err := s.transport.RoundTrip(req)
	if err != nil {
		if r.Context().Err() != nil {
			return
		}
		msg := "transport error: " + provider.TransportErrorText(err)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			writeError(w, http.StatusGatewayTimeout, "timeout", "upstream request timed out after "+ms(t.Timeout), "")
			return
		}
		writeError(w, http.StatusBadGateway, "transport_error", msg, "")
		return
	}
	defer resp.Body.Close()
	bp := getBuf()
	defer putBuf(bp)
	rb, err := readBody(resp.Body, s.maxResp, bp)
	if err != nil {
		writeError(w, http.StatusBadGateway, "upstream_error", "could not read the upstream's answer", "")
		return
	}
	h[hdrAttempts] = []string{t.Name + "=" + strconv.Itoa(resp.StatusCode)}
	if resp.StatusCode/100 != 2 {
		b := t.Endpoint.ErrorBody(resp.StatusCode, rb)
		h["Content-Type"] = appJSON
		h["Content-Length"] = []string{strconv.Itoa(len(b))}
		w.WriteHeader(resp.StatusCode)
		_, _ = w.Write(b)
		return
	}
	if method == http.MethodDelete {
		s.affinity.Delete(id)
	}
	out := rb
	if sp, err := provider.FindModel(rb); err == nil && !sp.Insert {
		out = sp.AppendTo(nil, rb, m.NameJSON)
	}
	h["Content-Type"] = appJSON
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(out)
}
