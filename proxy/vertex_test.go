package proxy_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// The Vertex AI adapter's fault suite, for Claude on Vertex: the failure
// rules hold for a Vertex target as for an OpenAI-wire or an Anthropic
// one, in both failover directions, plain and streaming. The Vertex
// upstream is proxytest's fake, which checks the path, the bearer token
// and the body as Vertex does and answers as Anthropic's API reference
// documents (errors in Google's envelope or Anthropic's); the token
// endpoint is proxytest's fake Google OAuth, which verifies the service
// account's signed JWT.

const (
	vclaude         = "vclaude" // the Vertex target's name (and trail label)
	vertexModelName = "claude-haiku-4-5@20251001"
	vertexProject   = "proj-test"
	vertexRegion    = "us-east5"
	vertexToken     = "ya29.a0-given-access-token"
)

func newVertex(t testing.TB, g *proxytest.GoogleOAuth, script ...proxytest.Behavior) *proxytest.Vertex {
	t.Helper()
	v := proxytest.NewVertex(vclaude, proxytest.VertexOptions{Project: vertexProject, Region: vertexRegion, Token: vertexToken, OAuth: g}, script...)
	t.Cleanup(v.Close)
	return v
}

func newGoogleOAuth(t testing.TB) *proxytest.GoogleOAuth {
	t.Helper()
	g := proxytest.NewGoogleOAuth(proxytest.GoogleOAuthOptions{})
	t.Cleanup(g.Close)
	return g
}

// vertexKey is a vertex provider key on v: a service account of g, or
// (g nil) the access token.
func vertexKey(id string, v *proxytest.Vertex, g *proxytest.GoogleOAuth, forward ...string) storage.ProviderKey {
	secret := fmt.Sprintf(`{"project":%q,"region":%q,"access_token":%q}`, vertexProject, vertexRegion, vertexToken)
	if g != nil {
		secret = g.Secret(vertexProject, vertexRegion)
	}
	pk := storage.ProviderKey{ID: id, DisplayName: id, Provider: "vertex", Adapter: storage.AdapterVertex,
		Secret: secret, APIBase: v.URL(), ForwardHeaders: forward}
	pk.SecretHost = pk.BaseHost()
	return pk
}

func vertexModel(name, pkID string, mods ...func(*storage.Model)) storage.Model {
	m := storage.Model{ID: "id-" + name, DisplayName: name, Provider: "vertex", ModelName: vertexModelName, ProviderKeyID: pkID}
	for _, fn := range mods {
		fn(&m)
	}
	return m
}

// vmixed is chat-prod over vclaude (on v) and gpt (on oai), vclaude first
// when vertexFirst.
func vmixed(v *proxytest.Vertex, g *proxytest.GoogleOAuth, oai *proxytest.Upstream, vertexFirst bool, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	if vertexFirst {
		r.Targets = targets(vclaude, gpt)
	} else {
		r.Targets = targets(gpt, vclaude)
	}
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, g), providerKey("pk-gpt", oai.BaseURL())},
		Models: []storage.Model{
			vertexModel(vclaude, "pk-vertex", mods...),
			directModel(gpt, "pk-gpt", mods...),
			routingModel("chat-prod", r),
		},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

// wantVertexRequest checks one request the fake Vertex received: the
// bearer token, none of Anthropic's or the caller's credential headers,
// and a Messages body without model and with anthropic_version.
func wantVertexRequest(t testing.TB, r proxytest.Request, stream bool) {
	t.Helper()
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ya29.") || strings.Contains(a, callerKey) {
		t.Errorf("authorization %q", a)
	}
	for _, h := range []string{"X-Api-Key", "Anthropic-Version", "Openai-Organization"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("upstream request carries %s: %q", h, v)
		}
	}
	suffix := vertexModelName + ":rawPredict"
	if stream {
		suffix = vertexModelName + ":streamRawPredict"
	}
	if want := "/v1/projects/" + vertexProject + "/locations/" + vertexRegion + "/publishers/anthropic/models/" + suffix; r.Path != want {
		t.Errorf("path %s, want %s", r.Path, want)
	}
	var b map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &b); err != nil {
		t.Fatalf("body: %v", err)
	}
	if _, ok := b["model"]; ok || string(b["anthropic_version"]) != `"vertex-2023-10-16"` || b["max_tokens"] == nil || r.Stream != stream {
		t.Errorf("body %s", r.Body)
	}
	if !strings.Contains(string(b["messages"]), "Say hello.") {
		t.Errorf("messages %s", b["messages"])
	}
}

// vertexLeaks are details of the fakes' answers no caller may see.
var vertexLeaks = []string{"10.1.2.3", "Internal server error", "req_fake", "ya29.", "PRIVATE KEY", "Invalid JWT", "Backend Error",
	"invalid_grant", "internal_failure", "RESOURCE_EXHAUSTED", "UNAUTHENTICATED", "PERMISSION_DENIED"}

func wantNoVertexLeak(t testing.TB, e *env, what, s string) {
	t.Helper()
	all, _ := e.reg.Events(0)
	for _, ev := range all {
		s += "\n" + ev.Reason + " " + ev.Detail
	}
	for _, m := range []string{vclaude, vgemini, gpt} {
		s += "\n" + e.reg.Status("id-"+m).LastError
	}
	s += "\n" + e.logs.String()
	for _, l := range vertexLeaks {
		if strings.Contains(s, l) {
			t.Errorf("%s, events or logs leak %q:\n%s", what, l, s)
		}
	}
}

