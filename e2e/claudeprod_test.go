package e2e

// TestClaudeProd is issue 13's scenario through the real binary: one
// routing group, claude-prod, over the same Claude model on three clouds —
// Anthropic, AWS Bedrock and Google Vertex AI — made with the README's CLI
// commands, and called by the official OpenAI and Anthropic SDKs (the
// scripts e2e/sdk/claudeprod-*.mjs) with a tool the model calls.
//
// Each case makes its failing targets afresh (`aisix model create`) and
// points claude-prod at them (`aisix model route`, which replaces the
// group's targets), so every case starts from healthy targets and its
// x-aisix-attempts trail shows the whole failover — one attempt per
// target, as the group keeps aisix's default of no retries. The targets
// that failed stay cooling (a 300 s cooldown, or the Retry-After), and the
// end of the test reads them back from `aisix status -o json` and checks
// that `aisix model route --explain` puts a cooling primary last.
//
// The fakes are proxytest's: Anthropic's Messages API, Bedrock Runtime
// (SigV4 checked) and Claude on Vertex (a bearer token checked). The
// checks are on what the caller sees — the answer's text and tool call,
// x-aisix-served-by, x-aisix-attempts — not on which upstream operation
// served a Messages caller, so they hold however Bedrock is spoken to.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
)

const (
	cpAnthropicSecret = "sk-ant-api03-claude-prod-e2e-0001"
	cpVertexToken     = "ya29.claude-prod-e2e-access-token"
	cpToolInput       = `{"location":"Paris","unit":"celsius"}`
	cpCooldown        = "300" // seconds: longer than the test, so every failure is still cooling at its end
	cpRetryAfter      = 120   // the Anthropic 429's Retry-After, in seconds
)

// cpTarget is what one provider answers claude-prod with when healthy: a
// short text and a get_weather call whose id names the provider.
type cpTarget struct {
	model  string // the direct model's display name (x-aisix-served-by)
	toolID string
	text   string
}

var (
	cpAnthropic = cpTarget{model: "claude-anthropic", toolID: "toolu_01anthropicE2E", text: "Checking the weather (anthropic)."}
	cpBedrock   = cpTarget{model: "claude-bedrock", toolID: "tooluse_bedrockE2E01", text: "Checking the weather (bedrock)."}
	cpVertex    = cpTarget{model: "claude-vertex", toolID: "toolu_01vertexE2E", text: "Checking the weather (vertex)."}
)

// cpFragments split the tool input for streamed input deltas.
var cpFragments = []string{`{"location":`, `"Paris","unit":"celsius"}`}

func cpAnthropicTool(t cpTarget) proxytest.AnthropicTool {
	return proxytest.AnthropicTool{ID: t.toolID, Name: "get_weather", Input: cpToolInput, Fragments: cpFragments}
}

// bedrockToolAnswer answers with cpBedrock's text and tool call, in the
// shape of the operation asked: Converse and ConverseStream, or (should
// aisix send Messages callers to Claude on Bedrock as InvokeModel) the
// Anthropic body of InvokeModel and InvokeModelWithResponseStream's chunk
// events.
func bedrockToolAnswer() proxytest.Behavior {
	tool := []proxytest.BedrockTool{{ID: cpBedrock.toolID, Name: "get_weather", Input: cpToolInput, Fragments: cpFragments}}
	plain := proxytest.BedrockAnswer("", cpBedrock.text, tool, "tool_use")
	stream := proxytest.BedrockStream(proxytest.BedrockStreamOptions{Chunks: []string{"Checking the weather", " (bedrock)."}, Tools: tool})
	invoke := proxytest.AnthropicToolUse(cpBedrock.text, cpAnthropicTool(cpBedrock))
	return func(w http.ResponseWriter, c *proxytest.Call) {
		switch {
		case strings.HasSuffix(c.Path, "/invoke-with-response-stream"):
			invokeStream(w)
		case strings.HasSuffix(c.Path, "/invoke"):
			cc := *c
			cc.Stream = false
			invoke(w, &cc)
		case c.Stream:
			stream(w, c)
		default:
			plain(w, c)
		}
	}
}

