// Package stream carries a byte stream in both directions over an
// established GSS-API context, as records on the gss-sample framing
// (docs/stream.md describes every byte).
//
// After context establishment each direction is a sequence of records. A
// record is one frame
//
//	flags:1 | length:4 (big-endian) | body
//
// with flags FlagsSealed (DATA|WRAPPED|ENCRYPTED, 0x64), or FlagsIntegrity
// (DATA|WRAPPED, 0x24) where integrity-only protection is allowed, and body
// a GSS wrap token (RFC 4121) of the record plaintext
//
//	type:1 | payload
//
// TypeData carries 1..MaxChunk bytes of the stream; TypeEOF (empty payload)
// ends the sender's direction (half-close); TypeError carries a UTF-8
// reason of at most MaxReason bytes and aborts the session. The type byte
// is inside the wrap token, so end of stream and abort are authenticated and
// sequenced: a network attacker can cut the connection but cannot make a
// truncated stream look complete.
//
// A Conn is the stream over one connection and context, for either role.
// Relay copies between a Conn and a plain connection with half-close
// propagation and one chunk in flight per direction.
package stream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// MaxChunk is the largest DATA payload of one record. Write splits longer
// writes; a receiver refuses a longer (or empty) DATA payload.
const MaxChunk = 16384

// MaxReason is the largest ERROR reason, in bytes.
const MaxReason = 1024

// Record types: the first plaintext byte of a record.
const (
	TypeData  byte = 0x00
	TypeEOF   byte = 0x01
	TypeError byte = 0x02
)

// Frame flags of a record.
const (
	FlagsSealed    = wire.FlagData | wire.FlagWrapped | wire.FlagEncrypted // 0x64
	FlagsIntegrity = wire.FlagData | wire.FlagWrapped                      // 0x24
)

// wrapOverhead bounds what a wrap token adds to its plaintext: the 16-byte
// header, a 16-byte confounder, the 16-byte encrypted header copy and a
// MAC of at most 24 bytes (aes256-cts-hmac-sha384-192), rounded up.
const wrapOverhead = 128

// MaxRecordBody is the largest record frame body a receiver reads; a longer
// one is refused from its header, before it is read.
const MaxRecordBody = 1 + MaxChunk + wrapOverhead

// PeerError is returned by Read when the peer aborted the session with an
// ERROR record.
type PeerError struct {
	Reason string
}

// Error implements error.
func (e *PeerError) Error() string { return "stream: peer aborted: " + e.Reason }

// ProtocolError is a record that breaks the protocol: wrong flags, a bad
// type, a payload of the wrong size, a record after EOF. The session is
// over.
type ProtocolError struct {
	Msg string
}

// Error implements error.
func (e *ProtocolError) Error() string { return "stream: protocol error: " + e.Msg }

// ErrTruncated is returned by Read when the connection ends before the
// peer's EOF record: the stream was cut, not ended.
var ErrTruncated = errors.New("stream: connection closed before the peer's EOF record (truncated)")

// ErrClosedWrite is returned by Write after CloseWrite or Abort.
var ErrClosedWrite = errors.New("stream: write after end of stream")

// Config chooses the protection of records.
type Config struct {
	// IntegrityOnly sends records integrity-protected only (flags 0x24).
	// Default false: sealed (0x64).
	IntegrityOnly bool
	// AllowIntegrity accepts integrity-only records from the peer.
	// Default false: a record that is not sealed is a protocol error.
	AllowIntegrity bool
}

// Conn is a bidirectional byte stream over an established context. Read
// and Write may be called concurrently with each other (one reader, one
// writer); Close may be called at any time.
type Conn struct {
	nc  net.Conn
	r   *wire.Reader
	ctx *gss.Context
	cfg Config

	rmu     sync.Mutex
	pending []byte // unread DATA payload, in rbuf
	rbuf    []byte // plaintext buffer of the last record
	rerr    error  // sticky: io.EOF after the peer's EOF, else the failure
	eofIn   bool
	haveSeq bool
	lastSeq uint64

	wmu     sync.Mutex
	eofOut  bool    // EOF or ERROR sent
	werr    error   // sticky write failure
	typ     [1]byte // the record type, the token's first plaintext part
	frame   []byte  // frame buffer: sealed records waiting for one write
	batched int     // records in frame

	recordsIn, recordsOut atomic.Int64
	bytesIn, bytesOut     atomic.Int64 // record frames as on the wire, headers included
	activity              atomic.Int64 // counts successful reads and writes (Relay's idle check)
}

// New returns the stream over nc and the established context ctx. r reads
// frames from nc (it may hold bytes read ahead during establishment); nil
// makes a new one. Client, Relay and the worker use it once the last
// context token has been exchanged.
func New(nc net.Conn, r *wire.Reader, ctx *gss.Context, cfg Config) (*Conn, error) {
	if ctx == nil {
		return nil, errors.New("stream: no context")
	}
	if r == nil {
		r = wire.NewReader(nc, 2*(wire.HeaderSize+MaxRecordBody))
	}
	return &Conn{nc: nc, r: r, ctx: ctx, cfg: cfg}, nil
}

