package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// shared is the redis-server of this test binary, started by TestMain; nil
// when redis-server is missing outside CI.
var shared *server

// skipReason says why shared is nil.
var skipReason string

func TestMain(m *testing.M) {
	// go-redis logs failed dials to stderr; the fallback tests fail dials
	// on purpose.
	redis.SetLogger(quiet{})
	os.Exit(run(m))
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func run(m *testing.M) int {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "redisstore: redis-server is required in CI (apt-get install redis-server)")
			return 1
		}
		skipReason = "redis-server not found on PATH: install it (apt-get install redis-server) to run the Redis store's tests"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "redisstore-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(dir, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, "redisstore: start redis-server:", err)
		return 1
	}
	shared = srv
	defer srv.stop()
	return m.Run()
}

// server is a throwaway redis-server on a loopback port.
type server struct {
	port int
	dir  string
	cmd  *exec.Cmd
}

func (s *server) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts redis-server with no persistence in a directory under
// dir, on port (0: a free one), and waits until it answers.
func startServer(dir string, port int) (*server, error) {
	if port == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	d := filepath.Join(dir, strconv.Itoa(port))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", d, "--logfile", filepath.Join(d, "redis.log"))
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{port: port, dir: d, cmd: cmd}
	c := redis.NewClient(&redis.Options{Addr: s.addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return s, nil
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("redis-server on port %d did not answer: %w", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop kills the server and waits for it to exit.
func (s *server) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// requireServer skips the test when there is no redis-server.
func requireServer(tb testing.TB) *server {
	tb.Helper()
	if shared == nil {
		tb.Skip(skipReason)
	}
	return shared
}

// client returns a client of srv configured as Open configures one, with
// timeout as its bound.
func client(tb testing.TB, addr string, timeout time.Duration) *redis.Client {
	tb.Helper()
	c := redis.NewClient(&redis.Options{
		Addr: addr, ContextTimeoutEnabled: true, MaxRetries: -1, DisableIdentity: true,
		DialTimeout: timeout, ReadTimeout: timeout, WriteTimeout: timeout, PoolTimeout: timeout,
	})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// flush empties the shared server.
func flush(tb testing.TB) {
	tb.Helper()
	srv := requireServer(tb)
	c := redis.NewClient(&redis.Options{Addr: srv.addr()})
	defer c.Close()
	if err := c.FlushAll(context.Background()).Err(); err != nil {
		tb.Fatalf("FLUSHALL: %v", err)
	}
}

// newStore returns a Store on the shared server that fails the test if it
// ever degrades. The bound is generous: the race detector and hundreds of
// concurrent callers are slow, and a timeout would switch to per-replica
// counting, which the shared-state tests would report as a miscount.
func newStore(tb testing.TB, opts Options) *Store {
	tb.Helper()
	srv := requireServer(tb)
	if opts.Timeout == 0 {
		opts.Timeout = 5 * time.Second
	}
	if opts.OnStateChange == nil {
		opts.OnStateChange = func(degraded bool) {
			if degraded {
				tb.Errorf("store degraded")
			}
		}
	}
	s := New(client(tb, srv.addr(), opts.Timeout), opts)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
