package gemini

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
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

// The fixtures under testdata are written by hand from the OpenAI and
// Gemini API references: NAME.openai.json is the caller's body,
// NAME.gemini.json the GenerateContentRequest expected for it.
func TestTranslateRequestGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/request/*.openai.json")
	if len(ins) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".openai.json")
		t.Run(name, func(t *testing.T) {
			body, _ := os.ReadFile(in)
			want, err := os.ReadFile(strings.TrimSuffix(in, ".openai.json") + ".gemini.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := TranslateRequest(body, false)
			if err != nil {
				t.Fatalf("TranslateRequest: %v", err)
			}
			jsonEqual(t, got, want)
		})
	}
}

func TestTranslateRequestErrors(t *testing.T) {
	for _, tt := range []struct{ name, body, field string }{
		{"not JSON", `{`, "body"},
		{"no messages", `{"messages":[]}`, "messages"},
		{"system only", `{"messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"bad role", `{"messages":[{"role":"robot","content":"x"}]}`, "messages[0].role"},
		{"http image", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image in system", `{"messages":[{"role":"system","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},{"role":"user","content":"x"}]}`, "messages[0].content[0].type"},
		{"unknown tool id", `{"messages":[{"role":"user","content":"x"},{"role":"tool","tool_call_id":"call_9","content":"r"}]}`, "messages[1].tool_call_id"},
		{"bad arguments", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"ref in schema", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"$ref":"#/$defs/A"}}}}}]}`, "tools[0].function.parameters.properties.a.$ref"},
		{"allOf in schema", `{"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"allOf":[{"type":"object"}]}}}}`, "response_format.json_schema.schema.allOf"},
		{"numeric enum", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"n":{"type":"integer","enum":[1,2]}}}}}]}`, "tools[0].function.parameters.properties.n.enum"},
		{"n with stream", `{"messages":[{"role":"user","content":"x"}],"n":2}`, "n"},
		{"bad tool_choice", `{"messages":[{"role":"user","content":"x"}],"tool_choice":"always"}`, "tool_choice"},
		{"bad reasoning", `{"messages":[{"role":"user","content":"x"}],"reasoning_effort":"max"}`, "reasoning_effort"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := TranslateRequest([]byte(tt.body), true)
			var re *RequestError
			if !errors.As(err, &re) || re.Field != tt.field {
				t.Errorf("err = %v, want a RequestError naming %s", err, tt.field)
			}
		})
	}
}

func TestTranslateResponseGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/response/*.gemini.json")
	if len(ins) == 0 {
		t.Fatal("no fixtures")
	}
	for _, in := range ins {
		name := strings.TrimSuffix(filepath.Base(in), ".gemini.json")
		t.Run(name, func(t *testing.T) {
			body, _ := os.ReadFile(in)
			want, err := os.ReadFile(strings.TrimSuffix(in, ".gemini.json") + ".openai.json")
			if err != nil {
				t.Fatal(err)
			}
			got, err := TranslateResponse(body, "chat-prod", 1700000000)
			if err != nil {
				t.Fatalf("TranslateResponse: %v", err)
			}
			jsonEqual(t, got, want)
		})
	}
}

func TestTranslateResponseBlocked(t *testing.T) {
	_, err := TranslateResponse([]byte(`{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":5}}`), "a", 1)
	var be *BlockedError
	if !errors.As(err, &be) || be.Class != provider.ClassContentPolicy || !strings.Contains(be.Message, "SAFETY") {
		t.Fatalf("err = %v, want a content-policy BlockedError", err)
	}
	for _, body := range []string{`{}`, `[]`, `{"candidates":[]}`, `not json`, `{"error":{"code":500}}`} {
		if _, err := TranslateResponse([]byte(body), "a", 1); !errors.Is(err, ErrNotResponse) {
			t.Errorf("%s: err = %v, want ErrNotResponse", body, err)
		}
	}
}

func readSSE(t testing.TB, b []byte) [][]byte {
	t.Helper()
	sr := provider.NewSSEReader(bufio.NewReader(bytes.NewReader(b)), 0)
	var out [][]byte
	for {
		ev, err := sr.Next()
		if err != nil {
			return out
		}
		out = append(out, append([]byte(nil), ev.Data...))
	}
}

func compareFrames(t *testing.T, got, want []byte) {
	t.Helper()
	g, w := strings.Split(strings.TrimSpace(string(got)), "\n\n"), strings.Split(strings.TrimSpace(string(want)), "\n\n")
	if len(g) != len(w) {
		t.Fatalf("%d frames, want %d:\n%s", len(g), len(w), got)
	}
	for i := range g {
		gd, wd := strings.TrimPrefix(g[i], "data: "), strings.TrimPrefix(w[i], "data: ")
		if gd == "[DONE]" || wd == "[DONE]" {
			if gd != wd {
				t.Errorf("frame %d = %s, want %s", i, gd, wd)
			}
			continue
		}
		jsonEqual(t, []byte(gd), []byte(wd))
	}
}

func TestStreamGolden(t *testing.T) {
	ins, _ := filepath.Glob("testdata/stream/*.sse")
	for _, in := range ins {
		if strings.HasSuffix(in, ".openai.sse") {
			continue
		}
		name := strings.TrimSuffix(filepath.Base(in), ".sse")
		t.Run(name, func(t *testing.T) {
			body, _ := os.ReadFile(in)
			want, err := os.ReadFile(strings.TrimSuffix(in, ".sse") + ".openai.sse")
			if err != nil {
				t.Fatal(err)
			}
			s := NewStream("chat-prod", 1700000000, true)
			var out []byte
			evs := readSSE(t, body)
			for i, data := range evs {
				var info provider.EventInfo
				out, info, err = s.Event(out, nil, data)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if last := i == len(evs)-1; info.Done != last || info.Finished != last {
					t.Errorf("event %d: info %+v", i, info)
				}
				if !info.Content {
					t.Errorf("event %d carries content but Content is false", i)
				}
			}
			compareFrames(t, out, want)
			if _, _, err := s.Event(nil, nil, evs[0]); !errors.Is(err, ErrAfterDone) {
				t.Errorf("event after the finish: err = %v", err)
			}
			if got := s.End(nil); len(got) != 0 {
				t.Errorf("End after done = %q", got)
			}
		})
	}
}

func TestStreamErrors(t *testing.T) {
	s := NewStream("a", 1, false)
	out, info, err := s.Event(nil, nil, []byte(`{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}`))
	if err != nil || len(out) != 0 || info.Error == nil || info.Error.Class != provider.ClassRateLimited {
		t.Errorf("in-band error: out %q info %+v err %v", out, info, err)
	}
	s = NewStream("a", 1, false)
	_, info, _ = s.Event(nil, nil, []byte(`{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}`))
	if info.Error == nil || info.Error.Class != provider.ClassContentPolicy {
		t.Errorf("blocked prompt: info %+v", info)
	}
	for _, bad := range []string{`{"candidates":[`, `[1]`, `"x"`} {
		s = NewStream("a", 1, false)
		if _, _, err := s.Event(nil, nil, []byte(bad)); !errors.Is(err, ErrBadEvent) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	// A chunk with only usage (no candidates) opens the stream, no content.
	s = NewStream("a", 1, false)
	out, info, err = s.Event(nil, nil, []byte(`{"usageMetadata":{"promptTokenCount":1},"responseId":"x"}`))
	if err != nil || info.Content || !strings.Contains(string(out), `"role":"assistant"`) {
		t.Errorf("usage-only chunk: %q %+v %v", out, info, err)
	}
}

func TestClassify(t *testing.T) {
	env := func(code int, status, msg string) []byte {
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
		return b
	}
	for _, tt := range []struct {
		status int
		body   []byte
		want   provider.Class
	}{
		{429, env(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."), provider.ClassRateLimited},
		{503, env(503, "UNAVAILABLE", "The model is overloaded. Please try again later."), provider.ClassOverloaded},
		{400, env(400, "INVALID_ARGUMENT", "Request contains an invalid argument."), provider.ClassBadRequest},
		{400, env(400, "INVALID_ARGUMENT", "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."), provider.ClassContextLength},
		{400, []byte(`{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID"}]}}`), provider.ClassAuth},
		{400, env(400, "FAILED_PRECONDITION", "User location is not supported for the API use."), provider.ClassBilling},
		{403, env(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."), provider.ClassForbidden},
		{401, env(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."), provider.ClassAuth},
		{404, env(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"), provider.ClassNotFound},
		{504, env(504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."), provider.ClassTimeout},
		{500, env(500, "INTERNAL", "An internal error has occurred."), provider.ClassServer},
		{502, []byte(`<html>bad gateway</html>`), provider.ClassServer},
		{429, []byte(`[{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}]`), provider.ClassRateLimited},
	} {
		if got, _ := Classify(tt.status, tt.body); got != tt.want {
			t.Errorf("%d %s: %v, want %v", tt.status, tt.body, got, tt.want)
		}
	}
}

func TestOpenAIError(t *testing.T) {
	got := OpenAIError(400, []byte(`{"error":{"code":400,"message":"Invalid value at 'contents[0]' (see https://ai.google.dev/x, key AIzaSyD-abcdefghijklmnop)","status":"INVALID_ARGUMENT"}}`))
	var env struct {
		Error struct {
			Message, Type string
			Code          *string
		}
	}
	if err := json.Unmarshal(got, &env); err != nil || env.Error.Type != "invalid_request_error" {
		t.Fatalf("envelope %s: %v", got, err)
	}
	if strings.Contains(env.Error.Message, "https://") || strings.Contains(env.Error.Message, "abcdefghijklmnop") || !strings.HasPrefix(env.Error.Message, "Invalid value at") {
		t.Errorf("message not redacted: %q", env.Error.Message)
	}
	got = OpenAIError(500, []byte(`{"error":{"code":500,"message":"backend 10.1.2.3 failed","status":"INTERNAL"}}`))
	if !strings.Contains(string(got), `"message":"upstream returned 500"`) {
		t.Errorf("5xx envelope = %s", got)
	}
	got = OpenAIError(429, []byte(`{"error":{"code":429,"message":"Quota exceeded","status":"RESOURCE_EXHAUSTED"}}`))
	if !strings.Contains(string(got), `"code":"rate_limit_exceeded"`) {
		t.Errorf("429 envelope = %s", got)
	}
}

func TestEmbeddings(t *testing.T) {
	b, err := TranslateEmbedRequest([]byte(`{"model":"e","input":"hello","dimensions":3}`), "gemini-embedding-001")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b, []byte(`{"content":{"parts":[{"text":"hello"}]},"outputDimensionality":3}`))
	if isBatch(b) {
		t.Error("single input taken for a batch")
	}
	b, err = TranslateEmbedRequest([]byte(`{"model":"e","input":["a","b"]}`), "gemini-embedding-001")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, b, []byte(`{"requests":[{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"a"}]}},{"model":"models/gemini-embedding-001","content":{"parts":[{"text":"b"}]}}]}`))
	if !isBatch(b) {
		t.Error("batch not recognised")
	}
	if _, err := TranslateEmbedRequest([]byte(`{"input":[[1,2]]}`), "m"); err == nil {
		t.Error("token arrays accepted")
	}

	out, err := TranslateEmbedResponse(nil, []byte(`{"embedding":{"values":[0.5,-1,0.25]}}`), "emb", false)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, out, []byte(`{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1,0.25]}],"model":"emb","usage":{"prompt_tokens":0,"total_tokens":0}}`))
	out, err = TranslateEmbedResponse(nil, []byte(`{"embeddings":[{"values":[1]},{"values":[0.5,2]}]}`), "emb", true)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Data []struct {
			Index     int    `json:"index"`
			Embedding string `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(out, &list); err != nil || len(list.Data) != 2 || list.Data[1].Index != 1 {
		t.Fatalf("base64 list %s: %v", out, err)
	}
	raw, _ := base64.StdEncoding.DecodeString(list.Data[1].Embedding)
	if len(raw) != 8 || math.Float32frombits(binary.LittleEndian.Uint32(raw[4:])) != 2 {
		t.Errorf("base64 vector = %v", raw)
	}
	if _, err := TranslateEmbedResponse(nil, []byte(`{}`), "emb", false); !errors.Is(err, ErrNotResponse) {
		t.Errorf("empty answer: %v", err)
	}
}

func TestModelsURL(t *testing.T) {
	for _, tt := range []struct{ base, provider, want string }{
		{"", "", "https://generativelanguage.googleapis.com/v1beta/models"},
		{"", "google", "https://generativelanguage.googleapis.com/v1beta/models"},
		{" https://generativelanguage.googleapis.com/v1beta/ ", "gemini", "https://generativelanguage.googleapis.com/v1beta/models"},
		{"http://127.0.0.1:9000/v1beta/models", "", "http://127.0.0.1:9000/v1beta/models"},
		{"https://proxy.example.com/google", "acme", "https://proxy.example.com/google/v1beta/models"},
	} {
		u, err := ModelsURL(tt.base, tt.provider)
		if err != nil || u.String() != tt.want {
			t.Errorf("%q %q: %v %v, want %s", tt.base, tt.provider, u, err, tt.want)
		}
	}
	if _, err := ModelsURL("", "acme"); !errors.Is(err, ErrNoBase) {
		t.Errorf("vendor without base: %v", err)
	}
	e := NewEndpoint(EndpointConfig{Models: mustURL(t, "https://x.test/v1beta/models"), Model: "models/gemini-2.5-flash"})
	if got := e.stream.String(); got != "https://x.test/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse" {
		t.Errorf("stream URL = %s", got)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := ModelsURL(s, "")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestStreamReuse: the decoder reuses its event between chunks; nothing
// of a chunk leaks into the next (encoding/json does not zero the slice
// elements it decodes into).
func TestStreamReuse(t *testing.T) {
	s := NewStream("a", 1, false)
	var out []byte
	for _, data := range []string{
		`{"candidates":[{"content":{"parts":[{"text":"think","thought":true},{"functionCall":{"name":"f","args":{}}},{"text":"one"}]}}],"responseId":"r"}`,
		`{"candidates":[{"content":{"parts":[{"text":"two"}]}}]}`,
		`{"candidates":[{"content":{"parts":[]}}]}`,
		`{"candidates":[{"content":{"parts":[{"text":"three"}]},"finishReason":"STOP"}]}`,
	} {
		var err error
		if out, _, err = s.Event(out, nil, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	got := string(out)
	for sub, n := range map[string]int{`"reasoning_content":"think"`: 1, `"tool_calls":[`: 1, `"content":"one"`: 1, `"content":"two"`: 1,
		`"content":"three"`: 1, `"finish_reason":"tool_calls"`: 1, "[DONE]": 1} {
		if c := strings.Count(got, sub); c != n {
			t.Errorf("%s appears %d times, want %d:\n%s", sub, c, n, got)
		}
	}
}
