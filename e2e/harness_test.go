package e2e

// The Go-level harness for the fault tests (faults_test.go, callers_test.go,
// config_test.go): one `aisix serve` process per test on free loopback ports,
// configured through its admin API, with its log captured; fake OpenAI
// upstreams that misbehave on purpose; and a few caller-side readers.
//
// Everything here synchronises on events (a request reaching an upstream, a
// response line, a log line) and bounds every wait; nothing sleeps to wait
// for something to happen.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	adminKey        = "admin-local-only-change-me"
	callerKey       = "sk-failover-demo"
	primarySecret   = "sk-primary-test-secret-0001"
	secondarySecret = "sk-secondary-test-secret-0002"
)

// slow skips a test that needs aisix's real default timeouts (20-60 s of
// waiting) under -short, and runs it in parallel with the other slow ones.
func slow(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("waits out aisix's default timeouts")
	}
	t.Parallel()
}

// gateway is one `aisix serve` process.
type gateway struct {
	t     testing.TB
	dir   string
	db    string
	proxy string // http://host:port of the proxy
	admin string // http://host:port of the admin API
	// metrics is http://host:port of the Prometheus listener.
	metrics string
	args    []string
	env     []string
	cmd     *exec.Cmd
	log     *logBuffer
	exited  chan struct{}
	client  *http.Client
	// proxyScheme and adminScheme are "http" or "https".
	proxyScheme, adminScheme string
}

// serveOptions tune startGateway.
type serveOptions struct {
	// db is the SQLite file; default dir/aisix.db in a new temp dir.
	db string
	// config, when set, is written to a YAML file passed as --config.
	config string
	// args are extra serve flags.
	args []string
	// env are extra environment variables (NAME=value) of serve and of
	// the CLI commands run on its database.
	env []string
	// proxyTLS and adminTLS say the listeners speak TLS (their URLs are
	// https://); client, when set, is the client of readiness checks and
	// requests (one that trusts the listeners' CA).
	proxyTLS, adminTLS bool
	client             *http.Client
}

// startGateway starts `aisix serve` and waits until both listeners answer
// /readyz. It is stopped (SIGINT, then kill) when the test ends.
func startGateway(t testing.TB, opts serveOptions) *gateway {
	t.Helper()
	dir := t.TempDir()
	g := &gateway{t: t, dir: dir, db: opts.db, client: &http.Client{}, proxyScheme: "http", adminScheme: "http"}
	if opts.client != nil {
		g.client = opts.client
	}
	if opts.proxyTLS {
		g.proxyScheme = "https"
	}
	if opts.adminTLS {
		g.adminScheme = "https"
	}
	if g.db == "" {
		g.db = filepath.Join(dir, "aisix.db")
	}
	g.env = []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + dir,
		"XDG_CONFIG_HOME=" + filepath.Join(dir, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, ".data"),
		"NO_COLOR=1",
		"AISIX_ADMIN_KEY=" + adminKey,
		"AISIX_DB=" + g.db,
	}
	if tmp := os.Getenv("TMPDIR"); tmp != "" {
		g.env = append(g.env, "TMPDIR="+tmp)
	}
	g.env = append(g.env, opts.env...)
	g.args = append([]string{"serve", "--db", g.db, "--drain-timeout", "2s"}, opts.args...)
	if opts.config != "" {
		cfg := filepath.Join(dir, "aisix.yaml")
		if err := os.WriteFile(cfg, []byte(opts.config), 0o600); err != nil {
			t.Fatal(err)
		}
		g.args = append(g.args, "--config", cfg)
	}
	g.log = newLogBuffer()
	g.start(t)
	t.Cleanup(g.stop)
	return g
}

// start runs serve on new free ports. A port picked free can be taken by
// another process before serve binds it; serve then exits at once, and
// start tries again on new ports.
func (g *gateway) start(t testing.TB) {
	t.Helper()
	for try := 1; ; try++ {
		mark := g.log.Len()
		err := g.startOnce(t)
		if err == nil {
			return
		}
		if try < 5 && strings.Contains(g.log.String()[mark:], "address already in use") {
			continue
		}
		t.Fatalf("%v; log:\n%s", err, g.log.String())
	}
}

