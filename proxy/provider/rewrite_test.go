package provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestParseRequest(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		wantModel  string
		wantStream bool
		wantErr    error
	}{
		{name: "plain", body: `{"model":"chat-prod","messages":[{"role":"user","content":"hi"}]}`, wantModel: "chat-prod"},
		{name: "stream true", body: `{"stream":true,"model":"m","messages":[1]}`, wantModel: "m", wantStream: true},
		{name: "stream false", body: `{"stream":false,"model":"m","messages":[1]}`, wantModel: "m"},
		{name: "white space everywhere", body: " \n{ \"model\" :\t\"m\" , \"messages\" : [ {} ] } \n", wantModel: "m"},
		{name: "escaped model value", body: `{"model":"a\"b\u00e9","messages":[1]}`, wantModel: "a\"bé"},
		{name: "escaped model key", body: `{"mod\u0065l":"m","messages":[1]}`, wantModel: "m"},
		{name: "nested model fields are not the model", body: `{"model":"m","messages":[{"model":"x"}],"tools":{"model":"y"}}`, wantModel: "m"},
		{name: "not an object", body: `["model"]`, wantErr: ErrInvalidJSON},
		{name: "empty", body: ``, wantErr: ErrInvalidJSON},
		{name: "truncated", body: `{"model":"m","messages":[1`, wantErr: ErrInvalidJSON},
		{name: "trailing data", body: `{"model":"m","messages":[1]}{}`, wantErr: ErrInvalidJSON},
		{name: "bad escape", body: `{"model":"\x","messages":[1]}`, wantErr: ErrInvalidJSON},
		{name: "bad number", body: `{"model":"m","messages":[01]}`, wantErr: ErrInvalidJSON},
		{name: "control character in string", body: "{\"model\":\"m\n\",\"messages\":[1]}", wantErr: ErrInvalidJSON},
		{name: "model missing", body: `{"messages":[1]}`, wantErr: ErrMissingModel},
		{name: "model empty", body: `{"model":"","messages":[1]}`, wantErr: ErrMissingModel},
		{name: "model not a string", body: `{"model":5,"messages":[1]}`, wantErr: ErrMissingModel},
		{name: "model twice", body: `{"model":"a","messages":[1],"model":"b"}`, wantErr: ErrDuplicateModel},
		{name: "model twice, escaped", body: `{"model":"a","messages":[1],"m\u006fdel":"b"}`, wantErr: ErrDuplicateModel},
		{name: "model in another case", body: `{"model":"a","MODEL":"b","messages":[1]}`, wantErr: ErrDuplicateModel},
		{name: "messages missing", body: `{"model":"m"}`, wantErr: ErrMissingMsgs},
		{name: "messages not an array", body: `{"model":"m","messages":{}}`, wantErr: ErrMissingMsgs},
		{name: "messages empty", body: `{"model":"m","messages":[ ]}`, wantErr: ErrEmptyMessages},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := ParseRequest([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if req.Model != tt.wantModel || req.Stream != tt.wantStream {
				t.Errorf("got model %q stream %v", req.Model, req.Stream)
			}
			out := req.ModelAt.AppendTo(nil, []byte(tt.body), []byte(`"upstream-model"`))
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil || m["model"] != "upstream-model" {
				t.Errorf("spliced body %s: %v", out, err)
			}
			if n := req.ModelAt.Len([]byte(tt.body), []byte(`"upstream-model"`)); n != len(out) {
				t.Errorf("Len = %d, want %d", n, len(out))
			}
		})
	}
}

func TestFindModel(t *testing.T) {
	tests := []struct {
		name, body, want string
		wantErr          bool
	}{
		{name: "replace", body: `{"id":"x","model":"gpt-4o-mini-2024","choices":[]}`, want: `{"id":"x","model":"alias","choices":[]}`},
		{name: "replace a non-string", body: `{"model":null}`, want: `{"model":"alias"}`},
		{name: "insert", body: `{"id":"x"}`, want: `{"model":"alias","id":"x"}`},
		{name: "insert into empty", body: ` { } `, want: ` {"model":"alias" } `},
		{name: "keeps every choice", body: `{"model":"u","choices":[{"index":0},{"index":1}]}`, want: `{"model":"alias","choices":[{"index":0},{"index":1}]}`},
		{name: "not an object", body: `"x"`, wantErr: true},
		{name: "broken", body: `{"model":`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp, err := FindModel([]byte(tt.body))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			got := sp.AppendTo(nil, []byte(tt.body), []byte(`"alias"`))
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			var buf bytes.Buffer
			if err := sp.WriteTo(&buf, []byte(tt.body), []byte(`"alias"`)); err != nil || buf.String() != tt.want {
				t.Errorf("WriteTo = %s, %v", buf.String(), err)
			}
			if sp.Len([]byte(tt.body), []byte(`"alias"`)) != len(tt.want) {
				t.Errorf("Len mismatch")
			}
		})
	}
}

