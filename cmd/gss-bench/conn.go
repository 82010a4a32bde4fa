package main

import (
	"context"
	"net"
	"syscall"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
)

// conn is an established connection with its abort hook.
type conn struct {
	c       *client.Conn
	release func() bool // stops the abort hook
}

func (c *conn) close() error {
	c.release()
	return c.c.Close()
}

func (c *conn) abort() {
	c.release()
	c.c.Abort()
}

// connect dials and establishes one context. The connection is closed if
// abort is cancelled (hard cap or signal), which unblocks any read or write
// in progress.
func (b *bench) connect(abort context.Context) (*conn, phase, error) {
	nc, err := b.dialer.DialContext(abort, "tcp", b.o.addr)
	if err != nil {
		return nil, phaseDial, err
	}
	if tc, ok := nc.(*net.TCPConn); ok && b.o.quickAck {
		if qc, err := newQuickAckConn(tc); err == nil {
			nc = qc
		}
	}
	closer := nc
	release := context.AfterFunc(abort, func() { closer.Close() })
	c, err := client.Establish(nc, b.tkt, client.Options{Flags: b.o.gssFlags(), Timeout: b.o.timeout})
	if err != nil {
		release()
		nc.Close()
		return nil, phaseEstablish, err
	}
	return &conn{c: c, release: release}, phaseEstablish, nil
}

// quickAckConn re-arms TCP_QUICKACK (tcp(7)) after every read and write,
// so that this end acknowledges the server's segments at once. MIT's
// gss-server writes each reply as three write(2)s (flag byte, length,
// body) without TCP_NODELAY; Nagle's algorithm then holds the second and
// third until the first is acknowledged, and a delayed ACK makes every
// round trip take about 40 ms on Linux whatever the server's speed.
// Quick ACKs let the benchmark measure the server instead. The kernel
// drops the flag when it sees the connection as interactive, hence the
// re-arming; it costs one setsockopt per read or write.
type quickAckConn struct {
	*net.TCPConn
	raw syscall.RawConn
}

func newQuickAckConn(tc *net.TCPConn) (*quickAckConn, error) {
	// client.Establish sets TCP_NODELAY only on a *net.TCPConn, which
	// this wrapper is not.
	if err := tc.SetNoDelay(true); err != nil {
		return nil, err
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &quickAckConn{TCPConn: tc, raw: raw}, nil
}

func (q *quickAckConn) quickAck() {
	q.raw.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_QUICKACK, 1)
	})
}

// Read reads, then re-arms quick ACKs.
func (q *quickAckConn) Read(b []byte) (int, error) {
	n, err := q.TCPConn.Read(b)
	q.quickAck()
	return n, err
}

// Write writes, then re-arms quick ACKs: sending data is what puts the
// connection back into delayed-ACK mode.
func (q *quickAckConn) Write(b []byte) (int, error) {
	n, err := q.TCPConn.Write(b)
	q.quickAck()
	return n, err
}