func (g *gateway) startOnce(t testing.TB) error {
	t.Helper()
	proxyAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	adminAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	metricsAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	g.proxy, g.admin, g.metrics = g.proxyScheme+"://"+proxyAddr, g.adminScheme+"://"+adminAddr, "http://"+metricsAddr
	args := append(append([]string(nil), g.args...), "--proxy-addr", proxyAddr, "--admin-addr", adminAddr, "--metrics-addr", metricsAddr)
	g.cmd = exec.Command(filepath.Join(binDir, "aisix"), args...)
	g.cmd.Env = g.env
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.exited = make(chan struct{})
	go func() {
		_ = g.cmd.Wait()
		close(g.exited)
	}()
	if err := g.waitReady(g.admin + "/readyz"); err != nil {
		return err
	}
	return g.waitReady(g.proxy + "/readyz")
}

// waitReady polls url until it answers 200, failing fast if serve exits.
func (g *gateway) waitReady(url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := g.client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-g.exited:
			return fmt.Errorf("aisix serve exited before %s answered", url)
		default:
		}
		if time.Now().After(deadline) {
			g.stop()
			return fmt.Errorf("%s never answered 200", url)
		}
		time.Sleep(20 * time.Millisecond) // polling another process
	}
}

// stop sends SIGINT and waits for serve to exit (killing it after 30 s).
func (g *gateway) stop() {
	if g.cmd == nil || g.cmd.Process == nil {
		return
	}
	select {
	case <-g.exited:
		return
	default:
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.exited:
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
		g.t.Errorf("aisix serve did not stop within 30s of SIGINT")
	}
}

// restart stops serve and starts it again on the same database.
func (g *gateway) restart(t testing.TB) {
	t.Helper()
	g.stop()
	g.start(t)
}

// run runs an aisix CLI command in local mode on the gateway's database and
// returns its stdout.
func (g *gateway) run(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "aisix"), args...)
	cmd.Env = g.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("aisix %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// adminDo sends an admin API request with a JSON body (unless nil) and
// returns the status and body.
func (g *gateway) adminDo(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, g.admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, data
}

// mustAdmin is adminDo that requires status want and decodes the body.
func (g *gateway) mustAdmin(t testing.TB, method, path string, body any, want int) map[string]any {
	t.Helper()
	status, data := g.adminDo(t, method, path, body)
	if status != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, data)
	}
	var out map[string]any
	if len(bytes.TrimSpace(data)) > 0 && data[0] == '{' {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, data)
		}
	}
	return out
}

// create POSTs an admin resource and returns its id.
func (g *gateway) create(t testing.TB, kind string, body any) string {
	t.Helper()
	e := g.mustAdmin(t, http.MethodPost, "/admin/v1/"+kind, body, http.StatusCreated)
	id, _ := e["id"].(string)
	if id == "" {
		t.Fatalf("POST /admin/v1/%s: no id in %v", kind, e)
	}
	return id
}

// createCallerKey stores a caller key for plaintext allowed the models.
func (g *gateway) createCallerKey(t testing.TB, plaintext string, models ...string) string {
	t.Helper()
	return g.create(t, "apikeys", map[string]any{"key_hash": sha256Hex(plaintext), "allowed_models": models})
}

// statusRow is one row of GET /admin/v1/models/status.
type statusRow struct {
	ID            string `json:"id"`
	DisplayName   string `json:"display_name"`
	Kind          string `json:"kind"`
	Status        string `json:"status"`
	StatusReason  string `json:"status_reason"`
	CooldownUntil *struct {
		Secs  int64 `json:"secs_since_epoch"`
		Nanos int64 `json:"nanos_since_epoch"`
	} `json:"cooldown_until"`
	SecretNeedsReentry bool `json:"secret_needs_reentry"`
	raw                string
}

