// Package handoff is the channel between the acceptor (parent) and each of
// its worker processes: a socketpair(AF_UNIX, SOCK_SEQPACKET) created
// before the worker is started and inherited by it as fd 3
// (ARCHITECTURE.md §6). It also holds the rest of the parent-worker
// contract: the exit status that tells the parent not to respawn a worker
// (ExitFatal).
//
// Over it the parent sends HELLO (identity, seal key, limits), then one
// HANDOFF per established client connection, carrying the sealed context
// token, the client bytes read ahead, and the connection's descriptor via
// SCM_RIGHTS; later perhaps DRAIN. The worker answers READY, one ACK per
// HANDOFF, one SESSION_END per finished session (its counters, for the
// acceptor's metrics, and the new load), and, after a DRAIN, BYE.
//
// SOCK_SEQPACKET keeps message boundaries and ties each descriptor to
// exactly one message, so there is no framing layer and no way for bytes
// and descriptors to drift apart as they can on a stream socket. The
// receive side is strict, because descriptor-passing bugs are leaks (see
// the comments on Recv): the kernel's truncation flags are checked, every
// descriptor that arrives is accounted for and closed unless it is the one
// a HANDOFF is owed, and all received descriptors are close-on-exec.
//
// The package knows nothing about Kerberos: the token is opaque bytes and
// the ACK status an opaque number (a GSS major status by convention).
package handoff

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// recvFDRoom is how many descriptors the receive control buffer holds. One
// is all a valid message carries; the room for a few more lets Recv take
// in, close and report (ErrFDCount) the extra descriptors of a faulty
// sender. Descriptors beyond the room are discarded and closed by the
// kernel itself, which sets MSG_CTRUNC (ErrTruncated). No case leaks.
const recvFDRoom = 8

// sockBufSize is requested for SO_SNDBUF and SO_RCVBUF. On AF_UNIX
// datagram-style sockets a message must fit the sender's send buffer
// (unix_dgram_sendmsg fails with EMSGSIZE when len > sk_sndbuf - 32); the
// Linux default (net.core.wmem_default, about 208 KiB) is smaller than
// MaxMessageSize. The kernel caps the request at net.core.wmem_max and
// doubles it, so even the default cap of 208 KiB yields about 416 KiB.
const sockBufSize = 2 * MaxMessageSize

// sndbufOverhead is what the kernel keeps back from SO_SNDBUF for a single
// AF_UNIX datagram (see sockBufSize).
const sndbufOverhead = 32

// Conn is one end of a handoff channel. It is safe for one goroutine
// sending and another receiving at the same time (concurrent Sends, or
// concurrent Recvs, are also serialised, not interleaved).
//
// I/O goes through a *net.UnixConn on the runtime's network poller rather
// than through blocking recvmsg(2) on a dedicated thread. That is what lets
// Close interrupt a pending Recv (it returns an error wrapping
// net.ErrClosed) and makes deadlines work, and it costs no extra system
// calls: the read and write paths are the same recvmsg/sendmsg, with
// MSG_CMSG_CLOEXEC set by the net package on Linux.
type Conn struct {
	// Immutable after construction.
	uc      *net.UnixConn
	maxSend int // largest message the socket's send buffer accepts

	// Guarded by sendMu.
	sendMu sync.Mutex
	wbuf   []byte
	woob   []byte // SCM_RIGHTS control message for one fd; only the fd changes

	// Guarded by recvMu.
	recvMu sync.Mutex
	rbuf   []byte // MaxMessageSize; allocated on first Recv
	roob   []byte
	fds    []int // scratch for received descriptors
}

// Pair creates a new channel: a connected SOCK_SEQPACKET socketpair with
// close-on-exec set on both ends. The parent keeps the returned *Conn. The
// child end is for exec.Cmd.ExtraFiles (ExtraFiles[0] becomes fd 3 in the
// worker, without close-on-exec there); the parent must close its copy of
// child once the worker has started, or the worker's exit would never be
// seen as end-of-file on the parent's side.
func Pair() (parent *Conn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("handoff: socketpair: %w", err)
	}
	for _, fd := range fds {
		if err := setBuffers(fd); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return nil, nil, err
		}
	}
	child = os.NewFile(uintptr(fds[1]), "handoff-child")
	parent, err = newConn(fds[0], "handoff-parent")
	if err != nil {
		child.Close()
		return nil, nil, err
	}
	return parent, child, nil
}

