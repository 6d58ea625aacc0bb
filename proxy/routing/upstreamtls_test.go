package routing_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/proxytest"
	"github.com/aisix/aisix/proxy/routing"
	"github.com/aisix/aisix/storage"
)

// TestUpstreamTLSTransport: a provider key with upstream TLS files gets
// its own transport, kept across reloads while the files are unchanged and
// replaced when they change; a key without keeps none (the shared one);
// files that do not load are that key's config error, not the others'.
func TestUpstreamTLSTransport(t *testing.T) {
	dir := t.TempDir()
	ca := proxytest.NewCA(t, "routing-ca")
	caFile := ca.WriteFile(t, dir, "ca.pem")
	certFile, keyFile := ca.Client(t, "gw").WriteFiles(t, dir, "client")
	key := func(id, name string) storage.ProviderKey {
		return storage.ProviderKey{ID: id, DisplayName: name, Provider: "openai", Secret: "sk-test-0123456789", APIBase: "https://gw.example.com/v1", SecretHost: "gw.example.com"}
	}
	withTLS := key("pk-tls", "with-tls")
	withTLS.TLSCAFile, withTLS.TLSCertFile, withTLS.TLSKeyFile = caFile, certFile, keyFile
	broken := key("pk-broken", "broken-tls")
	broken.TLSCAFile = keyFile // not a certificate
	ds := storage.Dataset{Revision: 1, ProviderKeys: []storage.ProviderKey{withTLS, key("pk-plain", "plain"), broken}}
	src := proxytest.NewSource(ds)
	tbl := routing.NewTable(src, nil)
	reload := func(rev int64) *routing.Snapshot {
		t.Helper()
		src.Update(func(ds *storage.Dataset) { ds.Revision = rev })
		if err := tbl.Reload(context.Background()); err != nil {
			t.Fatal(err)
		}
		return tbl.Snapshot()
	}
	s1 := reload(2)
	tr := s1.ProviderKey("pk-tls").Transport
	if tr == nil || tr.Base().TLSClientConfig == nil || tr.Base().TLSClientConfig.RootCAs == nil || len(tr.Base().TLSClientConfig.Certificates) != 1 {
		t.Fatalf("key with TLS files: transport %+v", tr)
	}
	if tr.Base().TLSClientConfig.InsecureSkipVerify {
		t.Fatal("verification skipped")
	}
	if s1.ProviderKey("pk-plain").Transport != nil {
		t.Error("a key without TLS files got its own transport")
	}
	if pk := s1.ProviderKey("pk-broken"); pk.Err == nil || !strings.Contains(pk.Err.Message, "tls_ca_file") {
		t.Errorf("broken key: %+v", pk.Err)
	}
	if errs := s1.ConfigErrors(); len(errs) != 1 || errs[0].ID != "pk-broken" {
		t.Errorf("config errors %+v, want the broken key only", errs)
	}

	if s2 := reload(3); s2.ProviderKey("pk-tls").Transport != tr {
		t.Error("unchanged files: the transport was not kept across the reload")
	}
	// A rotation (new files renamed into place) changes size or mtime.
	ca.Client(t, "gw-rotated-with-a-longer-name").WriteFiles(t, dir, "client")
	if s3 := reload(4); s3.ProviderKey("pk-tls").Transport == tr {
		t.Error("changed files: the old transport is still used")
	}
}
