package mockopenai

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bound bounds every wait of these tests: generous for a busy machine.
const bound = 15 * time.Second

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// post sends a chat request on client within d.
func post(t *testing.T, client *http.Client, s *Server, body string, d time.Duration) (*http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL()+"/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer sk-test")
	req.Header.Set("Content-Type", "application/json")
	return client.Do(req)
}

// mustPost is post that fails the test when no answer comes.
func mustPost(t *testing.T, client *http.Client, s *Server, body string) *http.Response {
	t.Helper()
	resp, err := post(t, client, s, body, bound)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

const (
	plainBody  = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}]}`
	streamBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello."}],"stream":true,"stream_options":{"include_usage":true}}`
)

// The OpenAI objects as a client SDK reads them.
type (
	sdkUsage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	}
	sdkCompletion struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		Model   string `json:"model"`
		Choices []struct {
			Index   int `json:"index"`
			Message struct {
				Role    string  `json:"role"`
				Content string  `json:"content"`
				Refusal *string `json:"refusal"`
			} `json:"message"`
			FinishReason string `json:"finish_reason"`
		} `json:"choices"`
		Usage *sdkUsage `json:"usage"`
	}
	sdkChunk struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Model   string `json:"model"`
		Choices []struct {
			Delta struct {
				Role    string  `json:"role"`
				Content *string `json:"content"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage *sdkUsage `json:"usage"`
	}
	sdkErrorBody struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	}
	sdkError struct {
		Error *sdkErrorBody `json:"error"`
	}
)

func TestCompletion(t *testing.T) {
	s := start(t, Options{Name: "primary"})
	resp := mustPost(t, http.DefaultClient, s, plainBody)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var c sdkCompletion
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created == 0 || c.Model != "gpt-4o-mini-2024-07-18" {
		t.Errorf("envelope: %s", raw)
	}
	if len(c.Choices) != 1 || c.Choices[0].Message.Role != "assistant" || !strings.Contains(c.Choices[0].Message.Content, "primary") || c.Choices[0].FinishReason != "stop" {
		t.Errorf("choices: %s", raw)
	}
	if u := c.Usage; u == nil || u.PromptTokens == 0 || u.CompletionTokens == 0 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage: %s", raw)
	}
	for _, field := range []string{`"refusal":null`, `"logprobs":null`, `"system_fingerprint":"fp_`} {
		if !strings.Contains(string(raw), field) {
			t.Errorf("no %s in %s", field, raw)
		}
	}
	if s.Requests() != 1 {
		t.Errorf("requests %d, want 1", s.Requests())
	}
}

func TestStream(t *testing.T) {
	s := start(t, Options{Name: "secondary"})
	resp := mustPost(t, http.DefaultClient, s, streamBody)
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var chunks []sdkChunk
	done := false
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || done {
			t.Fatalf("unexpected line %q (after [DONE]: %v)", line, done)
		}
		if data == "[DONE]" {
			done = true
			continue
		}
		var c sdkChunk
		if err := json.Unmarshal([]byte(data), &c); err != nil {
			t.Fatalf("%v: %s", err, data)
		}
		if c.Object != "chat.completion.chunk" || !strings.HasPrefix(c.ID, "chatcmpl-") {
			t.Errorf("chunk envelope: %s", data)
		}
		chunks = append(chunks, c)
	}
	if !done || len(chunks) < 4 {
		t.Fatalf("%d chunks, [DONE] %v", len(chunks), done)
	}
	first, usage := chunks[0], chunks[len(chunks)-1]
	finish := chunks[len(chunks)-2]
	if d := first.Choices[0].Delta; d.Role != "assistant" || d.Content == nil || *d.Content != "" {
		t.Errorf("first chunk is not the role: %+v", first)
	}
	var text string
	for _, c := range chunks[1 : len(chunks)-2] {
		if c.Choices[0].Delta.Content == nil || c.Choices[0].FinishReason != nil {
			t.Errorf("content chunk %+v", c)
			continue
		}
		text += *c.Choices[0].Delta.Content
	}
	if !strings.Contains(text, "secondary") {
		t.Errorf("streamed text %q", text)
	}
	if f := finish.Choices[0].FinishReason; f == nil || *f != "stop" || finish.Choices[0].Delta.Content != nil {
		t.Errorf("finish chunk %+v", finish)
	}
	if len(usage.Choices) != 0 || usage.Usage == nil || usage.Usage.CompletionTokens != len(chunks)-3 {
		t.Errorf("usage chunk %+v", usage)
	}
}

func TestPace(t *testing.T) {
	pace := Pace{FirstToken: 50 * time.Millisecond, FirstTokenMax: 60 * time.Millisecond, Chunk: 10 * time.Millisecond, ChunkMax: 20 * time.Millisecond}
	s := start(t, Options{Pace: pace})
	begin := time.Now()
	resp := mustPost(t, http.DefaultClient, s, plainBody)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	// At least the first token and one gap per further token (every reply
	// has more than five words).
	if took := time.Since(begin); took < pace.FirstToken+5*pace.Chunk {
		t.Errorf("answered in %v, faster than the pace allows", took)
	}
}

