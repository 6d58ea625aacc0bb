package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/aisix/aisix/proxy/provider"
)

// ErrNotResponse is returned for a body that is not a Gemini
// GenerateContentResponse (or EmbedContentResponse).
var ErrNotResponse = errors.New("upstream answer is not a Gemini response")

// BlockedError is a 2xx answer with no candidates because the prompt was
// blocked (promptFeedback.blockReason): a content-policy refusal, to be
// returned to the caller rather than failed over. It carries the
// provider.Failure the proxy acts on.
type BlockedError struct{ provider.Failure }

func (e *BlockedError) Error() string { return e.Message }

// AnswerFailure returns the failure the error describes
// (provider.AnswerFailer).
func (e *BlockedError) AnswerFailure() *provider.Failure { return &e.Failure }

var _ provider.AnswerFailer = (*BlockedError)(nil)

func blocked(reason string) *BlockedError {
	return &BlockedError{provider.Failure{Class: provider.ClassContentPolicy, Type: "content_policy_violation",
		Message: "the prompt was blocked by Gemini's safety filters (" + reason + ")"}}
}

type gmResponse struct {
	Candidates     []gmCandidate `json:"candidates"`
	PromptFeedback struct {
		BlockReason string `json:"blockReason"`
	} `json:"promptFeedback"`
	UsageMetadata gmUsage `json:"usageMetadata"`
	ResponseID    string  `json:"responseId"`
	Error         *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Status  string `json:"status"`
	} `json:"error"`
}

type gmCandidate struct {
	Content struct {
		Parts []gmRespPart `json:"parts"`
	} `json:"content"`
	FinishReason string `json:"finishReason"`
	Index        int    `json:"index"`
}

type gmRespPart struct {
	Text         string `json:"text"`
	Thought      bool   `json:"thought"`
	FunctionCall *struct {
		Name string          `json:"name"`
		Args json.RawMessage `json:"args"`
	} `json:"functionCall"`
}

type gmUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount"`
}

// FinishReason maps a Gemini finishReason to OpenAI's finish_reason: STOP
// → stop, MAX_TOKENS → length, SAFETY, RECITATION, BLOCKLIST,
// PROHIBITED_CONTENT, SPII and IMAGE_SAFETY → content_filter; any other
// (LANGUAGE, OTHER, MALFORMED_FUNCTION_CALL, …) → stop. A candidate
// holding a function call finishes with tool_calls whatever it says.
func FinishReason(reason string, toolCalls bool) string {
	switch reason {
	case "MAX_TOKENS":
		return "length"
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY":
		return "content_filter"
	}
	if toolCalls {
		return "tool_calls"
	}
	return "stop"
}

// appendUsage appends an OpenAI usage object: prompt_tokens is
// promptTokenCount (+ toolUsePromptTokenCount), completion_tokens is
// candidatesTokenCount + thoughtsTokenCount (thoughts also as
// completion_tokens_details.reasoning_tokens), cachedContentTokenCount
// is prompt_tokens_details.cached_tokens.
func appendUsage(b []byte, u *gmUsage) []byte {
	prompt := u.PromptTokenCount + u.ToolUsePromptTokenCount
	completion := u.CandidatesTokenCount + u.ThoughtsTokenCount
	total := u.TotalTokenCount
	if total < prompt+completion {
		total = prompt + completion
	}
	b = append(b, `{"prompt_tokens":`...)
	b = appendInt(b, prompt)
	b = append(b, `,"completion_tokens":`...)
	b = appendInt(b, completion)
	b = append(b, `,"total_tokens":`...)
	b = appendInt(b, total)
	b = append(b, `,"prompt_tokens_details":{"cached_tokens":`...)
	b = appendInt(b, u.CachedContentTokenCount)
	b = append(b, `},"completion_tokens_details":{"reasoning_tokens":`...)
	b = appendInt(b, u.ThoughtsTokenCount)
	return append(b, "}}"...)
}

