package handoff

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// Version is the protocol version, carried in the first byte of every
// message. Its high nibble is a fixed marker (0xA) so that a stray writer
// on the channel is recognised at once; its low nibble is the version
// proper. Both sides come from the same build, so there is no negotiation:
// a different byte is refused.
const Version byte = 0xA1

// MaxMessageSize is the largest message, header included, that Send will
// send and Recv will accept. A HANDOFF carries a sealed context token (about
// 1.2 KB, more with delegated credentials or authorization data) and the
// read-ahead bytes of the client connection; 256 KiB leaves ample room while
// keeping the per-channel receive buffer small. Pair sizes the socket
// buffers so that one message of this size always fits.
const MaxMessageSize = 256 << 10

// SealKeySize is the size of the context-token seal key in HELLO
// (AES-256-GCM, ARCHITECTURE.md §5).
const SealKeySize = 32

// Type is the message type, the second byte of every message.
type Type uint8

// Message types. The direction of each is fixed by the protocol, but the
// codec accepts any type in either direction; the callers enforce order.
const (
	TypeHello   Type = 1 // parent → worker, first message
	TypeReady   Type = 2 // worker → parent, after HELLO
	TypeHandoff Type = 3 // parent → worker, with one fd
	TypeAck     Type = 4 // worker → parent
	TypeDrain   Type = 5 // parent → worker
	TypeBye     Type = 6 // worker → parent, last message
	// TypeSessionEnd (worker → parent) reports a finished session's
	// counters and the worker's new load.
	TypeSessionEnd Type = 7
	// TypePing (parent → worker) asks a worker that has sent nothing for a
	// while whether it still reads its channel; TypePong (worker →
	// parent) answers it. Both are additive: a parent that never sends
	// PING works with any worker.
	TypePing Type = 8
	TypePong Type = 9
)

