package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Scope is the OAuth2 scope of an Entra ID token for Azure OpenAI.
const Scope = "https://cognitiveservices.azure.com/.default"

// refreshBefore is how long before its expiry a cached token is replaced,
// so that a request never leaves with a token about to lapse.
const refreshBefore = 60 * time.Second

// fetchTimeout bounds a token request when the HTTP client sets no
// Timeout of its own.
const fetchTimeout = 30 * time.Second

// Auth puts a provider key's credential on an upstream request.
type Auth interface {
	// Apply sets the credential header on h: api-key, or Authorization
	// with a bearer token fetched (or refreshed) when the cached one is
	// missing or near expiry. It returns an error when no token can be had.
	Apply(ctx context.Context, h http.Header) error
}

// EntraCredential is the JSON form of an Entra ID client-credential
// secret.
type EntraCredential struct {
	TenantID     string `json:"tenant_id"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// TokenURL is the Entra ID v2 token endpoint of tenant.
func TokenURL(tenant string) string {
	return "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
}

// NewAuth returns the Auth of a provider key's secret. A plain secret is an
// api-key, sent as the api-key header. A JSON secret
// {"tenant_id","client_id","client_secret"} is an Entra ID service
// principal: Apply sends Authorization: Bearer with a token for Scope from
// the client-credentials flow, cached and refreshed a minute before it
// expires. tokenURL overrides the tenant's endpoint (TokenURL; for tests);
// httpClient, if not nil, is used for token requests, and its Timeout
// (else fetchTimeout) bounds them. Apply waits for a token no longer than
// its ctx allows: the token request runs on a goroutine of its own and
// goes on when the caller gives up, so that the next caller finds the
// token. Apply is safe for concurrent use; concurrent callers share one
// token request. The errors never repeat the secret.
func NewAuth(secret, tokenURL string, httpClient *http.Client) (Auth, error) {
	return newAuth(secret, func(string) string { return tokenURL }, httpClient)
}

// NewAuthAt is NewAuth with tokens for scope (ScopeFor; "" is Scope) from
// the Entra ID authority host authority (AuthorityFor, or a test's fake;
// "" is the public cloud's): {authority}/{tenant_id}/oauth2/v2.0/token.
func NewAuthAt(secret, authority, scope string, httpClient *http.Client) (Auth, error) {
	authority = strings.TrimRight(authority, "/")
	a, err := newAuth(secret, func(tenant string) string {
		if authority == "" {
			return TokenURL(tenant)
		}
		return authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	}, httpClient)
	if e, ok := a.(*entra); ok && scope != "" {
		e.cfg.Scopes = []string{scope}
	}
	return a, err
}

// Sovereign clouds: the resource host suffix, the Entra ID authority and
// the token scope of Azure OpenAI there.
var clouds = []struct{ suffix, authority, scope string }{
	{".azure.us", "https://login.microsoftonline.us", "https://cognitiveservices.azure.us/.default"},
	{".azure.cn", "https://login.chinacloudapi.cn", "https://cognitiveservices.azure.cn/.default"},
}

// AuthorityFor is the Entra ID authority of the cloud a resource host is
// in: Azure Government (*.openai.azure.us), Azure China
// (*.openai.azure.cn), else the public cloud's.
func AuthorityFor(resourceHost string) string {
	for _, c := range clouds {
		if strings.HasSuffix(strings.ToLower(resourceHost), c.suffix) {
			return c.authority
		}
	}
	return "https://login.microsoftonline.com"
}

// ScopeFor is the token scope for a resource host: the audience of Azure
// OpenAI in the resource's cloud (Scope in the public cloud).
func ScopeFor(resourceHost string) string {
	for _, c := range clouds {
		if strings.HasSuffix(strings.ToLower(resourceHost), c.suffix) {
			return c.scope
		}
	}
	return Scope
}

func newAuth(secret string, tokenURLOf func(tenant string) string, httpClient *http.Client) (Auth, error) {
	s := strings.TrimSpace(secret)
	if s == "" {
		return nil, invalidSecret("empty")
	}
	if !strings.HasPrefix(s, "{") {
		return apiKey(s), nil
	}
	var c EntraCredential
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		// err may quote the input.
		return nil, invalidSecret(`not a JSON Entra ID credential {"tenant_id","client_id","client_secret"}`)
	}
	for _, f := range []struct{ name, v string }{{"tenant_id", c.TenantID}, {"client_id", c.ClientID}, {"client_secret", c.ClientSecret}} {
		if strings.TrimSpace(f.v) == "" {
			return nil, invalidSecret("%s is required for an Entra ID credential", f.name)
		}
	}
	tokenURL := tokenURLOf(c.TenantID)
	if tokenURL == "" {
		tokenURL = TokenURL(c.TenantID)
	}
	cfg := &clientcredentials.Config{
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		TokenURL:     tokenURL,
		Scopes:       []string{Scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return &entra{cfg: cfg, client: httpClient}, nil
}

// apiKey is a plain Azure OpenAI key.
type apiKey string

func (k apiKey) Apply(_ context.Context, h http.Header) error {
	delete(h, "Authorization")
	h["Api-Key"] = []string{string(k)}
	return nil
}

// entra holds a service principal's credential and its current token.
// The token and its header value sit in an atomic, so a request reads
// them without a lock; only a refresh takes mu, to join the token request
// in flight or start one.
type entra struct {
	cfg    *clientcredentials.Config
	client *http.Client // nil: oauth2's default
	cur    atomic.Pointer[bearer]

	mu    sync.Mutex
	fetch *tokenFetch // the token request in flight, if any
}

// bearer is a token and its Authorization value.
type bearer struct {
	expiry time.Time // zero: never expires
	value  []string
}

// stale reports whether b is missing or due for replacement.
func (b *bearer) stale() bool {
	return b == nil || (!b.expiry.IsZero() && time.Until(b.expiry) <= refreshBefore)
}

// tokenFetch is one token request; done is closed when b or err is set.
type tokenFetch struct {
	done chan struct{}
	b    *bearer
	err  error
}

func (e *entra) Apply(ctx context.Context, h http.Header) error {
	b := e.cur.Load()
	if b.stale() {
		var err error
		if b, err = e.refresh(ctx); err != nil {
			return err
		}
	}
	delete(h, "Api-Key")
	h["Authorization"] = b.value
	return nil
}

// refresh returns a fresh token: the one a concurrent refresh just got,
// or the answer of the token request in flight, started if there is
// none. It waits no longer than ctx allows.
func (e *entra) refresh(ctx context.Context) (*bearer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if b := e.cur.Load(); !b.stale() {
		e.mu.Unlock()
		return b, nil
	}
	f := e.fetch
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		e.fetch = f
		go e.run(f)
	}
	e.mu.Unlock()
	select {
	case <-f.done:
		return f.b, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("azure: entra id token request not answered in time: %w", ctx.Err())
	}
}

// run makes the token request of f.
func (e *entra) run(f *tokenFetch) {
	ctx := context.Background()
	if e.client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, e.client)
	}
	if e.client == nil || e.client.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
	}
	tok, err := e.cfg.Token(ctx)
	switch {
	case err == nil:
		f.b = &bearer{expiry: tok.Expiry, value: []string{"Bearer " + tok.AccessToken}}
		e.cur.Store(f.b)
	default:
		// oauth2's error can quote the token endpoint's answer; say
		// only what kind of failure it was.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			f.err = fmt.Errorf("azure: entra id token request refused (%d)", re.Response.StatusCode)
		} else {
			f.err = errors.New("azure: entra id token request failed")
		}
	}
	e.mu.Lock()
	e.fetch = nil
	e.mu.Unlock()
	close(f.done)
}
