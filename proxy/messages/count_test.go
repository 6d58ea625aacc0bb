package messages

import (
	"errors"
	"os"
	"testing"
)

func TestCountTokensEstimate(t *testing.T) {
	body := []byte(`{"model":"m","system":"abcd","messages":[{"role":"user","content":"12345678"},` +
		`{"role":"user","content":[{"type":"image","source":{"type":"url","url":"https://x/y.png"}}]}],` +
		`"tools":[{"name":"ab","description":"cd","input_schema":{ "type": "object" }}]}`)
	// Bytes: system 4 + text 8 + tool name 2, description 2, compact
	// schema 17 = 33 → 9 tokens; fixed: system and two messages 3×4, one
	// image 1600, one tool 8.
	n, err := CountTokensEstimate(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(9 + 3*MessageOverhead + ImageTokens + ToolOverhead); n != want {
		t.Errorf("estimate = %d, want %d", n, want)
	}
	if n, err := CountTokensEstimate([]byte(`{"messages":[]}`)); err != nil || n != 1 {
		t.Errorf("empty request: %d %v, want 1", n, err)
	}
	var re *RequestError
	if _, err := CountTokensEstimate([]byte(`{"messages":"x"`)); !errors.As(err, &re) {
		t.Errorf("bad body: err %v", err)
	}
	// The Claude Code fixture: ~1.4 KB of text and schemas, 3 messages, a
	// system prompt and 2 tools.
	cc, _ := os.ReadFile("testdata/request/claude_code.anthropic.json")
	n, err = CountTokensEstimate(cc)
	if err != nil || n < 100 || n > 1000 {
		t.Errorf("claude_code estimate = %d %v", n, err)
	}
}
