package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

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
	ev       gmResponse
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

func (s *Stream) deltaChunk(dst []byte, key string, text string) []byte {
	dst = append(dst, s.prefix...)
	dst = append(dst, `{"index":0,"delta":{"`...)
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	dst = appendString(dst, text)
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
	s.ev = gmResponse{}
	if data[0] != '{' || json.Unmarshal(data, &s.ev) != nil {
		return dst, ev, ErrBadEvent
	}
	r := &s.ev
	if r.Error != nil {
		f := &provider.Failure{Type: r.Error.Status, Message: r.Error.Message}
		f.Class = classify(r.Error.Code, r.Error.Status, r.Error.Message, "")
		ev.Error = f
		return dst, ev, nil
	}
	if len(r.Candidates) == 0 && r.PromptFeedback.BlockReason != "" {
		ev.Error = &blocked(r.PromptFeedback.BlockReason).Failure
		return dst, ev, nil
	}
	if r.UsageMetadata != (gmUsage{}) {
		s.usage = r.UsageMetadata
	}
	if !s.started {
		dst = s.start(dst, r.ResponseID)
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
			case p.Text != "" && p.Thought:
				dst = s.deltaChunk(dst, "reasoning_content", p.Text)
				ev.Content = true
			case p.Text != "":
				dst = s.deltaChunk(dst, "content", p.Text)
				ev.Content = true
			}
		}
	}
	if c.FinishReason != "" && c.FinishReason != "FINISH_REASON_UNSPECIFIED" {
		s.finished = true
		dst = append(dst, s.prefix...)
		dst = append(dst, `{"index":0,"delta":{},"finish_reason":"`...)
		dst = append(dst, FinishReason(c.FinishReason, s.tools > 0)...)
		dst = append(dst, "\"}]}\n\n"...)
		ev.Finished = true
		dst = s.stop(dst)
		ev.Done = true
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
