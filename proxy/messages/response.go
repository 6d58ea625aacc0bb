package messages

import (
	"bytes"
	"encoding/json"
	"errors"
)

// ErrNotChat is returned by FromChat for a body that is not an OpenAI
// chat.completion.
var ErrNotChat = errors.New("upstream answer is not a chat.completion")

type oaResponse struct {
	ID      string `json:"id"`
	Choices []struct {
		Message struct {
			Content          json.RawMessage `json:"content"`
			ReasoningContent string          `json:"reasoning_content"`
			Refusal          string          `json:"refusal"`
			ToolCalls        []struct {
				ID       string `json:"id"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
		FinishReason string `json:"finish_reason"`
	} `json:"choices"`
	Usage oaUsage `json:"usage"`
}

type oaUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

// StopReason maps an OpenAI finish_reason to Anthropic's stop_reason:
// stop → end_turn, length → max_tokens, tool_calls and function_call →
// tool_use, content_filter → refusal; anything else → end_turn.
func StopReason(finish string) string {
	switch finish {
	case "length":
		return "max_tokens"
	case "tool_calls", "function_call":
		return "tool_use"
	case "content_filter":
		return "refusal"
	}
	return "end_turn"
}

// appendUsage appends Anthropic's usage object. OpenAI's prompt_tokens
// counts cached tokens, Anthropic's input_tokens does not: input_tokens is
// prompt_tokens minus cached_tokens, and cache_read_input_tokens the
// cached tokens. OpenAI reports no cache writes.
func appendUsage(b []byte, input, cached, output int64) []byte {
	cached = max(min(cached, input), 0)
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, input-cached)
	b = append(b, `,"cache_creation_input_tokens":0,"cache_read_input_tokens":`...)
	b = appendInt(b, cached)
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, output)
	return append(b, '}')
}

// FromChat turns an OpenAI chat.completion into an Anthropic message: id
// "msg_<upstream id>", model alias, content blocks in Anthropic's order
// (thinking, text, tool_use), stop_reason from finish_reason (StopReason),
// stop_sequence null (OpenAI does not say which stop sequence matched),
// usage from the upstream's (see appendUsage).
//
//   - reasoning_content becomes a thinking block with an empty signature:
//     the SDKs and Claude Code accept it, and ToChat drops thinking blocks
//     the caller sends back, so the missing signature is never checked;
//   - content becomes a text block (a refusal, when there is no content);
//   - each tool call becomes a tool_use block whose input is the parsed
//     arguments; arguments that are not a JSON object (a model cut off
//     mid-call) become input {} and the rest of the answer is kept.
func FromChat(chatBody []byte, alias string) ([]byte, error) {
	var r oaResponse
	if err := json.Unmarshal(chatBody, &r); err != nil || len(r.Choices) == 0 {
		return nil, ErrNotChat
	}
	c := &r.Choices[0]
	m := &c.Message
	b := make([]byte, 0, 256+len(chatBody))
	b = append(b, `{"id":`...)
	b = appendString(b, "msg_"+r.ID)
	b = append(b, `,"type":"message","role":"assistant","model":`...)
	b = appendString(b, alias)
	b = append(b, `,"content":[`...)
	n := 0
	sep := func() {
		if n > 0 {
			b = append(b, ',')
		}
		n++
	}
	if m.ReasoningContent != "" {
		sep()
		b = append(b, `{"type":"thinking","thinking":`...)
		b = appendString(b, m.ReasoningContent)
		b = append(b, `,"signature":""}`...)
	}
	var text string
	if raw := bytes.TrimSpace(m.Content); len(raw) > 0 && raw[0] == '"' {
		_ = json.Unmarshal(raw, &text)
	}
	if text == "" {
		text = m.Refusal
	}
	if text != "" {
		sep()
		b = append(b, `{"type":"text","text":`...)
		b = appendString(b, text)
		b = append(b, '}')
	}
	for _, tc := range m.ToolCalls {
		sep()
		b = append(b, `{"type":"tool_use","id":`...)
		b = appendString(b, tc.ID)
		b = append(b, `,"name":`...)
		b = appendString(b, tc.Function.Name)
		b = append(b, `,"input":`...)
		args := bytes.TrimSpace([]byte(tc.Function.Arguments))
		if len(args) > 0 && args[0] == '{' && json.Valid(args) {
			b = appendCompact(b, args)
		} else {
			b = append(b, "{}"...)
		}
		b = append(b, '}')
	}
	b = append(b, `],"stop_reason":`...)
	b = appendString(b, StopReason(c.FinishReason))
	b = append(b, `,"stop_sequence":null,"usage":`...)
	u := &r.Usage
	b = appendUsage(b, u.PromptTokens, u.PromptTokensDetails.CachedTokens, u.CompletionTokens)
	return append(b, '}'), nil
}