func TestVertexFaultsPlain(t *testing.T) {
	tests := []struct {
		name        string
		vertexFirst bool
		vtx, oai    []proxytest.Behavior
		routing     storage.Routing
		wantStatus  int
		wantServed  string
		wantTrail   string
		wantHits    [2]int // vclaude, gpt
		vState      string
		vWhy        string
		gptState    string
		gptWhy      string
		wantErrType string
	}{
		{name: "vertex answers: a chat.completion under the alias", vertexFirst: true,
			wantStatus: 200, wantServed: vclaude, wantTrail: vclaude + "=200", wantHits: [2]int{1, 0}},
		{name: "429 RESOURCE_EXHAUSTED fails over, cooled as rate limited", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.VertexQuotaExceeded()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			vState: health.StateCooldown, vWhy: "upstream_rate_limited"},
		{name: "529 overloaded_error is retried, then fails over", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.AnthropicOverloaded()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=529," + vclaude + "=529," + gpt + "=200", wantHits: [2]int{2, 1},
			vState: health.StateCooldown, vWhy: "upstream_overloaded"},
		{name: "503 UNAVAILABLE once, then vertex answers the retry", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.VertexUnavailable(), proxytest.AnthropicOK()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: vclaude, wantTrail: vclaude + "=503," + vclaude + "=200", wantHits: [2]int{2, 0}},
		{name: "401 UNAUTHENTICATED fails over without a retry", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.VertexError(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=401," + gpt + "=200", wantHits: [2]int{1, 1},
			vState: health.StateCooldown, vWhy: "upstream_auth_failure"},
		{name: "403 PERMISSION_DENIED fails over", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.VertexPermissionDenied()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=403," + gpt + "=200", wantHits: [2]int{1, 1},
			vState: health.StateCooldown, vWhy: "upstream_forbidden"},
		{name: "404 NOT_FOUND fails over", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.VertexModelNotFound()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=404," + gpt + "=200", wantHits: [2]int{1, 1},
			vState: health.StateCooldown, vWhy: "upstream_model_not_found"},
		{name: "prompt too long fails over without a cooldown", vertexFirst: true,
			vtx: proxytest.Sequence(proxytest.AnthropicPromptTooLong()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=400," + gpt + "=200", wantHits: [2]int{1, 1}},
		{name: "another 400 is the caller's: returned at once, redacted", vertexFirst: true,
			vtx: proxytest.Sequence(badRequest()), routing: storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: vclaude + "=400", wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error"},
		{name: "vertex reset: transport error, failover", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.Reset()),
			wantStatus: 200, wantServed: gpt, wantTrail: vclaude + "=transport_error," + gpt + "=200", wantHits: [2]int{1, 1},
			vState: health.StateCooldown, vWhy: "transport_error"},
		{name: "gpt 503: vertex answers the failover",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			wantStatus: 200, wantServed: vclaude, wantTrail: gpt + "=503," + vclaude + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_server_error"},
		{name: "gpt 401: vertex answers the failover",
			oai:        proxytest.Sequence(proxytest.Status(401, `{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}`)),
			wantStatus: 200, wantServed: vclaude, wantTrail: gpt + "=401," + vclaude + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_auth_failure"},
		{name: "gpt 503 and vertex 503: 502 naming no upstream detail",
			oai: proxytest.Sequence(proxytest.ServerError(503)), vtx: proxytest.Sequence(proxytest.VertexUnavailable()),
			wantStatus: 502, wantTrail: gpt + "=503," + vclaude + "=503", wantHits: [2]int{1, 1}, wantErrType: "upstream_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", vState: health.StateCooldown, vWhy: "upstream_overloaded"},
		{name: "gpt 503 and vertex 429: the caller gets the 429 as OpenAI's envelope",
			oai: proxytest.Sequence(proxytest.ServerError(503)), vtx: proxytest.Sequence(proxytest.VertexQuotaExceeded()),
			wantStatus: 429, wantTrail: gpt + "=503," + vclaude + "=429", wantHits: [2]int{1, 1}, wantErrType: "rate_limit_error",
			gptState: health.StateCooldown, gptWhy: "upstream_server_error", vState: health.StateCooldown, vWhy: "upstream_rate_limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGoogleOAuth(t)
			v := newVertex(t, g, tt.vtx...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, vmixed(v, g, oai, tt.vertexFirst, tt.routing))
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if v.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] || v.Denied() != 0 {
				t.Errorf("hits vertex=%d gpt=%d (denied %d), want %v", v.Hits(), oai.Hits(), v.Denied(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			if tt.wantStatus == 200 {
				m := r.json(t)
				content := m["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"]
				if m["model"] != "chat-prod" || m["object"] != "chat.completion" || content != "hello from "+tt.wantServed {
					t.Errorf("answer %s", r.body)
				}
			}
			if tt.wantErrType != "" {
				if got := r.errType(t); got != tt.wantErrType {
					t.Errorf("error type = %q, want %q; body %s", got, tt.wantErrType, r.body)
				}
			}
			if tt.wantStatus == 400 {
				wantBadRequestBody(t, r)
			}
			wantNoVertexLeak(t, e, "response body", string(r.body))
			wantTargetState(t, e, vclaude, tt.vState, tt.vWhy)
			wantTargetState(t, e, gpt, tt.gptState, tt.gptWhy)
			for _, req := range v.Requests() {
				wantVertexRequest(t, req, false)
			}
			if v.Hits() > 0 && g.Hits() != 1 {
				t.Errorf("token requests %d, want 1", g.Hits())
			}
		})
	}
}

func TestVertexFaultsStreaming(t *testing.T) {
	tests := []struct {
		name        string
		vertexFirst bool
		vtx, oai    []proxytest.Behavior
		routing     storage.Routing
		wantServed  string
		wantTrail   string
		wantHits    [2]int
		wantContent string
		wantDone    bool
		wantErrType string
		vState      string
		vWhy        string
	}{
		{name: "vertex streams: translated chunks under the alias, then [DONE]", vertexFirst: true,
			wantServed: vclaude, wantTrail: vclaude + "=200", wantHits: [2]int{1, 0}, wantContent: "hello from vclaude", wantDone: true},
		{name: "pings are dropped", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Ping: true})),
			wantServed: vclaude, wantTrail: vclaude + "=200", wantHits: [2]int{1, 0}, wantContent: "hello from vclaude", wantDone: true},
		{name: "in-band overloaded_error before content fails over", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1})),
			wantServed: gpt, wantTrail: vclaude + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, vState: health.StateCooldown, vWhy: "upstream_overloaded"},
		{name: "in-band error after content ends with an error frame, no [DONE]", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 2})),
			wantServed: vclaude, wantTrail: vclaude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "upstream_error", vState: health.StateCooldown, vWhy: "upstream_overloaded"},
		{name: "cut after content ends with a stream_aborted frame", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{CutAfter: 2})),
			wantServed: vclaude, wantTrail: vclaude + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from", wantErrType: "stream_aborted", vState: health.StateCooldown, vWhy: "transport_error"},
		{name: "429 on a stream fails over", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.VertexQuotaExceeded()),
			wantServed: gpt, wantTrail: vclaude + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, vState: health.StateCooldown, vWhy: "upstream_rate_limited"},
		{name: "403 on a stream fails over", vertexFirst: true,
			vtx:        proxytest.Sequence(proxytest.VertexPermissionDenied()),
			wantServed: gpt, wantTrail: vclaude + "=403," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, vState: health.StateCooldown, vWhy: "upstream_forbidden"},
		{name: "gpt reset: vertex streams the failover",
			oai:        proxytest.Sequence(proxytest.Reset()),
			wantServed: vclaude, wantTrail: gpt + "=transport_error," + vclaude + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from vclaude", wantDone: true},
		{name: "gpt in-band error before content: vertex streams the failover",
			oai:        proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{ErrorAt: 1})),
			wantServed: vclaude, wantTrail: gpt + "=in_band_error," + vclaude + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from vclaude", wantDone: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := newGoogleOAuth(t)
			v := newVertex(t, g, tt.vtx...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, vmixed(v, g, oai, tt.vertexFirst, tt.routing))
			r := e.stream("chat-prod")
			if r.status != 200 {
				t.Fatalf("status = %d; body %s", r.status, r.raw)
			}
			if v.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] || v.Denied() != 0 {
				t.Errorf("hits vertex=%d gpt=%d (denied %d), want %v", v.Hits(), oai.Hits(), v.Denied(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			if got := r.content(t); got != tt.wantContent {
				t.Errorf("content = %q, want %q; raw:\n%s", got, tt.wantContent, r.raw)
			}
			if r.done() != tt.wantDone {
				t.Errorf("[DONE] = %v, want %v; raw:\n%s", r.done(), tt.wantDone, r.raw)
			}
			errEv, hasErr := r.errorEvent()
			switch {
			case tt.wantErrType == "" && hasErr:
				t.Errorf("unexpected error event: %s", errEv.data)
			case tt.wantErrType != "" && (!hasErr || !strings.Contains(errEv.data, `"type":"`+tt.wantErrType+`"`)):
				t.Errorf("error event %q, want type %s; raw:\n%s", errEv.data, tt.wantErrType, r.raw)
			}
			for _, ev := range r.events {
				if ev.name == "" && ev.data != "[DONE]" && !strings.Contains(ev.data, `"model":"chat-prod"`) {
					t.Errorf("chunk without the alias: %s", ev.data)
				}
			}
			if strings.Contains(r.raw, "message_start") || strings.Contains(r.raw, "content_block") {
				t.Errorf("Anthropic events relayed untranslated:\n%s", r.raw)
			}
			wantNoVertexLeak(t, e, "the caller's stream", r.raw)
			wantTargetState(t, e, vclaude, tt.vState, tt.vWhy)
			for _, req := range v.Requests() {
				wantVertexRequest(t, req, true)
			}
		})
	}
}

