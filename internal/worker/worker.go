package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// readBufferSize is the per-session frame reader buffer.
const readBufferSize = 16 << 10

// endFlushDelay bounds how long a SESSION_END waits to go out with the
// next ACK (ARCHITECTURE.md §11): one client at a time, the next handoff's
// ACK comes within a millisecond and carries it, so the acceptor wakes
// once per connection for both; on a quiet worker the timer sends it. The
// acceptor's session metrics and the worker's load it keeps are this much
// late at most; a worker at its session cap reports an end at once.
const endFlushDelay = 20 * time.Millisecond

// ErrParentGone is returned by Run when the acceptor closed the channel (it
// exited or was killed). The worker has finished its sessions by then.
var ErrParentGone = errors.New("worker: acceptor closed the handoff channel")

// ErrBadHello is returned by Run when the acceptor's first message is
// unusable; restarting the worker would not help.
var ErrBadHello = errors.New("worker: bad HELLO from acceptor")

// Config configures a Worker.
type Config struct {
	Channel *handoff.Conn // the handoff channel to the acceptor (fd 3)
	Service Service       // nil: SampleService
	Logger  *zap.Logger   // nil: no logging
	// EndFlushDelay is how long a SESSION_END may wait to go out with the
	// next message to the acceptor; 0: endFlushDelay.
	EndFlushDelay time.Duration
}

// Worker receives handoffs and serves sessions. Create it with New and run
// it with Run; it is not reusable.
type Worker struct {
	ch      *handoff.Conn
	service Service
	log     *zap.Logger

	// Set from HELLO before the first handoff; immutable after.
	importer    *gss.Importer
	id          uint32
	maxMessage  int
	maxSessions int // HELLO's cap; 0: none
	idleTimeout time.Duration

	sendMu sync.Mutex // serializes Send on ch: sessions report load as they end
	// SESSION_ENDs waiting for the next message to the acceptor or for
	// the flush delay; under sendMu.
	ends *handoff.Deferred[*handoff.SessionEnd]

	active   atomic.Int32 // sessions being served
	sessions sync.WaitGroup

	mu    sync.Mutex
	conns map[uint64]net.Conn // live session connections, closed on forced stop
}

// New returns a Worker for cfg.
func New(cfg Config) *Worker {
	w := &Worker{
		ch:      cfg.Channel,
		service: cfg.Service,
		log:     cfg.Logger,
		conns:   make(map[uint64]net.Conn),
	}
	delay := cfg.EndFlushDelay
	if delay <= 0 {
		delay = endFlushDelay
	}
	w.ends = handoff.NewDeferred(&w.sendMu, delay, w.sendEndLocked)
	if w.service == nil {
		w.service = SampleService{}
	}
	if w.log == nil {
		w.log = zap.NewNop()
	}
	return w
}

// maxResets bounds the ECONNRESETs Run skips on the channel: the kernel
// reports one when the acceptor closes its end with messages of ours
// unread; more means the socket is broken.
const maxResets = 2

// Run performs the HELLO exchange and then serves handoffs until the
// acceptor sends DRAIN (returns nil once every session has ended), the
// acceptor goes away (returns ErrParentGone after the sessions end), or ctx
// is cancelled (every session connection is closed at once and ctx.Err() is
// returned).
func (w *Worker) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, w.closeAll)
	defer stop()

	if err := w.hello(); err != nil {
		return err
	}
	resets := 0
	for {
		m, err := w.ch.Recv()
		if errors.Is(err, syscall.ECONNRESET) && resets < maxResets {
			// The acceptor exited with messages of ours unread. The
			// kernel reports that once, ahead of what the acceptor sent
			// before it exited: a HANDOFF still queued is a session this
			// worker is now the only one to hold, so read on to EOF.
			resets++
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) && ctx.Err() == nil {
				w.log.Info("acceptor went away; finishing sessions", zap.Int32("sessions", w.active.Load()))
			}
			w.sessions.Wait()
			w.flushEnds()
			switch {
			case ctx.Err() != nil:
				return ctx.Err()
			case errors.Is(err, io.EOF):
				return ErrParentGone
			}
			return fmt.Errorf("worker: receiving from acceptor: %w", err)
		}
		switch m := m.(type) {
		case *handoff.Handoff:
			w.handle(ctx, m)
		case *handoff.Ping:
			// Answered from this loop: the PONG shows the acceptor that
			// the loop still reads the channel (ARCHITECTURE.md §6).
			w.send(&handoff.Pong{Seq: m.Seq})
		case *handoff.Drain:
			w.log.Info("draining", zap.Int32("sessions", w.active.Load()))
			w.sessions.Wait()
			w.send(&handoff.Bye{Reason: handoff.ByeDrained})
			return nil
		default:
			w.sessions.Wait()
			w.flushEnds()
			return fmt.Errorf("worker: unexpected %T from acceptor", m)
		}
	}
}

