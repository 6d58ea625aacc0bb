package proxy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// The Anthropic adapter's fault suite: the failure rules of failure.go
// hold for an Anthropic Messages target exactly as for an OpenAI-wire
// one, in both failover directions (an Anthropic primary failing over to
// an OpenAI-wire secondary, and an OpenAI-wire primary failing over to an
// Anthropic secondary), plain and streaming. The Anthropic upstream is
// proxytest's fake, which answers as Anthropic's API reference documents;
// what reaches it is read back with Requests().

const (
	claude = "claude" // the Anthropic target's model name (and trail label)
	gpt    = "gpt"    // the OpenAI-wire target's

	claudeModelName = "claude-haiku-4-5"
	anthropicSecret = "sk-ant-api03-upstream-secret"
)

func anthropicUpstream(t testing.TB, name string, script ...proxytest.Behavior) *proxytest.AnthropicUpstream {
	t.Helper()
	u := proxytest.NewAnthropic(name, script...)
	// Only the provider key's secret is accepted: every 200 below proves
	// it went as x-api-key.
	u.Key = anthropicSecret
	t.Cleanup(u.Close)
	return u
}

func anthropicKey(id string, u *proxytest.AnthropicUpstream, forward ...string) storage.ProviderKey {
	pk := storage.ProviderKey{ID: id, DisplayName: id, Provider: "anthropic", Adapter: storage.AdapterAnthropic,
		Secret: anthropicSecret, APIBase: u.URL(), ForwardHeaders: forward}
	pk.SecretHost = pk.BaseHost()
	return pk
}

func claudeModel(name, pkID string, mods ...func(*storage.Model)) storage.Model {
	m := storage.Model{ID: "id-" + name, DisplayName: name, Provider: "anthropic", ModelName: claudeModelName, ProviderKeyID: pkID}
	for _, fn := range mods {
		fn(&m)
	}
	return m
}

// mixed is chat-prod over claude (on ant) and gpt (on oai), claude first
// when claudeFirst, else gpt first.
func mixed(ant *proxytest.AnthropicUpstream, oai *proxytest.Upstream, claudeFirst bool, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	if claudeFirst {
		r.Targets = targets(claude, gpt)
	} else {
		r.Targets = targets(gpt, claude)
	}
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{anthropicKey("pk-claude", ant), providerKey("pk-gpt", oai.BaseURL())},
		Models: []storage.Model{
			claudeModel(claude, "pk-claude", mods...),
			directModel(gpt, "pk-gpt", mods...),
			routingModel("chat-prod", r),
		},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

// streamReq sends a streaming request with body and header pairs and
// reads the whole answer, as env.stream does.
func (e *env) streamReq(body string, header ...string) streamResult {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+callerKey)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("stream request: %v", err)
	}
	defer resp.Body.Close()
	res := streamResult{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	res.raw = string(raw)
	res.took = time.Since(start)
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return res
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	var cur sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				cur.data = strings.Join(data, "\n")
				res.events = append(res.events, cur)
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			res.comments++
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	return res
}

// chunk is an OpenAI chat.completion.chunk as the caller reads it.
type chunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Role      string `json:"role"`
			Content   string `json:"content"`
			ToolCalls []struct {
				Index    int    `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func (s streamResult) chunks(t testing.TB) []chunk {
	t.Helper()
	var out []chunk
	for _, ev := range s.events {
		if ev.name != "" || ev.data == "[DONE]" {
			continue
		}
		var c chunk
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("stream event is not JSON: %v: %q", err, ev.data)
		}
		out = append(out, c)
	}
	return out
}

// finishReason is the stream's last finish_reason ("" for none).
func (s streamResult) finishReason(t testing.TB) string {
	t.Helper()
	reason := ""
	for _, c := range s.chunks(t) {
		for _, ch := range c.Choices {
			if ch.FinishReason != nil {
				reason = *ch.FinishReason
			}
		}
	}
	return reason
}

// anthropicBody is a request as the fake Anthropic upstream received it.
type anthropicBody struct {
	Model     string `json:"model"`
	MaxTokens int    `json:"max_tokens"`
	Stream    bool   `json:"stream"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	Raw map[string]json.RawMessage `json:"-"`
}

func decodeAnthropic(t testing.TB, r proxytest.Request) anthropicBody {
	t.Helper()
	var b anthropicBody
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("upstream body is not JSON: %v\n%s", err, r.Body)
	}
	if err := json.Unmarshal(r.Body, &b.Raw); err != nil {
		t.Fatalf("upstream body is not an object: %v\n%s", err, r.Body)
	}
	return b
}

// wantAnthropicRequest checks one request the Anthropic upstream received:
// Anthropic's headers and none of the caller's OpenAI ones, and a Messages
// body for the upstream model.
func wantAnthropicRequest(t testing.TB, r proxytest.Request, stream bool) anthropicBody {
	t.Helper()
	wantHeader(t, r.Header, "X-Api-Key", anthropicSecret)
	wantHeader(t, r.Header, "Anthropic-Version", "2023-06-01")
	wantHeader(t, r.Header, "Content-Type", "application/json")
	for _, h := range []string{"Authorization", "Openai-Beta", "Openai-Organization", "Openai-Project"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("upstream request carries %s: %q", h, v)
		}
	}
	b := decodeAnthropic(t, r)
	if b.Model != claudeModelName || b.MaxTokens < 1 || b.Stream != stream || r.Stream != stream {
		t.Errorf("upstream body model=%q max_tokens=%d stream=%v, want %q, >0, %v:\n%s", b.Model, b.MaxTokens, b.Stream, claudeModelName, stream, r.Body)
	}
	if len(b.Messages) == 0 || b.Messages[0].Role != "user" || !strings.Contains(string(b.Messages[0].Content), "Say hello.") {
		t.Errorf("upstream messages = %s", r.Body)
	}
	for _, f := range []string{"stream_options", "n", "logprobs", "frequency_penalty"} {
		if _, ok := b.Raw[f]; ok {
			t.Errorf("upstream body carries the OpenAI field %s: %s", f, r.Body)
		}
	}
	return b
}

// wantTargetState checks a target's runtime state ("" meaning healthy)
// and status_reason.
func wantTargetState(t testing.TB, e *env, model, state, reason string) {
	t.Helper()
	if state == "" {
		state = health.StateHealthy
	}
	st := e.reg.Status("id-" + model)
	if st.State != state || st.Reason != reason {
		t.Errorf("%s state = %s/%q, want %s/%q", model, st.State, st.Reason, state, reason)
	}
}

func wantCallID(t testing.TB, h http.Header) {
	t.Helper()
	if len(h.Get("X-Aisix-Call-Id")) != 36 {
		t.Errorf("x-aisix-call-id = %q", h.Get("X-Aisix-Call-Id"))
	}
	// The upstream's own headers stay upstream.
	for _, k := range []string{"Request-Id", "Anthropic-Organization-Id"} {
		if v := h.Get(k); v != "" {
			t.Errorf("the caller got the upstream's %s: %q", k, v)
		}
	}
}

