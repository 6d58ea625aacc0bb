package e2e

// The official SDKs against the real binary: the Node scripts in e2e/sdk
// (openai and @anthropic-ai/sdk, versions pinned in e2e/sdk/package.json)
// call one gateway as a user would, and this file arranges the upstreams
// and routing groups they call, runs each script with a bounded timeout and
// fails with the script's stderr when it exits non-zero.
//
// Most groups have a failing primary that never cools down: the scripts
// check, from the x-aisix-served-by and x-aisix-attempts headers the SDK
// hands back (withResponse / asResponse), that every call tried it and
// failed over, and this file checks that the primary really saw them.
//
// TestSDKOpenAI: chat completions, embeddings (the SDK's default base64,
// float, base64, dimensions; OpenAI and Azure secondaries; a target without
// embeddings skipped), legacy completions (OpenAI and Azure), Responses
// (plain, the event stream, the stream helper, previous_response_id pinned
// to the creating target under round_robin, retrieve, input_items, cancel,
// delete) and the SDK's typed errors on each endpoint. TestSDKAnthropic:
// Messages passed through to Anthropic and translated from OpenAI and
// Azure (create, a text stream, a tool-call stream), a translated stream
// cut after content, count_tokens, and every typed error of the SDK.
//
// The fakes here answer from the providers' published API references
// (OpenAI: chat completions, embeddings with float and base64 encodings and
// dimensions, legacy completions, Responses with its streaming events and
// retrieve, input_items, delete and cancel; Azure OpenAI: the deployments
// embeddings, completions and chat-completions routes; Anthropic: Messages,
// its stream event order, count_tokens and the error envelope), not from
// what aisix's translators produce.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	sdkUpSecret    = "sk-sdk-openai-up-secret-0004"
	sdkDownSecret  = "sk-sdk-openai-down-secret-0005"
	sdkUp2Secret   = "sk-sdk-openai-up2-secret-0006"
	sdkLimitedKey  = "sk-sdk-limited-caller"
	sdkCountTokens = 1234 // the fake Anthropic API's count_tokens answer
	sdkUpText      = "hello from openai-up"
	sdkClaudeText  = "hello from claude-up"
	// sdkContText is the answer of the continuation group: claude-cut
	// sends its first four words, claude-cont the rest.
	sdkContText   = "hello from claude, cut after four words and continued by the next target"
	sdkToolAnswer = "It is 18 °C and sunny in Paris."
)

// ---- node and the SDK packages ----

var (
	sdkOnce sync.Once
	sdkErr  error
	sdkDir  string
)

// sdkSetup finds node and installs e2e/sdk's packages (npm ci) once per
// run, unless node_modules already holds what package-lock.json pins.
func sdkSetup(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the SDK tests need Node.js 20+ and npm (.ci/run installs them)")
	}
	sdkOnce.Do(func() {
		dir, err := filepath.Abs("sdk")
		if err != nil {
			sdkErr = err
			return
		}
		sdkDir = dir
		if sdkInstalled(dir) {
			return
		}
		if _, err := exec.LookPath("npm"); err != nil {
			sdkErr = errors.New("npm is not installed and e2e/sdk/node_modules is missing or stale")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "npm", "ci", "--prefix", dir, "--no-audit", "--no-fund")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			sdkErr = fmt.Errorf("npm ci --prefix e2e/sdk: %v\n%s", err, out.String())
		}
	})
	if sdkErr != nil {
		t.Fatal(sdkErr)
	}
	return sdkDir
}

// sdkInstalled reports whether node_modules holds what the lock pins:
// npm writes node_modules/.package-lock.json as it installs, and every
// package of package-lock.json is there with its version.
func sdkInstalled(dir string) bool {
	type lock struct {
		Packages map[string]struct {
			Version string `json:"version"`
		} `json:"packages"`
	}
	read := func(path string) (lock, bool) {
		var l lock
		b, err := os.ReadFile(path)
		return l, err == nil && json.Unmarshal(b, &l) == nil
	}
	want, ok1 := read(filepath.Join(dir, "package-lock.json"))
	have, ok2 := read(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if !ok1 || !ok2 {
		return false
	}
	for name, p := range want.Packages {
		if name == "" {
			continue
		}
		if h, ok := have.Packages[name]; !ok || h.Version != p.Version {
			return false
		}
	}
	return true
}

// runSDK runs one script of e2e/sdk against the gateway with env added
// and returns its JSON summary; a non-zero exit fails the test with the
// script's stderr.
func runSDK(t *testing.T, g *gateway, script string, env ...string) map[string]any {
	t.Helper()
	dir := sdkSetup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, script))
	cmd.Dir = dir
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + t.TempDir(),
		"NO_COLOR=1",
		"AISIX_BASE_URL=" + g.proxy,
		"AISIX_KEY=" + callerKey,
	}, env...)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("node %s did not finish within 90s\nstdout:\n%s\nstderr:\n%s", script, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Fatalf("node %s: %v\nstderr:\n%s\nstdout:\n%s\nserve log (tail):\n%s", script, err, stderr.String(), stdout.String(), tail(g.log.String(), 4000))
	}
	var summary map[string]any
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil {
		t.Fatalf("node %s: the last stdout line is not a JSON summary: %v\n%s", script, err, stdout.String())
	}
	t.Logf("%s: %s", script, lines[len(lines)-1])
	return summary
}

// ---- a fake OpenAI API ----

// sdkOpenAI is the OpenAI API on a loopback port: chat completions,
// embeddings, legacy completions and Responses. A down one answers every
// request 503 server_error, as OpenAI does when overloaded.
type sdkOpenAI struct {
	t      testing.TB
	name   string
	secret string
	down   bool
	base   string // api_base: http://host:port/v1
	mu     sync.Mutex
	hits   map[string]int              // "METHOD /path" (ids as {id}) -> count
	resps  map[string]map[string]any   // Responses by id
	inputs map[string]any              // their requests' input by id
	bodies map[string][]map[string]any // request bodies by route
	seq    atomic.Int64                // numbers ids
}

func newSDKOpenAI(t testing.TB, name, secret string, down bool) *sdkOpenAI {
	t.Helper()
	f := &sdkOpenAI{t: t, name: name, secret: secret, down: down, hits: map[string]int{},
		resps: map[string]map[string]any{}, inputs: map[string]any{}, bodies: map[string][]map[string]any{}}
	srv := newFakeServer(t, http.HandlerFunc(f.serve))
	f.base = srv.URL + "/v1"
	return f
}

