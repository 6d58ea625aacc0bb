package anthropic

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/response: NAME.anthropic.json is a Messages answer shaped as in
// Anthropic's reference, NAME.openai.json the chat.completion expected.
func TestTranslateResponseGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/response/*.anthropic.json")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".anthropic.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(in, ".anthropic.json") + ".openai.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := TranslateResponse(body, "chat-prod", 1767225600)
			if err != nil {
				t.Fatalf("TranslateResponse: %v", err)
			}
			jsonEqual(t, got, want)
		})
	}
}

func TestTranslateResponseRejects(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"type":"error","error":{"type":"api_error","message":"x"}}`, `{"type":"message"}`, `{"id":1}`} {
		if _, err := TranslateResponse([]byte(body), "a", 1); !errors.Is(err, ErrNotMessage) {
			t.Errorf("TranslateResponse(%q) err = %v, want ErrNotMessage", body, err)
		}
	}
}

func TestFinishReason(t *testing.T) {
	for in, want := range map[string]string{"end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
		"max_tokens": "length", "tool_use": "tool_calls", "refusal": "content_filter", "": "stop"} {
		if got := FinishReason(in); got != want {
			t.Errorf("FinishReason(%q) = %q, want %q", in, got, want)
		}
	}
}
