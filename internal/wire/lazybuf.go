package wire

import (
	"errors"
	"io"
	"os"
	"sync"
	"syscall"
)

// lazyBuf is the read buffer of a Reader. Unlike a bufio.Reader it holds
// memory only while it holds bytes: the buffer comes from a pool when a
// read is about to return data, and goes back once every buffered byte is
// consumed. On a connection that offers its descriptor (syscall.Conn: a
// *net.TCPConn, *net.UnixConn, or the worker's *os.File socket), a read
// that would block gives the buffer back before waiting for the runtime
// poller, so an idle connection holds no read buffer at all (10,000 idle
// sessions on a worker; ARCHITECTURE.md §1). Other readers keep the buffer
// during a blocking Read, as bufio does.
type lazyBuf struct {
	src  io.Reader
	raw  syscall.RawConn // src's descriptor, when it has one
	size int
	buf  []byte // nil while empty
	r, w int    // buf[r:w] is unread
}

func newLazyBuf(src io.Reader, size int) *lazyBuf {
	b := &lazyBuf{src: src, size: max(size, 16)}
	if sc, ok := src.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
		}
	}
	return b
}

// bufPools holds one pool of *[]byte per buffer size.
var bufPools sync.Map // int -> *sync.Pool

func getBuf(size int) []byte {
	p, _ := bufPools.LoadOrStore(size, &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}})
	return *p.(*sync.Pool).Get().(*[]byte)
}

func putBuf(b []byte) {
	if p, ok := bufPools.Load(cap(b)); ok {
		b = b[:cap(b)]
		p.(*sync.Pool).Put(&b)
	}
}

// buffered is the number of unread bytes.
func (b *lazyBuf) buffered() int { return b.w - b.r }

// release gives an empty buffer back to the pool.
func (b *lazyBuf) release() {
	if b.buf != nil && b.r == b.w {
		putBuf(b.buf)
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// readSrc reads from src into the slice get returns. With a descriptor,
// get is called only when the read is attempted, and drop when the read
// would block, before waiting for the poller (get is called again after).
func (b *lazyBuf) readSrc(get func() []byte, drop func()) (int, error) {
	if b.raw == nil {
		p := get()
		// As bufio: a reader that keeps returning nothing is an error.
		for range 100 {
			if n, err := b.src.Read(p); n > 0 || err != nil {
				return n, err
			}
		}
		return 0, io.ErrNoProgress
	}
	var (
		n    int
		rerr error
	)
	err := b.raw.Read(func(fd uintptr) bool {
		p := get()
		for {
			n, rerr = syscall.Read(int(fd), p)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			drop()
			return false // wait until readable, then call again
		}
		return true
	})
	switch {
	case err != nil: // deadline passed, closed
		return 0, err
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}

// fill reads more bytes into the buffer, after those it holds.
func (b *lazyBuf) fill() error {
	if b.buf != nil && b.r > 0 {
		copy(b.buf, b.buf[b.r:b.w])
		b.w -= b.r
		b.r = 0
	}
	if b.buf != nil && b.w == len(b.buf) {
		return errors.New("wire: read buffer full")
	}
	n, err := b.readSrc(func() []byte {
		if b.buf == nil {
			b.buf = getBuf(b.size)
		}
		return b.buf[b.w:]
	}, b.release)
	if n > 0 {
		b.w += n
		return nil
	}
	b.release()
	return err
}

// readByte returns the next byte.
func (b *lazyBuf) readByte() (byte, error) {
	for b.r == b.w {
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	c := b.buf[b.r]
	b.r++
	return c, nil
}

// peek returns the next n bytes (n at most the buffer size) without
// consuming them.
func (b *lazyBuf) peek(n int) ([]byte, error) {
	if n > b.size {
		return nil, errors.New("wire: peek beyond the buffer")
	}
	for b.w-b.r < n {
		if err := b.fill(); err != nil {
			return nil, err
		}
	}
	return b.buf[b.r : b.r+n], nil
}

// discard skips n buffered bytes.
func (b *lazyBuf) discard(n int) {
	b.r += n
	b.release()
}

// Read implements io.Reader for io.ReadFull: buffered bytes first; a read
// at least as large as the buffer goes straight into p, as bufio does.
func (b *lazyBuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= b.size {
			return b.readSrc(func() []byte { return p }, func() {})
		}
		if err := b.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, b.buf[b.r:b.w])
	b.r += n
	b.release()
	return n, nil
}

// ChunkReader reads a byte stream in chunks into pooled buffers, holding
// a buffer only from the read that fills it to the next call: an idle
// connection that offers its descriptor holds none (see lazyBuf). Relays
// use it on their plain side.
type ChunkReader struct {
	b *lazyBuf
}

// NewChunkReader reads src in chunks of at most size bytes.
func NewChunkReader(src io.Reader, size int) *ChunkReader {
	return &ChunkReader{b: newLazyBuf(src, size)}
}

// Next returns the next chunk, valid until the next call to Next or
// Release. At the end of the stream it returns io.EOF.
func (c *ChunkReader) Next() ([]byte, error) {
	c.b.r = c.b.w
	c.b.release()
	if err := c.b.fill(); err != nil {
		return nil, err
	}
	p := c.b.buf[c.b.r:c.b.w]
	c.b.r = c.b.w
	return p, nil
}

// Release gives the buffer back; the last chunk is no longer valid.
func (c *ChunkReader) Release() {
	c.b.r = c.b.w
	c.b.release()
}
