package messages

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aisix/aisix/proxy/provider"
)

// Stream errors.
var (
	// ErrBadChunk is a chunk whose data is not one JSON object: it is
	// skipped (it wraps provider.ErrSkipEvent) and the stream goes on.
	ErrBadChunk = fmt.Errorf("%w: not a chat.completion.chunk", provider.ErrSkipEvent)
	// ErrAfterStop is a chunk after message_stop was written.
	ErrAfterStop = errors.New("upstream stream chunk after [DONE]")
)

// maxTools caps the tool_calls index a stream may use.
const maxTools = 1024

type blockKind uint8

const (
	blockNone blockKind = iota
	blockText
	blockThinking
	blockTool
)

// cToolDelta is one tool_calls entry of a chunk's delta.
type cToolDelta struct {
	Index    int             `json:"index"`
	ID       json.RawMessage `json:"id"`
	Function struct {
		Name      json.RawMessage `json:"name"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"function"`
}

type cUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// cChunk is one decoded chunk. It is reused: json.RawMessage fields and
// the tool_calls slice keep their capacity, so steady-state decoding does
// not allocate. Choices is an array: the gateway never asks for n > 1.
type cChunk struct {
	ID      json.RawMessage `json:"id"`
	Choices [1]struct {
		Delta struct {
			Content          json.RawMessage `json:"content"`
			ReasoningContent json.RawMessage `json:"reasoning_content"`
			Reasoning        json.RawMessage `json:"reasoning"`
			Refusal          json.RawMessage `json:"refusal"`
			ToolCalls        []cToolDelta    `json:"tool_calls"`
		} `json:"delta"`
		FinishReason json.RawMessage `json:"finish_reason"`
	} `json:"choices"`
	Usage *cUsage `json:"usage"`
	Error *struct {
		Message json.RawMessage `json:"message"`
		Type    json.RawMessage `json:"type"`
	} `json:"error"`
}

func (c *cChunk) reset(u *cUsage) {
	c.ID = c.ID[:0]
	ch := &c.Choices[0]
	d := &ch.Delta
	d.Content, d.ReasoningContent, d.Reasoning, d.Refusal = d.Content[:0], d.ReasoningContent[:0], d.Reasoning[:0], d.Refusal[:0]
	tc := d.ToolCalls[:cap(d.ToolCalls)]
	for i := range tc {
		t := &tc[i]
		t.Index = -1
		t.ID, t.Function.Name, t.Function.Arguments = t.ID[:0], t.Function.Name[:0], t.Function.Arguments[:0]
	}
	d.ToolCalls = tc[:0]
	ch.FinishReason = ch.FinishReason[:0]
	*u = cUsage{PromptTokens: -1, CompletionTokens: -1}
	c.Usage = u
	c.Error = nil
}

// Stream translates one OpenAI chat.completion.chunk stream into
// Anthropic Messages events. It is not safe for concurrent use; make one
// per upstream answer.
type Stream struct {
	alias    string
	estimate int64

	started   bool
	finished  bool // finish_reason seen
	delta     bool // message_delta written
	done      bool // message_stop written
	stop      string
	kind      blockKind // the open block, or blockNone
	next      int64     // the next content block index
	toolBlock []int64   // tool_calls index → content block index, -1 when unseen

	haveUsage bool
	input     int64
	cached    int64
	output    int64
	outBytes  int64 // content bytes streamed, for an output estimate

	ch    cChunk
	usage cUsage
	dec   provider.EventJSON
	str   []byte // scratch for unquoted strings
}

// NewStream returns a translator for one stream answered under alias.
// inputTokensEstimate is message_start's input_tokens (OpenAI reports
// usage only at the end of a stream); CountTokensEstimate of the caller's
// request is a good one. A value below 1 is sent as 1: clients read 0 as
// "nothing was sent".
func NewStream(alias string, inputTokensEstimate int64) *Stream {
	return &Stream{alias: alias, estimate: max(inputTokensEstimate, 1)}
}

// decode decodes one chunk's data into s.ch.
func (s *Stream) decode(data []byte) error {
	s.ch.reset(&s.usage)
	if s.dec.Decode(data, &s.ch) != nil {
		return ErrBadChunk
	}
	return nil
}

func str(raw []byte) bool      { return len(raw) >= 2 && raw[0] == '"' }
func nonEmpty(raw []byte) bool { return len(raw) > 2 && raw[0] == '"' }

func event(dst []byte, name string) []byte {
	dst = append(dst, "event: "...)
	dst = append(dst, name...)
	return append(dst, "\ndata: "...)
}

func end(dst []byte) []byte { return append(dst, "\n\n"...) }

// unquote decodes a JSON string token into s.str.
func (s *Stream) unquote(raw []byte) []byte {
	var v string
	if !str(raw) || json.Unmarshal(raw, &v) != nil {
		return s.str[:0]
	}
	s.str = append(s.str[:0], v...)
	return s.str
}

// Event translates one chunk's data (one chat.completion.chunk JSON, or
// [DONE]) and appends the Anthropic SSE frames it yields to dst:
//
//   - the first chunk → message_start (id "msg_<chunk id>", empty content,
//     input_tokens the estimate, output_tokens 1, as the API does); a
//     leading chunk with no id and nothing in it (Azure's
//     prompt_filter_results chunk) writes nothing;
//   - content → a text block, reasoning_content (or reasoning) → a
//     thinking block, each tool_calls index → a tool_use block started
//     with its id, name and input {}, its arguments as input_json_delta;
//     content_block_stop closes a block when another starts or the
//     answer finishes;
//   - finish_reason → the open block is closed and the stop reason kept;
//   - usage (the trailing usage chunk) → message_delta with the stop
//     reason and real usage, once the answer finished;
//   - [DONE] → message_delta if not written yet, then message_stop.
//
// ev.Content is set for a text, tool or thinking delta written, Finished
// for the finish_reason chunk, Done once message_stop was written, and
// Error for an in-band {"error":…} chunk (nothing written; the caller
// sends ErrorEvent). On error dst is returned unchanged: ErrBadChunk (a
// provider.ErrSkipEvent) for data that is not a JSON object, ErrAfterStop
// after message_stop.
func (s *Stream) Event(dst, data []byte) (out []byte, ev provider.EventInfo, err error) {
	if s.done {
		return dst, ev, ErrAfterStop
	}
	data = bytes.TrimSpace(data)
	if string(data) == "[DONE]" {
		ev.Finished, ev.Done = !s.finished, true
		return s.finish(dst), ev, nil
	}
	if len(data) == 0 || data[0] != '{' {
		return dst, ev, ErrBadChunk
	}
	if err := s.decode(data); err != nil {
		return dst, ev, err
	}
	c := &s.ch
	if c.Error != nil {
		ev.Error = &provider.Failure{Class: provider.ClassUnknown, Type: string(s.unquote(c.Error.Type)), Message: string(s.unquote(c.Error.Message))}
		return dst, ev, nil
	}
	ch := &c.Choices[0]
	d := &ch.Delta
	hasUsage := c.Usage != nil && (c.Usage.PromptTokens >= 0 || c.Usage.CompletionTokens >= 0)
	if !s.started {
		if !nonEmpty(c.ID) && !hasUsage && !str(ch.FinishReason) && len(d.ToolCalls) == 0 &&
			!nonEmpty(d.Content) && !nonEmpty(d.ReasoningContent) && !nonEmpty(d.Reasoning) && !nonEmpty(d.Refusal) {
			// Azure's first chunk (id "", choices [], prompt_filter_results):
			// the message starts with the next one, which has the id.
			return dst, ev, nil
		}
		dst = s.start(dst)
	}
	if !s.finished {
		reasoning := d.ReasoningContent
		if !nonEmpty(reasoning) {
			reasoning = d.Reasoning
		}
		if nonEmpty(reasoning) {
			dst = s.openBlock(dst, blockThinking)
			dst = event(dst, "content_block_delta")
			dst = s.blockHead(dst, "content_block_delta")
			dst = append(dst, `,"delta":{"type":"thinking_delta","thinking":`...)
			dst = append(dst, reasoning...)
			dst = end(append(dst, "}}"...))
			s.outBytes += int64(len(reasoning) - 2)
			ev.Content = true
		}
		text := d.Content
		if !nonEmpty(text) {
			text = d.Refusal
		}
		if nonEmpty(text) {
			dst = s.openBlock(dst, blockText)
			dst = event(dst, "content_block_delta")
			dst = s.blockHead(dst, "content_block_delta")
			dst = append(dst, `,"delta":{"type":"text_delta","text":`...)
			dst = append(dst, text...)
			dst = end(append(dst, "}}"...))
			s.outBytes += int64(len(text) - 2)
			ev.Content = true
		}
		for i := range d.ToolCalls {
			var wrote bool
			dst, wrote = s.toolDelta(dst, &d.ToolCalls[i])
			ev.Content = ev.Content || wrote
		}
		if str(ch.FinishReason) {
			dst = s.closeBlock(dst)
			s.finished = true
			s.stop = StopReason(string(ch.FinishReason[1 : len(ch.FinishReason)-1]))
			ev.Finished = true
		}
	}
	if u := c.Usage; hasUsage {
		s.haveUsage = true
		s.input = max(u.PromptTokens, 0)
		s.cached = u.PromptTokensDetails.CachedTokens
		s.output = max(u.CompletionTokens, 0)
	}
	if s.finished && s.haveUsage && !s.delta {
		dst = s.messageDelta(dst)
	}
	return dst, ev, nil
}

func (s *Stream) start(dst []byte) []byte {
	s.started = true
	dst = event(dst, "message_start")
	dst = append(dst, `{"type":"message_start","message":{"id":`...)
	dst = append(dst, `"msg_`...)
	if id := s.unquote(s.ch.ID); len(id) > 0 {
		// id escaped, without its opening quote.
		at := len(dst)
		dst = appendString(dst, id)
		dst = append(dst[:at], dst[at+1:]...)
	} else {
		dst = append(dst, `gateway"`...)
	}
	dst = append(dst, `,"type":"message","role":"assistant","model":`...)
	dst = appendString(dst, s.alias)
	dst = append(dst, `,"content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":`...)
	dst = appendInt(dst, s.estimate)
	dst = append(dst, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}`...)
	return end(dst)
}

// blockHead appends {"type":typ,"index":<open block>.
func (s *Stream) blockHead(dst []byte, typ string) []byte {
	dst = append(dst, `{"type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","index":`...)
	return appendInt(dst, s.next-1)
}

// openBlock makes a block of kind the open one, closing another first. A
// tool block is opened by toolDelta.
func (s *Stream) openBlock(dst []byte, kind blockKind) []byte {
	if s.kind == kind {
		return dst
	}
	dst = s.closeBlock(dst)
	s.kind = kind
	s.next++
	dst = event(dst, "content_block_start")
	dst = s.blockHead(dst, "content_block_start")
	if kind == blockThinking {
		dst = append(dst, `,"content_block":{"type":"thinking","thinking":"","signature":""}}`...)
	} else {
		dst = append(dst, `,"content_block":{"type":"text","text":""}}`...)
	}
	return end(dst)
}

func (s *Stream) closeBlock(dst []byte) []byte {
	if s.kind == blockNone {
		return dst
	}
	s.kind = blockNone
	dst = event(dst, "content_block_stop")
	dst = s.blockHead(dst, "content_block_stop")
	return end(append(dst, '}'))
}

// toolDelta translates one tool_calls entry. It reports whether it wrote
// anything.
func (s *Stream) toolDelta(dst []byte, t *cToolDelta) ([]byte, bool) {
	i := t.Index
	if i < 0 || i >= maxTools {
		return dst, false
	}
	for len(s.toolBlock) <= i {
		s.toolBlock = append(s.toolBlock, -1)
	}
	wrote := false
	block := s.toolBlock[i]
	if block < 0 {
		// The first delta of this tool call: a new tool_use block.
		dst = s.closeBlock(dst)
		s.kind = blockTool
		s.next++
		block = s.next - 1
		s.toolBlock[i] = block
		dst = event(dst, "content_block_start")
		dst = s.blockHead(dst, "content_block_start")
		dst = append(dst, `,"content_block":{"type":"tool_use","id":`...)
		if nonEmpty(t.ID) {
			dst = append(dst, t.ID...)
		} else {
			dst = append(dst, `"toolu_`...)
			dst = appendInt(dst, int64(i))
			dst = append(dst, '"')
		}
		dst = append(dst, `,"name":`...)
		if str(t.Function.Name) {
			dst = append(dst, t.Function.Name...)
		} else {
			dst = append(dst, `""`...)
		}
		dst = end(append(dst, `,"input":{}}}`...))
		wrote = true
	}
	if nonEmpty(t.Function.Arguments) {
		// Arguments of a tool call whose block was closed (another block
		// came in between) still go to that block's index.
		dst = event(dst, "content_block_delta")
		dst = append(dst, `{"type":"content_block_delta","index":`...)
		dst = appendInt(dst, block)
		dst = append(dst, `,"delta":{"type":"input_json_delta","partial_json":`...)
		dst = append(dst, t.Function.Arguments...)
		dst = end(append(dst, "}}"...))
		s.outBytes += int64(len(t.Function.Arguments) - 2)
		wrote = true
	}
	return dst, wrote
}