// invokeStream answers InvokeModelWithResponseStream for Claude: each
// Messages stream event as the base64 bytes of an event stream "chunk".
func invokeStream(w http.ResponseWriter) {
	tool := map[string]any{"type": "tool_use", "id": cpBedrock.toolID, "name": "get_weather", "input": map[string]any{}}
	evs := []map[string]any{
		{"type": "message_start", "message": map[string]any{"id": "msg_bdrk_e2e", "type": "message", "role": "assistant",
			"model": "claude-sonnet-4-20250514", "content": []any{}, "stop_reason": nil, "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 10, "output_tokens": 1}}},
		{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}},
		{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": cpBedrock.text}},
		{"type": "content_block_stop", "index": 0},
		{"type": "content_block_start", "index": 1, "content_block": tool},
	}
	for _, f := range cpFragments {
		evs = append(evs, map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]any{"type": "input_json_delta", "partial_json": f}})
	}
	evs = append(evs,
		map[string]any{"type": "content_block_stop", "index": 1},
		map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "tool_use", "stop_sequence": nil},
			"usage": map[string]int{"output_tokens": 9}},
		map[string]any{"type": "message_stop"})
	w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
	w.WriteHeader(http.StatusOK)
	for _, ev := range evs {
		b, _ := json.Marshal(ev)
		payload, _ := json.Marshal(map[string]string{"bytes": base64.StdEncoding.EncodeToString(b)})
		_ = proxytest.EncodeBedrockEvent(w, "chunk", string(payload))
		_ = http.NewResponseController(w).Flush()
	}
}

// cpFailure is one way a target fails.
type cpFailure struct {
	name   string
	answer proxytest.Behavior
	// label is the failed attempt's entry in x-aisix-attempts.
	label string
	// reason is the status_reason of the target's cooldown.
	reason string
	// streamOnly failures are in-stream: a plain request cannot have them.
	streamOnly bool
	// retryAfter, when set, is the cooldown the target must have taken.
	retryAfter time.Duration
}

var (
	anthropicFailures = []cpFailure{
		{name: "529", answer: proxytest.AnthropicOverloaded(), label: "529", reason: "upstream_overloaded"},
		{name: "429", answer: proxytest.AnthropicRateLimited(fmt.Sprint(cpRetryAfter)), label: "429", reason: "upstream_rate_limited",
			retryAfter: cpRetryAfter * time.Second},
		{name: "500", answer: proxytest.AnthropicServerError(), label: "500", reason: "upstream_server_error"},
		{name: "stream-error", answer: proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1}),
			label: "in_band_error", reason: "upstream_overloaded", streamOnly: true},
	}
	bedrockFailures = []cpFailure{
		{name: "throttled",
			answer: proxytest.BedrockError(http.StatusTooManyRequests, "ThrottlingException", "Too many requests, please wait before trying again."),
			label:  "429", reason: "upstream_rate_limited"},
		// A stream whose first message is a throttlingException, as AWS
		// sends one after the 200 (the same framing for ConverseStream and
		// InvokeModelWithResponseStream).
		{name: "throttled-in-stream",
			answer: proxytest.BedrockStream(proxytest.BedrockStreamOptions{ExceptionAfter: 1, Exception: "throttlingException"}),
			label:  "in_band_error", reason: "upstream_rate_limited", streamOnly: true},
	}
)

// cpRig is the gateway with the three provider keys and the fakes.
type cpRig struct {
	g         *gateway
	anthropic *proxytest.AnthropicUpstream
	bedrock   *proxytest.BedrockUpstream
	vertex    *proxytest.Vertex
	n         int
	// cooling are the targets that failed, by display name.
	cooling map[string]cpFailure
	// firstFailed is the first of them.
	firstFailed string
}

