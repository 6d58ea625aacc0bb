package provider

import (
	"bytes"
	"encoding/json"
)

// Usage is the token count of one answer as its upstream reported it. Input
// is every prompt token, cached ones included (OpenAI's prompt_tokens;
// Anthropic's input_tokens plus its cache reads and writes); Cached and
// Reasoning are the parts of Input and Output that were cache reads and
// reasoning.
type Usage struct {
	Input, Output, Cached, Reasoning int64
}

// Known reports whether any count is set.
func (u Usage) Known() bool { return u != Usage{} }

// Merge sets each count of u that o reports (is not zero): an Anthropic
// stream reports its input at the start and its output at the end.
func (u *Usage) Merge(o Usage) {
	if o.Input != 0 {
		u.Input = o.Input
	}
	if o.Output != 0 {
		u.Output = o.Output
	}
	if o.Cached != 0 {
		u.Cached = o.Cached
	}
	if o.Reasoning != 0 {
		u.Reasoning = o.Reasoning
	}
}

var usageKey = []byte(`"usage"`)

// ScanUsage reads the last "usage" object in b: the top-level usage of an
// answer in any wire the gateway speaks (a chat completion, a completion,
// an embeddings list, a Responses API response or its response.completed
// event, an Anthropic message, message_start or message_delta event). A
// key inside a string is escaped in JSON, so the last unescaped "usage"
// key is an object member. It reports false when there is none, or it is
// null or not an object.
func ScanUsage(b []byte) (Usage, bool) {
	for end := len(b); ; {
		i := bytes.LastIndex(b[:end], usageKey)
		if i < 0 {
			return Usage{}, false
		}
		end = i
		j := skipWS(b, i+len(usageKey))
		if j >= len(b) || b[j] != ':' {
			continue
		}
		j = skipWS(b, j+1)
		if j >= len(b) || b[j] != '{' {
			return Usage{}, false // "usage": null, or not an object
		}
		k, err := skipValue(b, j)
		if err != nil {
			return Usage{}, false
		}
		return DecodeUsage(b[j:k])
	}
}

// wireUsage holds the usage members of every wire.
type wireUsage struct {
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	InputTokens      int64 `json:"input_tokens"`
	OutputTokens     int64 `json:"output_tokens"`
	PromptDetails    struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	InputDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"input_tokens_details"`
	CompletionDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
	OutputDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	// Anthropic: input_tokens leaves out cache reads and writes.
	CacheRead  int64 `json:"cache_read_input_tokens"`
	CacheWrite int64 `json:"cache_creation_input_tokens"`
}

// DecodeUsage reads one usage object (its members in any wire's names).
func DecodeUsage(obj []byte) (Usage, bool) {
	var w wireUsage
	if json.Unmarshal(obj, &w) != nil {
		return Usage{}, false
	}
	u := Usage{
		Input:     w.PromptTokens,
		Output:    w.CompletionTokens,
		Cached:    w.PromptDetails.CachedTokens,
		Reasoning: w.CompletionDetails.ReasoningTokens,
	}
	if u.Input == 0 && u.Output == 0 {
		// The Responses API's and Anthropic's names.
		u.Input = w.InputTokens + w.CacheRead + w.CacheWrite
		u.Output = w.OutputTokens
		u.Cached = max(w.InputDetails.CachedTokens, w.CacheRead)
		u.Reasoning = w.OutputDetails.ReasoningTokens
	}
	return u, true
}
