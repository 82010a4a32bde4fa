// Package metrics is the acceptor's Prometheus instrumentation: counters
// and histograms fed by the accept loop (one observation per connection
// outcome) and by the workers' SESSION_END reports, gauges read from the
// worker pool and the replay cache at scrape time, and the HTTP endpoint
// that serves them (ARCHITECTURE.md §9).
//
// Only the acceptor process serves metrics. Workers have no endpoint: they
// report each session's counters over the handoff channel and the acceptor
// counts them, so one scrape target sees the whole pool, and a worker that
// is recycled or crashes loses nothing already reported.
//
// Everything is registered on a private prometheus.Registry owned by a
// Metrics value; the package has no global state, so tests can build as
// many as they like.
package metrics

import (
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

// namespace prefixes every metric name.
const namespace = "gss_acceptor"

// Handshake results that are exported at zero from the start, so that
// rate() and alerts work before the first occurrence. Other results the
// listener reports (socket_error, export_failed, ...) appear when they
// first happen; the listener's set of results is closed
// (listener.Results), so the label's cardinality is bounded.
var initialResults = []listener.Result{
	listener.ResultOK,
	listener.ResultRejected,
	listener.ResultTimeout,
	listener.ResultClientClosed,
	listener.ResultBadFrame,
	listener.ResultTooLarge,
	listener.ResultHandoffFailed,
	listener.ResultHandshakeLimit,
	listener.ResultPendingFull,
	listener.ResultSourceLimit,
	listener.ResultFirstFrameTimeout,
}

// maxKRBCode bounds the krb_error label: RFC 4120 §7.5.9 codes are below
// 100; anything else is counted as "other" so that a bug cannot create
// unbounded series.
const maxKRBCode = 127

// Snapshot is the pool and cache state read at scrape time.
type Snapshot struct {
	Workers        []Worker // every live worker process, draining ones included
	WorkersDesired int      // the configured worker count
	WorkerRestarts int      // workers respawned after an unexpected exit, since start
	// WorkerKills counts workers the pool killed, by reason (e.g.
	// "ack_timeout"), since start; every reason the pool knows, zero
	// included, so that the series exist from the start.
	WorkerKills          map[string]int
	ReplayCacheEntries   int    // authenticators held by the replay cache
	HandshakesInProgress int    // connections between accept and handoff
	PendingConnections   int    // pre-authentication connections (accepted, no context yet)
	AcceptErrors         uint64 // temporary accept failures (EMFILE, ENFILE, ECONNABORTED, ...)
	ShedConnections      uint64 // connections closed unread to drain the backlog when out of descriptors
}

// Worker is one worker process in a Snapshot.
type Worker struct {
	Slot, PID int
	Sessions  int  // sessions served plus handoffs in flight
	Ready     bool // answered READY
	Retiring  bool // draining: takes no new sessions (resize, recycle, shutdown)
}

// Options configure New.
type Options struct {
	// Version is the build version for gss_acceptor_build_info.
	Version string
	// Snapshot, if set, is called on every scrape for the state gauges.
	// It must be safe for concurrent use and must not block for long.
	Snapshot func() Snapshot
}

// Metrics holds the acceptor's collectors and their registry. Its methods
// are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	handshakes       *prometheus.CounterVec
	krbErrors        *prometheus.CounterVec
	handshakeSeconds prometheus.Histogram
	handoffSeconds   prometheus.Histogram

	sessions        *prometheus.CounterVec
	sessionSeconds  prometheus.Histogram
	messages        *prometheus.CounterVec
	bytes           *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	reloadOK        prometheus.Gauge
	reloadTimestamp prometheus.Gauge

	replayOpSeconds prometheus.Histogram
	replayErrors    prometheus.Counter
	replayFallbacks prometheus.Counter
	replayBatches   prometheus.Counter
	replayBatched   prometheus.Counter
	replaySyncs     prometheus.Histogram
	replaySyncErrs  prometheus.Counter

	backendBytes    *prometheus.CounterVec
	connectFailures *prometheus.CounterVec
	connectSeconds  prometheus.Histogram
	execExits       *prometheus.CounterVec
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, on a new private registry.
func New(o Options) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "handshakes_total",
		Help:      "Connections accepted, by how their handshake ended: ok (context established and handed to a worker) or the failure reason.",
	}, []string{"result"})
	m.krbErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "handshake_krb_errors_total",
		Help:      "Rejected context tokens by the Kerberos error code sent back in the KRB-ERROR (RFC 4120 §7.5.9), e.g. 37 skew, 44 kvno, 35 wrong service.",
	}, []string{"code"})
	m.handshakeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "handshake_duration_seconds",
		Help:      "Time from accept to an established context, for connections whose context was established.",
		Buckets:   []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
	})
	m.handoffSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "handoff_duration_seconds",
		Help:      "Time from export of an established context to the worker's ACK (includes waiting for a worker with room).",
		Buckets:   []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5},
	})
	m.sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "sessions_total",
		Help:      "Sessions ended in the workers: ok (the client closed it) or error (read, unwrap or write failure, idle timeout).",
	}, []string{"result"})
	m.sessionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "session_duration_seconds",
		Help:      "Session lifetime in the worker, from import to close.",
		Buckets:   prometheus.ExponentialBuckets(0.001, 4, 12), // 1 ms to about 70 min
	})
	m.messages = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "session_messages_total",
		Help:      "gss-sample frames of ended sessions: in = from clients (the closing NOOP included), out = to clients.",
	}, []string{"direction"})
	m.bytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "session_bytes_total",
		Help:      "Bytes of gss-sample frames (5-byte headers included) of ended sessions, by direction.",
	}, []string{"direction"})
	m.backendBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "backend_bytes_total",
		Help:      "Plaintext bytes relayed between clients and the proxy or exec backend by ended sessions: client_to_backend, backend_to_client.",
	}, []string{"direction"})
	m.connectFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "backend_connect_failures_total",
		Help:      "Proxy sessions whose connection to the backend failed, by reason: refused, unreachable, timeout.",
	}, []string{"reason"})
	m.connectSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "backend_connect_duration_seconds",
		Help:      "Time a proxy session took to connect to its backend (successful connects).",
		Buckets:   []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5},
	})
	m.execExits = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "exec_exits_total",
		Help:      "Exec backend programs ended, by status: exit_N (exit status N) or signal_NAME (killed, e.g. by the session's end).",
	}, []string{"status"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "reloads_total",
		Help:      "SIGHUP reloads: ok (applied) or refused (bad configuration or keytab; the running one stayed).",
	}, []string{"result"})
	m.reloadOK = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "config_last_reload_successful",
		Help:      "1 if the last reload was applied (or none was tried), 0 if it was refused.",
	})
	m.reloadTimestamp = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "config_last_reload_success_timestamp_seconds",
		Help:      "Unix time the running configuration was loaded (start or last applied reload).",
	})
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: namespace,
		Name:      "build_info",
		Help:      "Always 1; the labels carry the build's version and Go version.",
	}, []string{"version", "goversion"})
	// Label values must be UTF-8; the version comes from the linker flags.
	buildInfo.WithLabelValues(strings.ToValidUTF8(o.Version, "?"), runtime.Version()).Set(1)

	for _, r := range initialResults {
		m.handshakes.WithLabelValues(string(r))
	}
	for _, r := range []string{"ok", "error"} {
		m.sessions.WithLabelValues(r)
	}
	for _, d := range []string{"in", "out"} {
		m.messages.WithLabelValues(d)
		m.bytes.WithLabelValues(d)
	}
	for _, d := range []string{"client_to_backend", "backend_to_client"} {
		m.backendBytes.WithLabelValues(d)
	}
	for _, r := range connectFailureReasons {
		m.connectFailures.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "refused"} {
		m.reloads.WithLabelValues(r)
	}
	m.reloadOK.Set(1)
	m.reloadTimestamp.SetToCurrentTime()
	m.replayOpSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "replay_cache_operation_duration_seconds",
		Help:      "Round trips to the shared replay cache (replay_cache: redis://...), successful or not.",
		Buckets:   []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	})
	m.replayErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "replay_cache_errors_total",
		Help:      "Shared replay cache operations that failed (unreachable, timeout, error reply).",
	})
	m.replayFallbacks = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "replay_cache_fallbacks_total",
		Help:      "Authenticators remembered in the local memory cache because the shared one failed (replay_cache_failure: fallback).",
	})
	m.replayBatches = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "replay_cache_batches_total",
		Help:      "Round trips of the shared replay cache's batching pipelines (replay_cache_batch: true).",
	})
	m.replayBatched = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "replay_cache_batched_insertions_total",
		Help:      "Insertions those round trips carried; divided by replay_cache_batches_total, the mean batch size.",
	})
	m.replaySyncs = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "replay_cache_fsync_duration_seconds",
		Help:      "fsyncs of the replay cache file (replay_cache: file:...), failed ones included.",
		Buckets:   []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	})
	m.replaySyncErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: namespace,
		Name:      "replay_cache_fsync_errors_total",
		Help:      "fsyncs of the replay cache file that failed.",
	})

	m.reg.MustRegister(
		m.handshakes, m.krbErrors, m.handshakeSeconds, m.handoffSeconds,
		m.sessions, m.sessionSeconds, m.messages, m.bytes,
		m.backendBytes, m.connectFailures, m.connectSeconds, m.execExits,
		m.reloads, m.reloadOK, m.reloadTimestamp, buildInfo,
		m.replayOpSeconds, m.replayErrors, m.replayFallbacks,
		m.replayBatches, m.replayBatched, m.replaySyncs, m.replaySyncErrs,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	if o.Snapshot != nil {
		m.reg.MustRegister(&stateCollector{snapshot: o.Snapshot})
	}
	return m
}

