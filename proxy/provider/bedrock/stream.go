package bedrock

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/aisix/aisix/proxy/provider"
)

// Stream errors: the upstream stream is unusable after one.
var (
	ErrBadEvent         = errors.New("malformed upstream stream event")
	ErrNoMessageStart   = errors.New("upstream stream event before messageStart")
	ErrAfterEnd         = errors.New("upstream stream event after metadata")
	errBadFrame         = errors.New("malformed event stream frame")
	exceptionNamePrefix = "!"
)

// frames reads application/vnd.amazon.eventstream messages (prelude,
// headers, payload, CRCs checked by the AWS decoder) as events: an event
// message is named by its :event-type, an exception by "!" and its
// :exception-type; the data is the payload.
type frames struct {
	br   *bufio.Reader
	max  int
	dec  *eventstream.Decoder
	buf  []byte
	name []byte
}

// NewFrames returns the event source of one ConverseStream body. Messages
// whose payload exceeds max bytes fail with provider.ErrEventTooLarge.
func NewFrames(br *bufio.Reader, max int) provider.EventSource {
	if max <= 0 {
		max = 4 << 20
	}
	return &frames{br: br, max: max, dec: eventstream.NewDecoder()}
}

// Next decodes the next message. io.EOF is a stream that ended between
// messages; a cut inside one is io.ErrUnexpectedEOF.
func (f *frames) Next() (provider.SSEEvent, error) {
	// The AWS decoder trusts the prelude's lengths; check them first so a
	// corrupt or hostile length cannot make it read gigabytes.
	p, err := f.br.Peek(8)
	switch {
	case err == io.EOF && len(p) == 0:
		return provider.SSEEvent{}, io.EOF
	case err == io.EOF:
		return provider.SSEEvent{}, io.ErrUnexpectedEOF
	case err != nil:
		return provider.SSEEvent{}, err
	}
	total, hlen := binary.BigEndian.Uint32(p[0:4]), binary.BigEndian.Uint32(p[4:8])
	if total < 16 || hlen > total-16 {
		return provider.SSEEvent{}, errBadFrame
	}
	if int64(total-16-hlen) > int64(f.max) || hlen > 128<<10 {
		return provider.SSEEvent{}, provider.ErrEventTooLarge
	}
	m, err := f.dec.Decode(f.br, f.buf[:0])
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return provider.SSEEvent{}, io.ErrUnexpectedEOF
		}
		return provider.SSEEvent{}, fmt.Errorf("%w: %v", errBadFrame, err)
	}
	f.buf = m.Payload
	f.name = f.name[:0]
	switch header(m.Headers, ":message-type") {
	case "exception":
		f.name = append(append(f.name, exceptionNamePrefix...), header(m.Headers, ":exception-type")...)
	case "error":
		f.name = append(append(f.name, exceptionNamePrefix...), header(m.Headers, ":error-code")...)
	default:
		f.name = append(f.name, header(m.Headers, ":event-type")...)
	}
	return provider.SSEEvent{Name: f.name, Data: m.Payload}, nil
}

func header(hs eventstream.Headers, name string) string {
	for _, h := range hs {
		if h.Name == name {
			if s, ok := h.Value.(eventstream.StringValue); ok {
				return string(s)
			}
			return h.Value.String()
		}
	}
	return ""
}

