package provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

var jsonSeeds = []string{
	`{"model":"chat-prod","messages":[{"role":"user","content":"hi"}]}`,
	`{"model":"m","stream":true,"messages":[{"role":"user","content":"h\u00e9 \"q\""}],"tools":[{"type":"function"}],"n":2,"temperature":0.5e-1}`,
	`{"mod\u0065l":"m","messages":[1]}`,
	`{"model":"a","model":"b","messages":[1]}`,
	`{"Model":"a","model":"b","messages":[1]}`,
	` { "model" : "x" , "messages" : [ [ ] ] } `,
	`{"model":"m","messages":[{"a":[1,2,{"b":null}]}],"x":-0.0E+1}`,
	`[]`, `{}`, `{"model":}`, `{"model":"m"`, `{"model":"\ud800","messages":[true,false,null]}`,
	`{"a":"\u00"}`, `01`, `{"model":"m","messages":[1]} x`,
}

// FuzzParseRequest checks the request scanner against encoding/json: it
// accepts exactly the valid JSON objects, agrees on the model value, and
// its splice always yields valid JSON with the new model.
func FuzzParseRequest(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		valid := json.Valid(body)
		if err == nil {
			if !valid {
				t.Fatalf("accepted invalid JSON %q", body)
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatalf("accepted a non-object %q: %v", body, err)
			}
			var model string
			if err := json.Unmarshal(m["model"], &model); err != nil || model != req.Model {
				t.Fatalf("model %q, encoding/json says %q (%v)", req.Model, model, err)
			}
			out := req.ModelAt.AppendTo(nil, body, []byte(`"rewritten"`))
			var after map[string]json.RawMessage
			if err := json.Unmarshal(out, &after); err != nil {
				t.Fatalf("splice broke the JSON: %q: %v", out, err)
			}
			if string(after["model"]) != `"rewritten"` {
				t.Fatalf("splice left model %s in %q", after["model"], out)
			}
			return
		}
		if err == ErrInvalidJSON && valid && bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("{")) {
			t.Fatalf("rejected valid JSON object %q", body)
		}
	})
}

// FuzzSkipValue checks the validating skipper against json.Valid.
func FuzzSkipValue(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		end, err := skipValue(b, 0)
		ok := err == nil && skipWS(b, end) == len(b)
		if ok != json.Valid(b) {
			t.Fatalf("skipValue ok=%v, json.Valid=%v for %q", ok, json.Valid(b), b)
		}
	})
}

