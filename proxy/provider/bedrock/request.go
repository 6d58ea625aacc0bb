package bedrock

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// The OpenAI chat-completions request as the translator reads it.
type chatRequest struct {
	Messages            []chatMessage   `json:"messages"`
	MaxTokens           *int64          `json:"max_tokens"`
	MaxCompletionTokens *int64          `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int            `json:"n"`
	Tools               []chatTool      `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
}

// The Converse request.
type converseRequest struct {
	Messages        []cMessage       `json:"messages"`
	System          []cBlock         `json:"system,omitempty"`
	InferenceConfig *inferenceConfig `json:"inferenceConfig,omitempty"`
	ToolConfig      *toolConfig      `json:"toolConfig,omitempty"`
}

type cMessage struct {
	Role    string   `json:"role"`
	Content []cBlock `json:"content"`
}

type cBlock struct {
	Text       *string      `json:"text,omitempty"`
	Image      *cImage      `json:"image,omitempty"`
	ToolUse    *cToolUse    `json:"toolUse,omitempty"`
	ToolResult *cToolResult `json:"toolResult,omitempty"`
}

type cImage struct {
	Format string `json:"format"`
	Source struct {
		Bytes string `json:"bytes"`
	} `json:"source"`
}

type cToolUse struct {
	ToolUseID string          `json:"toolUseId"`
	Name      string          `json:"name"`
	Input     json.RawMessage `json:"input"`
}

type cToolResult struct {
	ToolUseID string   `json:"toolUseId"`
	Content   []cBlock `json:"content"`
}

type inferenceConfig struct {
	MaxTokens     *int64   `json:"maxTokens,omitempty"`
	Temperature   *float64 `json:"temperature,omitempty"`
	TopP          *float64 `json:"topP,omitempty"`
	StopSequences []string `json:"stopSequences,omitempty"`
}

type toolConfig struct {
	Tools      []cTool         `json:"tools"`
	ToolChoice json.RawMessage `json:"toolChoice,omitempty"`
}

type cTool struct {
	ToolSpec struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		InputSchema struct {
			JSON json.RawMessage `json:"json"`
		} `json:"inputSchema"`
	} `json:"toolSpec"`
}

func reqErr(field, reason string) error { return &provider.RequestError{Field: field, Reason: reason} }

