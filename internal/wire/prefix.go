package wire

import (
	"errors"
	"fmt"
	"net"
)

// PrefixConn returns a net.Conn whose reads return prefix first and then
// continue on c. Writes, deadlines, addresses and Close go straight to c.
// If prefix is empty, c itself is returned.
//
// The worker uses it for the read-ahead bytes that arrive with a handoff:
// bytes the acceptor had already read from the client (e.g. a -nomutual
// client's first DATA frame, sent right behind its AP-REQ) must be seen
// before anything still in the socket.
//
// PrefixConn takes ownership of prefix and clears each part of it once it
// has been read. Read deadlines do not apply to the prefix bytes, which are
// already in memory. Like any net.Conn, the result allows one reader at a
// time.
func PrefixConn(c net.Conn, prefix []byte) net.Conn {
	if len(prefix) == 0 {
		return c
	}
	return &prefixConn{Conn: c, prefix: prefix}
}

type prefixConn struct {
	net.Conn
	prefix []byte // unread prefix bytes; nil once drained
}

// Read implements net.Conn.
func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.prefix) == 0 {
		return p.Conn.Read(b)
	}
	n := copy(b, p.prefix)
	clear(p.prefix[:n])
	p.prefix = p.prefix[n:]
	if len(p.prefix) == 0 {
		p.prefix = nil
	}
	return n, nil
}

// NetConn returns the wrapped connection, as tls.Conn.NetConn does. Reading
// from it directly skips any prefix bytes not yet read.
func (p *prefixConn) NetConn() net.Conn { return p.Conn }

// CloseWrite shuts down the writing side of the underlying connection if it
// supports half-close (*net.TCPConn and *net.UnixConn do).
func (p *prefixConn) CloseWrite() error {
	if cw, ok := p.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("wire: %T cannot close its write side: %w", p.Conn, errors.ErrUnsupported)
}
