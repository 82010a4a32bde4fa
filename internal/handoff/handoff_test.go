package handoff

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// countFDs returns the number of open descriptors of this process.
func countFDs(t testing.TB) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("reading /proc/self/fd: %v", err)
	}
	return len(ents)
}

// checkNoLeak fails the test if the descriptor count differs from base at
// the end of the test.
func checkNoLeak(t *testing.T) {
	t.Helper()
	startPoller(t)
	base := countFDs(t)
	t.Cleanup(func() {
		if n := countFDs(t); n != base {
			t.Errorf("descriptor count %d at the end, %d at the start", n, base)
		}
	})
}

// startPoller makes the runtime open its network poller's descriptors
// (epoll, eventfd), which it does on first use, so that a test run alone
// does not count them as leaked. A pipe is registered with the poller.
// (go test's -timeout timer also starts it, but not with -timeout 0.)
func startPoller(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
}

// pair returns both ends of a channel as Conns, the child end through
// FromFD as a worker would have it.
func pair(t testing.TB) (parent, child *Conn) {
	t.Helper()
	parent, cf, err := Pair()
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	fd, err := unix.Dup(int(cf.Fd()))
	cf.Close()
	if err != nil {
		t.Fatalf("dup: %v", err)
	}
	child, err = FromFD(uintptr(fd))
	if err != nil {
		t.Fatalf("FromFD: %v", err)
	}
	t.Cleanup(func() {
		parent.Close()
		child.Close()
	})
	return parent, child
}

// rawPair returns a raw sending descriptor and a Conn receiving from it, for
// messages the package itself would never send.
func rawPair(t *testing.T) (raw int, c *Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err = FromFD(uintptr(fds[1]))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fds[0])
		c.Close()
	})
	return fds[0], c
}

// fdOf returns the descriptor number of a syscall.Conn without the side
// effects of os.File.Fd.
func fdOf(t testing.TB, sc syscall.Conn) int {
	t.Helper()
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var fd int
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		t.Fatal(err)
	}
	return fd
}