// TranslateRequest turns an OpenAI chat-completions body into a Converse
// (or ConverseStream: the body is the same) body. System and developer
// messages become system text blocks; user and assistant content become
// text and image blocks (images only as base64 data URLs); assistant
// tool_calls become toolUse blocks and tool messages user toolResult
// blocks; consecutive messages of one role are merged. tools and
// tool_choice become toolConfig (tool_choice "none" drops the tools),
// and max_tokens, temperature, top_p and stop inferenceConfig. Fields
// Converse has no counterpart for are dropped; n > 1 is a RequestError.
func TranslateRequest(body []byte) ([]byte, error) {
	var in chatRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, reqErr("body", "is not a valid chat completions request")
	}
	if in.N != nil && *in.N > 1 {
		return nil, reqErr("n", "Bedrock returns one choice; n > 1 is not supported")
	}
	var out converseRequest
	add := func(role string, blocks ...cBlock) {
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			return
		}
		out.Messages = append(out.Messages, cMessage{Role: role, Content: blocks})
	}
	for i, m := range in.Messages {
		field := "messages[" + strconv.Itoa(i) + "]"
		switch m.Role {
		case "system", "developer":
			blocks, err := contentBlocks(m.Content, field+".content", false)
			if err != nil {
				return nil, err
			}
			out.System = append(out.System, blocks...)
		case "user":
			blocks, err := contentBlocks(m.Content, field+".content", true)
			if err != nil {
				return nil, err
			}
			if len(blocks) > 0 {
				add("user", blocks...)
			}
		case "assistant":
			blocks, err := contentBlocks(m.Content, field+".content", false)
			if err != nil {
				return nil, err
			}
			for j, tc := range m.ToolCalls {
				input := json.RawMessage(`{}`)
				if a := strings.TrimSpace(tc.Function.Arguments); a != "" {
					if !json.Valid([]byte(a)) || a[0] != '{' {
						return nil, reqErr(field+".tool_calls["+strconv.Itoa(j)+"].function.arguments", "must be a JSON object")
					}
					input = json.RawMessage(a)
				}
				if tc.ID == "" || tc.Function.Name == "" {
					return nil, reqErr(field+".tool_calls["+strconv.Itoa(j)+"]", "needs an id and a function name")
				}
				blocks = append(blocks, cBlock{ToolUse: &cToolUse{ToolUseID: tc.ID, Name: tc.Function.Name, Input: input}})
			}
			if len(blocks) > 0 {
				add("assistant", blocks...)
			}
		case "tool":
			if m.ToolCallID == "" {
				return nil, reqErr(field+".tool_call_id", "is required")
			}
			blocks, err := contentBlocks(m.Content, field+".content", false)
			if err != nil {
				return nil, err
			}
			if len(blocks) == 0 {
				empty := ""
				blocks = []cBlock{{Text: &empty}}
			}
			add("user", cBlock{ToolResult: &cToolResult{ToolUseID: m.ToolCallID, Content: blocks}})
		default:
			return nil, reqErr(field+".role", "must be system, developer, user, assistant or tool")
		}
	}
	if len(out.Messages) == 0 {
		return nil, reqErr("messages", "needs at least one user or assistant message")
	}
	ic := inferenceConfig{MaxTokens: in.MaxCompletionTokens, Temperature: in.Temperature, TopP: in.TopP}
	if ic.MaxTokens == nil {
		ic.MaxTokens = in.MaxTokens
	}
	stops, err := provider.ParseStop(in.Stop)
	if err != nil {
		return nil, err
	}
	ic.StopSequences = stops
	if ic.MaxTokens != nil || ic.Temperature != nil || ic.TopP != nil || len(ic.StopSequences) > 0 {
		out.InferenceConfig = &ic
	}
	if err := tools(&in, &out); err != nil {
		return nil, err
	}
	if out.ToolConfig == nil {
		historyTools(&in, &out)
	}
	return json.Marshal(&out)
}