// leaks are the upstream details the fake's messages hold that no caller
// may see.
var leaks = []string{"10.1.2.3", "Internal server error", "sk-ant", "req_fake"}

func wantNoLeak(t testing.TB, what, s string) {
	t.Helper()
	for _, l := range leaks {
		if strings.Contains(s, l) {
			t.Errorf("%s leaks %q: %s", what, l, s)
		}
	}
}

// wantNoEventLeak checks the dashboard's events and the targets'
// last_error hold no upstream detail either.
func wantNoEventLeak(t testing.TB, e *env) {
	t.Helper()
	all, _ := e.reg.Events(0)
	for _, ev := range all {
		wantNoLeak(t, "event "+ev.Kind, ev.Reason+" "+ev.Detail)
	}
	for _, m := range []string{claude, gpt} {
		wantNoLeak(t, m+" last_error", e.reg.Status("id-"+m).LastError)
	}
}

// badRequest is an Anthropic 400 about the request whose message names
// an account host and a key: returned to the caller, redacted.
func badRequest() proxytest.Behavior {
	return proxytest.AnthropicError(http.StatusBadRequest, "invalid_request_error",
		"max_tokens: 100000 > 64000, which is the maximum allowed for claude-haiku-4-5 (key sk-ant-api03-abcdefghijkl via http://10.1.2.3:8443/v1)")
}

