package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// The open-streams memory scenario. LLM streams last seconds to minutes,
// so a gateway's memory grows with the streams it holds open, not with its
// request rate. OpenStreams clients each hold one slow stream open (a mock
// that waits between chunks so that a stream lasts about StreamHold) and
// start the next when it ends; the proxy's RSS is sampled throughout. The
// figure is per stream: (peak RSS − idle RSS) ÷ streams, for aisix on the
// small store and for nginx (all its processes) when installed.

// modelSlow is the direct model on the slow mock.
const modelSlow = "bench-slow"

// StreamsSample is one target's open-streams run.
type StreamsSample struct {
	Target string
	// Load is the closed-loop streaming run.
	Load LoadResult
	// IdleRSS is the proxy's RSS, summed over its processes, just before
	// the streams open; PeakRSS the largest RSS sampled while they are
	// open (or VmHWM at the end, if larger), in bytes.
	IdleRSS, PeakRSS int64
	// Streams is the number of streams held open at once.
	Streams int
}

// PerStreamKiB is the memory each open stream costs: (peak − idle) ÷
// streams, in KiB.
func (s StreamsSample) PerStreamKiB() float64 {
	if s.Streams == 0 {
		return 0
	}
	return float64(s.PeakRSS-s.IdleRSS) / float64(s.Streams) / 1024
}

