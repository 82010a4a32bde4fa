package listener

import (
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// Keep-alive settings for client connections: the probes Go would set on
// every connection it makes (15 s idle, 15 s between probes, 9 probes), so
// a session whose client host vanished is found within about 2.5 minutes
// even with idle_timeout off.
const (
	KeepAliveIdle     = 15 * time.Second
	KeepAliveInterval = 15 * time.Second
	KeepAliveCount    = 9
)

// SetInheritedOptions sets, on a listening TCP socket, the options every
// accepted connection should have: Linux copies a listener's SO_KEEPALIVE,
// TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_NODELAY into each
// connection it accepts. Set once here, they cost nothing per connection,
// where setting them on each accepted socket costs five system calls. Use
// it with net.ListenConfig{KeepAlive: -1}, which stops Go from setting
// keep-alive on each accepted connection itself. Listeners that are not
// TCP are left alone.
//
// deferAccept > 0 also sets TCP_DEFER_ACCEPT (whole seconds, rounded up):
// the kernel completes the TCP handshake but queues the connection for
// accept only once the client's first bytes have arrived, or after
// deferAccept (then it is accepted anyway and first_frame_timeout
// applies). A gss-sample client, or a load balancer's PROXY header, speaks
// first, so accept then finds the context token already there and the
// handshake's first read does not wait: one wake of the acceptor per
// connection instead of two (ARCHITECTURE.md §11). A silent connection
// costs a request socket in the kernel until then, not a descriptor.
// deferAccept <= 0 clears it (a socket-activated listener may come with
// systemd's DeferAcceptSec= set).
func SetInheritedOptions(ln net.Listener, deferAccept time.Duration) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return nil
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return fmt.Errorf("listener: socket options on %s: %w", ln.Addr(), err)
	}
	opts := []struct {
		level, name, value int
		what               string
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, "SO_KEEPALIVE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(KeepAliveIdle / time.Second), "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(KeepAliveInterval / time.Second), "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, KeepAliveCount, "TCP_KEEPCNT"},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, "TCP_NODELAY"},
		{unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, deferSeconds(deferAccept), "TCP_DEFER_ACCEPT"},
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range opts {
			if err := unix.SetsockoptInt(int(fd), o.level, o.name, o.value); err != nil {
				serr = fmt.Errorf("%s: %w", o.what, err)
				return
			}
		}
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("listener: socket options on %s: %w", ln.Addr(), err)
	}
	return nil
}

// deferSeconds is TCP_DEFER_ACCEPT's value for d: whole seconds, rounded
// up, 0 (off) for d <= 0.
func deferSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}
