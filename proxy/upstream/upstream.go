// Package upstream is the proxy's HTTP/1.1 client for upstream calls. A
// request is written and its answer read on the goroutine that calls
// RoundTrip and then reads the body: no reader or writer goroutine per
// connection (net/http's Transport keeps two per pooled connection, and a
// proxied stream holds its connection for the stream's whole life), and a
// pooled connection keeps no buffers while it is idle.
//
// It takes its settings from a *http.Transport, the base, and hands the
// base what it does not do itself: an upstream that negotiates HTTP/2 over
// TLS (real providers do: one connection multiplexes many streams there,
// so the per-connection goroutines are shared), a request that goes
// through an HTTP proxy from the environment, and a base with its own
// DialTLSContext. The first TLS connection to an origin offers both
// protocols by ALPN; an origin that picks h2 is remembered and from then
// on goes to the base.
//
// The contract it keeps with the base's: the base's dialer (and so its
// egress policy and connect timeout), TLS configuration and handshake
// timeout, keep-alive pooling up to MaxIdleConnsPerHost per origin with
// IdleConnTimeout, and the request's context: when it is done the
// connection is closed at once (the upstream sees the hang-up), and
// RoundTrip or a body Read returns context.Cause of it, as net/http does.
package upstream

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Transport is an http.RoundTripper for upstream calls; see the package
// documentation. Its zero value is not usable: call New.
type Transport struct {
	base        *http.Transport
	dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration

	// origins maps "http" and "https" hosts to their pools, copied on
	// write: a lookup is one atomic load and a map read, no lock.
	origins atomic.Pointer[originMap]
	mu      sync.Mutex // serialises writers of origins
	// sweeping is set while the idle sweeper runs.
	sweeping atomic.Bool
}

type originMap struct{ plain, tls map[string]*origin }

// origin is one scheme and host:port, with its idle connections.
type origin struct {
	addr string
	// tlsConf is nil for plain HTTP.
	tlsConf *tls.Config
	// viaBase is set when the base serves this origin (HTTP/2, a proxy).
	viaBase atomic.Bool
	idle    chan *conn
}

// conn is one upstream connection. br is set while a request is on it
// and pooled while it is idle.
type conn struct {
	nc        net.Conn
	peek      *peeker // the liveness check of nc while idle
	br        *bufio.Reader
	idleSince time.Time
	reused    bool
}

// Buffer sizes. An answer is read through a 4 KiB buffer (an SSE event is
// a few hundred bytes; larger reads bypass it); a request's headers and
// the start of its body are written through a 4 KiB one held only while
// writing. Both are pooled across connections.
const (
	readBufSize  = 4 << 10
	writeBufSize = 4 << 10
)

var (
	readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}
	writers = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}
)

// New returns a Transport with base's settings. base serves what the
// Transport does not (see the package documentation) and must not be nil.
func New(base *http.Transport) *Transport {
	t := &Transport{base: base, dial: base.DialContext, maxIdle: base.MaxIdleConnsPerHost, idleTimeout: base.IdleConnTimeout}
	if t.dial == nil {
		t.dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	}
	if t.maxIdle <= 0 {
		t.maxIdle = http.DefaultMaxIdleConnsPerHost
	}
	t.origins.Store(&originMap{plain: map[string]*origin{}, tls: map[string]*origin{}})
	return t
}

// Base is the *http.Transport the Transport was made from.
func (t *Transport) Base() *http.Transport { return t.base }

// CloseIdleConnections closes the idle connections of the Transport and
// of its base.
func (t *Transport) CloseIdleConnections() {
	om := t.origins.Load()
	for _, m := range []map[string]*origin{om.plain, om.tls} {
		for _, o := range m {
			o.closeIdle(func(*conn) bool { return true })
		}
	}
	t.base.CloseIdleConnections()
}

// errH2 says a fresh TLS connection negotiated HTTP/2: the base serves it.
var errH2 = errors.New("upstream: origin negotiated h2")