// sameFile reports whether two descriptors refer to the same file.
func sameFile(t testing.TB, a, b int) bool {
	t.Helper()
	var sa, sb unix.Stat_t
	if err := unix.Fstat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

func devNull(t testing.TB) *os.File {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func testKey() KeyBytes {
	var k KeyBytes
	for i := range k {
		k[i] = byte(0xA0 + i)
	}
	return k
}

func TestRoundTrip(t *testing.T) {
	checkNoLeak(t)
	parent, child := pair(t)
	null := devNull(t)
	tests := []struct {
		name string
		from *Conn
		to   *Conn
		msg  Message
	}{
		{"hello", parent, child, &Hello{WorkerID: 7, Generation: 3, KeyID: 2, Key: testKey(),
			MaxSessions: 1000, MaxMessageBytes: 1 << 20, IdleTimeoutMS: 300000, ImportDeadlineMS: 30000}},
		{"hello zero", parent, child, &Hello{}},
		{"ready", child, parent, &Ready{PID: 4242}},
		{"handoff", parent, child, &Handoff{ID: 1<<63 + 5, Token: bytes.Repeat([]byte{0x5a}, 1200),
			ReadAhead: []byte{0xe4, 0, 0, 0, 1, 9}, File: null}},
		{"handoff empty token, no read-ahead", parent, child, &Handoff{ID: 1, Token: []byte{}, File: null}},
		{"handoff with IPv4 addresses", parent, child, &Handoff{ID: 2, Token: []byte("t"), File: null,
			Client: netip.MustParseAddrPort("192.0.2.66:1234"), Server: netip.MustParseAddrPort("198.51.100.1:4444")}},
		{"handoff with IPv6 addresses", parent, child, &Handoff{ID: 3, Token: []byte("t"), File: null,
			Client: netip.MustParseAddrPort("[2001:db8::66]:65535"), Server: netip.MustParseAddrPort("[2001:db8::1]:0")}},
		{"handoff with IPv4 client, IPv6 server", parent, child, &Handoff{ID: 4, Token: []byte("t"), File: null,
			Client: netip.MustParseAddrPort("[::ffff:192.0.2.66]:1"), Server: netip.MustParseAddrPort("[2001:db8::1]:2")}},
		{"ack ok", child, parent, &Ack{ID: 9, Status: 0, Load: 17}},
		{"ack failure", child, parent, &Ack{ID: ^uint64(0), Status: 0x000c0000, Load: ^uint32(0)}},
		{"drain", parent, child, &Drain{}},
		{"bye", child, parent, &Bye{Reason: ByeDrained}},
		{"ping", parent, child, &Ping{Seq: 1}},
		{"pong", child, parent, &Pong{Seq: ^uint64(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.from.Send(tt.msg); err != nil {
				t.Fatalf("Send: %v", err)
			}
			got, err := tt.to.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			if got.Type() != tt.msg.Type() {
				t.Fatalf("type %v, want %v", got.Type(), tt.msg.Type())
			}
			if h, ok := got.(*Handoff); ok {
				want := tt.msg.(*Handoff)
				if h.File == nil || h.FD != 0 {
					t.Fatalf("received HANDOFF File %v FD %d", h.File, h.FD)
				}
				if !sameFile(t, fdOf(t, h.File), fdOf(t, want.File)) {
					t.Errorf("received descriptor is not the file sent")
				}
				if err := h.Close(); err != nil || h.File != nil {
					t.Errorf("Close: %v, File %v", err, h.File)
				}
				cp := *want
				cp.File = nil
				if cp.Token == nil {
					cp.Token = []byte{}
				}
				got = h
				tt.msg = &cp
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("got %#v, want %#v", got, tt.msg)
			}
		})
	}
}

// Bytes on the wire are a stable contract between acceptor and worker
// builds; pin a few.
func TestEncodingGolden(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want []byte
	}{
		{"ready", &Ready{PID: 0x01020304}, []byte{0xa1, 2, 1, 2, 3, 4}},
		{"drain", &Drain{}, []byte{0xa1, 5}},
		{"bye", &Bye{Reason: ByeDrained}, []byte{0xa1, 6, 0, 0, 0, 1}},
		{"ping", &Ping{Seq: 0x0102}, []byte{0xa1, 8, 0, 0, 0, 0, 0, 0, 1, 2}},
		{"pong", &Pong{Seq: 0x0102}, []byte{0xa1, 9, 0, 0, 0, 0, 0, 0, 1, 2}},
		{"ack", &Ack{ID: 1, Status: 0x00090000, Load: 2}, []byte{0xa1, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 9, 0, 0, 0, 0, 0, 2}},
		{"handoff", &Handoff{ID: 2, Token: []byte("tk"), ReadAhead: []byte("r")},
			[]byte{0xa1, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 't', 'k', 0, 0, 0, 1, 'r', AddrNone}},
		{"handoff with addresses", &Handoff{ID: 2, Token: []byte("tk"),
			Client: netip.MustParseAddrPort("[::ffff:192.0.2.66]:1234"), Server: netip.MustParseAddrPort("198.51.100.1:4444")},
			[]byte{0xa1, 3, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 2, 't', 'k', 0, 0, 0, 0,
				AddrTCP4, 192, 0, 2, 66, 198, 51, 100, 1, 0x04, 0xd2, 0x11, 0x5c}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := appendMessage(nil, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Fatalf("encoding %x, want %x", got, tt.want)
			}
		})
	}
	h := &Hello{WorkerID: 1, Generation: 2, KeyID: 3, Key: testKey(), MaxSessions: 4, MaxMessageBytes: 5, IdleTimeoutMS: 6, ImportDeadlineMS: 7}
	b, _ := appendMessage(nil, h)
	if len(b) != 2+helloLen {
		t.Fatalf("HELLO is %d bytes, want %d", len(b), 2+helloLen)
	}
	if k := testKey(); !bytes.Equal(b[11:43], k[:]) || b[10] != 3 || b[len(b)-1] != 7 {
		t.Fatalf("HELLO layout: %x", b)
	}
}

func TestHelloSecrets(t *testing.T) {
	h := &Hello{WorkerID: 1, Key: testKey()}
	k := testKey()
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d"} {
		out := fmt.Sprintf(verb, h) + fmt.Sprintf(verb, *h)
		if strings.Contains(out, "a0") || strings.Contains(out, "A0") || strings.Contains(out, "160") ||
			bytes.Contains([]byte(out), k[:4]) {
			t.Errorf("%s formats key bytes: %s", verb, out)
		}
		if !strings.Contains(out, "redacted") {
			t.Errorf("%s: %s lacks the redaction marker", verb, out)
		}
	}
	h.Zero()
	if h.Key != (KeyBytes{}) {
		t.Fatalf("Zero left key bytes")
	}
}

