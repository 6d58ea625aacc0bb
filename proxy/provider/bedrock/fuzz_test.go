package bedrock_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/bedrock"
	"github.com/aisix/aisix/proxy/proxytest"
)

// FuzzStream: any byte stream through the frame source and the
// translator never panics, and what is written is well-formed SSE of
// JSON chunks ending, if at all, with one [DONE].
func FuzzStream(f *testing.F) {
	var b bytes.Buffer
	for _, o := range []proxytest.BedrockStreamOptions{{}, {Tools: []proxytest.BedrockTool{{ID: "t", Name: "n", Input: `{"a":1}`}}, Reasoning: []string{"r"}}} {
		b.Reset()
		for _, ev := range proxytest.BedrockEvents("x", o) {
			_ = proxytest.EncodeBedrockEvent(&b, ev.Type, ev.Payload)
		}
		f.Add(bytes.Clone(b.Bytes()))
	}
	b.Reset()
	_ = proxytest.EncodeBedrockEvent(&b, "messageStart", `{}`)
	_ = proxytest.EncodeBedrockEvent(&b, "!throttlingException", `{"message":"x"}`)
	f.Add(bytes.Clone(b.Bytes()))
	f.Fuzz(func(t *testing.T, body []byte) {
		src := bedrock.NewFrames(bufio.NewReader(bytes.NewReader(body)), 1<<16)
		s := bedrock.NewStream("a", 1, true)
		var out []byte
		for range 1000 {
			ev, err := src.Next()
			if err != nil {
				if err == io.EOF {
					out = s.End(out)
				}
				break
			}
			var info provider.EventInfo
			out, info, err = s.Event(out, ev.Name, ev.Data)
			if err != nil || info.Error != nil || info.Done {
				if info.Error != nil && info.Error.Class == provider.ClassOK {
					t.Fatal("an exception classified OK")
				}
				break
			}
		}
		text := string(out)
		if strings.Count(text, "data: [DONE]") > 1 {
			t.Fatalf("[DONE] twice: %s", text)
		}
		for _, fr := range strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n") {
			if fr == "" || fr == "data: [DONE]" {
				continue
			}
			d, ok := strings.CutPrefix(fr, "data: ")
			if !ok || !json.Valid([]byte(d)) {
				t.Fatalf("bad frame %q", fr)
			}
		}
	})
}

// FuzzTranslateRequest: any body is translated to valid JSON or refused
// with a RequestError; never a panic.
func FuzzTranslateRequest(f *testing.F) {
	for _, s := range []string{
		`{"messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]},{"role":"assistant","tool_calls":[{"id":"1","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"1","content":"r"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","stop":["x"],"max_tokens":3}`,
		`{"messages":[],"n":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := bedrock.TranslateRequest(body)
		if err != nil {
			var re *provider.RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a RequestError", err)
			}
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %s", out)
		}
	})
}

// FuzzInvokeStream: any byte stream through the frame source and the
// InvokeModel chunk relay never panics; what is written is Anthropic SSE
// frames ("event: <type>\ndata: <JSON>") and nothing follows message_stop.
func FuzzInvokeStream(f *testing.F) {
	var b bytes.Buffer
	for _, o := range []proxytest.BedrockClaudeStreamOptions{{}, {Tools: []proxytest.BedrockClaudeTool{{ID: "t", Name: "n", Input: `{"a":1}`}}}} {
		b.Reset()
		for _, ev := range proxytest.BedrockClaudeEvents("x", o) {
			_ = proxytest.EncodeBedrockChunk(&b, ev)
		}
		f.Add(bytes.Clone(b.Bytes()))
	}
	b.Reset()
	_ = proxytest.EncodeBedrockChunk(&b, `{"type":"message_start","message":{"model":"m"}}`)
	_ = proxytest.EncodeBedrockEvent(&b, "!throttlingException", `{"message":"x"}`)
	f.Add(bytes.Clone(b.Bytes()))
	b.Reset()
	_ = proxytest.EncodeBedrockEvent(&b, "chunk", `{"bytes":"e30="}`)
	f.Add(bytes.Clone(b.Bytes()))
	f.Fuzz(func(t *testing.T, body []byte) {
		s := bedrock.NewInvokeStream(&provider.Alias{Name: "a", JSON: []byte(`"a"`)})
		src := s.Frames(bufio.NewReader(bytes.NewReader(body)), 1<<16)
		var out []byte
		for range 1000 {
			ev, err := src.Next()
			if err != nil {
				if err == io.EOF {
					out = s.End(out)
				}
				break
			}
			var info provider.EventInfo
			n := len(out)
			out, info, err = s.Event(out, ev.Name, ev.Data)
			if (err != nil || info.Error != nil) && len(out) != n {
				t.Fatalf("an error event wrote %q", out[n:])
			}
			if err != nil || info.Error != nil || info.Done {
				if info.Error != nil && info.Error.Class == provider.ClassOK {
					t.Fatal("an exception classified OK")
				}
				break
			}
		}
		text := string(out)
		for _, fr := range strings.Split(strings.TrimSuffix(text, "\n\n"), "\n\n") {
			if fr == "" {
				continue
			}
			name, rest, ok := strings.Cut(fr, "\n")
			var d []string
			for _, line := range strings.Split(rest, "\n") {
				v, isData := strings.CutPrefix(line, "data: ")
				ok = ok && isData
				d = append(d, v)
			}
			if !ok || !strings.HasPrefix(name, "event: ") || !json.Valid([]byte(strings.Join(d, "\n"))) {
				t.Fatalf("bad frame %q", fr)
			}
		}
		if i := strings.Index(text, "event: message_stop\n"); i >= 0 && strings.Contains(text[i+1:], "event: ") {
			t.Fatalf("a frame after message_stop: %s", text)
		}
	})
}
