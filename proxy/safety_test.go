package proxy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/proxy/health"
	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/storage"
)

// gate is a behaviour that holds its request until released, and says
// when the request has arrived.
type gate struct {
	arrived chan struct{}
	release chan struct{}
	then    proxytest.Behavior
}

func newGate(then proxytest.Behavior) *gate {
	return &gate{arrived: make(chan struct{}), release: make(chan struct{}), then: then}
}

func (g *gate) behavior() proxytest.Behavior {
	return func(w http.ResponseWriter, c *proxytest.Call) {
		close(g.arrived)
		select {
		case <-g.release:
		case <-c.R.Context().Done():
			return
		case <-c.Done:
			return
		}
		g.then(w, c)
	}
}

func waitFor(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// infoLogs makes the proxy write its access lines (JSON) to buf.
func infoLogs(buf io.Writer) envOption {
	return func(o *proxy.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
}

// accessLine returns the access line of the call with the given id, waiting
// for it to be written (it is written after the answer).
func accessLine(t testing.TB, logs *syncBuffer, callID string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["call_id"] == callID {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access line for call %s in:\n%s", callID, logs.String())
		}
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // polling a log file: there is no event to wait on
	}
}

// TestNoFlapFromAnOldSuccess: a success to a request sent before the
// target's cooldown was armed does not clear the cooldown.
func TestNoFlapFromAnOldSuccess(t *testing.T) {
	g := newGate(proxytest.OK())
	up := upstream(t, "primary", g.behavior(), proxytest.ServerError(500))
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	})
	slow := make(chan response, 1)
	go func() { slow <- e.chat("gpt-4o-primary") }()
	waitFor(t, g.arrived, "the slow request to reach the upstream")
	if r := e.chat("gpt-4o-primary"); r.status != http.StatusBadGateway {
		t.Fatalf("failing request: status %d, want 502: %s", r.status, r.body)
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateCooldown {
		t.Fatalf("after the 500: state %s, want cooldown", st.State)
	}
	close(g.release)
	if r := <-slow; r.status != 200 {
		t.Fatalf("slow request: status %d: %s", r.status, r.body)
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateCooldown || st.Reason != "upstream_server_error" {
		t.Errorf("an older success cleared the cooldown: state %s/%q", st.State, st.Reason)
	}
}

// TestProbeClaimedAtDispatch: a request claims the probe of a half-open
// target only when it sends to it, not of every half-open target it plans.
func TestProbeClaimedAtDispatch(t *testing.T) {
	primary := upstream(t, "primary", proxytest.ServerError(500))
	secondary := upstream(t, "secondary", proxytest.ServerError(500))
	e := newEnv(t, pair(primary, secondary, storage.Routing{}))
	if r := e.chat("chat-prod"); r.status != http.StatusBadGateway {
		t.Fatalf("status %d, want 502 with both failing", r.status)
	}
	e.clock.Advance(31 * time.Second) // both half-open
	g := newGate(proxytest.OK())
	primary.Script(g.behavior())
	done := make(chan response, 1)
	go func() { done <- e.chat("chat-prod") }()
	waitFor(t, g.arrived, "the probe to reach the primary")
	if st := e.reg.Status("id-gpt-4o-primary"); !st.ProbeInFlight {
		t.Error("primary: no probe claimed while its probe is in flight")
	}
	if st := e.reg.Status("id-gpt-4o-secondary"); st.ProbeInFlight {
		t.Error("secondary: probe claimed by a request that has not sent to it")
	}
	close(g.release)
	r := <-done
	if r.status != 200 || r.header.Get("X-Aisix-Served-By") != "gpt-4o-primary" {
		t.Fatalf("probe: status %d served by %q", r.status, r.header.Get("X-Aisix-Served-By"))
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateHealthy {
		t.Errorf("primary after a good probe: %s", st.State)
	}
}

// TestStreamedProbeSettlesAtCommit: a streamed probe settles the target at
// its first content, not at the end of the stream.
func TestStreamedProbeSettlesAtCommit(t *testing.T) {
	up := upstream(t, "primary", proxytest.ServerError(500))
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	})
	e.chat("gpt-4o-primary")
	e.clock.Advance(31 * time.Second)
	up.Script(proxytest.Stream(proxytest.StreamOptions{Chunks: []string{"a", "b"}, StallAfter: 1}))
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o-primary", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil { // the first content chunk
		t.Fatal(err)
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateHealthy || st.ProbeInFlight {
		t.Errorf("mid-stream after the first content: state %s probe %v, want healthy", st.State, st.ProbeInFlight)
	}
}

