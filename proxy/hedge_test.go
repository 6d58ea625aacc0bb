package proxy_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/limit"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

func hedgeRouting(ms int64) storage.Routing {
	return storage.Routing{Hedge: &storage.Hedge{AfterMS: ms}}
}

// slowFirst is a stream whose first content comes after delay; cancelled
// is closed when the proxy cancels the request before then.
func slowFirst(delay time.Duration, cancelled chan<- struct{}) proxytest.Behavior {
	return func(w http.ResponseWriter, c *proxytest.Call) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}]}` + "\n\n"))
		w.(http.Flusher).Flush()
		tm := time.NewTimer(delay)
		defer tm.Stop()
		select {
		case <-c.R.Context().Done():
			close(cancelled)
			return
		case <-tm.C:
		}
		_, _ = w.Write([]byte(`data: {"id":"chatcmpl-slow","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"slow"},"finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n"))
	}
}

// TestHedgeSlowPrimary: a primary slow to its first content (2 s) and a
// fast secondary with after_ms 200: the answer comes from the secondary
// at about 200 ms, the primary's request is cancelled, and the observer
// sees the hedge won by the secondary and lost by the primary.
func TestHedgeSlowPrimary(t *testing.T) {
	cancelled := make(chan struct{})
	primary := upstream(t, "primary", slowFirst(2*time.Second, cancelled))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true}))
	rec := &recorder{}
	e := newEnv(t, pair(primary, secondary, hedgeRouting(200)), withObserver(rec))
	r := e.stream("chat-prod")
	if r.status != http.StatusOK || !r.done() {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	if got := r.content(t); got != "hello from secondary" {
		t.Errorf("content = %q", got)
	}
	if r.took < 200*time.Millisecond || r.took > 1500*time.Millisecond {
		t.Errorf("took %v: want about 200 ms, well under the primary's 2 s", r.took)
	}
	t.Logf("hedged answer in %v (after_ms 200)", r.took)
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-secondary")
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the primary's request was not cancelled")
	}
	wantHits(t, primary, 1)
	wantHits(t, secondary, 1)
	var atts []observe.Attempt
	var reqs []observe.Request
	deadline := time.Now().Add(5 * time.Second)
	for (len(atts) < 2 || len(reqs) < 1) && time.Now().Before(deadline) {
		a, q := rec.take()
		atts, reqs = append(atts, a...), append(reqs, q...)
		if len(atts) < 2 || len(reqs) < 1 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The 200 ms spent waiting on the primary is upstream time, not the
	// gateway's overhead.
	if len(reqs) != 1 || reqs[0].Overhead() >= 100*time.Millisecond {
		t.Errorf("request records %+v: want one, with the wait before the hedge counted as upstream time", reqs)
	}
	var won, lost int
	for _, a := range atts {
		switch a.Hedge {
		case observe.HedgeWon:
			won++
			if a.Target.Name != "gpt-4o-secondary" || !a.OK() {
				t.Errorf("won by %s (%s), want the secondary, ok", a.Target.Name, a.Outcome)
			}
		case observe.HedgeLost:
			lost++
			if a.Target.Name != "gpt-4o-primary" || a.Outcome != observe.OutcomeHedgeLost || a.Reason != observe.OutcomeHedgeLost || a.Cooldown {
				t.Errorf("lost attempt = %s %s/%s cooldown %v", a.Target.Name, a.Outcome, a.Reason, a.Cooldown)
			}
		}
	}
	if won != 1 || lost != 1 {
		t.Errorf("hedge attempts: %d won, %d lost; want 1 and 1 (%+v)", won, lost, atts)
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != "healthy" || st.Failures != 0 {
		t.Errorf("primary = %+v: the hedge's loser is not blamed", st)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-primary=hedge_lost,gpt-4o-secondary=200")
}

// TestHedgeFastPrimary: a primary that sends content before the deadline
// is never hedged.
func TestHedgeFastPrimary(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true}))
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, hedgeRouting(2000)))
	for range 3 {
		r := e.stream("chat-prod")
		if r.status != http.StatusOK || r.content(t) != "hello from primary" {
			t.Fatalf("status %d: %s", r.status, r.raw)
		}
	}
	wantHits(t, primary, 3)
	wantHits(t, secondary, 0)
}

