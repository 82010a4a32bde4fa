package worker

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// endSessionCleanly sends the closing NOOP of s and waits until the
// worker has queued the session's SESSION_END (or sent it, for a worker
// that does so at once: queued then stays 0, so the wait is bounded).
func endSessionCleanly(t *testing.T, w *Worker, s *clientSession, wantQueued int) {
	t.Helper()
	if err := wire.WriteFrame(s.conn, wire.FlagNoop, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		w.sendMu.Lock()
		n := w.ends.LenLocked()
		w.sendMu.Unlock()
		if n >= wantQueued && w.Active() == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("session %d did not end within 5 s", s.id)
}

// A SESSION_END waits for the next message to the acceptor and goes out
// just ahead of it: the next handoff's ACK, so that the acceptor reads
// both in one wake-up.
func TestSessionEndGoesOutWithNextAck(t *testing.T) {
	rw := startWorkerWith(t, Config{EndFlushDelay: time.Hour}, 1<<20)
	first := rw.handOff(t)
	endSessionCleanly(t, rw.w, first, 1)
	// Nothing goes out on its own: the report waits (the flush delay is an
	// hour, so this wait cannot end early on a slow machine).
	rw.parent.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if m, err := rw.parent.Recv(); err == nil {
		t.Fatalf("after the session ended: %#v; want nothing until the next ACK", m)
	} else if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal(err)
	}
	second := rw.send(t)
	rw.parent.SetReadDeadline(time.Now().Add(10 * time.Second))
	m, err := rw.parent.Recv()
	if err != nil {
		t.Fatal(err)
	}
	end, ok := m.(*handoff.SessionEnd)
	if !ok || end.ID != first.id || end.Result != handoff.SessionOK {
		t.Fatalf("first message after the second HANDOFF: %#v, want the first session's SESSION_END", m)
	}
	m, err = rw.parent.Recv()
	if err != nil {
		t.Fatal(err)
	}
	ack, ok := m.(*handoff.Ack)
	if !ok || ack.ID != second.id || ack.Load != 1 {
		t.Fatalf("second message: %#v, want ACK{ID %d, load 1}", m, second.id)
	}
	// The SESSION_END carries the load when it was sent, the second
	// session included.
	if end.Load != 1 {
		t.Errorf("SESSION_END load %d, want 1", end.Load)
	}
	// DRAIN: the queued SESSION_END goes out ahead of the BYE.
	endSessionCleanly(t, rw.w, second, 1)
	if err := rw.parent.Send(&handoff.Drain{}); err != nil {
		t.Fatal(err)
	}
	if m, err := rw.parent.Recv(); err != nil || m.Type() != handoff.TypeSessionEnd || m.(*handoff.SessionEnd).ID != second.id {
		t.Fatalf("after DRAIN: %#v, %v; want the second session's SESSION_END", m, err)
	}
	rw.recvType(t, handoff.TypeBye)
}

// With no other message to ride on, the SESSION_END goes out when the
// flush delay passes.
func TestSessionEndFlushedAfterDelay(t *testing.T) {
	rw := startWorkerWith(t, Config{EndFlushDelay: 10 * time.Millisecond}, 1<<20)
	expectEndReport(t, rw, rw.handOff(t))
}

// A worker at its session cap reports an end at once, whatever the flush
// delay: the acceptor is waiting for that room.
func TestSessionEndAtCapSentAtOnce(t *testing.T) {
	rw := startWorkerHello(t, Config{EndFlushDelay: time.Hour}, handoff.Hello{MaxMessageBytes: 1 << 20, MaxSessions: 1})
	expectEndReport(t, rw, rw.handOff(t))
}

// expectEndReport sends s's closing NOOP and expects its SESSION_END,
// with load 0, as the next message of that type.
func expectEndReport(t *testing.T, rw *runningWorker, s *clientSession) {
	t.Helper()
	if err := wire.WriteFrame(s.conn, wire.FlagNoop, nil); err != nil {
		t.Fatal(err)
	}
	end := rw.recvType(t, handoff.TypeSessionEnd).(*handoff.SessionEnd)
	if end.ID != s.id || end.Load != 0 {
		t.Errorf("SESSION_END %+v, want ID %d, load 0", end, s.id)
	}
}
