package routing

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/certreload"
	"github.com/aisix/aisix/proxy/upstream"
	"github.com/aisix/aisix/storage"
)

// Upstream TLS per provider key: a key with tls_ca_file, or
// tls_cert_file and tls_key_file, gets its own transport, built here
// at snapshot build and shared by every request to its targets. Keys
// without them keep Target.Transport nil, and the proxy's one shared
// transport serves them with nothing more to do per request.

// WithUpstreamTransport sets how the transport of a provider key with
// upstream TLS files is made from its tls.Config (serve passes the
// proxy's tuned transport with the egress policy's dialer). Without it, a
// plain pooled transport whose dialer applies the egress policy is used.
func WithUpstreamTransport(fn func(*tls.Config) *http.Transport) Option {
	return func(o *options) { o.newTransport = fn }
}

// upstreamTLSConfig reads pk's upstream TLS files: the CA bundle as the
// only roots the upstream's certificate may chain to (the system roots
// otherwise), the client certificate presented to it. Verification is
// always on.
func upstreamTLSConfig(pk *storage.ProviderKey) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if pk.TLSCAFile != "" {
		pool, err := certreload.LoadPool(pk.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls_ca_file: %w", err)
		}
		conf.RootCAs = pool
	}
	if pk.TLSCertFile != "" || pk.TLSKeyFile != "" {
		cert, err := certreload.LoadKeyPair(pk.TLSCertFile, pk.TLSKeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls_cert_file: %w", err)
		}
		conf.Certificates = []tls.Certificate{*cert}
	}
	return conf, nil
}

// upstreamTransport is pk's own transport: the one the previous build
// made when the files are unchanged (same paths, sizes and modification
// times), so its pooled connections survive a reload; a new one
// otherwise.
//
// The transport is the proxy's HTTP/1.1 client (proxy/upstream) over the
// *http.Transport made for the key, which serves its HTTP/2 origins.
func upstreamTransport(pk *storage.ProviderKey, o *options) (*upstream.Transport, error) {
	stamp, err := tlsStamp(pk)
	if err != nil {
		return nil, err
	}
	build := func() (*upstream.Transport, error) {
		conf, err := upstreamTLSConfig(pk)
		if err != nil {
			return nil, err
		}
		var base *http.Transport
		if o.newTransport != nil {
			base = o.newTransport(conf)
		} else {
			base = defaultUpstreamTransport(conf, o.egress)
		}
		return upstream.New(base), nil
	}
	if o.transports == nil {
		return build()
	}
	return o.transports.get(pk.ID+"\x00"+stamp, build)
}

// tlsStamp describes the files as they are now; a file that cannot be
// stat'ed is an error naming its field.
func tlsStamp(pk *storage.ProviderKey) (string, error) {
	var b strings.Builder
	for _, f := range []struct{ field, path string }{
		{"tls_ca_file", pk.TLSCAFile}, {"tls_cert_file", pk.TLSCertFile}, {"tls_key_file", pk.TLSKeyFile},
	} {
		b.WriteString(f.path)
		b.WriteByte(0)
		if f.path == "" {
			continue
		}
		fi, err := os.Stat(f.path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.field, err)
		}
		b.WriteString(strconv.FormatInt(fi.Size(), 10) + "/" + strconv.FormatInt(fi.ModTime().UnixNano(), 10))
		b.WriteByte(0)
	}
	return b.String(), nil
}

// defaultUpstreamTransport is a pooled transport with HTTP/2 over TLS
// whose dialer applies egress.
func defaultUpstreamTransport(conf *tls.Config, egress EgressPolicy) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: egress.Control}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.DialContext,
		ForceAttemptHTTP2:   true,
		TLSClientConfig:     conf,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
		DisableCompression:  true,
	}
}

// transportCache keeps per-key transports across builds, as authCache
// keeps credentials: a transport the latest build did not use has its idle
// connections closed (in-flight requests of older snapshots finish on
// theirs).
type transportCache struct {
	c buildCache[string, *upstream.Transport]
}

func newTransportCache() *transportCache {
	return &transportCache{c: newBuildCache[string](func(t *upstream.Transport) { t.CloseIdleConnections() })}
}

func (c *transportCache) get(key string, build func() (*upstream.Transport, error)) (*upstream.Transport, error) {
	return c.c.get(key, build)
}

// rotate ends a build.
func (c *transportCache) rotate() { c.c.rotate() }
