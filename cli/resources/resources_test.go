package resources_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/cmdutil/clitest"
	"github.com/aisix/aisix/cli/iostreams"
	"github.com/aisix/aisix/cli/resources"
	"github.com/aisix/aisix/storage"
)

// tutorial is the product tutorial's setup as one file, shared with
// storage/resources's tests.
var tutorial = func() string {
	b, err := os.ReadFile(filepath.Join("..", "..", "storage", "resources", "testdata", "tutorial.yaml"))
	if err != nil {
		panic(err)
	}
	return string(b)
}()

func setEnv(t *testing.T) {
	t.Setenv("PRIMARY_OPENAI_API_KEY", "sk-mock-primary-0000000001")
	t.Setenv("SECONDARY_OPENAI_API_KEY", "sk-mock-secondary-000000002")
	t.Setenv("CALLER_KEY", "sk-failover-demo")
	t.Setenv("UPSTREAM", "http://127.0.0.1:9000/v1")
}

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidate(t *testing.T) {
	setEnv(t)
	e := clitest.New(t)
	ok := writeFile(t, "resources.yaml", tutorial)
	r := e.Must("", "validate", "-f", ok)
	if want := ok + ": ok (2 provider keys, 3 models, 1 caller key)\n"; r.Stdout != want {
		t.Errorf("stdout = %q, want %q", r.Stdout, want)
	}

	bad := writeFile(t, "bad.yaml", strings.Replace(strings.Replace(tutorial,
		"- model: gpt-4o-secondary\n", "- model: gpt-4o-tertiary\n", 1),
		"    provider_key: openai-primary\n", "    provider_key: openai-primary\n    timeout_ms: 5\n", 1)+"guardrails: []\n")
	t.Setenv("CALLER_KEY", "")
	r = e.Run("", "validate", "-f", bad)
	want := bad + `:18:18: models[0].routing.targets[1].model: "gpt-4o-tertiary" is not a model in this file or the store
` + bad + `:25:5: models[1].timeout_ms: unknown field
` + bad + `:32:14: api_keys[0].key_env: environment variable CALLER_KEY is empty
` + bad + `:34:1: guardrails: unknown field
`
	if r.Code != 1 || r.Stdout != "" || r.Stderr != want {
		t.Errorf("invalid file: exit %d\nstdout %q\nstderr:\n%s\nwant:\n%s", r.Code, r.Stdout, r.Stderr, want)
	}
	setEnv(t)
	unknown := writeFile(t, "unknown.yaml", tutorial+"guardrails: []\n")
	if r := e.Run("", "validate", "-f", unknown); r.Code != 1 || !strings.Contains(r.Stderr, "guardrails: unknown field") {
		t.Errorf("unknown field: %+v", r)
	}
	r = e.Must("", "validate", "-f", unknown, "--allow-unknown")
	if !strings.Contains(r.Stderr, "warning: "+unknown+":33:1: guardrails: unknown field, ignored") {
		t.Errorf("--allow-unknown stderr = %q", r.Stderr)
	}
	if r := e.Run("", "validate"); r.Code != 2 || !strings.Contains(r.Stderr, "-f FILE") {
		t.Errorf("no -f: %+v", r)
	}
	r = e.Must(tutorial, "validate", "-f", "-")
	if r.Stdout != "-: ok (2 provider keys, 3 models, 1 caller key)\n" {
		t.Errorf("stdin: %q", r.Stdout)
	}
}

func TestValidateUsesLocalStoreNames(t *testing.T) {
	t.Setenv("K", "sk-0000000000000001")
	e := clitest.New(t)
	e.Must("", "provider-key", "create", "--name", "stored-pk", "--provider", "openai", "--secret-env", "K")
	doc := writeFile(t, "r.yaml", `_format_version: "1"
models:
  - {display_name: m, provider: openai, model_name: x, provider_key: stored-pk}
`)
	e.Must("", "validate", "-f", doc)
	// Remote mode never asks the server.
	e.Server = "http://127.0.0.1:1"
	if r := e.Run("", "validate", "-f", doc); r.Code != 1 || !strings.Contains(r.Stderr, `"stored-pk" is not a provider key in this file or the store`) {
		t.Errorf("remote: %+v", r)
	}
}

