package anthropic

import (
	"github.com/aisix/aisix/proxy/provider"

	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// JSONTool is the name of the forced tool that carries response_format.
// A caller's own tool may not have this name.
const JSONTool = "json_response"

// Thinking budgets for reasoning_effort.
const (
	BudgetLow    = 1024
	BudgetMedium = 4096
	BudgetHigh   = 16384
)

// RequestOptions tune TranslateRequest.
type RequestOptions struct {
	// DefaultMaxTokens is max_tokens when the caller sets neither
	// max_tokens nor max_completion_tokens (Anthropic requires it);
	// 0 means 4096.
	DefaultMaxTokens int
	// AnthropicVersion, when set, is written as the body's
	// anthropic_version and the model is left out: the wire of Claude on
	// Vertex AI, where the model is in the URL.
	AnthropicVersion string
}

// RequestError is a caller body TranslateRequest cannot translate (see
// provider.RequestError).
type RequestError = provider.RequestError

func reqErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// The caller's body, as far as it is read. Unknown fields are dropped.
type oaRequest struct {
	Messages            []oaMessage     `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	User                string          `json:"user"`
	N                   *int            `json:"n"`
	Tools               []oaTool        `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name        string          `json:"name"`
			Description string          `json:"description"`
			Schema      json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	ReasoningEffort string `json:"reasoning_effort"`
}

// The Anthropic body. Field order is the order written.
type anRequest struct {
	AnthropicVersion string        `json:"anthropic_version,omitempty"`
	Model            string        `json:"model,omitempty"`
	MaxTokens        int           `json:"max_tokens"`
	System           []anBlock     `json:"system,omitempty"`
	Messages         []anMessage   `json:"messages"`
	StopSequences    []string      `json:"stop_sequences,omitempty"`
	Temperature      *float64      `json:"temperature,omitempty"`
	TopP             *float64      `json:"top_p,omitempty"`
	Metadata         *anMetadata   `json:"metadata,omitempty"`
	Tools            []anTool      `json:"tools,omitempty"`
	ToolChoice       *anToolChoice `json:"tool_choice,omitempty"`
	Thinking         *anThinking   `json:"thinking,omitempty"`
	Stream           bool          `json:"stream,omitempty"`
}

type anMessage struct {
	Role    string    `json:"role"`
	Content []anBlock `json:"content"`
}

type anBlock struct {
	Type         string          `json:"type"`
	Text         string          `json:"text,omitempty"`
	Source       *anSource       `json:"source,omitempty"`
	ID           string          `json:"id,omitempty"`
	Name         string          `json:"name,omitempty"`
	Input        json.RawMessage `json:"input,omitempty"`
	ToolUseID    string          `json:"tool_use_id,omitempty"`
	Content      []anBlock       `json:"content,omitempty"`
	CacheControl json.RawMessage `json:"cache_control,omitempty"`
}

type anSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type anMetadata struct {
	UserID string `json:"user_id"`
}

type anTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type anToolChoice struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse bool   `json:"disable_parallel_tool_use,omitempty"`
}

type anThinking struct {
	Type         string `json:"type"`
	BudgetTokens int    `json:"budget_tokens"`
}

var emptySchema = json.RawMessage(`{"type":"object","properties":{}}`)

