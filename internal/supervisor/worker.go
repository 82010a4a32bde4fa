package supervisor

import (
	"context"
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

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
)

// workerProc is the acceptor's view of one worker process.
type workerProc struct {
	slot       int
	generation uint32
	cmd        *exec.Cmd
	ch         *handoff.Conn // Send is safe for concurrent use: no lock of ours
	started    time.Time
	pid        int
	// heard is when the reader last received a message from the worker,
	// as monotonic nanoseconds since clockBase, for the heartbeat.
	heard atomic.Int64
	// reserved counts handoffs reserved for this worker whose HANDOFF has
	// not been sent yet. Add happens under Pool.mu and only while the
	// worker is not retiring, so once it retires the count only falls:
	// DRAIN waits for it, and a handoff reserved just before a resize
	// reaches the worker ahead of the DRAIN instead of after it.
	reserved sync.WaitGroup

	// Guarded by Pool.mu.
	ready    bool
	dead     bool
	retiring bool // draining: takes no new sessions
	load     int  // sessions the worker reported plus handoffs in flight
	reported int  // sessions the worker reported in its last ACK
	taken    int  // sessions handed to this worker so far
	killed   bool // SIGKILL sent (kill): takes no new sessions
	broken   bool // a send on its channel failed: takes no new sessions
	pending  map[uint64]*pendingHandoff
	exited   chan struct{} // closed once reaped, the channel read to its end and pending handoffs failed over
	readDone chan struct{} // closed when read returns
	retired  chan struct{} // closed when the worker starts to drain (recycle, resize)
}

// spawn starts one worker in slot i, sends HELLO and starts its reader.
func (p *Pool) spawn(i int) (*workerProc, error) {
	parent, child, err := handoff.Pair()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(p.cfg.Path, p.cfg.Args...)
	cmd.Env = p.cfg.Env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.ExtraFiles = []*os.File{child} // becomes fd 3
	cmd.Stdout = nil
	cmd.Stderr = p.cfg.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cfg.Credential}
	if err := cmd.Start(); err != nil {
		parent.Close()
		child.Close()
		return nil, fmt.Errorf("supervisor: starting %s: %w", p.cfg.Path, err)
	}
	child.Close()

	p.mu.Lock()
	p.gen++
	w := &workerProc{
		slot:       i,
		generation: p.gen,
		cmd:        cmd,
		ch:         parent,
		started:    time.Now(),
		pid:        cmd.Process.Pid,
		pending:    make(map[uint64]*pendingHandoff),
		exited:     make(chan struct{}),
		readDone:   make(chan struct{}),
		retired:    make(chan struct{}),
	}
	p.workers[w] = true
	if i < len(p.slots) {
		p.slots[i] = w
	}
	p.mu.Unlock()

	go p.reap(w)
	go p.read(w)
	if err := p.checkPeer(w); err != nil {
		p.kill(w, KillBadPeer, err)
		return w, nil
	}
	p.mu.Lock()
	hello := p.cfg.Limits // SetLimits may change it
	p.mu.Unlock()
	hello.WorkerID = uint32(i)
	hello.Generation = w.generation
	hello.KeyID = p.cfg.SealKey.ID()
	// PutKey writes straight into the HELLO's array: no other copy of the
	// key exists on this side, and hello.Zero below wipes this one.
	p.cfg.SealKey.PutKey((*[32]byte)(&hello.Key))
	sctx, cancel := context.WithTimeout(context.Background(), channelWriteTimeout)
	err = w.ch.SendContext(sctx, &hello)
	cancel()
	hello.Zero() // Send wiped its own buffer; this is the last copy
	if err != nil {
		p.kill(w, KillStartFailed, fmt.Errorf("sending HELLO: %w", err))
		return w, nil
	}
	go func() {
		t := time.NewTimer(DefaultReadyTimeout)
		defer t.Stop()
		p.mu.Lock()
		for !w.ready && !w.dead {
			ch := p.changed
			p.mu.Unlock()
			select {
			case <-ch:
			case <-t.C:
				p.kill(w, KillNoReady, errors.New("no READY within the start timeout"))
				return
			}
			p.mu.Lock()
		}
		p.mu.Unlock()
	}()
	return w, nil
}

// checkPeer verifies the worker's credentials on the channel.
func (p *Pool) checkPeer(w *workerProc) error {
	uids := p.cfg.AllowedUIDs
	if uids == nil {
		uids = []uint32{uint32(os.Getuid())}
		if c := p.cfg.Credential; c != nil {
			uids = append(uids, c.Uid)
		}
	}
	return handoff.CheckWorker(w.ch, uids...)
}

