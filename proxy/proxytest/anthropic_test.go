package proxytest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/anthropic"
	"github.com/aisix/aisix/proxy/proxytest"
)

func postAnthropic(t *testing.T, ctx context.Context, u *proxytest.AnthropicUpstream, path, body string, header ...string) (*http.Response, string, error) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u.URL()+path, strings.NewReader(body))
	req.Header.Set("X-Api-Key", "sk-ant-test")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

type sse struct{ name, data string }

func parseSSE(t *testing.T, body string) []sse {
	t.Helper()
	r := provider.NewSSEReader(bufio.NewReader(strings.NewReader(body)), 0)
	var out []sse
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("SSE: %v", err)
		}
		var probe struct{ Type string }
		if err := json.Unmarshal(ev.Data, &probe); err != nil {
			t.Fatalf("event %s data %s: %v", ev.Name, ev.Data, err)
		}
		if probe.Type != string(ev.Name) {
			t.Errorf("event %s has data type %q", ev.Name, probe.Type)
		}
		out = append(out, sse{string(ev.Name), string(ev.Data)})
	}
}

func names(evs []sse) string {
	var n []string
	for _, e := range evs {
		n = append(n, e.name)
	}
	return strings.Join(n, ",")
}

const anthropicPlain = `{"model":"claude-haiku-4-5","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
const anthropicStream = `{"model":"claude-haiku-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`

func TestAnthropicMessage(t *testing.T) {
	u := proxytest.NewAnthropic("fake", proxytest.AnthropicOK(), proxytest.AnthropicThinking("hmm", "yes"),
		proxytest.AnthropicToolUse("", proxytest.AnthropicTool{ID: "toolu_1", Name: "get_weather", Input: `{"city":"Paris"}`}))
	defer u.Close()
	ctx := context.Background()
	var m struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Role       string `json:"role"`
		Model      string `json:"model"`
		StopReason string `json:"stop_reason"`
		Content    []struct {
			Type, Text, Thinking, ID, Name string
			Input                          json.RawMessage
		} `json:"content"`
		Usage map[string]int `json:"usage"`
	}
	decode := func(body string) {
		t.Helper()
		m.Content = nil
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
	}
	resp, body, err := postAnthropic(t, ctx, u, "/v1/messages", anthropicPlain)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("status %v %v %s", resp, err, body)
	}
	decode(body)
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.Model != "claude-haiku-4-5" ||
		m.StopReason != "end_turn" || len(m.Content) != 1 || m.Content[0].Text != "hello from fake" || m.Usage["input_tokens"] != 10 {
		t.Errorf("message = %+v (%s)", m, body)
	}
	if resp.Header.Get("Request-Id") == "" {
		t.Error("no request-id")
	}
	_, body, _ = postAnthropic(t, ctx, u, "/v1/messages", anthropicPlain)
	decode(body)
	if len(m.Content) != 2 || m.Content[0].Type != "thinking" || m.Content[0].Thinking != "hmm" || m.Content[1].Text != "yes" {
		t.Errorf("thinking message = %s", body)
	}
	_, body, _ = postAnthropic(t, ctx, u, "/v1/messages", anthropicPlain)
	decode(body)
	if m.StopReason != "tool_use" || len(m.Content) != 1 || m.Content[0].Type != "tool_use" || m.Content[0].ID != "toolu_1" ||
		m.Content[0].Name != "get_weather" || string(m.Content[0].Input) != `{"city":"Paris"}` {
		t.Errorf("tool message = %s", body)
	}
	reqs := u.Requests()
	if len(reqs) != 3 || reqs[0].Model != "claude-haiku-4-5" || reqs[0].Header.Get("X-Api-Key") != "sk-ant-test" {
		t.Errorf("requests = %+v", reqs)
	}
}

func TestAnthropicErrors(t *testing.T) {
	tests := []struct {
		name     string
		b        proxytest.Behavior
		header   []string
		path     string
		wantCode int
		wantType string
		wantHdr  [2]string
	}{
		{name: "rate limited", b: proxytest.AnthropicRateLimited("7"), wantCode: 429, wantType: "rate_limit_error", wantHdr: [2]string{"Retry-After", "7"}},
		{name: "overloaded", b: proxytest.AnthropicOverloaded(), wantCode: 529, wantType: "overloaded_error"},
		{name: "auth", b: proxytest.AnthropicAuthError(), wantCode: 401, wantType: "authentication_error"},
		{name: "permission", b: proxytest.AnthropicPermissionError(), wantCode: 403, wantType: "permission_error"},
		{name: "not found", b: proxytest.AnthropicNotFound(), wantCode: 404, wantType: "not_found_error"},
		{name: "too long", b: proxytest.AnthropicPromptTooLong(), wantCode: 400, wantType: "invalid_request_error"},
		{name: "server", b: proxytest.AnthropicServerError(), wantCode: 500, wantType: "api_error"},
		{name: "no key", b: proxytest.AnthropicOK(), header: []string{"X-Api-Key", ""}, wantCode: 401, wantType: "authentication_error"},
		{name: "no version", b: proxytest.AnthropicOK(), header: []string{"Anthropic-Version", ""}, wantCode: 400, wantType: "invalid_request_error"},
		{name: "wrong path", b: proxytest.AnthropicOK(), path: "/v1/chat/completions", wantCode: 404, wantType: "not_found_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := proxytest.NewAnthropic("fake", tt.b)
			defer u.Close()
			path := tt.path
			if path == "" {
				path = "/v1/messages"
			}
			resp, body, err := postAnthropic(t, context.Background(), u, path, anthropicPlain, tt.header...)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", resp.StatusCode, tt.wantCode)
			}
			var env struct {
				Type  string
				Error struct{ Type, Message string }
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || env.Type != "error" || env.Error.Type != tt.wantType || env.Error.Message == "" {
				t.Errorf("body = %s (%v)", body, err)
			}
			if tt.wantHdr[0] != "" && resp.Header.Get(tt.wantHdr[0]) != tt.wantHdr[1] {
				t.Errorf("%s = %q", tt.wantHdr[0], resp.Header.Get(tt.wantHdr[0]))
			}
		})
	}
	u := proxytest.NewAnthropic("fake")
	u.Key = "sk-ant-right"
	defer u.Close()
	if resp, _, _ := postAnthropic(t, context.Background(), u, "/v1/messages", anthropicPlain); resp.StatusCode != 401 || u.Hits() != 0 {
		t.Errorf("wrong key: %d, %d hits", resp.StatusCode, u.Hits())
	}
}

