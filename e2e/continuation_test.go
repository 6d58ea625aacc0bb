package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStreamContinuation: through the real binary, chat-prod with
// stream_failure continue; the primary's stream is cut after 40 of 60
// tokens and the secondary, sent the conversation with those 40 as an
// assistant prefill, finishes the answer in the same caller stream: all
// 60 tokens once, one role chunk, one finish_reason, one [DONE] after the
// seam comment; the access line says it was continued.
func TestStreamContinuation(t *testing.T) {
	primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
		s := startSSE(w, c)
		if !s.role() {
			return
		}
		for i := range 40 {
			if !s.content(fmt.Sprintf("tok%d ", i)) {
				return
			}
		}
		panic(http.ErrAbortHandler) // the connection is closed mid-answer
	})
	secondary := newUpstream(t, "secondary", "", func(w http.ResponseWriter, c *upstreamCall) {
		s := startSSE(w, c)
		if !s.role() {
			return
		}
		for i := 40; i < 60; i++ {
			if !s.content(fmt.Sprintf("tok%d ", i)) {
				return
			}
		}
		s.finish()
	})
	g := startGateway(t, serveOptions{})
	cfg := fastTimeouts
	cfg.routing = map[string]any{"stream_failure": map[string]any{"mode": "continue"}}
	setupTutorial(t, g, primary.base, secondary.base, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := g.chat(ctx, callerKey, chatBody("chat-prod", true), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the stream: %v", err)
	}
	evs, _ := readSSE(strings.NewReader(string(raw)), time.Now(), nil)
	var content strings.Builder
	for _, ev := range evs {
		content.WriteString(contentOf(ev))
	}
	if want := wantTokens(60); content.String() != want {
		t.Errorf("content %q\nwant    %q", content.String(), want)
	}
	s := string(raw)
	if strings.Count(s, "data: [DONE]") != 1 || lastEvent(evs).data != "[DONE]" || strings.Contains(s, "event: error") {
		t.Errorf("want one [DONE] at the end and no error event:\n%s", s)
	}
	if strings.Count(s, `"role":"assistant"`) != 1 || strings.Count(s, `"finish_reason":"stop"`) != 1 {
		t.Errorf("want one role chunk and one finish_reason:\n%s", s)
	}
	if !strings.Contains(s, ": aisix-continued from=gpt-4o-primary to=gpt-4o-secondary\n\ndata: [DONE]") {
		t.Errorf("no seam comment before [DONE]:\n%s", s[max(len(s)-300, 0):])
	}
	c := secondary.next(t, time.Second)
	var body struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(c.body, &body); err != nil || len(body.Messages) != 2 {
		t.Fatalf("secondary's body %s: %v", c.body, err)
	}
	if m := body.Messages[1]; m.Role != "assistant" || m.Content != wantTokens(40) {
		t.Errorf("secondary's last message %s %q, want the 40 tokens sent as the assistant's", m.Role, m.Content)
	}
	line := g.accessLine(t, resp.Header.Get("X-Aisix-Call-Id"), 5*time.Second)
	if line["continued"] != 1.0 || line["attempts"] != 2.0 || line["status"] != 200.0 ||
		!strings.Contains(fmt.Sprint(line["trail"]), "gpt-4o-secondary=continued") {
		t.Errorf("access line %v", line)
	}
}
