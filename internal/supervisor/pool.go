package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

// Pool defaults.
const (
	DefaultRespawnBackoffMax = 30 * time.Second
	DefaultReadyTimeout      = 10 * time.Second
	DefaultStopGrace         = 5 * time.Second
	minRespawnBackoff        = 100 * time.Millisecond
	// maxHandoffAttempts bounds how often one connection is re-sent after
	// the worker holding it died before acknowledging it.
	maxHandoffAttempts = 4
)

// Pool hands sessions to workers for the listener's accept loop.
var _ listener.Dispatcher = (*Pool)(nil)

// ErrPoolClosed is returned by Handoff after Shutdown has begun.
var ErrPoolClosed = errors.New("supervisor: worker pool is shutting down")

// PoolConfig configures a Pool.
type PoolConfig struct {
	Path    string   // gss-worker executable
	Args    []string // extra arguments (after argv[0])
	Env     []string // the workers' whole environment; keep it minimal
	Workers int      // number of workers to keep running

	// MaxSessionsPerWorker caps sessions (served plus in flight) per worker.
	// When every worker is at the cap, Handoff and WaitCapacity block.
	MaxSessionsPerWorker int
	// RecycleAfterSessions retires a worker after it took this many
	// sessions (0: never); RecycleAfter retires it after this lifetime.
	RecycleAfterSessions int
	RecycleAfter         time.Duration

	SealKey *gss.SealKey  // handed to each worker in HELLO
	Limits  handoff.Hello // limit fields copied into every HELLO

	RespawnBackoffMax time.Duration       // 0: DefaultRespawnBackoffMax
	Credential        *syscall.Credential // run workers as this user (nil: as we are)
	AllowedUIDs       []uint32            // peer uids accepted on the channel (nil: ours, and Credential's)
	Stderr            io.Writer           // workers' stderr (nil: os.Stderr)
	Logger            *zap.Logger

	// OnSessionEnd, if set, is called with each SESSION_END a worker sends
	// (metrics hook: the session's counters, and the worker it ran in). It
	// is called from the worker's reader goroutine and must not block.
	OnSessionEnd func(SessionEnd)
}

// SessionEnd is one finished session as its worker reported it.
type SessionEnd struct {
	Slot, PID int
	handoff.SessionEnd
}

// ackResult is what a handoff's waiter learns.
type ackResult struct {
	status uint32 // 0: the worker took the session; else a GSS major status
	resend bool   // the worker died before answering: try another
	pid    int
}

// workerProc is the acceptor's view of one worker process.
type workerProc struct {
	slot       int
	generation uint32
	cmd        *exec.Cmd
	ch         *handoff.Conn // Send is safe for concurrent use: no lock of ours
	started    time.Time
	pid        int
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
	pending  map[uint64]chan ackResult
	exited   chan struct{} // closed after cmd.Wait returned
	retired  chan struct{} // closed when the worker starts to drain (recycle, resize)
}

// WorkerStatus describes one worker for STATUS lines and metrics.
type WorkerStatus struct {
	Slot, PID, Sessions int
	Ready, Retiring     bool
	Generation          uint32
}

// Pool runs and supervises the worker processes and dispatches handoffs
// to them. Its methods are safe for concurrent use.
type Pool struct {
	cfg PoolConfig
	log *zap.Logger

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every state change
	workers  map[*workerProc]bool
	slots    []*workerProc // live worker per slot index; nil while respawning
	target   int           // wanted worker count
	epochs   map[int]int   // slot -> supervisor generation; a superseded supervisor exits
	nextID   uint64
	rr       int // round-robin start for ties in pickLocked
	gen      uint32
	closing  bool
	restarts int
	wg       sync.WaitGroup // supervisor goroutines
}

// NewPool validates cfg and returns a Pool; Start launches the workers.
func NewPool(cfg PoolConfig) (*Pool, error) {
	if cfg.Path == "" {
		return nil, errors.New("supervisor: worker path is empty")
	}
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("supervisor: need at least one worker, got %d", cfg.Workers)
	}
	if cfg.MaxSessionsPerWorker < 1 {
		return nil, fmt.Errorf("supervisor: max sessions per worker must be positive, got %d", cfg.MaxSessionsPerWorker)
	}
	if cfg.SealKey == nil {
		return nil, errors.New("supervisor: no seal key")
	}
	if cfg.RespawnBackoffMax <= 0 {
		cfg.RespawnBackoffMax = DefaultRespawnBackoffMax
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Limits.Zero() // only the limit fields are taken, as in SetLimits
	return &Pool{
		cfg:     cfg,
		log:     cfg.Logger,
		changed: make(chan struct{}),
		workers: make(map[*workerProc]bool),
		target:  cfg.Workers,
		epochs:  make(map[int]int),
	}, nil
}

