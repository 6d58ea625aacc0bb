package proxy_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// The Bedrock adapter's fault suite, in the style of the Anthropic one:
// the failure rules hold for a Bedrock Converse target in both failover
// directions (Bedrock primary, OpenAI-wire secondary and the reverse),
// plain and streaming. The Bedrock upstream is proxytest's fake, which
// verifies every request's SigV4 signature and streams AWS event stream
// frames with real CRCs.

const (
	bed           = "bed" // the Bedrock target's name
	bedModelName  = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
	bedAccountMsg = "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/x"
)

func bedrockUpstream(t testing.TB, name string, script ...proxytest.Behavior) *proxytest.BedrockUpstream {
	t.Helper()
	u := proxytest.NewBedrock(name, script...)
	t.Cleanup(u.Close)
	return u
}

func bedrockKey(id string, u *proxytest.BedrockUpstream) storage.ProviderKey {
	pk := storage.ProviderKey{ID: id, DisplayName: id, Provider: "bedrock", Adapter: storage.AdapterBedrock,
		Secret: u.Secret(), APIBase: u.URL()}
	pk.SecretHost = pk.BaseHost()
	return pk
}

// bedMixed is chat-prod over bed (on br) and gpt (on oai), bed first when
// bedFirst.
func bedMixed(br *proxytest.BedrockUpstream, oai *proxytest.Upstream, bedFirst bool, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	if bedFirst {
		r.Targets = targets(bed, gpt)
	} else {
		r.Targets = targets(gpt, bed)
	}
	m := storage.Model{ID: "id-" + bed, DisplayName: bed, Provider: "bedrock", ModelName: bedModelName, ProviderKeyID: "pk-bed"}
	for _, fn := range mods {
		fn(&m)
	}
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{bedrockKey("pk-bed", br), providerKey("pk-gpt", oai.BaseURL())},
		Models:       []storage.Model{m, directModel(gpt, "pk-gpt", mods...), routingModel("chat-prod", r)},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

// wantBedrockRequest checks what reached the fake: the Converse path of
// the model (escaped as the AWS SDK does) and a Converse body.
func wantBedrockRequest(t testing.TB, r proxytest.Request, stream bool) {
	t.Helper()
	want := "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/converse"
	if stream {
		want += "-stream"
	}
	if r.Path != want {
		t.Errorf("path %s, want %s", r.Path, want)
	}
	var body struct {
		Messages []struct {
			Role    string           `json:"role"`
			Content []map[string]any `json:"content"`
		} `json:"messages"`
		Model  any `json:"model"`
		Stream any `json:"stream"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil || len(body.Messages) == 0 || body.Model != nil || body.Stream != nil {
		t.Errorf("not a Converse body: %s", r.Body)
	}
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential="+proxytest.BedrockAccessKeyID+"/") {
		t.Errorf("authorization %q", r.Header.Get("Authorization"))
	}
}

// bedLeaks are what no caller, log or event may show.
var bedLeaks = []string{proxytest.BedrockSecretAccessKey, "123456789012", "arn:aws", "fake-"}

func wantNoBedLeak(t testing.TB, what, s string) {
	t.Helper()
	for _, l := range bedLeaks {
		if strings.Contains(s, l) {
			t.Errorf("%s leaks %q: %s", what, l, s)
		}
	}
}

func TestBedrockFaultsPlain(t *testing.T) {
	tests := []struct {
		name       string
		bedFirst   bool
		br, oai    []proxytest.Behavior
		routing    storage.Routing
		wantStatus int
		wantServed string
		wantTrail  string
		wantHits   [2]int // bed, gpt
		bedState   string
		bedWhy     string
		gptState   string
		gptWhy     string
		errType    string
		check      func(t *testing.T, e *env, r response)
	}{
		{
			name: "bed answers: a chat.completion under the alias, with usage", bedFirst: true,
			wantStatus: 200, wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0},
			check: func(t *testing.T, e *env, r response) {
				m := r.json(t)
				ch := m["choices"].([]any)[0].(map[string]any)
				if ch["message"].(map[string]any)["content"] != "hello from bed" || ch["finish_reason"] != "stop" || m["object"] != "chat.completion" {
					t.Errorf("answer %s", r.body)
				}
				if u := m["usage"].(map[string]any); u["prompt_tokens"] != 12.0 || u["completion_tokens"] != 5.0 || u["total_tokens"] != 17.0 {
					t.Errorf("usage %v", u)
				}
			},
		},
		{
			name: "429 ThrottlingException fails over and cools bed", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(429, "ThrottlingException", "Too many requests, please wait before trying again.")),
			wantStatus: 200, wantServed: gpt, wantTrail: bed + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			bedState: health.StateCooldown, bedWhy: "upstream_rate_limited",
		},
		{
			name: "503 ServiceUnavailableException is retried, then fails over", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(503, "ServiceUnavailableException", "Bedrock is unable to process your request.")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: bed + "=503," + bed + "=503," + gpt + "=200", wantHits: [2]int{2, 1},
			bedState: health.StateCooldown, bedWhy: "upstream_overloaded",
		},
		{
			name: "503 once, then bed answers the retry", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(503, "ServiceUnavailableException", "x"), proxytest.BedrockOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: bed, wantTrail: bed + "=503," + bed + "=200", wantHits: [2]int{2, 0},
		},
		{
			name: "400 ValidationException is the caller's: returned as OpenAI's envelope, redacted", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(400, "ValidationException", "The model returned the following errors: temperature: range: 0..1 (see arn:aws:bedrock:us-east-1:123456789012:inference-profile/x)")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: bed + "=400", wantHits: [2]int{1, 0}, errType: "invalid_request_error",
			check: func(t *testing.T, e *env, r response) {
				msg := r.json(t)["error"].(map[string]any)["message"].(string)
				if !strings.HasPrefix(msg, "The model returned the following errors: temperature") {
					t.Errorf("message %q", msg)
				}
			},
		},
		{
			name: "400 input too long fails over (context length), no cooldown", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(400, "ValidationException", "Input is too long for requested model.")),
			wantStatus: 200, wantServed: gpt, wantTrail: bed + "=400," + gpt + "=200", wantHits: [2]int{1, 1},
		},
		{
			name: "403 AccessDeniedException fails over and cools bed; the ARN never shows", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(403, "AccessDeniedException", bedAccountMsg)),
			wantStatus: 200, wantServed: gpt, wantTrail: bed + "=403," + gpt + "=200", wantHits: [2]int{1, 1},
			bedState: health.StateCooldown, bedWhy: "upstream_forbidden",
		},
		{
			name: "404 ResourceNotFoundException fails over and cools bed", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(404, "ResourceNotFoundException", "Could not resolve the foundation model from the provided model identifier.")),
			wantStatus: 200, wantServed: gpt, wantTrail: bed + "=404," + gpt + "=200", wantHits: [2]int{1, 1},
			bedState: health.StateCooldown, bedWhy: "upstream_model_not_found",
		},
		{
			name: "500 InternalServerException is retried and fails over, its message dropped", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(500, "InternalServerException", "internal failure at 10.1.2.3")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServed: gpt, wantTrail: bed + "=500," + bed + "=500," + gpt + "=200", wantHits: [2]int{2, 1},
			bedState: health.StateCooldown, bedWhy: "upstream_server_error",
		},
		{
			name: "everything fails: the caller gets a 502 naming no upstream detail", bedFirst: false,
			oai:        proxytest.Sequence(proxytest.ServerError(500)),
			br:         proxytest.Sequence(proxytest.BedrockError(503, "ServiceUnavailableException", "Bedrock at 10.1.2.3 is unable")),
			wantStatus: 502, wantTrail: gpt + "=500," + bed + "=503", wantHits: [2]int{1, 1}, errType: "upstream_error",
			bedState: health.StateCooldown, bedWhy: "upstream_overloaded", gptState: health.StateCooldown, gptWhy: "upstream_server_error",
		},
		// OpenAI-wire primary, Bedrock secondary.
		{
			name:       "gpt 429: bed answers the failover",
			oai:        proxytest.Sequence(proxytest.RateLimited("")),
			wantStatus: 200, wantServed: bed, wantTrail: gpt + "=429," + bed + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_rate_limited",
		},
		{
			name:       "gpt 503: bed answers with tool calls",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			br:         proxytest.Sequence(proxytest.BedrockAnswer("", "", []proxytest.BedrockTool{{ID: "tooluse_1", Name: "get_weather", Input: `{"city":"Paris"}`}}, "tool_use")),
			wantStatus: 200, wantServed: bed, wantTrail: gpt + "=503," + bed + "=200", wantHits: [2]int{1, 1},
			gptState: health.StateCooldown, gptWhy: "upstream_server_error",
			check: func(t *testing.T, e *env, r response) {
				ch := r.json(t)["choices"].([]any)[0].(map[string]any)
				calls := ch["message"].(map[string]any)["tool_calls"].([]any)
				fn := calls[0].(map[string]any)["function"].(map[string]any)
				if ch["finish_reason"] != "tool_calls" || fn["name"] != "get_weather" || fn["arguments"] != `{"city":"Paris"}` {
					t.Errorf("answer %s", r.body)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			br := bedrockUpstream(t, bed, tt.br...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, bedMixed(br, oai, tt.bedFirst, tt.routing))
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			if br.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits bed=%d gpt=%d, want %v", br.Hits(), oai.Hits(), tt.wantHits)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			if tt.wantStatus == 200 {
				if m := r.json(t); m["model"] != "chat-prod" {
					t.Errorf("model = %v, want the alias", m["model"])
				}
			}
			if tt.errType != "" {
				if got := r.errType(t); got != tt.errType {
					t.Errorf("error type %q, want %q: %s", got, tt.errType, r.body)
				}
			}
			wantNoLeak(t, "response body", string(r.body))
			wantNoBedLeak(t, "response body", string(r.body)+fmt.Sprint(r.header))
			wantNoBedLeak(t, "logs", e.logs.String())
			all, _ := e.reg.Events(0)
			for _, ev := range all {
				wantNoBedLeak(t, "event", ev.Reason+" "+ev.Detail)
			}
			wantNoBedLeak(t, "last_error", e.reg.Status("id-"+bed).LastError)
			wantTargetState(t, e, bed, tt.bedState, tt.bedWhy)
			wantTargetState(t, e, gpt, tt.gptState, tt.gptWhy)
			for _, req := range br.Requests() {
				wantBedrockRequest(t, req, false)
			}
			if tt.check != nil {
				tt.check(t, e, r)
			}
		})
	}
}

func TestBedrockFaultsStreaming(t *testing.T) {
	fast := []func(*storage.Model){withStreamTimeout(300)}
	tests := []struct {
		name        string
		bedFirst    bool
		br, oai     []proxytest.Behavior
		routing     storage.Routing
		mods        []func(*storage.Model)
		wantStatus  int // 0: 200
		wantServed  string
		wantTrail   string
		wantHits    [2]int
		wantContent string
		wantDone    bool
		wantErrType string
		bedState    string
		bedWhy      string
	}{
		{
			name: "bed streams: translated chunks under the alias, then [DONE]", bedFirst: true,
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0}, wantContent: "hello from bed", wantDone: true,
		},
		{
			name: "a stream without metadata is completed after messageStop", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{NoMetadata: true})),
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0}, wantContent: "hello from bed", wantDone: true,
		},
		{
			name: "throttlingException before content fails over", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{ExceptionAfter: 2, Exception: "throttlingException"})),
			wantServed: gpt, wantTrail: bed + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, bedState: health.StateCooldown, bedWhy: "upstream_rate_limited",
		},
		{
			name: "serviceUnavailableException before content is retried", bedFirst: true,
			br: proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{ExceptionAfter: 2, Exception: "serviceUnavailableException"}),
				proxytest.BedrockOK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantServed: bed, wantTrail: bed + "=in_band_error," + bed + "=200", wantHits: [2]int{2, 0},
			wantContent: "hello from bed", wantDone: true,
		},
		{
			name: "modelStreamErrorException after content ends with an error frame, no [DONE]", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{ExceptionAfter: 3, Exception: "modelStreamErrorException"})),
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "upstream_error", bedState: health.StateCooldown, bedWhy: "upstream_in_band_error",
		},
		{
			name: "validationException before content is the caller's: a 400, not retried, no failover", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{ExceptionAfter: 2, Exception: "validationException"})),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantHits: [2]int{1, 0}, wantErrType: "invalid_request_error",
		},
		{
			name: "a cut before content fails over", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{CutAfter: 1})),
			wantServed: gpt, wantTrail: bed + "=stream_aborted," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, bedState: health.StateCooldown, bedWhy: "transport_error",
		},
		{
			name: "a cut after content ends with a stream_aborted frame", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{CutAfter: 3})),
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from ", wantErrType: "stream_aborted", bedState: health.StateCooldown, bedWhy: "transport_error",
		},
		{
			name: "a frame with a bad CRC before content fails over", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{GarbageAfter: 1})),
			wantServed: gpt, wantTrail: bed + "=stream_aborted," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, bedState: health.StateCooldown, bedWhy: "transport_error",
		},
		{
			name: "a frame with a bad CRC after content ends the stream", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{GarbageAfter: 2})),
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "stream_aborted", bedState: health.StateCooldown, bedWhy: "transport_error",
		},
		{
			name: "a stall after content ends with a timeout frame", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{StallAfter: 2})),
			mods:       fast,
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "timeout", bedState: health.StateCooldown, bedWhy: "request_timeout",
		},
		{
			name: "a stall before content fails over", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockStream(proxytest.BedrockStreamOptions{StallAfter: 1})),
			mods:       fast,
			wantServed: gpt, wantTrail: bed + "=timeout," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, bedState: health.StateCooldown, bedWhy: "request_timeout",
		},
		{
			name:       "gpt 503 on a stream: bed streams the failover",
			oai:        proxytest.Sequence(proxytest.ServerError(503)),
			wantServed: bed, wantTrail: gpt + "=503," + bed + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from bed", wantDone: true,
		},
		{
			name: "bed 429 on a stream: gpt streams the failover", bedFirst: true,
			br:         proxytest.Sequence(proxytest.BedrockError(429, "ThrottlingException", "Too many requests")),
			wantServed: gpt, wantTrail: bed + "=429," + gpt + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from gpt", wantDone: true, bedState: health.StateCooldown, bedWhy: "upstream_rate_limited",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			br := bedrockUpstream(t, bed, tt.br...)
			oai := upstream(t, gpt, tt.oai...)
			e := newEnv(t, bedMixed(br, oai, tt.bedFirst, tt.routing, tt.mods...))
			r := e.streamReq(chatBody("chat-prod", true))
			if br.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits bed=%d gpt=%d, want %v", br.Hits(), oai.Hits(), tt.wantHits)
			}
			if tt.wantStatus != 0 {
				var env struct {
					Error struct {
						Type string `json:"type"`
					} `json:"error"`
				}
				if r.status != tt.wantStatus || json.Unmarshal([]byte(r.raw), &env) != nil || env.Error.Type != tt.wantErrType {
					t.Errorf("status %d, want %d (%s): %s", r.status, tt.wantStatus, tt.wantErrType, r.raw)
				}
				wantNoBedLeak(t, "answer", r.raw)
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			if got := r.header.Get("X-Aisix-Attempts"); got != tt.wantTrail && tt.wantTrail != "" {
				t.Errorf("attempts %q, want %q", got, tt.wantTrail)
			}
			if got := r.content(t); got != tt.wantContent {
				t.Errorf("content %q, want %q; raw:\n%s", got, tt.wantContent, r.raw)
			}
			if r.done() != tt.wantDone {
				t.Errorf("[DONE] = %v, want %v; raw:\n%s", r.done(), tt.wantDone, r.raw)
			}
			for _, ev := range r.events {
				if ev.name == "" && ev.data != "[DONE]" && !strings.Contains(ev.data, `"model":"chat-prod"`) {
					t.Errorf("chunk without the alias: %s", ev.data)
				}
			}
			if tt.wantServed == bed && tt.wantDone && r.finishReason(t) != "stop" {
				t.Errorf("finish_reason %q", r.finishReason(t))
			}
			errEv, hasErr := r.errorEvent()
			switch {
			case tt.wantErrType == "" && hasErr:
				t.Errorf("unexpected error event: %s", errEv.data)
			case tt.wantErrType != "" && !hasErr:
				t.Errorf("no error event; raw:\n%s", r.raw)
			case hasErr && !strings.Contains(errEv.data, `"type":"`+tt.wantErrType+`"`):
				t.Errorf("error event %s, want type %s", errEv.data, tt.wantErrType)
			}
			wantNoBedLeak(t, "stream", r.raw)
			wantNoBedLeak(t, "logs", e.logs.String())
			wantTargetState(t, e, bed, tt.bedState, tt.bedWhy)
			for _, req := range br.Requests() {
				wantBedrockRequest(t, req, true)
				wantHeader(t, req.Header, "Accept", "application/vnd.amazon.eventstream")
			}
		})
	}
}

// TestBedrockWrongSecret: a secret the fake's signature check refuses is
// a 403 auth failure that fails over with a cooldown; the secret shows
// nowhere.
func TestBedrockWrongSecret(t *testing.T) {
	br := bedrockUpstream(t, bed)
	oai := upstream(t, gpt)
	ds := bedMixed(br, oai, true, storage.Routing{Retries: ptr(1)})
	const wrong = "WRONGsecretKEYwJalrXUtnFEMI0000000000000"
	ds.ProviderKeys[0].Secret = `{"access_key_id":"` + proxytest.BedrockAccessKeyID + `","secret_access_key":"` + wrong + `","region":"us-east-1"}`
	e := newEnv(t, ds)
	for _, stream := range []bool{false, true} {
		var raw string
		var h http.Header
		if stream {
			r := e.streamReq(chatBody("chat-prod", true))
			raw, h = r.raw, r.header
		} else {
			r := e.chat("chat-prod")
			raw, h = string(r.body), r.header
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
		}
		if stream {
			// bed is cooling: the walk goes straight to gpt.
			wantHeader(t, h, "X-Aisix-Served-By", gpt)
		} else {
			wantHeader(t, h, "X-Aisix-Attempts", bed+"=403,"+gpt+"=200")
		}
		for _, s := range []string{raw, fmt.Sprint(h), e.logs.String()} {
			if strings.Contains(s, wrong) || strings.Contains(s, proxytest.BedrockSecretAccessKey) {
				t.Errorf("the secret leaked: %s", s)
			}
		}
	}
	// Bedrock refuses a credential with a 403 whose x-amzn-ErrorType
	// (InvalidSignatureException) says it is the credential: an auth
	// failure, as an OpenAI 401 is, not a model access refusal.
	wantTargetState(t, e, bed, health.StateCooldown, "upstream_auth_failure")
	if br.Hits() != 0 {
		t.Errorf("a refused signature reached the script: %d", br.Hits())
	}
}

// TestBedrockToolsImagesUsage: tools, an image and include_usage go as
// Converse blocks; the streamed tool call and the usage chunk come back.
func TestBedrockToolsImagesUsage(t *testing.T) {
	br := bedrockUpstream(t, bed, proxytest.BedrockStream(proxytest.BedrockStreamOptions{
		Chunks: []string{"Checking."},
		Tools:  []proxytest.BedrockTool{{ID: "tooluse_1", Name: "get_weather", Fragments: []string{`{"city":`, `"Paris"}`}}},
	}))
	oai := upstream(t, gpt)
	e := newEnv(t, bedMixed(br, oai, true, storage.Routing{}))
	body := `{"model":"chat-prod","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":[` +
		`{"type":"text","text":"What is here?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],` +
		`"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":"required"}`
	r := e.streamReq(body)
	if r.status != 200 || !r.done() {
		t.Fatalf("status %d:\n%s", r.status, r.raw)
	}
	if r.finishReason(t) != "tool_calls" {
		t.Errorf("finish_reason %q", r.finishReason(t))
	}
	var args string
	var usage bool
	for _, c := range r.chunks(t) {
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				args += tc.Function.Arguments
			}
		}
	}
	usage = strings.Contains(r.raw, `"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}`)
	if args != `{"city":"Paris"}` || !usage {
		t.Errorf("args %q usage %v:\n%s", args, usage, r.raw)
	}
	req := br.Requests()[0]
	var conv struct {
		Messages []struct {
			Content []struct {
				Image *struct {
					Format string `json:"format"`
				} `json:"image"`
			} `json:"content"`
		} `json:"messages"`
		ToolConfig struct {
			Tools      []map[string]any `json:"tools"`
			ToolChoice map[string]any   `json:"toolChoice"`
		} `json:"toolConfig"`
	}
	if err := json.Unmarshal(req.Body, &conv); err != nil {
		t.Fatal(err)
	}
	if len(conv.Messages[0].Content) != 2 || conv.Messages[0].Content[1].Image == nil || conv.Messages[0].Content[1].Image.Format != "png" {
		t.Errorf("image not sent: %s", req.Body)
	}
	if len(conv.ToolConfig.Tools) != 1 || conv.ToolConfig.ToolChoice["any"] == nil {
		t.Errorf("tools not sent: %s", req.Body)
	}
	// An image by URL cannot go to Bedrock: with no other target the
	// caller gets a 400.
	e2 := newEnv(t, bedMixed(br, oai, true, storage.Routing{}))
	e2.update(func(ds *storage.Dataset) { ds.Models[2].Routing.Targets = targets(bed) })
	r2 := e2.do(http.MethodPost, "/v1/chat/completions", callerKey, `{"model":"chat-prod","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`)
	if r2.status != 400 || r2.errType(t) != "invalid_request_error" {
		t.Errorf("image URL: %d %s", r2.status, r2.body)
	}
}

// bedInvokePath is the escaped path of an InvokeModel operation of the
// Bedrock target's model.
func bedInvokePath(op string) string {
	return "/model/us.anthropic.claude-3-5-haiku-20241022-v1%3A0/" + op
}

// invokeBody decodes what reached the fake's InvokeModel.
func invokeBody(t testing.TB, r proxytest.Request) map[string]json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("invoke body %s: %v", r.Body, err)
	}
	if m["model"] != nil || m["stream"] != nil || string(m["anthropic_version"]) != `"bedrock-2023-05-31"` {
		t.Errorf("invoke body %s", r.Body)
	}
	return m
}

const bedMessagesBody = `{"model":"chat-prod","max_tokens":50,"messages":[{"role":"user","content":"hi <b>&</b>"}]}`

// TestBedrockMessagesNative: an Anthropic Messages caller on a Claude
// model on Bedrock is served through InvokeModel, plain and streaming,
// with only the anthropic-beta values Bedrock takes; the answer is
// Claude's own message under the alias; count_tokens goes to CountTokens
// on the foundation model.
func TestBedrockMessagesNative(t *testing.T) {
	br := bedrockUpstream(t, bed)
	oai := upstream(t, gpt)
	e := newEnv(t, bedMixed(br, oai, true, storage.Routing{}))
	betas := []string{"Anthropic-Version", "2023-06-01", "Anthropic-Beta", "claude-code-20250219, interleaved-thinking-2025-05-14,oauth-2025-04-20"}

	r := e.do(http.MethodPost, "/v1/messages", callerKey, bedMessagesBody, betas...)
	m := r.json(t)
	if r.status != 200 || m["type"] != "message" || m["model"] != "chat-prod" || m["id"] != "msg_bdrk_01bed" || !strings.Contains(string(r.body), `"text":"hello from bed"`) {
		t.Errorf("messages: %d %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", bed)

	r = e.do(http.MethodPost, "/v1/messages", callerKey, strings.Replace(bedMessagesBody, `"max_tokens"`, `"stream":true,"max_tokens"`, 1), betas...)
	raw := string(r.body)
	var names []string
	for _, ev := range strings.Split(strings.TrimSpace(raw), "\n\n") {
		name, _, _ := strings.Cut(strings.TrimPrefix(ev, "event: "), "\n")
		names = append(names, name)
	}
	wantNames := "message_start,content_block_start,content_block_delta,content_block_delta,content_block_delta,content_block_stop,message_delta,message_stop"
	if r.status != 200 || strings.Join(names, ",") != wantNames {
		t.Errorf("messages stream: %d events %v\n%s", r.status, names, raw)
	}
	if !strings.Contains(raw, "event: message_start\ndata: {") || !strings.Contains(raw, `"model":"chat-prod"`) || strings.Contains(raw, "claude-3-5-haiku-20241022\"") ||
		!strings.Contains(raw, `"text":" from "`) || !strings.Contains(raw, `"stop_reason":"end_turn"`) {
		t.Errorf("messages stream:\n%s", raw)
	}

	r = e.do(http.MethodPost, "/v1/messages/count_tokens", callerKey, `{"model":"chat-prod","messages":[{"role":"user","content":"hi"}]}`, betas...)
	if r.status != 200 || string(r.body) != `{"input_tokens":14}` {
		t.Errorf("count_tokens: %d %s", r.status, r.body)
	}
	if br.Hits() != 3 || oai.Hits() != 0 {
		t.Fatalf("hits bed=%d gpt=%d", br.Hits(), oai.Hits())
	}
	reqs := br.Requests()
	for i, want := range []string{bedInvokePath("invoke"), bedInvokePath("invoke-with-response-stream"), "/model/anthropic.claude-3-5-haiku-20241022-v1%3A0/count-tokens"} {
		if reqs[i].Path != want {
			t.Errorf("request %d path %s, want %s", i, reqs[i].Path, want)
		}
	}
	wantHeader(t, reqs[1].Header, "Accept", "application/vnd.amazon.eventstream")
	for _, req := range reqs[:2] {
		b := invokeBody(t, req)
		if string(b["anthropic_beta"]) != `["interleaved-thinking-2025-05-14"]` {
			t.Errorf("anthropic_beta %s", b["anthropic_beta"])
		}
		if !strings.Contains(string(req.Body), `"content":"hi <b>&</b>"`) {
			t.Errorf("the caller's text changed: %s", req.Body)
		}
		if req.Header.Get("Anthropic-Beta") != "" || req.Header.Get("Anthropic-Version") != "" {
			t.Errorf("anthropic headers sent upstream: %v", req.Header)
		}
	}
	inner := proxytest.BedrockInvokeBody(reqs[2].Body)
	if !strings.Contains(string(inner), `"max_tokens":1`) || !strings.Contains(string(inner), `"anthropic_version":"bedrock-2023-05-31"`) || strings.Contains(string(inner), `"model"`) {
		t.Errorf("count-tokens body %s", inner)
	}
}

// TestBedrockMessagesToolUse: Claude's tool_use blocks reach a Messages
// caller as they are, plain and streamed (input_json_delta fragments).
func TestBedrockMessagesToolUse(t *testing.T) {
	tools := []proxytest.BedrockClaudeTool{{ID: "toolu_bdrk_01", Name: "get_weather", Input: `{"city":"Paris"}`, Fragments: []string{`{"city":`, `"Paris"}`}}}
	br := bedrockUpstream(t, bed, proxytest.BedrockClaudeMessage("", tools), proxytest.BedrockClaudeStream(proxytest.BedrockClaudeStreamOptions{Tools: tools}))
	oai := upstream(t, gpt)
	e := newEnv(t, bedMixed(br, oai, true, storage.Routing{}))
	body := `{"model":"chat-prod","max_tokens":50,"tools":[{"name":"get_weather","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}],` +
		`"tool_choice":{"type":"any"},"messages":[{"role":"user","content":"Weather in Paris?"}]}`
	r := e.do(http.MethodPost, "/v1/messages", callerKey, body, "Anthropic-Version", "2023-06-01")
	var msg struct {
		Model      string `json:"model"`
		StopReason string `json:"stop_reason"`
		Content    []struct {
			Type  string          `json:"type"`
			ID    string          `json:"id"`
			Name  string          `json:"name"`
			Input json.RawMessage `json:"input"`
		} `json:"content"`
	}
	if err := json.Unmarshal(r.body, &msg); err != nil || r.status != 200 || msg.StopReason != "tool_use" || len(msg.Content) != 1 ||
		msg.Content[0].Type != "tool_use" || msg.Content[0].Name != "get_weather" || string(msg.Content[0].Input) != `{"city":"Paris"}` || msg.Model != "chat-prod" {
		t.Errorf("tool use: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/v1/messages", callerKey, strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1), "Anthropic-Version", "2023-06-01")
	var args string
	for _, ev := range strings.Split(string(r.body), "\n\n") {
		_, data, ok := strings.Cut(ev, "data: ")
		if !ok {
			continue
		}
		var d struct {
			Delta struct {
				PartialJSON string `json:"partial_json"`
			} `json:"delta"`
		}
		_ = json.Unmarshal([]byte(data), &d)
		args += d.Delta.PartialJSON
	}
	if r.status != 200 || args != `{"city":"Paris"}` || !strings.Contains(string(r.body), `"id":"toolu_bdrk_01"`) || !strings.Contains(string(r.body), "event: message_stop") {
		t.Errorf("tool use stream: %d args %q\n%s", r.status, args, r.body)
	}
	for _, req := range br.Requests() {
		b := invokeBody(t, req)
		if b["tools"] == nil || string(b["tool_choice"]) != `{"type":"any"}` || b["anthropic_beta"] != nil {
			t.Errorf("tools not passed through: %s", req.Body)
		}
	}
}

// TestBedrockMessagesFailover: a /v1/messages group whose Bedrock Claude
// target is throttled, by a 429 or by a throttlingException before any
// content, fails over to the next target (an OpenAI-wire one, translated);
// an exception after content ends the caller's stream with Anthropic's
// error event.
func TestBedrockMessagesFailover(t *testing.T) {
	tests := []struct {
		name       string
		br         []proxytest.Behavior
		stream     bool
		wantServed string
		wantTrail  string
		wantHits   [2]int
		bedWhy     string
		check      func(t *testing.T, body string)
	}{
		{
			name:       "429 ThrottlingException",
			br:         proxytest.Sequence(proxytest.BedrockError(429, "ThrottlingException", "Too many requests, please wait before trying again.")),
			wantServed: gpt, wantTrail: bed + "=429," + gpt + "=200", wantHits: [2]int{1, 1}, bedWhy: "upstream_rate_limited",
		},
		{
			name:       "429 ThrottlingException on a stream",
			br:         proxytest.Sequence(proxytest.BedrockError(429, "ThrottlingException", "Too many requests, please wait before trying again.")),
			stream:     true,
			wantServed: gpt, wantTrail: bed + "=429," + gpt + "=200", wantHits: [2]int{1, 1}, bedWhy: "upstream_rate_limited",
		},
		{
			name:       "throttlingException before content",
			br:         proxytest.Sequence(proxytest.BedrockClaudeStream(proxytest.BedrockClaudeStreamOptions{ExceptionAfter: 2, Exception: "throttlingException"})),
			stream:     true,
			wantServed: gpt, wantTrail: bed + "=in_band_error," + gpt + "=200", wantHits: [2]int{1, 1}, bedWhy: "upstream_rate_limited",
		},
		{
			name:       "modelStreamErrorException after content",
			br:         proxytest.Sequence(proxytest.BedrockClaudeStream(proxytest.BedrockClaudeStreamOptions{ExceptionAfter: 5, Exception: "modelStreamErrorException"})),
			stream:     true,
			wantServed: bed, wantTrail: bed + "=200", wantHits: [2]int{1, 0}, bedWhy: "upstream_in_band_error",
			check: func(t *testing.T, body string) {
				i := strings.LastIndex(body, "event: error\ndata: ")
				if i < 0 || !strings.Contains(body, `"text":"hello"`) || strings.Contains(body, "message_stop") || !strings.Contains(body[i:], `"type":"error","error":{"type":`) {
					t.Errorf("stream:\n%s", body)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			br := bedrockUpstream(t, bed, tt.br...)
			oai := upstream(t, gpt)
			e := newEnv(t, bedMixed(br, oai, true, storage.Routing{}))
			body := bedMessagesBody
			if tt.stream {
				body = strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)
			}
			r := e.do(http.MethodPost, "/v1/messages", callerKey, body, "Anthropic-Version", "2023-06-01")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServed)
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			if br.Hits() != tt.wantHits[0] || oai.Hits() != tt.wantHits[1] {
				t.Errorf("hits bed=%d gpt=%d, want %v", br.Hits(), oai.Hits(), tt.wantHits)
			}
			if tt.wantServed == gpt {
				want := "hello from gpt"
				if !strings.Contains(string(r.body), want) && !strings.Contains(string(r.body), `"text":"hello"`) {
					t.Errorf("the failover's answer: %s", r.body)
				}
				if tt.stream && !strings.Contains(string(r.body), "event: message_stop") {
					t.Errorf("the failover's stream is not complete: %s", r.body)
				}
			}
			if tt.check != nil {
				tt.check(t, string(r.body))
			}
			wantTargetState(t, e, bed, health.StateCooldown, tt.bedWhy)
			wantNoBedLeak(t, "answer", string(r.body))
			wantNoBedLeak(t, "logs", e.logs.String())
		})
	}
}

// TestBedrockAuthClassification: Bedrock's 403s are told apart by
// x-amzn-ErrorType: a refused credential is an auth failure (as an OpenAI
// 401), AccessDeniedException (a model not enabled) stays forbidden; both
// fail over.
func TestBedrockAuthClassification(t *testing.T) {
	for _, tt := range []struct {
		typ, msg, why string
	}{
		{"UnrecognizedClientException", "The security token included in the request is invalid.", "upstream_auth_failure"},
		{"InvalidSignatureException", "The request signature we calculated does not match the signature you provided.", "upstream_auth_failure"},
		{"AccessDeniedException", "You don't have access to the model with the specified model ID.", "upstream_forbidden"},
	} {
		t.Run(tt.typ, func(t *testing.T) {
			t.Parallel()
			br := bedrockUpstream(t, bed, proxytest.BedrockError(403, tt.typ, tt.msg))
			oai := upstream(t, gpt)
			e := newEnv(t, bedMixed(br, oai, true, storage.Routing{}))
			r := e.chat("chat-prod")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantHeader(t, r.header, "X-Aisix-Attempts", bed+"=403,"+gpt+"=200")
			wantTargetState(t, e, bed, health.StateCooldown, tt.why)
		})
	}
}

// TestBedrockEmbeddings: Titan and Cohere embedding models answer
// /v1/embeddings through InvokeModel as OpenAI's list under the alias; a
// list input on Titan (one text per call) is refused as the caller's.
func TestBedrockEmbeddings(t *testing.T) {
	br := bedrockUpstream(t, bed)
	pk := bedrockKey("pk-bed", br)
	titan := storage.Model{ID: "id-titan", DisplayName: "titan", Provider: "bedrock", ModelName: "amazon.titan-embed-text-v2:0", ProviderKeyID: "pk-bed"}
	cohere := storage.Model{ID: "id-cohere", DisplayName: "cohere", Provider: "bedrock", ModelName: "cohere.embed-english-v3", ProviderKeyID: "pk-bed"}
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{pk},
		Models:       []storage.Model{titan, cohere},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	})
	type list struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage *struct {
			PromptTokens int `json:"prompt_tokens"`
		} `json:"usage"`
	}
	get := func(body string) (response, list) {
		t.Helper()
		r := e.do(http.MethodPost, "/v1/embeddings", callerKey, body)
		var l list
		if r.status == 200 {
			if err := json.Unmarshal(r.body, &l); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
		}
		return r, l
	}

	r, l := get(`{"model":"titan","input":"three little words","dimensions":512}`)
	if r.status != 200 || l.Object != "list" || l.Model != "titan" || len(l.Data) != 1 || string(l.Data[0].Embedding) != "[0.25,-0.5,1,0.125]" || l.Usage == nil || l.Usage.PromptTokens != 3 {
		t.Errorf("titan: %d %s", r.status, r.body)
	}
	req := br.Requests()[0]
	if req.Path != "/model/amazon.titan-embed-text-v2%3A0/invoke" || string(req.Body) != `{"inputText":"three little words","dimensions":512,"normalize":true}` {
		t.Errorf("titan request %s %s", req.Path, req.Body)
	}

	r, _ = get(`{"model":"titan","input":["a","b"]}`)
	if r.status != 400 || r.errType(t) != "invalid_request_error" || !strings.Contains(string(r.body), "one input per request") {
		t.Errorf("titan list: %d %s", r.status, r.body)
	}

	r, l = get(`{"model":"cohere","input":["a","b"],"encoding_format":"base64"}`)
	if r.status != 200 || len(l.Data) != 2 || l.Data[1].Index != 1 || l.Usage != nil {
		t.Fatalf("cohere: %d %s", r.status, r.body)
	}
	var b64 string
	_ = json.Unmarshal(l.Data[1].Embedding, &b64)
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 16 || math.Float32frombits(binary.LittleEndian.Uint32(raw[8:])) != 1 {
		t.Errorf("cohere base64 %q: %v", b64, err)
	}
	req = br.Requests()[1]
	if req.Path != "/model/cohere.embed-english-v3/invoke" || string(req.Body) != `{"texts":["a","b"],"input_type":"search_document"}` {
		t.Errorf("cohere request %s %s", req.Path, req.Body)
	}
	if br.Hits() != 2 {
		t.Errorf("hits %d", br.Hits())
	}
}

