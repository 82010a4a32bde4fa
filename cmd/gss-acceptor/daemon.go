package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
	"github.com/gss-acceptor/gss-acceptor/internal/logging"
	"github.com/gss-acceptor/gss-acceptor/internal/metrics"
	"github.com/gss-acceptor/gss-acceptor/internal/replay/filestore"
	"github.com/gss-acceptor/gss-acceptor/internal/replay/redisstore"
	"github.com/gss-acceptor/gss-acceptor/internal/rtune"
	"github.com/gss-acceptor/gss-acceptor/internal/supervisor"
	"github.com/gss-acceptor/gss-acceptor/internal/version"
)

// workerStartTimeout bounds how long startup waits for the first workers.
const workerStartTimeout = 15 * time.Second

// daemonState is the running acceptor: config, logger, replay cache, pool
// and server. Reload swaps the config, acceptor and pool size.
type daemonState struct {
	opts *options
	log  *logging.Logger
	// reexecErr is why the start-up re-exec for steady_sysmon failed, if
	// it did (logged once logging is up).
	reexecErr error

	mu     sync.Mutex // guards cfg during reload
	cfg    *config.Config
	replay *gss.ReplayCache  // this process's cache: the store, or the fallback of a shared one
	store  gss.ReplayStore   // what the acceptors ask: replay, or the shared cache
	redis  *redisstore.Store // the shared cache, nil unless replay_cache: redis://...
	file   *filestore.Store  // the file cache, nil unless replay_cache: file:PATH

	sealKey *gss.SealKey
	pool    *supervisor.Pool
	server  *listener.Server
	lns     []net.Listener

	metrics    *metrics.Metrics // always collected; served only with metrics_address
	metricsSrv *metrics.Server  // nil without metrics_address
}

func newDaemon(cfg *config.Config, o *options) (*daemonState, error) {
	lg, err := logging.New(logging.Options{Level: cfg.LogLevel, Format: cfg.LogFormat, File: cfg.LogFile})
	if err != nil {
		return nil, err
	}
	d := &daemonState{opts: o, log: lg, cfg: cfg, replay: gss.NewReplayCache(cfg.ReplayCacheSize)}
	d.metrics = metrics.New(metrics.Options{Version: version.String(), Snapshot: d.snapshot})
	if d.store, d.redis, err = newReplayStore(cfg, d.replay, d.metrics, lg.Logger); err != nil {
		return nil, err
	}
	if path, ok := strings.CutPrefix(cfg.ReplayCache, "file:"); ok {
		fsync, err := filestore.ParseFsync(cfg.ReplayCacheFsync)
		if err != nil {
			return nil, err
		}
		fo := filestore.Options{MaxEntries: cfg.ReplayCacheSize, Fsync: fsync, FsyncInterval: cfg.ReplayCacheFsyncInterval,
			OnSyncError: func(err error) {
				lg.Logger.Error("replay cache file fsync failed; retrying at the next interval", zap.Error(err))
			},
			ObserveSync: d.metrics.ObserveReplaySync}
		if d.file, err = filestore.Open(path, fo); err != nil {
			return nil, err
		}
		d.store = d.file
	}
	return d, nil
}

// run starts everything, serves until SIGTERM/SIGINT, then drains. A
// failure to start is logged once, whatever step it came from, and what
// had been started is stopped.
func (d *daemonState) run() int {
	defer d.log.Sync()
	if d.file != nil {
		defer d.file.Close()
		d.log.Info("replay cache file", zap.String("path", strings.TrimPrefix(d.cfg.ReplayCache, "file:")),
			zap.Int("entries_loaded", d.file.Len()), zap.String("fsync", d.cfg.ReplayCacheFsync))
	}
	if d.redis != nil {
		defer d.redis.Close()
		pingReplayStore(d.redis, d.cfg, d.log.Logger)
	}
	if err := d.start(); err != nil {
		d.log.Error("cannot start", zap.Error(err))
		d.abandonStart()
		return exitFailedStart
	}
	return d.serve()
}