// Registry returns the private registry, to gather from (tests) or to
// register more collectors on.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveHandshake records one connection outcome from the accept loop.
// handshake and handoff are zero when the connection did not get that far
// and are then not observed; krbCode is the Kerberos error code of a
// rejected token, 0 for none.
func (m *Metrics) ObserveHandshake(result listener.Result, handshake, handoff time.Duration, krbCode int32) {
	if result == "" {
		result = listener.ResultError
	}
	m.handshakes.WithLabelValues(string(result)).Inc()
	if krbCode != 0 {
		code := "other"
		if krbCode > 0 && krbCode <= maxKRBCode {
			code = strconv.Itoa(int(krbCode))
		}
		m.krbErrors.WithLabelValues(code).Inc()
	}
	// A context was established when the handshake reached the handoff
	// (ok, or a failed handoff); the other outcomes' durations are the
	// deadline or the client's doing and would only blur the histogram.
	if handoff > 0 || result == listener.ResultOK {
		m.handshakeSeconds.Observe(handshake.Seconds())
		m.handoffSeconds.Observe(handoff.Seconds())
	}
}

// Session is one ended session as a worker reported it.
type Session struct {
	OK                      bool
	Duration                time.Duration
	MessagesIn, MessagesOut uint64
	BytesIn, BytesOut       uint64

	// Backend is set for proxy and exec sessions; the fields after it
	// count only then.
	Backend bool
	// ToBackend and FromBackend are the plaintext bytes relayed
	// client → backend and backend → client.
	ToBackend, FromBackend uint64
	// Connect is the proxy's connect result: "" (not attempted), "ok",
	// "refused", "unreachable" or "timeout"; other values are ignored.
	Connect         string
	ConnectDuration time.Duration // observed when Connect is "ok"
	// ExecStatus is how the exec program ended ("exit_N",
	// "signal_NAME"), "" when none ran.
	ExecStatus string
}

