package proxy_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// The Gemini adapter's fault suite: the failure rules hold for a Gemini
// target as for an OpenAI-wire one, in both failover directions (a
// Gemini primary failing over to an OpenAI-wire secondary, and the
// reverse), plain and streaming. The Gemini upstream is proxytest's fake,
// which answers as Google's API reference documents (and refuses what
// the real API refuses: unknown request fields, a missing key).

const (
	gem          = "gem" // the Gemini target's model name (and trail label)
	gemModelName = "gemini-2.5-flash"
	geminiSecret = "AIzaSyD-upstream-gemini-secret"
)

func geminiUpstream(t testing.TB, name string, script ...proxytest.Behavior) *proxytest.GeminiUpstream {
	t.Helper()
	u := proxytest.NewGemini(name, script...)
	// Only the provider key's secret is accepted: every 200 below proves
	// it went as x-goog-api-key.
	u.Key = geminiSecret
	t.Cleanup(u.Close)
	return u
}

func geminiKey(id string, u *proxytest.GeminiUpstream) storage.ProviderKey {
	pk := storage.ProviderKey{ID: id, DisplayName: id, Provider: "google", Adapter: storage.AdapterGemini,
		Secret: geminiSecret, APIBase: u.URL()}
	pk.SecretHost = pk.BaseHost()
	return pk
}

// mixedGemini is chat-prod over gem (on g) and gpt (on oai), gem first
// when gemFirst; emb-prod the same for embeddings.
func mixedGemini(g *proxytest.GeminiUpstream, oai *proxytest.Upstream, gemFirst bool, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	if gemFirst {
		r.Targets = targets(gem, gpt)
	} else {
		r.Targets = targets(gpt, gem)
	}
	m := storage.Model{ID: "id-" + gem, DisplayName: gem, Provider: "google", ModelName: gemModelName, ProviderKeyID: "pk-gem"}
	for _, fn := range mods {
		fn(&m)
	}
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{geminiKey("pk-gem", g), providerKey("pk-gpt", oai.BaseURL())},
		Models:       []storage.Model{m, directModel(gpt, "pk-gpt", mods...), routingModel("chat-prod", r)},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

// wantGeminiRequest checks one request the Gemini upstream received: the
// key in x-goog-api-key only (not in the URL, no Authorization), the
// model's method, and a body the fake accepted (it refuses unknown
// fields, so no OpenAI field went through).
func wantGeminiRequest(t testing.TB, r proxytest.Request, stream bool) map[string]json.RawMessage {
	t.Helper()
	wantHeader(t, r.Header, "X-Goog-Api-Key", geminiSecret)
	wantHeader(t, r.Header, "Content-Type", "application/json")
	for _, h := range []string{"Authorization", "Openai-Beta", "Openai-Organization", "X-Api-Key"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("upstream request carries %s: %q", h, v)
		}
	}
	if strings.Contains(r.Path, "key=") || strings.Contains(r.Path, "AIza") {
		t.Errorf("the key is in the URL: %s", r.Path)
	}
	want := "/v1beta/models/" + gemModelName + ":generateContent"
	if stream {
		want = "/v1beta/models/" + gemModelName + ":streamGenerateContent?alt=sse"
	}
	if r.Path != want {
		t.Errorf("path = %s, want %s", r.Path, want)
	}
	var b map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("upstream body: %v: %s", err, r.Body)
	}
	if !strings.Contains(string(b["contents"]), "Say hello.") {
		t.Errorf("upstream contents = %s", r.Body)
	}
	return b
}

func wantNoGeminiLeak(t testing.TB, e *env, what, s string) {
	t.Helper()
	wantNoLeak(t, what, s)
	for _, l := range []string{"AIza", "An internal error"} {
		if strings.Contains(s, l) {
			t.Errorf("%s leaks %q: %s", what, l, s)
		}
	}
	all, _ := e.reg.Events(0)
	for _, ev := range all {
		wantNoLeak(t, "event "+ev.Kind, ev.Reason+" "+ev.Detail)
	}
}

