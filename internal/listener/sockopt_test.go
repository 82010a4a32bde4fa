package listener

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSetInheritedOptions checks that connections accepted on a listener
// with SetInheritedOptions carry its keep-alive and TCP_NODELAY settings
// although Go set none of them on the connection itself.
func TestSetInheritedOptions(t *testing.T) {
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := SetInheritedOptions(ln, 0); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	rc, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name       string
		level, opt int
		want       int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{"TCP_KEEPIDLE", unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 15},
		{"TCP_KEEPINTVL", unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15},
		{"TCP_KEEPCNT", unix.IPPROTO_TCP, unix.TCP_KEEPCNT, KeepAliveCount},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
	} {
		var got int
		var gerr error
		rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), tt.level, tt.opt) })
		if gerr != nil {
			t.Fatalf("%s: %v", tt.name, gerr)
		}
		if got != tt.want {
			t.Errorf("accepted connection's %s = %d, want %d (inherited from the listener)", tt.name, got, tt.want)
		}
	}
}

func TestSetInheritedOptionsSkipsNonTCP(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := SetInheritedOptions(ln, time.Second); err != nil {
		t.Fatalf("unix listener: %v, want it left alone", err)
	}
}

// TestDeferAccept checks TCP_DEFER_ACCEPT on the listener: a client that
// connected first but has sent nothing is not accepted before one that
// connected later and sent its first bytes; with 0 the option is off.
func TestDeferAccept(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want int // the listener's TCP_DEFER_ACCEPT, seconds
	}{{0, 0}, {-1, 0}, {time.Second, 1}, {1500 * time.Millisecond, 2}} {
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := SetInheritedOptions(ln, tt.d); err != nil {
			t.Fatal(err)
		}
		rc, err := ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got int
		var gerr error
		rc.Control(func(fd uintptr) { got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT) })
		if gerr != nil {
			t.Fatal(gerr)
		}
		// Linux stores a count of SYN-ACK retransmissions and reports it
		// back as the seconds they cover, at least what was asked for.
		if tt.want == 0 && got != 0 || tt.want > 0 && got < tt.want {
			t.Errorf("defer %v: listener's TCP_DEFER_ACCEPT = %d, want %d", tt.d, got, tt.want)
		}
		ln.Close()
	}

	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := SetInheritedOptions(ln, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	talker, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer talker.Close()
	if _, err := talker.Write([]byte{0x01}); err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(3 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("accept: %v (the client that sent a byte was not accepted)", err)
	}
	defer c.Close()
	if c.RemoteAddr().String() != talker.LocalAddr().String() {
		t.Errorf("accepted %v first, want the client that sent a byte (%v), not the silent one (%v)",
			c.RemoteAddr(), talker.LocalAddr(), silent.LocalAddr())
	}
}