// count is how many requests route saw ("POST /v1/embeddings").
func (f *sdkOpenAI) count(route string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[route]
}

// allBodies are the JSON bodies route saw.
func (f *sdkOpenAI) allBodies(route string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string]any(nil), f.bodies[route]...)
}

// lastBody is the last JSON body route saw.
func (f *sdkOpenAI) lastBody(route string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	bs := f.bodies[route]
	if len(bs) == 0 {
		return nil
	}
	return bs[len(bs)-1]
}

func (f *sdkOpenAI) refuse(w http.ResponseWriter, status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.t.Errorf("fake OpenAI %s: wrong request from aisix: %s", f.name, msg)
	writeOpenAIError(w, status, msg, "invalid_request_error", nil, nil)
}

func (f *sdkOpenAI) serve(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	id := ""
	if rest, ok := strings.CutPrefix(path, "/v1/responses/"); ok {
		id, _, _ = strings.Cut(rest, "/")
		path = strings.Replace(path, "/"+id, "/{id}", 1)
	}
	route := r.Method + " " + path
	f.mu.Lock()
	f.hits[route]++
	f.mu.Unlock()
	if f.down {
		writeOpenAIError(w, http.StatusServiceUnavailable, "The server is overloaded or not ready yet.", "server_error", nil, nil)
		return
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+f.secret {
		writeOpenAIError(w, http.StatusUnauthorized, "Incorrect API key provided.", "invalid_request_error", nil, "invalid_api_key")
		f.t.Errorf("fake OpenAI %s: Authorization %q, want the provider key's secret", f.name, got)
		return
	}
	if r.Header.Get("X-Api-Key") != "" || r.Header.Get("Anthropic-Version") != "" {
		f.refuse(w, http.StatusBadRequest, "Anthropic headers were sent to OpenAI")
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost {
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		if len(raw) > 0 || path != "/v1/responses/{id}/cancel" {
			if err := json.Unmarshal(raw, &body); err != nil {
				f.refuse(w, http.StatusBadRequest, "%s: body is not a JSON object: %s", route, raw)
				return
			}
		}
		f.mu.Lock()
		f.bodies[route] = append(f.bodies[route], body)
		f.mu.Unlock()
	}
	switch route {
	case "POST /v1/chat/completions":
		f.chat(w, r, body)
	case "POST /v1/embeddings":
		f.embeddings(w, body)
	case "POST /v1/completions":
		f.completions(w, r, body)
	case "POST /v1/responses":
		f.createResponse(w, r, body)
	case "GET /v1/responses/{id}", "DELETE /v1/responses/{id}", "POST /v1/responses/{id}/cancel", "GET /v1/responses/{id}/input_items":
		f.responseByID(w, r, id)
	default:
		f.refuse(w, http.StatusNotFound, "Invalid URL (%s)", route)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// sdkSSE writes server-sent events, flushing each.
type sdkSSE struct {
	w  http.ResponseWriter
	rc *http.ResponseController
	ok bool
}

func newSDKSSE(w http.ResponseWriter) *sdkSSE {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	return &sdkSSE{w: w, rc: http.NewResponseController(w), ok: true}
}

// send writes one event; name "" writes a data-only event.
func (s *sdkSSE) send(name string, data any) {
	if !s.ok {
		return
	}
	var b []byte
	if raw, ok := data.(string); ok {
		b = []byte(raw)
	} else {
		b, _ = json.Marshal(data)
	}
	frame := "data: " + string(b) + "\n\n"
	if name != "" {
		frame = "event: " + name + "\n" + frame
	}
	if _, err := io.WriteString(s.w, frame); err != nil || s.rc.Flush() != nil {
		s.ok = false
	}
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// chat answers a chat completion: text, or a get_weather tool call when the
// request has tools, plain or streamed (with a usage chunk when
// stream_options.include_usage).
func (f *sdkOpenAI) chat(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if msgs, _ := body["messages"].([]any); len(msgs) == 0 || str(body, "model") == "" {
		f.refuse(w, http.StatusBadRequest, "chat: want model and messages: %v", body)
		return
	}
	tools, _ := body["tools"].([]any)
	stream, _ := body["stream"].(bool)
	msgs, _ := body["messages"].([]any)
	last, _ := msgs[len(msgs)-1].(map[string]any)
	toolTurn := str(last, "role") == "tool"
	if toolTurn {
		// A tool result answers the previous assistant turn's tool call.
		var callID string
		if len(msgs) >= 2 {
			prev, _ := msgs[len(msgs)-2].(map[string]any)
			calls, _ := prev["tool_calls"].([]any)
			if len(calls) > 0 {
				c, _ := calls[0].(map[string]any)
				callID = str(c, "id")
			}
		}
		if callID == "" || str(last, "tool_call_id") != callID {
			f.refuse(w, http.StatusBadRequest, "chat: a tool message whose tool_call_id %q is not the previous assistant turn's tool call %q: %v",
				str(last, "tool_call_id"), callID, body)
			return
		}
	}
	usage := map[string]any{"prompt_tokens": 19, "completion_tokens": 5, "total_tokens": 24}
	id := fmt.Sprintf("chatcmpl-sdk%04d", f.seq.Add(1))
	base := map[string]any{"id": id, "created": 1767225600, "model": "gpt-4o-mini-2024-07-18", "system_fingerprint": "fp_sdk"}
	with := func(kv map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range kv {
			m[k] = v
		}
		return m
	}
	if !stream {
		msg := map[string]any{"role": "assistant", "content": sdkUpText, "refusal": nil}
		finish := "stop"
		if toolTurn {
			msg["content"] = sdkToolAnswer
		} else if len(tools) > 0 {
			msg["content"] = nil
			msg["tool_calls"] = []any{map[string]any{"id": "call_sdk0001", "type": "function",
				"function": map[string]any{"name": "get_weather", "arguments": `{"location":"Paris","unit":"celsius"}`}}}
			finish = "tool_calls"
		}
		writeJSON(w, with(map[string]any{"object": "chat.completion", "usage": usage,
			"choices": []any{map[string]any{"index": 0, "message": msg, "logprobs": nil, "finish_reason": finish}}}))
		return
	}
	s := newSDKSSE(w)
	if strings.HasSuffix(str(body, "model"), "-broken") {
		// The connection drops after the first content chunk.
		s.send("", with(map[string]any{"object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": "hello "}, "logprobs": nil, "finish_reason": nil}}}))
		panic(http.ErrAbortHandler)
	}
	ch := func(delta map[string]any, finish any) {
		s.send("", with(map[string]any{"object": "chat.completion.chunk",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}}}))
	}
	ch(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil)
	if len(tools) > 0 {
		ch(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "id": "call_sdk0001", "type": "function",
			"function": map[string]any{"name": "get_weather", "arguments": ""}}}}, nil)
		for _, p := range []string{`{"loca`, `tion":"Par`, `is","unit":"cel`, `sius"}`} {
			ch(map[string]any{"tool_calls": []any{map[string]any{"index": 0, "function": map[string]any{"arguments": p}}}}, nil)
		}
		ch(map[string]any{}, "tool_calls")
	} else {
		ch(map[string]any{"content": "hello "}, nil)
		ch(map[string]any{"content": "from openai-up"}, nil)
		ch(map[string]any{}, "stop")
	}
	if so, _ := body["stream_options"].(map[string]any); so["include_usage"] == true {
		s.send("", with(map[string]any{"object": "chat.completion.chunk", "choices": []any{}, "usage": usage}))
	}
	s.send("", "[DONE]")
}

