package bearer

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// TestSharedFetch: concurrent callers share one fetch, and the token is
// then read without another.
func TestSharedFetch(t *testing.T) {
	var fetches atomic.Int32
	release := make(chan struct{})
	s := New("test token", nil, func(ctx context.Context) (*oauth2.Token, error) {
		fetches.Add(1)
		<-release
		return &oauth2.Token{AccessToken: "tok", Expiry: time.Now().Add(time.Hour)}, nil
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.Authorization(context.Background())
			if err != nil || len(v) != 1 || v[0] != "Bearer tok" {
				t.Errorf("%v %v", v, err)
			}
		}()
	}
	for s.inFlightNow() == nil {
		time.Sleep(time.Millisecond) // waiting for the first caller to start the fetch
	}
	close(release)
	wg.Wait()
	if _, err := s.Authorization(context.Background()); err != nil || fetches.Load() != 1 {
		t.Errorf("fetches %d err %v", fetches.Load(), err)
	}
}

func (s *Source) inFlightNow() *request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight
}

// TestCallerBound: a caller waits no longer than its context; the token
// that arrives later serves the next caller without a second fetch.
func TestCallerBound(t *testing.T) {
	var fetches atomic.Int32
	release := make(chan struct{})
	s := New("test token", nil, func(ctx context.Context) (*oauth2.Token, error) {
		fetches.Add(1)
		<-release
		return &oauth2.Token{AccessToken: "late"}, nil
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Authorization(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Authorization(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "test token request not answered in time") {
		t.Fatalf("bounded caller: %v", err)
	}
	close(release)
	for s.inFlightNow() != nil {
		time.Sleep(time.Millisecond)
	}
	if v, err := s.Authorization(context.Background()); err != nil || v[0] != "Bearer late" || fetches.Load() != 1 {
		t.Errorf("%v %v fetches %d", v, err, fetches.Load())
	}
}

// TestRefreshAndErrors: a token inside the refresh margin is fetched
// again; errors say what kind of failure it was, never the answer.
func TestRefreshAndErrors(t *testing.T) {
	var n atomic.Int32
	s := New("test token", &http.Client{Timeout: time.Second}, func(ctx context.Context) (*oauth2.Token, error) {
		switch n.Add(1) {
		case 1:
			return &oauth2.Token{AccessToken: "short", Expiry: time.Now().Add(RefreshBefore / 2)}, nil
		case 2:
			return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: 401}, Body: []byte(`{"error":"secret-detail"}`)}
		case 3:
			return &oauth2.Token{}, nil
		}
		return nil, errors.New("dial tcp 10.0.0.1:443: refused")
	})
	if v, err := s.Authorization(context.Background()); err != nil || v[0] != "Bearer short" {
		t.Fatalf("%v %v", v, err)
	}
	for i, want := range []string{"test token request refused (401)", "test token request answered no access_token", "test token request failed"} {
		_, err := s.Authorization(context.Background())
		if err == nil || err.Error() != want {
			t.Errorf("fetch %d: %v, want %q", i+2, err, want)
		}
	}
}

// TestRefused: a refused token is dropped and fetched again; a refusal of
// a token that was already replaced drops nothing.
func TestRefused(t *testing.T) {
	var n atomic.Int32
	s := New("test token", nil, func(ctx context.Context) (*oauth2.Token, error) {
		i := n.Add(1)
		return &oauth2.Token{AccessToken: "tok" + string(rune('0'+i)), Expiry: time.Now().Add(time.Hour)}, nil
	})
	old, err := s.Authorization(context.Background())
	if err != nil || old[0] != "Bearer tok1" {
		t.Fatalf("%v %v", old, err)
	}
	s.Refused([]string{"Bearer someone-else"})
	if v, _ := s.Authorization(context.Background()); v[0] != "Bearer tok1" || n.Load() != 1 {
		t.Errorf("a foreign refusal dropped the token: %v, %d fetches", v, n.Load())
	}
	s.Refused(old)
	cur, _ := s.Authorization(context.Background())
	if cur[0] != "Bearer tok2" || n.Load() != 2 {
		t.Errorf("after the refusal: %v, %d fetches", cur, n.Load())
	}
	s.Refused(old) // a late refusal of the old token
	if v, _ := s.Authorization(context.Background()); v[0] != "Bearer tok2" || n.Load() != 2 {
		t.Errorf("a late refusal dropped the new token: %v, %d fetches", v, n.Load())
	}
}
