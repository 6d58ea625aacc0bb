package anthropic

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
)

type sseEvent struct{ name, data string }

func readSSE(t testing.TB, r io.Reader) []sseEvent {
	t.Helper()
	sr := provider.NewSSEReader(bufio.NewReader(r), 0)
	var evs []sseEvent
	for {
		ev, err := sr.Next()
		if err == io.EOF {
			return evs
		}
		if err != nil {
			t.Fatalf("read SSE: %v", err)
		}
		evs = append(evs, sseEvent{string(ev.Name), string(ev.Data)})
	}
}

// frames splits an OpenAI SSE body into its data payloads.
func frames(b []byte) []string {
	var out []string
	for _, f := range strings.Split(string(b), "\n\n") {
		if f == "" {
			continue
		}
		out = append(out, strings.TrimPrefix(f, "data: "))
	}
	return out
}

func compareFrames(t *testing.T, got, want []byte) {
	t.Helper()
	g, w := frames(got), frames(want)
	for i := 0; i < len(g) || i < len(w); i++ {
		switch {
		case i >= len(g):
			t.Errorf("frame %d missing, want %s", i, w[i])
		case i >= len(w):
			t.Errorf("extra frame %d: %s", i, g[i])
		case w[i] == "[DONE]" || g[i] == "[DONE]":
			if g[i] != w[i] {
				t.Errorf("frame %d = %s, want %s", i, g[i], w[i])
			}
		default:
			jsonEqual(t, []byte(g[i]), []byte(w[i]))
		}
	}
}

func TestStreamFull(t *testing.T) {
	f, err := os.Open("testdata/stream/full.anthropic.sse")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := os.ReadFile("testdata/stream/full.openai.sse")
	if err != nil {
		t.Fatal(err)
	}
	s := NewStream("chat-prod", 1767225600, true)
	var out []byte
	content, finished, done := 0, 0, 0
	for _, e := range readSSE(t, f) {
		before := len(out)
		var ev EventInfo
		out, ev, err = s.Event(out, []byte(e.name), []byte(e.data))
		if err != nil {
			t.Fatalf("event %s: %v", e.name, err)
		}
		if e.name == "ping" && (ev.Content || len(out) != before) {
			t.Errorf("ping wrote %q, content=%v", out[before:], ev.Content)
		}
		if ev.Content {
			content++
		}
		if ev.Finished {
			finished++
		}
		if ev.Done {
			done++
		}
		if ev.Error != nil {
			t.Errorf("unexpected error %+v", ev.Error)
		}
	}
	compareFrames(t, out, want)
	if content != 8 || finished != 1 || done != 1 {
		t.Errorf("content=%d finished=%d done=%d, want 8 1 1", content, finished, done)
	}
	if _, _, err := s.Event(nil, []byte("content_block_delta"), []byte(`{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"x"}}`)); !errors.Is(err, ErrAfterStop) {
		t.Errorf("event after stop: err = %v", err)
	}
}

const msgStart = `{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":1}}}`

func run(t *testing.T, s *Stream, events ...string) ([]byte, []EventInfo) {
	t.Helper()
	var out []byte
	var infos []EventInfo
	for _, d := range events {
		var ev EventInfo
		var err error
		out, ev, err = s.Event(out, nil, []byte(d))
		if err != nil {
			t.Fatalf("event %s: %v", d, err)
		}
		infos = append(infos, ev)
	}
	return out, infos
}

func TestStreamTextNoUsage(t *testing.T) {
	s := NewStream("a", 5, false)
	out, infos := run(t, s, msgStart,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \u00e9\n"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":3}}`,
		`{"type":"message_stop"}`)
	p := `{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":5,"model":"a","choices":[`
	want := "data: " + p + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n" +
		"data: " + p + `{"index":0,"delta":{"content":"Hi é\n"},"finish_reason":null}]}` + "\n\n" +
		"data: " + p + `{"index":0,"delta":{},"finish_reason":"length"}]}` + "\n\n" +
		"data: [DONE]\n\n"
	compareFrames(t, out, []byte(want))
	if infos[0].Content || !infos[2].Content || !infos[4].Finished || !infos[5].Done {
		t.Errorf("infos = %+v", infos)
	}
}

