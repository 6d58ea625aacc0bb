// Package realip finds the caller's address of a request that may have
// come through load balancers: the TCP peer's address, unless the peer is
// a trusted proxy, in which case X-Forwarded-For is walked from the right,
// skipping trusted hops, and the first untrusted hop is the caller (the
// reference's proxy.real_ip with recursive on; nginx's set_real_ip_from
// with real_ip_recursive).
//
// The leftmost entry is never taken blindly: anything left of the first
// untrusted hop was written by the caller itself and proves nothing. A
// malformed entry stops the walk at the trusted hop that forwarded it.
//
// A Resolver is built once (at config load) and is read-only afterwards:
// Addr takes no lock and allocates nothing.
package realip

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Header is the header the trusted proxies append the address of their
// peer to.
const Header = "X-Forwarded-For"

// Resolver resolves a request's caller address. The zero value and nil
// trust nobody: the peer's address is the caller's.
type Resolver struct {
	v4, v6 []netip.Prefix
}

// Parse builds a Resolver from a list of CIDRs ("10.0.0.0/8",
// "fd00::/8") and single addresses ("192.0.2.7", "::1"). An empty list
// trusts nobody. Parse errors name the bad entry.
func Parse(trusted []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range trusted {
		s = strings.TrimSpace(s)
		var p netip.Prefix
		if strings.Contains(s, "/") {
			pp, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not a CIDR or an IP address", s)
			}
			p = pp.Masked()
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("trusted proxy %q: not a CIDR or an IP address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// ::ffff:10.0.0.0/104 is 10.0.0.0/8: peers are unmapped.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Addr().Is4() {
			r.v4 = append(r.v4, p)
		} else {
			r.v6 = append(r.v6, p)
		}
	}
	return r, nil
}

// Trusts reports whether a is a trusted proxy's address.
func (r *Resolver) Trusts(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap().WithZone("")
	list := r.v6
	if a.Is4() {
		list = r.v4
	}
	for _, p := range list {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Empty reports whether r trusts nobody.
func (r *Resolver) Empty() bool { return r == nil || len(r.v4)+len(r.v6) == 0 }

// Request is Addr of an *http.Request: its RemoteAddr and X-Forwarded-For
// header lines. It is the function the access log, the brute-force guard
// and the admin API's audit log use for "the caller's address".
func (r *Resolver) Request(req *http.Request) netip.Addr {
	if r.Empty() {
		return Peer(req.RemoteAddr)
	}
	return r.Addr(req.RemoteAddr, req.Header[Header])
}

// Addr is the caller's address given the peer's (an http.Request's
// RemoteAddr, "host:port") and the X-Forwarded-For header lines in the
// order they came (several lines are one list, as RFC 9110 says). The
// result is unmapped (an IPv4 peer on a dual-stack socket is IPv4) and
// without zone; it is the invalid Addr only when the peer's address
// cannot be parsed (a test's fake RemoteAddr).
func (r *Resolver) Addr(remoteAddr string, xff []string) netip.Addr {
	peer := Peer(remoteAddr)
	if !peer.IsValid() || !r.Trusts(peer) {
		return peer
	}
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		line := xff[i]
		for line != "" {
			var hop string
			if j := strings.LastIndexByte(line, ','); j >= 0 {
				hop, line = line[j+1:], line[:j]
			} else {
				hop, line = line, ""
			}
			hop = strings.TrimSpace(hop)
			if hop == "" {
				continue // "a, , b" and trailing commas: empty list elements
			}
			a, ok := parseHop(hop)
			if !ok {
				// A trusted proxy forwarded something that is not an
				// address: the last hop known is the caller.
				return client
			}
			client = a
			if !r.Trusts(a) {
				return a
			}
		}
	}
	// Every hop is trusted (an internal caller): the leftmost is the
	// caller.
	return client
}

// Peer parses a RemoteAddr ("192.0.2.1:1234", "[2001:db8::1]:443", or a
// bare address); the invalid Addr when it is neither.
func Peer(remoteAddr string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remoteAddr); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(remoteAddr); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

// parseHop parses one X-Forwarded-For element: an address, an address
// with a port ("192.0.2.1:80", "[2001:db8::1]:80"), or a bracketed IPv6
// address without a port.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone(""), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap().WithZone(""), true
		}
	}
	return netip.Addr{}, false
}
