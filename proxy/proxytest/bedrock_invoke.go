package proxytest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// The Bedrock operations the fake serves (Call.Endpoint).
const (
	BedrockConverse       = "converse"
	BedrockConverseStream = "converse-stream"
	BedrockInvoke         = "invoke"
	BedrockInvokeStream   = "invoke-with-response-stream"
	BedrockCountTokens    = "count-tokens"
)

// bedrockBetas are the anthropic_beta values the fake's Claude accepts;
// others answer 400 "invalid beta flag", as Bedrock does.
var bedrockBetas = map[string]bool{
	"computer-use-2025-01-24": true, "token-efficient-tools-2025-02-19": true,
	"interleaved-thinking-2025-05-14": true, "output-128k-2025-02-19": true,
	"context-1m-2025-08-07": true, "context-management-2025-06-27": true,
	"fine-grained-tool-streaming-2025-05-14": true, "effort-2025-11-24": true,
}

func bedrockFoundation(model string) string {
	if i := strings.LastIndexByte(model, '/'); i >= 0 {
		model = model[i+1:]
	}
	if p, rest, ok := strings.Cut(model, "."); ok && len(p) <= 8 && (strings.HasPrefix(rest, "anthropic.") || strings.HasPrefix(rest, "amazon.") || strings.HasPrefix(rest, "cohere.")) {
		return rest
	}
	return model
}

func bedrockEmbedModel(model string) bool {
	f := bedrockFoundation(model)
	return strings.HasPrefix(f, "amazon.titan-embed") || strings.HasPrefix(f, "cohere.embed")
}

// validateBedrock checks a body as Bedrock's operation does; a non-empty
// message is its 400 ValidationException.
func validateBedrock(op, model string, body []byte) string {
	const malformed = "Malformed input request, please reformat your input and try again."
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return malformed
	}
	switch op {
	case BedrockConverse, BedrockConverseStream:
		var msgs []json.RawMessage
		if json.Unmarshal(m["messages"], &msgs) != nil || len(msgs) == 0 {
			return malformed
		}
	case BedrockCountTokens:
		var in struct {
			Input struct {
				InvokeModel struct {
					Body []byte `json:"body"`
				} `json:"invokeModel"`
			} `json:"input"`
		}
		if json.Unmarshal(body, &in) != nil || len(in.Input.InvokeModel.Body) == 0 {
			return "1 validation error detected: Value null at 'input' failed to satisfy constraint: Member must not be null"
		}
		if bedrockFoundation(model) != model {
			return "The provided model doesn't support counting tokens."
		}
		return validateBedrock(BedrockInvoke, model, in.Input.InvokeModel.Body)
	case BedrockInvoke, BedrockInvokeStream:
		f := bedrockFoundation(model)
		switch {
		case strings.HasPrefix(f, "amazon.titan-embed-text-v1"):
			return allowedKeys(m, "inputText")
		case strings.HasPrefix(f, "amazon.titan-embed"):
			var s string
			if json.Unmarshal(m["inputText"], &s) != nil {
				return malformed
			}
			return allowedKeys(m, "inputText", "dimensions", "normalize", "embeddingTypes")
		case strings.HasPrefix(f, "cohere.embed"):
			var texts []string
			var typ string
			if json.Unmarshal(m["texts"], &texts) != nil || json.Unmarshal(m["input_type"], &typ) != nil || len(texts) == 0 {
				return malformed
			}
			return allowedKeys(m, "texts", "input_type", "truncate", "embedding_types")
		case strings.HasPrefix(f, "anthropic."):
			var v string
			if json.Unmarshal(m["anthropic_version"], &v) != nil || v != "bedrock-2023-05-31" {
				return "Malformed input request: #/anthropic_version: bedrock-2023-05-31 is the only supported value, please reformat your input and try again."
			}
			for _, k := range []string{"model", "stream"} {
				if _, ok := m[k]; ok {
					return "Malformed input request: #: extraneous key [" + k + "] is not permitted, please reformat your input and try again."
				}
			}
			if raw, ok := m["anthropic_beta"]; ok {
				var betas []string
				if json.Unmarshal(raw, &betas) != nil {
					return malformed
				}
				for _, b := range betas {
					if !bedrockBetas[b] {
						return "invalid beta flag"
					}
				}
			}
			var msgs []json.RawMessage
			if json.Unmarshal(m["messages"], &msgs) != nil || len(msgs) == 0 || m["max_tokens"] == nil {
				return malformed
			}
		}
	}
	return ""
}