// sEvent is one ConverseStream event's payload, all kinds in one. It is
// reused: the json.RawMessage fields keep their capacity across events,
// and strings are kept as their JSON tokens (written out as they are).
type sEvent struct {
	ContentBlockIndex int `json:"contentBlockIndex"`
	Start             struct {
		ToolUse struct {
			ToolUseID json.RawMessage `json:"toolUseId"`
			Name      json.RawMessage `json:"name"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta struct {
		Text    json.RawMessage `json:"text"`
		ToolUse struct {
			Input json.RawMessage `json:"input"`
		} `json:"toolUse"`
		ReasoningContent struct {
			Text json.RawMessage `json:"text"`
		} `json:"reasoningContent"`
	} `json:"delta"`
	StopReason json.RawMessage `json:"stopReason"`
	Usage      json.RawMessage `json:"usage"`
}

func (e *sEvent) reset() {
	e.ContentBlockIndex = 0
	e.Start.ToolUse.ToolUseID, e.Start.ToolUse.Name = e.Start.ToolUse.ToolUseID[:0], e.Start.ToolUse.Name[:0]
	e.Delta.Text, e.Delta.ToolUse.Input, e.Delta.ReasoningContent.Text = e.Delta.Text[:0], e.Delta.ToolUse.Input[:0], e.Delta.ReasoningContent.Text[:0]
	e.StopReason, e.Usage = e.StopReason[:0], e.Usage[:0]
}

// str reports whether raw is a JSON string token; nonEmpty one with at
// least one character.
func str(raw []byte) bool      { return len(raw) >= 2 && raw[0] == '"' }
func nonEmpty(raw []byte) bool { return len(raw) > 2 && raw[0] == '"' }

// Stream translates one ConverseStream into OpenAI chat.completion.chunk
// frames. Make one per upstream answer; it is not safe for concurrent use.
type Stream struct {
	alias        string
	created      int64
	includeUsage bool

	prefix   []byte
	started  bool
	finished bool
	done     bool
	tools    map[int]int // content block index → tool call index
	usage    usage
	ev       sEvent
}

// NewStream returns the translator of one stream answered under alias;
// includeUsage is the caller's stream_options.include_usage.
func NewStream(alias string, created int64, includeUsage bool) *Stream {
	return &Stream{alias: alias, created: created, includeUsage: includeUsage}
}

// Frames makes the proxy read the body as an AWS event stream
// (provider.Framer).
func (s *Stream) Frames(br *bufio.Reader, max int) provider.EventSource { return NewFrames(br, max) }

func (s *Stream) open(dst []byte) []byte { return append(dst, s.prefix...) }

func closeChunk(dst []byte) []byte { return append(dst, "]}\n\n"...) }

// deltaChunk appends a chunk whose delta is {key: raw}, raw a JSON string
// token.
func (s *Stream) deltaChunk(dst []byte, key string, raw []byte) []byte {
	dst = s.open(dst)
	dst = append(dst, `{"index":0,"delta":{"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	dst = append(dst, raw...)
	dst = append(dst, `},"finish_reason":null}`...)
	return closeChunk(dst)
}

func (s *Stream) start(dst []byte) []byte {
	s.started = true
	p := make([]byte, 0, 128+len(s.alias))
	p = append(p, `data: {"id":`...)
	p = provider.AppendJSONString(p, newID())
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = strconv.AppendInt(p, s.created, 10)
	p = append(p, `,"model":`...)
	p = provider.AppendJSONString(p, s.alias)
	s.prefix = append(p, `,"choices":[`...)
	dst = s.open(dst)
	dst = append(dst, `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}`...)
	return closeChunk(dst)
}

// Event translates one event (name from the frame source: the
// :event-type, or "!" and the :exception-type) and appends its frames:
//
//   - messageStart → the role chunk;
//   - contentBlockStart of a toolUse → a tool_calls delta (index in order
//     of tool blocks, id, type function, name, empty arguments);
//   - contentBlockDelta → content, that tool's arguments, or
//     reasoning_content;
//   - messageStop → the finish_reason chunk;
//   - metadata → the usage chunk when the caller asked for it, then
//     [DONE] (Done);
//   - an exception → nothing, and ev.Error classifies it;
//   - contentBlockStop and unknown events → nothing.
func (s *Stream) Event(dst, name, data []byte) (out []byte, ev provider.EventInfo, err error) {
	if len(name) > 0 && name[0] == '!' {
		ev.Error = exceptionFailure(name[1:], data)
		return dst, ev, nil
	}
	if s.done {
		return dst, ev, ErrAfterEnd
	}
	s.ev.reset()
	if err := json.Unmarshal(data, &s.ev); err != nil {
		return dst, ev, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	e := &s.ev
	switch string(name) {
	case "messageStart":
		if s.started {
			return dst, ev, fmt.Errorf("%w: a second messageStart", ErrBadEvent)
		}
		return s.start(dst), ev, nil
	}
	if !s.started {
		return dst, ev, ErrNoMessageStart
	}
	switch string(name) {
	case "contentBlockStart":
		tu := &e.Start.ToolUse
		if len(tu.ToolUseID) == 0 && len(tu.Name) == 0 {
			break // a text or other block
		}
		if !nonEmpty(tu.ToolUseID) || !nonEmpty(tu.Name) {
			return dst, ev, fmt.Errorf("%w: toolUse start without id or name", ErrBadEvent)
		}
		if s.tools == nil {
			s.tools = map[int]int{}
		}
		if _, dup := s.tools[e.ContentBlockIndex]; dup {
			return dst, ev, fmt.Errorf("%w: a second toolUse start for one block", ErrBadEvent)
		}
		ti := len(s.tools)
		s.tools[e.ContentBlockIndex] = ti
		dst = s.open(dst)
		dst = append(dst, `{"index":0,"delta":{"tool_calls":[{"index":`...)
		dst = strconv.AppendInt(dst, int64(ti), 10)
		dst = append(dst, `,"id":`...)
		dst = append(dst, tu.ToolUseID...)
		dst = append(dst, `,"type":"function","function":{"name":`...)
		dst = append(dst, tu.Name...)
		dst = append(dst, `,"arguments":""}}]},"finish_reason":null}`...)
		dst = closeChunk(dst)
		ev.Content = true
	case "contentBlockDelta":
		d := &e.Delta
		switch {
		case str(d.Text):
			if nonEmpty(d.Text) {
				dst = s.deltaChunk(dst, "content", d.Text)
				ev.Content = true
			}
		case len(d.ToolUse.Input) > 0:
			ti, ok := s.tools[e.ContentBlockIndex]
			if !ok || !str(d.ToolUse.Input) {
				return dst, ev, fmt.Errorf("%w: toolUse input for a block that is not a tool", ErrBadEvent)
			}
			if !nonEmpty(d.ToolUse.Input) {
				break
			}
			dst = s.open(dst)
			dst = append(dst, `{"index":0,"delta":{"tool_calls":[{"index":`...)
			dst = strconv.AppendInt(dst, int64(ti), 10)
			dst = append(dst, `,"function":{"arguments":`...)
			dst = append(dst, d.ToolUse.Input...)
			dst = append(dst, `}}]},"finish_reason":null}`...)
			dst = closeChunk(dst)
			ev.Content = true
		case nonEmpty(d.ReasoningContent.Text):
			dst = s.deltaChunk(dst, "reasoning_content", d.ReasoningContent.Text)
			ev.Content = true
		}
	case "messageStop":
		if !s.finished {
			s.finished = true
			dst = s.open(dst)
			dst = append(dst, `{"index":0,"delta":{},"finish_reason":"`...)
			reason := "stop"
			if str(e.StopReason) {
				reason = FinishReason(string(e.StopReason[1 : len(e.StopReason)-1]))
			}
			dst = append(dst, reason...)
			dst = append(dst, `"}`...)
			dst = closeChunk(dst)
			ev.Finished = true
		}
	case "metadata":
		if len(e.Usage) > 0 {
			var u usage
			if json.Unmarshal(e.Usage, &u) == nil {
				s.usage = u
			}
		}
		if !s.finished {
			// Usage before the stop: keep it; the stop comes next.
			break
		}
		dst = s.stop(dst)
		ev.Done, ev.Usage = true, usageOf(&s.usage)
	}
	return dst, ev, nil
}

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

// End completes a stream that ended after messageStop without metadata:
// the usage chunk (as far as known), then [DONE].
func (s *Stream) End(dst []byte) []byte {
	if s.done || !s.started {
		return dst
	}
	return s.stop(dst)
}

var _ provider.Framer = (*Stream)(nil)