// The send buffer is wiped after each Send (it held the seal key or a
// token), and so is the receive buffer after each Recv.
func TestBuffersWiped(t *testing.T) {
	parent, child := pair(t)
	if err := parent.Send(&Hello{Key: testKey()}); err != nil {
		t.Fatal(err)
	}
	if b := parent.wbuf[:cap(parent.wbuf)]; bytes.Contains(b, []byte{0xa0, 0xa1, 0xa2}) {
		t.Fatalf("seal key left in the send buffer")
	}
	m, err := child.Recv()
	if err != nil {
		t.Fatal(err)
	}
	m.(*Hello).Zero()
	if bytes.Contains(child.rbuf[:64], []byte{0xa0, 0xa1, 0xa2}) {
		t.Fatalf("seal key left in the receive buffer")
	}
	null := devNull(t)
	tok := bytes.Repeat([]byte{0xee}, 64)
	if err := parent.Send(&Handoff{ID: 1, Token: tok, File: null}); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(parent.wbuf[:cap(parent.wbuf)], tok[:8]) {
		t.Fatalf("token left in the send buffer")
	}
	if !bytes.Equal(tok, bytes.Repeat([]byte{0xee}, 64)) {
		t.Fatalf("Send modified the caller's token")
	}
	m, err = child.Recv()
	if err != nil {
		t.Fatal(err)
	}
	m.(*Handoff).Close()
	if bytes.Contains(child.rbuf[:128], tok[:8]) {
		t.Fatalf("token left in the receive buffer")
	}
}

// The listener's path end to end: an accepted TCP connection is handed off
// (by descriptor number, no dup, or as a File) and the worker serves it
// through the received descriptor.
func TestHandoffDeliversTCPConn(t *testing.T) {
	checkNoLeak(t)
	parent, child := pair(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, viaFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("viaFile=%v", viaFile), func(t *testing.T) {
			client, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			tcp := sc.(*net.TCPConn)
			h := &Handoff{ID: 77, Token: []byte("sealed"), ReadAhead: []byte("ahead")}
			if viaFile {
				f, err := tcp.File()
				if err != nil {
					t.Fatal(err)
				}
				h.File = f
			} else {
				h.FD = fdOf(t, tcp)
			}
			if err := parent.Send(h); err != nil {
				t.Fatalf("Send: %v", err)
			}
			m, err := child.Recv()
			if err != nil {
				t.Fatalf("Recv: %v", err)
			}
			rh := m.(*Handoff)
			if string(rh.Token) != "sealed" || string(rh.ReadAhead) != "ahead" || rh.ID != 77 {
				t.Fatalf("received %+v", rh)
			}
			flags, err := unix.FcntlInt(uintptr(fdOf(t, rh.File)), unix.F_GETFD, 0)
			if err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Fatalf("received descriptor flags %#x, %v: want FD_CLOEXEC", flags, err)
			}
			wc, err := net.FileConn(rh.File)
			rh.Close()
			if err != nil {
				t.Fatalf("FileConn: %v", err)
			}
			defer wc.Close()
			if err := child.Send(&Ack{ID: rh.ID, Load: 1}); err != nil {
				t.Fatal(err)
			}
			if m, err := parent.Recv(); err != nil || m.(*Ack).ID != 77 {
				t.Fatalf("ACK: %v, %v", m, err)
			}
			// The parent's copies, released after the ACK. A forgotten dup
			// from tcp.File() would keep the connection open after the
			// worker closes it (tableflip#74), and the EOF check below
			// would time out.
			tcp.Close()
			if h.File != nil {
				h.File.Close()
			}

			if _, err := wc.Write([]byte("from worker")); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 11)
			client.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "from worker" {
				t.Fatalf("client read %q, %v", buf, err)
			}
			if _, err := client.Write([]byte("to worker")); err != nil {
				t.Fatal(err)
			}
			wc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.ReadFull(wc, buf[:9]); err != nil || string(buf[:9]) != "to worker" {
				t.Fatalf("worker read %q, %v", buf[:9], err)
			}
			// Closing the worker's connection (the last reference) must
			// close the TCP connection: the client sees EOF.
			wc.Close()
			if n, err := client.Read(buf); err != io.EOF {
				t.Fatalf("client read after worker close: %d, %v; want EOF", n, err)
			}
		})
	}
}

