package gemini

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aisix/aisix/proxy/provider"
)

// RequestError is a caller body this wire cannot carry (see
// provider.RequestError).
type RequestError = provider.RequestError

func reqErr(field, format string, args ...any) error {
	return &RequestError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Thinking budgets for reasoning_effort.
const (
	BudgetLow    = 1024
	BudgetMedium = 8192
	BudgetHigh   = 24576
)

// SkipThoughtSignature is the thoughtSignature sent with a function call
// the caller replays: OpenAI callers do not keep Gemini's signatures, and
// Google documents this value for conversation history that carries none.
const SkipThoughtSignature = "skip_thought_signature_validator"

// The caller's body, as far as it is read. Unknown fields are dropped.
type oaRequest struct {
	Messages            []oaMessage     `json:"messages"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float64        `json:"temperature"`
	TopP                *float64        `json:"top_p"`
	Stop                json.RawMessage `json:"stop"`
	N                   *int            `json:"n"`
	Seed                *int64          `json:"seed"`
	PresencePenalty     *float64        `json:"presence_penalty"`
	FrequencyPenalty    *float64        `json:"frequency_penalty"`
	Tools               []oaTool        `json:"tools"`
	ToolChoice          json.RawMessage `json:"tool_choice"`
	ResponseFormat      *struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"json_schema"`
	} `json:"response_format"`
	ReasoningEffort string `json:"reasoning_effort"`
}

// The GenerateContentRequest body. Field order is the order written.
type gmRequest struct {
	Contents          []gmContent   `json:"contents"`
	SystemInstruction *gmContent    `json:"systemInstruction,omitempty"`
	Tools             []gmTool      `json:"tools,omitempty"`
	ToolConfig        *gmToolConfig `json:"toolConfig,omitempty"`
	GenerationConfig  *gmGenConfig  `json:"generationConfig,omitempty"`
}

type gmContent struct {
	Role  string   `json:"role,omitempty"`
	Parts []gmPart `json:"parts"`
}

type gmPart struct {
	Text             *string         `json:"text,omitempty"`
	InlineData       *gmBlob         `json:"inlineData,omitempty"`
	FileData         *gmFileData     `json:"fileData,omitempty"`
	FunctionCall     *gmFunctionCall `json:"functionCall,omitempty"`
	FunctionResponse *gmFuncResponse `json:"functionResponse,omitempty"`
	ThoughtSignature string          `json:"thoughtSignature,omitempty"`
}

type gmBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type gmFileData struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type gmFunctionCall struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

type gmFuncResponse struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type gmTool struct {
	FunctionDeclarations []gmFunctionDecl `json:"functionDeclarations"`
}

type gmFunctionDecl struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type gmToolConfig struct {
	FunctionCallingConfig gmFCConfig `json:"functionCallingConfig"`
}

type gmFCConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type gmGenConfig struct {
	StopSequences    []string          `json:"stopSequences,omitempty"`
	ResponseMimeType string            `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage   `json:"responseSchema,omitempty"`
	CandidateCount   *int              `json:"candidateCount,omitempty"`
	MaxOutputTokens  *int              `json:"maxOutputTokens,omitempty"`
	Temperature      *float64          `json:"temperature,omitempty"`
	TopP             *float64          `json:"topP,omitempty"`
	Seed             *int64            `json:"seed,omitempty"`
	PresencePenalty  *float64          `json:"presencePenalty,omitempty"`
	FrequencyPenalty *float64          `json:"frequencyPenalty,omitempty"`
	ThinkingConfig   *gmThinkingConfig `json:"thinkingConfig,omitempty"`
}

type gmThinkingConfig struct {
	IncludeThoughts bool `json:"includeThoughts"`
	ThinkingBudget  int  `json:"thinkingBudget"`
}

// TranslateRequest turns the caller's OpenAI chat-completions body into a
// Gemini GenerateContentRequest. The rules:
//
//   - system and developer messages (string or text parts) become
//     systemInstruction parts, in order;
//   - user messages become "user" turns, assistant messages "model"
//     turns; tool messages become functionResponse parts in a "user"
//     turn, named after the assistant tool call they answer (the tool
//     content as the response object when it is a JSON object, else
//     {"content": <text>}); consecutive turns of one role are merged;
//   - assistant tool_calls become functionCall parts (arguments parsed
//     into the args object; the first of a turn carries
//     SkipThoughtSignature);
//   - image_url parts with a base64 data URL, input_audio parts and file
//     parts with file_data become inlineData; an image URL of Gemini's
//     Files API (https://generativelanguage.googleapis.com/…/files/…) or
//     a gs:// URI becomes fileData; any other http(s) URL is refused with
//     a RequestError (Gemini does not fetch arbitrary URLs; the next
//     target may);
//   - tools become functionDeclarations, each parameters schema reduced
//     to the OpenAPI subset Gemini accepts (ReduceSchema);
//   - tool_choice: auto → AUTO, none → NONE, required → ANY, a named
//     function → ANY with allowedFunctionNames;
//   - generationConfig: temperature, top_p → topP, max_completion_tokens
//     or max_tokens → maxOutputTokens, stop → stopSequences, n →
//     candidateCount (refused with stream), seed, presence_penalty,
//     frequency_penalty; response_format json_object → responseMimeType
//     application/json, json_schema → that and the reduced schema as
//     responseSchema; reasoning_effort → thinkingConfig (low/medium/high
//     → BudgetLow/Medium/High with includeThoughts, none → budget 0).
//
// Every other field is dropped. A *RequestError names the field at fault.
func TranslateRequest(openaiBody []byte, stream bool) ([]byte, error) {
	var in oaRequest
	dec := json.NewDecoder(bytes.NewReader(openaiBody))
	if err := dec.Decode(&in); err != nil {
		return nil, &RequestError{Field: "body", Reason: jsonReason(err)}
	}
	if dec.More() {
		return nil, &RequestError{Field: "body", Reason: "trailing data after the JSON object"}
	}
	var out gmRequest
	gc := &gmGenConfig{Temperature: in.Temperature, TopP: in.TopP, Seed: in.Seed,
		PresencePenalty: in.PresencePenalty, FrequencyPenalty: in.FrequencyPenalty}
	if in.N != nil && *in.N != 1 {
		if *in.N < 1 {
			return nil, reqErr("n", "must be at least 1")
		}
		if stream {
			return nil, reqErr("n", "Gemini streams one candidate; n must be 1 with stream")
		}
		gc.CandidateCount = in.N
	}
	switch {
	case in.MaxCompletionTokens != nil:
		if *in.MaxCompletionTokens < 1 {
			return nil, reqErr("max_completion_tokens", "must be at least 1")
		}
		gc.MaxOutputTokens = in.MaxCompletionTokens
	case in.MaxTokens != nil:
		if *in.MaxTokens < 1 {
			return nil, reqErr("max_tokens", "must be at least 1")
		}
		gc.MaxOutputTokens = in.MaxTokens
	}
	stops, err := provider.ParseStop(in.Stop)
	if err != nil {
		return nil, err
	}
	gc.StopSequences = stops

	// Messages.
	names := map[string]string{} // tool call id → function name
	for i, m := range in.Messages {
		if err := addMessage(&out, i, m, names); err != nil {
			return nil, err
		}
	}
	if len(out.Contents) == 0 {
		return nil, reqErr("messages", "at least one user or assistant message is required")
	}

	// Tools and tool_choice.
	var decls []gmFunctionDecl
	for i, t := range in.Tools {
		field := fmt.Sprintf("tools[%d]", i)
		if t.Type != "function" {
			return nil, reqErr(field+".type", "only function tools are supported, got %q", t.Type)
		}
		if t.Function.Name == "" {
			return nil, reqErr(field+".function.name", "is required")
		}
		d := gmFunctionDecl{Name: t.Function.Name, Description: t.Function.Description}
		if !isNull(t.Function.Parameters) {
			p, err := ReduceSchema(field+".function.parameters", t.Function.Parameters)
			if err != nil {
				return nil, err
			}
			if !emptyObjectSchema(p) {
				d.Parameters = p
			}
		}
		decls = append(decls, d)
	}
	if len(decls) > 0 {
		out.Tools = []gmTool{{FunctionDeclarations: decls}}
	}
	tc, err := translateToolChoice(in.ToolChoice)
	if err != nil {
		return nil, err
	}
	if tc != nil && len(decls) > 0 {
		out.ToolConfig = &gmToolConfig{FunctionCallingConfig: *tc}
	}

	// response_format.
	if rf := in.ResponseFormat; rf != nil {
		switch rf.Type {
		case "", "text":
		case "json_object":
			gc.ResponseMimeType = "application/json"
		case "json_schema":
			if rf.JSONSchema == nil || isNull(rf.JSONSchema.Schema) {
				return nil, reqErr("response_format.json_schema.schema", "is required")
			}
			s, err := ReduceSchema("response_format.json_schema.schema", rf.JSONSchema.Schema)
			if err != nil {
				return nil, err
			}
			gc.ResponseMimeType, gc.ResponseSchema = "application/json", s
		default:
			return nil, reqErr("response_format.type", "unsupported value %q", rf.Type)
		}
	}

	// reasoning_effort.
	switch in.ReasoningEffort {
	case "":
	case "none":
		gc.ThinkingConfig = &gmThinkingConfig{ThinkingBudget: 0}
	case "minimal", "low":
		gc.ThinkingConfig = &gmThinkingConfig{IncludeThoughts: true, ThinkingBudget: BudgetLow}
	case "medium":
		gc.ThinkingConfig = &gmThinkingConfig{IncludeThoughts: true, ThinkingBudget: BudgetMedium}
	case "high":
		gc.ThinkingConfig = &gmThinkingConfig{IncludeThoughts: true, ThinkingBudget: BudgetHigh}
	default:
		return nil, reqErr("reasoning_effort", "unsupported value %q (none, low, medium or high)", in.ReasoningEffort)
	}

	if !gc.empty() {
		out.GenerationConfig = gc
	}
	b, err := json.Marshal(&out)
	if err != nil {
		return nil, reqErr("body", "%v", err)
	}
	return b, nil
}

func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("field %s has the wrong type (%s)", te.Field, te.Value)
	}
	return "invalid JSON: " + strings.TrimPrefix(err.Error(), "json: ")
}

func isNull(raw json.RawMessage) bool { return provider.IsNullJSON(raw) }

func translateToolChoice(raw json.RawMessage) (*gmFCConfig, error) {
	tc, err := provider.ParseToolChoice(raw)
	switch {
	case err != nil:
		return nil, err
	case tc.Mode == "":
		return nil, nil
	case tc.Mode == "function":
		return &gmFCConfig{Mode: "ANY", AllowedFunctionNames: []string{tc.Name}}, nil
	case tc.Mode == "required":
		return &gmFCConfig{Mode: "ANY"}, nil
	}
	return &gmFCConfig{Mode: strings.ToUpper(tc.Mode)}, nil // AUTO, NONE
}

// appendTurn adds parts as a turn of role, merged into the previous turn
// when it has the same role.
func appendTurn(out *gmRequest, role string, parts []gmPart) {
	if len(parts) == 0 {
		return
	}
	if n := len(out.Contents); n > 0 && out.Contents[n-1].Role == role {
		out.Contents[n-1].Parts = append(out.Contents[n-1].Parts, parts...)
		return
	}
	out.Contents = append(out.Contents, gmContent{Role: role, Parts: parts})
}

func addMessage(out *gmRequest, i int, m oaMessage, names map[string]string) error {
	// Field names are only built for an error.
	fieldOf := func() string { return "messages[" + strconv.Itoa(i) + "]" }
	switch m.Role {
	case "system", "developer":
		parts, err := contentParts(i, m.Content, false)
		if err != nil {
			return err
		}
		if len(parts) == 0 {
			return nil
		}
		if out.SystemInstruction == nil {
			out.SystemInstruction = &gmContent{}
		}
		out.SystemInstruction.Parts = append(out.SystemInstruction.Parts, parts...)
	case "user":
		parts, err := contentParts(i, m.Content, true)
		if err != nil {
			return err
		}
		appendTurn(out, "user", parts)
	case "assistant":
		parts, err := contentParts(i, m.Content, false)
		if err != nil {
			return err
		}
		for j, tc := range m.ToolCalls {
			tf := func() string { return fieldOf() + ".tool_calls[" + strconv.Itoa(j) + "]" }
			if tc.Function.Name == "" {
				return reqErr(tf()+".function.name", "is required")
			}
			args := json.RawMessage(`{}`)
			if a := strings.TrimSpace(tc.Function.Arguments); a != "" {
				if !json.Valid([]byte(a)) || a[0] != '{' {
					return reqErr(tf()+".function.arguments", "must be a JSON object encoded as a string")
				}
				args = json.RawMessage(a)
			}
			p := gmPart{FunctionCall: &gmFunctionCall{Name: tc.Function.Name, Args: args}}
			if j == 0 {
				p.ThoughtSignature = SkipThoughtSignature
			}
			parts = append(parts, p)
			if tc.ID != "" {
				names[tc.ID] = tc.Function.Name
			}
		}
		appendTurn(out, "model", parts)
	case "tool", "function":
		name := m.Name
		if m.Role == "tool" {
			if m.ToolCallID == "" {
				return reqErr(fieldOf()+".tool_call_id", "is required")
			}
			var ok bool
			if name, ok = names[m.ToolCallID]; !ok {
				return reqErr(fieldOf()+".tool_call_id", "names no tool call of an earlier assistant message")
			}
		} else if name == "" {
			return reqErr(fieldOf()+".name", "is required")
		}
		resp, err := toolResponse(i, m.Content)
		if err != nil {
			return err
		}
		appendTurn(out, "user", []gmPart{{FunctionResponse: &gmFuncResponse{Name: name, Response: resp}}})
	case "":
		return reqErr(fieldOf()+".role", "is required")
	default:
		return reqErr(fieldOf()+".role", "unsupported role %q", m.Role)
	}
	return nil
}

// toolResponse is a tool message's content as functionResponse.response
// (a JSON object): the text itself when it is a JSON object, else
// {"content": text}.
func toolResponse(msg int, raw json.RawMessage) (json.RawMessage, error) {
	parts, err := contentParts(msg, raw, false)
	if err != nil {
		return nil, err
	}
	var text strings.Builder
	for _, p := range parts {
		if p.Text != nil {
			text.WriteString(*p.Text)
		}
	}
	s := strings.TrimSpace(text.String())
	if strings.HasPrefix(s, "{") && json.Valid([]byte(s)) {
		return json.RawMessage(s), nil
	}
	b, _ := json.Marshal(map[string]string{"content": text.String()})
	return b, nil
}

func textPart(s string) gmPart { return gmPart{Text: &s} }

// contentParts turns an OpenAI content value (string, array of parts, or
// null) into parts. Empty text is left out.
func contentParts(msg int, raw json.RawMessage, media bool) ([]gmPart, error) {
	if isNull(raw) {
		return nil, nil
	}
	field := "messages[" + strconv.Itoa(msg) + "].content"
	var s string
	if raw = bytes.TrimSpace(raw); raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, nil
		}
		return []gmPart{textPart(s)}, nil
	}
	var parts []oaPart
	if err := json.Unmarshal(raw, &parts); err != nil {
		return nil, reqErr(field, "must be a string or an array of content parts")
	}
	out := make([]gmPart, 0, len(parts))
	for j, p := range parts {
		pf := field + "[" + strconv.Itoa(j) + "]"
		if !media && p.Type != "text" && p.Type != "refusal" {
			return nil, reqErr(pf+".type", "only text parts are allowed in this message")
		}
		switch p.Type {
		case "text", "refusal":
			text := p.Text
			if p.Type == "refusal" {
				text = p.Refusal
			}
			if text != "" {
				out = append(out, textPart(text))
			}
		case "image_url":
			if p.ImageURL == nil || p.ImageURL.URL == "" {
				return nil, reqErr(pf+".image_url.url", "is required")
			}
			part, err := imagePart(pf+".image_url.url", p.ImageURL.URL)
			if err != nil {
				return nil, err
			}
			out = append(out, part)
		case "input_audio":
			if p.InputAudio == nil || p.InputAudio.Data == "" {
				return nil, reqErr(pf+".input_audio.data", "is required")
			}
			mime := "audio/" + p.InputAudio.Format
			if p.InputAudio.Format == "mp3" {
				mime = "audio/mpeg"
			}
			out = append(out, gmPart{InlineData: &gmBlob{MimeType: mime, Data: p.InputAudio.Data}})
		case "file":
			if p.File == nil || p.File.FileData == "" {
				return nil, reqErr(pf+".file.file_data", "is required (file_id is not supported)")
			}
			blob, err := dataBlob(pf+".file.file_data", p.File.FileData)
			if err != nil {
				return nil, err
			}
			out = append(out, gmPart{InlineData: blob})
		default:
			return nil, reqErr(pf+".type", "unsupported content part type %q", p.Type)
		}
	}
	return out, nil
}

// dataBlob turns a data:<media type>;base64,<data> URL into inline data.
func dataBlob(field, u string) (*gmBlob, error) {
	rest, _ := strings.CutPrefix(u, "data:")
	meta, data, ok := strings.Cut(rest, ",")
	mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
	if !strings.HasPrefix(u, "data:") || !ok || !isBase64 || mediaType == "" || data == "" {
		return nil, reqErr(field, "a data URL must be data:<media type>;base64,<data>")
	}
	return &gmBlob{MimeType: mediaType, Data: data}, nil
}

// filesHost is the host of Gemini's Files API URIs.
const filesHost = "https://generativelanguage.googleapis.com/"

func imagePart(field, u string) (gmPart, error) {
	switch {
	case strings.HasPrefix(u, "data:"):
		blob, err := dataBlob(field, u)
		if err != nil {
			return gmPart{}, err
		}
		return gmPart{InlineData: blob}, nil
	case strings.HasPrefix(u, filesHost) && strings.Contains(u, "/files/"), strings.HasPrefix(u, "gs://"):
		return gmPart{FileData: &gmFileData{FileURI: u, MimeType: mimeOf(u)}}, nil
	case strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://"):
		return gmPart{}, reqErr(field, "Gemini does not fetch image URLs: send the image as a base64 data URL (or a Gemini Files API URI)")
	}
	return gmPart{}, reqErr(field, "must be a base64 data URL or a Gemini Files API URI")
}

// mimeOf guesses an image's media type from its extension ("" when it
// cannot tell; Gemini then uses the file's own).
func mimeOf(u string) string {
	u = strings.ToLower(u)
	for ext, m := range map[string]string{".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp",
		".heic": "image/heic", ".heif": "image/heif", ".gif": "image/gif"} {
		if strings.HasSuffix(u, ext) {
			return m
		}
	}
	return ""
}

func (g *gmGenConfig) empty() bool {
	return g.StopSequences == nil && g.ResponseMimeType == "" && g.ResponseSchema == nil && g.CandidateCount == nil &&
		g.MaxOutputTokens == nil && g.Temperature == nil && g.TopP == nil && g.Seed == nil &&
		g.PresencePenalty == nil && g.FrequencyPenalty == nil && g.ThinkingConfig == nil
}

// The caller's OpenAI request parts (shared by every translating wire).
type (
	oaMessage = provider.ChatMessage
	oaTool    = provider.ChatTool
	oaPart    = provider.ChatPart
)
