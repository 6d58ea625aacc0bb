package bedrock_test

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/bedrock"
	"github.com/aisix/aisix/proxy/proxytest"
)

const benchBody = `{"model":"m","messages":[{"role":"system","content":"You are brief."},{"role":"user","content":"Say hello in one short sentence, please."}],"max_tokens":256,"temperature":0.2,"stream":true}`

// BenchmarkRequest: one attempt's translation and SigV4 signing.
func BenchmarkRequest(b *testing.B) {
	base, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	e := bedrock.NewEndpoint(bedrock.EndpointConfig{Base: base, Model: "us.anthropic.claude-3-5-haiku-20241022-v1:0",
		Credential: bedrock.Credential{AccessKeyID: proxytest.BedrockAccessKeyID, SecretAccessKey: proxytest.BedrockSecretAccessKey, Region: "us-east-1"}})
	in := &provider.Inbound{Op: provider.OpChat, Body: []byte(benchBody), Req: &provider.Request{Stream: true}, Header: http.Header{}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		body, err := e.Body(in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.NewRequest(ctx, in, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTranslateRequest: the translation alone.
func BenchmarkTranslateRequest(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bedrock.TranslateRequest([]byte(benchBody)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamFrame: one contentBlockDelta frame decoded (prelude,
// headers, CRCs) and translated to a chunk.
func BenchmarkStreamFrame(b *testing.B) {
	var start, frame bytes.Buffer
	_ = proxytest.EncodeBedrockEvent(&start, "messageStart", `{"role":"assistant"}`)
	_ = proxytest.EncodeBedrockEvent(&frame, "contentBlockDelta", `{"contentBlockIndex":0,"delta":{"text":"hello there, "},"p":"abcdefghijkl"}`)
	const n = 1024
	body := bytes.Clone(start.Bytes())
	for range n {
		body = append(body, frame.Bytes()...)
	}
	rd := bytes.NewReader(body)
	br := bufio.NewReaderSize(rd, 4096)
	out := make([]byte, 0, 4096)
	b.SetBytes(int64(frame.Len()))
	b.ReportAllocs()
	var src provider.EventSource
	var s *bedrock.Stream
	i := n
	for b.Loop() {
		if i == n {
			b.StopTimer()
			rd.Reset(body)
			br.Reset(rd)
			src = bedrock.NewFrames(br, 1<<20)
			s = bedrock.NewStream("alias", 1, false)
			ev, _ := src.Next()
			_, _, _ = s.Event(out[:0], ev.Name, ev.Data)
			i = 0
			b.StartTimer()
		}
		ev, err := src.Next()
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err = s.Event(out[:0], ev.Name, ev.Data); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkInvokeChunk: one InvokeModelWithResponseStream chunk (a
// content_block_delta, base64 in {"bytes":…}) decoded from its frame
// (prelude, headers, CRCs), unwrapped and relayed as an Anthropic SSE
// frame.
func BenchmarkInvokeChunk(b *testing.B) {
	var frame bytes.Buffer
	_ = proxytest.EncodeBedrockChunk(&frame, `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hello there, how are you today?"}}`)
	const n = 1024
	body := bytes.Repeat(frame.Bytes(), n)
	rd := bytes.NewReader(body)
	br := bufio.NewReaderSize(rd, 4096)
	out := make([]byte, 0, 4096)
	alias := &provider.Alias{Name: "alias", JSON: []byte(`"alias"`)}
	b.SetBytes(int64(frame.Len()))
	b.ReportAllocs()
	var src provider.EventSource
	var s *bedrock.InvokeStream
	i := n
	for b.Loop() {
		if i == n {
			b.StopTimer()
			rd.Reset(body)
			br.Reset(rd)
			s = bedrock.NewInvokeStream(alias)
			src = s.Frames(br, 1<<20)
			i = 0
			b.StartTimer()
		}
		ev, err := src.Next()
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err = s.Event(out[:0], ev.Name, ev.Data); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
