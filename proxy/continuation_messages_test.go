package proxy_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// Continuation and hedging for Messages callers (/v1/messages streams),
// with Anthropic-wire and OpenAI-wire targets on either side of the seam.
// The fakes speak each provider's documented stream (proxytest), so the
// caller's stream is checked against Anthropic's event order, not against
// what our translator writes.

const messagesContBody = `{"model":"chat-prod","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Count."}]}`

// claudePair is chat-prod over claude-a (on a) then claude-b (on b).
func claudePair(a, b *proxytest.AnthropicUpstream, r storage.Routing, mods ...func(*storage.Model)) storage.Dataset {
	r.Targets = targets("claude-a", "claude-b")
	return storage.Dataset{
		ProviderKeys: []storage.ProviderKey{anthropicKey("pk-a", a), anthropicKey("pk-b", b)},
		Models:       []storage.Model{claudeModel("claude-a", "pk-a", mods...), claudeModel("claude-b", "pk-b", mods...), routingModel("chat-prod", r)},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
}

// msgStream is a Messages stream as a caller reads it.
type msgStream struct {
	text       string
	starts     int // message_start events
	stops      int // message_stop events
	stopReason string
	usage      map[string]int64 // the final message_delta's usage
}

// readMessages reads a Messages stream and checks Anthropic's event order:
// one message_start first, content blocks opened before their deltas and
// closed once, indexes in order, one message_delta, message_stop last.
func readMessages(t *testing.T, r streamResult) msgStream {
	t.Helper()
	var m msgStream
	var b strings.Builder
	open, next := -1, 0
	for i, ev := range r.events {
		var v struct {
			Type         string `json:"type"`
			Index        int    `json:"index"`
			ContentBlock struct {
				Type string `json:"type"`
			} `json:"content_block"`
			Delta struct {
				Type       string `json:"type"`
				Text       string `json:"text"`
				StopReason string `json:"stop_reason"`
			} `json:"delta"`
			Usage map[string]int64 `json:"usage"`
		}
		if err := json.Unmarshal([]byte(ev.data), &v); err != nil {
			t.Fatalf("event %q is not JSON: %v", ev.data, err)
		}
		if v.Type != ev.name {
			t.Errorf("event %q carries type %q", ev.name, v.Type)
		}
		switch v.Type {
		case "message_start":
			m.starts++
			if i != 0 {
				t.Errorf("message_start at event %d", i)
			}
		case "content_block_start":
			if open >= 0 || v.Index != next {
				t.Errorf("content_block_start index %d while block %d is open (next %d)", v.Index, open, next)
			}
			open, next = v.Index, v.Index+1
		case "content_block_delta":
			if v.Index != open {
				t.Errorf("delta for block %d while block %d is open", v.Index, open)
			}
			b.WriteString(v.Delta.Text)
		case "content_block_stop":
			if v.Index != open {
				t.Errorf("content_block_stop for block %d while block %d is open", v.Index, open)
			}
			open = -1
		case "message_delta":
			if m.stopReason != "" {
				t.Errorf("a second message_delta with a stop_reason")
			}
			m.stopReason, m.usage = v.Delta.StopReason, v.Usage
		case "message_stop":
			m.stops++
			if i != len(r.events)-1 {
				t.Errorf("message_stop is not the last event")
			}
		case "error":
			t.Errorf("error event: %s", ev.data)
		}
	}
	m.text = b.String()
	return m
}

// checkSeamlessMessages asserts that a continued Messages stream reads as
// one answer with the seam comment before message_stop.
func checkSeamlessMessages(t *testing.T, r streamResult, from, to string) msgStream {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	m := readMessages(t, r)
	if m.starts != 1 || m.stops != 1 || m.stopReason == "" {
		t.Errorf("message_start %d, message_stop %d, stop_reason %q; want one each; raw:\n%s", m.starts, m.stops, m.stopReason, r.raw)
	}
	seam := ": aisix-continued from=" + from + " to=" + to + "\n\nevent: message_stop"
	if !strings.Contains(r.raw, seam) {
		t.Errorf("no seam comment %q before message_stop; raw tail:\n%s", seam, r.raw[max(len(r.raw)-400, 0):])
	}
	return m
}

// TestMessagesContinuationNative: a Messages caller on two Anthropic
// targets; the first is cut after 8 of 12 text deltas and the second
// continues from the prefill, its message_start and block start folded
// into the caller's stream.
func TestMessagesContinuationNative(t *testing.T) {
	all := words(0, 12)
	a := anthropicUpstream(t, "a", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all, CutAfter: 8}))
	b := anthropicUpstream(t, "b", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all[8:]}))
	logs, rec := &syncBuffer{}, &recorder{}
	e := newEnv(t, claudePair(a, b, continueRouting(1)), infoLogs(logs), withObserver(rec))
	r := e.streamAt("/v1/messages", messagesContBody)
	m := checkSeamlessMessages(t, r, "claude-a", "claude-b")
	if want := strings.Join(all, ""); m.text != want {
		t.Errorf("text = %q\nwant   %q", m.text, want)
	}
	// Usage: b reports 10 in and 9 out; the cut a reported 10 in (its
	// message_start) and its 8 deltas count as 8 out.
	if m.usage["input_tokens"] != 20 || m.usage["output_tokens"] != 17 {
		t.Errorf("final usage = %v, want 20 in and 17 out", m.usage)
	}
	reqs := b.Requests()
	if len(reqs) != 1 {
		t.Fatalf("claude-b got %d requests", len(reqs))
	}
	role, content := lastTurn(t, reqs[0].Body)
	if role != "assistant" || content != strings.Join(all[:8], "") {
		t.Errorf("claude-b's last turn = %s %q, want the assistant prefill of the 8 deltas sent", role, content)
	}
	line := accessLine(t, logs, r.header.Get("X-Aisix-Call-Id"))
	if line["continued"] != 1.0 || line["trail"] != "claude-a=200,claude-a=stream_aborted,claude-b=continued" {
		t.Errorf("access line = %v", line)
	}
	atts, _ := rec.take()
	if len(atts) != 2 || atts[1].Reason != "continuation" || atts[1].From == nil || atts[1].From.Name != "claude-a" {
		t.Errorf("attempt records = %+v", atts)
	}
}