func TestManyHandoffsNoLeak(t *testing.T) {
	parent, child := pair(t)
	null := devNull(t)
	// Warm up so lazily allocated runtime descriptors (epoll, etc.) exist.
	for range 2 {
		if err := parent.Send(&Handoff{ID: 1, Token: []byte("t"), File: null}); err != nil {
			t.Fatal(err)
		}
		m, err := child.Recv()
		if err != nil {
			t.Fatal(err)
		}
		m.(*Handoff).Close()
	}
	base := countFDs(t)
	for i := range 500 {
		if err := parent.Send(&Handoff{ID: uint64(i), Token: make([]byte, 1200), File: null}); err != nil {
			t.Fatal(err)
		}
		m, err := child.Recv()
		if err != nil {
			t.Fatal(err)
		}
		h := m.(*Handoff)
		if i%2 == 0 {
			h.Close()
		} else {
			// The worker's usual path: FileConn on a non-socket fails,
			// the original must still be closed.
			if _, err := net.FileConn(h.File); err == nil {
				t.Fatal("FileConn on /dev/null succeeded")
			}
			h.Close()
		}
	}
	if n := countFDs(t); n != base {
		t.Fatalf("descriptor count %d after 500 handoffs, %d before", n, base)
	}
}

// sendRaw sends bytes and descriptors with a bare sendmsg(2).
func sendRaw(t *testing.T, fd int, b []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if err := unix.Sendmsg(fd, b, oob, nil, 0); err != nil {
		t.Fatalf("sendmsg: %v", err)
	}
}

func openN(t *testing.T, n int) []int {
	t.Helper()
	fds := make([]int, n)
	for i := range fds {
		fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		fds[i] = fd
	}
	t.Cleanup(func() { closeFDs(fds) })
	return fds
}

func enc(t *testing.T, m Message) []byte {
	t.Helper()
	b, err := appendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Malformed messages and wrong descriptor counts are refused and every
// descriptor that arrived with them is closed.
func TestRecvRejects(t *testing.T) {
	handoff := func(t *testing.T) []byte { return enc(t, &Handoff{ID: 1, Token: []byte("tok")}) }
	tests := []struct {
		name  string
		bytes func(t *testing.T) []byte
		nfds  int
		want  error
	}{
		{"handoff without fd", handoff, 0, ErrFDCount},
		{"handoff with 2 fds", handoff, 2, ErrFDCount},
		{"handoff with recvFDRoom fds", handoff, recvFDRoom, ErrFDCount},
		{"ack with an fd", func(t *testing.T) []byte { return enc(t, &Ack{ID: 1}) }, 1, ErrFDCount},
		{"hello with an fd", func(t *testing.T) []byte { return enc(t, &Hello{}) }, 1, ErrFDCount},
		{"drain with 3 fds", func(t *testing.T) []byte { return enc(t, &Drain{}) }, 3, ErrFDCount},
		{"one byte", func(*testing.T) []byte { return []byte{Version} }, 0, ErrMalformed},
		{"bad version", func(t *testing.T) []byte { b := enc(t, &Drain{}); b[0] = 0xA2; return b }, 0, ErrMalformed},
		{"bad version with fd", func(t *testing.T) []byte { b := handoff(t); b[0] = 0x01; return b }, 1, ErrMalformed},
		{"unknown type", func(*testing.T) []byte { return []byte{Version, byte(TypePong) + 1, 0, 0, 0, 0, 0, 0, 0, 0} }, 0, ErrMalformed},
		{"truncated ping", func(t *testing.T) []byte { b := enc(t, &Ping{Seq: 1}); return b[:len(b)-1] }, 0, ErrMalformed},
		{"pong with an fd", func(t *testing.T) []byte { return enc(t, &Pong{Seq: 1}) }, 1, ErrFDCount},
		{"type zero", func(*testing.T) []byte { return []byte{Version, 0} }, 0, ErrMalformed},
		{"truncated ack", func(t *testing.T) []byte { b := enc(t, &Ack{ID: 1}); return b[:len(b)-1] }, 0, ErrMalformed},
		{"truncated hello", func(t *testing.T) []byte { b := enc(t, &Hello{}); return b[:20] }, 0, ErrMalformed},
		{"trailing byte on drain", func(*testing.T) []byte { return []byte{Version, byte(TypeDrain), 0} }, 0, ErrMalformed},
		{"trailing byte on handoff", func(t *testing.T) []byte { return append(handoff(t), 0) }, 1, ErrMalformed},
		{"token length past end", func(t *testing.T) []byte { b := handoff(t); b[13] = 0xff; return b }, 1, ErrMalformed},
		{"token length 4 GiB-1", func(t *testing.T) []byte {
			b := handoff(t)
			copy(b[10:14], []byte{0xff, 0xff, 0xff, 0xff})
			return b
		}, 1, ErrMalformed},
		{"readahead length missing", func(t *testing.T) []byte { b := handoff(t); return b[:len(b)-4] }, 1, ErrMalformed},
		{"address block missing", func(t *testing.T) []byte { b := handoff(t); return b[:len(b)-1] }, 1, ErrMalformed},
		{"unknown address format", func(t *testing.T) []byte { b := handoff(t); b[len(b)-1] = 5; return b }, 1, ErrMalformed},
		{"IPv4 address block truncated", func(t *testing.T) []byte {
			b := handoffAddrs(t, "192.0.2.66:1234", "198.51.100.1:4444")
			return b[:len(b)-3]
		}, 1, ErrMalformed},
		{"IPv6 address block with two IPv4-mapped addresses", func(t *testing.T) []byte {
			b := handoff(t)
			b[len(b)-1] = AddrTCP6
			b = append(b, netip.MustParseAddr("::ffff:192.0.2.66").AsSlice()...)
			b = append(b, netip.MustParseAddr("::ffff:198.51.100.1").AsSlice()...)
			return append(b, 0, 1, 0, 2)
		}, 1, ErrMalformed},
		{"trailing byte after addresses", func(t *testing.T) []byte {
			return append(handoffAddrs(t, "[2001:db8::66]:1", "[2001:db8::1]:2"), 0)
		}, 1, ErrMalformed},
		{"too many fds for the control buffer", handoff, recvFDRoom + 3, ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantRejected(t, tt.bytes(t), tt.nfds, tt.want) })
	}
}

