package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// The endpoints besides chat completions, each through the one walk:
// POST /v1/embeddings, /v1/completions, /v1/responses, /v1/messages and
// /v1/messages/count_tokens, through a routing group whose primary fails
// (refused, reset, 5xx, 429) and whose secondary answers, plain and
// streaming, with the x-aisix-* headers and the trail. The upstreams are
// proxytest's fakes, shaped after OpenAI's and Anthropic's API
// references; what reached them is read back with Requests().

const (
	epPrimary   = "gpt-4o-primary"
	epSecondary = "gpt-4o-secondary"
	upModel     = "gpt-4o-mini" // directModel's upstream model name
)

// primaryFault is one way the primary of a group fails before it answers.
type primaryFault struct {
	name  string
	label string             // the primary's outcome in x-aisix-attempts
	b     proxytest.Behavior // nil: nothing listens (connection refused)
}

var primaryFaults = []primaryFault{
	{"refused", "transport_error", nil},
	{"reset", "transport_error", proxytest.Reset()},
	{"503", "503", proxytest.ServerError(503)},
	{"429", "429", proxytest.RateLimited("")},
}

// faultPair is chat-prod over a primary failing as f and a secondary
// answering by its script. For a refused primary, prim is an upstream
// already closed: nothing listens on its port.
func faultPair(t *testing.T, f primaryFault, secondary ...proxytest.Behavior) (e *env, prim, sec *proxytest.Upstream) {
	t.Helper()
	if f.b == nil {
		prim = proxytest.New(epPrimary)
		prim.Close()
	} else {
		prim = upstream(t, epPrimary, f.b)
	}
	sec = upstream(t, epSecondary, secondary...)
	return newEnv(t, pair(prim, sec, storage.Routing{})), prim, sec
}

// only applies mods to the model named name alone: a short stream
// timeout for the target that stalls leaves the one that answers its
// defaults, so a slow machine cannot time it out too.
func only(ds storage.Dataset, name string, mods ...func(*storage.Model)) storage.Dataset {
	for i := range ds.Models {
		if ds.Models[i].DisplayName == name {
			for _, fn := range mods {
				fn(&ds.Models[i])
			}
		}
	}
	return ds
}

// wantServed checks the headers of an answer served by served after the
// trail.
func wantServed(t testing.TB, h http.Header, served, trail string) {
	t.Helper()
	wantHeader(t, h, "X-Aisix-Served-By", served)
	wantHeader(t, h, "X-Aisix-Attempts", trail)
	wantCallID(t, h)
}

// wantSpliced checks an upstream request: sent to path, its body the
// caller's with only the model value replaced by upModel.
func wantSpliced(t testing.TB, r proxytest.Request, path, callerBody, alias, upstreamModel string) {
	t.Helper()
	if r.Path != path {
		t.Errorf("upstream path = %q, want %q", r.Path, path)
	}
	want := strings.Replace(callerBody, `"model":"`+alias+`"`, `"model":"`+upstreamModel+`"`, 1)
	if string(r.Body) != want {
		t.Errorf("upstream body:\n%s\nwant (the caller's, model spliced):\n%s", r.Body, want)
	}
}

// withUsage is a streaming caller body as the OpenAI wire sends it
// upstream when the caller set no stream_options: with the usage chunk
// asked for.
func withUsage(body string) string {
	return strings.TrimSuffix(body, "}") + `,"stream_options":{"include_usage":true}}`
}

// sse sends a streaming POST to path (Bearer key unless key is "") with
// header pairs and reads the whole answer.
func (e *env) sse(path, key, body string, header ...string) streamResult {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.front.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		e.t.Fatalf("stream request: %v", err)
	}
	defer resp.Body.Close()
	res := streamResult{status: resp.StatusCode, header: resp.Header}
	raw, _ := io.ReadAll(resp.Body)
	res.raw = string(raw)
	res.took = time.Since(start)
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		res.events, res.comments = parseSSE(raw)
	}
	return res
}

// parseSSE splits an event stream into its events and counts comments.
func parseSSE(raw []byte) (events []sseEvent, comments int) {
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 64<<20)
	var cur sseEvent
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				cur.data = strings.Join(data, "\n")
				events = append(events, cur)
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			comments++
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	return events, comments
}

// direct sends body to an upstream itself, bypassing the proxy: the
// reference a relayed stream is compared with.
func direct(t testing.TB, u *proxytest.Upstream, path string, body []byte) []sseEvent {
	t.Helper()
	resp, err := http.Post(u.URL()+path, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("direct request: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	evs, _ := parseSSE(raw)
	return evs
}

// withAlias is a Responses stream as the caller gets it: the response
// object in an event names the alias as its model; nothing else changes.
func withAlias(evs []sseEvent, alias string) []sseEvent {
	out := make([]sseEvent, len(evs))
	for i, ev := range evs {
		out[i] = ev
		if sp, ok := provider.FindNestedModel([]byte(ev.data), "response"); ok {
			out[i].data = string(sp.AppendTo(nil, []byte(ev.data), []byte(strconv.Quote(alias))))
		}
	}
	return out
}

func names(evs []sseEvent) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.name
	}
	return out
}

func decodeJSON(t testing.TB, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("not a JSON object: %v: %q", err, s)
	}
	return m
}

// ---------------------------------------------------------------------
// Embeddings.

type embeddingList struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func decodeEmbeddings(t testing.TB, r response) embeddingList {
	t.Helper()
	var l embeddingList
	if err := json.Unmarshal(r.body, &l); err != nil {
		t.Fatalf("answer is not an embedding list: %v\n%s", err, r.body)
	}
	return l
}

func TestEmbeddingsFailover(t *testing.T) {
	inputs := []struct {
		name  string
		input string
		n     int
	}{
		{"string", `"The food was delicious."`, 1},
		{"array of strings", `["first","second","third"]`, 3},
		{"token array", `[1820,25977,46840]`, 1},
		{"array of token arrays", `[[1820,25977],[46840]]`, 2},
	}
	for _, f := range primaryFaults {
		for _, in := range inputs {
			t.Run(f.name+"/"+in.name, func(t *testing.T) {
				e, prim, sec := faultPair(t, f)
				body := `{"model":"chat-prod","input":` + in.input + `}`
				r := e.do(http.MethodPost, "/v1/embeddings", callerKey, body)
				if r.status != 200 {
					t.Fatalf("status %d: %s", r.status, r.body)
				}
				wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
				l := decodeEmbeddings(t, r)
				if l.Object != "list" || l.Model != "chat-prod" || len(l.Data) != in.n {
					t.Fatalf("answer object=%q model=%q data=%d, want list, the alias, %d:\n%s", l.Object, l.Model, len(l.Data), in.n, r.body)
				}
				for i, d := range l.Data {
					var vec []float32
					if err := json.Unmarshal(d.Embedding, &vec); err != nil || d.Object != "embedding" || d.Index != i || len(vec) != proxytest.DefaultDimensions {
						t.Errorf("data[%d] = %s %d %s", i, d.Object, d.Index, d.Embedding)
					}
				}
				if f.b != nil {
					wantSpliced(t, prim.Requests()[0], "/v1/embeddings", body, "chat-prod", upModel)
				}
				wantHits(t, sec, 1)
				wantSpliced(t, sec.Requests()[0], "/v1/embeddings", body, "chat-prod", upModel)
			})
		}
	}
}

// TestEmbeddingsOptionsPassThrough: encoding_format and dimensions (and
// any other field) reach the upstream as the caller wrote them; a base64
// answer comes back as the upstream encoded it.
func TestEmbeddingsOptionsPassThrough(t *testing.T) {
	e, _, sec := faultPair(t, primaryFaults[2])
	body := `{"model":"chat-prod", "input":["a","b"], "encoding_format":"base64", "dimensions":3, "user":"user-1234"}`
	r := e.do(http.MethodPost, "/v1/embeddings", callerKey, body)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantSpliced(t, sec.Requests()[0], "/v1/embeddings", body, "chat-prod", upModel)
	l := decodeEmbeddings(t, r)
	if l.Model != "chat-prod" || len(l.Data) != 2 {
		t.Fatalf("answer: %s", r.body)
	}
	for i, d := range l.Data {
		var s string
		if err := json.Unmarshal(d.Embedding, &s); err != nil {
			t.Fatalf("data[%d].embedding is not a base64 string: %s", i, d.Embedding)
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(raw) != 3*4 {
			t.Fatalf("data[%d].embedding = %q (%v), want 3 float32s", i, s, err)
		}
		for j := range 3 {
			if v := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*j:])); v != proxytest.EmbeddingValue(i, j) {
				t.Errorf("data[%d][%d] = %v, want %v", i, j, v, proxytest.EmbeddingValue(i, j))
			}
		}
	}
}