// hello reads the acceptor's HELLO and answers READY.
func (w *Worker) hello() error {
	m, err := w.ch.Recv()
	if err != nil {
		return fmt.Errorf("%w: waiting for it: %w", ErrBadHello, err)
	}
	h, ok := m.(*handoff.Hello)
	if !ok {
		return fmt.Errorf("%w: first message is %T", ErrBadHello, m)
	}
	defer h.Zero()
	key, err := gss.NewSealKey(h.KeyID, h.Key[:])
	if err != nil {
		return fmt.Errorf("%w: seal key: %w", ErrBadHello, err)
	}
	w.importer = gss.NewImporter(key)
	w.id = h.WorkerID
	w.maxMessage = int(h.MaxMessageBytes)
	w.maxSessions = int(h.MaxSessions)
	w.idleTimeout = time.Duration(h.IdleTimeoutMS) * time.Millisecond
	w.log = w.log.With(zap.Uint32("worker", h.WorkerID), zap.Uint32("generation", h.Generation))
	w.log.Debug("hello received", zap.Int("max_message", w.maxMessage), zap.Duration("idle_timeout", w.idleTimeout))
	return w.send(&handoff.Ready{PID: uint32(os.Getpid())})
}

// handle imports one handed-off context and starts its session. It always
// answers with an ACK, so the acceptor can close its copy of the socket.
func (w *Worker) handle(ctx context.Context, h *handoff.Handoff) {
	// WithLazy: the field is encoded on the first line logged, not per
	// session up front (an idle session logs nothing until it ends).
	log := w.log.WithLazy(zap.Uint64("session", h.ID))
	gctx, err := w.importer.Import(h.Token)
	clear(h.Token)
	if err != nil {
		h.File.Close()
		log.Warn("import failed; connection closed", zap.Error(err))
		w.send(&handoff.Ack{ID: h.ID, Status: uint32(gss.MajorOf(err)), Load: uint32(w.active.Load())})
		return
	}
	conn, err := sessionConn(h.File)
	if err != nil {
		gctx.Delete()
		log.Warn("received descriptor unusable; connection closed", zap.Error(err))
		w.send(&handoff.Ack{ID: h.ID, Status: uint32(gss.StatusFailure), Load: uint32(w.active.Load())})
		return
	}
	conn = withAddrs(conn, h.Client, h.Server)
	w.active.Add(1)
	w.sessions.Add(1)
	w.track(h.ID, conn)
	w.sendLoad(&handoff.Ack{ID: h.ID, Status: 0})

	var r io.Reader = conn
	if len(h.ReadAhead) > 0 {
		r = io.MultiReader(bytes.NewReader(h.ReadAhead), conn)
	}
	s := &Session{
		ID:             h.ID,
		Context:        gctx,
		Conn:           conn,
		Reader:         wire.NewReader(r, readBufferSize),
		Log:            log,
		MaxMessageSize: w.maxMessage,
		IdleTimeout:    w.idleTimeout,
	}
	go w.serve(ctx, s)
}

// serve runs one session to its end and logs its outcome.
func (w *Worker) serve(ctx context.Context, s *Session) {
	start := time.Now()
	end := handoff.SessionFailed // until Serve returns cleanly; a panic stays failed
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("session panicked; session closed", zap.Any("panic", p))
		}
		s.Conn.Close()
		s.Context.Delete()
		w.untrack(s.ID)
		w.active.Add(-1)
		// Report the session's counters (the acceptor keeps the metrics)
		// and the new load, so the acceptor's dispatcher stays accurate.
		w.endSession(&handoff.SessionEnd{
			ID:          s.ID,
			Result:      end,
			DurationUS:  uint64(max(time.Since(start), 0) / time.Microsecond),
			MessagesIn:  uint64(max(s.MessagesIn, 0)),
			MessagesOut: uint64(max(s.MessagesOut, 0)),
			BytesIn:     uint64(max(s.BytesIn, 0)),
			BytesOut:    uint64(max(s.BytesOut, 0)),
			Backend:     s.Backend,
		})
		w.sessions.Done()
	}()
	err := w.service.Serve(ctx, s)
	result, level := "ok", zap.InfoLevel
	if err != nil && !errors.Is(err, ErrSessionDone) {
		result, level = "error", zap.WarnLevel
	} else {
		err = nil
		end = handoff.SessionOK
	}
	if ce := s.Log.Check(level, "session ended"); ce != nil {
		fields := []zap.Field{
			zap.String("result", result),
			zap.String("client", s.Context.InitiatorName()),
			zap.String("service", s.Context.AcceptorName()),
			zap.Int32("enctype", s.Context.Enctype()),
			zap.Stringer("flags", s.Context.Flags()),
			zap.Duration("duration", time.Since(start)),
			zap.Int("messages_in", s.MessagesIn),
			zap.Int("messages_out", s.MessagesOut),
			zap.Int64("bytes_in", s.BytesIn),
			zap.Int64("bytes_out", s.BytesOut),
		}
		ce.Write(append(backendFields(fields, s.Backend), zap.Error(err))...)
	}
}