// sdkVector is the fake's embedding of input i: n floats that float32
// represents exactly.
func sdkVector(i, n int) []float64 {
	v := make([]float64, n)
	for j := range v {
		v[j] = float64(i) + float64(j+1)/8
	}
	return v
}

// embedResponse is an embeddings answer for body: one vector per input
// (a string or an array of strings), dimensions long (default 8), as floats
// or, for encoding_format base64, as little-endian float32 bytes in base64.
func embedResponse(body map[string]any, model string) (map[string]any, string) {
	var inputs []any
	switch in := body["input"].(type) {
	case string:
		inputs = []any{in}
	case []any:
		inputs = in
	}
	if len(inputs) == 0 {
		return nil, "input: want a string or an array of strings"
	}
	n := 8
	if d, ok := body["dimensions"].(float64); ok {
		n = int(d)
	}
	enc := str(body, "encoding_format")
	if enc != "" && enc != "float" && enc != "base64" {
		return nil, "encoding_format " + enc
	}
	var data []any
	for i := range inputs {
		v := sdkVector(i, n)
		var emb any = v
		if enc == "base64" {
			buf := make([]byte, 4*n)
			for j, x := range v {
				binary.LittleEndian.PutUint32(buf[4*j:], math.Float32bits(float32(x)))
			}
			emb = base64.StdEncoding.EncodeToString(buf)
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": emb})
	}
	return map[string]any{"object": "list", "data": data, "model": model,
		"usage": map[string]any{"prompt_tokens": 4 * len(inputs), "total_tokens": 4 * len(inputs)}}, ""
}

func (f *sdkOpenAI) embeddings(w http.ResponseWriter, body map[string]any) {
	resp, bad := embedResponse(body, "text-embedding-3-small")
	if bad != "" || str(body, "model") == "" {
		f.refuse(w, http.StatusBadRequest, "embeddings: %s (model %q)", bad, str(body, "model"))
		return
	}
	writeJSON(w, resp)
}

// completions answers a legacy completion, plain or streamed.
func (f *sdkOpenAI) completions(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if _, ok := body["prompt"]; !ok || str(body, "model") == "" {
		f.refuse(w, http.StatusBadRequest, "completions: want model and prompt: %v", body)
		return
	}
	id := fmt.Sprintf("cmpl-sdk%04d", f.seq.Add(1))
	obj := func(text string, finish any) map[string]any {
		return map[string]any{"id": id, "object": "text_completion", "created": 1767225600, "model": "gpt-3.5-turbo-instruct",
			"system_fingerprint": nil,
			"choices":            []any{map[string]any{"text": text, "index": 0, "logprobs": nil, "finish_reason": finish}}}
	}
	if stream, _ := body["stream"].(bool); !stream {
		o := obj(" "+sdkUpText, "stop")
		o["usage"] = map[string]any{"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
		writeJSON(w, o)
		return
	}
	s := newSDKSSE(w)
	s.send("", obj(" hello", nil))
	s.send("", obj(" from", nil))
	s.send("", obj(" openai-up", nil))
	s.send("", obj("", "stop"))
	s.send("", "[DONE]")
}

// response is a Responses object.
func (f *sdkOpenAI) response(id, status string, prev any, output []any, usage any) map[string]any {
	return map[string]any{
		"id": id, "object": "response", "created_at": 1767225600, "status": status, "background": false,
		"error": nil, "incomplete_details": nil, "instructions": nil, "max_output_tokens": nil,
		"model": "gpt-4o-mini-2024-07-18", "output": output, "parallel_tool_calls": true,
		"previous_response_id": prev, "reasoning": map[string]any{"effort": nil, "summary": nil},
		"store": true, "temperature": 1.0, "text": map[string]any{"format": map[string]any{"type": "text"}},
		"tool_choice": "auto", "tools": []any{}, "top_p": 1.0, "truncation": "disabled",
		"usage": usage, "user": nil, "metadata": map[string]any{},
	}
}

// createResponse answers POST /v1/responses. A previous_response_id must
// be one this upstream created (OpenAI answers 400 otherwise); the answer
// says which turn it is.
func (f *sdkOpenAI) createResponse(w http.ResponseWriter, r *http.Request, body map[string]any) {
	if _, ok := body["input"]; !ok || str(body, "model") == "" {
		f.refuse(w, http.StatusBadRequest, "responses: want model and input: %v", body)
		return
	}
	var prev any
	text := sdkUpText
	if p := str(body, "previous_response_id"); p != "" {
		f.mu.Lock()
		_, ok := f.resps[p]
		f.mu.Unlock()
		if !ok {
			writeOpenAIError(w, http.StatusBadRequest, fmt.Sprintf("Previous response with id '%s' not found.", p), "invalid_request_error", "previous_response_id", "previous_response_not_found")
			return
		}
		prev, text = p, sdkUpText+" again"
	}
	n := f.seq.Add(1)
	id := fmt.Sprintf("resp_sdk%s%04d", strings.ReplaceAll(f.name, "-", ""), n)
	msgID := fmt.Sprintf("msg_sdk%04d", n)
	part := func(t string) map[string]any {
		return map[string]any{"type": "output_text", "text": t, "annotations": []any{}, "logprobs": []any{}}
	}
	item := func(status string, content []any) map[string]any {
		return map[string]any{"id": msgID, "type": "message", "status": status, "role": "assistant", "content": content}
	}
	usage := map[string]any{"input_tokens": 12, "input_tokens_details": map[string]any{"cached_tokens": 0},
		"output_tokens": 5, "output_tokens_details": map[string]any{"reasoning_tokens": 0}, "total_tokens": 17}
	done := f.response(id, "completed", prev, []any{item("completed", []any{part(text)})}, usage)
	f.mu.Lock()
	f.resps[id], f.inputs[id] = done, body["input"]
	f.mu.Unlock()
	if stream, _ := body["stream"].(bool); !stream {
		writeJSON(w, done)
		return
	}
	s := newSDKSSE(w)
	seq := 0
	ev := func(typ string, kv map[string]any) {
		kv["type"], kv["sequence_number"] = typ, seq
		seq++
		s.send(typ, kv)
	}
	pending := f.response(id, "in_progress", prev, []any{}, nil)
	ev("response.created", map[string]any{"response": pending})
	ev("response.in_progress", map[string]any{"response": pending})
	ev("response.output_item.added", map[string]any{"output_index": 0, "item": item("in_progress", []any{})})
	ev("response.content_part.added", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part("")})
	first, rest, _ := strings.Cut(text, " ")
	for _, d := range []string{first, " " + rest} {
		ev("response.output_text.delta", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "delta": d, "logprobs": []any{}})
	}
	ev("response.output_text.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "text": text, "logprobs": []any{}})
	ev("response.content_part.done", map[string]any{"item_id": msgID, "output_index": 0, "content_index": 0, "part": part(text)})
	ev("response.output_item.done", map[string]any{"output_index": 0, "item": item("completed", []any{part(text)})})
	ev("response.completed", map[string]any{"response": done})
}

// responseByID answers retrieve, delete and cancel of a stored response.
func (f *sdkOpenAI) responseByID(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	resp, ok := f.resps[id]
	f.mu.Unlock()
	if !ok {
		writeOpenAIError(w, http.StatusNotFound, fmt.Sprintf("Response with id '%s' not found.", id), "invalid_request_error", nil, nil)
		return
	}
	switch {
	case strings.HasSuffix(r.URL.Path, "/input_items"):
		// A string input is one user message of input_text.
		f.mu.Lock()
		in := f.inputs[id]
		f.mu.Unlock()
		text, _ := in.(string)
		itemID := "msg_in_" + id
		writeJSON(w, map[string]any{"object": "list", "first_id": itemID, "last_id": itemID, "has_more": false,
			"data": []any{map[string]any{"id": itemID, "type": "message", "role": "user", "status": "completed",
				"content": []any{map[string]any{"type": "input_text", "text": text}}}}})
	case r.Method == http.MethodGet:
		writeJSON(w, resp)
	case r.Method == http.MethodDelete:
		f.mu.Lock()
		delete(f.resps, id)
		f.mu.Unlock()
		writeJSON(w, map[string]any{"id": id, "object": "response", "deleted": true})
	default: // cancel
		c := map[string]any{}
		for k, v := range resp {
			c[k] = v
		}
		c["status"] = "cancelled"
		writeJSON(w, c)
	}
}

// ---- a fake Azure OpenAI resource: embeddings, chat and completions ----

// Its chat completions and completions answer as OpenAI's do (the same
// handlers as sdkOpenAI's, saying sdkUpText).
type sdkAzure struct {
	t      testing.TB
	base   string
	openai *sdkOpenAI
	mu     sync.Mutex
	hits   map[string]int
}

func newSDKAzure(t testing.TB) *sdkAzure {
	t.Helper()
	f := &sdkAzure{t: t, hits: map[string]int{}, openai: newSDKOpenAI(t, "azure-inner", "", false)}
	f.base = newFakeServer(t, http.HandlerFunc(f.serve)).URL
	return f
}

func (f *sdkAzure) count(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[op]
}

func (f *sdkAzure) serve(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		f.t.Errorf("fake Azure OpenAI: wrong request from aisix: %s", msg)
		azureError(w, status, fmt.Sprint(status), msg)
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/openai/deployments/")
	dep, op, _ := strings.Cut(rest, "/")
	switch {
	case r.Method != http.MethodPost || !ok || !strings.HasPrefix(dep, azureDeployment):
		refuse(http.StatusNotFound, "%s %s, want POST /openai/deployments/%s…/{embeddings,chat/completions}", r.Method, r.URL.Path, azureDeployment)
		return
	case r.URL.Query().Get("api-version") != azureAPIVersion:
		refuse(http.StatusNotFound, "query %q, want api-version=%s", r.URL.RawQuery, azureAPIVersion)
		return
	case r.Header.Get("Api-Key") != azureSecret || r.Header.Get("Authorization") != "":
		refuse(http.StatusUnauthorized, "api-key %q authorization %q, want the key's secret as api-key only", r.Header.Get("Api-Key"), r.Header.Get("Authorization"))
		return
	}
	f.mu.Lock()
	f.hits[op]++
	f.mu.Unlock()
	var body map[string]any
	raw, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		refuse(http.StatusBadRequest, "body is not JSON: %s", raw)
		return
	}
	switch op {
	case "embeddings":
		resp, bad := embedResponse(body, "text-embedding-3-small")
		if bad != "" {
			refuse(http.StatusBadRequest, "embeddings: %s", bad)
			return
		}
		writeJSON(w, resp)
	case "chat/completions":
		f.openai.chat(w, r, body)
	case "completions":
		f.openai.completions(w, r, body)
	default:
		refuse(http.StatusNotFound, "operation %q", op)
	}
}

