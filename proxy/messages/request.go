package messages

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Thinking budgets at which reasoning_effort steps up: budget_tokens below
// EffortMedium is "low", below EffortHigh "medium", else "high". They are
// the budgets the outbound Anthropic adapter sends for medium and high, so
// a request that crosses the gateway twice keeps its effort.
const (
	EffortMedium = 4096
	EffortHigh   = 16384
)

// maxUserLen is the longest user value OpenAI accepts.
const maxUserLen = 64

// ToChatOptions tune ToChat.
type ToChatOptions struct {
	// LegacyMaxTokens sends max_tokens instead of max_completion_tokens,
	// for OpenAI-compatible backends that only know the older name.
	LegacyMaxTokens bool
	// NoReasoning drops thinking instead of sending reasoning_effort, for
	// models that refuse reasoning_effort (gpt-4o, gpt-4.1).
	NoReasoning bool
}

// Info is what ToChat learnt about the caller's request that the inbound
// side needs to answer it.
type Info struct {
	// Model is the caller's model string, as sent.
	Model string
	// Stream is the caller's stream flag.
	Stream bool
	// MaxTokens is the caller's max_tokens (0 when absent).
	MaxTokens int64
	// Thinking: the caller enabled extended thinking.
	Thinking bool
	// ReasoningEffort is what thinking became ("" when none was sent).
	ReasoningEffort string
	// Tools is the number of tools declared.
	Tools int
}

// The caller's Messages body, as far as it is read. Every other field
// (output_config, context_management, container, mcp_servers,
// service_tier, top_k, anything unknown) is dropped.
type anRequest struct {
	Model         string          `json:"model"`
	MaxTokens     *int64          `json:"max_tokens"`
	System        json.RawMessage `json:"system"`
	Messages      []anMessage     `json:"messages"`
	StopSequences []string        `json:"stop_sequences"`
	Temperature   *float64        `json:"temperature"`
	TopP          *float64        `json:"top_p"`
	Metadata      *struct {
		UserID string `json:"user_id"`
	} `json:"metadata"`
	Tools      []anTool        `json:"tools"`
	ToolChoice json.RawMessage `json:"tool_choice"`
	Thinking   *struct {
		Type         string `json:"type"`
		BudgetTokens int64  `json:"budget_tokens"`
	} `json:"thinking"`
	Stream bool `json:"stream"`
}

type anMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type anBlock struct {
	Type      string          `json:"type"`
	Text      string          `json:"text"`
	Source    *anSource       `json:"source"`
	ID        string          `json:"id"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
	Title     string          `json:"title"`
	Thinking  string          `json:"thinking"`
}

type anSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type"`
	Data      string `json:"data"`
	URL       string `json:"url"`
}

type anTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

var emptySchema = []byte(`{"type":"object","properties":{}}`)

func decodeRequest(body []byte) (*anRequest, error) {
	var in anRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil {
		return nil, &RequestError{Field: "body", Reason: jsonReason(err)}
	}
	if dec.More() {
		return nil, &RequestError{Field: "body", Reason: "trailing data after the JSON object"}
	}
	return &in, nil
}

// contentBlocks decodes a content value: a string is one text block.
func contentBlocks(field string, raw json.RawMessage) ([]anBlock, error) {
	if isNull(raw) {
		return nil, nil
	}
	raw = bytes.TrimSpace(raw)
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, reqErr(field, "must be a string or an array of content blocks")
		}
		return []anBlock{{Type: "text", Text: s}}, nil
	}
	var blocks []anBlock
	if err := json.Unmarshal(raw, &blocks); err != nil {
		return nil, reqErr(field, "must be a string or an array of content blocks")
	}
	return blocks, nil
}

