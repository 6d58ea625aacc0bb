package realip_test

import (
	"testing"

	"github.com/aisix/aisix/proxy/realip"
)

// FuzzAddr feeds X-Forwarded-For values from a trusted peer: the answer
// is always a valid address that is the peer or appears in the header,
// and never a trusted hop when an untrusted one is right of it.
func FuzzAddr(f *testing.F) {
	for _, s := range []string{"198.51.100.9", "6.6.6.6, 198.51.100.9, 10.0.0.1", "[2001:db8::1]:80", "junk, 10.5.5.5", " , ,", "::ffff:1.2.3.4", "fe80::1%eth0"} {
		f.Add(s)
	}
	r, err := realip.Parse([]string{"10.0.0.0/8", "2001:db8::/32"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, xff string) {
		got := r.Addr("10.1.2.3:4000", []string{xff})
		if !got.IsValid() {
			t.Fatalf("invalid address from %q", xff)
		}
		if got.Zone() != "" || got.Is4In6() {
			t.Fatalf("%v from %q: zone or 4-in-6 kept", got, xff)
		}
		// Appending a spoofed entry on the left never changes the answer
		// unless every hop was trusted (then the leftmost is the caller).
		if !r.Trusts(got) {
			if again := r.Addr("10.1.2.3:4000", []string{"6.6.6.6, " + xff}); again != got {
				t.Fatalf("a spoofed leftmost entry moved the caller from %v to %v (header %q)", got, again, xff)
			}
		}
	})
}

// FuzzParse: a trusted-proxies entry parses or fails with an error, and
// a parsed one trusts its own address.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "::1", "::ffff:10.0.0.0/104", "1.2.3.4/0", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = realip.Parse([]string{s})
	})
}
