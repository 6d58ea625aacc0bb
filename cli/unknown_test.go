package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestUnknownCommandsExit2WithSuggestion(t *testing.T) {
	db := filepath.Join(t.TempDir(), "aisix.db")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"lsit"}, `aisix: unknown command "lsit" for "aisix"` + "\n"},
		{[]string{"docter"}, `aisix: unknown command "docter" for "aisix"; did you mean "doctor"?` + "\n"},
		{[]string{"migrat"}, `aisix: unknown command "migrat" for "aisix"; did you mean "migrate"?` + "\n"},
		{[]string{"model", "lsit"}, `aisix: unknown command "lsit" for "aisix model"; did you mean "list"?` + "\n"},
		{[]string{"provider-key", "lst"}, `aisix: unknown command "lst" for "aisix provider-key"; did you mean "list"?` + "\n"},
		{[]string{"pk", "tset"}, `aisix: unknown command "tset" for "aisix provider-key"; did you mean "get" or "test"?` + "\n"},
		{[]string{"model", "lsit", "--nope"}, "aisix: unknown flag: --nope\n"},
		{[]string{"completion", "bsh"}, `aisix: unknown command "bsh" for "aisix completion"; did you mean "bash" or "zsh"?` + "\n"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, db, "", tc.args...)
			if code != ExitUsage || out != "" || errOut != tc.want {
				t.Errorf("exit %d stdout %q\nstderr %q\nwant   %q", code, out, errOut, tc.want)
			}
		})
	}
}

func TestBareCommandGroupPrintsHelp(t *testing.T) {
	db := filepath.Join(t.TempDir(), "aisix.db")
	for _, args := range [][]string{{}, {"model"}, {"provider-key"}, {"model", "--help"}} {
		t.Run(strings.Join(append([]string{"aisix"}, args...), " "), func(t *testing.T) {
			code, out, errOut := runCLI(t, db, "", args...)
			if code != ExitOK || errOut != "" || !strings.Contains(out, "Available Commands:") {
				t.Errorf("exit %d stderr %q stdout:\n%s", code, errOut, out)
			}
		})
	}
}