// FromFD wraps an inherited channel descriptor (fd 3 in a worker). It
// checks that fd is an AF_UNIX SOCK_SEQPACKET socket, so a worker started
// by hand without the channel fails clearly, and sets close-on-exec on it
// so that it does not leak into any process the worker starts. The
// descriptor is owned by the returned Conn (it is duplicated and the
// original closed) and must not be used otherwise.
func FromFD(fd uintptr) (*Conn, error) {
	ifd := int(fd)
	typ, err := unix.GetsockoptInt(ifd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("handoff: fd %d is not a socket: %w", fd, err)
	}
	domain, err := unix.GetsockoptInt(ifd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return nil, fmt.Errorf("handoff: fd %d: %w", fd, err)
	}
	if typ != unix.SOCK_SEQPACKET || domain != unix.AF_UNIX {
		return nil, fmt.Errorf("handoff: fd %d is not an AF_UNIX SOCK_SEQPACKET socket (domain %d, type %d)", fd, domain, typ)
	}
	if _, err := unix.FcntlInt(fd, unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("handoff: setting close-on-exec on fd %d: %w", fd, err)
	}
	if err := setBuffers(ifd); err != nil {
		return nil, err
	}
	return newConn(ifd, "handoff")
}

// setBuffers sizes a channel socket's buffers for MaxMessageSize messages.
func setBuffers(fd int) error {
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sockBufSize); err != nil {
		return fmt.Errorf("handoff: SO_SNDBUF: %w", err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, sockBufSize); err != nil {
		return fmt.Errorf("handoff: SO_RCVBUF: %w", err)
	}
	return nil
}

// newConn turns a socket descriptor into a Conn. net.FileConn duplicates
// the descriptor (F_DUPFD_CLOEXEC) and registers the copy with the
// poller; the original is closed here, so the Conn holds the only one.
func newConn(fd int, name string) (*Conn, error) {
	f := os.NewFile(uintptr(fd), name)
	nc, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("handoff: %w", err)
	}
	// The callers have made sure fd is an AF_UNIX SOCK_SEQPACKET socket,
	// for which FileConn returns a *net.UnixConn.
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("handoff: %s is a %T, want a unix socket", name, nc)
	}
	c := &Conn{
		uc:      uc,
		maxSend: MaxMessageSize,
		woob:    unix.UnixRights(0),
	}
	if err := c.control(func(fd int) error {
		n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
		if err == nil {
			c.maxSend = min(MaxMessageSize, n-sndbufOverhead)
		}
		return err
	}); err != nil {
		uc.Close()
		return nil, fmt.Errorf("handoff: reading SO_SNDBUF: %w", err)
	}
	return c, nil
}

// control runs f with the channel socket's descriptor, holding a reference
// so that a concurrent Close cannot recycle the number under f.
func (c *Conn) control(f func(fd int) error) error {
	rc, err := c.uc.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// Send sends one message. A *Handoff must carry exactly one descriptor,
// as File or as FD; it is passed with SCM_RIGHTS and not closed: the
// caller keeps its descriptor until the worker's ACK. A message whose
// encoding exceeds MaxMessageSize is refused with ErrTooLarge before
// anything is sent.
//
// The encoded message is wiped from the send buffer after sendmsg(2): a
// HELLO carries the seal key and a HANDOFF a token sealing session keys.
// The caller's own copies (Hello.Key, Handoff.Token) are left to it.
func (c *Conn) Send(m Message) error {
	if isNil(m) {
		return errNilMessage
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	return c.sendLocked(m)
}

// SendContext is Send bounded by ctx: when ctx ends before the message
// could be queued (the peer has stopped reading and the socket buffer is
// full), it returns an error wrapping os.ErrDeadlineExceeded and, if ctx
// ended, ctx.Err(). A SOCK_SEQPACKET message is queued whole or not at
// all, so after such an error the peer has not received m, nor its
// descriptor. A Send in another goroutine waits behind this one.
func (c *Conn) SendContext(ctx context.Context, m Message) error {
	if isNil(m) {
		return errNilMessage
	}
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("handoff: sending %v: %w", m.Type(), err)
	}
	if d, ok := ctx.Deadline(); ok {
		if err := c.uc.SetWriteDeadline(d); err != nil {
			return fmt.Errorf("handoff: write deadline: %w", err)
		}
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.uc.SetWriteDeadline(time.Unix(1, 0)) // in the past: wakes a blocked write
		close(fired)
	})
	err := c.sendLocked(m)
	if !stop() {
		<-fired // the deadline is set; clear it only after
	}
	c.uc.SetWriteDeadline(time.Time{})
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); cerr == nil && ok && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded // the socket's timer fired before ctx's
	}
	if cerr != nil {
		return fmt.Errorf("%w (%w)", err, cerr)
	}
	return err
}

