package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/keycheck"
	"github.com/aisix/aisix/storage"
)

// ErrAdminKeyRejected means the admin API answered 401: the admin key is
// missing or not one the server accepts.
var ErrAdminKeyRejected = errors.New("admin key rejected")

// maxResponseBytes caps what the client reads from one response.
const maxResponseBytes = 64 << 20

// Client is a storage.Store backed by a remote admin API. Reads never carry
// a secret: provider keys come back with SecretHint set and Secret empty.
type Client struct {
	base string
	key  string
	hc   *http.Client
}

var (
	_ storage.Store   = (*Client)(nil)
	_ storage.Applier = (*Client)(nil)
)

// NewClient returns a client of the admin API at baseURL (for example
// http://127.0.0.1:3001) that authenticates with adminKey. A nil hc uses a
// client with a 30 s timeout.
func NewClient(baseURL, adminKey string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), key: adminKey, hc: hc}
}

// Close does nothing; the http.Client belongs to the caller.
func (c *Client) Close() error { return nil }

// do sends one request and decodes a 2xx body into out (when non-nil). Every
// other status becomes an error of the storage vocabulary.
func (c *Client) do(ctx context.Context, method, path string, in any, ifRevision int64, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("build request for aisix admin API at %s: %w", c.base, err)
	}
	req.Header.Set("Authorization", bearerPrefix+c.key)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifRevision != 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatInt(ifRevision, 10)))
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctxErr)
		}
		return fmt.Errorf("cannot reach aisix admin API at %s: %w", c.base, unwrapURLError(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("read response of aisix admin API at %s: %w", c.base, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode response of %s %s: %w", method, path, err)
		}
		return nil
	}
	return c.statusError(resp.StatusCode, raw)
}

// statusError maps an error response back to the domain errors the server
// mapped it from.
func (c *Client) statusError(status int, raw []byte) error {
	var eb errorBody
	if json.Unmarshal(raw, &eb) != nil || eb.ErrorMsg == "" {
		eb.ErrorMsg = strings.TrimSpace(string(raw))
		if len(eb.ErrorMsg) > 200 {
			eb.ErrorMsg = eb.ErrorMsg[:200] + "…"
		}
	}
	var kind error
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		kind = storage.ErrInvalid
	case http.StatusNotFound:
		kind = storage.ErrNotFound
	case http.StatusConflict:
		kind = storage.ErrConflict
	case http.StatusPreconditionFailed:
		kind = storage.ErrRevisionMismatch
	case http.StatusUnauthorized:
		return fmt.Errorf("%w by %s", ErrAdminKeyRejected, c.base)
	default:
		return fmt.Errorf("aisix admin API at %s answered %d: %s", c.base, status, eb.ErrorMsg)
	}
	if len(eb.Errors) > 1 {
		errs := make([]error, len(eb.Errors))
		for i, e := range eb.Errors {
			k := kindOf(e.Kind)
			if k == nil {
				k = kind
			}
			errs[i] = &storage.Error{Kind: k, Field: e.Field, Message: e.ErrorMsg}
		}
		return errors.Join(errs...)
	}
	return &storage.Error{Kind: kind, Field: eb.Field, Message: eb.ErrorMsg}
}

// unwrapURLError drops the *url.Error wrapper, whose text repeats the method
// and URL the caller's message already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func resourcePath(kind, id string) string {
	return "/admin/v1/" + kind + "/" + url.PathEscape(id)
}

// Provider keys.

func providerKeyFromEntry(e *Entry[ProviderKeyValue]) storage.ProviderKey {
	v := e.Value
	return storage.ProviderKey{
		ID:          e.ID,
		DisplayName: v.DisplayName,
		Provider:    v.Provider,
		Adapter:     v.Adapter,
		SecretHint:  v.Secret,
		APIBase:     v.APIBase,
		SecretHost:  v.SecretHost,
		Meta:        e.meta(),

		ForwardHeaders: v.ForwardHeaders,
		APIVersion:     v.APIVersion,
		TLSCAFile:      v.TLSCAFile,
		TLSCertFile:    v.TLSCertFile,
		TLSKeyFile:     v.TLSKeyFile,
	}
}

