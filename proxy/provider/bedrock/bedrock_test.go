package bedrock_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/provider/bedrock"
	"github.com/aisix/aisix/proxy/proxytest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	var b bytes.Buffer
	if json.Valid(got) {
		_ = json.Indent(&b, got, "", "  ")
	} else {
		b.Write(got)
	}
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b.Bytes(), want) {
		t.Errorf("%s:\ngot  %s\nwant %s", name, b.Bytes(), want)
	}
}

const png1 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

func TestTranslateRequestGolden(t *testing.T) {
	tests := map[string]string{
		"request_basic": `{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"developer","content":[{"type":"text","text":"and kind"}]},
			{"role":"user","content":"hi"},{"role":"user","content":[{"type":"text","text":"see"},{"type":"image_url","image_url":{"url":"data:image/png;base64,` + png1 + `"}}]}],
			"max_tokens":100,"temperature":0.5,"top_p":0.9,"stop":"END","stream":true,"stream_options":{"include_usage":true},"user":"u1","seed":3,"logit_bias":{"1":2}}`,
		"request_tools": `{"model":"m","messages":[{"role":"user","content":"weather?"},
			{"role":"assistant","content":null,"tool_calls":[{"id":"t1","type":"function","function":{"name":"get","arguments":"{\"city\": \"Paris\"}"}},{"id":"t2","type":"function","function":{"name":"get","arguments":""}}]},
			{"role":"tool","tool_call_id":"t1","content":"sunny"},{"role":"tool","tool_call_id":"t2","content":[{"type":"text","text":"rainy"}]},{"role":"user","content":"thanks"}],
			"tools":[{"type":"function","function":{"name":"get","description":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],
			"tool_choice":{"type":"function","function":{"name":"get"}},"max_completion_tokens":50,"stop":["a","b"]}`,
		"request_tool_required":     `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"required"}`,
		"request_tool_none":         `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"none"}`,
		"request_tool_history":      `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"get","arguments":"{}"}}]},{"role":"tool","tool_call_id":"t1","content":"42"}]}`,
		"request_tool_none_history": `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"t1","content":"42"}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],"tool_choice":"none"}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := bedrock.TranslateRequest([]byte(in))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", out)
		})
	}
}

func TestTranslateRequestErrors(t *testing.T) {
	tests := map[string]string{
		"n":         `{"messages":[{"role":"user","content":"x"}],"n":2}`,
		"image_url": `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}`,
		"format":    `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}`,
		"base64":    `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!"}}]}]}`,
		"audio":     `{"messages":[{"role":"user","content":[{"type":"input_audio"}]}]}`,
		"role":      `{"messages":[{"role":"robot","content":"x"}]}`,
		"empty":     `{"messages":[{"role":"system","content":"x"}]}`,
		"args":      `{"messages":[{"role":"assistant","tool_calls":[{"id":"a","function":{"name":"f","arguments":"[1]"}}]}]}`,
		"json":      `{"messages":`,
		"choice":    `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`,
	}
	for name, in := range tests {
		_, err := bedrock.TranslateRequest([]byte(in))
		var re *provider.RequestError
		if !errors.As(err, &re) {
			t.Errorf("%s: err %v, want a RequestError", name, err)
		}
	}
}

