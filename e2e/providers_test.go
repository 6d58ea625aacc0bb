package e2e

// One chat-prod routing group across three providers, through the real
// binary: gpt-4o-primary (OpenAI wire, a port that refuses connections),
// claude-fallback (adapter anthropic, a fake Anthropic Messages API) and
// azure-gpt4o (adapter azure-openai, a fake Azure OpenAI resource). The
// callers speak OpenAI chat completions only; aisix translates to and from
// the Anthropic Messages wire and puts Azure's URL and api-key on the
// request.
//
// The fakes are written from the providers' published API references
// (Anthropic: Messages, streaming events, errors; Azure OpenAI: the
// deployments chat-completions route; Entra ID: the client-credentials
// token endpoint) and check every request's shape: a wrong path, header or
// body fails the test and answers the provider's own invalid-request error.
//
// TestProvidersChatProd is the scenario, step by step on one gateway; the
// other tests give each case its own group (chat-prod-<case> over its own
// three models) on one gateway per test: TestProvidersOverloadedStream,
// TestProvidersAnthropicErrors, TestProvidersAnthropicStreams,
// TestProvidersAnthropicRequests (the exact Messages body of OpenAI
// request shapes), TestProvidersAzureErrors, TestProvidersAzureEntra and
// TestProvidersAnthropicSecretHost.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const (
	anthropicSecret = "sk-ant-api03-e2e-fake-secret-0003"
	azureSecret     = "0123456789abcdef0123456789abcdef" // an Azure api-key: 32 hex digits
	claudeModel     = "claude-sonnet-4-5"
	azureDeployment = "gpt-4o-prod"
	azureAPIVersion = "2024-10-21"
)

// The fakes listen on fakeHost, another loopback address than the one
// the gateways' ports are picked on (freeAddr frees a port on 127.0.0.1
// before serve binds it): a fake can never take a gateway's port, nor a
// gateway the refusing primary's.
var fakeHost = func() string {
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		return "127.0.0.1" // a system without 127.0.0.0/8 on loopback
	}
	ln.Close()
	return "127.0.0.2"
}()

// newFakeServer starts an httptest server for h on fakeHost.
func newFakeServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(fakeHost, "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
	})
	return srv
}

// refusedBase is an api_base where connections are refused for the whole
// test: a port bound on fakeHost and never listened on, so nothing else can
// take it.
func refusedBase(t testing.TB) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Close(fd) })
	addr := &syscall.SockaddrInet4{}
	copy(addr.Addr[:], net.ParseIP(fakeHost).To4())
	if err := syscall.Bind(fd, addr); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://%s:%d/v1", fakeHost, sa.(*syscall.SockaddrInet4).Port)
}

// ---- the fake Anthropic Messages API ----

// anthropicBlock is one content block of a Messages request.
type anthropicBlock struct {
	Type   string `json:"type"`
	Text   string `json:"text"`
	Source *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
}

// anthropicRequest is a Messages request body as the fake reads it.
type anthropicRequest struct {
	Model     string          `json:"model"`
	MaxTokens int             `json:"max_tokens"`
	System    json.RawMessage `json:"system"`
	Messages  []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Tools []struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"input_schema"`
	} `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
	Stream     bool            `json:"stream"`
}

// blocks returns message i's content as blocks (a string content is one
// text block).
func (r *anthropicRequest) blocks(i int) ([]anthropicBlock, error) {
	raw := bytes.TrimSpace(r.Messages[i].Content)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return []anthropicBlock{{Type: "text", Text: s}}, nil
	}
	var bs []anthropicBlock
	err := json.Unmarshal(raw, &bs)
	return bs, err
}

// systemText is the top-level system prompt's text (a string or text blocks).
func (r *anthropicRequest) systemText() string {
	raw := bytes.TrimSpace(r.System)
	if len(raw) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var bs []anthropicBlock
	_ = json.Unmarshal(raw, &bs)
	var b strings.Builder
	for _, x := range bs {
		b.WriteString(x.Text)
	}
	return b.String()
}

// anthropicCall is one request the fake Anthropic API accepted.
type anthropicCall struct {
	header http.Header
	body   []byte
	req    anthropicRequest
	n      int64
}

// fakeAnthropic is a Messages API on a loopback port. Its answers are set
// per phase of a test, for every model or for one model (one group's
// claude-fallback); every request is checked against the reference first.
type fakeAnthropic struct {
	t       testing.TB
	base    string // the provider key's api_base: http://host:port
	srv     *httptest.Server
	seen    chan *anthropicCall
	hits    atomic.Int64
	mu      sync.Mutex
	answers map[string]func(w http.ResponseWriter, c *anthropicCall) // by model; "" for any
}

func newFakeAnthropic(t testing.TB) *fakeAnthropic {
	t.Helper()
	f := &fakeAnthropic{t: t, seen: make(chan *anthropicCall, 64), answers: map[string]func(http.ResponseWriter, *anthropicCall){}}
	f.srv = newFakeServer(t, http.HandlerFunc(f.serve))
	f.base = f.srv.URL
	return f
}

// set makes every later request be answered by answer.
func (f *fakeAnthropic) set(answer func(w http.ResponseWriter, c *anthropicCall)) {
	f.setFor("", answer)
}

// setFor makes later requests for model be answered by answer.
func (f *fakeAnthropic) setFor(model string, answer func(w http.ResponseWriter, c *anthropicCall)) {
	f.mu.Lock()
	f.answers[model] = answer
	f.mu.Unlock()
}

// refuse answers a request that breaks the reference with Anthropic's
// invalid_request_error and fails the test.
func (f *fakeAnthropic) refuse(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.t.Errorf("fake Anthropic API: wrong request from aisix: %s", msg)
	anthropicError(w, status, "invalid_request_error", msg)
}

func (f *fakeAnthropic) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/messages" || r.URL.RawQuery != "" {
		f.refuse(w, http.StatusNotFound, "%s %s, want POST /v1/messages", r.Method, r.URL.RequestURI())
		return
	}
	switch {
	case r.Header.Get("X-Api-Key") != anthropicSecret:
		f.refuse(w, http.StatusUnauthorized, "x-api-key %q, want the provider key's secret", r.Header.Get("X-Api-Key"))
		return
	case r.Header.Get("Anthropic-Version") != "2023-06-01":
		f.refuse(w, http.StatusBadRequest, "anthropic-version %q, want 2023-06-01", r.Header.Get("Anthropic-Version"))
		return
	case r.Header.Get("Authorization") != "":
		f.refuse(w, http.StatusBadRequest, "an Authorization header was sent (%.12q…); Anthropic takes x-api-key only", r.Header.Get("Authorization"))
		return
	case r.Header.Get("Api-Key") != "":
		f.refuse(w, http.StatusBadRequest, "an Azure api-key header was sent to Anthropic")
		return
	case !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
		f.refuse(w, http.StatusBadRequest, "content-type %q, want application/json", r.Header.Get("Content-Type"))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	c := &anthropicCall{header: r.Header.Clone(), body: body, n: f.hits.Add(1)}
	if msg := checkMessagesBody(body, &c.req); msg != "" {
		f.refuse(w, http.StatusBadRequest, "%s: %s", msg, body)
		return
	}
	select {
	case f.seen <- c:
	default:
	}
	f.mu.Lock()
	answer, ok := f.answers[c.req.Model]
	if !ok {
		answer = f.answers[""]
	}
	f.mu.Unlock()
	if answer == nil {
		f.refuse(w, http.StatusInternalServerError, "request before the test set an answer")
		return
	}
	answer(w, c)
}

// checkMessagesBody decodes a Messages request into req and returns what
// is wrong with it ("" when nothing is).
func checkMessagesBody(body []byte, req *anthropicRequest) string {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return "body is not a JSON object"
	}
	if err := json.Unmarshal(body, req); err != nil {
		return "body does not decode as a Messages request: " + err.Error()
	}
	for _, k := range []string{"n", "stream_options", "frequency_penalty", "presence_penalty", "logprobs", "response_format", "max_completion_tokens", "tool_calls"} {
		if _, ok := fields[k]; ok {
			return "OpenAI-only field " + k + " was forwarded"
		}
	}
	if !strings.HasPrefix(req.Model, claudeModel) {
		return fmt.Sprintf("model %q, want a claude-fallback model_name (%s…)", req.Model, claudeModel)
	}
	if req.MaxTokens < 1 {
		return "max_tokens missing (Anthropic requires it)"
	}
	if len(req.Messages) == 0 {
		return "no messages"
	}
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Sprintf("messages[%d].role %q: only user and assistant (system is top-level)", i, m.Role)
		}
		if i > 0 && req.Messages[i-1].Role == m.Role {
			return fmt.Sprintf("messages[%d]: two consecutive %s turns", i, m.Role)
		}
		bs, err := req.blocks(i)
		if err != nil || len(bs) == 0 {
			return fmt.Sprintf("messages[%d].content is neither a string nor content blocks", i)
		}
		for j, b := range bs {
			switch b.Type {
			case "text", "tool_use", "tool_result":
			case "image":
				if b.Source == nil || b.Source.Type != "base64" && b.Source.Type != "url" {
					return fmt.Sprintf("messages[%d].content[%d]: image without a base64 or url source", i, j)
				}
			default:
				return fmt.Sprintf("messages[%d].content[%d].type %q", i, j, b.Type)
			}
		}
	}
	if req.Messages[0].Role != "user" {
		return "the first message is not a user turn"
	}
	for i, tl := range req.Tools {
		var schema struct {
			Type string `json:"type"`
		}
		if tl.Name == "" || json.Unmarshal(tl.InputSchema, &schema) != nil || schema.Type != "object" {
			return fmt.Sprintf("tools[%d]: want name and an object input_schema", i)
		}
	}
	return ""
}

