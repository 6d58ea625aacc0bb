package secrets_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
	clisecrets "github.com/aisix/aisix/cli/secrets"
)

const plaintext = "sk-cli-secret-0123456789abcdef"

func status(t *testing.T, e *clitest.Env) clisecrets.Status {
	t.Helper()
	var st clisecrets.Status
	if err := json.Unmarshal([]byte(e.Must("", "secrets", "status", "-o", "json").Stdout), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func states(st clisecrets.Status) map[string]int {
	m := map[string]int{}
	for _, r := range st.Secrets {
		m[r.State] += r.Count
	}
	return m
}

// keyLine is the key a key file holds (its first non-comment line).
func keyLine(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			return l
		}
	}
	t.Fatalf("no key in %s", path)
	return ""
}

// TestInitStatusRotate walks the life of a key on a SQLite file: plaintext
// secrets, init encrypts them (and the file holds no plaintext any more),
// status classifies them, local-mode writes encrypt, rotate-key moves
// everything to a new key in one go, and no output ever shows a key.
func TestInitStatusRotate(t *testing.T) {
	e := clitest.New(t)
	dir := t.TempDir()
	k1, k2 := filepath.Join(dir, "k1"), filepath.Join(dir, "k2")
	e.Must(plaintext, "provider-key", "create", "--name", "a", "--provider", "openai", "--secret-stdin", "-q")
	if got := states(status(t, e)); got["plaintext"] != 1 || len(got) != 1 {
		t.Fatalf("status before init = %v", got)
	}

	r := e.Must("", "secrets", "init", "--key-file", k1)
	if !strings.Contains(r.Stdout, "Encrypted 1 provider secret(s)") || !strings.Contains(r.Stdout, "AISIX_SECRET_KEY_FILE="+k1) {
		t.Fatalf("init said:\n%s", r.Stdout)
	}
	if fi, err := os.Stat(k1); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	key1 := keyLine(t, k1)
	if strings.Contains(r.Stdout+r.Stderr, key1) {
		t.Fatal("init printed the key")
	}
	for _, p := range []string{e.DB, e.DB + "-wal"} {
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(plaintext)) {
			t.Errorf("%s holds the plaintext secret after init", filepath.Base(p))
		}
	}
	if r := e.Run("", "secrets", "init", "--key-file", k1); r.Code != 1 || !strings.Contains(r.Stderr, "already exists") {
		t.Fatalf("second init: exit %d %s", r.Code, r.Stderr)
	}
	if after := keyLine(t, k1); after != key1 {
		t.Fatal("second init changed the key file")
	}

	// Without the key the row is there, its secret unreadable.
	if got := states(status(t, e)); got["unknown"] != 1 {
		t.Fatalf("status without the key = %v", got)
	}
	if out := e.Must("", "provider-key", "list").Stdout; !strings.Contains(out, "(encrypted with key") {
		t.Fatalf("list without the key:\n%s", out)
	}

	e.Vars = map[string]string{"AISIX_SECRET_KEY_FILE": k1}
	st := status(t, e)
	if got := states(st); got["current"] != 1 || len(got) != 1 || st.CurrentKeyID == "" {
		t.Fatalf("status with the key = %+v", st)
	}
	e.Must("sk-cli-second-0123456789abcdef", "provider-key", "create", "--name", "b", "--provider", "openai", "--secret-stdin", "-q")
	if out := e.Must("", "provider-key", "list").Stdout; !strings.Contains(out, "sk-…cdef") || strings.Contains(out, plaintext) {
		t.Fatalf("list with the key:\n%s", out)
	}

	// A second key while one is configured: made, nothing moved.
	r = e.Must("", "secrets", "init", "--key-file", k2)
	if !strings.Contains(r.Stdout, "already configured") || !strings.Contains(r.Stdout, "rotate-key --new-key-file "+k2) {
		t.Fatalf("init with a key configured:\n%s", r.Stdout)
	}
	if got := states(status(t, e)); got["current"] != 2 {
		t.Fatalf("init with a key configured moved secrets: %v", got)
	}
	r = e.Must("", "secrets", "rotate-key", "--new-key-file", k2)
	if !strings.Contains(r.Stdout, "Re-encrypted 2 provider secret(s)") || strings.Contains(r.Stdout+r.Stderr, keyLine(t, k2)) {
		t.Fatalf("rotate-key said:\n%s%s", r.Stdout, r.Stderr)
	}
	if got := states(status(t, e)); got["unknown"] != 2 {
		t.Fatalf("after rotation the old key alone should read nothing: %v", got)
	}
	e.Vars = map[string]string{"AISIX_SECRET_KEY_FILE": k2}
	if got := states(status(t, e)); got["current"] != 2 || len(got) != 1 {
		t.Fatalf("status with the new key = %v", got)
	}
	// The old key as a previous one, given in the environment.
	e.Vars["AISIX_SECRET_KEY_PREVIOUS"] = key1
	if st := status(t, e); len(st.PreviousKeyIDs) != 1 {
		t.Fatalf("previous keys = %v", st.PreviousKeyIDs)
	}
}

// TestRotateReportsUnknownKeys: rows under a key neither key file holds
// are left as they are, reported by key ID, and fail the command.
func TestRotateReportsUnknownKeys(t *testing.T) {
	e := clitest.New(t)
	dir := t.TempDir()
	lost, next := filepath.Join(dir, "lost"), filepath.Join(dir, "next")
	e.Must("", "secrets", "init", "--key-file", lost)
	e.Must("", "secrets", "init", "--key-file", next)
	e.Vars = map[string]string{"AISIX_SECRET_KEY_FILE": lost}
	e.Must(plaintext, "provider-key", "create", "--name", "a", "--provider", "openai", "--secret-stdin", "-q")
	e.Vars = nil
	r := e.Run("", "secrets", "rotate-key", "--new-key-file", next)
	if r.Code != 1 || !strings.Contains(r.Stderr, "which is not loaded") {
		t.Fatalf("rotate-key: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestBadInput(t *testing.T) {
	e := clitest.New(t)
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(strings.Repeat("ab", 32)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		vars map[string]string
		args []string
		code int
		want string
	}{
		{"rotate without a file", nil, []string{"secrets", "rotate-key"}, 2, "--new-key-file is required"},
		{"readable key file", map[string]string{"AISIX_SECRET_KEY_FILE": open}, []string{"secrets", "status"}, 1, "chmod 600"},
		{"bad env key", map[string]string{"AISIX_SECRET_KEY": "hunter2-not-a-key"}, []string{"model", "list"}, 1, "AISIX_SECRET_KEY is not a 256-bit key"},
		{"quiet status", nil, []string{"secrets", "status", "-q"}, 2, "--quiet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.Vars = tc.vars
			r := e.Run("", tc.args...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) || strings.Count(r.Stderr, "\n") != 1 || strings.Contains(r.Stderr, "hunter2") {
				t.Fatalf("exit %d, stderr %q; want exit %d with one line containing %q", r.Code, r.Stderr, tc.code, tc.want)
			}
		})
	}
}

// TestRemoteModeExits2: over the admin API every secrets command exits 2
// with one line.
func TestRemoteModeExits2(t *testing.T) {
	e := clitest.New(t).Remote()
	for _, args := range [][]string{{"init", "--key-file", filepath.Join(t.TempDir(), "k")}, {"status"}, {"rotate-key", "--new-key-file", "x"}} {
		r := e.Run("", append([]string{"secrets"}, args...)...)
		if r.Code != 2 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, "direct access to the database") {
			t.Errorf("secrets %v: exit %d %q", args, r.Code, r.Stderr)
		}
	}
}
