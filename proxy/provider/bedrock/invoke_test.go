package bedrock_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/bedrock"
	"github.com/aisix/aisix/proxy/proxytest"
)

var alias = &provider.Alias{Name: "claude-prod", JSON: []byte(`"claude-prod"`)}

func TestFoundationModel(t *testing.T) {
	tests := []struct {
		id, want string
		claude   bool
	}{
		{"anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-5-haiku-20241022-v1:0", true},
		{"us.anthropic.claude-sonnet-4-20250514-v1:0", "anthropic.claude-sonnet-4-20250514-v1:0", true},
		{"eu.anthropic.claude-3-7-sonnet-20250219-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0", true},
		{"apac.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0", true},
		{"global.anthropic.claude-sonnet-4-5-20250929-v1:0", "anthropic.claude-sonnet-4-5-20250929-v1:0", true},
		{"us-gov.anthropic.claude-3-5-sonnet-20240620-v1:0", "anthropic.claude-3-5-sonnet-20240620-v1:0", true},
		{"arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", true},
		{"arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-haiku-20240307-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", true},
		{"arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3", "a1b2c3", false},
		{"amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", false},
		{"us.amazon.nova-pro-v1:0", "amazon.nova-pro-v1:0", false},
		{"meta.llama3-70b-instruct-v1:0", "meta.llama3-70b-instruct-v1:0", false},
		{"anthropic.claude", "anthropic.claude", true},
		{"notaregion.anthropic.claude-x", "notaregion.anthropic.claude-x", false},
	}
	for _, tt := range tests {
		if got := bedrock.FoundationModel(tt.id); got != tt.want {
			t.Errorf("FoundationModel(%q) = %q, want %q", tt.id, got, tt.want)
		}
		if got := bedrock.IsClaude(tt.id); got != tt.claude {
			t.Errorf("IsClaude(%q) = %v", tt.id, got)
		}
	}
}

func TestSupports(t *testing.T) {
	base, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	ops := []provider.Op{provider.OpChat, provider.OpEmbeddings, provider.OpCompletions, provider.OpResponses, provider.OpMessages, provider.OpCountTokens}
	for model, want := range map[string]string{
		"us.anthropic.claude-3-5-haiku-20241022-v1:0": "chat.completions,messages,messages.count_tokens",
		"amazon.nova-pro-v1:0":                        "chat.completions",
		"amazon.titan-embed-text-v2:0":                "embeddings",
		"amazon.titan-embed-text-v1":                  "embeddings",
		"cohere.embed-multilingual-v3":                "embeddings",
	} {
		e := bedrock.NewEndpoint(bedrock.EndpointConfig{Base: base, Model: model})
		var got []string
		for _, op := range ops {
			if e.Supports(op) {
				got = append(got, op.String())
			}
		}
		if strings.Join(got, ",") != want {
			t.Errorf("%s serves %v, want %s", model, got, want)
		}
	}
}