// TestEmbeddingsUnsupportedTarget: an Anthropic target, which has no
// embeddings, is skipped without a call (unsupported_endpoint, nothing
// said about its health); alone, it is a 400.
func TestEmbeddingsUnsupportedTarget(t *testing.T) {
	body := `{"model":"chat-prod","input":"hello"}`
	t.Run("in a group", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/embeddings", callerKey, body)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantServed(t, r.header, gpt, claude+"=unsupported_endpoint,"+gpt+"=200")
		if ant.Hits() != 0 {
			t.Errorf("the Anthropic upstream got %d requests", ant.Hits())
		}
		wantTargetState(t, e, claude, "", "")
		if l := decodeEmbeddings(t, r); l.Model != "chat-prod" || len(l.Data) != 1 {
			t.Errorf("answer: %s", r.body)
		}
	})
	t.Run("alone", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{anthropicKey("pk-claude", ant)},
			Models:       []storage.Model{claudeModel(claude, "pk-claude")},
			APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
		})
		r := e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"claude","input":"hello"}`)
		if r.status != 400 || r.errType(t) != "invalid_request_error" {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=unsupported_endpoint")
		if ant.Hits() != 0 {
			t.Errorf("the Anthropic upstream got %d requests", ant.Hits())
		}
	})
}

// ---------------------------------------------------------------------
// Legacy completions.

type textCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Text         string  `json:"text"`
		Index        int     `json:"index"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

func decodeTextCompletion(t testing.TB, s string) textCompletion {
	t.Helper()
	var c textCompletion
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		t.Fatalf("not a text_completion: %v: %q", err, s)
	}
	return c
}

// completionText joins the text of a completions stream's chunks, each
// checked to be a text_completion under the alias.
func completionText(t testing.TB, r streamResult, alias string) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range r.events {
		if ev.name != "" || ev.data == "[DONE]" {
			continue
		}
		c := decodeTextCompletion(t, ev.data)
		if c.Object != "text_completion" || c.Model != alias {
			t.Errorf("chunk object=%q model=%q: %s", c.Object, c.Model, ev.data)
		}
		for _, ch := range c.Choices {
			b.WriteString(ch.Text)
		}
	}
	return b.String()
}