// Reasons for killing a worker: the reason label of
// gss_acceptor_worker_kills_total and the reason field of the log line.
const (
	KillAckTimeout   = "ack_timeout"    // a HANDOFF not acknowledged within PoolConfig.AckTimeout
	KillChannelFull  = "channel_full"   // its channel stayed full for channelWriteTimeout: it stopped reading
	KillNoReady      = "no_ready"       // no READY within DefaultReadyTimeout
	KillBadPeer      = "bad_peer"       // CheckWorker refused the channel's peer
	KillStartFailed  = "start_failed"   // HELLO could not be sent
	KillProtocolFail = "protocol_error" // it sent a message that could not be received
	KillHeartbeat    = "heartbeat"      // no answer to a PING within PoolConfig.AckTimeout
)

// KillReasons lists every kill reason, for metrics.
func KillReasons() []string {
	return []string{KillAckTimeout, KillChannelFull, KillNoReady, KillBadPeer, KillStartFailed, KillProtocolFail, KillHeartbeat}
}

// kill SIGKILLs a worker that misbehaved or stopped answering, once: it
// takes no new sessions from now on, and a stopped process dies as well.
// Its channel stays open: reap reads it to the end once the process is
// gone, and only then fails its unacknowledged handoffs over. The slot's
// supervisor starts the replacement.
func (p *Pool) kill(w *workerProc, reason string, why error) {
	p.mu.Lock()
	if w.killed || w.dead {
		p.mu.Unlock()
		return
	}
	w.killed = true
	p.kills[reason]++
	p.notifyLocked()
	p.mu.Unlock()
	p.log.Error("killing worker", zap.Int("slot", w.slot), zap.Int("pid", w.pid), zap.String("reason", reason), zap.Error(why))
	w.cmd.Process.Kill()
}

// channelDrainTimeout bounds how long reap waits, after the worker's exit,
// for the reader to reach the end of the channel. The end comes as soon
// as the queued messages are read (the dead worker held the only other
// end); the bound is for a worker that leaked its end to another process.
const channelDrainTimeout = 5 * time.Second

// reap waits for the process and for the reader to have read every
// message the worker sent before it died, then fails over its
// unacknowledged handoffs. In that order: an ACK still queued in the
// channel when the process is reaped means the worker took the session,
// and re-sending it would have a second worker import the same context
// (ARCHITECTURE.md §6, §8.5).
func (p *Pool) reap(w *workerProc) {
	w.cmd.Wait()
	t := time.NewTimer(channelDrainTimeout)
	select {
	case <-w.readDone:
	case <-t.C:
		p.log.Warn("worker channel still open after its exit; closing it", zap.Int("slot", w.slot), zap.Int("pid", w.pid))
	}
	t.Stop()
	w.ch.Close()
	<-w.readDone
	p.mu.Lock()
	w.dead = true
	w.ready = false
	pending := w.pending
	w.pending = nil
	delete(p.workers, w)
	if w.slot < len(p.slots) && p.slots[w.slot] == w {
		p.slots[w.slot] = nil
	}
	p.notifyLocked()
	p.mu.Unlock()
	for _, ph := range pending {
		ph.ch <- ackResult{resend: true, pid: w.pid}
	}
	close(w.exited)
}

// maxResets bounds the ECONNRESETs read skips on one channel. The kernel
// reports one per close of the peer; more means the socket is broken.
const maxResets = 2

// read consumes the worker's messages (READY, ACKs, SESSION_ENDs, BYE)
// until the end of the channel, which comes once the worker has exited
// and everything it sent has been read, or until reap closes the channel.
// A message that cannot be received (malformed, wrong descriptors) gets
// the worker killed, and reading goes on: ACKs queued behind it count.
func (p *Pool) read(w *workerProc) {
	defer close(w.readDone)
	resets := 0
	for {
		m, err := w.ch.Recv()
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			// The process is reaped by reap; make sure it goes away.
			w.cmd.Process.Signal(syscall.SIGTERM)
			return
		}
		if errors.Is(err, syscall.ECONNRESET) && resets < maxResets {
			// The worker exited with messages we sent it still unread
			// (a HANDOFF, a DRAIN). The kernel reports that once, ahead
			// of what the worker queued for us before it exited: its
			// last ACKs are still to be read, and losing one would
			// re-send a session it took (ARCHITECTURE.md §6).
			resets++
			continue
		}
		if err != nil {
			p.kill(w, KillProtocolFail, err)
			if errors.Is(err, handoff.ErrMalformed) || errors.Is(err, handoff.ErrFDCount) || errors.Is(err, handoff.ErrTruncated) {
				continue // that message is consumed; the next may be an ACK
			}
			return // the socket itself failed: reap fails the handoffs over
		}
		w.heard.Store(sinceBase())
		switch m := m.(type) {
		case *handoff.Ready:
			p.mu.Lock()
			first := !w.ready
			w.ready = true
			p.notifyLocked()
			p.mu.Unlock()
			p.log.Info("worker ready", zap.Int("slot", w.slot), zap.Int("pid", w.pid), zap.Uint32("generation", w.generation))
			if first && p.cfg.HeartbeatInterval > 0 {
				go p.heartbeat(w)
			}
		case *handoff.Pong:
			// Its arrival (heard, above) is all the heartbeat needs.
		case *handoff.Ack:
			p.mu.Lock()
			w.reported = int(m.Load)
			var ch chan ackResult
			if ph := w.pending[m.ID]; m.ID != 0 && ph != nil {
				ch = ph.ch
				delete(w.pending, m.ID)
			}
			w.load = w.reported + len(w.pending)
			p.notifyLocked()
			p.mu.Unlock()
			if ch != nil {
				ch <- ackResult{status: m.Status, pid: w.pid}
			}
		case *handoff.SessionEnd:
			p.mu.Lock()
			w.reported = int(m.Load)
			w.load = w.reported + len(w.pending)
			p.notifyLocked()
			p.mu.Unlock()
			if p.cfg.OnSessionEnd != nil {
				p.cfg.OnSessionEnd(SessionEnd{Slot: w.slot, PID: w.pid, SessionEnd: *m})
			}
		case *handoff.Bye:
			p.log.Info("worker leaving", zap.Int("slot", w.slot), zap.Int("pid", w.pid), zap.Uint32("reason", m.Reason))
		case *handoff.Handoff:
			// Parent-to-worker only. Its descriptor is ours now: close it,
			// or a faulty worker could fill our descriptor table
			// (ARCHITECTURE.md §8.6).
			m.Close()
			p.log.Warn("unexpected message from worker; its descriptor closed", zap.Int("pid", w.pid), zap.Stringer("type", m.Type()))
		default:
			p.log.Warn("unexpected message from worker", zap.Int("pid", w.pid), zap.String("type", fmt.Sprintf("%T", m)))
		}
	}
}