// handoffAddrs encodes a HANDOFF with the given client and server addresses.
func handoffAddrs(t *testing.T, client, server string) []byte {
	return enc(t, &Handoff{ID: 1, Token: []byte("tok"), Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)})
}

// wantRejected sends b with n fresh descriptors through a new channel and
// checks that Recv refuses it with want, returns no message and closes
// every descriptor that came with it, and that the channel stays usable
// for the next, valid message.
func wantRejected(t *testing.T, b []byte, n int, want error) {
	t.Helper()
	raw, c := rawPair(t)
	fds := openN(t, n)
	base := countFDs(t)
	sendRaw(t, raw, b, fds...)
	m, err := c.Recv()
	if !errors.Is(err, want) {
		t.Fatalf("Recv = %v, %v; want %v", m, err, want)
	}
	if m != nil {
		t.Fatalf("message %v returned with error", m)
	}
	if !strings.HasPrefix(err.Error(), "handoff: ") {
		t.Errorf("error %q lacks the package prefix", err)
	}
	if n := countFDs(t); n != base {
		t.Fatalf("%d descriptors open after a rejected message, %d before: a received descriptor leaked", n, base)
	}
	sendRaw(t, raw, enc(t, &Bye{Reason: 1}))
	if m, err := c.Recv(); err != nil || m.(*Bye).Reason != 1 {
		t.Fatalf("next message: %v, %v", m, err)
	}
}

func TestRecvTooLongMessage(t *testing.T) {
	checkNoLeak(t)
	raw, c := rawPair(t)
	if err := unix.SetsockoptInt(raw, unix.SOL_SOCKET, unix.SO_SNDBUF, 4*MaxMessageSize); err != nil {
		t.Fatal(err)
	}
	b := append(enc(t, &Handoff{ID: 1, Token: make([]byte, MaxMessageSize)}), 0)
	fd := openN(t, 1)
	sendRaw(t, raw, b, fd...)
	if _, err := c.Recv(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Recv = %v, want ErrTruncated (MSG_TRUNC)", err)
	}
}