func TestMessagesBody(t *testing.T) {
	h := http.Header{}
	h.Add("Anthropic-Beta", "claude-code-20250219, interleaved-thinking-2025-05-14")
	h.Add("Anthropic-Beta", "context-1m-2025-08-07,oauth-2025-04-20,interleaved-thinking-2025-05-14")
	body := `{"model":"claude-prod","stream":true,"anthropic_version":"2023-06-01","anthropic_beta":["files-api-2025-04-14","token-efficient-tools-2025-02-19"],` +
		`"max_tokens":100,"system":"Be <brief> & kind","messages":[{"role":"user","content":"hi"}],"tools":[{"name":"t","input_schema":{"type":"object"}}]}`
	got, err := bedrock.MessagesBody([]byte(body), h)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "invoke_messages.json", got)
	var m map[string]json.RawMessage
	_ = json.Unmarshal(got, &m)
	if string(m["anthropic_beta"]) != `["interleaved-thinking-2025-05-14","context-1m-2025-08-07","token-efficient-tools-2025-02-19"]` {
		t.Errorf("anthropic_beta %s", m["anthropic_beta"])
	}
	if !bytes.Contains(got, []byte(`"Be <brief> & kind"`)) {
		t.Errorf("the caller's text was escaped: %s", got)
	}
	// No accepted beta: no anthropic_beta at all.
	got, _ = bedrock.MessagesBody([]byte(`{"model":"m","max_tokens":1,"messages":[]}`), http.Header{"Anthropic-Beta": {"claude-code-20250219"}})
	if string(got) != `{"anthropic_version":"bedrock-2023-05-31","max_tokens":1,"messages":[]}` {
		t.Errorf("got %s", got)
	}
	for _, bad := range []string{`[]`, `{"a":1}{}`, `{"anthropic_beta":"x"}`, `nope`} {
		var re *provider.RequestError
		if _, err := bedrock.MessagesBody([]byte(bad), nil); !errors.As(err, &re) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestCountTokensBody(t *testing.T) {
	got, err := bedrock.CountTokensBody([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}]}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := proxytest.BedrockInvokeBody(got)
	if string(inner) != `{"max_tokens":1,"anthropic_version":"bedrock-2023-05-31","messages":[{"role":"user","content":"hi"}]}` {
		t.Errorf("inner %s (of %s)", inner, got)
	}
	got, _ = bedrock.CountTokensBody([]byte(`{"max_tokens":9,"messages":[]}`), nil)
	if inner := proxytest.BedrockInvokeBody(got); string(inner) != `{"anthropic_version":"bedrock-2023-05-31","max_tokens":9,"messages":[]}` {
		t.Errorf("inner %s", inner)
	}
	got, _ = bedrock.CountTokensBody([]byte(`{"thinking":{"type":"enabled","budget_tokens":1024},"messages":[]}`), nil)
	if inner := proxytest.BedrockInvokeBody(got); string(inner) != `{"max_tokens":1025,"anthropic_version":"bedrock-2023-05-31","messages":[],"thinking":{"type":"enabled","budget_tokens":1024}}` {
		t.Errorf("inner %s", inner)
	}
	got, _ = bedrock.CountTokensBody([]byte(`{}`), nil)
	if inner := proxytest.BedrockInvokeBody(got); string(inner) != `{"max_tokens":1,"anthropic_version":"bedrock-2023-05-31"}` {
		t.Errorf("inner %s", inner)
	}
	if out, err := bedrock.CountTokensAnswer(nil, []byte(`{"inputTokens":42}`)); err != nil || string(out) != `{"input_tokens":42}` {
		t.Errorf("answer %s %v", out, err)
	}
	for _, bad := range []string{`{}`, `{"inputTokens":1.5}`, `[`} {
		if _, err := bedrock.CountTokensAnswer(nil, []byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestMessageAnswer(t *testing.T) {
	out, err := bedrock.MessageAnswer(nil, []byte(`{"id":"msg_1","type":"message","model":"claude-3-5-haiku-20241022","content":[]}`), alias)
	if err != nil || string(out) != `{"id":"msg_1","type":"message","model":"claude-prod","content":[]}` {
		t.Errorf("%s %v", out, err)
	}
	if _, err := bedrock.MessageAnswer(nil, []byte(`not json`), alias); err == nil {
		t.Error("a non-JSON answer accepted")
	}
}

// encodeChunks frames Anthropic events as InvokeModelWithResponseStream
// chunks.
func encodeChunks(t testing.TB, evs []string) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, ev := range evs {
		if err := proxytest.EncodeBedrockChunk(&b, ev); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func runInvoke(t testing.TB, body []byte) (string, []provider.EventInfo, error) {
	t.Helper()
	s := bedrock.NewInvokeStream(alias)
	src := s.Frames(bufio.NewReader(bytes.NewReader(body)), 1<<20)
	var out []byte
	var infos []provider.EventInfo
	for {
		ev, err := src.Next()
		if err == io.EOF {
			return string(s.End(out)), infos, nil
		}
		if err != nil {
			return string(out), infos, err
		}
		var info provider.EventInfo
		out, info, err = s.Event(out, ev.Name, ev.Data)
		if err != nil {
			return string(out), infos, err
		}
		infos = append(infos, info)
	}
}

func TestInvokeStreamGolden(t *testing.T) {
	tests := map[string]proxytest.BedrockClaudeStreamOptions{
		"invoke_stream_text":  {},
		"invoke_stream_tools": {Chunks: []string{"Checking."}, Tools: []proxytest.BedrockClaudeTool{{ID: "toolu_1", Name: "get", Fragments: []string{`{"ci`, `ty":"Paris"}`}}}},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			out, infos, err := runInvoke(t, encodeChunks(t, proxytest.BedrockClaudeEvents("up", o)))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".txt", []byte(out))
			if strings.Contains(out, "event: ping") {
				t.Error("the upstream's ping was relayed")
			}
			if infos[0].Content || infos[1].Content && len(o.Tools) == 0 {
				t.Errorf("message_start or a text block start counted as content: %+v", infos[:2])
			}
			var content, finished bool
			for _, in := range infos {
				content = content || in.Content
				finished = finished || in.Finished
			}
			if !content || !finished || !infos[len(infos)-1].Done {
				t.Errorf("infos %+v", infos)
			}
		})
	}
}

func TestInvokeStreamExceptions(t *testing.T) {
	for typ, want := range map[string]provider.Class{
		"throttlingException": provider.ClassRateLimited, "serviceUnavailableException": provider.ClassOverloaded,
		"modelStreamErrorException": provider.ClassServer, "internalServerException": provider.ClassServer,
		"modelTimeoutException": provider.ClassTimeout, "validationException": provider.ClassBadRequest,
	} {
		body := encodeChunks(t, proxytest.BedrockClaudeEvents("up", proxytest.BedrockClaudeStreamOptions{})[:1])
		var b bytes.Buffer
		_ = proxytest.EncodeBedrockEvent(&b, "!"+typ, `{"message":"boom"}`)
		body = append(body, b.Bytes()...)
		_, infos, err := runInvoke(t, body)
		if err != nil {
			t.Fatal(err)
		}
		f := infos[len(infos)-1].Error
		if f == nil || f.Class != want || f.Message != "boom" || f.Type != typ {
			t.Errorf("%s: %+v, want class %v", typ, f, want)
		}
	}
}

func TestInvokeStreamMalformed(t *testing.T) {
	s := bedrock.NewInvokeStream(alias)
	for _, data := range []string{`{"bytes":1}`, `{"bytes":"!!!"}`, `{}`, `nope`, `{"bytes":"` + base64.StdEncoding.EncodeToString([]byte("not json")) + `"}`} {
		if _, _, err := s.Event(nil, []byte("chunk"), []byte(data)); err == nil {
			t.Errorf("%s accepted", data)
		}
	}
	// An escaped base64 string is unquoted first.
	ev := base64.StdEncoding.EncodeToString([]byte(`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"??>"}}`))
	out, info, err := s.Event(nil, []byte("chunk"), []byte(`{"bytes":"`+strings.ReplaceAll(ev, "/", `\/`)+`"}`))
	if err != nil || !info.Content || !strings.HasPrefix(string(out), "event: content_block_delta\ndata: ") {
		t.Errorf("escaped: %q %+v %v", out, info, err)
	}
	// Padding and spacing go through the JSON decoder.
	for _, data := range []string{`{"bytes":"` + ev + `","p":"abcdef"}`, `{ "bytes" : "` + ev + `" }`} {
		if out, info, err := s.Event(nil, []byte("chunk"), []byte(data)); err != nil || !info.Content || !strings.Contains(string(out), `"text":"??>"`) {
			t.Errorf("%s: %q %+v %v", data, out, info, err)
		}
	}
	// An event without a type makes no frame: skipped.
	if out, _, err := s.Event(nil, []byte("chunk"), []byte(`{"bytes":"e30="}`)); !errors.Is(err, provider.ErrSkipEvent) || len(out) != 0 {
		t.Errorf("typeless event: %q %v", out, err)
	}
	// Other events are dropped.
	if out, info, err := s.Event(nil, []byte("initial-response"), []byte(`{}`)); err != nil || len(out) != 0 || info != (provider.EventInfo{}) {
		t.Errorf("other event: %q %+v %v", out, info, err)
	}
}

func TestEmbeddings(t *testing.T) {
	tests := []struct {
		name, body string
		family     bedrock.EmbedFamily
		want, err  string
	}{
		{"titan v2", `{"input":"hi","model":"m"}`, bedrock.EmbedTitanV2, `{"inputText":"hi","normalize":true}`, ""},
		{"titan v2 one-item list", `{"input":["hi"],"dimensions":256}`, bedrock.EmbedTitanV2, `{"inputText":"hi","dimensions":256,"normalize":true}`, ""},
		{"titan v1", `{"input":"hi"}`, bedrock.EmbedTitanV1, `{"inputText":"hi"}`, ""},
		{"titan list", `{"input":["a","b"]}`, bedrock.EmbedTitanV2, "", "input: Titan embeddings take one input per request"},
		{"titan bad dimensions", `{"input":"a","dimensions":300}`, bedrock.EmbedTitanV2, "", "dimensions: must be 256, 512 or 1024"},
		{"titan v1 dimensions", `{"input":"a","dimensions":256}`, bedrock.EmbedTitanV1, "", "dimensions: amazon.titan-embed-text-v1 has a fixed size"},
		{"cohere", `{"input":["a","b"]}`, bedrock.EmbedCohere, `{"texts":["a","b"],"input_type":"search_document"}`, ""},
		{"cohere query", `{"input":"a","input_type":"search_query"}`, bedrock.EmbedCohere, `{"texts":["a"],"input_type":"search_query"}`, ""},
		{"cohere bad input_type", `{"input":"a","input_type":"x"}`, bedrock.EmbedCohere, "", "input_type: must be"},
		{"cohere dimensions", `{"input":"a","dimensions":256}`, bedrock.EmbedCohere, "", "dimensions: Cohere Embed v3 has a fixed size"},
		{"tokens", `{"input":[1,2,3]}`, bedrock.EmbedCohere, "", "input: must be a string or a non-empty list of strings"},
		{"empty list", `{"input":[]}`, bedrock.EmbedTitanV2, "", "input: must be"},
		{"bad format", `{"input":"a","encoding_format":"int8"}`, bedrock.EmbedTitanV2, "", "encoding_format:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := bedrock.EmbeddingsBody([]byte(tt.body), tt.family)
			var re *provider.RequestError
			switch {
			case tt.err != "" && (!errors.As(err, &re) || !strings.HasPrefix(err.Error(), tt.err)):
				t.Errorf("err %v, want %q", err, tt.err)
			case tt.err == "" && (err != nil || string(got) != tt.want):
				t.Errorf("got %s %v, want %s", got, err, tt.want)
			}
		})
	}
	out, err := bedrock.EmbeddingsAnswer(nil, []byte(`{"embedding":[0.5,-1e-7],"inputTextTokenCount":2}`), bedrock.EmbedTitanV2, "emb", false)
	if err != nil || string(out) != `{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.5,-1e-07]}],"model":"emb","usage":{"prompt_tokens":2,"total_tokens":2}}` {
		t.Errorf("titan answer %s %v", out, err)
	}
	out, err = bedrock.EmbeddingsAnswer(nil, []byte(`{"embeddings":[[1],[2]],"id":"x","texts":["a","b"]}`), bedrock.EmbedCohere, "emb", true)
	if err != nil || string(out) != `{"object":"list","data":[{"object":"embedding","index":0,"embedding":"AACAPw=="},{"object":"embedding","index":1,"embedding":"AAAAQA=="}],"model":"emb"}` {
		t.Errorf("cohere answer %s %v", out, err)
	}
	for _, bad := range []string{`{}`, `[`, `{"embeddings":{"float":[[1]]}}`} {
		if _, err := bedrock.EmbeddingsAnswer(nil, []byte(bad), bedrock.EmbedCohere, "emb", false); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

// TestClassifyResponse: the x-amzn-ErrorType header decides, whatever
// the message says.
func TestClassifyResponse(t *testing.T) {
	base, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	e := bedrock.NewEndpoint(bedrock.EndpointConfig{Base: base, Model: "anthropic.claude-3-haiku-20240307-v1:0"})
	for _, tt := range []struct {
		status int
		typ    string
		want   provider.Class
	}{
		{403, "UnrecognizedClientException:http://internal.amazon.com/coral/com.amazon.coral.service/", provider.ClassAuth},
		{403, "InvalidSignatureException", provider.ClassAuth},
		{403, "ExpiredTokenException", provider.ClassAuth},
		{403, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.bedrock/", provider.ClassForbidden},
		{429, "ThrottlingException", provider.ClassRateLimited},
		{400, "ValidationException", provider.ClassBadRequest},
		{404, "ResourceNotFoundException", provider.ClassNotFound},
		{429, "ModelNotReadyException", provider.ClassOverloaded},
		{503, "ServiceUnavailableException", provider.ClassOverloaded},
		{403, "", provider.ClassForbidden},
	} {
		h := http.Header{}
		if tt.typ != "" {
			h.Set("X-Amzn-ErrorType", tt.typ)
		}
		if got := e.ClassifyResponse(tt.status, h, []byte(`{"message":"Request refused."}`)); got != tt.want {
			t.Errorf("%d %s: %v, want %v", tt.status, tt.typ, got, tt.want)
		}
	}
}
