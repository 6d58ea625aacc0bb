package anthropic

import (
	"bytes"
	"encoding/json"
	"errors"

	"github.com/aisix/aisix/proxy/provider"
)

// ErrNotMessage is returned by TranslateResponse for a body that is not an
// Anthropic message object.
var ErrNotMessage = errors.New("upstream answer is not an Anthropic message")

type anResponse struct {
	ID         string        `json:"id"`
	Type       string        `json:"type"`
	Content    []anRespBlock `json:"content"`
	StopReason string        `json:"stop_reason"`
	Usage      anUsage       `json:"usage"`
}

type anRespBlock struct {
	Type     string          `json:"type"`
	Text     string          `json:"text"`
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Input    json.RawMessage `json:"input"`
	Thinking string          `json:"thinking"`
}

type anUsage struct {
	InputTokens              int64 `json:"input_tokens"`
	OutputTokens             int64 `json:"output_tokens"`
	CacheCreationInputTokens int64 `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64 `json:"cache_read_input_tokens"`
}

// FinishReason maps an Anthropic stop_reason to OpenAI's finish_reason:
// end_turn, stop_sequence and pause_turn → stop, max_tokens → length,
// tool_use → tool_calls, refusal → content_filter. Unknown values → stop.
func FinishReason(stopReason string) string {
	switch stopReason {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "refusal":
		return "content_filter"
	}
	return "stop"
}

// appendUsage appends an OpenAI usage object. Anthropic's input_tokens
// leaves out cached tokens, so prompt_tokens is input + cache read + cache
// creation; prompt_tokens_details.cached_tokens is the cache read and
// cache_creation_tokens the cache write.
func appendUsage(b []byte, u *anUsage) []byte {
	prompt := u.InputTokens + u.CacheReadInputTokens + u.CacheCreationInputTokens
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, u.OutputTokens)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, prompt+u.OutputTokens)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.CacheReadInputTokens)
	b = append(b, `,"cache_creation_tokens":`...)
	b = appendInt(b, u.CacheCreationInputTokens)
	return append(b, "}}"...)
}

// usageOf is u in the gateway's terms: the counts of the OpenAI usage
// object appendUsage makes of it, so the counts recorded are the ones a
// caller would read.
func usageOf(u *anUsage) provider.Usage {
	pu, _ := provider.DecodeUsage(appendUsage(nil, u))
	return pu
}

// TranslateResponse turns an Anthropic message into an OpenAI
// chat.completion: id "chatcmpl-<message id>", model alias. Text blocks
// are joined into message.content, tool_use blocks become tool_calls
// (input as the arguments string), thinking blocks are joined into
// reasoning_content, and stop_reason becomes finish_reason (FinishReason).
// A JSONTool tool_use (response_format) becomes the content itself, with
// finish_reason stop.
func TranslateResponse(body []byte, alias string, created int64) ([]byte, error) {
	var m anResponse
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, ErrNotMessage
	}
	if m.Type != "message" || m.ID == "" {
		return nil, ErrNotMessage
	}
	var text, thinking []byte
	hasText := false
	finish := FinishReason(m.StopReason)
	b := make([]byte, 0, 256+len(body))
	b = append(b, `{"id":`...)
	b = appendString(b, "chatcmpl-"+m.ID)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = appendInt(b, created)
	b = append(b, `,"model":`...)
	b = appendString(b, alias)
	b = append(b, `,"choices":[{"index":0,"message":{"role":"assistant"`...)
	var calls []byte
	ncalls := 0
	for _, blk := range m.Content {
		switch blk.Type {
		case "text":
			text = append(text, blk.Text...)
			hasText = true
		case "thinking":
			thinking = append(thinking, blk.Thinking...)
		case "tool_use":
			input := bytes.TrimSpace(blk.Input)
			if len(input) == 0 {
				input = []byte("{}")
			}
			if blk.Name == JSONTool {
				text = append(text, compact(input)...)
				hasText = true
				if finish == "tool_calls" {
					finish = "stop"
				}
				continue
			}
			if ncalls > 0 {
				calls = append(calls, ',')
			}
			calls = append(calls, `{"id":`...)
			calls = appendString(calls, blk.ID)
			calls = append(calls, `,"type":"function","function":{"name":`...)
			calls = appendString(calls, blk.Name)
			calls = append(calls, `,"arguments":`...)
			calls = appendString(calls, compact(input))
			calls = append(calls, "}}"...)
			ncalls++
		}
	}
	b = append(b, `,"content":`...)
	if hasText || ncalls == 0 {
		b = appendString(b, text)
	} else {
		b = append(b, "null"...)
	}
	if len(thinking) > 0 {
		b = append(b, `,"reasoning_content":`...)
		b = appendString(b, thinking)
	}
	if ncalls > 0 {
		b = append(b, `,"tool_calls":[`...)
		b = append(b, calls...)
		b = append(b, ']')
	}
	b = append(b, `},"finish_reason":`...)
	b = appendString(b, finish)
	b = append(b, `}],"usage":`...)
	b = appendUsage(b, &m.Usage)
	return append(b, '}'), nil
}

func compact(raw []byte) []byte {
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}
