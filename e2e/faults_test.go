package e2e

// Issue 9, "failover that keeps its promise with no tuning": misbehaving
// upstreams against the real `aisix serve`, set up as in the product
// tutorial. The tests that need the real default timeouts (no timeout set
// anywhere) take 20-35 s each, run in parallel, and skip under -short; the
// others set small per-model timeouts.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestUpstreamStreamDefaults: the tutorial as printed, no timeouts anywhere; a
// stream is still bounded (headers 30 s, first content 60 s from the start,
// gaps 20 s) and a slow first token is not mistaken for a dead upstream.
// streamed is one streaming chat-prod request read to its end.
type streamed struct {
	resp         *http.Response // its body is read and closed
	evs          []sseEvent
	headersAfter time.Duration // from the request to the response headers
	took         time.Duration // from the request to the end of the stream
	readErr      error
}

// streamChatProd starts serve with the tutorial's setup over the two
// upstreams and no timeouts (the defaults are what these tests measure),
// sends one streaming chat-prod request bounded by within, and reads the
// whole stream.
func streamChatProd(t *testing.T, primaryBase, secondaryBase string, within time.Duration) streamed {
	t.Helper()
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, primaryBase, secondaryBase, tutorialConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	start := time.Now()
	resp, err := g.chat(ctx, callerKey, chatBody("chat-prod", true), nil)
	if err != nil {
		t.Fatalf("no response headers within %v (the stream header default is 30s): %v", within, err)
	}
	defer resp.Body.Close()
	st := streamed{resp: resp, headersAfter: time.Since(start)}
	st.evs, st.readErr = readSSE(resp.Body, start, nil)
	st.took = time.Since(start)
	return st
}

func TestUpstreamStreamDefaults(t *testing.T) {
	slow(t)

	t.Run("silent primary fails over within 35s and is tried once", func(t *testing.T) {
		t.Parallel()
		primary := newSilentUpstream(t)
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		st := streamChatProd(t, primary.base, secondary.base, 50*time.Second)
		resp, evs, took := st.resp, st.evs, st.headersAfter
		if st.readErr != nil {
			t.Fatalf("reading the stream: %v", st.readErr)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if got := resp.Header.Get("X-Aisix-Served-By"); got != "gpt-4o-secondary" {
			t.Errorf("x-aisix-served-by %q, want gpt-4o-secondary (attempts %q)", got, resp.Header.Get("X-Aisix-Attempts"))
		}
		if took > 35*time.Second {
			t.Errorf("failed over after %v, want within 35s", took)
		}
		if len(evs) == 0 || evs[len(evs)-1].data != "[DONE]" {
			t.Errorf("the secondary's stream did not end with [DONE]: %v", evs)
		}
		if n, c := primary.reqs.Load(), primary.conns.Load(); n != 1 || c != 1 {
			t.Errorf("the silent primary saw %d requests on %d connections, want exactly 1 (no same-target retry)", n, c)
		}
	})

	t.Run("stream that stalls after 20 chunks ends with an error frame within 45s", func(t *testing.T) {
		t.Parallel()
		primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
			s := startSSE(w, c)
			if !s.role() {
				return
			}
			for i := range 20 {
				if !s.content(fmt.Sprintf("tok%d ", i)) {
					return
				}
			}
			c.hang() // the connection stays open, nothing more comes
		})
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		st := streamChatProd(t, primary.base, secondary.base, 60*time.Second)
		resp, evs, took := st.resp, st.evs, st.took
		if st.readErr != nil {
			t.Fatalf("the stream did not end within 60s (idle default 20s): %v after %d events", st.readErr, len(evs))
		}
		if resp.StatusCode != http.StatusOK || resp.Header.Get("X-Aisix-Served-By") != "gpt-4o-primary" {
			t.Fatalf("status %d served by %q, want a 200 stream from gpt-4o-primary", resp.StatusCode, resp.Header.Get("X-Aisix-Served-By"))
		}
		var content strings.Builder
		for _, ev := range evs {
			content.WriteString(contentOf(ev))
			if ev.data == "[DONE]" {
				t.Errorf("the stalled stream ended with data: [DONE]")
			}
		}
		if want := wantTokens(20); content.String() != want {
			t.Errorf("relayed content %q, want %q", content.String(), want)
		}
		if len(evs) == 0 || evs[len(evs)-1].name != "error" {
			t.Errorf("the stream did not end with an `event: error` frame; events: %v", evs)
		}
		if took > 45*time.Second {
			t.Errorf("the stalled stream ended after %v, want within 45s of the request", took)
		}
		if n := secondary.hits.Load(); n != 0 {
			t.Errorf("a committed stream failed over: the secondary saw %d requests", n)
		}
		waitClosed(t, primary.next(t, time.Second).gone, 10*time.Second, "aisix never cancelled the stalled upstream request")
	})

	t.Run("first token after 21s is relayed, not cut or failed over", func(t *testing.T) {
		t.Parallel()
		primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
			s := startSSE(w, c)
			// Headers and the role chunk at once, like OpenAI; the first
			// content token only after longer than the 20 s gap bound.
			if !s.role() || !c.wait(21*time.Second) {
				return
			}
			_ = s.content("slow ") && s.content("thinker") && s.finish()
		})
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		st := streamChatProd(t, primary.base, secondary.base, 55*time.Second)
		resp, evs := st.resp, st.evs
		if st.readErr != nil {
			t.Fatalf("reading the stream: %v", st.readErr)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		if got := resp.Header.Get("X-Aisix-Attempts"); got != "gpt-4o-primary=200" {
			t.Errorf("x-aisix-attempts %q, want gpt-4o-primary=200", got)
		}
		var content strings.Builder
		for _, ev := range evs {
			content.WriteString(contentOf(ev))
			if ev.name == "error" {
				t.Errorf("the stream carried an error frame: %s", ev.data)
			}
		}
		if content.String() != "slow thinker" {
			t.Errorf("relayed content %q, want %q", content.String(), "slow thinker")
		}
		if len(evs) == 0 || evs[len(evs)-1].data != "[DONE]" {
			t.Errorf("the stream did not end with [DONE]")
		}
		if n := secondary.hits.Load(); n != 0 {
			t.Errorf("failed over: the secondary saw %d requests", n)
		}
		if n := primary.hits.Load(); n != 1 {
			t.Errorf("the primary saw %d requests, want 1", n)
		}
	})
}

