package supervisor

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/listener"
	"github.com/gss-acceptor/gss-acceptor/internal/proctest"
)

// A worker that sends HANDOFF messages of its own, each with a
// descriptor, does not leak descriptors into the acceptor: the pool's
// reader closes every descriptor on a message it does not expect.
func TestPoolClosesStrayDescriptors(t *testing.T) {
	fp := startFaultyPool(t, 1, modeFDSpam, nil)
	before := openFDs(t)
	// The spam comes with the first HANDOFF, ahead of its ACK, so the
	// reader has seen every stray message once handoffOne returns.
	handoffOne(t, fp.Pool, "first")
	if after := openFDs(t); after > before+2 {
		t.Fatalf("%d open descriptors after %d stray HANDOFFs with one each, %d before", after, fakeSpamCount, before)
	}
}

// An ACK a worker sends just before it exits is not lost: the pool reads
// the channel to its end before it fails the worker's handoffs over, so
// the handoff is not re-sent and no second worker takes the session. The
// first SESSION_END is slow to process, so without that drain the exit is
// seen while the ACK still waits in the channel.
func TestPoolKeepsAckSentBeforeExit(t *testing.T) {
	slow := make(chan struct{}, 1)
	slow <- struct{}{}
	fp := startFaultyPool(t, 2, modeAckThenExit, func(c *PoolConfig) {
		c.OnSessionEnd = func(SessionEnd) {
			select {
			case <-slow:
				time.Sleep(300 * time.Millisecond)
			default:
			}
		}
	})
	res := handoffOne(t, fp.Pool, "tok")
	if res.Attempts != 1 || res.Status != 0 {
		t.Errorf("handoff %+v: want taken at the first attempt", res)
	}
	if got := fp.takenBy(t)["tok"]; len(got) != 1 {
		t.Errorf("session taken by workers %v, want exactly one", got)
	}
}

// stopWorker SIGSTOPs the pool's worker in slot 0 and returns its pid; it
// is continued at cleanup if still there.
func stopWorker(t *testing.T, p *Pool) int {
	t.Helper()
	ws, _ := p.Status()
	pid := 0
	for _, w := range ws {
		if w.Slot == 0 {
			pid = w.PID
		}
	}
	if pid == 0 {
		t.Fatalf("no worker in slot 0: %+v", ws)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	proctest.Stop(t, pid)
	return pid
}

// handoffWithin hands a /dev/null descriptor with readAhead to the pool
// under a context of ctxTime and fails t unless Handoff returns within
// limit. It returns Handoff's result.
func handoffWithin(t *testing.T, p *Pool, token string, readAhead []byte, ctxTime, limit time.Duration) (listener.HandoffResult, error) {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		res listener.HandoffResult
		err error
	}
	done := make(chan outcome, 1)
	ctx, cancel := context.WithTimeout(context.Background(), ctxTime)
	go func() {
		defer cancel()
		defer f.Close()
		res, err := p.Handoff(ctx, int(f.Fd()), []byte(token), readAhead, listener.Addrs{})
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		return o.res, o.err
	case <-time.After(limit):
		t.Fatalf("Handoff of %q still blocked after %v (context %v)", token, limit, ctxTime)
		return listener.HandoffResult{}, nil
	}
}

