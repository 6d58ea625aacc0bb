package e2e

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/aisix/aisix/e2e/mockup"
)

// TestStatusDashboardInTerminal drives `aisix status` in a pseudo-terminal
// against a real `aisix serve`: the primary fails, the dashboard shows it
// cooling down with a ticking countdown and the failover in the feed; the
// primary recovers through a probe and turns healthy again on screen.
func TestStatusDashboardInTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("drives real processes in a pseudo-terminal")
	}
	dir := t.TempDir()
	proxyAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	adminAddr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	primary := httptest.NewServer(mockup.New(mockup.Options{}))
	defer primary.Close()
	secondary := httptest.NewServer(mockup.New(mockup.Options{}))
	defer secondary.Close()

	env := append(os.Environ(),
		"AISIX_DB="+filepath.Join(dir, "aisix.db"),
		"AISIX_ADMIN_KEY=admin-local-only-change-me",
		"AISIX_PROXY_ADDR="+proxyAddr,
		"AISIX_ADMIN_ADDR="+adminAddr,
		"AISIX_METRICS_ADDR=127.0.0.1:0",
		"AISIX_SERVER=",
		"XDG_CONFIG_HOME="+dir,
		"NO_COLOR=1",
		"PK_SECRET=sk-test-secret-000000000001",
	)
	aisix := filepath.Join(binDir, "aisix")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(aisix, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aisix %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}

	serve := exec.Command(aisix, "serve", "--log-format", "text")
	serve.Env = env
	var serveLog bytes.Buffer
	serve.Stderr = &serveLog
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		serve.Process.Signal(os.Interrupt)
		serve.Wait()
	}()
	waitOK(t, "http://"+adminAddr+"/readyz")

	run("provider-key", "create", "--name", "openai-primary", "--provider", "openai", "--api-base", primary.URL+"/v1", "--secret-env", "PK_SECRET", "-q")
	run("provider-key", "create", "--name", "openai-secondary", "--provider", "openai", "--api-base", secondary.URL+"/v1", "--secret-env", "PK_SECRET", "-q")
	run("model", "create", "--name", "gpt-4o-primary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary", "--cooldown-seconds", "3", "-q")
	run("model", "create", "--name", "gpt-4o-secondary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-secondary", "-q")
	run("model", "route", "chat-prod", "--target", "gpt-4o-primary", "--target", "gpt-4o-secondary", "--retries", "1", "--max-fallbacks", "1", "-q")
	cmd := exec.Command(aisix, "apikey", "create", "--allow-model", "chat-prod", "--key-stdin", "-q")
	cmd.Env, cmd.Stdin = env, strings.NewReader("sk-failover-demo")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apikey create: %v %s", err, out)
	}
	chat := func() string {
		t.Helper()
		// The CLI wrote the file directly; serve catches up within its poll.
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequest(http.MethodPost, "http://"+proxyAddr+"/v1/chat/completions",
				strings.NewReader(`{"model":"chat-prod","messages":[{"role":"user","content":"Say hello."}]}`))
			req.Header.Set("Authorization", "Bearer sk-failover-demo")
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					return resp.Header.Get("x-aisix-served-by")
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("chat-prod never answered 200 (last: %v)", err)
			}
			time.Sleep(50 * time.Millisecond) // waiting on another process's reload
		}
	}
	if got := chat(); got != "gpt-4o-primary" {
		t.Fatalf("first request served by %q", got)
	}

	status := exec.Command(aisix, "status", "--every", "500ms")
	status.Env = append(env, "TERM=xterm-256color")
	tty, err := pty.StartWithSize(status, &pty.Winsize{Rows: 40, Cols: 140})
	if err != nil {
		t.Fatal(err)
	}
	defer tty.Close()
	screen := &terminal{changed: make(chan struct{}, 1)}
	go screen.copyFrom(tty)
	exited := make(chan error, 1)
	go func() { exited <- status.Wait() }()
	screen.waitFor(t, "gpt-4o-primary", "live")

	run("provider-key", "update", "openai-primary", "--api-base", "https://api.openai.invalid/v1", "-q")
	waitSynced(t, "http://"+adminAddr)
	if got := chat(); got != "gpt-4o-secondary" {
		t.Fatalf("after breaking the primary, served by %q", got)
	}
	screen.waitFor(t, "transport_error", "→ served by gpt-4o-secondary", "(serving)")
	// The countdown ticks on screen: two different values of "cooldown Ns".
	countdown := regexp.MustCompile(`cooldown (\d+)s`)
	first := screen.waitMatch(t, countdown, "")
	screen.waitMatch(t, countdown, first)

	// Recovery: restore the primary; once its cooldown ends, a probe goes
	// through it and it turns healthy on screen.
	run("provider-key", "update", "openai-primary", "--api-base", primary.URL+"/v1", "-q")
	waitSynced(t, "http://"+adminAddr)
	deadline := time.Now().Add(60 * time.Second)
	for chat() != "gpt-4o-primary" {
		if time.Now().After(deadline) {
			t.Fatal("the primary never served again after its cooldown")
		}
		time.Sleep(100 * time.Millisecond) // the cooldown runs on the server's clock
	}
	screen.waitFor(t, "probe")
	screen.waitMatch(t, regexp.MustCompile(`healthy\s+gpt-4o-primary`), "")

	if _, err := tty.Write([]byte("q")); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("aisix status exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		status.Process.Kill()
		t.Fatal("aisix status did not quit on q")
	}
	if strings.Contains(screen.text(), "panic") {
		t.Fatalf("the dashboard printed a panic:\n%s", screen.text())
	}
}