func providerKeyBody(pk storage.ProviderKey) providerKeyInput {
	in := providerKeyInput{
		DisplayName:    pk.DisplayName,
		Provider:       pk.Provider,
		Adapter:        pk.Adapter,
		APIBase:        pk.APIBase,
		ForwardHeaders: pk.ForwardHeaders,
		APIVersion:     pk.APIVersion,
		TLSCAFile:      pk.TLSCAFile,
		TLSCertFile:    pk.TLSCertFile,
		TLSKeyFile:     pk.TLSKeyFile,
	}
	if pk.Secret != "" {
		in.Secret = &pk.Secret
	}
	return in
}

// ListProviderKeys lists provider keys, secrets masked.
func (c *Client) ListProviderKeys(ctx context.Context) ([]storage.ProviderKey, error) {
	var es []Entry[ProviderKeyValue]
	if err := c.do(ctx, http.MethodGet, "/admin/v1/"+kindProviderKey, nil, 0, &es); err != nil {
		return nil, err
	}
	var out []storage.ProviderKey
	for i := range es {
		out = append(out, providerKeyFromEntry(&es[i]))
	}
	return out, nil
}

// GetProviderKey reads one provider key, secret masked. It returns
// storage.ErrNotFound for an unknown id.
func (c *Client) GetProviderKey(ctx context.Context, id string) (storage.ProviderKey, error) {
	var e Entry[ProviderKeyValue]
	if err := c.do(ctx, http.MethodGet, resourcePath(kindProviderKey, id), nil, 0, &e); err != nil {
		return storage.ProviderKey{}, err
	}
	return providerKeyFromEntry(&e), nil
}

// CreateProviderKey creates pk and returns it as stored, secret masked.
func (c *Client) CreateProviderKey(ctx context.Context, pk storage.ProviderKey) (storage.ProviderKey, error) {
	var e Entry[ProviderKeyValue]
	if err := c.do(ctx, http.MethodPost, "/admin/v1/"+kindProviderKey, providerKeyBody(pk), 0, &e); err != nil {
		return storage.ProviderKey{}, err
	}
	return providerKeyFromEntry(&e), nil
}

// UpdateProviderKey replaces pk; an empty Secret keeps the stored one. A
// non-zero ifRevision is sent as If-Match.
func (c *Client) UpdateProviderKey(ctx context.Context, pk storage.ProviderKey, ifRevision int64) (storage.ProviderKey, error) {
	var e Entry[ProviderKeyValue]
	if err := c.do(ctx, http.MethodPut, resourcePath(kindProviderKey, pk.ID), providerKeyBody(pk), ifRevision, &e); err != nil {
		return storage.ProviderKey{}, err
	}
	return providerKeyFromEntry(&e), nil
}

// DeleteProviderKey deletes a provider key.
func (c *Client) DeleteProviderKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, resourcePath(kindProviderKey, id), nil, 0, nil)
}

// Models. Entries decode into storage.Model, which skips the read-only
// effective object: it is computed from the model, again, by whoever
// needs it (EffectiveOf).

func modelFromEntry(e *Entry[storage.Model]) storage.Model {
	m := e.Value
	m.ID = e.ID
	m.Meta = e.meta()
	return m
}

// ListModels lists models.
func (c *Client) ListModels(ctx context.Context) ([]storage.Model, error) {
	var es []Entry[storage.Model]
	if err := c.do(ctx, http.MethodGet, "/admin/v1/"+kindModel, nil, 0, &es); err != nil {
		return nil, err
	}
	var out []storage.Model
	for i := range es {
		out = append(out, modelFromEntry(&es[i]))
	}
	return out, nil
}

// GetModel reads one model. It returns storage.ErrNotFound for an unknown id.
func (c *Client) GetModel(ctx context.Context, id string) (storage.Model, error) {
	var e Entry[storage.Model]
	if err := c.do(ctx, http.MethodGet, resourcePath(kindModel, id), nil, 0, &e); err != nil {
		return storage.Model{}, err
	}
	return modelFromEntry(&e), nil
}

// CreateModel creates m and returns it as stored.
func (c *Client) CreateModel(ctx context.Context, m storage.Model) (storage.Model, error) {
	var e Entry[storage.Model]
	if err := c.do(ctx, http.MethodPost, "/admin/v1/"+kindModel, m, 0, &e); err != nil {
		return storage.Model{}, err
	}
	return modelFromEntry(&e), nil
}

// UpdateModel replaces m. A non-zero ifRevision is sent as If-Match.
func (c *Client) UpdateModel(ctx context.Context, m storage.Model, ifRevision int64) (storage.Model, error) {
	var e Entry[storage.Model]
	if err := c.do(ctx, http.MethodPut, resourcePath(kindModel, m.ID), m, ifRevision, &e); err != nil {
		return storage.Model{}, err
	}
	return modelFromEntry(&e), nil
}

