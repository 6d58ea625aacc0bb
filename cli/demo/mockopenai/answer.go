package mockopenai

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// fingerprint is the system_fingerprint of every answer.
const fingerprint = "fp_demo0b1e5"

// replies are what the upstreams say, by request number; %s is the name.
var replies = []string{
	"Hello from %s! How can I help you today?",
	"Hi there. This is the %s upstream, answering through aisix.",
	"Hello! %s here: the gateway picked me for this request.",
	"Greetings from %s. Ask me anything, within reason.",
}

// answer is one generated reply, the same whether sent whole or streamed.
type answer struct {
	id      string
	created int64
	model   string
	tokens  []string
	prompt  int // prompt tokens
}

func (s *Server) newAnswer(n int64, req *chatRequest) *answer {
	name := s.opts.Name
	if name == "" {
		name = "mock"
	}
	text := fmt.Sprintf(replies[int(n)%len(replies)], name)
	var tokens []string
	for i, w := range strings.Fields(text) {
		if i > 0 {
			w = " " + w
		}
		tokens = append(tokens, w)
	}
	model := req.Model
	if model == "gpt-4o-mini" {
		// OpenAI answers with the snapshot the alias points at.
		model = "gpt-4o-mini-2024-07-18"
	}
	prompt := 3
	for _, m := range req.Messages {
		prompt += 3 + (len(m.Content)+3)/4
	}
	return &answer{id: "chatcmpl-" + randomHex(24), created: time.Now().Unix(), model: model, tokens: tokens, prompt: prompt}
}

// Wire shapes, in OpenAI's field order.
type (
	completion struct {
		ID                string             `json:"id"`
		Object            string             `json:"object"`
		Created           int64              `json:"created"`
		Model             string             `json:"model"`
		Choices           []completionChoice `json:"choices"`
		Usage             usage              `json:"usage"`
		ServiceTier       string             `json:"service_tier"`
		SystemFingerprint string             `json:"system_fingerprint"`
	}
	completionChoice struct {
		Index        int             `json:"index"`
		Message      message         `json:"message"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason string          `json:"finish_reason"`
	}
	message struct {
		Role    string  `json:"role"`
		Content string  `json:"content"`
		Refusal *string `json:"refusal"`
	}
	usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	chunk struct {
		ID                string        `json:"id"`
		Object            string        `json:"object"`
		Created           int64         `json:"created"`
		Model             string        `json:"model"`
		ServiceTier       string        `json:"service_tier"`
		SystemFingerprint string        `json:"system_fingerprint"`
		Choices           []chunkChoice `json:"choices"`
		Usage             *usage        `json:"usage,omitempty"`
	}
	chunkChoice struct {
		Index        int             `json:"index"`
		Delta        any             `json:"delta"`
		Logprobs     json.RawMessage `json:"logprobs"`
		FinishReason *string         `json:"finish_reason"`
	}
	// roleDelta opens a stream: the role, empty content, no refusal.
	roleDelta struct {
		Role    string  `json:"role"`
		Content string  `json:"content"`
		Refusal *string `json:"refusal"`
	}
	contentDelta struct {
		Content string `json:"content"`
	}
)

var null = json.RawMessage("null")

func (a *answer) usage() usage {
	return usage{PromptTokens: a.prompt, CompletionTokens: len(a.tokens), TotalTokens: a.prompt + len(a.tokens)}
}

func (a *answer) completion() completion {
	return completion{
		ID: a.id, Object: "chat.completion", Created: a.created, Model: a.model,
		Choices: []completionChoice{{
			Message:  message{Role: "assistant", Content: strings.Join(a.tokens, "")},
			Logprobs: null, FinishReason: "stop",
		}},
		Usage: a.usage(), ServiceTier: "default", SystemFingerprint: fingerprint,
	}
}

func (a *answer) chunk(d any, finish *string) chunk {
	return chunk{
		ID: a.id, Object: "chat.completion.chunk", Created: a.created, Model: a.model,
		ServiceTier: "default", SystemFingerprint: fingerprint,
		Choices: []chunkChoice{{Delta: d, Logprobs: null, FinishReason: finish}},
	}
}

// usageChunk is the last chunk of a stream that asked for usage: no
// choices, the usage.
func (a *answer) usageChunk() chunk {
	c := a.chunk(nil, nil)
	u := a.usage()
	c.Choices, c.Usage = []chunkChoice{}, &u
	return c
}