// cooldownLeft is how long the row's cooldown still runs (0 when none).
func (r statusRow) cooldownLeft() time.Duration {
	if r.CooldownUntil == nil {
		return 0
	}
	return time.Until(time.Unix(r.CooldownUntil.Secs, r.CooldownUntil.Nanos))
}

// status returns the models/status row of the model named name.
func (g *gateway) status(t testing.TB, name string) statusRow {
	t.Helper()
	code, data := g.adminDo(t, http.MethodGet, "/admin/v1/models/status", nil)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/v1/models/status: %d %s", code, data)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		t.Fatalf("models/status: %v: %s", err, data)
	}
	for _, raw := range raws {
		var r statusRow
		if err := json.Unmarshal(raw, &r); err != nil {
			t.Fatalf("models/status row: %v: %s", err, raw)
		}
		if r.DisplayName == name {
			r.raw = string(raw)
			return r
		}
	}
	t.Fatalf("models/status has no row %q: %s", name, data)
	return statusRow{}
}

// tutorial is the product tutorial's setup: provider keys openai-primary and
// openai-secondary, direct models gpt-4o-primary and gpt-4o-secondary on
// them, chat-prod failing over from the primary to the secondary (retries 1,
// max_fallbacks 1) and the caller key sk-failover-demo allowed chat-prod.
type tutorial struct {
	g                        *gateway
	primaryPK, secondaryPK   string
	primary, secondary, chat string // model ids
	apiKey                   string
}

// tutorialConfig adds fields to the tutorial's resources; nil adds nothing
// (the tutorial as printed: no timeouts anywhere).
type tutorialConfig struct {
	direct  map[string]any // both direct models
	routing map[string]any // chat-prod's routing block
}

// fastTimeouts bound the direct models of tests that are not about the
// default timeouts.
var fastTimeouts = tutorialConfig{direct: map[string]any{"timeout": 5000, "stream_timeout": 5000}}

func setupTutorial(t testing.TB, g *gateway, primaryBase, secondaryBase string, cfg tutorialConfig) *tutorial {
	t.Helper()
	tu := &tutorial{g: g}
	tu.primaryPK = g.create(t, "provider_keys", map[string]any{
		"display_name": "openai-primary", "provider": "openai", "adapter": "openai",
		"secret": primarySecret, "api_base": primaryBase,
	})
	tu.secondaryPK = g.create(t, "provider_keys", map[string]any{
		"display_name": "openai-secondary", "provider": "openai", "adapter": "openai",
		"secret": secondarySecret, "api_base": secondaryBase,
	})
	direct := func(name, pk string) map[string]any {
		m := map[string]any{"display_name": name, "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pk}
		for k, v := range cfg.direct {
			m[k] = v
		}
		return m
	}
	tu.primary = g.create(t, "models", direct("gpt-4o-primary", tu.primaryPK))
	tu.secondary = g.create(t, "models", direct("gpt-4o-secondary", tu.secondaryPK))
	routing := map[string]any{
		"strategy": "failover",
		"targets":  []map[string]any{{"model": "gpt-4o-primary"}, {"model": "gpt-4o-secondary"}},
		"retries":  1, "max_fallbacks": 1,
	}
	for k, v := range cfg.routing {
		routing[k] = v
	}
	tu.chat = g.create(t, "models", map[string]any{"display_name": "chat-prod", "routing": routing})
	tu.apiKey = g.createCallerKey(t, callerKey, "chat-prod")
	return tu
}

// chatBody is a chat-completions request body for model.
func chatBody(model string, stream bool) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"Say hello."}],"stream":%t}`, model, stream)
}

// chat sends a chat-completions request with the caller key key and extra
// headers; the response is bounded by ctx.
func (g *gateway) chat(ctx context.Context, key, body string, hdr http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.proxy+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return g.client.Do(req)
}

// answer is a whole response.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	elapsed time.Duration
}

// envelope decodes an OpenAI error envelope.
func (a answer) envelope(t testing.TB) (msg, typ string, param, code any) {
	t.Helper()
	var env struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Param   any    `json:"param"`
			Code    any    `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal(a.body, &env); err != nil || env.Error == nil {
		t.Fatalf("status %d: not an OpenAI error envelope: %s", a.status, a.body)
	}
	return env.Error.Message, env.Error.Type, env.Error.Param, env.Error.Code
}