// TestRetryAfterSanity: NaN, negative and absurd Retry-After values are
// ignored (the default cooldown applies); a sane one sets the cooldown.
func TestRetryAfterSanity(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{{"NaN", 30 * time.Second}, {"-5", 30 * time.Second}, {"1e12", 30 * time.Second}, {"Inf", 30 * time.Second}, {"7", 7 * time.Second}} {
		t.Run(tt.value, func(t *testing.T) {
			t.Parallel()
			primary := upstream(t, "primary", proxytest.RateLimited(tt.value))
			secondary := upstream(t, "secondary")
			e := newEnv(t, pair(primary, secondary, storage.Routing{}))
			if r := e.chat("chat-prod"); r.status != 200 {
				t.Fatalf("status %d", r.status)
			}
			st := e.reg.Status("id-gpt-4o-primary")
			if got := st.CooldownUntil.Sub(e.clock.Now()); got != tt.want {
				t.Errorf("cooldown %v, want %v", got, tt.want)
			}
		})
	}
}

// rawRequest writes a request's head by hand on a fresh connection.
func rawRequest(t testing.TB, e *env, contentLength int, body string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		callerKey, contentLength, body)
	return conn
}

// TestBodyReadTimeout: a caller that sends headers and then stops sending
// its body gets 408 in the OpenAI envelope once the body read timeout runs
// out; the body buffer is never allocated from the declared length.
func TestBodyReadTimeout(t *testing.T) {
	up := upstream(t, "primary")
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.BodyReadTimeout = 300 * time.Millisecond })
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conn := rawRequest(t, e, 9<<20, `{"model":`)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	runtime.ReadMemStats(&after)
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", resp.StatusCode, b)
	}
	var env struct {
		Error struct{ Type, Code, Message string }
	}
	if json.Unmarshal(b, &env) != nil || env.Error.Type != "invalid_request_error" || env.Error.Code != "request_timeout" {
		t.Errorf("not an OpenAI error envelope: %s", b)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 4<<20 {
		t.Errorf("allocated %d bytes for a 9 MiB declared body that never came", grew)
	}
	wantHits(t, up, 0)
}

// TestDeclaredTooLarge: a Content-Length over the cap is refused before a
// byte of the body is read.
func TestDeclaredTooLarge(t *testing.T) {
	up := upstream(t, "primary")
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.MaxBodyBytes = 1000 })
	conn := rawRequest(t, e, 5000, "")
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", resp.StatusCode)
	}
}

// endless streams content until its request is cancelled, then closes
// cancelled.
func endless(piece string, cancelled chan struct{}) proxytest.Behavior {
	var once sync.Once
	return func(w http.ResponseWriter, c *proxytest.Call) {
		defer once.Do(func() { close(cancelled) })
		w.Header().Set("Content-Type", "text/event-stream")
		content, _ := json.Marshal(piece)
		ev := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":` + string(content) + `},"finish_reason":null}]}` + "\n\n"
		for {
			if _, err := io.WriteString(w, ev); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			if c.R.Context().Err() != nil {
				return
			}
		}
	}
}

// TestSlowClientStream: a caller that stops reading a stream has it ended
// after the write timeout, logged as a slow client; the upstream is
// cancelled and not cooled.
func TestSlowClientStream(t *testing.T) {
	cancelled := make(chan struct{})
	up := upstream(t, "primary", endless(strings.Repeat("x", 32<<10), cancelled))
	logs := &syncBuffer{}
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	}, infoLogs(logs), func(o *proxy.Options) { o.WriteTimeout = 300 * time.Millisecond })
	body := chatBody("gpt-4o-primary", true)
	conn := rawRequest(t, e, len(body), body)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	// Read the response head only, then stop reading.
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	br := bufio.NewReaderSize(conn, 4096)
	head, err := br.ReadString('\n')
	if err != nil || !strings.Contains(head, "200") {
		t.Fatalf("response head %q: %v", head, err)
	}
	var callID string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ": "); ok && strings.EqualFold(k, "X-Aisix-Call-Id") {
			callID = v
		}
		if line == "\r\n" {
			break
		}
	}
	waitFor(t, cancelled, "the upstream to be cancelled after the write timeout")
	line := accessLine(t, logs, callID)
	if line["status"] != float64(499) || line["outcome"] != "slow_client" {
		t.Errorf("access line %v, want status 499 outcome slow_client", line)
	}
	if !strings.Contains(logs.String(), "slow client") {
		t.Error("no slow-client warning in the log")
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateHealthy || st.Failures != 0 {
		t.Errorf("upstream blamed for a slow client: %s, %d failures", st.State, st.Failures)
	}
}