// ---- a fake Anthropic API: Messages and count_tokens ----

// sdkAnthropic answers by model name: …-down is overloaded (529),
// …-ratelimited is rate limited (429, retry-after 7), any other answers
// (a text message, or the get_weather tool stream when streamed with
// tools). Requests are checked as providers_test.go's fake checks them.
type sdkAnthropic struct {
	t    testing.TB
	base string
	mu   sync.Mutex
	hits map[string]int // by route and model: "count_tokens claude-…"
}

func newSDKAnthropic(t testing.TB) *sdkAnthropic {
	t.Helper()
	f := &sdkAnthropic{t: t, hits: map[string]int{}}
	f.base = newFakeServer(t, http.HandlerFunc(f.serve)).URL
	return f
}

func (f *sdkAnthropic) count(key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits[key]
}

func (f *sdkAnthropic) serve(w http.ResponseWriter, r *http.Request) {
	refuse := func(status int, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		f.t.Errorf("fake Anthropic API: wrong request from aisix: %s", msg)
		anthropicError(w, status, "invalid_request_error", msg)
	}
	op := map[string]string{"/v1/messages": "messages", "/v1/messages/count_tokens": "count_tokens"}[r.URL.Path]
	switch {
	case r.Method != http.MethodPost || op == "":
		refuse(http.StatusNotFound, "%s %s, want POST /v1/messages or /v1/messages/count_tokens", r.Method, r.URL.Path)
		return
	case r.Header.Get("X-Api-Key") != anthropicSecret:
		refuse(http.StatusUnauthorized, "x-api-key %q, want the provider key's secret", r.Header.Get("X-Api-Key"))
		return
	case r.Header.Get("Anthropic-Version") != "2023-06-01":
		refuse(http.StatusBadRequest, "anthropic-version %q, want 2023-06-01", r.Header.Get("Anthropic-Version"))
		return
	case r.Header.Get("Authorization") != "":
		refuse(http.StatusBadRequest, "an Authorization header was sent; Anthropic takes x-api-key")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	c := &anthropicCall{header: r.Header.Clone(), body: body}
	if op == "count_tokens" {
		// The same body as Messages without max_tokens.
		var m map[string]any
		if json.Unmarshal(body, &m) != nil {
			refuse(http.StatusBadRequest, "count_tokens: body is not JSON")
			return
		}
		if _, ok := m["max_tokens"]; !ok {
			m["max_tokens"] = 1
		}
		fixed, _ := json.Marshal(m)
		if msg := checkMessagesBody(fixed, &c.req); msg != "" {
			refuse(http.StatusBadRequest, "count_tokens: %s: %s", msg, body)
			return
		}
	} else if msg := checkMessagesBody(body, &c.req); msg != "" {
		refuse(http.StatusBadRequest, "%s: %s", msg, body)
		return
	}
	f.mu.Lock()
	f.hits[op+" "+c.req.Model]++
	f.mu.Unlock()
	switch {
	case strings.HasSuffix(c.req.Model, "-down"):
		overloaded(w, c)
	case strings.HasSuffix(c.req.Model, "-ratelimited"):
		w.Header().Set("Retry-After", "7")
		anthropicError(w, http.StatusTooManyRequests, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit")
	case op == "count_tokens":
		writeJSON(w, map[string]any{"input_tokens": sdkCountTokens})
	case c.req.Stream && len(c.req.Tools) > 0:
		claudeToolStream(w, c)
	case c.req.Stream && strings.HasSuffix(c.req.Model, "-cut"):
		claudeCutStream(w, sdkContText, 4)
	case c.req.Stream && strings.HasSuffix(c.req.Model, "-cont"):
		claudeContinue(w, c)
	case c.req.Stream:
		claudeTextStream(w, sdkClaudeText)
	case len(c.req.Tools) > 0:
		claudeToolUse(w, c)
	default:
		claudeMessage(sdkClaudeText)(w, c)
	}
}

// claudeTextStream streams text in the reference's event order:
// message_start, content_block_start, ping, content_block_delta…,
// content_block_stop, message_delta (stop_reason, usage), message_stop.
func claudeTextStream(w http.ResponseWriter, text string) {
	s := newSDKSSE(w)
	claudeStreamStart(s, "msg_01SDKTextStream00000001", 25)
	s.send("ping", map[string]any{"type": "ping"})
	first, rest, _ := strings.Cut(text, " ")
	for _, d := range []string{first, " " + rest} {
		s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": d}})
	}
	s.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	s.send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 15}})
	s.send("message_stop", map[string]any{"type": "message_stop"})
}

