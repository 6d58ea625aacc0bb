package provider

import "encoding/json"

// The parts of an OpenAI chat-completions request body that the
// translating adapters (Anthropic, Gemini, Bedrock) read. Unknown fields
// are dropped by their decoders, never forwarded.

// ChatMessage is one element of messages.
type ChatMessage struct {
	Role       string          `json:"role"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  []ChatToolCall  `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
	Name       string          `json:"name"`
}

// ChatToolCall is one of an assistant message's tool_calls.
type ChatToolCall struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Function struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	} `json:"function"`
}

// ChatTool is one element of tools.
type ChatTool struct {
	Type     string `json:"type"`
	Function struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
}

// ChatURL is an image_url part's value.
type ChatURL struct {
	URL string `json:"url"`
}

// ChatPart is one part of a message whose content is an array.
type ChatPart struct {
	Type       string   `json:"type"`
	Text       string   `json:"text"`
	Refusal    string   `json:"refusal"`
	ImageURL   *ChatURL `json:"image_url"`
	InputAudio *struct {
		Data   string `json:"data"`
		Format string `json:"format"`
	} `json:"input_audio"`
	File *struct {
		FileData string `json:"file_data"`
		FileID   string `json:"file_id"`
	} `json:"file"`
	CacheControl json.RawMessage `json:"cache_control"`
}