// String returns the protocol name of the type, e.g. "HANDOFF".
func (t Type) String() string {
	switch t {
	case TypeHello:
		return "HELLO"
	case TypeReady:
		return "READY"
	case TypeHandoff:
		return "HANDOFF"
	case TypeAck:
		return "ACK"
	case TypeDrain:
		return "DRAIN"
	case TypeBye:
		return "BYE"
	case TypeSessionEnd:
		return "SESSION_END"
	case TypePing:
		return "PING"
	case TypePong:
		return "PONG"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Errors returned by Send and Recv, usually wrapped with detail; test them
// with errors.Is.
var (
	// ErrMalformed: a message that is truncated, has trailing bytes, an
	// unknown type or a bad version byte.
	ErrMalformed = errors.New("handoff: malformed message")
	// ErrFDCount: a message arrived with the wrong number of descriptors
	// (HANDOFF needs exactly one, every other type none), or a HANDOFF to
	// send has no descriptor. Received descriptors are closed.
	ErrFDCount = errors.New("handoff: wrong number of file descriptors")
	// ErrTruncated: the kernel cut the message (MSG_TRUNC) or its control
	// data (MSG_CTRUNC, e.g. under RLIMIT_NOFILE pressure, when a passed
	// descriptor is silently dropped while the bytes still arrive).
	ErrTruncated = errors.New("handoff: message truncated by the kernel")
	// ErrTooLarge: a message to send would exceed MaxMessageSize.
	ErrTooLarge = errors.New("handoff: message too large")
)

// Message is one of *Hello, *Ready, *Handoff, *Ack, *Drain, *Bye,
// *SessionEnd, *Ping or *Pong.
type Message interface {
	// Type returns the message type.
	Type() Type
	// appendBody appends the type-specific fields; the set of messages is
	// closed.
	appendBody(b []byte) ([]byte, error)
}

// KeyBytes holds the raw bytes of the key that seals interprocess context
// tokens (a gss.SealKey) as HELLO carries them. It never formats its bytes
// (fmt.Formatter), so a Hello can be logged with %v or %+v without
// leaking it.
type KeyBytes [SealKeySize]byte

// Format implements fmt.Formatter and never prints the key bytes.
func (KeyBytes) Format(f fmt.State, _ rune) { fmt.Fprint(f, "KeyBytes(redacted)") }

// Hello is the first message from the parent: who the worker is and what it
// needs before it may import contexts. The protocol version is the header
// byte of every message (Version), so it is not repeated here. Limits of 0
// mean "no limit" or "the worker's default", as the worker documents.
type Hello struct {
	WorkerID   uint32 // the parent's index for this worker, in logs and metrics
	Generation uint32 // configuration generation, bumped on reload
	KeyID      uint8  // identifies Key inside sealed tokens (rotation)
	Key        KeyBytes

	MaxSessions      uint32 // sessions the worker may serve at once
	MaxMessageBytes  uint32 // largest client DATA body
	IdleTimeoutMS    uint32 // idle session timeout, milliseconds
	ImportDeadlineMS uint32 // token lifetime between export and import, milliseconds
}

// Type implements Message.
func (*Hello) Type() Type { return TypeHello }

// Zero overwrites the seal key. The worker calls it once the key is loaded
// into its importer; Send does the same for its own copy in the send buffer.
func (h *Hello) Zero() { clear(h.Key[:]) }

const helloLen = 4 + 4 + 1 + SealKeySize + 4*4

func (h *Hello) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint32(b, h.WorkerID)
	b = binary.BigEndian.AppendUint32(b, h.Generation)
	b = append(b, h.KeyID)
	b = append(b, h.Key[:]...)
	b = binary.BigEndian.AppendUint32(b, h.MaxSessions)
	b = binary.BigEndian.AppendUint32(b, h.MaxMessageBytes)
	b = binary.BigEndian.AppendUint32(b, h.IdleTimeoutMS)
	b = binary.BigEndian.AppendUint32(b, h.ImportDeadlineMS)
	return b, nil
}

// Ready tells the parent that the worker processed HELLO and takes
// handoffs.
type Ready struct {
	PID uint32 // the worker's process id, to cross-check the parent's view
}

// Type implements Message.
func (*Ready) Type() Type { return TypeReady }

func (r *Ready) appendBody(b []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint32(b, r.PID), nil
}

// Handoff passes one established client connection to a worker: the sealed
// context token, the bytes already read from the client past the last
// context token, the client's addresses when a trusted PROXY header gave
// them, and the connection's descriptor (SCM_RIGHTS).
//
// Descriptor ownership: Send never closes the descriptor it passes. The
// kernel gives the worker its own reference, but the parent keeps its copy
// until the worker's ACK, so that a worker dying before the ACK loses no
// connection (ARCHITECTURE.md §6). Recv hands the received *os.File to the caller,
// who must close it (usually right after net.FileConn).
type Handoff struct {
	ID        uint64 // unique per parent instance; echoed by the ACK
	Token     []byte // sealed context token; contains keys, zero after use
	ReadAhead []byte // client bytes to be consumed before the socket's

	// Client and Server are the connection's addresses as a trusted PROXY
	// header names them (the client's source and the address it
	// connected to, i.e. the balancer's front), which the socket's own
	// peer (the balancer) does not show. Both valid, or both zero: the
	// worker then uses the socket's addresses. On the wire they are an
	// address block after ReadAhead: a format byte (AddrNone, AddrTCP4 or
	// AddrTCP6, the only formats defined; any other is refused) and, for
	// the latter two, client IP, server IP, client port u16, server port
	// u16. Zones are not carried.
	Client, Server netip.AddrPort

	// File is the client connection's descriptor. Recv always sets it (it
	// has FD_CLOEXEC set, and the caller must close it). For Send, set
	// File or FD.
	File *os.File
	// FD is an alternative to File for Send: the number of a descriptor
	// the caller owns and keeps open at least until Send returns (by
	// protocol, until the ACK), e.g. taken from a *net.TCPConn through
	// SyscallConn. 0 means unset: descriptor 0 (stdin) is never a client
	// connection. Recv never sets it.
	FD int
}

// Type implements Message.
func (*Handoff) Type() Type { return TypeHandoff }

// Close closes a received descriptor that will not be used, e.g. after a
// failed import. It is a no-op when File is nil.
func (h *Handoff) Close() error {
	if h.File == nil {
		return nil
	}
	err := h.File.Close()
	h.File = nil
	return err
}

// Formats of the HANDOFF address block (Handoff.Client, Handoff.Server).
const (
	AddrNone byte = 0 // no addresses: the worker uses the socket's
	AddrTCP4 byte = 4 // IPv4 client [4], server [4], ports u16 u16
	AddrTCP6 byte = 6 // IPv6 client [16], server [16], ports u16 u16
)

// ErrAddrs: a HANDOFF to send has one of Client and Server valid but not
// the other.
var ErrAddrs = errors.New("handoff: HANDOFF needs both addresses or neither")

func (h *Handoff) appendBody(b []byte) ([]byte, error) {
	// Bound each field before appending so that a huge slice is refused
	// without being copied; Send checks the total again.
	if len(h.Token) > MaxMessageSize || len(h.ReadAhead) > MaxMessageSize {
		return b, fmt.Errorf("%w: HANDOFF token of %d and read-ahead of %d bytes (max message %d)",
			ErrTooLarge, len(h.Token), len(h.ReadAhead), MaxMessageSize)
	}
	if h.Client.IsValid() != h.Server.IsValid() {
		return b, fmt.Errorf("%w: client %v, server %v", ErrAddrs, h.Client, h.Server)
	}
	b = binary.BigEndian.AppendUint64(b, h.ID)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Token)))
	b = append(b, h.Token...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.ReadAhead)))
	b = append(b, h.ReadAhead...)
	return appendAddrs(b, h.Client, h.Server), nil
}

