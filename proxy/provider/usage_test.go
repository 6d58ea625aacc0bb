package provider

import (
	"net/url"
	"testing"
)

func TestScanUsage(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		want       Usage
		ok         bool
	}{
		{"chat", `{"id":"x","choices":[{"message":{"content":"\"usage\":{\"prompt_tokens\":99}"}}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":4},"completion_tokens_details":{"reasoning_tokens":2}}}`,
			Usage{Input: 12, Output: 5, Cached: 4, Reasoning: 2}, true},
		{"embeddings", `{"object":"list","data":[],"usage":{"prompt_tokens":8,"total_tokens":8}}`, Usage{Input: 8}, true},
		{"responses", `{"type":"response.completed","response":{"usage":{"input_tokens":20,"input_tokens_details":{"cached_tokens":3},"output_tokens":7,"output_tokens_details":{"reasoning_tokens":1}}}}`,
			Usage{Input: 20, Output: 7, Cached: 3, Reasoning: 1}, true},
		{"anthropic", `{"type":"message","usage":{"input_tokens":10,"cache_read_input_tokens":30,"cache_creation_input_tokens":5,"output_tokens":9}}`,
			Usage{Input: 45, Output: 9, Cached: 30}, true},
		{"spaced", `{"usage" : { "prompt_tokens" : 1 , "completion_tokens" : 2 } }`, Usage{Input: 1, Output: 2}, true},
		{"null", `{"choices":[],"usage":null}`, Usage{}, false},
		{"none", `{"choices":[]}`, Usage{}, false},
		{"key in string only", `{"content":"\"usage\":{}"}`, Usage{}, false},
		{"truncated", `{"usage":{"prompt_tokens":1`, Usage{}, false},
	} {
		got, ok := ScanUsage([]byte(tc.body))
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: got %+v %v, want %+v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

// TestOpenAIUsageStream: the usage chunk the gateway asked for is counted
// and not relayed, and the "usage":null of the other chunks is taken out.
func TestOpenAIUsageStream(t *testing.T) {
	alias := &Alias{Name: "chat-prod", JSON: []byte(`"chat-prod"`)}
	body := []byte(`{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}`)
	req, err := ParseRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	e := NewOpenAI(OpenAIConfig{URLs: OpenAIURLs(mustURL(t, "http://up/v1")), ModelJSON: []byte(`"m"`), RequestUsage: true})
	in := &Inbound{Op: OpChat, Body: body, Req: &req}
	up, err := e.Body(in)
	if err != nil || string(up) != `{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}}` {
		t.Fatalf("body %s %v", up, err)
	}
	dec := e.Stream(in, alias)
	out, info, err := dec.Event(nil, nil, []byte(`{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}],"usage":null}`))
	if err != nil || !info.Content || string(out) != `data: {"id":"c","object":"chat.completion.chunk","model":"chat-prod","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`+"\n\n" {
		t.Errorf("content chunk: %q %+v %v", out, info, err)
	}
	out, info, err = dec.Event(out[:0], nil, []byte(`{"id":"c","object":"chat.completion.chunk","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`))
	if err != nil || len(out) != 0 || info.Usage != (Usage{Input: 3, Output: 1}) {
		t.Errorf("usage chunk: %q %+v %v", out, info, err)
	}
	// A caller that set stream_options is left alone.
	body = []byte(`{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}`)
	req, _ = ParseRequest(body)
	in = &Inbound{Op: OpChat, Body: body, Req: &req}
	if up, _ := e.Body(in); string(up) != string(body) || !req.IncludeUsage {
		t.Errorf("caller's own stream_options: %s", up)
	}
	out, info, _ = e.Stream(in, alias).Event(nil, nil, []byte(`{"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}`))
	if len(out) == 0 || info.Usage.Input != 3 {
		t.Errorf("asked-for usage chunk: %q %+v", out, info)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func BenchmarkScanUsage(b *testing.B) {
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello there"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if u, ok := ScanUsage(body); !ok || u.Input != 10 {
			b.Fatal(u)
		}
	}
}
