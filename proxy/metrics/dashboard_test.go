package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGrafanaDashboard: every query of docs/grafana-dashboard.json names
// only metrics the gateway exposes, and (with promtool) parses as PromQL.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	f.failover()
	text := expose(t, f.m)
	grafana := strings.NewReplacer("$__rate_interval", "5m", "$alias", ".*")
	names := regexp.MustCompile(`aisix_[a-z_]+`)
	var rules strings.Builder
	rules.WriteString("groups:\n- name: dashboard\n  rules:\n")
	n := 0
	for _, p := range dash.Panels {
		for _, q := range p.Targets {
			for _, name := range names.FindAllString(q.Expr, -1) {
				if !strings.Contains(text, "\n"+name) {
					t.Errorf("panel %q: %s is not exposed", p.Title, name)
				}
			}
			n++
			fmt.Fprintf(&rules, "  - record: dashboard:q%d\n    expr: %q\n", n, grafana.Replace(q.Expr))
		}
	}
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found; CI installs the prometheus package")
		}
		t.Skip("promtool not installed")
	}
	file := filepath.Join(t.TempDir(), "rules.yaml")
	if err := os.WriteFile(file, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(path, "check", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}
