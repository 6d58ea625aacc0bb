package proxytest_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/proxytest"
)

// postPath posts body to the upstream's path under /v1 and returns the
// answer.
func postPath(t *testing.T, u *proxytest.Upstream, path, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(u.BaseURL()+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type event struct{ name, data string }

func events(t *testing.T, s string) []event {
	t.Helper()
	var out []event
	var cur event
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.data != "" {
				out = append(out, cur)
			}
			cur = event{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		}
	}
	return out
}

func TestEndpointPaths(t *testing.T) {
	u := proxytest.New("up")
	defer u.Close()
	for _, p := range []string{"/chat/completions", "/completions", "/embeddings", "/responses"} {
		body := `{"model":"m","input":"x","prompt":"x","messages":[]}`
		if code, b := postPath(t, u, p, body); code != 200 {
			t.Errorf("%s: %d %s", p, code, b)
		}
	}
	if code, _ := postPath(t, u, "/images/generations", `{}`); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	reqs := u.Requests()
	want := []string{proxytest.EndpointChat, proxytest.EndpointCompletions, proxytest.EndpointEmbeddings, proxytest.EndpointResponses}
	for i, r := range reqs {
		if r.Endpoint != want[i] || r.Path != "/v1/"+want[i] {
			t.Errorf("request %d: %s %s", i, r.Endpoint, r.Path)
		}
	}
}

func TestEmbedding(t *testing.T) {
	u := proxytest.New("up")
	defer u.Close()
	type list struct {
		Object string `json:"object"`
		Model  string `json:"model"`
		Data   []struct {
			Object    string          `json:"object"`
			Index     int             `json:"index"`
			Embedding json.RawMessage `json:"embedding"`
		} `json:"data"`
		Usage map[string]int `json:"usage"`
	}
	for _, tt := range []struct {
		input string
		n     int
	}{{`"a"`, 1}, {`["a","b"]`, 2}, {`[1,2,3]`, 1}, {`[[1,2],[3],[4]]`, 3}} {
		code, b := postPath(t, u, "/embeddings", `{"model":"m","input":`+tt.input+`}`)
		var l list
		if code != 200 || json.Unmarshal([]byte(b), &l) != nil || l.Object != "list" || l.Model != "m" || len(l.Data) != tt.n ||
			l.Usage["prompt_tokens"] < 1 || l.Usage["total_tokens"] < 1 {
			t.Errorf("%s: %d %s", tt.input, code, b)
			continue
		}
		for i, d := range l.Data {
			var v []float32
			if json.Unmarshal(d.Embedding, &v) != nil || len(v) != proxytest.DefaultDimensions || d.Index != i || d.Object != "embedding" || v[1] != proxytest.EmbeddingValue(i, 1) {
				t.Errorf("%s data[%d]: %s", tt.input, i, d.Embedding)
			}
		}
	}
	_, b := postPath(t, u, "/embeddings", `{"model":"m","input":"a","encoding_format":"base64","dimensions":5}`)
	var l list
	_ = json.Unmarshal([]byte(b), &l)
	var s string
	if len(l.Data) != 1 || json.Unmarshal(l.Data[0].Embedding, &s) != nil {
		t.Fatalf("base64: %s", b)
	}
	if raw, err := base64.StdEncoding.DecodeString(s); err != nil || len(raw) != 20 {
		t.Errorf("base64 %q: %v, %d bytes", s, err, len(raw))
	}
	if code, _ := postPath(t, u, "/embeddings", `{"model":"m"}`); code != 400 {
		t.Errorf("no input: %d", code)
	}
}

func TestTextCompletion(t *testing.T) {
	u := proxytest.New("up")
	defer u.Close()
	_, b := postPath(t, u, "/completions", `{"model":"m","prompt":"p"}`)
	if !strings.Contains(b, `"object":"text_completion"`) || !strings.Contains(b, `"text":"hello from up"`) || !strings.Contains(b, `"finish_reason":"stop"`) {
		t.Errorf("plain: %s", b)
	}
	_, b = postPath(t, u, "/completions", `{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}`)
	evs := events(t, b)
	if len(evs) != 6 || evs[5].data != "[DONE]" {
		t.Fatalf("stream: %s", b)
	}
	var text strings.Builder
	for i, ev := range evs[:5] {
		var c struct {
			Object  string `json:"object"`
			Model   string `json:"model"`
			Choices []struct {
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage map[string]int `json:"usage"`
		}
		if json.Unmarshal([]byte(ev.data), &c) != nil || c.Object != "text_completion" || c.Model != "m" {
			t.Fatalf("chunk %d: %s", i, ev.data)
		}
		switch i {
		case 3:
			if len(c.Choices) != 1 || c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "stop" {
				t.Errorf("finish chunk: %s", ev.data)
			}
		case 4:
			if len(c.Choices) != 0 || c.Usage["total_tokens"] == 0 {
				t.Errorf("usage chunk: %s", ev.data)
			}
		default:
			if c.Choices[0].FinishReason != nil {
				t.Errorf("chunk %d finishes: %s", i, ev.data)
			}
			text.WriteString(c.Choices[0].Text)
		}
	}
	if text.String() != "hello from up" {
		t.Errorf("text %q", text.String())
	}
}

var responseOrder = []string{
	"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
	"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
	"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
}

func TestResponses(t *testing.T) {
	u := proxytest.New("up")
	defer u.Close()
	_, b := postPath(t, u, "/responses", `{"model":"m","input":"hi"}`)
	var r struct {
		ID, Object, Status, Model string
		Output                    []struct {
			Type, Role string
			Content    []struct{ Type, Text string }
		}
		Usage map[string]any
	}
	if json.Unmarshal([]byte(b), &r) != nil || r.ID != "resp_up" || r.Object != "response" || r.Status != "completed" || r.Model != "m" ||
		len(r.Output) != 1 || r.Output[0].Type != "message" || r.Output[0].Content[0].Type != "output_text" ||
		r.Output[0].Content[0].Text != "hello from up" || r.Usage["total_tokens"] != 19.0 {
		t.Errorf("plain: %s", b)
	}

	_, b = postPath(t, u, "/responses", `{"model":"m","input":"hi","stream":true}`)
	evs := events(t, b)
	var got []string
	var text strings.Builder
	for i, ev := range evs {
		got = append(got, ev.name)
		var m map[string]any
		if json.Unmarshal([]byte(ev.data), &m) != nil || m["type"] != ev.name || m["sequence_number"] != float64(i) {
			t.Errorf("event %d %s: %s", i, ev.name, ev.data)
		}
		if ev.name == "response.output_text.delta" {
			text.WriteString(m["delta"].(string))
		}
		if ev.name == "response.completed" && m["response"].(map[string]any)["status"] != "completed" {
			t.Errorf("completed: %s", ev.data)
		}
	}
	if !reflect.DeepEqual(got, responseOrder) || text.String() != "hello from up" {
		t.Errorf("stream %v %q", got, text.String())
	}

	for _, tt := range []struct {
		o    proxytest.ResponseStreamOptions
		last string
		n    int
	}{
		{proxytest.ResponseStreamOptions{FailedAt: 1}, "response.failed", 5},
		{proxytest.ResponseStreamOptions{ErrorAt: 2, ErrorCode: "rate_limit_exceeded"}, "error", 6},
		{proxytest.ResponseStreamOptions{Incomplete: true}, "response.incomplete", 11},
	} {
		u.Script(proxytest.ResponseStream(tt.o))
		_, b = postPath(t, u, "/responses", `{"model":"m","input":"hi","stream":true}`)
		evs := events(t, b)
		if len(evs) != tt.n || evs[len(evs)-1].name != tt.last {
			t.Errorf("%+v: %v", tt.o, evs)
			continue
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(evs[len(evs)-1].data), &m)
		switch tt.last {
		case "response.failed":
			resp := m["response"].(map[string]any)
			if e, _ := resp["error"].(map[string]any); resp["status"] != "failed" || e["code"] != "server_error" || e["message"] == "" {
				t.Errorf("failed: %s", evs[len(evs)-1].data)
			}
		case "error":
			if _, ok := m["param"]; !ok || m["code"] != "rate_limit_exceeded" || m["message"] == "" {
				t.Errorf("error: %s", evs[len(evs)-1].data)
			}
		}
	}
	u.Script(proxytest.ResponseStream(proxytest.ResponseStreamOptions{CutAfter: 1}))
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, u.BaseURL()+"/responses", strings.NewReader(`{"model":"m","stream":true}`))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("a cut stream ended cleanly")
	}
}

func TestAnthropicCountTokens(t *testing.T) {
	u := proxytest.NewAnthropic("claude", proxytest.AnthropicOK(), proxytest.AnthropicCountTokens(42))
	defer u.Close()
	for _, want := range []string{`{"input_tokens":10}`, `{"input_tokens":42}`} {
		resp, body, err := postAnthropic(t, context.Background(), u, "/v1/messages/count_tokens", `{"model":"c","messages":[{"role":"user","content":"hi"}]}`,
			"X-Api-Key", "k", "Anthropic-Version", "2023-06-01")
		if err != nil || resp.StatusCode != 200 || body != want {
			t.Errorf("count_tokens: %v %s, want %s", err, body, want)
		}
	}
	if r := u.Requests()[1]; r.Path != "/v1/messages/count_tokens" || r.Endpoint != proxytest.EndpointCountTokens {
		t.Errorf("recorded %s %s", r.Path, r.Endpoint)
	}
}