// With SO_PASSCRED set (this package never sets it) every message carries
// an SCM_CREDENTIALS control message. Recv must refuse such a message,
// whether it fails on the unexpected type or on the control buffer
// overflowing, and close the descriptor that came with it.
func TestRecvUnexpectedControlMessage(t *testing.T) {
	raw, c := rawPair(t)
	if err := c.control(func(fd int) error { return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1) }); err != nil {
		t.Fatal(err)
	}
	fds := openN(t, 1)
	base := countFDs(t)
	sendRaw(t, raw, enc(t, &Handoff{ID: 1}), fds...)
	m, err := c.Recv()
	if m != nil || !(errors.Is(err, ErrMalformed) || errors.Is(err, ErrTruncated)) {
		t.Fatalf("Recv with SCM_CREDENTIALS = %v, %v; want ErrMalformed or ErrTruncated", m, err)
	}
	if n := countFDs(t); n != base {
		t.Fatalf("descriptor count %d, %d before", n, base)
	}
	sendRaw(t, raw, enc(t, &Drain{}))
	if _, err := c.Recv(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Recv of DRAIN with SCM_CREDENTIALS = %v, want ErrMalformed", err)
	}
}

func TestParseRights(t *testing.T) {
	rights := unix.UnixRights(5, 6)
	creds := unix.UnixCredentials(&unix.Ucred{Pid: 1})
	tests := []struct {
		name    string
		oob     []byte
		wantFDs []int
		wantErr error
	}{
		{"empty", nil, nil, nil},
		{"two fds", rights, []int{5, 6}, nil},
		{"two messages", append(unix.UnixRights(3), unix.UnixRights(4)...), []int{3, 4}, nil},
		{"credentials then rights", append(append([]byte(nil), creds...), rights...), []int{5, 6}, ErrMalformed},
		{"rights then stray bytes", append(append([]byte(nil), rights...), 1, 2, 3), []int{5, 6}, ErrMalformed},
		{"bad length", func() []byte { b := append([]byte(nil), rights...); b[0] = 0xff; return b }(), nil, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fds, err := parseRights(nil, tt.oob)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(fds, tt.wantFDs) {
				t.Fatalf("fds = %v, want %v", fds, tt.wantFDs)
			}
		})
	}
}

func TestSendRefuses(t *testing.T) {
	parent, child := pair(t)
	null := devNull(t)
	tests := []struct {
		name string
		msg  Message
		want error
	}{
		{"handoff without descriptor", &Handoff{ID: 1}, ErrFDCount},
		{"handoff with File and FD", &Handoff{ID: 1, File: null, FD: 5}, ErrFDCount},
		{"handoff with negative FD", &Handoff{ID: 1, FD: -1}, ErrFDCount},
		{"token over the limit", &Handoff{ID: 1, Token: make([]byte, MaxMessageSize+1), File: null}, ErrTooLarge},
		{"token+readahead over the limit", &Handoff{ID: 1, Token: make([]byte, MaxMessageSize/2),
			ReadAhead: make([]byte, MaxMessageSize/2), File: null}, ErrTooLarge},
		{"nil message", nil, errNilMessage},
		{"typed nil HANDOFF", (*Handoff)(nil), errNilMessage},
		{"handoff with a client address only", &Handoff{ID: 1, File: null, Client: netip.MustParseAddrPort("192.0.2.1:1")}, ErrAddrs},
		{"handoff with a server address only", &Handoff{ID: 1, File: null, Server: netip.MustParseAddrPort("192.0.2.1:1")}, ErrAddrs},
		{"typed nil HELLO", (*Hello)(nil), errNilMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := parent.Send(tt.msg)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Send = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "handoff: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	// Nothing reached the peer.
	child.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if m, err := child.Recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("peer received %v, %v after refused sends", m, err)
	}
}

// The largest permitted message fits the socket buffers Pair sets.
func TestMaxMessageSizeFits(t *testing.T) {
	parent, child := pair(t)
	null := devNull(t)
	overhead := len(enc(t, &Handoff{}))
	tok := bytes.Repeat([]byte{7}, MaxMessageSize-overhead-10)
	ra := bytes.Repeat([]byte{8}, 10)
	done := make(chan error, 1)
	go func() { done <- parent.Send(&Handoff{ID: 3, Token: tok, ReadAhead: ra, File: null}) }()
	m, err := child.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Send: %v", err)
	}
	h := m.(*Handoff)
	defer h.Close()
	if !bytes.Equal(h.Token, tok) || !bytes.Equal(h.ReadAhead, ra) {
		t.Fatalf("payload differs")
	}
}

