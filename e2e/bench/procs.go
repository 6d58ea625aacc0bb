package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is a process the rig started. Its output goes to a log file in the
// rig's temp directory.
type child struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	err     error // set before done is closed
	logFile *os.File
}

// children tracks every process the rig started, so that all of them are
// stopped on the way out, errors and interrupts included.
type children struct {
	mu    sync.Mutex
	procs []*child
}

// start runs bin with args, logging to dir/<name>.log. onDeath is the signal
// the kernel sends the child if the rig dies first.
func (cs *children) start(dir, name string, onDeath syscall.Signal, env []string, bin string, args ...string) (*child, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = env
	cmd.SysProcAttr = childAttr(onDeath)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{}), logFile: f}
	go func() {
		c.err = cmd.Wait()
		f.Close()
		close(c.done)
	}()
	cs.mu.Lock()
	cs.procs = append(cs.procs, c)
	cs.mu.Unlock()
	return c, nil
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has exited.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// logTail returns the last lines of the child's log, for error messages.
func (c *child) logTail() string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}

// stop sends SIGTERM to the child's process group, waits up to grace, then
// sends SIGKILL to the group and waits for the child.
func (c *child) stop(grace time.Duration) {
	if c.exited() {
		return
	}
	pgid := c.pid()
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-c.done
	}
	// Members of the group that outlived their leader (none expected).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// stopAll stops every child still running.
func (cs *children) stopAll() {
	cs.mu.Lock()
	procs := cs.procs
	cs.procs = nil
	cs.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.stop(3 * time.Second)
		}()
	}
	wg.Wait()
}

// forget drops stopped children from the list.
func (cs *children) forget(c *child) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for i, p := range cs.procs {
		if p == c {
			cs.procs = append(cs.procs[:i], cs.procs[i+1:]...)
			return
		}
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	return port, ln.Close()
}

// waitFor polls check every 20ms until it returns nil, the child exits, or
// timeout passes.
func waitFor(ctx context.Context, c *child, timeout time.Duration, what string, check func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if last = check(); last == nil {
			return nil
		}
		if c != nil && c.exited() {
			return fmt.Errorf("%s exited before %s (%v); log:\n%s", c.name, what, c.err, c.logTail())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not ready after %s: %w", what, timeout, last)
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// httpOK returns a check that GETs url and wants 200.
func httpOK(url string) func() error {
	client := &http.Client{Timeout: time.Second}
	return func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
		}
		return nil
	}
}

// tcpOpen returns a check that connects to addr.
func tcpOpen(addr string) func() error {
	return func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

var errNotReady = errors.New("not ready")