func TestGeminiFaultsPlain(t *testing.T) {
	tests := []struct {
		name       string
		gemFirst   bool
		g, oai     []proxytest.Behavior
		routing    storage.Routing
		wantStatus int
		wantServed string
		wantTrail  string
		wantHits   [2]int // gem, gpt
		gemState   string
		gemWhy     string
		gptState   string
		gptWhy     string
		wantErr    string
		check      func(t *testing.T, r response)
	}{
		{
			name: "gem answers: a chat.completion under the alias", gemFirst: true,
			wantStatus: 200, wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			check: func(t *testing.T, r response) {
				var body struct {
					Object  string `json:"object"`
					Choices []struct {
						Message struct {
							Content string `json:"content"`
						} `json:"message"`
						FinishReason string `json:"finish_reason"`
					} `json:"choices"`
					Usage struct {
						PromptTokens, CompletionTokens, TotalTokens int `json:"-"`
					} `json:"-"`
				}
				if err := json.Unmarshal(r.body, &body); err != nil || body.Object != "chat.completion" || len(body.Choices) != 1 ||
					body.Choices[0].Message.Content != "hello from gem" || body.Choices[0].FinishReason != "stop" {
					t.Errorf("answer = %s", r.body)
				}
				if !strings.Contains(string(r.body), `"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19`) {
					t.Errorf("usage = %s", r.body)
				}
			},
		},
		{
			name: "429 RESOURCE_EXHAUSTED with a short Retry-After retries gem", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiRateLimited("0.05"), proxytest.GeminiOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gem, wantTrail: gem + "=429," + gem + "=200", wantHits: [2]int{2, 0},
		},
		{
			name: "429 RESOURCE_EXHAUSTED without Retry-After fails over and cools gem", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiRateLimited("")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			gemState: health.StateCooldown, gemWhy: "upstream_rate_limited",
		},
		{
			name: "503 UNAVAILABLE is retried, then fails over: upstream_overloaded", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiOverloaded()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=503," + gem + "=503," + gpt + "=200", wantHits: [2]int{2, 1},
			gemState: health.StateCooldown, gemWhy: "upstream_overloaded",
		},
		{
			name: "500 INTERNAL once, then gem answers the retry", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiServerError(), proxytest.GeminiOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gem, wantTrail: gem + "=500," + gem + "=200", wantHits: [2]int{2, 0},
		},
		{
			name: "403 PERMISSION_DENIED fails over and cools gem", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiPermissionDenied()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=403," + gpt + "=200", wantHits: [2]int{1, 1},
			gemState: health.StateCooldown, gemWhy: "upstream_forbidden",
		},
		{
			name: "404 NOT_FOUND fails over and cools gem", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiNotFound()),
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=404," + gpt + "=200", wantHits: [2]int{1, 1},
			gemState: health.StateCooldown, gemWhy: "upstream_model_not_found",
		},
		{
			name: "400 INVALID_ARGUMENT is the caller's: returned at once, redacted", gemFirst: true,
			g: proxytest.Sequence(proxytest.GeminiError(http.StatusBadRequest, "INVALID_ARGUMENT",
				"Invalid value at 'generation_config.temperature' (TYPE_FLOAT), see http://10.1.2.3:8443/docs")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: gem + "=400", wantHits: [2]int{1, 0}, wantErr: "invalid_request_error",
			check: func(t *testing.T, r response) {
				msg := r.json(t)["error"].(map[string]any)["message"].(string)
				if !strings.HasPrefix(msg, "Invalid value at 'generation_config.temperature'") || strings.Contains(msg, "10.1.2.3") {
					t.Errorf("message = %q", msg)
				}
			},
		},
		{
			name: "400 FAILED_PRECONDITION (billing or region) is the target's: fails over and cools gem", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiError(http.StatusBadRequest, "FAILED_PRECONDITION", "User location is not supported for the API use.")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=400," + gpt + "=200", wantHits: [2]int{1, 1},
			gemState: health.StateCooldown, gemWhy: "upstream_forbidden",
		},
		{
			name: "input token count over the maximum fails over without a cooldown", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiTooLong()),
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=400," + gpt + "=200", wantHits: [2]int{1, 1},
		},
		{
			name: "a blocked prompt (200, promptFeedback.blockReason) is returned to the caller, not failed over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiBlocked("PROHIBITED_CONTENT")),
			wantStatus: 400, wantTrail: gem + "=in_band_error", wantHits: [2]int{1, 0}, wantErr: "invalid_request_error",
			check: func(t *testing.T, r response) {
				if msg := r.json(t)["error"].(map[string]any)["message"].(string); !strings.Contains(msg, "PROHIBITED_CONTENT") {
					t.Errorf("message = %q", msg)
				}
			},
		},
		{
			name: "MAX_TOKENS: finish_reason length", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiFinish("cut sh", "MAX_TOKENS")),
			wantStatus: 200, wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			check: func(t *testing.T, r response) {
				if !strings.Contains(string(r.body), `"finish_reason":"length"`) {
					t.Errorf("answer = %s", r.body)
				}
			},
		},
		{
			name: "thought parts become reasoning_content, thoughts count as completion", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiThinking("Greet them.", "hello")),
			wantStatus: 200, wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			check: func(t *testing.T, r response) {
				if !strings.Contains(string(r.body), `"reasoning_content":"Greet them."`) ||
					!strings.Contains(string(r.body), `"completion_tokens":13`) || !strings.Contains(string(r.body), `"reasoning_tokens":4`) {
					t.Errorf("answer = %s", r.body)
				}
			},
		},
		{
			name: "gem's answer undecodable: retried, then failover", gemFirst: true,
			g:          proxytest.Sequence(proxytest.Raw("application/json", `{"candidates":[`)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=upstream_decode_error," + gem + "=upstream_decode_error," + gpt + "=200",
			wantHits: [2]int{2, 1}, gemState: health.StateCooldown, gemWhy: "upstream_decode_error",
		},
		{
			name: "gem reset: transport error, failover", gemFirst: true,
			g:          proxytest.Sequence(proxytest.Reset()),
			wantStatus: 200, wantServed: gpt, wantTrail: gem + "=transport_error," + gpt + "=200", wantHits: [2]int{1, 1},
			gemState: health.StateCooldown, gemWhy: "transport_error",
		},
		{
			name: "retry_on_429 false: gem's 429 returned as OpenAI's envelope with its Retry-After", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiRateLimited("7")),
			routing:    storage.Routing{RetryOn429: ptr(false)},
			wantStatus: 429, wantTrail: gem + "=429", wantHits: [2]int{1, 0}, wantErr: "rate_limit_error",
			gemState: health.StateCooldown, gemWhy: "upstream_rate_limited",
			check: func(t *testing.T, r response) { wantHeader(t, r.header, "Retry-After", "7") },
		},
		// OpenAI-wire primary, Gemini secondary.
		{
			name:       "gpt 503: gem answers the failover",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			wantStatus: 200, wantServed: gem, wantTrail: gpt + "=503," + gem + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_server_error",
		},
		{
			name:       "gpt 429: gem answers the failover",
			oai:        proxytest.Sequence(proxytest.RateLimited("60")),
			wantStatus: 200, wantServed: gem, wantTrail: gpt + "=429," + gem + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_rate_limited",
		},
		{
			name:       "gpt 503 and gem 500: 502 naming no upstream detail",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			g:          proxytest.Sequence(proxytest.GeminiServerError()),
			wantStatus: 502, wantTrail: gpt + "=503," + gem + "=500", wantHits: [2]int{1, 1}, wantErr: "upstream_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", gemState: health.StateCooldown, gemWhy: "upstream_server_error",
		},
		{
			name:       "gpt 503 and gem 429: the caller gets gem's 429 as OpenAI's envelope",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			g:          proxytest.Sequence(proxytest.GeminiRateLimited("60")),
			wantStatus: 429, wantTrail: gpt + "=503," + gem + "=429", wantHits: [2]int{1, 1}, wantErr: "rate_limit_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", gemState: health.StateCooldown, gemWhy: "upstream_rate_limited",
			check: func(t *testing.T, r response) {
				wantHeader(t, r.header, "Retry-After", "60")
				if code := r.json(t)["error"].(map[string]any)["code"]; code != "rate_limit_exceeded" {
					t.Errorf("code = %v", code)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := geminiUpstream(t, gem, tt.g...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, mixedGemini(g, oai, tt.gemFirst, tt.routing))
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if g.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits gem=%d gpt=%d, want %v", g.Hits(), oai.Hits(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			wantUnder(t, r.took, 3*time.Second)
			if tt.wantStatus == 200 {
				if m := r.json(t); m["model"] != "chat-prod" {
					t.Errorf("model = %v, want the alias", m["model"])
				}
			}
			if tt.wantErr != "" {
				if got := r.errType(t); got != tt.wantErr {
					t.Errorf("error type = %q, want %q; body %s", got, tt.wantErr, r.body)
				}
			}
			wantNoGeminiLeak(t, e, "response body", string(r.body))
			wantTargetState(t, e, gem, tt.gemState, tt.gemWhy)
			wantTargetState(t, e, gpt, tt.gptState, tt.gptWhy)
			for _, req := range g.Requests() {
				wantGeminiRequest(t, req, false)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

func TestGeminiFaultsStreaming(t *testing.T) {
	fast := []func(*storage.Model){withStreamTimeout(300)}
	tests := []struct {
		name        string
		gemFirst    bool
		g, oai      []proxytest.Behavior
		routing     storage.Routing
		mods        []func(*storage.Model)
		wantStatus  int // 0: 200
		wantServed  string
		wantTrail   string
		wantHits    [2]int // gem, gpt
		wantContent string
		wantDone    bool
		wantErrType string // of the error frame (or, with wantStatus, the JSON error)
		gemState    string
		gemWhy      string
		gptState    string
		gptWhy      string
	}{
		{
			name: "gem streams: translated chunks under the alias, then [DONE]", gemFirst: true,
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0}, wantContent: "hello from gem", wantDone: true,
		},
		{
			name: "a thought part streams before the text", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{Thought: "Let me think."})),
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0}, wantContent: "hello from gem", wantDone: true,
		},
		{
			name: "in-band UNAVAILABLE before content fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{ErrorAt: 1})),
			wantServed: gpt, wantTrail: gem + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "upstream_overloaded",
		},
		{
			name: "in-band RESOURCE_EXHAUSTED before content fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{ErrorAt: 1, ErrorStatus: "RESOURCE_EXHAUSTED"})),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: gpt, wantTrail: gem + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "upstream_rate_limited",
		},
		{
			name: "in-band INTERNAL after content ends with an error frame naming no upstream detail", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{ErrorAt: 3, ErrorStatus: "INTERNAL"})),
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from", wantErrType: "upstream_error", gemState: health.StateCooldown, gemWhy: "upstream_in_band_error",
		},
		{
			name: "a blocked prompt on a stream is returned as JSON, no failover", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiBlocked("SAFETY")),
			wantStatus: 400, wantTrail: gem + "=in_band_error", wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error",
		},
		{
			name: "cut before content fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{CutBeforeContent: true})),
			wantServed: gpt, wantTrail: gem + "=stream_aborted," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "transport_error",
		},
		{
			name: "silent after the headers: failover on the first-content bound", gemFirst: true,
			g:    proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{StallBeforeContent: true})),
			mods: fast, wantServed: gpt, wantTrail: gem + "=timeout," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "request_timeout",
		},
		{
			name: "cut after content ends with a stream_aborted frame", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{CutAfter: 2})),
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from", wantErrType: "stream_aborted", gemState: health.StateCooldown, gemWhy: "transport_error",
		},
		{
			name: "stall after content ends with a timeout frame", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{StallAfter: 1})),
			mods:       fast,
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "timeout", gemState: health.StateCooldown, gemWhy: "request_timeout",
		},
		{
			name: "a stream ending without a finishReason is not completed", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{NoFinish: true})),
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from gem", wantErrType: "stream_aborted", gemState: health.StateCooldown, gemWhy: "transport_error",
		},
		{
			name: "a malformed event before content fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{MalformedAt: 1})),
			wantServed: gpt, wantTrail: gem + "=upstream_decode_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "upstream_decode_error",
		},
		{
			name: "a malformed event after content ends with a stream_aborted frame", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{MalformedAt: 2})),
			wantServed: gem, wantTrail: gem + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "stream_aborted", gemState: health.StateCooldown, gemWhy: "transport_error",
		},
		{
			name: "503 on a stream fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiOverloaded()),
			wantServed: gpt, wantTrail: gem + "=503," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "upstream_overloaded",
		},
		{
			name: "429 on a stream with a short Retry-After retries gem", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiRateLimited("0.05"), proxytest.GeminiOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: gem, wantTrail: gem + "=429," + gem + "=200", wantHits: [2]int{2, 0}, wantContent: "hello from gem", wantDone: true,
		},
		{
			name: "403 on a stream fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiPermissionDenied()),
			wantServed: gpt, wantTrail: gem + "=403," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "upstream_forbidden",
		},
		{
			name: "404 on a stream fails over", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiNotFound()),
			wantServed: gpt, wantTrail: gem + "=404," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, gemState: health.StateCooldown, gemWhy: "upstream_model_not_found",
		},
		{
			name: "400 on a stream is returned as JSON, no failover", gemFirst: true,
			g:          proxytest.Sequence(proxytest.GeminiError(400, "INVALID_ARGUMENT", "Request contains an invalid argument.")),
			wantStatus: 400, wantTrail: gem + "=400", wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error",
		},
		// OpenAI-wire primary, Gemini secondary.
		{
			name:       "gpt reset: gem streams the failover",
			oai:        proxytest.Sequence(proxytest.Reset()),
			wantServed: gem, wantTrail: gpt + "=transport_error," + gem + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gem", wantDone: true, gptState: health.StateCooldown, gptWhy: "transport_error",
		},
		{
			name:       "gpt in-band error before content: gem streams the failover",
			oai:        proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{ErrorAt: 1})),
			wantServed: gem, wantTrail: gpt + "=in_band_error," + gem + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gem", wantDone: true, gptState: health.StateCooldown, gptWhy: "upstream_in_band_error",
		},
		{
			name:       "gpt slow first token: gem streams the failover",
			oai:        proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{FirstDelay: 5 * time.Second})),
			mods:       fast,
			wantServed: gem, wantTrail: gpt + "=timeout," + gem + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gem", wantDone: true, gptState: health.StateCooldown, gptWhy: "request_timeout",
		},
		{
			name:       "gpt 503, then gem's in-band error before content: 502, nothing committed",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			g:          proxytest.Sequence(proxytest.GeminiStreamAnswer(proxytest.GeminiStreamOptions{ErrorAt: 1})),
			wantStatus: 502, wantTrail: gpt + "=503," + gem + "=in_band_error", wantHits: [2]int{1, 1}, wantErrType: "upstream_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", gemState: health.StateCooldown, gemWhy: "upstream_overloaded",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := geminiUpstream(t, gem, tt.g...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, mixedGemini(g, oai, tt.gemFirst, tt.routing, tt.mods...))
			r := e.stream("chat-prod")
			wantStatus := tt.wantStatus
			if wantStatus == 0 {
				wantStatus = http.StatusOK
			}
			if r.status != wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, wantStatus, r.raw)
			}
			if g.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits gem=%d gpt=%d, want %v", g.Hits(), oai.Hits(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			wantUnder(t, r.took, 3*time.Second)
			wantNoGeminiLeak(t, e, "the caller's stream", r.raw)
			wantTargetState(t, e, gem, tt.gemState, tt.gemWhy)
			wantTargetState(t, e, gpt, tt.gptState, tt.gptWhy)
			for _, req := range g.Requests() {
				wantGeminiRequest(t, req, true)
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
			}
			if strings.Contains(r.raw, "candidates") || strings.Contains(r.raw, "usageMetadata") {
				t.Errorf("Gemini events relayed untranslated:\n%s", r.raw)
			}
			if tt.wantServed == gpt && strings.Contains(r.raw, "gemresp") {
				t.Errorf("frames of the failed gem attempt reached the caller:\n%s", r.raw)
			}
			if tt.wantServed == gem {
				chs := r.chunks(t)
				if len(chs) == 0 || len(chs[0].Choices) == 0 || chs[0].Choices[0].Delta.Role != "assistant" || chs[0].Object != "chat.completion.chunk" {
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
			case hasErr && !strings.Contains(errEv.data, `"type":"`+tt.wantErrType+`"`):
				t.Errorf("error event = %s, want type %s", errEv.data, tt.wantErrType)
			}
		})
	}
}