func TestAnthropicFaultsPlain(t *testing.T) {
	tests := []struct {
		name        string
		claudeFirst bool
		ant, oai    []proxytest.Behavior
		routing     storage.Routing
		mods        []func(*storage.Model)
		wantStatus  int
		wantServed  string
		wantTrail   string
		wantHits    [2]int // claude, gpt
		claudeState string
		claudeWhy   string
		gptState    string
		gptWhy      string
		wantErrType string
		maxTime     time.Duration
		check       func(t *testing.T, e *env, r response)
	}{
		// Anthropic primary, OpenAI-wire secondary.
		{
			name: "claude answers: translated to a chat.completion under the alias", claudeFirst: true,
			wantStatus: 200, wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			check: func(t *testing.T, e *env, r response) {
				var body struct {
					Object  string `json:"object"`
					Model   string `json:"model"`
					Choices []struct {
						Message struct {
							Role    string `json:"role"`
							Content string `json:"content"`
						} `json:"message"`
						FinishReason string `json:"finish_reason"`
					} `json:"choices"`
					Usage struct {
						PromptTokens     int `json:"prompt_tokens"`
						CompletionTokens int `json:"completion_tokens"`
						TotalTokens      int `json:"total_tokens"`
					} `json:"usage"`
				}
				if err := json.Unmarshal(r.body, &body); err != nil {
					t.Fatalf("body: %v: %s", err, r.body)
				}
				if body.Object != "chat.completion" || len(body.Choices) != 1 || body.Choices[0].Message.Role != "assistant" ||
					body.Choices[0].Message.Content != "hello from claude" || body.Choices[0].FinishReason != "stop" {
					t.Errorf("answer = %s", r.body)
				}
				if body.Usage.PromptTokens != 10 || body.Usage.CompletionTokens != 9 || body.Usage.TotalTokens != 19 {
					t.Errorf("usage = %+v", body.Usage)
				}
				wantHeader(t, r.header, "Content-Type", "application/json")
			},
		},
		{
			name: "429 with a short retry-after waits and retries claude", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("0.05"), proxytest.AnthropicOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: claude, wantTrail: claude + "=429," + claude + "=200", wantHits: [2]int{2, 0},
			check: func(t *testing.T, e *env, r response) {
				if got := r.json(t)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]; got != "hello from claude" {
					t.Errorf("content = %v", got)
				}
			},
		},
		{
			name: "429 with a short retry-after beyond the routing budget fails over at once", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("3")),
			routing:    storage.Routing{Retries: ptr(1), Timeout: ptr(int64(1500))},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited", maxTime: time.Second,
		},
		{
			name: "429 with a long retry-after fails over; the cooldown lasts the retry-after", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("60")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited",
			check: func(t *testing.T, e *env, r response) {
				if until, want := e.reg.Status("id-"+claude).CooldownUntil, e.clock.Now().Add(60*time.Second); !until.Equal(want) {
					t.Errorf("cooldown until %v, want %v (retry-after 60)", until, want)
				}
			},
		},
		{
			name: "429 without retry-after fails over with the default cooldown", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited",
			check: func(t *testing.T, e *env, r response) {
				if until, want := e.reg.Status("id-"+claude).CooldownUntil, e.clock.Now().Add(30*time.Second); !until.Equal(want) {
					t.Errorf("cooldown until %v, want %v (the default)", until, want)
				}
			},
		},
		{
			name: "529 overloaded is retried, then fails over: status_reason upstream_overloaded", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicOverloaded()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=529," + claude + "=529," + gpt + "=200", wantHits: [2]int{2, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name: "529 without retries fails over at once", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicOverloaded()),
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=529," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name: "529 once, then claude answers the retry", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicOverloaded(), proxytest.AnthropicOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: claude, wantTrail: claude + "=529," + claude + "=200", wantHits: [2]int{2, 0},
		},
		{
			name: "401 authentication_error fails over without a retry and cools claude", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicAuthError()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=401," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_auth_failure",
		},
		{
			name: "403 permission_error fails over and cools claude", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicPermissionError()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=403," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_forbidden",
		},
		{
			name: "404 not_found_error fails over and cools claude", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicNotFound()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=404," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_model_not_found",
		},
		{
			name: "prompt too long fails over without a retry and without a cooldown", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicPromptTooLong()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=400," + gpt + "=200", wantHits: [2]int{1, 1},
		},
		{
			name: "prompt too long everywhere: the caller gets context_length_exceeded", claudeFirst: false,
			oai:        proxytest.Sequence(proxytest.ContextLengthExceeded()),
			ant:        proxytest.Sequence(proxytest.AnthropicPromptTooLong()),
			wantStatus: 400, wantTrail: gpt + "=400," + claude + "=400", wantHits: [2]int{1, 1}, wantErrType: "invalid_request_error",
			check: func(t *testing.T, e *env, r response) {
				if code := r.json(t)["error"].(map[string]any)["code"]; code != "context_length_exceeded" {
					t.Errorf("code = %v: %s", code, r.body)
				}
			},
		},
		{
			name: "another 400 is the caller's: returned at once as OpenAI's envelope, redacted", claudeFirst: true,
			ant:        proxytest.Sequence(badRequest()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: claude + "=400", wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error",
			check: func(t *testing.T, e *env, r response) {
				wantBadRequestBody(t, r)
			},
		},
		{
			name: "500 api_error is retried, then fails over; its message never reaches the caller", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicServerError()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=500," + claude + "=500," + gpt + "=200", wantHits: [2]int{2, 1},
			claudeState: health.StateCooldown, claudeWhy: "upstream_server_error",
		},
		{
			name: "500 once, then claude answers the retry", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicServerError(), proxytest.AnthropicOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: claude, wantTrail: claude + "=500," + claude + "=200", wantHits: [2]int{2, 0},
		},
		{
			name: "claude reset before headers: transport error, failover", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.Reset()),
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=transport_error," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "transport_error",
		},
		{
			name: "claude silent: timeout, failover without a same-target retry", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.Hang()),
			routing:    storage.Routing{Retries: ptr(2)},
			mods:       []func(*storage.Model){withTimeout(300)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=timeout," + gpt + "=200", wantHits: [2]int{1, 1},
			claudeState: health.StateCooldown, claudeWhy: "request_timeout",
		},
		{
			name: "claude's answer undecodable: retried, then failover", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.Raw("application/json", `{"type":"message","content":[`)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: claude + "=upstream_decode_error," + claude + "=upstream_decode_error," + gpt + "=200",
			wantHits: [2]int{2, 1}, claudeState: health.StateCooldown, claudeWhy: "upstream_decode_error",
		},
		{
			name: "claude 529 and gpt 500: the last error, no upstream text", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicOverloaded()),
			oai:        proxytest.Sequence(proxytest.ServerError(500)),
			wantStatus: 502, wantTrail: claude + "=529," + gpt + "=500", wantHits: [2]int{1, 1}, wantErrType: "upstream_error",
			claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded", gptState: health.StateCooldown, gptWhy: "upstream_server_error",
		},

		{
			name: "retry_on_429 false: claude's 429 returned with its retry-after, as OpenAI's envelope", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("7")),
			routing:    storage.Routing{Retries: ptr(1), RetryOn429: ptr(false)},
			wantStatus: 429, wantTrail: claude + "=429", wantHits: [2]int{1, 0}, wantErrType: "rate_limit_error",
			claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited",
			check: func(t *testing.T, e *env, r response) {
				wantHeader(t, r.header, "Retry-After", "7")
				if code := r.json(t)["error"].(map[string]any)["code"]; code != "rate_limit_exceeded" {
					t.Errorf("code = %v: %s", code, r.body)
				}
			},
		},
		{
			name: "413 request_too_large is the caller's: returned at once", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicError(http.StatusRequestEntityTooLarge, "request_too_large", "Request exceeds the maximum allowed number of bytes.")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 413, wantTrail: claude + "=413", wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error",
		},

		// OpenAI-wire primary, Anthropic secondary.
		{
			name:       "gpt 503 and claude 429 with retry-after: the caller gets claude's 429 and its Retry-After",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("60")),
			wantStatus: 429, wantTrail: gpt + "=503," + claude + "=429", wantHits: [2]int{1, 1}, wantErrType: "rate_limit_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited",
			check: func(t *testing.T, e *env, r response) {
				wantHeader(t, r.header, "Retry-After", "60")
			},
		},
		{
			name:       "gpt 503: claude answers the failover",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			wantStatus: 200, wantServed: claude, wantTrail: gpt + "=503," + claude + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_server_error",
			check: func(t *testing.T, e *env, r response) {
				m := r.json(t)
				if m["model"] != "chat-prod" || m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"] != "hello from claude" {
					t.Errorf("answer = %s", r.body)
				}
			},
		},
		{
			name:       "gpt 401: claude answers the failover",
			oai:        proxytest.Sequence(proxytest.Status(401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`)),
			wantStatus: 200, wantServed: claude, wantTrail: gpt + "=401," + claude + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_auth_failure",
		},
		{
			name:       "gpt 429 with a long Retry-After: claude answers the failover",
			oai:        proxytest.Sequence(proxytest.RateLimited("60")),
			wantStatus: 200, wantServed: claude, wantTrail: gpt + "=429," + claude + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_rate_limited",
		},
		{
			name:       "gpt context length: claude answers, gpt not cooled",
			oai:        proxytest.Sequence(proxytest.ContextLengthExceeded()),
			wantStatus: 200, wantServed: claude, wantTrail: gpt + "=400," + claude + "=200", wantHits: [2]int{1, 1},
		},
		{
			name:       "gpt unreachable: claude answers the failover",
			oai:        proxytest.Sequence(proxytest.Reset()),
			wantStatus: 200, wantServed: claude, wantTrail: gpt + "=transport_error," + claude + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "transport_error",
		},
		{
			name:       "gpt 503 and claude 500: 502 naming no upstream detail",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			ant:        proxytest.Sequence(proxytest.AnthropicServerError()),
			wantStatus: 502, wantTrail: gpt + "=503," + claude + "=500", wantHits: [2]int{1, 1}, wantErrType: "upstream_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", claudeState: health.StateCooldown, claudeWhy: "upstream_server_error",
			check: func(t *testing.T, e *env, r response) {
				if msg := r.json(t)["error"].(map[string]any)["message"]; msg != "upstream returned 500" {
					t.Errorf("message = %q", msg)
				}
			},
		},
		{
			name:       "gpt 503 and claude 529: 502, claude upstream_overloaded",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			ant:        proxytest.Sequence(proxytest.AnthropicOverloaded()),
			wantStatus: 502, wantTrail: gpt + "=503," + claude + "=529", wantHits: [2]int{1, 1}, wantErrType: "upstream_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name:       "gpt 503 and claude's caller-fault 400: the 400, redacted",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			ant:        proxytest.Sequence(badRequest()),
			wantStatus: 400, wantTrail: gpt + "=503," + claude + "=400", wantHits: [2]int{1, 1}, wantErrType: "invalid_request_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error",
			check: func(t *testing.T, e *env, r response) { wantBadRequestBody(t, r) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ant := anthropicUpstream(t, claude, tt.ant...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, mixed(ant, oai, tt.claudeFirst, tt.routing, tt.mods...))
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if ant.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits claude=%d gpt=%d, want %v", ant.Hits(), oai.Hits(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			wantCallID(t, r.header)
			maxTime := tt.maxTime
			if maxTime == 0 {
				maxTime = 3 * time.Second
			}
			wantUnder(t, r.took, maxTime)
			if tt.wantStatus == 200 {
				if m := r.json(t); m["model"] != "chat-prod" {
					t.Errorf("model = %v, want the alias", m["model"])
				}
			} else {
				wantHeader(t, r.header, "Content-Type", "application/json")
			}
			if tt.wantErrType != "" {
				if got := r.errType(t); got != tt.wantErrType {
					t.Errorf("error type = %q, want %q; body %s", got, tt.wantErrType, r.body)
				}
			}
			wantNoLeak(t, "response body", string(r.body))
			wantNoEventLeak(t, e)
			wantTargetState(t, e, claude, tt.claudeState, tt.claudeWhy)
			wantTargetState(t, e, gpt, tt.gptState, tt.gptWhy)
			for _, req := range ant.Requests() {
				wantAnthropicRequest(t, req, false)
				wantHeader(t, req.Header, "Accept", "application/json")
			}
			if tt.check != nil {
				tt.check(t, e, r)
			}
		})
	}
}

// wantBadRequestBody checks the caller's copy of badRequest: OpenAI's
// envelope, the message kept but for the key and the host.
func wantBadRequestBody(t *testing.T, r response) {
	t.Helper()
	var env struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.Error == nil {
		t.Fatalf("not OpenAI's error envelope: %s", r.body)
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := env.Error[k]; !ok {
			t.Errorf("error envelope lacks %s: %s", k, r.body)
		}
	}
	var msg string
	_ = json.Unmarshal(env.Error["message"], &msg)
	if !strings.HasPrefix(msg, "max_tokens: 100000 > 64000") {
		t.Errorf("message = %q, want the upstream's, redacted", msg)
	}
	for _, l := range []string{"sk-ant", "abcdefghijkl", "10.1.2.3", "http://"} {
		if strings.Contains(msg, l) {
			t.Errorf("message leaks %q: %q", l, msg)
		}
	}
	if strings.Contains(string(r.body), `"type":"error"`) || strings.Contains(string(r.body), "request_id") {
		t.Errorf("upstream envelope passed through: %s", r.body)
	}
}

func TestAnthropicFaultsStreaming(t *testing.T) {
	fast := []func(*storage.Model){withStreamTimeout(300)}
	tests := []struct {
		name        string
		claudeFirst bool
		ant, oai    []proxytest.Behavior
		routing     storage.Routing
		mods        []func(*storage.Model)
		wantStatus  int // 0: 200
		wantServed  string
		wantTrail   string
		wantHits    [2]int // claude, gpt
		wantContent string
		wantDone    bool
		wantErrType string // of the error frame (or, with wantStatus, the JSON error)
		claudeState string
		claudeWhy   string
		gptState    string
		gptWhy      string
	}{
		// Anthropic primary, OpenAI-wire secondary.
		{
			name: "claude streams: translated chunks under the alias, then [DONE]", claudeFirst: true,
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from claude", wantDone: true,
		},
		{
			name: "ping events are relayed as nothing", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Ping: true})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from claude", wantDone: true,
		},
		{
			name: "a thinking block streams before the text", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Thinking: "Let me think."})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from claude", wantDone: true,
		},
		{
			name: "message_start and pings, then a stall: pings are not content, failover on the first-content bound", claudeFirst: true,
			ant: proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{
				StallBeforeContent: true, Ping: true, PingEvery: 20 * time.Millisecond})),
			routing: storage.Routing{Retries: ptr(1)}, mods: fast,
			wantServed: gpt, wantTrail: claude + "=timeout," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "request_timeout",
		},
		{
			name: "in-band overloaded_error before content fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1})),
			wantServed: gpt, wantTrail: claude + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name: "in-band overloaded_error before content is retried when retries remain", claudeFirst: true,
			ant: proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1}),
				proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{})),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: claude, wantTrail: claude + "=in_band_error," + claude + "=200", wantHits: [2]int{2, 0},
			wantContent: "hello from claude", wantDone: true,
		},
		{
			name: "in-band rate_limit_error before content fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1, ErrorType: "rate_limit_error"})),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: gpt, wantTrail: claude + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited",
		},
		{
			name: "in-band error after content ends the stream with an error frame, no [DONE]", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 2})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "upstream_error", claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name: "cut before content fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{CutBeforeContent: true})),
			wantServed: gpt, wantTrail: claude + "=stream_aborted," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "transport_error",
		},
		{
			name: "a stream that ends after message_start fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{NoText: true, NoStop: true})),
			wantServed: gpt, wantTrail: claude + "=stream_aborted," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "transport_error",
		},
		{
			name: "cut after content ends with a stream_aborted frame", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{CutAfter: 2})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from", wantErrType: "stream_aborted", claudeState: health.StateCooldown, claudeWhy: "transport_error",
		},
		{
			name: "in-band api_error after content: the error frame names no upstream detail", claudeFirst: true,
			ant: proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 3, ErrorType: "api_error",
				ErrorMessage: "Internal server error at 10.1.2.3:8443"})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from", wantErrType: "upstream_error", claudeState: health.StateCooldown, claudeWhy: "upstream_in_band_error",
		},
		{
			name: "in-band api_error before content fails over, its message dropped", claudeFirst: true,
			ant: proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1, ErrorType: "api_error",
				ErrorMessage: "Internal server error at 10.1.2.3:8443"})),
			wantServed: gpt, wantTrail: claude + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_in_band_error",
		},
		{
			name: "a stream ending after content without message_delta or message_stop is not completed", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{NoStop: true})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from claude", wantErrType: "stream_aborted", claudeState: health.StateCooldown, claudeWhy: "transport_error",
		},
		{
			name: "stall after content ends with a timeout frame", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{StallAfter: 1})),
			mods:       fast,
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "timeout", claudeState: health.StateCooldown, claudeWhy: "request_timeout",
		},
		{
			// Pings keep the connection alive, not the answer: the idle
			// bound runs from the last event that reached the caller.
			name: "stall after content while pings keep coming ends with a timeout frame", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{StallAfter: 1, PingEvery: 20 * time.Millisecond})),
			mods:       fast,
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "timeout", claudeState: health.StateCooldown, claudeWhy: "request_timeout",
		},
		{
			name: "a malformed event before content fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{MalformedAt: 1})),
			wantServed: gpt, wantTrail: claude + "=upstream_decode_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_decode_error",
		},
		{
			// Anthropic's stream translator cannot resynchronise after
			// data that is not JSON: the stream ends as a cut one.
			name: "a malformed event after content ends with a stream_aborted frame", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{MalformedAt: 2})),
			wantServed: claude, wantTrail: claude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "stream_aborted", claudeState: health.StateCooldown, claudeWhy: "transport_error",
		},
		{
			name: "529 on a stream fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicOverloaded()),
			wantServed: gpt, wantTrail: claude + "=529," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name: "429 on a stream with a short retry-after retries claude", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("0.05"), proxytest.AnthropicOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: claude, wantTrail: claude + "=429," + claude + "=200", wantHits: [2]int{2, 0},
			wantContent: "hello from claude", wantDone: true,
		},
		{
			name: "429 on a stream with a long retry-after fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicRateLimited("60")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: gpt, wantTrail: claude + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_rate_limited",
		},
		{
			name: "401 on a stream fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicAuthError()),
			wantServed: gpt, wantTrail: claude + "=401," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_auth_failure",
		},
		{
			name: "prompt too long on a stream fails over without a cooldown", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicPromptTooLong()),
			wantServed: gpt, wantTrail: claude + "=400," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true,
		},
		{
			name: "500 on a stream is retried, then fails over", claudeFirst: true,
			ant:        proxytest.Sequence(proxytest.AnthropicServerError()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: gpt, wantTrail: claude + "=500," + claude + "=500," + gpt + "=200", wantHits: [2]int{2, 1},
			wantContent: "hello from gpt", wantDone: true, claudeState: health.StateCooldown, claudeWhy: "upstream_server_error",
		},
		{
			name: "another 400 on a stream is returned as JSON, no failover", claudeFirst: true,
			ant:        proxytest.Sequence(badRequest()),
			wantStatus: 400, wantTrail: claude + "=400", wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error",
		},

		// OpenAI-wire primary, Anthropic secondary.
		{
			name:       "gpt reset: claude streams the failover",
			oai:        proxytest.Sequence(proxytest.Reset()),
			wantServed: claude, wantTrail: gpt + "=transport_error," + claude + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from claude", wantDone: true, gptState: health.StateCooldown, gptWhy: "transport_error",
		},
		{
			name:       "gpt 429: claude streams the failover",
			oai:        proxytest.Sequence(proxytest.RateLimited("")),
			wantServed: claude, wantTrail: gpt + "=429," + claude + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from claude", wantDone: true, gptState: health.StateCooldown, gptWhy: "upstream_rate_limited",
		},
		{
			name:       "gpt slow first token: claude streams the failover",
			oai:        proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{FirstDelay: 5 * time.Second})),
			mods:       fast,
			wantServed: claude, wantTrail: gpt + "=timeout," + claude + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from claude", wantDone: true, gptState: health.StateCooldown, gptWhy: "request_timeout",
		},
		{
			name:       "gpt in-band error before content: claude streams the failover",
			oai:        proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{ErrorAt: 1})),
			wantServed: claude, wantTrail: gpt + "=in_band_error," + claude + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from claude", wantDone: true, gptState: health.StateCooldown, gptWhy: "upstream_in_band_error",
		},
		{
			name:       "gpt 503, then claude's in-band error before content: 502, nothing committed",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			ant:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1})),
			wantStatus: 502, wantTrail: gpt + "=503," + claude + "=in_band_error", wantHits: [2]int{1, 1}, wantErrType: "upstream_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", claudeState: health.StateCooldown, claudeWhy: "upstream_overloaded",
		},
		{
			name: "gpt 503, then claude pings and stalls: 504, nothing committed",
			oai:  proxytest.Sequence(proxytest.ServerError(503)),
			ant: proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{
				StallBeforeContent: true, Ping: true, PingEvery: 20 * time.Millisecond})),
			mods:       fast,
			wantStatus: 504, wantTrail: gpt + "=503," + claude + "=timeout", wantHits: [2]int{1, 1}, wantErrType: "timeout",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", claudeState: health.StateCooldown, claudeWhy: "request_timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ant := anthropicUpstream(t, claude, tt.ant...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, mixed(ant, oai, tt.claudeFirst, tt.routing, tt.mods...))
			r := e.stream("chat-prod")
			wantStatus := tt.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if r.status != wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, wantStatus, r.raw)
			}
			if ant.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits claude=%d gpt=%d, want %v", ant.Hits(), oai.Hits(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			wantCallID(t, r.header)
			wantUnder(t, r.took, 3*time.Second)
			wantNoLeak(t, "the caller's stream", r.raw)
			wantNoEventLeak(t, e)
			wantTargetState(t, e, claude, tt.claudeState, tt.claudeWhy)
			wantTargetState(t, e, gpt, tt.gptState, tt.gptWhy)
			for _, req := range ant.Requests() {
				wantAnthropicRequest(t, req, true)
				wantHeader(t, req.Header, "Accept", "text/event-stream")
			}
			if wantStatus != http.StatusOK {
				if strings.HasPrefix(r.header.Get("Content-Type"), "text/event-stream") {
					t.Fatalf("an uncommitted failure was streamed: %s", r.raw)
				}
				var m map[string]any
				if err := json.Unmarshal([]byte(r.raw), &m); err != nil {
					t.Fatalf("body is not JSON: %s", r.raw)
				}
				if typ, _ := m["error"].(map[string]any)["type"].(string); typ != tt.wantErrType {
					t.Errorf("error type = %q, want %q: %s", typ, tt.wantErrType, r.raw)
				}
				return
			}
			wantHeader(t, r.header, "Content-Type", "text/event-stream")
			if got := r.content(t); got != tt.wantContent {
				t.Errorf("content = %q, want %q; raw:\n%s", got, tt.wantContent, r.raw)
			}
			if r.done() != tt.wantDone {
				t.Errorf("[DONE] at the end = %v, want %v; raw:\n%s", r.done(), tt.wantDone, r.raw)
			}
			if strings.Count(r.raw, "data: [DONE]") > 1 {
				t.Errorf("[DONE] sent more than once:\n%s", r.raw)
			}
			for _, ev := range r.events {
				if ev.name == "" && ev.data != "[DONE]" && !strings.Contains(ev.data, `"model":"chat-prod"`) {
					t.Errorf("chunk without the alias: %s", ev.data)
				}
				if ev.name != "" && ev.name != "error" {
					t.Errorf("upstream event name relayed: %q", ev.name)
				}
			}
			if strings.Contains(r.raw, "message_start") || strings.Contains(r.raw, "content_block") || strings.Contains(r.raw, `"ping"`) {
				t.Errorf("Anthropic events relayed untranslated:\n%s", r.raw)
			}
			if tt.wantServed == gpt && strings.Contains(r.raw, "msg_fake") {
				t.Errorf("frames of the failed claude attempt reached the caller:\n%s", r.raw)
			}
			if tt.wantServed == claude {
				chs := r.chunks(t)
				if len(chs) == 0 || len(chs[0].Choices) == 0 || chs[0].Choices[0].Delta.Role != "assistant" ||
					chs[0].Object != "chat.completion.chunk" || !strings.HasPrefix(chs[0].ID, "chatcmpl-") {
					t.Errorf("first chunk is not the role chunk:\n%s", r.raw)
				}
				if tt.wantDone && r.finishReason(t) != "stop" {
					t.Errorf("finish_reason = %q, want stop", r.finishReason(t))
				}
			}
			errEv, hasErr := r.errorEvent()
			switch {
			case tt.wantErrType == "" && hasErr:
				t.Errorf("unexpected error event: %s", errEv.data)
			case tt.wantErrType != "" && !hasErr:
				t.Errorf("no error event; raw:\n%s", r.raw)
			case hasErr:
				if !strings.Contains(errEv.data, `"type":"`+tt.wantErrType+`"`) {
					t.Errorf("error event = %s, want type %s", errEv.data, tt.wantErrType)
				}
				if last := r.events[len(r.events)-1]; last.name != "error" {
					t.Errorf("the error frame is not the last event:\n%s", r.raw)
				}
			}
		})
	}
}

const toolsBody = `{"model":"chat-prod","stream":%s,"messages":[{"role":"user","content":"Say hello."}],` +
	`"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather of a city",` +
	`"parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}],"tool_choice":"auto"}`

func toolsRequest(stream bool) string {
	return strings.Replace(toolsBody, "%s", map[bool]string{true: "true", false: "false"}[stream], 1)
}

var weatherTool = proxytest.AnthropicTool{ID: "toolu_01A09q90qw90lq917835lq9", Name: "get_weather",
	Input: `{"city":"Paris"}`, Fragments: []string{`{"ci`, `ty": "Par`, `is"}`}}

// wantToolsForwarded checks the tool definition reached Anthropic in its
// own shape.
func wantToolsForwarded(t *testing.T, req proxytest.Request, stream bool) {
	t.Helper()
	b := wantAnthropicRequest(t, req, stream)
	if len(b.Tools) != 1 || b.Tools[0].Name != "get_weather" || !strings.Contains(string(b.Tools[0].InputSchema), `"city"`) {
		t.Errorf("upstream tools = %s", req.Body)
	}
}

func TestAnthropicToolCallStreaming(t *testing.T) {
	for _, tc := range []struct {
		claudeFirst bool
		text        string // before the tool_use block (Anthropic index 1, OpenAI tool index still 0)
	}{{true, ""}, {false, ""}, {true, "Checking."}, {false, "Checking."}} {
		claudeFirst := tc.claudeFirst
		name := "claude primary"
		if !claudeFirst {
			name = "gpt reset, claude secondary"
		}
		if tc.text != "" {
			name += ", text first"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ant := anthropicUpstream(t, claude, proxytest.AnthropicToolUse(tc.text, weatherTool))
			oai := upstream(t, gpt, proxytest.Reset())
			e := newEnv(t, mixed(ant, oai, claudeFirst, storage.Routing{}))
			r := e.streamReq(toolsRequest(true))
			if r.status != 200 {
				t.Fatalf("status = %d: %s", r.status, r.raw)
			}
			wantHeader(t, r.header, "X-Aisix-Served-By", claude)
			if claudeFirst {
				wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=200")
			} else {
				wantHeader(t, r.header, "X-Aisix-Attempts", gpt+"=transport_error,"+claude+"=200")
			}
			if !r.done() {
				t.Errorf("no [DONE]:\n%s", r.raw)
			}
			if _, hasErr := r.errorEvent(); hasErr {
				t.Errorf("error frame:\n%s", r.raw)
			}
			var args strings.Builder
			first := true
			for _, c := range r.chunks(t) {
				if c.Model != "chat-prod" {
					t.Errorf("chunk model = %q", c.Model)
				}
				for _, ch := range c.Choices {
					for _, tc := range ch.Delta.ToolCalls {
						if tc.Index != 0 {
							t.Errorf("tool_calls index = %d, want 0", tc.Index)
						}
						if first {
							if tc.ID != weatherTool.ID || tc.Type != "function" || tc.Function.Name != "get_weather" {
								t.Errorf("first tool_calls delta = %+v, want id, type function and the name", tc)
							}
							first = false
						} else if tc.ID != "" || tc.Function.Name != "" {
							t.Errorf("a later tool_calls delta repeats id or name: %+v", tc)
						}
						args.WriteString(tc.Function.Arguments)
					}
				}
			}
			if first {
				t.Fatalf("no tool_calls delta:\n%s", r.raw)
			}
			if got := args.String(); got != `{"city": "Paris"}` {
				t.Errorf("streamed arguments = %q", got)
			}
			if got := r.content(t); got != tc.text {
				t.Errorf("content = %q, want %q", got, tc.text)
			}
			if got := r.finishReason(t); got != "tool_calls" {
				t.Errorf("finish_reason = %q, want tool_calls", got)
			}
			reqs := ant.Requests()
			if len(reqs) != 1 {
				t.Fatalf("claude got %d requests", len(reqs))
			}
			wantToolsForwarded(t, reqs[0], true)
		})
	}
}

func TestAnthropicToolCallPlain(t *testing.T) {
	ant := anthropicUpstream(t, claude, proxytest.AnthropicToolUse("Checking.", weatherTool))
	oai := upstream(t, gpt, proxytest.ServerError(503))
	e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, toolsRequest(false))
	if r.status != 200 {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", gpt+"=503,"+claude+"=200")
	var body struct {
		Choices []struct {
			Message struct {
				Content   string `json:"content"`
				ToolCalls []struct {
					ID       string `json:"id"`
					Type     string `json:"type"`
					Function struct {
						Name      string `json:"name"`
						Arguments string `json:"arguments"`
					} `json:"function"`
				} `json:"tool_calls"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Choices) != 1 {
		t.Fatalf("body: %v: %s", err, r.body)
	}
	ch := body.Choices[0]
	if ch.FinishReason != "tool_calls" || ch.Message.Content != "Checking." || len(ch.Message.ToolCalls) != 1 {
		t.Fatalf("answer = %s", r.body)
	}
	tc := ch.Message.ToolCalls[0]
	if tc.ID != weatherTool.ID || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris"}` {
		t.Errorf("tool call = %+v", tc)
	}
	wantToolsForwarded(t, ant.Requests()[0], false)
}

func TestAnthropicStreamIncludeUsage(t *testing.T) {
	t.Run("gpt reset, claude secondary", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.Reset())
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.streamReq(`{"model":"chat-prod","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`)
		wantHeader(t, r.header, "X-Aisix-Attempts", gpt+"=transport_error,"+claude+"=200")
		chs := r.chunks(t)
		if !r.done() || len(chs) == 0 || chs[len(chs)-1].Usage == nil || chs[len(chs)-1].Usage.TotalTokens != 19 {
			t.Errorf("no usage chunk at the end:\n%s", r.raw)
		}
	})
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt)
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
	r := e.streamReq(`{"model":"chat-prod","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`)
	if r.status != 200 || !r.done() {
		t.Fatalf("status = %d, done %v:\n%s", r.status, r.done(), r.raw)
	}
	chs := r.chunks(t)
	last := chs[len(chs)-1]
	if last.Usage == nil || len(last.Choices) != 0 {
		t.Fatalf("the last chunk before [DONE] is not the usage chunk:\n%s", r.raw)
	}
	if last.Usage.PromptTokens != 10 || last.Usage.CompletionTokens != 9 || last.Usage.TotalTokens != 19 {
		t.Errorf("usage = %+v", *last.Usage)
	}
	for _, c := range chs[:len(chs)-1] {
		if c.Usage != nil {
			t.Errorf("usage before the usage chunk: %+v", c)
		}
	}
	if got := r.content(t); got != "hello from claude" {
		t.Errorf("content = %q", got)
	}
	wantAnthropicRequest(t, ant.Requests()[0], true)

	// Without include_usage there is no usage chunk.
	r = e.stream("chat-prod")
	for _, c := range r.chunks(t) {
		if c.Usage != nil {
			t.Errorf("usage chunk without include_usage:\n%s", r.raw)
		}
	}
}

// TestAnthropicRequestHeaders checks what goes upstream: x-api-key and
// anthropic-version, to /v1/messages (the fake answers 404 on any other
// path), never the caller's Authorization or OpenAI headers, and
// anthropic-beta only from a provider key that forwards it.
func TestAnthropicRequestHeaders(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{
			anthropicKey("pk-plain", ant),
			anthropicKey("pk-beta", ant, "anthropic-beta"),
		},
		Models: []storage.Model{
			claudeModel("claude-plain", "pk-plain"),
			claudeModel("claude-beta", "pk-beta"),
		},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	const (
		beta  = "prompt-caching-2024-07-31"
		trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	)
	caller := []string{"Openai-Beta", "assistants=v2", "Openai-Organization", "org-caller", "Anthropic-Beta", beta,
		"Traceparent", trace, "User-Agent", "caller-sdk/1.0", "X-Api-Key", "sk-ant-caller-supplied", "Anthropic-Version", "2099-01-01"}
	for _, tc := range []struct {
		model    string
		stream   bool
		wantBeta string
	}{
		{"claude-plain", false, ""},
		{"claude-plain", true, ""},
		{"claude-beta", false, beta},
		{"claude-beta", true, beta},
	} {
		n := ant.Hits()
		var status int
		if tc.stream {
			r := e.streamReq(chatBody(tc.model, true), caller...)
			status = r.status
			if !r.done() || r.content(t) != "hello from claude" {
				t.Errorf("%s stream: %s", tc.model, r.raw)
			}
		} else {
			r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody(tc.model, false), caller...)
			status = r.status
			wantHeader(t, r.header, "X-Aisix-Served-By", tc.model)
			wantHeader(t, r.header, "X-Aisix-Attempts", tc.model+"=200")
		}
		if status != 200 || ant.Hits() != n+1 {
			t.Fatalf("%s stream=%v: status %d, hits %d", tc.model, tc.stream, status, ant.Hits()-n)
		}
		req := ant.Requests()[n]
		wantAnthropicRequest(t, req, tc.stream) // x-api-key is the secret, not the caller's
		if got := req.Header.Values("Anthropic-Version"); len(got) != 1 || got[0] != "2023-06-01" {
			t.Errorf("%s: anthropic-version = %q", tc.model, got)
		}
		wantHeader(t, req.Header, "Anthropic-Beta", tc.wantBeta)
		wantHeader(t, req.Header, "Traceparent", trace)
		wantHeader(t, req.Header, "User-Agent", "caller-sdk/1.0")
		if v := req.Header.Get("Authorization"); v != "" || strings.Contains(strings.Join(headerValues(req.Header), " "), callerKey) {
			t.Errorf("%s: the caller's key went upstream: %v", tc.model, req.Header)
		}
	}
}

func headerValues(h http.Header) []string {
	var out []string
	for _, vs := range h {
		out = append(out, vs...)
	}
	return out
}

// TestAnthropicImages checks OpenAI image_url parts reach Anthropic as
// image blocks: a data URL as a base64 source, an http(s) URL as a url
// source.
func TestAnthropicImages(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt, proxytest.ServerError(503))
	e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
	const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
	body := `{"model":"chat-prod","messages":[{"role":"user","content":[` +
		`{"type":"text","text":"What is in these images?"},` +
		`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png + `"}},` +
		`{"type":"image_url","image_url":{"url":"https://example.com/cat.jpg","detail":"high"}}]}]}`
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body)
	if r.status != 200 {
		t.Fatalf("status = %d: %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", gpt+"=503,"+claude+"=200")
	reqs := ant.Requests()
	if len(reqs) != 1 {
		t.Fatalf("claude got %d requests", len(reqs))
	}
	b := decodeAnthropic(t, reqs[0])
	if len(b.Messages) != 1 || b.Messages[0].Role != "user" {
		t.Fatalf("upstream messages = %s", reqs[0].Body)
	}
	var blocks []struct {
		Type   string `json:"type"`
		Text   string `json:"text"`
		Source *struct {
			Type      string `json:"type"`
			MediaType string `json:"media_type"`
			Data      string `json:"data"`
			URL       string `json:"url"`
		} `json:"source"`
	}
	if err := json.Unmarshal(b.Messages[0].Content, &blocks); err != nil || len(blocks) != 3 {
		t.Fatalf("upstream content = %s (%v)", b.Messages[0].Content, err)
	}
	if blocks[0].Type != "text" || blocks[0].Text != "What is in these images?" {
		t.Errorf("text block = %+v", blocks[0])
	}
	if s := blocks[1].Source; blocks[1].Type != "image" || s == nil || s.Type != "base64" || s.MediaType != "image/png" || s.Data != png || s.URL != "" {
		t.Errorf("data URL block = %s", b.Messages[0].Content)
	}
	if s := blocks[2].Source; blocks[2].Type != "image" || s == nil || s.Type != "url" || s.URL != "https://example.com/cat.jpg" || s.Data != "" {
		t.Errorf("http URL block = %s", b.Messages[0].Content)
	}
	if strings.Contains(string(reqs[0].Body), "image_url") || strings.Contains(string(reqs[0].Body), "detail") {
		t.Errorf("OpenAI image fields went upstream: %s", reqs[0].Body)
	}
}

// TestStreamIdleIgnoresKeepAliveComments: on the OpenAI wire too, SSE
// comments after the first content do not hold a stalled stream open past
// its idle bound.
func TestStreamIdleIgnoresKeepAliveComments(t *testing.T) {
	commentsOnly := func(w http.ResponseWriter, c *proxytest.Call) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fl := w.(http.Flusher)
		_, _ = io.WriteString(w, `data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1767225600,"model":"gpt-4o-mini",`+
			`"choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]}`+"\n\n")
		fl.Flush()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				_, _ = io.WriteString(w, ": keep-alive\n\n")
				fl.Flush()
			case <-c.R.Context().Done():
				return
			case <-c.Done:
				return
			}
		}
	}
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt, commentsOnly)
	e := newEnv(t, mixed(ant, oai, false, storage.Routing{}, withStreamTimeout(300)))
	r := e.stream("chat-prod")
	if r.status != 200 {
		t.Fatalf("status = %d: %s", r.status, r.raw)
	}
	wantUnder(t, r.took, 3*time.Second)
	if got := r.content(t); got != "hello" {
		t.Errorf("content = %q", got)
	}
	if ev, ok := r.errorEvent(); !ok || !strings.Contains(ev.data, `"type":"timeout"`) || r.done() {
		t.Errorf("want a timeout frame and no [DONE]; raw:\n%s", r.raw)
	}
	wantTargetState(t, e, gpt, health.StateCooldown, "request_timeout")
	wantHits(t, oai, 1)
	if ant.Hits() != 0 {
		t.Errorf("claude got %d requests after commit", ant.Hits())
	}
}

