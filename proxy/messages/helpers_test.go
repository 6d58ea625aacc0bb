package messages

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
)

func jsonEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		gi, _ := json.MarshalIndent(g, "", "  ")
		wi, _ := json.MarshalIndent(w, "", "  ")
		t.Errorf("JSON differs\n got: %s\nwant: %s", gi, wi)
	}
}

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

// parseFrames checks that b is a sequence of well-formed frames,
// "event: <name>\ndata: <one line of JSON>\n\n", each data a JSON object
// whose type is the event name, and returns them.
func parseFrames(b []byte) ([]sseEvent, error) {
	var out []sseEvent
	s := string(b)
	for s != "" {
		frame, rest, ok := strings.Cut(s, "\n\n")
		if !ok {
			return nil, fmt.Errorf("unterminated frame %q", s)
		}
		s = rest
		head, data, ok := strings.Cut(frame, "\n")
		name, ok1 := strings.CutPrefix(head, "event: ")
		data, ok2 := strings.CutPrefix(data, "data: ")
		if !ok || !ok1 || !ok2 || strings.Contains(data, "\n") {
			return nil, fmt.Errorf("malformed frame %q", frame)
		}
		var v struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(data), &v); err != nil || !json.Valid([]byte(data)) {
			return nil, fmt.Errorf("frame %q: invalid JSON data", frame)
		}
		if v.Type != name {
			return nil, fmt.Errorf("frame %q: type %q is not the event name", frame, v.Type)
		}
		out = append(out, sseEvent{name, data})
	}
	return out, nil
}

func compareEvents(t *testing.T, got []byte, want []sseEvent) {
	t.Helper()
	g, err := parseFrames(got)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(g) || i < len(want); i++ {
		switch {
		case i >= len(g):
			t.Errorf("event %d missing, want %s %s", i, want[i].name, want[i].data)
		case i >= len(want):
			t.Errorf("extra event %d: %s %s", i, g[i].name, g[i].data)
		default:
			if g[i].name != want[i].name {
				t.Errorf("event %d is %s, want %s", i, g[i].name, want[i].name)
				continue
			}
			jsonEqual(t, []byte(g[i].data), []byte(want[i].data))
		}
	}
}

var _ = bytes.Equal
