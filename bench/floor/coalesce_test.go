package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// chanPeer is the acceptor's end of an in-process floor worker's channel.
type chanPeer struct {
	t    *testing.T
	uc   *net.UnixConn
	ln   net.Listener
	done chan error // runWorker's result
}

// startInProcessWorker runs the worker role in this process on a fresh
// channel, with SESSION_ENDs held up to flushDelay.
func startInProcessWorker(t *testing.T, flushDelay time.Duration) *chanPeer {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	pf := os.NewFile(uintptr(fds[0]), "test-channel")
	nc, err := net.FileConn(pf)
	pf.Close()
	if err != nil {
		unix.Close(fds[1])
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		nc.Close()
		unix.Close(fds[1])
		t.Fatal(err)
	}
	p := &chanPeer{t: t, uc: nc.(*net.UnixConn), ln: ln, done: make(chan error, 1)}
	go func() { p.done <- runWorker(context.Background(), uintptr(fds[1]), flushDelay) }()
	t.Cleanup(func() {
		p.uc.Close()
		ln.Close()
	})
	if m := p.recv(); len(m) != readyLen {
		t.Fatalf("first message %d bytes, want READY (%d)", len(m), readyLen)
	}
	return p
}

// recv reads the next channel message, failing the test after ioTimeout.
func (p *chanPeer) recv() []byte {
	p.t.Helper()
	m, err := p.recvWithin(ioTimeout)
	if err != nil {
		p.t.Fatalf("reading the channel: %v", err)
	}
	return m
}

// recvWithin reads the next channel message, waiting at most d.
func (p *chanPeer) recvWithin(d time.Duration) ([]byte, error) {
	buf := make([]byte, endLen+1)
	p.uc.SetReadDeadline(time.Now().Add(d))
	n, err := p.uc.Read(buf)
	return buf[:n], err
}

// expect reads the next message and checks its kind (by length) and ID.
func (p *chanPeer) expect(what string, length int, id uint64) {
	p.t.Helper()
	m := p.recv()
	if len(m) != length || binary.BigEndian.Uint64(m) != id {
		p.t.Fatalf("got a %d-byte message for ID %d, want %s (%d bytes) for ID %d", len(m), binary.BigEndian.Uint64(m), what, length, id)
	}
}

// handoff connects a client, passes the accepted socket to the worker as
// handoff id and returns the client's end. The caller reads the ACK.
func (p *chanPeer) handoff(id uint64) net.Conn {
	p.t.Helper()
	c, err := net.Dial("tcp", p.ln.Addr().String())
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { c.Close() })
	sc, err := p.ln.Accept()
	if err != nil {
		p.t.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		p.t.Fatal(err)
	}
	tok := binary.BigEndian.AppendUint64(nil, id)
	var serr error
	if err := raw.Control(func(fd uintptr) {
		_, _, serr = p.uc.WriteMsgUnix(tok, unix.UnixRights(int(fd)), nil)
	}); err != nil || serr != nil {
		p.t.Fatal(errors.Join(err, serr))
	}
	return c
}

// finish sends the client's NOOP and waits until the worker closed the
// connection: the session is over.
func finish(t *testing.T, c net.Conn) {
	t.Helper()
	if err := wire.WriteFrame(c, wire.FlagNoop, nil); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	if n, err := io.Copy(io.Discard, c); err != nil || n != 0 {
		t.Fatalf("client read %d bytes, %v; want end of stream", n, err)
	}
}

// TestSessionEndRidesAheadOfNextAck checks the wake pattern gss-worker
// follows (ARCHITECTURE.md §11): a finished session's SESSION_END is not
// sent on its own but just ahead of the next ACK, and whatever is still
// queued when the acceptor shuts the channel goes out before the worker
// returns.
func TestSessionEndRidesAheadOfNextAck(t *testing.T) {
	p := startInProcessWorker(t, time.Hour)
	c1 := p.handoff(1)
	p.expect("ACK", ackLen, 1)
	finish(t, c1)
	// The session is over; with an hour's delay its end must wait for the
	// next message to the acceptor.
	if m, err := p.recvWithin(200 * time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("after the session ended: got a %d-byte message (%v), want nothing until the next ACK", len(m), err)
	}
	c2 := p.handoff(2)
	p.expect("SESSION_END", endLen, 1)
	p.expect("ACK", ackLen, 2)
	finish(t, c2)
	p.uc.CloseWrite()
	p.expect("SESSION_END", endLen, 2)
	if err := <-p.done; err != nil {
		t.Fatalf("runWorker: %v", err)
	}
	if m, err := p.recvWithin(ioTimeout); err == nil && len(m) != 0 {
		t.Fatalf("a %d-byte message after the last SESSION_END", len(m))
	}
}

// TestSessionEndAfterDelay checks that a SESSION_END with no ACK to ride
// goes out on its own after the flush delay.
func TestSessionEndAfterDelay(t *testing.T) {
	p := startInProcessWorker(t, time.Millisecond)
	c := p.handoff(7)
	p.expect("ACK", ackLen, 7)
	finish(t, c)
	p.expect("SESSION_END", endLen, 7) // within ioTimeout, not at exit
	p.uc.CloseWrite()
	if err := <-p.done; err != nil {
		t.Fatalf("runWorker: %v", err)
	}
}