// claudeStreamStart sends a Messages stream's message_start (with
// input tokens in) and the start of its text block at index 0.
func claudeStreamStart(s *sdkSSE, id string, in int) {
	s.send("message_start", map[string]any{"type": "message_start", "message": map[string]any{
		"id": id, "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil,
		"usage": map[string]any{"input_tokens": in, "output_tokens": 1},
	}})
	s.send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
}

// claudeCutStream streams text a word a delta, in the API's event order,
// and drops the connection after cut deltas.
func claudeCutStream(w http.ResponseWriter, text string, cut int) {
	s := newSDKSSE(w)
	claudeStreamStart(s, "msg_01SDKCutStream000000001", 25)
	for i, word := range strings.SplitAfter(text, " ") {
		if i == cut {
			panic(http.ErrAbortHandler)
		}
		s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": word}})
	}
}

// claudeContinue continues sdkContText from the request's assistant last
// turn (a prefill), as the API does: the answer goes on from the prefill's
// last character. A prefill that ends in whitespace is refused, as the API
// refuses it; one that is not the start of sdkContText is refused too (the
// fake knows only that answer).
func claudeContinue(w http.ResponseWriter, c *anthropicCall) {
	last := len(c.req.Messages) - 1
	bs, _ := c.req.blocks(last)
	prefill := ""
	for _, b := range bs {
		prefill += b.Text
	}
	switch {
	case c.req.Messages[last].Role != "assistant":
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "the -cont fake answers only a prefill")
		return
	case strings.TrimRight(prefill, " \t\n") != prefill:
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "messages: final assistant content cannot end with trailing whitespace")
		return
	case !strings.HasPrefix(sdkContText, prefill):
		anthropicError(w, http.StatusBadRequest, "invalid_request_error", "the -cont fake does not know this prefill")
		return
	}
	rest := sdkContText[len(prefill):]
	s := newSDKSSE(w)
	claudeStreamStart(s, "msg_01SDKContinue0000000001", 40)
	s.send("ping", map[string]any{"type": "ping"})
	for _, word := range strings.SplitAfter(rest, " ") {
		s.send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": word}})
	}
	s.send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
	s.send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil}, "usage": map[string]any{"output_tokens": 6}})
	s.send("message_stop", map[string]any{"type": "message_stop"})
}

// ---- the rig ----

