package e2e

// Issue 19: the admin audit log. The tutorial's writes through the real
// binary's admin API are recorded, with a failed admin login, and read
// back with `aisix audit` in local and in remote mode; no secret reaches
// a record or serve's log.

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAuditLog(t *testing.T) {
	g := startGateway(t, serveOptions{})
	setupTutorial(t, g, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", tutorialConfig{})
	const wrongKey = "wrong-admin-key-e2e-0123456789"
	req, err := http.NewRequest(http.MethodDelete, g.admin+"/admin/v1/models/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+wrongKey)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong admin key answered %d", resp.StatusCode)
	}

	want := []string{
		"DELETE auth 401", "POST apikeys 201", "POST models 201", "POST models 201", "POST models 201",
		"POST provider_keys 201", "POST provider_keys 201",
	}
	for _, mode := range [][]string{nil, {"--server", g.admin}} {
		out := g.run(t, append(mode, "audit", "--since", "1h", "-o", "json")...)
		var page struct {
			Items []struct {
				Method, Kind string
				Status       int
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("aisix %v audit -o json: %v\n%s", mode, err, out)
		}
		var got []string
		for _, it := range page.Items {
			got = append(got, it.Method+" "+it.Kind+" "+strconv.Itoa(it.Status))
		}
		if strings.Join(got, ", ") != strings.Join(want, ", ") {
			t.Errorf("aisix %v audit: %s\nwant %s", mode, strings.Join(got, ", "), strings.Join(want, ", "))
		}
		for _, s := range []string{primarySecret, secondarySecret, callerKey, adminKey, wrongKey} {
			if strings.Contains(out, s) {
				t.Errorf("aisix %v audit shows the secret %q", mode, s)
			}
		}
	}
	g.log.waitLine(t, 30*time.Second, "an audit line of the failed login", func(l string) bool {
		m := jsonLine(l)
		return m["component"] == "audit" && m["kind"] == "auth" && m["error_msg"] == "unknown admin key"
	})
	for _, s := range []string{primarySecret, secondarySecret, callerKey, adminKey, wrongKey} {
		if strings.Contains(g.log.String(), s) {
			t.Errorf("serve's log holds the secret %q", s)
		}
	}
}