// RoundTrip sends req and returns the answer whose headers have arrived;
// its Body reads the rest on the caller's goroutine.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	o := t.origin(req.URL)
	if o == nil || o.viaBase.Load() {
		return t.base.RoundTrip(req)
	}
	ctx := req.Context()
	for retried := false; ; retried = true {
		c, err := t.get(ctx, o)
		if err == errH2 {
			return t.base.RoundTrip(req)
		}
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, o, c, req)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the upstream closed while it was idle,
		// found out before a byte of the answer: once more on a fresh one,
		// as net/http does for an idle connection it sees close.
		var s staleError
		if retried || !errors.As(err, &s) || req.GetBody == nil {
			if errors.As(err, &s) {
				err = s.err
			}
			return nil, err
		}
		b, gerr := req.GetBody()
		if gerr != nil {
			return nil, s.err
		}
		r2 := *req
		r2.Body = b
		req = &r2
	}
}

// origin returns u's pool, nil when the base must serve u.
func (t *Transport) origin(u *url.URL) *origin {
	om := t.origins.Load()
	var m map[string]*origin
	switch u.Scheme {
	case "http":
		m = om.plain
	case "https":
		if t.base.DialTLSContext != nil {
			return nil
		}
		m = om.tls
	default:
		return nil
	}
	if o, ok := m[u.Host]; ok {
		return o
	}
	return t.addOrigin(u)
}

func (t *Transport) addOrigin(u *url.URL) *origin {
	t.mu.Lock()
	defer t.mu.Unlock()
	om := t.origins.Load()
	m := om.plain
	if u.Scheme == "https" {
		m = om.tls
	}
	if o, ok := m[u.Host]; ok {
		return o
	}
	o := &origin{addr: hostPort(u), idle: make(chan *conn, t.maxIdle)}
	if u.Scheme == "https" {
		conf := &tls.Config{}
		if t.base.TLSClientConfig != nil {
			conf = t.base.TLSClientConfig.Clone()
		}
		if conf.ServerName == "" {
			conf.ServerName = u.Hostname()
		}
		conf.NextProtos = []string{"http/1.1"}
		if t.base.ForceAttemptHTTP2 {
			conf.NextProtos = []string{"h2", "http/1.1"}
		}
		o.tlsConf = conf
	}
	if t.base.Proxy != nil {
		if p, err := t.base.Proxy(&http.Request{URL: u}); err != nil || p != nil {
			o.viaBase.Store(true)
		}
	}
	next := &originMap{plain: om.plain, tls: om.tls}
	cp := make(map[string]*origin, len(m)+1)
	for k, v := range m {
		cp[k] = v
	}
	cp[u.Host] = o
	if u.Scheme == "https" {
		next.tls = cp
	} else {
		next.plain = cp
	}
	t.origins.Store(next)
	return o
}

func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// get returns an idle connection that is still open, or dials one.
func (t *Transport) get(ctx context.Context, o *origin) (*conn, error) {
	for {
		select {
		case c := <-o.idle:
			if (t.idleTimeout > 0 && time.Since(c.idleSince) > t.idleTimeout) || !c.peek.alive() {
				c.nc.Close()
				continue
			}
			c.br = readers.Get().(*bufio.Reader)
			c.br.Reset(c.nc)
			c.reused = true
			return c, nil
		default:
			return t.dialConn(ctx, o)
		}
	}
}

func (t *Transport) dialConn(ctx context.Context, o *origin) (*conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, context.Cause(ctx)
	}
	nc, err := t.dial(ctx, "tcp", o.addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, err
	}
	if o.tlsConf != nil {
		tc := tls.Client(nc, o.tlsConf)
		hctx := ctx
		if d := t.base.TLSHandshakeTimeout; d > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		if err := tc.HandshakeContext(hctx); err != nil {
			nc.Close()
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if hctx.Err() != nil {
				return nil, handshakeTimeout{}
			}
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			o.viaBase.Store(true)
			tc.Close()
			o.closeIdle(func(*conn) bool { return true })
			return nil, errH2
		}
		nc = tc
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(nc)
	return &conn{nc: nc, peek: newPeeker(nc), br: br}, nil
}

// handshakeTimeout is net/http's "TLS handshake timeout" error.
type handshakeTimeout struct{}

func (handshakeTimeout) Error() string   { return "net/http: TLS handshake timeout" }
func (handshakeTimeout) Timeout() bool   { return true }
func (handshakeTimeout) Temporary() bool { return true }

// staleError is a failure on a reused connection before any byte of the
// answer: the upstream had closed it while it was idle.
type staleError struct{ err error }

func (e staleError) Error() string { return e.err.Error() }
func (e staleError) Unwrap() error { return e.err }

