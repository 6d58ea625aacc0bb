package proxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// words are n content chunks " w0" … " w<n-1>".
func words(from, to int) []string {
	out := make([]string, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(" w%d", i))
	}
	return out
}

func continueRouting(n int) storage.Routing {
	return storage.Routing{StreamFailure: &storage.StreamFailure{Mode: storage.StreamFailureContinue, MaxContinuations: n}}
}

const usageBody = `{"model":"chat-prod","messages":[{"role":"user","content":"Count."}],"stream":true,"stream_options":{"include_usage":true}}`

// lastMessage is the last message of a chat-completions body.
func lastMessage(t *testing.T, body []byte) (role, content string) {
	t.Helper()
	var b struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Messages) == 0 {
		t.Fatalf("upstream body %s: %v", body, err)
	}
	m := b.Messages[len(b.Messages)-1]
	return m.Role, m.Content
}

// checkSeamless asserts that a stream reads as one answer: one role
// chunk, one finish_reason, one id and created, one [DONE] at the end,
// the seam comment before it.
func checkSeamless(t *testing.T, r streamResult, from, to string) {
	t.Helper()
	if !r.done() || strings.Count(r.raw, "data: [DONE]") != 1 {
		t.Errorf("want exactly one [DONE], at the end; raw:\n%s", r.raw)
	}
	if _, ok := r.errorEvent(); ok {
		t.Errorf("error event in a continued stream:\n%s", r.raw)
	}
	if n := strings.Count(r.raw, `"role":"assistant"`); n != 1 {
		t.Errorf("%d role chunks, want 1", n)
	}
	ids, finishes := map[string]bool{}, 0
	for _, ev := range r.events {
		if ev.data == "[DONE]" {
			continue
		}
		var ch struct {
			ID      string `json:"id"`
			Created int64  `json:"created"`
			Model   string `json:"model"`
			Choices []struct {
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(ev.data), &ch); err != nil {
			t.Fatalf("chunk %q: %v", ev.data, err)
		}
		ids[fmt.Sprint(ch.ID, "/", ch.Created, "/", ch.Model)] = true
		for _, c := range ch.Choices {
			if c.FinishReason != nil {
				finishes++
			}
		}
	}
	if len(ids) != 1 {
		t.Errorf("chunks carry several id/created/model values: %v", ids)
	}
	if finishes != 1 {
		t.Errorf("%d finish_reason values, want 1", finishes)
	}
	seam := ": aisix-continued from=" + from + " to=" + to + "\n\ndata: [DONE]"
	if !strings.Contains(r.raw, seam) {
		t.Errorf("no seam comment %q before [DONE]; raw tail:\n%s", seam, r.raw[max(len(r.raw)-400, 0):])
	}
}

func TestContinuationCutMidStream(t *testing.T) {
	all := words(0, 60)
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 40}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: all[40:], RoleChunk: true}))
	logs, rec := &syncBuffer{}, &recorder{}
	e := newEnv(t, pair(primary, secondary, continueRouting(1)), infoLogs(logs), withObserver(rec))
	r := e.streamBody(usageBody)
	if r.status != http.StatusOK {
		t.Fatalf("status = %d: %s", r.status, r.raw)
	}
	if got, want := r.content(t), strings.Join(all, ""); got != want {
		t.Errorf("content = %q\nwant      %q", got, want)
	}
	checkSeamless(t, r, "gpt-4o-primary", "gpt-4o-secondary")
	if !strings.Contains(r.raw, `"id":"chatcmpl-primary"`) || strings.Contains(r.raw, "chatcmpl-secondary") {
		t.Errorf("chunks do not all carry the first attempt's id")
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", "gpt-4o-primary")
	wantHits(t, secondary, 1)
	role, content := lastMessage(t, secondary.Requests()[0].Body)
	if role != "assistant" || content != strings.Join(all[:40], "") {
		t.Errorf("secondary's last message = %s %q, want assistant with the 40 chunks sent", role, content)
	}
	// Usage: the secondary reports 10 in, 9 out; the cut primary reported
	// nothing, so its 40 chunks count as 40 tokens out, its prompt as the
	// secondary's less them (here 0).
	last := r.events[len(r.events)-2].data
	if !strings.Contains(last, `"usage":{"prompt_tokens":10,"completion_tokens":49,"total_tokens":59}`) {
		t.Errorf("final usage chunk = %s", last)
	}
	st := e.reg.Status("id-gpt-4o-primary")
	if st.State != "cooldown" {
		t.Errorf("cut primary state = %s, want cooldown", st.State)
	}
	line := accessLine(t, logs, r.header.Get("X-Aisix-Call-Id"))
	if line["continued"] != 1.0 || line["attempts"] != 2.0 || line["tokens_out"] != 49.0 ||
		line["trail"] != "gpt-4o-primary=200,gpt-4o-primary=stream_aborted,gpt-4o-secondary=continued" {
		t.Errorf("access line = %v", line)
	}
	atts, _ := rec.take()
	if len(atts) != 2 {
		t.Fatalf("%d attempt records, want 2", len(atts))
	}
	if a := atts[0]; a.Target.Name != "gpt-4o-primary" || a.Outcome != "stream_aborted" {
		t.Errorf("first record = %s %s", a.Target.Name, a.Outcome)
	}
	if a := atts[1]; a.Target.Name != "gpt-4o-secondary" || a.Outcome != "ok" || a.Reason != "continuation" ||
		a.From.Name != "gpt-4o-primary" || a.N != 2 || a.Usage.Output != 9 {
		t.Errorf("continuation record = %s %s %s from %v n=%d usage %+v", a.Target.Name, a.Outcome, a.Reason, a.From, a.N, a.Usage)
	}
}