// ToChat turns the caller's Anthropic Messages body into an OpenAI
// chat-completions body for the upstream model. The rules:
//
//   - system (a string, or text blocks joined with "\n\n") becomes one
//     leading system message; cache_control is dropped everywhere;
//   - user and assistant messages keep their role; content is a string
//     when it is text only, else an array of parts. Text blocks of an
//     assistant turn are joined with "\n\n" into its content;
//   - image blocks become image_url parts: a base64 source as a data URL,
//     a url source as its URL; file sources are refused;
//   - document blocks: a base64 PDF becomes a file part (file_data as a
//     data URL, filename from title or "document.pdf"), a text source a
//     text part; url, file and content sources are refused;
//   - assistant tool_use blocks become tool_calls (arguments: the input
//     as compact JSON);
//   - user tool_result blocks become tool messages, in order, ahead of
//     the rest of that turn; their content is the text blocks joined with
//     "\n", prefixed with "Error: " when is_error is set (OpenAI tool
//     messages have no error flag). Images in a tool_result cannot ride a
//     tool message: they go into the user message that follows the tool
//     messages;
//   - thinking and redacted_thinking blocks in the history are dropped;
//   - tools (custom tools only: a server tool such as web_search or bash
//     is refused at tools[i].type) become functions with input_schema as
//     parameters; tool_choice auto/any/tool/none → "auto"/"required"/a
//     named function/"none" (auto, any and none are left out when no
//     tools are declared: OpenAI refuses a tool_choice without tools);
//     disable_parallel_tool_use → parallel_tool_calls false;
//   - max_tokens → max_completion_tokens (max_tokens with
//     opts.LegacyMaxTokens); stop_sequences → stop; temperature and top_p
//     as they are; top_k dropped; metadata.user_id → user (an id longer
//     than OpenAI's 64 characters, as Claude Code's are, is sent as its
//     SHA-256 in hex, stable per user);
//   - thinking {type: enabled, budget_tokens} → reasoning_effort low,
//     medium or high (EffortMedium, EffortHigh), unless opts.NoReasoning;
//   - stream → stream with stream_options.include_usage, so the stream
//     ends with real usage.
//
// Every other field is dropped, never forwarded. A *RequestError names the
// field at fault, such as messages[1].content[0].type.
func ToChat(body []byte, model string, opts ToChatOptions) (chat []byte, info Info, err error) {
	in, err := decodeRequest(body)
	if err != nil {
		return nil, info, err
	}
	info = Info{Model: in.Model, Stream: in.Stream, Tools: len(in.Tools)}
	if len(in.Messages) == 0 {
		return nil, info, reqErr("messages", "at least one message is required")
	}

	b := make([]byte, 0, len(body)+256)
	b = append(b, `{"model":`...)
	b = appendString(b, model)
	b = append(b, `,"messages":[`...)
	w := &writer{b: b}

	// system.
	if !isNull(in.System) {
		sys, err := systemText(in.System)
		if err != nil {
			return nil, info, err
		}
		if sys != "" {
			w.open()
			w.b = append(w.b, `{"role":"system","content":`...)
			w.b = appendString(w.b, sys)
			w.b = append(w.b, '}')
		}
	}
	for i, m := range in.Messages {
		if err := w.message(i, m); err != nil {
			return nil, info, err
		}
	}
	b = append(w.b, ']')

	if in.MaxTokens != nil {
		if *in.MaxTokens < 1 {
			return nil, info, reqErr("max_tokens", "must be at least 1")
		}
		info.MaxTokens = *in.MaxTokens
		if opts.LegacyMaxTokens {
			b = append(b, `,"max_tokens":`...)
		} else {
			b = append(b, `,"max_completion_tokens":`...)
		}
		b = appendInt(b, *in.MaxTokens)
	}
	if in.Temperature != nil {
		b = append(b, `,"temperature":`...)
		b = strconv.AppendFloat(b, *in.Temperature, 'g', -1, 64)
	}
	if in.TopP != nil {
		b = append(b, `,"top_p":`...)
		b = strconv.AppendFloat(b, *in.TopP, 'g', -1, 64)
	}
	if n := 0; len(in.StopSequences) > 0 {
		for _, s := range in.StopSequences {
			if s == "" {
				continue
			}
			if n == 0 {
				b = append(b, `,"stop":[`...)
			} else {
				b = append(b, ',')
			}
			b = appendString(b, s)
			n++
		}
		if n > 0 {
			b = append(b, ']')
		}
	}
	if in.Metadata != nil && in.Metadata.UserID != "" {
		u := in.Metadata.UserID
		if len(u) > maxUserLen {
			sum := sha256.Sum256([]byte(u))
			u = hex.EncodeToString(sum[:])
		}
		b = append(b, `,"user":`...)
		b = appendString(b, u)
	}

	// tools and tool_choice.
	for i, t := range in.Tools {
		field := fmt.Sprintf("tools[%d]", i)
		if t.Type != "" && t.Type != "custom" {
			return nil, info, reqErr(field+".type", "server tool %q is not supported by this model; only custom tools are", t.Type)
		}
		if t.Name == "" {
			return nil, info, reqErr(field+".name", "is required")
		}
		if i == 0 {
			b = append(b, `,"tools":[`...)
		} else {
			b = append(b, ',')
		}
		b = append(b, `{"type":"function","function":{"name":`...)
		b = appendString(b, t.Name)
		if t.Description != "" {
			b = append(b, `,"description":`...)
			b = appendString(b, t.Description)
		}
		b = append(b, `,"parameters":`...)
		if s := bytes.TrimSpace(t.InputSchema); len(s) > 0 && s[0] == '{' {
			b = appendCompact(b, s)
		} else {
			b = append(b, emptySchema...)
		}
		b = append(b, "}}"...)
		if i == len(in.Tools)-1 {
			b = append(b, ']')
		}
	}
	if !isNull(in.ToolChoice) {
		var tc struct {
			Type                   string `json:"type"`
			Name                   string `json:"name"`
			DisableParallelToolUse bool   `json:"disable_parallel_tool_use"`
		}
		if err := json.Unmarshal(in.ToolChoice, &tc); err != nil {
			return nil, info, reqErr("tool_choice", "must be an object with a type")
		}
		if len(in.Tools) == 0 && (tc.Type == "auto" || tc.Type == "any" || tc.Type == "none") {
			// OpenAI refuses a tool_choice without tools; Anthropic
			// accepts auto and none, which mean nothing then.
			tc.Type = "skip"
		}
		switch tc.Type {
		case "skip":
		case "auto":
			b = append(b, `,"tool_choice":"auto"`...)
		case "any":
			b = append(b, `,"tool_choice":"required"`...)
		case "none":
			b = append(b, `,"tool_choice":"none"`...)
		case "tool":
			if tc.Name == "" {
				return nil, info, reqErr("tool_choice.name", "is required")
			}
			b = append(b, `,"tool_choice":{"type":"function","function":{"name":`...)
			b = appendString(b, tc.Name)
			b = append(b, "}}"...)
		default:
			return nil, info, reqErr("tool_choice.type", "unsupported value %q (auto, any, tool or none)", tc.Type)
		}
		if tc.DisableParallelToolUse && tc.Type != "none" && len(in.Tools) > 0 {
			b = append(b, `,"parallel_tool_calls":false`...)
		}
	}

	// thinking.
	if th := in.Thinking; th != nil && th.Type == "enabled" {
		info.Thinking = true
		if !opts.NoReasoning {
			info.ReasoningEffort = Effort(th.BudgetTokens)
			b = append(b, `,"reasoning_effort":"`...)
			b = append(b, info.ReasoningEffort...)
			b = append(b, '"')
		}
	}

	if in.Stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(b, '}'), info, nil
}

