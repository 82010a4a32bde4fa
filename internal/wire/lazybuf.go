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
	mem  pooled // buf's pool box

	// State of one readSrc, kept here so a read allocates nothing.
	direct  []byte             // the caller's slice, or nil for buf
	n       int                // bytes read by rawRead
	rerr    error              // rawRead's read error
	rawRead func(uintptr) bool // b.rawReadFunc, bound once
	r, w    int                // buf[r:w] is unread
}

func newLazyBuf(src io.Reader, size int) *lazyBuf {
	b := &lazyBuf{src: src, size: max(size, 16)}
	b.rawRead = b.rawReadFunc
	if sc, ok := src.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
		}
	}
	return b
}

// bufPools holds one pool of *[]byte per buffer size (a map, not a
// sync.Map: an int key boxed into an interface would allocate per lookup).
var (
	bufPoolsMu sync.RWMutex
	bufPools   = map[int]*sync.Pool{}
)

func bufPool(size int) *sync.Pool {
	bufPoolsMu.RLock()
	p := bufPools[size]
	bufPoolsMu.RUnlock()
	if p != nil {
		return p
	}
	bufPoolsMu.Lock()
	defer bufPoolsMu.Unlock()
	if p = bufPools[size]; p == nil {
		p = &sync.Pool{New: func() any {
			b := make([]byte, size)
			return &b
		}}
		bufPools[size] = p
	}
	return p
}

// pooled is a buffer from bufPools with the box it travels in, so that
// giving it back allocates nothing.
type pooled struct {
	box *[]byte
}

// get returns a buffer of size bytes from the pool.
func (p *pooled) get(size int) []byte {
	p.box = bufPool(size).Get().(*[]byte)
	return *p.box
}

// put gives the buffer back; it must not be used afterwards.
func (p *pooled) put() {
	if p.box == nil {
		return
	}
	bufPool(cap(*p.box)).Put(p.box)
	p.box = nil
}

// buffered is the number of unread bytes.
func (b *lazyBuf) buffered() int { return b.w - b.r }

// release gives an empty buffer back to the pool.
func (b *lazyBuf) release() {
	if b.buf != nil && b.r == b.w {
		b.mem.put()
		b.buf, b.r, b.w = nil, 0, 0
	}
}

// target returns the slice the next read goes into: direct if the caller
// gave one, else the space after the buffered bytes, taking a buffer from
// the pool if there is none.
func (b *lazyBuf) target() []byte {
	if b.direct != nil {
		return b.direct
	}
	if b.buf == nil {
		b.buf = b.mem.get(b.size)
	}
	return b.buf[b.w:]
}

// readSrc reads from src into direct, or into the buffer when direct is
// nil. With a descriptor, the buffer is taken only when the read is
// attempted, and given back when the read would block, before waiting for
// the poller (and taken again after).
func (b *lazyBuf) readSrc(direct []byte) (int, error) {
	b.direct = direct
	defer func() { b.direct = nil }()
	if b.raw == nil {
		p := b.target()
		// As bufio: a reader that keeps returning nothing is an error.
		for range 100 {
			if n, err := b.src.Read(p); n > 0 || err != nil {
				return n, err
			}
		}
		return 0, io.ErrNoProgress
	}
	b.n, b.rerr = 0, nil
	err := b.raw.Read(b.rawRead)
	n, rerr := b.n, b.rerr
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

// rawReadFunc is the body of RawConn.Read; it is bound once (the rawRead
// field) so a read allocates no closure.
func (b *lazyBuf) rawReadFunc(fd uintptr) bool {
	p := b.target()
	for {
		b.n, b.rerr = syscall.Read(int(fd), p)
		if b.rerr != syscall.EINTR {
			break
		}
	}
	if b.rerr == syscall.EAGAIN {
		if b.direct == nil {
			b.release()
		}
		return false // wait until readable, then call again
	}
	return true
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
	n, err := b.readSrc(nil)
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

// skip is discard that keeps the buffer even when it is now empty, so a
// slice of the skipped bytes stays valid until the next read (NextFrame).
func (b *lazyBuf) skip(n int) {
	b.r += n
}

// Read implements io.Reader for io.ReadFull: buffered bytes first; a read
// at least as large as the buffer goes straight into p, as bufio does.
func (b *lazyBuf) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.r == b.w {
		if len(p) >= b.size {
			return b.readSrc(p)
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