func TestStreamJSONTool(t *testing.T) {
	s := NewStream("a", 5, false)
	out, _ := run(t, s, msgStart,
		`{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_j","name":"json_response","input":{}}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"name\":"}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"\"Ada\"}"}}`,
		`{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":3}}`,
		`{"type":"message_stop"}`)
	p := `{"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":5,"model":"a","choices":[`
	want := "data: " + p + `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n" +
		"data: " + p + `{"index":0,"delta":{"content":"{\"name\":"},"finish_reason":null}]}` + "\n\n" +
		"data: " + p + `{"index":0,"delta":{"content":"\"Ada\"}"},"finish_reason":null}]}` + "\n\n" +
		"data: " + p + `{"index":0,"delta":{},"finish_reason":"stop"}]}` + "\n\n" +
		"data: [DONE]\n\n"
	compareFrames(t, out, []byte(want))
}

func TestStreamInBandError(t *testing.T) {
	s := NewStream("a", 5, true)
	out, infos := run(t, s, msgStart,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}`)
	n := len(out)
	out, ev, err := s.Event(out, []byte("error"), []byte(`{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}`))
	if err != nil || len(out) != n {
		t.Fatalf("error event: err=%v, wrote %q", err, out[n:])
	}
	if ev.Error == nil || ev.Error.Class != Overloaded || ev.Error.Type != "overloaded_error" || ev.Error.Message != "Overloaded" || ev.Content {
		t.Errorf("ev = %+v (%+v)", ev, ev.Error)
	}
	if !infos[2].Content {
		t.Error("text delta not content")
	}
	// An error before message_start is reported too.
	_, ev, err = NewStream("a", 5, true).Event(nil, []byte("error"), []byte(`{"type":"error","error":{"type":"api_error","message":"Internal"}}`))
	if err != nil || ev.Error == nil || ev.Error.Class != Server {
		t.Errorf("early error: %v %+v", err, ev.Error)
	}
}

func TestStreamBadInput(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		want   error
	}{
		{"not json", []string{`{"type":`}, ErrBadEvent},
		{"delta first", []string{`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}`}, ErrNoMessageStart},
		{"no id", []string{`{"type":"message_start","message":{"usage":{}}}`}, ErrBadEvent},
		{"twice", []string{msgStart, msgStart}, ErrBadEvent},
		{"huge index", []string{msgStart, `{"type":"content_block_start","index":100000,"content_block":{"type":"text","text":""}}`}, ErrBadEvent},
		{"two values", []string{msgStart + ` {}`}, ErrBadEvent},
		{"array", []string{`[1]`}, ErrBadEvent},
		{"tool without id", []string{msgStart, `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","name":"f"}}`}, ErrBadEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewStream("a", 1, false)
			var err error
			for _, d := range tt.events {
				if _, _, err = s.Event(nil, nil, []byte(d)); err != nil {
					break
				}
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// Space around events, and events larger than the decoder's buffer
	// with unread trailing space, keep the decoder in step.
	long := strings.Repeat("x", 3000)
	s0 := NewStream("a", 1, false)
	out0, _ := run(t, s0, " \n"+msgStart+"\n ",
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"`+long+`"}}`+strings.Repeat(" ", 5000),
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"y"}}`,
		`{"type":"message_stop"}`)
	if fr := frames(out0); len(fr) != 5 || !strings.Contains(fr[1], long) || !strings.Contains(fr[2], `"y"`) {
		t.Errorf("frames = %q", fr)
	}
	// After a malformed event the stream stays failed.
	s1 := NewStream("a", 1, false)
	_, _, _ = s1.Event(nil, nil, []byte(`{"type":`))
	if _, _, err := s1.Event(nil, nil, []byte(msgStart)); !errors.Is(err, ErrBadEvent) {
		t.Errorf("after a bad event: err = %v", err)
	}
	// Unknown events and an empty ping are ignored.
	s := NewStream("a", 1, false)
	out, _ := run(t, s, msgStart, `{"type":"future_event","x":1}`)
	out2, ev, err := s.Event(out, []byte("ping"), nil)
	if err != nil || !bytes.Equal(out, out2) || ev.Content {
		t.Errorf("empty ping: %v %q", err, out2[len(out):])
	}
}
