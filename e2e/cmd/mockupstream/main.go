// Command mockupstream runs the mock OpenAI upstream of package mockup on a
// loopback address, for the README walkthrough and the benchmark rig.
//
//	go run ./e2e/cmd/mockupstream -addr 127.0.0.1:9000
//
// It prints its URL on stderr once it is listening.
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aisix/aisix/e2e/mockup"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	chunks := flag.Int("chunks", 20, "content chunks per streamed answer")
	delay := flag.Duration("delay", 0, "delay before each response")
	chunkDelay := flag.Duration("chunk-delay", 0, "delay between streamed chunks")
	fail := flag.Float64("fail-share", 0, "share of requests answered with 500")
	flag.Parse()
	h := mockup.New(mockup.Options{Chunks: *chunks, Delay: *delay, ChunkDelay: *chunkDelay, FailShare: *fail})
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mockupstream:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "mock OpenAI upstream on http://%s/v1\n", ln.Addr())
	if err := srv.Serve(ln); err != nil {
		fmt.Fprintln(os.Stderr, "mockupstream:", err)
		os.Exit(1)
	}
}