// TranslateRequest turns the caller's OpenAI chat-completions body into an
// Anthropic Messages body for model. The rules:
//
//   - system and developer messages (string or text parts, cache_control
//     kept) become the top-level system blocks, in order;
//   - user and assistant messages become turns of content blocks; tool
//     messages become tool_result blocks in a user turn; consecutive turns
//     of one role are merged;
//   - assistant tool_calls become tool_use blocks (arguments parsed into
//     the input object);
//   - image_url parts become image blocks: a base64 data URL as a base64
//     source with its media type, an http(s) URL as a url source; file
//     parts with file_data (a base64 data URL, such as a PDF) become
//     document blocks;
//   - tools, tool_choice (auto, none, required → any, a named function →
//     tool) and parallel_tool_calls:false (disable_parallel_tool_use);
//   - stop → stop_sequences; max_completion_tokens or max_tokens →
//     max_tokens (opts.DefaultMaxTokens when absent); temperature (capped
//     at 1, Anthropic's maximum), top_p; user → metadata.user_id;
//   - response_format json_schema or json_object → the forced tool
//     JSONTool with the schema as input_schema;
//   - reasoning_effort low/medium/high → thinking with budget
//     BudgetLow/Medium/High; max_tokens is raised by the budget when it
//     does not exceed it, and temperature and top_p are dropped (Anthropic
//     refuses them with thinking); "none" sends no thinking. Thinking is
//     also left out when the last assistant turn used tools: Anthropic
//     would want that turn's signed thinking block back, which OpenAI
//     callers do not keep.
//
// Every other field (frequency_penalty, presence_penalty, logprobs, seed,
// logit_bias, service_tier, store, stream_options, ...) is dropped. n > 1
// is refused. A *RequestError names the field at fault.
func TranslateRequest(openaiBody []byte, model string, stream bool, opts RequestOptions) ([]byte, error) {
	var in oaRequest
	dec := json.NewDecoder(bytes.NewReader(openaiBody))
	if err := dec.Decode(&in); err != nil {
		return nil, &RequestError{Field: "body", Reason: jsonReason(err)}
	}
	if dec.More() {
		return nil, &RequestError{Field: "body", Reason: "trailing data after the JSON object"}
	}
	out := anRequest{Model: model, Stream: stream}
	if opts.AnthropicVersion != "" {
		out.AnthropicVersion, out.Model = opts.AnthropicVersion, ""
	}
	if in.N != nil && *in.N > 1 {
		return nil, reqErr("n", "Anthropic models return one choice; n must be 1")
	}

	// max_tokens.
	maxTokens := opts.DefaultMaxTokens
	if maxTokens <= 0 {
		maxTokens = 4096
	}
	switch {
	case in.MaxCompletionTokens != nil:
		if *in.MaxCompletionTokens < 1 {
			return nil, reqErr("max_completion_tokens", "must be at least 1")
		}
		maxTokens = *in.MaxCompletionTokens
	case in.MaxTokens != nil:
		if *in.MaxTokens < 1 {
			return nil, reqErr("max_tokens", "must be at least 1")
		}
		maxTokens = *in.MaxTokens
	}
	out.MaxTokens = maxTokens

	if in.Temperature != nil {
		t := min(*in.Temperature, 1)
		out.Temperature = &t
	}
	out.TopP = in.TopP
	if in.User != "" {
		out.Metadata = &anMetadata{UserID: in.User}
	}
	stops, err := provider.ParseStop(in.Stop)
	if err != nil {
		return nil, err
	}
	out.StopSequences = stops

	// Messages.
	for i, m := range in.Messages {
		if err := addMessage(&out, i, m); err != nil {
			return nil, err
		}
	}
	if len(out.Messages) == 0 {
		return nil, reqErr("messages", "at least one user or assistant message is required")
	}

	// Tools and tool_choice.
	for i, t := range in.Tools {
		field := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, reqErr(field+".type", "only function tools are supported, got %q", t.Type)
		}
		if t.Function.Name == "" {
			return nil, reqErr(field+".function.name", "is required")
		}
		if t.Function.Name == JSONTool {
			return nil, reqErr(field+".function.name", "%q is reserved by the gateway", JSONTool)
		}
		schema := t.Function.Parameters
		if isNull(schema) {
			schema = emptySchema
		}
		out.Tools = append(out.Tools, anTool{Name: t.Function.Name, Description: t.Function.Description, InputSchema: schema})
	}
	if tc, err := translateToolChoice(in.ToolChoice); err != nil {
		return nil, err
	} else if tc != nil {
		out.ToolChoice = tc
	}
	if in.ParallelToolCalls != nil && !*in.ParallelToolCalls && len(out.Tools) > 0 {
		if out.ToolChoice == nil {
			out.ToolChoice = &anToolChoice{Type: "auto"}
		}
		if out.ToolChoice.Type != "none" {
			out.ToolChoice.DisableParallelToolUse = true
		}
	}

	// response_format.
	if rf := in.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object", "json_schema":
			tool := anTool{Name: JSONTool, Description: "Respond with a JSON object.", InputSchema: json.RawMessage(`{"type":"object"}`)}
			if rf.Type == "json_schema" {
				if rf.JSONSchema == nil || isNull(rf.JSONSchema.Schema) {
					return nil, reqErr("response_format.json_schema.schema", "is required")
				}
				tool.InputSchema = rf.JSONSchema.Schema
				if rf.JSONSchema.Description != "" {
					tool.Description = rf.JSONSchema.Description
				}
			}
			out.Tools = append(out.Tools, tool)
			out.ToolChoice = &anToolChoice{Type: "tool", Name: JSONTool}
		default:
			return nil, reqErr("response_format.type", "unsupported value %q", rf.Type)
		}
	}

	// reasoning_effort.
	budget := 0
	switch in.ReasoningEffort {
	case "", "none":
	case "minimal", "low":
		budget = BudgetLow
	case "medium":
		budget = BudgetMedium
	case "high":
		budget = BudgetHigh
	default:
		return nil, reqErr("reasoning_effort", "unsupported value %q (low, medium or high)", in.ReasoningEffort)
	}
	if budget > 0 && lastAssistantUsesTools(out.Messages) {
		// With thinking on, Anthropic wants the last assistant turn of a
		// tool loop to start with its signed thinking block, which OpenAI
		// callers never send back; such a request would be refused, so
		// this turn is answered without thinking.
		budget = 0
	}
	if budget > 0 {
		if out.ToolChoice != nil && (out.ToolChoice.Type == "any" || out.ToolChoice.Type == "tool") {
			return nil, reqErr("reasoning_effort", "cannot be combined with a forced tool_choice or response_format on Anthropic models")
		}
		out.Thinking = &anThinking{Type: "enabled", BudgetTokens: budget}
		if out.MaxTokens <= budget {
			out.MaxTokens += budget
		}
		out.Temperature, out.TopP = nil, nil
	}

	b, err := json.Marshal(&out)
	if err != nil {
		return nil, reqErr("body", "%v", err)
	}
	return b, nil
}

