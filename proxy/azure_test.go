package proxy_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// The azure-openai adapter end to end: a fake Azure OpenAI resource (and,
// for Entra ID keys, a fake Entra authority) behind the proxy, against the
// same failure rules as the OpenAI wire.

const azureAPIKey = "azure-key-4b1d0c2e9f"

// azureKey is an azure-openai provider key on the fake resource at base.
func azureKey(id, base, secret, version string) storage.ProviderKey {
	pk := storage.ProviderKey{ID: id, DisplayName: id, Provider: "azure", Adapter: storage.AdapterAzureOpenAI,
		Secret: secret, APIBase: base, APIVersion: version}
	pk.SecretHost = pk.BaseHost()
	return pk
}

// azureModel is a direct model over an Azure deployment.
func azureModel(name, pkID, deployment string, mods ...func(*storage.Model)) storage.Model {
	m := storage.Model{ID: "id-" + name, DisplayName: name, Provider: "azure", ModelName: deployment, ProviderKeyID: pkID}
	for _, fn := range mods {
		fn(&m)
	}
	return m
}

func newAzure(t testing.TB, o proxytest.AzureOptions) *proxytest.Azure {
	t.Helper()
	if o.APIKey == "" && o.Token == "" && o.Entra == nil {
		o.APIKey = azureAPIKey
	}
	a := proxytest.NewAzure(o)
	t.Cleanup(a.Close)
	return a
}

func newEntra(t testing.TB, o proxytest.EntraOptions) *proxytest.Entra {
	t.Helper()
	en := proxytest.NewEntra(o)
	t.Cleanup(en.Close)
	return en
}

// azurePair is chat-prod over gpt-4o-azure (a deployment on a) and
// gpt-4o-secondary (an OpenAI upstream). mods apply to gpt-4o-azure only:
// the secondary keeps the default timeouts, so that a short bound meant
// for Azure cannot fail the fallback on a busy machine.
func azurePair(a *proxytest.Azure, secondary *proxytest.Upstream, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	r.Targets = targets("gpt-4o-azure", "gpt-4o-secondary")
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{azureKey("pk-azure", a.URL(), azureAPIKey, ""), providerKey("pk-secondary", secondary.BaseURL())},
		Models: []storage.Model{
			azureModel("gpt-4o-azure", "pk-azure", "gpt-4o", mods...),
			directModel("gpt-4o-secondary", "pk-secondary"),
			routingModel("chat-prod", r),
		},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

func wantAzureHits(t testing.TB, a *proxytest.Azure, n int) {
	t.Helper()
	if got := a.Hits(); got != n {
		t.Errorf("azure got %d requests, want %d", got, n)
	}
}

// TestAzureUpstreamRequest: what the proxy sends Azure, per api_version,
// and what the caller gets back.
func TestAzureUpstreamRequest(t *testing.T) {
	for _, tt := range []struct {
		name, version, wantPath, wantVersion string
	}{
		{"default api-version", "", "/openai/deployments/gpt-4o/chat/completions", "2024-10-21"},
		{"preview api-version", "2025-01-01-preview", "/openai/deployments/gpt-4o/chat/completions", "2025-01-01-preview"},
		// The fake refuses any query on the v1 API.
		{"v1", "v1", "/openai/v1/chat/completions", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAzure(t, proxytest.AzureOptions{})
			e := newEnv(t, storage.Dataset{
				ProviderKeys: []storage.ProviderKey{azureKey("pk-azure", a.URL(), azureAPIKey, tt.version)},
				Models:       []storage.Model{azureModel("gpt-4o-azure", "pk-azure", "gpt-4o")},
				APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
			})
			r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody("gpt-4o-azure", false), "X-Request-Id", "req-1")
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			reqs := a.Requests()
			if len(reqs) != 1 {
				t.Fatalf("azure got %d requests", len(reqs))
			}
			got := reqs[0]
			if got.Path != tt.wantPath || got.APIVersion != tt.wantVersion || got.Deployment != "gpt-4o" || got.Auth != "api-key" {
				t.Errorf("request %s api-version %q deployment %q auth %q", got.Path, got.APIVersion, got.Deployment, got.Auth)
			}
			// The caller's body with only the model replaced: the
			// zero-decode path.
			if want := chatBody("gpt-4o", false); string(got.Body) != want {
				t.Errorf("body %s, want %s", got.Body, want)
			}
			if got.Header.Get("Api-Key") != azureAPIKey {
				t.Errorf("api-key header %q", got.Header.Get("Api-Key"))
			}
			if v, ok := got.Header["Authorization"]; ok {
				t.Errorf("an api-key request carries Authorization %q (the caller's key must never go upstream)", v)
			}
			body := r.json(t)
			if body["model"] != "gpt-4o-azure" {
				t.Errorf("model %v, want the alias", body["model"])
			}
			if _, ok := body["prompt_filter_results"]; !ok {
				t.Errorf("Azure's prompt_filter_results were dropped: %s", r.body)
			}
			if !strings.Contains(string(r.body), `"content":"Hello from Azure."`) {
				t.Errorf("body %s", r.body)
			}
			wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-azure")
			wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-azure=200")

			s := e.stream("gpt-4o-azure")
			if s.status != http.StatusOK || s.content(t) != "Hello from Azure." || !s.done() {
				t.Fatalf("stream: status %d content %q done %v:\n%s", s.status, s.content(t), s.done(), s.raw)
			}
			for _, ev := range s.events {
				if ev.data != "[DONE]" && !strings.Contains(ev.data, `"model":"gpt-4o-azure"`) {
					t.Errorf("chunk without the alias: %s", ev.data)
				}
			}
			if sr := a.Requests()[1]; sr.Path != tt.wantPath || !sr.Stream || sr.Auth != "api-key" {
				t.Errorf("stream request %+v", sr)
			}
		})
	}
}

