package demo

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/cli/cmdutil"
	"github.com/aisix/aisix/cli/demo/mockopenai"
	"github.com/aisix/aisix/cli/iostreams"
)

// bound bounds every wait of these tests: generous for a busy machine.
const bound = 60 * time.Second

func TestNewCmdDemo(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		tty       bool
		wantNoTUI bool
		wantDB    string
		wantErr   string
	}{
		{name: "terminal", tty: true},
		{name: "no terminal runs the scenario", wantNoTUI: true},
		{name: "--no-tui", args: []string{"--no-tui"}, tty: true, wantNoTUI: true},
		{name: "--db", args: []string{"--db", "demo.db"}, tty: true, wantDB: "demo.db"},
		{name: "--db empty", args: []string{"--db", ""}, tty: true, wantErr: "--db needs a file name"},
		{name: "no arguments", args: []string{"extra"}, tty: true, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, _, _ := iostreams.Test()
			ios.SetTTY(tt.tty, tt.tty)
			f := cmdutil.New(ios, "0.1.0")
			var got *Options
			cmd := NewCmdDemo(f, func(_ context.Context, o *Options) error { got = o; return nil })
			// The root command's persistent --db.
			cmd.PersistentFlags().String("db", "", "")
			cmd.SetArgs(tt.args)
			cmd.SetOut(io.Discard)
			cmd.SetErr(io.Discard)
			err := cmd.Execute()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.NoTUI != tt.wantNoTUI || got.DB != tt.wantDB {
				t.Errorf("options NoTUI %v DB %q, want %v %q", got.NoTUI, got.DB, tt.wantNoTUI, tt.wantDB)
			}
		})
	}
}

// fast is the demo at test speed: free ports, mocks that answer at once,
// a cooldown of 3 s (long enough to read it on a busy machine).
var fast = stackConfig{anyPorts: true, pace: &mockopenai.Pace{}, cooldownSeconds: 3}

func TestRunScenario(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := Run(ctx, &Options{IO: ios, Version: "test", NoTUI: true, cfg: fast}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	text := out.String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?s)\[1/6\] healthy .*x-aisix-served-by: gpt-4o-primary\n`),
		regexp.MustCompile(`(?s)\[3/6\] failover .*x-aisix-served-by: gpt-4o-secondary\n\s+x-aisix-attempts: gpt-4o-primary=transport_error`),
		regexp.MustCompile(`\[4/6\] cooldown .*\n\s+gpt-4o-primary: status cooldown, status_reason transport_error, cooldown_until \d\d:\d\d:\d\d`),
		regexp.MustCompile(`(?s)\[6/6\] recovery .*x-aisix-served-by: gpt-4o-primary\n.*gpt-4o-primary: status healthy\n`),
		regexp.MustCompile(`every step behaved`),
	} {
		if !want.MatchString(text) {
			t.Errorf("output does not match %s:\n%s", want, text)
		}
	}
	dir := regexp.MustCompile(`temp dir +(\S+)`).FindStringSubmatch(text)
	if dir == nil {
		t.Fatalf("no temp dir in the output:\n%s", text)
	}
	if _, err := os.Stat(dir[1]); !os.IsNotExist(err) {
		t.Errorf("temp dir %s is still there (%v)", dir[1], err)
	}
}

func TestRunKeepsADBFile(t *testing.T) {
	db := filepath.Join(t.TempDir(), "demo.db")
	ios, _, out, _ := iostreams.Test()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	if err := Run(ctx, &Options{IO: ios, NoTUI: true, DB: db, cfg: fast}); err != nil {
		t.Fatalf("Run: %v\n%s", err, out)
	}
	if !strings.Contains(out.String(), db+" (kept)") {
		t.Errorf("the output does not say the store is kept:\n%s", out)
	}
	if _, err := os.Stat(db); err != nil {
		t.Fatalf("the store is gone: %v", err)
	}
	// Again on the same file: its resources would clash.
	err := Run(ctx, &Options{IO: ios, NoTUI: true, DB: db, cfg: fast})
	if err == nil || !strings.Contains(err.Error(), "needs an empty one") {
		t.Fatalf("second run on the same store: %v", err)
	}
}

// TestStartOnTakenPorts: the ports picked first are taken by another
// server (which answers /readyz, as another aisix would); the demo starts
// on others and configures its own server, not that one.
func TestStartOnTakenPorts(t *testing.T) {
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/readyz" {
			return
		}
		http.Error(w, `{"error_msg":"invalid admin key"}`, http.StatusUnauthorized)
	}))
	defer foreign.Close()
	taken := strings.TrimPrefix(foreign.URL, "http://")
	var tries int
	cfg := fast
	cfg.pick = func(bool) (string, string, error) {
		tries++
		if tries == 1 {
			return taken, taken, nil
		}
		return pickAddrs(false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	st, err := startStack(ctx, cfg.withDefaults(), "", "test")
	if err != nil {
		t.Fatal(err)
	}
	defer st.stop()
	if tries != 2 || st.adminURL == foreign.URL || st.proxyURL == foreign.URL {
		t.Errorf("%d tries, admin %s proxy %s (foreign %s)", tries, st.adminURL, st.proxyURL, foreign.URL)
	}
	models, err := st.client.ListModels(ctx)
	if err != nil || len(models) != 3 {
		t.Errorf("models on the demo's server: %d (%v)", len(models), err)
	}
}

func TestBreakKeys(t *testing.T) {
	p, err := mockopenai.Start(mockopenai.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	want := map[string]struct {
		mode   mockopenai.Mode
		result string
	}{
		"1": {mockopenai.Refuse, "primary now refuses connections"},
		"2": {mockopenai.Hang, "primary now hangs (accepts, never answers)"},
		"3": {mockopenai.ServerError, "primary now answers 500"},
		"4": {mockopenai.RateLimited, "primary now answers 429"},
		"0": {mockopenai.Healthy, "primary restored: it serves again once its cooldown ends"},
	}
	keys := breakKeys(p)
	if len(keys) != len(want) {
		t.Fatalf("%d keys, want %d", len(keys), len(want))
	}
	for _, k := range keys {
		w := want[k.Key]
		if got := k.Run(context.Background()); got != w.result || p.Mode() != w.mode {
			t.Errorf("key %s: %q and mode %v, want %q and %v", k.Key, got, p.Mode(), w.result, w.mode)
		}
	}
	p.Close()
	if got := keys[0].Run(context.Background()); !strings.Contains(got, "closed") {
		t.Errorf("on a closed upstream: %q", got)
	}
}

func TestTraffic(t *testing.T) {
	type seen struct {
		stream bool
		model  string
		auth   string
	}
	reqs := make(chan seen, 64)
	// Every request hangs, as on a hung gateway: stop must still return.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		select {
		case reqs <- seen{body.Stream, body.Model, r.Header.Get("Authorization")}:
		default:
		}
		<-r.Context().Done()
	}))
	defer srv.Close()

	stop := startTraffic(context.Background(), srv.URL, "sk-demo-test")
	var plain, stream int
	deadline := time.After(bound)
	for plain == 0 || stream == 0 {
		select {
		case s := <-reqs:
			if s.model != groupName || s.auth != "Bearer sk-demo-test" {
				t.Fatalf("request %+v", s)
			}
			if s.stream {
				stream++
			} else {
				plain++
			}
		case <-deadline:
			t.Fatalf("after %v: %d plain and %d streaming requests, want some of each", bound, plain, stream)
		}
	}
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(bound):
		t.Fatal("stop did not return")
	}
}