// dump is the answer as text (headers and body), for assertions on what
// the caller could see.
func (a answer) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "status %d\n", a.status)
	for k, vs := range a.header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	b.WriteString("\n")
	b.Write(a.body)
	return b.String()
}

// mustChat sends a request and reads the whole answer within bound.
func (g *gateway) mustChat(t testing.TB, key, body string, hdr http.Header, bound time.Duration) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	resp, err := g.chat(ctx, key, body, hdr)
	if err != nil {
		t.Fatalf("chat: no answer within %v: %v", bound, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("chat: reading the answer (status %d): %v", resp.StatusCode, err)
	}
	return answer{status: resp.StatusCode, header: resp.Header, body: data, elapsed: time.Since(start)}
}

// sseEvent is one server-sent event as the caller reads it.
type sseEvent struct {
	name string
	data string
	at   time.Duration // since the request was sent
}

// readSSE reads events from r until EOF or an error, calling each (when not
// nil) as an event completes. Comment lines are skipped.
func readSSE(r io.Reader, start time.Time, each func(sseEvent)) ([]sseEvent, error) {
	br := bufio.NewReader(r)
	var evs []sseEvent
	var cur sseEvent
	var data []string
	have := false
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			line = strings.TrimRight(line, "\r\n")
			switch {
			case line == "":
				if have {
					cur.data, cur.at = strings.Join(data, "\n"), time.Since(start)
					evs = append(evs, cur)
					if each != nil {
						each(cur)
					}
				}
				cur, data, have = sseEvent{}, nil, false
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event:"):
				cur.name, have = strings.TrimSpace(strings.TrimPrefix(line, "event:")), true
			case strings.HasPrefix(line, "data:"):
				data, have = append(data, strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " ")), true
			}
		}
		if err != nil {
			if err == io.EOF {
				err = nil
			}
			return evs, err
		}
	}
}

// lastEvent is the last of evs (zero when there is none).
func lastEvent(evs []sseEvent) sseEvent {
	if len(evs) == 0 {
		return sseEvent{}
	}
	return evs[len(evs)-1]
}

// contentOf returns the delta content of a chat.completion.chunk event.
func contentOf(ev sseEvent) string {
	var ch struct {
		Choices []struct {
			Delta struct {
				Content string `json:"content"`
			} `json:"delta"`
		} `json:"choices"`
	}
	if json.Unmarshal([]byte(ev.data), &ch) != nil || len(ch.Choices) == 0 {
		return ""
	}
	return ch.Choices[0].Delta.Content
}

// logBuffer collects serve's output and lets tests wait for a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{}, 1)} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	n, err := b.buf.Write(p)
	b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return n, err
}

// Len is the number of bytes written so far.
func (b *logBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the complete lines written so far.
func (b *logBuffer) lines() []string {
	s := b.String()
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	} else {
		return nil
	}
	return strings.Split(s, "\n")
}

// waitLine waits up to within for a line that match accepts and returns
// it; when none comes it reports an error and returns "".
func (b *logBuffer) waitLine(t testing.TB, within time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		for _, l := range b.lines() {
			if match(l) {
				return l
			}
		}
		select {
		case <-b.changed:
		case <-deadline.C:
			t.Errorf("serve never logged %s within %v; log:\n%s", what, within, tail(b.String(), 6000))
			return ""
		}
	}
}

// jsonLine decodes a JSON log line (nil when it is not one).
func jsonLine(l string) map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(l), &m) != nil {
		return nil
	}
	return m
}