// TestAnthropicCooldownLifecycle: an overloaded claude cools down for its
// retry-after, is skipped meanwhile, then gets the probe and recovers.
func TestAnthropicCooldownLifecycle(t *testing.T) {
	ant := anthropicUpstream(t, claude, proxytest.AnthropicError(529, "overloaded_error", "Overloaded", "Retry-After", "45"), proxytest.AnthropicOK())
	oai := upstream(t, gpt)
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
	r := e.chat("chat-prod")
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=529,"+gpt+"=200")
	st := e.reg.Status("id-" + claude)
	if st.State != health.StateCooldown || st.Reason != "upstream_overloaded" || !st.CooldownUntil.Equal(e.clock.Now().Add(45*time.Second)) {
		t.Fatalf("after the 529: %s/%q until %v, want cooldown/upstream_overloaded for the retry-after", st.State, st.Reason, st.CooldownUntil)
	}

	e.clock.Advance(44 * time.Second)
	sr := e.stream("chat-prod")
	wantHeader(t, sr.header, "X-Aisix-Served-By", gpt)
	wantHeader(t, sr.header, "X-Aisix-Attempts", gpt+"=200")
	if ant.Hits() != 1 {
		t.Fatalf("claude in cooldown got %d requests", ant.Hits())
	}

	e.clock.Advance(2 * time.Second) // cooldown over: the next request probes claude
	r = e.chat("chat-prod")
	wantHeader(t, r.header, "X-Aisix-Served-By", claude)
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=200")
	if st := e.reg.Status("id-" + claude); st.State != health.StateHealthy || st.Reason != "" {
		t.Errorf("after the probe: %s/%q, want healthy", st.State, st.Reason)
	}
	if evs := events(e.reg, health.EventProbe); len(evs) != 1 {
		t.Errorf("probe events = %+v", evs)
	}
	if evs := events(e.reg, health.EventCooldownEntered); len(evs) != 1 || evs[0].Target != claude || evs[0].Reason != "upstream_overloaded" {
		t.Errorf("cooldown events = %+v", evs)
	}
}

