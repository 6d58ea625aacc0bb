package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/aisix/aisix/cli/iostreams"
)

// TestCompletionsUpToDate fails when completions/ no longer matches what the
// command tree generates: run `make completions` and commit the result.
func TestCompletionsUpToDate(t *testing.T) {
	for shell, file := range map[string]string{
		"bash":       "aisix.bash",
		"zsh":        "_aisix",
		"fish":       "aisix.fish",
		"powershell": "aisix.ps1",
	} {
		t.Run(shell, func(t *testing.T) {
			ios, _, out, errOut := iostreams.Test()
			if code := Run(context.Background(), []string{"completion", shell}, ios); code != 0 {
				t.Fatalf("completion %s: exit %d: %s", shell, code, errOut)
			}
			want, err := os.ReadFile(filepath.Join("..", "completions", file))
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != string(want) {
				t.Fatalf("completions/%s is stale: run `make completions`", file)
			}
		})
	}
}
