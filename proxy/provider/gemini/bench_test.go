package gemini

import (
	"os"
	"testing"
)

func BenchmarkTranslateRequest(b *testing.B) {
	body, err := os.ReadFile("testdata/request/tools.openai.json")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := TranslateRequest(body, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamChunk is the per-chunk cost of a text stream: one
// GenerateContentResponse with one text part in, one content chunk out.
func BenchmarkStreamChunk(b *testing.B) {
	data := []byte(`{"candidates": [{"content": {"parts": [{"text": " the quick brown fox"}],"role": "model"},"index": 0}],"usageMetadata": {"promptTokenCount": 8,"totalTokenCount": 8},"modelVersion": "gemini-2.5-flash","responseId": "s1"}`)
	s := NewStream("chat-prod", 1700000000, false)
	dst, _, _ := s.Event(nil, nil, data)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		var err error
		if dst, _, err = s.Event(dst[:0], nil, data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTranslateResponse(b *testing.B) {
	body, err := os.ReadFile("testdata/response/tools.gemini.json")
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