// start does everything that can fail before serving: keytab and
// acceptor, seal key, worker credential, listeners, the worker pool and
// its first workers, the listener server and the metrics endpoint.
// On error, abandonStart undoes what it did.
func (d *daemonState) start() error {
	log := d.log.Logger
	cfg := d.cfg
	cpus := config.AcceptorCPUs(cfg.AcceptorCPUs)
	runtime.GOMAXPROCS(cpus)
	log.Info("starting", zap.String("version", version.String()), zap.Int("pid", os.Getpid()),
		zap.Strings("listen", cfg.Listen), zap.String("keytab", cfg.Keytab),
		zap.Strings("services", cfg.Services), zap.Int("workers", cfg.Workers),
		zap.Int("acceptor_cpus", cpus), zap.Bool("steady_sysmon", rtune.Steady()))
	if d.reexecErr != nil {
		log.Warn("could not re-execute with a steady sysmon; running without it (steady_sysmon)", zap.Error(d.reexecErr))
	}
	// The Go runtime raised the soft RLIMIT_NOFILE to the hard limit at
	// start (and restores the original for the workers it execs): every
	// pre-authentication connection is a descriptor here.
	var nofile syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err == nil {
		log.Info("descriptor limit", zap.Uint64("nofile", nofile.Cur), zap.Uint64("nofile_hard", nofile.Max))
		if uint64(cfg.MaxPendingConnections)+fdHeadroom > nofile.Cur {
			log.Warn("max_pending_connections is close to the descriptor limit; when descriptors run out, "+
				"idle connections are evicted and the backlog is shed",
				zap.Int("max_pending_connections", cfg.MaxPendingConnections), zap.Uint64("nofile", nofile.Cur))
		}
	}

	acc, summary, err := d.newAcceptor(cfg)
	if err != nil {
		return err
	}
	log.Info("keytab loaded", zap.Any("principals", summary))
	allow, err := listener.LoadAllowList(cfg.AllowClients, cfg.AllowClientsFile)
	if err != nil {
		return err
	}
	logAllowList(log, cfg, allow)

	wpath, err := workerPath(cfg)
	if err != nil {
		return err
	}
	if d.sealKey, err = gss.GenerateSealKey(1); err != nil {
		return err
	}
	cred, err := workerCredential(cfg)
	if err != nil {
		return err
	}
	if d.lns, err = d.listen(cfg); err != nil {
		return err
	}

	pool, err := supervisor.NewPool(supervisor.PoolConfig{
		Path:                 wpath,
		Args:                 workerArgs(cfg),
		Env:                  workerEnv(cfg.WorkerCPUs),
		Workers:              cfg.Workers,
		MaxSessionsPerWorker: cfg.MaxSessionsPerWorker,
		RecycleAfterSessions: cfg.WorkerMaxSessions,
		RecycleAfter:         cfg.WorkerMaxLifetime,
		SealKey:              d.sealKey,
		Limits:               helloLimits(cfg),
		RespawnBackoffMax:    cfg.WorkerRespawnBackoffMax,
		AckTimeout:           cfg.WorkerAckTimeout,
		HeartbeatInterval:    max(cfg.WorkerHeartbeat, 0), // NoWorkerHeartbeat: off
		Credential:           cred,
		Logger:               log.Named("pool"),
		OnSessionEnd:         d.observeSession,
	})
	if err != nil {
		return err
	}
	d.pool = pool
	startCtx, cancel := context.WithTimeout(context.Background(), workerStartTimeout)
	err = d.pool.Start(startCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("starting workers: %w", err)
	}

	d.server, err = listener.NewServer(listener.Config{
		Acceptor:         acc,
		SealKey:          d.sealKey,
		Dispatcher:       d.pool,
		HandshakeTimeout: cfg.HandshakeTimeout,
		MaxHandshakes:    cfg.MaxHandshakes,
		MaxTokenSize:     cfg.MaxTokenSize,
		ImportDeadline:   cfg.ImportDeadline,

		MaxPending:          cfg.MaxPendingConnections,
		MaxPendingPerSource: cfg.MaxPendingPerSource,
		FirstFrameTimeout:   cfg.FirstFrameTimeout,
		AllowClients:        allow,
		StreamRefusal:       cfg.Backend != config.BackendSample,
		ProxyProtocolFrom:   cfg.ProxyNetworks(),
		Logger:              log.Named("listener"),
		OnOutcome: func(o listener.Outcome) {
			d.metrics.ObserveHandshake(o.Result, o.Handshake, o.Handoff, o.KRBCode)
		},
	})
	if err != nil {
		return err
	}
	if cfg.MetricsAddress != "" {
		d.metricsSrv, err = d.metrics.Listen(cfg.MetricsAddress, zap.NewStdLog(log.Named("metrics")))
		if err != nil {
			return err
		}
		log.Info("metrics listening", zap.String("address", d.metricsSrv.Addr().String()))
	}
	return nil
}

// abandonStart stops what a failed start had started: the worker pool
// (its workers, if any ran) and the listeners. Nothing is serving yet.
// fdHeadroom is what the acceptor needs besides pre-authentication
// connections: listeners, worker channels, handoffs, logs, metrics.
const fdHeadroom = 256

func (d *daemonState) abandonStart() {
	if d.pool != nil {
		d.pool.Shutdown(context.Background())
	}
	closeAll(d.lns)
}

// serve serves the listeners and tells systemd the daemon is ready, then
// handles signals until SIGTERM/SIGINT (drain) or a listener failure. The
// signal handlers are in place before READY=1, so that a stop request
// sent as soon as systemd sees the daemon ready drains it.
func (d *daemonState) serve() int {
	log := d.log.Logger
	serveErr := make(chan error, len(d.lns))
	for _, ln := range d.lns {
		go func() { serveErr <- d.server.Serve(ln) }()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	d.notify(daemon.SdNotifyReady + "\n" + d.statusLine())
	log.Info("ready", zap.Int("listeners", len(d.lns)))
	stopWatchdog := d.watchdog()
	defer stopWatchdog()
	status := time.NewTicker(10 * time.Second)
	defer status.Stop()

	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
			case syscall.SIGUSR1:
				if err := d.log.Reopen(); err != nil {
					log.Error("reopening log file", zap.Error(err))
				} else {
					log.Info("log file reopened")
				}
			default:
				log.Info("shutting down", zap.String("signal", sig.String()))
				return d.shutdown()
			}
		case err := <-serveErr:
			if errors.Is(err, listener.ErrServerClosed) {
				continue
			}
			log.Error("listener failed; shutting down", zap.Error(err))
			d.shutdown()
			return exitFailure
		case <-status.C:
			d.notify(d.statusLine())
		}
	}
}

