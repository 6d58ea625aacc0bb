// Package pgtest starts a throwaway PostgreSQL server for tests: initdb in
// a temporary directory, postgres on a free loopback port, and a fresh
// database per test. One server serves a whole test binary:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestX(t *testing.T) {
//		url := pgtest.NewDatabase(t) // postgres://…/t_1
//		…
//	}
//
// The binaries (initdb, pg_ctl, postgres) are looked up on PATH, then
// under /usr/lib/postgresql/*/bin (Debian's layout). Without them the
// tests that need a database skip, except when the environment variable
// CI is set: then Main fails, since CI must run them.
//
// PostgreSQL refuses to run as root. When the tests run as root, the
// server's directory is given to the user nobody and initdb and pg_ctl run
// as nobody, through runuser (util-linux) or else setpriv.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled means the PostgreSQL server binaries were not found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or under /usr/lib/postgresql/*/bin")

// Server is a running throwaway PostgreSQL server.
type Server struct {
	bin  string // directory of initdb, pg_ctl and postgres
	dir  string // owns data/ and the log
	port int
	// asUser runs a command as the unprivileged user (nil when not root).
	asUser func(name string, args ...string) *exec.Cmd
	dbs    atomic.Int64
}

// debianBins is where Debian's postgresql packages put the server binaries.
const debianBins = "/usr/lib/postgresql/*/bin"

// FindBin returns the directory that holds initdb, pg_ctl and postgres:
// initdb's on PATH, else the newest /usr/lib/postgresql/*/bin.
func FindBin() (string, error) { return findBin(debianBins) }

func findBin(glob string) (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if resolved, err := filepath.EvalSymlinks(p); err == nil {
			dir = filepath.Dir(resolved) // /usr/local/bin/initdb → /usr/lib/postgresql/15/bin
		}
		if hasAll(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob(glob)
	// The newest version first: 15 sorts after 9.6 only by number.
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, dir := range dirs {
		if hasAll(dir) {
			return dir, nil
		}
	}
	return "", ErrNotInstalled
}

func versionOf(bin string) int {
	v, _ := strconv.Atoi(strings.Split(filepath.Base(filepath.Dir(bin)), ".")[0])
	return v
}

func hasAll(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
			return false
		}
	}
	return true
}

