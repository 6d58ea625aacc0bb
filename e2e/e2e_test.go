// Package e2e drives the real aisix binary: TestMain builds ./cmd/aisix once,
// puts it on PATH, and testscript runs the scenarios in testdata/*.txtar
// against `aisix serve` on a temp SQLite file, free loopback ports and local
// mock upstreams. The fault tests (TestUpstream*, TestCaller*, TestConfig*;
// harness in harness_test.go) drive the same binary from Go, with upstreams
// and callers that misbehave.
package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/aisix/aisix/e2e/mockup"
)

var binDir string

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "aisix-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", filepath.Join(dir, "aisix"), "../cmd/aisix")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build aisix:", err)
		return 1
	}
	binDir = dir
	// Most of the fault tests wait on aisix's timers (20-60 s each), not
	// on the CPU: unless -parallel was given, let more of them wait at
	// once than the default GOMAXPROCS, so the package takes about as long
	// as its longest test.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "16")
	}
	return m.Run()
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", binDir+string(os.PathListSeparator)+env.Getenv("PATH"))
			env.Setenv("HOME", env.WorkDir)
			env.Setenv("XDG_DATA_HOME", filepath.Join(env.WorkDir, ".data"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			env.Setenv("NO_COLOR", "1")
			for _, name := range []string{"PROXY_ADDR", "ADMIN_ADDR", "AISIX_METRICS_ADDR"} {
				addr, err := freeAddr()
				if err != nil {
					return err
				}
				env.Setenv(name, addr)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"waithttp":  cmdWaitHTTP,
			"waitsync":  cmdWaitSync,
			"waitadmin": cmdWaitAdmin,
			"sighup":    cmdSIGHUP,
			"http":      cmdHTTP,
			"mock":      cmdMock,
			"sha256":    cmdSHA256,
			"jsonget":   cmdJSONGet,
		},
	})
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waithttp URL [status]: poll URL until it answers (with status, default 200),
// for up to 60 seconds.
func cmdWaitHTTP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 || len(args) > 2 {
		ts.Fatalf("usage: waithttp URL [status]")
	}
	want := 200
	if len(args) == 2 {
		n, err := strconv.Atoi(args[1])
		if err != nil {
			ts.Fatalf("waithttp: bad status %q", args[1])
		}
		want = n
	}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(args[0])
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond) // polling a process we do not control
	}
	ts.Fatalf("waithttp %s: no %d within 60s (last: %s)", args[0], want, last)
}

// waitsync ADMINURL: wait until the running server's routing snapshot has
// caught up with its store (config_revision == store_revision in
// GET /admin/v1/info), for writes made straight to the SQLite file.
func cmdWaitSync(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitsync ADMINURL")
	}
	if err := waitSync(args[0], ts.Getenv("AISIX_ADMIN_KEY")); err != nil {
		ts.Fatalf("%v", err)
	}
}

// waitSync polls GET /admin/v1/info until config_revision == store_revision.
func waitSync(admin, key string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, err := http.NewRequest(http.MethodGet, admin+"/admin/v1/info", nil)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var info struct {
				Config int64 `json:"config_revision"`
				Store  int64 `json:"store_revision"`
			}
			err = json.NewDecoder(resp.Body).Decode(&info)
			resp.Body.Close()
			if err == nil && info.Config == info.Store && info.Store > 0 {
				return nil
			}
			last = fmt.Sprintf("config %d, store %d, err %v", info.Config, info.Store, err)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
	return fmt.Errorf("waitsync: snapshot did not catch up within 30s (%s)", last)
}

// sighup PATTERN: send SIGHUP to this test's child processes whose command
// line holds PATTERN (testscript's kill knows only INT and KILL). Linux:
// it reads /proc.
func cmdSIGHUP(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: sighup PATTERN")
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		ts.Fatalf("sighup: %v", err)
	}
	sent := 0
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		// The parent pid is the 4th field, after the command in parentheses.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 2 || f[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !bytes.Contains(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}), []byte(args[0])) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
			ts.Fatalf("sighup %d: %v", pid, err)
		}
		sent++
	}
	if sent == 0 {
		ts.Fatalf("sighup: no child process matches %q", args[0])
	}
}

