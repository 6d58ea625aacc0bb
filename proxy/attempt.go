package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aisix/aisix/proxy/observe"
	"github.com/aisix/aisix/proxy/provider"
	"github.com/aisix/aisix/proxy/routing"
)

var (
	eventStream = []string{"text/event-stream"}
	noCache     = []string{"no-cache"}
	noBuffering = []string{"no"}
	keepAliveFr = []byte(": keep-alive\n\n")
)

// maxErrorBody caps an upstream error body read for classification and
// pass-through.
const maxErrorBody = 1 << 20

// transportFor is the transport t's requests go through: its provider
// key's own when it has upstream TLS files, else the shared one.
func (s *Server) transportFor(t *routing.Target) http.RoundTripper {
	if t.Transport != nil {
		return t.Transport
	}
	return s.transport
}

// plainAttempt is one non-streaming call: the whole answer is read, its
// model value spliced, and written with a Content-Length.
func (c *call) plainAttempt(cd *candidate, body []byte) (*failure, bool) {
	t := cd.t
	timeout, cause := t.Timeout, errAttemptTimeout
	if !c.deadline.IsZero() {
		if left := time.Until(c.deadline); left < timeout {
			timeout, cause = left, errBudget
		}
	}
	actx, cancel := context.WithTimeoutCause(c.r.Context(), timeout, cause)
	defer cancel()
	req, err := t.Endpoint.NewRequest(actx, c.inbound(), body)
	if err != nil {
		return c.credentialFailure(t, actx, err), false
	}
	t0 := time.Now()
	resp, err := c.s.transportFor(t).RoundTrip(req)
	if err != nil {
		return c.errorFailure(t, actx, err), false
	}
	defer resp.Body.Close()
	c.attStatus = resp.StatusCode
	bp := getBuf()
	defer putBuf(bp)
	ok := resp.StatusCode/100 == 2
	limit := c.s.maxResp
	if !ok {
		limit = maxErrorBody
	}
	rb, err := readBody(resp.Body, limit, bp)
	switch {
	case errors.Is(err, errTooLarge):
		if !ok {
			rb = (*bp)[:limit]
			break
		}
		return decodeFailure(t, "upstream response exceeds "+strconv.FormatInt(limit, 10)+" bytes"), false
	case err != nil:
		return c.errorFailure(t, actx, err), false
	}
	if !ok {
		return c.statusFailure(t, resp, rb), false
	}
	c.upstream += time.Since(c.attStart)
	c.upCounted = true
	// The answer in the caller's wire, written in one call: with its
	// Content-Length, net/http sends it with the headers in one write.
	// On the OpenAI wire it is the body with the alias spliced in.
	out, err := c.answer(t, rb)
	if err != nil {
		if af, ok := errors.AsType[provider.AnswerFailer](err); ok {
			// A 2xx that refuses the request (a blocked prompt).
			return inBandFailure(t, af.AnswerFailure()), false
		}
		return decodeFailure(t, "upstream returned a body that is not a valid answer"), false
	}
	c.out = out
	// The tokens, for the target's counters, the observer and the log.
	c.usage, _ = provider.ScanUsage(out)
	if c.rt.op == provider.OpResponses {
		c.remember(t, responseID(rb))
	}
	c.served(cd, resp.StatusCode)
	c.settled(cd, cd.h.Succeeded(cd.att, time.Since(t0), 0))
	h := c.w.Header()
	h["Content-Type"] = appJSON
	h[hdrServedBy] = t.ServedBy
	c.setAttempts(h, len(c.out))
	c.setLimitHeaders(h)
	c.status = resp.StatusCode
	if len(c.out) > largeAnswer && c.s.writeTimeout > 0 {
		// Bound the time a caller may take to read a large answer.
		c.setWriteDeadline(time.Now().Add(c.s.writeTimeout))
		defer c.setWriteDeadline(time.Time{})
	}
	c.w.WriteHeader(resp.StatusCode)
	if _, err := c.w.Write(c.out); err != nil && isTimeout(err) {
		c.slowClient()
	}
	c.observeAttempt(cd, observe.OutcomeOK, "", false)
	return nil, true
}