// A worker that stopped reading its channel cannot block a handoff: once
// its socket buffer is full, Handoff still returns when its context ends,
// and Shutdown then finishes.
func TestPoolHandoffToFullChannelIsBounded(t *testing.T) {
	fp := startFaultyPool(t, 1, modeStallBeforeAck, func(c *PoolConfig) { c.AckTimeout = time.Hour })
	stopWorker(t, fp.Pool)
	readAhead := make([]byte, 200<<10) // two or three fill the channel
	for i := range 6 {
		_, err := handoffWithin(t, fp.Pool, fmt.Sprint("t", i), readAhead, 300*time.Millisecond, 5*time.Second)
		if err == nil {
			t.Fatalf("handoff %d to a stopped worker succeeded", i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	fp.Shutdown(ctx) // the deadline error is expected: the worker cannot drain
	if d := time.Since(start); d > time.Second+2*DefaultStopGrace+channelDrainTimeout {
		t.Errorf("Shutdown took %v", d)
	}
}

// Two workers never take the same session, whatever point of the handoff
// a worker fails at: stopped before it reads (SIGSTOP), exiting between
// receive and ACK, exiting right after its ACK, hanging before or after
// its ACK. Every handoff returns, within the ACK timeout plus a margin; a
// handoff that succeeded was taken by exactly the worker that answered;
// a hung worker is killed and replaced.
func TestPoolNeverTwoWorkersOnOneSession(t *testing.T) {
	const (
		ackTimeout = 400 * time.Millisecond
		sessions   = 12
	)
	tests := []struct {
		name     string
		mode     string
		sigstop  bool // SIGSTOP slot 0 before the handoffs
		killWant int  // ack_timeout kills expected
	}{
		{"stopped before reading", "none", true, 1},
		{"exit between receive and ACK", modeExitBeforeAck, false, 0},
		{"exit right after ACK", modeAckThenExit, false, 0},
		{"hang before ACK", modeStallBeforeAck, false, 1},
		{"hang after ACK", modeAckThenStall, false, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fp := startFaultyPool(t, 2, tt.mode, func(c *PoolConfig) { c.AckTimeout = ackTimeout })
			before, _ := fp.Status()
			var stopped int
			if tt.sigstop {
				stopped = stopWorker(t, fp.Pool)
			}
			type outcome struct {
				token string
				res   listener.HandoffResult
				err   error
				took  time.Duration
			}
			out := make(chan outcome, sessions)
			for i := range sessions {
				go func() {
					tok := fmt.Sprint("s", i)
					start := time.Now()
					res, err := handoffWithin(t, fp.Pool, tok, nil, 10*time.Second, 15*time.Second)
					out <- outcome{tok, res, err, time.Since(start)}
				}()
			}
			var worst time.Duration
			results := map[string]outcome{}
			for range sessions {
				o := <-out
				results[o.token] = o
				worst = max(worst, o.took)
				if o.err != nil {
					t.Errorf("handoff %s: %v", o.token, o.err)
				}
			}
			if limit := ackTimeout + 2*time.Second; worst > limit {
				t.Errorf("slowest handoff took %v, want under %v", worst, limit)
			}
			taken := fp.takenBy(t)
			for tok, o := range results {
				pids := taken[tok]
				if len(pids) > 1 {
					t.Errorf("session %s taken by %d workers: %v", tok, len(pids), pids)
				}
				if o.err == nil && (len(pids) != 1 || pids[0] != fmt.Sprint(o.res.PID)) {
					t.Errorf("session %s: handoff answered by %d, taken by %v", tok, o.res.PID, pids)
				}
			}
			if got := fp.Kills()[KillAckTimeout]; got != tt.killWant {
				t.Errorf("%d ack_timeout kills, want %d", got, tt.killWant)
			}
			if tt.killWant > 0 || tt.sigstop {
				waitReplaced(t, fp.Pool, before, stopped)
			}
		})
	}
}

// waitReplaced waits until the pool again has as many ready workers as in
// before, none of them gone (a pid from before that has since been killed
// or exited) nor stopped.
func waitReplaced(t *testing.T, p *Pool, before []WorkerStatus, stopped int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws, _ := p.Status()
		ready := 0
		for _, w := range ws {
			if w.Ready && w.PID != stopped && syscall.Kill(w.PID, 0) == nil {
				ready++
			}
		}
		if ready == len(before) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %+v: not replaced (before %+v)", ws, before)
		}
	}
}