// TestAzureFaultsPlain runs Azure's failures of a non-streaming request
// through chat-prod (Azure first, an OpenAI upstream second).
func TestAzureFaultsPlain(t *testing.T) {
	const (
		p = "gpt-4o-azure"
		s = "gpt-4o-secondary"
	)
	tests := []struct {
		name         string
		opts         proxytest.AzureOptions
		next         []proxytest.AzureAnswer
		routing      storage.Routing
		wantStatus   int
		wantServedBy string
		wantTrail    string
		wantHits     [2]int
		wantState    string
		wantReason   string
		maxTime      time.Duration
		check        func(t *testing.T, r response, st health.Status)
	}{
		{
			name:       "content-filter 400 is returned to the caller: no failover, no cooldown",
			next:       []proxytest.AzureAnswer{proxytest.AzureContentFilter()},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: p + "=400", wantHits: [2]int{1, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
			check: func(t *testing.T, r response, _ health.Status) {
				e, _ := r.json(t)["error"].(map[string]any)
				if e["code"] != "content_filter" || e["param"] != "prompt" || e["type"] != "invalid_request_error" ||
					!strings.HasPrefix(e["message"].(string), "The response was filtered") {
					t.Errorf("error %s", r.body)
				}
			},
		},
		{
			name:       "a 200 with finish_reason content_filter passes through",
			next:       []proxytest.AzureAnswer{proxytest.AzureFilteredCompletion()},
			wantStatus: 200, wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
			check: func(t *testing.T, r response, _ health.Status) {
				if !strings.Contains(string(r.body), `"finish_reason":"content_filter"`) || !strings.Contains(string(r.body), `"filtered":true`) {
					t.Errorf("body %s", r.body)
				}
			},
		},
		{
			name:       "404 DeploymentNotFound fails over and cools down",
			opts:       proxytest.AzureOptions{Deployments: []string{"gpt-4o-other"}},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=404," + s + "=200", wantHits: [2]int{1, 1},
			wantState: health.StateCooldown, wantReason: "upstream_model_not_found", maxTime: 2 * time.Second,
		},
		{
			name:       "429 with a short Retry-After waits it out and retries on Azure",
			next:       []proxytest.AzureAnswer{proxytest.AzureRateLimited("1")},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: p, wantTrail: p + "=429," + p + "=200", wantHits: [2]int{2, 0},
			wantState: health.StateHealthy, maxTime: 4 * time.Second,
			check: func(t *testing.T, r response, _ health.Status) {
				if r.took < 900*time.Millisecond {
					t.Errorf("took %v: the Retry-After of 1 s was not waited out", r.took)
				}
			},
		},
		{
			name:       "429 with a long Retry-After fails over; the cooldown lasts the Retry-After",
			next:       []proxytest.AzureAnswer{proxytest.AzureRateLimited("45")},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=429," + s + "=200", wantHits: [2]int{1, 1},
			wantState: health.StateCooldown, wantReason: "upstream_rate_limited", maxTime: 2 * time.Second,
			check: func(t *testing.T, _ response, st health.Status) {
				if d := st.CooldownUntil.Sub(newFakeClock().Now()); d != 45*time.Second {
					t.Errorf("cooldown %v, want the Retry-After (45s)", d)
				}
			},
		},
		{
			name:       "retry_on_429 false returns Azure's 429 with its Retry-After",
			next:       []proxytest.AzureAnswer{proxytest.AzureRateLimited("7")},
			routing:    storage.Routing{RetryOn429: ptr(false)},
			wantStatus: 429, wantTrail: p + "=429", wantHits: [2]int{1, 0},
			wantState: health.StateCooldown, wantReason: "upstream_rate_limited", maxTime: 2 * time.Second,
			check: func(t *testing.T, r response, _ health.Status) {
				wantHeader(t, r.header, "Retry-After", "7")
			},
		},
		{
			name:       "500 once then 200 is retried on Azure",
			next:       []proxytest.AzureAnswer{proxytest.AzureServerError(500)},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: p, wantTrail: p + "=500," + p + "=200", wantHits: [2]int{2, 0},
			wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:       "503 twice fails over after the retries",
			next:       []proxytest.AzureAnswer{proxytest.AzureServerError(503), proxytest.AzureServerError(503)},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=503," + p + "=503," + s + "=200", wantHits: [2]int{2, 1},
			wantState: health.StateCooldown, wantReason: "upstream_server_error", maxTime: 2 * time.Second,
		},
		{
			name:       "context-length 400 fails over to the next target, no cooldown",
			next:       []proxytest.AzureAnswer{proxytest.AzureStatus(400, `{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}`)},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=400," + s + "=200", wantHits: [2]int{1, 1},
			wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:       "403 (key authentication disabled on the resource) fails over and cools down",
			next:       []proxytest.AzureAnswer{proxytest.AzureStatus(403, `{"error":{"code":"AuthenticationTypeDisabled","message":"Key based authentication is disabled for this resource."}}`)},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=403," + s + "=200", wantHits: [2]int{1, 1},
			wantState: health.StateCooldown, wantReason: "upstream_forbidden", maxTime: 2 * time.Second,
		},
		{
			name:       "an Azure 400 other than the filter or the context is the caller's: returned with its code",
			next:       []proxytest.AzureAnswer{proxytest.AzureStatus(400, `{"error":{"message":"Invalid value for 'temperature': must be between 0 and 2.","type":"invalid_request_error","param":"temperature","code":"invalid_value"}}`)},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: p + "=400", wantHits: [2]int{1, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
			check: func(t *testing.T, r response, _ health.Status) {
				if e, _ := r.json(t)["error"].(map[string]any); e["code"] != "invalid_value" || e["param"] != "temperature" {
					t.Errorf("error %s", r.body)
				}
			},
		},
		{
			name:       "a refused api-key (401) fails over and cools down",
			opts:       proxytest.AzureOptions{APIKey: "another-key-0123"},
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=401," + s + "=200", wantHits: [2]int{1, 1},
			wantState: health.StateCooldown, wantReason: "upstream_auth_failure", maxTime: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAzure(t, tt.opts)
			a.Next(tt.next...)
			secondary := upstream(t, "secondary")
			e := newEnv(t, azurePair(a, secondary, tt.routing))
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			wantAzureHits(t, a, tt.wantHits[0])
			wantHits(t, secondary, tt.wantHits[1])
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServedBy)
			wantUnder(t, r.took, tt.maxTime)
			if tt.wantStatus == 200 {
				if m := r.json(t)["model"]; m != "chat-prod" {
					t.Errorf("model = %v, want the alias", m)
				}
			}
			st := e.reg.Status("id-gpt-4o-azure")
			if st.State != tt.wantState || st.Reason != tt.wantReason {
				t.Errorf("azure state = %s/%q, want %s/%q", st.State, st.Reason, tt.wantState, tt.wantReason)
			}
			if tt.check != nil {
				tt.check(t, r, st)
			}
		})
	}
}