// sdkRig is one gateway with the fakes and these models:
//
//	chat-prod     gpt-down-chat (OpenAI, 503)   -> gpt-up-chat (OpenAI)
//	embed-prod    gpt-down-embed (OpenAI, 503)  -> azure-embed (Azure)
//	embed-openai  gpt-down-embed2 (OpenAI, 503) -> gpt-up-embed (OpenAI)
//	instruct-prod gpt-down-instruct (503)       -> gpt-up-instruct (OpenAI)
//	resp-prod     gpt-down-resp (503)           -> gpt-up-resp (OpenAI)
//	resp-rr       round_robin over gpt-rr-a (openai-up) and gpt-rr-b (openai-up2)
//	claude-prod   claude-down (Anthropic, 529)  -> gpt-up-claude (OpenAI: translated)
//	claude-azure  claude-down-az (529)          -> azure-chat (Azure: translated)
//	instruct-azure gpt-down-instruct2 (503)     -> azure-instruct (Azure)
//	claude-pass   claude-down-pass (529)        -> claude-up (Anthropic: passed through)
//	embed-mixed   claude-noembed (Anthropic: no embeddings) -> gpt-up-embed
//	gpt-broken    (OpenAI: a stream that drops after its first content)
//	claude-continued claude-cut (Anthropic: drops after four words) -> claude-cont (continues the prefill), stream_failure continue
//	claude-limited (Anthropic, 429), claude-overloaded (Anthropic, 529)
//
// The …-down models never cool down: every request through their group
// tries them first and fails over, which the scripts check in
// x-aisix-attempts (AISIX_PRIMARY).
// The caller key sk-failover-demo may call every model; sk-sdk-limited
// only claude-pass.
type sdkRig struct {
	g             *gateway
	up, up2, down *sdkOpenAI
	azure         *sdkAzure
	anthropic     *sdkAnthropic
}

func newSDKRig(t *testing.T) *sdkRig {
	t.Helper()
	sdkSetup(t)
	rig := &sdkRig{
		up:        newSDKOpenAI(t, "openai-up", sdkUpSecret, false),
		up2:       newSDKOpenAI(t, "openai-up2", sdkUp2Secret, false),
		down:      newSDKOpenAI(t, "openai-down", sdkDownSecret, true),
		azure:     newSDKAzure(t),
		anthropic: newSDKAnthropic(t),
	}
	g := startGateway(t, serveOptions{})
	rig.g = g
	upPK := g.create(t, "provider_keys", map[string]any{"display_name": "openai-up", "provider": "openai", "adapter": "openai",
		"secret": sdkUpSecret, "api_base": rig.up.base})
	up2PK := g.create(t, "provider_keys", map[string]any{"display_name": "openai-up2", "provider": "openai", "adapter": "openai",
		"secret": sdkUp2Secret, "api_base": rig.up2.base})
	downPK := g.create(t, "provider_keys", map[string]any{"display_name": "openai-down", "provider": "openai", "adapter": "openai",
		"secret": sdkDownSecret, "api_base": rig.down.base})
	claudePK := strings.TrimSpace(g.cli(t, anthropicSecret, nil, "provider-key", "create", "--name", "anthropic-sdk",
		"--provider", "anthropic", "--adapter", "anthropic", "--api-base", rig.anthropic.base, "--secret-stdin", "-q"))
	azurePK := strings.TrimSpace(g.cli(t, "", []string{"AZURE_OPENAI_API_KEY=" + azureSecret}, "provider-key", "create", "--name", "azure-sdk",
		"--provider", "azure", "--adapter", "azure-openai", "--api-base", rig.azure.base, "--api-version", azureAPIVersion,
		"--secret-env", "AZURE_OPENAI_API_KEY", "-q"))
	// The failing primaries never cool down, so every request tries
	// them first and fails over.
	model := func(name, provider, upstream, pk string) {
		cooldown := map[string]any{"default_seconds": 600}
		if strings.Contains(name, "-down") {
			cooldown = map[string]any{"enabled": false}
		}
		g.create(t, "models", map[string]any{"display_name": name, "provider": provider, "model_name": upstream, "provider_key_id": pk,
			"timeout": 15000, "stream_timeout": 15000, "cooldown": cooldown})
	}
	routed := func(name, strategy string, targets ...string) {
		var ts []map[string]any
		for _, m := range targets {
			ts = append(ts, map[string]any{"model": m})
		}
		g.create(t, "models", map[string]any{"display_name": name,
			"routing": map[string]any{"strategy": strategy, "targets": ts, "retries": 0, "max_fallbacks": 1}})
	}
	group := func(name string, targets ...string) { routed(name, "failover", targets...) }
	model("gpt-down-chat", "openai", "gpt-4o-mini", downPK)
	model("gpt-up-chat", "openai", "gpt-4o-mini", upPK)
	group("chat-prod", "gpt-down-chat", "gpt-up-chat")
	model("gpt-down-embed", "openai", "text-embedding-3-small", downPK)
	model("azure-embed", "azure", azureDeployment+"-embed", azurePK)
	group("embed-prod", "gpt-down-embed", "azure-embed")
	model("gpt-down-embed2", "openai", "text-embedding-3-small", downPK)
	model("gpt-up-embed", "openai", "text-embedding-3-small", upPK)
	group("embed-openai", "gpt-down-embed2", "gpt-up-embed")
	model("gpt-down-instruct", "openai", "gpt-3.5-turbo-instruct", downPK)
	model("gpt-up-instruct", "openai", "gpt-3.5-turbo-instruct", upPK)
	group("instruct-prod", "gpt-down-instruct", "gpt-up-instruct")
	model("gpt-down-resp", "openai", "gpt-4o-mini", downPK)
	model("gpt-up-resp", "openai", "gpt-4o-mini", upPK)
	group("resp-prod", "gpt-down-resp", "gpt-up-resp")
	model("gpt-rr-a", "openai", "gpt-4o-mini", upPK)
	model("gpt-rr-b", "openai", "gpt-4o-mini", up2PK)
	routed("resp-rr", "round_robin", "gpt-rr-a", "gpt-rr-b")
	model("claude-down", "anthropic", claudeModel+"-down", claudePK)
	model("gpt-up-claude", "openai", "gpt-4o-mini", upPK)
	group("claude-prod", "claude-down", "gpt-up-claude")
	model("claude-down-az", "anthropic", claudeModel+"-az-down", claudePK)
	model("azure-chat", "azure", azureDeployment+"-chat", azurePK)
	group("claude-azure", "claude-down-az", "azure-chat")
	model("gpt-down-instruct2", "openai", "gpt-3.5-turbo-instruct", downPK)
	model("azure-instruct", "azure", azureDeployment+"-instruct", azurePK)
	group("instruct-azure", "gpt-down-instruct2", "azure-instruct")
	model("claude-down-pass", "anthropic", claudeModel+"-pass-down", claudePK)
	model("claude-up", "anthropic", claudeModel, claudePK)
	group("claude-pass", "claude-down-pass", "claude-up")
	model("claude-noembed", "anthropic", claudeModel, claudePK)
	group("embed-mixed", "claude-noembed", "gpt-up-embed")
	model("gpt-broken", "openai", "gpt-4o-mini-broken", upPK)
	model("claude-cut", "anthropic", claudeModel+"-cut", claudePK)
	model("claude-cont", "anthropic", claudeModel+"-cont", claudePK)
	g.create(t, "models", map[string]any{"display_name": "claude-continued", "routing": map[string]any{
		"targets":        []map[string]any{{"model": "claude-cut"}, {"model": "claude-cont"}},
		"stream_failure": map[string]any{"mode": "continue"}}})
	model("claude-limited", "anthropic", claudeModel+"-ratelimited", claudePK)
	model("claude-overloaded", "anthropic", claudeModel+"-overloaded-down", claudePK)
	g.createCallerKey(t, callerKey, "*")
	g.createCallerKey(t, sdkLimitedKey, "claude-pass")
	return rig
}

