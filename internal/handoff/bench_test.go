package handoff

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// benchTCP returns the server side of a loopback TCP connection, whose
// descriptor the benchmarks pass around.
func benchTCP(b *testing.B) *net.TCPConn {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		s.Close()
	})
	return s.(*net.TCPConn)
}

// benchToken is the size of a sealed context token as measured with MIT's
// export (about 1.2 KB).
var benchToken = make([]byte, 1200)

// BenchmarkHandoff is the full channel path per client connection: Send a
// HANDOFF (token + TCP descriptor), Recv it, net.FileConn and close both
// the received descriptor and the resulting conn, as the worker does.
func BenchmarkHandoff(b *testing.B) {
	parent, child := pair(b)
	tcp := benchTCP(b)
	h := &Handoff{Token: benchToken, FD: fdOf(b, tcp)}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		h.ID = uint64(i)
		if err := parent.Send(h); err != nil {
			b.Fatal(err)
		}
		m, err := child.Recv()
		if err != nil {
			b.Fatal(err)
		}
		rh := m.(*Handoff)
		nc, err := net.FileConn(rh.File)
		rh.Close()
		if err != nil {
			b.Fatal(err)
		}
		nc.Close()
	}
}

// BenchmarkBareSCMRights is the floor for the same work: a bare sendmsg and
// recvmsg(MSG_CMSG_CLOEXEC) of the same bytes and descriptor on blocking
// sockets, with no checks. "raw" closes the received descriptor; "FileConn"
// also turns it into a net.Conn as the worker must.
func BenchmarkBareSCMRights(b *testing.B) {
	tcp := benchTCP(b)
	tcpFD := fdOf(b, tcp)
	msg, err := appendMessage(nil, &Handoff{ID: 1, Token: benchToken})
	if err != nil {
		b.Fatal(err)
	}
	for _, withConn := range []bool{false, true} {
		name := "raw"
		if withConn {
			name = "FileConn"
		}
		b.Run(name, func(b *testing.B) {
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fds[0])
			defer unix.Close(fds[1])
			oob := unix.UnixRights(tcpFD)
			rbuf := make([]byte, MaxMessageSize)
			roob := make([]byte, unix.CmsgSpace(4))
			b.ReportAllocs()
			for b.Loop() {
				if err := unix.Sendmsg(fds[0], msg, oob, nil, 0); err != nil {
					b.Fatal(err)
				}
				_, oobn, _, _, err := unix.Recvmsg(fds[1], rbuf, roob, unix.MSG_CMSG_CLOEXEC)
				if err != nil {
					b.Fatal(err)
				}
				cm, err := unix.ParseSocketControlMessage(roob[:oobn])
				if err != nil {
					b.Fatal(err)
				}
				got, err := unix.ParseUnixRights(&cm[0])
				if err != nil {
					b.Fatal(err)
				}
				if !withConn {
					unix.Close(got[0])
					continue
				}
				f := os.NewFile(uintptr(got[0]), "bench")
				nc, err := net.FileConn(f)
				f.Close()
				if err != nil {
					b.Fatal(err)
				}
				nc.Close()
			}
		})
	}
}
