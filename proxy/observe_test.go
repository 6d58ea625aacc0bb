package proxy_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// recorder is an Observer that keeps a copy of every record.
type recorder struct {
	mu       sync.Mutex
	attempts []observe.Attempt
	requests []observe.Request
}

func (r *recorder) Attempt(a *observe.Attempt) {
	r.mu.Lock()
	r.attempts = append(r.attempts, *a)
	r.mu.Unlock()
}

func (r *recorder) Request(q *observe.Request) {
	r.mu.Lock()
	r.requests = append(r.requests, *q)
	r.mu.Unlock()
}

// take returns the records so far and forgets them. The request record is
// handed over before the handler returns, so it is in once the answer is
// read.
func (r *recorder) take() ([]observe.Attempt, []observe.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	a, q := r.attempts, r.requests
	r.attempts, r.requests = nil, nil
	return a, q
}

func withObserver(o observe.Observer) envOption {
	return func(opts *proxy.Options) { opts.Observer = o }
}

// TestObserverPlainAndStream: one attempt and one request record per
// answered request, with the upstream's usage; a stream whose caller set no
// stream_options is counted (the gateway asks for the usage chunk) and the
// caller does not see the chunk; a caller that asked for it does.
func TestObserverPlainAndStream(t *testing.T) {
	up := upstream(t, "up")
	rec := &recorder{}
	e := newEnv(t, pair(up, upstream(t, "sec"), storage.Routing{}), withObserver(rec))

	r := e.chat("chat-prod")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if r.header.Get("X-Aisix-Overhead-Ms") == "" {
		t.Error("no x-aisix-overhead-ms")
	}
	atts, reqs := rec.take()
	if len(atts) != 1 || len(reqs) != 1 {
		t.Fatalf("%d attempts, %d requests, want 1 and 1", len(atts), len(reqs))
	}
	a, q := atts[0], reqs[0]
	if !a.OK() || a.Status != 200 || a.Target.Name != "gpt-4o-primary" || a.Model.Name != "chat-prod" || a.Key.ID != "key-1" || a.N != 1 || a.From != nil {
		t.Errorf("attempt = %+v", a)
	}
	if a.Usage.Input != 10 || a.Usage.Output != 9 {
		t.Errorf("attempt usage = %+v, want 10 in, 9 out", a.Usage)
	}
	if q.Outcome != observe.OutcomeOK || q.Status != 200 || q.ServedBy != a.Target || q.Usage != a.Usage || q.Alias != "chat-prod" ||
		q.Attempts != 1 || q.Failovers != 0 || q.Latency < q.Upstream || q.Upstream <= 0 || q.Wire != "openai" {
		t.Errorf("request = %+v", q)
	}

	s := e.stream("chat-prod")
	if s.status != 200 || !s.done() {
		t.Fatalf("stream: %d %s", s.status, s.raw)
	}
	if strings.Contains(s.raw, `"usage"`) {
		t.Errorf("the caller got a usage chunk it did not ask for:\n%s", s.raw)
	}
	if got := string(up.Requests()[1].Body); !strings.Contains(got, `"stream_options":{"include_usage":true}`) {
		t.Errorf("upstream stream body did not ask for usage: %s", got)
	}
	atts, reqs = rec.take()
	if len(atts) != 1 || atts[0].Usage.Input != 10 || atts[0].Usage.Output != 9 || atts[0].TTFT <= 0 || !atts[0].Stream {
		t.Errorf("stream attempts = %+v", atts)
	}
	if len(reqs) != 1 || reqs[0].TTFT <= 0 || reqs[0].Usage.Output != 9 {
		t.Errorf("stream request = %+v", reqs)
	}

	body := `{"model":"chat-prod","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`
	s = e.sse("/v1/chat/completions", callerKey, body)
	if !strings.Contains(s.raw, `"usage":{"prompt_tokens":10`) {
		t.Errorf("the caller asked for the usage chunk and did not get it:\n%s", s.raw)
	}
	if got := string(up.Requests()[2].Body); strings.Count(got, "stream_options") != 1 {
		t.Errorf("upstream body = %s", got)
	}
}