func wantTokens(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "tok%d ", i)
	}
	return b.String()
}

// waitClosed waits for ch to be closed.
func waitClosed(t testing.TB, ch <-chan struct{}, within time.Duration, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Errorf("%s (waited %v)", msg, within)
	}
}

// TestUpstreamSilentNonStreaming: a non-streaming attempt is bounded by the
// model's timeout, and a silent upstream fails over at once.
func TestUpstreamSilentNonStreaming(t *testing.T) {
	primary := newSilentUpstream(t)
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{direct: map[string]any{"timeout": 1000}})

	a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
	if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
		t.Fatalf("status %d served by %q (attempts %q), want 200 from gpt-4o-secondary: %s",
			a.status, a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"), a.body)
	}
	if a.elapsed > 10*time.Second {
		t.Errorf("failed over after %v with a 1000 ms timeout", a.elapsed)
	}
	if n := primary.reqs.Load(); n != 1 {
		t.Errorf("the silent primary saw %d requests, want 1 (no same-target retry)", n)
	}
	if re := regexp.MustCompile(`^gpt-4o-primary=[a-z_]+,gpt-4o-secondary=200$`); !re.MatchString(a.header.Get("X-Aisix-Attempts")) {
		t.Errorf("x-aisix-attempts %q, want one timed-out primary attempt then the secondary", a.header.Get("X-Aisix-Attempts"))
	}
}

// OpenAI-shaped error bodies.
const (
	bodyBadRequest = `{"error":{"message":"Invalid value for 'temperature': expected a number between 0 and 2.","type":"invalid_request_error","param":"temperature","code":"decimal_above_max_value"}}`
	bodyServer     = `{"error":{"message":"The server had an error while processing your request. Sorry about that!","type":"server_error","param":null,"code":null}}`
)

