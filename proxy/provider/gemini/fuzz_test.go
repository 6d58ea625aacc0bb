package gemini

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
)

// FuzzTranslateRequest: any body either translates to one JSON object or
// fails with a *RequestError; it never panics.
func FuzzTranslateRequest(f *testing.F) {
	ins, _ := filepath.Glob("testdata/request/*.openai.json")
	for _, in := range ins {
		b, _ := os.ReadFile(in)
		f.Add(b, false)
	}
	f.Add([]byte(`{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"anyOf":[{"type":"null"}]}}}]}`), true)
	f.Fuzz(func(t *testing.T, body []byte, stream bool) {
		out, err := TranslateRequest(body, stream)
		if err != nil {
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("error %v is not a RequestError", err)
			}
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(out, &m) != nil || m["contents"] == nil {
			t.Fatalf("output is not a request object: %s", out)
		}
	})
}

// FuzzStream: any sequence of events yields only whole JSON frames (or
// [DONE] last) and never panics.
func FuzzStream(f *testing.F) {
	b, _ := os.ReadFile("testdata/stream/text.sse")
	evs := strings.Split(strings.TrimSpace(string(b)), "\n\n")
	for _, e := range evs {
		f.Add([]byte(strings.TrimPrefix(e, "data: ")), []byte(`{"candidates":[{"finishReason":"STOP"}]}`))
	}
	f.Add([]byte(`{"error":{"code":503,"status":"UNAVAILABLE"}}`), []byte(`{}`))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		s := NewStream("alias", 1, true)
		var out []byte
		for _, data := range [][]byte{a, b, a} {
			var info provider.EventInfo
			var err error
			n := len(out)
			out, info, err = s.Event(out, nil, data)
			if err != nil && len(out) != n {
				t.Fatalf("output written on error")
			}
			if info.Error != nil && len(out) != n {
				t.Fatalf("output written for an error event")
			}
		}
		out = s.End(out)
		frames := strings.Split(strings.TrimSuffix(string(out), "\n\n"), "\n\n")
		for i, fr := range frames {
			if fr == "" {
				continue
			}
			d, ok := strings.CutPrefix(fr, "data: ")
			if !ok {
				t.Fatalf("frame %d is not a data frame: %q", i, fr)
			}
			if d == "[DONE]" {
				if i != len(frames)-1 {
					t.Fatalf("[DONE] is not last")
				}
				continue
			}
			if !json.Valid([]byte(d)) {
				t.Fatalf("frame %d is not JSON: %s", i, d)
			}
		}
	})
}
