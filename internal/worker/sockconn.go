package worker

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// sockConn is a net.Conn over a TCP socket received from the acceptor.
//
// The descriptor shares its open file description with the acceptor's, so
// it is already non-blocking, and os.NewFile registered it with the
// runtime poller when the handoff was received: reads, writes and
// deadlines behave as on a *net.TCPConn. Serving it as the *os.File,
// rather than through net.FileConn, saves eleven system calls per session:
// FileConn duplicates the descriptor, asks for its type and both
// addresses, sets TCP_NODELAY and four keep-alive options (the socket
// already has TCP_NODELAY, set by the acceptor, and keep-alive is the
// listener's choice), registers the duplicate with the poller, and the
// original must then be unregistered and closed.
//
// Never call Fd on the file: it switches the descriptor to blocking mode,
// and the acceptor's copy with it.
type sockConn struct {
	*os.File
}

// sessionConn turns a received descriptor into the session's connection.
// A non-blocking stream socket is served as a sockConn; anything else the
// poller cannot take (a blocking descriptor, as a test's socketpair may
// be) goes through net.FileConn, which makes a non-blocking duplicate. f
// is consumed: on error it is closed.
func sessionConn(f *os.File) (net.Conn, error) {
	typ, err := control(f, func(fd int) (int, error) {
		return unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("worker: received descriptor is not a socket: %w", err)
	}
	if typ != unix.SOCK_STREAM {
		f.Close()
		return nil, fmt.Errorf("worker: received descriptor is a socket of type %d, not a stream", typ)
	}
	if f.SetDeadline(time.Time{}) == nil {
		return &sockConn{File: f}, nil
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("worker: received descriptor: %w", err)
	}
	return c, nil
}

// control runs fn on f's descriptor without taking it out of the poller's
// hands (as Fd would).
func control[T any](f *os.File, fn func(fd int) (T, error)) (T, error) {
	var v T
	rc, err := f.SyscallConn()
	if err != nil {
		return v, err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { v, ferr = fn(int(fd)) }); err != nil {
		return v, err
	}
	return v, ferr
}

// LocalAddr implements net.Conn; it asks the kernel on each call.
func (c *sockConn) LocalAddr() net.Addr { return c.addr(unix.Getsockname) }

// RemoteAddr implements net.Conn; it asks the kernel on each call.
func (c *sockConn) RemoteAddr() net.Addr { return c.addr(unix.Getpeername) }

// CloseWrite shuts down the writing side of the connection, as
// (*net.TCPConn).CloseWrite does.
func (c *sockConn) CloseWrite() error {
	_, err := control(c.File, func(fd int) (struct{}, error) {
		return struct{}{}, unix.Shutdown(fd, unix.SHUT_WR)
	})
	if err != nil {
		return &net.OpError{Op: "close", Net: "tcp", Err: err}
	}
	return nil
}

// addr converts the socket address get returns. An address that cannot be
// read is the zero TCPAddr, never a nil Addr a caller would trip over.
func (c *sockConn) addr(get func(int) (unix.Sockaddr, error)) net.Addr {
	sa, err := control(c.File, get)
	if err != nil {
		return &net.TCPAddr{}
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(sa.Addr[:]).To16(), Port: sa.Port}
	case *unix.SockaddrInet6:
		a := &net.TCPAddr{IP: append(net.IP(nil), sa.Addr[:]...), Port: sa.Port}
		if sa.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(sa.ZoneId)); err == nil {
				a.Zone = ifi.Name
			}
		}
		return a
	case *unix.SockaddrUnix:
		return &net.UnixAddr{Name: sa.Name, Net: "unix"}
	}
	return &net.TCPAddr{}
}

// proxiedConn is a session connection whose addresses come from the
// acceptor's trusted PROXY header (handoff.Handoff Client and Server),
// not from the socket, whose peer is the load balancer. Everything that
// reports the client's address (the exec backend's GSS_CLIENT_ADDR, the
// proxy backend's PROXY header) asks RemoteAddr.
type proxiedConn struct {
	net.Conn
	remote, local *net.TCPAddr
}

// withAddrs returns c with the handed-off addresses, or c itself when the
// handoff carried none.
func withAddrs(c net.Conn, client, server netip.AddrPort) net.Conn {
	if !client.IsValid() || !server.IsValid() {
		return c
	}
	return &proxiedConn{Conn: c, remote: net.TCPAddrFromAddrPort(unmapPort(client)), local: net.TCPAddrFromAddrPort(unmapPort(server))}
}

func unmapPort(a netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// RemoteAddr implements net.Conn: the client's address.
func (c *proxiedConn) RemoteAddr() net.Addr { return c.remote }

// LocalAddr implements net.Conn: the address the client connected to.
func (c *proxiedConn) LocalAddr() net.Addr { return c.local }

// CloseWrite passes the half-close to the underlying connection.
func (c *proxiedConn) CloseWrite() error {
	cw, ok := c.Conn.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("worker: %T cannot half-close", c.Conn)
	}
	return cw.CloseWrite()
}