// anthropicError writes Anthropic's error envelope.
func anthropicError(w http.ResponseWriter, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]any{"type": "error", "error": map[string]any{"type": typ, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Request-Id", "req_011CE2Ef4k3Test")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// overloaded is Anthropic's 529 overloaded_error.
func overloaded(w http.ResponseWriter, _ *anthropicCall) {
	anthropicError(w, 529, "overloaded_error", "Overloaded")
}

// claudeMessage answers a non-streaming request with one text block.
func claudeMessage(text string) func(w http.ResponseWriter, c *anthropicCall) {
	return func(w http.ResponseWriter, c *anthropicCall) {
		if c.req.Stream {
			anthropicError(w, http.StatusBadRequest, "invalid_request_error", "this phase expects a non-streaming request")
			return
		}
		b, _ := json.Marshal(map[string]any{
			"id": "msg_01E2EPlainAnswer000001", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
			"content":     []map[string]any{{"type": "text", "text": text}},
			"stop_reason": "end_turn", "stop_sequence": nil,
			"usage": map[string]any{"input_tokens": 21, "output_tokens": 7},
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// toolArgs are the tool input fragments the fake streams as
// input_json_delta: split inside keys and values, as the API does.
var toolArgs = []string{"", `{"location":`, ` "San Fra`, `ncisco, CA"`, `, "unit": "cel`, `sius"}`}

const toolUseID = "toolu_01E2ETestToolUse0001"

// claudeToolStream streams a text block, then a tool_use block for
// get_weather, in the reference's event order: message_start,
// content_block_start, ping, content_block_delta…, content_block_stop,
// message_delta (stop_reason tool_use, usage), message_stop.
func claudeToolStream(w http.ResponseWriter, c *anthropicCall) {
	if !c.req.Stream {
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "this phase expects a streaming request")
		return
	}
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(name string, data any) bool {
		b, _ := json.Marshal(data)
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	ok := send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_01E2EToolStream0000001", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": 472, "output_tokens": 2},
	}}) &&
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}}) &&
		send("ping", map[string]any{"type": "ping"}) &&
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": "Let me check "}}) &&
		send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": "the weather."}}) &&
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0}) &&
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 1, "content_block": map[string]any{
			"type": "tool_use", "id": toolUseID, "name": "get_weather", "input": map[string]any{},
		}})
	for _, p := range toolArgs {
		ok = ok && send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]any{"type": "input_json_delta", "partial_json": p}})
	}
	_ = ok &&
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 1}) &&
		send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "tool_use", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 89}}) &&
		send("message_stop", map[string]any{"type": "message_stop"})
}

// claudeToolUse answers a non-streaming request with a tool_use for
// get_weather, or, once the last user turn carries its tool_result, with
// the text that uses it.
func claudeToolUse(w http.ResponseWriter, c *anthropicCall) {
	content := []map[string]any{{"type": "text", "text": "Checking."},
		{"type": "tool_use", "id": toolUseID, "name": "get_weather", "input": map[string]any{"location": "San Francisco, CA", "unit": "celsius"}}}
	stop := "tool_use"
	if bs, _ := c.req.blocks(len(c.req.Messages) - 1); len(bs) > 0 && bs[0].Type == "tool_result" {
		content, stop = []map[string]any{{"type": "text", "text": "It is 18 °C and sunny in San Francisco."}}, "end_turn"
	}
	b, _ := json.Marshal(map[string]any{
		"id": fmt.Sprintf("msg_01E2EToolUse%010d", c.n), "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
		"content": content, "stop_reason": stop, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": 380, "output_tokens": 41},
	})
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// overloadedInStream starts a stream and then reports overloaded_error in
// band, as the reference says the API may during high load, before any
// content; then the stream ends.
func overloadedInStream(w http.ResponseWriter, c *anthropicCall) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "event: message_start\n"+
		`data: {"type":"message_start","message":{"id":"msg_01E2EInBandError000001","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":1}}}`+"\n\n"+
		"event: ping\ndata: {\"type\": \"ping\"}\n\n"+
		"event: error\n"+`data: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`+"\n\n")
	_ = http.NewResponseController(w).Flush()
}

// next waits for the fake's next accepted request.
func (f *fakeAnthropic) next(t testing.TB, within time.Duration) *anthropicCall {
	t.Helper()
	select {
	case c := <-f.seen:
		return c
	case <-time.After(within):
		t.Fatalf("the fake Anthropic API saw no request within %v", within)
		return nil
	}
}

// drain forgets requests seen so far.
func (f *fakeAnthropic) drain() {
	for {
		select {
		case <-f.seen:
		default:
			return
		}
	}
}

// ---- the fake Azure OpenAI resource ----

// fakeAzure is an Azure OpenAI resource on a loopback port with one
// deployment; it answers like OpenAI, saying "hello from azure-gpt4o".
type fakeAzure struct {
	t    testing.TB
	base string // the provider key's api_base: the resource URL
	// bearer, when set, is the Entra ID token requests must carry
	// (Authorization: Bearer) instead of the api-key.
	bearer string
	srv    *httptest.Server
	seen   chan *upstreamCall
	hits   atomic.Int64
	mu     sync.Mutex
	// answers replace the OpenAI-shaped answer for one deployment.
	answers map[string]http.HandlerFunc
}

// setFor makes later requests that passed the checks for deployment be
// answered by h.
func (f *fakeAzure) setFor(deployment string, h http.HandlerFunc) {
	f.mu.Lock()
	f.answers[deployment] = h
	f.mu.Unlock()
}

func newFakeAzure(t testing.TB) *fakeAzure {
	t.Helper()
	f := &fakeAzure{t: t, seen: make(chan *upstreamCall, 64), answers: map[string]http.HandlerFunc{}}
	f.srv = newFakeServer(t, http.HandlerFunc(f.serve))
	f.base = f.srv.URL
	return f
}

// azureError writes Azure OpenAI's error envelope.
func azureError(w http.ResponseWriter, status int, code, msg string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func (f *fakeAzure) serve(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, code, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		f.t.Errorf("fake Azure OpenAI: wrong request from aisix: %s", msg)
		azureError(w, status, code, msg)
	}
	deployment, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	deployment, ok2 := strings.CutSuffix(deployment, "/chat/completions")
	switch {
	case r.Method != http.MethodPost || !ok || !ok2 || !strings.HasPrefix(deployment, azureDeployment) || strings.Contains(deployment, "/"):
		refuse(http.StatusNotFound, "DeploymentNotFound", "%s %s, want POST /openai/deployments/%s…/chat/completions", r.Method, r.URL.Path, azureDeployment)
		return
	case r.URL.Query().Get("api-version") != azureAPIVersion || len(r.URL.Query()) != 1:
		refuse(http.StatusNotFound, "404", "query %q, want api-version=%s only", r.URL.RawQuery, azureAPIVersion)
		return
	case f.bearer == "" && r.Header.Get("Api-Key") != azureSecret:
		refuse(http.StatusUnauthorized, "401", "api-key %q, want the provider key's secret", r.Header.Get("Api-Key"))
		return
	case f.bearer == "" && r.Header.Get("Authorization") != "":
		refuse(http.StatusBadRequest, "400", "an Authorization header was sent with an api-key secret")
		return
	case f.bearer != "" && r.Header.Get("Authorization") != "Bearer "+f.bearer:
		refuse(http.StatusUnauthorized, "401", "Authorization %q, want the Entra ID token as a bearer", r.Header.Get("Authorization"))
		return
	case f.bearer != "" && r.Header.Get("Api-Key") != "":
		refuse(http.StatusBadRequest, "400", "an api-key header was sent with an Entra ID credential")
		return
	case r.Header.Get("X-Api-Key") != "" || r.Header.Get("Anthropic-Version") != "":
		refuse(http.StatusBadRequest, "400", "Anthropic headers were sent to Azure")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req struct {
		Messages []struct {
			Role string `json:"role"`
		} `json:"messages"`
		Stream bool `json:"stream"`
	}
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		refuse(http.StatusBadRequest, "400", "body is not an OpenAI chat-completions request: %s", body)
		return
	}
	c := &upstreamCall{r: r, header: r.Header.Clone(), body: body, stream: req.Stream, n: f.hits.Add(1), gone: make(chan struct{}), ended: make(chan struct{})}
	select {
	case f.seen <- c:
	default:
	}
	f.mu.Lock()
	h := f.answers[deployment]
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	okReply("azure-gpt4o")(w, c)
}

// drain forgets requests seen so far.
func (f *fakeAzure) drain() {
	for {
		select {
		case <-f.seen:
		default:
			return
		}
	}
}

// next waits for the fake's next accepted request.
func (f *fakeAzure) next(t testing.TB, within time.Duration) *upstreamCall {
	t.Helper()
	select {
	case c := <-f.seen:
		return c
	case <-time.After(within):
		t.Fatalf("the fake Azure OpenAI resource saw no request within %v", within)
		return nil
	}
}

// ---- the rig: serve, the three upstreams and chat-prod ----