// usageOf is u in the gateway's terms: the counts of the OpenAI usage
// object appendUsage makes of it, so the counts recorded are the ones a
// caller would read.
func usageOf(u *gmUsage) provider.Usage {
	pu, _ := provider.DecodeUsage(appendUsage(nil, u))
	return pu
}

// callID is the id of the n-th tool call of an answer (from 0): Gemini
// gives function calls no id, and the same answer always gets the same
// ids.
func appendCallID(b []byte, n int) []byte {
	b = append(b, `"call_`...)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, '"')
}

func compact(raw []byte) []byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return []byte("{}")
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		return raw
	}
	return buf.Bytes()
}

// TranslateResponse turns a GenerateContentResponse into an OpenAI
// chat.completion under alias: one choice per candidate (in index order),
// text parts joined into content, thought parts into reasoning_content,
// functionCall parts into tool_calls (ids call_0, call_1, … across the
// answer, args as the arguments string), finishReason per FinishReason,
// and usageMetadata as usage. A response with no candidates and a
// promptFeedback.blockReason is a *BlockedError.
func TranslateResponse(body []byte, alias string, created int64) ([]byte, error) {
	var r gmResponse
	if err := json.Unmarshal(body, &r); err != nil || r.Error != nil {
		return nil, ErrNotResponse
	}
	if len(r.Candidates) == 0 {
		if r.PromptFeedback.BlockReason != "" {
			return nil, blocked(r.PromptFeedback.BlockReason)
		}
		return nil, ErrNotResponse
	}
	id := r.ResponseID
	if id == "" {
		id = "gemini-" + strconv.FormatInt(created, 10)
	}
	b := make([]byte, 0, 256+len(body))
	b = append(b, `{"id":`...)
	b = appendString(b, "chatcmpl-"+id)
	b = append(b, `,"object":"chat.completion","created":`...)
	b = appendInt(b, created)
	b = append(b, `,"model":`...)
	b = appendString(b, alias)
	b = append(b, `,"choices":[`...)
	calls := 0
	var text, thought []byte
	for i := range r.Candidates {
		c := &r.Candidates[i]
		if i > 0 {
			b = append(b, ',')
		}
		text, thought = text[:0], thought[:0]
		hasText := false
		var tc []byte
		n := 0
		{
			for _, p := range c.Content.Parts {
				switch {
				case p.FunctionCall != nil:
					if n > 0 {
						tc = append(tc, ',')
					}
					tc = append(tc, `{"id":`...)
					tc = appendCallID(tc, calls)
					tc = append(tc, `,"type":"function","function":{"name":`...)
					tc = appendString(tc, p.FunctionCall.Name)
					tc = append(tc, `,"arguments":`...)
					tc = appendString(tc, compact(p.FunctionCall.Args))
					tc = append(tc, "}}"...)
					n++
					calls++
				case p.Thought:
					thought = append(thought, p.Text...)
				case p.Text != "":
					text = append(text, p.Text...)
					hasText = true
				}
			}
		}
		b = append(b, `{"index":`...)
		b = appendInt(b, int64(i))
		b = append(b, `,"message":{"role":"assistant","content":`...)
		if hasText || n == 0 {
			b = appendString(b, text)
		} else {
			b = append(b, "null"...)
		}
		if len(thought) > 0 {
			b = append(b, `,"reasoning_content":`...)
			b = appendString(b, thought)
		}
		if n > 0 {
			b = append(b, `,"tool_calls":[`...)
			b = append(b, tc...)
			b = append(b, ']')
		}
		b = append(b, `},"finish_reason":`...)
		b = appendString(b, FinishReason(c.FinishReason, n > 0))
		b = append(b, '}')
	}
	b = append(b, `],"usage":`...)
	b = appendUsage(b, &r.UsageMetadata)
	return append(b, '}'), nil
}