// Start launches the configured number of workers and waits until each has
// answered READY or ctx ends. A worker that fails to start is retried by
// its supervisor; Start reports an error only if none became ready.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	n := p.target
	p.slots = make([]*workerProc, n)
	for i := range n {
		p.superviseSlotLocked(i)
	}
	p.mu.Unlock()
	// Wait for READYs, looking at the workers' state after each change.
	for {
		p.mu.Lock()
		ready, ch := p.readyCountLocked(), p.changed
		p.mu.Unlock()
		if ready >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if ready > 0 {
				p.log.Warn("not every worker became ready in time", zap.Int("ready", ready), zap.Int("wanted", n))
				return nil
			}
			return fmt.Errorf("supervisor: no worker became ready: %w", ctx.Err())
		}
	}
}

func (p *Pool) readyCountLocked() int {
	n := 0
	for w := range p.workers {
		if w.ready && !w.dead && !w.retiring {
			n++
		}
	}
	return n
}

// notifyLocked wakes everyone waiting for a state change.
func (p *Pool) notifyLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

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
		pending:    make(map[uint64]chan ackResult),
		exited:     make(chan struct{}),
		retired:    make(chan struct{}),
	}
	p.workers[w] = true
	if i < len(p.slots) {
		p.slots[i] = w
	}
	p.mu.Unlock()

	go p.reap(w)
	if err := p.checkPeer(w); err != nil {
		p.kill(w, err)
		return w, nil
	}
	p.mu.Lock()
	hello := p.cfg.Limits // SetLimits may change it
	p.mu.Unlock()
	hello.WorkerID = uint32(i)
	hello.Generation = w.generation
	hello.KeyID = p.cfg.SealKey.ID()
	// AppendKey returns a heap copy of the key: wipe it as soon as it is
	// in the HELLO. (To become gss.SealKey.PutKey, which writes into the
	// array without a copy.)
	key := p.cfg.SealKey.AppendKey(nil)
	copy(hello.Key[:], key)
	clear(key)
	err = w.ch.Send(&hello)
	hello.Zero() // Send wiped its own buffer; this is the last copy
	if err != nil {
		p.kill(w, fmt.Errorf("sending HELLO: %w", err))
		return w, nil
	}
	go p.read(w)
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
				p.kill(w, errors.New("no READY within the start timeout"))
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

// kill terminates a worker that misbehaved during startup.
func (p *Pool) kill(w *workerProc, why error) {
	p.log.Error("killing worker", zap.Int("slot", w.slot), zap.Int("pid", w.pid), zap.Error(why))
	w.cmd.Process.Kill()
	w.ch.Close()
}

// reap waits for the process, then fails over its unacknowledged handoffs.
func (p *Pool) reap(w *workerProc) {
	w.cmd.Wait()
	w.ch.Close()
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
	for _, ch := range pending {
		ch <- ackResult{resend: true, pid: w.pid}
	}
	close(w.exited)
}

// read consumes the worker's messages: READY, ACKs and load reports,
// SESSION_ENDs, BYE.
func (p *Pool) read(w *workerProc) {
	for {
		m, err := w.ch.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				p.mu.Lock()
				dead := w.dead
				p.mu.Unlock()
				if !dead {
					p.log.Warn("worker channel failed", zap.Int("pid", w.pid), zap.Error(err))
				}
			}
			// The process is reaped by reap; make sure it goes away.
			w.cmd.Process.Signal(syscall.SIGTERM)
			return
		}
		switch m := m.(type) {
		case *handoff.Ready:
			p.mu.Lock()
			w.ready = true
			p.notifyLocked()
			p.mu.Unlock()
			p.log.Info("worker ready", zap.Int("slot", w.slot), zap.Int("pid", w.pid), zap.Uint32("generation", w.generation))
		case *handoff.Ack:
			p.mu.Lock()
			w.reported = int(m.Load)
			var ch chan ackResult
			if m.ID != 0 {
				ch = w.pending[m.ID]
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
		default:
			p.log.Warn("unexpected message from worker", zap.Int("pid", w.pid), zap.String("type", fmt.Sprintf("%T", m)))
		}
	}
}

// pickLocked chooses the least-loaded worker that takes sessions; ties go
// round-robin so that sequential sessions spread over the pool. It returns
// nil when every worker is full or none is ready.
func (p *Pool) pickLocked() *workerProc {
	var best *workerProc
	n := len(p.slots)
	for k := 0; k < n; k++ {
		w := p.slots[(p.rr+k)%n]
		if w == nil || !w.ready || w.dead || w.retiring || w.load >= p.cfg.MaxSessionsPerWorker {
			continue
		}
		if best == nil || w.load < best.load {
			best = w
		}
	}
	if best != nil {
		p.rr = best.slot + 1
	}
	return best
}