// A worker whose channel refuses a HANDOFF (it has exited; its reader has
// not reached the end of the channel yet) is not picked again: the
// handoff waits for the replacement instead of spending every attempt
// on the dead worker.
func TestPoolSkipsWorkerWithBrokenChannel(t *testing.T) {
	slow := make(chan struct{}, 1)
	slow <- struct{}{}
	fp := startFaultyPool(t, 1, modeEndThenExit, func(c *PoolConfig) {
		c.OnSessionEnd = func(SessionEnd) {
			select {
			case <-slow:
				time.Sleep(500 * time.Millisecond)
			default:
			}
		}
	})
	first := make(chan error, 1)
	go func() {
		_, err := handoffWithin(t, fp.Pool, "first", nil, 10*time.Second, 15*time.Second)
		first <- err
	}()
	time.Sleep(100 * time.Millisecond) // the worker has exited; the reader sleeps
	if _, err := handoffWithin(t, fp.Pool, "second", nil, 10*time.Second, 15*time.Second); err != nil {
		t.Errorf("second handoff: %v", err)
	}
	if err := <-first; err != nil {
		t.Errorf("first handoff: %v", err)
	}
	for tok, pids := range fp.takenBy(t) {
		if len(pids) != 1 {
			t.Errorf("session %s taken by %v", tok, pids)
		}
	}
}

// A worker that exits with a HANDOFF still unread in its channel makes the
// kernel report ECONNRESET to the pool once, ahead of the messages the
// worker queued before it exited, its last ACK among them. The reader must
// read on to the end: stopping at the reset lost that ACK, and the
// acknowledged session was re-sent and taken by a second worker.
func TestPoolReadsPastResetToLastAck(t *testing.T) {
	// The first SESSION_END is slow to process, so that the worker has
	// exited before the reader gets to the ACK behind it.
	slow := make(chan struct{}, 1)
	slow <- struct{}{}
	fp := startFaultyPool(t, 1, modeAckThenExitQueued, func(c *PoolConfig) {
		c.OnSessionEnd = func(SessionEnd) {
			select {
			case <-slow:
				time.Sleep(300 * time.Millisecond)
			default:
			}
		}
	})
	type outcome struct {
		res listener.HandoffResult
		err error
	}
	out := make(chan outcome, 2)
	handoff := func(tok string) {
		res, err := handoffWithin(t, fp.Pool, tok, nil, 10*time.Second, 15*time.Second)
		out <- outcome{res, err}
	}
	// The one worker takes whichever comes first and holds it until the
	// other is queued behind it.
	go handoff("first")
	go handoff("second")
	for range 2 {
		if o := <-out; o.err != nil {
			t.Errorf("handoff: %v", o.err)
		}
	}
	for tok, pids := range fp.takenBy(t) {
		if len(pids) != 1 {
			t.Errorf("session %s taken by %d workers: %v", tok, len(pids), pids)
		}
	}
}

// The heartbeat finds a stopped worker that gets no handoff: its PING goes
// unanswered, it is killed once and replaced, and the replacement takes
// sessions. Workers that answer their PINGs are never killed, however
// many intervals they stay idle.
func TestPoolHeartbeatKillsStoppedIdleWorker(t *testing.T) {
	const interval, ackTimeout = 150 * time.Millisecond, 400 * time.Millisecond
	fp := startFaultyPool(t, 2, "none", func(c *PoolConfig) {
		c.HeartbeatInterval = interval
		c.AckTimeout = ackTimeout
	})
	before, _ := fp.Status()
	time.Sleep(10 * interval)
	if k := fp.Kills(); len(nonZero(k)) != 0 {
		t.Fatalf("kills %v while every worker answered its PINGs", nonZero(k))
	}
	stopped := stopWorker(t, fp.Pool)
	waitReplaced(t, fp.Pool, before, stopped)
	if k := nonZero(fp.Kills()); len(k) != 1 || k[KillHeartbeat] != 1 {
		t.Errorf("kills %v, want one %s", k, KillHeartbeat)
	}
	handoffOne(t, fp.Pool, "after")
}

// nonZero returns the kill counts above zero.
func nonZero(k map[string]int) map[string]int {
	out := map[string]int{}
	for r, n := range k {
		if n > 0 {
			out[r] = n
		}
	}
	return out
}