// terminal collects what a program writes to its pseudo-terminal, with the
// escape sequences removed, so tests can wait for text to appear.
type terminal struct {
	mu      sync.Mutex
	raw     bytes.Buffer
	offset  int // waitMatch looks only at text after the previous match
	changed chan struct{}
}

func (s *terminal) copyFrom(f *os.File) {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			s.mu.Lock()
			s.raw.Write(buf[:n])
			s.mu.Unlock()
			select {
			case s.changed <- struct{}{}:
			default:
			}
		}
		if err != nil {
			return
		}
	}
}

var ansiRe = regexp.MustCompile(`\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]`)

func (s *terminal) text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ansiRe.ReplaceAllString(s.raw.String(), " ")
}

func (s *terminal) waitFor(t *testing.T, want ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		txt := s.text()
		missing := ""
		for _, w := range want {
			if !strings.Contains(txt, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			t.Fatalf("the dashboard never showed %q; screen text:\n%s", missing, tail(txt, 4000))
		}
	}
}

// waitMatch waits for re to match text written after the previous match
// with a first group different from not, and returns that group.
func (s *terminal) waitMatch(t *testing.T, re *regexp.Regexp, not string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		txt := s.text()
		s.mu.Lock()
		from := min(s.offset, len(txt))
		s.mu.Unlock()
		for _, m := range re.FindAllStringSubmatchIndex(txt[from:], -1) {
			g := ""
			if len(m) >= 4 && m[2] >= 0 {
				g = txt[from+m[2] : from+m[3]]
			}
			if not == "" || g != not {
				if not != "" && g == not {
					continue
				}
				s.mu.Lock()
				s.offset = from + m[1]
				s.mu.Unlock()
				return g
			}
		}
		select {
		case <-s.changed:
		case <-ctx.Done():
			t.Fatalf("the dashboard never showed %s (other than %q); screen text:\n%s", re, not, tail(txt, 4000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func waitOK(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered 200", url)
		}
		time.Sleep(50 * time.Millisecond) // polling another process
	}
}

// waitSynced waits until the server's routing snapshot has caught up with
// writes made straight to its SQLite file.
func waitSynced(t *testing.T, admin string) {
	t.Helper()
	if err := waitSync(admin, "admin-local-only-change-me"); err != nil {
		t.Fatal(err)
	}
}