var getWeather = proxytest.GeminiCall{Name: "get_weather", Args: `{"city": "Paris"}`}

// wantGeminiTools checks the tool definition reached Gemini as a
// functionDeclaration, its schema reduced.
func wantGeminiTools(t *testing.T, req proxytest.Request, stream bool) {
	t.Helper()
	b := wantGeminiRequest(t, req, stream)
	var tools []struct {
		FunctionDeclarations []struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"functionDeclarations"`
	}
	if err := json.Unmarshal(b["tools"], &tools); err != nil || len(tools) != 1 || len(tools[0].FunctionDeclarations) != 1 ||
		tools[0].FunctionDeclarations[0].Name != "get_weather" || !strings.Contains(string(tools[0].FunctionDeclarations[0].Parameters), `"city"`) {
		t.Errorf("upstream tools = %s", req.Body)
	}
	if !strings.Contains(string(b["toolConfig"]), `"mode":"AUTO"`) {
		t.Errorf("upstream toolConfig = %s", b["toolConfig"])
	}
}

func TestGeminiToolCalls(t *testing.T) {
	t.Run("plain, gpt 503 first", func(t *testing.T) {
		g := geminiUpstream(t, gem, proxytest.GeminiFunctionCalls("Checking.", getWeather))
		oai := upstream(t, gpt, proxytest.ServerError(503))
		e := newEnv(t, mixedGemini(g, oai, false, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, toolsRequest(false))
		if r.status != 200 {
			t.Fatalf("status = %d: %s", r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Attempts", gpt+"=503,"+gem+"=200")
		var body struct {
			Choices []struct {
				Message struct {
					Content   string `json:"content"`
					ToolCalls []struct {
						ID, Type string
						Function struct{ Name, Arguments string }
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
		if tc := ch.Message.ToolCalls[0]; tc.ID != "call_0" || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris"}` {
			t.Errorf("tool call = %+v", tc)
		}
		wantGeminiTools(t, g.Requests()[0], false)
	})
	for _, gemFirst := range []bool{true, false} {
		t.Run("streaming, gem first "+map[bool]string{true: "yes", false: "no (gpt reset)"}[gemFirst], func(t *testing.T) {
			g := geminiUpstream(t, gem, proxytest.GeminiFunctionCalls("", getWeather))
			oai := upstream(t, gpt, proxytest.Reset())
			e := newEnv(t, mixedGemini(g, oai, gemFirst, storage.Routing{}))
			r := e.streamReq(toolsRequest(true))
			if r.status != 200 || !r.done() {
				t.Fatalf("status = %d, done %v: %s", r.status, r.done(), r.raw)
			}
			wantHeader(t, r.header, "X-Aisix-Served-By", gem)
			n := 0
			for _, c := range r.chunks(t) {
				for _, ch := range c.Choices {
					for _, tc := range ch.Delta.ToolCalls {
						n++
						if tc.Index != 0 || tc.ID != "call_0" || tc.Type != "function" || tc.Function.Name != "get_weather" || tc.Function.Arguments != `{"city":"Paris"}` {
							t.Errorf("tool_calls delta = %+v", tc)
						}
					}
				}
			}
			if n != 1 {
				t.Errorf("%d tool_calls deltas, want 1:\n%s", n, r.raw)
			}
			if got := r.finishReason(t); got != "tool_calls" {
				t.Errorf("finish_reason = %q", got)
			}
			wantGeminiTools(t, g.Requests()[0], true)
		})
	}
	t.Run("the tool result goes back as a functionResponse", func(t *testing.T) {
		g := geminiUpstream(t, gem)
		oai := upstream(t, gpt)
		e := newEnv(t, mixedGemini(g, oai, true, storage.Routing{}))
		body := `{"model":"chat-prod","messages":[{"role":"user","content":"Say hello."},` +
			`{"role":"assistant","content":null,"tool_calls":[{"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},` +
			`{"role":"tool","tool_call_id":"call_0","content":"{\"temp_c\":18}"}]}`
		if r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, body); r.status != 200 {
			t.Fatalf("status = %d: %s", r.status, r.body)
		}
		var req struct {
			Contents []struct {
				Role  string           `json:"role"`
				Parts []map[string]any `json:"parts"`
			} `json:"contents"`
		}
		_ = json.Unmarshal(g.Requests()[0].Body, &req)
		if len(req.Contents) != 3 || req.Contents[1].Role != "model" || req.Contents[1].Parts[0]["functionCall"] == nil ||
			req.Contents[2].Role != "user" || req.Contents[2].Parts[0]["functionResponse"] == nil {
			t.Errorf("upstream contents = %s", g.Requests()[0].Body)
		}
	})
}

