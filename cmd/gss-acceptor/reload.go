package main

// SIGHUP: re-read the configuration and keytab, apply what can change at
// run time, keep the restart-only keys (ARCHITECTURE.md §7).

import (
	"fmt"
	"slices"

	"github.com/coreos/go-systemd/v22/daemon"
	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

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
	keep("worker_heartbeat", cfg.WorkerHeartbeat != running.WorkerHeartbeat, func() { cfg.WorkerHeartbeat = running.WorkerHeartbeat })
	keep("handshake_timeout", cfg.HandshakeTimeout != running.HandshakeTimeout, func() { cfg.HandshakeTimeout = running.HandshakeTimeout })
	keep("max_handshakes", cfg.MaxHandshakes != running.MaxHandshakes, func() { cfg.MaxHandshakes = running.MaxHandshakes })
	keep("max_pending_connections", cfg.MaxPendingConnections != running.MaxPendingConnections,
		func() { cfg.MaxPendingConnections = running.MaxPendingConnections })
	keep("max_pending_per_source", cfg.MaxPendingPerSource != running.MaxPendingPerSource,
		func() { cfg.MaxPendingPerSource = running.MaxPendingPerSource })
	keep("first_frame_timeout", cfg.FirstFrameTimeout != running.FirstFrameTimeout,
		func() { cfg.FirstFrameTimeout = running.FirstFrameTimeout })
	keep("acceptor_cpus", cfg.AcceptorCPUs != running.AcceptorCPUs, func() { cfg.AcceptorCPUs = running.AcceptorCPUs })
	keep("steady_sysmon", cfg.SysmonDeepSleep != running.SysmonDeepSleep, func() { cfg.SysmonDeepSleep = running.SysmonDeepSleep })
	keep("defer_accept", cfg.DeferAccept != running.DeferAccept, func() { cfg.DeferAccept = running.DeferAccept })
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
	keep("replay_cache_tls_ca", cfg.ReplayCacheTLSCA != running.ReplayCacheTLSCA,
		func() { cfg.ReplayCacheTLSCA = running.ReplayCacheTLSCA })
	keep("replay_cache_tls_cert", cfg.ReplayCacheTLSCert != running.ReplayCacheTLSCert,
		func() { cfg.ReplayCacheTLSCert = running.ReplayCacheTLSCert })
	keep("replay_cache_batch", cfg.ReplayCacheBatch != running.ReplayCacheBatch,
		func() { cfg.ReplayCacheBatch = running.ReplayCacheBatch })
	keep("replay_cache_fsync", cfg.ReplayCacheFsync != running.ReplayCacheFsync,
		func() { cfg.ReplayCacheFsync = running.ReplayCacheFsync })
	keep("replay_cache_fsync_interval", cfg.ReplayCacheFsyncInterval != running.ReplayCacheFsyncInterval,
		func() { cfg.ReplayCacheFsyncInterval = running.ReplayCacheFsyncInterval })
	keep("replay_cache_tls_key", cfg.ReplayCacheTLSKey != running.ReplayCacheTLSKey,
		func() { cfg.ReplayCacheTLSKey = running.ReplayCacheTLSKey })
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
