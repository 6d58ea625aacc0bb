package routing

import (
	"net/netip"
	"strings"
	"syscall"
)

// EgressPolicy says which hosts the proxy may send upstream requests to.
// The zero value is the default: link-local and cloud metadata addresses
// are refused, private and loopback ones allowed (self-hosted models, and
// tests, live there).
//
// Build checks the host of every api_base, a name or a literal: a refused
// one is a ConfigError on the provider key. A name that resolves to a
// refused address is the dialer's to catch, with Check or Control on the
// address it is about to connect to.
type EgressPolicy struct {
	// AllowMetadata lets upstreams be link-local addresses (169.254.0.0/16,
	// fe80::/10), the cloud metadata addresses (169.254.169.254,
	// fd00:ec2::254, and Alibaba's 100.100.100.200) and the names that
	// reach a metadata server (metadata.google.internal, and the bare
	// "metadata" that GCE's search domain completes to it).
	AllowMetadata bool
	// DenyPrivate also refuses loopback (127.0.0.0/8, ::1, "localhost"),
	// unspecified (0.0.0.0/8, ::), RFC 1918 private, shared (CGNAT,
	// 100.64.0.0/10) and unique-local (fc00::/7) addresses.
	DenyPrivate bool
}

// EgressError is a host or address the egress policy refuses.
type EgressError struct {
	// Host is the name or literal checked, "" when only an address was.
	Host string
	// Addr is the address checked, when there was one.
	Addr netip.Addr
	// Class says what it is: "cloud metadata", "link-local", "loopback",
	// "private", "shared (CGNAT)", "unique-local", "unspecified", or
	// "non-standard numeric" (an IP written as 2130706433 or 127.1, which
	// is refused whatever the policy: write the address in standard form).
	Class string
}

func (e *EgressError) Error() string {
	what := e.Host
	if e.Addr.IsValid() {
		if a := e.Addr.String(); what == "" {
			what = a
		} else if a != what {
			what += " (" + a + ")"
		}
	}
	return "host " + what + " is a " + e.Class + " address, refused by the egress policy"
}

// Address classes. metadata classes are refused unless AllowMetadata,
// private ones when DenyPrivate.
const (
	classMetadata    = "cloud metadata"
	classLinkLocal   = "link-local"
	classLoopback    = "loopback"
	classUnspecified = "unspecified"
	classPrivate     = "private"
	classShared      = "shared (CGNAT)"
	classUniqueLocal = "unique-local"
	classNonStandard = "non-standard numeric"
)

var (
	metadataAddrs = []netip.Addr{
		netip.MustParseAddr("169.254.169.254"),
		netip.MustParseAddr("fd00:ec2::254"),
		netip.MustParseAddr("100.100.100.200"),
	}
	metadataNames = []string{"metadata.google.internal", "metadata"}
	thisNetwork   = netip.MustParsePrefix("0.0.0.0/8")
	sharedSpace   = netip.MustParsePrefix("100.64.0.0/10")
	nat64         = netip.MustParsePrefix("64:ff9b::/96")
)

// Check reports whether the policy lets the proxy connect to host, a name
// or an IP literal as a URL holds it (brackets and a zone allowed; "" when
// only ip is known), and to ip, an address host resolved to (the zero
// netip.Addr when not known). It returns nil or an *EgressError.
func (p EgressPolicy) Check(host string, ip netip.Addr) error {
	if host != "" {
		if class := classifyHost(host); class != "" && !p.allows(class) {
			e := &EgressError{Host: host, Class: class}
			if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
				e.Addr = a
			}
			return e
		}
	}
	if ip.IsValid() {
		if class := classifyAddr(ip); class != "" && !p.allows(class) {
			return &EgressError{Host: host, Addr: ip, Class: class}
		}
	}
	return nil
}

// Control checks the address a net.Dialer is about to connect to (its
// Control hook's signature: set Dialer.Control to it). An address that is
// not an IP and port is let through: the dialer only calls Control with
// resolved ones.
func (p EgressPolicy) Control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil
	}
	return p.Check("", ap.Addr())
}

func (p EgressPolicy) allows(class string) bool {
	switch class {
	case classMetadata, classLinkLocal:
		return p.AllowMetadata
	case classNonStandard:
		return false
	}
	return !p.DenyPrivate
}

// classifyHost classifies a URL host: an IP literal by its address, a name
// by the few that are known to reach a metadata server or loopback.
func classifyHost(host string) string {
	h := strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return classifyAddr(a)
	}
	for _, n := range metadataNames {
		if h == n {
			return classMetadata
		}
	}
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return classLoopback
	}
	// No top-level domain is all digits, and none starts with 0x: a host
	// like 2130706433, 127.1 or 0x7f.1 is an IPv4 address in a form some
	// resolvers accept and netip does not.
	last := h[strings.LastIndexByte(h, '.')+1:]
	if last != "" && (strings.Trim(last, "0123456789") == "" || strings.HasPrefix(last, "0x")) {
		return classNonStandard
	}
	return ""
}

// classifyAddr is the class of an address the policy may refuse, "" for
// an ordinary public one. IPv4 inside IPv6 (::ffff:a.b.c.d, NAT64's
// 64:ff9b::/96) is classified as the IPv4 address.
func classifyAddr(a netip.Addr) string {
	a = a.WithZone("").Unmap()
	if nat64.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, m := range metadataAddrs {
		if a == m {
			return classMetadata
		}
	}
	switch {
	case a.IsLinkLocalUnicast():
		return classLinkLocal
	case a.IsLoopback():
		return classLoopback
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return classUnspecified
	case sharedSpace.Contains(a):
		return classShared
	case a.IsPrivate() && a.Is4():
		return classPrivate
	case a.IsPrivate():
		return classUniqueLocal
	}
	return ""
}
