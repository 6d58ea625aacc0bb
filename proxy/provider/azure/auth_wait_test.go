package azure_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/provider/azure"
)

// TestEntraAuthWaitsNoLongerThanCtx: a token endpoint that does not
// answer holds Apply only as long as its ctx allows; the token request
// goes on, and the next Apply gets its answer without a second request.
func TestEntraAuthWaitsNoLongerThanCtx(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 4)
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"tok-late"}`)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	// A client without a Timeout: only the ctx bounds the wait.
	a, err := azure.NewAuth(`{"tenant_id":"tenant-1","client_id":"client-1","client_secret":"s3cret"}`, srv.URL, &http.Client{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = a.Apply(ctx, http.Header{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply on a silent token endpoint: %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Apply took %v past its 100 ms deadline", took)
	}
	<-arrived
	close(release)
	h := http.Header{}
	if err := a.Apply(t.Context(), h); err != nil || h.Get("Authorization") != "Bearer tok-late" {
		t.Fatalf("Apply after the answer: %v, Authorization %q", err, h.Get("Authorization"))
	}
	if got := n.Load(); got != 1 {
		t.Errorf("%d token requests, want 1 (the late answer is used)", got)
	}
}