// largeAnswer is the answer size above which a write deadline guards the
// write: a smaller one fits the socket buffers and never blocks.
const largeAnswer = 256 << 10

// setWriteDeadline sets the caller connection's write deadline, where the
// ResponseWriter supports one.
func (c *call) setWriteDeadline(t time.Time) {
	if d, ok := c.w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(t)
	}
}

// slowClient records a caller that did not take its answer within the
// write timeout: the answer is abandoned, the upstream is not blamed.
func (c *call) slowClient() {
	c.status = statusClientClosed
	c.outcome = "slow_client"
	c.s.logger.Warn("slow client: no write progress within the write timeout; ended its answer",
		"call_id", c.callID, "model", clip(c.req.Model), "write_timeout", c.s.writeTimeout.String())
	c.abortCaller()
}

// abortCaller resets an HTTP/1 caller connection (RST, not FIN): the
// caller has stopped reading, and a plain close would leave the kernel
// holding, and slowly retrying, everything still queued for it. An HTTP/2
// stream is reset by the handler returning.
func (c *call) abortCaller() {
	if c.r.ProtoMajor != 1 {
		return
	}
	hj, ok := c.w.(http.Hijacker)
	if !ok {
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	nc := conn
	if u, ok := conn.(interface{ NetConn() net.Conn }); ok {
		nc = u.NetConn()
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// sseState is a pooled buffered reader and SSE parser.
type sseState struct {
	fr flushingReader
	br *bufio.Reader
	sr provider.SSEReader
	// src, when set, reads a stream that is not SSE (provider.Framer).
	src provider.EventSource
}

// next is the stream's next event.
func (st *sseState) next() (provider.SSEEvent, error) {
	if st.src != nil {
		return st.src.Next()
	}
	return st.sr.Next()
}

// flushingReader is a stream's upstream body as the SSE reader sees it.
// Once the answer is committed (sw set), output the relay has written but
// not yet flushed is flushed before every read from the upstream: before
// the relay could wait for the upstream, so no event waits for anything,
// while events that arrived together leave in one write.
//
// It also tells the watchdog when the relay is waiting on the upstream:
// the idle bound measures upstream silence only, never time spent blocked
// on a caller that reads slowly (that is the write timeout's to bound).
type flushingReader struct {
	r  io.Reader
	sw *streamWriter
	wd *watchdog
}

func (f *flushingReader) Read(p []byte) (int, error) {
	if f.sw != nil {
		if err := f.sw.flushPending(); err != nil {
			return 0, err
		}
	}
	f.wd.waiting(true)
	n, err := f.r.Read(p)
	f.wd.waiting(false)
	return n, err
}

// Bounds on what an upstream stream can make the proxy hold: one event's
// data, and the events held back before the first content (role chunks and
// the like, which a well-behaved upstream sends one of).
const (
	maxEventBytes = 1 << 20
	maxHeldBytes  = 1 << 20
)

// streamLimits are the bounds on one upstream event and on the events
// held before commit. A Responses API stream repeats whole output items:
// an image generation call's base64 result in response.output_item.done
// (often before any text delta) and all of the output again in
// response.completed, several MB each; it gets the bound of a plain
// answer, which is read whole too.
func (c *call) streamLimits() (event, held int) {
	if c.rt.op == provider.OpResponses {
		n := int(max(c.s.maxResp, maxEventBytes))
		return n, n
	}
	return maxEventBytes, maxHeldBytes
}

// sseBufSize is the stream reader's buffer. Chat chunks are a few hundred
// bytes; a longer line is still read whole (SSEReader joins the pieces).
// Each open stream holds one, so it is kept small.
const sseBufSize = 4 << 10

var ssePool = sync.Pool{New: func() any { return &sseState{br: bufio.NewReaderSize(nil, sseBufSize)} }}

// getSSE is a pooled reader of the stream body, its events up to
// maxEvent bytes; putSSE gives it back.
func getSSE(body io.Reader, wd *watchdog, maxEvent int) *sseState {
	st := ssePool.Get().(*sseState)
	st.fr = flushingReader{r: body, wd: wd}
	st.br.Reset(&st.fr)
	st.sr.Reset(st.br, maxEvent)
	return st
}

func putSSE(st *sseState, maxEvent int) {
	st.br.Reset(nil)
	st.fr = flushingReader{}
	st.src = nil
	if maxEvent > maxEventBytes {
		st.sr = provider.SSEReader{} // the pool keeps no outsized buffer
	}
	ssePool.Put(st)
}

// streamAttempt is one streaming call. Until the first chunk that carries
// content, any failure is a failed attempt and the walk goes on; the chunks
// seen before it are held back. On that chunk the response is committed
// (headers, held chunks) and relayed event by event.
func (c *call) streamAttempt(cd *candidate, body []byte) (*failure, bool) {
	if h := c.hedge; h != nil && !h.used {
		return c.hedgedStream(cd, body)
	}
	t := cd.t
	actx, cancel := context.WithCancelCause(c.r.Context())
	defer cancel(nil)
	t0 := time.Now()
	wd := startWatchdog(t0, t, c.deadline, cancel)
	defer wd.stop()

	resp, f := c.openStream(t, actx, c.inbound(), body)
	if f != nil {
		return f, false
	}
	defer resp.Body.Close()
	wd.headers()

	maxEvent, maxHeld := c.streamLimits()
	st := getSSE(resp.Body, wd, maxEvent)
	defer putSSE(st, maxEvent)

	dec := c.streamDecoder(t)
	if f, ok := dec.(provider.Framer); ok {
		st.src = f.Frames(st.br, maxEvent)
	}
	out, info, f := c.firstContent(t, actx, st, dec, c.out[:0], &c.usage, &c.respID, maxHeld)
	if f != nil {
		c.out = out
		return f, false
	}
	c.out = out
	c.relay(cd, actx, cancel, st, dec, wd, t0, info)
	return nil, true
}

// firstContent reads a stream's events up to its first content, decoded
// into out, the usage they report merged into *usage and the Responses
// API id into *respID. Any failure before that content is the attempt's.
func (c *call) firstContent(t *routing.Target, actx context.Context, st *sseState, dec provider.StreamDecoder, out []byte,
	usage *provider.Usage, respID *string, maxHeld int) ([]byte, provider.EventInfo, *failure) {
	var info provider.EventInfo
	for {
		ev, err := st.next()
		if err != nil {
			return out, info, c.preCommitReadFailure(t, actx, err)
		}
		out, info, err = dec.Event(out, ev.Name, ev.Data)
		usage.Merge(info.Usage)
		if info.ID != "" && *respID == "" {
			*respID = info.ID
		}
		switch {
		case err != nil:
			return out, info, decodeFailure(t, "upstream sent a malformed stream event before any content")
		case info.Error != nil:
			return out, info, inBandFailure(t, info.Error)
		case info.Content || info.Finished:
			return out, info, nil
		case info.Done:
			return out, info, streamAbortFailure(t, "upstream stream ended before any content")
		case len(out) > maxHeld:
			return out[:0], info, decodeFailure(t, "upstream sent more than "+strconv.Itoa(maxHeld)+" bytes of stream events before any content")
		}
	}
}

// openStream sends one streaming request. A non-2xx answer is read
// (up to maxErrorBody) and returned as its failure.
func (c *call) openStream(t *routing.Target, actx context.Context, in *provider.Inbound, body []byte) (*http.Response, *failure) {
	return c.openStreamStatus(t, actx, in, body, &c.attStatus)
}

// openStreamStatus is openStream recording the upstream's status in
// *status (a hedged attempt's own, not the call's).
func (c *call) openStreamStatus(t *routing.Target, actx context.Context, in *provider.Inbound, body []byte, status *int) (*http.Response, *failure) {
	req, err := t.Endpoint.NewRequest(actx, in, body)
	if err != nil {
		return nil, c.credentialFailure(t, actx, err)
	}
	resp, err := c.s.transportFor(t).RoundTrip(req)
	if err != nil {
		return nil, c.errorFailure(t, actx, err)
	}
	*status = resp.StatusCode
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	bp := getBuf()
	defer putBuf(bp)
	rb, err := readBody(resp.Body, maxErrorBody, bp)
	switch {
	case errors.Is(err, errTooLarge):
		rb = (*bp)[:maxErrorBody]
	case err != nil:
		return nil, c.errorFailure(t, actx, err)
	}
	return nil, c.statusFailure(t, resp, rb) // its body is rebuilt, not kept
}

// preCommitReadFailure classifies a stream that failed before its first
// content: every such failure is retryable.
func (c *call) preCommitReadFailure(t *routing.Target, actx context.Context, err error) *failure {
	if c.r.Context().Err() != nil || context.Cause(actx) != nil {
		return c.errorFailure(t, actx, err)
	}
	switch {
	case err == io.EOF:
		return streamAbortFailure(t, "upstream stream ended before any content")
	case errors.Is(err, provider.ErrEventTooLarge):
		return decodeFailure(t, "upstream sent an oversized stream event")
	}
	return streamAbortFailure(t, "upstream stream was cut before any content")
}

// relay commits the response to this target and copies the rest of the
// stream. After commit there is no failover: a failure ends the caller's
// stream with an `event: error` frame and no [DONE].
func (c *call) relay(cd *candidate, actx context.Context, cancel context.CancelCauseFunc, st *sseState, dec provider.StreamDecoder, wd *watchdog, t0 time.Time, first provider.EventInfo) {
	t := cd.t
	ttft := time.Since(t0)
	c.attTTFT, c.ttft = ttft, time.Since(c.start)
	wd.commit()
	if c.respID != "" {
		c.remember(t, c.respID)
	}
	if c.cont == nil {
		c.releaseBody() // a continuation re-sends it
	}
	c.served(cd, http.StatusOK)
	// The target has answered: settle its cooldown and probe now, not when
	// the stream ends minutes later.
	c.settled(cd, cd.h.Recover(cd.att))
	h := c.w.Header()
	h["Content-Type"] = eventStream
	h["Cache-Control"] = noCache
	h["X-Accel-Buffering"] = noBuffering
	h[hdrServedBy] = t.ServedBy
	c.setAttempts(h, -1)
	c.setLimitHeaders(h)
	c.status = http.StatusOK
	c.w.WriteHeader(http.StatusOK)
	sw := newStreamWriter(c.w, c.s.keepAlive, c.s.writeTimeout, keepAliveFor(c.rt.wire))
	defer sw.close()
	st.fr.sw = sw
	if first.Done {
		// The whole answer came in the first event.
		if sw.write(c.out) != nil {
			c.callerFailed(cd, sw)
			return
		}
		cd.h.Succeeded(cd.att, time.Since(t0), ttft)
		c.observeAttempt(cd, observe.OutcomeOK, "", false)
		drainAfterDone(st.br, cancel)
		return
	}
	if c.cont != nil {
		c.cont.see(c.out)
	}
	if sw.buffer(c.out) != nil {
		c.callerFailed(cd, sw)
		return
	}
	finished := first.Finished
	for {
		ev, err := st.next()
		if err != nil {
			switch {
			case sw.failed():
				c.callerFailed(cd, sw) // the caller's connection failed, not the upstream
			case err == io.EOF && finished:
				// Ended properly without its end marker: complete it.
				if sw.write(dec.End(c.out[:0])) != nil {
					c.callerFailed(cd, sw)
					return
				}
				cd.h.Succeeded(cd.att, time.Since(t0), ttft)
				c.observeAttempt(cd, observe.OutcomeOK, "", false)
			case c.r.Context().Err() != nil:
				c.callerFailed(cd, sw)
			case context.Cause(actx) == errStalled:
				c.endCommitted(cd, sw, cancel, timeoutFailure(t, "upstream stream stalled for more than "+ms(t.StreamIdleTimeout)))
			case err == io.EOF:
				c.endCommitted(cd, sw, cancel, streamAbortFailure(t, "upstream stream ended before the answer was complete"))
			default:
				c.endCommitted(cd, sw, cancel, streamAbortFailure(t, "upstream stream was cut mid-answer"))
			}
			return
		}
		out, info, err := dec.Event(c.out[:0], ev.Name, ev.Data)
		c.out = out
		c.usage.Merge(info.Usage)
		if info.ID != "" && c.respID == "" {
			c.respID = info.ID
			c.remember(t, info.ID)
		}
		switch {
		case errors.Is(err, provider.ErrSkipEvent):
			c.s.logger.Warn("dropped a malformed stream event", "call_id", c.callID, "target", t.Name, "bytes", len(ev.Data))
			continue
		case err != nil:
			c.endCommitted(cd, sw, cancel, streamAbortFailure(t, "upstream sent a malformed stream event mid-answer"))
			return
		case info.Error != nil:
			c.endCommitted(cd, sw, cancel, inBandFailure(t, info.Error))
			return
		case info.Done:
			if sw.write(out) != nil {
				c.callerFailed(cd, sw)
				return
			}
			cd.h.Succeeded(cd.att, time.Since(t0), ttft)
			c.observeAttempt(cd, observe.OutcomeOK, "", false)
			drainAfterDone(st.br, cancel)
			return
		}
		if c.cont != nil {
			c.cont.see(out)
		}
		if len(out) > 0 {
			wd.progress()
			if sw.buffer(out) != nil {
				c.callerFailed(cd, sw)
				return
			}
		}
		finished = finished || info.Finished
	}
}

// callerFailed ends a committed stream whose caller went away or stopped
// reading: the attempt says nothing about the target (the upstream is
// cancelled when the attempt returns, and not cooled), and the access line
// says 499.
func (c *call) callerFailed(cd *candidate, sw *streamWriter) {
	cd.h.Neutral()
	if sw.timedOut() {
		c.slowClient()
		c.observeAttempt(cd, observe.OutcomeSlowClient, "", false)
		return
	}
	c.status = statusClientClosed
	c.outcome = "client_closed"
	c.observeAttempt(cd, observe.OutcomeClientClosed, "", false)
}

// Bounds of drainAfterDone.
const (
	drainWait  = 50 * time.Millisecond
	drainLimit = 64 << 10
)

var errDrained = errors.New("upstream body still open after [DONE]")

// drainAfterDone reads what is left of an upstream stream after [DONE],
// normally just the end of the chunked body (or HTTP/2 END_STREAM), so
// that net/http puts the connection back in the pool: a body closed before
// its end costs the connection, and the next request a new dial (and, on a
// real upstream, a TLS handshake). The end usually follows [DONE] at once;
// an upstream that keeps the body open longer than drainWait, or sends
// more than drainLimit bytes, loses the connection as before. The caller
// already has [DONE]; only the end of its response waits.
func drainAfterDone(r io.Reader, cancel context.CancelCauseFunc) {
	tm := time.AfterFunc(drainWait, func() { cancel(errDrained) })
	defer tm.Stop()
	_, _ = io.CopyN(io.Discard, r, drainLimit)
}

// failCommitted ends a committed stream with an error frame.
func (c *call) failCommitted(cd *candidate, sw *streamWriter, f *failure) {
	c.out = appendStreamError(c.out[:0], c.rt.wire, f)
	_ = sw.write(c.out)
	c.recordFailure(cd, f)
	c.status = f.status // for the access log; the caller saw 200 and the error frame
}

// served records the winning target in the trail.
func (c *call) served(cd *candidate, status int) {
	c.addTrailStatus(cd.t.Name, status)
	c.servedBy, c.winner = cd.t.Name, cd.t
}

// watchdog bounds a streaming attempt in three phases: the wait for
// response headers (StreamHeaderTimeout from the start), then for the first
// content chunk (StreamFirstTimeout from the start), and after commit every
// gap between events that reach the caller (StreamIdleTimeout: keep-alive
// pings and comments do not end a gap); until commit the routing budget
// bounds it too. It reads the time an event last arrived from an atomic and
// re-arms itself lazily, so the relay pays one atomic store per event, not
// a timer reset.
type watchdog struct {
	base     time.Time
	header   time.Duration
	first    time.Duration
	idle     time.Duration
	budgetAt time.Duration
	last     atomic.Int64 // since base, when the wait for the next event that reaches the caller began
	reading  atomic.Bool  // the relay is waiting on the upstream
	// progressed: an event that reached the caller arrived since last was
	// set. Events that reach no one (Anthropic pings, SSE comments) do
	// not set it, so a stream that only keeps its connection alive is
	// still a stall.
	progressed atomic.Bool
	phase      atomic.Int32
	stopped    atomic.Bool
	cancel     context.CancelCauseFunc
	timer      *time.Timer
}

// Phases of a watchdog.
const (
	phaseHeaders int32 = iota // waiting for response headers
	phaseFirst                // headers in, waiting for the first content
	phaseRelay                // committed
)

func startWatchdog(base time.Time, t *routing.Target, deadline time.Time, cancel context.CancelCauseFunc) *watchdog {
	wd := &watchdog{base: base, header: t.StreamHeaderTimeout, first: t.StreamFirstTimeout, idle: t.StreamIdleTimeout, cancel: cancel}
	next := wd.header
	if !deadline.IsZero() {
		wd.budgetAt = max(deadline.Sub(base), time.Nanosecond)
		next = min(next, wd.budgetAt)
	}
	wd.timer = time.AfterFunc(next, wd.fire)
	return wd
}

func (wd *watchdog) fire() {
	if wd.stopped.Load() {
		return
	}
	now := time.Since(wd.base)
	var next time.Duration
	phase := wd.phase.Load()
	switch phase {
	case phaseHeaders:
		if now >= wd.header {
			wd.cancel(errNoHeaders)
			return
		}
		next = wd.header - now
	case phaseFirst:
		if now >= wd.first {
			wd.cancel(errNoFirstChunk)
			return
		}
		next = wd.first - now
	default:
		if !wd.reading.Load() {
			// Not waiting on the upstream (writing to the caller, or
			// between reads): no silence to measure.
			next = wd.idle
			break
		}
		idle := now - time.Duration(wd.last.Load())
		if idle >= wd.idle {
			wd.cancel(errStalled)
			return
		}
		next = wd.idle - idle
	}
	if wd.budgetAt > 0 && phase != phaseRelay {
		if now >= wd.budgetAt {
			wd.cancel(errBudget)
			return
		}
		next = min(next, wd.budgetAt-now)
	}
	if wd.phase.Load() != phase {
		// Committed meanwhile: commit's own re-arm must not be pushed back.
		next = min(next, wd.idle)
	}
	wd.timer.Reset(next)
}

// headers records that the response headers arrived.
func (wd *watchdog) headers() { wd.phase.Store(phaseFirst) }

// waiting records that the relay starts (true) or stops (false) waiting
// on the upstream.
func (wd *watchdog) waiting(on bool) {
	if on && wd.progressed.Swap(false) {
		wd.last.Store(int64(time.Since(wd.base)))
	}
	wd.reading.Store(on)
}

// progress records that an event reached the caller: the next wait on the
// upstream starts a new gap.
func (wd *watchdog) progress() { wd.progressed.Store(true) }

// commit records the first content: from now on the idle bound applies.
// The timer may be set for the first-chunk bound, far later: it is re-armed
// for the idle bound, once per attempt.
func (wd *watchdog) commit() {
	wd.progressed.Store(true)
	wd.phase.Store(phaseRelay)
	wd.timer.Reset(wd.idle)
}

func (wd *watchdog) stop() {
	wd.stopped.Store(true)
	wd.timer.Stop()
}

// streamWriter writes SSE frames to the caller and sends a comment when
// the stream has been silent for the keep-alive interval. write flushes at
// once; buffer leaves the frame for the next flushPending, which the relay
// makes before it reads from the upstream again. The keep-alive runs on a
// timer goroutine, so writes are serialised by a mutex private to this
// stream.
//
// Every write runs under a write deadline of writeTimeout, renewed at most
// once a second (a deadline costs a timer update, not a system call, but
// not nothing): a caller that takes no bytes for that long has its stream
// ended, and cannot hold the upstream and a goroutine for as long as it
// likes.
type streamWriter struct {
	mu       sync.Mutex
	w        http.ResponseWriter
	rc       *http.ResponseController
	err      error
	done     bool
	pending  bool // written, not yet flushed
	base     time.Time
	last     atomic.Int64
	interval time.Duration
	timer    *time.Timer
	// keepAlive is what a silent stream sends: an SSE comment, or the
	// caller wire's own ping event.
	keepAlive []byte

	writeTimeout time.Duration
	deadlineAt   time.Duration // since base, when the deadline was last renewed
	hasDeadline  bool
}

func newStreamWriter(w http.ResponseWriter, interval, writeTimeout time.Duration, keepAlive []byte) *streamWriter {
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), base: time.Now(), interval: interval, writeTimeout: writeTimeout, keepAlive: keepAlive}
	if interval > 0 {
		sw.timer = time.AfterFunc(interval, sw.tick)
	}
	return sw
}

// renewDeadline keeps the write deadline at least writeTimeout-1s ahead.
// Called under mu, before every write.
func (sw *streamWriter) renewDeadline() {
	if sw.writeTimeout <= 0 {
		return
	}
	now := time.Since(sw.base)
	if sw.hasDeadline && now-sw.deadlineAt < time.Second {
		return
	}
	switch err := sw.rc.SetWriteDeadline(sw.base.Add(now + sw.writeTimeout)); {
	case err == nil:
		sw.deadlineAt, sw.hasDeadline = now, true
	case errors.Is(err, http.ErrNotSupported):
		sw.writeTimeout = 0 // this ResponseWriter has no deadlines: stop asking
	}
}

// timedOut reports whether the stream failed because the caller took no
// bytes within the write timeout.
func (sw *streamWriter) timedOut() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.err != nil && isTimeout(sw.err)
}