// lastTurn is the last message of a Messages or chat body, its content
// as text.
func lastTurn(t *testing.T, body []byte) (role, content string) {
	t.Helper()
	var b struct {
		Messages []struct {
			Role    string          `json:"role"`
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(body, &b); err != nil || len(b.Messages) == 0 {
		t.Fatalf("upstream body %s: %v", body, err)
	}
	msg := b.Messages[len(b.Messages)-1]
	var s string
	if json.Unmarshal(msg.Content, &s) == nil {
		return msg.Role, s
	}
	var parts []struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(msg.Content, &parts)
	for _, p := range parts {
		s += p.Text
	}
	return msg.Role, s
}

// TestMessagesContinuationAcrossWires: a Messages caller whose cut target
// and continuing target speak different wires, both ways: Anthropic cut
// and an OpenAI-wire target continuing (its chunks translated into the
// caller's events), and the reverse.
func TestMessagesContinuationAcrossWires(t *testing.T) {
	all := words(0, 12)
	t.Run("anthropic then openai", func(t *testing.T) {
		ant := anthropicUpstream(t, "claude", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all, CutAfter: 8}))
		oai := upstream(t, "gpt", proxytest.Stream(proxytest.StreamOptions{Chunks: all[8:], RoleChunk: true}))
		e := newEnv(t, mixed(ant, oai, true, continueRouting(1)))
		m := checkSeamlessMessages(t, e.streamAt("/v1/messages", messagesContBody), claude, gpt)
		if want := strings.Join(all, ""); m.text != want {
			t.Errorf("text = %q\nwant   %q", m.text, want)
		}
		reqs := oai.Requests()
		if len(reqs) != 1 {
			t.Fatalf("gpt got %d requests", len(reqs))
		}
		if role, content := lastTurn(t, reqs[0].Body); role != "assistant" || content != strings.Join(all[:8], "") {
			t.Errorf("gpt's last message = %s %q", role, content)
		}
	})
	t.Run("openai then anthropic", func(t *testing.T) {
		oai := upstream(t, "gpt", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 8}))
		ant := anthropicUpstream(t, "claude", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all[8:]}))
		e := newEnv(t, mixed(ant, oai, false, continueRouting(1)))
		m := checkSeamlessMessages(t, e.streamAt("/v1/messages", messagesContBody), gpt, claude)
		if want := strings.Join(all, ""); m.text != want {
			t.Errorf("text = %q\nwant   %q", m.text, want)
		}
		if role, content := lastTurn(t, ant.Requests()[0].Body); role != "assistant" || content != strings.Join(all[:8], "") {
			t.Errorf("claude's last turn = %s %q", role, content)
		}
	})
}