// TestVertexAnthropicFailover: Claude on Vertex and Claude on Anthropic's
// API back each other up, both directions.
func TestVertexAnthropicFailover(t *testing.T) {
	for _, vertexFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("vertexFirst=%v", vertexFirst), func(t *testing.T) {
			t.Parallel()
			g := newGoogleOAuth(t)
			vs, as := proxytest.Sequence(proxytest.VertexQuotaExceeded()), proxytest.Sequence(proxytest.AnthropicOK())
			first, second := vclaude, claude
			if !vertexFirst {
				vs, as = proxytest.Sequence(proxytest.AnthropicOK()), proxytest.Sequence(proxytest.AnthropicOverloaded())
				first, second = claude, vclaude
			}
			v := newVertex(t, g, vs...)
			ant := anthropicUpstream(t, claude, as...)
			e := newEnv(t, storage.Dataset{
				ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, g), anthropicKey("pk-claude", ant)},
				Models: []storage.Model{vertexModel(vclaude, "pk-vertex"), claudeModel(claude, "pk-claude"),
					routingModel("chat-prod", storage.Routing{Targets: targets(first, second)})},
				APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
			})
			for _, stream := range []bool{false, true} {
				var status int
				var header http.Header
				var body string
				if stream {
					r := e.stream("chat-prod")
					status, header, body = r.status, r.header, r.content(t)
				} else {
					r := e.chat("chat-prod")
					status, header = r.status, r.header
					if r.status == 200 {
						body = r.json(t)["choices"].([]any)[0].(map[string]any)["message"].(map[string]any)["content"].(string)
					}
				}
				if status != 200 || body != "hello from "+second {
					t.Fatalf("stream=%v: %d %q", stream, status, body)
				}
				wantHeader(t, header, "X-Aisix-Served-By", second)
				if !stream {
					want := fmt.Sprintf("%s=%d,%s=200", first, map[bool]int{true: 429, false: 529}[vertexFirst], second)
					wantHeader(t, header, "X-Aisix-Attempts", want)
				}
				e.clock.Advance(10 * time.Minute) // past the cooldown
			}
			if v.Denied() != 0 {
				t.Errorf("vertex denied %d requests", v.Denied())
			}
			for _, req := range v.Requests() {
				wantVertexRequest(t, req, req.Stream)
			}
		})
	}
}

