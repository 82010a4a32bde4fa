package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/listener"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// ioTimeout bounds every read and write on a client connection, the wait
// for a worker's ACK and for a worker's start or exit.
const ioTimeout = 10 * time.Second

// Read buffer sizes, as in the real listener and worker.
const (
	acceptorReadBuffer = 4 << 10
	workerReadBuffer   = 16 << 10
)

// maxSessionFrames bounds the frames one session may send before its NOOP.
const maxSessionFrames = 1024

// Channel messages are told apart by their length (SOCK_SEQPACKET keeps
// message boundaries). The acceptor sends the token, whose first idLen
// bytes are the handoff ID, with the connection's descriptor; the worker
// answers READY once, an ACK per handoff and a SESSION_END per finished
// session, as gss-worker does.
const (
	idLen    = 8
	readyLen = 4                   // pid
	ackLen   = idLen               // the handoff ID
	endLen   = idLen + 4 + 4 + 5*8 // ID, result, load, five counters: gss-worker's SESSION_END body
)

// serveConfig configures the acceptor role.
type serveConfig struct {
	inline  bool // serve sessions in the acceptor, without workers
	workers int
	reply   int // reply frame body bytes
	token   int // handoff token bytes, at least idLen
	// deferAccept is the listener's TCP_DEFER_ACCEPT, as gss-acceptor's
	// defer_accept; 0: off.
	deferAccept time.Duration
	// workerCmd returns the command of one worker process; listen passes
	// the channel to it as fd 3 (ExtraFiles[0]).
	workerCmd func() *exec.Cmd
}

// server is the acceptor: a TCP listener and, unless inline, its workers.
type server struct {
	cfg     serveConfig
	ln      net.Listener
	reply   []byte
	workers []*workerChan
	next    atomic.Uint64 // last handoff ID; also the round-robin position

	stopOnce sync.Once
	stopped  chan struct{} // closed by stop

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	closing bool
	fatal   error // first worker failure; it stops the server
	lastErr error

	served, failed atomic.Int64
	wg             sync.WaitGroup // connection goroutines
}

// serveStats summarises what a server did.
type serveStats struct {
	Served    int64 // connections that completed
	Failed    int64
	Ended     int64 // SESSION_END messages received from workers
	LastError error
}

// listen binds addr and, unless cfg.inline, starts the workers and waits
// until each has reported READY.
func listen(ctx context.Context, addr string, cfg serveConfig) (*server, error) {
	// As the real daemon: keep-alive and TCP_NODELAY set once on the
	// listener, which accepted connections inherit, rather than by Go on
	// each of them, and TCP_DEFER_ACCEPT.
	lc := net.ListenConfig{KeepAlive: -1}
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("floor: listen %s: %w", addr, err)
	}
	if err := listener.SetInheritedOptions(ln, cfg.deferAccept); err != nil {
		ln.Close()
		return nil, fmt.Errorf("floor: listener options: %w", err)
	}
	s := &server{
		cfg:     cfg,
		ln:      ln,
		reply:   make([]byte, cfg.reply),
		stopped: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	if cfg.inline {
		return s, nil
	}
	for range cfg.workers {
		w, err := startWorker(cfg.workerCmd(), s.fail)
		if err != nil {
			s.stop()
			return nil, errors.Join(err, s.stopWorkers())
		}
		s.workers = append(s.workers, w)
	}
	return s, nil
}

// Addr returns the listening address.
func (s *server) Addr() net.Addr { return s.ln.Addr() }

// serve accepts connections until ctx ends or a worker fails, then waits
// for the connections in progress and stops the workers.
func (s *server) serve(ctx context.Context) error {
	release := context.AfterFunc(ctx, s.stop)
	defer release()
	var err error
	for {
		conn, aerr := s.ln.Accept()
		if aerr != nil {
			if !s.isClosing() {
				err = fmt.Errorf("floor: accept: %w", aerr)
			}
			break
		}
		if !s.track(conn) {
			conn.Close()
			break
		}
		s.wg.Go(func() {
			defer s.untrack(conn)
			herr := s.handle(conn)
			conn.Close()
			s.count(herr)
		})
	}
	s.stop()
	s.wg.Wait()
	werr := s.stopWorkers()
	s.mu.Lock()
	fatal := s.fatal
	s.mu.Unlock()
	return errors.Join(err, fatal, werr)
}

// stats returns the counters so far.
func (s *server) stats() serveStats {
	st := serveStats{Served: s.served.Load(), Failed: s.failed.Load()}
	for _, w := range s.workers {
		st.Ended += w.ended.Load()
	}
	s.mu.Lock()
	st.LastError = s.lastErr
	s.mu.Unlock()
	return st
}