func tools(in *chatRequest, out *converseRequest) error {
	choice := bytes.TrimSpace(in.ToolChoice)
	var s string
	if len(choice) > 0 && choice[0] == '"' {
		_ = json.Unmarshal(choice, &s)
	}
	if len(in.Tools) == 0 || s == "none" {
		return nil
	}
	tc := &toolConfig{}
	for i, t := range in.Tools {
		if t.Type != "" && t.Type != "function" || t.Function.Name == "" {
			return reqErr("tools["+strconv.Itoa(i)+"]", "must be a function tool with a name")
		}
		var ct cTool
		ct.ToolSpec.Name = t.Function.Name
		ct.ToolSpec.Description = t.Function.Description
		ct.ToolSpec.InputSchema.JSON = t.Function.Parameters
		if len(bytes.TrimSpace(ct.ToolSpec.InputSchema.JSON)) == 0 || bytes.Equal(bytes.TrimSpace(ct.ToolSpec.InputSchema.JSON), []byte("null")) {
			ct.ToolSpec.InputSchema.JSON = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		tc.Tools = append(tc.Tools, ct)
	}
	switch {
	case len(choice) == 0 || bytes.Equal(choice, []byte("null")) || s == "auto":
		tc.ToolChoice = json.RawMessage(`{"auto":{}}`)
	case s == "required":
		tc.ToolChoice = json.RawMessage(`{"any":{}}`)
	case s != "":
		return reqErr("tool_choice", "must be none, auto, required or a function")
	default:
		var named struct {
			Function struct {
				Name string `json:"name"`
			} `json:"function"`
		}
		if json.Unmarshal(choice, &named) != nil || named.Function.Name == "" {
			return reqErr("tool_choice", "must be none, auto, required or a function")
		}
		b, _ := json.Marshal(map[string]map[string]string{"tool": {"name": named.Function.Name}})
		tc.ToolChoice = b
	}
	out.ToolConfig = tc
	return nil
}

// historyTools declares tools for a conversation whose history holds
// toolUse or toolResult blocks while the request gives no tools (or
// tool_choice "none"): Converse refuses such a history without a
// toolConfig. The request's tools are declared when it has them, else the
// names the history uses, with an open schema; no toolChoice is sent.
func historyTools(in *chatRequest, out *converseRequest) {
	var names []string
	has := false
	for _, m := range out.Messages {
		for _, b := range m.Content {
			switch {
			case b.ToolUse != nil:
				has = true
				if !slices.Contains(names, b.ToolUse.Name) {
					names = append(names, b.ToolUse.Name)
				}
			case b.ToolResult != nil:
				has = true
			}
		}
	}
	if !has {
		return
	}
	if len(in.Tools) > 0 {
		saved := in.ToolChoice
		in.ToolChoice = nil
		_ = tools(in, out) // the tools were checked already
		in.ToolChoice = saved
		out.ToolConfig.ToolChoice = nil
		return
	}
	if len(names) == 0 {
		names = []string{"tool"} // toolResult blocks only
	}
	tc := &toolConfig{}
	for _, n := range names {
		var ct cTool
		ct.ToolSpec.Name = n
		ct.ToolSpec.InputSchema.JSON = json.RawMessage(`{"type":"object"}`)
		tc.Tools = append(tc.Tools, ct)
	}
	out.ToolConfig = tc
}

// contentBlocks reads an OpenAI content value: a string, null, or an array
// of parts (text, and image_url when images are allowed).
func contentBlocks(raw json.RawMessage, field string, images bool) ([]cBlock, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil, reqErr(field, "is not a valid string")
		}
		if s == "" {
			return nil, nil
		}
		return []cBlock{{Text: &s}}, nil
	}
	var parts []chatPart
	if json.Unmarshal(raw, &parts) != nil {
		return nil, reqErr(field, "must be a string or an array of content parts")
	}
	var blocks []cBlock
	for j, p := range parts {
		pf := field + "[" + strconv.Itoa(j) + "]"
		switch p.Type {
		case "text":
			if p.Text != "" {
				t := p.Text
				blocks = append(blocks, cBlock{Text: &t})
			}
		case "image_url":
			if !images {
				return nil, reqErr(pf, "images are only supported in user messages")
			}
			var u string
			if p.ImageURL != nil {
				u = p.ImageURL.URL
			}
			img, err := dataImage(u, pf+".image_url.url")
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, cBlock{Image: img})
		default:
			return nil, reqErr(pf+".type", "is not supported by Bedrock (text and image_url are)")
		}
	}
	return blocks, nil
}

// dataImage reads a data:image/…;base64 URL; Converse takes image bytes
// only, so http(s) URLs are refused.
func dataImage(u, field string) (*cImage, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return nil, reqErr(field, "must be a base64 data URL (Bedrock does not fetch image URLs)")
	}
	meta, data, ok := strings.Cut(rest, ",")
	if !ok || !strings.HasSuffix(meta, ";base64") {
		return nil, reqErr(field, "must be a base64 data URL")
	}
	var format string
	switch strings.ToLower(strings.TrimSuffix(meta, ";base64")) {
	case "image/png":
		format = "png"
	case "image/jpeg", "image/jpg":
		format = "jpeg"
	case "image/gif":
		format = "gif"
	case "image/webp":
		format = "webp"
	default:
		return nil, reqErr(field, "must be a png, jpeg, gif or webp image")
	}
	if _, err := base64.StdEncoding.DecodeString(data); err != nil {
		return nil, reqErr(field, "is not valid base64")
	}
	img := &cImage{Format: format}
	img.Source.Bytes = data
	return img, nil
}

// The caller's OpenAI request parts (shared by every translating wire).
type (
	chatMessage = provider.ChatMessage
	chatTool    = provider.ChatTool
	chatPart    = provider.ChatPart
)
