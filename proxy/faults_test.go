package proxy_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// TestFaultsPlain runs every upstream fault of a non-streaming request
// against misbehaving upstreams: attempts per upstream, the attempt trail,
// status, headers, body, the primary's runtime state, and wall time bounded
// (generously) by the configured budgets.
func TestFaultsPlain(t *testing.T) {
	const (
		p = "gpt-4o-primary"
		s = "gpt-4o-secondary"
	)
	tests := []struct {
		name               string
		primary, secondary []proxytest.Behavior
		routing            storage.Routing
		mods               []func(*storage.Model)
		wantStatus         int
		wantServedBy       string
		wantTrail          string
		wantHits           [2]int
		wantState          string // primary's health state
		wantReason         string
		wantErrType        string
		maxTime            time.Duration
		check              func(t *testing.T, r response)
	}{
		{
			name:       "429 with a short Retry-After waits and retries the same target",
			primary:    proxytest.Sequence(proxytest.RateLimited("1"), proxytest.OK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: p, wantTrail: p + "=429," + p + "=200",
			wantHits: [2]int{2, 0}, wantState: health.StateHealthy, maxTime: 4 * time.Second,
		},
		{
			name:       "429 without Retry-After fails over at once",
			primary:    proxytest.Sequence(proxytest.RateLimited("")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=429," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_rate_limited", maxTime: 2 * time.Second,
		},
		{
			name:       "429 with a long Retry-After fails over at once",
			primary:    proxytest.Sequence(proxytest.RateLimited("60")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=429," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_rate_limited", maxTime: 2 * time.Second,
		},
		{
			name:       "retry_on_429 false returns the 429 with its Retry-After",
			primary:    proxytest.Sequence(proxytest.RateLimited("7")),
			routing:    storage.Routing{Retries: ptr(1), RetryOn429: ptr(false)},
			wantStatus: 429, wantTrail: p + "=429",
			wantHits: [2]int{1, 0}, wantState: health.StateCooldown, wantReason: "upstream_rate_limited", maxTime: 2 * time.Second,
			check: func(t *testing.T, r response) {
				wantHeader(t, r.header, "Retry-After", "7")
				if !strings.Contains(string(r.body), "Rate limit reached") {
					t.Errorf("429 body not passed through: %s", r.body)
				}
			},
		},
		{
			name:       "500 once then 200 is retried on the same target",
			primary:    proxytest.Sequence(proxytest.ServerError(500), proxytest.OK()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: p, wantTrail: p + "=500," + p + "=200",
			wantHits: [2]int{2, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:       "503 always fails over after the retries",
			primary:    proxytest.Sequence(proxytest.ServerError(503)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=503," + p + "=503," + s + "=200",
			wantHits: [2]int{2, 1}, wantState: health.StateCooldown, wantReason: "upstream_server_error", maxTime: 2 * time.Second,
		},
		{
			name:       "reset before headers is a transport error: retried, then failover",
			primary:    proxytest.Sequence(proxytest.Reset()),
			routing:    storage.Routing{Retries: ptr(1), MaxFallbacks: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=transport_error," + p + "=transport_error," + s + "=200",
			wantHits: [2]int{2, 1}, wantState: health.StateCooldown, wantReason: "transport_error", maxTime: 2 * time.Second,
		},
		{
			name:       "no response at all fails over at once, without a same-target retry",
			primary:    proxytest.Sequence(proxytest.Hang()),
			routing:    storage.Routing{Retries: ptr(2)},
			mods:       []func(*storage.Model){withTimeout(300)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=timeout," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "request_timeout", maxTime: 2 * time.Second,
		},
		{
			name:       "context-length 400 fails over to the next target, no cooldown",
			primary:    proxytest.Sequence(proxytest.ContextLengthExceeded()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=400," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:       "content-policy 400 is returned at once, untouched",
			primary:    proxytest.Sequence(proxytest.ContentPolicy()),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 400, wantTrail: p + "=400",
			wantHits: [2]int{1, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
			check: func(t *testing.T, r response) {
				want := `{"error":{"message":"Your request was rejected as a result of our safety system.","type":"invalid_request_error","param":null,"code":"content_policy_violation"}}`
				if string(r.body) != want {
					t.Errorf("body = %s, want the upstream body untouched", r.body)
				}
			},
		},
		{
			name:       "every target fails with 5xx: the last error, no upstream text",
			primary:    proxytest.Sequence(proxytest.ServerError(503)),
			secondary:  proxytest.Sequence(proxytest.ServerError(502)),
			wantStatus: 502, wantTrail: p + "=503," + s + "=502", wantErrType: "upstream_error",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_server_error", maxTime: 2 * time.Second,
			check: func(t *testing.T, r response) {
				if msg := r.json(t)["error"].(map[string]any)["message"]; msg != "upstream returned 502" {
					t.Errorf("message = %q", msg)
				}
				if strings.Contains(string(r.body), "10.1.2.3") {
					t.Errorf("upstream text leaked: %s", r.body)
				}
			},
		},
		{
			name:       "every target unreachable: transport_error naming no host",
			primary:    proxytest.Sequence(proxytest.Reset()),
			secondary:  proxytest.Sequence(proxytest.Reset()),
			wantStatus: 502, wantTrail: p + "=transport_error," + s + "=transport_error", wantErrType: "transport_error",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "transport_error", maxTime: 2 * time.Second,
			check: func(t *testing.T, r response) {
				msg, _ := r.json(t)["error"].(map[string]any)["message"].(string)
				if !strings.HasPrefix(msg, "transport error: ") || strings.Contains(msg, "127.0.0.1") {
					t.Errorf("message = %q", msg)
				}
			},
		},
		{
			name:       "an undecodable body is retried, then fails over",
			primary:    proxytest.Sequence(proxytest.Raw("application/json", "<html>oops</html>")),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=upstream_decode_error," + p + "=upstream_decode_error," + s + "=200",
			wantHits: [2]int{2, 1}, wantState: health.StateCooldown, wantReason: "upstream_decode_error", maxTime: 2 * time.Second,
		},
		{
			name:       "the routing timeout bounds the whole walk",
			primary:    proxytest.Sequence(proxytest.Hang()),
			secondary:  proxytest.Sequence(proxytest.Hang()),
			routing:    storage.Routing{Retries: ptr(2), Timeout: ptr(int64(400))},
			wantStatus: 504, wantTrail: p + "=timeout", wantErrType: "timeout",
			// Running out of the budget is nobody's fault: no cooldown.
			wantHits: [2]int{1, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:       "fallback_on_statuses makes a listed caller-fault 4xx retryable",
			primary:    proxytest.Sequence(proxytest.Status(422, `{"error":{"message":"overloaded","type":"x"}}`)),
			routing:    storage.Routing{FallbackOnStatuses: []int{422}},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=422," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:       "403 (no access to the model or region) fails over and cools down",
			primary:    proxytest.Sequence(proxytest.Status(403, `{"error":{"message":"Project proj_abc123 does not have access to model gpt-4o-mini","type":"invalid_request_error","code":"model_not_found"}}`)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=403," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_forbidden", maxTime: 2 * time.Second,
		},
		{
			name:       "404 model_not_found fails over and cools down",
			primary:    proxytest.Sequence(proxytest.Status(404, `{"error":{"message":"The model gpt-4o-mini does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}`)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=404," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_model_not_found", maxTime: 2 * time.Second,
		},
		{
			name:       "408 cools the target and fails over (it used to stop the walk)",
			primary:    proxytest.Sequence(proxytest.Status(408, `{"error":{"message":"timeout","type":"timeout"}}`)),
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=408," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_request_timeout", maxTime: 2 * time.Second,
		},
		{
			name:       "422 is the caller's: returned at once, nothing cooled",
			primary:    proxytest.Sequence(proxytest.Status(422, `{"error":{"message":"Unprocessable: messages[0].role","type":"invalid_request_error","param":"messages","code":null}}`)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 422, wantTrail: p + "=422",
			wantHits: [2]int{1, 0}, wantState: health.StateHealthy, wantErrType: "invalid_request_error", maxTime: 2 * time.Second,
		},
		{
			name:       "413 is the caller's: returned at once",
			primary:    proxytest.Sequence(proxytest.Status(413, `{"error":{"message":"request too large","type":"invalid_request_error"}}`)),
			wantStatus: 413, wantTrail: p + "=413",
			wantHits: [2]int{1, 0}, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:    "a status listed in trigger_statuses cools the target and so fails over",
			primary: proxytest.Sequence(proxytest.Status(400, `{"error":{"message":"bad","type":"invalid_request_error"}}`)),
			mods: []func(*storage.Model){func(m *storage.Model) {
				if m.DisplayName == p {
					m.Cooldown = &storage.Cooldown{TriggerStatuses: []int{400}}
				}
			}},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=400," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_status_failure", maxTime: 2 * time.Second,
		},
		{
			name: "a returned 400 is rebuilt: type, code and param kept, account and network details removed",
			primary: proxytest.Sequence(proxytest.Status(400, `{"error":{"message":"Invalid value for org-AbCdEf123456 project proj_XyZ987654: `+
				`key sk-abc***wxyz rejected by http://10.1.2.3:8080/internal via inference-7.internal.corp","type":"invalid_request_error","param":"temperature","code":"invalid_value","extra":"x"}}`,
				"Content-Type", "text/plain")),
			wantStatus: 400, wantTrail: p + "=400",
			wantHits: [2]int{1, 0}, wantState: health.StateHealthy, wantErrType: "invalid_request_error", maxTime: 2 * time.Second,
			check: func(t *testing.T, r response) {
				for _, leak := range []string{"org-AbCdEf", "proj_XyZ", "sk-abc", "wxyz", "10.1.2.3", "internal.corp", "/internal", "extra"} {
					if strings.Contains(string(r.body), leak) {
						t.Errorf("body leaks %q: %s", leak, r.body)
					}
				}
				e := r.json(t)["error"].(map[string]any)
				if e["param"] != "temperature" || e["code"] != "invalid_value" || !strings.HasPrefix(e["message"].(string), "Invalid value for") {
					t.Errorf("error envelope not kept: %s", r.body)
				}
				wantHeader(t, r.header, "Content-Type", "application/json")
			},
		},
		{
			name:       "a refused provider key (401) fails over and cools down",
			primary:    proxytest.Sequence(proxytest.Status(401, `{"error":{"message":"Incorrect API key provided: sk-up***","type":"invalid_request_error","code":"invalid_api_key"}}`)),
			routing:    storage.Routing{Retries: ptr(1)},
			wantStatus: 200, wantServedBy: s, wantTrail: p + "=401," + s + "=200",
			wantHits: [2]int{1, 1}, wantState: health.StateCooldown, wantReason: "upstream_auth_failure", maxTime: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			primary := upstream(t, "primary", tt.primary...)
			secondary := upstream(t, "secondary", tt.secondary...)
			e := newEnv(t, pair(primary, secondary, tt.routing, tt.mods...))
			r := e.chat("chat-prod")
			if r.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tt.wantStatus, r.body)
			}
			wantHits(t, primary, tt.wantHits[0])
			wantHits(t, secondary, tt.wantHits[1])
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServedBy)
			wantHeader(t, r.header, "Server", "AISIX/0.1.0")
			if len(r.header.Get("X-Aisix-Call-Id")) != 36 {
				t.Errorf("x-aisix-call-id = %q", r.header.Get("X-Aisix-Call-Id"))
			}
			wantUnder(t, r.took, tt.maxTime)
			if tt.wantStatus == 200 {
				body := r.json(t)
				if body["model"] != "chat-prod" {
					t.Errorf("model = %v, want the alias", body["model"])
				}
			}
			if tt.wantErrType != "" {
				if got := r.errType(t); got != tt.wantErrType {
					t.Errorf("error type = %q, want %q", got, tt.wantErrType)
				}
			}
			st := e.reg.Status("id-gpt-4o-primary")
			if st.State != tt.wantState || st.Reason != tt.wantReason {
				t.Errorf("primary state = %s/%q, want %s/%q", st.State, st.Reason, tt.wantState, tt.wantReason)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
		})
	}
}

// TestFaultsStreaming runs the streaming faults: before the first content
// chunk every failure is a failed attempt; after it, the caller's stream
// ends with an error event and no [DONE].
func TestFaultsStreaming(t *testing.T) {
	const (
		p = "gpt-4o-primary"
		s = "gpt-4o-secondary"
	)
	tests := []struct {
		name         string
		primary      []proxytest.Behavior
		routing      storage.Routing
		mods         []func(*storage.Model)
		wantServedBy string
		wantTrail    string
		wantHits     [2]int
		wantContent  string
		wantDone     bool
		wantErrType  string // of the error event; "" for none
		wantState    string
		wantReason   string
		maxTime      time.Duration
		wantLog      string
	}{
		{
			name:         "a normal stream is relayed with the alias in every chunk",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{RoleChunk: true})),
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from primary", wantDone: true, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:         "slow first token fails over within stream_timeout",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{FirstDelay: 5 * time.Second})),
			routing:      storage.Routing{Retries: ptr(2)},
			mods:         []func(*storage.Model){withStreamTimeout(300)},
			wantServedBy: s, wantTrail: p + "=timeout," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "request_timeout",
			maxTime: 2 * time.Second,
		},
		{
			name:         "reset before headers fails over",
			primary:      proxytest.Sequence(proxytest.Reset()),
			wantServedBy: s, wantTrail: p + "=transport_error," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "transport_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "429 on a stream fails over",
			primary:      proxytest.Sequence(proxytest.RateLimited("")),
			wantServedBy: s, wantTrail: p + "=429," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "upstream_rate_limited",
			maxTime: 2 * time.Second,
		},
		{
			name:         "a stream that ends before any content fails over",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{RoleChunk: true, Chunks: []string{}, NoFinish: true, NoDone: true})),
			wantServedBy: s, wantTrail: p + "=stream_aborted," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "transport_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "an empty first event fails over",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{EmptyFirst: true})),
			wantServedBy: s, wantTrail: p + "=upstream_decode_error," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "upstream_decode_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "a malformed first event fails over",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{MalformedAt: 1})),
			wantServedBy: s, wantTrail: p + "=upstream_decode_error," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "upstream_decode_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "an in-band error before content fails over",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{ErrorAt: 1})),
			wantServedBy: s, wantTrail: p + "=in_band_error," + s + "=200", wantHits: [2]int{1, 1},
			wantContent: "hello from secondary", wantDone: true, wantState: health.StateCooldown, wantReason: "upstream_in_band_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "a stream cut mid-answer ends with an error event and no [DONE]",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{CutAfter: 2})),
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from", wantErrType: "stream_aborted", wantState: health.StateCooldown, wantReason: "transport_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "a stream stall ends with a timeout error event",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{StallAfter: 1})),
			mods:         []func(*storage.Model){withStreamTimeout(300)},
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "timeout", wantState: health.StateCooldown, wantReason: "request_timeout",
			maxTime: 2 * time.Second,
		},
		{
			name:         "an in-band error mid-stream ends the stream",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{ErrorAt: 2})),
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello", wantErrType: "upstream_error", wantState: health.StateCooldown, wantReason: "upstream_in_band_error",
			maxTime: 2 * time.Second,
		},
		{
			name:         "a malformed event mid-stream is dropped and logged",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{MalformedAt: 2})),
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from primary", wantDone: true, wantState: health.StateHealthy,
			maxTime: 2 * time.Second, wantLog: "dropped a malformed stream event",
		},
		{
			name:         "a finished stream without [DONE] gets one",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{NoDone: true})),
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from primary", wantDone: true, wantState: health.StateHealthy, maxTime: 2 * time.Second,
		},
		{
			name:         "an unfinished stream without [DONE] is not completed",
			primary:      proxytest.Sequence(proxytest.Stream(proxytest.StreamOptions{NoDone: true, NoFinish: true})),
			wantServedBy: p, wantTrail: p + "=200", wantHits: [2]int{1, 0},
			wantContent: "hello from primary", wantErrType: "stream_aborted", wantState: health.StateCooldown, wantReason: "transport_error",
			maxTime: 2 * time.Second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			primary := upstream(t, "primary", tt.primary...)
			secondary := upstream(t, "secondary")
			e := newEnv(t, pair(primary, secondary, tt.routing, tt.mods...))
			r := e.stream("chat-prod")
			if r.status != http.StatusOK {
				t.Fatalf("status = %d; body %s", r.status, r.raw)
			}
			wantHits(t, primary, tt.wantHits[0])
			wantHits(t, secondary, tt.wantHits[1])
			wantHeader(t, r.header, "X-Aisix-Served-By", tt.wantServedBy)
			wantHeader(t, r.header, "X-Aisix-Attempts", tt.wantTrail)
			wantHeader(t, r.header, "Server", "AISIX/0.1.0")
			wantUnder(t, r.took, tt.maxTime)
			if got := r.content(t); got != tt.wantContent {
				t.Errorf("content = %q, want %q", got, tt.wantContent)
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
				if strings.Contains(errEv.data, "10.0.0.7") {
					t.Errorf("upstream text leaked: %s", errEv.data)
				}
			}
			st := e.reg.Status("id-gpt-4o-primary")
			if st.State != tt.wantState || st.Reason != tt.wantReason {
				t.Errorf("primary state = %s/%q, want %s/%q", st.State, st.Reason, tt.wantState, tt.wantReason)
			}
			if tt.wantLog != "" && !strings.Contains(e.logs.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, e.logs.String())
			}
		})
	}
}