func TestCompletionsFailover(t *testing.T) {
	const body = `{"model":"chat-prod","prompt":"Say this is a test","max_tokens":7,"temperature":0}`
	const streamBody = `{"model":"chat-prod","prompt":"Say this is a test","max_tokens":7,"stream":true}`
	for _, f := range primaryFaults {
		t.Run(f.name+"/plain", func(t *testing.T) {
			e, _, sec := faultPair(t, f)
			r := e.do(http.MethodPost, "/v1/completions", callerKey, body)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
			c := decodeTextCompletion(t, string(r.body))
			if c.Object != "text_completion" || c.Model != "chat-prod" || len(c.Choices) != 1 || c.Choices[0].Text != "hello from "+epSecondary {
				t.Errorf("answer: %s", r.body)
			}
			wantSpliced(t, sec.Requests()[0], "/v1/completions", body, "chat-prod", upModel)
		})
		t.Run(f.name+"/stream", func(t *testing.T) {
			e, _, sec := faultPair(t, f)
			r := e.sse("/v1/completions", callerKey, streamBody)
			if r.status != 200 || !r.done() {
				t.Fatalf("status %d, done %v:\n%s", r.status, r.done(), r.raw)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
			if got := completionText(t, r, "chat-prod"); got != "hello from "+epSecondary {
				t.Errorf("text = %q", got)
			}
			// The gateway asks for the usage chunk the caller did not.
			wantSpliced(t, sec.Requests()[0], "/v1/completions", withUsage(streamBody), "chat-prod", upModel)
		})
	}
}

func TestCompletionsStreamFaults(t *testing.T) {
	const body = `{"model":"chat-prod","prompt":"Say this is a test","stream":true}`
	t.Run("cut before the first text fails over", func(t *testing.T) {
		prim := upstream(t, epPrimary, proxytest.TextCompletionStream(proxytest.StreamOptions{RoleChunk: true, CutBeforeContent: true}))
		sec := upstream(t, epSecondary)
		e := newEnv(t, pair(prim, sec, storage.Routing{}))
		r := e.sse("/v1/completions", callerKey, body)
		if r.status != 200 || !r.done() {
			t.Fatalf("status %d, done %v:\n%s", r.status, r.done(), r.raw)
		}
		wantServed(t, r.header, epSecondary, epPrimary+"=stream_aborted,"+epSecondary+"=200")
		if got := completionText(t, r, "chat-prod"); got != "hello from "+epSecondary {
			t.Errorf("text = %q, want the secondary's only", got)
		}
		wantTargetState(t, e, epPrimary, health.StateCooldown, "transport_error")
	})
	t.Run("cut after text ends with an error frame, no [DONE]", func(t *testing.T) {
		prim := upstream(t, epPrimary, proxytest.TextCompletionStream(proxytest.StreamOptions{CutAfter: 1}))
		sec := upstream(t, epSecondary)
		e := newEnv(t, pair(prim, sec, storage.Routing{}))
		r := e.sse("/v1/completions", callerKey, body)
		if r.status != 200 || r.done() {
			t.Fatalf("status %d, done %v:\n%s", r.status, r.done(), r.raw)
		}
		wantServed(t, r.header, epPrimary, epPrimary+"=200")
		last := r.events[len(r.events)-1]
		if last.name != "error" {
			t.Fatalf("last event %q, want error:\n%s", last.name, r.raw)
		}
		if fr, _ := decodeJSON(t, last.data)["error"].(map[string]any); fr["type"] != "stream_aborted" {
			t.Errorf("error frame %s", last.data)
		}
		r.events = r.events[:len(r.events)-1]
		if got := completionText(t, r, "chat-prod"); got != "hello" {
			t.Errorf("text = %q", got)
		}
		wantHits(t, sec, 0)
	})
}

// ---------------------------------------------------------------------
// The Responses API.

func TestResponsesFailover(t *testing.T) {
	const body = `{"model":"chat-prod","input":"Tell me a three sentence bedtime story about a unicorn.","store":false}`
	const streamBody = `{"model":"chat-prod","input":"Tell me a three sentence bedtime story about a unicorn.","stream":true}`
	for _, f := range primaryFaults {
		t.Run(f.name+"/plain", func(t *testing.T) {
			e, _, sec := faultPair(t, f)
			r := e.do(http.MethodPost, "/v1/responses", callerKey, body)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
			var resp struct {
				ID     string `json:"id"`
				Object string `json:"object"`
				Status string `json:"status"`
				Model  string `json:"model"`
				Output []struct {
					Type    string `json:"type"`
					Role    string `json:"role"`
					Content []struct {
						Type string `json:"type"`
						Text string `json:"text"`
					} `json:"content"`
				} `json:"output"`
				Usage struct {
					TotalTokens int `json:"total_tokens"`
				} `json:"usage"`
			}
			if err := json.Unmarshal(r.body, &resp); err != nil {
				t.Fatal(err)
			}
			if resp.ID != proxytest.ResponseID(epSecondary) || resp.Object != "response" || resp.Status != "completed" || resp.Model != "chat-prod" ||
				len(resp.Output) != 1 || resp.Output[0].Type != "message" || len(resp.Output[0].Content) != 1 ||
				resp.Output[0].Content[0].Type != "output_text" || resp.Output[0].Content[0].Text != "hello from "+epSecondary || resp.Usage.TotalTokens != 19 {
				t.Errorf("answer: %s", r.body)
			}
			wantSpliced(t, sec.Requests()[0], "/v1/responses", body, "chat-prod", upModel)
		})
		t.Run(f.name+"/stream", func(t *testing.T) {
			e, _, sec := faultPair(t, f)
			r := e.sse("/v1/responses", callerKey, streamBody)
			if r.status != 200 {
				t.Fatalf("status %d:\n%s", r.status, r.raw)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
			wantSpliced(t, sec.Requests()[0], "/v1/responses", streamBody, "chat-prod", upModel)
			wantResponsesRelayed(t, r, sec.Requests()[0].Body, proxytest.ResponseStream(proxytest.ResponseStreamOptions{}))
		})
	}
}

// responsesOrder is the documented event order of a streamed response
// with one message of three text deltas.
var responsesOrder = []string{
	"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
	"response.output_text.delta", "response.output_text.delta", "response.output_text.delta",
	"response.output_text.done", "response.content_part.done", "response.output_item.done", "response.completed",
}

// wantResponsesRelayed checks that the caller got the upstream's events
// as they are: the stream the behaviour b answers upBody with, event by
// event, name and data, and nothing else.
func wantResponsesRelayed(t testing.TB, r streamResult, upBody []byte, b proxytest.Behavior) {
	t.Helper()
	ref := upstream(t, epSecondary, b)
	want := withAlias(direct(t, ref, "/v1/responses", upBody), "chat-prod")
	if !reflect.DeepEqual(r.events, want) {
		t.Errorf("relayed events differ from the upstream's:\ngot:\n%s\nwant: %v", r.raw, want)
	}
	if got := names(r.events); !reflect.DeepEqual(got, responsesOrder) {
		t.Errorf("event order = %v", got)
	}
	for i, ev := range r.events {
		m := decodeJSON(t, ev.data)
		if m["type"] != ev.name || m["sequence_number"] != float64(i) {
			t.Errorf("event %d: name %q, data %s", i, ev.name, ev.data)
		}
	}
}

// responsesError is the Responses API's stream error event.
func wantResponsesError(t testing.TB, ev sseEvent, code string) {
	t.Helper()
	if ev.name != "error" {
		t.Fatalf("event %q, want error", ev.name)
	}
	m := decodeJSON(t, ev.data)
	if m["type"] != "error" || m["code"] != code || m["message"] == "" || m["param"] != nil {
		t.Errorf("error event %s, want type error, code %q, a message, param null", ev.data, code)
	}
	if _, ok := m["param"]; !ok {
		t.Errorf("error event without param: %s", ev.data)
	}
}

func TestResponsesStreamFaults(t *testing.T) {
	const body = `{"model":"chat-prod","input":"Say hello.","stream":true}`
	rs := func(o proxytest.ResponseStreamOptions) proxytest.Behavior { return proxytest.ResponseStream(o) }
	timeout := []func(*storage.Model){withStreamTimeout(300)}
	before := []struct {
		name  string
		prim  proxytest.Behavior
		mods  []func(*storage.Model)
		label string
	}{
		{"cut before content", rs(proxytest.ResponseStreamOptions{CutBeforeContent: true}), nil, "stream_aborted"},
		{"stall before content", rs(proxytest.ResponseStreamOptions{StallBeforeContent: true}), timeout, "timeout"},
		{"malformed event before content", rs(proxytest.ResponseStreamOptions{MalformedAt: 1}), nil, "upstream_decode_error"},
		{"response.failed before content", rs(proxytest.ResponseStreamOptions{FailedAt: 1}), nil, "in_band_error"},
		{"error event before content", rs(proxytest.ResponseStreamOptions{ErrorAt: 1}), nil, "in_band_error"},
		{"rate-limit error event before content", rs(proxytest.ResponseStreamOptions{ErrorAt: 1, ErrorCode: "rate_limit_exceeded"}), nil, "in_band_error"},
	}
	for _, tt := range before {
		t.Run(tt.name+" fails over", func(t *testing.T) {
			prim := upstream(t, epPrimary, tt.prim)
			sec := upstream(t, epSecondary)
			e := newEnv(t, only(pair(prim, sec, storage.Routing{}), epPrimary, tt.mods...))
			r := e.sse("/v1/responses", callerKey, body)
			if r.status != 200 {
				t.Fatalf("status %d:\n%s", r.status, r.raw)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+tt.label+","+epSecondary+"=200")
			// None of the primary's held events reach the caller.
			wantResponsesRelayed(t, r, sec.Requests()[0].Body, proxytest.ResponseStream(proxytest.ResponseStreamOptions{}))
			wantUnder(t, r.took, 5*time.Second)
		})
	}

	after := []struct {
		name string
		prim proxytest.Behavior
		mods []func(*storage.Model)
		code string // of the error event
		// relayed is the number of upstream events the caller gets before it.
		relayed int
	}{
		{"cut after content", rs(proxytest.ResponseStreamOptions{CutAfter: 1}), nil, "stream_aborted", 5},
		{"stall after content", rs(proxytest.ResponseStreamOptions{StallAfter: 1}), timeout, "timeout", 5},
		{"response.failed after content", rs(proxytest.ResponseStreamOptions{FailedAt: 2}), nil, "upstream_error", 5},
		{"error event after content", rs(proxytest.ResponseStreamOptions{ErrorAt: 3}), nil, "upstream_error", 6},
	}
	for _, tt := range after {
		t.Run(tt.name+" ends with the Responses error event", func(t *testing.T) {
			prim := upstream(t, epPrimary, tt.prim)
			sec := upstream(t, epSecondary)
			e := newEnv(t, only(pair(prim, sec, storage.Routing{}), epPrimary, tt.mods...))
			r := e.sse("/v1/responses", callerKey, body)
			if r.status != 200 {
				t.Fatalf("status %d:\n%s", r.status, r.raw)
			}
			wantServed(t, r.header, epPrimary, epPrimary+"=200")
			if len(r.events) != tt.relayed+1 {
				t.Fatalf("%d events, want %d relayed and the error event:\n%s", len(r.events), tt.relayed, r.raw)
			}
			if got := names(r.events[:tt.relayed]); !reflect.DeepEqual(got, responsesOrder[:tt.relayed]) {
				t.Errorf("relayed = %v", got)
			}
			wantResponsesError(t, r.events[tt.relayed], tt.code)
			wantHits(t, sec, 0)
			if strings.Contains(r.raw, "response.failed") || strings.Contains(r.raw, "[DONE]") {
				t.Errorf("the upstream's failure event or [DONE] reached the caller:\n%s", r.raw)
			}
			wantUnder(t, r.took, 5*time.Second)
		})
	}

	t.Run("a malformed event after content is dropped", func(t *testing.T) {
		prim := upstream(t, epPrimary, rs(proxytest.ResponseStreamOptions{MalformedAt: 2}))
		sec := upstream(t, epSecondary)
		e := newEnv(t, pair(prim, sec, storage.Routing{}))
		r := e.sse("/v1/responses", callerKey, body)
		wantServed(t, r.header, epPrimary, epPrimary+"=200")
		if got := names(r.events); !reflect.DeepEqual(got, responsesOrder) {
			t.Errorf("events = %v:\n%s", got, r.raw)
		}
		wantHits(t, sec, 0)
	})
	t.Run("response.incomplete ends the answer", func(t *testing.T) {
		prim := upstream(t, epPrimary, rs(proxytest.ResponseStreamOptions{Incomplete: true}))
		e := newEnv(t, pair(prim, upstream(t, epSecondary), storage.Routing{}))
		r := e.sse("/v1/responses", callerKey, body)
		wantServed(t, r.header, epPrimary, epPrimary+"=200")
		if n := len(r.events); n != len(responsesOrder) || r.events[n-1].name != "response.incomplete" {
			t.Errorf("events = %v", names(r.events))
		}
		wantTargetState(t, e, epPrimary, "", "")
	})
}

// ---------------------------------------------------------------------
// The Messages API.

const messagesBody = `{"model":"chat-prod","max_tokens":1024,"messages":[{"role":"user","content":"Say hello."}],"top_k":5,"metadata":{"user_id":"user-1"}}`

func messagesStreamBody() string {
	return strings.Replace(messagesBody, `"max_tokens":1024`, `"max_tokens":1024,"stream":true`, 1)
}

// anthropicErr is Anthropic's error envelope.
type anthropicErr struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func wantAnthropicError(t testing.TB, r response, status int, typ string) anthropicErr {
	t.Helper()
	var e anthropicErr
	if r.status != status || json.Unmarshal(r.body, &e) != nil || e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" {
		t.Errorf("answer %d %s, want %d with Anthropic's envelope, type %s", r.status, r.body, status, typ)
	}
	wantHeader(t, r.header, "Content-Type", "application/json")
	return e
}

// message is an Anthropic message object.
type message struct {
	ID         string `json:"id"`
	Type       string `json:"type"`
	Role       string `json:"role"`
	Model      string `json:"model"`
	StopReason string `json:"stop_reason"`
	Content    []struct {
		Type  string          `json:"type"`
		Text  string          `json:"text"`
		ID    string          `json:"id"`
		Name  string          `json:"name"`
		Input json.RawMessage `json:"input"`
	} `json:"content"`
	Usage struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

func decodeMessage(t testing.TB, b []byte) message {
	t.Helper()
	var m message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("not a message: %v\n%s", err, b)
	}
	return m
}

// messagesText joins the text deltas of a Messages event stream.
func messagesText(t testing.TB, r streamResult) string {
	t.Helper()
	var b strings.Builder
	for _, ev := range r.events {
		if ev.name != "content_block_delta" {
			continue
		}
		var d struct {
			Delta struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"delta"`
		}
		_ = json.Unmarshal([]byte(ev.data), &d)
		if d.Delta.Type == "text_delta" {
			b.WriteString(d.Delta.Text)
		}
	}
	return b.String()
}

var textOrder = []string{
	"message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta",
	"content_block_stop", "message_delta", "message_stop",
}

// TestMessagesNative: on an Anthropic target the caller's body goes with
// only its model replaced, the gateway's x-api-key and anthropic-version,
// and the answer and events come back as they are (the model spliced in
// the message, the upstream's pings dropped).
func TestMessagesNative(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		// The caller's own key in x-api-key (as the Anthropic SDKs send
		// it) and its own anthropic-version.
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey, "Anthropic-Version", "2023-01-01")
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantServed(t, r.header, claude, claude+"=200")
		m := decodeMessage(t, r.body)
		if m.Type != "message" || m.Model != "chat-prod" || len(m.Content) != 1 || m.Content[0].Text != "hello from claude" || m.StopReason != "end_turn" {
			t.Errorf("answer: %s", r.body)
		}
		req := ant.Requests()[0]
		wantSpliced(t, req, "/v1/messages", messagesBody, "chat-prod", claudeModelName)
		wantHeader(t, req.Header, "X-Api-Key", anthropicSecret)
		wantHeader(t, req.Header, "Anthropic-Version", "2023-06-01")
		if v := req.Header.Get("Authorization"); v != "" {
			t.Errorf("upstream Authorization = %q", v)
		}
	})
	t.Run("stream", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Ping: true}))
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		body := messagesStreamBody()
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("status %d:\n%s", r.status, r.raw)
		}
		wantServed(t, r.header, claude, claude+"=200")
		if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
			t.Errorf("events = %v, want the upstream's without its pings", got)
		}
		for _, ev := range r.events {
			if m := decodeJSON(t, ev.data); m["type"] != ev.name {
				t.Errorf("event %q data %s", ev.name, ev.data)
			}
		}
		// The message carries the alias, as the plain answer does and as
		// a translated stream's message_start does.
		if m := decodeJSON(t, r.events[0].data)["message"].(map[string]any); m["model"] != "chat-prod" || m["id"] != "msg_fake1" {
			t.Errorf("message_start = %s, want the alias as its model, the rest as it is", r.events[0].data)
		}
		if got := messagesText(t, r); got != "hello from claude" {
			t.Errorf("text = %q", got)
		}
		wantSpliced(t, ant.Requests()[0], "/v1/messages", body, "chat-prod", claudeModelName)
	})
	t.Run("bearer auth works too", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		e := newEnv(t, mixed(ant, upstream(t, gpt), true, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages", callerKey, messagesBody)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	})
}

// TestMessagesAnthropicBeta: anthropic-beta reaches the upstream only
// when the provider key forwards it.
func TestMessagesAnthropicBeta(t *testing.T) {
	const beta = "prompt-caching-2024-07-31"
	for _, forward := range []bool{false, true} {
		ant := anthropicUpstream(t, claude)
		var fw []string
		if forward {
			fw = []string{"Anthropic-Beta"}
		}
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{anthropicKey("pk-claude", ant, fw...)},
			Models:       []storage.Model{claudeModel(claude, "pk-claude")},
			APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
		})
		body := strings.Replace(messagesBody, "chat-prod", claude, 1)
		r := e.do(http.MethodPost, "/v1/messages", "", body, "X-Api-Key", callerKey, "Anthropic-Beta", beta)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		got := ant.Requests()[0].Header.Get("Anthropic-Beta")
		if want := map[bool]string{false: "", true: beta}[forward]; got != want {
			t.Errorf("forward=%v: upstream anthropic-beta = %q, want %q", forward, got, want)
		}
	}
}

// TestMessagesTranslated: on an OpenAI target a Messages caller is served
// through chat completions, the answer and the stream translated back.
func TestMessagesTranslated(t *testing.T) {
	t.Run("plain", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantServed(t, r.header, gpt, gpt+"=200")
		m := decodeMessage(t, r.body)
		if m.Type != "message" || m.Role != "assistant" || m.Model != "chat-prod" || len(m.Content) != 1 ||
			m.Content[0].Type != "text" || m.Content[0].Text != "hello from gpt" || m.StopReason != "end_turn" ||
			m.Usage.InputTokens != 10 || m.Usage.OutputTokens != 9 {
			t.Errorf("answer: %s", r.body)
		}
		req := oai.Requests()[0]
		if req.Path != "/v1/chat/completions" || req.Model != upModel {
			t.Errorf("upstream request %s model %q", req.Path, req.Model)
		}
		var chat struct {
			Messages []struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(req.Body, &chat); err != nil || len(chat.Messages) != 1 || chat.Messages[0].Content != "Say hello." {
			t.Errorf("upstream body: %s", req.Body)
		}
		if bytes.Contains(req.Body, []byte("top_k")) {
			t.Errorf("top_k went to an OpenAI upstream: %s", req.Body)
		}
		if ant.Hits() != 0 {
			t.Errorf("claude got %d requests", ant.Hits())
		}
	})
	t.Run("stream with a tool call", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{RoleChunk: true, Chunks: []string{"Let me", " check."},
			Tools: []proxytest.ToolCall{{ID: "call_abc", Name: "get_weather", Fragments: []string{`{"city":`, `"Paris"}`}}}}))
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.sse("/v1/messages", "", messagesStreamBody(), "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("status %d:\n%s", r.status, r.raw)
		}
		wantServed(t, r.header, gpt, gpt+"=200")
		want := []string{
			"message_start",
			"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
			"content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
			"message_delta", "message_stop",
		}
		if got := names(r.events); !reflect.DeepEqual(got, want) {
			t.Fatalf("events = %v, want %v:\n%s", got, want, r.raw)
		}
		start := decodeJSON(t, r.events[0].data)["message"].(map[string]any)
		usage := start["usage"].(map[string]any)
		if start["model"] != "chat-prod" || start["role"] != "assistant" || usage["input_tokens"].(float64) < 1 {
			t.Errorf("message_start = %s", r.events[0].data)
		}
		if got := messagesText(t, r); got != "Let me check." {
			t.Errorf("text = %q", got)
		}
		tool := decodeJSON(t, r.events[5].data)
		block := tool["content_block"].(map[string]any)
		if tool["index"] != 1.0 || block["type"] != "tool_use" || block["id"] != "call_abc" || block["name"] != "get_weather" {
			t.Errorf("tool block start = %s", r.events[5].data)
		}
		var args strings.Builder
		for _, ev := range r.events[6:8] {
			d := decodeJSON(t, ev.data)["delta"].(map[string]any)
			if d["type"] != "input_json_delta" {
				t.Errorf("tool delta = %s", ev.data)
			}
			args.WriteString(d["partial_json"].(string))
		}
		if args.String() != `{"city":"Paris"}` {
			t.Errorf("tool input = %q", args.String())
		}
		md := decodeJSON(t, r.events[9].data)
		if md["delta"].(map[string]any)["stop_reason"] != "tool_use" {
			t.Errorf("message_delta = %s", r.events[9].data)
		}
		if u, _ := md["usage"].(map[string]any); u == nil || u["output_tokens"].(float64) < 1 {
			t.Errorf("message_delta usage = %s", r.events[9].data)
		}
		req := oai.Requests()[0]
		if !req.Stream || !bytes.Contains(req.Body, []byte(`"include_usage":true`)) {
			t.Errorf("upstream body: %s", req.Body)
		}
	})
}

// TestMessagesStreamFailover: a Messages stream fails over from an
// Anthropic target to an OpenAI one before commit, and is then
// translated; after commit a failure ends it with Anthropic's error event.
func TestMessagesStreamFailover(t *testing.T) {
	body := messagesStreamBody()
	t.Run("529 fails over to the OpenAI target", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicOverloaded())
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("status %d:\n%s", r.status, r.raw)
		}
		wantServed(t, r.header, gpt, claude+"=529,"+gpt+"=200")
		if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
			t.Errorf("events = %v:\n%s", got, r.raw)
		}
		if got := messagesText(t, r); got != "hello from gpt" {
			t.Errorf("text = %q", got)
		}
		wantTargetState(t, e, claude, health.StateCooldown, "upstream_overloaded")
	})
	t.Run("an in-band overloaded error before content fails over", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{ErrorAt: 1}))
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		wantServed(t, r.header, gpt, claude+"=in_band_error,"+gpt+"=200")
		if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
			t.Errorf("events = %v:\n%s", got, r.raw)
		}
		// One message_start: the Anthropic target's held one is dropped.
		if got := messagesText(t, r); got != "hello from gpt" {
			t.Errorf("text = %q", got)
		}
	})
	t.Run("OpenAI primary cut after content ends with Anthropic's error event", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{CutAfter: 1}))
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		wantServed(t, r.header, gpt, gpt+"=200")
		wantMessagesErrorEnd(t, r, "api_error")
		if got := messagesText(t, r); got != "hello" {
			t.Errorf("text = %q", got)
		}
		if ant.Hits() != 0 {
			t.Errorf("claude got %d requests after commit", ant.Hits())
		}
	})
}

// wantMessagesErrorEnd checks a Messages stream ended by Anthropic's
// error event of type typ, with no message_stop.
func wantMessagesErrorEnd(t testing.TB, r streamResult, typ string) {
	t.Helper()
	if r.status != 200 || len(r.events) == 0 {
		t.Fatalf("status %d:\n%s", r.status, r.raw)
	}
	last := r.events[len(r.events)-1]
	var e anthropicErr
	if last.name != "error" || json.Unmarshal([]byte(last.data), &e) != nil || e.Type != "error" || e.Error.Type != typ || e.Error.Message == "" {
		t.Errorf("last event %q %s, want Anthropic's error event of type %s:\n%s", last.name, last.data, typ, r.raw)
	}
	for _, ev := range r.events {
		if ev.name == "message_stop" || ev.data == "[DONE]" {
			t.Errorf("the stream has %q after its failure:\n%s", ev.name+ev.data, r.raw)
		}
	}
}

// TestMessagesErrors: errors come in Anthropic's envelope, typed by status.
func TestMessagesErrors(t *testing.T) {
	ant := anthropicUpstream(t, claude, proxytest.AnthropicRateLimited("30"))
	oai := upstream(t, gpt, proxytest.RateLimited("20"))
	ds := mixed(ant, oai, true, storage.Routing{})
	e := newEnv(t, ds)
	t.Run("401 bad key", func(t *testing.T) {
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", "sk-wrong")
		wantAnthropicError(t, r, 401, "authentication_error")
		r = e.do(http.MethodPost, "/v1/messages", "", messagesBody)
		wantAnthropicError(t, r, 401, "authentication_error")
	})
	t.Run("404 unknown model", func(t *testing.T) {
		r := e.do(http.MethodPost, "/v1/messages", "", strings.Replace(messagesBody, "chat-prod", "no-such-model", 1), "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 404, "not_found_error")
	})
	t.Run("400 bad body", func(t *testing.T) {
		r := e.do(http.MethodPost, "/v1/messages", "", `{"model":"chat-prod","max_tokens":5}`, "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 400, "invalid_request_error")
	})
	t.Run("429 from the upstreams, with retry-after", func(t *testing.T) {
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 429, "rate_limit_error")
		wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=429,"+gpt+"=429")
		if r.header.Get("Retry-After") == "" {
			t.Errorf("no Retry-After")
		}
		wantNoLeak(t, "429 body", string(r.body))
	})
	t.Run("429 from a direct Anthropic model keeps its retry-after", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicRateLimited("30"))
		e := newEnv(t, storage.Dataset{
			ProviderKeys: []storage.ProviderKey{anthropicKey("pk-claude", ant)},
			Models:       []storage.Model{claudeModel(claude, "pk-claude")},
			APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
		})
		r := e.do(http.MethodPost, "/v1/messages", "", strings.Replace(messagesBody, "chat-prod", claude, 1), "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 429, "rate_limit_error")
		wantHeader(t, r.header, "Retry-After", "30")
		r2 := e.sse("/v1/messages", "", strings.Replace(messagesStreamBody(), "chat-prod", claude, 1), "X-Api-Key", callerKey)
		if r2.status != 429 || !strings.Contains(r2.raw, `"rate_limit_error"`) {
			t.Errorf("stream: %d %s", r2.status, r2.raw)
		}
	})
}

// TestMessagesStreamFaults: the streaming faults of /v1/messages, on an
// Anthropic primary (native) failing over to an OpenAI secondary before
// commit, and ending with Anthropic's error event after it.
func TestMessagesStreamFaults(t *testing.T) {
	body := messagesStreamBody()
	as := func(o proxytest.AnthropicStreamOptions) proxytest.Behavior { return proxytest.AnthropicStream(o) }
	timeout := []func(*storage.Model){withStreamTimeout(300)}
	before := []struct {
		name  string
		b     proxytest.Behavior
		mods  []func(*storage.Model)
		label string
	}{
		{"cut", as(proxytest.AnthropicStreamOptions{CutBeforeContent: true}), nil, "stream_aborted"},
		{"stall (pings do not count)", as(proxytest.AnthropicStreamOptions{StallBeforeContent: true, PingEvery: 50 * time.Millisecond}), timeout, "timeout"},
		{"malformed", as(proxytest.AnthropicStreamOptions{MalformedAt: 1}), nil, "upstream_decode_error"},
		{"in-band error", as(proxytest.AnthropicStreamOptions{ErrorAt: 1, ErrorType: "api_error", ErrorMessage: "Internal server error"}), nil, "in_band_error"},
	}
	for _, tt := range before {
		t.Run(tt.name+" before content fails over", func(t *testing.T) {
			ant := anthropicUpstream(t, claude, tt.b)
			oai := upstream(t, gpt)
			e := newEnv(t, only(mixed(ant, oai, true, storage.Routing{}), claude, tt.mods...))
			r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
			if r.status != 200 {
				t.Fatalf("status %d:\n%s", r.status, r.raw)
			}
			wantServed(t, r.header, gpt, claude+"="+tt.label+","+gpt+"=200")
			if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
				t.Errorf("events = %v:\n%s", got, r.raw)
			}
			if got := messagesText(t, r); got != "hello from gpt" {
				t.Errorf("text = %q", got)
			}
			wantNoLeak(t, "stream", r.raw)
			wantUnder(t, r.took, 5*time.Second)
		})
	}
	after := []struct {
		name string
		b    proxytest.Behavior
		mods []func(*storage.Model)
		typ  string // of the error event
	}{
		{"cut", as(proxytest.AnthropicStreamOptions{CutAfter: 1}), nil, "api_error"},
		{"stall (pings do not count)", as(proxytest.AnthropicStreamOptions{StallAfter: 1, PingEvery: 50 * time.Millisecond}), timeout, "timeout_error"},
		{"malformed", as(proxytest.AnthropicStreamOptions{MalformedAt: 2}), nil, "api_error"},
		{"in-band error", as(proxytest.AnthropicStreamOptions{ErrorAt: 2, ErrorType: "api_error", ErrorMessage: "Internal server error at 10.1.2.3"}), nil, "api_error"},
	}
	for _, tt := range after {
		t.Run(tt.name+" after content ends with Anthropic's error event", func(t *testing.T) {
			ant := anthropicUpstream(t, claude, tt.b)
			oai := upstream(t, gpt)
			e := newEnv(t, only(mixed(ant, oai, true, storage.Routing{}), claude, tt.mods...))
			r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
			wantServed(t, r.header, claude, claude+"=200")
			wantMessagesErrorEnd(t, r, tt.typ)
			if got := messagesText(t, r); got != "hello" {
				t.Errorf("text = %q", got)
			}
			for _, ev := range r.events {
				if ev.name == "ping" {
					t.Errorf("the upstream's ping reached the caller")
				}
			}
			wantHits(t, oai, 0)
			wantNoLeak(t, "stream", r.raw)
			wantUnder(t, r.took, 5*time.Second)
		})
	}
	// The same faults on an OpenAI target serving a Messages caller.
	t.Run("translated: stall after content ends with timeout_error", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{StallAfter: 1}))
		e := newEnv(t, only(mixed(ant, oai, false, storage.Routing{}), gpt, timeout...))
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		wantServed(t, r.header, gpt, gpt+"=200")
		wantMessagesErrorEnd(t, r, "timeout_error")
	})
	t.Run("translated: an in-band error before content fails over to claude", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{ErrorAt: 1}))
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		wantServed(t, r.header, claude, gpt+"=in_band_error,"+claude+"=200")
		if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
			t.Errorf("events = %v:\n%s", got, r.raw)
		}
		if got := messagesText(t, r); got != "hello from claude" {
			t.Errorf("text = %q", got)
		}
	})
	t.Run("translated: an in-band error after content ends with the error event", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{ErrorAt: 2}))
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.sse("/v1/messages", "", body, "X-Api-Key", callerKey)
		wantServed(t, r.header, gpt, gpt+"=200")
		wantMessagesErrorEnd(t, r, "api_error")
		wantNoLeak(t, "stream", r.raw)
	})
}

// ---------------------------------------------------------------------
// count_tokens.

func TestCountTokens(t *testing.T) {
	const body = `{"model":"chat-prod","messages":[{"role":"user","content":"Hello, Claude"}],"system":"You are a scientist"}`
	t.Run("Anthropic target: the upstream's count", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicCountTokens(14))
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages/count_tokens", "", body, "X-Api-Key", callerKey)
		if r.status != 200 || string(r.body) != `{"input_tokens":14}` {
			t.Fatalf("answer %d %s", r.status, r.body)
		}
		wantServed(t, r.header, claude, claude+"=200")
		req := ant.Requests()[0]
		wantSpliced(t, req, "/v1/messages/count_tokens", body, "chat-prod", claudeModelName)
		wantHeader(t, req.Header, "Anthropic-Version", "2023-06-01")
		wantHits(t, oai, 0)
	})
	t.Run("OpenAI target: the gateway's estimate", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages/count_tokens", "", body, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("answer %d %s", r.status, r.body)
		}
		wantServed(t, r.header, gpt, gpt+"=estimate")
		var c struct {
			InputTokens int `json:"input_tokens"`
		}
		if err := json.Unmarshal(r.body, &c); err != nil || c.InputTokens < 1 || c.InputTokens > 100 {
			t.Errorf("answer %s", r.body)
		}
		wantHits(t, oai, 0)
		if ant.Hits() != 0 {
			t.Errorf("claude got %d requests", ant.Hits())
		}
	})
	t.Run("Anthropic target overloaded: the OpenAI target's estimate", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicOverloaded())
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages/count_tokens", "", body, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("answer %d %s", r.status, r.body)
		}
		wantServed(t, r.header, gpt, claude+"=529,"+gpt+"=estimate")
	})
	t.Run("a bad body is Anthropic's 400", func(t *testing.T) {
		e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt), false, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages/count_tokens", "", `{"model":"chat-prod"}`, "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 400, "invalid_request_error")
	})
}

// ---------------------------------------------------------------------
// Keep-alive, and more of the caller wires.

// heldStream sends a streaming POST and reads it line by line; when a
// line equal to want arrives after the first content, it closes release
// (the upstream then finishes). It returns the whole stream.
func heldStream(t *testing.T, e *env, path, body string, release chan struct{}, want string, header ...string) streamResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("stream request: %v", err)
	}
	defer resp.Body.Close()
	var raw bytes.Buffer
	br := bufio.NewReader(resp.Body)
	released := false
	for {
		line, err := br.ReadString('\n')
		raw.WriteString(line)
		if !released && strings.TrimSuffix(line, "\n") == want {
			close(release)
			released = true
		}
		if err != nil {
			break
		}
	}
	if !released {
		close(release)
		t.Fatalf("no %q line in the stream:\n%s", want, raw.String())
	}
	res := streamResult{status: resp.StatusCode, header: resp.Header, raw: raw.String()}
	res.events, res.comments = parseSSE(raw.Bytes())
	return res
}

func withKeepAlive(d time.Duration) envOption {
	return func(o *proxy.Options) { o.KeepAliveInterval = d }
}

// TestStreamKeepAlive: a silent committed stream gets the caller wire's
// keep-alive: Anthropic's ping event for a Messages caller (whatever the
// target), an SSE comment on the Responses API.
func TestStreamKeepAlive(t *testing.T) {
	t.Run("messages, native", func(t *testing.T) {
		release := make(chan struct{})
		ant := anthropicUpstream(t, claude, proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{WaitAfter: 1, Wait: release}))
		e := newEnv(t, mixed(ant, upstream(t, gpt), true, storage.Routing{}), withKeepAlive(20*time.Millisecond))
		r := heldStream(t, e, "/v1/messages", messagesStreamBody(), release, "event: ping", "X-Api-Key", callerKey)
		wantPingBetween(t, r)
	})
	t.Run("messages, translated", func(t *testing.T) {
		release := make(chan struct{})
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{WaitAfter: 1, Wait: release}))
		e := newEnv(t, mixed(anthropicUpstream(t, claude), oai, false, storage.Routing{}), withKeepAlive(20*time.Millisecond))
		r := heldStream(t, e, "/v1/messages", messagesStreamBody(), release, "event: ping", "X-Api-Key", callerKey)
		wantPingBetween(t, r)
	})
	t.Run("responses", func(t *testing.T) {
		release := make(chan struct{})
		prim := upstream(t, epPrimary, proxytest.ResponseStream(proxytest.ResponseStreamOptions{WaitAfter: 1, Wait: release}))
		e := newEnv(t, pair(prim, upstream(t, epSecondary), storage.Routing{}), withKeepAlive(20*time.Millisecond))
		r := heldStream(t, e, "/v1/responses", `{"model":"chat-prod","input":"hi","stream":true}`, release, ": keep-alive",
			"Authorization", "Bearer "+callerKey)
		if r.comments < 1 || !reflect.DeepEqual(names(r.events), responsesOrder) {
			t.Errorf("comments %d, events %v:\n%s", r.comments, names(r.events), r.raw)
		}
		if strings.Contains(r.raw, "event: ping") {
			t.Errorf("an Anthropic ping on the Responses API:\n%s", r.raw)
		}
	})
}

// wantPingBetween checks a Messages stream: the text events, with the
// gateway's ping events (and only there) after the first delta.
func wantPingBetween(t *testing.T, r streamResult) {
	t.Helper()
	var rest []string
	pings := 0
	for i, ev := range r.events {
		if ev.name == "ping" {
			pings++
			if i < 3 || decodeJSON(t, ev.data)["type"] != "ping" {
				t.Errorf("ping at %d: %s", i, ev.data)
			}
			continue
		}
		rest = append(rest, ev.name)
	}
	if pings == 0 || !reflect.DeepEqual(rest, textOrder) || r.comments != 0 {
		t.Errorf("pings %d, comments %d, events %v:\n%s", pings, r.comments, rest, r.raw)
	}
}

// TestMessagesMore: the rest of the Messages caller's wire.
func TestMessagesMore(t *testing.T) {
	t.Run("x-api-key comes before Authorization", func(t *testing.T) {
		e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt), true, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages", "sk-wrong", messagesBody, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Errorf("status %d: %s", r.status, r.body)
		}
	})
	t.Run("403 for a key without the model", func(t *testing.T) {
		ds := mixed(anthropicUpstream(t, claude), upstream(t, gpt), true, storage.Routing{})
		ds.APIKeys = append(ds.APIKeys, callerAPIKey("key-2", "sk-narrow", gpt))
		e := newEnv(t, ds)
		wantAnthropicError(t, e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", "sk-narrow"), 403, "permission_error")
	})
	t.Run("405 in Anthropic's envelope", func(t *testing.T) {
		e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt), true, storage.Routing{}))
		r := e.do(http.MethodGet, "/v1/messages", "", "", "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 405, "invalid_request_error")
		wantHeader(t, r.header, "Allow", "POST")
	})
	t.Run("an Anthropic 400 is returned at once, redacted, in Anthropic's envelope", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, badRequest())
		oai := upstream(t, gpt)
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		er := wantAnthropicError(t, r, 400, "invalid_request_error")
		if !strings.HasPrefix(er.Error.Message, "max_tokens: 100000 > 64000") {
			t.Errorf("message = %q", er.Error.Message)
		}
		for _, l := range []string{"sk-ant", "abcdefghijkl", "10.1.2.3", "http://", "request_id", "req_fake"} {
			if strings.Contains(string(r.body), l) {
				t.Errorf("body leaks %q: %s", l, r.body)
			}
		}
		wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=400")
		wantHits(t, oai, 0)
	})
	t.Run("an OpenAI context-length 400 fails over to claude", func(t *testing.T) {
		ant := anthropicUpstream(t, claude)
		oai := upstream(t, gpt, proxytest.ContextLengthExceeded())
		e := newEnv(t, mixed(ant, oai, false, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		if r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		wantServed(t, r.header, claude, gpt+"=400,"+claude+"=200")
	})
	t.Run("an OpenAI content-policy 400 is Anthropic's invalid_request_error", func(t *testing.T) {
		e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt, proxytest.ContentPolicy()), false, storage.Routing{}))
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		er := wantAnthropicError(t, r, 400, "invalid_request_error")
		if !strings.Contains(er.Error.Message, "safety system") {
			t.Errorf("message = %q", er.Error.Message)
		}
	})
	t.Run("translated stream without [DONE] after its finish is completed", func(t *testing.T) {
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{NoDone: true}))
		e := newEnv(t, mixed(anthropicUpstream(t, claude), oai, false, storage.Routing{}))
		r := e.sse("/v1/messages", "", messagesStreamBody(), "X-Api-Key", callerKey)
		if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
			t.Errorf("events = %v:\n%s", got, r.raw)
		}
	})
	t.Run("translated stream that ends before its finish ends with an error event", func(t *testing.T) {
		oai := upstream(t, gpt, proxytest.Stream(proxytest.StreamOptions{NoDone: true, NoFinish: true}))
		e := newEnv(t, mixed(anthropicUpstream(t, claude), oai, false, storage.Routing{}))
		r := e.sse("/v1/messages", "", messagesStreamBody(), "X-Api-Key", callerKey)
		wantMessagesErrorEnd(t, r, "api_error")
	})
	t.Run("native stream that ends before message_stop ends with an error event", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{NoStop: true}))
		e := newEnv(t, mixed(ant, upstream(t, gpt), true, storage.Routing{}))
		r := e.sse("/v1/messages", "", messagesStreamBody(), "X-Api-Key", callerKey)
		wantMessagesErrorEnd(t, r, "api_error")
	})
}

// TestOtherEndpointsUnsupported: completions and the Responses API on an
// Anthropic target are skipped as unsupported_endpoint too; count_tokens
// on a direct OpenAI model is the estimate.
func TestOtherEndpointsUnsupported(t *testing.T) {
	for _, tt := range []struct{ path, body string }{
		{"/v1/completions", `{"model":"chat-prod","prompt":"hi"}`},
		{"/v1/completions", `{"model":"chat-prod","prompt":"hi","stream":true}`},
		{"/v1/responses", `{"model":"chat-prod","input":"hi"}`},
		{"/v1/responses", `{"model":"chat-prod","input":"hi","stream":true}`},
	} {
		ant := anthropicUpstream(t, claude)
		e := newEnv(t, mixed(ant, upstream(t, gpt), true, storage.Routing{}))
		r := e.sse(tt.path, callerKey, tt.body)
		if r.status != 200 {
			t.Errorf("%s %s: status %d: %s", tt.path, tt.body, r.status, r.raw)
		}
		wantServed(t, r.header, gpt, claude+"=unsupported_endpoint,"+gpt+"=200")
		if ant.Hits() != 0 {
			t.Errorf("claude got %d requests", ant.Hits())
		}
	}
	oai := upstream(t, gpt)
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk-gpt", oai.BaseURL())},
		Models:       []storage.Model{directModel(gpt, "pk-gpt")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	})
	r := e.do(http.MethodPost, "/v1/messages/count_tokens", callerKey, `{"model":"gpt","messages":[{"role":"user","content":"hi"}]}`)
	if r.status != 200 || !strings.HasPrefix(string(r.body), `{"input_tokens":`) {
		t.Errorf("count_tokens: %d %s", r.status, r.body)
	}
	wantServed(t, r.header, gpt, gpt+"=estimate")
	wantHits(t, oai, 0)
}

// TestUnsupportedTargetBudget: a target skipped as unsupported_endpoint
// does not use up max_fallbacks: the budget counts the targets that can
// serve the endpoint.
func TestUnsupportedTargetBudget(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt, proxytest.ServerError(503))
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{MaxFallbacks: ptr(0)}))
	r := e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"chat-prod","input":"x"}`)
	if r.status != 502 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	// gpt was tried, once: claude took no part of the budget.
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=unsupported_endpoint,"+gpt+"=503")
	oai.Script(proxytest.OK())
	e.clock.Advance(time.Hour)
	r = e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"chat-prod","input":"x"}`)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	wantServed(t, r.header, gpt, claude+"=unsupported_endpoint,"+gpt+"=200")
	// Chat is served by both: the budget is one target, claude.
	ant.Script(proxytest.AnthropicOverloaded())
	r = e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody("chat-prod", false))
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=529")
	wantHits(t, oai, 2)
}

// TestUnsupportedTargetLeavesProbe: a half-open target that is skipped as
// unsupported_endpoint holds no probe while the request goes on: a chat
// request made during a long Responses stream can probe it.
func TestUnsupportedTargetLeavesProbe(t *testing.T) {
	ant := anthropicUpstream(t, claude, proxytest.AnthropicOverloaded(), proxytest.AnthropicOK())
	release := make(chan struct{})
	oai := upstream(t, gpt, proxytest.OK(), proxytest.ResponseStream(proxytest.ResponseStreamOptions{WaitAfter: 1, Wait: release}), proxytest.OK())
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
	r := e.chat("chat-prod")
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=529,"+gpt+"=200")
	e.clock.Advance(time.Hour) // claude's cooldown is over: half-open
	if st := e.reg.Status("id-" + claude); st.State != health.StateProbing {
		t.Fatalf("claude = %s, want probing", st.State)
	}

	streamed := make(chan streamResult, 1)
	go func() {
		streamed <- e.sse("/v1/responses", callerKey, `{"model":"chat-prod","input":"hi","stream":true}`)
	}()
	if !oai.WaitHits(2, 10*time.Second) {
		close(release)
		t.Fatal("the stream never reached gpt")
	}
	// The stream is on gpt, held open; claude was passed over.
	r = e.chat("chat-prod")
	close(release)
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=200")
	s := <-streamed
	wantServed(t, s.header, gpt, claude+"=unsupported_endpoint,"+gpt+"=200")
	if st := e.reg.Status("id-" + claude); st.State != health.StateHealthy {
		t.Errorf("claude after its probe = %s", st.State)
	}
}

// TestMessagesGatewayErrors: the gateway's own refusals, in Anthropic's
// envelope for a Messages caller: 413, and 503 overloaded_error with
// Retry-After when every target cools down.
func TestMessagesGatewayErrors(t *testing.T) {
	t.Run("413", func(t *testing.T) {
		e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt), true, storage.Routing{}),
			func(o *proxy.Options) { o.MaxBodyBytes = 64 })
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 413, "request_too_large")
	})
	t.Run("503 all unavailable", func(t *testing.T) {
		ant := anthropicUpstream(t, claude, proxytest.AnthropicOverloaded())
		oai := upstream(t, gpt, proxytest.ServerError(503))
		e := newEnv(t, mixed(ant, oai, true, storage.Routing{WhenAllUnavailable: storage.WhenAllUnavailableFail}))
		r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=529,"+gpt+"=503")
		wantAnthropicError(t, r, 502, "api_error")
		wantNoLeak(t, "body", string(r.body))
		r = e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
		wantAnthropicError(t, r, 503, "overloaded_error")
		if r.header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		wantHits(t, oai, 1)
	})
}

// TestEndpointsConcurrent: every endpoint at once, plain and streaming,
// on one group, native and translated (run it with -race: calls, buffers
// and decoders are pooled).
func TestEndpointsConcurrent(t *testing.T) {
	ant := anthropicUpstream(t, claude)
	oai := upstream(t, gpt)
	e := newEnv(t, mixed(ant, oai, true, storage.Routing{}))
	type req struct {
		path, body string
		stream     bool
		served     string
	}
	reqs := []req{
		{"/v1/embeddings", `{"model":"chat-prod","input":["a","b"]}`, false, gpt},
		{"/v1/completions", `{"model":"chat-prod","prompt":"hi"}`, false, gpt},
		{"/v1/completions", `{"model":"chat-prod","prompt":"hi","stream":true}`, true, gpt},
		{"/v1/responses", `{"model":"chat-prod","input":"hi"}`, false, gpt},
		{"/v1/responses", `{"model":"chat-prod","input":"hi","stream":true}`, true, gpt},
		{"/v1/messages", messagesBody, false, claude},
		{"/v1/messages", messagesStreamBody(), true, claude},
		{"/v1/messages/count_tokens", `{"model":"chat-prod","messages":[{"role":"user","content":"hi"}]}`, false, claude},
		{"/v1/chat/completions", chatBody("chat-prod", true), true, claude},
	}
	const rounds = 8
	var wg sync.WaitGroup
	errs := make(chan string, rounds*len(reqs))
	for i := 0; i < rounds; i++ {
		for _, rq := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodPost, e.front.URL+rq.path, strings.NewReader(rq.body))
				req.Header.Set("X-Api-Key", callerKey)
				resp, err := client.Do(req)
				if err != nil {
					errs <- rq.path + ": " + err.Error()
					return
				}
				defer resp.Body.Close()
				b, err := io.ReadAll(resp.Body)
				switch {
				case err != nil:
					errs <- rq.path + ": " + err.Error()
				case resp.StatusCode != 200 || resp.Header.Get("X-Aisix-Served-By") != rq.served:
					errs <- rq.path + ": " + resp.Status + " " + resp.Header.Get("X-Aisix-Attempts") + " " + string(b)
				case rq.stream && (bytes.Contains(b, []byte("event: error")) || !bytes.Contains(b, []byte("hello"))):
					errs <- rq.path + ": " + string(b)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for s := range errs {
		t.Error(s)
	}
}

// TestMessagesFailover: a Messages caller on OpenAI targets (translated)
// whose primary is refused, reset, 5xx or 429, plain and streaming.
func TestMessagesFailover(t *testing.T) {
	for _, f := range primaryFaults {
		t.Run(f.name+"/plain", func(t *testing.T) {
			e, _, sec := faultPair(t, f)
			r := e.do(http.MethodPost, "/v1/messages", "", messagesBody, "X-Api-Key", callerKey)
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
			if m := decodeMessage(t, r.body); m.Model != "chat-prod" || len(m.Content) != 1 || m.Content[0].Text != "hello from "+epSecondary {
				t.Errorf("answer: %s", r.body)
			}
			if p := sec.Requests()[0].Path; p != "/v1/chat/completions" {
				t.Errorf("upstream path %s", p)
			}
		})
		t.Run(f.name+"/stream", func(t *testing.T) {
			e, _, _ := faultPair(t, f)
			r := e.sse("/v1/messages", "", messagesStreamBody(), "X-Api-Key", callerKey)
			if r.status != 200 {
				t.Fatalf("status %d:\n%s", r.status, r.raw)
			}
			wantServed(t, r.header, epSecondary, epPrimary+"="+f.label+","+epSecondary+"=200")
			if got := names(r.events); !reflect.DeepEqual(got, textOrder) {
				t.Errorf("events = %v:\n%s", got, r.raw)
			}
			if got := messagesText(t, r); got != "hello from "+epSecondary {
				t.Errorf("text = %q", got)
			}
		})
	}
	// An Anthropic primary refused or reset fails over to the OpenAI target.
	for _, b := range []proxytest.Behavior{nil, proxytest.Reset()} {
		var ant *proxytest.AnthropicUpstream
		if b == nil {
			ant = proxytest.NewAnthropic(claude)
			ant.Close()
		} else {
			ant = anthropicUpstream(t, claude, b)
		}
		e := newEnv(t, mixed(ant, upstream(t, gpt), true, storage.Routing{}))
		r := e.sse("/v1/messages", "", messagesStreamBody(), "X-Api-Key", callerKey)
		wantServed(t, r.header, gpt, claude+"=transport_error,"+gpt+"=200")
		if got := messagesText(t, r); got != "hello from gpt" {
			t.Errorf("text = %q", got)
		}
	}
}

// lineWriter collects log lines and signals each one.
type lineWriter struct {
	mu    sync.Mutex
	lines []map[string]any
	wrote chan struct{}
}

func (l *lineWriter) Write(p []byte) (int, error) {
	var m map[string]any
	_ = json.Unmarshal(p, &m)
	l.mu.Lock()
	l.lines = append(l.lines, m)
	l.mu.Unlock()
	l.wrote <- struct{}{}
	return len(p), nil
}

// TestEndpointsAccessLog: the access line names the endpoint (chat's
// line has none), with the stream flag and the target that served.
func TestEndpointsAccessLog(t *testing.T) {
	lw := &lineWriter{wrote: make(chan struct{}, 16)}
	e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt), false, storage.Routing{}), func(o *proxy.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(lw, nil))
	})
	for _, tt := range []struct {
		path, body, endpoint string
		stream               bool
	}{
		{"/v1/embeddings", `{"model":"chat-prod","input":"x"}`, "embeddings", false},
		{"/v1/completions", `{"model":"chat-prod","prompt":"x","stream":true}`, "completions", true},
		{"/v1/responses", `{"model":"chat-prod","input":"x","stream":true}`, "responses", true},
		{"/v1/messages", messagesStreamBody(), "messages", true},
		{"/v1/messages/count_tokens", `{"model":"chat-prod","messages":[{"role":"user","content":"x"}]}`, "messages.count_tokens", false},
		{"/v1/chat/completions", chatBody("chat-prod", false), "", false},
	} {
		r := e.sse(tt.path, callerKey, tt.body)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tt.path, r.status, r.raw)
		}
		select {
		case <-lw.wrote:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no access line", tt.path)
		}
		lw.mu.Lock()
		m := lw.lines[len(lw.lines)-1]
		lw.mu.Unlock()
		ep, _ := m["endpoint"].(string)
		if m["msg"] != "request" || ep != tt.endpoint || m["stream"] != tt.stream || m["served_by"] != gpt || m["status"] != 200.0 {
			t.Errorf("%s: access line %v", tt.path, m)
		}
	}
}

// TestResponsesStreamLargeEvents: a Responses stream repeats whole output
// items: an image generation call's base64 result in
// response.output_item.done (before any text delta, so held until
// commit), its partial images, and all of it again in
// response.completed. Events of a few MB each go through as they are.
func TestResponsesStreamLargeEvents(t *testing.T) {
	img := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 7}, 500_000)) // 3.3 MB of base64
	for _, partials := range []int{0, 2} {
		b := proxytest.ResponseStream(proxytest.ResponseStreamOptions{Image: img, PartialImages: partials})
		prim := upstream(t, epPrimary, b)
		e := newEnv(t, pair(prim, upstream(t, epSecondary), storage.Routing{}))
		r := e.sse("/v1/responses", callerKey, `{"model":"chat-prod","input":"Draw a unicorn.","tools":[{"type":"image_generation"}],"stream":true}`)
		if r.status != 200 {
			t.Fatalf("partials %d: status %d %.500s", partials, r.status, r.raw)
		}
		wantServed(t, r.header, epPrimary, epPrimary+"=200")
		ref := upstream(t, epPrimary, b)
		if want := withAlias(direct(t, ref, "/v1/responses", prim.Requests()[0].Body), "chat-prod"); !reflect.DeepEqual(r.events, want) {
			t.Errorf("partials %d: %d events relayed, want the upstream's %d as they are; last %q", partials, len(r.events), len(want), names(r.events[len(r.events)-1:]))
		}
	}
}

// TestUnsupportedTargetLast: when a target that was called failed, a
// later target skipped as unsupported does not replace its failure: the
// caller gets the 429 and its Retry-After, not a 400.
func TestUnsupportedTargetLast(t *testing.T) {
	e := newEnv(t, mixed(anthropicUpstream(t, claude), upstream(t, gpt, proxytest.RateLimited("9")), false, storage.Routing{}))
	r := e.do(http.MethodPost, "/v1/embeddings", callerKey, `{"model":"chat-prod","input":"x"}`)
	wantHeader(t, r.header, "X-Aisix-Attempts", gpt+"=429,"+claude+"=unsupported_endpoint")
	if r.status != 429 || r.header.Get("Retry-After") != "9" || !strings.Contains(string(r.body), "Rate limit reached") {
		t.Errorf("answer %d (Retry-After %q) %s, want gpt's 429", r.status, r.header.Get("Retry-After"), r.body)
	}
	// A Messages caller whose body the OpenAI target cannot carry, after
	// the Anthropic target failed: the Anthropic target's failure.
	ant := anthropicUpstream(t, claude, proxytest.AnthropicOverloaded())
	e = newEnv(t, mixed(ant, upstream(t, gpt), true, storage.Routing{}))
	body := `{"model":"chat-prod","max_tokens":100,"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"web_search_20250305","name":"web_search"}]}`
	r = e.do(http.MethodPost, "/v1/messages", "", body, "X-Api-Key", callerKey)
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=529,"+gpt+"=unsupported_request")
	wantAnthropicError(t, r, 529, "overloaded_error")
}

// TestStreamCallerGone: a caller that hangs up mid-stream, on the
// Responses API and on Messages (native and translated), cancels the
// upstream and says nothing about the target (the access line says 499
// client_closed).
func TestStreamCallerGone(t *testing.T) {
	for _, tt := range []struct {
		name, path, body, delta string
		claudeFirst             bool
		ant                     proxytest.Behavior
		oai                     proxytest.Behavior
	}{
		{"responses", "/v1/responses", `{"model":"chat-prod","input":"hi","stream":true}`, "event: response.output_text.delta", false,
			nil, proxytest.ResponseStream(proxytest.ResponseStreamOptions{WaitAfter: 1, Wait: make(chan struct{})})},
		{"messages native", "/v1/messages", messagesStreamBody(), "event: content_block_delta", true,
			proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{WaitAfter: 1, Wait: make(chan struct{})}), nil},
		{"messages translated", "/v1/messages", messagesStreamBody(), "event: content_block_delta", false,
			nil, proxytest.Stream(proxytest.StreamOptions{WaitAfter: 1, Wait: make(chan struct{})})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var ant *proxytest.AnthropicUpstream
			if tt.ant != nil {
				ant = anthropicUpstream(t, claude, tt.ant)
			} else {
				ant = anthropicUpstream(t, claude)
			}
			oai := upstream(t, gpt)
			if tt.oai != nil {
				oai.Script(tt.oai)
			}
			lw := &lineWriter{wrote: make(chan struct{}, 16)}
			e := newEnv(t, mixed(ant, oai, tt.claudeFirst, storage.Routing{}), func(o *proxy.Options) {
				o.Logger = slog.New(slog.NewJSONHandler(lw, nil))
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+tt.path, strings.NewReader(tt.body))
			req.Header.Set("X-Api-Key", callerKey)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Fatalf("stream ended before its first delta: %v", err)
				}
				if strings.TrimSpace(line) == tt.delta {
					break
				}
			}
			cancel() // the caller hangs up
			resp.Body.Close()
			select {
			case <-lw.wrote:
			case <-time.After(10 * time.Second):
				t.Fatal("no access line: the request is still running")
			}
			lw.mu.Lock()
			m := lw.lines[len(lw.lines)-1]
			lw.mu.Unlock()
			if m["status"] != 499.0 || m["outcome"] != "client_closed" {
				t.Errorf("access line %v", m)
			}
			wantTargetState(t, e, claude, "", "")
			wantTargetState(t, e, gpt, "", "")
		})
	}
}
