// Package bearer keeps the OAuth2 bearer token of one provider key: read
// without a lock on every request, fetched again a minute before it
// expires, one fetch shared by every request that needs it, and no
// request waiting on a fetch longer than its own context allows (the fetch
// runs on a goroutine of its own, bounded by the HTTP client's timeout,
// and a token that arrives late is kept for the next request). Azure's
// Entra ID and Vertex's service-account credentials use it.
package bearer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// RefreshBefore is how long before its expiry a cached token is replaced,
// so that a request never leaves with a token about to lapse.
const RefreshBefore = 60 * time.Second

// FetchTimeout bounds a token request when the HTTP client sets no
// timeout of its own.
const FetchTimeout = 30 * time.Second

// Fetch gets a token; ctx carries the HTTP client (oauth2.HTTPClient) and
// the fetch's bound.
type Fetch func(ctx context.Context) (*oauth2.Token, error)

// Source is one credential's token. It is safe for concurrent use.
type Source struct {
	name   string // "azure: entra id token", for errors
	fetch  Fetch
	client *http.Client // nil: oauth2's default
	cur    atomic.Pointer[token]

	mu       sync.Mutex
	inFlight *request // the token request in flight, if any
}

// token is a token and its Authorization value.
type token struct {
	expiry time.Time // zero: never expires
	value  []string
}

// stale reports whether t is missing or due for replacement.
func (t *token) stale() bool {
	return t == nil || (!t.expiry.IsZero() && time.Until(t.expiry) <= RefreshBefore)
}

// request is one token request; done is closed when t or err is set.
type request struct {
	done chan struct{}
	t    *token
	err  error
}

// New returns the source of a credential named name in its errors
// ("vertex: service account token"), whose tokens fetch gets through
// client.
func New(name string, client *http.Client, fetch Fetch) *Source {
	return &Source{name: name, fetch: fetch, client: client}
}

// Authorization is the Authorization header value, ["Bearer <token>"],
// fetched first when there is no fresh token. The slice is shared: do not
// modify it. Its errors never repeat the token endpoint's answer.
func (s *Source) Authorization(ctx context.Context) ([]string, error) {
	t := s.cur.Load()
	if t.stale() {
		var err error
		if t, err = s.refresh(ctx); err != nil {
			return nil, err
		}
	}
	return t.value, nil
}

// Refused drops the cached token when it is the one whose Authorization
// value the upstream refused (a 401: revoked, rotated, or signed by a key
// that was replaced), so the next request fetches a new one instead of
// sending the refused token until it expires. A value that is no longer
// the cached one (a concurrent refresh replaced it) changes nothing.
func (s *Source) Refused(value []string) {
	t := s.cur.Load()
	if t != nil && len(value) == 1 && len(t.value) == 1 && value[0] == t.value[0] {
		s.cur.CompareAndSwap(t, nil)
	}
}

// refresh returns a fresh token: the one a concurrent refresh just got,
// or the answer of the token request in flight, started if there is none.
func (s *Source) refresh(ctx context.Context) (*token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if t := s.cur.Load(); !t.stale() {
		s.mu.Unlock()
		return t, nil
	}
	r := s.inFlight
	if r == nil {
		r = &request{done: make(chan struct{})}
		s.inFlight = r
		go s.run(r)
	}
	s.mu.Unlock()
	select {
	case <-r.done:
		return r.t, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s request not answered in time: %w", s.name, ctx.Err())
	}
}

// run makes the token request r.
func (s *Source) run(r *request) {
	ctx := context.Background()
	if s.client != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, s.client)
	}
	if s.client == nil || s.client.Timeout <= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, FetchTimeout)
		defer cancel()
	}
	tok, err := s.fetch(ctx)
	switch {
	case err == nil && tok != nil && tok.AccessToken != "":
		r.t = &token{expiry: tok.Expiry, value: []string{"Bearer " + tok.AccessToken}}
		s.cur.Store(r.t)
	case err == nil:
		r.err = fmt.Errorf("%s request answered no access_token", s.name)
	default:
		// oauth2's error can quote the token endpoint's answer or URL;
		// say only what kind of failure it was.
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil {
			r.err = fmt.Errorf("%s request refused (%d)", s.name, re.Response.StatusCode)
		} else {
			r.err = fmt.Errorf("%s request failed", s.name)
		}
	}
	s.mu.Lock()
	s.inFlight = nil
	s.mu.Unlock()
	close(r.done)
}
