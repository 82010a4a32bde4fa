package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// runningWorker is a Worker running in this process on one end of a
// handoff socketpair; the test plays the acceptor on the other.
type runningWorker struct {
	w      *Worker
	parent *handoff.Conn
	seal   *gss.SealKey
	done   chan error
	cancel context.CancelFunc
	nextID uint64
}

// startWorker runs a Worker with the given HELLO limits and waits for its
// READY.
func startWorker(t *testing.T, maxMessage uint32) *runningWorker {
	t.Helper()
	return startWorkerWith(t, Config{}, maxMessage)
}

// startWorkerWith is startWorker with cfg (its Channel is set here).
func startWorkerWith(t *testing.T, cfg Config, maxMessage uint32) *runningWorker {
	t.Helper()
	return startWorkerHello(t, cfg, handoff.Hello{MaxMessageBytes: maxMessage})
}

// startWorkerHello is startWorkerWith with the limits of hello (its key
// fields are set here).
func startWorkerHello(t *testing.T, cfg Config, hello handoff.Hello) *runningWorker {
	t.Helper()
	parent, ch := newChannel(t)
	cfg.Channel = ch
	seal, err := gss.GenerateSealKey(7)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rw := &runningWorker{w: New(cfg), parent: parent, seal: seal, done: make(chan error, 1), cancel: cancel}
	go func() { rw.done <- rw.w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		parent.Close()
		select {
		case <-rw.done:
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop")
		}
	})
	hello.KeyID = seal.ID()
	copy(hello.Key[:], seal.AppendKey(nil))
	if err := parent.Send(&hello); err != nil {
		t.Fatal(err)
	}
	rw.recvType(t, handoff.TypeReady)
	return rw
}

// clientSession is the client end of a handed-off session.
type clientSession struct {
	id   uint64
	conn *os.File
	r    *wire.Reader
	ctx  *gss.Context
}

// handOff hands a fresh session to the worker and returns its client end
// once the worker acknowledged it.
func (rw *runningWorker) handOff(t *testing.T) *clientSession {
	t.Helper()
	s := rw.send(t)
	ack := rw.recvType(t, handoff.TypeAck).(*handoff.Ack)
	if ack.ID != s.id || ack.Status != 0 {
		t.Fatalf("ACK %+v for handoff %d", ack, s.id)
	}
	return s
}

// send hands a fresh session to the worker without waiting for its ACK.
func (rw *runningWorker) send(t *testing.T) *clientSession {
	t.Helper()
	token, cctx := establish(t, rw.seal)
	srv, cli := socketPair(t)
	rw.nextID++
	id := rw.nextID
	if err := rw.parent.Send(&handoff.Handoff{ID: id, Token: token, File: srv}); err != nil {
		t.Fatal(err)
	}
	srv.Close() // the worker holds its own copy now
	return &clientSession{id: id, conn: cli, r: wire.NewReader(cli, 4096), ctx: cctx}
}

// waitParentGone waits for Run to return ErrParentGone once the last
// session has ended.
func (rw *runningWorker) waitParentGone(t *testing.T) {
	t.Helper()
	select {
	case err := <-rw.done:
		if !errors.Is(err, ErrParentGone) {
			t.Fatalf("Run: %v, want ErrParentGone", err)
		}
		rw.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the last session ended")
	}
}

// drain sends DRAIN and checks the worker answers BYE and Run returns
// (nil, or ErrParentGone).
func (rw *runningWorker) drain(t *testing.T) {
	t.Helper()
	if err := rw.parent.Send(&handoff.Drain{}); err != nil {
		t.Fatal(err)
	}
	if m, err := rw.parent.Recv(); err != nil || m.Type() != handoff.TypeBye {
		t.Fatalf("want BYE, got %v, %v", m, err)
	}
	select {
	case err := <-rw.done:
		if err != nil && !errors.Is(err, ErrParentGone) {
			t.Fatalf("Run: %v", err)
		}
		rw.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after DRAIN")
	}
}

// recvType reads messages from the worker until one of type typ, skipping
// load reports of other kinds.
func (rw *runningWorker) recvType(t *testing.T, typ handoff.Type) handoff.Message {
	t.Helper()
	rw.parent.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer rw.parent.SetReadDeadline(time.Time{})
	for {
		m, err := rw.parent.Recv()
		if err != nil {
			t.Fatalf("waiting for %v: %v", typ, err)
		}
		if m.Type() == typ {
			return m
		}
	}
}

