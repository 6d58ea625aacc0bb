package bench

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRunTiny runs a whole session in a tiny mode: it builds aisix and the
// mock, starts them, configures aisix through the admin API, and measures
// every scenario for a second, failover and a small scale store included
// (nginx left out). It asserts the shape of the report, never speed.
func TestRunTiny(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs aisix for about half a minute")
	}
	o := DefaultOptions()
	o.Runs = 1
	o.Duration = time.Second
	o.Warmup = 200 * time.Millisecond
	o.Nginx = "off"
	o.ScaleKeys, o.ScaleModels, o.ScalePool, o.ScaleStreams = 40, 12, 8, 16
	o.ScaleChunkDelay = 5 * time.Millisecond
	o.OpenStreams, o.StreamHold = 16, time.Second
	var log strings.Builder
	o.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rep, err := Run(ctx, o)
	if err != nil {
		t.Fatalf("Run: %v\nprogress:\n%s", err, log.String())
	}

	wantTargets := map[string][]string{
		ScenarioPlain:  {TargetDirect, TargetAisix, TargetAisixGroup},
		ScenarioClosed: {TargetDirect, TargetAisix},
		ScenarioStream: {TargetDirect, TargetAisix},
		// The translation scenarios.
		ScenarioMessages:       {TargetAisix},
		ScenarioMessagesStream: {TargetAisix},
	}
	for id, targets := range wantTargets {
		sc := rep.Scenario(id)
		if sc == nil {
			t.Fatalf("no %s scenario", id)
		}
		if strings.Join(sc.Targets, ",") != strings.Join(targets, ",") {
			t.Errorf("%s targets = %v, want %v", id, sc.Targets, targets)
		}
		for _, tg := range targets {
			ss := sc.Samples[tg]
			if len(ss) != 1 {
				t.Fatalf("%s through %s: %d samples, want 1", id, tg, len(ss))
			}
			s := ss[0]
			if s.Load.Requests == 0 || s.Load.Errors != 0 {
				t.Errorf("%s through %s: %d requests, %d errors %v", id, tg, s.Load.Requests, s.Load.Errors, s.Load.ErrorKinds)
			}
			if measured := tg != TargetDirect; measured != (s.PeakRSS > 0) || measured != (s.CPUPerReq > 0) {
				t.Errorf("%s through %s: CPU/req %v, peak RSS %d: want both measured for a proxy and neither direct", id, tg, s.CPUPerReq, s.PeakRSS)
			}
			if !(s.MockCPUPerReq > 0) {
				t.Errorf("%s through %s: mock CPU/req %v, want it measured", id, tg, s.MockCPUPerReq)
			}
			if sc.Stream && s.Load.TTFB.N != s.Load.Requests {
				t.Errorf("%s through %s: %d TTFB samples for %d streams", id, tg, s.Load.TTFB.N, s.Load.Requests)
			}
		}
	}

	if len(rep.Failover) != 1 {
		t.Fatalf("%d failover samples, want 1", len(rep.Failover))
	}
	f := rep.Failover[0]
	if f.ServedBy != "bench-b" || f.First <= 0 || f.Baseline <= 0 {
		t.Errorf("first failover request: served by %q in %v (baseline %v): want bench-b", f.ServedBy, f.First, f.Baseline)
	}
	if f.Cooldown.Load.Requests == 0 || f.Cooldown.Load.Errors != 0 {
		t.Errorf("cooldown run: %d requests, %d errors %v", f.Cooldown.Load.Requests, f.Cooldown.Load.Errors, f.Cooldown.Load.ErrorKinds)
	}
	if f.PrimaryTouched != 0 {
		t.Errorf("the primary saw %d attempts during its cooldown, want 0", f.PrimaryTouched)
	}
	if len(rep.SmallWrites) != 5 {
		t.Errorf("%d small-store writes timed, want 5", len(rep.SmallWrites))
	}

	s := rep.Scale
	if s == nil {
		t.Fatal("no scale report")
	}
	if s.Rows != 40+12+scalePKs+2 || len(s.Aisix) != 1 || len(s.Direct) != 1 || len(s.Writes) != 5 {
		t.Errorf("scale: %d rows, %d+%d samples, %d writes", s.Rows, len(s.Aisix), len(s.Direct), len(s.Writes))
	}
	if l := s.Aisix[0].Load; l.Requests == 0 || l.Errors != 0 {
		t.Errorf("scale plain run: %d requests, %d errors %v", l.Requests, l.Errors, l.ErrorKinds)
	}
	if l := s.Streams; l.Requests < o.ScaleStreams || l.Errors != 0 {
		t.Errorf("scale streams: %d streams, %d errors %v: want at least %d, no errors", l.Requests, l.Errors, l.ErrorKinds, o.ScaleStreams)
	}
	if s.StreamRSS <= 0 || s.StreamHWM < s.StreamRSS {
		t.Errorf("stream RSS %d, HWM %d", s.StreamRSS, s.StreamHWM)
	}

	if len(rep.Streams) != 1 {
		t.Fatalf("%d open-streams runs, want 1 (aisix; nginx is off)", len(rep.Streams))
	}
	if os := rep.Streams[0]; os.Target != TargetAisix || os.Load.Requests < o.OpenStreams || os.Load.Errors != 0 ||
		os.IdleRSS <= 0 || os.PeakRSS < os.IdleRSS || os.Streams != o.OpenStreams {
		t.Errorf("open streams: %+v", os)
	}

	md := rep.Markdown()
	for _, want := range []string{
		"### Open streams: 16 concurrent streams of ~1s (20 chunks)", "per open stream",
		"### Translation: Messages callers on an OpenAI-wire target", "| /v1/messages (translated) |", "µs per chunk",
		"### Summary", "| aisix |", "| aisix group |", "| direct (mock) |",
		"### Fixed 1000 rps", "### Closed loop, c=64", "### Streaming, 200 streams/s",
		"### Failover cost", "attempts on the primary during the cooldown run", "### Scale: 40 caller keys, 12 models",
		"nginx: not installed",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	for _, unwanted := range []string{"| nginx |", "### Errors", "NaN"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("report has %q:\n%s", unwanted, md)
		}
	}
}

func TestOptionsCheck(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*Options)
	}{
		{"no runs", func(o *Options) { o.Runs = 0 }},
		{"no duration", func(o *Options) { o.Duration = 0 }},
		{"too long", func(o *Options) { o.Duration = time.Hour }},
		{"no rate", func(o *Options) { o.Rate = 0 }},
		{"no concurrency", func(o *Options) { o.Concurrency = 0 }},
		{"pool larger than keys", func(o *Options) { o.ScalePool = o.ScaleKeys + 1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := DefaultOptions()
			tt.mod(&o)
			if _, err := Run(context.Background(), o); err == nil {
				t.Error("Run accepted bad options")
			}
		})
	}
}