func TestClaudeProd(t *testing.T) {
	t.Parallel()
	sdkSetup(t)
	rig := &cpRig{cooling: map[string]cpFailure{}}
	rig.anthropic = proxytest.NewAnthropic("anthropic-e2e")
	rig.anthropic.Key = cpAnthropicSecret
	t.Cleanup(rig.anthropic.Close)
	rig.bedrock = proxytest.NewBedrock("bedrock-e2e")
	t.Cleanup(rig.bedrock.Close)
	rig.vertex = proxytest.NewVertex("vertex-e2e", proxytest.VertexOptions{Token: cpVertexToken})
	t.Cleanup(rig.vertex.Close)
	g := startGateway(t, serveOptions{})
	rig.g = g

	// The README's commands: three provider keys, one direct model on
	// each, the group over them, and a caller key for it.
	g.cli(t, cpAnthropicSecret, nil, "provider-key", "create", "--name", "anthropic-main", "--provider", "anthropic",
		"--adapter", "anthropic", "--api-base", rig.anthropic.URL(), "--secret-stdin", "-q")
	g.cli(t, rig.bedrock.Secret(), nil, "provider-key", "create", "--name", "bedrock-us", "--provider", "bedrock",
		"--adapter", "bedrock", "--api-base", rig.bedrock.URL(), "--secret-stdin", "-q")
	vertexSecret, _ := json.Marshal(map[string]string{"project": "proj-test", "region": "us-central1", "access_token": cpVertexToken})
	g.cli(t, string(vertexSecret), nil, "provider-key", "create", "--name", "vertex-claude", "--provider", "vertex",
		"--adapter", "vertex", "--api-base", rig.vertex.URL(), "--secret-stdin", "-q")
	rig.model(t, cpAnthropic.model, "anthropic-main")
	rig.model(t, cpBedrock.model, "bedrock-us")
	rig.model(t, cpVertex.model, "vertex-claude")
	rig.route(t, cpAnthropic.model, cpBedrock.model, cpVertex.model)
	g.cli(t, callerKey, nil, "apikey", "create", "--name", "claude-prod-caller", "--allow-model", "claude-prod", "--key-stdin", "-q")

	rig.healthy()

	for _, sdk := range []string{"openai", "anthropic"} {
		for _, stream := range []bool{false, true} {
			mode := map[bool]string{false: "plain", true: "stream"}[stream]
			t.Run(sdk+"/healthy/"+mode, func(t *testing.T) {
				rig.route(t, cpAnthropic.model, cpBedrock.model, cpVertex.model)
				rig.call(t, sdk, stream, cpAnthropic, `^claude-anthropic=200$`)
			})
			for _, f := range anthropicFailures {
				if f.streamOnly && !stream {
					continue
				}
				t.Run(sdk+"/anthropic-"+f.name+"/"+mode, func(t *testing.T) {
					a := rig.failing(t, "claude-anthropic", "anthropic-main", f)
					rig.route(t, a, cpBedrock.model, cpVertex.model)
					rig.anthropic.Script(f.answer)
					defer rig.healthy()
					hits := rig.anthropic.Hits()
					rig.call(t, sdk, stream, cpBedrock, fmt.Sprintf(`^%s=%s,claude-bedrock=200$`, regexp.QuoteMeta(a), f.label))
					if rig.anthropic.Hits() == hits {
						t.Errorf("the Anthropic fake saw no request")
					}
				})
			}
			f := anthropicFailures[0]
			for _, bf := range bedrockFailures {
				if bf.streamOnly && !stream {
					continue
				}
				t.Run(sdk+"/anthropic-529-bedrock-"+bf.name+"/"+mode, func(t *testing.T) {
					a := rig.failing(t, "claude-anthropic", "anthropic-main", f)
					b := rig.failing(t, "claude-bedrock", "bedrock-us", bf)
					rig.route(t, a, b, cpVertex.model)
					rig.anthropic.Script(f.answer)
					rig.bedrock.Script(bf.answer)
					defer rig.healthy()
					rig.call(t, sdk, stream, cpVertex, fmt.Sprintf(`^%s=529,%s=%s,claude-vertex=200$`,
						regexp.QuoteMeta(a), regexp.QuoteMeta(b), bf.label))
				})
			}
		}
	}

	t.Run("status", func(t *testing.T) { rig.checkStatus(t) })
	t.Run("cooling-primary-last", func(t *testing.T) { rig.checkCoolingLast(t) })
}

// healthy scripts the three fakes to answer with their text and tool call.
func (rig *cpRig) healthy() {
	rig.anthropic.Script(proxytest.AnthropicToolUse(cpAnthropic.text, cpAnthropicTool(cpAnthropic)))
	rig.bedrock.Script(bedrockToolAnswer())
	rig.vertex.Script(proxytest.AnthropicToolUse(cpVertex.text, cpAnthropicTool(cpVertex)))
}

// model creates a direct model on the provider key pk with the Claude
// model id that provider's catalogue names.
func (rig *cpRig) model(t *testing.T, name, pk string, extra ...string) {
	t.Helper()
	id := map[string]string{
		"anthropic-main": "claude-sonnet-4-20250514",
		"bedrock-us":     "us.anthropic.claude-sonnet-4-20250514-v1:0",
		"vertex-claude":  "claude-sonnet-4@20250514",
	}[pk]
	provider, _, _ := strings.Cut(pk, "-")
	args := append([]string{"model", "create", "--name", name, "--provider", provider, "--model-name", id,
		"--provider-key", pk, "--timeout", "15s", "--stream-timeout", "15s", "-q"}, extra...)
	rig.g.cli(t, "", nil, args...)
}

// failing creates a new direct model for a target that is to fail as f
// does, remembered for the status check.
func (rig *cpRig) failing(t *testing.T, prefix, pk string, f cpFailure) string {
	t.Helper()
	rig.n++
	name := fmt.Sprintf("%s-%d-%s", prefix, rig.n, f.name)
	rig.model(t, name, pk, "--cooldown-seconds", cpCooldown)
	rig.cooling[name] = f
	if rig.firstFailed == "" {
		rig.firstFailed = name
	}
	return name
}

// route points claude-prod at the targets, in order.
func (rig *cpRig) route(t *testing.T, targets ...string) {
	t.Helper()
	args := []string{"model", "route", "claude-prod", "--strategy", "failover"}
	for _, tg := range targets {
		args = append(args, "--target", tg)
	}
	rig.g.cli(t, "", nil, append(args, "-q")...)
}