// connectFailureReasons are the reasons of
// gss_acceptor_backend_connect_failures_total, exported at 0 from start.
var connectFailureReasons = []string{"refused", "unreachable", "timeout"}

// ObserveSession adds one ended session's counters.
func (m *Metrics) ObserveSession(s Session) {
	result := "error"
	if s.OK {
		result = "ok"
	}
	m.sessions.WithLabelValues(result).Inc()
	m.sessionSeconds.Observe(s.Duration.Seconds())
	m.messages.WithLabelValues("in").Add(float64(s.MessagesIn))
	m.messages.WithLabelValues("out").Add(float64(s.MessagesOut))
	m.bytes.WithLabelValues("in").Add(float64(s.BytesIn))
	m.bytes.WithLabelValues("out").Add(float64(s.BytesOut))
	if !s.Backend {
		return
	}
	m.backendBytes.WithLabelValues("client_to_backend").Add(float64(s.ToBackend))
	m.backendBytes.WithLabelValues("backend_to_client").Add(float64(s.FromBackend))
	switch s.Connect {
	case "ok":
		m.connectSeconds.Observe(s.ConnectDuration.Seconds())
	case "refused", "unreachable", "timeout":
		m.connectFailures.WithLabelValues(s.Connect).Inc()
	}
	if s.ExecStatus != "" {
		m.execExits.WithLabelValues(strings.ToValidUTF8(s.ExecStatus, "?")).Inc()
	}
}