// appendAddrs appends the address block: AddrTCP4 when both addresses are
// IPv4 (an IPv4-mapped IPv6 address counts as IPv4), else AddrTCP6.
func appendAddrs(b []byte, client, server netip.AddrPort) []byte {
	if !client.IsValid() {
		return append(b, AddrNone)
	}
	c, s := client.Addr().Unmap(), server.Addr().Unmap()
	if c.Is4() && s.Is4() {
		c4, s4 := c.As4(), s.As4()
		b = append(b, AddrTCP4)
		b = append(b, c4[:]...)
		b = append(b, s4[:]...)
	} else {
		c16, s16 := c.As16(), s.As16()
		b = append(b, AddrTCP6)
		b = append(b, c16[:]...)
		b = append(b, s16[:]...)
	}
	b = binary.BigEndian.AppendUint16(b, client.Port())
	return binary.BigEndian.AppendUint16(b, server.Port())
}

// addrs reads the address block. It is canonical: AddrTCP6 with two
// IPv4-mapped addresses is refused (appendAddrs writes those as AddrTCP4).
func (d *decoder) addrs() (client, server netip.AddrPort) {
	var c, s netip.Addr
	switch f := d.u8(); {
	case d.bad:
		return
	case f == AddrNone:
		return
	case f == AddrTCP4:
		var c4, s4 [4]byte
		copy(c4[:], d.take(4))
		copy(s4[:], d.take(4))
		c, s = netip.AddrFrom4(c4), netip.AddrFrom4(s4)
	case f == AddrTCP6:
		var c16, s16 [16]byte
		copy(c16[:], d.take(16))
		copy(s16[:], d.take(16))
		c, s = netip.AddrFrom16(c16), netip.AddrFrom16(s16)
		if !d.bad && c.Is4In6() && s.Is4In6() {
			d.fail("HANDOFF address block AddrTCP6 with two IPv4-mapped addresses (not canonical)")
			return
		}
	default:
		d.fail(fmt.Sprintf("HANDOFF address block format %d (want %d, %d or %d)", f, AddrNone, AddrTCP4, AddrTCP6))
		return
	}
	cp, sp := d.u16(), d.u16()
	if d.bad {
		return
	}
	return netip.AddrPortFrom(c, cp), netip.AddrPortFrom(s, sp)
}