// TestAzureFaultsStreaming: Azure's first chunk (empty choices, the
// prompt filter results) is not content and does not commit; content
// after it does, and cuts and stalls then end the caller's stream.
func TestAzureFaultsStreaming(t *testing.T) {
	const (
		p = "gpt-4o-azure"
		s = "gpt-4o-secondary"
	)
	tests := []struct {
		name         string
		opts         proxytest.AzureOptions
		next         []proxytest.AzureAnswer
		mods         []func(*storage.Model)
		wantStatus   int
		wantServedBy string
		wantTrail    string
		wantHits     [2]int
		wantContent  string
		wantDone     bool
		wantErrType  string
		wantState    string
		wantReason   string
		check        func(t *testing.T, r streamResult)
	}{
		{
			name:         "a normal stream is relayed, the prompt filter chunk included",
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "Hello from Azure.", wantDone: true, wantState: health.StateHealthy,
			check: func(t *testing.T, r streamResult) {
				if len(r.events) == 0 || !strings.Contains(r.events[0].data, `"prompt_filter_results"`) || !strings.Contains(r.events[0].data, `"choices":[]`) {
					t.Errorf("first event %v", r.events)
				}
			},
		},
		{
			name:         "a stall after the prompt filter chunk fails over: that chunk did not commit",
			next:         []proxytest.AzureAnswer{proxytest.AzureStream(proxytest.AzureStreamOptions{StallAfterFilter: true})},
			mods:         []func(*storage.Model){withStreamTimeout(300)},
			wantServedBy: s, wantTrail: p + "=timeout," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "request_timeout",
			check: func(t *testing.T, r streamResult) {
				if strings.Contains(r.raw, "prompt_filter_results") {
					t.Errorf("the failed attempt's prompt filter chunk reached the caller:\n%s", r.raw)
				}
			},
		},
		{
			name:         "a stream cut after content ends with an error event and no [DONE]",
			next:         []proxytest.AzureAnswer{proxytest.AzureStream(proxytest.AzureStreamOptions{CutAfter: 2})},
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "Hello from", wantErrType: "stream_aborted", wantState: health.StateCooldown, wantReason: "transport_error",
		},
		{
			name:         "a stall after content ends with a timeout error event",
			next:         []proxytest.AzureAnswer{proxytest.AzureStream(proxytest.AzureStreamOptions{StallAfter: 1})},
			mods:         []func(*storage.Model){withStreamTimeout(300)},
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "Hello", wantErrType: "timeout", wantState: health.StateCooldown, wantReason: "request_timeout",
		},
		{
			name:         "finish_reason content_filter on a stream passes through",
			next:         []proxytest.AzureAnswer{proxytest.AzureStream(proxytest.AzureStreamOptions{Chunks: []string{"Once"}, Filtered: true})},
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "Once", wantDone: true, wantState: health.StateHealthy,
			check: func(t *testing.T, r streamResult) {
				if !strings.Contains(r.raw, `"finish_reason":"content_filter"`) {
					t.Errorf("no content_filter finish:\n%s", r.raw)
				}
			},
		},
		{
			name:         "the Asynchronous Filter's annotation chunks pass through",
			next:         []proxytest.AzureAnswer{proxytest.AzureStream(proxytest.AzureStreamOptions{AsyncFilter: true})},
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "Hello from Azure.", wantDone: true, wantState: health.StateHealthy,
			check: func(t *testing.T, r streamResult) {
				// prompt filter, 3 × (content, annotation), finish, annotation, [DONE]
				if n := strings.Count(r.raw, `"content_filter_offsets"`); n != 4 || len(r.events) != 10 {
					t.Errorf("%d annotations in %d events, want 4 in 10:\n%s", n, len(r.events), r.raw)
				}
			},
		},
		{
			name:       "a content-filter 400 on a stream request is returned, not failed over",
			next:       []proxytest.AzureAnswer{proxytest.AzureContentFilter()},
			wantStatus: 400, wantTrail: p + "=400", wantHits: [2]int{1, 0}, wantState: health.StateHealthy,
			check: func(t *testing.T, r streamResult) {
				if !strings.Contains(r.raw, `"code":"content_filter"`) {
					t.Errorf("body %s", r.raw)
				}
			},
		},
		{
			name:         "404 DeploymentNotFound on a stream fails over",
			opts:         proxytest.AzureOptions{Deployments: []string{"gpt-4o-other"}},
			wantServedBy: s, wantTrail: p + "=404," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "upstream_model_not_found",
		},
		{
			name:         "429 on a stream fails over",
			next:         []proxytest.AzureAnswer{proxytest.AzureRateLimited("")},
			wantServedBy: s, wantTrail: p + "=429," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "upstream_rate_limited",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := newAzure(t, tt.opts)
			a.Next(tt.next...)
			secondary := upstream(t, "secondary")
			e := newEnv(t, azurePair(a, secondary, storage.Routing{}, tt.mods...))
			r := e.stream("chat-prod")
			if want := max(tt.wantStatus, 200); r.status != want {
				t.Fatalf("status = %d, want %d; body %s", r.status, want, r.raw)
			}
			wantAzureHits(t, a, tt.wantHits[0])
			wantHits(t, secondary, tt.wantHits[1])
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServedBy)
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantUnder(t, r.took, 3*time.Second)
			if tt.wantStatus == 0 {
				if got := r.content(t); got != tt.wantContent {
					t.Errorf("content = %q, want %q", got, tt.wantContent)
				}
				if r.done() != tt.wantDone {
					t.Errorf("[DONE] at the end = %v, want %v; raw:\n%s", r.done(), tt.wantDone, r.raw)
				}
				for _, ev := range r.events {
					if ev.name == "" && ev.data != "[DONE]" && !strings.Contains(ev.data, `"model":"chat-prod"`) {
						t.Errorf("chunk without the alias: %s", ev.data)
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
			}
			st := e.reg.Status("id-gpt-4o-azure")
			if st.State != tt.wantState || st.Reason != tt.wantReason {
				t.Errorf("azure state = %s/%q, want %s/%q", st.State, st.Reason, tt.wantState, tt.wantReason)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// entraEnv is chat-prod over gpt-4o-azure (an Entra ID key on a) and
// gpt-4o-secondary, with tokens from en; the proxy logs at debug level
// into the returned buffer.
func entraEnv(t *testing.T, en *proxytest.Entra, secret string, a *proxytest.Azure, secondary *proxytest.Upstream) (*env, *syncBuffer) {
	t.Helper()
	ds := azurePair(a, secondary, storage.Routing{})
	ds.ProviderKeys[0].Secret = secret
	logs := &syncBuffer{}
	tokens := &http.Client{Timeout: 5 * time.Second}
	e := newEnvRouting(t, ds, []routing.Option{routing.WithAzureTokens(tokens, en.Authority())}, func(o *proxy.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	return e, logs
}

// TestAzureEntra: an Entra ID key gets one token and reuses it for every
// request, streamed or not and concurrent, and sends it as a bearer token
// and never as an api-key.
func TestAzureEntra(t *testing.T) {
	en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-a", ClientID: "client-a", ClientSecret: "client-s3cret-a"})
	a := newAzure(t, proxytest.AzureOptions{Entra: en})
	secondary := upstream(t, "secondary")
	e, _ := entraEnv(t, en, en.Secret(), a, secondary)

	// Concurrent first requests, half of them streamed, share the one
	// token request.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- chatFrom(e, i%2 == 1, "gpt-4o-azure")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for range 4 {
		if r := e.chat("chat-prod"); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	if en.Hits() != 1 {
		t.Errorf("token requests = %d over 12 requests, want 1", en.Hits())
	}
	wantAzureHits(t, a, 12)
	wantHits(t, secondary, 0)
	for _, r := range a.Requests() {
		if r.Auth != "bearer" || r.Header.Get("Api-Key") != "" || !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer eyJ") {
			t.Fatalf("request auth %q api-key %q authorization %q", r.Auth, r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
		}
	}
}

// chatFrom sends one chat-prod request from any goroutine and checks that
// servedBy answered it in full.
func chatFrom(e *env, stream bool, servedBy string) error {
	req, err := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("chat-prod", stream)))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK || resp.Header.Get("X-Aisix-Served-By") != servedBy:
		return fmt.Errorf("stream %v: status %d trail %s: %s", stream, resp.StatusCode, resp.Header.Get("X-Aisix-Attempts"), b)
	case stream && !strings.HasSuffix(string(b), "data: [DONE]\n\n"):
		return fmt.Errorf("stream not completed: %s", b)
	}
	return nil
}

// TestAzureEntraRefresh: a token whose expiry is inside the 60 s refresh
// margin is replaced before the next request; a long-lived one is kept.
func TestAzureEntraRefresh(t *testing.T) {
	en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-r", ClientID: "client-r", ClientSecret: "client-s3cret-r", ExpiresIn: 59})
	a := newAzure(t, proxytest.AzureOptions{Entra: en})
	secondary := upstream(t, "secondary")
	e, _ := entraEnv(t, en, en.Secret(), a, secondary)
	chat := func() {
		t.Helper()
		if r := e.chat("chat-prod"); r.status != 200 || r.header.Get("X-Aisix-Served-By") != "gpt-4o-azure" {
			t.Fatalf("status %d trail %s: %s", r.status, r.header.Get("X-Aisix-Attempts"), r.body)
		}
	}
	// 59 s is already past the margin: every request fetches a token.
	for range 3 {
		chat()
	}
	if en.Hits() != 3 {
		t.Errorf("token requests = %d for 3 requests with 59 s tokens, want 3", en.Hits())
	}
	// The next token lives an hour: fetched once, then reused.
	en.SetExpiresIn(3600)
	for range 3 {
		chat()
	}
	if en.Hits() != 4 {
		t.Errorf("token requests = %d, want 4 (one more, then reuse)", en.Hits())
	}
	seen := map[string]bool{}
	for _, r := range a.Requests() {
		seen[r.Header.Get("Authorization")] = true
	}
	if len(seen) != 4 {
		t.Errorf("%d distinct bearer tokens sent, want 4", len(seen))
	}
}

// TestAzureEntraFailure: a token endpoint that refuses the credential, or
// is down, fails the attempt over (credential_error) and cools the target;
// nothing of the secret or of the token endpoint's answer reaches the
// caller, the health record or the logs. Once the endpoint answers again
// and the cooldown has run out, Azure serves again.
func TestAzureEntraFailure(t *testing.T) {
	const p, s = "gpt-4o-azure", "gpt-4o-secondary"
	for _, tt := range []struct {
		name   string
		secret func(en *proxytest.Entra) string
		fail   []int
	}{
		{"refused client secret", func(en *proxytest.Entra) string {
			return `{"tenant_id":"tenant-f","client_id":"client-f","client_secret":"wrong-s3cret-value"}`
		}, nil},
		{"token endpoint outage", (*proxytest.Entra).Secret, []int{503}},
	} {
		for _, stream := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/stream=%v", tt.name, stream), func(t *testing.T) {
				t.Parallel()
				en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-f", ClientID: "client-f", ClientSecret: "client-s3cret-f"})
				en.FailNext(tt.fail...)
				a := newAzure(t, proxytest.AzureOptions{Entra: en})
				secondary := upstream(t, "secondary")
				e, logs := entraEnv(t, en, tt.secret(en), a, secondary)

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
				wantHeader(t, header, "X-Aisix-Attempts", p+"=credential_error,"+s+"=200")
				wantHeader(t, header, "X-Aisix-Served-By", s)
				if en.Hits() != 1 {
					t.Errorf("token requests %d, want 1", en.Hits())
				}
				wantAzureHits(t, a, 0)
				st := e.reg.Status("id-gpt-4o-azure")
				if st.State != health.StateCooldown || st.Reason != "upstream_auth_failure" {
					t.Errorf("azure state = %s/%q, want cooldown/upstream_auth_failure", st.State, st.Reason)
				}
				leaks := []string{"s3cret", "AADSTS", "invalid_client", "temporarily_unavailable", "Trace ID", "error_description", strings.TrimPrefix(en.Authority(), "http://")}
				for _, leak := range leaks {
					if strings.Contains(body, leak) || strings.Contains(fmt.Sprint(header), leak) {
						t.Errorf("caller's answer leaks %q: %s", leak, body)
					}
					if all := logs.String() + e.logs.String() + st.LastError; strings.Contains(all, leak) {
						t.Errorf("logs or health record leak %q:\n%s", leak, all)
					}
				}
				if tt.fail == nil || stream {
					return
				}
				// The outage is over: after the cooldown, Azure is probed
				// and answers with a fresh token.
				e.clock.Advance(10 * time.Minute)
				r := e.chat("chat-prod")
				if r.status != 200 || r.header.Get("X-Aisix-Served-By") != p {
					t.Fatalf("after the outage: status %d trail %s", r.status, r.header.Get("X-Aisix-Attempts"))
				}
				if en.Issued() != 1 || a.Requests()[0].Auth != "bearer" {
					t.Errorf("tokens issued %d, want 1", en.Issued())
				}
			})
		}
	}
}

// TestAzureEntraFailureAlone: with no other target, a failed token
// request is a 502 that says what failed and nothing of the answer.
func TestAzureEntraFailureAlone(t *testing.T) {
	en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-1", ClientID: "client-1", ClientSecret: "client-s3cret-1"})
	en.FailNext(401)
	a := newAzure(t, proxytest.AzureOptions{Entra: en})
	e := newEnvRouting(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{azureKey("pk-azure", a.URL(), en.Secret(), "")},
		Models:       []storage.Model{azureModel("gpt-4o-azure", "pk-azure", "gpt-4o")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}, []routing.Option{routing.WithAzureTokens(&http.Client{Timeout: 5 * time.Second}, en.Authority())})
	r := e.chat("gpt-4o-azure")
	if r.status != http.StatusBadGateway || r.errType(t) != "upstream_error" {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-azure=credential_error")
	if msg := r.json(t)["error"].(map[string]any)["message"]; msg != "could not get a credential for the upstream: entra id token request refused (401)" {
		t.Errorf("message %q", msg)
	}
	for _, leak := range []string{"s3cret", "AADSTS", "invalid_client", "client-1", "tenant-1"} {
		if strings.Contains(string(r.body), leak) {
			t.Errorf("answer leaks %q: %s", leak, r.body)
		}
	}
	wantAzureHits(t, a, 0)
}

// TestAzureThreeWay: an OpenAI-wire primary that refuses is followed by
// Azure, which answers; when Azure refuses too, the third target does.
func TestAzureThreeWay(t *testing.T) {
	const (
		p  = "gpt-4o-primary"
		az = "gpt-4o-azure"
		s  = "gpt-4o-secondary"
	)
	setup := func(t *testing.T, azOpts proxytest.AzureOptions) (*env, *proxytest.Upstream, *proxytest.Azure, *proxytest.Upstream) {
		primary := upstream(t, "primary", proxytest.Status(401, `{"error":{"message":"Incorrect API key provided: sk-up***","type":"invalid_request_error","code":"invalid_api_key"}}`))
		a := newAzure(t, azOpts)
		secondary := upstream(t, "secondary")
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{
				providerKey("pk-primary", primary.BaseURL()),
				azureKey("pk-azure", a.URL(), azureAPIKey, ""),
				providerKey("pk-secondary", secondary.BaseURL()),
			},
			Models: []storage.Model{
				directModel(p, "pk-primary"),
				azureModel(az, "pk-azure", "gpt-4o"),
				directModel(s, "pk-secondary"),
				routingModel("chat-prod", storage.Routing{Targets: targets(p, az, s)}),
			},
			APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
		})
		return e, primary, a, secondary
	}
	t.Run("azure answers", func(t *testing.T) {
		t.Parallel()
		e, primary, a, secondary := setup(t, proxytest.AzureOptions{})
		r := e.chat("chat-prod")
		if r.status != 200 || !strings.Contains(string(r.body), "Hello from Azure.") || r.json(t)["model"] != "chat-prod" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Served-By", az)
		wantHeader(t, r.header, "X-Aisix-Attempts", p+"=401,"+az+"=200")
		// The primary is cooling now; the stream goes straight to Azure.
		st := e.stream("chat-prod")
		if st.status != 200 || st.content(t) != "Hello from Azure." || !st.done() {
			t.Fatalf("stream: status %d:\n%s", st.status, st.raw)
		}
		wantHeader(t, st.header, "X-Aisix-Served-By", az)
		if got := st.header.Get("X-Aisix-Attempts"); !strings.HasSuffix(got, az+"=200") || strings.Contains(got, s) {
			t.Errorf("stream trail %q", got)
		}
		wantHits(t, primary, 1)
		wantAzureHits(t, a, 2)
		wantHits(t, secondary, 0)
		if got := primary.Requests()[0].Header.Get("Authorization"); got != "Bearer sk-upstream-pk-primary" {
			t.Errorf("primary authorization %q", got)
		}
		if got := a.Requests()[0]; got.Header.Get("Authorization") != "" || got.Header.Get("Api-Key") != azureAPIKey || string(got.Body) != chatBody("gpt-4o", false) {
			t.Errorf("azure request authorization %q api-key %q body %s", got.Header.Get("Authorization"), got.Header.Get("Api-Key"), got.Body)
		}
	})
	t.Run("azure streams", func(t *testing.T) {
		t.Parallel()
		e, primary, a, secondary := setup(t, proxytest.AzureOptions{})
		r := e.stream("chat-prod")
		if r.status != 200 || r.content(t) != "Hello from Azure." || !r.done() {
			t.Fatalf("status %d:\n%s", r.status, r.raw)
		}
		wantHeader(t, r.header, "X-Aisix-Served-By", az)
		wantHeader(t, r.header, "X-Aisix-Attempts", p+"=401,"+az+"=200")
		for _, ev := range r.events {
			if ev.data != "[DONE]" && !strings.Contains(ev.data, `"model":"chat-prod"`) {
				t.Errorf("chunk without the alias: %s", ev.data)
			}
		}
		wantHits(t, primary, 1)
		wantAzureHits(t, a, 1)
		wantHits(t, secondary, 0)
	})
	t.Run("azure's content filter ends the walk", func(t *testing.T) {
		t.Parallel()
		e, primary, a, secondary := setup(t, proxytest.AzureOptions{})
		a.Next(proxytest.AzureContentFilter())
		r := e.chat("chat-prod")
		if r.status != 400 || !strings.Contains(string(r.body), `"code":"content_filter"`) {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Attempts", p+"=401,"+az+"=400")
		wantHits(t, primary, 1)
		wantAzureHits(t, a, 1)
		wantHits(t, secondary, 0)
		if st := e.reg.Status("id-" + az); st.State != health.StateHealthy {
			t.Errorf("azure state %s/%q, want healthy", st.State, st.Reason)
		}
	})
	t.Run("azure refuses too", func(t *testing.T) {
		t.Parallel()
		e, primary, a, secondary := setup(t, proxytest.AzureOptions{Deployments: []string{"gpt-35-turbo"}})
		r := e.chat("chat-prod")
		if r.status != 200 || r.json(t)["model"] != "chat-prod" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Served-By", s)
		wantHeader(t, r.header, "X-Aisix-Attempts", p+"=401,"+az+"=404,"+s+"=200")
		wantHits(t, primary, 1)
		wantAzureHits(t, a, 1)
		wantHits(t, secondary, 1)
	})
}

// TestAzureEntraStall: a token endpoint that does not answer holds the
// attempt no longer than the model's timeout: it fails over
// (credential_error) within the timeout, not the token client's 10 s.
// Once the endpoint answers, the token is there for the next requests.
func TestAzureEntraStall(t *testing.T) {
	const p, s = "gpt-4o-azure", "gpt-4o-secondary"
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			t.Parallel()
			en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-h", ClientID: "client-h", ClientSecret: "client-s3cret-h"})
			en.Stall()
			a := newAzure(t, proxytest.AzureOptions{Entra: en})
			secondary := upstream(t, "secondary")
			ds := azurePair(a, secondary, storage.Routing{}, withTimeout(300), withStreamTimeout(300))
			ds.ProviderKeys[0].Secret = en.Secret()
			// The default token client (10 s timeout), as serve has it.
			e := newEnvRouting(t, ds, []routing.Option{routing.WithAzureTokens(nil, en.Authority())})
			var trail string
			var took time.Duration
			if stream {
				r := e.stream("chat-prod")
				if r.status != 200 || !r.done() {
					t.Fatalf("status %d:\n%s", r.status, r.raw)
				}
				trail, took = r.header.Get("X-Aisix-Attempts"), r.took
			} else {
				r := e.chat("chat-prod")
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				trail, took = r.header.Get("X-Aisix-Attempts"), r.took
			}
			if trail != p+"=credential_error,"+s+"=200" {
				t.Errorf("trail %q", trail)
			}
			wantUnder(t, took, 3*time.Second)
			wantAzureHits(t, a, 0)
		})
	}
}

