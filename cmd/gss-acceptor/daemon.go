package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
	"github.com/gss-acceptor/gss-acceptor/internal/logging"
	"github.com/gss-acceptor/gss-acceptor/internal/metrics"
	"github.com/gss-acceptor/gss-acceptor/internal/replay/filestore"
	"github.com/gss-acceptor/gss-acceptor/internal/replay/redisstore"
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

// workerPath finds the gss-worker executable: as configured, else beside
// this executable.
func workerPath(cfg *config.Config) (string, error) {
	p := cfg.WorkerPath
	if p == "" {
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("locating gss-worker: %w", err)
		}
		p = filepath.Join(filepath.Dir(exe), "gss-worker")
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("worker executable: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("worker executable %s is not executable", p)
	}
	return p, nil
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
		if d.file, err = filestore.Open(path, filestore.Options{MaxEntries: cfg.ReplayCacheSize}); err != nil {
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
			zap.Int("entries_loaded", d.file.Len()))
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
	log.Info("starting", zap.String("version", version.String()), zap.Int("pid", os.Getpid()),
		zap.Strings("listen", cfg.Listen), zap.String("keytab", cfg.Keytab),
		zap.Strings("services", cfg.Services), zap.Int("workers", cfg.Workers))
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
		if err := listener.SetInheritedOptions(ln); err != nil {
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

// reload re-reads config and keytab on SIGHUP. A bad config or keytab is
// refused, the running one stays and the reason is logged. A good one
// applies at once where it can:
//   - keytab, services, clock_skew, channel_bindings, allow_delegation: a
//     new Acceptor for handshakes that start from now on (key rotation
//     without restart; the replay cache is shared, so no replay window
//     opens);
//   - workers: the pool resizes; surplus workers drain (no session is cut);
//   - max_sessions_per_worker, worker_max_sessions, worker_max_lifetime:
//     the dispatcher applies them to every worker at once;
//   - idle_timeout, max_message_size: sent in HELLO, so they reach workers
//     started from now on (added by a resize, recycled, respawned); running
//     workers keep theirs;
//   - allow_clients, allow_clients_file (re-read): contexts established
//     from now on;
//   - log_level (of the acceptor), shutdown_timeout.
//
// Keys that need a restart keep their running values (listed in a
// warning), so the state reflects what is really in effect and the next
// reload compares against it.
func (d *daemonState) reload() {
	log := d.log.Logger
	d.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer d.notify(daemon.SdNotifyReady + "\n" + d.statusLine())
	cfg, err := loadConfig(d.opts)
	if err != nil {
		d.metrics.ObserveReload(false)
		log.Error("reload refused: configuration invalid; keeping the running one", zap.Error(err))
		return
	}
	acc, summary, err := d.newAcceptor(cfg)
	if err != nil {
		d.metrics.ObserveReload(false)
		log.Error("reload refused: keytab unusable; keeping the running one", zap.Error(err))
		return
	}
	allow, err := listener.LoadAllowList(cfg.AllowClients, cfg.AllowClientsFile)
	if err != nil {
		d.metrics.ObserveReload(false)
		log.Error("reload refused: client allow-list unusable; keeping the running one", zap.Error(err))
		return
	}
	d.mu.Lock()
	old := d.cfg
	d.mu.Unlock()
	restartOnly := keepRestartOnly(cfg, old)

	if err := d.pool.SetLimits(helloLimits(cfg), cfg.MaxSessionsPerWorker, cfg.WorkerMaxSessions, cfg.WorkerMaxLifetime); err != nil {
		// Validate has checked these; refuse the whole reload rather than
		// apply half of it.
		d.metrics.ObserveReload(false)
		log.Error("reload refused: worker limits", zap.Error(err))
		return
	}
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.server.SetAcceptor(acc)
	d.server.SetAllowList(allow)
	logAllowList(log, cfg, allow)
	if err := d.log.SetLevel(cfg.LogLevel); err != nil {
		log.Warn("log level not changed", zap.Error(err))
	}
	if cfg.Workers != d.pool.Target() {
		if err := d.pool.Resize(cfg.Workers); err != nil {
			log.Error("resizing the worker pool", zap.Error(err))
		}
	}
	if len(restartOnly) > 0 {
		log.Warn("some changes take effect only after a restart; their running values stay", zap.Strings("keys", restartOnly))
	}
	d.metrics.ObserveReload(true)
	log.Info("reloaded", zap.Int("workers", cfg.Workers), zap.Any("principals", summary))
}

// logAllowList says which clients are admitted; with a proxy or exec
// backend and no list, loudly: every principal of the realm reaches it.
func logAllowList(log *zap.Logger, cfg *config.Config, allow *listener.AllowList) {
	switch {
	case allow != nil:
		log.Info("client allow-list", zap.Int("entries", allow.Len()), zap.String("allow_clients_file", cfg.AllowClientsFile))
	case cfg.Backend != config.BackendSample:
		log.Warn("no client allow-list: every principal of the realm (and of trusted realms) is admitted to the backend; "+
			"set allow_clients or allow_clients_file", zap.String("backend", cfg.Backend))
	}
}

// keepRestartOnly resets in cfg every key that cannot change while running
// to its value in running, and returns the names of those that differed.
func keepRestartOnly(cfg, running *config.Config) []string {
	var changed []string
	keep := func(name string, differs bool, reset func()) {
		if differs {
			changed = append(changed, name)
			reset()
		}
	}
	keep("listen", !slices.Equal(cfg.Listen, running.Listen), func() { cfg.Listen = running.Listen })
	keep("log_format", cfg.LogFormat != running.LogFormat, func() { cfg.LogFormat = running.LogFormat })
	keep("log_file", cfg.LogFile != running.LogFile, func() { cfg.LogFile = running.LogFile })
	keep("metrics_address", cfg.MetricsAddress != running.MetricsAddress, func() { cfg.MetricsAddress = running.MetricsAddress })
	keep("metrics_allow_non_loopback", cfg.MetricsAllowNonLoopback != running.MetricsAllowNonLoopback,
		func() { cfg.MetricsAllowNonLoopback = running.MetricsAllowNonLoopback })
	keep("worker_path", cfg.WorkerPath != running.WorkerPath, func() { cfg.WorkerPath = running.WorkerPath })
	keep("worker_user", cfg.WorkerUser != running.WorkerUser, func() { cfg.WorkerUser = running.WorkerUser })
	keep("worker_group", cfg.WorkerGroup != running.WorkerGroup, func() { cfg.WorkerGroup = running.WorkerGroup })
	keep("worker_cpus", cfg.WorkerCPUs != running.WorkerCPUs, func() { cfg.WorkerCPUs = running.WorkerCPUs })
	keep("worker_respawn_backoff_max", cfg.WorkerRespawnBackoffMax != running.WorkerRespawnBackoffMax,
		func() { cfg.WorkerRespawnBackoffMax = running.WorkerRespawnBackoffMax })
	keep("worker_ack_timeout", cfg.WorkerAckTimeout != running.WorkerAckTimeout, func() { cfg.WorkerAckTimeout = running.WorkerAckTimeout })
	keep("handshake_timeout", cfg.HandshakeTimeout != running.HandshakeTimeout, func() { cfg.HandshakeTimeout = running.HandshakeTimeout })
	keep("max_handshakes", cfg.MaxHandshakes != running.MaxHandshakes, func() { cfg.MaxHandshakes = running.MaxHandshakes })
	keep("max_pending_connections", cfg.MaxPendingConnections != running.MaxPendingConnections,
		func() { cfg.MaxPendingConnections = running.MaxPendingConnections })
	keep("max_pending_per_source", cfg.MaxPendingPerSource != running.MaxPendingPerSource,
		func() { cfg.MaxPendingPerSource = running.MaxPendingPerSource })
	keep("first_frame_timeout", cfg.FirstFrameTimeout != running.FirstFrameTimeout,
		func() { cfg.FirstFrameTimeout = running.FirstFrameTimeout })
	keep("max_token_size", cfg.MaxTokenSize != running.MaxTokenSize, func() { cfg.MaxTokenSize = running.MaxTokenSize })
	keep("import_deadline", cfg.ImportDeadline != running.ImportDeadline, func() { cfg.ImportDeadline = running.ImportDeadline })
	keep("replay_cache_size", cfg.ReplayCacheSize != running.ReplayCacheSize, func() { cfg.ReplayCacheSize = running.ReplayCacheSize })
	keep("proxy_protocol_from", !slices.Equal(cfg.ProxyProtocolFrom, running.ProxyProtocolFrom),
		func() { cfg.ProxyProtocolFrom = running.ProxyProtocolFrom })
	keep("replay_cache", cfg.ReplayCache != running.ReplayCache, func() { cfg.ReplayCache = running.ReplayCache })
	keep("replay_cache_failure", cfg.ReplayCacheFailure != running.ReplayCacheFailure,
		func() { cfg.ReplayCacheFailure = running.ReplayCacheFailure })
	keep("replay_cache_timeout", cfg.ReplayCacheTimeout != running.ReplayCacheTimeout,
		func() { cfg.ReplayCacheTimeout = running.ReplayCacheTimeout })
	keep("replay_cache_key_prefix", cfg.ReplayCacheKeyPrefix != running.ReplayCacheKeyPrefix,
		func() { cfg.ReplayCacheKeyPrefix = running.ReplayCacheKeyPrefix })
	keep("backend", cfg.Backend != running.Backend, func() { cfg.Backend = running.Backend })
	keep("backend_proxy_protocol", cfg.BackendProxyProtocol != running.BackendProxyProtocol,
		func() { cfg.BackendProxyProtocol = running.BackendProxyProtocol })
	keep("backend_connect_timeout", cfg.BackendConnectTimeout != running.BackendConnectTimeout,
		func() { cfg.BackendConnectTimeout = running.BackendConnectTimeout })
	keep("exec_path", cfg.ExecPath != running.ExecPath, func() { cfg.ExecPath = running.ExecPath })
	keep("exec_args", !slices.Equal(cfg.ExecArgs, running.ExecArgs), func() { cfg.ExecArgs = running.ExecArgs })
	keep("exec_max_per_worker", cfg.ExecMaxPerWorker != running.ExecMaxPerWorker, func() { cfg.ExecMaxPerWorker = running.ExecMaxPerWorker })
	keep("stream_confidentiality", cfg.StreamIntegrityAllowed != running.StreamIntegrityAllowed,
		func() { cfg.StreamIntegrityAllowed = running.StreamIntegrityAllowed })
	keep("allow_unauthenticated", cfg.AllowUnauthenticated != running.AllowUnauthenticated,
		func() { cfg.AllowUnauthenticated = running.AllowUnauthenticated })
	return changed
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
	d.metrics.ObserveSession(metrics.Session{
		OK:          e.Result == handoff.SessionOK,
		Duration:    time.Duration(min(e.DurationUS, uint64(math.MaxInt64/int64(time.Microsecond)))) * time.Microsecond,
		MessagesIn:  e.MessagesIn,
		MessagesOut: e.MessagesOut,
		BytesIn:     e.BytesIn,
		BytesOut:    e.BytesOut,
	})
}

// watchdog sends WATCHDOG=1 at half the systemd interval while the accept
// loop's heartbeat is fresh; a stuck loop stops the pings and systemd
// restarts us.
func (d *daemonState) watchdog() (stop func()) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if time.Since(d.server.Heartbeat()) < interval/2 {
					d.notify(daemon.SdNotifyWatchdog)
				} else {
					d.log.Warn("accept loop heartbeat is stale; withholding the watchdog ping")
				}
			}
		}
	}()
	return func() { close(done) }
}

