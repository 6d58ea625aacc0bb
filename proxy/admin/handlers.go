package admin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/deps"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// Resource kinds, as logged and as named in URLs.
const (
	kindProviderKey = "provider_keys"
	kindModel       = "models"
	kindAPIKey      = "apikeys"
	// kindApply is a whole configuration (POST /admin/v1/apply).
	kindApply = "apply"
)

// response is what an API handler answers on success.
type response struct {
	status int
	body   any
	// id and revision name the resource written or read; a revision sets ETag.
	id       string
	revision int64
	// location is sent on 201.
	location string
	// unchanged marks a write that wrote nothing (a dry run, an apply
	// with no change): OnChange is not called.
	unchanged bool
}

type apiFunc func(w http.ResponseWriter, r *http.Request) (response, error)

// handleAPI registers an authenticated route. Methods other than GET are
// writes: each is logged in one line, and a successful one calls OnChange
// before the response goes out.
func (s *Server) handleAPI(pattern, kind string, fn apiFunc) {
	method, _, _ := strings.Cut(pattern, " ")
	s.handleAuthed(pattern, kind, method != http.MethodGet, fn)
}

// handleAction registers an authenticated route that changes nothing
// stored, whatever its method: it is neither logged as a write nor
// followed by OnChange.
func (s *Server) handleAction(pattern string, fn apiFunc) {
	s.handleAuthed(pattern, "", false, fn)
}

func (s *Server) handleAuthed(pattern, kind string, write bool, fn apiFunc) {
	scope := routeScope(pattern)
	s.scopes[pattern] = scope
	s.handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := s.authenticate(w, r)
		if !ok {
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), identityKey{}, id))
		if err := allowed(id, r, scope); err != nil {
			status, body := s.classify(err)
			if write || scope == storage.ScopeAdmin {
				// A refused write (or a refused read of admin keys or the
				// audit log) is recorded as any failed write.
				s.finishAudit(r, s.beginAudit(r, kind), r.PathValue("id"), status, nil, body.ErrorMsg)
			}
			s.writeError(w, r, err)
			if write {
				s.logWrite(r, kind, r.PathValue("id"), status, 0, body.ErrorMsg)
			}
			return
		}
		var aw *auditWrite
		if write {
			aw = s.beginAudit(r, kind)
		}
		resp, err := fn(w, r)
		if err != nil {
			if write {
				// Recorded before the answer, so a client that reads the
				// audit log after its write finds the write there.
				status, body := s.classify(err)
				s.finishAudit(r, aw, r.PathValue("id"), status, nil, body.ErrorMsg)
				s.logWrite(r, kind, r.PathValue("id"), status, 0, body.ErrorMsg)
			}
			s.writeError(w, r, err)
			return
		}
		if write {
			s.finishAudit(r, aw, resp.id, resp.status, resp.body, "")
		}
		if write && !resp.unchanged && s.onChange != nil {
			s.onChange()
		}
		if resp.revision > 0 {
			w.Header().Set("ETag", strconv.Quote(strconv.FormatInt(resp.revision, 10)))
		}
		if resp.location != "" {
			w.Header().Set("Location", resp.location)
		}
		writeJSON(w, resp.status, resp.body)
		if write {
			s.logWrite(r, kind, resp.id, resp.status, resp.revision, "")
		}
	}))
}

// logWrite logs one admin write. It takes no body and no header: only what
// identifies the write and its outcome.
func (s *Server) logWrite(r *http.Request, kind, id string, status int, revision int64, errMsg string) {
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("admin_key", keyIDOf(r)),
		slog.String("kind", kind),
		slog.String("id", id),
		slog.Int("status", status),
	}
	level := slog.LevelInfo
	if revision > 0 {
		attrs = append(attrs, slog.Int64("revision", revision))
	}
	if errMsg != "" {
		level = slog.LevelWarn
		attrs = append(attrs, slog.String("error_msg", errMsg))
	}
	s.log.LogAttrs(r.Context(), level, "admin write", attrs...)
}

func entryResponse[T any](status int, e Entry[T]) response {
	return response{status: status, body: e, id: e.ID, revision: e.Revision}
}