// ObserveReplayOp records one round trip to the shared replay cache and
// whether it failed.
func (m *Metrics) ObserveReplayOp(d time.Duration, err error) {
	m.replayOpSeconds.Observe(d.Seconds())
	if err != nil {
		m.replayErrors.Inc()
	}
}

// ObserveReplayBatch records the insertions one batched round trip to the
// shared replay cache carried.
func (m *Metrics) ObserveReplayBatch(n int) {
	m.replayBatches.Inc()
	m.replayBatched.Add(float64(n))
}

// ObserveReplaySync records one fsync of the replay cache file and whether
// it failed.
func (m *Metrics) ObserveReplaySync(d time.Duration, err error) {
	m.replaySyncs.Observe(d.Seconds())
	if err != nil {
		m.replaySyncErrs.Inc()
	}
}

// ObserveReplayFallback records an authenticator remembered locally
// because the shared replay cache failed.
func (m *Metrics) ObserveReplayFallback() { m.replayFallbacks.Inc() }

// ObserveReload records a SIGHUP reload: applied (ok) or refused.
func (m *Metrics) ObserveReload(ok bool) {
	if ok {
		m.reloads.WithLabelValues("ok").Inc()
		m.reloadOK.Set(1)
		m.reloadTimestamp.SetToCurrentTime()
		return
	}
	m.reloads.WithLabelValues("refused").Inc()
	m.reloadOK.Set(0)
}

// stateCollector turns a Snapshot into gauges at scrape time, so the
// values are never stale and workers that are gone leave no series behind.
type stateCollector struct {
	snapshot func() Snapshot
}

