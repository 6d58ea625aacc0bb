package messages

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
)

// runStream feeds every data of an OpenAI SSE fixture to a Stream (then
// End) and counts the EventInfo flags.
func runStream(t *testing.T, path string) (out []byte, content, finished, done int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := NewStream("claude-sonnet-4-5", 1234)
	for _, e := range readSSE(t, f) {
		before := len(out)
		var ev provider.EventInfo
		out, ev, err = s.Event(out, []byte(e.data))
		if err != nil {
			t.Fatalf("event %s: %v", e.data, err)
		}
		if ev.Content {
			content++
			if len(out) == before {
				t.Errorf("Content set but nothing written for %s", e.data)
			}
		}
		if ev.Finished {
			finished++
		}
		if ev.Done {
			done++
		}
	}
	out = s.End(out)
	return out, content, finished, done
}

func TestStreamGolden(t *testing.T) {
	for _, c := range []struct {
		name                    string
		content, finished, done int
	}{
		// Content: 2 text deltas, 2 tool starts (one with its first
		// arguments chunk separate), 3 arguments deltas.
		{"tools", 2 + 1 + 2 + 1 + 1, 1, 1},
		// No [DONE]: End completes the message, Done is never reported.
		{"reasoning", 3, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, content, finished, done := runStream(t, "testdata/stream/"+c.name+".openai.sse")
			wf, err := os.Open("testdata/stream/" + c.name + ".anthropic.sse")
			if err != nil {
				t.Fatal(err)
			}
			defer wf.Close()
			compareEvents(t, got, readSSE(t, wf))
			if content != c.content || finished != c.finished || done != c.done {
				t.Errorf("content/finished/done = %d/%d/%d, want %d/%d/%d", content, finished, done, c.content, c.finished, c.done)
			}
		})
	}
}

func feedChunks(t *testing.T, s *Stream, chunks ...string) []byte {
	t.Helper()
	var out []byte
	for _, c := range chunks {
		var err error
		out, _, err = s.Event(out, []byte(c))
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
	}
	return out
}

const chunkHead = `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,`

func TestStreamUsageInFinishChunk(t *testing.T) {
	s := NewStream("a", 0)
	out := feedChunks(t, s,
		chunkHead+`"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]}`,
		chunkHead+`"delta":{},"finish_reason":"length"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}`,
		"[DONE]")
	compareEvents(t, out, []sseEvent{
		{"message_start", `{"type":"message_start","message":{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"a","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":1,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":3}}`},
		{"message_stop", `{"type":"message_stop"}`},
	})
}

func TestStreamToolCallsInOneChunk(t *testing.T) {
	// Some OpenAI-compatible backends send whole calls, several in a chunk.
	s := NewStream("a", 5)
	out := feedChunks(t, s,
		chunkHead+`"delta":{"tool_calls":[{"index":0,"id":"c0","type":"function","function":{"name":"f","arguments":"{}"}},{"index":1,"id":"c1","type":"function","function":{"name":"g","arguments":"{\"x\":1}"}}]},"finish_reason":"tool_calls"}]}`,
		"[DONE]")
	compareEvents(t, out, []sseEvent{
		{"message_start", `{"type":"message_start","message":{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"a","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`},
		{"content_block_start", `{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"c0","name":"f","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":0}`},
		{"content_block_start", `{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"c1","name":"g","input":{}}}`},
		{"content_block_delta", `{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"x\":1}"}}`},
		{"content_block_stop", `{"type":"content_block_stop","index":1}`},
		{"message_delta", `{"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":3}}`},
		{"message_stop", `{"type":"message_stop"}`},
	})
}

func TestStreamErrors(t *testing.T) {
	s := NewStream("a", 5)
	dst := []byte("keep")
	for _, bad := range []string{``, `not json`, `{"id":`, `{} {}`, `[1]`} {
		out, _, err := s.Event(dst, []byte(bad))
		if !errors.Is(err, provider.ErrSkipEvent) || !bytes.Equal(out, dst) {
			t.Errorf("%q: out %q err %v, want dst unchanged and a skip error", bad, out, err)
		}
	}
	// The stream goes on after a bad chunk.
	out := feedChunks(t, s, chunkHead+`"delta":{"content":"ok"},"finish_reason":null}]}`)
	if !strings.Contains(string(out), `"text":"ok"`) {
		t.Errorf("after bad chunks: %s", out)
	}
	// An in-band error: nothing written, ev.Error set.
	out, ev, err := s.Event(nil, []byte(`{"error":{"message":"The server had an error","type":"server_error"}}`))
	if err != nil || len(out) != 0 || ev.Error == nil || ev.Error.Message != "The server had an error" || ev.Error.Type != "server_error" {
		t.Errorf("in-band error: out %q ev %+v err %v", out, ev, err)
	}
	out, ev, err = s.Event(nil, []byte("[DONE]"))
	if err != nil || !ev.Done || !ev.Finished {
		t.Fatalf("[DONE]: ev %+v err %v", ev, err)
	}
	if _, err := parseFrames(out); err != nil {
		t.Error(err)
	}
	if out, _, err := s.Event(dst, []byte(chunkHead+`"delta":{}}]}`)); err != ErrAfterStop || !bytes.Equal(out, dst) {
		t.Errorf("after stop: %q %v", out, err)
	}
	if out := s.End(dst); !bytes.Equal(out, dst) {
		t.Errorf("End after stop wrote %q", out)
	}
}

func TestStreamEndBeforeFinish(t *testing.T) {
	s := NewStream("a", 5)
	out := feedChunks(t, s, chunkHead+`"delta":{"content":"cut"},"finish_reason":null}]}`)
	if got := s.End(out); len(got) != len(out) {
		t.Errorf("End of an unfinished stream wrote %q", got[len(out):])
	}
}

func TestPingAndErrorEvent(t *testing.T) {
	s := NewStream("a", 5)
	if got := string(s.Ping(nil)); got != "event: ping\ndata: {\"type\": \"ping\"}\n\n" {
		t.Errorf("Ping = %q", got)
	}
	out := s.ErrorEvent(nil, "overloaded_error", "Overloaded \"now\"")
	compareEvents(t, out, []sseEvent{{"error", `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded \"now\""}}`}})
	if !s.Done() {
		t.Error("ErrorEvent did not end the stream")
	}
}

func TestStreamAzurePromptFilterChunk(t *testing.T) {
	s := NewStream("a", 3)
	out := feedChunks(t, s,
		`{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}`)
	if len(out) != 0 {
		t.Fatalf("prompt filter chunk wrote %q", out)
	}
	out = feedChunks(t, s,
		`{"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1759277000,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_b705f0c291"}`)
	evs, err := parseFrames(out)
	if err != nil || len(evs) != 1 || !strings.Contains(evs[0].data, `"id":"msg_chatcmpl-AZ1"`) {
		t.Errorf("message_start = %q %v", out, err)
	}
}

func TestStreamLateArguments(t *testing.T) {
	// Arguments for a tool call whose block was closed go to its index.
	s := NewStream("a", 3)
	out := feedChunks(t, s,
		chunkHead+`"delta":{"tool_calls":[{"index":0,"id":"c0","function":{"name":"f","arguments":""}}]}}]}`,
		chunkHead+`"delta":{"tool_calls":[{"index":1,"id":"c1","function":{"name":"g","arguments":"{}"}}]}}]}`,
		chunkHead+`"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}`)
	evs, err := parseFrames(out)
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	jsonEqual(t, []byte(last.data), []byte(`{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{}"}}`))
}