// lastAssistantUsesTools reports whether the last assistant turn holds a
// tool_use block.
func lastAssistantUsesTools(msgs []anMessage) bool {
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Role != "assistant" {
			continue
		}
		for _, b := range msgs[i].Content {
			if b.Type == "tool_use" {
				return true
			}
		}
		return false
	}
	return false
}

func jsonReason(err error) string { return provider.JSONReason(err) }

func isNull(raw json.RawMessage) bool { return provider.IsNullJSON(raw) }

func translateToolChoice(raw json.RawMessage) (*anToolChoice, error) {
	tc, err := provider.ParseToolChoice(raw)
	switch {
	case err != nil:
		return nil, err
	case tc.Mode == "":
		return nil, nil
	case tc.Mode == "required":
		return &anToolChoice{Type: "any"}, nil
	case tc.Mode == "function":
		return &anToolChoice{Type: "tool", Name: tc.Name}, nil
	}
	return &anToolChoice{Type: tc.Mode}, nil // auto, none
}

// appendTurn adds blocks as a turn of role, merged into the previous turn
// when it has the same role.
func appendTurn(out *anRequest, role string, blocks []anBlock) {
	if len(blocks) == 0 {
		return
	}
	if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
		out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
		return
	}
	out.Messages = append(out.Messages, anMessage{Role: role, Content: blocks})
}