func TestTranslateResponseGolden(t *testing.T) {
	tests := map[string]string{
		"response_text":  `{"output":{"message":{"role":"assistant","content":[{"text":"hello"},{"text":" there"}]}},"stopReason":"end_turn","usage":{"inputTokens":3,"outputTokens":2,"totalTokens":5,"cacheReadInputTokens":1},"metrics":{"latencyMs":9}}`,
		"response_tools": `{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"think","signature":"s"}}},{"toolUse":{"toolUseId":"t1","name":"get","input":{"city": "Paris"}}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":2,"totalTokens":5}}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			out, err := bedrock.TranslateResponse(nil, []byte(in), "chatcmpl-x", "alias", 1700000000)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".json", out)
		})
	}
	if _, err := bedrock.TranslateResponse(nil, []byte(`{"foo":1}`), "x", "a", 0); err == nil {
		t.Error("a body without output was accepted")
	}
}

func TestFinishReason(t *testing.T) {
	for in, want := range map[string]string{"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
		"content_filtered": "content_filter", "guardrail_intervened": "content_filter"} {
		if got := bedrock.FinishReason(in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
}

// encode makes an event stream body of the events.
func encode(t testing.TB, evs []proxytest.BedrockEvent) []byte {
	var b bytes.Buffer
	for _, ev := range evs {
		if err := proxytest.EncodeBedrockEvent(&b, ev.Type, ev.Payload); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// run decodes body through the frame source and the stream translator.
func run(t testing.TB, body []byte, includeUsage bool) (string, []provider.EventInfo, error) {
	src := bedrock.NewFrames(bufio.NewReader(bytes.NewReader(body)), 1<<20)
	s := bedrock.NewStream("alias", 1700000000, includeUsage)
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
		if info.Error != nil || info.Done {
			return string(out), infos, nil
		}
	}
}

// stable replaces the random chunk id.
func stable(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if i := strings.Index(line, `"id":"chatcmpl-`); i >= 0 {
			j := strings.Index(line[i+6:], `"`)
			line = line[:i] + `"id":"chatcmpl-ID` + line[i+6+j:]
		}
		b.WriteString(line)
	}
	return b.String()
}

func TestStreamGolden(t *testing.T) {
	tests := map[string]proxytest.BedrockStreamOptions{
		"stream_text":  {},
		"stream_tools": {Chunks: []string{"let me look"}, Reasoning: []string{"hmm", "m"}, Tools: []proxytest.BedrockTool{{ID: "t1", Name: "get", Fragments: []string{`{"ci`, `ty":"Paris"}`}}, {ID: "t2", Name: "put", Input: `{}`}}},
	}
	for name, o := range tests {
		t.Run(name, func(t *testing.T) {
			out, infos, err := run(t, encode(t, proxytest.BedrockEvents("up", o)), true)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name+".txt", []byte(stable(out)))
			last := infos[len(infos)-1]
			if !last.Done {
				t.Errorf("last event %+v, want Done", last)
			}
			if infos[0].Content {
				t.Error("the role chunk counted as content")
			}
		})
	}
}

func TestStreamNoMetadata(t *testing.T) {
	out, _, err := run(t, encode(t, proxytest.BedrockEvents("up", proxytest.BedrockStreamOptions{NoMetadata: true})), false)
	if err != nil || !strings.HasSuffix(out, "data: [DONE]\n\n") || strings.Contains(out, `"usage"`) {
		t.Fatalf("err %v out %q", err, out)
	}
}

func TestStreamExceptions(t *testing.T) {
	for typ, want := range map[string]provider.Class{
		"throttlingException": provider.ClassRateLimited, "serviceUnavailableException": provider.ClassOverloaded,
		"modelStreamErrorException": provider.ClassServer, "internalServerException": provider.ClassServer,
		"validationException": provider.ClassBadRequest,
	} {
		evs := proxytest.BedrockEvents("up", proxytest.BedrockStreamOptions{})
		evs = append(evs[:2:2], proxytest.BedrockEvent{Type: "!" + typ, Payload: `{"message":"boom"}`})
		_, infos, err := run(t, encode(t, evs), false)
		if err != nil {
			t.Fatal(err)
		}
		f := infos[len(infos)-1].Error
		if f == nil || f.Class != want || !f.Class.Retryable() != (want == provider.ClassBadRequest) {
			t.Errorf("%s: %+v, want class %v", typ, f, want)
		}
	}
}