func TestExport(t *testing.T) {
	clitest.Modes(t, func(t *testing.T, e *clitest.Env) {
		t.Setenv("K", "sk-0000000000000001")
		e.Must("", "provider-key", "create", "--name", "openai-primary", "--provider", "openai", "--api-base", "http://127.0.0.1:9000/v1", "--secret-env", "K")
		e.Must("", "model", "create", "--name", "gpt-4o-primary", "--provider", "openai", "--model-name", "gpt-4o-mini", "--provider-key", "openai-primary")
		e.Must("", "model", "route", "chat-prod", "--strategy", "failover", "--target", "gpt-4o-primary", "--retries", "1")
		e.Must("sk-caller-1", "apikey", "create", "--name", "demo", "--allow-model", "chat-prod", "--key-stdin")
		e.Must("sk-caller-2", "apikey", "create", "--allow-model", "*", "--key-stdin")

		r := e.Must("", "export")
		want := `_format_version: "1"
provider_keys:
  - display_name: openai-primary
    provider: openai
    api_base: http://127.0.0.1:9000/v1
    secret_env: AISIX_SECRET_OPENAI_PRIMARY
models:
  - display_name: chat-prod
    routing:
      strategy: failover
      targets:
        - model: gpt-4o-primary
      retries: 1
  - display_name: gpt-4o-primary
    provider: openai
    model_name: gpt-4o-mini
    provider_key: openai-primary
api_keys:
  - display_name: demo
    key_hash: ` + hash("sk-caller-1") + `
    allowed_models: [chat-prod]
`
		if r.Stdout != want {
			t.Errorf("export:\n%s\nwant:\n%s", r.Stdout, want)
		}
		if !strings.Contains(r.Stderr, "set AISIX_SECRET_OPENAI_PRIMARY") || !strings.Contains(r.Stderr, "it has no display name") {
			t.Errorf("export stderr = %q", r.Stderr)
		}
		if strings.Contains(r.Stdout+r.Stderr, "sk-0000000000000001") {
			t.Error("export printed a secret")
		}
		out := filepath.Join(t.TempDir(), "out.json")
		e.Must("", "export", "-o", "json", "--kind", "models", "-f", out)
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := json.Unmarshal(b, &doc); err != nil || doc["provider_keys"] != nil || len(doc["models"].([]any)) != 2 {
			t.Errorf("export -o json --kind models: %s %v", b, err)
		}
		// What export writes, validate accepts once the placeholder is set.
		t.Setenv("AISIX_SECRET_OPENAI_PRIMARY", "sk-0000000000000001")
		e.Must("", "validate", "-f", writeFile(t, "exported.yaml", r.Stdout))

		if r := e.Run("", "export", "--kind", "guardrails"); r.Code != 2 {
			t.Errorf("--kind guardrails: %+v", r)
		}
	})
}

func hash(s string) string {
	return fmt.Sprintf("%x", sha256.Sum256([]byte(s)))
}

func TestSchema(t *testing.T) {
	r := clitest.New(t).Must("", "schema")
	var s map[string]any
	if err := json.Unmarshal([]byte(r.Stdout), &s); err != nil || s["$schema"] == nil {
		t.Errorf("schema: %v %.200s", err, r.Stdout)
	}
}

// TestDiffErrorsExit2 runs diff through the real command tree: an invalid
// file or an unreadable one is an error (2), not a drift (1).
func TestDiffErrorsExit2(t *testing.T) {
	e := clitest.New(t)
	bad := writeFile(t, "bad.yaml", "_format_version: \"1\"\nmodels:\n  - display_name: x\n")
	if r := e.Run("", "diff", "-f", bad); r.Code != 2 {
		t.Errorf("invalid file: %+v", r)
	}
	if r := e.Run("", "diff", "-f", filepath.Join(t.TempDir(), "missing.yaml")); r.Code != 2 || strings.Count(r.Stderr, "\n") != 1 {
		t.Errorf("missing file: %+v", r)
	}
	if r := e.Run("", "diff", "-f", bad, "-o", "yaml"); r.Code != 2 {
		t.Errorf("-o yaml: %+v", r)
	}
}

// fakeStore is an Applier over an in-memory state: enough of a store to
// drive diff and apply until the real ones are wired in.
type fakeStore struct {
	storage.Store
	rev   int64
	state map[string]map[string]any // "kind name" → fields
	// bump makes the store change between the dry run and the apply.
	bump  bool
	calls []storage.ApplyOptions
}

func newFake() *fakeStore { return &fakeStore{rev: 1, state: map[string]map[string]any{}} }

func (s *fakeStore) Close() error { return nil }

func (s *fakeStore) Revision(context.Context) (int64, error) { return s.rev, nil }

func (s *fakeStore) Load(context.Context) (storage.Dataset, error) {
	var ds storage.Dataset
	for key := range s.state {
		kind, name, _ := strings.Cut(key, " ")
		switch kind {
		case storage.KindProviderKey:
			ds.ProviderKeys = append(ds.ProviderKeys, storage.ProviderKey{DisplayName: name})
		case storage.KindModelRow:
			ds.Models = append(ds.Models, storage.Model{DisplayName: name})
		}
	}
	return ds, nil
}

