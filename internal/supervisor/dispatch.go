package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

// ackResult is what a handoff's waiter learns.
type ackResult struct {
	status uint32 // 0: the worker took the session; else a GSS major status
	resend bool   // the worker died before answering: try another
	pid    int
}

// pendingHandoff is a handoff reserved for a worker and not yet answered.
type pendingHandoff struct {
	ch    chan ackResult
	since time.Time // reserved at
}

// pickLocked chooses the least-loaded worker that takes sessions; ties go
// round-robin so that sequential sessions spread over the pool. A worker
// being killed is never chosen, and one whose oldest unanswered handoff is
// older than a quarter of the ACK timeout (slow, perhaps stalled) only
// when no other has room. It returns nil when every worker is full or none
// is ready.
func (p *Pool) pickLocked() *workerProc {
	var best *workerProc
	bestSlow := false
	now := time.Now()
	n := len(p.slots)
	for k := 0; k < n; k++ {
		w := p.slots[(p.rr+k)%n]
		if w == nil || !w.ready || w.dead || w.killed || w.broken || w.retiring || w.load >= p.cfg.MaxSessionsPerWorker {
			continue
		}
		slow := w.oldestPendingLocked(now) > p.cfg.AckTimeout/4
		if best == nil || bestSlow && !slow || bestSlow == slow && w.load < best.load {
			best, bestSlow = w, slow
		}
	}
	if best != nil {
		p.rr = best.slot + 1
	}
	return best
}

// oldestPendingLocked returns how long w's oldest unanswered handoff has
// waited.
func (w *workerProc) oldestPendingLocked(now time.Time) time.Duration {
	var d time.Duration
	for _, ph := range w.pending {
		d = max(d, now.Sub(ph.since))
	}
	return d
}

// Handoff passes the connection fd, the exported context token and the
// client's addresses from a trusted PROXY header (if any) to the
// least-loaded worker and waits for its ACK. The caller keeps fd open until
// Handoff returns. If the chosen worker dies before answering, the handoff
// goes to another worker. A worker that does not answer within the ACK
// timeout, or whose channel stays full, is killed; the handoff goes to
// another worker only once the killed one has been reaped and its channel
// read to the end (reap), so two workers never hold one connection.
// Handoff blocks while every worker is at its session cap, until ctx ends.
func (p *Pool) Handoff(ctx context.Context, fd int, token, readAhead []byte, addrs listener.Addrs) (listener.HandoffResult, error) {
	var res listener.HandoffResult
	for res.Attempts < maxHandoffAttempts {
		res.Attempts++
		w, id, ch, err := p.reserve(ctx)
		if err != nil {
			return res, err
		}
		res.PID = w.pid
		// Bounded: a worker that stopped reading fills its channel, and an
		// unbounded send would hold this handshake (and Shutdown) forever.
		// A send that fails has queued nothing (SOCK_SEQPACKET), so the
		// connection may go to another worker at once.
		sctx, cancel := context.WithTimeout(ctx, channelWriteTimeout)
		err = w.ch.SendContext(sctx, &handoff.Handoff{ID: id, Token: token, ReadAhead: readAhead, FD: fd,
			Client: addrs.Client, Server: addrs.Server})
		cancel()
		w.reserved.Done()
		if err != nil {
			p.release(w, id)
			if ctx.Err() != nil {
				return res, fmt.Errorf("supervisor: sending to worker %d: %w", w.pid, err)
			}
			switch {
			case errors.Is(err, os.ErrDeadlineExceeded):
				p.kill(w, KillChannelFull, fmt.Errorf("its channel stayed full for %v", channelWriteTimeout))
			case !errors.Is(err, handoff.ErrTooLarge) && !errors.Is(err, handoff.ErrFDCount):
				// The channel refused it (EPIPE: the worker has exited,
				// and its reader has not reached EOF yet): never pick
				// it again, or every attempt would go to it.
				p.mu.Lock()
				w.broken = true
				p.notifyLocked()
				p.mu.Unlock()
			}
			p.log.Warn("handoff send failed; trying another worker", zap.Int("pid", w.pid), zap.Error(err))
			continue
		}
		r, err := p.waitAck(ctx, w, id, ch)
		if err != nil {
			return res, err
		}
		if r.resend {
			p.log.Warn("worker died before acknowledging a handoff; re-sending", zap.Int("pid", r.pid), zap.Uint64("handoff", id))
			continue
		}
		res.Status = r.status
		if r.status != 0 {
			return res, fmt.Errorf("supervisor: worker %d refused the context: %w", w.pid, gss.Major(r.status))
		}
		return res, nil
	}
	return res, fmt.Errorf("supervisor: handoff failed after %d attempts", res.Attempts)
}