func TestContinuationStall(t *testing.T) {
	all := words(0, 30)
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, StallAfter: 20}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: all[20:], RoleChunk: true}))
	e := newEnv(t, pair(primary, secondary, continueRouting(1), withStreamTimeout(300)))
	r := e.stream("chat-prod")
	if got, want := r.content(t), strings.Join(all, ""); got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	checkSeamless(t, r, "gpt-4o-primary", "gpt-4o-secondary")
	if r.took < 300*time.Millisecond {
		t.Errorf("continued after %v, before the 300ms gap budget", r.took)
	}
	wantUnder(t, r.took, 3*time.Second)
	_, content := lastMessage(t, secondary.Requests()[0].Body)
	if content != strings.Join(all[:20], "") {
		t.Errorf("prefill = %q", content)
	}
}

func TestContinuationPrefillRejected(t *testing.T) {
	all := words(0, 10)
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 5}))
	secondary := upstream(t, "secondary", proxytest.Status(http.StatusBadRequest,
		`{"error":{"message":"This model does not support assistant message prefill. The conversation must end with a user message.","type":"invalid_request_error"}}`))
	e := newEnv(t, pair(primary, secondary, continueRouting(1)))
	r := e.stream("chat-prod")
	if got := r.content(t); got != strings.Join(all[:5], "") {
		t.Errorf("content = %q", got)
	}
	ev, ok := r.errorEvent()
	if !ok || !strings.Contains(ev.data, `"type":"stream_aborted"`) {
		t.Fatalf("want the original stream_aborted error event; raw:\n%s", r.raw)
	}
	if strings.Contains(r.raw, "prefill") || strings.Contains(r.raw, "invalid_request_error") {
		t.Errorf("the continuation's 400 reached the caller:\n%s", r.raw)
	}
	if r.done() {
		t.Errorf("[DONE] after a failed continuation")
	}
	wantHits(t, secondary, 1)
}

func TestContinuationOffIsTerminal(t *testing.T) {
	for _, r := range []storage.Routing{{}, {StreamFailure: &storage.StreamFailure{Mode: storage.StreamFailureError}}} {
		primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{CutAfter: 2}))
		secondary := upstream(t, "secondary")
		e := newEnv(t, pair(primary, secondary, r))
		res := e.stream("chat-prod")
		if _, ok := res.errorEvent(); !ok || res.done() || res.content(t) != "hello from" {
			t.Errorf("mode %v: want today's terminal error; raw:\n%s", r.StreamFailure, res.raw)
		}
		wantHits(t, secondary, 0)
	}
}

func TestContinuationNotForToolCalls(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{
		Chunks: []string{"let me look"}, Tools: []proxytest.ToolCall{{ID: "c1", Name: "f", Fragments: []string{`{"a":`}}}, NoFinish: true, NoDone: true}))
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, continueRouting(1)))
	r := e.stream("chat-prod")
	if _, ok := r.errorEvent(); !ok {
		t.Errorf("a cut tool-call stream was not ended with the error event:\n%s", r.raw)
	}
	wantHits(t, secondary, 0)
}

