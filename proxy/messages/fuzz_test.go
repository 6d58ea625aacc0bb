package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzToChat: any body either fails with a *RequestError or yields a JSON
// object with the upstream model and a messages array; the token estimate
// never panics and is at least 1 when it succeeds.
func FuzzToChat(f *testing.F) {
	ins, _ := filepath.Glob("testdata/request/*.anthropic.json")
	for _, in := range ins {
		b, _ := os.ReadFile(in)
		f.Add(b)
	}
	for _, s := range []string{`{}`, `[]`, `null`, `{"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"x","content":[{"type":"image"}]}]}]}`,
		`{"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"a","name":"b","input":[1]}]}],"tool_choice":{"type":"tool","name":"\u0000"}}`,
		`{"messages":[{"role":"user","content":"x"}],"system":[],"tools":[{"name":"f","input_schema":null}],"metadata":{"user_id":"\ud800"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if n, err := CountTokensEstimate(body); err == nil && n < 1 {
			t.Fatalf("estimate %d", n)
		}
		out, _, err := ToChat(body, "up", ToChatOptions{})
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %T %v is not a *RequestError", err, err)
			}
			return
		}
		var m struct {
			Model    string `json:"model"`
			Messages []any  `json:"messages"`
		}
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("invalid output %s: %v", out, err)
		}
		if m.Model != "up" || m.Messages == nil {
			t.Fatalf("bad output %s", out)
		}
	})
}

// FuzzFromChat: any body fails with ErrNotChat or yields a message object.
func FuzzFromChat(f *testing.F) {
	ins, _ := filepath.Glob("testdata/response/*.openai.json")
	for _, in := range ins {
		b, _ := os.ReadFile(in)
		f.Add(b)
	}
	f.Add([]byte(`{"choices":[{"message":{"tool_calls":[{"function":{"arguments":"{\"a\":"}}]}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		out, err := FromChat(body, "alias")
		if err != nil {
			if err != ErrNotChat {
				t.Fatalf("error %v", err)
			}
			return
		}
		var m struct {
			Type    string `json:"type"`
			Model   string `json:"model"`
			Content []any  `json:"content"`
		}
		if err := json.Unmarshal(out, &m); err != nil || m.Type != "message" || m.Model != "alias" || m.Content == nil {
			t.Fatalf("bad output %s: %v", out, err)
		}
	})
}

// FuzzStream: any sequence of chunk data (split on NUL) never panics, an
// error leaves dst unchanged, and everything written, End included, is
// well-formed frames with JSON data.
func FuzzStream(f *testing.F) {
	for _, name := range []string{"tools", "reasoning"} {
		raw, _ := os.ReadFile("testdata/stream/" + name + ".openai.sse")
		var seed [][]byte
		for _, e := range readSSE(f, bytes.NewReader(raw)) {
			seed = append(seed, []byte(e.data))
		}
		f.Add(bytes.Join(seed, []byte{0}))
	}
	f.Add([]byte(chunkHead + `"delta":{"tool_calls":[{"index":2,"function":{"arguments":"x"}}]}}]}` + "\x00" + chunkHead + `"delta":{"content":"a"}}]}` + "\x00" + chunkHead + `"delta":{"tool_calls":[{"index":2,"function":{"arguments":"y"}}]}}]}`))
	f.Add([]byte(`{"choices":[],"usage":{"prompt_tokens":-5}}` + "\x00[DONE]\x00{}"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := NewStream("alias", 7)
		out := []byte("prefix")
		for _, d := range bytes.Split(in, []byte{0}) {
			before := append([]byte(nil), out...)
			next, _, err := s.Event(out, d)
			if err != nil {
				if !bytes.Equal(next, before) {
					t.Fatalf("error %v changed dst", err)
				}
				continue
			}
			out = next
		}
		out = s.End(out)
		if _, err := parseFrames(bytes.TrimPrefix(out, []byte("prefix"))); err != nil {
			t.Fatal(err)
		}
	})
}
