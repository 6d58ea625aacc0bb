// Command loadgen is the rig's load generator on its own: it POSTs a chat
// request to a URL at a fixed rate (open loop, latency from the intended
// send time) or at a fixed concurrency (closed loop) and prints the latency
// distribution.
//
//	go run ./e2e/bench/cmd/loadgen -url http://127.0.0.1:3000/v1/chat/completions -key sk-... -model chat-prod -rate 1000 -duration 10s
//	go run ./e2e/bench/cmd/loadgen -url ... -c 64 -duration 10s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/aisix/aisix/e2e/bench"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:3000/v1/chat/completions", "chat completions URL")
	key := flag.String("key", os.Getenv("CALLER_KEY"), "caller key sent as Authorization: Bearer (default $CALLER_KEY)")
	model := flag.String("model", "gpt-4o-mini", "model field of the request")
	rate := flag.Float64("rate", 0, "open loop: requests per second")
	conc := flag.Int("c", 0, "closed loop: requests in flight (when -rate is 0)")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	stream := flag.Bool("stream", false, "ask for a stream and measure time to first byte")
	flag.Parse()
	cfg := bench.LoadConfig{URL: *url, Duration: *duration, Stream: *stream}
	switch {
	case *rate > 0:
		cfg.Mode, cfg.Rate = bench.OpenLoop, *rate
	case *conc > 0:
		cfg.Mode, cfg.Concurrency = bench.ClosedLoop, *conc
	default:
		fmt.Fprintln(os.Stderr, "loadgen: give -rate (open loop) or -c (closed loop)")
		os.Exit(2)
	}
	body := `{"model":"` + *model + `","messages":[{"role":"user","content":"Say hello."}]`
	if *stream {
		body += `,"stream":true`
	}
	cfg.Bodies = [][]byte{[]byte(body + "}")}
	if *key != "" {
		cfg.Auths = []string{"Bearer " + *key}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := bench.RunLoad(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
	}
	fmt.Printf("%s loop: %d requests, %d errors, %.0f rps over %s\n", cfg.Mode, res.Requests, res.Errors, res.RPS, res.Elapsed.Round(time.Millisecond))
	show := func(name string, s bench.Summary) {
		if s.N == 0 {
			return
		}
		fmt.Printf("%-8s p50 %v  p90 %v  p99 %v  max %v\n", name, s.P50, s.P90, s.P99, s.Max)
	}
	show("latency", res.Latency)
	show("ttfb", res.TTFB)
	show("lag", res.Lag)
	var kinds []string
	for k, v := range res.ErrorKinds {
		kinds = append(kinds, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Println("error:", k)
	}
	if err != nil || res.Errors > 0 {
		os.Exit(1)
	}
}