// exchange writes req on c and reads the answer's headers.
func (t *Transport) exchange(ctx context.Context, o *origin, c *conn, req *http.Request) (*http.Response, error) {
	// The request's end closes the connection at once: a blocked read or
	// write returns, and the upstream sees the hang-up.
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	fail := func(err error, stale bool) (*http.Response, error) {
		stop()
		c.close()
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		if stale && c.reused {
			return nil, staleError{err}
		}
		return nil, err
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c.nc)
	err := req.Write(bw)
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	if err != nil {
		return fail(err, isClosedConn(err))
	}
	if _, err := c.br.Peek(1); err != nil {
		return fail(err, isClosedConn(err))
	}
	var resp *http.Response
	for range 8 {
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			return fail(err, false)
		}
		// 1xx informational answers (but 101) precede the real one.
		if resp.StatusCode >= 200 || resp.StatusCode < 100 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
	}
	if resp.StatusCode >= 100 && resp.StatusCode < 200 {
		return fail(errors.New("upstream sent too many 1xx answers"), false)
	}
	b := &body{t: t, o: o, c: c, r: resp.Body, ctx: ctx, stop: stop,
		keep: !resp.Close && !req.Close && resp.ProtoAtLeast(1, 1)}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// isClosedConn reports an error that says the peer had closed the
// connection.
func isClosedConn(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *conn) close() {
	c.nc.Close()
	// br is not pooled: a Read may still hold it.
	c.br = nil
}

// body is an answer's body on its connection.
type body struct {
	t    *Transport
	o    *origin
	c    *conn
	r    io.ReadCloser
	ctx  context.Context
	stop func() bool
	keep bool
	// state is open, then atEOF or closed.
	state atomic.Int32
}

const (
	open int32 = iota
	atEOF
	closed
)

var errClosed = errors.New("http: read on closed response body")

func (b *body) Read(p []byte) (int, error) {
	switch b.state.Load() {
	case atEOF:
		return 0, io.EOF
	case closed:
		return 0, errClosed
	}
	n, err := b.r.Read(p)
	switch {
	case err == io.EOF:
		b.finish(true)
	case err != nil:
		if b.ctx.Err() != nil {
			err = context.Cause(b.ctx)
		}
		b.finish(false)
	}
	return n, err
}

// Close ends the body; one not read to its end closes its connection
// (net/http's Transport does the same).
func (b *body) Close() error {
	b.finish(false)
	return nil
}

// finish ends the body once: a body read to its end puts its connection
// back in the pool when the answer allows keep-alive and the request's
// context has not closed it.
func (b *body) finish(eof bool) {
	end := closed
	if eof {
		end = atEOF
	}
	if !b.state.CompareAndSwap(open, end) {
		return
	}
	stopped := b.stop()
	if !eof || !b.keep || !stopped || b.c.br.Buffered() > 0 {
		b.c.close()
		return
	}
	b.t.put(b.o, b.c)
}

// put pools c, idle and without its read buffer.
func (t *Transport) put(o *origin, c *conn) {
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
	c.idleSince = time.Now()
	select {
	case o.idle <- c:
	default:
		c.nc.Close()
		return
	}
	if t.idleTimeout > 0 && !t.sweeping.Load() && t.sweeping.CompareAndSwap(false, true) {
		go t.sweep()
	}
}

// closeIdle closes the idle connections drop picks and keeps the others.
// It returns how many it kept.
func (o *origin) closeIdle(drop func(*conn) bool) int {
	kept := 0
	for range len(o.idle) {
		var c *conn
		select {
		case c = <-o.idle:
		default:
			return kept
		}
		if drop(c) {
			c.nc.Close()
			continue
		}
		select {
		case o.idle <- c:
			kept++
		default:
			c.nc.Close()
		}
	}
	return kept
}

// sweep closes connections idle longer than IdleConnTimeout, or closed by
// their upstream, while any are pooled; it ends when none are.
func (t *Transport) sweep() {
	every := max(t.idleTimeout/2, time.Second)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for range tick.C {
		now := time.Now()
		kept := 0
		om := t.origins.Load()
		for _, m := range []map[string]*origin{om.plain, om.tls} {
			for _, o := range m {
				kept += o.closeIdle(func(c *conn) bool { return now.Sub(c.idleSince) > t.idleTimeout || !c.peek.alive() })
			}
		}
		if kept == 0 {
			t.sweeping.Store(false)
			return
		}
	}
}
