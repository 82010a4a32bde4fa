package listener

import (
	"context"
	"net"
	"path/filepath"
	"testing"

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
	if err := SetInheritedOptions(ln); err != nil {
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
	if err := SetInheritedOptions(ln); err != nil {
		t.Fatalf("unix listener: %v, want it left alone", err)
	}
}
