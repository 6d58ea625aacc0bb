// Package certreload serves a listener's TLS certificate (and, for mTLS,
// the CA pool client certificates must chain to) from files that may be
// replaced while the server runs: certificate rotation without a restart.
//
// A handshake reads the current material from an atomic.Pointer; at most
// once per CheckInterval one handshake also stats the files (no read, no
// parse) and, when a file's size or modification time changed, reloads
// them. A reload that fails (a half-written file, a key that does not
// match) is logged and the previous material keeps serving.
package certreload

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, the files are stat'ed.
const DefaultCheckInterval = time.Second

// Files names the PEM files of one listener.
type Files struct {
	// CertFile and KeyFile are the server's certificate chain and its
	// private key; both are required.
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, is the CA bundle client certificates must
	// chain to: a client without such a certificate is refused at the
	// handshake.
	ClientCAFile string
}

// Reloader holds the current certificate of one listener. It is safe for
// concurrent use.
type Reloader struct {
	files    Files
	logger   *slog.Logger
	interval time.Duration
	now      func() time.Time

	cur atomic.Pointer[material]
	// nextCheck is the UnixNano after which a handshake stats the files.
	nextCheck atomic.Int64
	// mu serialises reloads (never taken by a handshake that does not
	// reload).
	mu sync.Mutex
}

// material is one consistent load of the files.
type material struct {
	cert  *tls.Certificate
	pool  *x509.CertPool
	stamp stamp
	// conf is the tls.Config handed to handshakes when a client CA is set.
	conf *tls.Config
}

// stamp is what a file looked like when it was read: a change of either
// means it was replaced.
type stamp [3]fileStamp

type fileStamp struct {
	size    int64
	modTime int64
}

// Option configures New.
type Option func(*Reloader)

// WithCheckInterval sets how often, at most, the files are stat'ed.
func WithCheckInterval(d time.Duration) Option { return func(r *Reloader) { r.interval = d } }

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(r *Reloader) { r.now = now } }

// New loads the files once. A certificate or key that cannot be read or
// parsed, or that do not match, is an error naming the file (never its
// contents).
func New(files Files, logger *slog.Logger, opts ...Option) (*Reloader, error) {
	if files.CertFile == "" || files.KeyFile == "" {
		return nil, errors.New("tls needs both cert_file and key_file")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Reloader{files: files, logger: logger, interval: DefaultCheckInterval, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	st, err := r.stat()
	if err != nil {
		return nil, err
	}
	m, err := r.load(st)
	if err != nil {
		return nil, err
	}
	r.cur.Store(m)
	r.nextCheck.Store(r.now().Add(r.interval).UnixNano())
	return r, nil
}

// TLSConfig is the listener's tls.Config: TLS 1.2 or later, Go's default
// cipher suites, HTTP/2 and HTTP/1.1 offered by ALPN, the certificate
// from the reloader and, with a client CA, a verified client certificate
// required.
func (r *Reloader) TLSConfig() *tls.Config {
	c := r.baseConfig()
	c.GetCertificate = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.current().cert, nil }
	if r.files.ClientCAFile != "" {
		// The pool changes with the file, so each handshake gets the
		// config of the current material.
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.current().conf, nil }
	}
	return c
}

func (r *Reloader) baseConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
}

// Certificate returns the certificate handshakes are served now.
func (r *Reloader) Certificate() *tls.Certificate { return r.current().cert }

// current is the material to serve, reloaded first when the check is due
// and a file changed.
func (r *Reloader) current() *material {
	m := r.cur.Load()
	now := r.now().UnixNano()
	next := r.nextCheck.Load()
	if now < next || !r.nextCheck.CompareAndSwap(next, r.now().Add(r.interval).UnixNano()) {
		return m // not due, or another handshake is checking
	}
	st, err := r.stat()
	if err != nil || st == m.stamp {
		// A file that is away for a moment (being replaced) is looked at
		// again at the next check; a reload would only fail now.
		return m
	}
	return r.reload(st)
}

// Check stats the files now and reloads them if they changed; it reports
// whether a new certificate is served. Handshakes do this on their own at
// most once per interval.
func (r *Reloader) Check() bool {
	old := r.cur.Load()
	st, err := r.stat()
	if err != nil || st == old.stamp {
		return false
	}
	return r.reload(st).cert != old.cert
}

// reload loads the files whose stamp is st, keeping the previous material
// when they do not load.
func (r *Reloader) reload(st stamp) *material {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.cur.Load()
	if old.stamp == st {
		return old
	}
	m, err := r.load(st)
	if err != nil {
		r.logger.Error("tls certificate reload failed; keeping the previous certificate", "cert_file", r.files.CertFile, "err", err)
		// Do not retry the same broken files on every check.
		old2 := *old
		old2.stamp = st
		r.cur.Store(&old2)
		return &old2
	}
	r.cur.Store(m)
	r.logger.Info("tls certificate reloaded", "cert_file", r.files.CertFile, "subject", m.cert.Leaf.Subject.String(), "not_after", m.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return m
}

// stat reads the size and modification time of every file.
func (r *Reloader) stat() (stamp, error) {
	var st stamp
	for i, name := range []string{r.files.CertFile, r.files.KeyFile, r.files.ClientCAFile} {
		if name == "" {
			continue
		}
		fi, err := os.Stat(name)
		if err != nil {
			return st, fmt.Errorf("tls file: %w", err)
		}
		st[i] = fileStamp{size: fi.Size(), modTime: fi.ModTime().UnixNano()}
	}
	return st, nil
}

// load reads and parses the files.
func (r *Reloader) load(st stamp) (*material, error) {
	cert, err := LoadKeyPair(r.files.CertFile, r.files.KeyFile)
	if err != nil {
		return nil, err
	}
	m := &material{cert: cert, stamp: st}
	if r.files.ClientCAFile != "" {
		if m.pool, err = LoadPool(r.files.ClientCAFile); err != nil {
			return nil, err
		}
		c := r.baseConfig()
		c.Certificates = []tls.Certificate{*cert}
		c.ClientCAs = m.pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
		m.conf = c
	}
	return m, nil
}

// LoadKeyPair reads a PEM certificate chain and its private key. The
// error names the files and says what is wrong, never quoting the key.
func LoadKeyPair(certFile, keyFile string) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// tls's error says what is wrong (no PEM data, a key that does
		// not match) without the key's bytes.
		return nil, fmt.Errorf("load tls certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse tls certificate %s: %w", certFile, err)
		}
	}
	return &cert, nil
}

// LoadPool reads a PEM bundle of CA certificates; a file with none is an
// error.
func LoadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read ca file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("ca file %s holds no PEM certificate", file)
	}
	return pool, nil
}