func (d *daemonState) statusLine() string {
	if d.server == nil || d.pool == nil {
		return "STATUS=starting"
	}
	acc, est, failed, hs := d.server.Stats()
	ws, restarts := d.pool.Status()
	sessions := 0
	for _, w := range ws {
		sessions += w.Sessions
	}
	return fmt.Sprintf("STATUS=%d workers, %d sessions, %d handshaking; %d accepted, %d handed off, %d failed, %d worker restarts",
		len(ws), sessions, hs, acc, est, failed, restarts)
}

// notify talks to systemd when NOTIFY_SOCKET is set; only the main process
// does (NotifyAccess=main), and the variable is not passed to workers.
func (d *daemonState) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		d.log.Debug("sd_notify failed", zap.Error(err))
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return ts.Sec*1e6 + ts.Nsec/1e3
}

// helloLimits are the per-worker limits sent in HELLO.
func helloLimits(cfg *config.Config) handoff.Hello {
	idle := max(cfg.IdleTimeout, 0) // config.NoIdleTimeout is negative
	return handoff.Hello{
		MaxSessions:      uint32(cfg.MaxSessionsPerWorker),
		MaxMessageBytes:  uint32(cfg.MaxMessageSize),
		IdleTimeoutMS:    uint32(idle / time.Millisecond),
		ImportDeadlineMS: uint32(cfg.ImportDeadline / time.Millisecond),
	}
}

