package listener

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/proxyproto"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// handshakeState is one connection's context establishment, discarded once
// the session has been handed to a worker (the crypto/tls
// serverHandshakeState pattern: straight-line steps, first error wins).
type handshakeState struct {
	s     *Server
	conn  net.Conn
	peer  net.Addr // the client: the socket's peer, or a trusted PROXY header's source
	addrs Addrs    // a trusted PROXY header's addresses, for the worker
	id    uint64   // connection number in the logs
	r     *wire.Reader
	log   *zap.Logger
	start time.Time
	entry *pendingEntry // in the pre-authentication table until established
	v1    bool          // the client uses the old framing without flag bytes
	first *wire.Frame   // the first context token, read while waiting

	deadline      time.Time // of the whole handshake
	firstDeadline time.Time // of the first context token (<= deadline)
	waiting       bool      // still before the first context token

	ctx     *gss.Context
	token   []byte // exported context
	result  Result // how the handshake ended, for logs and metrics
	krbCode int32
}

// handle runs one connection from accept to handoff. It always closes conn:
// after a failure at once, after a handoff once the worker has acknowledged
// it (the worker holds its own descriptor by then).
func (s *Server) handle(conn net.Conn, e *pendingEntry) {
	hs := &handshakeState{
		s:     s,
		conn:  conn,
		peer:  conn.RemoteAddr(),
		id:    s.nextConn.Add(1),
		entry: e,
		start: time.Now(),
	}
	hs.log = s.log.With(zap.Uint64("conn", hs.id), zap.String("peer", hs.peer.String()))
	defer conn.Close()
	defer s.pending.leave(e)
	defer func() {
		if p := recover(); p != nil {
			// Last line of defence: a bug on this path costs one connection.
			hs.log.Error("handshake panicked; connection closed", zap.Any("panic", p))
			s.failed.Add(1)
			s.outcome(Outcome{Result: ResultInternalError})
		}
	}()
	hs.run()
}

func (hs *handshakeState) run() {
	s := hs.s
	deadline := hs.start.Add(s.cfg.HandshakeTimeout)
	hs.deadline = deadline
	hs.firstDeadline = hs.start.Add(s.cfg.FirstFrameTimeout)
	if hs.firstDeadline.After(deadline) {
		hs.firstDeadline = deadline
	}
	hs.waiting = true
	if err := hs.conn.SetDeadline(hs.firstDeadline); err != nil {
		hs.fail(ResultSocketError, err)
		return
	}
	// Every frame goes out in one write, and Go's TCP conns have Nagle off
	// (TCP_NODELAY) from accept on, so no reply waits for a delayed ACK as
	// MIT's gss-server's do (40-90 ms each). The socket option travels with
	// the descriptor to the worker.
	src := io.Reader(hs.conn)
	if len(s.cfg.ProxyProtocolFrom) > 0 {
		var err error
		if src, err = hs.proxyHeader(); err != nil {
			hs.fail(hs.result, err)
			return
		}
	}
	hs.r = wire.NewReader(src, readBufferSize)

	if err := hs.readFirst(); err != nil {
		hs.fail(hs.result, err)
		return
	}
	// The first context token is here: from now on the connection is
	// never evicted, and it has the rest of the handshake deadline.
	hs.waiting = false
	if ev := s.pending.ready(hs.entry); ev != "" {
		hs.fail(ev, errors.New("closed by the pre-authentication limits"))
		return
	}
	if err := hs.conn.SetDeadline(deadline); err != nil {
		hs.fail(ResultSocketError, err)
		return
	}
	if err := hs.establish(); err != nil {
		hs.fail(hs.result, err)
		return
	}
	s.pending.leave(hs.entry) // authenticated
	handshakeDone := time.Now()
	clientName, serviceName := hs.ctx.InitiatorName(), hs.ctx.AcceptorName()
	enctype, flags := hs.ctx.Enctype(), hs.ctx.Flags()
	if !s.allow.Load().Allows(clientName) {
		hs.refuseClient(clientName)
		return
	}
	if err := hs.export(); err != nil {
		hs.fail(hs.result, err)
		return
	}
	readAhead := hs.r.Buffered()
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	res, err := hs.handoff(ctx, readAhead)
	clear(hs.token)
	handoffDur := time.Since(handshakeDone)
	if err != nil {
		hs.log.Warn("handoff failed; connection closed",
			zap.String("client", clientName), zap.Int("worker_pid", res.PID),
			zap.Int("attempts", res.Attempts), zap.Error(err))
		s.failed.Add(1)
		s.outcome(Outcome{Result: ResultHandoffFailed, Handshake: handshakeDone.Sub(hs.start), Handoff: handoffDur})
		return
	}
	s.established.Add(1)
	hs.log.Info("session handed off",
		zap.String("result", string(ResultOK)),
		zap.String("client", clientName),
		zap.String("service", serviceName),
		zap.Int32("enctype", enctype),
		zap.Stringer("flags", flags),
		zap.Int("worker_pid", res.PID),
		zap.Int("attempts", res.Attempts),
		zap.Int("read_ahead", len(readAhead)),
		zap.Duration("handshake", handshakeDone.Sub(hs.start)),
		zap.Duration("handoff", handoffDur),
	)
	s.outcome(Outcome{Result: ResultOK, Handshake: handshakeDone.Sub(hs.start), Handoff: handoffDur})
}

