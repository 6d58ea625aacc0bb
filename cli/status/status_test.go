package status_test

import (
	"strings"
	"testing"

	"github.com/aisix/aisix/cli/cmdutil/clitest"
)

// TestStatusLimitsJSON: -o json --limits prints the limit rows (none on a
// server without a limiter); --limits needs -o json.
func TestStatusLimitsJSON(t *testing.T) {
	e := clitest.New(t).Remote()
	if r := e.Must("", "status", "-o", "json", "--limits"); strings.TrimSpace(r.Stdout) != "[]" {
		t.Errorf("status -o json --limits: %q", r.Stdout)
	}
	if r := e.Run("", "status", "-o", "table", "--limits"); r.Code != 2 || !strings.Contains(r.Stderr, "--limits goes with -o json") {
		t.Errorf("status -o table --limits: %d %q", r.Code, r.Stderr)
	}
}