// TestMessagesContinuationRefused: the continuing target answers the
// prefill with Anthropic's 400; the caller gets the cut stream's own
// terminal error event in Anthropic's shape, never the 400, and the
// target is passed over for the next continuation.
func TestMessagesContinuationRefused(t *testing.T) {
	all := words(0, 10)
	a := anthropicUpstream(t, "a", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all, CutAfter: 5}))
	b := anthropicUpstream(t, "b", proxytest.AnthropicError(http.StatusBadRequest, "invalid_request_error",
		"This model does not support assistant message prefill. The conversation must end with a user message."))
	e := newEnv(t, claudePair(a, b, continueRouting(1), noCooldown))
	r := e.streamAt("/v1/messages", messagesContBody)
	ev, ok := r.errorEvent()
	if !ok || !strings.Contains(ev.data, `"type":"error"`) || !strings.Contains(ev.data, "cut mid-answer") {
		t.Fatalf("want the cut stream's terminal error event; raw:\n%s", r.raw)
	}
	if strings.Contains(r.raw, "prefill") || strings.Contains(r.raw, "message_stop") {
		t.Errorf("the continuation's refusal reached the caller:\n%s", r.raw)
	}
	if b.Hits() != 1 {
		t.Errorf("claude-b got %d requests, want 1", b.Hits())
	}
	// The refusal is remembered: the next cut stream is not sent to b.
	r = e.streamAt("/v1/messages", messagesContBody)
	if _, ok := r.errorEvent(); !ok {
		t.Errorf("second cut stream: want its terminal error; raw:\n%s", r.raw)
	}
	if b.Hits() != 1 {
		t.Errorf("claude-b got %d requests after refusing a prefill, want it passed over", b.Hits())
	}
}

// TestContinuationSeamRestart: an OpenAI-wire target that answers the
// prefill by starting the answer again: the repeat is dropped at the
// seam, so the caller has every word once.
func TestContinuationSeamRestart(t *testing.T) {
	all := words(0, 30)
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 20}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true}))
	e := newEnv(t, pair(primary, secondary, continueRouting(1)))
	r := e.stream("chat-prod")
	if got, want := r.content(t), strings.Join(all, ""); got != want {
		t.Errorf("content = %q\nwant      %q", got, want)
	}
	checkSeamless(t, r, "gpt-4o-primary", "gpt-4o-secondary")
}