// TestObserverFailover: a failed attempt is recorded with its trail label,
// reason and cooldown; the next attempt names the target it failed over
// from; the request counts one failover.
func TestObserverFailover(t *testing.T) {
	rec := &recorder{}
	e := newEnv(t, pair(upstream(t, "pri", proxytest.RateLimited("")), upstream(t, "sec"), storage.Routing{}), withObserver(rec))
	r := e.chat("chat-prod")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	atts, reqs := rec.take()
	if len(atts) != 2 || len(reqs) != 1 {
		t.Fatalf("%d attempts, %d requests", len(atts), len(reqs))
	}
	f, ok := atts[0], atts[1]
	if f.OK() || f.Outcome != "429" || f.Reason == "" || f.Status != 429 || !f.Cooldown || f.Target.Name != "gpt-4o-primary" {
		t.Errorf("failed attempt = %+v", f)
	}
	if !ok.OK() || ok.From == nil || ok.From.Name != "gpt-4o-primary" || ok.N != 2 {
		t.Errorf("second attempt = %+v", ok)
	}
	if q := reqs[0]; q.Failovers != 1 || q.Attempts != 2 || q.ServedBy == nil || q.ServedBy.Name != "gpt-4o-secondary" {
		t.Errorf("request = %+v", q)
	}

	// A refused request is a request record with no attempt.
	r = e.do("POST", "/v1/chat/completions", "sk-wrong", chatBody("chat-prod", false))
	atts, reqs = rec.take()
	if r.status != 401 || len(atts) != 0 || len(reqs) != 1 || reqs[0].Key != nil || reqs[0].Outcome != observe.OutcomeError || reqs[0].Status != 401 {
		t.Errorf("refused: %d, attempts %+v, requests %+v", r.status, atts, reqs)
	}
}

// TestObserverAnthropicUsage: a translated stream reports its upstream's
// usage even though the caller asked for no usage chunk.
func TestObserverAnthropicUsage(t *testing.T) {
	rec := &recorder{}
	ant := anthropicUpstream(t, "ant")
	e := newEnv(t, mixed(ant, upstream(t, "oai"), true, storage.Routing{}), withObserver(rec))
	for _, stream := range []bool{false, true} {
		if stream {
			if s := e.stream("chat-prod"); s.status != 200 || strings.Contains(s.raw, `"usage"`) {
				t.Fatalf("stream: %d %s", s.status, s.raw)
			}
		} else if r := e.chat("chat-prod"); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		atts, _ := rec.take()
		if len(atts) != 1 || atts[0].Target.Name != claude || atts[0].Usage.Input == 0 || atts[0].Usage.Output == 0 {
			t.Errorf("stream %v: attempts = %+v", stream, atts)
		}
	}
}

// TestTargetUsageCounters: an answered request's tokens are counted on its
// target's runtime state (the dashboard's rates), with or without an
// observer; a failed attempt counts none.
func TestTargetUsageCounters(t *testing.T) {
	for _, withObs := range []bool{false, true} {
		var opts []envOption
		if withObs {
			opts = append(opts, withObserver(&recorder{}))
		}
		e := newEnv(t, pair(upstream(t, "pri", proxytest.RateLimited("")), upstream(t, "sec"), storage.Routing{}), opts...)
		if r := e.chat("chat-prod"); r.status != 200 {
			t.Fatalf("status %d", r.status)
		}
		if s := e.stream("chat-prod"); s.status != 200 {
			t.Fatalf("stream %d", s.status)
		}
		if st := e.reg.Status("id-gpt-4o-secondary"); st.TokensIn != 20 || st.TokensOut != 18 || st.CostUSD != 0 {
			t.Errorf("observer %v: secondary status = %+v, want 20 in, 18 out", withObs, st)
		}
		if st := e.reg.Status("id-gpt-4o-primary"); st.TokensIn != 0 {
			t.Errorf("observer %v: the failing primary counted tokens: %+v", withObs, st)
		}
	}
}
