package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// TestStreamEventsLargerThanBuffer: events far larger than the stream
// reader's buffer (the first content chunk included, before commit) are
// relayed whole, with the alias as their model.
func TestStreamEventsLargerThanBuffer(t *testing.T) {
	big := strings.Repeat("a", 20<<10)
	mid := strings.Repeat("b", 5<<10)
	up := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: []string{big, " small ", mid}}))
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	st := e.stream("gpt-4o-primary")
	if st.status != http.StatusOK || !st.done() {
		t.Fatalf("status %d, done %v: %.200s", st.status, st.done(), st.raw)
	}
	if got := st.content(t); got != big+" small "+mid {
		t.Errorf("content: %d bytes, want %d", len(got), len(big+" small "+mid))
	}
	if strings.Contains(st.raw, `"model":"gpt-4o-mini"`) {
		t.Error("an event kept the upstream model name")
	}
}

// TestCallerBodyOfUnknownLength: a chunked caller body (no Content-Length)
// is read whole and forwarded with only the model replaced, plain and
// streaming, including when the stream outlives the body's buffer.
func TestCallerBodyOfUnknownLength(t *testing.T) {
	up := upstream(t, "primary")
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	long := strings.Repeat("y", 12<<10) // larger than a pooled buffer's first size
	for _, stream := range []bool{false, true} {
		name := "plain"
		if stream {
			name = "stream"
		}
		t.Run(name, func(t *testing.T) {
			body := `{"model":"gpt-4o-primary","messages":[{"role":"user","content":"` + long + `"}]`
			if stream {
				body += `,"stream":true`
			}
			body += "}"
			req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", io.MultiReader(strings.NewReader(body)))
			req.Header.Set("Authorization", "Bearer "+callerKey)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || req.ContentLength != 0 {
				t.Fatalf("status %d (caller content length %d): %.200s", resp.StatusCode, req.ContentLength, b)
			}
			if stream && !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
				t.Errorf("stream not complete: %.200s", b)
			}
			reqs := up.Requests()
			want := strings.Replace(body, `"gpt-4o-primary"`, `"gpt-4o-mini"`, 1)
			if stream {
				want = withUsage(want)
			}
			if got := string(reqs[len(reqs)-1].Body); got != want {
				t.Errorf("upstream body differs: %d bytes, want %d", len(got), len(want))
			}
		})
	}
}

// TestStreamReusesUpstreamConnection: a stream that ends with [DONE] is
// read to the end of its body, so the upstream connection goes back to
// the pool (a body closed early costs the connection, and the next stream
// a new dial and, on real upstreams, a TLS handshake). Plain answers too.
func TestStreamReusesUpstreamConnection(t *testing.T) {
	// The end of the body comes a little after [DONE], as it can when the
	// two arrive in separate packets.
	held := proxytest.Stream(proxytest.StreamOptions{HoldAfterDone: 5 * time.Millisecond})
	up := upstream(t, "primary", func(w http.ResponseWriter, c *proxytest.Call) {
		if c.Stream {
			held(w, c)
			return
		}
		proxytest.OK()(w, c)
	})
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	for i := range 4 {
		if st := e.stream("gpt-4o-primary"); st.status != http.StatusOK || !st.done() {
			t.Fatalf("stream %d: status %d, done %v", i, st.status, st.done())
		}
		if r := e.chat("gpt-4o-primary"); r.status != http.StatusOK {
			t.Fatalf("plain %d: status %d", i, r.status)
		}
	}
	// Without the drain every stream costs its connection (5 in all). A
	// busy machine can stall the 5 ms hold past the 50 ms drain window
	// once; that is the one extra connection allowed.
	if n := up.Conns(); n > 2 {
		t.Errorf("upstream accepted %d connections for 8 sequential requests, want 1 (2 on a busy machine)", n)
	}
}

// TestStreamHeldOpenAfterDone: an upstream that keeps its body open after
// [DONE] does not hold the caller: the stream ends complete, promptly.
func TestStreamHeldOpenAfterDone(t *testing.T) {
	up := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{HoldAfterDone: time.Minute}))
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds)
	st := e.stream("gpt-4o-primary")
	if st.status != http.StatusOK || !st.done() {
		t.Fatalf("status %d, done %v: %.300s", st.status, st.done(), st.raw)
	}
	wantUnder(t, st.took, 5*time.Second)
	if got := st.content(t); got != "hello from primary" {
		t.Errorf("content %q", got)
	}
}

// TestStreamEventsNotHeldBack: every event the upstream has sent reaches
// the caller while the upstream is silent, before anything more comes: the
// relay never waits for the upstream with unflushed events.
func TestStreamEventsNotHeldBack(t *testing.T) {
	up := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: []string{"one", "two", "three"}, RoleChunk: true, StallAfter: 2}))
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		// The stall outlasts the caller's patience: only events flushed
		// before the relay waits can reach it.
		Models:  []storage.Model{directModel("gpt-4o-primary", "pk", withStreamTimeout(120_000))},
		APIKeys: []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	e := newEnv(t, ds, func(o *proxy.Options) { o.KeepAliveInterval = -1 }) // no comment flushes either
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o-primary", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var got []string
	for len(got) < 2 && sc.Scan() {
		line := sc.Text()
		for _, w := range []string{`"one"`, `"two"`, `"three"`} {
			if strings.HasPrefix(line, "data: ") && strings.Contains(line, w) {
				got = append(got, w)
			}
		}
	}
	// The upstream is stalled after "two" until the caller goes away.
	if len(got) != 2 || got[0] != `"one"` || got[1] != `"two"` || ctx.Err() != nil {
		t.Fatalf("caller got %v before the upstream's silence ended (err %v)", got, ctx.Err())
	}
}