// Ack answers one HANDOFF: the worker imported the context and serves the
// session, or it failed and closed the connection. Either way the parent
// may then close its own copy of the descriptor. The worker's load after
// a session ends travels in SessionEnd.
type Ack struct {
	ID     uint64 // the HANDOFF's ID (the parent never assigns 0)
	Status uint32 // 0: imported and serving; else the GSS major status of the failure
	Load   uint32 // sessions the worker is serving now
}

// Type implements Message.
func (*Ack) Type() Type { return TypeAck }

func (a *Ack) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, a.ID)
	b = binary.BigEndian.AppendUint32(b, a.Status)
	b = binary.BigEndian.AppendUint32(b, a.Load)
	return b, nil
}

// Drain tells a worker to finish its sessions, send BYE and exit. The
// parent sends no HANDOFF after it.
type Drain struct{}

// Type implements Message.
func (*Drain) Type() Type { return TypeDrain }

func (*Drain) appendBody(b []byte) ([]byte, error) { return b, nil }

// Ping asks the worker to answer with a Pong of the same Seq. The parent
// sends it to a worker it has heard nothing from for a while
// (ARCHITECTURE.md §6): a worker that no longer reads its channel is
// found without a client having to wait for it.
type Ping struct {
	Seq uint64 // echoed in the Pong
}

// Type implements Message.
func (*Ping) Type() Type { return TypePing }

func (g *Ping) appendBody(b []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(b, g.Seq), nil
}

// Pong answers a Ping.
type Pong struct {
	Seq uint64 // the Ping's
}

// Type implements Message.
func (*Pong) Type() Type { return TypePong }

func (g *Pong) appendBody(b []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint64(b, g.Seq), nil
}

// ByeDrained is the reason a worker gives in its BYE: it received DRAIN
// and every session has ended. It is the only BYE a worker sends; a worker
// that stops for any other reason just exits, and the parent learns why
// from its exit status (ExitFatal: do not respawn).
const ByeDrained uint32 = 1

// Bye is the worker's last message, after a DRAIN, before it exits.
type Bye struct {
	Reason uint32 // ByeDrained; the parent only logs it
}

// Type implements Message.
func (*Bye) Type() Type { return TypeBye }

func (y *Bye) appendBody(b []byte) ([]byte, error) {
	return binary.BigEndian.AppendUint32(b, y.Reason), nil
}

// Results carried by SessionEnd.
const (
	SessionOK     uint32 = 0 // the client ended the session cleanly
	SessionFailed uint32 = 1 // a read, unwrap or write error, an idle timeout or a panic ended it
)

// SessionEnd is sent by the worker when a session ends: the session's
// counters, which the acceptor turns into metrics (the worker has no
// metrics endpoint of its own), and the worker's load after the session,
// which is how the parent learns that the load fell. Counters are totals
// for the session; bytes count frames on the wire, headers included.
//
// A session served by a backend (proxy, exec) also carries a backend
// block (Backend, ARCHITECTURE.md §6); a gss-sample session does not, so
// its SESSION_END keeps the original 56-byte body, which is still
// accepted from any worker.
type SessionEnd struct {
	ID          uint64 // the session's HANDOFF ID; never 0
	Result      uint32 // SessionOK or SessionFailed
	Load        uint32 // sessions the worker is serving now
	DurationUS  uint64 // from import to close, in microseconds
	MessagesIn  uint64 // frames received from the client
	MessagesOut uint64 // frames sent to the client
	BytesIn     uint64
	BytesOut    uint64

	// Backend is the backend block; its Kind is BackendNone (no block
	// on the wire) for gss-sample sessions.
	Backend BackendEnd
}

// BackendKind names the backend that served a session.
type BackendKind uint8

// Backend kinds in a SESSION_END backend block.
const (
	BackendNone  BackendKind = 0 // gss-sample: no backend block
	BackendProxy BackendKind = 1 // proxy to tcp:HOST:PORT or unix:PATH
	BackendExec  BackendKind = 2 // a program per session
)

// String returns "proxy", "exec" or "" for BackendNone.
func (k BackendKind) String() string {
	switch k {
	case BackendNone:
		return ""
	case BackendProxy:
		return "proxy"
	case BackendExec:
		return "exec"
	}
	return fmt.Sprintf("BackendKind(%d)", uint8(k))
}