// TestVertexTokenFailure: a token endpoint that refuses the service
// account's assertion, or is down, fails the attempt over
// (credential_error) and cools the target; nothing of the key, the
// assertion or the endpoint's answer reaches the caller, the health
// record or the logs; Vertex is never called without a token.
func TestVertexTokenFailure(t *testing.T) {
	for _, fail := range []int{400, 503} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%d/stream=%v", fail, stream), func(t *testing.T) {
				t.Parallel()
				g := newGoogleOAuth(t)
				g.FailNext(fail)
				v := newVertex(t, g)
				oai := upstream(t, gpt)
				e := newEnv(t, vmixed(v, g, oai, true, storage.Routing{}))
				var status int
				var header http.Header
				var body string
				if stream {
					r := e.stream("chat-prod")
					status, header, body = r.status, r.header, r.raw
				} else {
					r := e.chat("chat-prod")
					status, header, body = r.status, r.header, string(r.body)
				}
				if status != 200 {
					t.Fatalf("status %d: %s", status, body)
				}
				wantHeader(t, header, "X-Aisix-Attempts", vclaude+"=credential_error,"+gpt+"=200")
				wantHeader(t, header, "X-Aisix-Served-By", gpt)
				if g.Hits() != 1 || v.Hits()+v.Denied() != 0 {
					t.Errorf("token requests %d, vertex requests %d", g.Hits(), v.Hits()+v.Denied())
				}
				wantTargetState(t, e, vclaude, health.StateCooldown, "upstream_auth_failure")
				wantNoVertexLeak(t, e, "the answer", body+fmt.Sprint(header)+strings.TrimPrefix(g.URL(), "http://"))
				if strings.Contains(body+e.logs.String(), strings.TrimPrefix(g.URL(), "http://")) {
					t.Errorf("the token endpoint's address leaked")
				}
			})
		}
	}
}

// TestVertexTokenReuse: one token serves many concurrent requests, plain
// and streaming, and survives table reloads; a changed secret gets a new
// credential.
func TestVertexTokenReuse(t *testing.T) {
	g := newGoogleOAuth(t)
	v := newVertex(t, g)
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, g)},
		Models:       []storage.Model{vertexModel(vclaude, "pk-vertex")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if r := e.chat(vclaude); r.status != 200 {
					t.Errorf("chat %d: %s", r.status, r.body)
				}
			} else if r := e.stream(vclaude); r.status != 200 || !r.done() {
				t.Errorf("stream %d: %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	for i := range 3 {
		e.update(func(ds *storage.Dataset) { ds.Models[0].Timeout = ptr(int64(30000 + i)) })
		if r := e.chat(vclaude); r.status != 200 {
			t.Fatalf("after reload %d: %d %s", i, r.status, r.body)
		}
	}
	if g.Hits() != 1 || v.Hits() != n+3 || v.Denied() != 0 {
		t.Errorf("token requests %d (want 1), vertex hits %d denied %d", g.Hits(), v.Hits(), v.Denied())
	}
	// A new service account key (the same account, a rotated key file
	// here only re-encoded) is a new credential: one more token request.
	e.update(func(ds *storage.Dataset) {
		ds.ProviderKeys[0].Secret = strings.Replace(ds.ProviderKeys[0].Secret, `"region"`, ` "region"`, 1)
	})
	if r := e.chat(vclaude); r.status != 200 || g.Hits() != 2 {
		t.Errorf("after a secret change: %d, token requests %d", r.status, g.Hits())
	}
}

// TestVertexAccessToken: an access_token secret goes as the bearer token,
// with no token request.
func TestVertexAccessToken(t *testing.T) {
	v := newVertex(t, nil)
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, nil)},
		Models:       []storage.Model{vertexModel(vclaude, "pk-vertex")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	})
	r := e.chat(vclaude)
	if r.status != 200 || v.Hits() != 1 {
		t.Fatalf("%d %s (denied %d)", r.status, r.body, v.Denied())
	}
	wantHeader(t, v.Requests()[0].Header, "Authorization", "Bearer "+vertexToken)
	wantVertexRequest(t, v.Requests()[0], false)
}

