// Package provider speaks to upstream model providers. The OpenAI wire
// (POST {api_base}/chat/completions with a Bearer key) is implemented; the
// other adapter families are recognised but not implemented yet, and the
// proxy answers them with a clear configuration error.
//
// The package also holds the byte-level tools the proxy's hot path uses on
// that wire: a one-pass request scanner, the model-field splice, a chunk
// scanner and an SSE reader. None of them decodes or re-encodes a body.
package provider

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
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

// Implemented reports whether the adapter family has an upstream
// implementation.
func Implemented(adapter string) bool { return adapter == storage.AdapterOpenAI }

var (
	contentTypeJSON = []string{"application/json"}
	acceptJSON      = []string{"application/json"}
	acceptSSE       = []string{"text/event-stream"}
)

// dropHeaders are the caller headers never sent upstream: hop-by-hop
// headers (RFC 9110 §7.6.1 and the ones httputil.ReverseProxy strips), the
// caller's own credentials, headers the proxy sets itself, and headers that
// would select a provider account other than the provider key's.
var dropHeaders = map[string]bool{
	"Connection":          true,
	"Proxy-Connection":    true,
	"Keep-Alive":          true,
	"Proxy-Authenticate":  true,
	"Proxy-Authorization": true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
	"Authorization":       true,
	"X-Api-Key":           true,
	"Cookie":              true,
	"Host":                true,
	"Content-Length":      true,
	"Content-Type":        true,
	"Accept":              true,
	"Accept-Encoding":     true,
	"Expect":              true,
	"Openai-Organization": true,
	"Openai-Project":      true,
}

// ChatRequest is one upstream chat-completions call.
type ChatRequest struct {
	// URL is the prebuilt {api_base}/chat/completions.
	URL *url.URL
	// Auth is the prebuilt Authorization header value ("Bearer <secret>").
	Auth []string
	// Body is the caller's body with the model value replaced. The request
	// keeps a reference; it must not be modified afterwards.
	Body   []byte
	Stream bool
	// Caller is the caller's header; safe end-to-end headers are copied.
	Caller http.Header
}

// NewChatRequest builds the upstream *http.Request. The body can be
// replayed (GetBody is set), so the transport may resend it on a stale
// pooled connection.
func NewChatRequest(ctx context.Context, cr ChatRequest) (*http.Request, error) {
	h := make(http.Header, len(cr.Caller)+3)
	if conn := cr.Caller["Connection"]; len(conn) > 0 {
		// Headers named in Connection are hop-by-hop too.
		for k, v := range cr.Caller {
			if !dropHeaders[k] && !strings.HasPrefix(k, "X-Aisix-") && !namedIn(conn, k) {
				h[k] = v
			}
		}
	} else {
		for k, v := range cr.Caller {
			if !dropHeaders[k] && !strings.HasPrefix(k, "X-Aisix-") {
				h[k] = v
			}
		}
	}
	h["Authorization"] = cr.Auth
	h["Content-Type"] = contentTypeJSON
	if cr.Stream {
		h["Accept"] = acceptSSE
	} else {
		h["Accept"] = acceptJSON
	}
	body := cr.Body
	// Built by hand rather than with http.NewRequestWithContext: the URL
	// is already parsed, and this saves several allocations per attempt.
	// The body is an io.NopCloser over a *bytes.Reader on purpose: net/http
	// recognises that pair as in-memory and writes the headers and a body
	// that fits its write buffer in one system call, instead of flushing
	// the headers first.
	req := http.Request{
		Method:        http.MethodPost,
		URL:           cr.URL,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          io.NopCloser(bytes.NewReader(body)),
		ContentLength: int64(len(body)),
		Host:          cr.URL.Host,
		GetBody: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(body)), nil
		},
	}
	return req.WithContext(ctx), nil
}

func namedIn(conn []string, key string) bool {
	for _, v := range conn {
		for _, f := range strings.Split(v, ",") {
			if http.CanonicalHeaderKey(strings.TrimSpace(f)) == key {
				return true
			}
		}
	}
	return false
}

// ParseRetryAfter reads a Retry-After value: delay seconds or an HTTP date.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseFloat(v, 64); err == nil {
		if n < 0 || n > float64(storage.MaxCooldownSeconds) {
			return 0, false
		}
		return time.Duration(n * float64(time.Second)), true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
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