// ConnectResult is how a proxy session's connection to its backend went.
type ConnectResult uint8

// Connect results. The failures are classified from the dial error:
// ECONNREFUSED is refused, a timeout is timeout, anything else
// (EHOSTUNREACH, ENETUNREACH, a missing unix socket, a name that does not
// resolve) is unreachable.
const (
	ConnectNone        ConnectResult = 0 // not attempted (exec, or the session ended first)
	ConnectOK          ConnectResult = 1
	ConnectRefused     ConnectResult = 2
	ConnectUnreachable ConnectResult = 3
	ConnectTimeout     ConnectResult = 4
)

// String returns "ok", "refused", "unreachable", "timeout" or "" for
// ConnectNone: the log field and metric label values.
func (c ConnectResult) String() string {
	switch c {
	case ConnectNone:
		return ""
	case ConnectOK:
		return "ok"
	case ConnectRefused:
		return "refused"
	case ConnectUnreachable:
		return "unreachable"
	case ConnectTimeout:
		return "timeout"
	}
	return fmt.Sprintf("ConnectResult(%d)", uint8(c))
}

// ExitKind says how an exec session's program ended.
type ExitKind uint8

// Exit kinds: ExitCode's value is the exit status, ExitSignal's the
// number of the signal that killed the program.
const (
	ExitNone   ExitKind = 0 // no program ran (proxy, refused, failed to start)
	ExitCode   ExitKind = 1
	ExitSignal ExitKind = 2
)

// BackendEnd is the backend block of a SESSION_END: what the session did
// with its backend. Byte counts are the plaintext relayed, not records.
type BackendEnd struct {
	Kind        BackendKind
	Connect     ConnectResult // proxy only
	ConnectUS   uint64        // time to connect (or to fail), microseconds; 0 with ConnectNone
	ToBackend   uint64        // plaintext bytes client → backend (the program's stdin)
	FromBackend uint64        // plaintext bytes backend → client (its stdout)
	Exit        ExitKind      // exec only
	ExitValue   uint8         // exit status or signal number; 0 with ExitNone
}

// ExitStatus returns the program's end as a label value: "exit_N" for an
// exit status N, "signal_NAME" (e.g. "signal_SIGTERM", or "signal_N" for
// a signal without a name) for a killed program, "" when none ran.
func (b BackendEnd) ExitStatus() string {
	switch b.Exit {
	case ExitCode:
		return "exit_" + strconv.Itoa(int(b.ExitValue))
	case ExitSignal:
		if name := unix.SignalName(syscall.Signal(b.ExitValue)); name != "" {
			return "signal_" + name
		}
		return "signal_" + strconv.Itoa(int(b.ExitValue))
	}
	return ""
}

// backendBlockVersion is the first byte of a backend block; a later
// layout gets a new version (the parser refuses unknown ones).
const backendBlockVersion = 1

// Body lengths of a SESSION_END: the base, and the backend block after it.
const (
	sessionEndLen   = 8 + 4 + 4 + 5*8
	backendBlockLen = 1 + 1 + 1 + 3*8 + 1 + 1
)

// Type implements Message.
func (*SessionEnd) Type() Type { return TypeSessionEnd }

func (e *SessionEnd) appendBody(b []byte) ([]byte, error) {
	b = binary.BigEndian.AppendUint64(b, e.ID)
	b = binary.BigEndian.AppendUint32(b, e.Result)
	b = binary.BigEndian.AppendUint32(b, e.Load)
	b = binary.BigEndian.AppendUint64(b, e.DurationUS)
	b = binary.BigEndian.AppendUint64(b, e.MessagesIn)
	b = binary.BigEndian.AppendUint64(b, e.MessagesOut)
	b = binary.BigEndian.AppendUint64(b, e.BytesIn)
	b = binary.BigEndian.AppendUint64(b, e.BytesOut)
	if e.Backend.Kind == BackendNone {
		return b, nil
	}
	be := &e.Backend
	b = append(b, backendBlockVersion, byte(be.Kind), byte(be.Connect))
	b = binary.BigEndian.AppendUint64(b, be.ConnectUS)
	b = binary.BigEndian.AppendUint64(b, be.ToBackend)
	b = binary.BigEndian.AppendUint64(b, be.FromBackend)
	b = append(b, byte(be.Exit), be.ExitValue)
	return b, nil
}