// TestHedgePrimaryFailsDuringHedge: the primary fails before content
// while the hedge runs: the hedge goes on as the next attempt, and the
// walk makes no second failover to it.
func TestHedgePrimaryFailsDuringHedge(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true, FirstDelay: 400 * time.Millisecond, CutBeforeContent: true}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true, FirstDelay: 600 * time.Millisecond}))
	e := newEnv(t, pair(primary, secondary, hedgeRouting(100)))
	r := e.stream("chat-prod")
	if r.status != http.StatusOK || r.content(t) != "hello from secondary" {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	wantHits(t, primary, 1)
	wantHits(t, secondary, 1)
	if st := e.reg.Status("id-gpt-4o-primary"); st.Failures != 1 {
		t.Errorf("primary = %+v: its own failure is recorded", st)
	}
}

// TestHedgeNotWhenNextUnavailable: no hedge when the next target is
// cooling down or at its provider_limit; the slow primary serves.
func TestHedgeNotWhenNextUnavailable(t *testing.T) {
	for _, tc := range []string{"cooling", "provider_limit"} {
		t.Run(tc, func(t *testing.T) {
			primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true, FirstDelay: 400 * time.Millisecond}))
			secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true}))
			ds := pair(primary, secondary, hedgeRouting(50))
			if tc == "provider_limit" {
				ds.Models[1].ProviderLimit = &storage.RateLimit{RPM: 1}
			}
			var lim *limit.Limiter
			e := newEnv(t, ds, func(o *proxy.Options) {
				lim = limit.New(limit.Options{Now: o.Now})
				o.Limiter = lim
			})
			if tc == "cooling" {
				e.reg.Target("id-gpt-4o-secondary").Failed("server_error", "test", time.Hour)
			} else if r := e.stream("gpt-4o-secondary"); r.status != http.StatusOK {
				t.Fatalf("the secondary's one request a minute: %d %s", r.status, r.raw)
			}
			r := e.stream("chat-prod")
			if r.status != http.StatusOK || r.content(t) != "hello from primary" {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			wantHits(t, secondary, map[string]int{"cooling": 0, "provider_limit": 1}[tc])
		})
	}
}

// TestHedgeUnset: without a hedge a slow primary is waited for.
func TestHedgeUnset(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true, FirstDelay: 300 * time.Millisecond}))
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, storage.Routing{}))
	r := e.stream("chat-prod")
	if r.status != http.StatusOK || r.content(t) != "hello from primary" {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	wantHits(t, secondary, 0)
}

// TestHedgeP95: after p95 hedges at the primary's own recent p95 time to
// first content, and not at all while it has fewer than 20 samples.
func TestHedgeP95(t *testing.T) {
	for _, samples := range []int{19, 20} {
		t.Run(strconv.Itoa(samples), func(t *testing.T) {
			cancelled := make(chan struct{})
			delay := map[int]time.Duration{19: 300 * time.Millisecond, 20: 2 * time.Second}[samples]
			primary := upstream(t, "primary", slowFirst(delay, cancelled))
			secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true}))
			e := newEnv(t, pair(primary, secondary, storage.Routing{Hedge: &storage.Hedge{After: storage.HedgeAfterP95}}))
			ht := e.reg.Target("id-gpt-4o-primary")
			for range samples {
				ht.Succeeded(ht.Begin(), 100*time.Millisecond, 50*time.Millisecond)
			}
			r := e.stream("chat-prod")
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			want := map[int]string{19: "slow", 20: "hello from secondary"}[samples]
			if got := r.content(t); got != want {
				t.Errorf("content = %q, want %q", got, want)
			}
			if samples == 20 && r.took > 1500*time.Millisecond {
				t.Errorf("took %v: want about the 50 ms p95, well under the primary's 2 s", r.took)
			}
			wantHits(t, secondary, map[int]int{19: 0, 20: 1}[samples])
		})
	}
}