// TestAzureEntraStallBudget: when the routing timeout runs out while the
// token request hangs, the walk ends as any budget exhaustion does: a
// 504, nobody's fault, no cooldown, no further target.
func TestAzureEntraStallBudget(t *testing.T) {
	en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-b", ClientID: "client-b", ClientSecret: "client-s3cret-b"})
	en.Stall()
	a := newAzure(t, proxytest.AzureOptions{Entra: en})
	secondary := upstream(t, "secondary")
	ds := azurePair(a, secondary, storage.Routing{Timeout: ptr(int64(400))}, withTimeout(5000))
	ds.ProviderKeys[0].Secret = en.Secret()
	e := newEnvRouting(t, ds, []routing.Option{routing.WithAzureTokens(nil, en.Authority())})
	r := e.chat("chat-prod")
	if r.status != http.StatusGatewayTimeout || r.errType(t) != "timeout" {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-azure=timeout")
	wantUnder(t, r.took, 3*time.Second)
	wantHits(t, secondary, 0)
	if st := e.reg.Status("id-gpt-4o-azure"); st.State != health.StateHealthy {
		t.Errorf("azure state %s/%q, want healthy (the budget ran out; the target is not to blame)", st.State, st.Reason)
	}
}

// TestAzureEntraV1: an Entra ID key on the v1 API: the bearer token on
// /openai/v1/chat/completions, the deployment as the body's model.
func TestAzureEntraV1(t *testing.T) {
	en := newEntra(t, proxytest.EntraOptions{TenantID: "tenant-v", ClientID: "client-v", ClientSecret: "client-s3cret-v"})
	a := newAzure(t, proxytest.AzureOptions{Entra: en})
	e := newEnvRouting(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{azureKey("pk-azure", a.URL(), en.Secret(), "v1")},
		Models:       []storage.Model{azureModel("gpt-4o-azure", "pk-azure", "gpt-4o")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}, []routing.Option{routing.WithAzureTokens(nil, en.Authority())})
	if r := e.chat("gpt-4o-azure"); r.status != 200 || r.json(t)["model"] != "gpt-4o-azure" {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if s := e.stream("gpt-4o-azure"); s.status != 200 || s.content(t) != "Hello from Azure." || !s.done() {
		t.Fatalf("stream: status %d:\n%s", s.status, s.raw)
	}
	for _, r := range a.Requests() {
		if r.Path != "/openai/v1/chat/completions" || r.Auth != "bearer" || r.Deployment != "gpt-4o" || r.Header.Get("Api-Key") != "" {
			t.Errorf("request %s auth %q deployment %q api-key %q", r.Path, r.Auth, r.Deployment, r.Header.Get("Api-Key"))
		}
	}
	if en.Hits() != 1 {
		t.Errorf("token requests %d, want 1", en.Hits())
	}
}