func fields(v any) map[string]any {
	b, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func (s *fakeStore) Apply(_ context.Context, d storage.Desired, opts storage.ApplyOptions) (storage.ApplyResult, error) {
	s.calls = append(s.calls, opts)
	if s.bump && !opts.DryRun {
		s.rev++
	}
	if opts.IfRevision != 0 && opts.IfRevision != s.rev {
		return storage.ApplyResult{}, storage.Errorf(storage.ErrRevisionMismatch, "revision mismatch")
	}
	want := map[string]map[string]any{}
	for _, pk := range d.ProviderKeys {
		want[storage.KindProviderKey+" "+pk.DisplayName] = fields(pk)
	}
	for _, m := range d.Models {
		want[storage.KindModelRow+" "+m.DisplayName] = fields(m)
	}
	for _, k := range d.APIKeys {
		want[storage.KindAPIKey+" "+k.DisplayName] = fields(k)
	}
	var res storage.ApplyResult
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	for _, key := range keys {
		kind, name, _ := strings.Cut(key, " ")
		c := storage.Change{Kind: kind, Name: name, Action: storage.ActionUnchanged}
		if old, ok := s.state[key]; !ok {
			c.Action = storage.ActionCreate
		} else {
			var names []string
			for f := range want[key] {
				names = append(names, f)
			}
			sort.Strings(names)
			for _, f := range names {
				if o, n := fmt.Sprint(old[f]), fmt.Sprint(want[key][f]); o != n {
					fc := storage.FieldChange{Field: f, Old: o, New: n}
					if f == "Secret" {
						fc = storage.FieldChange{Field: "secret", Old: "(secret)", New: "(secret)", Secret: true}
					}
					c.Fields = append(c.Fields, fc)
				}
			}
			if len(c.Fields) > 0 {
				c.Action = storage.ActionUpdate
			}
		}
		res.Changes = append(res.Changes, c)
	}
	var gone []string
	for key := range s.state {
		if _, ok := want[key]; !ok {
			gone = append(gone, key)
		}
	}
	sort.Strings(gone)
	for _, key := range gone {
		kind, name, _ := strings.Cut(key, " ")
		action := storage.ActionUnmanaged
		if opts.Prune {
			action = storage.ActionDelete
		}
		res.Changes = append(res.Changes, storage.Change{Kind: kind, Name: name, Action: action})
	}
	res.Revision = s.rev
	if opts.DryRun || !res.Changed() {
		return res, nil
	}
	for key, v := range want {
		s.state[key] = v
	}
	if opts.Prune {
		for _, key := range gone {
			delete(s.state, key)
		}
	}
	s.rev++
	res.Revision, res.Applied = s.rev, true
	return res, nil
}

// run runs diff or apply on st with args, stdin a terminal or not, and
// returns the command's error and output.
func run(t *testing.T, st *fakeStore, stdinTTY bool, stdin string, args ...string) (string, string, error) {
	t.Helper()
	ios, in, out, errOut := iostreams.Test()
	ios.SetTTY(stdinTTY, false)
	in.WriteString(stdin)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("AISIX_OUTPUT", "")
	f := cmdutil.New(ios, "test")
	open := func(*cobra.Command) (storage.Store, error) { return st, nil }
	var cmd *cobra.Command
	switch args[0] {
	case "diff":
		cmd = resources.NewCmdDiff(f, func(c *cobra.Command, o *resources.DiffOptions) error {
			o.Store = open
			return resources.DiffRun(c, f, o)
		})
	case "apply":
		cmd = resources.NewCmdApply(f, func(c *cobra.Command, o *resources.ApplyOptions) error {
			o.Store = open
			return resources.ApplyRun(c, f, o)
		})
	}
	cmd.SetArgs(args[1:])
	cmd.SetIn(in)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestDiffAndApply(t *testing.T) {
	setEnv(t)
	st := newFake()
	file := writeFile(t, "resources.yaml", tutorial)

	out, _, err := run(t, st, false, "", "diff", "-f", file)
	wantPlan := `+ create apikey demo
+ create model chat-prod
+ create model gpt-4o-primary
+ create model gpt-4o-secondary
+ create provider-key openai-primary
+ create provider-key openai-secondary
`
	if !errors.Is(err, cmdutil.ErrSilent) || out != wantPlan {
		t.Fatalf("diff on an empty store: err %v\n%s", err, out)
	}

	out, _, err = run(t, st, false, "", "apply", "-f", file)
	if err != nil || out != wantPlan+"applied: revision 2\n" {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	if last := st.calls[len(st.calls)-1]; last.DryRun || last.IfRevision != 1 {
		t.Errorf("apply was not made at the dry run's revision: %+v", st.calls)
	}

	// Idempotent: a second apply changes nothing and diff exits 0.
	out, _, err = run(t, st, false, "", "apply", "-f", file)
	if err != nil || out != "= 6 unchanged\nnothing to change\n" {
		t.Errorf("second apply: %v\n%s", err, out)
	}
	n := len(st.calls)
	if out, _, err = run(t, st, false, "", "diff", "-f", file); err != nil || out != "= 6 unchanged\nnothing to change\n" {
		t.Errorf("diff after apply: %v\n%s", err, out)
	}
	if len(st.calls) != n+1 || !st.calls[n].DryRun {
		t.Errorf("diff made a non-dry-run call: %+v", st.calls[n:])
	}

	// An edit shows up field by field, secrets as (changed).
	t.Setenv("SECONDARY_OPENAI_API_KEY", "sk-rotated-0000000003")
	edited := writeFile(t, "edited.yaml", strings.Replace(tutorial, "      retries: 1\n", "      retries: 2\n", 1))
	out, _, err = run(t, st, false, "", "diff", "-f", edited)
	if !errors.Is(err, cmdutil.ErrSilent) ||
		!strings.Contains(out, "~ update provider-key openai-secondary: secret: (changed)\n") ||
		!strings.Contains(out, "~ update model chat-prod: routing ") || !strings.Contains(out, "= 4 unchanged\n") {
		t.Errorf("diff of an edit: %v\n%s", err, out)
	}
	out, _, err = run(t, st, false, "", "diff", "-f", edited, "-o", "json")
	var res storage.ApplyResult
	if !errors.Is(err, cmdutil.ErrSilent) || json.Unmarshal([]byte(out), &res) != nil || !res.Changed() || res.Applied {
		t.Errorf("diff -o json: %v\n%s", err, out)
	}
	if out, _, err = run(t, st, false, "", "apply", "-f", edited, "--dry-run"); err != nil || !strings.HasSuffix(out, "dry run: nothing applied\n") {
		t.Errorf("apply --dry-run: %v\n%s", err, out)
	}
	if out, _, _ = run(t, st, false, "", "diff", "-f", edited); !strings.Contains(out, "~ update") {
		t.Errorf("--dry-run applied something:\n%s", out)
	}

	// Without --prune nothing is deleted; what the file drops is kept.
	small := writeFile(t, "small.yaml", tutorial[:strings.Index(tutorial, "api_keys:")])
	out, _, err = run(t, st, false, "", "apply", "-f", small)
	if err != nil || !strings.Contains(out, "1 not in the file, kept (--prune deletes them): apikey demo\n") || st.state["api_key demo"] == nil {
		t.Errorf("apply without --prune: %v\n%s", err, out)
	}

	// --prune in a script needs --yes: exit 2, one line, nothing written.
	rev := st.rev
	out, _, err = run(t, st, false, "", "apply", "-f", small, "--prune")
	var fe *cmdutil.FlagError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "pass --yes") || st.rev != rev || !strings.Contains(out, "- delete apikey demo\n") {
		t.Errorf("--prune without --yes: %v\n%s", err, out)
	}
	// On a terminal it asks; "n" keeps everything.
	_, errOut, err := run(t, st, true, "n\n", "apply", "-f", small, "--prune")
	if !errors.Is(err, cmdutil.ErrCancel) || st.rev != rev || !strings.Contains(errOut, "Delete 1 resource not in the file? [y/N]") {
		t.Errorf("--prune, answered n: %v %q", err, errOut)
	}
	out, _, err = run(t, st, true, "y\n", "apply", "-f", small, "--prune")
	if err != nil || !strings.HasSuffix(out, fmt.Sprintf("applied: revision %d\n", rev+1)) || st.state["api_key demo"] != nil {
		t.Errorf("--prune, answered y: %v\n%s", err, out)
	}
	out, _, err = run(t, st, false, "", "apply", "-f", file, "--prune", "--yes", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || !res.Applied {
		t.Errorf("apply --prune --yes -o json: %v\n%s", err, out)
	}
}

func TestApplyRefusesAChangedStore(t *testing.T) {
	setEnv(t)
	st := newFake()
	st.bump = true
	_, _, err := run(t, st, false, "", "apply", "-f", writeFile(t, "r.yaml", tutorial))
	if err == nil || !strings.Contains(err.Error(), "store changed since the plan was made") || len(st.state) != 0 {
		t.Errorf("err = %v, state %v", err, st.state)
	}
}

func TestDiffErrorIsExit2(t *testing.T) {
	st := newFake()
	_, errOut, err := run(t, st, false, "", "diff", "-f", writeFile(t, "r.yaml", "_format_version: \"2\"\n"))
	var ee *cmdutil.ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(errOut, `_format_version: must be "1" (got "2")`) {
		t.Errorf("err = %v, stderr %q", err, errOut)
	}
}