// Effort maps a thinking budget to a reasoning_effort.
func Effort(budget int64) string {
	switch {
	case budget < EffortMedium:
		return "low"
	case budget < EffortHigh:
		return "medium"
	}
	return "high"
}

func appendCompact(b, raw []byte) []byte {
	buf := bytes.NewBuffer(b)
	if json.Compact(buf, raw) != nil {
		return append(b, raw...)
	}
	return buf.Bytes()
}

// systemText joins the system value's text.
func systemText(raw json.RawMessage) (string, error) {
	blocks, err := contentBlocks("system", raw)
	if err != nil {
		return "", err
	}
	if len(blocks) == 1 {
		if blocks[0].Type != "text" {
			return "", reqErr("system[0].type", "only text blocks are allowed in system, got %q", blocks[0].Type)
		}
		return blocks[0].Text, nil
	}
	var sb strings.Builder
	for j, blk := range blocks {
		if blk.Type != "text" {
			return "", reqErr(fmt.Sprintf("system[%d].type", j), "only text blocks are allowed in system, got %q", blk.Type)
		}
		if blk.Text == "" {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteString("\n\n")
		}
		sb.WriteString(blk.Text)
	}
	return sb.String(), nil
}

// writer appends chat messages to b.
type writer struct {
	b []byte
	n int // messages written
}