func (s *Stream) messageDelta(dst []byte) []byte {
	s.delta = true
	stop := s.stop
	if stop == "" {
		stop = "end_turn"
	}
	dst = event(dst, "message_delta")
	dst = append(dst, `{"type":"message_delta","delta":{"stop_reason":"`...)
	dst = append(dst, stop...)
	dst = append(dst, `","stop_sequence":null},"usage":`...)
	if s.haveUsage {
		dst = appendUsage(dst, s.input, s.cached, s.output)
	} else {
		// No usage chunk: output_tokens estimated from the bytes streamed.
		dst = append(dst, `{"output_tokens":`...)
		dst = appendInt(dst, max((s.outBytes+3)/4, 1))
		dst = append(dst, '}')
	}
	return end(append(dst, '}'))
}

// finish appends what ends the message: the open block's stop, message_delta
// if not written yet, and message_stop.
func (s *Stream) finish(dst []byte) []byte {
	if !s.started {
		dst = s.start(dst)
	}
	dst = s.closeBlock(dst)
	s.finished = true
	if !s.delta {
		dst = s.messageDelta(dst)
	}
	s.done = true
	dst = event(dst, "message_stop")
	return end(append(dst, `{"type":"message_stop"}`...))
}

// End completes a stream that ended after its finish_reason without
// [DONE], as [DONE] would have: message_delta (if not written yet) and
// message_stop. It appends nothing to a stream that is done or that never
// finished: a stream cut mid-answer must not look complete.
func (s *Stream) End(dst []byte) []byte {
	if s.done || !s.finished {
		return dst
	}
	return s.finish(dst)
}

// Done reports whether message_stop was written.
func (s *Stream) Done() bool { return s.done }

// Ping appends a ping event (a keep-alive; it changes nothing).
func (s *Stream) Ping(dst []byte) []byte {
	return append(dst, "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)
}

// ErrorEvent appends Anthropic's in-stream error event and ends the
// stream: nothing follows it. typ is one of ErrorType's values
// ("overloaded_error", "api_error", ...); msg is shown to the caller, so
// it must be redacted first (provider.RedactErrorMessage).
func (s *Stream) ErrorEvent(dst []byte, typ, msg string) []byte {
	s.done = true
	dst = event(dst, "error")
	return end(appendError(dst, typ, msg))
}
