// Package redistest starts throwaway redis-server processes for tests: no
// persistence, a free loopback port, a temporary directory. One server can
// serve a whole test binary:
//
//	func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		srv := redistest.Shared(t) // skips when redis-server is missing
//		url := srv.URL()           // redis://127.0.0.1:…/0
//		…
//	}
//
// A test that stops Redis on purpose starts a server of its own with New,
// then Stop and Restart it: Restart listens on the same port again, so
// clients configured with the address reconnect as they would to a real
// Redis that went down and came back.
//
// redis-server is looked up on PATH. Without it the tests that need it
// skip, except when the environment variable CI is set: then Main fails,
// since CI must run them.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotInstalled means redis-server was not found on PATH.
var ErrNotInstalled = errors.New("redis-server not found on PATH")

// Server is a throwaway redis-server on 127.0.0.1.
type Server struct {
	dir    string // the server's working directory (its log)
	ownDir bool   // dir was created by Start and is removed by Close
	port   int

	mu   sync.Mutex
	cmd  *exec.Cmd     // nil while stopped
	done chan struct{} // closed when cmd has exited
}

// Start starts redis-server on a free port of 127.0.0.1 with its working
// directory under dir ("" for a new temporary directory, removed by Close)
// and waits until it answers PING. It returns ErrNotInstalled when
// redis-server is missing. Close the server with Close.
func Start(ctx context.Context, dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNotInstalled
	}
	s := &Server{}
	if dir == "" {
		if dir, err = os.MkdirTemp("", "aisix-redis-"); err != nil {
			return nil, err
		}
		s.ownDir = true
	}
	// A port free a moment ago may be taken by the time redis-server
	// binds it: try a few.
	for try := 0; ; try++ {
		if s.port, err = FreePort(); err == nil {
			s.dir = filepath.Join(dir, "redis-"+strconv.Itoa(s.port))
			if err = s.start(ctx, bin); err == nil {
				return s, nil
			}
		}
		if try == 4 {
			if s.ownDir {
				_ = os.RemoveAll(dir)
			}
			return nil, err
		}
	}
}

// start runs redis-server on s.port and waits until it answers.
func (s *Server) start(ctx context.Context, bin string) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	logFile := filepath.Join(s.dir, "redis.log")
	cmd := exec.Command(bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--logfile", logFile)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1, DisableIdentity: true})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			done := make(chan struct{})
			go func() { <-exited; close(done) }()
			s.mu.Lock()
			s.cmd, s.done = cmd, done
			s.mu.Unlock()
			return nil
		}
		select {
		case werr := <-exited:
			log, _ := os.ReadFile(logFile)
			return fmt.Errorf("redis-server on port %d exited: %v\n%s", s.port, werr, log)
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer: %w", s.port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the server's redis:// URL (database 0).
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// PID is the process id of the running server, or 0 while it is stopped:
// for a benchmark that reads the server's CPU time from /proc.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Stop kills the server (as a crash would: no shutdown, no save) and
// waits until it has exited, so the port no longer answers. Restart
// starts it again. Stop of a stopped server does nothing.
func (s *Server) Stop() error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill redis-server: %w", err)
	}
	<-done
	return nil
}

// Restart stops the server if it runs and starts it again, empty, on the
// same port.
func (s *Server) Restart(ctx context.Context) error {
	if err := s.Stop(); err != nil {
		return err
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return ErrNotInstalled
	}
	// The port was just released; another process may grab it, or the
	// kernel may still hold it for a moment: retry within a bound.
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := s.start(ctx, bin)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Running reports whether the server runs (Stop not called since the
// last Start or Restart).
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Flush empties every database of the server.
func (s *Server) Flush(ctx context.Context) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DisableIdentity: true})
	defer c.Close()
	return c.FlushAll(ctx).Err()
}

// Close stops the server and removes the directory Start created.
func (s *Server) Close() error {
	err := s.Stop()
	if s.ownDir {
		err = errors.Join(err, os.RemoveAll(filepath.Dir(s.dir)))
	}
	return err
}

// FreePort returns a port of 127.0.0.1 that nothing listened on a moment
// ago: an address where no Redis answers, for a test of a client whose
// Redis is down from the start.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// The test binary's server, started by Main.
var (
	mu       sync.Mutex
	shared   *Server
	startErr error
	inMain   bool
)

// quiet is a go-redis logger that drops everything.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Main starts the test binary's server, runs the tests and closes the
// server; it returns the exit code for os.Exit. It silences go-redis's
// global logger, which would print every failed dial of the tests that
// stop Redis on purpose. Without redis-server the tests run and Shared
// skips them, unless CI is set: then Main fails at once.
func Main(m *testing.M) int {
	redis.SetLogger(quiet{})
	srv, err := Start(context.Background(), "")
	if err := required(err, os.Getenv("CI")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	mu.Lock()
	shared, startErr, inMain = srv, err, true
	mu.Unlock()
	code := m.Run()
	if srv != nil {
		if err := srv.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

// required returns the error that fails a test binary whose server did
// not start with startErr: none when it started, or when redis-server is
// missing outside CI (the tests skip); other failures are reported by the
// tests themselves, except that CI must have Redis.
func required(startErr error, ci string) error {
	if errors.Is(startErr, ErrNotInstalled) && ci != "" {
		return fmt.Errorf("redis-server is required in CI (CI=%s): %w (apt-get install redis-server)", ci, startErr)
	}
	return nil
}

// Shared returns the server Main started; it skips t when redis-server is
// missing and fails it when the server did not start.
func Shared(t testing.TB) *Server {
	t.Helper()
	mu.Lock()
	srv, err, ok := shared, startErr, inMain
	mu.Unlock()
	switch {
	case !ok:
		t.Fatal("redistest: no server; call redistest.Main from TestMain")
	case errors.Is(err, ErrNotInstalled):
		t.Skipf("skipping: %v (install the redis-server package)", err)
	case err != nil:
		t.Fatalf("start redis-server: %v", err)
	}
	return srv
}

// New starts a server of t's own (for a test that stops or restarts it),
// closed when t ends. It skips t when redis-server is missing, unless CI
// is set.
func New(t testing.TB) *Server {
	t.Helper()
	srv, err := Start(context.Background(), t.TempDir())
	if err := required(err, os.Getenv("CI")); err != nil {
		t.Fatal(err)
	}
	switch {
	case errors.Is(err, ErrNotInstalled):
		t.Skipf("skipping: %v (install the redis-server package)", err)
	case err != nil:
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Error(err)
		}
	})
	return srv
}
