package profiling_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/profiling"
)

func TestCheckAddr(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{"[::1]:6060", true},
		{"localhost:6060", true},
		{"127.0.0.1:0", true},
		{"0.0.0.0:6060", false},
		{":6060", false},
		{"10.0.0.5:6060", false},
		{"example.com:6060", false},
		{"127.0.0.1", false},
	} {
		err := profiling.CheckAddr(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
}

func TestHandler(t *testing.T) {
	srv := httptest.NewServer(profiling.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/debug/pprof/goroutine?debug=1"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	if code, body := get("/debug/pprof/heap"); code != 200 || len(body) == 0 {
		t.Errorf("heap profile: %d, %d bytes", code, len(body))
	}
	if code, body := get("/debug/pprof/"); code != 200 || !strings.Contains(body, "heap") {
		t.Errorf("index: %d %.200q", code, body)
	}
	// The command line may carry --admin-key: never served.
	if code, body := get("/debug/pprof/cmdline"); code != 404 || strings.Contains(body, "profiling.test") {
		t.Errorf("cmdline: %d %.200q", code, body)
	}
}