func addMessage(out *anRequest, i int, m oaMessage) error {
	field := fmt.Sprintf("messages[%d]", i)
	switch m.Role {
	case "system", "developer":
		blocks, err := contentBlocks(field+".content", m.Content, false)
		if err != nil {
			return err
		}
		out.System = append(out.System, blocks...)
	case "user":
		blocks, err := contentBlocks(field+".content", m.Content, true)
		if err != nil {
			return err
		}
		appendTurn(out, "user", blocks)
	case "assistant":
		blocks, err := contentBlocks(field+".content", m.Content, false)
		if err != nil {
			return err
		}
		for j, tc := range m.ToolCalls {
			tf := fmt.Sprintf("%s.tool_calls[%d]", field, j)
			if tc.ID == "" {
				return reqErr(tf+".id", "is required")
			}
			if tc.Function.Name == "" {
				return reqErr(tf+".function.name", "is required")
			}
			input := json.RawMessage(`{}`)
			if args := strings.TrimSpace(tc.Function.Arguments); args != "" {
				if !json.Valid([]byte(args)) || args[0] != '{' {
					return reqErr(tf+".function.arguments", "must be a JSON object encoded as a string")
				}
				input = json.RawMessage(args)
			}
			blocks = append(blocks, anBlock{Type: "tool_use", ID: tc.ID, Name: tc.Function.Name, Input: input})
		}
		appendTurn(out, "assistant", blocks)
	case "tool":
		if m.ToolCallID == "" {
			return reqErr(field+".tool_call_id", "is required")
		}
		inner, err := contentBlocks(field+".content", m.Content, false)
		if err != nil {
			return err
		}
		appendTurn(out, "user", []anBlock{{Type: "tool_result", ToolUseID: m.ToolCallID, Content: inner}})
	case "":
		return reqErr(field+".role", "is required")
	default:
		return reqErr(field+".role", "unsupported role %q", m.Role)
	}
	return nil
}

// contentBlocks turns an OpenAI content value (string, array of parts, or
// null) into blocks. Empty text is left out (Anthropic refuses it).
func contentBlocks(field string, raw json.RawMessage, images bool) ([]anBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []anBlock{{Type: "text", Text: s}}, nil
	}
	var parts []oaPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, reqErr(field, "must be a string or an array of content parts")
	}
	blocks := make([]anBlock, 0, len(parts))
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		var cc json.RawMessage
		if !isNull(p.CacheControl) {
			cc = p.CacheControl
		}
		switch p.Type {
		case "text", "refusal":
			text := p.Text
			if p.Type == "refusal" {
				text = p.Refusal
			}
			if text == "" {
				continue
			}
			blocks = append(blocks, anBlock{Type: "text", Text: text, CacheControl: cc})
		case "image_url":
			if !images {
				return nil, reqErr(pf+".type", "images are only allowed in user messages")
			}
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, reqErr(pf+".image_url.url", "is required")
			}
			src, err := imageSource(pf+".image_url.url", p.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, anBlock{Type: "image", Source: src, CacheControl: cc})
		case "file":
			if !images {
				return nil, reqErr(pf+".type", "files are only allowed in user messages")
			}
			if p.File == nil || p.File.FileData == "" {
				return nil, reqErr(pf+".file.file_data", "is required (file_id is not supported)")
			}
			src, err := dataSource(pf+".file.file_data", p.File.FileData)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, anBlock{Type: "document", Source: src, CacheControl: cc})
		default:
			return nil, reqErr(pf+".type", "unsupported content part type %q", p.Type)
		}
	}
	return blocks, nil
}

// dataSource turns a data:<media type>;base64,<data> URL into a base64
// source.
func dataSource(field, u string) (*anSource, error) {
	rest, _ := strings.CutPrefix(u, "data:")
	meta, data, ok := strings.Cut(rest, ",")
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if !strings.HasPrefix(u, "data:") || !ok || !isBase64 || mediaType == "" || data == "" {
		return nil, reqErr(field, "a data URL must be data:<media type>;base64,<data>")
	}
	return &anSource{Type: "base64", MediaType: mediaType, Data: data}, nil
}

func imageSource(field, u string) (*anSource, error) {
	if strings.HasPrefix(u, "data:") {
		return dataSource(field, u)
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &anSource{Type: "url", URL: u}, nil
	}
	return nil, reqErr(field, "must be an http(s) URL or a base64 data URL")
}

// The caller's OpenAI request parts (shared by every translating wire).
type (
	oaMessage = provider.ChatMessage
	oaTool    = provider.ChatTool
	oaPart    = provider.ChatPart
)