// TestVertexMessages: a /v1/messages caller is passed through (model left
// out, anthropic_version added, the alias as the answer's model), plain
// and streaming; anthropic-beta goes only when the key forwards it;
// count_tokens goes to Vertex's count-tokens endpoint with the upstream
// model.
func TestVertexMessages(t *testing.T) {
	for _, forward := range [][]string{nil, {"anthropic-beta"}} {
		g := newGoogleOAuth(t)
		v := newVertex(t, g)
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, g, forward...)},
			Models:       []storage.Model{vertexModel(vclaude, "pk-vertex")},
			APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
		})
		for _, stream := range []bool{false, true} {
			body := fmt.Sprintf(`{"model":%q,"max_tokens":64,"stream":%v,"messages":[{"role":"user","content":"Say hello."}]}`, vclaude, stream)
			r := e.do(http.MethodPost, "/v1/messages", "", body, "X-Api-Key", callerKey, "Anthropic-Beta", "context-1m-2025-08-07")
			if r.status != 200 {
				t.Fatalf("stream=%v: %d %s", stream, r.status, r.body)
			}
			s := string(r.body)
			if stream {
				if !strings.Contains(s, "event: message_start") || !strings.Contains(s, `"model":"`+vclaude+`"`) || !strings.Contains(s, "event: message_stop") {
					t.Errorf("stream:\n%s", s)
				}
			} else if m := r.json(t); m["type"] != "message" || m["model"] != vclaude {
				t.Errorf("message %s", s)
			}
		}
		r := e.do(http.MethodPost, "/v1/messages/count_tokens", "", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Say hello."}]}`, vclaude), "X-Api-Key", callerKey)
		if r.status != 200 || !strings.Contains(string(r.body), `"input_tokens":10`) {
			t.Errorf("count_tokens: %d %s", r.status, r.body)
		}
		reqs := v.Requests()
		if len(reqs) != 3 || v.Denied() != 0 {
			t.Fatalf("vertex got %d requests, denied %d", len(reqs), v.Denied())
		}
		for _, req := range reqs[:2] {
			wantVertexRequest(t, req, req.Stream)
			if got := req.Header.Get("Anthropic-Beta"); (got != "") != (forward != nil) {
				t.Errorf("forward %v: anthropic-beta %q", forward, got)
			}
		}
		if c := reqs[2]; c.Endpoint != proxytest.EndpointCountTokens || c.Model != vertexModelName ||
			c.Path != "/v1/projects/"+vertexProject+"/locations/"+vertexRegion+"/publishers/anthropic/models/count-tokens:rawPredict" {
			t.Errorf("count_tokens request %s model %q", c.Path, c.Model)
		}
		if g.Hits() != 1 {
			t.Errorf("token requests %d", g.Hits())
		}
	}
}

// The Gemini half of the suite: Google's models on a vertex key speak
// the Gemini API's wire (package gemini's translation) at the project's
// publishers/google models, with the key's bearer token.

const (
	vgemini         = "vgemini" // the Vertex Gemini target's name
	vgeminiModel    = "gemini-2.5-flash"
	vgeminiEmbedder = "text-embedding-005"
)

func newVertexGemini(t testing.TB, g *proxytest.GoogleOAuth, script ...proxytest.Behavior) *proxytest.Vertex {
	t.Helper()
	v := proxytest.NewVertex(vgemini, proxytest.VertexOptions{Project: vertexProject, Region: vertexRegion, Token: vertexToken, OAuth: g}, script...)
	t.Cleanup(v.Close)
	return v
}

func vgeminiModelRow(name, pkID, modelName string, mods ...func(*storage.Model)) storage.Model {
	m := storage.Model{ID: "id-" + name, DisplayName: name, Provider: "vertex", ModelName: modelName, ProviderKeyID: pkID}
	for _, fn := range mods {
		fn(&m)
	}
	return m
}

// vgmixed is chat-prod over vgemini (on v) and gpt (on oai), vgemini
// first when vertexFirst, and vembed (text-embedding-005 on v).
func vgmixed(v *proxytest.Vertex, g *proxytest.GoogleOAuth, oai *proxytest.Upstream, vertexFirst bool, r storage.Routing) storage.Dataset {
	ds := vmixed(v, g, oai, vertexFirst, r)
	ds.Models[0] = vgeminiModelRow(vgemini, "pk-vertex", vgeminiModel)
	ds.Models = append(ds.Models, vgeminiModelRow("vembed", "pk-vertex", vgeminiEmbedder))
	if vertexFirst {
		ds.Models[2].Routing.Targets = targets(vgemini, gpt)
	} else {
		ds.Models[2].Routing.Targets = targets(gpt, vgemini)
	}
	return ds
}

// wantVertexGeminiRequest checks one Gemini request the fake Vertex
// received: the bearer token and no API key, the method's path (alt=sse
// when streaming), and a GenerateContentRequest carrying the prompt.
func wantVertexGeminiRequest(t testing.TB, r proxytest.Request, stream bool) {
	t.Helper()
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ya29.") || strings.Contains(a, callerKey) {
		t.Errorf("authorization %q", a)
	}
	for _, h := range []string{"X-Goog-Api-Key", "X-Api-Key", "Anthropic-Version"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("upstream request carries %s: %q", h, v)
		}
	}
	want := "/v1/projects/" + vertexProject + "/locations/" + vertexRegion + "/publishers/google/models/" + vgeminiModel + ":generateContent"
	if stream {
		want = "/v1/projects/" + vertexProject + "/locations/" + vertexRegion + "/publishers/google/models/" + vgeminiModel + ":streamGenerateContent?alt=sse"
	}
	if r.Path != want {
		t.Errorf("path %s, want %s", r.Path, want)
	}
	var b struct {
		Contents []struct {
			Role  string `json:"role"`
			Parts []struct {
				Text string `json:"text"`
			} `json:"parts"`
		} `json:"contents"`
	}
	if err := json.Unmarshal(r.Body, &b); err != nil || len(b.Contents) != 1 || b.Contents[0].Role != "user" || len(b.Contents[0].Parts) != 1 || b.Contents[0].Parts[0].Text != "Say hello." {
		t.Errorf("body %s (%v)", r.Body, err)
	}
}