// accessLine waits for the access log line (msg "request") of callID; nil
// (and an error reported) when none comes.
func (g *gateway) accessLine(t testing.TB, callID string, within time.Duration) map[string]any {
	t.Helper()
	l := g.log.waitLine(t, within, "the access line of call "+callID, func(l string) bool {
		m := jsonLine(l)
		return m != nil && m["msg"] == "request" && m["call_id"] == callID
	})
	return jsonLine(l)
}

// upstreamCall is one chat request as a fake upstream sees it.
type upstreamCall struct {
	r      *http.Request
	header http.Header
	body   []byte
	stream bool
	n      int64 // numbers the upstream's requests from 1
	// gone is closed when the handler has returned because aisix went away
	// (the request's context ended or a write to aisix failed).
	gone chan struct{}
	// ended is closed when the handler has returned, whatever the reason.
	ended chan struct{}
	done  <-chan struct{} // the upstream is closing
	wrErr atomic.Bool
}

// behaviour answers one upstream call.
type behaviour func(w http.ResponseWriter, c *upstreamCall)

// upstream is a fake OpenAI upstream: an httptest server on a loopback host
// whose chat requests are answered by a behaviour.
type upstream struct {
	name   string
	base   string // the api_base: http://host:port/v1
	srv    *httptest.Server
	done   chan struct{}
	seen   chan *upstreamCall
	hits   atomic.Int64
	handle behaviour
}

// newUpstream starts a fake upstream on host (127.0.0.1 when empty) that
// answers every chat request with b.
func newUpstream(t testing.TB, name, host string, b behaviour) *upstream {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	u := &upstream{name: name, done: make(chan struct{}), seen: make(chan *upstreamCall, 1024), handle: b}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(u.serve))
	u.srv.Listener.Close()
	u.srv.Listener = ln
	u.srv.Start()
	u.base = u.srv.URL + "/v1"
	t.Cleanup(func() {
		close(u.done)
		u.srv.CloseClientConnections()
		u.srv.Close()
	})
	return u
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeOpenAIError(w, http.StatusNotFound, "Unknown request URL: "+r.Method+" "+r.URL.Path, "invalid_request_error", nil, "unknown_url")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Stream bool `json:"stream"`
	}
	_ = json.Unmarshal(body, &req)
	c := &upstreamCall{
		r: r, header: r.Header.Clone(), body: body, stream: req.Stream, n: u.hits.Add(1),
		gone: make(chan struct{}), ended: make(chan struct{}), done: u.done,
	}
	select {
	case u.seen <- c:
	default:
	}
	defer func() {
		if r.Context().Err() != nil || c.wrErr.Load() {
			close(c.gone)
		}
		close(c.ended)
	}()
	u.handle(w, c)
}

// next waits for the upstream's next chat request.
func (u *upstream) next(t testing.TB, within time.Duration) *upstreamCall {
	t.Helper()
	select {
	case c := <-u.seen:
		return c
	case <-time.After(within):
		t.Fatalf("upstream %s saw no request within %v", u.name, within)
		return nil
	}
}

// script answers the n-th request with the n-th behaviour; the last repeats.
func script(bs ...behaviour) behaviour {
	return func(w http.ResponseWriter, c *upstreamCall) {
		i := min(int(c.n)-1, len(bs)-1)
		bs[i](w, c)
	}
}

// writeOpenAIError writes OpenAI's error envelope.
func writeOpenAIError(w http.ResponseWriter, status int, msg, typ string, param, code any) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": param, "code": code}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// completion is a chat.completion object saying text.
func completion(text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-e2e0001", "object": "chat.completion", "created": 1767225600, "model": "gpt-4o-mini-2024-07-18",
		"choices": []map[string]any{{
			"index": 0, "message": map[string]any{"role": "assistant", "content": text, "refusal": nil},
			"logprobs": nil, "finish_reason": "stop",
		}},
		"usage":              map[string]any{"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
		"system_fingerprint": "fp_e2e",
	})
	return b
}