// refuseClient closes the session of a client the allow-list does not
// admit, before any export or handoff. A stream-protocol client is told
// why in an ERROR record sealed with the context just established (the
// listener's copy: no worker ever sees it); a gss-sample client, which has
// no such record, just sees the close.
func (hs *handshakeState) refuseClient(client string) {
	s := hs.s
	if s.cfg.StreamRefusal {
		if st, err := stream.New(hs.conn, hs.r, hs.ctx, stream.Config{}); err == nil {
			if err := st.Abort("client principal " + client + " is not allowed"); err != nil {
				hs.log.Debug("sending the refusal record", zap.Error(err))
			} else {
				lingerClose(hs.conn)
			}
		}
	}
	hs.ctx.Delete()
	s.failed.Add(1)
	hs.log.Warn("client not allowed; connection closed",
		zap.String("result", string(ResultClientNotAllowed)),
		zap.String("client", client),
		zap.Duration("handshake", time.Since(hs.start)))
	s.outcome(Outcome{Result: ResultClientNotAllowed, Handshake: time.Since(hs.start)})
}

// lingerClose ends our side of conn with a FIN and discards what the
// client still sends, for a short bounded time, so that the close that
// follows finds nothing unread: closing with unread bytes makes the kernel
// send a reset, which can reach the client before it has read the refusal
// just written (a client already streaming then sees only a broken pipe).
func lingerClose(conn net.Conn) {
	cw, ok := conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if conn.SetReadDeadline(time.Now().Add(refusalLinger)) != nil {
		return
	}
	io.CopyN(io.Discard, conn, refusalDrainMax)
}

// refusalLinger and refusalDrainMax bound lingerClose.
const (
	refusalLinger   = 250 * time.Millisecond
	refusalDrainMax = 256 << 10
)

// readFirst reads up to and including the first context token, within
// the first-frame deadline: the opener and the token, or a v1 client's
// first frame, which is already its token.
func (hs *handshakeState) readFirst() error {
	if err := hs.readHello(); err != nil {
		return err
	}
	if hs.first != nil {
		return nil
	}
	f, err := hs.r.ReadFrame(hs.s.cfg.MaxTokenSize)
	if err != nil {
		return hs.readErr("reading context token", err)
	}
	hs.first = &f
	return nil
}

// readHello reads the session opener: NOOP|CONTEXT_NEXT for an
// authenticated gss-sample session. A first byte 0x00 means the old v1
// framing, whose first frame is already the context token.
func (hs *handshakeState) readHello() error {
	f, err := hs.r.ReadFrame(hs.s.cfg.MaxTokenSize)
	if err != nil {
		return hs.readErr("reading first frame", err)
	}
	if f.Flags == 0 {
		hs.v1 = true
		hs.first = &f
		return nil
	}
	if f.Flags&wire.FlagNoop == 0 {
		hs.result = ResultBadFrame
		return fmt.Errorf("expected NOOP token, got flags %#02x", f.Flags)
	}
	if f.Flags&wire.FlagContextNext == 0 {
		hs.result = ResultUnauthenticated
		return errors.New("client asked for an unauthenticated session; refused")
	}
	if len(f.Body) != 0 {
		hs.result = ResultBadFrame
		return fmt.Errorf("session opener carries %d bytes, want 0", len(f.Body))
	}
	return nil
}