// decodeBackend reads a backend block and checks that it is the one
// encoding of a possible report: a known version and kind, connect fields
// only for a proxy, exit fields only for exec, no value without its kind.
func (d *decoder) decodeBackend(be *BackendEnd) error {
	if v := d.u8(); !d.bad && v != backendBlockVersion {
		return fmt.Errorf("%w: SESSION_END backend block version %d, want %d", ErrMalformed, v, backendBlockVersion)
	}
	be.Kind = BackendKind(d.u8())
	be.Connect = ConnectResult(d.u8())
	be.ConnectUS = d.u64()
	be.ToBackend = d.u64()
	be.FromBackend = d.u64()
	be.Exit = ExitKind(d.u8())
	be.ExitValue = d.u8()
	if d.bad {
		return nil // reported as truncated
	}
	switch {
	case be.Kind != BackendProxy && be.Kind != BackendExec:
		return fmt.Errorf("%w: SESSION_END backend kind %d", ErrMalformed, be.Kind)
	case be.Connect > ConnectTimeout, be.Connect != ConnectNone && be.Kind != BackendProxy,
		be.Connect == ConnectNone && be.ConnectUS != 0:
		return fmt.Errorf("%w: SESSION_END %v backend with connect result %d after %d µs", ErrMalformed, be.Kind, be.Connect, be.ConnectUS)
	case be.Exit > ExitSignal, be.Exit != ExitNone && be.Kind != BackendExec,
		be.Exit == ExitNone && be.ExitValue != 0, be.Exit == ExitSignal && be.ExitValue == 0:
		return fmt.Errorf("%w: SESSION_END %v backend with exit kind %d value %d", ErrMalformed, be.Kind, be.Exit, be.ExitValue)
	}
	return nil
}

// errNilMessage is returned for a nil Message or a typed nil pointer.
var errNilMessage = errors.New("handoff: nil message")

// appendMessage appends the full encoding of m (header and body) to dst.
func appendMessage(dst []byte, m Message) ([]byte, error) {
	if isNil(m) {
		return dst, errNilMessage
	}
	dst = append(dst, Version, byte(m.Type()))
	return m.appendBody(dst)
}

// isNil reports whether m is nil or a nil pointer of one of the message
// types, which appendBody would dereference.
func isNil(m Message) bool {
	switch m := m.(type) {
	case nil:
		return true
	case *Hello:
		return m == nil
	case *Ready:
		return m == nil
	case *Handoff:
		return m == nil
	case *Ack:
		return m == nil
	case *Drain:
		return m == nil
	case *Ping:
		return m == nil
	case *Pong:
		return m == nil
	case *Bye:
		return m == nil
	case *SessionEnd:
		return m == nil
	}
	return false
}

// fdsFor returns how many descriptors a message of type t must carry.
func fdsFor(t Type) int {
	if t == TypeHandoff {
		return 1
	}
	return 0
}

// decoder reads big-endian fields and remembers the first shortfall, or
// the first invalid value (why).
type decoder struct {
	b   []byte
	bad bool
	why string
}

// fail marks the input bad for a reason other than a shortfall.
func (d *decoder) fail(why string) {
	if !d.bad {
		d.bad, d.why = true, why
	}
}

