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
// bounds them: Apply checks its ctx before a fetch but cannot cancel one in
// flight, since oauth2's TokenSource takes no context. Apply is safe for
// concurrent use; concurrent callers share one token request. The errors
// never repeat the secret.
func NewAuth(secret, tokenURL string, httpClient *http.Client) (Auth, error) {
	return newAuth(secret, func(string) string { return tokenURL }, httpClient)
}

// NewAuthAt is NewAuth with tokens from the Entra ID authority host
// authority (https://login.microsoftonline.com, or a sovereign cloud's):
// {authority}/{tenant_id}/oauth2/v2.0/token.
func NewAuthAt(secret, authority string, httpClient *http.Client) (Auth, error) {
	authority = strings.TrimRight(authority, "/")
	return newAuth(secret, func(tenant string) string {
		if authority == "" {
			return TokenURL(tenant)
		}
		return authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	}, httpClient)
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
	// The token source keeps this context for every refresh; it carries
	// only the HTTP client.
	ctx := context.Background()
	if httpClient != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, httpClient)
	}
	return &entra{ts: oauth2.ReuseTokenSourceWithExpiry(nil, cfg.TokenSource(ctx), refreshBefore)}, nil
}

// apiKey is a plain Azure OpenAI key.
type apiKey string

func (k apiKey) Apply(_ context.Context, h http.Header) error {
	delete(h, "Authorization")
	h["Api-Key"] = []string{string(k)}
	return nil
}

// entra holds the self-refreshing token source of a service principal.
// The current token and its header value sit in an atomic, so a request
// reads them without a lock; only a refresh goes through oauth2's
// ReuseTokenSource (which holds a mutex while it fetches, so concurrent
// refreshes share one token request).
type entra struct {
	ts  oauth2.TokenSource
	cur atomic.Pointer[bearer]
}

// bearer is a token and its Authorization value.
type bearer struct {
	expiry time.Time // zero: never expires
	value  []string
}

func (e *entra) Apply(ctx context.Context, h http.Header) error {
	b := e.cur.Load()
	if b == nil || (!b.expiry.IsZero() && time.Until(b.expiry) <= refreshBefore) {
		if err := ctx.Err(); err != nil {
			return err
		}
		tok, err := e.ts.Token()
		if err != nil {
			// oauth2's error can quote the token endpoint's answer; say
			// only what kind of failure it was.
			var re *oauth2.RetrieveError
			if errors.As(err, &re) && re.Response != nil {
				return fmt.Errorf("azure: entra id token request refused (%d)", re.Response.StatusCode)
			}
			return errors.New("azure: entra id token request failed")
		}
		b = &bearer{expiry: tok.Expiry, value: []string{"Bearer " + tok.AccessToken}}
		e.cur.Store(b)
	}
	delete(h, "Api-Key")
	h["Authorization"] = b.value
	return nil
}
