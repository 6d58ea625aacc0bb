package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode is how the load generator paces requests.
type Mode int

const (
	// OpenLoop sends at a fixed rate from a precomputed schedule, whatever
	// the server does; latency is measured from each request's intended
	// send time, so a stalled server is charged for the requests it delays
	// (no coordinated omission).
	OpenLoop Mode = iota
	// ClosedLoop keeps a fixed number of requests in flight; latency is
	// measured from the actual send.
	ClosedLoop
)

func (m Mode) String() string {
	if m == ClosedLoop {
		return "closed"
	}
	return "open"
}

// LoadConfig describes one load run.
type LoadConfig struct {
	// URL is the chat completions endpoint to POST to.
	URL  string
	Mode Mode
	// Rate is the request rate of an open-loop run, per second.
	Rate float64
	// Concurrency is the number of requests in flight of a closed-loop run.
	Concurrency int
	// Duration is how long requests are started for.
	Duration time.Duration
	// Stream reads the answer as an SSE stream: time to first byte is
	// recorded, and a stream that does not end with End (default
	// "data: [DONE]") counts as an error.
	Stream bool
	// End is the bytes a complete stream ends with (nil: "data: [DONE]",
	// the chat completions end; at most 32 bytes); Marker what a complete
	// non-streamed answer contains (nil: "choices").
	End, Marker []byte
	// Bodies are request bodies; each request takes one at random.
	Bodies [][]byte
	// Auths are Authorization header values; each request takes one at
	// random. None: no Authorization header.
	Auths []string
	// Client sends the requests; nil means NewClient(max(Concurrency, 1024)).
	Client *http.Client
	// Workers bounds the requests in flight of an open-loop run (default
	// 1024). When all are busy, later requests wait, and their wait counts
	// in their latency.
	Workers int
	// Timeout bounds each request, body included (default 30s).
	Timeout time.Duration
}

// LoadResult is the outcome of one load run.
type LoadResult struct {
	// Requests is the number of requests completed, errors included.
	Requests int
	// Errors counts failed requests: transport errors, non-200 answers,
	// unreadable or empty bodies, streams cut before [DONE].
	Errors int
	// ErrorKinds counts errors by kind (at most 16 kinds, then "other").
	ErrorKinds map[string]int
	// Latency is the distribution of successful requests' latencies: to
	// the end of the body, from the intended send time (open loop) or the
	// send (closed loop).
	Latency Summary
	// TTFB is the time to the first body byte of successful streams.
	TTFB Summary
	// Lag is how late the open-loop generator itself started requests
	// relative to the schedule (its own timer and scheduling noise, which
	// is part of every latency).
	Lag Summary
	// Elapsed runs from the first scheduled send to the last completion.
	Elapsed time.Duration
	// RPS is the rate of successful requests over Elapsed.
	RPS float64
}

