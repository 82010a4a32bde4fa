// Package wire implements the framing of MIT krb5's gss-sample protocol
// (src/appl/gss-sample/gss-misc.c send_token and recv_token), which is what
// MIT gss-client and gss-server speak and what this daemon speaks with its
// clients.
//
// A frame is
//
//	flags:1 | length:4 (big-endian) | body:length
//
// except in the old "v1" framing, where there is no flag byte at all and a
// frame is just length:4 | body. A receiver cannot know in advance which of
// the two it gets; MIT's recv_token reads one byte as the flag byte and, if
// it is 0x00, takes it as the most significant byte of a v1 length and reads
// only three more length bytes. That works because no flagged frame has
// flags 0 and no v1 body is 16 MiB or longer. This package does the same:
// a Frame with Flags == 0 is a v1 frame, on input and on output.
//
// MIT places no upper bound on the length and mallocs whatever arrives.
// Reader.ReadFrame takes the largest acceptable body length from its caller
// and refuses a longer frame before reading or allocating its body.
//
// The package knows nothing about GSS-API: bodies are opaque bytes.
package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Flag bits of the first frame byte (gss-misc.h). The first four are
// message types and the last four modifiers; MIT ORs them freely, e.g. a
// default gss-client DATA frame carries 0xE4 (DATA|WRAPPED|ENCRYPTED|
// SEND_MIC) and the session opens with 0x11 (NOOP|CONTEXT_NEXT).
const (
	// FlagNoop (TOKEN_NOOP) marks an empty "nothing more" frame: it opens a
	// session (with FlagContextNext), answers a DATA frame that did not ask
	// for a MIC, and ends the session.
	FlagNoop byte = 0x01
	// FlagContext (TOKEN_CONTEXT) marks a context-establishment token, in
	// both directions.
	FlagContext byte = 0x02
	// FlagData (TOKEN_DATA) marks an application message from the client.
	FlagData byte = 0x04
	// FlagMIC (TOKEN_MIC) marks a MIC token sent back by the server.
	FlagMIC byte = 0x08
	// FlagContextNext (TOKEN_CONTEXT_NEXT), together with FlagNoop, says
	// that context-establishment tokens follow.
	FlagContextNext byte = 0x10
	// FlagWrapped (TOKEN_WRAPPED) says a DATA body is a gss_wrap token.
	FlagWrapped byte = 0x20
	// FlagEncrypted (TOKEN_ENCRYPTED) says the client asked for
	// confidentiality when it wrapped the DATA body.
	FlagEncrypted byte = 0x40
	// FlagSendMIC (TOKEN_SEND_MIC) asks the server to reply with a MIC of
	// the plaintext.
	FlagSendMIC byte = 0x80
)

// HeaderSize is the size of a flagged frame header: one flag byte and a
// four-byte length. A v1 frame header is one byte shorter.
const HeaderSize = 5

// HeaderLen returns the size of the header of a frame with these flags on
// the wire: HeaderSize, or HeaderSize-1 for a v1 frame (flags 0), which
// has no flag byte.
func HeaderLen(flags byte) int {
	if flags == 0 {
		return HeaderSize - 1
	}
	return HeaderSize
}

// MaxBodyLen is the largest body length the framing can express (the
// length field is 32 bits wide). A v1 frame can only carry bodies shorter
// than 1<<24 bytes, because its first byte must be 0x00 to be recognised.
const MaxBodyLen = 1<<32 - 1

// maxV1BodyLen is the largest body a v1 frame can carry and still be told
// apart from a flagged frame by its receiver.
const maxV1BodyLen = 1<<24 - 1

// Frame is one gss-sample frame. Flags == 0 means a v1 frame (no flag byte
// on the wire).
type Frame struct {
	Flags byte
	Body  []byte
}

// IsV1 reports whether f uses the v1 framing, which has no flag byte.
func (f Frame) IsV1() bool { return f.Flags == 0 }

// TooLargeError is returned by Reader.ReadFrame when a frame announces a
// body longer than the caller's limit. The body has not been read; the
// stream is no longer aligned on a frame boundary and must be closed.
type TooLargeError struct {
	Len uint64 // body length announced by the frame header
	Max int    // the limit that was exceeded
}

// Error implements error.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("wire: frame body of %d bytes exceeds the limit of %d", e.Len, e.Max)
}