// handle runs one connection: the opener and a context frame in, one
// reply frame out, then the session inline or a handoff to a worker.
func (s *server) handle(conn net.Conn) error {
	if err := conn.SetDeadline(time.Now().Add(ioTimeout)); err != nil {
		return fmt.Errorf("floor: setting the deadline: %w", err)
	}
	r := wire.NewReader(conn, acceptorReadBuffer)
	f, err := r.ReadFrame(maxFrameBody)
	if err != nil {
		return fmt.Errorf("floor: reading the opener: %w", err)
	}
	if f.Flags != wire.FlagNoop|wire.FlagContextNext {
		return fmt.Errorf("floor: opener flags %#02x, want %#02x", f.Flags, wire.FlagNoop|wire.FlagContextNext)
	}
	if f, err = r.ReadFrame(maxFrameBody); err != nil {
		return fmt.Errorf("floor: reading the context frame: %w", err)
	}
	if f.Flags&wire.FlagContext == 0 {
		return fmt.Errorf("floor: context frame flags %#02x", f.Flags)
	}
	if err := wire.WriteFrame(conn, wire.FlagContext, s.reply); err != nil {
		return fmt.Errorf("floor: writing the reply: %w", err)
	}
	if s.cfg.inline {
		_, err := serveSession(conn, r)
		return err
	}
	return s.handoff(conn)
}

// handoff passes conn's descriptor and a token to the next worker, round
// robin, and waits for its ACK. conn stays open until then.
func (s *server) handoff(conn net.Conn) error {
	id := s.next.Add(1)
	w := s.workers[id%uint64(len(s.workers))]
	ack := make(chan bool, 1)
	if !w.register(id, ack) {
		return fmt.Errorf("floor: worker %d is gone", w.pid)
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		w.forget(id)
		return fmt.Errorf("floor: %T has no descriptor", conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		w.forget(id)
		return fmt.Errorf("floor: connection descriptor: %w", err)
	}
	tok := make([]byte, s.cfg.token)
	binary.BigEndian.PutUint64(tok, id)
	var serr error
	if err := raw.Control(func(fd uintptr) {
		_, _, serr = w.uc.WriteMsgUnix(tok, unix.UnixRights(int(fd)), nil)
	}); err != nil || serr != nil {
		w.forget(id)
		return fmt.Errorf("floor: handoff to worker %d: %w", w.pid, errors.Join(err, serr))
	}
	t := time.NewTimer(ioTimeout)
	defer t.Stop()
	select {
	case ok := <-ack:
		if !ok {
			return fmt.Errorf("floor: worker %d exited before its ACK", w.pid)
		}
		return nil
	case <-t.C:
		w.forget(id)
		return fmt.Errorf("floor: no ACK from worker %d within %v", w.pid, ioTimeout)
	case <-s.stopped:
		w.forget(id)
		return errors.New("floor: stopped while waiting for an ACK")
	}
}

// serveSession reads the client's frames until its NOOP or end of stream.
// It returns the number of frames read.
func serveSession(conn interface{ SetReadDeadline(time.Time) error }, r *wire.Reader) (int, error) {
	for frames := range maxSessionFrames {
		if err := conn.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			return frames, fmt.Errorf("floor: setting the read deadline: %w", err)
		}
		f, err := r.ReadFrame(maxFrameBody)
		if errors.Is(err, io.EOF) {
			return frames, nil
		}
		if err != nil {
			return frames, fmt.Errorf("floor: reading a session frame: %w", err)
		}
		if f.Flags&wire.FlagNoop != 0 {
			return frames + 1, nil
		}
	}
	return maxSessionFrames, fmt.Errorf("floor: no NOOP within %d frames", maxSessionFrames)
}

// count records the outcome of one connection.
func (s *server) count(err error) {
	if err == nil {
		s.served.Add(1)
		return
	}
	s.failed.Add(1)
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
}

// track registers a live connection; false once the server is stopping.
func (s *server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// untrack forgets a finished connection.
func (s *server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// isClosing reports whether stop has been called.
func (s *server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// stop closes the listener and every live connection; idempotent.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		close(s.stopped)
		s.ln.Close()
	})
}

// fail records a worker failure, unless the server is stopping anyway,
// and stops the server.
func (s *server) fail(err error) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if s.fatal == nil {
		s.fatal = err
	}
	s.mu.Unlock()
	s.stop()
}

// stopWorkers stops every worker and returns their failures.
func (s *server) stopWorkers() error {
	var errs []error
	for _, w := range s.workers {
		errs = append(errs, w.stop())
	}
	return errors.Join(errs...)
}

// workerChan is the acceptor's end of one worker's channel.
type workerChan struct {
	uc   *net.UnixConn
	cmd  *exec.Cmd
	pid  int
	fail func(error)

	mu      sync.Mutex
	pending map[uint64]chan bool // ACK waiters; nil once the channel is down

	ready      chan struct{} // closed on READY
	readerDone chan struct{} // closed when read returns
	exited     chan struct{} // closed when the process has been waited for
	waitErr    error         // set before exited is closed
	ended      atomic.Int64
}