// TestBedrockMessagesError: a ValidationException from InvokeModel is the
// caller's: a Messages caller gets it at once in Anthropic's envelope
// (invalid_request_error, the message redacted), no failover.
func TestBedrockMessagesError(t *testing.T) {
	br := bedrockUpstream(t, bed, proxytest.BedrockError(400, "ValidationException",
		"max_tokens: Field required (arn:aws:bedrock:us-east-1:123456789012:inference-profile/x)"))
	oai := upstream(t, gpt)
	e := newEnv(t, bedMixed(br, oai, true, storage.Routing{Retries: ptr(1)}))
	for _, stream := range []bool{false, true} {
		body := bedMessagesBody
		if stream {
			body = strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1)
		}
		r := e.do(http.MethodPost, "/v1/messages", callerKey, body, "Anthropic-Version", "2023-06-01")
		var env struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(r.body, &env); err != nil || r.status != 400 || env.Type != "error" || env.Error.Type != "invalid_request_error" ||
			!strings.HasPrefix(env.Error.Message, "max_tokens: Field required") {
			t.Errorf("stream=%v: %d %s", stream, r.status, r.body)
		}
		wantNoBedLeak(t, "answer", string(r.body))
	}
	if br.Hits() != 2 || oai.Hits() != 0 {
		t.Errorf("hits bed=%d gpt=%d", br.Hits(), oai.Hits())
	}
}