// ErrV1TooLarge is returned by WriteFrame when a v1 frame (flags 0) is
// asked to carry a body of 1<<24 bytes or more: its
// first length byte would be non-zero and the receiver would mistake it
// for a flag byte (gss-misc.c recv_token).
var ErrV1TooLarge = errors.New("wire: v1 frame body must be shorter than 16 MiB")

// ErrBodyTooLarge is returned by WriteFrame when a body does not fit the
// 32-bit length field.
var ErrBodyTooLarge = errors.New("wire: frame body longer than 4 GiB-1 bytes")

// bodyChunk bounds the memory committed to a frame body before its bytes
// have arrived. A peer that announces a large (but permitted) length and
// then sends nothing costs at most this much per connection; bodies larger
// than this grow geometrically as data actually arrives.
const bodyChunk = 64 << 10

// Reader reads frames from a byte stream through its own read buffer,
// which holds memory only while it holds bytes (lazyBuf).
//
// The first error is sticky: after any failure (including a TooLargeError
// or a read timeout) the stream position inside a frame is unknown, so
// every later ReadFrame returns the same error. A Reader is not safe for
// concurrent use.
type Reader struct {
	b       *lazyBuf
	err     error  // first error, returned by every later call
	scratch pooled // NextFrame's body buffer, held until the next call
}

// NewReader returns a Reader reading from r through a buffer of bufSize
// bytes (at least 16). The buffer holds bytes read ahead of the current
// frame; Buffered returns them. It is taken from a pool when bytes arrive
// and given back when they are consumed, so an idle Reader on a socket
// holds none.
func NewReader(r io.Reader, bufSize int) *Reader {
	return &Reader{b: newLazyBuf(r, bufSize)}
}

// ReadFrame reads the next frame. Its body is a new slice owned by the
// caller, never reused by the Reader.
//
// A body longer than maxBody (negative counts as 0) is refused with a
// *TooLargeError before any of it is read or allocated. A stream that ends
// cleanly before the first byte of a frame returns io.EOF; one that ends
// inside a frame returns io.ErrUnexpectedEOF.
func (r *Reader) ReadFrame(maxBody int) (Frame, error) {
	return r.next(maxBody, false)
}

// NextFrame is ReadFrame without an allocation per frame: the body is valid
// only until the next call on r. It aliases r's read buffer when the frame
// fits in it, else a pooled scratch buffer (frames up to bodyChunk; larger
// ones are read as ReadFrame reads them). Either buffer is held only until
// the next call, which gives it back before waiting for bytes, so an idle
// Reader still holds none. The stream data path opens each record from it,
// one record at a time.
func (r *Reader) NextFrame(maxBody int) (Frame, error) {
	return r.next(maxBody, true)
}

func (r *Reader) next(maxBody int, view bool) (Frame, error) {
	r.scratch.put()
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.readFrame(maxBody, view)
	if err != nil {
		r.err = err
		return Frame{}, err
	}
	return f, nil
}

// scratchSize is the pooled size class of a NextFrame body of n bytes:
// the next power of two from 4 KiB, so a few pools serve every record size.
func scratchSize(n int) int {
	size := 4 << 10
	for size < n {
		size <<= 1
	}
	return size
}

func (r *Reader) readFrame(maxBody int, view bool) (Frame, error) {
	maxBody = max(maxBody, 0)
	first, err := r.b.readByte()
	if err != nil {
		return Frame{}, err // io.EOF here means a clean end between frames
	}
	flags, hdrLen := first, 4
	if first == 0 {
		// v1: the zero byte is the top byte of the length (recv_token), so
		// only the three low bytes follow.
		flags, hdrLen = 0, 3
	}
	// Peek+Discard rather than io.ReadFull into a local array: the array
	// would escape to the heap through the io.Reader interface.
	hdr, err := r.b.peek(hdrLen)
	if err != nil {
		return Frame{}, midFrame(err)
	}
	var n uint64
	for _, b := range hdr {
		n = n<<8 | uint64(b)
	}
	r.b.discard(hdrLen)
	if n > uint64(maxBody) {
		return Frame{}, &TooLargeError{Len: n, Max: maxBody}
	}
	var body []byte
	switch {
	case !view || n > bodyChunk:
		body, err = r.readBody(int(n))
	case int(n) <= r.b.size:
		// In place: the bytes stay in the read buffer, which is not given
		// back until the next call (skip, not discard).
		if body, err = r.b.peek(int(n)); err == nil {
			r.b.skip(int(n))
		}
	default:
		// A pooled buffer of a size class: the body has been announced
		// but not received, so this commits at most bodyChunk per Reader,
		// and only until the next call.
		body = r.scratch.get(scratchSize(int(n)))[:n]
		_, err = io.ReadFull(r.b, body)
	}
	if err != nil {
		return Frame{}, midFrame(err)
	}
	return Frame{Flags: flags, Body: body}, nil
}