func TestAnthropicStream(t *testing.T) {
	u := proxytest.NewAnthropic("fake", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{
		Thinking: "think hard", Ping: true,
		Tools: []proxytest.AnthropicTool{
			{ID: "toolu_1", Name: "a", Input: `{"x":1}`, Fragments: []string{`{"x":`, `1}`}},
			{ID: "toolu_2", Name: "b", Input: `{}`},
		},
	}))
	defer u.Close()
	resp, body, err := postAnthropic(t, context.Background(), u, "/v1/messages", anthropicStream)
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%v %v", resp, err)
	}
	evs := parseSSE(t, body)
	want := "message_start,ping," +
		"content_block_start,content_block_delta,content_block_delta,content_block_delta,content_block_stop,ping," +
		"content_block_start,content_block_delta,content_block_delta,content_block_delta,content_block_stop,ping," +
		"content_block_start,content_block_delta,content_block_delta,content_block_delta,content_block_stop,ping," +
		"content_block_start,content_block_delta,content_block_delta,content_block_stop,ping," +
		"message_delta,message_stop"
	if got := names(evs); got != want {
		t.Errorf("events\n got %s\nwant %s", got, want)
	}
	for _, s := range []string{`"thinking_delta"`, `"signature_delta"`, `"text_delta"`, `"input_json_delta"`, `"stop_reason":"tool_use"`, `"id":"toolu_2"`} {
		if !strings.Contains(body, s) {
			t.Errorf("stream lacks %s", s)
		}
	}

	// The stream translates end to end: no error, content seen, [DONE] last.
	st := anthropic.NewStream("alias", 1, true)
	var out []byte
	content, done := 0, false
	for _, e := range evs {
		var ev anthropic.EventInfo
		out, ev, err = st.Event(out, []byte(e.name), []byte(e.data))
		if err != nil {
			t.Fatalf("translate %s: %v", e.name, err)
		}
		if ev.Content {
			content++
		}
		done = done || ev.Done
	}
	if !done || content != 10 || !strings.HasSuffix(string(out), "data: [DONE]\n\n") {
		t.Errorf("translated: done=%v content=%d\n%s", done, content, out)
	}
}

func TestAnthropicStreamFaults(t *testing.T) {
	ctx := context.Background()
	u := proxytest.NewAnthropic("fake",
		proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 2}),
		proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{CutAfter: 1}),
		proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{StallAfter: 1}),
	)
	defer u.Close()
	_, body, err := postAnthropic(t, ctx, u, "/v1/messages", anthropicStream)
	if err != nil {
		t.Fatal(err)
	}
	evs := parseSSE(t, body)
	last := evs[len(evs)-1]
	if last.name != "error" || !strings.Contains(last.data, `"overloaded_error"`) || strings.Contains(body, "message_stop") {
		t.Errorf("in-band error stream = %s", body)
	}

	_, body, err = postAnthropic(t, ctx, u, "/v1/messages", anthropicStream)
	if err == nil || strings.Contains(body, "message_stop") {
		t.Errorf("cut stream: err = %v, body %s", err, body)
	}

	ctx2, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, body, err = postAnthropic(t, ctx2, u, "/v1/messages", anthropicStream)
	if err == nil || time.Since(start) < 250*time.Millisecond || !strings.Contains(body, "text_delta") {
		t.Errorf("stall: err = %v after %v, body %s", err, time.Since(start), body)
	}
}

func TestAnthropicStreamFaultsBeforeContent(t *testing.T) {
	ctx := context.Background()
	u := proxytest.NewAnthropic("fake",
		proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{StallBeforeContent: true, Ping: true, PingEvery: 10 * time.Millisecond}),
		proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{CutBeforeContent: true}),
		proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{MalformedAt: 1}),
	)
	defer u.Close()

	ctx1, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	_, body, err := postAnthropic(t, ctx1, u, "/v1/messages", anthropicStream)
	if err == nil || !strings.HasPrefix(body, "event: message_start\n") || strings.Count(body, "event: ping\n") < 2 ||
		strings.Contains(body, "content_block") {
		t.Errorf("stall before content: err = %v, body %s", err, body)
	}

	_, body, err = postAnthropic(t, ctx, u, "/v1/messages", anthropicStream)
	if err == nil || !strings.Contains(body, "content_block_start") || strings.Contains(body, "content_block_delta") {
		t.Errorf("cut before content: err = %v, body %s", err, body)
	}

	_, body, err = postAnthropic(t, ctx, u, "/v1/messages", anthropicStream)
	if err != nil || !strings.Contains(body, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\n\n") ||
		!strings.Contains(body, `"text":" from"`) || !strings.Contains(body, "message_stop") {
		t.Errorf("malformed first delta: err = %v, body %s", err, body)
	}
}