// sendLocked is Send with c.sendMu held.
func (c *Conn) sendLocked(m Message) error {
	b, err := appendMessage(c.wbuf[:0], m)
	defer func() {
		clear(b)
		c.wbuf = b[:0]
	}()
	if err != nil {
		return err
	}
	if len(b) > c.maxSend {
		return fmt.Errorf("%w: %v of %d bytes (max %d)", ErrTooLarge, m.Type(), len(b), c.maxSend)
	}
	h, ok := m.(*Handoff)
	if !ok {
		if _, _, err := c.uc.WriteMsgUnix(b, nil, nil); err != nil {
			return fmt.Errorf("handoff: sending %v: %w", m.Type(), err)
		}
		return nil
	}
	switch {
	case h.File != nil && h.FD != 0:
		return fmt.Errorf("%w: HANDOFF has both File and FD set", ErrFDCount)
	case h.FD < 0:
		return fmt.Errorf("%w: HANDOFF descriptor %d", ErrFDCount, h.FD)
	case h.FD > 0:
		return c.sendWithFD(b, h.FD)
	case h.File == nil:
		return fmt.Errorf("%w: HANDOFF has no descriptor to pass", ErrFDCount)
	}
	rc, err := h.File.SyscallConn()
	if err != nil {
		return fmt.Errorf("handoff: HANDOFF descriptor: %w", err)
	}
	// Control holds a reference on the File's descriptor, so it stays open
	// and keeps its number until sendmsg has taken the kernel's own
	// reference, even if the File is closed concurrently.
	var werr error
	if err := rc.Control(func(fd uintptr) { werr = c.sendWithFD(b, int(fd)) }); err != nil {
		return fmt.Errorf("handoff: HANDOFF descriptor: %w", err)
	}
	return werr
}

// sendWithFD sends b with one descriptor in an SCM_RIGHTS message. The
// control buffer is built once per Conn; only the descriptor changes.
func (c *Conn) sendWithFD(b []byte, fd int) error {
	binary.NativeEndian.PutUint32(c.woob[unix.CmsgLen(0):], uint32(fd))
	if _, _, err := c.uc.WriteMsgUnix(b, c.woob, nil); err != nil {
		return fmt.Errorf("handoff: sending HANDOFF: %w", err)
	}
	return nil
}

