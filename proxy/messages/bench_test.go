package messages

import (
	"os"
	"testing"
)

// BenchmarkToChat: the Claude Code fixture (system blocks, two tools, a
// tool loop, thinking).
func BenchmarkToChat(b *testing.B) {
	body, err := os.ReadFile("testdata/request/claude_code.anthropic.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, _, err := ToChat(body, "gpt-5", ToChatOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCountTokensEstimate(b *testing.B) {
	body, err := os.ReadFile("testdata/request/claude_code.anthropic.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CountTokensEstimate(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFromChat(b *testing.B) {
	body, err := os.ReadFile("testdata/response/tools.openai.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := FromChat(body, "claude-sonnet-4-5"); err != nil {
			b.Fatal(err)
		}
	}
}

func benchStream(b *testing.B, first, data string) {
	s := NewStream("claude-sonnet-4-5", 1234)
	dst, _, err := s.Event(nil, []byte(first))
	if err != nil {
		b.Fatal(err)
	}
	d := []byte(data)
	b.ReportAllocs()
	b.SetBytes(int64(len(d)))
	for b.Loop() {
		dst, _, err = s.Event(dst[:0], d)
		if err != nil {
			b.Fatal(err)
		}
	}
}

const benchHead = `{"id":"chatcmpl-CKxTools","object":"chat.completion.chunk","created":1759277000,"model":"gpt-4.1-2025-04-14","service_tier":"default","system_fingerprint":"fp_3f58d112f7","choices":[{"index":0,`

// BenchmarkStreamEventText: one text chunk on an open text block, the hot
// path.
func BenchmarkStreamEventText(b *testing.B) {
	benchStream(b, benchHead+`"delta":{"role":"assistant","content":"Hi"},"logprobs":null,"finish_reason":null}],"usage":null}`,
		benchHead+`"delta":{"content":" the weather in"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"Jq3"}`)
}

// BenchmarkStreamEventTool: one arguments chunk on an open tool block.
func BenchmarkStreamEventTool(b *testing.B) {
	benchStream(b, benchHead+`"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"logprobs":null,"finish_reason":null}],"usage":null}`,
		benchHead+`"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}`)
}