// Context returns the stream's security context.
func (c *Conn) Context() *gss.Context { return c.ctx }

// NetConn returns the underlying connection.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Read reads stream bytes. It returns io.EOF after the peer's EOF record,
// a *PeerError after an ERROR record, ErrTruncated when the connection
// ended without EOF, a *ProtocolError or a *gss.Error (unwrap failure:
// bad MAC, replay, out of sequence) otherwise. Every error is final.
func (c *Conn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if err := c.readRecord(); err != nil {
			c.rerr = err
			return 0, err
		}
	}
	n := copy(p, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next returns the unread DATA payload (up to one record's) and consumes
// it, as Read does but without copying: Relay holds no buffer of its own
// between records. The slice is the caller's.
func (c *Conn) next() ([]byte, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	for len(c.pending) == 0 {
		if c.rerr != nil {
			return nil, c.rerr
		}
		if err := c.readRecord(); err != nil {
			c.rerr = err
			return nil, err
		}
	}
	b := c.pending
	c.pending = nil
	return b, nil
}

// readRecord reads one record; DATA lands in pending.
func (c *Conn) readRecord() error {
	f, err := c.r.NextFrame(MaxRecordBody)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return ErrTruncated
		}
		var tl *wire.TooLargeError
		if errors.As(err, &tl) {
			return &ProtocolError{Msg: fmt.Sprintf("record of %d bytes exceeds %d", tl.Len, tl.Max)}
		}
		return fmt.Errorf("stream: reading a record: %w", err)
	}
	c.recordsIn.Add(1)
	c.bytesIn.Add(int64(wire.HeaderLen(f.Flags) + len(f.Body)))
	c.activity.Add(1)
	typ, payload, err := c.open(f)
	if err != nil {
		return err
	}
	switch typ {
	case TypeData:
		c.pending = payload
		return nil
	case TypeEOF:
		c.eofIn = true
		return io.EOF
	default: // TypeError; open refuses every other type
		return &PeerError{Reason: string(payload)}
	}
}

// open checks a record frame's flags, unwraps its body and parses the
// plaintext.
func (c *Conn) open(f wire.Frame) (typ byte, payload []byte, err error) {
	switch {
	case f.Flags == FlagsSealed:
	case f.Flags == FlagsIntegrity && c.cfg.AllowIntegrity:
	default:
		return 0, nil, &ProtocolError{Msg: fmt.Sprintf("record flags %#02x, want %#02x", f.Flags, FlagsSealed)}
	}
	// f.Body is only valid until the next frame; the plaintext goes to
	// c.rbuf, which is reused once pending (a slice of it) is consumed.
	pt, conf, err := c.ctx.AppendUnwrap(c.rbuf[:0], f.Body)
	if cap(pt) > cap(c.rbuf) {
		c.rbuf = pt[:0]
	}
	if err != nil {
		return 0, nil, fmt.Errorf("stream: unwrap: %w", err)
	}
	if conf != (f.Flags == FlagsSealed) {
		return 0, nil, &ProtocolError{Msg: fmt.Sprintf("record flags %#02x do not match its wrap token (sealed: %t)", f.Flags, conf)}
	}
	// The token verified, so its sequence number is the peer's. Records
	// are consecutive whatever the context's replay and sequence flags.
	seq := binary.BigEndian.Uint64(f.Body[8:16])
	if c.haveSeq && seq != c.lastSeq+1 {
		return 0, nil, &ProtocolError{Msg: fmt.Sprintf("record sequence number %d after %d", seq, c.lastSeq)}
	}
	c.haveSeq, c.lastSeq = true, seq
	return ParseRecord(pt)
}

// ParseRecord splits a record plaintext into its type and payload and
// checks the payload's size for the type.
func ParseRecord(pt []byte) (typ byte, payload []byte, err error) {
	if len(pt) == 0 {
		return 0, nil, &ProtocolError{Msg: "empty record plaintext"}
	}
	typ, payload = pt[0], pt[1:]
	switch typ {
	case TypeData:
		if len(payload) == 0 || len(payload) > MaxChunk {
			return 0, nil, &ProtocolError{Msg: fmt.Sprintf("DATA payload of %d bytes, want 1 to %d", len(payload), MaxChunk)}
		}
	case TypeEOF:
		if len(payload) != 0 {
			return 0, nil, &ProtocolError{Msg: fmt.Sprintf("EOF with a payload of %d bytes", len(payload))}
		}
	case TypeError:
		if len(payload) > MaxReason {
			return 0, nil, &ProtocolError{Msg: fmt.Sprintf("ERROR reason of %d bytes exceeds %d", len(payload), MaxReason)}
		}
		if !utf8.Valid(payload) {
			return 0, nil, &ProtocolError{Msg: "ERROR reason is not UTF-8"}
		}
	default:
		return 0, nil, &ProtocolError{Msg: fmt.Sprintf("unknown record type %#02x", typ)}
	}
	return typ, payload, nil
}