// heartbeat pings w whenever it has sent nothing for HeartbeatInterval,
// and kills it when nothing at all comes back within AckTimeout of a PING
// (ARCHITECTURE.md §6). A worker that answers its HANDOFFs and reports its
// sessions is never pinged. It returns once w has exited, retires or is
// killed, or the pool shuts down.
func (p *Pool) heartbeat(w *workerProc) {
	interval := p.cfg.HeartbeatInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	wait := func() bool { // false: stop
		select {
		case <-w.exited:
			return false
		case <-w.retired:
			return false
		case <-t.C:
			return true
		}
	}
	for seq := uint64(1); ; seq++ {
		for {
			if !wait() {
				return
			}
			quiet := time.Duration(sinceBase() - w.heard.Load())
			if quiet >= interval {
				break
			}
			t.Reset(interval - quiet)
		}
		if !p.pingable(w) {
			return
		}
		sent := sinceBase()
		ctx, cancel := context.WithTimeout(context.Background(), channelWriteTimeout)
		err := w.ch.SendContext(ctx, &handoff.Ping{Seq: seq})
		cancel()
		if err != nil {
			// A channel that stays full means the worker stopped reading,
			// as for a HANDOFF. Any other failure means it is gone: its
			// exit is reap's business, not a kill.
			if errors.Is(err, os.ErrDeadlineExceeded) && p.pingable(w) {
				p.kill(w, KillChannelFull, fmt.Errorf("its channel stayed full for %v (sending PING %d)", channelWriteTimeout, seq))
			}
			return
		}
		t.Reset(p.cfg.AckTimeout)
		if !wait() {
			return
		}
		if w.heard.Load() < sent {
			if p.pingable(w) {
				p.kill(w, KillHeartbeat, fmt.Errorf("no answer to PING %d within %v", seq, p.cfg.AckTimeout))
			}
			return
		}
		t.Reset(interval)
	}
}

// clockBase is the origin of workerProc.heard: durations since it use the
// monotonic clock, which a step of the wall clock does not move.
var clockBase = time.Now()

func sinceBase() int64 { return int64(time.Since(clockBase)) }

// pingable reports whether the heartbeat still concerns w: it is neither
// retiring (a draining worker reads its channel only once its sessions
// end) nor killed nor dead, and the pool is not shutting down.
func (p *Pool) pingable(w *workerProc) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !w.retiring && !w.killed && !w.dead && !p.closing
}

// retireLocked stops giving w sessions and asks it to drain.
func (p *Pool) retireLocked(w *workerProc, why string) {
	if w.retiring {
		return
	}
	w.retiring = true
	close(w.retired)
	p.notifyLocked()
	p.log.Info("retiring worker", zap.Int("slot", w.slot), zap.Int("pid", w.pid), zap.String("reason", why))
	go w.drain()
}

// drain sends the worker a DRAIN once the handoffs already reserved for
// it have been sent: a worker that got DRAIN first would not read them
// until its last session ended. A worker that cannot be told gets
// SIGTERM. It must be retiring, so that no new reservation comes in.
func (w *workerProc) drain() {
	w.reserved.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), channelWriteTimeout)
	defer cancel()
	if err := w.ch.SendContext(ctx, &handoff.Drain{}); err != nil {
		w.cmd.Process.Signal(syscall.SIGTERM)
	}
}
