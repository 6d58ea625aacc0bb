// Package clitest runs the aisix command tree in-process, for the tests of
// the command packages: local mode on a temporary SQLite file, or remote
// mode against an admin API server over one.
package clitest

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/cli"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/proxy/admin"
	"github.com/aisix/aisix/storage/sqlite"
)

// AdminKey is the admin key of the servers Server starts.
const AdminKey = "admin-clitest-key-0123456789"

// Result is what one run of aisix did.
type Result struct {
	Code           int
	Stdout, Stderr string
}

// Env is where commands run: the database file of local mode, and the
// admin API of remote mode once Remote has been called.
type Env struct {
	t  testing.TB
	DB string
	// Server is the admin API URL in remote mode, "" in local mode.
	Server string
	// TTY makes stdout claim to be a terminal.
	TTY bool
	// Vars are more environment variables for every run (set after the
	// ones Run sets, so they may replace them).
	Vars map[string]string
}

// New returns a local-mode environment on a new database path (the file
// does not exist yet). It sets environment variables, so tests using it
// cannot run in parallel.
func New(t testing.TB) *Env {
	t.Helper()
	return &Env{t: t, DB: filepath.Join(t.TempDir(), "aisix.db")}
}

// Remote starts an admin API server on e's database and switches e to
// remote mode.
func (e *Env) Remote() *Env {
	e.t.Helper()
	st, err := sqlite.Open(context.Background(), e.DB)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.t.Cleanup(func() { _ = st.Close() })
	ts := httptest.NewServer(admin.New(admin.Config{Store: st, Keys: []string{AdminKey}}))
	e.t.Cleanup(ts.Close)
	e.Server = ts.URL
	return e
}

// Run runs aisix with args, stdin as its standard input.
func (e *Env) Run(stdin string, args ...string) Result {
	e.t.Helper()
	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(false, e.TTY)
	in.WriteString(stdin)
	e.t.Setenv("AISIX_DB", e.DB)
	e.t.Setenv("AISIX_SERVER", e.Server)
	e.t.Setenv("AISIX_ADMIN_KEY", AdminKey)
	e.t.Setenv("AISIX_CONFIG", "")
	e.t.Setenv("AISIX_OUTPUT", "")
	e.t.Setenv("XDG_CONFIG_HOME", e.t.TempDir())
	for _, k := range []string{"AISIX_SECRET_KEY", "AISIX_SECRET_KEY_FILE", "AISIX_SECRET_KEY_PREVIOUS"} {
		e.t.Setenv(k, "")
	}
	for k, v := range e.Vars {
		e.t.Setenv(k, v)
	}
	code := cli.Run(context.Background(), args, ios)
	return Result{Code: code, Stdout: out.String(), Stderr: errOut.String()}
}

// Must runs aisix and fails the test unless it exits 0.
func (e *Env) Must(stdin string, args ...string) Result {
	e.t.Helper()
	r := e.Run(stdin, args...)
	if r.Code != 0 {
		e.t.Fatalf("aisix %q: exit %d\nstdout: %s\nstderr: %s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// Modes runs fn twice, in subtests: in local mode and in remote mode
// (through an admin API server), each on a new database.
func Modes(t *testing.T, fn func(t *testing.T, e *Env)) {
	t.Run("local", func(t *testing.T) { fn(t, New(t)) })
	t.Run("remote", func(t *testing.T) { fn(t, New(t).Remote()) })
}