func TestFramesMalformed(t *testing.T) {
	body := encode(t, proxytest.BedrockEvents("up", proxytest.BedrockStreamOptions{}))
	bad := bytes.Clone(body)
	bad[len(bad)-1] ^= 1
	if _, _, err := run(t, bad, false); err == nil {
		t.Error("a bad CRC was accepted")
	}
	if _, _, err := run(t, body[:len(body)-3], false); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("a cut frame: %v", err)
	}
	huge := []byte{0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0}
	if _, _, err := run(t, huge, false); !errors.Is(err, provider.ErrEventTooLarge) {
		t.Errorf("a 2 GB frame: %v", err)
	}
	if _, _, err := run(t, []byte{0, 0, 0, 4, 0, 0, 0, 0, 1, 2, 3, 4}, false); err == nil {
		t.Error("a frame shorter than its prelude was accepted")
	}
	// An event before messageStart.
	evs := proxytest.BedrockEvents("up", proxytest.BedrockStreamOptions{})[1:]
	if _, _, err := run(t, encode(t, evs), false); !errors.Is(err, bedrock.ErrNoMessageStart) {
		t.Errorf("no messageStart: %v", err)
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		status int
		msg    string
		want   provider.Class
	}{
		{429, "Too many requests, please wait before trying again.", provider.ClassRateLimited},
		{503, "Bedrock is unable to process your request.", provider.ClassOverloaded},
		{403, "You don't have access to the model with the specified model ID.", provider.ClassForbidden},
		{403, "The security token included in the request is invalid.", provider.ClassAuth},
		{403, "The security token included in the request is expired", provider.ClassAuth},
		{403, "The request signature we calculated does not match the signature you provided.", provider.ClassAuth},
		{404, "Could not resolve the foundation model from the provided model identifier.", provider.ClassNotFound},
		{400, "Malformed input request", provider.ClassBadRequest},
		{400, "Input is too long for requested model.", provider.ClassContextLength},
		{408, "Model has timed out in processing the request.", provider.ClassTimeout},
		{500, "InternalServerException", provider.ClassServer},
		{424, "The model returned an error", provider.ClassServer},
	}
	for _, tt := range tests {
		b, _ := json.Marshal(map[string]string{"message": tt.msg})
		if c, _ := bedrock.Classify(tt.status, "", b); c != tt.want {
			t.Errorf("%d %q: %v, want %v", tt.status, tt.msg, c, tt.want)
		}
	}
	if c, _ := bedrock.Classify(400, "ThrottlingException:http://internal.amazon.com/", []byte(`{}`)); c != provider.ClassRateLimited {
		t.Errorf("the type header: %v", c)
	}
}

func TestErrorBodyRedacts(t *testing.T) {
	body := `{"message":"User: arn:aws:iam::123456789012:user/ci is not authorized to perform: bedrock:InvokeModel on resource: arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-v2 (account 123456789012)"}`
	out := string(bedrock.OpenAIError(403, "", []byte(body)))
	if strings.Contains(out, "123456789012") || strings.Contains(out, "arn:") {
		t.Errorf("not redacted: %s", out)
	}
	if !strings.Contains(out, `"type":"permission_denied"`) {
		t.Errorf("type: %s", out)
	}
	out = string(bedrock.OpenAIError(500, "", []byte(`{"message":"internal detail"}`)))
	if strings.Contains(out, "internal detail") {
		t.Errorf("a 5xx message leaked: %s", out)
	}
}

func TestModelURLs(t *testing.T) {
	base, _ := url.Parse("https://bedrock-runtime.us-east-1.amazonaws.com")
	c, s := bedrock.ModelURLs(base, "us.anthropic.claude-3-5-sonnet-20240620-v1:0")
	if got := c.String(); got != "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse" {
		t.Errorf("converse: %s", got)
	}
	if !strings.HasSuffix(s.String(), "/converse-stream") {
		t.Errorf("stream: %s", s)
	}
	c, _ = bedrock.ModelURLs(base, "arn:aws:bedrock:us-east-1:123456789012:inference-profile/x")
	if strings.Contains(c.EscapedPath(), "profile/x") {
		t.Errorf("the ARN's slash was not escaped: %s", c.EscapedPath())
	}
}