// NewClient returns an HTTP/1.1 keep-alive client for load runs, keeping up
// to maxIdle idle connections to a host.
func NewClient(maxIdle int) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{Transport: &http.Transport{
		DialContext:         d.DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: maxIdle,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

const maxErrorKinds = 16

// worker is one sender's private state; results are merged at the end.
type worker struct {
	cfg     *LoadConfig
	end     []byte // the stream end (cfg.End or doneEvent)
	marker  []byte // what an answer holds (cfg.Marker or choices)
	rng     *rand.Rand
	buf     []byte
	lat     []time.Duration
	ttfb    []time.Duration
	lag     []time.Duration
	errs    map[string]int
	nErr    int
	lastEnd time.Time
}

func newWorker(cfg *LoadConfig, seed uint64) *worker {
	end, marker := cfg.End, cfg.Marker
	if end == nil {
		end = doneEvent
	}
	if marker == nil {
		marker = choices
	}
	return &worker{
		cfg: cfg, end: end, marker: marker,
		rng:  rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		buf:  make([]byte, 32<<10),
		errs: map[string]int{},
	}
}

func (w *worker) fail(kind string) {
	w.nErr++
	if _, ok := w.errs[kind]; !ok && len(w.errs) >= maxErrorKinds {
		kind = "other"
	}
	w.errs[kind]++
}

var (
	hdrJSON   = []string{"application/json"}
	doneEvent = []byte("data: [DONE]\n\n")
	choices   = []byte(`"choices"`)
)

// do sends one request and records it against start (the intended or the
// actual send time).
func (w *worker) do(ctx context.Context, start time.Time) {
	body := w.cfg.Bodies[0]
	if n := len(w.cfg.Bodies); n > 1 {
		body = w.cfg.Bodies[w.rng.IntN(n)]
	}
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		w.fail("request: " + err.Error())
		return
	}
	req.Header["Content-Type"] = hdrJSON
	if n := len(w.cfg.Auths); n > 0 {
		a := w.cfg.Auths[0]
		if n > 1 {
			a = w.cfg.Auths[w.rng.IntN(n)]
		}
		req.Header["Authorization"] = []string{a}
	}
	resp, err := w.cfg.Client.Do(req)
	if err != nil {
		w.lastEnd = time.Now()
		w.fail(errKind(ctx, err))
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		w.lastEnd = time.Now()
		w.fail("status " + strconv.Itoa(resp.StatusCode))
		return
	}
	var (
		total   int
		first   time.Time
		tail    [32]byte
		tailLen int
		sawJSON bool
	)
	for {
		n, err := resp.Body.Read(w.buf)
		if n > 0 {
			if total == 0 {
				first = time.Now()
			}
			total += n
			chunk := w.buf[:n]
			if !w.cfg.Stream && !sawJSON {
				sawJSON = bytes.Contains(chunk, w.marker)
			}
			// Keep the last bytes seen, for the [DONE] check.
			if len(chunk) >= len(tail) {
				tailLen = copy(tail[:], chunk[len(chunk)-len(tail):])
			} else {
				keep := min(tailLen, len(tail)-len(chunk))
				copy(tail[:], tail[tailLen-keep:tailLen])
				copy(tail[keep:], chunk)
				tailLen = keep + len(chunk)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			w.lastEnd = time.Now()
			w.fail("read: " + errKind(ctx, err))
			return
		}
	}
	end := time.Now()
	w.lastEnd = end
	switch {
	case total == 0:
		w.fail("empty body")
		return
	case w.cfg.Stream && !bytes.HasSuffix(tail[:tailLen], w.end):
		w.fail("stream cut before [DONE]")
		return
	case !w.cfg.Stream && !sawJSON:
		w.fail("body without choices")
		return
	}
	w.lat = append(w.lat, end.Sub(start))
	if w.cfg.Stream {
		w.ttfb = append(w.ttfb, first.Sub(start))
	}
}

// errKind names an error without the parts that vary per request.
func errKind(ctx context.Context, err error) string {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "EOF"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	s := err.Error()
	// Drop the "Post \"url\": " prefix of url.Error.
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// RunLoad runs one load run and returns its result. It stops when the run
// is over, every request has completed or timed out, or ctx is done.
func RunLoad(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if cfg.URL == "" {
		return LoadResult{}, errors.New("load: no URL")
	}
	if len(cfg.Bodies) == 0 {
		return LoadResult{}, errors.New("load: no request body")
	}
	if cfg.Duration <= 0 {
		return LoadResult{}, errors.New("load: duration must be positive")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1024
	}
	if cfg.Client == nil {
		cfg.Client = NewClient(max(cfg.Concurrency, cfg.Workers))
		defer cfg.Client.CloseIdleConnections()
	}
	var workers []*worker
	var start time.Time
	switch cfg.Mode {
	case OpenLoop:
		if cfg.Rate <= 0 {
			return LoadResult{}, errors.New("load: open loop needs a positive rate")
		}
		workers, start = runOpen(ctx, &cfg)
	case ClosedLoop:
		if cfg.Concurrency <= 0 {
			return LoadResult{}, errors.New("load: closed loop needs a positive concurrency")
		}
		workers, start = runClosed(ctx, &cfg)
	default:
		return LoadResult{}, fmt.Errorf("load: unknown mode %d", cfg.Mode)
	}
	return merge(workers, start), ctx.Err()
}

func merge(workers []*worker, start time.Time) LoadResult {
	var res LoadResult
	var lat, ttfb, lag []time.Duration
	end := start
	res.ErrorKinds = map[string]int{}
	for _, w := range workers {
		lat = append(lat, w.lat...)
		ttfb = append(ttfb, w.ttfb...)
		lag = append(lag, w.lag...)
		res.Errors += w.nErr
		for k, v := range w.errs {
			if _, ok := res.ErrorKinds[k]; !ok && len(res.ErrorKinds) >= maxErrorKinds {
				k = "other"
			}
			res.ErrorKinds[k] += v
		}
		if w.lastEnd.After(end) {
			end = w.lastEnd
		}
	}
	res.Requests = len(lat) + res.Errors
	res.Latency = Summarize(lat)
	res.TTFB = Summarize(ttfb)
	res.Lag = Summarize(lag)
	res.Elapsed = end.Sub(start)
	if res.Elapsed > 0 {
		res.RPS = float64(len(lat)) / res.Elapsed.Seconds()
	}
	return res
}

// Open loop: a dispatcher hands each scheduled request to an idle worker a
// little ahead of its time (the Go timer behind time.Sleep may fire up to a
// millisecond late), and the worker waits for the exact time (see sleeper).
const dispatchLead = 2 * time.Millisecond

func runOpen(ctx context.Context, cfg *LoadConfig) ([]*worker, time.Time) {
	n := int(cfg.Rate * cfg.Duration.Seconds())
	if n < 1 {
		n = 1
	}
	interval := float64(time.Second) / cfg.Rate
	jobs := make(chan time.Time, min(n, 1<<16))
	seed := uint64(time.Now().UnixNano())
	ws := make([]*worker, cfg.Workers)
	for i := range ws {
		ws[i] = newWorker(cfg, seed+uint64(i))
	}
	// The schedule starts once the workers exist, so that setting them up
	// does not make the first requests late.
	start := time.Now().Add(dispatchLead + time.Millisecond)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var sl *sleeper
			defer func() {
				if sl != nil {
					sl.close()
				}
			}()
			for due := range jobs {
				if sl == nil {
					sl = newSleeper()
				}
				sl.waitUntil(due)
				w.lag = append(w.lag, time.Since(due))
				w.do(ctx, due)
			}
		}()
	}
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(due) - dispatchLead; d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- due:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	return ws, start
}

func runClosed(ctx context.Context, cfg *LoadConfig) ([]*worker, time.Time) {
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	ws := make([]*worker, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range ws {
		w := newWorker(cfg, uint64(i)+uint64(start.UnixNano()))
		ws[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				now := time.Now()
				if !now.Before(deadline) {
					return
				}
				w.do(ctx, now)
			}
		}()
	}
	wg.Wait()
	return ws, start
}
