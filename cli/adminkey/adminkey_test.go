package adminkey_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
)

type mintedJSON struct {
	Entry struct {
		ID    string `json:"id"`
		Name  string `json:"display_name"`
		Scope string `json:"scope"`
	} `json:"entry"`
	Plaintext string `json:"plaintext"`
}

func create(t *testing.T, e *clitest.Env, name, scope string) mintedJSON {
	t.Helper()
	var m mintedJSON
	out := e.Must("", "admin-key", "create", "--name", name, "--scope", scope, "-o", "json").Stdout
	if err := json.Unmarshal([]byte(out), &m); err != nil || !strings.HasPrefix(m.Plaintext, "ak-") || m.Entry.Scope != scope || m.Entry.ID == "" {
		t.Fatalf("create -o json %q: %v", out, err)
	}
	return m
}

// TestAdminKeyCommands: create, list, rotate and delete in both modes;
// the key is printed once and never listed.
func TestAdminKeyCommands(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		ci := create(t, e, "ci", "write")
		file := filepath.Join(t.TempDir(), "dash.key")
		id := strings.TrimSpace(e.Must("", "admin-key", "create", "--name", "dashboard", "--scope", "status", "--key-file", file, "-q").Stdout)
		b, err := os.ReadFile(file)
		if err != nil || !strings.HasPrefix(string(b), "ak-") || id == "" {
			t.Fatalf("key file %q %v, id %q", b, err, id)
		}
		if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode %v", fi.Mode().Perm())
		}
		list := e.Must("", "admin-key", "list").Stdout
		if !strings.Contains(list, "ci\t"+ci.Entry.ID+"\twrite\t") || !strings.Contains(list, "dashboard\t"+id+"\tstatus\t") {
			t.Errorf("list:\n%s", list)
		}
		if strings.Contains(list, ci.Plaintext) || strings.Contains(list, strings.TrimSpace(string(b))) {
			t.Errorf("list shows a key")
		}
		var rot mintedJSON
		if err := json.Unmarshal([]byte(e.Must("", "admin-key", "rotate", "ci", "-o", "json").Stdout), &rot); err != nil ||
			rot.Entry.ID != ci.Entry.ID || rot.Plaintext == ci.Plaintext || rot.Entry.Scope != "write" {
			t.Errorf("rotate: %+v %v", rot, err)
		}
		e.Must("", "admin-key", "delete", "dashboard", "--yes")
		if list := e.Must("", "admin-key", "list", "-q").Stdout; strings.TrimSpace(list) != ci.Entry.ID {
			t.Errorf("after delete, list -q = %q", list)
		}
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"admin-key", "create", "--name", "x", "--scope", "root"}, 2, `--scope must be one of status, read, write, admin (got "root")`},
			{[]string{"admin-key", "create", "--scope", "read"}, 2, "--name is required"},
			{[]string{"admin-key", "create", "--name", "ci", "--scope", "read"}, 1, `name "ci" already in use by another admin key`},
			{[]string{"admin-key", "delete", "nobody", "--yes"}, 1, "not found"},
		} {
			r := e.Run("", c.args...)
			if r.Code != c.code || !strings.Contains(r.Stderr, c.want) || strings.Count(strings.TrimSpace(r.Stderr), "\n") > 1 {
				t.Errorf("%v: exit %d, stderr %q; want %d with %q", c.args, r.Code, r.Stderr, c.code, c.want)
			}
		}
	})
}

// TestScopedKeysRemote: through the admin API, a read key lists but may not
// write (one readable line, exit 1), and a status key runs the dashboard's
// JSON snapshot.
func TestScopedKeysRemote(t *testing.T) {
	e := clitest.New(t).Remote()
	read := create(t, e, "auditor", "read")
	status := create(t, e, "dash", "status")
	e.Must("sk-primary-test-secret-0001", "provider-key", "create", "--name", "openai-primary", "--provider", "openai", "--secret-stdin", "-q")
	e.Must("", "model", "create", "--name", "gpt", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary", "-q")
	e.Vars = map[string]string{"AISIX_ADMIN_KEY": read.Plaintext}
	if out := e.Must("", "provider-key", "list").Stdout; !strings.Contains(out, "openai-primary") {
		t.Errorf("read key: provider-key list:\n%s", out)
	}
	r := e.Run("", "model", "create", "--name", "m", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary")
	if r.Code != 1 || !strings.Contains(r.Stderr, "scope read") || !strings.Contains(r.Stderr, "needs scope write") {
		t.Errorf("read key writing: exit %d %q", r.Code, r.Stderr)
	}
	if r := e.Run("", "admin-key", "list"); r.Code != 1 || !strings.Contains(r.Stderr, "needs scope admin") {
		t.Errorf("read key listing admin keys: exit %d %q", r.Code, r.Stderr)
	}

	e.Vars = map[string]string{"AISIX_ADMIN_KEY": status.Plaintext}
	for _, args := range [][]string{{"status", "-o", "json"}, {"status", "--limits", "-o", "json"}} {
		out := e.Must("", args...).Stdout
		var v any
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Errorf("status key: %v: %v\n%s", args, err, out)
		}
		if args[1] == "-o" && !strings.Contains(out, `"gpt"`) {
			t.Errorf("status key: the snapshot lacks the model:\n%s", out)
		}
	}
	if r := e.Run("", "model", "list"); r.Code != 1 || !strings.Contains(r.Stderr, "needs scope read") {
		t.Errorf("status key listing models: exit %d %q", r.Code, r.Stderr)
	}
}
