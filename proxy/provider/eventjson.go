package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// EventJSON decodes the JSON data of one stream event after another with
// one json.Decoder: unlike json.Unmarshal it keeps its buffers, so events
// in a steady stream decode without allocating. It is not safe for
// concurrent use; keep one per stream.
type EventJSON struct {
	feed eventFeed
	dec  *json.Decoder
	fed  int64 // bytes given to dec so far
}

// eventFeed is the decoder's reader: the current event's data, then
// io.EOF.
type eventFeed struct{ b []byte }

func (f *eventFeed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// errNotOneValue is data that holds more than one JSON value.
var errNotOneValue = errors.New("more than one JSON value")

// Decode decodes data, which must be exactly one JSON value (surrounding
// space allowed), into v. After an error the next call starts afresh.
func (d *EventJSON) Decode(data []byte, v any) error {
	if d.dec == nil {
		d.feed.b = nil
		d.dec = json.NewDecoder(&d.feed)
		d.fed = 0
	}
	// Trailing space of the last event the decoder did not read.
	d.fed -= int64(len(d.feed.b))
	d.feed.b = data
	d.fed += int64(len(data))
	err := d.dec.Decode(v)
	if err == nil {
		rest := d.fed - d.dec.InputOffset()
		if rest < 0 || rest > int64(len(data)) || len(bytes.TrimSpace(data[int64(len(data))-rest:])) > 0 {
			err = errNotOneValue
		}
	}
	if err != nil {
		d.dec = nil // its state is lost with a bad value
	}
	return err
}

// JSONReason says in a few words why a caller's body did not decode, for
// a RequestError: the field with the wrong type, or the syntax error.
func JSONReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %s has the wrong type (%s)", te.Field, te.Value)
	}
	return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

// IsNullJSON reports whether raw is absent or JSON null.
func IsNullJSON(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// ToolChoice is a caller's OpenAI tool_choice: Mode "auto", "none",
// "required" or "function" (with Name), or "" when it is absent or null.
type ToolChoice struct {
	Mode string
	Name string
}

// ParseToolChoice reads an OpenAI tool_choice: "auto", "none",
// "required", or {"type":"function","function":{"name":…}}. Anything else
// is a *RequestError on the field tool_choice.
func ParseToolChoice(raw json.RawMessage) (ToolChoice, error) {
	if IsNullJSON(raw) {
		return ToolChoice{}, nil
	}
	var mode string
	if json.Unmarshal(raw, &mode) == nil {
		switch mode {
		case "auto", "none", "required":
			return ToolChoice{Mode: mode}, nil
		}
		return ToolChoice{}, &RequestError{Field: "tool_choice", Reason: fmt.Sprintf("unsupported value %q", mode)}
	}
	var named struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &named) != nil || named.Type != "function" || named.Function.Name == "" {
		return ToolChoice{}, &RequestError{Field: "tool_choice", Reason: `must be "auto", "none", "required" or {"type":"function","function":{"name":...}}`}
	}
	return ToolChoice{Mode: "function", Name: named.Function.Name}, nil
}