// waitAck waits for the answer to handoff id sent to w: its ACK, or, if w
// died first, a re-send request from reap. When the ACK timeout passes, w
// is killed and the wait goes on until reap has read w's channel to the
// end: an ACK found there still counts. When ctx ends first, the handoff
// is given up: the worker may still take it; the caller closes its copy
// of the socket.
func (p *Pool) waitAck(ctx context.Context, w *workerProc, id uint64, ch chan ackResult) (ackResult, error) {
	t := time.NewTimer(p.cfg.AckTimeout)
	defer t.Stop()
	for {
		select {
		case r := <-ch:
			return r, nil
		case <-t.C:
			p.kill(w, KillAckTimeout, fmt.Errorf("no ACK for handoff %d within %v", id, p.cfg.AckTimeout))
		case <-ctx.Done():
			p.release(w, id)
			return ackResult{}, fmt.Errorf("supervisor: waiting for worker %d: %w", w.pid, ctx.Err())
		}
	}
}

// reserve waits for a worker with room and registers a pending handoff.
func (p *Pool) reserve(ctx context.Context) (*workerProc, uint64, chan ackResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closing {
			return nil, 0, nil, ErrPoolClosed
		}
		if w := p.pickLocked(); w != nil {
			p.nextID++
			id := p.nextID
			ch := make(chan ackResult, 1)
			w.pending[id] = &pendingHandoff{ch: ch, since: time.Now()}
			w.load = w.reported + len(w.pending)
			w.taken++
			w.reserved.Add(1) // before maybeRecycleLocked may retire w
			p.maybeRecycleLocked(w)
			return w, id, ch, nil
		}
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return nil, 0, nil, fmt.Errorf("supervisor: no worker has room: %w", ctx.Err())
		}
		p.mu.Lock()
	}
}

// release forgets a pending handoff that will not be answered.
func (p *Pool) release(w *workerProc, id uint64) {
	p.mu.Lock()
	if w.pending != nil {
		delete(w.pending, id)
		w.load = w.reported + len(w.pending)
	}
	p.notifyLocked()
	p.mu.Unlock()
}

// maybeRecycleLocked retires w once it has taken its share of sessions or
// lived its lifetime; its slot gets a fresh worker at once.
func (p *Pool) maybeRecycleLocked(w *workerProc) {
	due := p.cfg.RecycleAfterSessions > 0 && w.taken >= p.cfg.RecycleAfterSessions
	due = due || p.cfg.RecycleAfter > 0 && time.Since(w.started) >= p.cfg.RecycleAfter
	if due && !w.retiring {
		p.retireLocked(w, "recycle")
	}
}

// WaitCapacity blocks while every live worker is at its session cap, so
// the accept loop stops accepting and the kernel backlog holds new
// connections. It returns at once when at least one worker has room.
func (p *Pool) WaitCapacity(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		if p.closing {
			return ErrPoolClosed
		}
		if p.pickLocked() != nil {
			return nil
		}
		// No ready worker at all (all respawning) also waits here.
		ch := p.changed
		p.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			p.mu.Lock()
			return ctx.Err()
		}
		p.mu.Lock()
	}
}