// Write sends p as DATA records of at most MaxChunk bytes each, up to
// writeBatch records per write to the connection. A write error leaves the
// count at the records written before the failed batch.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.eofOut {
		return 0, ErrClosedWrite
	}
	n, batched := 0, 0
	for len(p) > 0 {
		k := min(len(p), MaxChunk)
		if err := c.appendRecord(TypeData, p[:k]); err != nil {
			return n, err
		}
		batched += k
		p = p[k:]
		if c.batched == writeBatch || len(p) == 0 {
			if err := c.flush(); err != nil {
				return n, err
			}
			n, batched = n+batched, 0
		}
	}
	return n, nil
}

// writeBatch is how many records Write seals before one write to the
// connection: a 64 KiB write is one system call, not four, and the frame
// buffer stays bounded (writeBatch frames of at most HeaderSize +
// MaxRecordBody bytes).
const writeBatch = 4

// CloseWrite sends the EOF record: the end of the stream in this
// direction. Reading goes on until the peer's EOF.
func (c *Conn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if c.eofOut {
		return ErrClosedWrite
	}
	err := c.send(TypeEOF, nil)
	c.eofOut = true
	return err
}

// Abort sends an ERROR record with reason (cut to MaxReason bytes on a
// character boundary; invalid UTF-8 replaced) and ends writing. The
// caller then closes the connection.
func (c *Conn) Abort(reason string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if c.eofOut {
		return ErrClosedWrite
	}
	err := c.send(TypeError, []byte(truncateReason(reason)))
	c.eofOut = true
	return err
}

// truncateReason makes reason valid UTF-8 of at most MaxReason bytes.
func truncateReason(reason string) string {
	reason = string([]rune(reason)) // invalid bytes become U+FFFD
	if len(reason) <= MaxReason {
		return reason
	}
	cut := MaxReason
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}

// send wraps and writes one record; c.wmu is held.
func (c *Conn) send(typ byte, payload []byte) error {
	if err := c.appendRecord(typ, payload); err != nil {
		return err
	}
	return c.flush()
}

// appendRecord seals one record straight into c.frame, after the frames
// already there: the payload is copied once, into the token, and
// encrypted in place. c.wmu is held.
func (c *Conn) appendRecord(typ byte, payload []byte) error {
	flags := FlagsSealed
	if c.cfg.IntegrityOnly {
		flags = FlagsIntegrity
	}
	start := len(c.frame)
	f := append(c.frame, flags, 0, 0, 0, 0)
	c.typ[0] = typ
	f, err := c.ctx.AppendWrap(f, !c.cfg.IntegrityOnly, c.typ[:], payload)
	if err != nil {
		c.werr = fmt.Errorf("stream: wrap: %w", err)
		return c.werr
	}
	binary.BigEndian.PutUint32(f[start+1:start+wire.HeaderSize], uint32(len(f)-start-wire.HeaderSize))
	c.frame = f
	c.batched++
	return nil
}

// flush writes the frames in c.frame in one write; c.wmu is held.
func (c *Conn) flush() error {
	_, err := c.nc.Write(c.frame)
	n, records := len(c.frame), c.batched
	c.frame, c.batched = c.frame[:0], 0
	if err != nil {
		c.werr = fmt.Errorf("stream: write: %w", err)
		return c.werr
	}
	c.recordsOut.Add(int64(records))
	c.bytesOut.Add(int64(n))
	c.activity.Add(1)
	return nil
}

// Done reports whether the session ended cleanly: both EOF records sent
// and received, and nothing arrived after the peer's EOF (bytes already
// buffered behind it). A session that did not is an error.
func (c *Conn) Done() error {
	c.rmu.Lock()
	eofIn, rerr := c.eofIn, c.rerr
	trailing := len(c.pending) > 0 || (eofIn && len(c.r.Buffered()) > 0)
	c.rmu.Unlock()
	c.wmu.Lock()
	eofOut, werr := c.eofOut, c.werr
	c.wmu.Unlock()
	switch {
	case werr != nil:
		return werr
	case rerr != nil && rerr != io.EOF:
		return rerr
	case !eofIn:
		return errors.New("stream: the peer's EOF was not received")
	case !eofOut:
		return errors.New("stream: our EOF was not sent")
	case trailing:
		return &ProtocolError{Msg: "record after EOF"}
	}
	return nil
}

// Close closes the connection. It does not send EOF: a stream closed
// without CloseWrite is truncated for the peer.
func (c *Conn) Close() error { return c.nc.Close() }

// Stats are a Conn's counters.
type Stats struct {
	RecordsIn, RecordsOut int64
	BytesIn, BytesOut     int64 // record frames, headers included
}

// Stats returns the records and wire bytes so far.
func (c *Conn) Stats() Stats {
	return Stats{
		RecordsIn: c.recordsIn.Load(), RecordsOut: c.recordsOut.Load(),
		BytesIn: c.bytesIn.Load(), BytesOut: c.bytesOut.Load(),
	}
}