// TestContinuationSeamMismatch: an OpenAI-wire target that answers the
// prefill with a new reply that begins as the answer did and then says
// something else: nothing of it reaches the caller, who gets the cut
// stream's terminal error, and the target is passed over for later
// continuations.
func TestContinuationSeamMismatch(t *testing.T) {
	all := words(0, 30)
	other := append(append([]string{}, all[:12]...), " and", " then", " something", " else")
	primary := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true, CutAfter: 20}))
	secondary := upstream(t, "secondary", proxytest.Stream(proxytest.StreamOptions{Chunks: other, RoleChunk: true}))
	rec := &recorder{}
	e := newEnv(t, pair(primary, secondary, continueRouting(1), noCooldown), withObserver(rec))
	r := e.stream("chat-prod")
	if got, want := r.content(t), strings.Join(all[:20], ""); got != want {
		t.Errorf("content = %q\nwant      %q", got, want)
	}
	if ev, ok := r.errorEvent(); !ok || !strings.Contains(ev.data, "stream_aborted") || strings.Contains(r.raw, "something") {
		t.Errorf("want the cut stream's terminal error and nothing of the new reply; raw:\n%s", r.raw)
	}
	atts, _ := rec.take()
	if len(atts) != 2 || atts[1].Reason != "continuation_mismatch" || atts[1].Cooldown {
		t.Errorf("attempt records = %+v, want the continuation as continuation_mismatch without a cooldown", atts)
	}
	e.stream("chat-prod")
	wantHits(t, secondary, 1) // passed over: it does not take a prefill
}

// TestMessagesHedge: a Messages caller whose Anthropic primary is slow to
// its first content is hedged to an OpenAI-wire secondary, whose answer
// reaches the caller as Anthropic's events; the primary is cancelled.
func TestMessagesHedge(t *testing.T) {
	ant := anthropicUpstream(t, "claude", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{FirstDelay: 3 * time.Second}))
	oai := upstream(t, "gpt", proxytest.Stream(proxytest.StreamOptions{RoleChunk: true}))
	rec := &recorder{}
	e := newEnv(t, mixed(ant, oai, true, hedgeRouting(200)), withObserver(rec))
	r := e.streamAt("/v1/messages", messagesContBody)
	if r.status != http.StatusOK {
		t.Fatalf("status %d: %s", r.status, r.raw)
	}
	m := readMessages(t, r)
	if m.text != "hello from gpt" || m.starts != 1 || m.stops != 1 {
		t.Errorf("stream = %+v; raw:\n%s", m, r.raw)
	}
	if r.took < 200*time.Millisecond || r.took > 2*time.Second {
		t.Errorf("took %v: want about the 200 ms hedge deadline, well under the primary's 3 s", r.took)
	}
	wantHeader(t, r.header, "X-Aisix-Served-By", gpt)
	wantHeader(t, r.header, "X-Aisix-Attempts", claude+"=hedge_lost,"+gpt+"=200")
	var won, lost int
	deadline := time.Now().Add(5 * time.Second)
	for won+lost < 2 && time.Now().Before(deadline) {
		atts, _ := rec.take()
		for _, a := range atts {
			switch a.Hedge {
			case observe.HedgeWon:
				won++
			case observe.HedgeLost:
				lost++
			}
		}
		if won+lost < 2 {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if won != 1 || lost != 1 {
		t.Errorf("hedge attempts: %d won, %d lost", won, lost)
	}
}

// TestMessagesContinuationSeamRestart: a Messages caller's cut stream
// continued by an OpenAI-wire target that starts the answer again: the
// repeat is dropped at the seam (in the translated events too), so the
// caller's one text block has every word once.
func TestMessagesContinuationSeamRestart(t *testing.T) {
	all := words(0, 30)
	ant := anthropicUpstream(t, "claude", proxytest.AnthropicStream(proxytest.AnthropicStreamOptions{Chunks: all, CutAfter: 20}))
	oai := upstream(t, "gpt", proxytest.Stream(proxytest.StreamOptions{Chunks: all, RoleChunk: true}))
	e := newEnv(t, mixed(ant, oai, true, continueRouting(1)))
	m := checkSeamlessMessages(t, e.streamAt("/v1/messages", messagesContBody), claude, gpt)
	if want := strings.Join(all, ""); m.text != want {
		t.Errorf("text = %q\nwant   %q", m.text, want)
	}
}