// Start runs initdb in a new temporary directory and starts postgres on a
// free port of 127.0.0.1. It returns ErrNotInstalled when the binaries are
// missing. Stop the server with Stop.
func Start(ctx context.Context) (*Server, error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "aisix-pg-")
	if err != nil {
		return nil, err
	}
	s := &Server{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		if err := s.dropRoot(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
	initdb := s.command(filepath.Join(bin, "initdb"), "-D", s.data(), "-U", "postgres", "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	// A port free a moment ago may be taken by the time postgres binds
	// it: try a few.
	for try := 0; ; try++ {
		if s.port, err = freePort(); err == nil {
			if err = s.start(ctx); err == nil {
				return s, nil
			}
		}
		if try == 4 {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
}

// dropRoot gives the server's directory to nobody and runs the server's
// commands as nobody: PostgreSQL refuses to run as root.
func (s *Server) dropRoot() error {
	u, err := user.Lookup("nobody")
	if err != nil {
		return fmt.Errorf("running as root, and there is no user nobody to run PostgreSQL as: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(s.dir, uid, gid); err != nil {
		return err
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		s.asUser = func(name string, args ...string) *exec.Cmd {
			return exec.Command(p, append([]string{"-u", "nobody", "--", name}, args...)...)
		}
		return nil
	}
	if p, err := exec.LookPath("setpriv"); err == nil {
		s.asUser = func(name string, args ...string) *exec.Cmd {
			return exec.Command(p, append([]string{"--reuid", u.Uid, "--regid", u.Gid, "--clear-groups", "--", name}, args...)...)
		}
		return nil
	}
	return errors.New("running as root, and neither runuser nor setpriv is there to run PostgreSQL as nobody")
}

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

// command runs name as the server's user, in the server's directory (a
// working directory nobody may not be able to read would make postgres
// complain).
func (s *Server) command(name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if s.asUser != nil {
		cmd = s.asUser(name, args...)
	} else {
		cmd = exec.Command(name, args...)
	}
	cmd.Dir = s.dir
	return cmd
}

// start starts postgres on s.port and waits until it accepts connections.
// Durability is off: the data is thrown away.
func (s *Server) start(ctx context.Context) error {
	opts := fmt.Sprintf("-p %d -h 127.0.0.1 -c unix_socket_directories='' -c fsync=off -c synchronous_commit=off "+
		"-c full_page_writes=off -c max_connections=300", s.port)
	cmd := s.command(filepath.Join(s.bin, "pg_ctl"), "start", "-w", "-t", "60", "-D", s.data(),
		"-l", filepath.Join(s.dir, "postgres.log"), "-o", opts)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "postgres.log"))
		return fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres does not accept connections: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a port of 127.0.0.1 that nothing listened on a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}

// URL is the connection URL of database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// Port is the server's TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// CreateDatabase creates a new, empty database (t_1, t_2, …) and returns
// its URL.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	return s.CreateDatabaseFrom(ctx, "")
}

// CreateDatabaseFrom creates a new database (t_1, t_2, …) as a copy of the
// database template ("" for an empty one) and returns its URL. Nothing may
// be connected to template meanwhile.
func (s *Server) CreateDatabaseFrom(ctx context.Context, template string) (string, error) {
	name := fmt.Sprintf("t_%d", s.dbs.Add(1))
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// DatabaseName is the database a URL of the server names.
func DatabaseName(url string) string {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return ""
	}
	return cfg.Database
}

// Stop stops the server at once (pg_ctl stop -m immediate) and removes its
// directory.
func (s *Server) Stop() error {
	out, err := s.command(filepath.Join(s.bin, "pg_ctl"), "stop", "-m", "immediate", "-D", s.data()).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return errors.Join(err, os.RemoveAll(s.dir))
}

// Halt stops the server (pg_ctl stop -m fast: what was committed is kept)
// and keeps its directory and port, for Restart: a test that takes the
// database away from a running aisix. Use a server of the test's own
// (Start), not Shared's, which other tests are using.
func (s *Server) Halt() error {
	out, err := s.command(filepath.Join(s.bin, "pg_ctl"), "stop", "-m", "fast", "-w", "-D", s.data()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w\n%s", err, out)
	}
	return nil
}

// Restart starts a halted server again, on the same port and data
// directory, and waits until it accepts connections.
func (s *Server) Restart(ctx context.Context) error { return s.start(ctx) }

// The test binary's server, started by Main.
var (
	mu       sync.Mutex
	shared   *Server
	startErr error
)

// Main starts the test binary's server, runs the tests and stops the
// server; it returns the exit code for os.Exit. Without the binaries the
// tests run and NewDatabase skips them, unless CI is set: then Main fails
// at once ("PostgreSQL is required in CI").
func Main(m *testing.M) int {
	srv, err := Start(context.Background())
	if err := required(err, os.Getenv("CI")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	startErr = err
	mu.Lock()
	shared = srv
	mu.Unlock()
	code := m.Run()
	if srv != nil {
		if err := srv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	return code
}

// required returns the error that fails a test binary whose server did
// not start with startErr: none when it started, or when the binaries are
// missing outside CI (the tests skip); every other failure is reported
// by the tests themselves, except that CI must have PostgreSQL.
func required(startErr error, ci string) error {
	if errors.Is(startErr, ErrNotInstalled) && ci != "" {
		return fmt.Errorf("PostgreSQL is required in CI (CI=%s): %w", ci, startErr)
	}
	return nil
}

// Shared returns the server Main started; it skips t when the binaries are
// missing and fails it when the server did not start.
func Shared(t testing.TB) *Server {
	t.Helper()
	mu.Lock()
	srv := shared
	mu.Unlock()
	switch {
	case errors.Is(startErr, ErrNotInstalled):
		t.Skipf("skipping: %v (install the postgresql package)", startErr)
	case startErr != nil:
		t.Fatalf("start PostgreSQL: %v", startErr)
	case srv == nil:
		t.Fatal("pgtest: no server; call pgtest.Main from TestMain")
	}
	return srv
}

// NewDatabase creates a fresh, empty database on the shared server (see
// Main) and returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	return NewDatabaseFrom(t, "")
}

// NewDatabaseFrom creates a fresh database on the shared server as a copy
// of template (a database of that server nothing is connected to) and
// returns its URL: a schema migrated once and copied per test is quicker
// than migrating each.
func NewDatabaseFrom(t testing.TB, template string) string {
	t.Helper()
	url, err := Shared(t).CreateDatabaseFrom(context.Background(), template)
	if err != nil {
		t.Fatal(err)
	}
	return url
}