// providersRig is one serve with the three provider keys and the caller
// key; each group adds its own chat-prod over its own three models, so
// that tests of one rig never share a model's health.
type providersRig struct {
	g        *gateway
	claude   *fakeAnthropic
	azure    *fakeAzure
	refused  string // the primary's api_base: connections are refused
	openaiPK string
	claudePK string
	azurePK  string
}

// cli runs aisix in remote mode against the gateway's admin API, with
// stdin and extra environment, and returns its stdout.
func (g *gateway) cli(t testing.TB, stdin string, env []string, args ...string) string {
	t.Helper()
	args = append([]string{"--server", g.admin}, args...)
	cmd := exec.Command(filepath.Join(binDir, "aisix"), args...)
	cmd.Env = append(append([]string(nil), g.env...), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aisix %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// newProvidersRig starts serve with the three provider keys, the OpenAI
// one as in the tutorial (admin API), the Anthropic and Azure ones with the
// CLI, and the caller key sk-failover-demo allowed every model.
func newProvidersRig(t *testing.T) *providersRig {
	t.Helper()
	rig := &providersRig{claude: newFakeAnthropic(t), azure: newFakeAzure(t), refused: refusedBase(t)}
	g := startGateway(t, serveOptions{})
	rig.g = g
	rig.openaiPK = g.create(t, "provider_keys", map[string]any{
		"display_name": "openai-primary", "provider": "openai", "adapter": "openai",
		"secret": primarySecret, "api_base": rig.refused,
	})
	rig.claudePK = strings.TrimSpace(g.cli(t, anthropicSecret, nil, "provider-key", "create", "--name", "anthropic-fallback",
		"--provider", "anthropic", "--adapter", "anthropic", "--api-base", rig.claude.base, "--secret-stdin", "-q"))
	rig.azurePK = strings.TrimSpace(g.cli(t, "", []string{"AZURE_OPENAI_API_KEY=" + azureSecret}, "provider-key", "create", "--name", "azure-east",
		"--provider", "azure", "--adapter", "azure-openai", "--api-base", rig.azure.base, "--api-version", azureAPIVersion,
		"--secret-env", "AZURE_OPENAI_API_KEY", "-q"))
	for name, id := range map[string]string{"anthropic-fallback": rig.claudePK, "azure-east": rig.azurePK} {
		if !regexp.MustCompile(`^[0-9a-f-]{36}$`).MatchString(id) {
			t.Fatalf("provider-key create %s -q printed %q, want an id", name, id)
		}
	}
	g.createCallerKey(t, callerKey, "*")
	return rig
}

// group is one chat-prod routing group and its three direct models.
type group struct {
	chat, primary, claude, azure string // display names
	claudeModel, deployment      string // upstream model names
}

// group creates chat-prod<sfx> failing over from gpt-4o-primary<sfx> to
// claude-fallback<sfx> to azure-gpt4o<sfx> (retries 1, max_fallbacks 2):
// the models with the admin API as in the tutorial, the group with
// `aisix model route`. sfx "" gives the names of the scenario.
func (rig *providersRig) group(t *testing.T, sfx string) group {
	t.Helper()
	gr := group{chat: "chat-prod" + sfx, primary: "gpt-4o-primary" + sfx, claude: "claude-fallback" + sfx, azure: "azure-gpt4o" + sfx,
		claudeModel: claudeModel + sfx, deployment: azureDeployment + sfx}
	bounds := func(m map[string]any) map[string]any {
		m["timeout"], m["stream_timeout"] = 15000, 15000
		return m
	}
	g := rig.g
	// The primary stays cooling for the whole test once it has failed, so
	// the order of attempts does not depend on how long the test runs.
	g.create(t, "models", bounds(map[string]any{
		"display_name": gr.primary, "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": rig.openaiPK,
		"cooldown": map[string]any{"default_seconds": 600},
	}))
	g.create(t, "models", bounds(map[string]any{
		"display_name": gr.claude, "provider": "anthropic", "model_name": gr.claudeModel, "provider_key_id": rig.claudePK,
	}))
	g.create(t, "models", bounds(map[string]any{
		"display_name": gr.azure, "provider": "azure", "model_name": gr.deployment, "provider_key_id": rig.azurePK,
	}))
	g.cli(t, "", nil, "model", "route", gr.chat, "--strategy", "failover",
		"--target", gr.primary, "--target", gr.claude, "--target", gr.azure,
		"--retries", "1", "--max-fallbacks", "2", "-q")
	return gr
}

// trail compiles an x-aisix-attempts pattern in which {P}, {C} and {A}
// stand for the group's primary, Claude and Azure models.
func (gr group) trail(pattern string) *regexp.Regexp {
	return regexp.MustCompile(strings.NewReplacer("{P}", regexp.QuoteMeta(gr.primary), "{C}", regexp.QuoteMeta(gr.claude),
		"{A}", regexp.QuoteMeta(gr.azure)).Replace(pattern))
}

// body is a chat request to the group: chatBody with its name.
func (gr group) body(stream bool) string { return chatBody(gr.chat, stream) }

// chatCompletion is an OpenAI chat.completion as the caller reads it.
type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

// mustCompletion checks a 200 chat.completion of chat-prod served by
// servedBy with a trail matching trail, and returns it.
func mustCompletion(t *testing.T, a answer, servedBy string, trail *regexp.Regexp) chatCompletion {
	t.Helper()
	if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != servedBy {
		t.Fatalf("status %d served by %q (attempts %q), want 200 from %s: %s",
			a.status, a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"), servedBy, a.body)
	}
	if got := a.header.Get("X-Aisix-Attempts"); !trail.MatchString(got) {
		t.Errorf("x-aisix-attempts %q, want it to match %s", got, trail)
	}
	if a.header.Get("X-Aisix-Call-Id") == "" {
		t.Errorf("no x-aisix-call-id header")
	}
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("content-type %q, want application/json", ct)
	}
	var cc chatCompletion
	if err := json.Unmarshal(a.body, &cc); err != nil {
		t.Fatalf("not a chat.completion: %v: %s", err, a.body)
	}
	if cc.Object != "chat.completion" || cc.Model != "chat-prod" || !strings.HasPrefix(cc.ID, "chatcmpl-") || cc.Created == 0 ||
		len(cc.Choices) != 1 || cc.Choices[0].Message.Role != "assistant" || cc.Choices[0].FinishReason != "stop" {
		t.Errorf("not an OpenAI chat.completion of chat-prod (object, model, id, created, one assistant choice, finish_reason stop): %s", a.body)
	}
	if cc.Usage == nil || cc.Usage.TotalTokens != cc.Usage.PromptTokens+cc.Usage.CompletionTokens || cc.Usage.TotalTokens == 0 {
		t.Errorf("usage missing or inconsistent: %s", a.body)
	}
	return cc
}

// streamChat sends a streaming request and reads the whole stream.
func (rig *providersRig) streamChat(t *testing.T, body string) (*http.Response, []sseEvent) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := rig.g.chat(ctx, callerKey, body, nil)
	if err != nil {
		t.Fatalf("no response within 30s: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d (served by %q, attempts %q), want a 200 stream: %s",
			resp.StatusCode, resp.Header.Get("X-Aisix-Served-By"), resp.Header.Get("X-Aisix-Attempts"), data)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Errorf("content-type %q, want text/event-stream", ct)
	}
	evs, err := readSSE(resp.Body, time.Now(), nil)
	if err != nil {
		t.Fatalf("reading the stream: %v after %d events", err, len(evs))
	}
	return resp, evs
}

// streamChunk is a chat.completion.chunk as the caller reads it.
type streamChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Delta struct {
			Role      string `json:"role"`
			Content   string `json:"content"`
			ToolCalls []struct {
				Index    *int   `json:"index"`
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string  `json:"name"`
					Arguments *string `json:"arguments"`
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

// chunks decodes every data event but the final [DONE], which must come
// last and once, with no error event anywhere; every chunk must be of
// chat-prod.
func chunks(t *testing.T, evs []sseEvent) []streamChunk { return chunksOf(t, evs, "chat-prod") }

// chunksOf is chunks for a stream of the model named model.
func chunksOf(t *testing.T, evs []sseEvent, model string) []streamChunk {
	t.Helper()
	if len(evs) == 0 || lastEvent(evs).data != "[DONE]" {
		t.Fatalf("the stream did not end with data: [DONE]: %v", evs)
	}
	var out []streamChunk
	for i, ev := range evs[:len(evs)-1] {
		if ev.name != "" || ev.data == "[DONE]" {
			t.Fatalf("event %d: %q %s, want only chunks before the final [DONE]", i, ev.name, ev.data)
		}
		var ch streamChunk
		if err := json.Unmarshal([]byte(ev.data), &ch); err != nil {
			t.Fatalf("event %d is not JSON: %v: %s", i, err, ev.data)
		}
		if ch.Object != "chat.completion.chunk" || ch.Model != model || !strings.HasPrefix(ch.ID, "chatcmpl-") {
			t.Errorf("event %d is not a chat.completion.chunk of %s: %s", i, model, ev.data)
		}
		out = append(out, ch)
	}
	return out
}

// tinyPNG is a 2x2 PNG, base64.
func tinyPNG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	img.Set(1, 1, color.RGBA{B: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

const weatherTool = `{"type":"function","function":{"name":"get_weather","description":"Get the current weather in a given location",` +
	`"parameters":{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}}`

// TestProvidersChatProd: one routing group across OpenAI, Anthropic and
// Azure OpenAI; each step depends on the health the previous ones left.
func TestProvidersChatProd(t *testing.T) {
	t.Parallel()
	rig := newProvidersRig(t)
	rig.group(t, "")
	g, claude, azure := rig.g, rig.claude, rig.azure

	t.Run("plain: primary refused, Claude answers as a chat.completion", func(t *testing.T) {
		claude.set(claudeMessage("Hello from Claude."))
		body := `{"model":"chat-prod","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello."}],"max_tokens":64}`
		a := g.mustChat(t, callerKey, body, nil, 30*time.Second)
		cc := mustCompletion(t, a, "claude-fallback", regexp.MustCompile(`^(gpt-4o-primary=transport_error,)+claude-fallback=200$`))
		if got := cc.Choices[0].Message.Content; got != "Hello from Claude." {
			t.Errorf("content %q, want Claude's text", got)
		}
		c := claude.next(t, 5*time.Second)
		if got := c.req.systemText(); got != "Be brief." {
			t.Errorf("Anthropic system %q, want the caller's system message as the top-level system", got)
		}
		if bs, _ := c.req.blocks(0); len(c.req.Messages) != 1 || len(bs) != 1 || bs[0].Text != "Say hello." {
			t.Errorf("Anthropic messages, want one user turn saying hello: %s", c.body)
		}
		if u := cc.Usage; u == nil || u.PromptTokens != 21 || u.CompletionTokens != 7 || u.TotalTokens != 28 {
			t.Errorf("usage, want Claude's input_tokens 21 and output_tokens 7 as 21+7=28: %s", a.body)
		}
		if c.req.MaxTokens != 64 || c.req.Stream {
			t.Errorf("max_tokens %d stream %t, want 64 and no stream: %s", c.req.MaxTokens, c.req.Stream, c.body)
		}
		if row := g.status(t, "gpt-4o-primary"); row.Status != "cooldown" || row.StatusReason != "transport_error" {
			t.Errorf("gpt-4o-primary: %s, want cooldown transport_error", row.raw)
		}
	})

	t.Run("streaming tool call from Claude arrives as OpenAI tool_calls chunks", func(t *testing.T) {
		claude.drain()
		claude.set(claudeToolStream)
		body := `{"model":"chat-prod","stream":true,"messages":[{"role":"user","content":"What is the weather in San Francisco?"}],"tools":[` + weatherTool + `],"tool_choice":"auto","stream_options":{"include_usage":true}}`
		resp, evs := rig.streamChat(t, body)
		if got := resp.Header.Get("X-Aisix-Served-By"); got != "claude-fallback" {
			t.Errorf("x-aisix-served-by %q (attempts %q), want claude-fallback", got, resp.Header.Get("X-Aisix-Attempts"))
		}
		if got := resp.Header.Get("X-Aisix-Attempts"); got != "claude-fallback=200" {
			t.Errorf("x-aisix-attempts %q, want claude-fallback=200 (the cooling primary is not tried first)", got)
		}
		chs := chunks(t, evs)
		if len(chs) == 0 || len(chs[0].Choices) != 1 || chs[0].Choices[0].Delta.Role != "assistant" {
			t.Fatalf("the first chunk does not carry the assistant role: %v", evs)
		}
		var text, args strings.Builder
		firstTool, toolChunks, finishes := -1, 0, []string{}
		for i, ch := range chs {
			if len(ch.Choices) == 0 {
				if i != len(chs)-1 || ch.Usage == nil || ch.Usage.PromptTokens != 472 || ch.Usage.CompletionTokens != 89 || ch.Usage.TotalTokens != 561 {
					t.Errorf("chunk %d without choices: %s, want only the usage chunk last (include_usage), 472+89 tokens", i, evs[i].data)
				}
				continue
			}
			d := ch.Choices[0].Delta
			text.WriteString(d.Content)
			if ch.Choices[0].FinishReason != nil {
				finishes = append(finishes, *ch.Choices[0].FinishReason)
			}
			if len(d.ToolCalls) == 0 {
				continue
			}
			tc := d.ToolCalls[0]
			if len(d.ToolCalls) != 1 || tc.Index == nil || *tc.Index != 0 {
				t.Errorf("chunk %d: tool_calls %s, want one call at index 0", i, evs[i].data)
			}
			toolChunks++
			if firstTool < 0 {
				firstTool = i
				if tc.ID != toolUseID || tc.Type != "function" || tc.Function.Name != "get_weather" {
					t.Errorf("first tool_calls chunk %s, want id %s, type function, name get_weather", evs[i].data, toolUseID)
				}
			} else if tc.ID != "" || tc.Function.Name != "" {
				t.Errorf("chunk %d repeats the tool call's id or name: %s", i, evs[i].data)
			}
			if tc.Function.Arguments != nil {
				args.WriteString(*tc.Function.Arguments)
			}
		}
		if firstTool < 0 {
			t.Fatalf("no tool_calls chunk in the stream: %v", evs)
		}
		if toolChunks < 3 {
			t.Errorf("%d tool_calls chunks, want the arguments streamed in pieces", toolChunks)
		}
		if text.String() != "Let me check the weather." {
			t.Errorf("content %q, want Claude's text block", text.String())
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(args.String()), &got); err != nil {
			t.Errorf("the streamed arguments %q do not join to valid JSON: %v", args.String(), err)
		} else if want := map[string]any{"location": "San Francisco, CA", "unit": "celsius"}; !reflect.DeepEqual(got, want) {
			t.Errorf("arguments %v, want %v", got, want)
		}
		if !reflect.DeepEqual(finishes, []string{"tool_calls"}) {
			t.Errorf("finish_reasons %v, want exactly one tool_calls", finishes)
		}
		c := claude.next(t, 5*time.Second)
		if !c.req.Stream || len(c.req.Tools) != 1 || c.req.Tools[0].Name != "get_weather" {
			t.Errorf("Anthropic request, want stream true and the get_weather tool: %s", c.body)
		}
		var choice struct {
			Type string `json:"type"`
		}
		if json.Unmarshal(c.req.ToolChoice, &choice) != nil || choice.Type != "auto" {
			t.Errorf("Anthropic tool_choice %s, want {\"type\":\"auto\"}", c.req.ToolChoice)
		}
	})

	t.Run("image_url data URL reaches Claude as a base64 image block", func(t *testing.T) {
		claude.drain()
		claude.set(claudeMessage("A red and a blue pixel."))
		data := tinyPNG(t)
		body := `{"model":"chat-prod","messages":[{"role":"user","content":[{"type":"text","text":"What is in this image?"},` +
			`{"type":"image_url","image_url":{"url":"data:image/png;base64,` + data + `"}}]}]}`
		a := g.mustChat(t, callerKey, body, nil, 30*time.Second)
		cc := mustCompletion(t, a, "claude-fallback", regexp.MustCompile(`^claude-fallback=200$`))
		if cc.Choices[0].Message.Content != "A red and a blue pixel." {
			t.Errorf("content %q", cc.Choices[0].Message.Content)
		}
		c := claude.next(t, 5*time.Second)
		bs, err := c.req.blocks(0)
		if err != nil || len(bs) != 2 {
			t.Fatalf("Anthropic user turn, want a text and an image block: %s", c.body)
		}
		if bs[0].Type != "text" || bs[0].Text != "What is in this image?" {
			t.Errorf("first block %+v, want the text part", bs[0])
		}
		img := bs[1]
		if img.Type != "image" || img.Source == nil || img.Source.Type != "base64" || img.Source.MediaType != "image/png" || img.Source.Data != data {
			t.Errorf("second block, want {type: image, source: {type: base64, media_type: image/png, data: the PNG}}: %s", c.body)
		}
	})

	t.Run("plain tool call round trip: tool_use out, tool_result back", func(t *testing.T) {
		claude.drain()
		claude.set(claudeToolUse)
		ask := `{"role":"user","content":"What is the weather in San Francisco?"}`
		a := g.mustChat(t, callerKey, `{"model":"chat-prod","messages":[`+ask+`],"tools":[`+weatherTool+`]}`, nil, 30*time.Second)
		if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "claude-fallback" {
			t.Fatalf("status %d served by %q (attempts %q): %s", a.status, a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"), a.body)
		}
		var cc struct {
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Message struct {
					Role      string  `json:"role"`
					Content   *string `json:"content"`
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
		if err := json.Unmarshal(a.body, &cc); err != nil || cc.Object != "chat.completion" || cc.Model != "chat-prod" || len(cc.Choices) != 1 {
			t.Fatalf("not a chat.completion of chat-prod: %v: %s", err, a.body)
		}
		ch := cc.Choices[0]
		if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
			t.Fatalf("finish_reason %q with %d tool_calls, want tool_calls and one call: %s", ch.FinishReason, len(ch.Message.ToolCalls), a.body)
		}
		tc := ch.Message.ToolCalls[0]
		var args map[string]any
		if tc.ID != toolUseID || tc.Type != "function" || tc.Function.Name != "get_weather" ||
			json.Unmarshal([]byte(tc.Function.Arguments), &args) != nil || args["location"] != "San Francisco, CA" || args["unit"] != "celsius" {
			t.Errorf("tool call %+v, want id %s, function get_weather with the input as a JSON string", tc, toolUseID)
		}
		claude.next(t, 5*time.Second)

		// The caller runs the tool and sends the result back, as OpenAI
		// clients do: the assistant turn with content null and its
		// tool_calls, then a tool message.
		call, _ := json.Marshal(map[string]any{"role": "assistant", "content": nil, "tool_calls": []any{map[string]any{
			"id": tc.ID, "type": "function", "function": map[string]any{"name": tc.Function.Name, "arguments": tc.Function.Arguments}}}})
		result := `{"role":"tool","tool_call_id":"` + toolUseID + `","content":"18 °C, sunny"}`
		a = g.mustChat(t, callerKey, `{"model":"chat-prod","messages":[`+ask+`,`+string(call)+`,`+result+`],"tools":[`+weatherTool+`]}`, nil, 30*time.Second)
		got := mustCompletion(t, a, "claude-fallback", regexp.MustCompile(`^claude-fallback=200$`))
		if got.Choices[0].Message.Content != "It is 18 °C and sunny in San Francisco." {
			t.Errorf("content %q, want the answer that used the tool result", got.Choices[0].Message.Content)
		}
		c := claude.next(t, 5*time.Second)
		if len(c.req.Messages) != 3 || c.req.Messages[1].Role != "assistant" || c.req.Messages[2].Role != "user" {
			t.Fatalf("Anthropic messages, want user, assistant (tool_use), user (tool_result): %s", c.body)
		}
		use, _ := c.req.blocks(1)
		var input map[string]any
		if len(use) != 1 || use[0].Type != "tool_use" || use[0].ID != toolUseID || use[0].Name != "get_weather" ||
			json.Unmarshal(use[0].Input, &input) != nil || input["location"] != "San Francisco, CA" {
			t.Errorf("assistant turn, want one tool_use block with the id, name and input object: %s", c.body)
		}
		res, _ := c.req.blocks(2)
		if len(res) != 1 || res[0].Type != "tool_result" || res[0].ToolUseID != toolUseID || !bytes.Contains(c.body, []byte("18 °C, sunny")) {
			t.Errorf("last user turn, want one tool_result for %s carrying the tool output: %s", toolUseID, c.body)
		}
	})

	t.Run("Claude overloaded (529): Azure answers a plain request", func(t *testing.T) {
		claude.drain()
		claude.set(overloaded)
		a := g.mustChat(t, callerKey, chatBody("chat-prod", false), nil, 30*time.Second)
		cc := mustCompletion(t, a, "azure-gpt4o", regexp.MustCompile(`^(claude-fallback=529,)+azure-gpt4o=200$`))
		if cc.Choices[0].Message.Content != "hello from azure-gpt4o" {
			t.Errorf("content %q, want Azure's answer", cc.Choices[0].Message.Content)
		}
		if c := azure.next(t, 5*time.Second); c.stream {
			t.Errorf("Azure got a streaming request for a plain one: %s", c.body)
		}
		checkOverloaded(t, g, group{chat: "chat-prod", claude: "claude-fallback", azure: "azure-gpt4o"})
	})

	t.Run("explain lists the three targets in the order they would be tried", func(t *testing.T) {
		var rows []struct {
			Position int    `json:"position"`
			Target   string `json:"target"`
			Status   string `json:"status"`
			Reason   string `json:"reason"`
			Tried    bool   `json:"tried"`
			Why      string `json:"why"`
		}
		out := g.cli(t, "", nil, "model", "route", "chat-prod", "--explain", "-o", "json")
		if err := json.Unmarshal([]byte(out), &rows); err != nil {
			t.Fatalf("explain -o json: %v: %s", err, out)
		}
		type row struct{ target, status, reason string }
		var got []row
		for i, r := range rows {
			got = append(got, row{r.Target, r.Status, r.Reason})
			if r.Position != i+1 || !r.Tried {
				t.Errorf("row %d: position %d tried %t, want %d and tried (max_fallbacks 2 covers all three)", i, r.Position, r.Tried, i+1)
			}
		}
		// Azure is healthy; Claude cools for 30 s, the primary for 600 s.
		want := []row{{"azure-gpt4o", "healthy", ""}, {"claude-fallback", "cooldown", "upstream_overloaded"}, {"gpt-4o-primary", "cooldown", "transport_error"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("explain rows %+v, want %+v\n%s", got, want, out)
		}
		table := g.cli(t, "", nil, "model", "route", "chat-prod", "--explain")
		for _, s := range []string{"chat-prod (failover)", "azure-gpt4o", "serves next", "claude-fallback", "upstream_overloaded", "gpt-4o-primary", "transport_error"} {
			if !strings.Contains(table, s) {
				t.Errorf("explain table does not mention %q:\n%s", s, table)
			}
		}
	})

	t.Run("provider-key test reaches Anthropic and Azure with their own wire", func(t *testing.T) {
		claude.drain()
		claude.set(claudeMessage("pong"))
		for _, key := range []string{"anthropic-fallback", "azure-east"} {
			out := g.cli(t, "", nil, "provider-key", "test", key, "-o", "json")
			var res struct {
				Status  int    `json:"status"`
				OK      bool   `json:"ok"`
				Model   string `json:"model"`
				URLHost string `json:"url_host"`
				Error   string `json:"error"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("provider-key test %s -o json: %v: %s", key, err, out)
			}
			if !res.OK || res.Status != http.StatusOK || res.Error != "" {
				t.Errorf("provider-key test %s: %s, want ok 200", key, out)
			}
		}
		if c := claude.next(t, 5*time.Second); c.req.Stream {
			t.Errorf("the key test streamed: %s", c.body)
		}
	})
}

// checkOverloaded checks models/status after Claude's 529: Claude cooling
// with upstream_overloaded, Azure healthy, the group not applicable.
func checkOverloaded(t *testing.T, g *gateway, gr group) {
	t.Helper()
	if row := g.status(t, gr.claude); row.Status != "cooldown" || row.StatusReason != "upstream_overloaded" || row.cooldownLeft() <= 0 || row.Kind != "direct" {
		t.Errorf("%s: %s, want a direct model in cooldown with status_reason upstream_overloaded", gr.claude, row.raw)
	}
	if row := g.status(t, gr.azure); row.Status != "healthy" {
		t.Errorf("%s: %s, want healthy", gr.azure, row.raw)
	}
	if row := g.status(t, gr.chat); row.Kind != "routing" || row.Status != "not_applicable" {
		t.Errorf("%s: %s, want kind routing, status not_applicable", gr.chat, row.raw)
	}
}

// withModel is a request body with its model set to the group's.
func (gr group) withModel(t *testing.T, body string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("request body: %v: %s", err, body)
	}
	m["model"] = gr.chat
	b, _ := json.Marshal(m)
	return string(b)
}

// TestProvidersOverloadedStream: a fresh group whose primary refuses and
// whose Claude is overloaded when asked for a stream, either as a 529
// answer or as an overloaded_error event inside the stream before any
// content: Azure streams the answer, and Claude cools down.
func TestProvidersOverloadedStream(t *testing.T) {
	t.Parallel()
	rig := newProvidersRig(t)
	for i, tc := range []struct {
		name   string
		answer func(http.ResponseWriter, *anthropicCall)
		label  string
	}{
		{"529 before the stream", overloaded, "529"},
		{"overloaded_error event in the stream", overloadedInStream, "in_band_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gr := rig.group(t, fmt.Sprintf("-s%d", i))
			rig.claude.drain()
			rig.azure.drain()
			rig.claude.setFor(gr.claudeModel, tc.answer)
			resp, evs := rig.streamChat(t, gr.body(true))
			if got := resp.Header.Get("X-Aisix-Served-By"); got != gr.azure {
				t.Errorf("x-aisix-served-by %q, want %s", got, gr.azure)
			}
			trail := gr.trail(`^({P}=transport_error,)+({C}=` + tc.label + `,)+{A}=200$`)
			if got := resp.Header.Get("X-Aisix-Attempts"); !trail.MatchString(got) {
				t.Errorf("x-aisix-attempts %q, want it to match %s", got, trail)
			}
			var text strings.Builder
			for _, ch := range chunksOf(t, evs, gr.chat) {
				if len(ch.Choices) > 0 {
					text.WriteString(ch.Choices[0].Delta.Content)
				}
			}
			if text.String() != "hello from azure-gpt4o" {
				t.Errorf("streamed content %q, want Azure's alone", text.String())
			}
			if c := rig.claude.next(t, 5*time.Second); !c.req.Stream {
				t.Errorf("Claude got a non-streaming request: %s", c.body)
			}
			if c := rig.azure.next(t, 5*time.Second); !c.stream {
				t.Errorf("Azure got a non-streaming request: %s", c.body)
			}
			checkOverloaded(t, rig.g, gr)
		})
	}
}

// fakeEntra is an Entra ID authority host: the OAuth2 client-credentials
// token endpoint {authority}/{tenant}/oauth2/v2.0/token.
type fakeEntra struct {
	t     testing.TB
	base  string
	srv   *httptest.Server
	token string
	hits  atomic.Int64
	// secret is the client_secret the tenant accepts; another one gets
	// Entra's invalid_client answer (no test failure: that is a scenario).
	mu     sync.Mutex
	secret string
}

// accept makes the tenant accept only secret from now on.
func (f *fakeEntra) accept(secret string) {
	f.mu.Lock()
	f.secret = secret
	f.mu.Unlock()
}

const (
	entraTenant       = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	entraClient       = "0c9a5c6e-5a2b-4c1e-9d4f-e2e000000001"
	entraClientSecret = "e2e~client~secret~0004"
)

func newFakeEntra(t testing.TB) *fakeEntra {
	t.Helper()
	f := &fakeEntra{t: t, token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e2e-access-token.sig", secret: entraClientSecret}
	f.srv = newFakeServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		refuse := func(format string, args ...any) {
			msg := fmt.Sprintf(format, args...)
			f.t.Errorf("fake Entra ID: wrong token request from aisix: %s", msg)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"error":"invalid_request","error_description":%q}`, msg)
		}
		if r.Method != http.MethodPost || r.URL.Path != "/"+entraTenant+"/oauth2/v2.0/token" {
			refuse("%s %s, want POST /%s/oauth2/v2.0/token", r.Method, r.URL.Path, entraTenant)
			return
		}
		if err := r.ParseForm(); err != nil {
			refuse("body is not a form: %v", err)
			return
		}
		want := map[string]string{"grant_type": "client_credentials", "client_id": entraClient,
			"scope": "https://cognitiveservices.azure.com/.default"}
		for k, v := range want {
			if got := r.PostForm.Get(k); got != v {
				refuse("%s %q, want %q", k, got, v)
				return
			}
		}
		f.mu.Lock()
		accepted := f.secret
		f.mu.Unlock()
		if r.PostForm.Get("client_secret") != accepted {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.","error_codes":[7000215]}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":%q}`, f.token)
	}))
	f.base = f.srv.URL
	return f
}

// TestProvidersAzureEntra: an azure-openai provider key whose secret is an
// Entra ID service principal gets a token from the authority set by
// upstream.azure_authority and sends it as a bearer. The token is fetched
// once and kept across config changes that leave the key alone; a new
// secret fetches a new one; a secret the tenant refuses fails the call
// over (here: to nothing) and cools the model as a 401 would.
func TestProvidersAzureEntra(t *testing.T) {
	t.Parallel()
	entra := newFakeEntra(t)
	azure := newFakeAzure(t)
	azure.bearer = entra.token
	g := startGateway(t, serveOptions{config: "upstream:\n  azure_authority: " + entra.base + "/\n"})
	secretOf := func(clientSecret string) string {
		return fmt.Sprintf(`{"tenant_id":%q,"client_id":%q,"client_secret":%q}`, entraTenant, entraClient, clientSecret)
	}
	g.cli(t, secretOf(entraClientSecret), nil, "provider-key", "create", "--name", "azure-entra", "--provider", "azure", "--adapter", "azure-openai",
		"--api-base", azure.base, "--secret-stdin", "-q")
	g.cli(t, "", nil, "model", "create", "--name", "azure-gpt4o-entra", "--provider", "azure", "--model-name", azureDeployment,
		"--provider-key", "azure-entra", "--timeout", "15s", "-q")
	g.createCallerKey(t, callerKey, "azure-gpt4o-entra")
	call := func(i int, stream bool) {
		t.Helper()
		a := g.mustChat(t, callerKey, chatBody("azure-gpt4o-entra", stream), nil, 30*time.Second)
		if a.status != http.StatusOK || a.header.Get("X-Aisix-Attempts") != "azure-gpt4o-entra=200" {
			t.Fatalf("request %d: status %d attempts %q, want 200 from azure-gpt4o-entra: %s", i, a.status, a.header.Get("X-Aisix-Attempts"), a.body)
		}
		if !bytes.Contains(a.body, []byte("azure-gpt4o")) {
			t.Errorf("request %d: the answer is not Azure's: %s", i, a.body)
		}
	}
	call(0, false)
	// Config changes that do not touch the key rebuild the routing
	// snapshot; the token must survive them.
	g.create(t, "provider_keys", map[string]any{"display_name": "unrelated", "provider": "openai", "adapter": "openai",
		"secret": "sk-unrelated-0005", "api_base": "http://127.0.0.1:9/v1"})
	call(1, true)
	g.cli(t, "", nil, "model", "update", "azure-gpt4o-entra", "--timeout", "20s")
	call(2, false)
	if n := azure.hits.Load(); n != 3 {
		t.Errorf("Azure saw %d requests, want 3", n)
	}
	if n := entra.hits.Load(); n != 1 {
		t.Errorf("the token endpoint saw %d requests for 3 calls and 2 unrelated config changes, want 1 (the token is cached until a minute before it expires)", n)
	}

	// A rotated client secret: the cached token belongs to the old one.
	const rotated = "e2e~client~secret~rotated~0006"
	entra.accept(rotated)
	g.cli(t, secretOf(rotated), nil, "provider-key", "update", "azure-entra", "--secret-stdin")
	call(3, false)
	if n := entra.hits.Load(); n != 2 {
		t.Errorf("after the secret changed the token endpoint saw %d requests in all, want 2 (one new token)", n)
	}

	// A secret the tenant refuses: no token, so no request to Azure.
	g.cli(t, secretOf("e2e~wrong~secret"), nil, "provider-key", "update", "azure-entra", "--secret-stdin")
	before := azure.hits.Load()
	a := g.mustChat(t, callerKey, chatBody("azure-gpt4o-entra", false), nil, 30*time.Second)
	if a.status != http.StatusBadGateway || a.header.Get("X-Aisix-Attempts") != "azure-gpt4o-entra=credential_error" {
		t.Errorf("refused secret: status %d attempts %q, want 502 and azure-gpt4o-entra=credential_error: %s", a.status, a.header.Get("X-Aisix-Attempts"), a.body)
	}
	if bytes.Contains(a.body, []byte("AADSTS")) || bytes.Contains(a.body, []byte("wrong")) {
		t.Errorf("the caller sees Entra's answer or the secret: %s", a.body)
	}
	if n := azure.hits.Load(); n != before {
		t.Errorf("Azure saw %d requests without a token", n-before)
	}
	if row := g.status(t, "azure-gpt4o-entra"); row.Status != "cooldown" || row.StatusReason != "upstream_auth_failure" {
		t.Errorf("azure-gpt4o-entra: %s, want cooldown upstream_auth_failure", row.raw)
	}
}

// TestProvidersAnthropicErrors: each Anthropic error type, as the
// reference lists them, against chat-prod: whose fault it is decides
// between returning it (in OpenAI's envelope), failing over to Azure, and
// cooling Claude down.
func TestProvidersAnthropicErrors(t *testing.T) {
	t.Parallel()
	answerError := func(status int, typ, msg string, kv ...string) func(http.ResponseWriter, *anthropicCall) {
		return func(w http.ResponseWriter, _ *anthropicCall) {
			for i := 0; i+1 < len(kv); i += 2 {
				w.Header().Set(kv[i], kv[i+1])
			}
			anthropicError(w, status, typ, msg)
		}
	}
	const primaryFailed = `^({P}=transport_error,)+`
	cases := []struct {
		name     string
		answer   func(http.ResponseWriter, *anthropicCall)
		body     string
		status   int
		servedBy string
		trail    string
		errType  string // of the caller's error envelope
		reason   string // claude-fallback's status_reason; "" for healthy
		azure    int64
	}{
		{name: "400 invalid_request_error is the caller's: returned, not failed over",
			answer: answerError(400, "invalid_request_error", "max_tokens: 100000 > 64000, which is the maximum allowed number of output tokens for claude-sonnet-4-5"),
			status: 400, trail: primaryFailed + `{C}=400$`, errType: "invalid_request_error"},
		{name: "400 prompt is too long fails over without a cooldown",
			answer: answerError(400, "invalid_request_error", "prompt is too long: 250000 tokens > 200000 maximum"),
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `{C}=400,{A}=200$`, azure: 1},
		{name: "401 authentication_error fails over and cools",
			answer: answerError(401, "authentication_error", "invalid x-api-key"),
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `{C}=401,{A}=200$`, reason: "upstream_auth_failure", azure: 1},
		{name: "403 permission_error fails over and cools",
			answer: answerError(403, "permission_error", "Your API key does not have permission to use the specified resource."),
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `{C}=403,{A}=200$`, reason: "upstream_forbidden", azure: 1},
		{name: "404 not_found_error fails over and cools",
			answer: answerError(404, "not_found_error", "model: claude-sonnet-4-5"),
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `{C}=404,{A}=200$`, reason: "upstream_model_not_found", azure: 1},
		{name: "429 rate_limit_error with Retry-After fails over and cools",
			answer: answerError(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", "Retry-After", "40"),
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `{C}=429,{A}=200$`, reason: "upstream_rate_limited", azure: 1},
		{name: "500 api_error is retried, then fails over",
			answer: answerError(500, "api_error", "Internal server error"),
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `({C}=500,){2}{A}=200$`, reason: "upstream_server_error", azure: 1},
		{name: "n=2 cannot be sent to Anthropic: the next target takes it",
			answer: claudeMessage("unused"), body: `{"model":"chat-prod","n":2,"messages":[{"role":"user","content":"hi"}]}`,
			status: 200, servedBy: "azure-gpt4o", trail: primaryFailed + `{C}=unsupported_request,{A}=200$`, azure: 1},
	}
	rig := newProvidersRig(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gr := rig.group(t, fmt.Sprintf("-e%d", i))
			rig.claude.setFor(gr.claudeModel, tc.answer)
			body := gr.body(false)
			if tc.body != "" {
				body = gr.withModel(t, tc.body)
			}
			before := rig.azure.hits.Load()
			a := rig.g.mustChat(t, callerKey, body, nil, 30*time.Second)
			servedBy := tc.servedBy
			if servedBy != "" {
				servedBy = gr.azure
			}
			if a.status != tc.status || a.header.Get("X-Aisix-Served-By") != servedBy {
				t.Errorf("status %d served by %q, want %d from %q: %s", a.status, a.header.Get("X-Aisix-Served-By"), tc.status, servedBy, a.body)
			}
			if got, re := a.header.Get("X-Aisix-Attempts"), gr.trail(tc.trail); !re.MatchString(got) {
				t.Errorf("x-aisix-attempts %q, want it to match %s", got, re)
			}
			if tc.errType != "" {
				msg, typ, _, _ := a.envelope(t)
				if typ != tc.errType || !strings.Contains(msg, "max_tokens") {
					t.Errorf("error type %q message %q, want %s with Anthropic's message", typ, msg, tc.errType)
				}
			}
			row := rig.g.status(t, gr.claude)
			if want := map[bool]string{true: "cooldown", false: "healthy"}[tc.reason != ""]; row.Status != want || row.StatusReason != tc.reason {
				t.Errorf("%s: %s, want %s %s", gr.claude, row.raw, want, tc.reason)
			}
			if n := rig.azure.hits.Load() - before; n != tc.azure {
				t.Errorf("Azure saw %d requests, want %d", n, tc.azure)
			}
		})
	}
}

// sseEvents writes Anthropic stream events as given (name, data pairs);
// "" as a name cuts the connection there.
func sseEvents(evs ...string) func(http.ResponseWriter, *anthropicCall) {
	return func(w http.ResponseWriter, _ *anthropicCall) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		rc := http.NewResponseController(w)
		for i := 0; i+1 < len(evs); i += 2 {
			if evs[i] == "" {
				_ = rc.Flush()
				panic(http.ErrAbortHandler) // the connection is closed mid-answer
			}
			if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", evs[i], evs[i+1]); err != nil || rc.Flush() != nil {
				return
			}
		}
	}
}

const (
	evMessageStart = `{"type":"message_start","message":{"id":"msg_01E2EStream000000000001","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}`
	evTextStart    = `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`
	evHello        = `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`
	evStop0        = `{"type":"content_block_stop","index":0}`
	evOverloaded   = `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
)

// TestProvidersAnthropicStreams: Anthropic streams that end badly once
// content has reached the caller (no failover then: the caller gets an
// error event), or that carry several tool calls or a response_format.
func TestProvidersAnthropicStreams(t *testing.T) {
	t.Parallel()
	toolStart := func(i int, id string) string {
		return fmt.Sprintf(`{"type":"content_block_start","index":%d,"content_block":{"type":"tool_use","id":%q,"name":"get_weather","input":{}}}`, i, id)
	}
	inputDelta := func(i int, js string) string {
		b, _ := json.Marshal(js)
		return fmt.Sprintf(`{"type":"content_block_delta","index":%d,"delta":{"type":"input_json_delta","partial_json":%s}}`, i, b)
	}
	stopTools := `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":40}}`
	cases := []struct {
		name   string
		answer func(http.ResponseWriter, *anthropicCall)
		body   string
		check  func(t *testing.T, evs []sseEvent, model string)
	}{
		{name: "overloaded_error after content ends the stream with an error event",
			answer: sseEvents("message_start", evMessageStart, "content_block_start", evTextStart, "content_block_delta", evHello, "error", evOverloaded),
			check: func(t *testing.T, evs []sseEvent, model string) {
				if last := lastEvent(evs); last.name != "error" || !strings.Contains(last.data, "overloaded") {
					t.Errorf("last event %q %s, want an error event saying overloaded", last.name, last.data)
				}
			}},
		{name: "a connection cut after content ends the stream with an error event",
			answer: sseEvents("message_start", evMessageStart, "content_block_start", evTextStart, "content_block_delta", evHello, "", ""),
			check: func(t *testing.T, evs []sseEvent, model string) {
				if last := lastEvent(evs); last.name != "error" {
					t.Errorf("last event %q %s, want an error event", last.name, last.data)
				}
			}},
		{name: "a stream without message_stop after its message_delta still ends with [DONE]",
			answer: sseEvents("message_start", evMessageStart, "content_block_start", evTextStart, "content_block_delta", evHello, "content_block_stop", evStop0,
				"message_delta", `{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}`),
			check: func(t *testing.T, evs []sseEvent, model string) {
				chs := chunksOf(t, evs, model)
				if f := chs[len(chs)-1].Choices; len(f) != 1 || f[0].FinishReason == nil || *f[0].FinishReason != "stop" {
					t.Errorf("the last chunk before [DONE] %s, want finish_reason stop", evs[len(evs)-2].data)
				}
			}},
		{name: "two tool_use blocks become tool_calls 0 and 1",
			answer: sseEvents("message_start", evMessageStart,
				"content_block_start", toolStart(0, "toolu_01Paris"), "content_block_delta", inputDelta(0, `{"location": "Pa`), "content_block_delta", inputDelta(0, `ris"}`), "content_block_stop", evStop0,
				"content_block_start", toolStart(1, "toolu_02Rome"), "content_block_delta", inputDelta(1, `{"location": "Rome"}`), "content_block_stop", `{"type":"content_block_stop","index":1}`,
				"message_delta", stopTools, "message_stop", `{"type":"message_stop"}`),
			body: `{"model":"chat-prod","stream":true,"messages":[{"role":"user","content":"Weather in Paris and Rome?"}],"tools":[` + weatherTool + `]}`,
			check: func(t *testing.T, evs []sseEvent, model string) {
				ids, args := map[int]string{}, map[int]string{}
				var finish string
				for _, ch := range chunksOf(t, evs, model) {
					if len(ch.Choices) == 0 {
						continue
					}
					if f := ch.Choices[0].FinishReason; f != nil {
						finish = *f
					}
					for _, tc := range ch.Choices[0].Delta.ToolCalls {
						if tc.Index == nil {
							t.Fatalf("a tool_calls delta without index: %v", evs)
						}
						if tc.ID != "" {
							ids[*tc.Index] = tc.ID + " " + tc.Function.Name
						}
						if tc.Function.Arguments != nil {
							args[*tc.Index] += *tc.Function.Arguments
						}
					}
				}
				if want := map[int]string{0: "toolu_01Paris get_weather", 1: "toolu_02Rome get_weather"}; !reflect.DeepEqual(ids, want) {
					t.Errorf("tool calls %v, want %v", ids, want)
				}
				if want := map[int]string{0: `{"location": "Paris"}`, 1: `{"location": "Rome"}`}; !reflect.DeepEqual(args, want) {
					t.Errorf("arguments %v, want %v", args, want)
				}
				if finish != "tool_calls" {
					t.Errorf("finish_reason %q, want tool_calls", finish)
				}
			}},
		{name: "response_format json_schema streams the forced tool's input as content",
			answer: sseEvents("message_start", evMessageStart,
				"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_03Json","name":"json_response","input":{}}}`,
				"content_block_delta", inputDelta(0, `{"answer": `), "content_block_delta", inputDelta(0, `42}`), "content_block_stop", evStop0,
				"message_delta", stopTools, "message_stop", `{"type":"message_stop"}`),
			body: `{"model":"chat-prod","stream":true,"messages":[{"role":"user","content":"The answer?"}],` +
				`"response_format":{"type":"json_schema","json_schema":{"name":"answer","schema":{"type":"object","properties":{"answer":{"type":"integer"}},"required":["answer"]}}}}`,
			check: func(t *testing.T, evs []sseEvent, model string) {
				var text strings.Builder
				var finish string
				for _, ch := range chunksOf(t, evs, model) {
					if len(ch.Choices) == 0 {
						continue
					}
					if len(ch.Choices[0].Delta.ToolCalls) != 0 {
						t.Errorf("the forced tool reached the caller as a tool call: %v", evs)
					}
					text.WriteString(ch.Choices[0].Delta.Content)
					if f := ch.Choices[0].FinishReason; f != nil {
						finish = *f
					}
				}
				if text.String() != `{"answer": 42}` || finish != "stop" {
					t.Errorf("content %q finish_reason %q, want the JSON as content and stop", text.String(), finish)
				}
			}},
	}
	rig := newProvidersRig(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gr := rig.group(t, fmt.Sprintf("-t%d", i))
			rig.claude.setFor(gr.claudeModel, tc.answer)
			body := gr.body(true)
			if tc.body != "" {
				body = gr.withModel(t, tc.body)
			}
			before := rig.azure.hits.Load()
			resp, evs := rig.streamChat(t, body)
			if got := resp.Header.Get("X-Aisix-Served-By"); got != gr.claude {
				t.Errorf("x-aisix-served-by %q (attempts %q), want %s", got, resp.Header.Get("X-Aisix-Attempts"), gr.claude)
			}
			tc.check(t, evs, gr.chat)
			if n := rig.azure.hits.Load() - before; n != 0 {
				t.Errorf("Azure saw %d requests: a stream that reached the caller failed over", n)
			}
		})
	}
}

// TestProvidersAnthropicRequests: OpenAI request shapes and the exact
// Messages body each becomes (compared as JSON values).
func TestProvidersAnthropicRequests(t *testing.T) {
	t.Parallel()
	rig := newProvidersRig(t)
	rig.group(t, "")
	rig.claude.set(claudeMessage("ok"))
	call := `{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\"}"}}`
	tool := `{"name":"get_weather","description":"Get the current weather in a given location","input_schema":{"type":"object","properties":{"location":{"type":"string"},"unit":{"type":"string","enum":["celsius","fahrenheit"]}},"required":["location"]}}`
	toolTurns := `{"role":"user","content":[{"type":"text","text":"w?"}]},` +
		`{"role":"assistant","content":[{"type":"tool_use","id":"call_1","name":"get_weather","input":{"location":"Paris"}}]}`
	cases := []struct{ name, in, want string }{
		{"consecutive user messages merge into one turn",
			`{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`,
			`{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]}`},
		{"system and developer messages, sampling fields, stop, user",
			`{"messages":[{"role":"developer","content":[{"type":"text","text":"Be terse."}]},{"role":"system","content":"Second."},{"role":"user","content":"hi"}],` +
				`"temperature":1.7,"top_p":0.9,"stop":"END","user":"u-42","max_completion_tokens":33,"seed":7,"frequency_penalty":0.1,"logprobs":true}`,
			`{"max_tokens":33,"system":[{"type":"text","text":"Be terse."},{"type":"text","text":"Second."}],"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],` +
				`"stop_sequences":["END"],"temperature":1,"top_p":0.9,"metadata":{"user_id":"u-42"}}`},
		{"an https image_url is a url image source",
			`{"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`,
			`{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image","source":{"type":"url","url":"https://example.com/cat.png"}}]}]}`},
		{"tool result and a follow-up question share one user turn, tool_result first",
			`{"messages":[{"role":"user","content":"w?"},{"role":"assistant","content":"","tool_calls":[` + call + `]},{"role":"tool","tool_call_id":"call_1","content":"sunny"},{"role":"user","content":"and tomorrow?"}]}`,
			`{"max_tokens":4096,"messages":[` + toolTurns + `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"sunny"}]},{"type":"text","text":"and tomorrow?"}]}]}`},
		{"an assistant prefill stays the last turn",
			`{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"Sure, here is"}]}`,
			`{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":[{"type":"text","text":"Sure, here is"}]}]}`},
		{"tool_choice required and parallel_tool_calls false",
			`{"messages":[{"role":"user","content":"hi"}],"tools":[` + weatherTool + `],"tool_choice":"required","parallel_tool_calls":false}`,
			`{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[` + tool + `],"tool_choice":{"type":"any","disable_parallel_tool_use":true}}`},
		{"a named tool_choice",
			`{"messages":[{"role":"user","content":"hi"}],"tools":[` + weatherTool + `],"tool_choice":{"type":"function","function":{"name":"get_weather"}}}`,
			`{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"tools":[` + tool + `],"tool_choice":{"type":"tool","name":"get_weather"}}`},
		{"reasoning_effort is a thinking budget and drops temperature",
			`{"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"low","temperature":0.5}`,
			`{"max_tokens":4096,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],"thinking":{"type":"enabled","budget_tokens":1024}}`},
		{"no thinking when the last assistant turn used tools",
			`{"messages":[{"role":"user","content":"w?"},{"role":"assistant","content":null,"tool_calls":[` + call + `]},{"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"sunny"}]}],"tools":[` + weatherTool + `],"reasoning_effort":"high"}`,
			`{"max_tokens":4096,"messages":[` + toolTurns + `,{"role":"user","content":[{"type":"tool_result","tool_use_id":"call_1","content":[{"type":"text","text":"sunny"}]}]}],"tools":[` + tool + `]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rig.claude.drain()
			var in map[string]any
			if err := json.Unmarshal([]byte(tc.in), &in); err != nil {
				t.Fatal(err)
			}
			in["model"] = "chat-prod"
			body, _ := json.Marshal(in)
			a := rig.g.mustChat(t, callerKey, string(body), nil, 30*time.Second)
			if a.status != http.StatusOK || a.header.Get("X-Aisix-Served-By") != "claude-fallback" {
				t.Fatalf("status %d served by %q (attempts %q): %s", a.status, a.header.Get("X-Aisix-Served-By"), a.header.Get("X-Aisix-Attempts"), a.body)
			}
			c := rig.claude.next(t, 5*time.Second)
			var got, want any
			_ = json.Unmarshal(c.body, &got)
			if err := json.Unmarshal([]byte(`{"model":"`+claudeModel+`",`+tc.want[1:]), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Anthropic got\n%s\nwant\n%s", c.body, `{"model":"`+claudeModel+`",`+tc.want[1:])
			}
		})
	}
}

// TestProvidersAzureErrors: Azure's own error answers from the last target
// of chat-prod (Claude overloaded before it), as the caller and the status
// see them.
func TestProvidersAzureErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body, retryAfter string
		status                 int
		wantStatus             int
		wantCode               string
		reason                 string
	}{
		{name: "400 content_filter is returned as a content-policy refusal", status: 400, wantStatus: 400, wantCode: "content_filter",
			body: `{"error":{"code":"content_filter","message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy.","param":"prompt","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}`},
		{name: "404 DeploymentNotFound cools the model", status: 404, wantStatus: 502, reason: "upstream_model_not_found",
			body: `{"error":{"code":"DeploymentNotFound","message":"The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, please wait a moment and try again."}}`},
		{name: "429 keeps its Retry-After and cools the model", status: 429, wantStatus: 429, wantCode: "429", retryAfter: "6", reason: "upstream_rate_limited",
			body: `{"error":{"code":"429","message":"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."}}`},
	}
	rig := newProvidersRig(t)
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gr := rig.group(t, fmt.Sprintf("-z%d", i))
			rig.claude.setFor(gr.claudeModel, overloaded)
			rig.azure.setFor(gr.deployment, func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			a := rig.g.mustChat(t, callerKey, gr.body(false), nil, 30*time.Second)
			trail := gr.trail(`^({P}=transport_error,)+({C}=529,)+{A}=` + fmt.Sprint(tc.status) + `$`)
			if a.status != tc.wantStatus || !trail.MatchString(a.header.Get("X-Aisix-Attempts")) {
				t.Errorf("status %d attempts %q, want %d and %s: %s", a.status, a.header.Get("X-Aisix-Attempts"), tc.wantStatus, trail, a.body)
			}
			if _, _, _, code := a.envelope(t); tc.wantCode != "" && code != tc.wantCode {
				t.Errorf("error code %v, want %q: %s", code, tc.wantCode, a.body)
			}
			if got := a.header.Get("Retry-After"); got != tc.retryAfter {
				t.Errorf("Retry-After %q, want %q", got, tc.retryAfter)
			}
			row := rig.g.status(t, gr.azure)
			if want := map[bool]string{true: "cooldown", false: "healthy"}[tc.reason != ""]; row.Status != want || row.StatusReason != tc.reason {
				t.Errorf("%s: %s, want %s %s", gr.azure, row.raw, want, tc.reason)
			}
		})
	}
}

// TestProvidersAnthropicSecretHost: a provider key's secret is bound to the
// host it was entered for; moving api_base to another host without the
// secret leaves requests without a credential. An Anthropic key without
// api_base goes to api.anthropic.com, so that is its host.
func TestProvidersAnthropicSecretHost(t *testing.T) {
	t.Parallel()
	g := startGateway(t, serveOptions{})
	value := func(t *testing.T, name string) map[string]any {
		t.Helper()
		var e struct {
			Value map[string]any `json:"value"`
		}
		out := g.cli(t, "", nil, "provider-key", "get", name, "-o", "json")
		if err := json.Unmarshal([]byte(out), &e); err != nil {
			t.Fatalf("provider-key get %s -o json: %v: %s", name, err, out)
		}
		return e.Value
	}
	create := func(t *testing.T, name string, args ...string) {
		t.Helper()
		g.cli(t, anthropicSecret, nil, append([]string{"provider-key", "create", "--name", name, "--provider", "anthropic", "--secret-stdin", "-q"}, args...)...)
	}

	t.Run("moving an Anthropic key to another host needs the secret again", func(t *testing.T) {
		create(t, "anthropic-moved", "--api-base", "https://api.anthropic.com")
		if v := value(t, "anthropic-moved"); v["secret_host"] != "api.anthropic.com" || v["secret_needs_reentry"] != false {
			t.Fatalf("new key: %v, want the secret bound to api.anthropic.com", v)
		}
		g.cli(t, "", nil, "provider-key", "update", "anthropic-moved", "--api-base", "https://claude-proxy.example.com")
		if v := value(t, "anthropic-moved"); v["secret_needs_reentry"] != true {
			t.Errorf("moved key: %v, want secret_needs_reentry", v)
		}
	})

	t.Run("an Anthropic key without api_base is bound to api.anthropic.com", func(t *testing.T) {
		create(t, "anthropic-default")
		if v := value(t, "anthropic-default"); v["secret_host"] != "api.anthropic.com" || v["secret_needs_reentry"] != false {
			t.Errorf("new key without api_base: %v, want the secret bound to api.anthropic.com", v)
		}
		g.cli(t, "", nil, "provider-key", "update", "anthropic-default", "--api-base", "https://api.anthropic.com")
		if v := value(t, "anthropic-default"); v["secret_needs_reentry"] != false {
			t.Errorf("api_base spelled out as the default host: %v, want the secret still bound", v)
		}
		create(t, "anthropic-explicit", "--api-base", "https://api.anthropic.com")
		g.cli(t, "", nil, "provider-key", "update", "anthropic-explicit", "--api-base", "")
		if v := value(t, "anthropic-explicit"); v["secret_needs_reentry"] != false {
			t.Errorf("api_base cleared back to the default host: %v, want the secret still bound", v)
		}
	})
}