func allowedKeys(m map[string]json.RawMessage, keys ...string) string {
	for k := range m {
		ok := false
		for _, a := range keys {
			ok = ok || k == a
		}
		if !ok {
			return "Malformed input request: #: extraneous key [" + k + "] is not permitted, please reformat your input and try again."
		}
	}
	return ""
}

// BedrockClaudeTool is one tool_use block of a fake Claude answer.
type BedrockClaudeTool struct {
	ID, Name string
	// Input is the tool input, a JSON object.
	Input string
	// Fragments split Input in a stream (default: one delta).
	Fragments []string
}

// BedrockClaudeMessage answers InvokeModel for Claude with Anthropic's
// message (the Messages API's response, as Bedrock returns it): a text
// block (when text is set) and the tool_use blocks; stop_reason end_turn,
// or tool_use with tools.
func BedrockClaudeMessage(text string, tools []BedrockClaudeTool) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		content := []any{}
		if text != "" {
			content = append(content, map[string]string{"type": "text", "text": text})
		}
		for _, t := range tools {
			content = append(content, map[string]any{"type": "tool_use", "id": t.ID, "name": t.Name, "input": json.RawMessage(t.Input)})
		}
		stop := "end_turn"
		if len(tools) > 0 {
			stop = "tool_use"
		}
		b, _ := json.Marshal(map[string]any{
			"id": "msg_bdrk_01" + c.Name, "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
			"content": content, "stop_reason": stop, "stop_sequence": nil,
			"usage": map[string]int{"input_tokens": 12, "output_tokens": 5},
		})
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "12")
		w.Header().Set("X-Amzn-Bedrock-Output-Token-Count", "5")
		_, _ = w.Write(b)
	}
}

// BedrockClaudeStreamOptions shape a fake InvokeModelWithResponseStream
// of Claude.
type BedrockClaudeStreamOptions struct {
	// Chunks are the text deltas (default: "hello from <name>" in
	// pieces; none with Tools and no Chunks).
	Chunks []string
	Tools  []BedrockClaudeTool
	// ExceptionAfter, when > 0, sends Exception in place of the
	// ExceptionAfter-th event (1 is message_start).
	ExceptionAfter int
	Exception      string
}

// BedrockClaudeEvents are the Anthropic stream events (JSON) of a stream
// o describes, in Anthropic's documented order: message_start, per block
// content_block_start, deltas, content_block_stop (a ping after the first
// start), message_delta with the stop_reason, message_stop carrying
// Bedrock's amazon-bedrock-invocationMetrics.
func BedrockClaudeEvents(name string, o BedrockClaudeStreamOptions) []string {
	chunks := o.Chunks
	if chunks == nil && len(o.Tools) == 0 {
		chunks = []string{"hello", " from ", name}
	}
	j := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	evs := []string{j(map[string]any{"type": "message_start", "message": map[string]any{
		"id": "msg_bdrk_01" + name, "type": "message", "role": "assistant", "model": "claude-3-5-haiku-20241022",
		"content": []any{}, "stop_reason": nil, "stop_sequence": nil, "usage": map[string]int{"input_tokens": 12, "output_tokens": 1},
	}})}
	idx := 0
	if len(chunks) > 0 {
		evs = append(evs, j(map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]string{"type": "text", "text": ""}}),
			`{"type":"ping"}`)
		for _, ch := range chunks {
			evs = append(evs, j(map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]string{"type": "text_delta", "text": ch}}))
		}
		evs = append(evs, j(map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	for _, t := range o.Tools {
		evs = append(evs, j(map[string]any{"type": "content_block_start", "index": idx, "content_block": map[string]any{"type": "tool_use", "id": t.ID, "name": t.Name, "input": map[string]any{}}}))
		frags := t.Fragments
		if frags == nil {
			frags = []string{t.Input}
		}
		for _, f := range frags {
			evs = append(evs, j(map[string]any{"type": "content_block_delta", "index": idx, "delta": map[string]string{"type": "input_json_delta", "partial_json": f}}))
		}
		evs = append(evs, j(map[string]any{"type": "content_block_stop", "index": idx}))
		idx++
	}
	stop := "end_turn"
	if len(o.Tools) > 0 {
		stop = "tool_use"
	}
	evs = append(evs, j(map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil}, "usage": map[string]int{"output_tokens": 5}}),
		`{"type":"message_stop","amazon-bedrock-invocationMetrics":{"inputTokenCount":12,"outputTokenCount":5,"invocationLatency":410,"firstByteLatency":120}}`)
	return evs
}