func TestContinuationOnAnthropic(t *testing.T) {
	all := words(0, 12)
	oai := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 8}))
	ant := anthropicUpstream(t, "claude", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all[8:]}))
	e := newEnv(t, mixed(ant, oai, false, continueRouting(1)))
	r := e.streamBody(usageBody)
	if got, want := r.content(t), strings.Join(all, ""); got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
	checkSeamless(t, r, gpt, claude)
	reqs := ant.Requests()
	if len(reqs) != 1 {
		t.Fatalf("claude got %d requests", len(reqs))
	}
	var b struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(reqs[0].Body, &b); err != nil {
		t.Fatal(err)
	}
	m := b.Messages[len(b.Messages)-1]
	want := strings.Join(all[:8], "")
	if m.Role != "assistant" || !strings.Contains(string(m.Content), want) {
		t.Errorf("claude's last turn = %s %s, want assistant %q", m.Role, m.Content, want)
	}
}

// TestContinuationCost measures a continued stream against an
// uninterrupted one, and what the continuation re-sends.
func TestContinuationCost(t *testing.T) {
	all := words(0, 60)
	gap := 2 * time.Millisecond
	whole := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, Gap: gap}))
	spare := upstream(t, "secondary")
	e := newEnv(t, pair(whole, spare, continueRouting(1)))
	plain := e.stream("chat-prod")
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, Gap: gap, CutAfter: 40}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: all[40:], RoleChunk: true, Gap: gap}))
	e2 := newEnv(t, pair(primary, secondary, continueRouting(1)))
	cont := e2.stream("chat-prod")
	if cont.content(t) != strings.Join(all, "") {
		t.Fatalf("continued content = %q", cont.content(t))
	}
	first, second := len(primary.Requests()[0].Body), len(secondary.Requests()[0].Body)
	t.Logf("uninterrupted %v, continued %v (+%v); continuation body %d bytes vs %d (+%d: the prefill of %d bytes and its message)",
		plain.took, cont.took, cont.took-plain.took, second, first, second-first, len(strings.Join(all[:40], "")))
}

// three is pair with a third target, gpt-4o-third on c.
func three(a, b, c *proxytest.Upstream, r storage.Routing) storage.Dataset {
	ds := pair(a, b, r)
	ds.ProviderKeys = append(ds.ProviderKeys, providerKey("pk-third", c.BaseURL()))
	ds.Models = append(ds.Models, directModel("gpt-4o-third", "pk-third"))
	ds.Models[2].Routing.Targets = targets("gpt-4o-primary", "gpt-4o-secondary", "gpt-4o-third")
	return ds
}

// TestContinuationChain: an in-band error on the primary, a cut on the
// first continuation, and the third target completes the answer, with
// max_continuations 2; the event feed names each seam.
func TestContinuationChain(t *testing.T) {
	all := words(0, 30)
	a := upstream(t, "a", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, ErrorAt: 11}))
	b := upstream(t, "b", proxytest.Stream(proxytest.StreamOptions{Chunks: all[10:], RoleChunk: true, CutAfter: 10}))
	c := upstream(t, "c", proxytest.Stream(proxytest.StreamOptions{Chunks: all[20:], RoleChunk: true}))
	e := newEnv(t, three(a, b, c, continueRouting(2)))
	r := e.stream("chat-prod")
	if got, want := r.content(t), strings.Join(all, ""); got != want {
		t.Fatalf("content = %q\nwant      %q", got, want)
	}
	checkSeamless(t, r, "gpt-4o-secondary", "gpt-4o-third")
	if !strings.Contains(r.raw, ": aisix-continued from=gpt-4o-primary to=gpt-4o-secondary\n\n: aisix-continued from=gpt-4o-secondary to=gpt-4o-third") {
		t.Errorf("seam comments missing; tail:\n%s", r.raw[max(len(r.raw)-300, 0):])
	}
	if _, content := lastMessage(t, c.Requests()[0].Body); content != strings.Join(all[:20], "") {
		t.Errorf("third target's prefill = %q, want the 20 chunks of both attempts", content)
	}
	var details []string
	for _, ev := range events(e.reg, "failover") {
		details = append(details, ev.Target+": "+ev.Detail)
	}
	want := []string{"gpt-4o-secondary: continuing a cut stream from gpt-4o-primary", "gpt-4o-third: continuing a cut stream from gpt-4o-secondary"}
	if strings.Join(details, "|") != strings.Join(want, "|") {
		t.Errorf("failover events = %q, want %q", details, want)
	}
	for _, id := range []string{"id-gpt-4o-primary", "id-gpt-4o-secondary"} {
		if st := e.reg.Status(id); st.State != "cooldown" {
			t.Errorf("%s state = %s, want cooldown", id, st.State)
		}
	}
}

