package bench

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/profiling"
)

// TestProfilerSaves: with -profile, the rig's profiler fetches a CPU
// profile over a run and the named profiles from the process's
// /debug/pprof/ (here serve's own handler), and writes each to its file;
// a process without profiles (nginx, the mock) gets no profiler.
func TestProfilerSaves(t *testing.T) {
	srv := httptest.NewServer(profiling.Handler())
	defer srv.Close()
	dir := t.TempDir()
	r := &rig{opts: Options{ProfileDir: dir}}
	if p := r.profilerFor("", "nginx"); p != nil {
		t.Fatal("a profiler for a process that serves no profiles")
	}
	p := r.profilerFor(srv.URL+"/debug/pprof/", "closed-aisix group-1")
	ctx := context.Background()
	wait := p.cpu(ctx, time.Second)
	if err := p.save(ctx, "heap", "heap"); err != nil {
		t.Fatal(err)
	}
	if err := p.save(ctx, "heap?debug=1", "memstats.txt"); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	for file, prefix := range map[string][]byte{
		"closed-aisix_group-1.cpu.pprof":    {0x1f, 0x8b}, // gzipped protobuf
		"closed-aisix_group-1.heap.pprof":   {0x1f, 0x8b},
		"closed-aisix_group-1.memstats.txt": []byte("heap profile:"),
	} {
		b, err := os.ReadFile(filepath.Join(dir, file))
		if err != nil || !bytes.HasPrefix(b, prefix) {
			t.Errorf("%s: %v, starts %q", file, err, b[:min(len(b), 16)])
		}
	}
	if err := p.save(ctx, "no-such-profile", "x"); err == nil {
		t.Error("an unknown profile was saved")
	}
}