func (s *clientSession) exchange(msg string) error {
	tok, err := s.ctx.Wrap([]byte(msg), true)
	if err != nil {
		return err
	}
	s.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteFrame(s.conn, wire.FlagData|wire.FlagWrapped|wire.FlagEncrypted|wire.FlagSendMIC, tok); err != nil {
		return err
	}
	f, err := s.r.ReadFrame(1 << 16)
	if err != nil {
		return err
	}
	return s.ctx.VerifyMIC([]byte(msg), f.Body)
}

// closedByServer reads until the server closes the session (EOF or a
// reset), discarding any replies still in flight.
func (s *clientSession) closedByServer() error {
	s.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, s.conn)
	if err == nil || errors.Is(err, syscall.ECONNRESET) {
		return nil
	}
	return fmt.Errorf("session not closed by the worker: %w", err)
}

// A hostile frame ends only its own session: another session in the same
// worker goes on, and the SESSION_END for the bad one says it failed.
func TestBadFrameEndsOnlyItsSession(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name string
		send func(s *clientSession) []byte
	}{
		{"garbage wrap token", func(*clientSession) []byte {
			return wire.AppendFrame(nil, wire.FlagData|wire.FlagWrapped, []byte("garbage"))
		}},
		{"replayed wrap token", func(s *clientSession) []byte {
			tok, _ := s.ctx.Wrap([]byte("once"), true)
			f := wire.AppendFrame(nil, wire.FlagData|wire.FlagWrapped|wire.FlagSendMIC, tok)
			return append(f, f...)
		}},
		{"oversized DATA header", func(*clientSession) []byte { return []byte{wire.FlagData, 0, 1, 0, 0} }},
		{"unexpected frame type", func(*clientSession) []byte { return wire.AppendFrame(nil, wire.FlagMIC, []byte("x")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := startWorker(t, 4096)
			good, bad := rw.handOff(t), rw.handOff(t)
			if err := bad.exchange("before"); err != nil {
				t.Fatal(err)
			}
			bad.conn.Write(tt.send(bad))
			if err := bad.closedByServer(); err != nil {
				t.Fatal(err)
			}
			end := rw.recvType(t, handoff.TypeSessionEnd).(*handoff.SessionEnd)
			if end.ID != bad.id || end.Result != handoff.SessionFailed || end.Load != 1 {
				t.Errorf("SESSION_END %+v, want session %d failed with load 1", *end, bad.id)
			}
			if err := good.exchange("unaffected"); err != nil {
				t.Fatalf("other session: %v", err)
			}
			if rw.w.Active() != 1 {
				t.Errorf("%d active sessions, want 1", rw.w.Active())
			}
		})
	}
}

// When the acceptor goes away the worker finishes its open sessions, then
// Run returns ErrParentGone; nothing is left running.
func TestParentGoneFinishesSessions(t *testing.T) {
	checkLeaks(t)
	rw := startWorker(t, 1<<20)
	s := rw.handOff(t)
	rw.parent.Close()
	for i := range 3 {
		if err := s.exchange(fmt.Sprintf("orphaned %d", i)); err != nil {
			t.Fatalf("session after the acceptor left: %v", err)
		}
	}
	select {
	case err := <-rw.done:
		t.Fatalf("Run returned %v with a session open", err)
	case <-time.After(100 * time.Millisecond):
	}
	wire.WriteFrame(s.conn, wire.FlagNoop, nil)
	rw.waitParentGone(t)
}

// A PING is answered with a PONG of the same sequence number, with a
// session open and after one has ended: the end report queued for the next
// message goes out ahead of the PONG, not after it.
func TestPingAnsweredWithPong(t *testing.T) {
	checkLeaks(t)
	rw := startWorker(t, 1<<20)
	s := rw.handOff(t)
	if err := rw.parent.Send(&handoff.Ping{Seq: 41}); err != nil {
		t.Fatal(err)
	}
	if p := rw.recvType(t, handoff.TypePong).(*handoff.Pong); p.Seq != 41 {
		t.Errorf("PONG %d, want 41", p.Seq)
	}
	wire.WriteFrame(s.conn, wire.FlagNoop, nil)
	// The session's end waits (up to the flush delay) for the next message.
	deadline := time.Now().Add(10 * time.Second)
	for rw.w.Active() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := rw.parent.Send(&handoff.Ping{Seq: 42}); err != nil {
		t.Fatal(err)
	}
	rw.parent.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []handoff.Type
	for len(got) < 2 {
		m, err := rw.parent.Recv()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, m.Type())
		if p, ok := m.(*handoff.Pong); ok && p.Seq != 42 {
			t.Errorf("PONG %d, want 42", p.Seq)
		}
	}
	rw.parent.SetReadDeadline(time.Time{})
	if got[0] != handoff.TypeSessionEnd || got[1] != handoff.TypePong {
		t.Errorf("messages %v, want SESSION_END then PONG", got)
	}
}

