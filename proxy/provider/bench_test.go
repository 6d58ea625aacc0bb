package provider

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"
)

var benchRequest = []byte(`{"model":"chat-prod","messages":[{"role":"system","content":"You are a helpful assistant."},` +
	`{"role":"user","content":"Say hello, and tell me something interesting about the number 42 in one sentence."}],` +
	`"temperature":0.7,"max_tokens":256,"stream":false,"tools":[{"type":"function","function":{"name":"lookup",` +
	`"description":"Look something up","parameters":{"type":"object","properties":{"q":{"type":"string"}},"required":["q"]}}}]}`)

var benchResponse = []byte(`{"id":"chatcmpl-mock0001","object":"chat.completion","created":1767225600,"model":"gpt-4o-mini-2024-07-18",` +
	`"choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I assist you today?","refusal":null},"logprobs":null,"finish_reason":"stop"}],` +
	`"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
	`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}},` +
	`"service_tier":"default","system_fingerprint":"fp_mock00001"}`)

// BenchmarkRequestRewrite: scan the caller's body and build the upstream
// body with the model replaced.
func BenchmarkRequestRewrite(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchRequest)))
	name := []byte(`"gpt-4o-mini"`)
	dst := make([]byte, 0, 1024)
	for b.Loop() {
		req, err := ParseRequest(benchRequest)
		if err != nil {
			b.Fatal(err)
		}
		dst = req.ModelAt.AppendTo(dst[:0], benchRequest, name)
	}
}

// BenchmarkResponseRewrite: find the model in an upstream answer and write
// the answer with the alias spliced in.
func BenchmarkResponseRewrite(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchResponse)))
	alias := []byte(`"chat-prod"`)
	var out bytes.Buffer
	out.Grow(1024)
	for b.Loop() {
		sp, err := FindModel(benchResponse)
		if err != nil {
			b.Fatal(err)
		}
		out.Reset()
		_ = sp.WriteTo(&out, benchResponse, alias)
	}
}

func benchStream(chunks int) []byte {
	var buf bytes.Buffer
	for i := 0; i < chunks; i++ {
		fmt.Fprintf(&buf, "data: {\"id\":\"chatcmpl-mock0001\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)
	}
	buf.WriteString("data: {\"id\":\"chatcmpl-mock0001\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	buf.WriteString("data: [DONE]\n\n")
	return buf.Bytes()
}

// BenchmarkSSERelay: parse a 20-chunk stream and rewrite every chunk into
// an output frame, as the relay does (per stream, not per chunk).
func BenchmarkSSERelay(b *testing.B) {
	b.ReportAllocs()
	stream := benchStream(20)
	b.SetBytes(int64(len(stream)))
	alias := []byte(`"chat-prod"`)
	rd := bytes.NewReader(stream)
	br := bufio.NewReaderSize(rd, 16<<10)
	var sr SSEReader
	out := make([]byte, 0, 1024)
	for b.Loop() {
		rd.Reset(stream)
		br.Reset(rd)
		sr.Reset(br, 0)
		for {
			ev, err := sr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if string(ev.Data) == "[DONE]" {
				continue
			}
			c, err := ScanChunk(ev.Data)
			if err != nil {
				b.Fatal(err)
			}
			out = append(out[:0], "data: "...)
			out = c.Model.AppendTo(out, ev.Data, alias)
			out = append(out, "\n\n"...)
		}
	}
}
