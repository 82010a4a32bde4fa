// Package listener is the acceptor process's network side: the accept
// loop and the per-connection handshake (gss-sample framing around the
// Kerberos acceptor) with its deadline and limits. Established sessions go
// to a Dispatcher (the supervisor's worker pool), which this package knows
// only through that interface.
package listener

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

// Server defaults.
const (
	DefaultHandshakeTimeout    = 10 * time.Second
	DefaultMaxHandshakes       = 256
	DefaultMaxTokenSize        = 64 << 10
	DefaultMaxPending          = 4096
	DefaultMaxPendingPerSource = 64
	DefaultFirstFrameTimeout   = 3 * time.Second
	// preauthLogInterval spaces the log lines of one class of
	// pre-authentication closes (evictions, first-frame timeouts).
	preauthLogInterval = time.Second
	// readBufferSize bounds what the handshake reads ahead of the context
	// token; whatever it read past the token travels with the handoff. An
	// AP-REQ is about 1 KiB (larger tokens are read straight into their
	// body), so 4 KiB takes the opener, the token and a -nomutual client's
	// first message in one read without zeroing a large buffer per
	// connection.
	readBufferSize = 4 << 10
)

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("listener: server closed")

// Dispatcher hands an established session to a worker.
// *supervisor.Pool implements it.
type Dispatcher interface {
	// Handoff passes the connection's descriptor, the sealed context token
	// and the client bytes read past the token to a worker, and returns
	// once the worker has taken the session (or refused it, or ctx ended).
	// The caller keeps fd open until Handoff returns. addrs are the
	// client's addresses from a trusted PROXY header, zero without one.
	Handoff(ctx context.Context, fd int, token, readAhead []byte, addrs Addrs) (HandoffResult, error)
	// WaitCapacity blocks while no worker has room for another session.
	WaitCapacity(ctx context.Context) error
}

// Addrs are a connection's addresses as a trusted PROXY header names them
// (ARCHITECTURE.md §6): the client's source and the address it connected
// to (the balancer's front). Both valid or both zero (no header, or a
// LOCAL/UNKNOWN one: the socket's own addresses stand).
type Addrs struct {
	Client, Server netip.AddrPort
}

// HandoffResult reports where a connection went.
type HandoffResult struct {
	PID      int    // worker that took the session
	Attempts int    // 1 unless a worker died holding the handoff
	Status   uint32 // 0 on success, else the worker's GSS major status
}

// Config configures a Server.
type Config struct {
	// Acceptor verifies context tokens. It can be replaced while serving
	// (SetAcceptor) to apply a new keytab.
	Acceptor   *gss.Acceptor
	SealKey    *gss.SealKey // protects exported contexts
	Dispatcher Dispatcher

	HandshakeTimeout time.Duration // whole handshake incl. handoff; 0: DefaultHandshakeTimeout
	// MaxHandshakes bounds handshakes doing CPU work at once (a context
	// token step, an export); a connection waiting for bytes never holds
	// one of these slots. 0: DefaultMaxHandshakes.
	MaxHandshakes int
	// MaxPending bounds pre-authentication connections (accepted, no
	// context yet); when full, the oldest one still waiting for its first
	// context token is closed to make room. 0: DefaultMaxPending.
	MaxPending int
	// MaxPendingPerSource bounds them per client IP address, evicting the
	// source's oldest waiting one. 0: DefaultMaxPendingPerSource.
	MaxPendingPerSource int
	// FirstFrameTimeout bounds accept to a complete first context token
	// (capped by HandshakeTimeout). 0: DefaultFirstFrameTimeout.
	FirstFrameTimeout time.Duration
	// ProxyProtocolFrom lists the networks of trusted load balancers: a
	// connection from one must start with a PROXY v1 or v2 header (read
	// within FirstFrameTimeout), whose source address is then the
	// connection's peer for logs and the per-source limit. A connection
	// from anywhere else that starts with a header is refused. Empty: no
	// PROXY protocol; the first bytes are not inspected.
	ProxyProtocolFrom []netip.Prefix
	MaxTokenSize      int           // context token cap; 0: DefaultMaxTokenSize
	ImportDeadline    time.Duration // how long a worker may take to import; 0: gss default

	// AllowClients admits client principals (nil: all); replace it while
	// serving with SetAllowList. StreamRefusal: the backend speaks the
	// stream protocol (proxy, exec), so a refused client gets an ERROR
	// record before the close (docs/backends.md).
	AllowClients  *AllowList
	StreamRefusal bool

	Logger *zap.Logger
	// OnOutcome, if set, is called once per connection with its outcome
	// (metrics hook). It must not block.
	OnOutcome func(Outcome)
}