// A HANDOFF the acceptor sent just before it exited is served, even though
// the acceptor left an ACK of ours unread: the kernel then reports
// ECONNRESET once, ahead of that HANDOFF, and stopping there lost the
// session, whose connection now only this worker holds.
func TestParentGoneWithUnreadAckStillServesQueuedHandoff(t *testing.T) {
	checkLeaks(t)
	rw := startWorker(t, 1<<20)
	first := rw.handOff(t)
	// A second session whose ACK the acceptor never reads: once an
	// exchange went through, the ACK is queued on the acceptor's end.
	second := rw.send(t)
	if err := second.exchange("before the acceptor exits"); err != nil {
		t.Fatal(err)
	}
	// The acceptor's last HANDOFF, then it is gone with the ACK unread.
	third := rw.send(t)
	rw.parent.Close()
	for _, s := range []*clientSession{first, second, third} {
		if err := s.exchange("after the acceptor exited"); err != nil {
			t.Fatalf("session %d: %v", s.id, err)
		}
		wire.WriteFrame(s.conn, wire.FlagNoop, nil)
	}
	rw.waitParentGone(t)
}

// Cancelling Run's context (SIGTERM) cuts every session at once.
func TestCancelCutsSessions(t *testing.T) {
	checkLeaks(t)
	rw := startWorker(t, 1<<20)
	sessions := []*clientSession{rw.handOff(t), rw.handOff(t)}
	rw.cancel()
	for i, s := range sessions {
		if err := s.closedByServer(); err != nil {
			t.Errorf("session %d: %v", i, err)
		}
	}
	select {
	case err := <-rw.done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v, want context.Canceled", err)
		}
		rw.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
}

// A token that does not import (garbage, or sealed with another key) is
// refused with a GSS status in the ACK, and the connection is closed.
func TestImportFailureClosesConnection(t *testing.T) {
	checkLeaks(t)
	other, err := gss.GenerateSealKey(7)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		token func(t *testing.T) []byte
	}{
		{"garbage token", func(*testing.T) []byte { return []byte("GSXC not really a token") }},
		{"sealed with another acceptor's key", func(t *testing.T) []byte {
			tok, _ := establish(t, other)
			return tok
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rw := startWorker(t, 1<<20)
			srv, cli := socketPair(t)
			id := uint64(50 + i)
			if err := rw.parent.Send(&handoff.Handoff{ID: id, Token: tt.token(t), File: srv}); err != nil {
				t.Fatal(err)
			}
			srv.Close()
			ack := rw.recvType(t, handoff.TypeAck).(*handoff.Ack)
			if ack.ID != id || ack.Status == 0 || gss.Major(ack.Status).Routine() == 0 {
				t.Errorf("ACK %+v, want a GSS routine error for handoff %d", ack, id)
			}
			s := &clientSession{conn: cli}
			if err := s.closedByServer(); err != nil {
				t.Error(err)
			}
			if rw.w.Active() != 0 {
				t.Errorf("%d active sessions after a failed import", rw.w.Active())
			}
		})
	}
}

// A first message that is not a usable HELLO stops the worker with
// ErrBadHello (the exit status that is not respawned).
func TestBadHello(t *testing.T) {
	checkLeaks(t)
	tests := []struct {
		name string
		send handoff.Message
	}{
		{"DRAIN first", &handoff.Drain{}},
		{"ACK first", &handoff.Ack{ID: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, ch := newChannel(t)
			done := make(chan error, 1)
			go func() { done <- New(Config{Channel: ch}).Run(context.Background()) }()
			if err := parent.Send(tt.send); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if !errors.Is(err, ErrBadHello) || !strings.Contains(err.Error(), "first message") {
					t.Fatalf("Run: %v, want ErrBadHello", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Run did not return")
			}
			ch.Close()
		})
	}
}

// checkLeaks fails t if goroutines started during the test are still
// running after it and its cleanups (registered first, it runs last).
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}
