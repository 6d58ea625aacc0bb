// Command benchrun is the benchmark session behind `make bench`: it builds
// aisix and the mock upstream, starts them (and nginx, when installed) on
// loopback, measures plain, closed-loop, streaming, failover and scale
// scenarios, and prints a markdown table on stdout. Progress goes to stderr.
//
//	go run ./e2e/bench/cmd/benchrun                       # the full session, about 8 minutes
//	go run ./e2e/bench/cmd/benchrun -runs 1 -duration 5s  # a quick one
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aisix/aisix/e2e/bench"
)

func main() {
	os.Exit(run())
}

func run() int {
	o := bench.DefaultOptions()
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.IntVar(&o.Runs, "runs", o.Runs, "runs per figure (medians and spread over them)")
	fs.DurationVar(&o.Duration, "duration", o.Duration, "length of one measured run")
	fs.DurationVar(&o.Warmup, "warmup", o.Warmup, "unmeasured warm-up before each run")
	fs.Float64Var(&o.Rate, "rate", o.Rate, "open-loop rate of the plain scenario, requests/s")
	fs.IntVar(&o.Concurrency, "c", o.Concurrency, "closed-loop concurrency")
	fs.Float64Var(&o.StreamRate, "stream-rate", o.StreamRate, "open-loop rate of the streaming scenario, streams/s")
	fs.IntVar(&o.Chunks, "chunks", o.Chunks, "content chunks per mock stream")
	fs.StringVar(&o.Nginx, "nginx", o.Nginx, `nginx comparison: "auto" (when on PATH), "off", or the path to nginx`)
	fs.StringVar(&o.NginxWorkers, "nginx-workers", o.NginxWorkers, `nginx worker_processes: "auto" or a number`)
	fs.BoolVar(&o.NginxAccessLog, "nginx-access-log", o.NginxAccessLog, "turn on nginx's access log (to the temp dir)")
	fs.BoolVar(&o.Failover, "failover", o.Failover, "measure the failover cost")
	fs.BoolVar(&o.Limits, "limits", o.Limits, "give the bench caller key rpm, tpm and concurrency limits that never refuse")
	fs.BoolVar(&o.Redis, "redis", o.Redis, "also run aisix with --redis on a redis-server the session starts (when installed), with -limits, and report what Redis adds per request")
	fs.BoolVar(&o.Scale, "scale", o.Scale, "measure at scale (many keys and models, many open streams)")
	fs.IntVar(&o.ScaleKeys, "scale-keys", o.ScaleKeys, "caller keys in the scale store")
	fs.IntVar(&o.ScaleModels, "scale-models", o.ScaleModels, "models in the scale store")
	fs.IntVar(&o.ScalePool, "scale-pool", o.ScalePool, "keys requests pick from at random")
	fs.IntVar(&o.ScaleStreams, "scale-streams", o.ScaleStreams, "concurrent open streams")
	fs.DurationVar(&o.ScaleChunkDelay, "scale-chunk-delay", o.ScaleChunkDelay, "mock delay between chunks for the open streams")
	fs.IntVar(&o.OpenStreams, "open-streams", o.OpenStreams, "concurrent slow streams of the open-streams memory rows (0: none)")
	fs.DurationVar(&o.StreamHold, "stream-hold", o.StreamHold, "how long each of the open streams lasts")
	fs.StringVar(&o.AisixLogLevel, "aisix-log-level", o.AisixLogLevel, "aisix --log-level")
	fs.StringVar(&o.AisixBin, "aisix", "", "prebuilt aisix binary (default: build ./cmd/aisix)")
	fs.StringVar(&o.MockBin, "mock", "", "prebuilt mockupstream binary (default: build ./e2e/cmd/mockupstream)")
	fs.StringVar(&o.GoCmd, "go", o.GoCmd, "go command used to build")
	fs.BoolVar(&o.KeepTemp, "keep", false, "keep the temp dir (logs, databases, nginx.conf)")
	only := fs.String("only", "", "comma-separated scenario ids to run (plain, closed, stream, messages, messages-stream; default: all)")
	fs.StringVar(&o.ProfileDir, "profile", "", "save the runtime profiles of every measured aisix run into this directory (CPU and allocations per run, heap and goroutines of the open streams)")
	out := fs.String("out", "", "also write the table to this file")
	timeout := fs.Duration("timeout", 30*time.Minute, "stop the whole session after this long")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	o.Log = os.Stderr
	if *only != "" {
		o.Only = strings.Split(*only, ",")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()

	rep, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchrun:", err)
		return 1
	}
	md := rep.Markdown()
	fmt.Print(md)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(md), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchrun:", err)
			return 1
		}
	}
	return 0
}
