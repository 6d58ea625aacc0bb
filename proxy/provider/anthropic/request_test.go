package anthropic

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON differs\n got: %s\nwant: %s", got, want)
	}
}

// The fixtures under testdata/request are written by hand from the OpenAI
// and Anthropic API references: NAME.openai.json is the caller's body,
// NAME.anthropic.json the Messages body expected for it.
func TestTranslateRequestGolden(t *testing.T) {
	ins, err := filepath.Glob("testdata/request/*.openai.json")
	if err != nil || len(ins) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".openai.json")
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(strings.TrimSuffix(in, ".openai.json") + ".anthropic.json")
			if err != nil {
				t.Fatal(err)
			}
			var probe struct{ Stream bool }
			_ = json.Unmarshal(body, &probe)
			got, err := TranslateRequest(body, "claude-sonnet-4-5", probe.Stream, RequestOptions{})
			if err != nil {
				t.Fatalf("TranslateRequest: %v", err)
			}
			jsonEqual(t, got, want)
		})
	}
}

func TestTranslateRequestDefaultMaxTokens(t *testing.T) {
	got, err := TranslateRequest([]byte(`{"messages":[{"role":"user","content":"hi"}]}`), "m", false, RequestOptions{DefaultMaxTokens: 777})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, []byte(`{"model":"m","max_tokens":777,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`))
}

func TestTranslateRequestErrors(t *testing.T) {
	tests := []struct {
		name, body, field string
	}{
		{"not json", `{"messages":`, "body"},
		{"trailing", `{"messages":[]} {}`, "body"},
		{"wrong type", `{"messages":"hi"}`, "body"},
		{"n>1", `{"n":2,"messages":[{"role":"user","content":"x"}]}`, "n"},
		{"no messages", `{"messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"bad role", `{"messages":[{"role":"wizard","content":"x"}]}`, "messages[0].role"},
		{"no role", `{"messages":[{"content":"x"}]}`, "messages[0].role"},
		{"bad content", `{"messages":[{"role":"user","content":42}]}`, "messages[0].content"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`, "messages[0].content[0].type"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]},{"role":"user","content":"x"}]}`, "messages[0].content[0].type"},
		{"bad data url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"ftp url", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ftp://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"file id", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_id":"file-1"}}]}]}`, "messages[0].content[0].file.file_data"},
		{"file url", `{"messages":[{"role":"user","content":[{"type":"file","file":{"file_data":"https://x/a.pdf"}}]}]}`, "messages[0].content[0].file.file_data"},
		{"bad arguments", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{"array arguments", `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[0].tool_calls[0].function.arguments"},
		{"tool call no id", `{"messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}`, "messages[0].tool_calls[0].id"},
		{"tool no id", `{"messages":[{"role":"tool","content":"x"}]}`, "messages[0].tool_call_id"},
		{"tool type", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"code_interpreter"}]}`, "tools[0].type"},
		{"tool reserved", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"json_response"}}]}`, "tools[0].function.name"},
		{"tool_choice value", `{"messages":[{"role":"user","content":"x"}],"tool_choice":"sometimes"}`, "tool_choice"},
		{"tool_choice object", `{"messages":[{"role":"user","content":"x"}],"tool_choice":{"type":"function"}}`, "tool_choice"},
		{"stop", `{"messages":[{"role":"user","content":"x"}],"stop":5}`, "stop"},
		{"max_tokens", `{"messages":[{"role":"user","content":"x"}],"max_tokens":0}`, "max_tokens"},
		{"response_format type", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"yaml"}}`, "response_format.type"},
		{"response_format schema", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}}`, "response_format.json_schema.schema"},
		{"effort", `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"extreme"}`, "reasoning_effort"},
		{"effort forced", `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"low","response_format":{"type":"json_object"}}`, "reasoning_effort"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := TranslateRequest([]byte(tt.body), "m", false, RequestOptions{})
			var re *RequestError
			if !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *RequestError", err)
			}
			if re.Field != tt.field {
				t.Errorf("field = %q, want %q (%v)", re.Field, tt.field, err)
			}
		})
	}
}