// triedDown fails the test unless the failing OpenAI upstream saw route.
func (rig *sdkRig) triedDown(t *testing.T, route string) {
	t.Helper()
	if rig.down.count(route) == 0 {
		t.Errorf("the failing primary never saw %s: no failover happened", route)
	}
}

// summaryString is a string field of a script's summary.
func summaryString(s map[string]any, k string) string { v, _ := s[k].(string); return v }

// ---- the tests ----

func TestSDKOpenAI(t *testing.T) {
	t.Parallel()
	rig := newSDKRig(t)
	t.Run("chat completions plain and stream", func(t *testing.T) {
		s := runSDK(t, rig.g, "openai-chat.mjs", "AISIX_MODEL=chat-prod", "AISIX_PRIMARY=gpt-down-chat", "AISIX_SERVED_BY=gpt-up-chat", "AISIX_EXPECT_TEXT="+sdkUpText)
		rig.triedDown(t, "POST /v1/chat/completions")
		if a := summaryString(s, "first_attempts"); !strings.Contains(a, "gpt-down-chat") {
			t.Errorf("the first call's x-aisix-attempts %q does not name the failed primary gpt-down-chat", a)
		}
	})
	t.Run("embeddings float base64 dimensions, OpenAI to Azure", func(t *testing.T) {
		runSDK(t, rig.g, "openai-embeddings.mjs", "AISIX_MODEL=embed-prod", "AISIX_PRIMARY=gpt-down-embed", "AISIX_SERVED_BY=azure-embed")
		rig.triedDown(t, "POST /v1/embeddings")
		if rig.azure.count("embeddings") == 0 {
			t.Errorf("Azure never saw an embeddings request")
		}
	})
	t.Run("embeddings float base64 dimensions, OpenAI to OpenAI", func(t *testing.T) {
		runSDK(t, rig.g, "openai-embeddings.mjs", "AISIX_MODEL=embed-openai", "AISIX_PRIMARY=gpt-down-embed2", "AISIX_SERVED_BY=gpt-up-embed")
		b := rig.up.lastBody("POST /v1/embeddings")
		if b == nil || b["model"] != "text-embedding-3-small" || b["dimensions"] != 3.0 || b["input"] != "short" {
			t.Errorf("the secondary's last embeddings body %v, want model text-embedding-3-small spliced in, input and dimensions kept", b)
		}
		var tokens []any
		for _, b := range rig.up.allBodies("POST /v1/embeddings") {
			if in, ok := b["input"].([]any); ok && len(in) == 2 {
				if _, ok := in[0].([]any); ok {
					tokens = in
				}
			}
		}
		if fmt.Sprint(tokens) != "[[9906 1917] [15339]]" {
			t.Errorf("the token-array input reached the upstream as %v, want [[9906 1917] [15339]]", tokens)
		}
	})
	t.Run("embeddings skip a target without embeddings", func(t *testing.T) {
		s := runSDK(t, rig.g, "openai-embeddings.mjs", "AISIX_MODEL=embed-mixed", "AISIX_PRIMARY=claude-noembed", "AISIX_SERVED_BY=gpt-up-embed")
		if a := summaryString(s, "first_attempts"); a != "claude-noembed=unsupported_endpoint,gpt-up-embed=200" {
			t.Errorf("x-aisix-attempts %q, want claude-noembed=unsupported_endpoint,gpt-up-embed=200", a)
		}
	})
	t.Run("typed errors on every endpoint", func(t *testing.T) {
		runSDK(t, rig.g, "openai-errors.mjs", "AISIX_LIMITED_KEY="+sdkLimitedKey, "AISIX_FORBIDDEN_MODEL=chat-prod",
			"AISIX_NO_EMBEDDINGS_MODEL=claude-noembed")
	})
	t.Run("legacy completions plain and stream", func(t *testing.T) {
		runSDK(t, rig.g, "openai-completions.mjs", "AISIX_MODEL=instruct-prod", "AISIX_PRIMARY=gpt-down-instruct", "AISIX_SERVED_BY=gpt-up-instruct", "AISIX_EXPECT_TEXT="+sdkUpText)
		rig.triedDown(t, "POST /v1/completions")
		if b := rig.up.lastBody("POST /v1/completions"); b == nil || b["model"] != "gpt-3.5-turbo-instruct" {
			t.Errorf("the secondary's last completions body %v, want model gpt-3.5-turbo-instruct spliced in", b)
		}
	})
	t.Run("legacy completions plain and stream, OpenAI to Azure", func(t *testing.T) {
		runSDK(t, rig.g, "openai-completions.mjs", "AISIX_MODEL=instruct-azure", "AISIX_PRIMARY=gpt-down-instruct2", "AISIX_SERVED_BY=azure-instruct", "AISIX_EXPECT_TEXT="+sdkUpText)
		if rig.azure.count("completions") < 2 {
			t.Errorf("Azure saw %d completions requests, want the plain and the streamed one", rig.azure.count("completions"))
		}
	})
	t.Run("responses plain, stream and previous_response_id", func(t *testing.T) {
		s := runSDK(t, rig.g, "openai-responses.mjs", "AISIX_MODEL=resp-prod", "AISIX_PRIMARY=gpt-down-resp", "AISIX_SERVED_BY=gpt-up-resp", "AISIX_EXPECT_TEXT="+sdkUpText)
		rig.triedDown(t, "POST /v1/responses")
		// The response object of every response.* event names the model
		// asked for, as the plain answer does.
		models, _ := s["stream_models"].(map[string]any)
		for _, ev := range []string{"response.created", "response.in_progress", "response.completed"} {
			if models[ev] != "resp-prod" {
				t.Errorf("%s: response.model %v, want resp-prod", ev, models[ev])
			}
		}
	})
	t.Run("responses previous_response_id sticks to its target under round_robin", func(t *testing.T) {
		runSDK(t, rig.g, "openai-responses-sticky.mjs", "AISIX_MODEL=resp-rr", "AISIX_TARGETS=gpt-rr-a,gpt-rr-b", "AISIX_EXPECT_TEXT="+sdkUpText)
	})
	t.Run("responses retrieve, cancel and delete reach the creating target", func(t *testing.T) {
		runSDK(t, rig.g, "openai-responses-byid.mjs", "AISIX_MODEL=resp-rr", "AISIX_EXPECT_TEXT="+sdkUpText, "AISIX_OTHER_KEY="+sdkLimitedKey)
		for _, route := range []string{"GET /v1/responses/{id}", "GET /v1/responses/{id}/input_items", "POST /v1/responses/{id}/cancel", "DELETE /v1/responses/{id}"} {
			if rig.up.count(route)+rig.up2.count(route) == 0 {
				t.Errorf("no upstream saw %s", route)
			}
		}
	})
}

