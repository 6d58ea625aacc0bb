package realip_test

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/aisix/aisix/proxy/realip"
)

func mustParse(t testing.TB, list ...string) *realip.Resolver {
	t.Helper()
	r, err := realip.Parse(list)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestAddr(t *testing.T) {
	lb := mustParse(t, "10.0.0.0/8", "192.0.2.7", "2001:db8:1::/48", "::ffff:172.16.0.0/108")
	cases := []struct {
		name   string
		trust  *realip.Resolver
		remote string
		xff    []string
		want   string
	}{
		{"nobody trusted: the peer, header ignored", mustParse(t), "203.0.113.5:4000", []string{"1.1.1.1"}, "203.0.113.5"},
		{"nil resolver: the peer", nil, "203.0.113.5:4000", []string{"1.1.1.1"}, "203.0.113.5"},
		{"untrusted peer: its header is ignored", lb, "203.0.113.5:4000", []string{"1.1.1.1"}, "203.0.113.5"},
		{"trusted peer, one hop", lb, "10.1.2.3:4000", []string{"198.51.100.9"}, "198.51.100.9"},
		{"trusted peer, no header: the peer", lb, "10.1.2.3:4000", nil, "10.1.2.3"},
		{"spoofed leftmost entries are skipped", lb, "10.1.2.3:4000", []string{"6.6.6.6, 7.7.7.7, 198.51.100.9"}, "198.51.100.9"},
		{"trusted chain walked from the right", lb, "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.9, 10.9.9.9, 192.0.2.7"}, "198.51.100.9"},
		{"several header lines are one list", lb, "10.1.2.3:4000", []string{"6.6.6.6, 198.51.100.9", "10.9.9.9"}, "198.51.100.9"},
		{"the last line's untrusted hop wins over earlier lines", lb, "10.1.2.3:4000", []string{"6.6.6.6", "198.51.100.9"}, "198.51.100.9"},
		{"every hop trusted: the leftmost", lb, "10.1.2.3:4000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
		{"IPv6 peer and client", lb, "[2001:db8:1::5]:443", []string{"2001:db8:ffff::1"}, "2001:db8:ffff::1"},
		{"IPv6 with port and brackets in the header", lb, "[2001:db8:1::5]:443", []string{"[2001:db8:ffff::1]:5555"}, "2001:db8:ffff::1"},
		{"bracketed IPv6 without a port", lb, "[2001:db8:1::5]:443", []string{"[2001:db8:ffff::2]"}, "2001:db8:ffff::2"},
		{"IPv4 with a port in the header", lb, "10.1.2.3:4000", []string{"198.51.100.9:1234"}, "198.51.100.9"},
		{"4-in-6 peer is unmapped and matched as IPv4", lb, "[::ffff:10.1.2.3]:4000", []string{"198.51.100.9"}, "198.51.100.9"},
		{"4-in-6 trusted prefix matches IPv4 peers", lb, "172.16.0.9:4000", []string{"198.51.100.9"}, "198.51.100.9"},
		{"4-in-6 client is unmapped", lb, "10.1.2.3:4000", []string{"::ffff:198.51.100.9"}, "198.51.100.9"},
		{"zone dropped", lb, "10.1.2.3:4000", []string{"fe80::1%eth0"}, "fe80::1"},
		{"malformed rightmost: the trusted peer", lb, "10.1.2.3:4000", []string{"198.51.100.9, not-an-ip"}, "10.1.2.3"},
		{"malformed after a trusted hop: that hop", lb, "10.1.2.3:4000", []string{"junk, 10.5.5.5"}, "10.5.5.5"},
		{"malformed left of the client does not matter", lb, "10.1.2.3:4000", []string{"junk, 198.51.100.9"}, "198.51.100.9"},
		{"empty elements skipped", lb, "10.1.2.3:4000", []string{" , 198.51.100.9 ,, "}, "198.51.100.9"},
		{"empty header line", lb, "10.1.2.3:4000", []string{""}, "10.1.2.3"},
		{"obfuscated identifier (RFC 7239 style) is malformed", lb, "10.1.2.3:4000", []string{"_hidden"}, "10.1.2.3"},
		{"bare-address RemoteAddr", lb, "203.0.113.5", nil, "203.0.113.5"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.trust.Addr(c.remote, c.xff)
			if got.String() != c.want {
				t.Fatalf("Addr(%q, %q) = %v, want %s", c.remote, c.xff, got, c.want)
			}
		})
	}
	if a := lb.Addr("pipe", []string{"1.2.3.4"}); a.IsValid() {
		t.Fatalf("unparsable peer: got %v, want the invalid Addr (a fake RemoteAddr never trusts a header)", a)
	}
}

func TestParse(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "example.com", "10.0.0.1/", "fe80::1%eth0", ""} {
		if _, err := realip.Parse([]string{bad}); err == nil || !strings.Contains(err.Error(), "trusted proxy") {
			t.Errorf("Parse(%q): err = %v, want a trusted proxy error", bad, err)
		}
	}
	r := mustParse(t, " 10.0.0.5/8 ")
	if !r.Trusts(netip.MustParseAddr("10.200.0.1")) || r.Trusts(netip.MustParseAddr("11.0.0.1")) {
		t.Fatal("10.0.0.5/8 should be masked to 10.0.0.0/8")
	}
	if !mustParse(t).Empty() || r.Empty() {
		t.Fatal("Empty wrong")
	}
}

func TestRequest(t *testing.T) {
	r := mustParse(t, "127.0.0.1")
	req := httptest.NewRequest("GET", "/", nil) // RemoteAddr 192.0.2.1:1234
	req.Header.Add("X-Forwarded-For", "198.51.100.1")
	if got := r.Request(req).String(); got != "192.0.2.1" {
		t.Fatalf("untrusted peer: %s", got)
	}
	req.RemoteAddr = "127.0.0.1:5555"
	if got := r.Request(req).String(); got != "198.51.100.1" {
		t.Fatalf("trusted peer: %s", got)
	}
}

func TestAddrNoAllocs(t *testing.T) {
	r := mustParse(t, "10.0.0.0/8", "2001:db8::/32")
	xff := []string{"6.6.6.6, 198.51.100.9, 10.9.9.9"}
	if n := testing.AllocsPerRun(100, func() { _ = r.Addr("10.1.2.3:4000", xff) }); n != 0 {
		t.Fatalf("Addr allocates %v times", n)
	}
}

func BenchmarkAddr(b *testing.B) {
	r := mustParse(b, "10.0.0.0/8", "172.16.0.0/12", "2001:db8::/32")
	xff := []string{"6.6.6.6, 198.51.100.9, 10.9.9.9"}
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Addr("10.1.2.3:4000", xff)
	}
}

func BenchmarkAddrUntrustedPeer(b *testing.B) {
	r := mustParse(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = r.Addr("203.0.113.5:4000", nil)
	}
}
