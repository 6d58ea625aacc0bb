package anthropic

import (
	"github.com/aisix/aisix/proxy/provider"

	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Stream errors. An error means the upstream stream is unusable; the
// caller treats it like a cut stream.
var (
	ErrBadEvent       = errors.New("malformed upstream stream event")
	ErrNoMessageStart = errors.New("upstream stream event before message_start")
	ErrAfterStop      = errors.New("upstream stream event after message_stop")
)

// maxBlocks caps the content block index a stream may use.
const maxBlocks = 4096

// EventInfo says what one upstream event meant (see provider.EventInfo):
// Content for a text, tool-call or reasoning delta (the role chunk, ping
// and stop events are not), Finished for the finish_reason chunk, Done
// once message_stop was translated (out ends with "data: [DONE]"), and
// Error for an in-band error event (nothing written).
type EventInfo = provider.EventInfo

type blockKind uint8

const (
	blockOther blockKind = iota
	blockText
	blockThinking
	blockTool
	blockJSON
)

type blockState struct {
	kind blockKind
	tool int32
}

// sUsage is a usage object whose absent fields stay -1.
type sUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

func (u *sUsage) reset() { *u = sUsage{-1, -1, -1, -1} }

func (u *sUsage) mergeInto(d *anUsage) {
	if u.InputTokens >= 0 {
		d.InputTokens = u.InputTokens
	}
	if u.OutputTokens >= 0 {
		d.OutputTokens = u.OutputTokens
	}
	if u.CacheCreationInputTokens >= 0 {
		d.CacheCreationInputTokens = u.CacheCreationInputTokens
	}
	if u.CacheReadInputTokens >= 0 {
		d.CacheReadInputTokens = u.CacheReadInputTokens
	}
}

// sEvent is one decoded event. It is reused: json.RawMessage fields keep
// their capacity across events, so steady-state decoding does not allocate
// per field.
type sEvent struct {
	Type    json.RawMessage `json:"type"`
	Index   int             `json:"index"`
	Message struct {
		ID    json.RawMessage `json:"id"`
		Usage sUsage          `json:"usage"`
	} `json:"message"`
	ContentBlock struct {
		Type     json.RawMessage `json:"type"`
		ID       json.RawMessage `json:"id"`
		Name     json.RawMessage `json:"name"`
		Text     json.RawMessage `json:"text"`
		Thinking json.RawMessage `json:"thinking"`
	} `json:"content_block"`
	Delta struct {
		Type        json.RawMessage `json:"type"`
		Text        json.RawMessage `json:"text"`
		PartialJSON json.RawMessage `json:"partial_json"`
		Thinking    json.RawMessage `json:"thinking"`
		StopReason  json.RawMessage `json:"stop_reason"`
	} `json:"delta"`
	Usage sUsage `json:"usage"`
	Error struct {
		Type    json.RawMessage `json:"type"`
		Message json.RawMessage `json:"message"`
	} `json:"error"`
}

func (e *sEvent) reset() {
	e.Type = e.Type[:0]
	e.Index = -1
	e.Message.ID = e.Message.ID[:0]
	e.Message.Usage.reset()
	c := &e.ContentBlock
	c.Type, c.ID, c.Name, c.Text, c.Thinking = c.Type[:0], c.ID[:0], c.Name[:0], c.Text[:0], c.Thinking[:0]
	d := &e.Delta
	d.Type, d.Text, d.PartialJSON, d.Thinking, d.StopReason = d.Type[:0], d.Text[:0], d.PartialJSON[:0], d.Thinking[:0], d.StopReason[:0]
	e.Usage.reset()
	e.Error.Type, e.Error.Message = e.Error.Type[:0], e.Error.Message[:0]
}

// Stream translates one Anthropic Messages event stream into OpenAI
// chat.completion.chunk frames. It is not safe for concurrent use; make
// one per upstream answer.
type Stream struct {
	alias        string
	created      int64
	includeUsage bool

	prefix   []byte // `data: {"id":…,"model":…,"choices":[`
	started  bool
	finished bool
	done     bool
	jsonOnly bool // a JSONTool block was seen and no other tool
	tools    int32
	usage    anUsage
	blocks   []blockState
	ev       sEvent

	// One decoder for the whole stream, fed one event's data at a time.
	dec provider.EventJSON
	err error // the first decoding error; the stream is unusable after it
}

// decode decodes one event's data into s.ev. Data must be exactly one JSON
// value (surrounding space allowed). After an error every later call
// fails too: the stream is unusable.
func (s *Stream) decode(data []byte) error {
	if s.err != nil {
		return s.err
	}
	s.ev.reset()
	if err := s.dec.Decode(data, &s.ev); err != nil {
		s.err = fmt.Errorf("%w: %v", ErrBadEvent, err)
		return s.err
	}
	return nil
}

// NewStream returns a translator for one stream answered under alias.
// includeUsage is the caller's stream_options.include_usage.
func NewStream(alias string, created int64, includeUsage bool) *Stream {
	return &Stream{alias: alias, created: created, includeUsage: includeUsage}
}

// str reports whether raw is a JSON string token (not null, not absent).
func str(raw []byte) bool { return len(raw) >= 2 && raw[0] == '"' }

// nonEmpty reports whether raw is a JSON string with at least one character.
func nonEmpty(raw []byte) bool { return len(raw) > 2 && raw[0] == '"' }

func is(raw []byte, lit string) bool { return string(raw) == lit }

// unquote decodes a JSON string token.
func unquote(raw []byte) string {
	var s string
	if !str(raw) || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

func (s *Stream) open(dst []byte) []byte { return append(dst, s.prefix...) }

func closeChunk(dst []byte) []byte { return append(dst, "]}\n\n"...) }

// deltaChunk appends a chunk whose delta is {key: raw} (raw a JSON string).
func (s *Stream) deltaChunk(dst []byte, key string, raw []byte) []byte {
	dst = s.open(dst)
	dst = append(dst, `{"index":0,"delta":{"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	dst = append(dst, raw...)
	dst = append(dst, `},"finish_reason":null}`...)
	return closeChunk(dst)
}

func (s *Stream) finishChunk(dst []byte, reason string) []byte {
	s.finished = true
	dst = s.open(dst)
	dst = append(dst, `{"index":0,"delta":{},"finish_reason":"`...)
	dst = append(dst, reason...)
	dst = append(dst, `"}`...)
	return closeChunk(dst)
}

func (s *Stream) block(i int) *blockState {
	if i < 0 || i >= len(s.blocks) {
		return nil
	}
	return &s.blocks[i]
}

// Event translates one upstream SSE event (its event name and data) and
// appends the OpenAI frames it yields to dst:
//
//   - message_start → the first chunk, delta {"role":"assistant","content":""};
//   - content_block_start of a tool_use → a tool_calls delta with index
//     0, 1, 2… in order of tool blocks, the id, type function, the name and
//     empty arguments;
//   - text_delta → content; input_json_delta → that tool's arguments;
//     thinking_delta → reasoning_content; signature_delta → nothing;
//   - message_delta → the finish_reason chunk (usage is kept);
//   - message_stop → the usage chunk (choices [] and usage) when
//     includeUsage, then "data: [DONE]";
//   - ping, content_block_stop and unknown event types → nothing;
//   - error → nothing, and ev.Error classifies it.
//
// A JSONTool block (response_format) streams its input as content. The
// event type is read from data's "type", else from name. err is non-nil
// for data that is not JSON, an event before message_start, or one after
// message_stop. After a malformed event every later call fails too.
func (s *Stream) Event(dst []byte, name, data []byte) (out []byte, ev EventInfo, err error) {
	if len(bytes.TrimSpace(data)) == 0 && is(name, "ping") {
		return dst, ev, nil
	}
	if err := s.decode(data); err != nil {
		return dst, ev, err
	}
	e := &s.ev
	typ := []byte(e.Type)
	if str(typ) {
		typ = typ[1 : len(typ)-1]
	} else {
		typ = name
	}
	switch string(typ) {
	case "ping":
		return dst, ev, nil
	case "error":
		f := &Failure{Type: unquote(e.Error.Type), Message: unquote(e.Error.Message)}
		f.Class = classify(0, f.Type, f.Message)
		ev.Error = f
		return dst, ev, nil
	case "message_start":
		if s.started {
			return dst, ev, fmt.Errorf("%w: a second message_start", ErrBadEvent)
		}
		id := unquote(e.Message.ID)
		if id == "" {
			return dst, ev, fmt.Errorf("%w: message_start without a message id", ErrBadEvent)
		}
		s.started = true
		e.Message.Usage.mergeInto(&s.usage)
		p := make([]byte, 0, 96+len(id)+len(s.alias))
		p = append(p, `data: {"id":`...)
		p = appendString(p, "chatcmpl-"+id)
		p = append(p, `,"object":"chat.completion.chunk","created":`...)
		p = appendInt(p, s.created)
		p = append(p, `,"model":`...)
		p = appendString(p, s.alias)
		s.prefix = append(p, `,"choices":[`...)
		dst = s.open(dst)
		dst = append(dst, `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}`...)
		return closeChunk(dst), ev, nil
	}
	if !s.started {
		return dst, ev, ErrNoMessageStart
	}
	if s.done {
		return dst, ev, ErrAfterStop
	}
	switch string(typ) {
	case "content_block_start":
		i := e.Index
		if i < 0 || i >= maxBlocks {
			return dst, ev, fmt.Errorf("%w: content block index %d", ErrBadEvent, i)
		}
		for len(s.blocks) <= i {
			s.blocks = append(s.blocks, blockState{})
		}
		cb := &e.ContentBlock
		b := &s.blocks[i]
		switch {
		case is(cb.Type, `"text"`):
			*b = blockState{kind: blockText}
			if nonEmpty(cb.Text) {
				dst = s.deltaChunk(dst, "content", cb.Text)
				ev.Content = true
			}
		case is(cb.Type, `"thinking"`):
			*b = blockState{kind: blockThinking}
			if nonEmpty(cb.Thinking) {
				dst = s.deltaChunk(dst, "reasoning_content", cb.Thinking)
				ev.Content = true
			}
		case is(cb.Type, `"tool_use"`) && is(cb.Name, `"`+JSONTool+`"`):
			*b = blockState{kind: blockJSON}
			if s.tools == 0 {
				s.jsonOnly = true
			}
		case is(cb.Type, `"tool_use"`):
			if !str(cb.ID) || !str(cb.Name) {
				return dst, ev, fmt.Errorf("%w: tool_use block without id or name", ErrBadEvent)
			}
			*b = blockState{kind: blockTool, tool: s.tools}
			s.tools++
			s.jsonOnly = false
			dst = s.open(dst)
			dst = append(dst, `{"index":0,"delta":{"tool_calls":[{"index":`...)
			dst = appendInt(dst, int64(b.tool))
			dst = append(dst, `,"id":`...)
			dst = append(dst, cb.ID...)
			dst = append(dst, `,"type":"function","function":{"name":`...)
			dst = append(dst, cb.Name...)
			dst = append(dst, `,"arguments":""}}]},"finish_reason":null}`...)
			dst = closeChunk(dst)
			ev.Content = true
		default:
			*b = blockState{kind: blockOther}
		}
	case "content_block_delta":
		d := &e.Delta
		switch {
		case is(d.Type, `"text_delta"`):
			if nonEmpty(d.Text) {
				dst = s.deltaChunk(dst, "content", d.Text)
				ev.Content = true
			}
		case is(d.Type, `"thinking_delta"`):
			if nonEmpty(d.Thinking) {
				dst = s.deltaChunk(dst, "reasoning_content", d.Thinking)
				ev.Content = true
			}
		case is(d.Type, `"input_json_delta"`):
			b := s.block(e.Index)
			if b == nil || !nonEmpty(d.PartialJSON) {
				break
			}
			switch b.kind {
			case blockJSON:
				dst = s.deltaChunk(dst, "content", d.PartialJSON)
				ev.Content = true
			case blockTool:
				dst = s.open(dst)
				dst = append(dst, `{"index":0,"delta":{"tool_calls":[{"index":`...)
				dst = appendInt(dst, int64(b.tool))
				dst = append(dst, `,"function":{"arguments":`...)
				dst = append(dst, d.PartialJSON...)
				dst = append(dst, `}}]},"finish_reason":null}`...)
				dst = closeChunk(dst)
				ev.Content = true
			}
		}
		// signature_delta, citations_delta and others: nothing.
	case "message_delta":
		e.Usage.mergeInto(&s.usage)
		if str(e.Delta.StopReason) && !s.finished {
			reason := FinishReason(string(e.Delta.StopReason[1 : len(e.Delta.StopReason)-1]))
			if reason == "tool_calls" && s.jsonOnly {
				reason = "stop"
			}
			dst = s.finishChunk(dst, reason)
			ev.Finished = true
		}
	case "message_stop":
		if !s.finished {
			dst = s.finishChunk(dst, "stop")
			ev.Finished = true
		}
		dst = s.stop(dst)
		ev.Done, ev.Usage = true, usageOf(&s.usage)
	}
	return dst, ev, nil
}

// stop appends the usage chunk (when the caller asked for it) and [DONE].
func (s *Stream) stop(dst []byte) []byte {
	if s.includeUsage {
		dst = s.open(dst)
		dst = append(dst, `],"usage":`...)
		dst = appendUsage(dst, &s.usage)
		dst = append(dst, "}\n\n"...)
	}
	s.done = true
	return append(dst, "data: [DONE]\n\n"...)
}

// End completes a stream that ended after its finish_reason chunk without
// message_stop, as message_stop would have: the usage chunk, then [DONE].
// It appends nothing to a stream that is done, or that never started.
func (s *Stream) End(dst []byte) []byte {
	if s.done || !s.started {
		return dst
	}
	return s.stop(dst)
}
