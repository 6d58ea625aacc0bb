package bedrock

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/aisix/aisix/proxy/provider"
)

// ErrNotConverse is a 2xx answer that is not a Converse response.
var ErrNotConverse = errors.New("upstream answer is not a Bedrock Converse response")

type converseResponse struct {
	Output *struct {
		Message *struct {
			Content []struct {
				Text    *string `json:"text"`
				ToolUse *struct {
					ToolUseID string          `json:"toolUseId"`
					Name      string          `json:"name"`
					Input     json.RawMessage `json:"input"`
				} `json:"toolUse"`
				ReasoningContent *struct {
					ReasoningText *struct {
						Text string `json:"text"`
					} `json:"reasoningText"`
				} `json:"reasoningContent"`
			} `json:"content"`
		} `json:"message"`
	} `json:"output"`
	StopReason string `json:"stopReason"`
	Usage      usage  `json:"usage"`
}

type usage struct {
	InputTokens          int64 `json:"inputTokens"`
	OutputTokens         int64 `json:"outputTokens"`
	TotalTokens          int64 `json:"totalTokens"`
	CacheReadInputTokens int64 `json:"cacheReadInputTokens"`
}

// FinishReason maps a Converse stopReason to OpenAI's finish_reason.
func FinishReason(stop string) string {
	switch stop {
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "tool_use":
		return "tool_calls"
	case "content_filtered", "guardrail_intervened":
		return "content_filter"
	}
	return "stop"
}

// newID is a chat completion id: Converse answers carry none.
func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "chatcmpl-" + hex.EncodeToString(b[:])
}

func appendUsage(b []byte, u *usage) []byte {
	total := u.TotalTokens
	if total == 0 {
		total = u.InputTokens + u.OutputTokens
	}
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, u.InputTokens, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.OutputTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, total, 10)
	if u.CacheReadInputTokens > 0 {
		b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
		b = strconv.AppendInt(b, u.CacheReadInputTokens, 10)
		b = append(b, '}')
	}
	return append(b, '}')
}

// usageOf is u in the gateway's terms: the counts of the OpenAI usage
// object appendUsage makes of it, so the counts recorded are the ones a
// caller would read.
func usageOf(u *usage) provider.Usage {
	pu, _ := provider.DecodeUsage(appendUsage(nil, u))
	return pu
}

// TranslateResponse turns a Converse response into a chat.completion
// answered under alias: text blocks joined as content, toolUse blocks as
// tool_calls (input as the arguments string), reasoning text as
// reasoning_content, stopReason as finish_reason, and usage.
func TranslateResponse(dst, body []byte, id, alias string, created int64) ([]byte, error) {
	var r converseResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Output == nil || r.Output.Message == nil {
		return dst, ErrNotConverse
	}
	var text, reasoning []byte
	var hasText bool
	calls := make([]byte, 0, 64)
	n := 0
	for _, c := range r.Output.Message.Content {
		switch {
		case c.Text != nil:
			text = append(text, *c.Text...)
			hasText = true
		case c.ToolUse != nil:
			input := c.ToolUse.Input
			if len(input) == 0 {
				input = json.RawMessage(`{}`)
			}
			if n > 0 {
				calls = append(calls, ',')
			}
			calls = append(calls, `{"id":`...)
			calls = provider.AppendJSONString(calls, c.ToolUse.ToolUseID)
			calls = append(calls, `,"type":"function","function":{"name":`...)
			calls = provider.AppendJSONString(calls, c.ToolUse.Name)
			calls = append(calls, `,"arguments":`...)
			calls = provider.AppendJSONString(calls, compact(input))
			calls = append(calls, `}}`...)
			n++
		case c.ReasoningContent != nil && c.ReasoningContent.ReasoningText != nil:
			reasoning = append(reasoning, c.ReasoningContent.ReasoningText.Text...)
		}
	}
	dst = append(dst, `{"id":`...)
	dst = provider.AppendJSONString(dst, id)
	dst = append(dst, `,"object":"chat.completion","created":`...)
	dst = strconv.AppendInt(dst, created, 10)
	dst = append(dst, `,"model":`...)
	dst = provider.AppendJSONString(dst, alias)
	dst = append(dst, `,"choices":[{"index":0,"message":{"role":"assistant","content":`...)
	if hasText || n == 0 {
		dst = provider.AppendJSONString(dst, text)
	} else {
		dst = append(dst, "null"...)
	}
	if len(reasoning) > 0 {
		dst = append(dst, `,"reasoning_content":`...)
		dst = provider.AppendJSONString(dst, reasoning)
	}
	if n > 0 {
		dst = append(dst, `,"tool_calls":[`...)
		dst = append(dst, calls...)
		dst = append(dst, ']')
	}
	dst = append(dst, `},"finish_reason":"`...)
	dst = append(dst, FinishReason(r.StopReason)...)
	dst = append(dst, `"}],"usage":`...)
	dst = appendUsage(dst, &r.Usage)
	return append(dst, '}'), nil
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}
