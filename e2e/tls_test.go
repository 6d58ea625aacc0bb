package e2e

// TLS on the operator surface, through the built binary: both listeners
// over https (HTTP/2 for proxy callers), certificate rotation without a
// restart, mTLS on the admin listener, the remote CLI over https, the
// refusal to send the admin key over plain http:// to a remote host, and
// upstream TLS per provider key (a private CA and a client certificate).

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aisix/aisix/proxy/proxytest"
)

// tlsFiles are a throwaway CA and the files a TLS test serves from.
type tlsFiles struct {
	ca                   *proxytest.CA
	dir                  string
	caFile               string
	certFile, keyFile    string
	clientCert, clientKy string
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{ca: proxytest.NewCA(t, "aisix-e2e-ca"), dir: t.TempDir()}
	f.caFile = f.ca.WriteFile(t, f.dir, "ca.pem")
	f.certFile, f.keyFile = f.ca.Server(t, "aisix-first").WriteFiles(t, f.dir, "server")
	f.clientCert, f.clientKy = f.ca.Client(t, "ops").WriteFiles(t, f.dir, "client")
	return f
}

// client is an HTTP client trusting the CA, with the client certificate
// when withCert, speaking HTTP/2 when the server offers it.
func (f *tlsFiles) client(t *testing.T, withCert bool) *http.Client {
	t.Helper()
	conf := &tls.Config{RootCAs: f.ca.Pool(), MinVersion: tls.VersionTLS12}
	if withCert {
		c, err := tls.LoadX509KeyPair(f.clientCert, f.clientKy)
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: conf, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// servedCN is the common name of the certificate a new handshake with
// addr (host:port) is served.
func (f *tlsFiles) servedCN(t *testing.T, addr string) string {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: f.ca.Pool(), ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake with %s: %v", addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestTLSListeners(t *testing.T) {
	f := newTLSFiles(t)
	up := newUpstream(t, "tls-up", "", okReply("tls-up"))
	g := startGateway(t, serveOptions{
		proxyTLS: true, adminTLS: true, client: f.client(t, true),
		config: fmt.Sprintf("proxy:\n  tls:\n    cert_file: %s\n    key_file: %s\nadmin:\n  tls:\n    cert_file: %s\n    key_file: %s\n    client_ca_file: %s\n",
			f.certFile, f.keyFile, f.certFile, f.keyFile, f.caFile),
	})
	pk := g.create(t, "provider_keys", map[string]any{"display_name": "up", "provider": "openai", "secret": primarySecret, "api_base": up.base})
	g.create(t, "models", map[string]any{"display_name": "gpt-tls", "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pk})
	g.createCallerKey(t, callerKey, "gpt-tls")

	t.Run("proxy over HTTP/2", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		resp, err := g.chat(ctx, callerKey, chatBody("gpt-tls", false), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 || resp.TLS == nil {
			t.Fatalf("status %d over HTTP/%d (tls %v): %s", resp.StatusCode, resp.ProtoMajor, resp.TLS != nil, body)
		}
		if resp.TLS.Version < tls.VersionTLS12 {
			t.Errorf("TLS version %x", resp.TLS.Version)
		}
	})

	t.Run("TLS 1.1 refused", func(t *testing.T) {
		c, err := tls.Dial("tcp", strings.TrimPrefix(g.proxy, "https://"), &tls.Config{RootCAs: f.ca.Pool(), MaxVersion: tls.VersionTLS11})
		if err == nil {
			c.Close()
			t.Fatal("a TLS 1.1 handshake succeeded")
		}
	})

	t.Run("admin mTLS", func(t *testing.T) {
		_, err := f.client(t, false).Get(g.admin + "/readyz")
		if err == nil {
			t.Fatal("an admin client without a certificate got an answer")
		}
		resp, err := f.client(t, true).Get(g.admin + "/readyz")
		if err != nil {
			t.Fatalf("with a client certificate: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("with a client certificate: %d", resp.StatusCode)
		}
	})

	t.Run("remote CLI", func(t *testing.T) {
		env := g.env
		remote := []string{"--server", g.admin, "--ca-file", f.caFile}
		ok := runCLI(t, env, append(remote, "--client-cert", f.clientCert, "--client-key", f.clientKy, "model", "list")...)
		if ok.code != 0 || !strings.Contains(ok.stdout, "gpt-tls") {
			t.Fatalf("model list over https: exit %d\n%s%s", ok.code, ok.stdout, ok.stderr)
		}
		// Through the environment too (AISIX_CA_FILE and friends).
		envd := append(append([]string(nil), env...), "AISIX_SERVER="+g.admin, "AISIX_CA_FILE="+f.caFile,
			"AISIX_CLIENT_CERT="+f.clientCert, "AISIX_CLIENT_KEY="+f.clientKy)
		if r := runCLI(t, envd, "model", "list"); r.code != 0 || !strings.Contains(r.stdout, "gpt-tls") {
			t.Fatalf("model list with AISIX_CA_FILE: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		noCert := runCLI(t, env, append(remote, "model", "list")...)
		if noCert.code == 0 {
			t.Fatalf("model list without a client certificate succeeded:\n%s", noCert.stdout)
		}
		noCA := runCLI(t, env, "--server", g.admin, "--client-cert", f.clientCert, "--client-key", f.clientKy, "model", "list")
		if noCA.code == 0 || !strings.Contains(noCA.stderr, "certificate") {
			t.Fatalf("model list without --ca-file: exit %d\n%s", noCA.code, noCA.stderr)
		}
		for _, r := range []cliRun{noCert, noCA} {
			if n := strings.Count(strings.TrimSpace(r.stderr), "\n"); n != 0 {
				t.Errorf("error is not one line:\n%s", r.stderr)
			}
		}
	})

	t.Run("certificate reload", func(t *testing.T) {
		proxyAddr := strings.TrimPrefix(g.proxy, "https://")
		if cn := f.servedCN(t, proxyAddr); cn != "aisix-first" {
			t.Fatalf("served %q before the rotation", cn)
		}
		f.ca.Server(t, "aisix-second").WriteFiles(t, f.dir, "server")
		deadline := time.Now().Add(60 * time.Second)
		for f.servedCN(t, proxyAddr) != "aisix-second" {
			if time.Now().After(deadline) {
				t.Fatalf("the proxy still serves the old certificate 60s after the files changed; log:\n%s", g.log.String())
			}
			time.Sleep(50 * time.Millisecond) // polling another process
		}
		g.log.waitLine(t, 30*time.Second, "reload log line", func(l string) bool { return strings.Contains(l, "tls certificate reloaded") })
		// Requests keep working on the new certificate.
		if a := g.mustChat(t, callerKey, chatBody("gpt-tls", false), nil, 30*time.Second); a.status != http.StatusOK {
			t.Fatalf("after the rotation: %s", a.dump())
		}
	})
}

func TestTLSRefusals(t *testing.T) {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "AISIX_ADMIN_KEY=" + adminKey, "NO_COLOR=1"}
	t.Run("plain http to a remote host", func(t *testing.T) {
		// 192.0.2.1 (TEST-NET-1) is never reachable: a refusal that came
		// after a connection attempt would hang on it, not return at once.
		start := time.Now()
		r := runCLI(t, env, "--server", "http://192.0.2.1:3001", "model", "list")
		if r.code != 2 || !strings.Contains(r.stderr, "refusing to send the admin key over plain http://") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Fatalf("exit %d, stderr %q; want 2 and one line refusing", r.code, r.stderr)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("the refusal took %v: it tried to connect first", d)
		}
		st := runCLI(t, env, "--server", "http://192.0.2.1:3001", "status", "-o", "json")
		if st.code != 2 || !strings.Contains(st.stderr, "refusing to send the admin key") {
			t.Fatalf("status: exit %d, stderr %q", st.code, st.stderr)
		}
	})
	t.Run("bad certificate at start-up", func(t *testing.T) {
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.pem")
		if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runCLI(t, env, "serve", "--db", filepath.Join(dir, "aisix.db"), "--proxy-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0",
			"--metrics-addr", "", "--proxy-tls-cert", bad, "--proxy-tls-key", bad)
		lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
		last := lines[len(lines)-1]
		if r.code != 1 || !strings.HasPrefix(last, "aisix: proxy.tls: ") || strings.Contains(r.stderr, "goroutine") {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
	})
}

func TestUpstreamTLS(t *testing.T) {
	f := newTLSFiles(t)
	up := proxytest.NewMTLS("private-gw", f.ca.Server(t, "private-gw").TLSCertificate(t), f.ca.Pool())
	t.Cleanup(up.Close)
	g := startGateway(t, serveOptions{})

	// The CLI's flags, in local mode; serve notices the write.
	out := g.run(t, "provider-key", "create", "--name", "gw-mtls", "--provider", "openai", "--api-base", up.BaseURL(),
		"--secret", primarySecret, "--tls-ca-file", f.caFile, "--tls-cert-file", f.clientCert, "--tls-key-file", f.clientKy, "-o", "json")
	if !strings.Contains(out, `"tls_ca_file": "`+f.caFile+`"`) || strings.Contains(out, "PRIVATE KEY") {
		t.Fatalf("provider-key create -o json:\n%s", out)
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.ID == "" {
		t.Fatalf("provider-key create -o json: %v:\n%s", err, out)
	}
	keyFor := func(name string, extra map[string]any) string {
		body := map[string]any{"display_name": name, "provider": "openai", "secret": primarySecret, "api_base": up.BaseURL()}
		for k, v := range extra {
			body[k] = v
		}
		return g.create(t, "provider_keys", body)
	}
	pks := map[string]string{
		"via-mtls":    created.ID,
		"via-ca-only": keyFor("gw-ca-only", map[string]any{"tls_ca_file": f.caFile}),
		"via-plain":   keyFor("gw-plain", nil),
	}
	keyFor("gw-missing", map[string]any{"tls_ca_file": filepath.Join(f.dir, "absent.pem")})
	var models []string
	for m, pk := range pks {
		g.create(t, "models", map[string]any{"display_name": m, "provider": "openai", "model_name": "gpt-4o-mini", "provider_key_id": pk})
		models = append(models, m)
	}
	g.createCallerKey(t, callerKey, models...)

	if a := g.mustChat(t, callerKey, chatBody("via-mtls", false), nil, 30*time.Second); a.status != http.StatusOK {
		t.Fatalf("through the key with the CA and client certificate: %s", a.dump())
	}
	if a := g.mustChat(t, callerKey, chatBody("via-mtls", true), nil, 30*time.Second); a.status != http.StatusOK || !strings.Contains(string(a.body), "[DONE]") {
		t.Fatalf("stream through the key with the CA and client certificate: %s", a.dump())
	}
	// The same upstream without the CA fails verification; with the CA
	// but no client certificate, the upstream refuses the handshake.
	for _, tt := range []struct{ model, message string }{
		// Verification against the system roots fails: the handshake
		// error class, not a panic nor an answer.
		{"via-plain", "transport error: TLS handshake failed"},
		// Verified, but the upstream refuses a client without a
		// certificate (TLS 1.3 reports it on the first read).
		{"via-ca-only", "transport error:"},
	} {
		a := g.mustChat(t, callerKey, chatBody(tt.model, false), nil, 30*time.Second)
		msg, typ, _, _ := a.envelope(t)
		if a.status != http.StatusBadGateway || typ != "transport_error" || !strings.HasPrefix(msg, tt.message) {
			t.Errorf("%s: status %d, want 502 with %q: %s", tt.model, a.status, tt.message, a.dump())
		}
		line := g.accessLine(t, a.header.Get("X-Aisix-Call-Id"), 30*time.Second)
		if trail, _ := line["trail"].(string); trail != tt.model+"=transport_error" {
			t.Errorf("%s: access trail %q", tt.model, trail)
		}
	}
	if up.Conns() == 0 {
		t.Error("the upstream saw no connection")
	}
	if strings.Contains(g.log.String(), "panic") {
		t.Errorf("serve panicked:\n%s", g.log.String())
	}
	// A file that cannot be read is a config error of its key, listed.
	info := g.mustAdmin(t, http.MethodGet, "/admin/v1/info", nil, http.StatusOK)
	if b, _ := json.Marshal(info["config_errors"]); !strings.Contains(string(b), "gw-missing") || !strings.Contains(string(b), "tls_ca_file") {
		t.Errorf("config_errors do not list the key with an absent CA file: %s", b)
	}
}
