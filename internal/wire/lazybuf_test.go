package wire

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// TestReaderSocketBuffer: over a socket, frames split across writes and
// frames sent together are read whole; the buffer is held only while it
// holds bytes.
func TestReaderSocketBuffer(t *testing.T) {
	a, b := tcpPair(t)
	r := NewReader(b, 64)
	if r.b.raw == nil {
		t.Fatal("a *net.TCPConn source is not read through its descriptor")
	}
	f1 := AppendFrame(nil, 0x04, seq(40))
	more := make(chan struct{})
	go func() {
		a.Write(f1[:3])
		time.Sleep(20 * time.Millisecond)
		a.Write(f1[3:])
		<-more // nothing behind the first frame until it was read
		two := AppendFrame(AppendFrame(nil, 0x04, []byte("one")), 0x04, []byte("two"))
		a.Write(two)
	}()
	defer func() {
		select {
		case <-more:
		default:
			close(more)
		}
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := r.ReadFrame(1 << 10)
	if err != nil || !bytes.Equal(f.Body, seq(40)) {
		t.Fatalf("first frame %x, %v", f.Body, err)
	}
	if r.b.buf != nil {
		t.Fatal("the reader holds a buffer with nothing buffered")
	}
	close(more)
	want := []string{"one", "two"}
	for _, w := range want {
		f, err := r.ReadFrame(1 << 10)
		if err != nil || string(f.Body) != w {
			t.Fatalf("frame %q, %v; want %q", f.Body, err, w)
		}
	}
	if r.b.buf != nil || r.Buffered() != nil {
		t.Fatal("buffer held after the last frame")
	}
}

// TestReaderSocketLargeBody: a body far larger than the buffer is read
// straight into it, intact.
func TestReaderSocketLargeBody(t *testing.T) {
	a, b := tcpPair(t)
	body := seq(300 << 10)
	go a.Write(AppendFrame(nil, 0x04, body))
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := NewReader(b, 16).ReadFrame(1 << 20)
	if err != nil || !bytes.Equal(f.Body, body) {
		t.Fatalf("body of %d bytes, %v; want %d bytes", len(f.Body), err, len(body))
	}
}

// TestReaderSocketEnds: a deadline, a clean close between frames and a
// close inside a frame end ReadFrame as they did through bufio.
func TestReaderSocketEnds(t *testing.T) {
	a, b := tcpPair(t)
	b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := NewReader(b, 64).ReadFrame(64); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("ReadFrame past the deadline = %v", err)
	}

	a, b = tcpPair(t)
	a.Close()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := NewReader(b, 64).ReadFrame(64); err != io.EOF {
		t.Fatalf("ReadFrame after a clean close = %v, want io.EOF", err)
	}

	a, b = tcpPair(t)
	a.Write([]byte{0x04, 0, 0, 0, 9, 'x'})
	a.Close()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := NewReader(b, 64).ReadFrame(64); err != io.ErrUnexpectedEOF {
		t.Fatalf("ReadFrame of a cut frame = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestChunkReader: the whole stream arrives in chunks of at most the
// size, from a socket and from a plain reader alike.
func TestChunkReader(t *testing.T) {
	data := seq(100 << 10)
	a, b := tcpPair(t)
	go func() {
		a.Write(data)
		a.Close()
	}()
	b.SetReadDeadline(time.Now().Add(5 * time.Second))
	for name, src := range map[string]io.Reader{"socket": b, "reader": io.MultiReader(bytes.NewReader(data))} {
		cr := NewChunkReader(src, 4096)
		var got []byte
		for range 10000 {
			c, err := cr.Next()
			if len(c) > 4096 {
				t.Fatalf("%s: chunk of %d bytes", name, len(c))
			}
			got = append(got, c...)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		cr.Release()
		if !bytes.Equal(got, data) {
			t.Fatalf("%s: read %d bytes, want the %d written", name, len(got), len(data))
		}
		if cr.b.buf != nil {
			t.Fatalf("%s: buffer held after Release", name)
		}
	}
}