// DeleteModel deletes a model.
func (c *Client) DeleteModel(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, resourcePath(kindModel, id), nil, 0, nil)
}

// Caller keys.

func apiKeyFromEntry(e *Entry[APIKeyValue]) storage.APIKey {
	v := e.Value
	return storage.APIKey{
		ID:              e.ID,
		DisplayName:     v.DisplayName,
		KeyHash:         v.KeyHash,
		AllowedModels:   v.AllowedModels,
		AllowedModelIDs: v.AllowedModelIDs,
		ExpiresAt:       v.ExpiresAt,
		Disabled:        v.Disabled,
		RateLimit:       v.RateLimit,
		Budget:          v.Budget,
		LimitUsage:      v.LimitUsage,
		Meta:            e.meta(),
	}
}

func apiKeyBody(k storage.APIKey) apiKeyInput {
	in := apiKeyInput{
		DisplayName:   k.DisplayName,
		KeyHash:       k.KeyHash,
		AllowedModels: k.AllowedModels,
		Disabled:      k.Disabled,
		RateLimit:     k.RateLimit,
		Budget:        k.Budget,
	}
	if k.ExpiresAt != nil {
		s := k.ExpiresAt.Format(time.RFC3339Nano)
		in.ExpiresAt = &s
	}
	return in
}

// ListAPIKeys lists caller keys.
func (c *Client) ListAPIKeys(ctx context.Context) ([]storage.APIKey, error) {
	var es []Entry[APIKeyValue]
	if err := c.do(ctx, http.MethodGet, "/admin/v1/"+kindAPIKey, nil, 0, &es); err != nil {
		return nil, err
	}
	var out []storage.APIKey
	for i := range es {
		out = append(out, apiKeyFromEntry(&es[i]))
	}
	return out, nil
}

// GetAPIKey reads one caller key. It returns storage.ErrNotFound for an
// unknown id.
func (c *Client) GetAPIKey(ctx context.Context, id string) (storage.APIKey, error) {
	var e Entry[APIKeyValue]
	if err := c.do(ctx, http.MethodGet, resourcePath(kindAPIKey, id), nil, 0, &e); err != nil {
		return storage.APIKey{}, err
	}
	return apiKeyFromEntry(&e), nil
}

// CreateAPIKey creates k and returns it as stored.
func (c *Client) CreateAPIKey(ctx context.Context, k storage.APIKey) (storage.APIKey, error) {
	var e Entry[APIKeyValue]
	if err := c.do(ctx, http.MethodPost, "/admin/v1/"+kindAPIKey, apiKeyBody(k), 0, &e); err != nil {
		return storage.APIKey{}, err
	}
	return apiKeyFromEntry(&e), nil
}

// UpdateAPIKey replaces k. A non-zero ifRevision is sent as If-Match.
func (c *Client) UpdateAPIKey(ctx context.Context, k storage.APIKey, ifRevision int64) (storage.APIKey, error) {
	var e Entry[APIKeyValue]
	if err := c.do(ctx, http.MethodPut, resourcePath(kindAPIKey, k.ID), apiKeyBody(k), ifRevision, &e); err != nil {
		return storage.APIKey{}, err
	}
	return apiKeyFromEntry(&e), nil
}

// DeleteAPIKey deletes a caller key.
func (c *Client) DeleteAPIKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, resourcePath(kindAPIKey, id), nil, 0, nil)
}

// RotateAPIKey gives caller key id a new random plaintext key and returns
// the updated key and the plaintext, which the server shows only this once.
// It returns storage.ErrNotFound for an unknown id.
func (c *Client) RotateAPIKey(ctx context.Context, id string) (storage.APIKey, string, error) {
	var out rotated
	if err := c.do(ctx, http.MethodPost, resourcePath(kindAPIKey, id)+"/rotate", nil, 0, &out); err != nil {
		return storage.APIKey{}, "", err
	}
	return apiKeyFromEntry(&out.Entry), out.Plaintext, nil
}

// Apply makes the server's store match d in one transaction
// (POST /admin/v1/apply); the secrets of d's provider keys are sent. Its
// errors are the store's, every one of them: several come back joined
// (errors.Join), as storage.Plan returns them.
func (c *Client) Apply(ctx context.Context, d storage.Desired, opts storage.ApplyOptions) (storage.ApplyResult, error) {
	in := applyInput{Desired: desiredBody(d), Prune: opts.Prune, DryRun: opts.DryRun, IfRevision: opts.IfRevision}
	var res storage.ApplyResult
	if err := c.do(ctx, http.MethodPost, "/admin/v1/apply", in, 0, &res); err != nil {
		return storage.ApplyResult{}, err
	}
	return res, nil
}