// EncodeBedrockChunk appends one InvokeModelWithResponseStream chunk
// event carrying the Anthropic event JSON ev, base64 in {"bytes":…}.
func EncodeBedrockChunk(w io.Writer, ev string) error {
	var hs eventstream.Headers
	hs.Set(":message-type", eventstream.StringValue("event"))
	hs.Set(":event-type", eventstream.StringValue("chunk"))
	hs.Set(":content-type", eventstream.StringValue("application/json"))
	payload := `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte(ev)) + `"}`
	return eventstream.NewEncoder().Encode(w, eventstream.Message{Headers: hs, Payload: []byte(payload)})
}

// BedrockClaudeStream answers InvokeModelWithResponseStream as o
// describes.
func BedrockClaudeStream(o BedrockClaudeStreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		evs := BedrockClaudeEvents(c.Name, o)
		w.Header().Set("Content-Type", "application/vnd.amazon.eventstream")
		w.Header().Set("X-Amzn-Bedrock-Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		for i, ev := range evs {
			if o.ExceptionAfter > 0 && i+1 == o.ExceptionAfter {
				_ = EncodeBedrockEvent(w, "!"+o.Exception, `{"message":"fake `+o.Exception+`"}`)
				if fl != nil {
					fl.Flush()
				}
				return
			}
			_ = EncodeBedrockChunk(w, ev)
			if fl != nil {
				fl.Flush()
			}
		}
	}
}

// BedrockEmbedding answers InvokeModel for an embedding model with
// vectors of 4 values: Titan's {"embedding","inputTextTokenCount"} (the
// count is the input's words), Cohere's {"embeddings","id","texts",
// "response_type"}, one vector per text.
func BedrockEmbedding() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var b []byte
		if strings.HasPrefix(bedrockFoundation(c.Model), "cohere.") {
			var in struct {
				Texts []string `json:"texts"`
			}
			_ = json.Unmarshal(c.Body, &in)
			vecs := make([][]float64, len(in.Texts))
			for i := range vecs {
				vecs[i] = []float64{0.25, -0.5, float64(i), 0.125}
			}
			b, _ = json.Marshal(map[string]any{"embeddings": vecs, "id": "emb-" + c.Name, "response_type": "embeddings_floats", "texts": in.Texts})
		} else {
			var in struct {
				InputText string `json:"inputText"`
			}
			_ = json.Unmarshal(c.Body, &in)
			b, _ = json.Marshal(map[string]any{"embedding": []float64{0.25, -0.5, 1, 0.125}, "inputTextTokenCount": len(strings.Fields(in.InputText))})
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// BedrockTokenCount answers CountTokens with {"inputTokens":n}.
func BedrockTokenCount(n int) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		b, _ := json.Marshal(map[string]int{"inputTokens": n})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// BedrockInvokeBody decodes what the fake received for count-tokens: the
// InvokeModel body inside it.
func BedrockInvokeBody(countBody []byte) []byte {
	var in struct {
		Input struct {
			InvokeModel struct {
				Body []byte `json:"body"`
			} `json:"invokeModel"`
		} `json:"input"`
	}
	_ = json.Unmarshal(countBody, &in)
	return bytes.Clone(in.Input.InvokeModel.Body)
}
