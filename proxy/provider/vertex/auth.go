package vertex

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/jwt"
)

// Scope is the OAuth2 scope of a token for Vertex AI.
const Scope = "https://www.googleapis.com/auth/cloud-platform"

// DefaultTokenURL is Google's OAuth2 token endpoint, the token_uri of
// every service account key Google issues.
const DefaultTokenURL = "https://oauth2.googleapis.com/token"

// refreshBefore is how long before its expiry a cached token is replaced,
// so that a request never leaves with a token about to lapse.
const refreshBefore = 60 * time.Second

// fetchTimeout bounds a token request when the HTTP client sets no
// Timeout of its own.
const fetchTimeout = 30 * time.Second

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
	return &serviceAccount{cfg: cfg, client: httpClient}, nil
}

// accessToken is a token given in the secret: its Authorization value.
type accessToken []string

func (a accessToken) Apply(_ context.Context, h http.Header) error {
	h["Authorization"] = a
	return nil
}

// serviceAccount holds a service account's key and its current token.
// The token and its header value sit in an atomic, so a request reads
// them without a lock; only a refresh takes mu, to join the token request
// in flight or start one.
type serviceAccount struct {
	cfg    *jwt.Config
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

func (s *serviceAccount) Apply(ctx context.Context, h http.Header) error {
	b := s.cur.Load()
	if b.stale() {
		var err error
		if b, err = s.refresh(ctx); err != nil {
			return err
		}
	}
	h["Authorization"] = b.value
	return nil
}

// refresh returns a fresh token: the one a concurrent refresh just got,
// or the answer of the token request in flight, started if there is
// none. It waits no longer than ctx allows.
func (s *serviceAccount) refresh(ctx context.Context) (*bearer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if b := s.cur.Load(); !b.stale() {
		s.mu.Unlock()
		return b, nil
	}
	f := s.fetch
	if f == nil {
		f = &tokenFetch{done: make(chan struct{})}
		s.fetch = f
		go s.run(f)
	}
	s.mu.Unlock()
	select {
	case <-f.done:
		return f.b, f.err
	case <-ctx.Done():
		return nil, fmt.Errorf("vertex: service account token request not answered in time: %w", ctx.Err())
	}
}

// run makes the token request of f.
func (s *serviceAccount) run(f *tokenFetch) {
	ctx := context.Background()
	if s.client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	}
	if s.client == nil || s.client.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, fetchTimeout)
		defer cancel()
	}
	tok, err := s.cfg.TokenSource(ctx).Token()
	switch {
	case err == nil && tok.AccessToken != "":
		f.b = &bearer{expiry: tok.Expiry, value: []string{"Bearer " + tok.AccessToken}}
		s.cur.Store(f.b)
	case err == nil:
		f.err = errors.New("vertex: service account token request answered no access_token")
	default:
		// oauth2's error can quote the token endpoint's answer or URL;
		// say only what kind of failure it was.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			f.err = fmt.Errorf("vertex: service account token request refused (%d)", re.Response.StatusCode)
		} else {
			f.err = errors.New("vertex: service account token request failed")
		}
	}
	s.mu.Lock()
	s.fetch = nil
	s.mu.Unlock()
	close(f.done)
}