func (w *writer) open() {
	if w.n > 0 {
		w.b = append(w.b, ',')
	}
	w.n++
}

// part is one user content part, kept until the turn's tool messages are
// written.
type part struct {
	kind string // "text", "image_url", "file"
	text string // text, URL, or file data URL
	name string // filename
}

func (w *writer) message(i int, m anMessage) error {
	field := fmt.Sprintf("messages[%d]", i)
	blocks, err := contentBlocks(field+".content", m.Content)
	if err != nil {
		return err
	}
	switch m.Role {
	case "user":
		return w.user(field, blocks)
	case "assistant":
		return w.assistant(field, blocks)
	case "":
		return reqErr(field+".role", "is required")
	}
	return reqErr(field+".role", "unsupported role %q (user or assistant)", m.Role)
}

func (w *writer) user(field string, blocks []anBlock) error {
	var parts []part
	for j, blk := range blocks {
		bf := fmt.Sprintf("%s.content[%d]", field, j)
		switch blk.Type {
		case "tool_result":
			if blk.ToolUseID == "" {
				return reqErr(bf+".tool_use_id", "is required")
			}
			text, imgs, err := toolResult(bf+".content", blk.Content)
			if err != nil {
				return err
			}
			if blk.IsError {
				text = "Error: " + text
			}
			w.open()
			w.b = append(w.b, `{"role":"tool","tool_call_id":`...)
			w.b = appendString(w.b, blk.ToolUseID)
			w.b = append(w.b, `,"content":`...)
			w.b = appendString(w.b, text)
			w.b = append(w.b, '}')
			parts = append(parts, imgs...)
		case "thinking", "redacted_thinking":
		default:
			p, err := userPart(bf, blk)
			if err != nil {
				return err
			}
			if p.kind == "text" && p.text == "" {
				continue
			}
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return nil
	}
	w.open()
	w.b = append(w.b, `{"role":"user","content":`...)
	if len(parts) == 1 && parts[0].kind == "text" {
		w.b = appendString(w.b, parts[0].text)
		w.b = append(w.b, '}')
		return nil
	}
	w.b = append(w.b, '[')
	for k, p := range parts {
		if k > 0 {
			w.b = append(w.b, ',')
		}
		switch p.kind {
		case "text":
			w.b = append(w.b, `{"type":"text","text":`...)
			w.b = appendString(w.b, p.text)
			w.b = append(w.b, '}')
		case "image_url":
			w.b = append(w.b, `{"type":"image_url","image_url":{"url":`...)
			w.b = appendString(w.b, p.text)
			w.b = append(w.b, "}}"...)
		case "file":
			w.b = append(w.b, `{"type":"file","file":{"filename":`...)
			w.b = appendString(w.b, p.name)
			w.b = append(w.b, `,"file_data":`...)
			w.b = appendString(w.b, p.text)
			w.b = append(w.b, "}}"...)
		}
	}
	w.b = append(w.b, "]}"...)
	return nil
}

// userPart translates one user content block other than tool_result.
func userPart(bf string, blk anBlock) (part, error) {
	switch blk.Type {
	case "text":
		return part{kind: "text", text: blk.Text}, nil
	case "image":
		u, err := imageURL(bf+".source", blk.Source)
		if err != nil {
			return part{}, err
		}
		return part{kind: "image_url", text: u}, nil
	case "document":
		s := blk.Source
		if s == nil {
			return part{}, reqErr(bf+".source", "is required")
		}
		switch s.Type {
		case "base64":
			if s.MediaType != "application/pdf" {
				return part{}, reqErr(bf+".source.media_type", "only application/pdf documents are supported, got %q", s.MediaType)
			}
			if s.Data == "" {
				return part{}, reqErr(bf+".source.data", "is required")
			}
			name := blk.Title
			if name == "" {
				name = "document.pdf"
			}
			return part{kind: "file", name: name, text: "data:application/pdf;base64," + s.Data}, nil
		case "text":
			text := s.Data
			if blk.Title != "" {
				text = blk.Title + "\n\n" + text
			}
			return part{kind: "text", text: text}, nil
		}
		return part{}, reqErr(bf+".source.type", "document source %q is not supported by this model (base64 PDF or text)", s.Type)
	case "":
		return part{}, reqErr(bf+".type", "is required")
	}
	return part{}, reqErr(bf+".type", "content block type %q is not supported here", blk.Type)
}

func imageURL(field string, s *anSource) (string, error) {
	if s == nil {
		return "", reqErr(field, "is required")
	}
	switch s.Type {
	case "base64":
		if s.MediaType == "" || s.Data == "" {
			return "", reqErr(field, "a base64 source needs media_type and data")
		}
		return "data:" + s.MediaType + ";base64," + s.Data, nil
	case "url":
		if !strings.HasPrefix(s.URL, "https://") && !strings.HasPrefix(s.URL, "http://") {
			return "", reqErr(field+".url", "must be an http(s) URL")
		}
		return s.URL, nil
	}
	return "", reqErr(field+".type", "image source %q is not supported by this model (base64 or url)", s.Type)
}

// toolResult reads a tool_result's content: its text joined with "\n", and
// its images as user parts.
func toolResult(field string, raw json.RawMessage) (string, []part, error) {
	blocks, err := contentBlocks(field, raw)
	if err != nil {
		return "", nil, err
	}
	if len(blocks) == 1 && blocks[0].Type == "text" {
		return blocks[0].Text, nil, nil
	}
	var sb strings.Builder
	var parts []part
	for j, blk := range blocks {
		bf := fmt.Sprintf("%s[%d]", field, j)
		switch blk.Type {
		case "text":
			if blk.Text == "" {
				continue
			}
			if sb.Len() > 0 {
				sb.WriteByte('\n')
			}
			sb.WriteString(blk.Text)
		case "image", "document":
			p, err := userPart(bf, blk)
			if err != nil {
				return "", nil, err
			}
			parts = append(parts, p)
		default:
			return "", nil, reqErr(bf+".type", "content block type %q is not supported in a tool_result", blk.Type)
		}
	}
	return sb.String(), parts, nil
}

func (w *writer) assistant(field string, blocks []anBlock) error {
	var text strings.Builder
	calls := 0
	var cb []byte
	for j, blk := range blocks {
		bf := fmt.Sprintf("%s.content[%d]", field, j)
		switch blk.Type {
		case "text":
			if blk.Text == "" {
				continue
			}
			if text.Len() > 0 {
				text.WriteString("\n\n")
			}
			text.WriteString(blk.Text)
		case "tool_use":
			if blk.ID == "" {
				return reqErr(bf+".id", "is required")
			}
			if blk.Name == "" {
				return reqErr(bf+".name", "is required")
			}
			if calls > 0 {
				cb = append(cb, ',')
			}
			cb = append(cb, `{"id":`...)
			cb = appendString(cb, blk.ID)
			cb = append(cb, `,"type":"function","function":{"name":`...)
			cb = appendString(cb, blk.Name)
			cb = append(cb, `,"arguments":`...)
			in := bytes.TrimSpace(blk.Input)
			if len(in) == 0 || in[0] != '{' {
				in = []byte("{}")
			}
			cb = appendString(cb, appendCompact(nil, in))
			cb = append(cb, "}}"...)
			calls++
		case "thinking", "redacted_thinking":
		case "":
			return reqErr(bf+".type", "is required")
		default:
			return reqErr(bf+".type", "content block type %q is not supported in an assistant message", blk.Type)
		}
	}
	if text.Len() == 0 && calls == 0 {
		return nil
	}
	w.open()
	w.b = append(w.b, `{"role":"assistant","content":`...)
	if text.Len() > 0 {
		w.b = appendString(w.b, text.String())
	} else {
		w.b = append(w.b, "null"...)
	}
	if calls > 0 {
		w.b = append(w.b, `,"tool_calls":[`...)
		w.b = append(w.b, cb...)
		w.b = append(w.b, ']')
	}
	w.b = append(w.b, '}')
	return nil
}