func created[T any](kind string, e Entry[T]) response {
	resp := entryResponse(http.StatusCreated, e)
	resp.location = "/admin/v1/" + kind + "/" + e.ID
	return resp
}

func deletedResponse(id string) response {
	return response{status: http.StatusOK, body: deleted{Deleted: true, ID: id}, id: id}
}

// Reads and deletes are the same for every kind; these build them from the
// store method and the entry shape.

func listHandler[T, V any](list func(context.Context) ([]T, error), entry func(T) Entry[V]) apiFunc {
	return func(_ http.ResponseWriter, r *http.Request) (response, error) {
		all, err := list(r.Context())
		if err != nil {
			return response{}, err
		}
		out := make([]Entry[V], 0, len(all))
		for _, v := range all {
			out = append(out, entry(v))
		}
		return response{status: http.StatusOK, body: out}, nil
	}
}

func getHandler[T, V any](get func(context.Context, string) (T, error), entry func(T) Entry[V]) apiFunc {
	return func(_ http.ResponseWriter, r *http.Request) (response, error) {
		v, err := get(r.Context(), r.PathValue("id"))
		if err != nil {
			return response{}, err
		}
		return entryResponse(http.StatusOK, entry(v)), nil
	}
}

func deleteHandler(del func(context.Context, string) error) apiFunc {
	return func(_ http.ResponseWriter, r *http.Request) (response, error) {
		id := r.PathValue("id")
		if err := del(r.Context(), id); err != nil {
			return response{}, err
		}
		return deletedResponse(id), nil
	}
}

// Provider keys.

func (s *Server) createProviderKey(w http.ResponseWriter, r *http.Request) (response, error) {
	var in providerKeyInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	secret, given, err := in.secret()
	if err != nil {
		return response{}, err
	}
	if !given {
		return response{}, storage.FieldErrorf("secret", "is required")
	}
	if looksMasked(secret) {
		return response{}, storage.FieldErrorf("secret", "is a masked value as shown by GET; send the real secret")
	}
	pk, err := s.store.CreateProviderKey(r.Context(), in.toStorage("", secret))
	if err != nil {
		return response{}, err
	}
	return created(kindProviderKey, ProviderKeyEntry(pk)), nil
}

func (s *Server) updateProviderKey(w http.ResponseWriter, r *http.Request) (response, error) {
	id := r.PathValue("id")
	rev, err := ifMatch(r)
	if err != nil {
		return response{}, err
	}
	var in providerKeyInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	secret, given, err := in.secret()
	if err != nil {
		return response{}, err
	}
	if given {
		if secret == "" {
			return response{}, storage.FieldErrorf("secret", "must not be empty (omit it to keep the stored secret)")
		}
		if looksMasked(secret) {
			// A value read back with GET and sent again: keep the stored
			// secret rather than store its mask.
			cur, err := s.store.GetProviderKey(r.Context(), id)
			if err != nil {
				return response{}, err
			}
			if secret != storage.MaskSecret(cur.Secret) && secret != cur.SecretHint {
				return response{}, storage.FieldErrorf("secret", "is a masked value that does not match the stored secret; send the real secret or omit it")
			}
			secret = ""
		}
	}
	pk, err := s.store.UpdateProviderKey(r.Context(), in.toStorage(id, secret), rev)
	if err != nil {
		return response{}, err
	}
	return entryResponse(http.StatusOK, ProviderKeyEntry(pk)), nil
}

// Models. The value is storage.Model's own JSON shape, which is defined for
// the API and holds nothing secret, and the effective settings.

func (s *Server) createModel(w http.ResponseWriter, r *http.Request) (response, error) {
	var in modelInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	m, err := s.store.CreateModel(r.Context(), in.Model)
	if err != nil {
		return response{}, err
	}
	return created(kindModel, ModelEntry(m)), nil
}

func (s *Server) updateModel(w http.ResponseWriter, r *http.Request) (response, error) {
	rev, err := ifMatch(r)
	if err != nil {
		return response{}, err
	}
	var in modelInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	in.ID = r.PathValue("id")
	m, err := s.store.UpdateModel(r.Context(), in.Model, rev)
	if err != nil {
		return response{}, err
	}
	return entryResponse(http.StatusOK, ModelEntry(m)), nil
}