// TestUpstreamStatusClassification: which upstream statuses fail over and
// cool the target, and which are the caller's and come back at once.
func TestUpstreamStatusClassification(t *testing.T) {
	failover := []struct {
		status int
		body   string
		reason string
	}{
		{401, `{"error":{"message":"Incorrect API key provided: sk-prov***********0001. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}`, "upstream_auth_failure"},
		{403, `{"error":{"message":"Country, region, or territory not supported","type":"request_forbidden","param":null,"code":"unsupported_country_region_territory"}}`, "upstream_forbidden"},
		{404, "{\"error\":{\"message\":\"The model `gpt-4o-mini` does not exist or you do not have access to it.\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"model_not_found\"}}", "upstream_model_not_found"},
		{408, `{"error":{"message":"Request timed out.","type":"timeout","param":null,"code":null}}`, "upstream_request_timeout"},
		{429, `{"error":{"message":"Rate limit reached for gpt-4o-mini on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":"requests","code":"rate_limit_exceeded"}}`, "upstream_rate_limited"},
		{500, bodyServer, "upstream_server_error"},
		{503, `{"error":{"message":"The engine is currently overloaded, please try again later.","type":"server_error","param":null,"code":null}}`, "upstream_server_error"},
	}
	for _, tc := range failover {
		t.Run(fmt.Sprintf("%d fails over and cools the primary", tc.status), func(t *testing.T) {
			primary := newUpstream(t, "primary", "", errorReply(tc.status, tc.body))
			secondary := newUpstream(t, "secondary", "", okReply("secondary"))
			g := startGateway(t, serveOptions{})
			setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

			a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
			if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
				t.Fatalf("status %d served by %q (attempts %q), want 200 from gpt-4o-secondary: %s",
					a.status, a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"), a.body)
			}
			re := regexp.MustCompile(fmt.Sprintf(`^(gpt-4o-primary=%d,)+gpt-4o-secondary=200$`, tc.status))
			if got := a.header.Get("X-Aisix-Attempts"); !re.MatchString(got) {
				t.Errorf("x-aisix-attempts %q, want it to match %s", got, re)
			}
			row := g.status(t, "gpt-4o-primary")
			if row.Status != "cooldown" || row.StatusReason != tc.reason {
				t.Errorf("gpt-4o-primary status %q reason %q, want cooldown %q: %s", row.Status, row.StatusReason, tc.reason, row.raw)
			}
		})
	}

	returned := []struct {
		status      int
		body        string
		param, code any
	}{
		{400, bodyBadRequest, "temperature", "decimal_above_max_value"},
		{413, `{"error":{"message":"Request too large for gpt-4o-mini: the request body is larger than the model accepts.","type":"invalid_request_error","param":"messages","code":"request_too_large"}}`, "messages", "request_too_large"},
		{422, `{"error":{"message":"Unprocessable request: 'messages' must not be empty.","type":"invalid_request_error","param":"messages","code":"unprocessable_entity"}}`, "messages", "unprocessable_entity"},
	}
	for _, tc := range returned {
		t.Run(fmt.Sprintf("%d is returned at once", tc.status), func(t *testing.T) {
			primary := newUpstream(t, "primary", "", errorReply(tc.status, tc.body))
			secondary := newUpstream(t, "secondary", "", okReply("secondary"))
			g := startGateway(t, serveOptions{})
			setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

			a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
			if a.status != tc.status {
				t.Fatalf("status %d, want %d: %s", a.status, tc.status, a.body)
			}
			_, typ, param, code := a.envelope(t)
			if typ != "invalid_request_error" || param != tc.param || code != tc.code {
				t.Errorf("envelope type %q param %v code %v, want the upstream's invalid_request_error %v %v", typ, param, code, tc.param, tc.code)
			}
			if n := secondary.hits.Load(); n != 0 {
				t.Errorf("the secondary was called %d times", n)
			}
			if n := primary.hits.Load(); n != 1 {
				t.Errorf("the primary was called %d times, want 1", n)
			}
			if row := g.status(t, "gpt-4o-primary"); row.Status != "healthy" || row.CooldownUntil != nil {
				t.Errorf("the caller's error cooled the primary: %s", row.raw)
			}
		})
	}
}

