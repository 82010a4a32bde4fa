package worker

import (
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// receivedTCP returns a loopback TCP connection's client end and a copy of
// its server end's descriptor as a handoff delivers it: a new descriptor
// on the same non-blocking open file description, wrapped by os.NewFile.
func receivedTCP(t *testing.T) (client net.Conn, server *os.File) {
	t.Helper()
	client, sc := tcpConnPair(t)
	defer sc.Close() // as the acceptor closes its copy after the ACK
	rc, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dup int
	var derr error
	rc.Control(func(fd uintptr) { dup, derr = unix.Dup(int(fd)) })
	if derr != nil {
		t.Fatal(derr)
	}
	return client, os.NewFile(uintptr(dup), "received")
}

func TestSessionConnTCP(t *testing.T) {
	client, f := receivedTCP(t)
	c, err := sessionConn(f)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*sockConn); !ok {
		t.Fatalf("sessionConn returned %T for a non-blocking TCP socket, want *sockConn", c)
	}
	if got, want := c.RemoteAddr().String(), client.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr = %s, want %s", got, want)
	}
	if got, want := c.LocalAddr().String(), client.RemoteAddr().String(); got != want {
		t.Errorf("LocalAddr = %s, want %s", got, want)
	}

	// Data both ways.
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if _, err := c.Write([]byte("pong")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("client read %q, %v", buf, err)
	}

	// The idle timeout depends on read deadlines through the poller.
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v, want os.ErrDeadlineExceeded", err)
	}
	c.SetReadDeadline(time.Time{})

	// A Close from another goroutine (the worker's forced stop) ends a
	// blocked Read.
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(buf)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)

	// CloseWrite half-closes: the client sees EOF, the worker can still read.
	if err := c.(*sockConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := client.Read(buf); err != io.EOF {
		t.Fatalf("client read after CloseWrite: %d, %v; want EOF", n, err)
	}
	c.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("blocked Read returned no error after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a blocked Read")
	}
}

func TestSessionConnFallbackAndRefusals(t *testing.T) {
	pair := func(typ int) (*os.File, *os.File) {
		fds, err := unix.Socketpair(unix.AF_UNIX, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		a, b := os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
		t.Cleanup(func() { a.Close(); b.Close() })
		return a, b
	}

	// A blocking stream socket has no poller registration: FileConn's
	// non-blocking duplicate serves it instead.
	s, peer := pair(unix.SOCK_STREAM)
	c, err := sessionConn(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(*sockConn); ok {
		t.Fatal("blocking socket served as *sockConn; deadlines would not work")
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("fallback read past the deadline: %v", err)
	}
	c.Close()
	peer.Close()

	dgram, _ := pair(unix.SOCK_DGRAM)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	for _, tt := range []struct {
		name string
		f    *os.File
		want string
	}{
		{"datagram socket", dgram, "not a stream"},
		{"pipe", pr, "not a socket"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := sessionConn(tt.f)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("sessionConn = %T, %v; want an error containing %q", c, err, tt.want)
			}
			// The descriptor was consumed: closed on refusal.
			if err := tt.f.Close(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("descriptor still open after refusal (Close: %v)", err)
			}
		})
	}
}