func TestSDKAnthropic(t *testing.T) {
	t.Parallel()
	rig := newSDKRig(t)
	t.Run("messages translated from an OpenAI target during failover", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-messages.mjs", "AISIX_MODEL=claude-prod", "AISIX_PRIMARY=claude-down", "AISIX_SERVED_BY=gpt-up-claude",
			"AISIX_EXPECT_TEXT="+sdkUpText, "AISIX_TOOL_INPUT="+`{"location":"Paris","unit":"celsius"}`)
		if rig.anthropic.count("messages "+claudeModel+"-down") == 0 {
			t.Errorf("the failing Anthropic primary never saw a request: no failover happened")
		}
		if b := rig.up.lastBody("POST /v1/chat/completions"); b == nil || b["model"] != "gpt-4o-mini" {
			t.Errorf("the OpenAI target's last chat body %v, want a chat completion for gpt-4o-mini", b)
		}
	})
	t.Run("messages translated from an Azure target during failover", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-messages.mjs", "AISIX_MODEL=claude-azure", "AISIX_PRIMARY=claude-down-az", "AISIX_SERVED_BY=azure-chat",
			"AISIX_EXPECT_TEXT="+sdkUpText, "AISIX_TOOL_INPUT="+`{"location":"Paris","unit":"celsius"}`)
		if rig.azure.count("chat/completions") < 3 {
			t.Errorf("Azure saw %d chat requests, want the plain, the text stream and the tool stream", rig.azure.count("chat/completions"))
		}
	})
	t.Run("messages passed through to an Anthropic target during failover", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-messages.mjs", "AISIX_MODEL=claude-pass", "AISIX_PRIMARY=claude-down-pass", "AISIX_SERVED_BY=claude-up",
			"AISIX_EXPECT_TEXT="+sdkClaudeText, "AISIX_TOOL_INPUT="+`{"location":"San Francisco, CA","unit":"celsius"}`,
			"AISIX_AUTH=bearer")
		if rig.anthropic.count("messages "+claudeModel+"-pass-down") == 0 {
			t.Errorf("the failing Anthropic primary never saw a request: no failover happened")
		}
	})
	t.Run("a tool call and its result, translated", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-tools.mjs", "AISIX_MODEL=claude-prod", "AISIX_PRIMARY=claude-down", "AISIX_SERVED_BY=gpt-up-claude",
			"AISIX_TOOL_INPUT="+`{"location":"Paris","unit":"celsius"}`, "AISIX_TOOL_ANSWER="+sdkToolAnswer)
	})
	t.Run("a tool call and its result, passed through", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-tools.mjs", "AISIX_MODEL=claude-pass", "AISIX_PRIMARY=claude-down-pass", "AISIX_SERVED_BY=claude-up",
			"AISIX_TOOL_INPUT="+`{"location":"San Francisco, CA","unit":"celsius"}`, "AISIX_TOOL_ANSWER=It is 18 °C and sunny in San Francisco.")
	})
	t.Run("a translated stream that breaks after content ends with an error event", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-stream-error.mjs", "AISIX_MODEL=gpt-broken", "AISIX_SERVED_BY=gpt-broken")
	})
	t.Run("a stream cut mid-answer continued on the next target", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-continued.mjs", "AISIX_MODEL=claude-continued", "AISIX_SERVED_BY=claude-cut",
			"AISIX_EXPECT_TEXT="+sdkContText)
		if rig.anthropic.count("messages "+claudeModel+"-cont") != 1 {
			t.Errorf("claude-cont saw %d requests, want the one continuation", rig.anthropic.count("messages "+claudeModel+"-cont"))
		}
	})
	t.Run("count_tokens from Anthropic and estimated for OpenAI", func(t *testing.T) {
		runSDK(t, rig.g, "anthropic-count-tokens.mjs", "AISIX_MODEL=claude-pass", "AISIX_PRIMARY=claude-down-pass", "AISIX_SERVED_BY=claude-up", "AISIX_ESTIMATE_MODEL=chat-prod", "AISIX_MIXED_MODEL=claude-prod",
			fmt.Sprintf("AISIX_UPSTREAM_COUNT=%d", sdkCountTokens))
		if rig.anthropic.count("count_tokens "+claudeModel) == 0 {
			t.Errorf("the Anthropic target never saw count_tokens")
		}
	})
	for _, name := range []string{"bad_request", "authentication", "permission", "not_found", "rate_limit", "overloaded"} {
		t.Run("typed error "+name, func(t *testing.T) {
			runSDK(t, rig.g, "anthropic-errors.mjs", "AISIX_ERROR_CASE="+name, "AISIX_LIMITED_KEY="+sdkLimitedKey,
				"AISIX_FORBIDDEN_MODEL=claude-prod", "AISIX_RATE_LIMITED_MODEL=claude-limited", "AISIX_OVERLOADED_MODEL=claude-overloaded")
		})
	}
}
