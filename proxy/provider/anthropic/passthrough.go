package anthropic

import (
	"bytes"
	"encoding/json"

	"github.com/aisix/aisix/proxy/provider"
)

// The Messages API served to a caller that speaks it (Claude Code, the
// Anthropic SDKs): the caller's body goes upstream with only its model
// value replaced, and the answer and the event stream come back as they
// are, the stream read only as far as the failover loop needs.

// passthroughStream relays a Messages event stream. Content is a
// content_block_delta that carries something, or the start of a tool_use
// block; message_delta with a stop_reason finishes, message_stop ends,
// error is an in-band error. Pings are dropped: the gateway sends its own
// on silence, so an upstream's pings neither reach the caller nor count
// as progress. message_start's message.model becomes the alias, as the
// model of every answer does; nothing else is changed.
type passthroughStream provider.Alias

// NewPassthroughStream returns the relay of one Messages event stream to
// a Messages caller, message_start's model set to alias (the decoder the
// Endpoint uses for OpMessages; Claude on Vertex AI streams the same
// events).
func NewPassthroughStream(alias *provider.Alias) provider.StreamDecoder {
	return (*passthroughStream)(alias)
}

// ptEvent is what the relay reads of an event.
type ptEvent struct {
	Type         string `json:"type"`
	ContentBlock struct {
		Type string `json:"type"`
	} `json:"content_block"`
	Delta struct {
		Type        string          `json:"type"`
		Text        string          `json:"text"`
		Thinking    string          `json:"thinking"`
		PartialJSON string          `json:"partial_json"`
		StopReason  json.RawMessage `json:"stop_reason"`
	} `json:"delta"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func (s *passthroughStream) Event(dst, name, data []byte) ([]byte, provider.EventInfo, error) {
	var info provider.EventInfo
	data = bytes.TrimSpace(data)
	if len(data) == 0 && string(name) == "ping" {
		return dst, info, nil
	}
	var ev ptEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		return dst, info, ErrBadEvent
	}
	typ := ev.Type
	if typ == "" {
		typ = string(name)
	}
	switch typ {
	case "ping":
		return dst, info, nil
	case "error":
		info.Error = &Failure{Class: classify(0, ev.Error.Type, ev.Error.Message), Type: ev.Error.Type, Message: ev.Error.Message}
		return dst, info, nil
	case "content_block_start":
		info.Content = ev.ContentBlock.Type == "tool_use" || ev.ContentBlock.Type == "server_tool_use"
	case "content_block_delta":
		d := &ev.Delta
		info.Content = d.Text != "" || d.Thinking != "" || d.PartialJSON != "" || (d.Type != "text_delta" && d.Type != "thinking_delta" && d.Type != "input_json_delta" && d.Type != "signature_delta")
	case "message_delta":
		info.Finished = len(ev.Delta.StopReason) > 0 && string(ev.Delta.StopReason) != "null"
		info.Usage, _ = provider.ScanUsage(data)
	case "message_stop":
		info.Done = true
	case "message_start":
		info.Usage, _ = provider.ScanUsage(data)
		if sp, ok := provider.FindNestedModel(data, "message"); ok && s != nil {
			data = sp.AppendTo(make([]byte, 0, sp.Len(data, s.JSON)), data, s.JSON)
		}
	}
	return provider.AppendEvent(dst, []byte(typ), data), info, nil
}

// End appends nothing: a Messages stream that lost its message_stop is
// not completed by the gateway (the caller's SDK reports it).
func (s *passthroughStream) End(dst []byte) []byte { return dst }
