package anthropic

import (
	"os"
	"testing"
)

// BenchmarkTranslateRequest: a chat body with a system prompt, two turns
// and a tool.
func BenchmarkTranslateRequest(b *testing.B) {
	body := []byte(`{"model":"chat-prod","messages":[{"role":"system","content":"You are a helpful assistant."},` +
		`{"role":"user","content":"Say hello, and tell me something interesting about the number 42 in one sentence."}],` +
		`"temperature":0.7,"max_tokens":256,"stream":false,"tools":[{"type":"function","function":{"name":"lookup",` +
		`"description":"Look something up","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}]}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := TranslateRequest(body, "claude-sonnet-4-5", false, RequestOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamEvent: one text_delta event on a started stream, the
// common case on the hot path.
func BenchmarkStreamEvent(b *testing.B) {
	s := NewStream("chat-prod", 1767225600, true)
	dst, _, err := s.Event(nil, nil, []byte(msgStart))
	if err != nil {
		b.Fatal(err)
	}
	name := []byte("content_block_delta")
	data := []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, how are"}}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		dst, _, err = s.Event(dst[:0], name, data)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateResponse: a text answer with usage.
func BenchmarkTranslateResponse(b *testing.B) {
	body, err := os.ReadFile("testdata/response/tools.anthropic.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := TranslateResponse(body, "chat-prod", 1); err != nil {
			b.Fatal(err)
		}
	}
}