func (d *decoder) take(n int) []byte {
	if d.bad || n < 0 || n > len(d.b) {
		d.bad = true
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) u8() uint8 {
	if v := d.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (d *decoder) u16() uint16 {
	if v := d.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if v := d.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if v := d.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// bytes reads a u32 length and that many bytes, returned as a sub-slice.
func (d *decoder) bytes() []byte {
	n := d.u32()
	if uint64(n) > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	return d.take(int(n))
}

// decode parses one message. nfd is the number of descriptors that came
// with it; it must match the type (one for HANDOFF, none otherwise). Every
// length is checked and trailing bytes are refused, so exactly one byte
// string decodes to each message.
//
// The returned Handoff's Token and ReadAhead are copies (one allocation),
// independent of b, so the caller may wipe b. Its File is not set.
func decode(b []byte, nfd int) (Message, error) {
	if len(b) < 2 {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the header", ErrMalformed, len(b))
	}
	if b[0] != Version {
		return nil, fmt.Errorf("%w: version byte %#02x, want %#02x", ErrMalformed, b[0], Version)
	}
	t := Type(b[1])
	d := decoder{b: b[2:]}
	var m Message
	switch t {
	case TypeHello:
		h := &Hello{
			WorkerID:   d.u32(),
			Generation: d.u32(),
			KeyID:      d.u8(),
		}
		copy(h.Key[:], d.take(SealKeySize))
		h.MaxSessions = d.u32()
		h.MaxMessageBytes = d.u32()
		h.IdleTimeoutMS = d.u32()
		h.ImportDeadlineMS = d.u32()
		m = h
	case TypeReady:
		m = &Ready{PID: d.u32()}
	case TypeHandoff:
		h := &Handoff{ID: d.u64()}
		tok := d.bytes()
		ra := d.bytes()
		h.Client, h.Server = d.addrs()
		if !d.bad {
			// One allocation for both; ReadAhead gets no spare capacity so
			// an append by the caller cannot run into Token or vice versa.
			buf := make([]byte, len(tok)+len(ra))
			copy(buf, tok)
			copy(buf[len(tok):], ra)
			h.Token = buf[:len(tok):len(tok)]
			if len(ra) > 0 {
				h.ReadAhead = buf[len(tok):]
			}
		}
		m = h
	case TypeAck:
		m = &Ack{ID: d.u64(), Status: d.u32(), Load: d.u32()}
	case TypeDrain:
		m = &Drain{}
	case TypePing:
		m = &Ping{Seq: d.u64()}
	case TypePong:
		m = &Pong{Seq: d.u64()}
	case TypeBye:
		m = &Bye{Reason: d.u32()}
	case TypeSessionEnd:
		e := &SessionEnd{ID: d.u64(), Result: d.u32(), Load: d.u32(), DurationUS: d.u64(),
			MessagesIn: d.u64(), MessagesOut: d.u64(), BytesIn: d.u64(), BytesOut: d.u64()}
		// The backend block is optional: a body of exactly the base
		// length is a gss-sample session (or a worker from before the
		// block); anything longer must be one whole, valid block.
		if !d.bad && len(d.b) > 0 {
			if err := d.decodeBackend(&e.Backend); err != nil {
				return nil, err
			}
		}
		// Strict: a session always has a HANDOFF ID (the parent never
		// assigns 0) and one of the defined results; anything else is a
		// worker bug, not a counter to add up.
		if !d.bad && len(d.b) == 0 && (e.ID == 0 || e.Result > SessionFailed) {
			return nil, fmt.Errorf("%w: SESSION_END with ID %d and result %d", ErrMalformed, e.ID, e.Result)
		}
		m = e
	default:
		return nil, fmt.Errorf("%w: unknown type %d", ErrMalformed, uint8(t))
	}
	if d.bad || len(d.b) != 0 {
		wipe(m)
		if d.why != "" {
			return nil, fmt.Errorf("%w: %s", ErrMalformed, d.why)
		}
		if d.bad {
			return nil, fmt.Errorf("%w: %v truncated (%d bytes)", ErrMalformed, t, len(b))
		}
		return nil, fmt.Errorf("%w: %d trailing bytes after %v", ErrMalformed, len(d.b), t)
	}
	if want := fdsFor(t); nfd != want {
		wipe(m)
		return nil, fmt.Errorf("%w: %v with %d descriptors, want %d", ErrFDCount, t, nfd, want)
	}
	return m, nil
}

// wipe zeroes the secrets of a message that is being dropped.
func wipe(m Message) {
	switch m := m.(type) {
	case *Hello:
		m.Zero()
	case *Handoff:
		clear(m.Token)
	}
}