// establish runs the context-token exchange: one token each way for
// Kerberos (none back without mutual authentication); SPNEGO may take up
// to three initiator tokens (gss.Handshake bounds them), all within the
// handshake deadline.
func (hs *handshakeState) establish() error {
	h := hs.s.acceptor.Load().NewHandshake()
	defer h.Close()
	for {
		var f wire.Frame
		if hs.first != nil {
			f, hs.first = *hs.first, nil
		} else {
			var err error
			if f, err = hs.r.ReadFrame(hs.s.cfg.MaxTokenSize); err != nil {
				return hs.readErr("reading context token", err)
			}
		}
		if !hs.v1 && f.Flags&wire.FlagContext == 0 {
			hs.result = ResultBadFrame
			return fmt.Errorf("expected a context token, got flags %#02x", f.Flags)
		}
		if err := hs.acquire(); err != nil {
			return err
		}
		ctx, out, err := h.Step(f.Body)
		hs.release()
		if len(out) > 0 {
			// The reply token (AP-REP, NegTokenResp), or an error token
			// telling the client why: MIT's gss-server sends that too
			// before closing.
			if werr := wire.WriteFrame(hs.conn, hs.contextFlags(), out); werr != nil && err == nil {
				if ctx != nil {
					ctx.Delete()
				}
				hs.result = ResultWriteFailed
				return fmt.Errorf("writing context token: %w", werr)
			}
		}
		if err != nil {
			hs.result = ResultRejected
			hs.krbCode = gss.KRBCodeOf(err)
			return err
		}
		if ctx != nil {
			hs.ctx = ctx
			return nil
		}
	}
}

func (hs *handshakeState) contextFlags() byte {
	if hs.v1 {
		return 0
	}
	return wire.FlagContext
}

