package anthropic_test

import (
	"fmt"

	"github.com/aisix/aisix/proxy/provider/anthropic"
)

func ExampleTranslateRequest() {
	body, err := anthropic.TranslateRequest([]byte(`{"model":"chat-prod","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Hi"}],"seed":7}`),
		"claude-haiku-4-5", true, anthropic.RequestOptions{DefaultMaxTokens: 1024})
	fmt.Println(string(body), err)
	// Output:
	// {"model":"claude-haiku-4-5","max_tokens":1024,"system":[{"type":"text","text":"Be brief."}],"messages":[{"role":"user","content":[{"type":"text","text":"Hi"}]}],"stream":true} <nil>
}

func ExampleStream_Event() {
	s := anthropic.NewStream("chat-prod", 1767225600, false)
	var out []byte
	for _, data := range []string{
		`{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-haiku-4-5","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}`,
		`{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}`,
		`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
		`{"type":"content_block_stop","index":0}`,
		`{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":2}}`,
		`{"type":"message_stop"}`,
	} {
		var err error
		if out, _, err = s.Event(out, nil, []byte(data)); err != nil {
			fmt.Println(err)
		}
	}
	fmt.Print(string(out))
	// Output:
	// data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1767225600,"model":"chat-prod","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}
	//
	// data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1767225600,"model":"chat-prod","choices":[{"index":0,"delta":{"content":"Hello"},"finish_reason":null}]}
	//
	// data: {"id":"chatcmpl-msg_1","object":"chat.completion.chunk","created":1767225600,"model":"chat-prod","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}
	//
	// data: [DONE]
}