// TestContinuationLimit: with max_continuations 1, a continuation that
// is cut too ends the stream with its terminal error; the third target
// is not called.
func TestContinuationLimit(t *testing.T) {
	all := words(0, 30)
	a := upstream(t, "a", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 10}))
	b := upstream(t, "b", proxytest.Stream(proxytest.StreamOptions{Chunks: all[10:], RoleChunk: true, CutAfter: 10}))
	c := upstream(t, "c")
	e := newEnv(t, three(a, b, c, continueRouting(1)))
	r := e.stream("chat-prod")
	if got := r.content(t); got != strings.Join(all[:20], "") {
		t.Errorf("content = %q", got)
	}
	if _, ok := r.errorEvent(); !ok || r.done() {
		t.Errorf("want the terminal error and no [DONE]:\n%s", r.raw)
	}
	wantHits(t, c, 0)
}

// TestContinuationNotForSeveralChoices: a stream asking for n > 1 ends
// with the terminal error event, as without continuation.
func TestContinuationNotForSeveralChoices(t *testing.T) {
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: words(0, 10), RoleChunk: true, CutAfter: 5}))
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, continueRouting(1)))
	r := e.streamBody(`{"model":"chat-prod","messages":[{"role":"user","content":"Count."}],"stream":true,"n":2}`)
	if _, ok := r.errorEvent(); !ok || r.done() {
		t.Errorf("want the terminal error event:\n%s", r.raw)
	}
	wantHits(t, secondary, 0)
}

// TestContinuationCallerGone: a caller that hangs up while the
// continuation streams cancels the continuation's upstream request and
// cools nobody for it.
func TestContinuationCallerGone(t *testing.T) {
	all := words(0, 20)
	wait := make(chan struct{})
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 5}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: all[5:], RoleChunk: true, WaitAfter: 2, Wait: wait}))
	defer close(wait)
	rec := &recorder{}
	e := newEnv(t, pair(primary, secondary, continueRouting(1)), withObserver(rec))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("chat-prod", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read until the continuation's text arrives, then hang up.
	var got strings.Builder
	buf := make([]byte, 4096)
	for !strings.Contains(got.String(), " w6") {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("stream ended before the continuation: %v\n%s", err, got.String())
		}
	}
	cancel()
	// The continuation attempt is recorded once its relay has noticed
	// the caller is gone: client_closed, and its target not cooled.
	deadline := time.Now().Add(10 * time.Second)
	var atts []observe.Attempt
	for len(atts) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d attempt records, want 2", len(atts))
		}
		a, _ := rec.take()
		atts = append(atts, a...)
		time.Sleep(5 * time.Millisecond)
	}
	if a := atts[1]; a.Target.Name != "gpt-4o-secondary" || a.Outcome != observe.OutcomeClientClosed {
		t.Errorf("continuation record = %s %s, want gpt-4o-secondary client_closed", a.Target.Name, a.Outcome)
	}
	if st := e.reg.Status("id-gpt-4o-secondary"); st.State != "healthy" {
		t.Errorf("secondary state after the caller left = %s, want healthy", st.State)
	}
}

// TestContinuationCostUSD: the access line's cost_usd of a continued
// stream is every attempt's: the cut one's 40 chunks as 40 tokens out at
// its price, and the continuation's reported 10 in and 9 out at its own.
func TestContinuationCostUSD(t *testing.T) {
	all := words(0, 60)
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 40}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: all[40:], RoleChunk: true}))
	ds := pair(primary, secondary, continueRouting(1))
	ds.Models[0].Price = &storage.ModelPrice{Input: 1000, Output: 3000}
	ds.Models[1].Price = &storage.ModelPrice{Input: 2000, Output: 5000}
	logs := &syncBuffer{}
	e := newEnv(t, ds, infoLogs(logs))
	r := e.streamBody(usageBody)
	if got := r.content(t); got != strings.Join(all, "") {
		t.Fatalf("content = %q", got)
	}
	line := accessLine(t, logs, r.header.Get("X-Aisix-Call-Id"))
	want := (40*3000 + 10*2000 + 9*5000) / 1e6
	if got, _ := line["cost_usd"].(float64); got < want*0.999 || got > want*1.001 {
		t.Errorf("access line cost_usd = %v, want %v (the cut attempt's and the continuation's)", line["cost_usd"], want)
	}
	// With no observer at all (no ledger, no metrics) the tokens are still
	// every attempt's.
	if line["tokens_in"] != 10.0 || line["tokens_out"] != 49.0 {
		t.Errorf("access line tokens = %v in, %v out; want 10 and 49", line["tokens_in"], line["tokens_out"])
	}
}
