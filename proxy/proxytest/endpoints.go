package proxytest

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"time"
)

// The OpenAI endpoints besides chat completions, shaped after OpenAI's
// API reference: POST /v1/embeddings (an embedding list), POST
// /v1/completions (legacy text completions, plain and streamed) and POST
// /v1/responses (a response object, or its stream of named semantic
// events, each with a sequence_number).

// DefaultDimensions is the length of an Embedding vector when the request
// does not set dimensions.
const DefaultDimensions = 8

// EmbeddingValue is component j of the vector Embedding answers for input
// i: what a test compares a decoded vector against.
func EmbeddingValue(i, j int) float32 { return float32(i+1) + float32(j)/64 }

// Embedding answers an embedding list: one embedding object per input (a
// string or a token array is one input; an array of strings or of token
// arrays one per element), each a float list, or base64 of the
// little-endian float32s when encoding_format is "base64", of length
// dimensions (DefaultDimensions when unset). A request without input
// gets OpenAI's 400.
func Embedding() Behavior {
	return func(w http.ResponseWriter, c *Call) {
		var req struct {
			Input          json.RawMessage `json:"input"`
			EncodingFormat string          `json:"encoding_format"`
			Dimensions     int             `json:"dimensions"`
		}
		_ = json.Unmarshal(c.Body, &req)
		n := embeddingInputs(req.Input)
		if n == 0 {
			Status(http.StatusBadRequest, `{"error":{"message":"'input' is a required property","type":"invalid_request_error","param":null,"code":null}}`)(w, c)
			return
		}
		dims := req.Dimensions
		if dims <= 0 {
			dims = DefaultDimensions
		}
		data := make([]map[string]any, n)
		for i := range data {
			vec := make([]float32, dims)
			for j := range vec {
				vec[j] = EmbeddingValue(i, j)
			}
			var emb any = vec
			if req.EncodingFormat == "base64" {
				raw := make([]byte, 4*dims)
				for j, v := range vec {
					binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(v))
				}
				emb = base64.StdEncoding.EncodeToString(raw)
			}
			data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
		}
		b, _ := json.Marshal(map[string]any{
			"object": "list", "data": data, "model": c.Model,
			"usage": map[string]int{"prompt_tokens": 4 * n, "total_tokens": 4 * n},
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// embeddingInputs counts the inputs of an embeddings request.
func embeddingInputs(raw json.RawMessage) int {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return 0
		}
		return 1
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) != nil || len(arr) == 0 {
		return 0
	}
	var tok float64
	if json.Unmarshal(arr[0], &tok) == nil {
		return 1 // one token array
	}
	return len(arr)
}

// TextCompletion answers a legacy text_completion with text in every
// choice, finish_reason stop.
func TextCompletion(text string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		choices := make([]map[string]any, c.N)
		for i := range choices {
			choices[i] = map[string]any{"text": text, "index": i, "logprobs": nil, "finish_reason": "stop"}
		}
		b, _ := json.Marshal(map[string]any{
			"id": "cmpl-" + c.Name, "object": "text_completion", "created": 1767225600,
			"model": c.Model, "choices": choices,
			"usage": map[string]int{"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
		})
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// ResponseID is the id of the response objects an upstream named name
// answers.
func ResponseID(name string) string { return "resp_" + name }

func responseMessage(c *Call, text, status string) map[string]any {
	content := []any{}
	if status == "completed" {
		content = []any{map[string]any{"type": "output_text", "text": text, "annotations": []any{}}}
	}
	return map[string]any{"id": "msg_" + c.Name, "type": "message", "status": status, "role": "assistant", "content": content}
}

func responseObject(c *Call, status string, output []any, usage any, errObj any) map[string]any {
	var incomplete any
	if status == "incomplete" {
		incomplete = map[string]string{"reason": "max_output_tokens"}
	}
	return map[string]any{
		"id": ResponseID(c.Name), "object": "response", "created_at": 1767225600, "status": status,
		"error": errObj, "incomplete_details": incomplete, "instructions": nil, "max_output_tokens": nil,
		"model": c.Model, "output": output, "parallel_tool_calls": true, "previous_response_id": nil,
		"temperature": 1.0, "tool_choice": "auto", "tools": []any{}, "top_p": 1.0, "usage": usage, "metadata": map[string]any{},
	}
}

var responseUsage = map[string]any{
	"input_tokens": 10, "input_tokens_details": map[string]int{"cached_tokens": 0},
	"output_tokens": 9, "output_tokens_details": map[string]int{"reasoning_tokens": 0}, "total_tokens": 19,
}

// ResponseObject answers a completed response object (id ResponseID) whose
// output is one assistant message with one output_text part.
func ResponseObject(text string) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		b, _ := json.Marshal(responseObject(c, "completed", []any{responseMessage(c, text, "completed")}, responseUsage, nil))
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
	}
}

// ResponseStreamOptions shape a streamed Responses API answer.
type ResponseStreamOptions struct {
	// Chunks are the output_text deltas (default "hello", " from", " <name>").
	Chunks []string
	// FirstDelay is waited after the headers, before response.created.
	FirstDelay time.Duration
	// Gap is waited between deltas.
	Gap time.Duration
	// CutBeforeContent aborts the connection after response.content_part.added.
	CutBeforeContent bool
	// StallBeforeContent goes silent after response.content_part.added.
	StallBeforeContent bool
	// CutAfter > 0 aborts the connection after that many deltas.
	CutAfter int
	// StallAfter > 0 goes silent after that many deltas.
	StallAfter int
	// WaitAfter > 0 waits, after that many deltas, until Wait is closed.
	WaitAfter int
	Wait      <-chan struct{}
	// FailedAt > 0 sends response.failed (the response with status failed
	// and an error of ErrorCode) in place of delta n and ends the stream.
	FailedAt int
	// ErrorAt > 0 sends an error event (type error, code ErrorCode) in
	// place of delta n and ends the stream.
	ErrorAt int
	// ErrorCode is the code of FailedAt's and ErrorAt's error (default
	// server_error); ErrorMessage its message (default "The server had an
	// error while processing your request.").
	ErrorCode, ErrorMessage string
	// MalformedAt > 0 sends a response.output_text.delta event whose data
	// is not JSON before delta n.
	MalformedAt int
	// Incomplete ends with response.incomplete (max_output_tokens) in place
	// of response.completed.
	Incomplete bool
	// Image, when set, is the base64 result of an image_generation_call
	// output item that comes first (output_index 0, the message then at
	// 1): response.output_item.added, response.image_generation_call
	// .in_progress and .generating, PartialImages
	// response.image_generation_call.partial_image events (each carrying
	// Image), .completed, and response.output_item.done with the result;
	// response.completed repeats the item.
	Image         string
	PartialImages int
}

// ResponseStream answers a Responses API event stream in the documented
// order: response.created, response.in_progress,
// response.output_item.added, response.content_part.added, one
// response.output_text.delta per chunk, response.output_text.done,
// response.content_part.done, response.output_item.done and
// response.completed, each as "event: <type>" with its JSON, numbered by
// sequence_number from 0. There is no [DONE].
func ResponseStream(o ResponseStreamOptions) Behavior {
	return func(w http.ResponseWriter, c *Call) {
		chunks := o.Chunks
		if chunks == nil {
			chunks = []string{"hello", " from", " " + c.Name}
		}
		code, msg := o.ErrorCode, o.ErrorMessage
		if code == "" {
			code = "server_error"
		}
		if msg == "" {
			msg = "The server had an error while processing your request."
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fl, _ := w.(http.Flusher)
		flush := func() {
			if fl != nil {
				fl.Flush()
			}
		}
		flush()
		seq := 0
		send := func(typ string, fields map[string]any) {
			fields["type"] = typ
			fields["sequence_number"] = seq
			seq++
			b, _ := json.Marshal(fields)
			_, _ = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", typ, b)
			flush()
		}
		wait := func(d time.Duration) bool {
			if d <= 0 {
				return true
			}
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-c.R.Context().Done():
			case <-c.Done:
			}
			return false
		}
		stall := func() {
			select {
			case <-c.R.Context().Done():
			case <-c.Done:
			}
		}
		if !wait(o.FirstDelay) {
			return
		}
		itemID := "msg_" + c.Name
		send("response.created", map[string]any{"response": responseObject(c, "in_progress", []any{}, nil, nil)})
		send("response.in_progress", map[string]any{"response": responseObject(c, "in_progress", []any{}, nil, nil)})
		var output []any
		msgIndex := 0
		if o.Image != "" {
			imgID := "ig_" + c.Name
			send("response.output_item.added", map[string]any{"output_index": 0,
				"item": map[string]any{"type": "image_generation_call", "id": imgID, "status": "in_progress"}})
			send("response.image_generation_call.in_progress", map[string]any{"output_index": 0, "item_id": imgID})
			send("response.image_generation_call.generating", map[string]any{"output_index": 0, "item_id": imgID})
			for i := range o.PartialImages {
				send("response.image_generation_call.partial_image", map[string]any{"output_index": 0, "item_id": imgID,
					"partial_image_index": i, "partial_image_b64": o.Image})
			}
			send("response.image_generation_call.completed", map[string]any{"output_index": 0, "item_id": imgID})
			item := map[string]any{"type": "image_generation_call", "id": imgID, "status": "completed", "result": o.Image}
			send("response.output_item.done", map[string]any{"output_index": 0, "item": item})
			output = append(output, item)
			msgIndex = 1
		}
		send("response.output_item.added", map[string]any{"output_index": msgIndex, "item": responseMessage(c, "", "in_progress")})
		send("response.content_part.added", map[string]any{"item_id": itemID, "output_index": msgIndex, "content_index": 0,
			"part": map[string]any{"type": "output_text", "text": "", "annotations": []any{}}})
		if o.CutBeforeContent {
			panic(http.ErrAbortHandler)
		}
		if o.StallBeforeContent {
			stall()
			return
		}
		text := ""
		for i, piece := range chunks {
			n := i + 1
			if i > 0 && !wait(o.Gap) {
				return
			}
			if o.MalformedAt == n {
				_, _ = fmt.Fprintf(w, "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"item_id\":%q,\"delta\":\n\n", itemID)
				flush()
			}
			if o.FailedAt == n {
				send("response.failed", map[string]any{"response": responseObject(c, "failed", []any{}, nil,
					map[string]string{"code": code, "message": msg})})
				return
			}
			if o.ErrorAt == n {
				send("error", map[string]any{"code": code, "message": msg, "param": nil})
				return
			}
			send("response.output_text.delta", map[string]any{"item_id": itemID, "output_index": msgIndex, "content_index": 0,
				"delta": piece, "logprobs": []any{}})
			text += piece
			if o.CutAfter == n {
				panic(http.ErrAbortHandler)
			}
			if o.StallAfter == n {
				stall()
				return
			}
			if o.WaitAfter == n && !waitFor(c, o.Wait) {
				return
			}
		}
		part := map[string]any{"type": "output_text", "text": text, "annotations": []any{}}
		send("response.output_text.done", map[string]any{"item_id": itemID, "output_index": msgIndex, "content_index": 0, "text": text, "logprobs": []any{}})
		send("response.content_part.done", map[string]any{"item_id": itemID, "output_index": msgIndex, "content_index": 0, "part": part})
		item := responseMessage(c, text, "completed")
		send("response.output_item.done", map[string]any{"output_index": msgIndex, "item": item})
		output = append(output, item)
		if o.Incomplete {
			send("response.incomplete", map[string]any{"response": responseObject(c, "incomplete", output, responseUsage, nil)})
			return
		}
		send("response.completed", map[string]any{"response": responseObject(c, "completed", output, responseUsage, nil)})
	}
}
