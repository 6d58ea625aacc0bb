package azure

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/aisix/aisix/proxy/provider/bearer"
	"golang.org/x/oauth2/clientcredentials"
)

// Scope is the OAuth2 scope of an Entra ID token for Azure OpenAI.
const Scope = "https://cognitiveservices.azure.com/.default"

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
	return newAuth(secret, func(string) string { return tokenURL }, Scope, httpClient)
}

// NewAuthAt is NewAuth with tokens for scope (ScopeFor; "" is Scope) from
// the Entra ID authority host authority (AuthorityFor, or a test's fake;
// "" is the public cloud's): {authority}/{tenant_id}/oauth2/v2.0/token.
func NewAuthAt(secret, authority, scope string, httpClient *http.Client) (Auth, error) {
	authority = strings.TrimRight(authority, "/")
	if scope == "" {
		scope = Scope
	}
	return newAuth(secret, func(tenant string) string {
		if authority == "" {
			return TokenURL(tenant)
		}
		return authority + "/" + url.PathEscape(tenant) + "/oauth2/v2.0/token"
	}, scope, httpClient)
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

func newAuth(secret string, tokenURLOf func(tenant string) string, scope string, httpClient *http.Client) (Auth, error) {
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
		Scopes:       []string{scope},
		AuthStyle:    oauth2.AuthStyleInParams,
	}
	return &entra{src: bearer.New("azure: entra id token", httpClient, cfg.Token)}, nil
}

// apiKey is a plain Azure OpenAI key.
type apiKey string

func (k apiKey) Apply(_ context.Context, h http.Header) error {
	delete(h, "Authorization")
	h["Api-Key"] = []string{string(k)}
	return nil
}

// entra is a service principal's credential: its token comes from a
// bearer.Source (read lock-free, refreshed once for every waiter, no wait
// beyond the caller's context).
type entra struct{ src *bearer.Source }

// Refused tells auth that the credential h carried was refused, when auth
// caches a token (Entra ID); an api-key is left as it is.
func Refused(auth Auth, h http.Header) {
	if e, ok := auth.(*entra); ok {
		e.src.Refused(h["Authorization"])
	}
}

func (e *entra) Apply(ctx context.Context, h http.Header) error {
	v, err := e.src.Authorization(ctx)
	if err != nil {
		return err
	}
	delete(h, "Api-Key")
	h["Authorization"] = v
	return nil
}