// acquire takes a handshake slot (MaxHandshakes) for a step of CPU work,
// waiting for one until the handshake deadline.
func (hs *handshakeState) acquire() error {
	select {
	case hs.s.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(time.Until(hs.deadline))
	defer t.Stop()
	select {
	case hs.s.slots <- struct{}{}:
		return nil
	case <-t.C:
		hs.result = ResultHandshakeLimit
		return fmt.Errorf("no handshake slot free before the deadline (max_handshakes %d)", hs.s.cfg.MaxHandshakes)
	case <-hs.s.kill:
		hs.result = ResultError
		return errors.New("server closed while waiting for a handshake slot")
	}
}

func (hs *handshakeState) release() { <-hs.s.slots }

// export seals the context for a worker; the listener's copy is destroyed.
func (hs *handshakeState) export() error {
	if err := hs.acquire(); err != nil {
		hs.ctx.Delete()
		return err
	}
	tok, err := hs.ctx.ExportWith(hs.s.cfg.SealKey, gss.ExportOptions{ImportDeadline: hs.s.cfg.ImportDeadline})
	hs.release()
	if err != nil {
		hs.ctx.Delete()
		hs.result = ResultExportFailed
		return err
	}
	hs.token = tok
	return nil
}

// handoff passes the socket and the token to a worker and waits for its
// ACK. The descriptor stays open in this process until then.
func (hs *handshakeState) handoff(ctx context.Context, readAhead []byte) (HandoffResult, error) {
	sc, ok := hs.conn.(syscall.Conn)
	if !ok {
		return HandoffResult{}, fmt.Errorf("listener: %T has no file descriptor", hs.conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return HandoffResult{}, err
	}
	// The descriptor number is only ours inside Control: Close (Shutdown,
	// Server.Close) may close hs.conn concurrently, and the number could
	// then name another connection's socket by the time it is sent. So
	// Control dups it (close-on-exec), and this function owns the dup
	// until Handoff, which may send it more than once, has returned.
	fd, derr := -1, error(nil)
	if err := raw.Control(func(f uintptr) { fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return HandoffResult{}, fmt.Errorf("listener: socket for handoff: %w", err)
	}
	if derr != nil {
		return HandoffResult{}, fmt.Errorf("listener: duplicating socket for handoff: %w", derr)
	}
	defer unix.Close(fd)
	return hs.s.cfg.Dispatcher.Handoff(ctx, fd, hs.token, readAhead, hs.addrs)
}

// proxyHeader runs before the first frame when proxy_protocol_from is set
// (Config.ProxyProtocolFrom), within the first-frame deadline. From a
// trusted network the connection must start with a PROXY v1 or v2 header:
// its source becomes hs.peer (logs, the per-source limit); a LOCAL or
// UNKNOWN header keeps the socket's peer. From anywhere else the first
// byte is read to refuse a header ('P' of v1, 0x0D of the v2 signature:
// neither is a gss-sample opener, which has the NOOP bit and not 0x0C, or
// is 0x00), and given back to the frame reader otherwise. It returns the
// reader the frames are to be read from.
func (hs *handshakeState) proxyHeader() (io.Reader, error) {
	sock := sourceOf(hs.conn)
	if !hs.s.pending.trusted(sock) {
		var b [1]byte
		if _, err := io.ReadFull(hs.conn, b[:]); err != nil {
			return nil, hs.readErr("reading first frame", err)
		}
		if b[0] == 'P' || b[0] == proxyproto.Signature[0] {
			hs.result = ResultProxyHeader
			return nil, fmt.Errorf("PROXY protocol header from %s, which is not in proxy_protocol_from", sock)
		}
		return io.MultiReader(bytes.NewReader(b[:]), hs.conn), nil
	}
	h, version, err := proxyproto.ReadAny(hs.conn)
	if err != nil {
		var ne net.Error
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) {
			return nil, hs.readErr("reading the PROXY header", err)
		}
		hs.result = ResultProxyHeader
		return nil, fmt.Errorf("connection from proxy_protocol_from network: %w", err)
	}
	if h.Local || !h.Source.IsValid() {
		hs.log.Debug("PROXY header without a client address; the proxy's own connection", zap.Int("proxy_version", version))
		return hs.conn, nil
	}
	client := h.Source.Addr().Unmap()
	victims, refused := hs.s.pending.rekey(hs.entry, client)
	for _, v := range victims {
		v.conn.Close()
	}
	hs.peer = net.TCPAddrFromAddrPort(netip.AddrPortFrom(client, h.Source.Port()))
	if h.Dest.IsValid() {
		hs.addrs = Addrs{Client: netip.AddrPortFrom(client, h.Source.Port()),
			Server: netip.AddrPortFrom(h.Dest.Addr().Unmap(), h.Dest.Port())}
	}
	hs.log = hs.s.log.With(zap.Uint64("conn", hs.id), zap.String("peer", hs.peer.String()),
		zap.String("proxy", hs.conn.RemoteAddr().String()))
	if refused != "" {
		hs.result = refused
		return nil, errors.New("closed by the pre-authentication limits")
	}
	return hs.conn, nil
}

// readErr classifies a read failure during the handshake.
func (hs *handshakeState) readErr(what string, err error) error {
	var tl *wire.TooLargeError
	switch {
	case errors.As(err, &tl):
		hs.result = ResultTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded) && hs.waiting && hs.firstDeadline.Before(hs.deadline):
		hs.result = ResultFirstFrameTimeout
	case errors.Is(err, os.ErrDeadlineExceeded):
		hs.result = ResultTimeout
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		hs.result = ResultClientClosed
	default:
		hs.result = ResultReadError
	}
	return fmt.Errorf("%s: %w", what, err)
}

// fail logs the end of a connection that did not make it to a worker.
func (hs *handshakeState) fail(result Result, err error) {
	if result == "" {
		result = ResultError
	}
	// A connection the pre-authentication table closed fails its read;
	// the table knows why.
	if ev := hs.s.pending.leave(hs.entry); ev != "" {
		result = ev
	}
	hs.s.failed.Add(1)
	switch result {
	case ResultPendingFull, ResultSourceLimit, ResultFirstFrameTimeout:
		// Closes a flood makes by the thousand: one line per class per
		// second, with a count, not one per connection.
		hs.s.preauthClosed(result, hs.peer, zap.Duration("first_frame_timeout", hs.s.cfg.FirstFrameTimeout))
		hs.s.outcome(Outcome{Result: result, Handshake: time.Since(hs.start)})
		return
	}
	fields := []zap.Field{
		zap.String("result", string(result)),
		zap.Duration("handshake", time.Since(hs.start)),
		zap.Error(err),
	}
	if hs.krbCode != 0 {
		fields = append(fields, zap.Int32("krb_error", hs.krbCode))
	}
	// Handshake failures are the network's doing, not ours: Info/Warn with
	// a reason, never Error spam.
	if result == ResultClientClosed {
		hs.log.Info("connection closed before a context was established", fields...)
	} else {
		hs.log.Warn("handshake failed; connection closed", fields...)
	}
	hs.s.outcome(Outcome{Result: result, Handshake: time.Since(hs.start), KRBCode: hs.krbCode})
}