func TestParseCredential(t *testing.T) {
	for _, s := range []string{`{"access_key_id":"a","secret_access_key":"s","region":"us-east-1"}`, `{"api_key":"k","region":"eu-west-3"}`} {
		if _, err := bedrock.ParseCredential(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{`{"access_key_id":"a","region":"us-east-1"}`, `{"api_key":"k","region":"evil.com/"}`, `{"api_key":"k"}`, `x`} {
		if _, err := bedrock.ParseCredential(s); err == nil {
			t.Errorf("%s accepted", s)
		}
	}
}

// TestSignatureVerifiedByFake: the fake Bedrock recomputes the SigV4
// signature; a right secret passes and a wrong one is refused with 403.
func TestSignatureVerifiedByFake(t *testing.T) {
	up := proxytest.NewBedrock("b")
	defer up.Close()
	base, _ := url.Parse(up.URL())
	for _, tt := range []struct {
		secret string
		want   int
	}{
		{proxytest.BedrockSecretAccessKey, 200},
		{"wrong", 403},
	} {
		e := bedrock.NewEndpoint(bedrock.EndpointConfig{Base: base, Model: "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
			Credential: bedrock.Credential{AccessKeyID: proxytest.BedrockAccessKeyID, SecretAccessKey: tt.secret, Region: proxytest.BedrockRegion, SessionToken: "tok"}})
		in := &provider.Inbound{Op: provider.OpChat, Body: []byte(`{"messages":[{"role":"user","content":"hi"}]}`), Req: &provider.Request{}, Header: http.Header{"User-Agent": {"t"}}}
		body, err := e.Body(in)
		if err != nil {
			t.Fatal(err)
		}
		req, err := e.NewRequest(context.Background(), in, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("secret %q: %d %s", tt.secret, resp.StatusCode, rb)
		}
		if tt.want == 403 && !strings.Contains(string(rb), "signature we calculated does not match") {
			t.Errorf("403 body %s", rb)
		}
		if tt.want == 200 {
			if req.Header.Get("X-Amz-Security-Token") != "tok" {
				t.Error("no session token header")
			}
			out, err := e.Answer(nil, in, rb, &provider.Alias{Name: "a"})
			if err != nil || !strings.Contains(string(out), "hello from b") {
				t.Errorf("answer %s %v", out, err)
			}
		}
	}
}

// TestAuthVariantsVerifiedByFake: a session token goes as
// X-Amz-Security-Token (signed) and a wrong one is refused; a Bedrock API
// key goes as a bearer token, with no signature.
func TestAuthVariantsVerifiedByFake(t *testing.T) {
	up := proxytest.NewBedrock("b")
	defer up.Close()
	up.SessionToken = "session-tok"
	up.APIKey = "ABSK-key"
	base, _ := url.Parse(up.URL())
	sigv4 := func(token string) bedrock.Credential {
		return bedrock.Credential{AccessKeyID: proxytest.BedrockAccessKeyID, SecretAccessKey: proxytest.BedrockSecretAccessKey, Region: proxytest.BedrockRegion, SessionToken: token}
	}
	for _, tt := range []struct {
		name string
		cred bedrock.Credential
		want int
	}{
		{"session token", sigv4("session-tok"), 200},
		{"wrong session token", sigv4("other"), 403},
		{"no session token", sigv4(""), 403},
		{"wrong region", bedrock.Credential{AccessKeyID: proxytest.BedrockAccessKeyID, SecretAccessKey: proxytest.BedrockSecretAccessKey, Region: "eu-west-1", SessionToken: "session-tok"}, 403},
		{"api key", bedrock.Credential{APIKey: "ABSK-key", Region: proxytest.BedrockRegion}, 200},
		{"wrong api key", bedrock.Credential{APIKey: "ABSK-nope", Region: proxytest.BedrockRegion}, 403},
		{"nothing", bedrock.Credential{}, 403},
	} {
		e := bedrock.NewEndpoint(bedrock.EndpointConfig{Base: base, Model: "amazon.nova-lite-v1:0", Credential: tt.cred})
		in := &provider.Inbound{Op: provider.OpChat, Body: []byte(`{"messages":[{"role":"user","content":"hi"}],"stream":true}`), Req: &provider.Request{Stream: true}, Header: http.Header{}}
		body, _ := e.Body(in)
		req, err := e.NewRequest(context.Background(), in, body)
		if err != nil {
			t.Fatal(err)
		}
		if tt.cred.APIKey != "" && (req.Header.Get("Authorization") != "Bearer "+tt.cred.APIKey || req.Header.Get("X-Amz-Date") != "") {
			t.Errorf("%s: headers %v", tt.name, req.Header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s: %d %s", tt.name, resp.StatusCode, rb)
			continue
		}
		if tt.want == 403 {
			if c := e.Classify(resp.StatusCode, rb); c != provider.ClassAuth {
				t.Errorf("%s: class %v for %s", tt.name, c, rb)
			}
			continue
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.amazon.eventstream" {
			t.Errorf("%s: content type %s", tt.name, ct)
		}
		out, _, err := run(t, rb, false)
		if err != nil || !strings.Contains(out, `"content":"hello"`) || !strings.HasSuffix(out, "data: [DONE]\n\n") {
			t.Errorf("%s: stream %v %s", tt.name, err, out)
		}
	}
}