// TestAnthropicUntranslatableRequest: a caller body the Anthropic wire
// cannot carry (n > 1) skips the claude target without a request and
// without counting against it; the OpenAI-wire target serves it.
func TestAnthropicUntranslatableRequest(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt)
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
	for _, stream := range []bool{false, true} {
		body := `{"model":"chat-prod","n":2,"stream":` + map[bool]string{false: "false", true: "true"}[stream] + `,"messages":[{"role":"user","content":"Say hello."}]}`
		r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body)
		if r.status != 200 {
			t.Fatalf("stream=%v: status %d: %s", stream, r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=unsupported_request,"+gpt+"=200")
		wantHeader(t, r.header, "X-Aisix-Served-By", gpt)
	}
	if ant.Hits() != 0 {
		t.Errorf("claude got %d requests", ant.Hits())
	}
	wantTargetState(t, e, claude, "", "")

	// A claude-only model: the caller gets a 400 naming the field.
	e.update(func(ds *storage.Dataset) {
		ds.Models = append(ds.Models, routingModel("claude-only", storage.Routing{Targets: targets(claude)}))
	})
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, `{"model":"claude-only","n":2,"messages":[{"role":"user","content":"Say hello."}]}`)
	if r.status != 400 || r.errType(t) != "invalid_request_error" || !strings.Contains(string(r.body), "n must be 1") {
		t.Errorf("claude-only: %d %s", r.status, r.body)
	}
	if ant.Hits() != 0 {
		t.Errorf("claude got %d requests", ant.Hits())
	}
}