// startWorker creates a channel, starts cmd with the channel's other end
// as fd 3 and waits for its READY. fail is called if the worker fails
// later.
func startWorker(cmd *exec.Cmd, fail func(error)) (*workerChan, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("floor: socketpair: %w", err)
	}
	child := os.NewFile(uintptr(fds[1]), "floor-channel-child")
	defer child.Close()
	pf := os.NewFile(uintptr(fds[0]), "floor-channel")
	nc, err := net.FileConn(pf)
	pf.Close()
	if err != nil {
		return nil, fmt.Errorf("floor: channel: %w", err)
	}
	uc, ok := nc.(*net.UnixConn)
	if !ok {
		nc.Close()
		return nil, fmt.Errorf("floor: channel is a %T", nc)
	}
	cmd.ExtraFiles = []*os.File{child}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	if err := cmd.Start(); err != nil {
		uc.Close()
		return nil, fmt.Errorf("floor: starting a worker: %w", err)
	}
	w := &workerChan{
		uc: uc, cmd: cmd, pid: cmd.Process.Pid, fail: fail,
		pending:    make(map[uint64]chan bool),
		ready:      make(chan struct{}),
		readerDone: make(chan struct{}),
		exited:     make(chan struct{}),
	}
	go func() {
		w.waitErr = cmd.Wait()
		close(w.exited)
	}()
	go w.read()
	t := time.NewTimer(ioTimeout)
	defer t.Stop()
	select {
	case <-w.ready:
		return w, nil
	case <-w.readerDone:
		return nil, errors.Join(fmt.Errorf("floor: worker %d ended its channel during startup", w.pid), w.stop())
	case <-t.C:
		return nil, errors.Join(fmt.Errorf("floor: worker %d not ready within %v", w.pid, ioTimeout), w.stop())
	}
}

// read is the channel's only reader: it takes READY, delivers ACKs to the
// handoffs waiting for them and counts SESSION_ENDs.
func (w *workerChan) read() {
	defer close(w.readerDone)
	defer w.failPending()
	buf := make([]byte, endLen+1)
	for {
		n, err := w.uc.Read(buf)
		if err != nil || n == 0 {
			if errors.Is(err, net.ErrClosed) {
				return // our own stop
			}
			if err == nil {
				err = io.EOF
			}
			w.fail(fmt.Errorf("floor: worker %d closed its channel: %w", w.pid, err))
			return
		}
		switch n {
		case readyLen:
			select {
			case <-w.ready:
				w.fail(fmt.Errorf("floor: worker %d sent READY twice", w.pid))
				return
			default:
				close(w.ready)
			}
		case ackLen:
			w.deliver(binary.BigEndian.Uint64(buf))
		case endLen:
			w.ended.Add(1)
		default:
			w.fail(fmt.Errorf("floor: worker %d sent a message of %d bytes", w.pid, n))
			return
		}
	}
}

// register adds an ACK waiter; false if the channel is down.
func (w *workerChan) register(id uint64, ack chan bool) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.pending == nil {
		return false
	}
	w.pending[id] = ack
	return true
}

// forget removes an ACK waiter that gave up.
func (w *workerChan) forget(id uint64) {
	w.mu.Lock()
	delete(w.pending, id)
	w.mu.Unlock()
}

// deliver wakes the handoff waiting for ACK id.
func (w *workerChan) deliver(id uint64) {
	w.mu.Lock()
	ack, ok := w.pending[id]
	delete(w.pending, id)
	w.mu.Unlock()
	if ok {
		ack <- true
	}
}

// failPending wakes every waiting handoff with a failure and refuses new
// ones.
func (w *workerChan) failPending() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ack := range w.pending {
		ack <- false
	}
	w.pending = nil
}

// stop shuts the channel's sending side, so the worker sees end of file,
// ends its sessions, sends their SESSION_ENDs and exits; a worker still
// running after ioTimeout is killed. It returns the worker's exit error.
func (w *workerChan) stop() error {
	w.uc.CloseWrite()
	select {
	case <-w.exited:
	case <-time.After(ioTimeout):
		w.cmd.Process.Kill()
		<-w.exited
	}
	// The reader drains the last messages and returns at end of file. A
	// worker's descendants could still hold the channel open; Close ends
	// the reader then.
	select {
	case <-w.readerDone:
	case <-time.After(time.Second):
	}
	w.uc.Close()
	<-w.readerDone
	if w.waitErr != nil {
		return fmt.Errorf("floor: worker %d: %w", w.pid, w.waitErr)
	}
	return nil
}
