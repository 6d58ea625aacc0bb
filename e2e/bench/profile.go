package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Profiles. With Options.ProfileDir set, every aisix the rig starts serves
// its runtime profiles (--pprof-addr on a free loopback port), and the rig
// saves, for each measured aisix run, a CPU profile of the measured part
// and the allocations so far (<scenario>-<target>-<run>.cpu.pprof,
// .allocs.pprof), and, halfway through each open-streams run, the heap in
// use, the goroutines and the runtime's memory statistics
// (open-streams-aisix-<run>.heap.pprof, .goroutine.pprof, .memstats.txt). Read them with `go tool pprof -top FILE`.

// profiler fetches one process's profiles into dir under a name prefix.
type profiler struct {
	base string // http://127.0.0.1:port/debug/pprof/
	dir  string
	name string
}

// profilerFor is the profiler of the aisix serving profiles at pprofURL
// ("" for nginx or the mock: nil, no profiles) for the given file name
// prefix.
func (r *rig) profilerFor(pprofURL, name string) *profiler {
	if r.opts.ProfileDir == "" || pprofURL == "" {
		return nil
	}
	return &profiler{base: pprofURL, dir: r.opts.ProfileDir, name: strings.ReplaceAll(name, " ", "_")}
}

// cpu starts a CPU profile of d; the returned func waits for it and saves it.
func (p *profiler) cpu(ctx context.Context, d time.Duration) func() error {
	if p == nil {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() {
		done <- p.save(ctx, fmt.Sprintf("profile?seconds=%d", max(int(d.Round(time.Second)/time.Second), 1)), "cpu")
	}()
	return func() error { return <-done }
}

// save fetches the profile at path (relative to /debug/pprof/) into
// <name>.<kind>.pprof, or <name>.<kind> when kind has an extension.
func (p *profiler) save(ctx context.Context, path, kind string) error {
	if p == nil {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s profile: %w", kind, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s profile: %s: %s", kind, resp.Status, b)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	file := p.name + "." + kind
	if filepath.Ext(kind) == "" {
		file += ".pprof"
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
