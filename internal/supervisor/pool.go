package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	// DefaultAckTimeout is how long a worker may take to acknowledge a
	// HANDOFF before it is killed as stalled (PoolConfig.AckTimeout). A
	// healthy worker answers in well under a millisecond: it only imports
	// the token.
	DefaultAckTimeout = 2 * time.Second
	minRespawnBackoff = 100 * time.Millisecond
	// maxHandoffAttempts bounds how often one connection is re-sent after
	// the worker holding it died before acknowledging it.
	maxHandoffAttempts = 4
	// channelWriteTimeout bounds every send on a worker's channel: a
	// worker that stopped reading (stalled, stopped) fills it, and a send
	// then blocks until the worker reads again.
	channelWriteTimeout = 2 * time.Second
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

	// AckTimeout (0: DefaultAckTimeout): a worker that has not answered a
	// HANDOFF within it is SIGKILLed and replaced, and the handoff goes to
	// another worker once the killed one is reaped. A worker whose oldest
	// unanswered handoff is older than a quarter of it gets new sessions
	// only when no other worker has room.
	AckTimeout time.Duration

	// HeartbeatInterval, when positive, pings a ready worker that has
	// sent nothing for that long: a PING that gets no answer (PONG or any
	// other message) within AckTimeout gets the worker SIGKILLed and
	// replaced, as a stalled worker is when a HANDOFF goes unanswered,
	// but found before a client waits for it. Retiring workers are not
	// pinged: a draining worker reads its channel only once its sessions
	// end. 0: no heartbeat.
	HeartbeatInterval time.Duration

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
	kills    map[string]int // by reason
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
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = DefaultAckTimeout
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
		kills:   make(map[string]int),
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

// Kills returns how many workers were killed, by reason (every reason
// of KillReasons, zero included).
func (p *Pool) Kills() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[string]int, len(p.kills))
	for _, r := range KillReasons() {
		m[r] = p.kills[r]
	}
	return m
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
