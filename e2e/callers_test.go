package e2e

// Issue 9: callers that misbehave. A caller that stops reading, trickles,
// sends half a body or hangs up costs aisix a bounded amount and says nothing
// about the upstream: the upstream is never cooled for it.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fastCallerConfig is serve's config file for the caller tests that do not
// wait out the defaults (stream write 60 s, body read 30 s).
const fastCallerConfig = `proxy:
  stream_write_timeout: 2s
  body_read_timeout: 2s
`

// endless streams 8 KB content chunks as fast as aisix takes them, until
// aisix goes away.
func endless(w http.ResponseWriter, c *upstreamCall) {
	s := startSSE(w, c)
	if !s.role() {
		return
	}
	text := strings.Repeat("x", 8<<10)
	for s.content(text) {
		select {
		case <-c.done:
			return
		default:
		}
	}
}

// dialProxy connects to the proxy with a small receive buffer, so that a
// caller that stops reading soon blocks aisix's writes.
func dialProxy(t testing.TB, g *gateway) net.Conn {
	t.Helper()
	// The buffer is set before connecting: shrinking it on an open
	// connection shrinks a window already advertised, and the kernel then
	// drops and slowly retransmits what was in flight, which is not what a
	// slow caller does.
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(g.proxy, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// rawRequest writes a chat-completions request head declaring
// contentLength, followed by body (which may be shorter).
func rawRequest(t testing.TB, conn net.Conn, g *gateway, contentLength int, body string) {
	t.Helper()
	head := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", strings.TrimPrefix(g.proxy, "http://"), callerKey, contentLength)
	if _, err := io.WriteString(conn, head+body); err != nil {
		t.Fatal(err)
	}
}

// readRawResponse reads a response head on conn within d.
func readRawResponse(t testing.TB, conn net.Conn, d time.Duration) (*http.Response, *bufio.Reader) {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %v: %v", d, err)
	}
	return resp, br
}

// openUnreadStream starts a stream on a raw connection, reads its response
// head and then never reads again.
func openUnreadStream(t testing.TB, g *gateway) (net.Conn, string) {
	t.Helper()
	conn := dialProxy(t, g)
	body := chatBody("chat-prod", true)
	rawRequest(t, conn, g, len(body), body)
	resp, _ := readRawResponse(t, conn, 30*time.Second)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want a 200 stream", resp.StatusCode)
	}
	return conn, resp.Header.Get("X-Aisix-Call-Id")
}

// checkUnreadStreamEnded: aisix cancels the upstream request within bound of
// the caller stopping, closes the caller's connection, logs a slow client
// and leaves the upstream healthy.
func checkUnreadStreamEnded(t *testing.T, g *gateway, primary *upstream, conn net.Conn, callID string, bound time.Duration) {
	t.Helper()
	stopped := time.Now()
	call := primary.next(t, 10*time.Second)
	select {
	case <-call.gone:
		t.Logf("aisix let go of the upstream %v after the caller stopped reading", time.Since(stopped).Round(time.Millisecond))
	case <-time.After(bound):
		t.Fatalf("aisix still relayed to a caller that stopped reading %v ago; the upstream request was not cancelled", bound)
	}
	if row := g.status(t, "gpt-4o-primary"); row.Status != "healthy" || row.CooldownUntil != nil {
		t.Errorf("a slow caller cooled the upstream: %s", row.raw)
	}
	slowRe := regexp.MustCompile(`(?i)slow.?client`)
	g.log.waitLine(t, 10*time.Second, "a slow-client line for call "+callID, func(l string) bool {
		return strings.Contains(l, callID) && slowRe.MatchString(l)
	})
	// What was buffered drains, then the connection must be closed.
	if err := conn.SetReadDeadline(time.Now().Add(15 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, conn); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("aisix never closed the slow caller's connection")
		}
	}
}

