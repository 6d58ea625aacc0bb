package messages

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToChatGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/request/*.anthropic.json")
	if len(ins) == 0 {
		t.Fatal("no fixtures")
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
			var w struct {
				Model string `json:"model"`
			}
			if err := json.Unmarshal(want, &w); err != nil {
				t.Fatal(err)
			}
			got, info, err := ToChat(body, w.Model, ToChatOptions{})
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, got, want)
			var c struct {
				Model  string `json:"model"`
				Stream bool   `json:"stream"`
			}
			_ = json.Unmarshal(body, &c)
			if info.Model != c.Model || info.Stream != c.Stream {
				t.Errorf("info %+v, want model %q stream %v", info, c.Model, c.Stream)
			}
		})
	}
}

func TestToChatInfo(t *testing.T) {
	body, _ := os.ReadFile("testdata/request/claude_code.anthropic.json")
	_, info, err := ToChat(body, "gpt-5", ToChatOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := Info{Model: "claude-sonnet-4-5-20250929", Stream: true, MaxTokens: 32000, Thinking: true, ReasoningEffort: "high", Tools: 2}
	if info != want {
		t.Errorf("info = %+v, want %+v", info, want)
	}
}

func TestToChatOptions(t *testing.T) {
	body := []byte(`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"thinking":{"type":"enabled","budget_tokens":2048}}`)
	got, info, err := ToChat(body, "gpt-4o", ToChatOptions{LegacyMaxTokens: true, NoReasoning: true})
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, got, []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}],"max_tokens":100}`))
	if !info.Thinking || info.ReasoningEffort != "" || info.Stream {
		t.Errorf("info = %+v", info)
	}
}

func TestToChatFields(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct{ name, in, want string }{
		{"minimal", `{"model":"m",` + msgs + `}`, `{"model":"up",` + msgs + `}`},
		{"tool_choice any", `{"model":"m",` + msgs + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"any"}}`,
			`{"model":"up",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"required"}`},
		{"tool_choice none keeps parallel", `{"model":"m",` + msgs + `,"tools":[{"name":"f","input_schema":{"type":"object"}}],"tool_choice":{"type":"none","disable_parallel_tool_use":true}}`,
			`{"model":"up",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"none"}`},
		{"missing schema", `{"model":"m",` + msgs + `,"tools":[{"name":"f","description":"d"}]}`,
			`{"model":"up",` + msgs + `,"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}}}]}`},
		{"tool_choice without tools", `{"model":"m",` + msgs + `,"tool_choice":{"type":"auto","disable_parallel_tool_use":true}}`, `{"model":"up",` + msgs + `}`},
		{"short user id", `{"model":"m",` + msgs + `,"metadata":{"user_id":"u-42"}}`, `{"model":"up",` + msgs + `,"user":"u-42"}`},
		{"effort low", `{"model":"m",` + msgs + `,"thinking":{"type":"enabled","budget_tokens":1024}}`, `{"model":"up",` + msgs + `,"reasoning_effort":"low"}`},
		{"effort medium", `{"model":"m",` + msgs + `,"thinking":{"type":"enabled","budget_tokens":4096}}`, `{"model":"up",` + msgs + `,"reasoning_effort":"medium"}`},
		{"effort high", `{"model":"m",` + msgs + `,"thinking":{"type":"enabled","budget_tokens":16384}}`, `{"model":"up",` + msgs + `,"reasoning_effort":"high"}`},
		{"thinking disabled", `{"model":"m",` + msgs + `,"thinking":{"type":"disabled"}}`, `{"model":"up",` + msgs + `}`},
		{"empty stops dropped", `{"model":"m",` + msgs + `,"stop_sequences":[""]}`, `{"model":"up",` + msgs + `}`},
		{"unknown fields dropped", `{"model":"m",` + msgs + `,"top_k":5,"service_tier":"auto","output_config":{"effort":"low"},"x_future":{"a":1}}`, `{"model":"up",` + msgs + `}`},
		{"tool result first", `{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"before"},{"type":"tool_result","tool_use_id":"t1","content":[]}]}]}`,
			`{"model":"up","messages":[{"role":"tool","tool_call_id":"t1","content":""},{"role":"user","content":"before"}]}`},
		{"thinking only turn dropped", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":"s"}]},{"role":"user","content":"b"}]}`,
			`{"model":"up","messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}`},
		{"assistant text blocks joined", `{"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":[{"type":"text","text":"one"},{"type":"text","text":"two"}]}]}`,
			`{"model":"up","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"one\n\ntwo"}]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := ToChat([]byte(c.in), "up", ToChatOptions{})
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, got, []byte(c.want))
		})
	}
}

func TestToChatErrors(t *testing.T) {
	const msgs = `"messages":[{"role":"user","content":"hi"}]`
	for _, c := range []struct{ in, field string }{
		{`not json`, "body"},
		{`{} {}`, "body"},
		{`{"model":"m"}`, "messages"},
		{`{"model":"m","messages":[{"role":"system","content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"content":"x"}]}`, "messages[0].role"},
		{`{"model":"m","messages":[{"role":"user","content":"a"},{"role":"user","content":[{"type":"search_result"}]}]}`, "messages[1].content[0].type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]}`, "messages[0].content[0].source.type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}]}]}`, "messages[0].content[0].source.type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"text/csv","data":"YQ=="}}]}]}`, "messages[0].content[0].source.media_type"},
		{`{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result"}]}]}`, "messages[0].content[0].tool_use_id"},
		{`{"model":"m","messages":[{"role":"assistant","content":[{"type":"tool_use","name":"f"}]}]}`, "messages[0].content[0].id"},
		{`{"model":"m","messages":[{"role":"assistant","content":[{"type":"image","source":{"type":"url","url":"https://x"}}]}]}`, "messages[0].content[0].type"},
		{`{"model":"m","messages":7}`, "body"},
		{`{"model":"m",` + msgs + `,"tools":[{"type":"web_search_20250305","name":"web_search"}]}`, "tools[0].type"},
		{`{"model":"m",` + msgs + `,"tools":[{"name":"a"},{"type":"bash_20250124","name":"bash"}]}`, "tools[1].type"},
		{`{"model":"m",` + msgs + `,"tools":[{"input_schema":{}}]}`, "tools[0].name"},
		{`{"model":"m",` + msgs + `,"tool_choice":{"type":"sometimes"}}`, "tool_choice.type"},
		{`{"model":"m",` + msgs + `,"tool_choice":{"type":"tool"}}`, "tool_choice.name"},
		{`{"model":"m",` + msgs + `,"max_tokens":0}`, "max_tokens"},
		{`{"model":"m",` + msgs + `,"system":[{"type":"image"}]}`, "system[0].type"},
	} {
		_, _, err := ToChat([]byte(c.in), "up", ToChatOptions{})
		var re *RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: err = %v, want a *RequestError", c.in, err)
			continue
		}
		if re.Field != c.field {
			t.Errorf("%s: field = %q (%v), want %q", c.in, re.Field, re, c.field)
		}
	}
}
