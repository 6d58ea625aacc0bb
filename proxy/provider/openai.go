// Package provider is the adapter layer between the proxy and upstream
// model providers: the Endpoint interface every wire family implements
// (adapter.go), the failure classes they share (class.go), and the OpenAI
// wire itself (POST {api_base}/chat/completions with a Bearer key,
// openai_endpoint.go). The other families live in subpackages
// (anthropic, azure) that import this one, never the reverse.
//
// The package also holds the byte-level tools the proxy's hot path uses on
// the OpenAI wire: a one-pass request scanner, the model-field splice, a
// chunk scanner and an SSE reader. None of them decodes or re-encodes a
// body.
package provider

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aisix/aisix/storage"
)

var (
	contentTypeJSON = []string{"application/json"}
	acceptJSON      = []string{"application/json"}
	acceptSSE       = []string{"text/event-stream"}
)

// OpenAIForwardHeaders are the caller headers the OpenAI adapter sends
// upstream: trace context, the beta-feature switch and the client's user
// agent. Everything else stays at the gateway (an allowlist, not a
// denylist): forwarding headers such as X-Forwarded-For, Idempotency-Key,
// or another vendor's credentials (Api-Key, X-Goog-Api-Key, Anthropic-*,
// X-Amz-*) would leak the caller's details or change what the provider key
// authorises. A provider key may let more through by name
// (forward_headers).
var OpenAIForwardHeaders = []string{"Openai-Beta", "Traceparent", "Tracestate", "User-Agent"}

// ChatRequest is one upstream chat-completions call.
type ChatRequest struct {
	// URL is the prebuilt {api_base}/chat/completions.
	URL *url.URL
	// Auth is the prebuilt Authorization header value ("Bearer <secret>");
	// nil sends no credential.
	Auth []string
	// Body is the caller's body with the model value replaced. The request
	// keeps a reference; it must not be modified afterwards.
	Body   []byte
	Stream bool
	// Caller is the caller's header; the adapter's allowlist and Forward
	// choose what is copied.
	Caller http.Header
	// Forward names extra caller headers (canonical) to copy.
	Forward []string
}

// NewChatRequest builds the upstream *http.Request. The body can be
// replayed (GetBody is set), so the transport may resend it on a stale
// pooled connection.
func NewChatRequest(ctx context.Context, cr ChatRequest) (*http.Request, error) {
	h := make(http.Header, 4+len(cr.Forward))
	copyHeaders(h, cr.Caller, OpenAIForwardHeaders)
	copyHeaders(h, cr.Caller, cr.Forward)
	if cr.Auth != nil {
		h["Authorization"] = cr.Auth
	}
	h["Content-Type"] = contentTypeJSON
	if cr.Stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	return NewPost(ctx, cr.URL, h, cr.Body), nil
}

// NewPost builds a POST of body to u with header h, as every adapter
// sends it. The body can be replayed (GetBody is set), so the transport
// may resend it on a stale pooled connection; it must not be modified
// afterwards.
func NewPost(ctx context.Context, u *url.URL, h http.Header, body []byte) *http.Request {
	// Built by hand rather than with http.NewRequestWithContext: the URL
	// is already parsed, and this saves several allocations per attempt.
	// The body is an io.NopCloser over a *bytes.Reader on purpose: net/http
	// recognises that pair as in-memory and writes the headers and a body
	// that fits its write buffer in one system call, instead of flushing
	// the headers first.
	req := http.Request{
		Method:        http.MethodPost,
		URL:           u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          u.Host,
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	return req.WithContext(ctx)
}

// CopyHeaders copies the caller headers named in names (canonical) to dst.
func CopyHeaders(dst, caller http.Header, names []string) { copyHeaders(dst, caller, names) }

// copyHeaders copies the caller headers named in names (canonical) to dst.
func copyHeaders(dst, caller http.Header, names []string) {
	for _, k := range names {
		if v, ok := caller[k]; ok {
			dst[k] = v
		}
	}
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		// NaN and infinities parse; they, negative and absurd values are
		// ignored rather than trusted.
		if math.IsNaN(n) || n < 0 || n > float64(storage.MaxCooldownSeconds) {
			return 0, false
		}
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		if d > time.Duration(storage.MaxCooldownSeconds)*time.Second {
			return 0, false
		}
		return d, true
	}
	return 0, false
}

// IsContextLengthExceeded reports whether an upstream 400 body says the
// prompt does not fit the model's context window.
func IsContextLengthExceeded(body []byte) bool {
	return bytes.Contains(body, []byte("context_length_exceeded"))
}

// TransportErrorText describes a transport failure in a few words that name
// no host, address or port, so it can be shown to callers.
func TransportErrorText(err error) string {
	var dnsErr *net.DNSError
	var certErr *tls.CertificateVerificationError
	var recErr tls.RecordHeaderError
	var unkAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certInv x509.CertificateInvalidError
	var alert tls.AlertError
	switch {
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return "DNS lookup failed: no such host"
		}
		return "DNS lookup failed"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset by upstream"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "upstream host unreachable"
	case errors.As(err, &certErr), errors.As(err, &recErr), errors.As(err, &unkAuth),
		errors.As(err, &hostErr), errors.As(err, &certInv), errors.As(err, &alert):
		return "TLS handshake failed"
	case errors.Is(err, os.ErrDeadlineExceeded), isTimeout(err):
		return "connect timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return "upstream closed the connection"
	}
	return "upstream unreachable"
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
