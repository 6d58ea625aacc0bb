package e2e

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// demoRun bounds a whole `aisix demo --no-tui`: it takes the 8 s cooldown
// and a few seconds more.
const demoRun = 2 * time.Minute

// demoHome is a home for one demo run: HOME, XDG dirs and TMPDIR inside
// the test's temp dir, so the test can tell that nothing was left behind.
type demoHome struct {
	root, tmp string
	env       []string
}

func newDemoHome(t *testing.T) *demoHome {
	t.Helper()
	root := t.TempDir()
	h := &demoHome{root: root, tmp: filepath.Join(root, "tmp")}
	if err := os.Mkdir(h.tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	h.env = []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + root,
		"XDG_CONFIG_HOME=" + filepath.Join(root, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(root, ".data"),
		"TMPDIR=" + h.tmp,
		"NO_COLOR=1",
	}
	return h
}

// checkClean fails unless the demo removed its temp dir (named in out)
// and wrote nothing else under the home.
func (h *demoHome) checkClean(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`temp dir +(\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the output names no temp dir:\n%s", out)
	}
	if !strings.HasPrefix(m[1], h.tmp) {
		t.Errorf("temp dir %s is not under TMPDIR %s", m[1], h.tmp)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s still there after exit (%v)", m[1], err)
	}
	var left []string
	_ = filepath.WalkDir(h.root, func(p string, d os.DirEntry, err error) error {
		if err == nil && p != h.root && p != h.tmp {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("the demo left files behind: %v", left)
	}
}

// TestDemoScenario runs `aisix demo --no-tui` through its scripted
// failover and recovery, off a terminal.
func TestDemoScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the demo's cooldown")
	}
	t.Parallel()
	h := newDemoHome(t)
	ctx, cancel := context.WithTimeout(context.Background(), demoRun)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "aisix"), "demo", "--no-tui")
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("aisix demo --no-tui: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	t.Logf("scenario took %v", time.Since(start).Round(time.Millisecond))
	if stderr.Len() > 0 {
		t.Errorf("stderr: %s", stderr.String())
	}
	for _, want := range []string{
		// Each step, with the headers of its answer.
		`(?s)\[1/6\] healthy .*?x-aisix-served-by: gpt-4o-primary\n`,
		`\[2/6\] break .*refuses connections`,
		`(?s)\[3/6\] failover .*?x-aisix-served-by: gpt-4o-secondary\n\s+x-aisix-attempts: gpt-4o-primary=transport_error,.*gpt-4o-secondary=200\n`,
		`\[4/6\] cooldown .*\n\s+gpt-4o-primary: status cooldown, status_reason transport_error, cooldown_until \d\d:\d\d:\d\d`,
		`\[5/6\] restore `,
		`(?s)\[6/6\] recovery .*?x-aisix-served-by: gpt-4o-primary\n\s+x-aisix-attempts: gpt-4o-primary=200\n.*gpt-4o-primary: status healthy\n`,
		`every step behaved`,
		// How to reach it.
		`curl -sSi http://127\.0\.0\.1:\d+/v1/chat/completions -H "Authorization: Bearer sk-demo-[0-9a-f]+"`,
		`AISIX_SERVER=http://127\.0\.0\.1:\d+ AISIX_ADMIN_KEY=admin-demo-[0-9a-f]+ aisix status`,
		`demo stopped`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("output does not match %s:\n%s", want, out)
		}
	}
	h.checkClean(t, out)
}

// TestDemoRefusesAStoreInUse: --db on a store that already holds
// resources fails with one line and exit 1, and leaves the store as it was.
func TestDemoRefusesAStoreInUse(t *testing.T) {
	t.Parallel()
	h := newDemoHome(t)
	db := filepath.Join(t.TempDir(), "in-use.db")
	aisix := filepath.Join(binDir, "aisix")
	create := exec.Command(aisix, "provider-key", "create", "--db", db, "--name", "mine", "--provider", "openai",
		"--api-base", "http://127.0.0.1:9/v1", "--secret-env", "SECRET", "-q")
	create.Env = append(h.env, "SECRET=sk-test-secret-000000000001")
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("provider-key create: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), demoRun)
	defer cancel()
	cmd := exec.CommandContext(ctx, aisix, "demo", "--no-tui", "--db", db)
	cmd.Env = h.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit %v, want 1\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	if lines := strings.Split(strings.TrimSpace(stderr.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], "needs an empty one") {
		t.Errorf("stderr is not one line saying why: %q", stderr.String())
	}
	list := exec.Command(aisix, "provider-key", "list", "--db", db, "-q")
	list.Env = h.env
	if out, err := list.Output(); err != nil || strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
		t.Errorf("the store changed: %v %q", err, out)
	}
	if entries, err := os.ReadDir(h.tmp); err != nil || len(entries) > 0 {
		t.Errorf("TMPDIR holds %v (%v)", entries, err)
	}
}