// leaky holds what an upstream error message may carry that must never reach
// a caller or the log: account ids, a key fragment, internal addresses.
var leaky = []string{
	"org-abc123def456ghi789",
	"proj_Xy12AbCd34Ef56",
	"sk-abc",
	"wxyz",
	"10.1.2.3",
	"/internal",
	"inference-7.internal.corp",
}

const leakyMessage = "Project proj_Xy12AbCd34Ef56 in organization org-abc123def456ghi789 rejected the request. " +
	"Incorrect API key provided: sk-abc***************************wxyz. " +
	"Upstream http://10.1.2.3:8080/internal (inference-7.internal.corp) could not parse 'messages'."

// TestUpstreamErrorRedaction: an upstream error body is not relayed verbatim.
func TestUpstreamErrorRedaction(t *testing.T) {
	leaks := func(t *testing.T, where, text string) {
		t.Helper()
		var found []string
		for _, s := range leaky {
			if strings.Contains(text, s) {
				found = append(found, s)
			}
		}
		if len(found) > 0 {
			t.Errorf("%s contains %q:\n%s", where, found, tail(text, 3000))
		}
	}

	t.Run("returned 400 keeps type, code and param and drops the fragments", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"message": leakyMessage, "type": "invalid_request_error", "param": "messages", "code": "invalid_value",
		}})
		primary := newUpstream(t, "primary", "", errorReply(http.StatusBadRequest, string(body)))
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		g := startGateway(t, serveOptions{})
		setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

		a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
		if a.status != http.StatusBadRequest {
			t.Fatalf("status %d, want 400: %s", a.status, a.body)
		}
		msg, typ, param, code := a.envelope(t)
		if typ != "invalid_request_error" || param != "messages" || code != "invalid_value" {
			t.Errorf("envelope type %q param %v code %v, want invalid_request_error messages invalid_value", typ, param, code)
		}
		if strings.TrimSpace(msg) == "" {
			t.Errorf("the message is empty")
		}
		leaks(t, "the caller's response", a.dump())
		g.accessLine(t, a.header.Get("X-Aisix-Call-Id"), 10*time.Second)
		leaks(t, "serve's log", g.log.String())
	})

	t.Run("401 with a key fragment fails over and leaves no trace", func(t *testing.T) {
		body, _ := json.Marshal(map[string]any{"error": map[string]any{
			"message": leakyMessage, "type": "invalid_request_error", "param": nil, "code": "invalid_api_key",
		}})
		primary := newUpstream(t, "primary", "", errorReply(http.StatusUnauthorized, string(body)))
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		g := startGateway(t, serveOptions{})
		setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

		a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
		if a.status != http.StatusOK {
			t.Fatalf("status %d, want 200 from the secondary: %s", a.status, a.body)
		}
		leaks(t, "the caller's response", a.dump())
		g.accessLine(t, a.header.Get("X-Aisix-Call-Id"), 10*time.Second)
		leaks(t, "serve's log", g.log.String())
		_, st := g.adminDo(t, http.MethodGet, "/admin/v1/models/status", nil)
		leaks(t, "models/status", string(st))
	})
}

// TestUpstreamRetryAfter: an upstream Retry-After sets the cooldown only when it is
// a sane number of seconds.
func TestUpstreamRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		retryAfter string
		min, max   time.Duration
	}{
		{"NaN", 15 * time.Second, 60 * time.Second},
		{"-5", 15 * time.Second, 60 * time.Second},
		{"1e12", 15 * time.Second, 60 * time.Second},
		{"7", 3 * time.Second, 10 * time.Second},
	} {
		t.Run("Retry-After "+tc.retryAfter, func(t *testing.T) {
			primary := newUpstream(t, "primary", "", errorReply(http.StatusTooManyRequests,
				`{"error":{"message":"Rate limit reached for gpt-4o-mini.","type":"requests","param":null,"code":"rate_limit_exceeded"}}`,
				"Retry-After", tc.retryAfter))
			secondary := newUpstream(t, "secondary", "", okReply("secondary"))
			g := startGateway(t, serveOptions{})
			setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

			a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
			if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
				t.Fatalf("status %d served by %q (attempts %q), want 200 from gpt-4o-secondary",
					a.status, a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"))
			}
			row := g.status(t, "gpt-4o-primary")
			if row.Status != "cooldown" {
				t.Fatalf("gpt-4o-primary is %q, want cooldown: %s", row.Status, row.raw)
			}
			if left := row.cooldownLeft(); left < tc.min || left > tc.max {
				t.Errorf("cooldown ends in %v, want %v-%v: %s", left.Round(time.Second), tc.min, tc.max, row.raw)
			}
		})
	}
}

