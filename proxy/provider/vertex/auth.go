package vertex

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"strings"

	"golang.org/x/oauth2"

	"github.com/aisix/aisix/proxy/provider/bearer"
	"golang.org/x/oauth2/jwt"
)

// Scope is the OAuth2 scope of a token for Vertex AI.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// DefaultTokenURL is Google's OAuth2 token endpoint, the token_uri of
// every service account key Google issues.
const DefaultTokenURL = "https://oauth2.googleapis.com/token"

// Auth puts a provider key's credential on an upstream request.
type Auth interface {
	// Apply sets Authorization on h: the access token as given, or a
	// token minted from the service account (fetched, or refreshed, when
	// the cached one is missing or near expiry). It returns an error when
	// no token can be had.
	Apply(ctx context.Context, h http.Header) error
}

// ServiceAccount is what is read of a Google service account key file.
type ServiceAccount struct {
	Type         string `json:"type"`
	ClientEmail  string `json:"client_email"`
	PrivateKey   string `json:"private_key"`
	PrivateKeyID string `json:"private_key_id"`
	TokenURI     string `json:"token_uri"`
}

// ParseServiceAccount reads a service account key file and checks its
// private key is a usable RSA key. Its errors never quote the file.
func ParseServiceAccount(js string) (*ServiceAccount, error) {
	var sa ServiceAccount
	if err := json.Unmarshal([]byte(js), &sa); err != nil {
		return nil, invalidSecret("service_account_json is not a JSON service account key")
	}
	switch {
	case sa.Type != "" && sa.Type != "service_account":
		return nil, invalidSecret(`service_account_json is not a service account key (its type is not "service_account")`)
	case strings.TrimSpace(sa.ClientEmail) == "":
		return nil, invalidSecret("service_account_json has no client_email")
	case strings.TrimSpace(sa.PrivateKey) == "":
		return nil, invalidSecret("service_account_json has no private_key")
	}
	if _, err := parseRSAKey([]byte(sa.PrivateKey)); err != nil {
		return nil, invalidSecret("service_account_json's private_key is not a PEM RSA private key")
	}
	return &sa, nil
}

func parseRSAKey(b []byte) (*rsa.PrivateKey, error) {
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(b); err == nil {
		if rk, ok := k.(*rsa.PrivateKey); ok {
			return rk, nil
		}
		return nil, errors.New("not an RSA key")
	}
	return x509.ParsePKCS1PrivateKey(b)
}

// NewAuth returns the Auth of a parsed credential. An access token is sent
// as it is, as Authorization: Bearer. A service account gets tokens for
// Scope by the JWT-bearer grant (an RS256 assertion signed with its
// private key, iss its client_email, aud its token_uri), cached and
// refreshed a minute before they expire. tokenURL, when set, is where the
// token requests go instead of the key's token_uri (tests, a private
// endpoint); the assertion's audience stays the token_uri. httpClient, if
// not nil, sends the token requests, and its Timeout (else fetchTimeout)
// bounds them. Apply waits for a token no longer than its ctx allows: the
// token request runs on a goroutine of its own and goes on when the
// caller gives up, so that the next caller finds the token. Apply is safe
// for concurrent use; concurrent callers share one token request; the hot
// path reads the token without a lock. The errors never repeat the secret
// or the token endpoint's answer.
func NewAuth(c *Credential, tokenURL string, httpClient *http.Client) (Auth, error) {
	if tok := strings.TrimSpace(c.AccessToken); tok != "" {
		return accessToken{"Bearer " + tok}, nil
	}
	sa, err := ParseServiceAccount(c.ServiceAccountJSON)
	if err != nil {
		return nil, err
	}
	aud := strings.TrimSpace(sa.TokenURI)
	if aud == "" {
		aud = DefaultTokenURL
	}
	if tokenURL == "" {
		tokenURL = aud
	}
	cfg := &jwt.Config{
		Email:        sa.ClientEmail,
		PrivateKey:   []byte(sa.PrivateKey),
		PrivateKeyID: sa.PrivateKeyID,
		Scopes:       []string{Scope},
		TokenURL:     tokenURL,
		Audience:     aud,
	}
	return &serviceAccount{src: bearer.New("vertex: service account token", httpClient,
		func(ctx context.Context) (*oauth2.Token, error) { return cfg.TokenSource(ctx).Token() })}, nil
}

// accessToken is a token given in the secret: its Authorization value.
type accessToken []string

func (a accessToken) Apply(_ context.Context, h http.Header) error {
	h["Authorization"] = a
	return nil
}

// serviceAccount is a service account's key: its token comes from a
// bearer.Source (read lock-free, refreshed once for every waiter, no wait
// beyond the caller's context).
type serviceAccount struct{ src *bearer.Source }

// refused drops the token h carried when it is the cached one.
func (s *serviceAccount) refused(h http.Header) { s.src.Refused(h["Authorization"]) }

// Refused tells auth that the credential h carried was refused, when auth
// caches a token (a service account); an access token given in the
// secret is left as it is.
func Refused(auth Auth, h http.Header) {
	if sa, ok := auth.(*serviceAccount); ok {
		sa.refused(h)
	}
}

func (s *serviceAccount) Apply(ctx context.Context, h http.Header) error {
	v, err := s.src.Authorization(ctx)
	if err != nil {
		return err
	}
	h["Authorization"] = v
	return nil
}
