package supervisor

import (
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
)

// superviseSlotLocked starts the supervisor that keeps one worker running
// in slot i until the slot is retired (resize), superseded by a newer
// supervisor (a fast resize down and up again) or the pool shuts down.
func (p *Pool) superviseSlotLocked(i int) {
	p.epochs[i]++
	s := &slotSupervisor{p: p, slot: i, epoch: p.epochs[i]}
	p.wg.Add(1)
	go s.run()
}

// slotSupervisor is the goroutine that keeps one slot's worker running.
type slotSupervisor struct {
	p     *Pool
	slot  int
	epoch int // p.epochs[slot] when it started; a newer one supersedes it
}

// nextStep is what a slot's supervisor does once its worker is gone.
type nextStep int

const (
	respawnNow      nextStep = iota // the worker retired (recycle, resize): replace it at once
	respawnLater                    // it exited or did not start: replace it after a backoff
	stopSupervising                 // the slot is no longer this supervisor's, or the worker exited fatally
)

// goneLocked reports whether the supervisor should stop: the pool is
// shutting down, the slot was resized away, or a newer supervisor took
// it over. p.mu is held.
func (s *slotSupervisor) goneLocked() bool {
	p := s.p
	return p.closing || s.slot >= p.target || p.epochs[s.slot] != s.epoch
}

// gone is goneLocked for a caller that does not hold p.mu.
func (s *slotSupervisor) gone() bool {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	return s.goneLocked()
}

// run starts a worker, waits for it to go, and starts the next one, with
// an exponential backoff while workers die young.
func (s *slotSupervisor) run() {
	defer s.p.wg.Done()
	maxBackoff := s.p.cfg.RespawnBackoffMax
	backoff := minRespawnBackoff
	for !s.gone() {
		start := time.Now()
		switch s.runWorker(backoff) {
		case stopSupervising:
			return
		case respawnNow:
			backoff = minRespawnBackoff
			continue
		case respawnLater:
		}
		// A worker that lived a while resets the backoff.
		if time.Since(start) > 10*time.Second {
			backoff = minRespawnBackoff
		}
		if backoff >= maxBackoff {
			s.p.log.Error("worker crash loop", zap.Int("slot", s.slot), zap.Duration("backoff", backoff))
		}
		if !s.sleep(backoff) {
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// runWorker starts one worker in the slot and waits until it retires or
// exits. backoff is the delay before a respawn, for the log.
func (s *slotSupervisor) runWorker(backoff time.Duration) nextStep {
	p := s.p
	w, err := p.spawn(s.slot)
	if err != nil {
		p.log.Error("starting worker failed", zap.Int("slot", s.slot), zap.Error(err))
		return respawnLater
	}
	select {
	case <-w.retired:
		// Recycled or resized away: the old worker drains on its own; the
		// slot, if still wanted, gets a new one now.
		if s.gone() {
			return stopSupervising
		}
		return respawnNow
	case <-w.exited:
	}
	code := w.cmd.ProcessState.ExitCode()
	if s.gone() {
		return stopSupervising
	}
	if code == handoff.ExitFatal {
		p.log.Error("worker exited with the fatal-configuration status; not respawning",
			zap.Int("slot", s.slot), zap.Int("pid", w.pid), zap.Int("status", code))
		return stopSupervising
	}
	p.log.Warn("worker exited; respawning", zap.Int("slot", s.slot), zap.Int("pid", w.pid),
		zap.String("state", w.cmd.ProcessState.String()), zap.Duration("backoff", backoff))
	p.mu.Lock()
	p.restarts++
	p.mu.Unlock()
	return respawnLater
}

// sleep waits for d, and reports false if the supervisor should stop
// before d has passed.
func (s *slotSupervisor) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	p := s.p
	p.mu.Lock()
	ch := p.changed
	p.mu.Unlock()
	for {
		select {
		case <-t.C:
			return true
		case <-ch:
			p.mu.Lock()
			if s.goneLocked() {
				p.mu.Unlock()
				return false
			}
			ch = p.changed
			p.mu.Unlock()
		}
	}
}