// TestUpstreamRoutingBudget: running out of the routing budget is nobody's fault:
// the target that happened to be running is not cooled.
func TestUpstreamRoutingBudget(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%t: 504 and no cooldown", stream), func(t *testing.T) {
			primary := newSilentUpstream(t)
			secondary := newSilentUpstream(t)
			g := startGateway(t, serveOptions{})
			setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{routing: map[string]any{"timeout": 500}})

			a := g.mustChat(t, callerKey, chatBody("chat-prod", stream), nil, 30*time.Second)
			if a.status != http.StatusGatewayTimeout {
				t.Fatalf("status %d, want 504: %s", a.status, a.body)
			}
			if a.elapsed > 10*time.Second {
				t.Errorf("answered after %v with a 500 ms routing budget", a.elapsed)
			}
			select {
			case <-primary.closed:
			case <-time.After(10 * time.Second):
				t.Errorf("aisix kept the primary's request open after the budget ran out")
			}
			if n := secondary.reqs.Load(); n != 0 {
				t.Errorf("the secondary saw %d requests; the budget ran out on the primary", n)
			}
			for _, name := range []string{"gpt-4o-primary", "gpt-4o-secondary"} {
				if row := g.status(t, name); row.Status != "healthy" || row.CooldownUntil != nil {
					t.Errorf("%s was cooled by the routing budget: %s", name, row.raw)
				}
			}
		})
	}
}

// TestUpstreamNoFlapping: a success of a request sent before the cooldown was armed
// says nothing about the target now, and must not end the cooldown.
func TestUpstreamNoFlapping(t *testing.T) {
	release := make(chan struct{})
	held := func(w http.ResponseWriter, c *upstreamCall) {
		select {
		case <-release:
		case <-c.r.Context().Done():
			return
		case <-c.done:
			return
		}
		okReply("primary")(w, c)
	}
	primary := newUpstream(t, "primary", "", script(held, errorReply(http.StatusInternalServerError, bodyServer)))
	secondary := newUpstream(t, "secondary", "", okReply("secondary"))
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{direct: map[string]any{"timeout": 30000}})

	resA := make(chan answer, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		resp, err := g.chat(ctx, callerKey, chatBody("chat-prod", false), nil)
		if err != nil {
			resA <- answer{status: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		var a answer
		a.status, a.header = resp.StatusCode, resp.Header
		a.body, _ = io.ReadAll(resp.Body)
		resA <- a
	}()
	primary.next(t, 30*time.Second) // A is at the primary, held

	b := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
	if b.status != http.StatusOK || b.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" {
		t.Fatalf("request B: status %d served by %q (attempts %q), want 200 from gpt-4o-secondary",
			b.status, b.header.Get("X-Aisix-Served-By"), b.header.Get("X-Aisix-Attempts"))
	}
	if row := g.status(t, "gpt-4o-primary"); row.Status != "cooldown" {
		t.Fatalf("after B's 500s the primary is %q, want cooldown: %s", row.Status, row.raw)
	}

	close(release)
	var a answer
	select {
	case a = <-resA:
	case <-time.After(60 * time.Second):
		t.Fatal("request A never finished")
	}
	if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "gpt-4o-primary" {
		t.Fatalf("request A: status %d served by %q, want 200 from gpt-4o-primary: %s", a.status, a.header.Get("X-Aisix-Served-By"), a.body)
	}
	if row := g.status(t, "gpt-4o-primary"); row.Status != "cooldown" || row.CooldownUntil == nil {
		t.Errorf("A's late success ended the primary's cooldown: %s", row.raw)
	}
}