// TestCallerMisbehaving: with the write and body-read timeouts set small.
func TestCallerMisbehaving(t *testing.T) {
	t.Run("caller that never reads is cut after stream_write_timeout", func(t *testing.T) {
		primary := newUpstream(t, "primary", "", endless)
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		g := startGateway(t, serveOptions{config: fastCallerConfig})
		// Stream bounds well above the 20 s this test waits: only the
		// write timeout may end the stream.
		setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{direct: map[string]any{"timeout": 60000, "stream_timeout": 60000}})

		conn, callID := openUnreadStream(t, g)
		checkUnreadStreamEnded(t, g, primary, conn, callID, 20*time.Second)
	})

	t.Run("caller that trickles but keeps reading gets the whole stream", func(t *testing.T) {
		const n = 8
		text := strings.Repeat("y", 8<<10)
		primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
			s := startSSE(w, c)
			if !s.role() {
				return
			}
			for range n {
				if !s.content(text) {
					return
				}
			}
			s.finish()
		})
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		g := startGateway(t, serveOptions{config: fastCallerConfig})
		setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

		conn := dialProxy(t, g)
		body := chatBody("chat-prod", true)
		start := time.Now()
		rawRequest(t, conn, g, len(body), body)
		resp, _ := readRawResponse(t, conn, 30*time.Second)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d, want 200", resp.StatusCode)
		}
		// 8 KB events read one every 500 ms: about 5 s in all, longer than
		// the 2 s write timeout, with aisix's writes blocked in between.
		if err := conn.SetReadDeadline(time.Now().Add(60 * time.Second)); err != nil {
			t.Fatal(err)
		}
		evs, err := readSSE(resp.Body, start, func(sseEvent) {
			time.Sleep(500 * time.Millisecond) // the caller's pace, not a wait for an event
		})
		if err != nil {
			t.Fatalf("the trickled stream broke after %d events: %v", len(evs), err)
		}
		chunks := 0
		for _, ev := range evs {
			if ev.name == "error" {
				t.Errorf("the stream carried an error frame: %s", ev.data)
			}
			if contentOf(ev) == text {
				chunks++
			}
		}
		if last := lastEvent(evs); chunks != n || last.data != "[DONE]" {
			t.Errorf("got %d of %d content chunks (last event %q %.80q), want all and [DONE]", chunks, n, last.name, last.data)
		}
		if row := g.status(t, "gpt-4o-primary"); row.Status != "healthy" || row.CooldownUntil != nil {
			t.Errorf("a slow reader cooled the upstream: %s", row.raw)
		}
	})

	t.Run("body shorter than its Content-Length gets 408 after body_read_timeout", func(t *testing.T) {
		g := startGateway(t, serveOptions{config: fastCallerConfig})
		setupTutorial(t, g, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", fastTimeouts)
		shortBody(t, g, 15*time.Second)
	})

	t.Run("an unknown key with a body still to come gets 401 at once", func(t *testing.T) {
		g := startGateway(t, serveOptions{config: fastCallerConfig})
		conn := dialProxy(t, g)
		head := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-nobody\r\n" +
			"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
		if _, err := io.WriteString(conn, head); err != nil {
			t.Fatal(err)
		}
		resp, _ := readRawResponse(t, conn, 10*time.Second)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("Content-Length over max_body_bytes gets 413 before the body is sent", func(t *testing.T) {
		g := startGateway(t, serveOptions{})
		conn := dialProxy(t, g)
		rawRequest(t, conn, g, 10<<20+1, "")
		resp, _ := readRawResponse(t, conn, 15*time.Second)
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		a := answer{status: resp.StatusCode, header: resp.Header, body: data}
		if a.status != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d, want 413: %s", a.status, data)
		}
		a.envelope(t)
	})

	t.Run("caller that hangs up mid-stream is logged as 499", func(t *testing.T) {
		primary := newUpstream(t, "primary", "", func(w http.ResponseWriter, c *upstreamCall) {
			s := startSSE(w, c)
			if !s.role() {
				return
			}
			for i := 0; s.content(fmt.Sprintf("tok%d ", i)) && c.wait(100*time.Millisecond); i++ {
			}
		})
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		g := startGateway(t, serveOptions{})
		setupTutorial(t, g, primary.base, secondary.base, fastTimeouts)

		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := g.chat(ctx, callerKey, chatBody("chat-prod", true), nil)
		if err != nil {
			t.Fatal(err)
		}
		callID := resp.Header.Get("X-Aisix-Call-Id")
		br := bufio.NewReader(resp.Body)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("the stream ended before any content: %v", err)
			}
			if strings.Contains(line, "tok0") {
				break
			}
		}
		cancel() // hang up
		resp.Body.Close()

		if line := g.accessLine(t, callID, 15*time.Second); line["status"] != float64(499) {
			t.Errorf("access log status %v, want 499: %v", line["status"], line)
		}
		waitClosed(t, primary.next(t, time.Second).gone, 10*time.Second, "aisix kept the upstream request of a caller that hung up")
		if row := g.status(t, "gpt-4o-primary"); row.Status != "healthy" || row.CooldownUntil != nil {
			t.Errorf("a caller hanging up cooled the upstream: %s", row.raw)
		}
	})
}

// shortBody sends a head declaring 100000 bytes, then 10 bytes, and stops:
// aisix must answer 408 in OpenAI's envelope within bound.
func shortBody(t *testing.T, g *gateway, bound time.Duration) {
	t.Helper()
	conn := dialProxy(t, g)
	start := time.Now()
	rawRequest(t, conn, g, 100000, `{"model":"`)
	resp, _ := readRawResponse(t, conn, bound+5*time.Second)
	took := time.Since(start)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: data}
	if a.status != http.StatusRequestTimeout {
		t.Fatalf("status %d, want 408: %s", a.status, data)
	}
	a.envelope(t)
	if took > bound {
		t.Errorf("408 after %v, want within %v", took, bound)
	}
}

// TestCallerMisbehavingDefaults: the same with serve's defaults (stream
// write timeout 60 s, body read timeout 30 s).
func TestCallerMisbehavingDefaults(t *testing.T) {
	slow(t)

	t.Run("caller that never reads is cut after the default 60s", func(t *testing.T) {
		t.Parallel()
		primary := newUpstream(t, "primary", "", endless)
		secondary := newUpstream(t, "secondary", "", okReply("secondary"))
		g := startGateway(t, serveOptions{})
		setupTutorial(t, g, primary.base, secondary.base, tutorialConfig{})

		conn, callID := openUnreadStream(t, g)
		checkUnreadStreamEnded(t, g, primary, conn, callID, 90*time.Second)
	})

	t.Run("body shorter than its Content-Length gets 408 within the default 30s", func(t *testing.T) {
		t.Parallel()
		g := startGateway(t, serveOptions{})
		setupTutorial(t, g, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", tutorialConfig{})
		shortBody(t, g, 35*time.Second)
	})
}