// Handoff passes the connection fd and the exported context token to the
// least-loaded worker and waits for its ACK. The caller keeps fd open until
// Handoff returns. If the chosen worker dies before answering, the handoff
// goes to another worker. Handoff blocks while every worker is at its
// session cap, until ctx ends.
func (p *Pool) Handoff(ctx context.Context, fd int, token, readAhead []byte) (listener.HandoffResult, error) {
	var res listener.HandoffResult
	for res.Attempts < maxHandoffAttempts {
		res.Attempts++
		w, id, ch, err := p.reserve(ctx)
		if err != nil {
			return res, err
		}
		res.PID = w.pid
		err = w.ch.Send(&handoff.Handoff{ID: id, Token: token, ReadAhead: readAhead, FD: fd})
		w.reserved.Done()
		if err != nil {
			p.release(w, id)
			p.log.Warn("handoff send failed; trying another worker", zap.Int("pid", w.pid), zap.Error(err))
			continue
		}
		select {
		case r := <-ch:
			if r.resend {
				p.log.Warn("worker died before acknowledging a handoff; re-sending", zap.Int("pid", r.pid), zap.Uint64("handoff", id))
				continue
			}
			res.Status = r.status
			if r.status != 0 {
				return res, fmt.Errorf("supervisor: worker %d refused the context: %w", w.pid, gss.Major(r.status))
			}
			return res, nil
		case <-ctx.Done():
			// The worker may still take it; we stop waiting and the caller
			// closes its copy of the socket.
			p.release(w, id)
			return res, fmt.Errorf("supervisor: waiting for worker %d: %w", w.pid, ctx.Err())
		}
	}
	return res, fmt.Errorf("supervisor: handoff failed after %d attempts", res.Attempts)
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
			w.pending[id] = ch
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
	if err := w.ch.Send(&handoff.Drain{}); err != nil {
		w.cmd.Process.Signal(syscall.SIGTERM)
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

// Resize changes the number of workers. Surplus workers drain: they take no
// new sessions and exit when their sessions have ended.
func (p *Pool) Resize(n int) error {
	if n < 1 {
		return fmt.Errorf("supervisor: need at least one worker, got %d", n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return ErrPoolClosed
	}
	old := p.target
	p.target = n
	if n > len(p.slots) {
		p.slots = append(p.slots, make([]*workerProc, n-len(p.slots))...)
	}
	for i := n; i < len(p.slots); i++ {
		if w := p.slots[i]; w != nil && !w.retiring {
			p.retireLocked(w, "resize")
		}
	}
	p.slots = p.slots[:max(n, 0)]
	for i := old; i < n; i++ {
		p.superviseSlotLocked(i)
	}
	p.notifyLocked()
	p.log.Info("worker pool resized", zap.Int("from", old), zap.Int("to", n))
	return nil
}

// SetLimits applies reloaded limits. limits (the HELLO limit fields) reach
// only workers started from now on: a running worker keeps the limits it
// was started with until it is replaced (recycled, resized away,
// respawned). maxSessionsPerWorker, the dispatcher's per-worker cap, and
// the recycling thresholds apply at once, to every worker.
func (p *Pool) SetLimits(limits handoff.Hello, maxSessionsPerWorker, recycleAfterSessions int, recycleAfter time.Duration) error {
	if maxSessionsPerWorker < 1 {
		return fmt.Errorf("supervisor: max sessions per worker must be positive, got %d", maxSessionsPerWorker)
	}
	limits.Zero() // only the limit fields are taken; never hold a key here
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg.Limits = limits
	p.cfg.MaxSessionsPerWorker = maxSessionsPerWorker
	p.cfg.RecycleAfterSessions = recycleAfterSessions
	p.cfg.RecycleAfter = recycleAfter
	// A raised cap gives full workers room now: wake the accept loop.
	p.notifyLocked()
	return nil
}

// Target returns the number of workers the pool keeps running.
func (p *Pool) Target() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.target
}

// Status returns a snapshot of the workers.
func (p *Pool) Status() (workers []WorkerStatus, restarts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for w := range p.workers {
		workers = append(workers, WorkerStatus{
			Slot: w.slot, PID: w.pid, Sessions: w.load,
			Ready: w.ready, Retiring: w.retiring, Generation: w.generation,
		})
	}
	return workers, p.restarts
}

// Shutdown drains every worker: no new sessions, established sessions run
// to their end. When ctx ends first the remaining workers get SIGTERM and,
// DefaultStopGrace later, SIGKILL. Shutdown returns when every worker has
// exited; the error is ctx's if the drain did not finish in time.
func (p *Pool) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	p.closing = true
	var all []*workerProc
	for w := range p.workers {
		all = append(all, w)
		w.retiring = true
	}
	p.notifyLocked()
	p.mu.Unlock()
	for _, w := range all {
		go w.drain()
	}
	var err error
	for _, w := range all {
		select {
		case <-w.exited:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if err != nil {
			break
		}
	}
	if err != nil {
		p.log.Warn("drain deadline passed; terminating workers")
		p.signalAll(all, syscall.SIGTERM)
		if !waitAll(all, DefaultStopGrace) {
			p.log.Warn("workers still running; killing them")
			p.signalAll(all, syscall.SIGKILL)
			waitAll(all, DefaultStopGrace)
		}
	}
	p.wg.Wait()
	return err
}

func (p *Pool) signalAll(all []*workerProc, sig syscall.Signal) {
	for _, w := range all {
		select {
		case <-w.exited:
		default:
			w.cmd.Process.Signal(sig)
		}
	}
}

func waitAll(all []*workerProc, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for _, w := range all {
		select {
		case <-w.exited:
		case <-t.C:
			return false
		}
	}
	return true
}