// backendFields appends the backend's part of the session's log line (the
// same values SESSION_END carries): nothing for gss-sample.
func backendFields(f []zap.Field, b handoff.BackendEnd) []zap.Field {
	if b.Kind == handoff.BackendNone {
		return f
	}
	f = append(f,
		zap.Stringer("backend", b.Kind),
		zap.Uint64("client_to_backend", b.ToBackend),
		zap.Uint64("backend_to_client", b.FromBackend))
	if b.Connect != handoff.ConnectNone {
		f = append(f,
			zap.Stringer("backend_connect", b.Connect),
			zap.Duration("backend_connect_time", time.Duration(min(b.ConnectUS, uint64(math.MaxInt64/int64(time.Microsecond))))*time.Microsecond))
	}
	if status := b.ExitStatus(); status != "" {
		f = append(f, zap.String("exec_status", status))
	}
	return f
}

// endSession queues a finished session's SESSION_END to go out ahead of
// the next message to the acceptor, or after the flush delay, whichever
// comes first. A worker that was at its session cap sends it at once: the
// acceptor waits for that room.
func (w *Worker) endSession(m *handoff.SessionEnd) {
	w.ends.Add(m, w.maxSessions > 0 && int(w.active.Load())+1 >= w.maxSessions)
}

// flushEnds sends the queued SESSION_ENDs.
func (w *Worker) flushEnds() { w.ends.Flush() }

// sendEndLocked sends one queued SESSION_END with the current load: the
// queued ones go back to back, and the acceptor reads them in one
// wake-up with whatever follows. sendMu is held.
func (w *Worker) sendEndLocked(m *handoff.SessionEnd) {
	m.Load = uint32(max(w.active.Load(), 0))
	if err := w.ch.Send(m); err != nil {
		w.log.Debug("send to acceptor failed", zap.Error(err))
	}
}

// send writes one message to the acceptor, after any queued SESSION_ENDs.
// A failure means the acceptor is gone; Run notices it on its next Recv,
// so it is only logged here.
func (w *Worker) send(m handoff.Message) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	w.ends.FlushLocked()
	err := w.ch.Send(m)
	if err != nil {
		w.log.Debug("send to acceptor failed", zap.Error(err))
	}
	return err
}

// sendLoad sends an ACK or SESSION_END with its Load set to the number of
// active sessions read under the send lock. Reading it there keeps reports
// in the order of the counts they carry: when one session ends while
// another starts, the last report the acceptor receives is the current
// load, not a stale one that lost the race to the channel.
func (w *Worker) sendLoad(m handoff.Message) error {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	w.ends.FlushLocked()
	load := uint32(max(w.active.Load(), 0))
	switch m := m.(type) {
	case *handoff.Ack:
		m.Load = load
	case *handoff.SessionEnd:
		m.Load = load
	}
	err := w.ch.Send(m)
	if err != nil {
		w.log.Debug("send to acceptor failed", zap.Error(err))
	}
	return err
}

func (w *Worker) track(id uint64, c net.Conn) {
	w.mu.Lock()
	w.conns[id] = c
	w.mu.Unlock()
}

func (w *Worker) untrack(id uint64) {
	w.mu.Lock()
	delete(w.conns, id)
	w.mu.Unlock()
}

// closeAll cuts every live session (forced stop) and the channel.
func (w *Worker) closeAll() {
	w.mu.Lock()
	for _, c := range w.conns {
		c.Close()
	}
	w.mu.Unlock()
	w.ch.Close()
}

// Active returns the number of sessions being served.
func (w *Worker) Active() int { return int(w.active.Load()) }