func TestEOFAndClose(t *testing.T) {
	checkNoLeak(t)
	t.Run("peer closed", func(t *testing.T) {
		parent, child := pair(t)
		if err := parent.Send(&Drain{}); err != nil {
			t.Fatal(err)
		}
		parent.Close()
		if m, err := child.Recv(); err != nil || m.Type() != TypeDrain {
			t.Fatalf("queued message: %v, %v", m, err)
		}
		if _, err := child.Recv(); err != io.EOF {
			t.Fatalf("Recv after peer close = %v, want io.EOF", err)
		}
		if err := child.Send(&Bye{}); err == nil {
			t.Fatalf("Send to a closed peer succeeded")
		}
	})
	t.Run("Close unblocks Recv", func(t *testing.T) {
		_, child := pair(t)
		errc := make(chan error, 1)
		go func() {
			_, err := child.Recv()
			errc <- err
		}()
		time.Sleep(50 * time.Millisecond)
		if err := child.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, net.ErrClosed) {
				t.Fatalf("blocked Recv returned %v, want net.ErrClosed", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Close did not unblock Recv")
		}
	})
	t.Run("read deadline", func(t *testing.T) {
		_, child := pair(t)
		child.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		if _, err := child.Recv(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Recv = %v, want deadline exceeded", err)
		}
	})
}

func TestFromFDRejects(t *testing.T) {
	checkNoLeak(t)
	null := devNull(t)
	if _, err := FromFD(null.Fd()); err == nil {
		t.Fatal("FromFD accepted /dev/null")
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	if _, err := FromFD(uintptr(fds[0])); err == nil || !strings.Contains(err.Error(), "SOCK_SEQPACKET") {
		t.Fatalf("FromFD on a stream socket = %v", err)
	}
}

func TestFromFDSetsCloexec(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET, 0) // no CLOEXEC, as inherited
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	c, err := FromFD(uintptr(fds[1]))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_GETFD, 0); err != unix.EBADF {
		t.Fatalf("original descriptor still open (%v); FromFD must own and close it", err)
	}
	var flags int
	if err := c.control(func(fd int) error {
		var err error
		flags, err = unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("channel descriptor lacks FD_CLOEXEC")
	}
}

func TestPeerCred(t *testing.T) {
	parent, child := pair(t)
	for _, c := range []*Conn{parent, child} {
		cred, err := c.PeerCred()
		if err != nil {
			t.Fatal(err)
		}
		// socketpair(2) records the creator for both ends.
		if int(cred.Pid) != os.Getpid() || cred.Uid != uint32(os.Geteuid()) {
			t.Fatalf("PeerCred = %+v, want pid %d uid %d", cred, os.Getpid(), os.Geteuid())
		}
	}
	if err := CheckWorker(parent); err != nil {
		t.Fatalf("CheckWorker on our own pair: %v", err)
	}
	if err := CheckWorker(parent, 12345); err != nil {
		t.Fatalf("CheckWorker on our own pair with another uid policy: %v", err)
	}
	// In this process the peer is ourselves, not our parent.
	if err := CheckParent(child); !errors.Is(err, ErrPeer) {
		t.Fatalf("CheckParent in the creating process = %v, want ErrPeer", err)
	}
	parent.Close()
	if _, err := parent.PeerCred(); err == nil {
		t.Fatalf("PeerCred on a closed Conn succeeded")
	}
}