// workerEnv is the workers' whole environment: no secrets, no
// NOTIFY_SOCKET or LISTEN_* (only the acceptor talks to systemd).
// GOMAXPROCS is worker_cpus, whatever the acceptor's own is.
func workerEnv(cpus int) []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=" + strconv.Itoa(cpus)}
	for _, k := range []string{"TZ", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// workerCredential resolves worker_user/worker_group for privilege
// separation; nil when unset.
func workerCredential(cfg *config.Config) (*syscall.Credential, error) {
	if cfg.WorkerUser == "" && cfg.WorkerGroup == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: false}
	if cfg.WorkerUser != "" {
		u, err := lookupUser(cfg.WorkerUser)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if cfg.WorkerGroup != "" {
		g, err := lookupGroup(cfg.WorkerGroup)
		if err != nil {
			return nil, err
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		cred.Gid = uint32(gid)
	}
	cred.Groups = []uint32{} // drop supplementary groups
	return cred, nil
}

func lookupUser(s string) (*user.User, error) {
	if _, err := strconv.Atoi(s); err == nil {
		if u, err := user.LookupId(s); err == nil {
			return u, nil
		}
		return &user.User{Uid: s, Gid: s}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("worker_user: %w", err)
	}
	return u, nil
}

func lookupGroup(s string) (*user.Group, error) {
	if _, err := strconv.Atoi(s); err == nil {
		return &user.Group{Gid: s}, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return nil, fmt.Errorf("worker_group: %w", err)
	}
	return g, nil
}

// workerArgs is the worker's command line: logging, and the backend
// settings (none of them secret) when the backend is not the default.
func workerArgs(cfg *config.Config) []string {
	args := []string{"-log-level", cfg.LogLevel, "-log-format", cfg.LogFormat}
	if cfg.Backend == config.BackendSample {
		return args
	}
	if cfg.Backend == config.BackendExec {
		args = append(args, "-backend", cfg.Backend, "-exec", cfg.ExecPath,
			"-exec-max-per-worker", strconv.Itoa(cfg.ExecMaxPerWorker))
		for _, a := range cfg.ExecArgs {
			args = append(args, "-exec-arg="+a)
		}
		if cfg.StreamIntegrityAllowed {
			args = append(args, "-stream-confidentiality=false")
		}
		return args
	}
	args = append(args, "-backend", cfg.Backend,
		"-backend-connect-timeout", cfg.BackendConnectTimeout.String())
	if cfg.BackendProxyProtocol != "" {
		args = append(args, "-backend-proxy-protocol", cfg.BackendProxyProtocol)
	}
	if cfg.StreamIntegrityAllowed {
		args = append(args, "-stream-confidentiality=false")
	}
	return args
}