func TestScanChunk(t *testing.T) {
	tests := []struct {
		name                         string
		data                         string
		content, finished, inBandErr bool
		wantErr                      bool
	}{
		{name: "role only", data: `{"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`},
		{name: "content", data: `{"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`, content: true},
		{name: "tool call", data: `{"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}`, content: true},
		{name: "reasoning", data: `{"choices":[{"delta":{"reasoning_content":"thinking"}}]}`, content: true},
		{name: "null content", data: `{"choices":[{"delta":{"content":null}}]}`},
		{name: "finish", data: `{"choices":[{"delta":{},"finish_reason":"stop"}]}`, finished: true},
		{name: "usage only", data: `{"choices":[],"usage":{"total_tokens":3}}`},
		{name: "in-band error", data: `{"error":{"message":"boom"}}`, inBandErr: true},
		{name: "malformed", data: `{"choices":[{"delta":`, wantErr: true},
		{name: "empty", data: ``, wantErr: true},
		{name: "not an object", data: `[1]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ScanChunk([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				return
			}
			if c.Content != tt.content || c.Finished != tt.finished || c.Error != tt.inBandErr {
				t.Errorf("got %+v", c)
			}
			out := c.Model.AppendTo(nil, []byte(tt.data), []byte(`"alias"`))
			var m map[string]any
			if err := json.Unmarshal(out, &m); err != nil || m["model"] != "alias" {
				t.Errorf("spliced chunk %s: %v", out, err)
			}
		})
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // "name|data"
		err  error
	}{
		{name: "two events", in: "data: a\n\ndata: b\n\n", want: []string{"|a", "|b"}},
		{name: "crlf", in: "data: a\r\n\r\ndata: b\r\n\r\n", want: []string{"|a", "|b"}},
		{name: "multi-line data", in: "data: a\ndata: b\n\n", want: []string{"|a\nb"}},
		{name: "no space after colon", in: "data:a\n\n", want: []string{"|a"}},
		{name: "two spaces keep one", in: "data:  a\n\n", want: []string{"| a"}},
		{name: "comments and unknown fields", in: ": keep-alive\nid: 7\nretry: 10\nfoo: bar\ndata: x\n\n", want: []string{"|x"}},
		{name: "named event", in: "event: error\ndata: {}\n\n", want: []string{"error|{}"}},
		{name: "event name without data is not dispatched", in: "event: ping\n\ndata: x\n\n", want: []string{"|x"}},
		{name: "empty data is dispatched", in: "data:\n\n", want: []string{"|"}},
		{name: "last event without a blank line", in: "data: a\n\ndata: [DONE]", want: []string{"|a", "|[DONE]"}},
		{name: "blank lines only", in: "\n\n\n", want: nil},
		{name: "long line", in: "data: " + strings.Repeat("x", 100) + "\n\n", want: []string{"|" + strings.Repeat("x", 100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAllEvents(tt.in, 16, 0)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if strings.Join(got, "\x00") != strings.Join(tt.want, "\x00") {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	t.Run("event too large", func(t *testing.T) {
		_, err := readAllEvents("data: "+strings.Repeat("x", 100)+"\n\n", 16, 50)
		if !errors.Is(err, ErrEventTooLarge) {
			t.Fatalf("err = %v", err)
		}
	})
}

// readAllEvents parses in with a bufio buffer of size buf (small, to cross
// buffer boundaries) and returns "name|data" per event.
func readAllEvents(in string, buf, max int) ([]string, error) {
	r := NewSSEReader(bufio.NewReaderSize(strings.NewReader(in), buf), max)
	var out []string
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(ev.Name)+"|"+string(ev.Data))
	}
}

func TestAppendData(t *testing.T) {
	got := string(AppendData(nil, []byte("a\nb")))
	if got != "data: a\ndata: b\n\n" {
		t.Errorf("got %q", got)
	}
}

func TestFindNestedModel(t *testing.T) {
	tests := []struct {
		in, key, want string
		ok            bool
	}{
		{`{"type":"message_start","message":{"id":"m","model":"claude-x","role":"assistant"}}`, "message",
			`{"type":"message_start","message":{"id":"m","model":"alias","role":"assistant"}}`, true},
		{`{"message":{"model" : "a\"b"},"model":"top"}`, "message", `{"message":{"model" : "alias"},"model":"top"}`, true},
		{`{"model":"top","message":{"id":"m"}}`, "message", "", false},
		{`{"message":"text","model":"top"}`, "message", "", false},
		{`{"response":{"model":"gpt"}}`, "message", "", false},
		{`not json`, "message", "", false},
	}
	for _, tt := range tests {
		sp, ok := FindNestedModel([]byte(tt.in), tt.key)
		if ok != tt.ok {
			t.Errorf("%s: ok = %v", tt.in, ok)
			continue
		}
		if ok {
			if got := string(sp.AppendTo(nil, []byte(tt.in), []byte(`"alias"`))); got != tt.want {
				t.Errorf("%s: spliced %s, want %s", tt.in, got, tt.want)
			}
		}
	}
}
