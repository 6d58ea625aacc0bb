package messages_test

import (
	"fmt"

	"github.com/aisix/aisix/proxy/messages"
)

// The inbound flow for a streaming Messages request served by an
// OpenAI-wire target.
func Example() {
	req := []byte(`{"model":"claude-sonnet-4-5","max_tokens":256,"stream":true,` +
		`"messages":[{"role":"user","content":"Hello"}]}`)
	chat, info, err := messages.ToChat(req, "gpt-4.1", messages.ToChatOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s\n", chat)

	// "Hello": 5 bytes → 2 tokens, plus one message's overhead of 4.
	estimate, _ := messages.CountTokensEstimate(req)
	s := messages.NewStream(info.Model, estimate)
	var out []byte
	for _, data := range []string{
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi!"},"finish_reason":null}],"usage":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}`,
		`{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":8,"completion_tokens":2,"total_tokens":10}}`,
		`[DONE]`,
	} {
		out, _, _ = s.Event(out, []byte(data))
	}
	fmt.Print(string(out))
	// Output:
	// {"model":"gpt-4.1","messages":[{"role":"user","content":"Hello"}],"max_completion_tokens":256,"stream":true,"stream_options":{"include_usage":true}}
	// event: message_start
	// data: {"type":"message_start","message":{"id":"msg_chatcmpl-1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[],"stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":6,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":1}}}
	//
	// event: content_block_start
	// data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}
	//
	// event: content_block_delta
	// data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi!"}}
	//
	// event: content_block_stop
	// data: {"type":"content_block_stop","index":0}
	//
	// event: message_delta
	// data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"input_tokens":8,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":2}}
	//
	// event: message_stop
	// data: {"type":"message_stop"}
}
