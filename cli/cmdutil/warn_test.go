package cmdutil_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/spf13/cobra"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/iostreams"
)

// TestStoreWarnsAboutOpenFile checks that a local-mode command opening a
// database file other users can read makes it private and says so in one
// stderr line, and prints nothing on stdout.
func TestStoreWarnsAboutOpenFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "aisix.db")
	t.Setenv("AISIX_DB", db)
	t.Setenv("AISIX_SERVER", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	open := func() (string, string) {
		ios, _, out, errOut := iostreams.Test()
		f := cmdutil.New(ios, "test")
		cmd := &cobra.Command{Use: "x"}
		cmd.SetContext(t.Context())
		s, err := f.Store(cmd)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String()
	}
	if out, errOut := open(); out != "" || errOut != "" {
		t.Fatalf("first open: stdout %q stderr %q, want nothing", out, errOut)
	}
	if err := os.Chmod(db, 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut := open()
	want := "aisix: warning: database file " + db + " had mode 0644, which let other users read it; changed it to 0600\n"
	if out != "" || errOut != want {
		t.Errorf("stdout %q\nstderr %q\nwant   %q", out, errOut, want)
	}
	fi, err := os.Stat(db)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
}