// usageOf is the live usage of the resource id in scope, when it has
// limits (limited) and the server has a limiter that tracks it.
func (s *Server) usageOf(scope, id string, limited bool) *storage.LimitUsage {
	if !limited || s.limitUsage == nil {
		return nil
	}
	u, ok := s.limitUsage(scope, id)
	if !ok {
		return nil
	}
	return &u
}

func (s *Server) getModel(_ http.ResponseWriter, r *http.Request) (response, error) {
	m, err := s.store.GetModel(r.Context(), r.PathValue("id"))
	if err != nil {
		return response{}, err
	}
	e := ModelEntry(m)
	e.Value.LimitUsage = s.usageOf(LimitScopeModel, m.ID, !m.RateLimit.IsZero() || m.Budget != nil)
	return entryResponse(http.StatusOK, e), nil
}

// Caller keys.

func (s *Server) getAPIKey(_ http.ResponseWriter, r *http.Request) (response, error) {
	k, err := s.store.GetAPIKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return response{}, err
	}
	k.LimitUsage = s.usageOf(LimitScopeCallerKey, k.ID, !k.RateLimit.IsZero() || k.Budget != nil)
	return entryResponse(http.StatusOK, APIKeyEntry(k)), nil
}

func (s *Server) createAPIKey(w http.ResponseWriter, r *http.Request) (response, error) {
	var in apiKeyInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	k, err := in.toStorage("")
	if err != nil {
		return response{}, err
	}
	k, err = s.store.CreateAPIKey(r.Context(), k)
	if err != nil {
		return response{}, err
	}
	return created(kindAPIKey, APIKeyEntry(k)), nil
}

func (s *Server) updateAPIKey(w http.ResponseWriter, r *http.Request) (response, error) {
	rev, err := ifMatch(r)
	if err != nil {
		return response{}, err
	}
	var in apiKeyInput
	if err := s.decodeBody(w, r, &in); err != nil {
		return response{}, err
	}
	k, err := in.toStorage(r.PathValue("id"))
	if err != nil {
		return response{}, err
	}
	k, err = s.store.UpdateAPIKey(r.Context(), k, rev)
	if err != nil {
		return response{}, err
	}
	return entryResponse(http.StatusOK, APIKeyEntry(k)), nil
}

// rotateAttempts bounds the read-modify-write loop of a rotate that keeps
// losing to concurrent writes of the same key.
const rotateAttempts = 5

func (s *Server) rotateAPIKey(_ http.ResponseWriter, r *http.Request) (response, error) {
	id := r.PathValue("id")
	for attempt := 1; ; attempt++ {
		k, err := s.store.GetAPIKey(r.Context(), id)
		if err != nil {
			return response{}, err
		}
		plaintext, hash, err := mintKey()
		if err != nil {
			return response{}, err
		}
		k.KeyHash = hash
		// Conditional on the revision just read, so a concurrent PUT is
		// never overwritten with the fields read before it.
		updated, err := s.store.UpdateAPIKey(r.Context(), k, k.Revision)
		if errors.Is(err, storage.ErrRevisionMismatch) && attempt < rotateAttempts {
			continue
		}
		if err != nil {
			return response{}, err
		}
		e := APIKeyEntry(updated)
		return response{
			status:   http.StatusOK,
			body:     rotated{Entry: e, Plaintext: plaintext},
			id:       e.ID,
			revision: e.Revision,
		}, nil
	}
}

// mintKey returns a new caller key, "sk-" and 48 hex characters (192 random
// bits), and the lower-case hex SHA-256 that is all the store keeps.
func mintKey() (plaintext, hash string, err error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("read random bytes: %w", err)
	}
	plaintext = "sk-" + hex.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(plaintext))
	return plaintext, hex.EncodeToString(sum[:]), nil
}

// Configuration as code.