// call runs one claude-prod request from an SDK and checks it was served
// by want with an attempts trail matching trail.
func (rig *cpRig) call(t *testing.T, sdk string, stream bool, want cpTarget, trail string) {
	t.Helper()
	s := "0"
	if stream {
		s = "1"
	}
	runSDK(t, rig.g, "claudeprod-"+sdk+".mjs",
		"AISIX_MODEL=claude-prod", "AISIX_STREAM="+s, "AISIX_SERVED_BY="+want.model, "AISIX_TRAIL="+trail,
		"AISIX_TOOL_ID="+want.toolID, "AISIX_TOOL_INPUT="+cpToolInput, "AISIX_EXPECT_TEXT="+want.text)
	// The upstream that answered was offered the caller's tool, and asked
	// for a stream exactly when the caller was.
	var reqs []proxytest.Request
	switch want {
	case cpAnthropic:
		reqs = rig.anthropic.Requests()
	case cpBedrock:
		reqs = rig.bedrock.Requests()
	case cpVertex:
		reqs = rig.vertex.Requests()
	}
	if len(reqs) == 0 {
		t.Fatalf("the %s fake saw no request", want.model)
	}
	last := reqs[len(reqs)-1]
	streamed := last.Stream || strings.HasSuffix(last.Path, "-stream") // Bedrock's streams are named by the path
	if !strings.Contains(string(last.Body), `"get_weather"`) || !strings.Contains(string(last.Body), "Paris") || streamed != stream {
		t.Errorf("%s's request %s (stream %t): %s, want the get_weather tool and the question, stream %t", want.model, last.Path, streamed, last.Body, stream)
	}
}

// checkStatus reads `aisix status -o json` and finds every target that
// failed cooling down for its reason, the 429 with Retry-After for that
// long, and the three targets that served healthy.
func (rig *cpRig) checkStatus(t *testing.T) {
	out := rig.g.cli(t, "", nil, "status", "-o", "json")
	var rows []statusRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("aisix status -o json: %v\n%s", err, out)
	}
	byName := map[string]statusRow{}
	for _, r := range rows {
		byName[r.DisplayName] = r
	}
	show := func(r statusRow) string { b, _ := json.Marshal(r); return string(b) }
	for name, f := range rig.cooling {
		r, ok := byName[name]
		switch {
		case !ok:
			t.Errorf("%s: no status row", name)
		case r.Status != "cooldown" || r.StatusReason != f.reason || r.cooldownLeft() <= 0:
			t.Errorf("%s (failed with %s): %s, want cooldown with status_reason %s", name, f.name, show(r), f.reason)
		case f.retryAfter > 0 && (r.cooldownLeft() > f.retryAfter || r.cooldownLeft() < f.retryAfter-60*time.Second):
			t.Errorf("%s: cooldown left %v, want about the Retry-After's %v", name, r.cooldownLeft(), f.retryAfter)
		}
	}
	for _, name := range []string{cpAnthropic.model, cpBedrock.model, cpVertex.model} {
		if r := byName[name]; r.Status != "healthy" {
			t.Errorf("%s: %s, want healthy", name, show(r))
		}
	}
	if r := byName["claude-prod"]; r.Kind != "routing" {
		t.Errorf("claude-prod: %s, want kind routing", show(r))
	}
}

// checkCoolingLast points claude-prod at a cooling Anthropic target first:
// `model route --explain` puts it last, and a call goes straight to
// Bedrock without trying it.
func (rig *cpRig) checkCoolingLast(t *testing.T) {
	cool := rig.firstFailed
	if cool == "" {
		t.Skip("no target failed")
	}
	rig.route(t, cool, cpBedrock.model, cpVertex.model)
	out := rig.g.cli(t, "", nil, "model", "route", "claude-prod", "--explain", "-o", "json")
	var rows []struct {
		Position int    `json:"position"`
		Target   string `json:"target"`
		Status   string `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("model route --explain -o json: %v\n%s", err, out)
	}
	var order []string
	for _, r := range rows {
		order = append(order, r.Target+":"+r.Status)
	}
	if want := []string{cpBedrock.model + ":healthy", cpVertex.model + ":healthy", cool + ":cooldown"}; !slices.Equal(order, want) {
		t.Errorf("model route claude-prod --explain: %v, want %v\n%s", order, want, out)
	}
	hits := rig.anthropic.Hits()
	rig.call(t, "openai", false, cpBedrock, `^claude-bedrock=200$`)
	if n := rig.anthropic.Hits() - hits; n != 0 {
		t.Errorf("the cooling Anthropic target was tried %d times", n)
	}
}