func (sw *streamWriter) write(b []byte) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.writeLocked(b)
}

func (sw *streamWriter) writeLocked(b []byte) error {
	if sw.err != nil {
		return sw.err
	}
	sw.renewDeadline()
	if _, sw.err = sw.w.Write(b); sw.err == nil {
		sw.flushLocked()
	}
	sw.last.Store(int64(time.Since(sw.base)))
	return sw.err
}

func (sw *streamWriter) flushLocked() {
	sw.pending = false
	if err := sw.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		sw.err = err
	}
}

// buffer writes b without flushing it.
func (sw *streamWriter) buffer(b []byte) error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err != nil {
		return sw.err
	}
	sw.renewDeadline()
	if _, sw.err = sw.w.Write(b); sw.err == nil {
		sw.pending = true
	}
	sw.last.Store(int64(time.Since(sw.base)))
	return sw.err
}

// flushPending flushes what buffer left, if anything.
func (sw *streamWriter) flushPending() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.pending && sw.err == nil {
		sw.renewDeadline()
		sw.flushLocked()
	}
	return sw.err
}

// failed reports whether a write or flush to the caller failed.
func (sw *streamWriter) failed() bool {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	return sw.err != nil
}

func (sw *streamWriter) tick() {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.done {
		return
	}
	idle := time.Since(sw.base) - time.Duration(sw.last.Load())
	if idle < sw.interval {
		sw.timer.Reset(sw.interval - idle)
		return
	}
	if sw.writeLocked(sw.keepAlive) == nil {
		sw.timer.Reset(sw.interval)
	}
}

func (sw *streamWriter) close() {
	sw.mu.Lock()
	sw.done = true
	if sw.hasDeadline && sw.err == nil {
		// The connection may serve another request: no stale deadline.
		_ = sw.rc.SetWriteDeadline(time.Time{})
	}
	sw.mu.Unlock()
	if sw.timer != nil {
		sw.timer.Stop()
	}
}