// chunk is one `data:` frame of a chat.completion.chunk.
func chunk(delta map[string]any, finish any) []byte {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-e2e0001", "object": "chat.completion.chunk", "created": 1767225600, "model": "gpt-4o-mini-2024-07-18",
		"system_fingerprint": "fp_e2e",
		"choices":            []map[string]any{{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}},
	})
	return append(append([]byte("data: "), b...), '\n', '\n')
}

var doneFrame = []byte("data: [DONE]\n\n")

// sse writes stream frames to the caller, flushing each; it reports false
// once aisix has gone away.
type sse struct {
	w http.ResponseWriter
	c *upstreamCall
}

// startSSE sends a stream's response headers at once.
func startSSE(w http.ResponseWriter, c *upstreamCall) *sse {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	s := &sse{w: w, c: c}
	s.flush()
	return s
}

func (s *sse) flush() bool {
	if err := http.NewResponseController(s.w).Flush(); err != nil {
		s.c.wrErr.Store(true)
		return false
	}
	return true
}

func (s *sse) send(frame []byte) bool {
	if _, err := s.w.Write(frame); err != nil {
		s.c.wrErr.Store(true)
		return false
	}
	return s.flush()
}

// role sends the stream's first chunk, as OpenAI does: the role, no content.
func (s *sse) role() bool {
	return s.send(chunk(map[string]any{"role": "assistant", "content": "", "refusal": nil}, nil))
}

func (s *sse) content(text string) bool { return s.send(chunk(map[string]any{"content": text}, nil)) }

// finish sends the final chunk and [DONE].
func (s *sse) finish() bool {
	return s.send(chunk(map[string]any{}, "stop")) && s.send(doneFrame)
}

// wait blocks until d has passed (true) or the call or upstream ended.
func (c *upstreamCall) wait(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-c.r.Context().Done():
	case <-c.done:
	}
	return false
}

// hang blocks until aisix goes away or the upstream closes.
func (c *upstreamCall) hang() {
	select {
	case <-c.r.Context().Done():
	case <-c.done:
	}
}

// okReply answers like OpenAI: a chat.completion, or a short stream, saying
// "hello from <name>".
func okReply(name string) behaviour {
	return func(w http.ResponseWriter, c *upstreamCall) {
		if c.stream {
			s := startSSE(w, c)
			_ = s.role() && s.content("hello ") && s.content("from "+name) && s.finish()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(completion("hello from " + name))
	}
}

// errorReply answers status with body and the headers given as name, value pairs.
func errorReply(status int, body string, kv ...string) behaviour {
	return func(w http.ResponseWriter, c *upstreamCall) {
		for i := 0; i+1 < len(kv); i += 2 {
			w.Header().Set(kv[i], kv[i+1])
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// silentUpstream accepts TCP connections, reads the requests and never
// answers: a host that is up and hung.
type silentUpstream struct {
	base  string
	ln    net.Listener
	conns atomic.Int64
	reqs  atomic.Int64
	seen  chan struct{} // one value per request read
	mu    sync.Mutex
	open  []net.Conn
	// closed reports connections aisix closed (read EOF or error).
	closed chan struct{}
}

func newSilentUpstream(t testing.TB) *silentUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentUpstream{base: "http://" + ln.Addr().String() + "/v1", ln: ln, seen: make(chan struct{}, 1024), closed: make(chan struct{}, 1024)}
	go s.accept()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for _, c := range s.open {
			c.Close()
		}
		s.mu.Unlock()
	})
	return s
}

func (s *silentUpstream) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		s.mu.Lock()
		s.open = append(s.open, c)
		s.mu.Unlock()
		go s.swallow(c)
	}
}

// swallow reads requests off c (counting each header block) until aisix
// closes it.
func (s *silentUpstream) swallow(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			s.closed <- struct{}{}
			return
		}
		s.reqs.Add(1)
		s.seen <- struct{}{}
		if _, err := io.Copy(io.Discard, req.Body); err != nil {
			s.closed <- struct{}{}
			return
		}
	}
}
