package vertex_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/anthropic"
	"github.com/aisix/aisix/proxy/provider/gemini"
)

// BenchmarkClaudeRequest is the per-attempt cost of a Claude on Vertex
// request: the chat body translated and the request built with the
// cached service-account token (a lock-free read).
func BenchmarkClaudeRequest(b *testing.B) {
	g := newOAuth(b)
	e := claude(b, saAuth(b, g, ""))
	body := `{"model":"chat","stream":true,"max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello in three languages."}]}`
	in := inbound(b, provider.OpChat, body, http.Header{"User-Agent": {"bench"}})
	ctx := context.Background()
	if _, err := e.NewRequest(ctx, in, nil); err != nil { // the one token fetch
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		up, err := e.Body(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.NewRequest(ctx, in, up); err != nil {
			b.Fatal(err)
		}
	}
	if g.Hits() != 1 {
		b.Errorf("token requests %d, want 1", g.Hits())
	}
}

// BenchmarkAnthropicRequest is the same request built for Anthropic's own
// API, for comparison: the cost Vertex adds is the token read and the
// URL choice.
func BenchmarkAnthropicRequest(b *testing.B) {
	u, _ := anthropic.MessagesURL("", "")
	e := anthropic.NewEndpoint(anthropic.EndpointConfig{URL: u, Secret: "sk-ant-bench", Model: "claude-haiku-4-5"})
	body := `{"model":"chat","stream":true,"max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello in three languages."}]}`
	in := inbound(b, provider.OpChat, body, http.Header{"User-Agent": {"bench"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		up, err := e.Body(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.NewRequest(ctx, in, up); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGeminiRequest is the per-attempt cost of a Gemini on Vertex
// request: the chat body translated by package gemini and the request
// built with the cached service-account token (a lock-free read).
func BenchmarkGeminiRequest(b *testing.B) {
	g := newOAuth(b)
	e := geminiOn(b, "us-central1", saAuth(b, g, ""), "gemini-2.5-flash")
	body := `{"model":"chat","stream":true,"max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello in three languages."}]}`
	in := inbound(b, provider.OpChat, body, http.Header{"User-Agent": {"bench"}})
	ctx := context.Background()
	if _, err := e.NewRequest(ctx, in, nil); err != nil { // the one token fetch
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		up, err := e.Body(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.NewRequest(ctx, in, up); err != nil {
			b.Fatal(err)
		}
	}
	if g.Hits() != 1 {
		b.Errorf("token requests %d, want 1", g.Hits())
	}
}

// BenchmarkGeminiAIStudioRequest is the same request built for Google AI
// Studio (x-goog-api-key), for comparison: the cost Vertex adds is the
// token read.
func BenchmarkGeminiAIStudioRequest(b *testing.B) {
	u, _ := gemini.ModelsURL("", "")
	e := gemini.NewEndpoint(gemini.EndpointConfig{Models: u, Secret: "AIza-bench", Model: "gemini-2.5-flash"})
	body := `{"model":"chat","stream":true,"max_tokens":256,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Say hello in three languages."}]}`
	in := inbound(b, provider.OpChat, body, http.Header{"User-Agent": {"bench"}})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		up, err := e.Body(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.NewRequest(ctx, in, up); err != nil {
			b.Fatal(err)
		}
	}
}