// TestBedrockMessagesTranslated: a Messages caller on a Bedrock model
// that is not Claude (Nova) is translated through Converse, plain and
// streaming; count_tokens is the gateway's estimate, with no upstream
// call.
func TestBedrockMessagesTranslated(t *testing.T) {
	br := bedrockUpstream(t, bed)
	nova := storage.Model{ID: "id-nova", DisplayName: "nova", Provider: "bedrock", ModelName: "us.amazon.nova-pro-v1:0", ProviderKeyID: "pk-bed"}
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{bedrockKey("pk-bed", br)},
		Models:       []storage.Model{nova},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	})
	body := `{"model":"nova","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}`
	r := e.do(http.MethodPost, "/v1/messages", callerKey, body, "Anthropic-Version", "2023-06-01")
	m := r.json(t)
	if r.status != 200 || m["type"] != "message" || m["model"] != "nova" || !strings.Contains(string(r.body), "hello from bed") {
		t.Errorf("messages: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/v1/messages", callerKey, strings.Replace(body, `"max_tokens"`, `"stream":true,"max_tokens"`, 1), "Anthropic-Version", "2023-06-01")
	if r.status != 200 || !strings.Contains(string(r.body), "event: message_stop") || !strings.Contains(string(r.body), `"text":" from "`) {
		t.Errorf("messages stream: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPost, "/v1/messages/count_tokens", callerKey, `{"model":"nova","messages":[{"role":"user","content":"hi"}]}`, "Anthropic-Version", "2023-06-01")
	if r.status != 200 || r.json(t)["input_tokens"] == nil {
		t.Errorf("count_tokens: %d %s", r.status, r.body)
	}
	reqs := br.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/model/us.amazon.nova-pro-v1%3A0/converse" || reqs[1].Path != "/model/us.amazon.nova-pro-v1%3A0/converse-stream" {
		t.Errorf("requests %+v", reqs)
	}
}

// TestBedrockCountTokensRefused: a key without bedrock:CountTokens (403
// AccessDeniedException) gets the gateway's estimate, and the target,
// which still serves messages, is not cooled.
func TestBedrockCountTokensRefused(t *testing.T) {
	br := bedrockUpstream(t, bed, proxytest.BedrockError(http.StatusForbidden, "AccessDeniedException",
		"User: arn:aws:iam::123456789012:user/app is not authorized to perform: bedrock:CountTokens"))
	e := newEnv(t, bedMixed(br, upstream(t, gpt), true, storage.Routing{}))
	// The direct model: no other target to fall to.
	r := e.do(http.MethodPost, "/v1/messages/count_tokens", callerKey, `{"model":"bed","messages":[{"role":"user","content":"hello there"}]}`,
		"Anthropic-Version", "2023-06-01")
	if br.Hits() != 1 {
		t.Errorf("bedrock hits = %d, want 1 (CountTokens tried)", br.Hits())
	}
	if r.status != 200 || !strings.HasPrefix(string(r.body), `{"input_tokens":`) {
		t.Fatalf("count_tokens: %d %s", r.status, r.body)
	}
	if got := r.header.Get("X-Aisix-Attempts"); !strings.Contains(got, "estimate") {
		t.Errorf("attempts = %q, want the estimate named", got)
	}
	if st := e.reg.Status("id-" + bed); st.State != health.StateHealthy {
		t.Errorf("a refused count cooled the target: %+v", st)
	}
	if strings.Contains(string(r.body), "123456789012") {
		t.Errorf("account id leaked: %s", r.body)
	}
}