// TestVertexGemini: a Gemini model on a vertex key answers a plain chat
// completion and a stream (the upstream's alt=sse events, which end at
// the finishReason without a [DONE], become OpenAI chunks and [DONE]),
// and embeddings through Vertex AI's :predict, usage from its token
// counts; the access token goes as the bearer token, no token request.
func TestVertexGemini(t *testing.T) {
	v := newVertexGemini(t, nil)
	oai := upstream(t, gpt)
	e := newEnv(t, vgmixed(v, nil, oai, true, storage.Routing{}))

	r := e.chat(vgemini)
	if r.status != 200 {
		t.Fatalf("chat: %d %s (denied %d)", r.status, r.body, v.Denied())
	}
	m := r.json(t)
	ch := m["choices"].([]any)[0].(map[string]any)
	if m["model"] != vgemini || m["object"] != "chat.completion" || ch["message"].(map[string]any)["content"] != "hello from "+vgemini || ch["finish_reason"] != "stop" {
		t.Errorf("answer %s", r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", vgemini)
	wantHeader(t, v.Requests()[0].Header, "Authorization", "Bearer "+vertexToken)
	wantVertexGeminiRequest(t, v.Requests()[0], false)

	s := e.stream("chat-prod")
	if s.status != 200 || !s.done() {
		t.Fatalf("stream: %d done=%v %s", s.status, s.done(), s.raw)
	}
	if got := s.content(t); got != "hello from "+vgemini {
		t.Errorf("stream content %q:\n%s", got, s.raw)
	}
	if got := s.finishReason(t); got != "stop" {
		t.Errorf("finish_reason %q", got)
	}
	for _, c := range s.chunks(t) {
		if c.Model != "chat-prod" {
			t.Errorf("chunk model %q", c.Model)
		}
	}
	wantHeader(t, s.header, "X-Aisix-Served-By", vgemini)
	wantVertexGeminiRequest(t, v.Requests()[1], true)

	r = e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"vembed","input":["hello world","hi"],"dimensions":3}`)
	if want := `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.25,-0.5,1]},{"object":"embedding","index":1,"embedding":[0.25,-0.5,1]}],"model":"vembed","usage":{"prompt_tokens":3,"total_tokens":3}}`; r.status != 200 || string(r.body) != want {
		t.Errorf("embeddings: %d %s", r.status, r.body)
	}
	req := v.Requests()[2]
	if req.Endpoint != proxytest.VertexPredict || req.Model != vgeminiEmbedder ||
		string(req.Body) != `{"instances":[{"content":"hello world"},{"content":"hi"}],"parameters":{"outputDimensionality":3}}` {
		t.Errorf("predict request %s %s", req.Path, req.Body)
	}
	wantHeader(t, req.Header, "Authorization", "Bearer "+vertexToken)
	if v.Denied() != 0 || oai.Hits() != 0 {
		t.Errorf("denied %d, gpt hits %d", v.Denied(), oai.Hits())
	}
}

// TestVertexGeminiToolCalls: a functionCall answer becomes tool_calls,
// plain and streaming, and the tool reaches Vertex as a
// functionDeclaration.
func TestVertexGeminiToolCalls(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			t.Parallel()
			v := newVertexGemini(t, nil, proxytest.GeminiFunctionCalls("", getWeather))
			oai := upstream(t, gpt)
			e := newEnv(t, vgmixed(v, nil, oai, true, storage.Routing{}))
			var finish string
			var calls []string
			if stream {
				r := e.streamReq(toolsRequest(true))
				if r.status != 200 || !r.done() {
					t.Fatalf("%d done=%v %s", r.status, r.done(), r.raw)
				}
				finish = r.finishReason(t)
				for _, c := range r.chunks(t) {
					for _, ch := range c.Choices {
						for _, tc := range ch.Delta.ToolCalls {
							calls = append(calls, tc.Function.Name+" "+tc.Function.Arguments)
						}
					}
				}
			} else {
				r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, toolsRequest(false))
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				var body struct {
					Choices []struct {
						Message struct {
							ToolCalls []struct {
								Function struct{ Name, Arguments string }
							} `json:"tool_calls"`
						} `json:"message"`
						FinishReason string `json:"finish_reason"`
					} `json:"choices"`
				}
				if err := json.Unmarshal(r.body, &body); err != nil || len(body.Choices) != 1 {
					t.Fatalf("%v %s", err, r.body)
				}
				finish = body.Choices[0].FinishReason
				for _, tc := range body.Choices[0].Message.ToolCalls {
					calls = append(calls, tc.Function.Name+" "+tc.Function.Arguments)
				}
			}
			if finish != "tool_calls" || len(calls) != 1 || calls[0] != `get_weather {"city":"Paris"}` {
				t.Errorf("finish %q calls %q", finish, calls)
			}
			req := v.Requests()[0]
			wantHeader(t, req.Header, "Authorization", "Bearer "+vertexToken)
			var b struct {
				Tools []struct {
					FunctionDeclarations []struct{ Name string } `json:"functionDeclarations"`
				} `json:"tools"`
			}
			if err := json.Unmarshal(req.Body, &b); err != nil || len(b.Tools) != 1 || len(b.Tools[0].FunctionDeclarations) != 1 || b.Tools[0].FunctionDeclarations[0].Name != "get_weather" {
				t.Errorf("tools in %s", req.Body)
			}
			if stream != strings.Contains(req.Path, ":streamGenerateContent?alt=sse") {
				t.Errorf("path %s", req.Path)
			}
		})
	}
}

// TestVertexGeminiFailover: a Vertex Gemini target refused with 429
// RESOURCE_EXHAUSTED or 503 UNAVAILABLE, plain or before a stream's
// first event, fails the group over to gpt and is cooled; nothing of
// Google's envelope reaches the caller.
func TestVertexGeminiFailover(t *testing.T) {
	for _, tt := range []struct {
		name   string
		b      proxytest.Behavior
		status string
		why    string
	}{
		{"429 RESOURCE_EXHAUSTED", proxytest.VertexQuotaExceeded(), "429", "upstream_rate_limited"},
		{"503 UNAVAILABLE", proxytest.VertexUnavailable(), "503", "upstream_overloaded"},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				t.Parallel()
				v := newVertexGemini(t, nil, proxytest.Sequence(tt.b)...)
				oai := upstream(t, gpt)
				e := newEnv(t, vgmixed(v, nil, oai, true, storage.Routing{}))
				var header http.Header
				var body string
				if stream {
					r := e.stream("chat-prod")
					if r.status != 200 || !r.done() || r.content(t) != "hello from "+gpt {
						t.Fatalf("%d %s", r.status, r.raw)
					}
					header, body = r.header, r.raw
				} else {
					r := e.chat("chat-prod")
					if r.status != 200 {
						t.Fatalf("%d %s", r.status, r.body)
					}
					header, body = r.header, string(r.body)
				}
				wantHeader(t, header, "X-Aisix-Attempts", vgemini+"="+tt.status+","+gpt+"=200")
				wantHeader(t, header, "X-Aisix-Served-By", gpt)
				wantTargetState(t, e, vgemini, health.StateCooldown, tt.why)
				if v.Hits() != 1 || oai.Hits() != 1 || v.Denied() != 0 {
					t.Errorf("hits vertex=%d gpt=%d denied %d", v.Hits(), oai.Hits(), v.Denied())
				}
				wantVertexGeminiRequest(t, v.Requests()[0], stream)
				wantNoVertexLeak(t, e, "the answer", body)
			})
		}
	}
}

// TestVertexGeminiTokenReuse: a service account's token is minted once
// and serves concurrent chats and streams of a Gemini model, and a Claude
// model on the same key.
func TestVertexGeminiTokenReuse(t *testing.T) {
	g := newGoogleOAuth(t)
	v := newVertexGemini(t, g)
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, g)},
		Models:       []storage.Model{vgeminiModelRow(vgemini, "pk-vertex", vgeminiModel), vertexModel(vclaude, "pk-vertex")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	})
	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				if r := e.chat(vgemini); r.status != 200 {
					t.Errorf("chat %d: %s", r.status, r.body)
				}
			} else if r := e.stream(vgemini); r.status != 200 || !r.done() {
				t.Errorf("stream %d: %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	if r := e.chat(vclaude); r.status != 200 {
		t.Errorf("claude on the same key: %d %s", r.status, r.body)
	}
	if g.Hits() != 1 || v.Hits() != n+1 || v.Denied() != 0 {
		t.Errorf("token requests %d (want 1), vertex hits %d denied %d", g.Hits(), v.Hits(), v.Denied())
	}
	tok := v.Requests()[0].Header.Get("Authorization")
	for _, r := range v.Requests() {
		if r.Header.Get("Authorization") != tok || !g.Valid(strings.TrimPrefix(tok, "Bearer ")) {
			t.Fatalf("authorization %q, want %q", r.Header.Get("Authorization"), tok)
		}
	}
}

// TestVertexGeminiWrongToken: a token Vertex refuses (401 UNAUTHENTICATED)
// fails over without a retry and cools the target as an auth failure; a
// direct model answers the caller an authentication error naming no
// upstream detail. A token endpoint that refuses the service account
// fails over before Vertex is called.
func TestVertexGeminiWrongToken(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			t.Parallel()
			v := proxytest.NewVertex(vgemini, proxytest.VertexOptions{Project: vertexProject, Region: vertexRegion, Token: "ya29.another-token"})
			t.Cleanup(v.Close)
			oai := upstream(t, gpt)
			e := newEnv(t, vgmixed(v, nil, oai, true, storage.Routing{Retries: ptr(1)}))
			var header http.Header
			var body string
			if stream {
				r := e.stream("chat-prod")
				if r.status != 200 || !r.done() {
					t.Fatalf("%d %s", r.status, r.raw)
				}
				header, body = r.header, r.raw
			} else {
				r := e.chat("chat-prod")
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				header, body = r.header, string(r.body)
			}
			wantHeader(t, header, "X-Aisix-Attempts", vgemini+"=401,"+gpt+"=200")
			wantHeader(t, header, "X-Aisix-Served-By", gpt)
			wantTargetState(t, e, vgemini, health.StateCooldown, "upstream_auth_failure")
			if v.Denied() != 1 || v.Hits() != 0 {
				t.Errorf("vertex denied %d hits %d", v.Denied(), v.Hits())
			}
			wantNoVertexLeak(t, e, "the answer", body)
		})
	}
	t.Run("direct", func(t *testing.T) {
		v := proxytest.NewVertex(vgemini, proxytest.VertexOptions{Project: vertexProject, Region: vertexRegion, Token: "ya29.another-token"})
		t.Cleanup(v.Close)
		oai := upstream(t, gpt)
		e := newEnv(t, vgmixed(v, nil, oai, true, storage.Routing{}))
		r := e.chat(vgemini)
		if r.status != 502 || r.errType(t) != "upstream_error" || !strings.Contains(string(r.body), "upstream rejected the provider credentials (401)") {
			t.Errorf("%d %s", r.status, r.body)
		}
		wantNoVertexLeak(t, e, "the answer", string(r.body))
	})
	t.Run("token endpoint refuses", func(t *testing.T) {
		g := newGoogleOAuth(t)
		g.FailNext(400)
		v := newVertexGemini(t, g)
		oai := upstream(t, gpt)
		e := newEnv(t, vgmixed(v, g, oai, true, storage.Routing{}))
		r := e.chat("chat-prod")
		if r.status != 200 {
			t.Fatalf("%d %s", r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Attempts", vgemini+"=credential_error,"+gpt+"=200")
		wantTargetState(t, e, vgemini, health.StateCooldown, "upstream_auth_failure")
		if g.Hits() != 1 || v.Hits()+v.Denied() != 0 {
			t.Errorf("token requests %d, vertex requests %d", g.Hits(), v.Hits()+v.Denied())
		}
		wantNoVertexLeak(t, e, "the answer", string(r.body))
	})
}

// TestVertexTokenStall: a token endpoint that does not answer holds the
// attempt no longer than the model's timeout (not the token client's
// 10 s): it fails over (credential_error); once the endpoint answers, the
// token request that went on serves the next requests.
func TestVertexTokenStall(t *testing.T) {
	g := newGoogleOAuth(t)
	g.Stall()
	v := newVertex(t, g)
	oai := upstream(t, gpt)
	e := newEnv(t, vmixed(v, g, oai, true, storage.Routing{}, withTimeout(300), withStreamTimeout(300)))
	r := e.chat("chat-prod")
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", vclaude+"=credential_error,"+gpt+"=200")
	wantUnder(t, r.took, 3*time.Second)
	g.Release()
	e.clock.Advance(10 * time.Minute) // past the cooldown
	deadline := time.Now().Add(3 * time.Second)
	for g.Issued() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	r = e.chat("chat-prod")
	if r.status != 200 || r.header.Get("X-Aisix-Served-By") != vclaude {
		t.Fatalf("after the stall: %d %s", r.status, r.header.Get("X-Aisix-Attempts"))
	}
	if g.Hits() != 1 || v.Hits() != 1 {
		t.Errorf("token requests %d, vertex hits %d; want 1 and 1", g.Hits(), v.Hits())
	}
}

// TestVertexMessagesErrors: a /v1/messages caller gets Vertex's failures
// in Anthropic's envelope, whichever envelope Vertex used.
func TestVertexMessagesErrors(t *testing.T) {
	for _, tt := range []struct {
		b      proxytest.Behavior
		status int
		typ    string
	}{
		{proxytest.VertexQuotaExceeded(), 429, "rate_limit_error"},
		{proxytest.AnthropicOverloaded(), 529, "overloaded_error"},
		// A refused model is the gateway's configuration, not the
		// caller's: 502, as for every adapter.
		{proxytest.VertexPermissionDenied(), 502, "api_error"},
	} {
		v := newVertex(t, nil, tt.b)
		m := vertexModel(vclaude, "pk-vertex", func(m *storage.Model) { m.Cooldown = &storage.Cooldown{Enabled: ptr(false)} })
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, nil)},
			Models:       []storage.Model{m},
			APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
		})
		r := e.do(http.MethodPost, "/v1/messages", "", `{"model":"vclaude","max_tokens":10,"messages":[{"role":"user","content":"Say hello."}]}`, "X-Api-Key", callerKey)
		var env struct {
			Type  string `json:"type"`
			Error struct{ Type, Message string }
		}
		if err := json.Unmarshal(r.body, &env); err != nil || r.status != tt.status || env.Type != "error" || env.Error.Type != tt.typ {
			t.Errorf("%d %s, want %d %s", r.status, r.body, tt.status, tt.typ)
		}
		wantNoVertexLeak(t, e, "the answer", string(r.body))
	}
}

// TestVertexRefusedTokenRefetched: a 401 on a service account's token
// drops the cached token, so the next request mints a new one instead of
// sending the refused one until it expires.
func TestVertexRefusedTokenRefetched(t *testing.T) {
	g := newGoogleOAuth(t)
	v := newVertex(t, g, proxytest.Status(http.StatusUnauthorized,
		`{"error":{"code":401,"message":"Request had invalid authentication credentials.","status":"UNAUTHENTICATED"}}`), proxytest.AnthropicOK())
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{vertexKey("pk-vertex", v, g)},
		Models:       []storage.Model{vertexModel(vclaude, "pk-vertex")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	if r := e.chat(vclaude); r.status != 502 {
		t.Fatalf("first: %d %s", r.status, r.body)
	}
	if g.Hits() != 1 {
		t.Fatalf("token requests %d, want 1", g.Hits())
	}
	if r := e.chat(vclaude); r.status != 200 {
		t.Fatalf("second: %d %s", r.status, r.body)
	}
	if g.Hits() != 2 {
		t.Errorf("token requests %d, want 2: the refused token was sent again", g.Hits())
	}
	if r := e.chat(vclaude); r.status != 200 || g.Hits() != 2 {
		t.Errorf("third: %d, token requests %d (the new token is kept)", r.status, g.Hits())
	}
}