// Recv receives one message: a *Hello, *Ready, *Handoff, *Ack, *Drain,
// *Bye or *SessionEnd. It returns io.EOF when the peer has closed its end (the zero-length
// read of SOCK_SEQPACKET; the protocol never sends empty messages).
//
// The checks, and why (ARCHITECTURE.md §6, lessons from descriptor-passing
// bugs):
//   - MSG_CTRUNC: control data was cut. Under RLIMIT_NOFILE pressure the
//     kernel drops a passed descriptor this way while the bytes still
//     arrive; a HANDOFF without its socket must not be taken for a whole
//     one. → ErrTruncated.
//   - MSG_TRUNC: the message was longer than MaxMessageSize. → ErrTruncated.
//   - Every control message is parsed. Only SCM_RIGHTS is expected, and the
//     descriptor count must be exactly one for HANDOFF and zero otherwise
//     (ErrFDCount); anything else is ErrMalformed.
//   - On every error path each descriptor that did arrive is closed before
//     Recv returns, so a faulty or hostile peer cannot make us leak.
//   - Descriptors arrive with close-on-exec (MSG_CMSG_CLOEXEC).
//
// A HANDOFF's File belongs to the caller. Received bytes are wiped from
// the receive buffer once decoded.
func (c *Conn) Recv() (Message, error) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.rbuf == nil {
		c.rbuf = make([]byte, MaxMessageSize)
		c.roob = make([]byte, unix.CmsgSpace(recvFDRoom*4))
		c.fds = make([]int, 0, recvFDRoom)
	}
	n, oobn, flags, _, err := c.uc.ReadMsgUnix(c.rbuf, c.roob)
	msg := c.rbuf[:max(n, 0)]
	defer clear(msg)
	fds, cerr := parseRights(c.fds[:0], c.roob[:max(oobn, 0)])
	switch {
	case err != nil:
		closeFDs(fds)
		if errors.Is(err, io.EOF) {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("handoff: receive: %w", err)
	case flags&unix.MSG_CTRUNC != 0:
		closeFDs(fds)
		return nil, fmt.Errorf("%w: control data cut (MSG_CTRUNC) with %d descriptors received; a passed descriptor was dropped (RLIMIT_NOFILE?)", ErrTruncated, len(fds))
	case flags&unix.MSG_TRUNC != 0:
		closeFDs(fds)
		return nil, fmt.Errorf("%w: message longer than %d bytes (MSG_TRUNC)", ErrTruncated, len(c.rbuf))
	case cerr != nil:
		closeFDs(fds)
		return nil, cerr
	case n == 0:
		closeFDs(fds)
		return nil, io.EOF
	}
	m, err := decode(msg, len(fds))
	if err != nil {
		closeFDs(fds)
		return nil, err
	}
	if h, ok := m.(*Handoff); ok {
		h.File = os.NewFile(uintptr(fds[0]), "handoff-conn")
	}
	return m, nil
}

// parseRights appends to fds every descriptor found in the control data
// oob and reports any control message that is not SCM_RIGHTS, or data it
// cannot parse. It always returns the descriptors found, error or not, so
// the caller can close them.
func parseRights(fds []int, oob []byte) ([]int, error) {
	var bad error
	for len(oob) > 0 {
		// ParseOneSocketControlMessage reads a header from oob without
		// checking its length first.
		if len(oob) < unix.SizeofCmsghdr {
			return fds, fmt.Errorf("%w: %d stray bytes of control data", ErrMalformed, len(oob))
		}
		hdr, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			return fds, fmt.Errorf("%w: control data: %v", ErrMalformed, err)
		}
		if hdr.Level == unix.SOL_SOCKET && hdr.Type == unix.SCM_RIGHTS {
			for ; len(data) >= 4; data = data[4:] {
				fds = append(fds, int(int32(binary.NativeEndian.Uint32(data))))
			}
		} else if bad == nil {
			bad = fmt.Errorf("%w: unexpected control message (level %d, type %d)", ErrMalformed, hdr.Level, hdr.Type)
		}
		oob = rest
	}
	return fds, bad
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// PeerCred returns the credentials the kernel recorded for the peer
// (SO_PEERCRED). On a channel made by Pair they are those of the process
// that called socketpair(2), for both ends: see CheckWorker.
func (c *Conn) PeerCred() (unix.Ucred, error) {
	var cred *unix.Ucred
	err := c.control(func(fd int) error {
		var err error
		cred, err = unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		return err
	})
	if err != nil {
		return unix.Ucred{}, fmt.Errorf("handoff: SO_PEERCRED: %w", err)
	}
	return *cred, nil
}

// SetDeadline sets the read and write deadlines, as net.Conn does; the
// parent uses it to bound its wait for READY.
func (c *Conn) SetDeadline(t time.Time) error { return c.uc.SetDeadline(t) }

// SetReadDeadline sets the deadline for Recv.
func (c *Conn) SetReadDeadline(t time.Time) error { return c.uc.SetReadDeadline(t) }

// SetWriteDeadline sets the deadline for Send.
func (c *Conn) SetWriteDeadline(t time.Time) error { return c.uc.SetWriteDeadline(t) }

// Close closes the channel. A Recv or Send blocked on it returns an error
// wrapping net.ErrClosed; the peer's next Recv returns io.EOF once it has
// read the messages already queued.
func (c *Conn) Close() error {
	if err := c.uc.Close(); err != nil {
		return fmt.Errorf("handoff: close: %w", err)
	}
	return nil
}