var (
	workersDesc = prometheus.NewDesc(namespace+"_workers",
		"Live worker processes by state: ready (taking sessions), starting (no READY yet), draining (finishing their sessions before they exit).",
		[]string{"state"}, nil)
	workersDesiredDesc = prometheus.NewDesc(namespace+"_workers_desired",
		"Worker processes the configuration asks for.", nil, nil)
	workerSessionsDesc = prometheus.NewDesc(namespace+"_worker_sessions",
		"Sessions each live worker is serving (plus handoffs it has not acknowledged yet).",
		[]string{"slot", "pid"}, nil)
	sessionsActiveDesc = prometheus.NewDesc(namespace+"_sessions_active",
		"Sessions being served by all workers.", nil, nil)
	restartsDesc = prometheus.NewDesc(namespace+"_worker_restarts_total",
		"Workers respawned after exiting unexpectedly (crash, kill); recycling and resizing are not restarts.", nil, nil)
	killsDesc = prometheus.NewDesc(namespace+"_worker_kills_total",
		"Workers the acceptor killed (SIGKILL), by reason: ack_timeout (a handoff not acknowledged in worker_ack_timeout), channel_full (stopped reading its channel), no_ready, bad_peer, start_failed, protocol_error, heartbeat (no answer to a PING in worker_ack_timeout).",
		[]string{"reason"}, nil)
	replayDesc = prometheus.NewDesc(namespace+"_replay_cache_entries",
		"Authenticators held by this host's replay cache (bounded by replay_cache_size); with redis://, only those remembered locally under replay_cache_failure: fallback.", nil, nil)
	inProgressDesc = prometheus.NewDesc(namespace+"_handshakes_in_progress",
		"Connections between accept and the end of their handoff.", nil, nil)
	pendingDesc = prometheus.NewDesc(namespace+"_pending_connections",
		"Pre-authentication connections: accepted, no context established yet (bounded by max_pending_connections).", nil, nil)
	acceptErrorsDesc = prometheus.NewDesc(namespace+"_accept_errors_total",
		"Temporary accept failures (out of descriptors, aborted connections); each is followed by a back-off.", nil, nil)
	shedDesc = prometheus.NewDesc(namespace+"_connections_shed_total",
		"Connections taken off the backlog and closed unread with the reserve descriptor because descriptors ran out.", nil, nil)
)

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{workersDesc, workersDesiredDesc, workerSessionsDesc, sessionsActiveDesc, restartsDesc, killsDesc, replayDesc, inProgressDesc, pendingDesc, acceptErrorsDesc, shedDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.snapshot()
	var ready, starting, draining, active int
	for _, w := range s.Workers {
		switch {
		case w.Retiring:
			draining++
		case w.Ready:
			ready++
		default:
			starting++
		}
		active += w.Sessions
		constMetric(ch, workerSessionsDesc, prometheus.GaugeValue, w.Sessions, strconv.Itoa(w.Slot), strconv.Itoa(w.PID))
	}
	constMetric(ch, workersDesc, prometheus.GaugeValue, ready, "ready")
	constMetric(ch, workersDesc, prometheus.GaugeValue, starting, "starting")
	constMetric(ch, workersDesc, prometheus.GaugeValue, draining, "draining")
	constMetric(ch, workersDesiredDesc, prometheus.GaugeValue, s.WorkersDesired)
	constMetric(ch, sessionsActiveDesc, prometheus.GaugeValue, active)
	constMetric(ch, restartsDesc, prometheus.CounterValue, s.WorkerRestarts)
	for reason, n := range s.WorkerKills {
		constMetric(ch, killsDesc, prometheus.CounterValue, n, reason)
	}
	constMetric(ch, replayDesc, prometheus.GaugeValue, s.ReplayCacheEntries)
	constMetric(ch, inProgressDesc, prometheus.GaugeValue, s.HandshakesInProgress)
	constMetric(ch, pendingDesc, prometheus.GaugeValue, s.PendingConnections)
	constMetric(ch, acceptErrorsDesc, prometheus.CounterValue, int(s.AcceptErrors))
	constMetric(ch, shedDesc, prometheus.CounterValue, int(s.ShedConnections))
}

// constMetric sends one scrape-time sample. The descriptors and label
// counts are fixed above, so NewConstMetric cannot fail; if it ever did,
// the sample is dropped rather than the scrape (or the process) failing.
func constMetric(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v int, labels ...string) {
	if m, err := prometheus.NewConstMetric(d, t, float64(v), labels...); err == nil {
		ch <- m
	}
}
