package proxy_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy"
	"github.com/aisix/aisix/storage"
)

// gateWriter collects log lines. Each Write waits until gate is closed, so
// a test can hold the access line's write.
type gateWriter struct {
	gate  chan struct{}
	mu    sync.Mutex
	lines [][]byte
	wrote chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	<-g.gate
	g.mu.Lock()
	g.lines = append(g.lines, bytes.Clone(p))
	g.mu.Unlock()
	select {
	case g.wrote <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (g *gateWriter) all() [][]byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([][]byte(nil), g.lines...)
}

// TestAccessLog: one info line per request with its fields, written after
// the caller already has its answer (a stuck log writer does not hold an
// HTTP/1.1 caller).
func TestAccessLog(t *testing.T) {
	up := upstream(t, "primary")
	ds := storage.Dataset{
		ProviderKeys: []storage.ProviderKey{providerKey("pk", up.BaseURL())},
		Models:       []storage.Model{directModel("gpt-4o-primary", "pk")},
		APIKeys:      []storage.APIKey{callerAPIKey("key-1", callerKey, "*")},
	}
	gw := &gateWriter{gate: make(chan struct{}), wrote: make(chan struct{}, 1)}
	e := newEnv(t, ds, func(o *proxy.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(gw, nil)).With("component", "proxy")
	})
	opened := false
	t.Cleanup(func() {
		if !opened {
			close(gw.gate)
		}
	})

	// The log writer is stuck: the caller must still get its whole answer.
	done := make(chan response, 1)
	go func() { done <- e.chat("gpt-4o-primary") }()
	var first response
	select {
	case first = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("the caller waited for the access log write")
	}
	if first.status != http.StatusOK {
		t.Fatalf("status %d: %s", first.status, first.body)
	}
	close(gw.gate)
	opened = true
	select {
	case <-gw.wrote:
	case <-time.After(20 * time.Second):
		t.Fatal("no access line")
	}

	unauth := e.do(http.MethodPost, "/v1/chat/completions", "sk-wrong", chatBody("gpt-4o-primary", false))
	st := e.stream("gpt-4o-primary")
	if unauth.status != http.StatusUnauthorized || st.status != http.StatusOK {
		t.Fatalf("statuses %d %d", unauth.status, st.status)
	}
	// The stream's line is written after its last byte; wait for it.
	deadline := time.Now().Add(20 * time.Second)
	for len(gw.all()) < 3 && time.Now().Before(deadline) {
		select {
		case <-gw.wrote:
		case <-time.After(100 * time.Millisecond):
		}
	}

	type line struct {
		Level     string  `json:"level"`
		Msg       string  `json:"msg"`
		Component string  `json:"component"`
		CallID    string  `json:"call_id"`
		Model     string  `json:"model"`
		Stream    bool    `json:"stream"`
		Status    int     `json:"status"`
		ServedBy  string  `json:"served_by"`
		Attempts  int     `json:"attempts"`
		Latency   float64 `json:"latency"`
	}
	var got []line
	for _, b := range gw.all() {
		var l line
		if err := json.Unmarshal(b, &l); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, b)
		}
		if l.Msg == "request" {
			got = append(got, l)
		}
	}
	want := []line{
		{Level: "INFO", Msg: "request", Component: "proxy", CallID: first.header.Get("X-Aisix-Call-Id"), Model: "gpt-4o-primary", Status: 200, ServedBy: "gpt-4o-primary", Attempts: 1},
		{Level: "INFO", Msg: "request", Component: "proxy", CallID: unauth.header.Get("X-Aisix-Call-Id"), Status: 401},
		{Level: "INFO", Msg: "request", Component: "proxy", CallID: st.header.Get("X-Aisix-Call-Id"), Model: "gpt-4o-primary", Stream: true, Status: 200, ServedBy: "gpt-4o-primary", Attempts: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("%d access lines, want %d: %+v", len(got), len(want), got)
	}
	// Each line is written after its answer reached the caller, so the
	// 401's line can follow the stream's on a busy machine: match by call
	// id, not by order.
	sort.SliceStable(got, func(i, j int) bool {
		return slices.IndexFunc(want, func(w line) bool { return w.CallID == got[i].CallID }) <
			slices.IndexFunc(want, func(w line) bool { return w.CallID == got[j].CallID })
	})
	for i := range want {
		if got[i].Latency <= 0 {
			t.Errorf("line %d: latency %v", i, got[i].Latency)
		}
		got[i].Latency = 0
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
}
