package deps_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/deps"
)

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"connect postgres://aisix:s3cret@db:5432/aisix failed", "connect postgres://aisix:xxxxx@db:5432/aisix failed"},
		{"dial redis://:hunter2@cache:6379/0: refused", "dial redis://:xxxxx@cache:6379/0: refused"},
		{"host=db user=aisix password=s3cret dbname=x", "host=db user=aisix password=xxxxx dbname=x"},
		{"cannot parse `postgres://u@h/d?sslpassword='a b'&x=1`", "cannot parse `postgres://u@h/d?sslpassword=xxxxx&x=1`"},
		{"failed to connect to `user=postgres database=t_1`:\n\t127.0.0.1:5432: connection refused", "failed to connect to `user=postgres database=t_1`: 127.0.0.1:5432: connection refused"},
	} {
		if got := deps.Redact(c.in); got != c.want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
	}
}

func TestTracker(t *testing.T) {
	now := time.Date(2026, 12, 2, 5, 12, 3, 0, time.UTC)
	tr := deps.NewTracker(func() time.Time { return now })
	if st := tr.State(); !st.OK() || !st.Since.Equal(now) {
		t.Fatalf("new tracker: %+v", st)
	}
	now = now.Add(time.Minute)
	if !tr.Fail(errors.New("refused: postgres://u:pw@h/d")) {
		t.Error("the first failure did not report the loss")
	}
	lostAt := now
	now = now.Add(time.Second)
	if tr.Fail(errors.New("timeout")) {
		t.Error("a second failure reported the loss again")
	}
	if st := tr.State(); st.OK() || st.Status != deps.StatusUnreachable || !st.Since.Equal(lostAt) || st.LastError != "timeout" {
		t.Fatalf("down: %+v", st)
	}
	now = now.Add(9 * time.Second)
	if back, d := tr.Succeed(); !back || d != 10*time.Second {
		t.Errorf("Succeed = %v, %v; want true, 10s", back, d)
	}
	if back, _ := tr.Succeed(); back {
		t.Error("a second success reported the return again")
	}
	if st := tr.State(); !st.OK() || !st.Since.Equal(now) || st.LastError != "" || !st.LastOK.Equal(now) {
		t.Errorf("back: %+v", st)
	}
}

func TestSet(t *testing.T) {
	var nilSet *deps.Set
	if nilSet.States() != nil || nilSet.Names() != nil {
		t.Error("a nil set has dependencies")
	}
	var s deps.Set
	s.Register("store", func() deps.State { return deps.State{Status: deps.StatusOK, Revision: 3} })
	s.Register("redis", func() deps.State { return deps.State{} })
	s.Register("store", func() deps.State { return deps.State{Status: deps.StatusUnreachable, Revision: 4} })
	got := s.States()
	if len(got) != 2 || got[0].Name != "store" || got[0].Revision != 4 || got[1].Name != "redis" || got[1].Status != deps.StatusOK {
		t.Errorf("states %+v", got)
	}
}

func readyz(t *testing.T, target, accept string, checks []deps.Check, states []deps.State) (int, string, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if accept != "" {
		r.Header.Set("Accept", accept)
	}
	w := httptest.NewRecorder()
	deps.ServeReadyz(w, r, checks, states)
	return w.Code, w.Header().Get("Content-Type"), w.Body.String()
}

func TestServeReadyz(t *testing.T) {
	since := time.Date(2026, 12, 2, 5, 12, 3, 0, time.UTC)
	okChecks := []deps.Check{{Name: "snapshot", OK: true, Detail: "revision 42"}}
	up := []deps.State{{Name: "store", Status: deps.StatusOK, Since: since, Revision: 42}}
	down := []deps.State{
		{Name: "store", Status: deps.StatusUnreachable, Since: since, Revision: 42, LastError: "connection refused", Impact: "serving the last snapshot"},
		{Name: "redis", Status: deps.StatusUnreachable, Since: since, Impact: "limits counted per replica, cooldowns local"},
	}
	for _, c := range []struct {
		name, target string
		checks       []deps.Check
		states       []deps.State
		status       int
		body         string
	}{
		{"all ok is exactly ok", "/readyz", okChecks, up, 200, "ok\n"},
		{"no dependencies", "/readyz", okChecks, nil, 200, "ok\n"},
		{"verbose", "/readyz?verbose", okChecks, up, 200, "ok\n[+]snapshot ok (revision 42)\n[+]store ok (revision 42)\n"},
		{"store down stays ready and says so", "/readyz", okChecks, down, 200,
			"ok\n[-]store unreachable since 2026-12-02T05:12:03Z (serving revision 42): connection refused\n" +
				"[-]redis unreachable since 2026-12-02T05:12:03Z (limits counted per replica, cooldowns local)\n"},
		{"draining", "/readyz?verbose", []deps.Check{{Name: "draining", Fail: "draining"}}, up, 503,
			"draining\n[-]draining failed (draining)\n[+]store ok (revision 42)\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, ct, body := readyz(t, c.target, "", c.checks, c.states)
			if status != c.status || body != c.body || !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("got %d %s\n%s\nwant %d\n%s", status, ct, body, c.status, c.body)
			}
		})
	}

	status, ct, body := readyz(t, "/readyz", "application/json", okChecks, down)
	var got struct {
		Status string `json:"status"`
		Checks []struct {
			Name string `json:"name"`
			OK   bool   `json:"ok"`
		} `json:"checks"`
		Dependencies []deps.State `json:"dependencies"`
	}
	if err := json.Unmarshal([]byte(body), &got); err != nil || status != 200 || ct != "application/json" {
		t.Fatalf("json: %d %s %v\n%s", status, ct, err, body)
	}
	if got.Status != "ok" || len(got.Checks) != 1 || !got.Checks[0].OK || len(got.Dependencies) != 2 ||
		got.Dependencies[0].Status != "unreachable" || got.Dependencies[0].Revision != 42 || !got.Dependencies[0].Since.Equal(since) {
		t.Errorf("json: %+v", got)
	}
	if !strings.Contains(body, `"dependencies":[{"name":"store","status":"unreachable","since":"2026-12-02T05:12:03Z","last_error":"connection refused","revision":42`) {
		t.Errorf("json shape: %s", body)
	}
}