// openStreams runs the scenario for aisix and, when installed, nginx,
// Runs times each (alternating the order), against one slow mock.
func (r *rig) openStreams(ctx context.Context) ([]StreamsSample, error) {
	o := r.opts
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	gap := o.StreamHold / time.Duration(max(o.Chunks, 1))
	slow, err := r.startMock(ctx, "mock-slow", port, gap)
	if err != nil {
		return nil, err
	}
	defer func() {
		slow.stop(time.Second)
		r.cs.forget(slow)
	}()
	if err := r.configureSlow(ctx, port); err != nil {
		return nil, err
	}
	targets := []string{TargetAisix}
	if r.nginxBin != "" {
		targets = append(targets, TargetNginx)
	}
	var out []StreamsSample
	for run := 0; run < o.Runs; run++ {
		ts := targets
		if run%2 == 1 {
			ts = reversed(ts)
		}
		for _, t := range ts {
			r.logf("run %d/%d: %d open streams through %s", run+1, o.Runs, o.OpenStreams, t)
			s, err := r.streamsRun(ctx, t, port, run+1)
			if err != nil {
				return nil, fmt.Errorf("open streams through %s: %w", t, err)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

// configureSlow adds, to the main store, a provider key and a direct model
// on the slow mock.
func (r *rig) configureSlow(ctx context.Context, port int) error {
	a, err := r.startAisix(ctx, r.mainDB())
	if err != nil {
		return err
	}
	defer a.stop()
	pk, err := a.admin.create(ctx, "/admin/v1/provider_keys", map[string]any{
		"display_name": "bench-pk-slow", "provider": "openai", "adapter": "openai",
		"secret": "sk-mock-bench-pk-slow-0000000001", "api_base": fmt.Sprintf("http://127.0.0.1:%d/v1", port),
	})
	if err != nil {
		return err
	}
	m := directModelBody(modelSlow, pk, 0)
	// The streams are slow on purpose: the gaps must not trip the idle bound.
	m["stream_timeout"] = (r.opts.StreamHold + 30*time.Second).Milliseconds()
	_, err = a.admin.create(ctx, "/admin/v1/models", m)
	return err
}

// streamsRun starts target fresh on the slow mock and holds the streams
// open for about two stream lengths.
func (r *rig) streamsRun(ctx context.Context, target string, slowPort, run int) (StreamsSample, error) {
	var l *launched
	var err error
	switch target {
	case TargetNginx:
		var np *nginxProc
		np, err = startNginx(ctx, r.cs, filepath.Join(r.tmp, "nginx-slow"), r.nginxBin, r.nginxPort, slowPort, r.opts.NginxWorkers, r.opts.NginxAccessLog)
		if err == nil {
			l = &launched{url: np.url, model: "gpt-4o-mini", pids: np.pids, stop: func() {
				np.c.stop(5 * time.Second)
				r.cs.forget(np.c)
			}}
		}
	default:
		var a *aisixProc
		a, err = r.startAisix(ctx, r.mainDB())
		if err == nil {
			l = &launched{url: a.url, model: modelSlow, pids: []int{a.c.pid()}, pprof: a.pprof, stop: a.stop}
		}
	}
	if err != nil {
		return StreamsSample{}, err
	}
	defer l.stop()
	s := StreamsSample{Target: target, Streams: r.opts.OpenStreams}
	idle, err := sumMem(l.pids)
	if err != nil {
		return s, err
	}
	s.IdleRSS = idle.RSS
	peakRSS := sampleRSS(l.pids)
	if prof := r.profilerFor(l.pprof, fmt.Sprintf("open-streams-%s-%d", target, run)); prof != nil {
		// Halfway: every client has a stream open.
		t := time.AfterFunc(r.opts.StreamHold, func() {
			if err := errors.Join(prof.save(ctx, "heap", "heap"), prof.save(ctx, "goroutine", "goroutine"), prof.save(ctx, "heap?debug=1", "memstats.txt")); err != nil {
				r.logf("  profiles: %v", err)
			}
		})
		defer t.Stop()
	}
	client := NewClient(r.opts.OpenStreams)
	s.Load, err = RunLoad(ctx, LoadConfig{
		URL: l.url, Mode: ClosedLoop, Concurrency: r.opts.OpenStreams, Duration: 2*r.opts.StreamHold + time.Second, Stream: true,
		Bodies: [][]byte{chatBody(l.model, true)}, Auths: []string{"Bearer " + callerKey}, Client: client,
		Timeout: r.opts.StreamHold + time.Minute,
	})
	client.CloseIdleConnections()
	peak := peakRSS()
	if err != nil {
		return s, err
	}
	end, err := sumMem(l.pids)
	if err != nil {
		return s, err
	}
	s.PeakRSS = max(peak, end.HWM)
	return s, nil
}

// sampleRSS samples the summed RSS of pids every 100 ms until the
// returned func is called, which returns the largest sample.
func sampleRSS(pids []int) func() int64 {
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var peak int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if m, err := sumMem(pids); err == nil {
					peak = max(peak, m.RSS)
				}
			}
		}
	}()
	return func() int64 {
		close(stop)
		wg.Wait()
		return peak
	}
}

// sumMem is the memory of pids, summed.
func sumMem(pids []int) (Mem, error) {
	var t Mem
	for _, p := range pids {
		m, err := ReadMem(p)
		if err != nil {
			return t, err
		}
		t.RSS += m.RSS
		t.HWM += m.HWM
	}
	return t, nil
}

// streamsKiB is the median per-stream memory of target's open-streams
// runs; 0 when none.
func (r *Report) streamsKiB(target string) float64 {
	var xs []float64
	for _, s := range r.Streams {
		if s.Target == target {
			xs = append(xs, s.PerStreamKiB())
		}
	}
	if len(xs) == 0 {
		return 0
	}
	return Median(xs)
}

// streamsTable renders the open-streams runs.
func (r *Report) streamsTable(b *strings.Builder) {
	o := r.Opts
	fmt.Fprintf(b, "### Open streams: %d concurrent streams of ~%s (%d chunks)\n\n", o.OpenStreams, o.StreamHold, o.Chunks)
	header(b, "through", "streams completed", "errors", "idle RSS", "peak RSS", "per open stream")
	for _, t := range []string{TargetAisix, TargetNginx} {
		var done, errs, idle, peak, per []float64
		for _, s := range r.Streams {
			if s.Target != t {
				continue
			}
			done = append(done, float64(s.Load.Requests))
			errs = append(errs, float64(s.Load.Errors))
			idle = append(idle, float64(s.IdleRSS)/(1<<20))
			peak = append(peak, float64(s.PeakRSS)/(1<<20))
			per = append(per, s.PerStreamKiB())
		}
		if len(done) == 0 {
			continue
		}
		row(b, t, cell(done, "%.0f"), cell(errs, "%.0f"), mbCell(idle), mbCell(peak), cell(per, "%.1f KiB"))
	}
	fmt.Fprintf(b, "\nPer open stream = (peak RSS − idle RSS) ÷ streams, RSS summed over the proxy's processes, sampled every 100 ms "+
		"and at the end (VmHWM); each client holds one stream open and starts the next when it ends.\n\n")
}