// A pair made by another process (a child of ours): the peer is not us, so
// the uid policy decides.
func TestCheckWorkerForeignPeer(t *testing.T) {
	cmd, parent := startHelper(t, "pair-for-parent")
	defer parent.Close()
	// The helper made a fresh pair and sent us one end inside a HANDOFF.
	m, err := parent.Recv()
	if err != nil {
		t.Fatal(err)
	}
	h := m.(*Handoff)
	fd, err := unix.Dup(fdOf(t, h.File))
	h.Close()
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := FromFD(uintptr(fd))
	if err != nil {
		t.Fatal(err)
	}
	defer foreign.Close()
	cred, err := foreign.PeerCred()
	if err != nil {
		t.Fatal(err)
	}
	if int(cred.Pid) != cmd.Process.Pid {
		t.Fatalf("peer pid %d, want the helper's %d", cred.Pid, cmd.Process.Pid)
	}
	if err := CheckWorker(foreign); err != nil {
		t.Fatalf("CheckWorker with the default policy (same uid): %v", err)
	}
	if err := CheckWorker(foreign, uint32(os.Geteuid())+1); !errors.Is(err, ErrPeer) {
		t.Fatalf("CheckWorker with a policy excluding the peer = %v, want ErrPeer", err)
	}
	parent.Send(&Drain{})
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// The worker-side check, in a real child process holding fd 3.
func TestCheckParentInChild(t *testing.T) {
	checkNoLeak(t)
	cmd, parent := startHelper(t, "check-parent")
	defer parent.Close()
	m, err := parent.Recv()
	if err != nil {
		t.Fatalf("Recv: %v", err)
	}
	r, ok := m.(*Ready)
	if !ok {
		t.Fatalf("helper answered %#v, want READY (CheckParent failed in the child)", m)
	}
	if int(r.PID) != cmd.Process.Pid {
		t.Fatalf("READY pid %d, want %d", r.PID, cmd.Process.Pid)
	}
	if err := CheckWorker(parent); err != nil {
		t.Fatalf("CheckWorker: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

// Under RLIMIT_NOFILE pressure the kernel cannot install a passed
// descriptor: the bytes arrive, MSG_CTRUNC is set, and Recv must refuse the
// HANDOFF rather than deliver it without its socket.
func TestRecvCtruncUnderRlimit(t *testing.T) {
	checkNoLeak(t)
	cmd, parent := startHelper(t, "rlimit")
	defer parent.Close()
	if m, err := parent.Recv(); err != nil || m.Type() != TypeReady {
		t.Fatalf("waiting for READY: %v, %v", m, err)
	}
	null := devNull(t)
	if err := parent.Send(&Handoff{ID: 5, Token: []byte("t"), File: null}); err != nil {
		t.Fatal(err)
	}
	m, err := parent.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := m.(*Ack); !ok || a.ID != 5 || a.Status != helperSawTruncated {
		t.Fatalf("helper reported %#v, want ACK 5 with status %d (ErrTruncated)", m, helperSawTruncated)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
}

const helperEnv = "HANDOFF_TEST_HELPER"

// Status codes the helper reports in ACKs.
const (
	helperSawTruncated = 1
	helperOther        = 2
)

// startHelper re-executes the test binary as a worker-like child with the
// child end of a fresh pair as fd 3.
func startHelper(t *testing.T, mode string) (*exec.Cmd, *Conn) {
	t.Helper()
	parent, child, err := Pair()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd, parent
}

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	os.Exit(m.Run())
}

// helperMain is the child side of the subprocess tests.
func helperMain(mode string) int {
	c, err := FromFD(3)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 3
	}
	defer c.Close()
	switch mode {
	case "check-parent":
		if err := CheckParent(c); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			c.Send(&Bye{}) // anything but READY tells the parent
			return 0
		}
		if err := c.Send(&Ready{PID: uint32(os.Getpid())}); err != nil {
			return 4
		}
		return 0
	case "pair-for-parent":
		p, cf, err := Pair()
		if err != nil {
			return 5
		}
		if err := c.Send(&Handoff{ID: 1, File: cf}); err != nil {
			return 6
		}
		cf.Close()
		c.Recv() // DRAIN: keep p open until the parent has checked it
		p.Close()
		return 0
	case "rlimit":
		if err := c.Send(&Ready{PID: uint32(os.Getpid())}); err != nil {
			return 7
		}
		// Lower the descriptor limit to the lowest free number, so that
		// no new descriptor can be installed.
		free, err := unix.FcntlInt(0, unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return 8
		}
		unix.Close(free)
		lim := unix.Rlimit{Cur: uint64(free), Max: uint64(free)}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintln(os.Stderr, "helper: setrlimit:", err)
			return 9
		}
		status := uint32(helperOther)
		_, err = c.Recv()
		if errors.Is(err, ErrTruncated) {
			status = helperSawTruncated
		} else {
			fmt.Fprintln(os.Stderr, "helper: Recv under rlimit:", err)
		}
		if err := c.Send(&Ack{ID: 5, Status: status}); err != nil {
			return 10
		}
		return 0
	}
	return 2
}