// ModelsStatus reads the runtime status of every model, in store order.
func (c *Client) ModelsStatus(ctx context.Context) ([]StatusRow, error) {
	var rows []StatusRow
	if err := c.do(ctx, http.MethodGet, "/admin/v1/models/status", nil, 0, &rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// Limits reads the live limit rows (GET /admin/v1/limits): every caller
// key, model and provider_limit with a limit, sorted by scope then name.
func (c *Client) Limits(ctx context.Context) ([]LimitRow, error) {
	var page limitPage
	if err := c.do(ctx, http.MethodGet, "/admin/v1/limits", nil, 0, &page); err != nil {
		return nil, err
	}
	return page.Limits, nil
}

// Info reads what the server says about itself.
func (c *Client) Info(ctx context.Context) (Info, error) {
	var in Info
	if err := c.do(ctx, http.MethodGet, "/admin/v1/info", nil, 0, &in); err != nil {
		return Info{}, err
	}
	return in, nil
}

// Events reads the routing events published after since, oldest first, and
// the cursor to pass next time.
func (c *Client) Events(ctx context.Context, since uint64) ([]Event, uint64, error) {
	var page eventPage
	path := "/admin/v1/events?since=" + strconv.FormatUint(since, 10)
	if err := c.do(ctx, http.MethodGet, path, nil, 0, &page); err != nil {
		return nil, since, err
	}
	return page.Events, page.Next, nil
}

// TestProviderKey has the server send one minimal chat completion through
// provider key id (POST /admin/v1/provider_keys/{id}/test): from its own
// network, under its own egress policy. An empty model is the model_name of
// the key's first direct model; a zero timeout is the server's default.
// The upstream's failure is a Result; the error is the admin API's own:
// storage.ErrNotFound for an unknown id, storage.ErrInvalid for no model
// or a timeout out of range.
func (c *Client) TestProviderKey(ctx context.Context, id, model string, timeout time.Duration) (keycheck.Result, error) {
	in := providerKeyTestInput{Model: model, TimeoutMs: timeout.Milliseconds()}
	var res keycheck.Result
	if err := c.do(ctx, http.MethodPost, resourcePath(kindProviderKey, id)+"/test", in, 0, &res); err != nil {
		return keycheck.Result{}, err
	}
	return res, nil
}

// ListAdminKeys lists the server's stored admin keys (admin scope).
func (c *Client) ListAdminKeys(ctx context.Context) ([]storage.AdminKey, error) {
	var vs []AdminKeyView
	if err := c.do(ctx, http.MethodGet, "/admin/v1/"+kindAdminKey, nil, 0, &vs); err != nil {
		return nil, err
	}
	out := make([]storage.AdminKey, len(vs))
	for i, v := range vs {
		out[i] = v.toStorage()
	}
	return out, nil
}

// CreateAdminKey stores k on the server; k.KeyHash is the hash of a key
// the caller minted, so the plaintext never travels.
func (c *Client) CreateAdminKey(ctx context.Context, k storage.AdminKey) (storage.AdminKey, error) {
	var out mintedKey
	in := adminKeyInput{DisplayName: k.DisplayName, Scope: k.Scope, KeyHash: k.KeyHash}
	if err := c.do(ctx, http.MethodPost, "/admin/v1/"+kindAdminKey, in, 0, &out); err != nil {
		return storage.AdminKey{}, err
	}
	return out.toStorage(), nil
}

// RotateAdminKey gives the admin key with id or name ref the hash of a
// new key the caller minted.
func (c *Client) RotateAdminKey(ctx context.Context, ref, keyHash string) (storage.AdminKey, error) {
	var out mintedKey
	if err := c.do(ctx, http.MethodPost, resourcePath(kindAdminKey, ref)+"/rotate", rotateInput{KeyHash: keyHash}, 0, &out); err != nil {
		return storage.AdminKey{}, err
	}
	return out.toStorage(), nil
}

// DeleteAdminKey deletes the admin key with id or name ref.
func (c *Client) DeleteAdminKey(ctx context.Context, ref string) error {
	return c.do(ctx, http.MethodDelete, resourcePath(kindAdminKey, ref), nil, 0, nil)
}
