package anthropic

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTranslateRequest: any body either fails with a *RequestError or
// yields a valid JSON object with the model and a positive max_tokens.
func FuzzTranslateRequest(f *testing.F) {
	ins, _ := filepath.Glob("testdata/request/*.openai.json")
	for _, in := range ins {
		b, _ := os.ReadFile(in)
		f.Add(b)
	}
	for _, s := range []string{`{}`, `[]`, `null`, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,"}}]}]}`,
		`{"messages":[{"role":"assistant","tool_calls":[{"id":"x","function":{"name":"f","arguments":" {} "}}]}],"reasoning_effort":"high","max_tokens":1}`,
		`{"messages":[{"role":"tool","tool_call_id":"x","content":null}],"stop":[],"tool_choice":{"type":"function","function":{"name":"\u0000"}}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := TranslateRequest(body, "claude", true, RequestOptions{})
		if err != nil {
			if _, ok := err.(*RequestError); !ok {
				t.Fatalf("error %T %v is not a *RequestError", err, err)
			}
			return
		}
		var m struct {
			Model     string `json:"model"`
			MaxTokens int    `json:"max_tokens"`
			Messages  []any  `json:"messages"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("invalid output %s: %v", out, err)
		}
		if m.Model != "claude" || m.MaxTokens < 1 || len(m.Messages) == 0 {
			t.Fatalf("bad output %s", out)
		}
	})
}

// FuzzStream: any sequence of events (data split on NUL) never panics,
// accepts only valid JSON data, and every frame written is "data: " +
// valid JSON or [DONE].
func FuzzStream(f *testing.F) {
	raw, _ := os.ReadFile("testdata/stream/full.anthropic.sse")
	var seed [][]byte
	for _, e := range readSSE(f, bytes.NewReader(raw)) {
		seed = append(seed, []byte(e.data))
	}
	f.Add(bytes.Join(seed, []byte{0}))
	f.Add([]byte(msgStart + "\x00" + `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"x"}}`))
	f.Add([]byte(msgStart + "\x00" + `{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"a","name":"b"}}` + "\x00" + `{"type":"message_stop"}`))
	f.Add([]byte(`{"type":"error","error":{"type":1}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := NewStream("alias", 1, true)
		var out []byte
		for _, d := range bytes.Split(in, []byte{0}) {
			var err error
			out, _, err = s.Event(out, []byte("message"), d)
			if err != nil {
				break
			}
			if !json.Valid(d) {
				t.Fatalf("accepted invalid event data %q", d)
			}
		}
		for _, fr := range frames(out) {
			if fr != "[DONE]" && !json.Valid([]byte(fr)) {
				t.Fatalf("invalid frame %q", fr)
			}
		}
	})
}

// FuzzPassthrough checks the Messages relay on arbitrary events: it never
// panics, an error leaves dst as it was, and what it writes is one SSE
// event with the data unchanged and at most one event line.
func FuzzPassthrough(f *testing.F) {
	for _, s := range []string{
		`{"type":"message_start","message":{"id":"msg_1","model":"claude"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":3}}`,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`{"type":"a\nb"}`, `{"type":"ping"}`, `{`, ``,
	} {
		f.Add([]byte("message_start"), []byte(s))
	}
	f.Fuzz(func(t *testing.T, name, data []byte) {
		dec := (*passthroughStream)(nil)
		out, info, err := dec.Event([]byte("x"), name, data)
		if err != nil || info.Error != nil {
			if len(out) != 1 {
				t.Fatalf("error %v / %+v wrote %q", err, info.Error, out[1:])
			}
			return
		}
		if len(out) == 1 {
			return // a ping
		}
		frame := string(out[1:])
		if !strings.HasSuffix(frame, "\n\n") {
			t.Fatalf("frame does not end an event: %q", frame)
		}
		events := 0
		var got []string
		for _, line := range strings.Split(strings.TrimSuffix(frame, "\n\n"), "\n") {
			switch {
			case strings.HasPrefix(line, "data: "):
				got = append(got, line[len("data: "):])
			case strings.HasPrefix(line, "event: "):
				events++
			default:
				t.Fatalf("unexpected line %q in %q", line, frame)
			}
		}
		if events > 1 || strings.Join(got, "\n") != string(bytes.TrimSpace(data)) {
			t.Fatalf("bad frame %q for %q", frame, data)
		}
	})
}