// applyBodyFactor is how many times MaxBodyBytes an apply's body may be:
// it holds a whole configuration (32 MiB by default, which 10,000 caller
// keys and 1,000 models fit in many times over).
const applyBodyFactor = 16

// apply makes the store match a whole configuration in one transaction
// (storage.Applier) and answers the storage.ApplyResult: 200 whether or
// not anything changed. The proxy reloads once, after an apply that wrote.
func (s *Server) apply(w http.ResponseWriter, r *http.Request) (response, error) {
	ap, ok := s.store.(storage.Applier)
	if !ok {
		return response{}, errorf(http.StatusNotImplemented, "this server's store cannot apply a configuration")
	}
	var in applyInput
	if err := s.decodeBodyUpTo(w, r, &in, applyBodyFactor*s.maxBody); err != nil {
		return response{}, err
	}
	if in.Desired == nil {
		return response{}, storage.FieldErrorf("desired", "is required: the configuration to apply ({} for an empty one)")
	}
	d, err := in.Desired.toStorage()
	if err != nil {
		return response{}, err
	}
	res, err := ap.Apply(r.Context(), d, storage.ApplyOptions{Prune: in.Prune, DryRun: in.DryRun, IfRevision: in.IfRevision})
	if err != nil {
		return response{}, err
	}
	if res.Changes == nil {
		res.Changes = []storage.Change{}
	}
	resp := response{status: http.StatusOK, body: res, unchanged: !res.Applied}
	if res.Applied {
		resp.revision = res.Revision
	}
	return resp, nil
}

// Runtime status.

func (s *Server) modelsStatus(_ http.ResponseWriter, r *http.Request) (response, error) {
	ms, err := s.store.ListModels(r.Context())
	if err != nil {
		return response{}, err
	}
	pks, err := s.store.ListProviderKeys(r.Context())
	if err != nil {
		return response{}, err
	}
	unbound := make(map[string]bool, len(pks))
	adapters := make(map[string]string, len(pks))
	for i := range pks {
		unbound[pks[i].ID] = !pks[i].SecretBound()
		adapters[pks[i].ID] = pks[i].EffectiveAdapter()
	}
	now := s.now()
	var limited map[string]LimitRow
	if s.limits != nil {
		limited = targetLimits(s.limitRows())
	}
	rows := make([]StatusRow, 0, len(ms))
	for i := range ms {
		row := s.statusRow(&ms[i], now)
		if row.DirectStats != nil {
			row.SecretNeedsReentry = unbound[ms[i].ProviderKeyID]
			row.Endpoints = routing.EndpointsOfModel(adapters[ms[i].ProviderKeyID], ms[i].ModelName)
			row.setProviderLimit(ms[i].ProviderLimit, limited)
		}
		rows = append(rows, row)
	}
	return response{status: http.StatusOK, body: rows}, nil
}

func (s *Server) statusRow(m *storage.Model, now time.Time) StatusRow {
	row := StatusRow{ID: m.ID, DisplayName: m.DisplayName, Kind: m.Kind()}
	if row.Kind == storage.KindRouting {
		row.Status = StatusNotApplicable
		return row
	}
	var st health.Status
	if s.status != nil {
		st = s.status.ModelStatus(m.ID)
	}
	row.Status = st.State
	probing := st.State == health.StateProbing
	if row.Status == "" || probing {
		// A model whose cooldown has ended is available again: the next
		// request goes to it as a probe. The tutorial's status vocabulary
		// has no word for that, so it reads healthy and says probing apart.
		row.Status = health.StateHealthy
	}
	if !st.CooldownUntil.IsZero() && st.CooldownUntil.After(now) {
		cu := NewSystemTime(st.CooldownUntil)
		row.CooldownUntil = &cu
	}
	row.StatusReason = st.Reason
	row.DirectStats = &DirectStats{
		Provider:      m.Provider,
		Requests:      st.Requests,
		Failures:      st.Failures,
		InFlight:      st.InFlight,
		Probing:       probing,
		LatencyP50Ms:  millis(st.LatencyP50),
		LatencyP95Ms:  millis(st.LatencyP95),
		TTFTP50Ms:     millis(st.TTFTP50),
		LastError:     st.LastError,
		LastErrorAt:   timePtr(st.LastErrorAt),
		LastSuccessAt: timePtr(st.LastSuccessAt),
		TokensIn:      st.TokensIn,
		TokensOut:     st.TokensOut,
		CostUSD:       st.CostUSD,
	}
	return row
}