func TestErrorModes(t *testing.T) {
	tests := []struct {
		mode   Mode
		status int
		typ    string
		code   string
	}{
		{ServerError, 500, "server_error", ""},
		{RateLimited, 429, "requests", "rate_limit_exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.mode.String(), func(t *testing.T) {
			s := start(t, Options{})
			if err := s.SetMode(tt.mode); err != nil {
				t.Fatal(err)
			}
			for _, body := range []string{plainBody, streamBody} {
				resp := mustPost(t, http.DefaultClient, s, body)
				e := readError(t, resp)
				if resp.StatusCode != tt.status || e.Type != tt.typ || e.Message == "" || e.Param != nil {
					t.Errorf("status %d, error %+v", resp.StatusCode, e)
				}
				if got := deref(e.Code); got != tt.code {
					t.Errorf("code %q, want %q", got, tt.code)
				}
			}
			if err := s.SetMode(Healthy); err != nil {
				t.Fatal(err)
			}
			resp := mustPost(t, http.DefaultClient, s, plainBody)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("restored: status %d", resp.StatusCode)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	s := start(t, Options{})
	send := func(method, path, auth, body string) (int, string) {
		req, err := http.NewRequest(method, "http://"+s.Addr()+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, readError(t, resp).Type
	}
	for _, tt := range []struct {
		name, method, path, auth, body string
		status                         int
	}{
		{"no key", "POST", "/v1/chat/completions", "", plainBody, 401},
		{"unknown path", "POST", "/v1/nope", "Bearer k", plainBody, 404},
		{"wrong method", "GET", "/v1/chat/completions", "Bearer k", "", 405},
		{"not JSON", "POST", "/v1/chat/completions", "Bearer k", "{", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if status, typ := send(tt.method, tt.path, tt.auth, tt.body); status != tt.status || typ != "invalid_request_error" {
				t.Errorf("status %d type %q, want %d invalid_request_error", status, typ, tt.status)
			}
		})
	}
}

func TestRefuse(t *testing.T) {
	s := start(t, Options{})
	// A client with a kept-alive connection, as aisix's transport has.
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp := mustPost(t, client, s, plainBody)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	if err := s.SetMode(Refuse); err != nil {
		t.Fatal(err)
	}
	// The kept-alive connection was cut (a request that catches it before
	// the client noticed gets EOF), and a new one is refused.
	if _, err := post(t, client, s, plainBody, bound); err == nil {
		t.Fatal("a request while refusing was answered")
	}
	if _, err := post(t, client, s, plainBody, bound); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("request while refusing: %v, want connection refused", err)
	}
	if err := s.SetMode(Refuse); err != nil {
		t.Fatalf("refuse twice: %v", err)
	}

	if err := s.SetMode(Healthy); err != nil {
		t.Fatal(err)
	}
	resp = mustPost(t, client, s, plainBody)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("after restore: status %d", resp.StatusCode)
	}
}

func TestRefuseCutsAStream(t *testing.T) {
	s := start(t, Options{Pace: Pace{Chunk: time.Hour}})
	resp := mustPost(t, http.DefaultClient, s, streamBody)
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the role chunk
		t.Fatal(err)
	}
	if err := s.SetMode(Refuse); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(br); err == nil {
		t.Error("the stream ended cleanly; want it cut")
	}
}

func TestHang(t *testing.T) {
	seen := make(chan struct{}, 2)
	s := start(t, Options{onRequest: func() { seen <- struct{}{} }})
	if err := s.SetMode(Hang); err != nil {
		t.Fatal(err)
	}
	_, err := post(t, http.DefaultClient, s, plainBody, 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("request to a hung upstream: %v, want the caller's deadline", err)
	}
	if s.Requests() != 1 {
		t.Errorf("requests %d, want 1 (read, never answered)", s.Requests())
	}

	// Close ends a held request at once.
	errc := make(chan error, 1)
	go func() {
		_, err := post(t, http.DefaultClient, s, plainBody, time.Hour)
		errc <- err
	}()
	<-seen // the first request
	select {
	case <-seen:
	case err := <-errc:
		t.Fatalf("answered while hanging: %v", err)
	case <-time.After(bound):
		t.Fatal("the second request never arrived")
	}
	s.Close()
	select {
	case err := <-errc:
		if err == nil {
			t.Error("a hung request was answered on Close")
		}
	case <-time.After(bound):
		t.Fatal("Close did not end the hung request")
	}
	if err := s.SetMode(Healthy); err == nil {
		t.Error("SetMode after Close succeeded")
	}
}

func readError(t *testing.T, resp *http.Response) sdkErrorBody {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var e sdkError
	if err := json.Unmarshal(b, &e); err != nil || e.Error == nil {
		t.Fatalf("status %d: not an OpenAI error envelope: %s", resp.StatusCode, b)
	}
	if !strings.Contains(string(b), `"param":null`) || !strings.Contains(string(b), `"code":`) {
		t.Errorf("envelope lacks param or code: %s", b)
	}
	return *e.Error
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
