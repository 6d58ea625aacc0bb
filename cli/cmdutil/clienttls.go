package cmdutil

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aisix/aisix/proxy/certreload"
)

// AdminHTTPClient is the HTTP client remote commands and the dashboard
// reach the admin API at server with: https:// verified against the
// system roots or ClientTLS.CAFile, with the client certificate when one
// is configured. It refuses, before any connection, to send the admin key
// over plain http:// to a host that is not loopback unless Insecure is
// set; that refusal and bad flags are *FlagError (exit 2).
func (c *Config) AdminHTTPClient(server string, timeout time.Duration) (*http.Client, error) {
	u, err := url.Parse(server)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, FlagErrorf("server %q must be an http:// or https:// URL", server)
	}
	ct := c.ClientTLS
	if u.Scheme == "http" && !ct.Insecure && !IsLoopbackHost(u.Hostname()) {
		return nil, FlagErrorf("refusing to send the admin key over plain http:// to %s: use https:// (with --ca-file for a private CA), or --insecure to allow it", u.Host)
	}
	if (ct.CertFile == "") != (ct.KeyFile == "") {
		return nil, FlagErrorf("--client-cert and --client-key go together")
	}
	if ct.CAFile == "" && ct.CertFile == "" {
		return &http.Client{Timeout: timeout}, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ct.CAFile != "" {
		if conf.RootCAs, err = certreload.LoadPool(ct.CAFile); err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
	}
	if ct.CertFile != "" {
		cert, err := certreload.LoadKeyPair(ct.CertFile, ct.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{*cert}
	}
	tr, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("default transport is not an *http.Transport")
	}
	tr = tr.Clone()
	tr.TLSClientConfig = conf
	return &http.Client{Timeout: timeout, Transport: tr}, nil
}

// IsLoopbackHost reports whether host (no port) is "localhost" or a
// loopback address (127.0.0.0/8, ::1). The unspecified addresses (0.0.0.0,
// ::) count too: a connection to them goes to this machine, and they are
// what the default admin URL holds when serve listens on every interface.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && (ip.IsLoopback() || ip.IsUnspecified())
}