// listen takes the listeners from systemd socket activation when present,
// else binds the configured addresses.
func (d *daemonState) listen(cfg *config.Config) ([]net.Listener, error) {
	lns, err := activation.Listeners() // checks LISTEN_PID, unsets LISTEN_*
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	var out []net.Listener
	for _, ln := range lns {
		if ln != nil {
			out = append(out, ln)
		}
	}
	if len(out) == 0 {
		for _, addr := range cfg.Listen {
			// Keep-alive is set once on the listener, which accepted
			// connections inherit, not by Go on each one.
			lc := net.ListenConfig{KeepAlive: -1}
			ln, err := lc.Listen(context.Background(), "tcp", addr)
			if err != nil {
				closeAll(out)
				return nil, fmt.Errorf("listen %s: %w", addr, err)
			}
			d.log.Info("listening", zap.String("address", ln.Addr().String()))
			out = append(out, ln)
		}
	} else {
		d.log.Info("using socket-activated listeners", zap.Int("count", len(out)))
	}
	for _, ln := range out {
		if err := listener.SetInheritedOptions(ln, cfg.DeferAccept); err != nil {
			closeAll(out)
			return nil, err
		}
	}
	return out, nil
}

// closeAll closes every listener in lns.
func closeAll(lns []net.Listener) {
	for _, ln := range lns {
		ln.Close()
	}
}

// shutdown drains: stop accepting, finish handshakes, let sessions end up
// to shutdown_timeout, then stop the workers (TERM, then KILL).
func (d *daemonState) shutdown() int {
	log := d.log.Logger
	d.notify("STOPPING=1\nSTATUS=draining")
	d.mu.Lock()
	timeout := d.cfg.ShutdownTimeout
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	code := exitOK
	if err := d.server.Shutdown(ctx); err != nil {
		log.Warn("handshakes still running at the drain deadline were closed", zap.Error(err))
		code = exitFailure
	}
	if err := d.pool.Shutdown(ctx); err != nil {
		log.Warn("sessions still running at the drain deadline were cut", zap.Error(err))
		code = exitFailure
	}
	d.sealKey.Zero()
	// Metrics stay up through the drain so that it can be watched.
	if d.metricsSrv != nil {
		mctx, mcancel := context.WithTimeout(context.Background(), time.Second)
		if err := d.metricsSrv.Shutdown(mctx); err != nil {
			log.Debug("metrics endpoint shutdown", zap.Error(err))
		}
		mcancel()
	}
	log.Info("stopped", zap.Int("exit_status", code))
	return code
}

// snapshot is the metrics' view of the pool and caches at scrape time.
func (d *daemonState) snapshot() metrics.Snapshot {
	var s metrics.Snapshot
	if d.file != nil {
		s.ReplayCacheEntries = d.file.Len()
	} else if d.replay != nil {
		s.ReplayCacheEntries = d.replay.Len()
	}
	if d.pool != nil {
		ws, restarts := d.pool.Status()
		s.WorkerRestarts = restarts
		s.WorkerKills = d.pool.Kills()
		s.WorkersDesired = d.pool.Target()
		for _, w := range ws {
			s.Workers = append(s.Workers, metrics.Worker{Slot: w.Slot, PID: w.PID, Sessions: w.Sessions, Ready: w.Ready, Retiring: w.Retiring})
		}
	}
	if d.server != nil {
		_, _, _, s.HandshakesInProgress = d.server.Stats()
		s.PendingConnections = d.server.Pending()
		s.AcceptErrors, s.ShedConnections = d.server.AcceptErrors()
	}
	return s
}

// observeSession counts one session a worker reported as ended.
func (d *daemonState) observeSession(e supervisor.SessionEnd) {
	b := e.Backend
	d.metrics.ObserveSession(metrics.Session{
		OK:              e.Result == handoff.SessionOK,
		Duration:        microseconds(e.DurationUS),
		MessagesIn:      e.MessagesIn,
		MessagesOut:     e.MessagesOut,
		BytesIn:         e.BytesIn,
		BytesOut:        e.BytesOut,
		Backend:         b.Kind != handoff.BackendNone,
		ToBackend:       b.ToBackend,
		FromBackend:     b.FromBackend,
		Connect:         b.Connect.String(),
		ConnectDuration: microseconds(b.ConnectUS),
		ExecStatus:      b.ExitStatus(),
	})
}

// microseconds converts a reported count of µs, capped at the largest
// time.Duration.
func microseconds(us uint64) time.Duration {
	return time.Duration(min(us, uint64(math.MaxInt64/int64(time.Microsecond)))) * time.Microsecond
}