// FuzzScanChunk: never panics; an accepted chunk is valid JSON and splices
// into valid JSON whose model is the alias.
func FuzzScanChunk(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","model":"gpt","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}`,
		`{"choices":[{"delta":{},"finish_reason":"stop"}]}`, `{"error":{"message":"x"}}`, `{}`, `{"choices":[{"delta":`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ScanChunk(b)
		isObject := json.Valid(b) && bytes.HasPrefix(bytes.TrimLeft(b, " \t\r\n"), []byte("{"))
		if err != nil {
			if isObject {
				t.Fatalf("rejected a valid JSON object %q", b)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("accepted invalid JSON %q", b)
		}
		out := c.Model.AppendTo(nil, b, []byte(`"alias"`))
		var m map[string]json.RawMessage
		if err := json.Unmarshal(out, &m); err != nil || string(m["model"]) != `"alias"` {
			t.Fatalf("splice gave %q: %v", out, err)
		}
	})
}

// FuzzSSEReader compares the streaming parser, with a tiny buffer, against
// a plain line-splitting reference of the same rules.
func FuzzSSEReader(f *testing.F) {
	for _, s := range []string{
		"data: a\n\ndata: b\n\n", "data: a\r\ndata: b\r\n\r\n", ": c\nevent: error\ndata: {}\n\n",
		"data:x\n\ndata", "event: e\n\n\n", "data: [DONE]", "id: 1\nretry: 5\ndata:  y\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := readAllEvents(string(in), 16, 1<<20)
		if err != nil {
			t.Fatalf("error %v on %q", err, in)
		}
		want := referenceSSE(string(in))
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("parser %q\nreference %q\ninput %q", got, want, in)
		}
	})
}

// referenceSSE is the obvious implementation: split into lines ("\n" or
// "\r\n"), dispatch on blank lines, and at EOF.
func referenceSSE(in string) []string {
	var out []string
	var data []string
	name, has := "", false
	dispatch := func() {
		if has {
			out = append(out, name+"|"+strings.Join(data, "\n"))
		}
		data, name, has = nil, "", false
	}
	lines := strings.Split(in, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, line := range lines {
		if i < len(lines)-1 || strings.HasSuffix(in, "\n") {
			line = strings.TrimSuffix(line, "\r")
		}
		if line == "" {
			dispatch()
			continue
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found && strings.HasPrefix(value, " ") {
			value = value[1:]
		}
		switch field {
		case "data":
			data = append(data, value)
			has = true
		case "event":
			name = value
		}
	}
	dispatch()
	return out
}

// TestSSERoundTrip: frames written by AppendData read back unchanged.
func TestSSERoundTrip(t *testing.T) {
	payloads := []string{`{"a":1}`, "line1\nline2", "", "[DONE]"}
	var buf []byte
	for _, p := range payloads {
		buf = AppendData(buf, []byte(p))
	}
	r := NewSSEReader(bufio.NewReaderSize(bytes.NewReader(buf), 16), 0)
	for _, want := range payloads {
		ev, err := r.Next()
		if err != nil || string(ev.Data) != want {
			t.Fatalf("got %q %v, want %q", ev.Data, err, want)
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
}

// FuzzOpenAIStream checks the OpenAI stream decoder on arbitrary events:
// it never panics, an error leaves dst as it was, and what it writes is
// whole SSE data frames whose JSON carries the alias as its model.
func FuzzOpenAIStream(f *testing.F) {
	for _, s := range []string{
		`{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`,
		`{"choices":[],"prompt_filter_results":[{"prompt_index":0}]}`,
		`{"error":{"message":"boom"}}`, `[DONE]`, ` [DONE] `, `{"model":1}`, `{`, ``,
		"{\n\"model\":\"m\",\n\"choices\":[]\n}",
	} {
		f.Add([]byte(""), []byte(s))
		f.Add([]byte("message"), []byte(s))
		f.Add([]byte("error"), []byte(s))
	}
	alias := &Alias{Name: "chat-prod", JSON: []byte(`"chat-prod"`)}
	dec := (&OpenAI{}).Stream(nil, alias)
	f.Fuzz(func(t *testing.T, name, data []byte) {
		prefix := []byte("x")
		out, info, err := dec.Event(prefix, name, data)
		if err != nil || info.Error != nil {
			if len(out) != 1 {
				t.Fatalf("error %v / %+v wrote %q", err, info.Error, out[1:])
			}
			return
		}
		frames := out[1:]
		if len(frames) == 0 {
			return
		}
		if info.Done {
			if string(frames) != "data: [DONE]\n\n" {
				t.Fatalf("done wrote %q", frames)
			}
			return
		}
		var payload []byte
		for _, line := range strings.Split(strings.TrimSuffix(string(frames), "\n\n"), "\n") {
			v, ok := strings.CutPrefix(line, "data: ")
			if !ok {
				t.Fatalf("not a data frame: %q", frames)
			}
			payload = append(append(payload, v...), '\n')
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatalf("frame is not a JSON object: %q (%v)", payload, err)
		}
		if string(m["model"]) != `"chat-prod"` {
			t.Fatalf("model %s, want the alias: %q", m["model"], payload)
		}
	})
}

// FuzzResponsesStream checks the Responses API relay on arbitrary events:
// it never panics, an error or an in-band error leaves dst as it was, and
// what it writes is one SSE event with the data unchanged.
func FuzzResponsesStream(f *testing.F) {
	for _, s := range []string{
		`{"type":"response.created","sequence_number":0,"response":{"id":"resp_1","object":"response","status":"in_progress"}}`,
		`{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","sequence_number":4}`,
		`{"type":"response.completed","response":{"id":"resp_1","status":"completed"}}`,
		`{"type":"response.failed","response":{"id":"resp_1","status":"failed","error":{"code":"server_error","message":"x"}}}`,
		`{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null}`,
		`{`, ``, `[DONE]`, "{\"type\":\n\"x.delta\",\"delta\":\"a\"}",
	} {
		f.Add([]byte("response.output_text.delta"), []byte(s))
		f.Add([]byte(""), []byte(s))
	}
	dec := (&OpenAI{}).Stream(&Inbound{Op: OpResponses}, nil) // no alias: data passes unchanged
	f.Fuzz(func(t *testing.T, name, data []byte) {
		out, info, err := dec.Event([]byte("x"), name, data)
		if err != nil || info.Error != nil {
			if len(out) != 1 {
				t.Fatalf("error %v / %+v wrote %q", err, info.Error, out[1:])
			}
			return
		}
		frame := string(out[1:])
		if !strings.HasSuffix(frame, "\n\n") {
			t.Fatalf("frame does not end an event: %q", frame)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSuffix(frame, "\n\n"), "\n") {
			if v, ok := strings.CutPrefix(line, "data: "); ok {
				got = append(got, v)
			} else if !strings.HasPrefix(line, "event: ") {
				t.Fatalf("unexpected line %q in %q", line, frame)
			}
		}
		if strings.Join(got, "\n") != string(bytes.TrimSpace(data)) {
			t.Fatalf("data changed: %q → %q", data, got)
		}
	})
}

// FuzzParseRequestFor: for every endpoint, an accepted body is a valid
// JSON object whose model is what encoding/json reads.
func FuzzParseRequestFor(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s), uint8(0))
	}
	f.Add([]byte(`{"model":"e","input":["a"],"dimensions":3}`), uint8(OpEmbeddings))
	f.Add([]byte(`{"model":"c","prompt":"x","stream":true}`), uint8(OpCompletions))
	f.Add([]byte(`{"model":"r","previous_response_id":"resp_\u0031"}`), uint8(OpResponses))
	f.Fuzz(func(t *testing.T, body []byte, op uint8) {
		o := Op(op % uint8(OpCountTokens+1))
		req, err := ParseRequestFor(body, o)
		if err != nil {
			return
		}
		var m struct {
			Model string `json:"model"`
			Prev  any    `json:"previous_response_id"`
		}
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s accepted %q: %v", o, body, err)
		}
		if m.Model != req.Model {
			t.Fatalf("%s model %q, encoding/json reads %q", o, req.Model, m.Model)
		}
		if p, ok := m.Prev.(string); o == OpResponses && ok && p != req.PreviousResponseID {
			t.Fatalf("previous_response_id %q, encoding/json reads %q", req.PreviousResponseID, p)
		}
	})
}