// TestTricklingReaderIsServed: a caller that reads slowly but keeps reading
// gets the whole stream, and the upstream is not cooled.
func TestTricklingReaderIsServed(t *testing.T) {
	chunks := make([]string, 20)
	for i := range chunks {
		chunks[i] = fmt.Sprint(" t", i)
	}
	up := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: chunks}))
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	}, func(o *proxy.Options) { o.WriteTimeout = 5 * time.Second })
	req, _ := http.NewRequest(http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o-primary", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got strings.Builder
	buf := make([]byte, 64)
	for {
		n, err := resp.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond) // the trickle itself: a slow reader
	}
	if !strings.HasSuffix(got.String(), "data: [DONE]\n\n") || !strings.Contains(got.String(), " t19") {
		t.Errorf("stream incomplete: %q", got.String())
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateHealthy {
		t.Errorf("state %s", st.State)
	}
}

// TestClientHangupLogged499: a caller that hangs up mid-stream is logged
// with status 499, not 200, and the upstream is not blamed.
func TestClientHangupLogged499(t *testing.T) {
	up := upstream(t, "primary", proxytest.Stream(proxytest.StreamOptions{Chunks: []string{"a", "b"}, StallAfter: 1}))
	logs := &syncBuffer{}
	e := newEnv(t, storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("k", callerKey, "*")},
	}, infoLogs(logs))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.front.URL+"/v1/chat/completions", strings.NewReader(chatBody("gpt-4o-primary", true)))
	req.Header.Set("Authorization", "Bearer "+callerKey)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	line := accessLine(t, logs, resp.Header.Get("X-Aisix-Call-Id"))
	if line["status"] != float64(499) || line["outcome"] != "client_closed" {
		t.Errorf("access line %v, want status 499 outcome client_closed", line)
	}
	if st := e.reg.Status("id-gpt-4o-primary"); st.State != health.StateHealthy || st.Failures != 0 {
		t.Errorf("upstream blamed for a hang-up: %s, %d failures", st.State, st.Failures)
	}
}

// TestHeldEventsBounded: an upstream that streams events without content
// cannot make the proxy hold more than a bound: it is a failed attempt.
func TestHeldEventsBounded(t *testing.T) {
	flood := func(w http.ResponseWriter, c *proxytest.Call) {
		w.Header().Set("Content-Type", "text/event-stream")
		ev := `data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"finish_reason":null}],"pad":"` + strings.Repeat("p", 4000) + `"}` + "\n\n"
		for i := 0; i < 2000 && c.R.Context().Err() == nil; i++ {
			if _, err := io.WriteString(w, ev); err != nil {
				return
			}
		}
	}
	primary := upstream(t, "primary", flood)
	secondary := upstream(t, "secondary")
	e := newEnv(t, pair(primary, secondary, storage.Routing{}))
	r := e.stream("chat-prod")
	if r.status != 200 || r.header.Get("X-Aisix-Served-By") != "gpt-4o-secondary" || !r.done() {
		t.Fatalf("status %d served by %q done %v", r.status, r.header.Get("X-Aisix-Served-By"), r.done())
	}
	wantHeader(t, r.header, "X-Aisix-Attempts", "gpt-4o-primary=upstream_decode_error,gpt-4o-secondary=200")
}

// TestModelEchoClipped: a huge model value is not echoed whole.
func TestModelEchoClipped(t *testing.T) {
	up := upstream(t, "primary")
	e := newEnv(t, pair(up, up, storage.Routing{}))
	r := e.do(http.MethodPost, "/v1/chat/completions", callerKey, chatBody(strings.Repeat("m", 100_000), false))
	if r.status != http.StatusNotFound || len(r.body) > 1024 {
		t.Errorf("status %d, %d-byte error body", r.status, len(r.body))
	}
}

// TestEgressAtDial: the default transport's dialer applies the egress
// policy to the address it connects to, whatever the snapshot let through.
func TestEgressAtDial(t *testing.T) {
	up := upstream(t, "primary")
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.Egress.DenyPrivate = true })
	r := e.chat("chat-prod")
	if r.status != http.StatusBadGateway {
		t.Errorf("status %d, want 502: %s", r.status, r.body)
	}
	wantHits(t, up, 0)
}

// TestLargeAnswerWithWriteTimeoutOff: a disabled write timeout puts no
// deadline on a large answer (a zero timeout must not mean "now").
func TestLargeAnswerWithWriteTimeoutOff(t *testing.T) {
	big := `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"` +
		strings.Repeat("x", 400<<10) + `"},"finish_reason":"stop"}]}`
	up := upstream(t, "primary", proxytest.Raw("application/json", big))
	e := newEnv(t, pair(up, up, storage.Routing{}), func(o *proxy.Options) { o.WriteTimeout = -1 })
	r := e.chat("chat-prod")
	if r.status != 200 || len(r.body) < 400<<10 {
		t.Errorf("status %d, %d bytes", r.status, len(r.body))
	}
}