// waitadmin ADMINURL PATH REGEXP: poll GET PATH on the admin API (with
// $AISIX_ADMIN_KEY) until its body matches REGEXP, for up to 30 seconds:
// for changes another process makes in its own time (a SIGHUP's reload).
func cmdWaitAdmin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: waitadmin ADMINURL PATH REGEXP")
	}
	re, err := regexp.Compile(args[2])
	if err != nil {
		ts.Fatalf("waitadmin: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		req, err := http.NewRequest(http.MethodGet, args[0]+args[1], nil)
		if err != nil {
			ts.Fatalf("waitadmin: %v", err)
		}
		req.Header.Set("Authorization", "Bearer "+ts.Getenv("AISIX_ADMIN_KEY"))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if re.Match(b) {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(20 * time.Millisecond) // polling a process we do not control
	}
	ts.Fatalf("waitadmin %s: no match for %q within 30s (last: %.500s)", args[1], args[2], last)
}

// http [-H 'Name: value']... [-save VAR=field]... [-expand] METHOD URL [bodyfile]
//
// Sends a request like curl -si and prints `status: N`, the response headers
// (lower-cased, sorted) and the body to stdout. -save sets VAR from a
// top-level field of the JSON body (like jq -r .field). -expand replaces
// $VARS in the body file from the script environment.
func cmdHTTP(ts *testscript.TestScript, neg bool, args []string) {
	var headers [][2]string
	var saves [][2]string
	expand := false
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-H":
			if len(args) < 2 {
				ts.Fatalf("http: -H needs a value")
			}
			k, v, ok := strings.Cut(args[1], ":")
			if !ok {
				ts.Fatalf("http: bad header %q", args[1])
			}
			headers = append(headers, [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
			args = args[2:]
		case "-save":
			if len(args) < 2 {
				ts.Fatalf("http: -save needs VAR=field")
			}
			k, v, ok := strings.Cut(args[1], "=")
			if !ok {
				ts.Fatalf("http: bad -save %q", args[1])
			}
			saves = append(saves, [2]string{k, v})
			args = args[2:]
		case "-expand":
			expand = true
			args = args[1:]
		default:
			ts.Fatalf("http: unknown option %s", args[0])
		}
	}
	if len(args) < 2 || len(args) > 3 {
		ts.Fatalf("usage: http [options] METHOD URL [bodyfile]")
	}
	var body io.Reader
	if len(args) == 3 {
		data := ts.ReadFile(args[2])
		if expand {
			data = os.Expand(data, ts.Getenv)
		}
		body = strings.NewReader(data)
	}
	req, err := http.NewRequest(args[0], args[1], body)
	if err != nil {
		ts.Fatalf("http: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range headers {
		req.Header.Set(h[0], h[1])
	}
	client := &http.Client{Timeout: 60 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		if neg {
			return
		}
		ts.Fatalf("http %s %s: %v", args[0], args[1], err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.Fatalf("http: read body: %v", err)
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "status: %d\n", resp.StatusCode)
	names := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		for _, v := range resp.Header[k] {
			fmt.Fprintf(&out, "%s: %s\n", strings.ToLower(k), v)
		}
	}
	out.WriteString("\n")
	out.Write(data)
	out.WriteString("\n")
	ts.Stdout().Write(out.Bytes())
	for _, s := range saves {
		v, err := jsonField(data, s[1])
		if err != nil {
			ts.Fatalf("http -save %s: %v (body: %s)", s[0], err, data)
		}
		ts.Setenv(s[0], v)
	}
	if neg && resp.StatusCode < 400 {
		ts.Fatalf("http %s %s: status %d, want an error", args[0], args[1], resp.StatusCode)
	}
	if !neg && resp.StatusCode >= 500 {
		ts.Fatalf("http %s %s: status %d: %s", args[0], args[1], resp.StatusCode, data)
	}
}

// jsonget VAR FILE PATH: set VAR from a dotted path (e.g. .0.status or
// .entry.id) in the JSON file.
func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: jsonget VAR FILE PATH")
	}
	v, err := jsonField([]byte(ts.ReadFile(args[1])), args[2])
	if err != nil {
		ts.Fatalf("jsonget: %v", err)
	}
	ts.Setenv(args[0], v)
}

// jsonField follows a dotted path (".a.0.b") in JSON and returns the value as
// jq -r would print it.
func jsonField(data []byte, path string) (string, error) {
	// The http command prints headers before the body: find the body.
	if i := bytes.Index(data, []byte("\n\n")); i >= 0 && bytes.HasPrefix(data, []byte("status: ")) {
		data = data[i+2:]
	}
	var v any
	if err := json.Unmarshal(bytes.TrimSpace(data), &v); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	for _, p := range strings.Split(strings.TrimPrefix(path, "."), ".") {
		if p == "" {
			continue
		}
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i < 0 || i >= len(x) {
				return "", fmt.Errorf("no index %q", p)
			}
			v = x[i]
		default:
			return "", fmt.Errorf("cannot index %T with %q", v, p)
		}
	}
	switch x := v.(type) {
	case nil:
		return "null", nil
	case string:
		return x, nil
	default:
		b, _ := json.Marshal(x)
		return string(b), nil
	}
}

// sha256 VAR STRING: set VAR to the hex SHA-256 of STRING (printf '%s' | sha256sum).
func cmdSHA256(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sha256 VAR STRING")
	}
	ts.Setenv(args[0], sha256Hex(args[1]))
}

// sha256Hex is the lower-case hex SHA-256 of s: a caller key's key_hash.
func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// mock NAME: start a well-behaved OpenAI-compatible upstream on loopback and
// set $NAME to its base URL (ending in /v1). `mock -count NAME` prints how
// many chat requests it has served.
func cmdMock(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("mock does not take !")
	}
	if len(args) == 2 && args[0] == "-count" {
		mocksMu.Lock()
		m, ok := mocks[ts.Getenv(args[1]+"_MOCKID")]
		mocksMu.Unlock()
		if !ok {
			ts.Fatalf("mock -count: no mock %s", args[1])
		}
		fmt.Fprintf(ts.Stdout(), "%d\n", m.Requests())
		return
	}
	if len(args) != 1 {
		ts.Fatalf("usage: mock NAME | mock -count NAME")
	}
	h := mockup.New(mockup.Options{})
	srv := httptest.NewServer(h)
	ts.Defer(srv.Close)
	mocksMu.Lock()
	id := strconv.Itoa(len(mocks))
	mocks[id] = h
	mocksMu.Unlock()
	ts.Setenv(args[0]+"_MOCKID", id)
	ts.Setenv(args[0], srv.URL+"/v1")
}

var (
	mocksMu sync.Mutex
	mocks   = map[string]*mockup.Handler{}
)