// TestGeminiImages: a data URL goes as inlineData; an image URL Gemini
// cannot fetch is not sent to it at all: the request fails over to the
// OpenAI-wire target, which takes URLs.
func TestGeminiImages(t *testing.T) {
	g := geminiUpstream(t, gem)
	oai := upstream(t, gpt)
	e := newEnv(t, mixedGemini(g, oai, true, storage.Routing{}))
	img := func(url string) string {
		return `{"model":"chat-prod","messages":[{"role":"user","content":[{"type":"text","text":"Say hello."},{"type":"image_url","image_url":{"url":"` + url + `"}}]}]}`
	}
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, img("data:image/png;base64,iVBORw0KGgo="))
	if r.status != 200 || r.header.Get("X-Aisix-Served-By") != gem {
		t.Fatalf("data URL: %d %s", r.status, r.body)
	}
	if b := string(g.Requests()[0].Body); !strings.Contains(b, `"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}`) {
		t.Errorf("upstream body = %s", b)
	}
	r = e.do(http.MethodPost, "/v1/chat/completions", callerKey, img("https://example.com/cat.png"))
	if r.status != 200 || r.header.Get("X-Aisix-Served-By") != gpt || g.Hits() != 1 {
		t.Errorf("http URL: %d served by %q, gem hits %d: %s", r.status, r.header.Get("X-Aisix-Served-By"), g.Hits(), r.body)
	}
}