// setProviderLimit adds a direct model's provider_limit to its status row,
// with the limiter's usage and whether it is at the limit now when the
// limiter counts for it.
func (row *StatusRow) setProviderLimit(pl *storage.RateLimit, limited map[string]LimitRow) {
	if pl.IsZero() {
		return
	}
	row.ProviderLimit = pl
	if lr, ok := limited[row.ID]; ok {
		u := lr.Usage
		row.ProviderLimitUsage = &u
		row.AtProviderLimit = len(lr.AtLimit) > 0
	}
}

// Server information and routing events.

func (s *Server) info(_ http.ResponseWriter, r *http.Request) (response, error) {
	in := Info{Version: s.version, StartedAt: s.startedAt, ServerTime: s.now(), Dependencies: s.deps.States()}
	if in.Dependencies == nil {
		in.Dependencies = []Dependency{}
	}
	if src, ok := s.store.(storage.Source); ok {
		rev, err := src.Revision(r.Context())
		switch {
		case err == nil:
			in.StoreRevision = rev
		case s.deps == nil:
			return response{}, err
		default:
			// The server answers without its store: the dependencies say
			// so, and the dashboard can show it.
			s.log.DebugContext(r.Context(), "info: read store revision", "err", deps.Redact(err.Error()))
		}
	}
	if s.configRev != nil {
		in.ConfigRevision = s.configRev()
	}
	in.ConfigErrors = []ConfigError{}
	if s.configErrs != nil {
		in.ConfigErrors = append(in.ConfigErrors, s.configErrs()...)
	}
	if s.resourcesFile != nil {
		in.ResourcesFile = s.resourcesFile()
	}
	return response{status: http.StatusOK, body: in}, nil
}

func (s *Server) listEvents(_ http.ResponseWriter, r *http.Request) (response, error) {
	var since uint64
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return response{}, errorf(http.StatusBadRequest, "since must be an event sequence number (got %q)", v)
		}
		since = n
	}
	page := eventPage{Events: []Event{}, Next: since}
	if s.events != nil {
		evs, next := s.events(since)
		if evs != nil {
			page.Events = evs
		}
		page.Next = next
	}
	return response{status: http.StatusOK, body: page}, nil
}

// Provider key tests.

// testProviderKey sends one minimal chat completion through a provider
// key, from this server, and answers what came of it with 200: the
// upstream's failure is the result, not an error of this API.
func (s *Server) testProviderKey(w http.ResponseWriter, r *http.Request) (response, error) {
	var in providerKeyTestInput
	// The body is optional: none tests with the key's first direct model.
	if r.ContentLength != 0 {
		if err := s.decodeBody(w, r, &in); err != nil {
			return response{}, err
		}
	}
	req, err := in.request()
	if err != nil {
		return response{}, err
	}
	pk, err := s.store.GetProviderKey(r.Context(), r.PathValue("id"))
	if err != nil {
		return response{}, err
	}
	if req.Model == "" {
		ms, err := s.store.ListModels(r.Context())
		if err != nil {
			return response{}, err
		}
		if req.Model, err = keycheck.ModelFor(pk, ms, ""); err != nil {
			return response{}, storage.FieldErrorf("model", "is required: no direct model uses provider key %q", pk.DisplayName)
		}
	}
	res, err := s.keyCheck.Check(r.Context(), pk, req)
	if err != nil {
		return response{}, err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "provider key test",
		slog.String("id", pk.ID),
		slog.String("name", pk.DisplayName),
		slog.String("model", res.Model),
		slog.String("url_host", res.URLHost),
		slog.Int("upstream_status", res.Status),
		slog.Bool("ok", res.OK),
		slog.Int64("latency_ms", res.LatencyMs),
	)
	return response{status: http.StatusOK, body: res, id: pk.ID}, nil
}