// readBody reads exactly n bytes, committing memory only as data arrives
// (see bodyChunk). Bodies up to bodyChunk take a single allocation of
// exactly n bytes.
func (r *Reader) readBody(n int) ([]byte, error) {
	body := make([]byte, min(n, bodyChunk))
	if _, err := io.ReadFull(r.b, body); err != nil {
		return nil, err
	}
	for len(body) < n {
		// Double, capped at n: at most log2(n/bodyChunk) copies, and the
		// final slice has no spare capacity beyond n.
		grown := make([]byte, len(body), min(2*len(body), n))
		copy(grown, body)
		body = grown
		m, err := io.ReadFull(r.b, body[len(body):cap(body)])
		body = body[:len(body)+m]
		if err != nil {
			return nil, err
		}
	}
	return body, nil
}

// midFrame converts a clean EOF inside a frame into io.ErrUnexpectedEOF.
func midFrame(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Buffered returns a copy of the bytes already read from the underlying
// reader but not yet consumed by ReadFrame, or nil if there are none.
//
// The listener calls it after the last context token: a client running
// without mutual authentication sends its first DATA frame right behind its
// AP-REQ, and those bytes travel with the handoff to the worker (ARCHITECTURE.md §6).
func (r *Reader) Buffered() []byte {
	if r.b.buffered() == 0 {
		return nil
	}
	return append([]byte(nil), r.b.buf[r.b.r:r.b.w]...)
}

// AppendFrame appends the encoding of one frame to dst and returns the
// extended slice. flags 0 produces the v1 layout (no flag byte), exactly as
// gss-misc.c send_token does.
//
// AppendFrame does not check lengths: a body longer than MaxBodyLen, or a
// v1 body of 1<<24 bytes or more, produces a frame its receiver will
// misread. WriteFrame checks both.
func AppendFrame(dst []byte, flags byte, body []byte) []byte {
	if flags != 0 {
		dst = append(dst, flags)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// checkLen reports whether body fits a frame with these flags.
func checkLen(flags byte, body []byte) error {
	if uint64(len(body)) > MaxBodyLen {
		return ErrBodyTooLarge
	}
	if flags == 0 && len(body) > maxV1BodyLen {
		return ErrV1TooLarge
	}
	return nil
}

// pooledFrameMax bounds the frame buffers kept in framePool; larger frames
// get a one-off buffer so the pool never pins big allocations.
const pooledFrameMax = 64 << 10

var framePool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// WriteFrame writes one frame to w with exactly one Write call.
//
// One write per frame matters on TCP: MIT's send_token writes the header
// and the body separately, and with Nagle's algorithm against the peer's
// delayed ACK each such frame can stall for tens of milliseconds. A short
// write without an error is reported as io.ErrShortWrite.
func WriteFrame(w io.Writer, flags byte, body []byte) error {
	if err := checkLen(flags, body); err != nil {
		return err
	}
	size := HeaderSize + len(body)
	if size > pooledFrameMax {
		return write(w, AppendFrame(make([]byte, 0, size), flags, body))
	}
	bp := framePool.Get().(*[]byte)
	buf := AppendFrame((*bp)[:0], flags, body)
	err := write(w, buf)
	// io.Writer implementations must not retain buf, so it can be reused.
	*bp = buf[:0]
	framePool.Put(bp)
	return err
}

func write(w io.Writer, b []byte) error {
	n, err := w.Write(b)
	if err != nil {
		return fmt.Errorf("wire: writing frame: %w", err)
	}
	if n != len(b) {
		return fmt.Errorf("wire: writing frame: %w", io.ErrShortWrite)
	}
	return nil
}
