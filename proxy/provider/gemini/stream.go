package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aisix/aisix/proxy/provider"
)

// Stream errors: the upstream stream is unusable; the caller treats it
// like a cut stream.
var (
	ErrBadEvent  = errors.New("malformed upstream stream event")
	ErrAfterDone = errors.New("upstream stream event after the finish")
)

// Stream translates one :streamGenerateContent?alt=sse answer into
// OpenAI chat.completion.chunk frames. Every SSE event is a whole
// GenerateContentResponse holding the next piece of the answer; there is
// no end marker: the event with a finishReason is the last. It is not
// safe for concurrent use; make one per upstream answer.
type Stream struct {
	alias        string
	created      int64
	includeUsage bool

	prefix   []byte // `data: {"id":…,"model":…,"choices":[`
	started  bool
	finished bool
	done     bool
	tools    int
	usage    gmUsage
	ev       sEvent

	// One json.Decoder for the whole stream, fed one event's data at a
	// time: it keeps its buffers, and sEvent keeps its slices, so
	// steady-state chunks decode without allocating.
	feed *feed
	dec  *json.Decoder
	fed  int64
}

// sEvent is one decoded stream event. It is reused: reset keeps the
// capacity of its slices and raw values. Text and the ids stay raw JSON
// strings, written to the caller as they are.
type sEvent struct {
	Candidates     []sCandidate `json:"candidates"`
	PromptFeedback struct {
		BlockReason json.RawMessage `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata gmUsage         `json:"usageMetadata"`
	ResponseID    json.RawMessage `json:"responseId"`
	Error         *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

type sCandidate struct {
	Content struct {
		Parts []sPart `json:"parts"`
	} `json:"content"`
	FinishReason json.RawMessage `json:"finishReason"`
}

type sPart struct {
	Text         json.RawMessage `json:"text"`
	Thought      bool            `json:"thought"`
	FunctionCall *struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
}

// reset empties e for the next event. encoding/json decodes array
// elements into what the slice holds up to its capacity without zeroing
// them, so every element up to the capacity is emptied.
func (e *sEvent) reset() {
	cs := e.Candidates[:cap(e.Candidates)]
	for i := range cs {
		c := &cs[i]
		ps := c.Content.Parts[:cap(c.Content.Parts)]
		for j := range ps {
			ps[j] = sPart{Text: ps[j].Text[:0]}
		}
		c.Content.Parts = ps[:0]
		c.FinishReason = c.FinishReason[:0]
	}
	e.Candidates = cs[:0]
	e.PromptFeedback.BlockReason = e.PromptFeedback.BlockReason[:0]
	e.UsageMetadata = gmUsage{}
	e.ResponseID = e.ResponseID[:0]
	e.Error = nil
}

// feed is the decoder's reader: the current event's data, then io.EOF.
type feed struct{ b []byte }

func (f *feed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// decode decodes one event's data (exactly one JSON object) into s.ev.
// After an error the decoder is dropped: the stream is unusable anyway.
func (s *Stream) decode(data []byte) error {
	if s.dec == nil {
		s.feed = &feed{}
		s.dec = json.NewDecoder(s.feed)
		s.fed = 0
	}
	s.ev.reset()
	s.fed -= int64(len(s.feed.b))
	s.feed.b = data
	s.fed += int64(len(data))
	err := s.dec.Decode(&s.ev)
	if err == nil {
		rest := s.fed - s.dec.InputOffset()
		if rest < 0 || rest > int64(len(data)) || len(bytes.TrimSpace(data[int64(len(data))-rest:])) > 0 {
			err = errors.New("more than one JSON value")
		}
	}
	if err != nil {
		s.dec = nil
		return err
	}
	return nil
}

// nonEmpty reports whether raw is a JSON string with at least one character.
func nonEmpty(raw []byte) bool { return len(raw) > 2 && raw[0] == '"' }

// unquote decodes a JSON string token ("" for anything else).
func unquote(raw []byte) string {
	var s string
	if len(raw) < 2 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// NewStream returns a translator for one stream answered under alias.
// includeUsage is the caller's stream_options.include_usage.
func NewStream(alias string, created int64, includeUsage bool) *Stream {
	return &Stream{alias: alias, created: created, includeUsage: includeUsage}
}

func (s *Stream) start(dst []byte, id string) []byte {
	s.started = true
	if id == "" {
		id = fmt.Sprintf("gemini-%d", s.created)
	}
	p := make([]byte, 0, 96+len(id)+len(s.alias))
	p = append(p, `data: {"id":`...)
	p = appendString(p, "chatcmpl-"+id)
	p = append(p, `,"object":"chat.completion.chunk","created":`...)
	p = appendInt(p, s.created)
	p = append(p, `,"model":`...)
	p = appendString(p, s.alias)
	s.prefix = append(p, `,"choices":[`...)
	dst = append(dst, s.prefix...)
	dst = append(dst, `{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}`...)
	return append(dst, "]}\n\n"...)
}

// deltaChunk appends a chunk whose delta is {key: raw} (raw a JSON string).
func (s *Stream) deltaChunk(dst []byte, key string, raw []byte) []byte {
	dst = append(dst, s.prefix...)
	dst = append(dst, `{"index":0,"delta":{"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	dst = append(dst, raw...)
	return append(dst, "},\"finish_reason\":null}]}\n\n"...)
}

// Event translates one upstream SSE event and appends the OpenAI frames
// it yields to dst:
//
//   - the first event opens the answer with the role chunk;
//   - a text part → a content delta; a thought part → reasoning_content;
//     a functionCall part (Gemini sends each call whole) → one tool_calls
//     delta with index, id call_<n>, type, name and the whole arguments;
//   - usageMetadata is kept (the last one counts);
//   - a finishReason → the finish_reason chunk, then the usage chunk when
//     includeUsage, then "data: [DONE]" (Done);
//   - {"error":{…}} → nothing, and ev.Error classifies it;
//   - promptFeedback.blockReason with no candidates → ev.Error, a
//     content-policy failure.
//
// err is non-nil for data that is not one JSON object, or an event after
// the finish.
func (s *Stream) Event(dst []byte, name, data []byte) (out []byte, ev provider.EventInfo, err error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return dst, ev, nil
	}
	if s.done {
		return dst, ev, ErrAfterDone
	}
	if data[0] != '{' || s.decode(data) != nil {
		return dst, ev, ErrBadEvent
	}
	r := &s.ev
	if r.Error != nil {
		f := &provider.Failure{Type: r.Error.Status, Message: r.Error.Message}
		f.Class = classify(r.Error.Code, r.Error.Status, r.Error.Message, "")
		ev.Error = f
		return dst, ev, nil
	}
	if len(r.Candidates) == 0 && nonEmpty(r.PromptFeedback.BlockReason) {
		ev.Error = &blocked(unquote(r.PromptFeedback.BlockReason)).Failure
		return dst, ev, nil
	}
	if r.UsageMetadata != (gmUsage{}) {
		s.usage = r.UsageMetadata
	}
	if !s.started {
		dst = s.start(dst, unquote(r.ResponseID))
	}
	if len(r.Candidates) == 0 {
		return dst, ev, nil
	}
	c := &r.Candidates[0]
	{
		for _, p := range c.Content.Parts {
			switch {
			case p.FunctionCall != nil:
				dst = append(dst, s.prefix...)
				dst = append(dst, `{"index":0,"delta":{"tool_calls":[{"index":`...)
				dst = appendInt(dst, int64(s.tools))
				dst = append(dst, `,"id":`...)
				dst = appendCallID(dst, s.tools)
				dst = append(dst, `,"type":"function","function":{"name":`...)
				dst = appendString(dst, p.FunctionCall.Name)
				dst = append(dst, `,"arguments":`...)
				dst = appendString(dst, compact(p.FunctionCall.Args))
				dst = append(dst, "}}]},\"finish_reason\":null}]}\n\n"...)
				s.tools++
				ev.Content = true
			case nonEmpty(p.Text) && p.Thought:
				dst = s.deltaChunk(dst, "reasoning_content", p.Text)
				ev.Content = true
			case nonEmpty(p.Text):
				dst = s.deltaChunk(dst, "content", p.Text)
				ev.Content = true
			}
		}
	}
	if fr := unquoteReason(c.FinishReason); fr != "" && fr != "FINISH_REASON_UNSPECIFIED" {
		s.finished = true
		dst = append(dst, s.prefix...)
		dst = append(dst, `{"index":0,"delta":{},"finish_reason":"`...)
		dst = append(dst, FinishReason(fr, s.tools > 0)...)
		dst = append(dst, "\"}]}\n\n"...)
		ev.Finished = true
		dst = s.stop(dst)
		ev.Done, ev.Usage = true, usageOf(&s.usage)
	}
	return dst, ev, nil
}

// stop appends the usage chunk (when the caller asked for it) and [DONE].
func (s *Stream) stop(dst []byte) []byte {
	if s.includeUsage {
		dst = append(dst, s.prefix...)
		dst = append(dst, `],"usage":`...)
		dst = appendUsage(dst, &s.usage)
		dst = append(dst, "}\n\n"...)
	}
	s.done = true
	return append(dst, "data: [DONE]\n\n"...)
}

// End completes a finished stream that is not done yet (never the case:
// the finish chunk is followed by [DONE] at once). It appends nothing to
// a stream that is done, or that never finished.
func (s *Stream) End(dst []byte) []byte {
	if s.done || !s.finished {
		return dst
	}
	return s.stop(dst)
}

// unquoteReason is a finishReason token's value: an enum name, which
// never needs unescaping ("" for anything else).
func unquoteReason(raw []byte) string {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return unquote(raw)
	}
	return string(raw[1 : len(raw)-1])
}
