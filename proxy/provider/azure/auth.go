package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
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
	h.Del("Authorization")
	h.Set("api-key", string(k))
	return nil
}

// entra holds the cached, self-refreshing token source of a service
// principal. oauth2's ReuseTokenSource is safe for concurrent use.
type entra struct{ ts oauth2.TokenSource }

func (e *entra) Apply(ctx context.Context, h http.Header) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tok, err := e.ts.Token()
	if err != nil {
		return fmt.Errorf("azure: entra id token: %w", err)
	}
	h.Del("api-key")
	h.Set("Authorization", "Bearer "+tok.AccessToken)
	return nil
}