// TestAnthropicUnboundSecret: after api_base moves to another host
// without a new secret, the secret is not sent there (no x-api-key: the
// fake answers 401 before its script) and the walk fails over.
func TestAnthropicUnboundSecret(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt)
	ds := mixed(ant, oai, true, storage.Routing{})
	ds.ProviderKeys[0].SecretHost = "api.anthropic.com" // entered for another host
	e := newEnv(t, ds)
	r := e.chat("chat-prod")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=401,"+gpt+"=200")
	if ant.Hits() != 0 {
		t.Errorf("a request reached the script: %d", ant.Hits())
	}
	wantTargetState(t, e, claude, health.StateCooldown, "upstream_auth_failure")
}

// TestAnthropicAPIBase: the request goes to {api_base}/v1/messages
// (the fake answers 404 anywhere else) whether api_base is the root, has
// a trailing slash, or a pasted /v1 or /v1/messages; a key with provider
// anthropic and no adapter uses the Anthropic wire.
func TestAnthropicAPIBase(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	var ds storage.Dataset
	bases := []string{ant.URL(), ant.URL() + "/", ant.URL() + "/v1", ant.URL() + "/v1/messages/"}
	for i, base := range bases {
		pk := anthropicKey("pk-"+strconv.Itoa(i), ant)
		pk.APIBase = base
		if i == 0 {
			pk.Adapter = ""
		}
		pk.SecretHost = pk.BaseHost()
		ds.ProviderKeys = append(ds.ProviderKeys, pk)
		ds.Models = append(ds.Models, claudeModel("claude-"+strconv.Itoa(i), pk.ID))
	}
	ds.APIKeys = []storage.APIKey{callerAPIKey("key-1", callerKey, "*")}
	e := newEnv(t, ds)
	for i, base := range bases {
		m := "claude-" + strconv.Itoa(i)
		if r := e.chat(m); r.status != 200 {
			t.Errorf("api_base %q: status %d: %s", base, r.status, r.body)
		}
		if r := e.stream(m); r.status != 200 || !r.done() {
			t.Errorf("api_base %q stream: status %d: %s", base, r.status, r.raw)
		}
	}
	if ant.Hits() != 2*len(bases) {
		t.Errorf("claude got %d requests, want %d", ant.Hits(), 2*len(bases))
	}
}

// TestAnthropicConcurrent: concurrent plain and streaming calls through
// one Anthropic endpoint each get their own whole answer (the endpoint is
// shared, each stream has its own decoder; run it with -race).
func TestAnthropicConcurrent(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt)
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
	const n = 16
	errs := make(chan string, 2*n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r := e.stream("chat-prod")
			if r.status != 200 || !r.done() || r.content(t) != "hello from claude" {
				errs <- "stream: " + r.raw
			}
		}()
		go func() {
			defer wg.Done()
			r := e.chat("chat-prod")
			if r.status != 200 || !strings.Contains(string(r.body), `"content":"hello from claude"`) {
				errs <- "plain: " + string(r.body)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	if ant.Hits() != 2*n || oai.Hits() != 0 {
		t.Errorf("hits claude=%d gpt=%d", ant.Hits(), oai.Hits())
	}
}