// Outcome describes how one connection's handshake ended.
type Outcome struct {
	Result    Result        // ResultOK or why the connection was closed
	Handshake time.Duration // accept to context established
	Handoff   time.Duration // export to worker ACK
	KRBCode   int32         // Kerberos error code of a ResultRejected token; 0: none
}

// Server accepts connections and establishes contexts. Create it with
// NewServer, run it with Serve, stop it with Shutdown or Close.
type Server struct {
	cfg      Config
	log      *zap.Logger
	acceptor atomic.Pointer[gss.Acceptor]
	allow    atomic.Pointer[AllowList]
	slots    chan struct{} // semaphore of handshakes doing CPU work
	pending  *pendingTable // pre-authentication connections
	closes   *closeLimiter // log lines of pre-authentication closes

	// kill is closed when the connections in handshake are closed
	// (Close, or Shutdown past its context), ending waits for a slot.
	kill     chan struct{}
	killOnce sync.Once

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[net.Conn]struct{} // connections in handshake
	closed    bool
	inflight  sync.WaitGroup

	// stop ends every Serve's wait for worker capacity on Shutdown or
	// Close; without it a Serve blocked on a full pool would outlive Close.
	stopCtx context.Context
	stop    context.CancelFunc

	// Heartbeat of the accept loop, for the watchdog: unix nanos of the
	// last loop iteration or idle check.
	heartbeat atomic.Int64
	nextConn  atomic.Uint64

	// Counters for STATUS lines.
	accepted, established, failed atomic.Uint64
	acceptErrors, shedConns       atomic.Uint64

	// reserve is a descriptor held open so that, when accept fails for
	// want of descriptors, one can be freed to take a connection off the
	// backlog and close it (-1: none).
	reserveMu sync.Mutex
	reserve   int
}

// NewServer validates cfg and returns a Server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Acceptor == nil || cfg.SealKey == nil || cfg.Dispatcher == nil {
		return nil, errors.New("listener: Acceptor, SealKey and Dispatcher are required")
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.MaxTokenSize <= 0 {
		cfg.MaxTokenSize = DefaultMaxTokenSize
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = DefaultMaxPending
	}
	if cfg.MaxPendingPerSource <= 0 {
		cfg.MaxPendingPerSource = DefaultMaxPendingPerSource
	}
	if cfg.FirstFrameTimeout <= 0 {
		cfg.FirstFrameTimeout = DefaultFirstFrameTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		slots:     make(chan struct{}, cfg.MaxHandshakes),
		pending:   newPendingTable(cfg.MaxPending, cfg.MaxPendingPerSource, cfg.ProxyProtocolFrom),
		closes:    newCloseLimiter(preauthLogInterval),
		kill:      make(chan struct{}),
		reserve:   openReserve(),
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[net.Conn]struct{}),
	}
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.acceptor.Store(cfg.Acceptor)
	s.allow.Store(cfg.AllowClients)
	s.heartbeat.Store(time.Now().UnixNano())
	return s, nil
}

// SetAcceptor replaces the acceptor for handshakes that start from now on
// (keytab reload). Handshakes in progress finish with the old one.
func (s *Server) SetAcceptor(a *gss.Acceptor) { s.acceptor.Store(a) }

// SetAllowList replaces the client allow-list (nil: all) for contexts
// established from now on (allow_clients_file reload).
func (s *Server) SetAllowList(a *AllowList) { s.allow.Store(a) }

// Heartbeat returns when the accept loop last showed it was alive.
func (s *Server) Heartbeat() time.Time { return time.Unix(0, s.heartbeat.Load()) }

// Stats returns connection counters since start, and the connections
// between accept and the end of their handoff.
func (s *Server) Stats() (accepted, established, failed uint64, handshaking int) {
	s.mu.Lock()
	handshaking = len(s.conns)
	s.mu.Unlock()
	return s.accepted.Load(), s.established.Load(), s.failed.Load(), handshaking
}

// Pending returns the pre-authentication connections: accepted, no
// context established yet (bounded by MaxPending).
func (s *Server) Pending() int { return s.pending.len() }

