//go:build unix

package upstream

import (
	"crypto/tls"
	"net"
	"syscall"
)

// peeker checks whether an idle connection is still open: a peek that
// does not block finds nothing to read (an idle HTTP/1.1 connection has
// nothing to say; end of stream, an error or unsolicited bytes mean the
// upstream closed it or broke the protocol). One system call. It is made
// once per connection, so a check allocates nothing.
type peeker struct {
	rc  syscall.RawConn // nil: cannot peek, taken as open
	bad bool            // no RawConn could be had: taken as closed
	ok  bool
	buf [1]byte
	fn  func(fd uintptr) bool
}

func newPeeker(nc net.Conn) *peeker {
	p := &peeker{}
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return p
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		p.bad = true
		return p
	}
	p.rc = rc
	p.fn = p.peek
	return p
}

func (p *peeker) peek(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), p.buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	p.ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
	return true
}

// alive reports whether the connection is still open. Not safe for
// concurrent use: the pool hands an idle connection to one caller.
func (p *peeker) alive() bool {
	if p.rc == nil {
		return !p.bad
	}
	p.ok = false
	err := p.rc.Read(p.fn)
	return err == nil && p.ok
}