func TestGeminiStreamIncludeUsage(t *testing.T) {
	g := geminiUpstream(t, gem)
	oai := upstream(t, gpt)
	e := newEnv(t, mixedGemini(g, oai, true, storage.Routing{}))
	r := e.streamReq(`{"model":"chat-prod","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello."}]}`)
	if r.status != 200 || !r.done() {
		t.Fatalf("status = %d, done %v:\n%s", r.status, r.done(), r.raw)
	}
	chs := r.chunks(t)
	last := chs[len(chs)-1]
	if last.Usage == nil || len(last.Choices) != 0 || last.Usage.PromptTokens != 10 || last.Usage.CompletionTokens != 9 || last.Usage.TotalTokens != 19 {
		t.Fatalf("the last chunk before [DONE] is not the usage chunk:\n%s", r.raw)
	}
	for _, c := range chs[:len(chs)-1] {
		if c.Usage != nil {
			t.Errorf("usage before the usage chunk: %+v", c)
		}
	}
	if b := wantGeminiRequest(t, g.Requests()[0], true); b["stream_options"] != nil {
		t.Errorf("stream_options went upstream")
	}
}

// TestGeminiInvalidKey: Google answers a wrong API key with a 400
// INVALID_ARGUMENT (reason API_KEY_INVALID); the gateway treats it as the
// target's credential, as a 401: failover and cooldown, never the
// caller's fault.
func TestGeminiInvalidKey(t *testing.T) {
	g := geminiUpstream(t, gem)
	oai := upstream(t, gpt)
	ds := mixedGemini(g, oai, true, storage.Routing{})
	ds.ProviderKeys[0].Secret = "AIzaSyD-wrong"
	e := newEnv(t, ds)
	r := e.chat("chat-prod")
	if r.status != 200 || r.header.Get("X-Aisix-Served-By") != gpt {
		t.Fatalf("status %d served by %q: %s", r.status, r.header.Get("X-Aisix-Served-By"), r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", gem+"=400,"+gpt+"=200")
	wantTargetState(t, e, gem, health.StateCooldown, "upstream_auth_failure")
	// Alone, the caller gets a 502 that quotes nothing of Google's answer.
	e2 := newEnv(t, storage.Dataset{ProviderKeys: ds.ProviderKeys[:1], Models: ds.Models[:1], APIKeys: ds.APIKeys})
	r = e2.chat(gem)
	if r.status != 502 || strings.Contains(string(r.body), "API key") || strings.Contains(string(r.body), "AIza") {
		t.Errorf("alone: %d %s", r.status, r.body)
	}
}

// TestGeminiEmbeddings: one input goes to :embedContent, several to
// :batchEmbedContents; the answer is OpenAI's list under the alias, as
// floats or base64 float32.
func TestGeminiEmbeddings(t *testing.T) {
	g := geminiUpstream(t, gem)
	oai := upstream(t, gpt)
	e := newEnv(t, mixedGemini(g, oai, true, storage.Routing{}))
	r := e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"chat-prod","input":"hello","dimensions":3}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if got := string(r.body); got != `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5,1]}],"model":"chat-prod","usage":{"prompt_tokens":0,"total_tokens":0}}` {
		t.Errorf("answer = %s", got)
	}
	req := g.Requests()[0]
	if req.Path != "/v1beta/models/"+gemModelName+":embedContent" || !strings.Contains(string(req.Body), `"outputDimensionality":3`) {
		t.Errorf("upstream %s %s", req.Path, req.Body)
	}
	wantHeader(t, req.Header, "X-Goog-Api-Key", geminiSecret)

	r = e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"chat-prod","input":["a","b"],"encoding_format":"base64"}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	var list struct {
		Data []struct {
			Index     int    `json:"index"`
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &list); err != nil || len(list.Data) != 2 || list.Data[1].Index != 1 {
		t.Fatalf("answer %s: %v", r.body, err)
	}
	if raw, err := base64.StdEncoding.DecodeString(list.Data[0].Embedding); err != nil || len(raw) != 12 {
		t.Errorf("base64 embedding %q: %v", list.Data[0].Embedding, err)
	}
	if req := g.Requests()[1]; req.Path != "/v1beta/models/"+gemModelName+":batchEmbedContents" {
		t.Errorf("batch went to %s", req.Path)
	}
}

// TestGeminiMessages: an Anthropic Messages caller on a Gemini target is
// translated through chat completions, plain and streaming.
func TestGeminiMessages(t *testing.T) {
	g := geminiUpstream(t, gem)
	oai := upstream(t, gpt)
	e := newEnv(t, mixedGemini(g, oai, true, storage.Routing{}))
	for _, stream := range []string{"false", "true"} {
		r := e.do(http.MethodPost, "/v1/messages", "", `{"model":"chat-prod","max_tokens":10,"stream":`+stream+`,"messages":[{"role":"user","content":"Say hello."}]}`,
			"x-api-key", callerKey)
		if r.status != 200 || !strings.Contains(string(r.body), `"hello`) || !strings.Contains(string(r.body), ` gem"`) || r.header.Get("X-Aisix-Served-By") != gem {
			t.Errorf("stream=%s: %d %s", stream, r.status, r.body)
		}
		if stream == "false" && !strings.Contains(string(r.body), `"type":"message"`) {
			t.Errorf("not a Messages answer: %s", r.body)
		}
		if stream == "true" && !strings.Contains(string(r.body), "event: message_stop") {
			t.Errorf("not a Messages stream: %s", r.body)
		}
	}
	r := e.do(http.MethodPost, "/v1/messages/count_tokens", "", `{"model":"chat-prod","messages":[{"role":"user","content":"Say hello."}]}`, "x-api-key", callerKey)
	if r.status != 200 || !strings.Contains(string(r.body), `"input_tokens":`) {
		t.Errorf("count_tokens: %d %s", r.status, r.body)
	}
}