// Serve accepts connections on ln until Shutdown or Close, and always
// returns a non-nil error: ErrServerClosed after a shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	ctx, cancel := context.WithCancel(s.stopCtx)
	defer cancel()
	go s.beat(ctx)
	for {
		// Backpressure: while every worker is full, leave new connections
		// in the kernel backlog instead of queueing them here.
		if err := s.waitCapacity(ctx); err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			return err
		}
		conn, err := ln.Accept()
		s.heartbeat.Store(time.Now().UnixNano())
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAcceptError(err) {
				s.acceptErrors.Add(1)
				if isFDExhaustion(err) {
					s.relieveFDs(ln)
				}
				// Back off like net/http, 5 ms doubling to 1 s, and keep
				// serving: never spin on an error that repeats.
				backoff = max(5*time.Millisecond, min(2*backoff, time.Second))
				s.log.Warn("accept failed; backing off", zap.Error(err), zap.Duration("backoff", backoff))
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("listener: accept: %w", err)
		}
		backoff = 0
		s.accepted.Add(1)
		// Pre-authentication limits (ARCHITECTURE.md §7): room is made
		// by closing the oldest connection still waiting for its first
		// context token; each victim's own goroutine reports it.
		e, refused, victims := s.pending.admit(conn)
		for _, v := range victims {
			v.conn.Close()
		}
		if e == nil {
			s.failed.Add(1)
			s.preauthClosed(refused, conn.RemoteAddr())
			s.outcome(Outcome{Result: refused})
			conn.Close()
			continue
		}
		if !s.track(conn) {
			s.pending.leave(e)
			conn.Close()
			return ErrServerClosed
		}
		go func() {
			defer s.inflight.Done()
			defer s.untrack(conn)
			s.handle(conn, e)
		}()
	}
}

// waitCapacity blocks while the dispatcher has no room, keeping the
// heartbeat fresh: a full pool is a healthy state, not a hang.
func (s *Server) waitCapacity(ctx context.Context) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.cfg.Dispatcher.WaitCapacity(wctx)
		cancel()
		if err == nil || !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
			return err
		}
		s.heartbeat.Store(time.Now().UnixNano())
		s.log.Warn("all workers at their session cap; not accepting")
	}
}

// beat refreshes the heartbeat while Accept blocks with nothing to do: an
// idle accept loop is alive. A stuck loop (not in Accept, not waiting for
// capacity) stops refreshing it.
func (s *Server) beat(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.heartbeat.Store(time.Now().UnixNano())
		}
	}
}

func isFDExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// relieveFDs makes room after accept failed for want of descriptors: it
// closes the oldest connection still waiting for its first context token
// (the descriptors an idle flood holds are the ones to give back), or, if
// none is waiting, uses the reserve descriptor to take one connection off
// the backlog and close it, so that clients are refused rather than left
// hanging in a backlog the loop cannot drain.
func (s *Server) relieveFDs(ln net.Listener) {
	if v := s.pending.evictOldest(ResultPendingFull); v != nil {
		v.conn.Close()
		return
	}
	if s.shed(ln) {
		s.shedConns.Add(1)
		if n := s.closes.note("shed", time.Now()); n > 0 {
			s.log.Warn("out of descriptors; connection closed unread",
				zap.Int("count", n), zap.Stringer("listener", ln.Addr()))
		}
	}
}

// shed closes the reserve descriptor, accepts one connection with the
// number it frees and closes it, then takes the reserve again. It reports
// whether a connection was shed. Only listeners with a descriptor
// (TCP, Unix) can shed.
func (s *Server) shed(ln net.Listener) bool {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s.reserveMu.Lock()
	defer s.reserveMu.Unlock()
	if s.reserve >= 0 {
		unix.Close(s.reserve)
		s.reserve = -1
	}
	shed := false
	// The listening socket is non-blocking: with an empty backlog this
	// returns EAGAIN at once.
	raw.Control(func(fd uintptr) {
		if nfd, _, err := unix.Accept4(int(fd), unix.SOCK_CLOEXEC); err == nil {
			unix.Close(nfd)
			shed = true
		}
	})
	s.reserve = openReserve()
	return shed
}

// openReserve opens the descriptor kept for shedding; -1 if it cannot
// (then shedding waits until one frees).
func openReserve() int {
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
}

// AcceptErrors returns how many times accept failed with a temporary
// error (descriptor exhaustion, aborted connections), and how many
// connections were closed unread to drain the backlog when descriptors
// ran out.
func (s *Server) AcceptErrors() (errors, shed uint64) {
	return s.acceptErrors.Load(), s.shedConns.Load()
}

func isTemporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EINTR)
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.inflight.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

func (s *Server) outcome(o Outcome) {
	if s.cfg.OnOutcome != nil {
		s.cfg.OnOutcome(o)
	}
}

// Shutdown stops accepting, then waits for handshakes in progress to finish
// (each is bounded by the handshake timeout) or for ctx to end, in which
// case the remaining handshake connections are closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeListeners()
	done := make(chan struct{})
	go func() {
		s.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeConns()
		<-done
		return ctx.Err()
	}
}

// Close stops accepting and closes every connection still in handshake.
func (s *Server) Close() error {
	s.closeListeners()
	s.closeConns()
	s.inflight.Wait()
	return nil
}

func (s *Server) closeListeners() {
	s.reserveMu.Lock()
	if s.reserve >= 0 {
		unix.Close(s.reserve)
		s.reserve = -1
	}
	s.reserveMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.stop()
	for ln := range s.listeners {
		ln.Close()
	}
}

func (s *Server) closeConns() {
	s.killOnce.Do(func() { close(s.kill) })
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}
