// Package config reads, defaults and validates the gss-acceptor configuration
// file (ARCHITECTURE.md §7).
//
// The file is YAML with snake_case keys, one per Config field. It is parsed
// into a yaml.Node tree first, rather than unmarshalled straight into a
// struct, so that every problem can be reported with the key and the line it
// came from:
//
//	config: /etc/gss-acceptor/gss-acceptor.yaml: line 12: workers: must be between 1 and 1024, got 0
//	config: /etc/gss-acceptor/gss-acceptor.yaml: line 7: unknown key "wrokers" (did you mean "workers"?)
//
// All problems in a file are reported together (errors.Join), sorted by line,
// in the spirit of `nginx -t`: an operator fixes a file in one pass instead of
// one error per restart.
//
// The package knows nothing about Kerberos, sockets or processes: it checks
// syntax and ranges, and leaves resolving host names, user names and paths
// to the code that uses them.
package config

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"time"
)

// Defaults. Every key missing from the file (or given as null) takes the
// value below; configs/gss-acceptor.yaml documents the same values.
const (
	// DefaultListen is the one address listened on when the file has no
	// listen key: every local address, port 4444. Port 4444 is MIT
	// gss-server's default, so `gss-client host 4444 ...` works unchanged;
	// binding every address is also what gss-server does (INADDR_ANY). A
	// daemon binds what it is told, and a Kerberos acceptor exists to be
	// reached by remote clients, so a loopback default would only make the
	// first deployment fail. The unauthenticated metrics endpoint is the
	// part that defaults to "off" and is held to loopback.
	DefaultListen = ":4444"

	// DefaultMaxSessionsPerWorker caps the established sessions one worker
	// serves at once (nginx worker_connections). When every worker is full
	// the listener stops accepting and the kernel backlog holds new clients
	// (ARCHITECTURE.md §6, backpressure).
	DefaultMaxSessionsPerWorker = 4096

	// DefaultWorkerMaxSessions is 0: workers are never recycled by session
	// count (httpd MaxConnectionsPerChild 0).
	DefaultWorkerMaxSessions = 0

	// DefaultWorkerMaxLifetime is 0: workers are never recycled by age.
	DefaultWorkerMaxLifetime time.Duration = 0

	// DefaultWorkerName is the worker binary looked for beside the acceptor
	// binary (then in ../libexec/gss-acceptor/) when worker_path is empty.
	DefaultWorkerName = "gss-worker"

	// DefaultWorkerCPUs is the default of worker_cpus: one CPU per worker,
	// since workers default to one per CPU.
	DefaultWorkerCPUs = 1

	// DefaultWorkerRespawnBackoffMax caps the exponential delay between
	// respawns of a worker that keeps exiting (crash-loop brake).
	DefaultWorkerRespawnBackoffMax = 30 * time.Second

	// DefaultWorkerAckTimeout is how long a worker may take to acknowledge
	// a handoff before the acceptor kills it as stalled and gives the
	// connection to another worker.
	DefaultWorkerAckTimeout = 2 * time.Second

	// DefaultWorkerHeartbeat is how long a worker may stay silent before
	// the acceptor pings it; one that does not answer within
	// worker_ack_timeout is killed as stalled.
	DefaultWorkerHeartbeat = 30 * time.Second

	// DefaultHandshakeTimeout bounds the whole context establishment of one
	// connection, from accept to handoff (sshd LoginGraceTime).
	DefaultHandshakeTimeout = 10 * time.Second

	// DefaultMaxHandshakes caps handshakes doing CPU work at once (a
	// context token step, an export); connections waiting for bytes do
	// not count (ARCHITECTURE.md §7).
	DefaultMaxHandshakes = 256

	// DefaultMaxPendingConnections caps pre-authentication connections
	// (accepted, no context yet), sized by memory: about 16 KiB each in
	// the acceptor (goroutine, read buffer) plus the kernel's socket
	// buffers, so 4096 is some 64 MiB of the acceptor's.
	DefaultMaxPendingConnections = 4096

	// DefaultMaxPendingPerSource caps them per client IP address.
	DefaultMaxPendingPerSource = 64

	// DefaultFirstFrameTimeout bounds accept to the first complete
	// context token; a client that means it sends it at once.
	DefaultFirstFrameTimeout = 3 * time.Second

	// DefaultDeferAccept is how long the kernel holds a new connection
	// back from accept until the client's first bytes arrive
	// (TCP_DEFER_ACCEPT): a gss-sample client sends its token at once.
	DefaultDeferAccept = time.Second

	// DefaultIdleTimeout closes an established session that sends nothing
	// for this long.
	DefaultIdleTimeout = 5 * time.Minute

	// DefaultMaxTokenSize caps one context-establishment token
	// (ARCHITECTURE.md §4). An AP-REQ carrying a large PAC stays well
	// below 64 KiB.
	DefaultMaxTokenSize = 64 << 10

	// DefaultMaxMessageSize caps one data frame body (ARCHITECTURE.md §4).
	DefaultMaxMessageSize = 1 << 20

	// DefaultClockSkew is the tolerated difference between the client's and
	// our clock in an authenticator: MIT's clockskew default, 300 s
	// (RFC 4120 §1.6 recommends 5 minutes).
	DefaultClockSkew = 5 * time.Minute

	// DefaultReplayCacheSize is the number of authenticators the replay
	// cache (RFC 4120 §3.2.3) remembers at most.
	DefaultReplayCacheSize = 1_000_000

	// DefaultImportDeadline is how long a sealed interprocess token stays
	// importable after export (ARCHITECTURE.md §5).
	DefaultImportDeadline = 30 * time.Second

	// DefaultShutdownTimeout is how long established sessions may run on
	// after SIGTERM, or after a worker is asked to drain, before they are cut.
	DefaultShutdownTimeout = 30 * time.Second

	// DefaultBackend is the default of backend: the gss-sample service,
	// which MIT gss-client speaks.
	DefaultBackend = BackendSample

	// DefaultReplayCache is the replay cache backend: in memory, per process.
	DefaultReplayCache = "memory"
	// DefaultReplayCacheFailure is what a handshake does when a shared
	// replay cache cannot answer: it is refused.
	DefaultReplayCacheFailure = "refuse"
	// DefaultReplayCacheTimeout bounds one shared replay cache operation.
	DefaultReplayCacheTimeout = 250 * time.Millisecond
	// DefaultReplayCacheKeyPrefix namespaces the shared cache's keys.
	DefaultReplayCacheKeyPrefix = "gss-acceptor:rc:"
	// DefaultReplayCacheFsync is when the file replay cache's records
	// reach the disk.
	DefaultReplayCacheFsync = "interval"
	// DefaultReplayCacheFsyncInterval is the period of "interval".
	DefaultReplayCacheFsyncInterval = time.Second

	// DefaultBackendConnectTimeout bounds a worker's connection attempt to
	// a proxy backend.
	DefaultBackendConnectTimeout = 5 * time.Second

	// DefaultExecMaxPerWorker caps the exec backend's programs per worker.
	DefaultExecMaxPerWorker = 64

	// DefaultLogLevel is the default of log_level.
	DefaultLogLevel = LogLevelInfo

	// DefaultLogFormat is the default of log_format: JSON lines, for
	// journald and log shippers.
	DefaultLogFormat = LogFormatJSON
)

// NoIdleTimeout is the IdleTimeout that disables the idle timeout. The file
// spells it "idle_timeout: 0"; in the struct, zero means "the default", as for
// every other field, so "none" needs a value of its own. It is negative, like
// net/http's Server.IdleTimeout, so that the natural test "if IdleTimeout > 0"
// arms a timer only when there is one.
const NoIdleTimeout time.Duration = -1

// NoDeferAccept is the DeferAccept that turns TCP_DEFER_ACCEPT off (the
// file's "defer_accept: 0"), negative for the reason NoIdleTimeout is.
const NoDeferAccept time.Duration = -1

// NoWorkerHeartbeat is the WorkerHeartbeat that turns the heartbeat off
// (the file's "worker_heartbeat: 0"), negative for the reason NoIdleTimeout
// is.
const NoWorkerHeartbeat time.Duration = -1

// BackendSample is the backend value of the gss-sample service; the
// others are "tcp:HOST:PORT" and "unix:/PATH" (docs/stream.md).
const BackendSample = "sample"

// BackendExec is the backend value of the exec backend (exec_path).
const BackendExec = "exec"

// ProxyProtocolV2 is the one non-empty value of backend_proxy_protocol.
const ProxyProtocolV2 = "v2"

// Values of log_level.
const (
	LogLevelDebug = "debug"
	LogLevelInfo  = "info"
	LogLevelWarn  = "warn"
	LogLevelError = "error"
)

// Values of log_format.
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// MaxWorkers is the largest accepted value of workers.
const MaxWorkers = 1024

// MaxFileSize is the largest configuration file Load and Parse read. It keeps
// a mistyped path (say /dev/zero) from eating memory; real files are a few
// KiB.
const MaxFileSize = 1 << 20

// DefaultWorkers returns the default of workers: the number of CPUs this
// process may use, clamped to [1, MaxWorkers]. It is runtime.GOMAXPROCS(0)
// rather than runtime.NumCPU: since Go 1.25 the former also honours a cgroup
// CPU limit (systemd CPUQuota=, containers), so a unit limited to 2 CPUs on a
// 64-core host forks 2 workers, not 64.
//
// It reads the value the process started with: the acceptor lowers its
// own GOMAXPROCS (acceptor_cpus), and a reload must not then halve the
// default worker count.
func DefaultWorkers() int {
	return min(max(startCPUs, 1), MaxWorkers)
}

// startCPUs is runtime.GOMAXPROCS(0) when the process started.
var startCPUs = runtime.GOMAXPROCS(0)

// DefaultAcceptorCPUs returns the acceptor's GOMAXPROCS when
// acceptor_cpus is not set: half the CPUs the process may use (as
// DefaultWorkers counts them), at least 1. The acceptor is one process
// among its workers; one running Go code on fewer CPUs than there are wakes
// fewer idle threads per connection (ARCHITECTURE.md §11).
func DefaultAcceptorCPUs() int {
	return min(max(startCPUs/2, 1), MaxWorkers)
}

// AcceptorCPUs resolves the acceptor's GOMAXPROCS from setting
// (acceptor_cpus, or bench/floor's -acceptor-cpus; 0: unset): the setting,
// else the GOMAXPROCS environment variable (the operator's), else
// DefaultAcceptorCPUs.
func AcceptorCPUs(setting int) int {
	if setting > 0 {
		return setting
	}
	if v, err := strconv.Atoi(os.Getenv("GOMAXPROCS")); err == nil && v > 0 {
		return v
	}
	return DefaultAcceptorCPUs()
}

// Config is the acceptor's configuration. Each field is one key of the file
// (named in the field's comment). The zero value of every field means its
// default; ApplyDefaults fills them in, and Default, Load and Parse return
// configurations with every default already applied, so code reading a
// loaded Config sees effective values.
//
// A Config is not safe for concurrent mutation; Clone one to hand out a copy
// that may be changed, for instance on reload.
type Config struct {
	// Listen (listen) lists the TCP addresses to accept clients on, each
	// "host:port" with a numeric port; an empty host means every local
	// address, an IPv6 host is bracketed ("[::1]:4444"), and port 0 picks
	// a free port (tests). Default [DefaultListen]. Ignored when the
	// listening sockets come from systemd socket activation.
	Listen []string

	// Keytab (keytab) is the absolute path of the keytab holding the
	// acceptor's keys. Required, in the file or with -keytab; only the
	// acceptor process reads it.
	Keytab string

	// Services (services) lists the principals clients may authenticate
	// to, each "service/host" or "service/host@REALM". Empty means any
	// principal with a key in the keytab.
	Services []string

	// AllowClients (allow_clients) lists the client principals admitted
	// to a worker: exact names (alice@EXAMPLE.TEST) or *@REALM. With
	// AllowClientsFile (allow_clients_file, an absolute path, one entry
	// per line, # comments, re-read on reload) the union is admitted.
	// Both empty: every client that authenticates.
	AllowClients     []string
	AllowClientsFile string

	// Workers (workers) is the number of worker processes, 1 to
	// MaxWorkers. Default DefaultWorkers().
	Workers int

	// MaxSessionsPerWorker (max_sessions_per_worker) caps the established
	// sessions one worker serves at once. Default
	// DefaultMaxSessionsPerWorker.
	MaxSessionsPerWorker int

	// WorkerMaxSessions (worker_max_sessions) recycles a worker after it
	// has been handed this many sessions: it takes no new ones, drains,
	// and is replaced. 0, the default, never recycles.
	WorkerMaxSessions int

	// WorkerMaxLifetime (worker_max_lifetime) recycles a worker this long
	// after it started, the same way. 0, the default, never recycles. When
	// set it must be at least ShutdownTimeout (see Validate).
	WorkerMaxLifetime time.Duration

	// WorkerPath (worker_path) is the absolute path of the worker binary.
	// Empty, the default, means DefaultWorkerName in the directory of the
	// acceptor binary, else in ../libexec/gss-acceptor/ from there.
	WorkerPath string

	// WorkerUser (worker_user) and WorkerGroup (worker_group) are the
	// account workers run as, each a name or a numeric id. Empty keeps
	// the acceptor's own; setting them needs the acceptor to start with
	// the privilege to switch.
	WorkerUser string

	// WorkerGroup (worker_group): see WorkerUser.
	WorkerGroup string

	// WorkerCPUs (worker_cpus) is how many CPUs one worker's Go runtime
	// runs code on at once (its GOMAXPROCS), 1 to MaxWorkers. Default
	// DefaultWorkerCPUs.
	WorkerCPUs int

	// WorkerRespawnBackoffMax (worker_respawn_backoff_max) caps the delay
	// between respawns of a worker that keeps exiting. Default
	// DefaultWorkerRespawnBackoffMax.
	WorkerRespawnBackoffMax time.Duration

	// WorkerAckTimeout (worker_ack_timeout): a worker that has not
	// acknowledged a handoff within it is killed and replaced, and the
	// connection goes to another worker. Default DefaultWorkerAckTimeout.
	WorkerAckTimeout time.Duration

	// WorkerHeartbeat (worker_heartbeat): a ready worker that has sent
	// nothing for this long gets a PING, and is killed and replaced when
	// it does not answer within WorkerAckTimeout. Zero means
	// DefaultWorkerHeartbeat; NoWorkerHeartbeat (the file's 0) turns it
	// off.
	WorkerHeartbeat time.Duration

	// HandshakeTimeout (handshake_timeout) bounds context establishment of
	// one connection. Default DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration

	// MaxHandshakes (max_handshakes) caps handshakes doing CPU work at
	// once. Default DefaultMaxHandshakes.
	MaxHandshakes int

	// MaxPendingConnections (max_pending_connections) caps
	// pre-authentication connections; when full, the oldest one still
	// waiting for its first context token is closed to make room.
	// Default DefaultMaxPendingConnections.
	MaxPendingConnections int

	// MaxPendingPerSource (max_pending_per_source) caps them per client
	// IP address. Default DefaultMaxPendingPerSource.
	MaxPendingPerSource int

	// FirstFrameTimeout (first_frame_timeout) bounds accept to the first
	// complete context token (capped by HandshakeTimeout). Default
	// DefaultFirstFrameTimeout.
	FirstFrameTimeout time.Duration

	// AcceptorCPUs (acceptor_cpus) is the acceptor's own GOMAXPROCS, 1 to
	// MaxWorkers. Zero: the GOMAXPROCS environment variable if set, else
	// DefaultAcceptorCPUs().
	AcceptorCPUs int

	// SysmonDeepSleep (steady_sysmon: false) lets the Go runtime's system
	// monitor sleep while the process is idle, as it does by default; with
	// steady_sysmon (the default) the acceptor re-executes itself with
	// GODEBUG schedtrace set, which its workers inherit (internal/rtune).
	SysmonDeepSleep bool

	// DeferAccept (defer_accept) is the TCP_DEFER_ACCEPT time of the
	// listening sockets: the kernel hands a connection to accept only
	// once the client has sent something, or this long after it
	// connected, so the acceptor wakes once per connection instead of
	// twice. Zero means DefaultDeferAccept; NoDeferAccept (the file's 0)
	// turns it off.
	DeferAccept time.Duration

	// IdleTimeout (idle_timeout) closes an established session idle this
	// long. Zero means DefaultIdleTimeout; NoIdleTimeout (the file's 0)
	// means no idle timeout.
	IdleTimeout time.Duration

	// MaxTokenSize (max_token_size) caps one context token, in bytes.
	// Default DefaultMaxTokenSize.
	MaxTokenSize int

	// MaxMessageSize (max_message_size) caps one data frame body, in
	// bytes. Default DefaultMaxMessageSize.
	MaxMessageSize int

	// ClockSkew (clock_skew) is the tolerated clock difference with
	// clients. Default DefaultClockSkew.
	ClockSkew time.Duration

	// ReplayCacheSize (replay_cache_size) caps the entries of the replay
	// cache. Default DefaultReplayCacheSize.
	ReplayCacheSize int

	// ProxyProtocolFrom (proxy_protocol_from) lists the CIDR networks of
	// trusted load balancers whose connections open with a PROXY v1 or v2
	// header naming the client. Empty (default): no PROXY protocol.
	// Restart only.
	ProxyProtocolFrom []string

	// ReplayCache (replay_cache) is where accepted authenticators are
	// remembered: "memory" (default; this process only) or
	// redis://[user:pass@]HOST:PORT/DB, rediss://... for TLS (Redis or
	// Valkey shared by every host serving the same principals). Restart
	// only.
	ReplayCache string

	// ReplayCacheFailure (replay_cache_failure) is what a handshake does
	// when the shared replay cache cannot answer: "refuse" (default) or
	// "fallback" to this process's memory cache.
	ReplayCacheFailure string

	// ReplayCacheTimeout (replay_cache_timeout) bounds one shared replay
	// cache operation, dial included. Default DefaultReplayCacheTimeout.
	ReplayCacheTimeout time.Duration

	// ReplayCacheKeyPrefix (replay_cache_key_prefix) is prepended to the
	// shared replay cache's keys. Default DefaultReplayCacheKeyPrefix.
	ReplayCacheKeyPrefix string

	// ReplayCacheTLSCA (replay_cache_tls_ca) is a PEM file of the CAs that
	// verify a rediss:// server ("": the system roots).
	// ReplayCacheTLSCert and ReplayCacheTLSKey (replay_cache_tls_cert,
	// replay_cache_tls_key) are a PEM client certificate and key for
	// rediss:// (Redis's tls-auth-clients); both or neither. Restart only.
	ReplayCacheTLSCA, ReplayCacheTLSCert, ReplayCacheTLSKey string

	// ReplayCacheBatch (replay_cache_batch) batches concurrent insertions
	// into a Redis replay cache in pipelines instead of one SET per
	// handshake (default false). Restart only.
	ReplayCacheBatch bool

	// ReplayCacheFsync (replay_cache_fsync) is when a file: replay
	// cache's appended records are fsynced: "never", "interval" (default,
	// every ReplayCacheFsyncInterval when records were appended) or
	// "always" (before each handshake is accepted). Restart only.
	ReplayCacheFsync string
	// ReplayCacheFsyncInterval (replay_cache_fsync_interval) is the period
	// of "interval". Default DefaultReplayCacheFsyncInterval.
	ReplayCacheFsyncInterval time.Duration

	// ImportDeadline (import_deadline) is how long a handed-off context
	// stays importable by a worker. Default DefaultImportDeadline.
	ImportDeadline time.Duration

	// ShutdownTimeout (shutdown_timeout) is how long sessions may drain on
	// stop or worker recycling. Default DefaultShutdownTimeout.
	ShutdownTimeout time.Duration

	// AllowDelegation (allow_delegation) accepts credentials delegated by
	// clients (GSS_C_DELEG_FLAG, RFC 4121 §4.1.1). Default false: the
	// flag is cleared and any KRB-CRED is dropped.
	AllowDelegation bool

	// ChannelBindings (channel_bindings) is the application data of the
	// channel bindings (RFC 2744 §3.11, gss_channel_bindings_struct with
	// no addresses) clients must present; their hash in the authenticator
	// checksum (RFC 4121 §4.1.1.2) must match. Empty, the default, means
	// no bindings are required. Not secret, but logged as a length only.
	ChannelBindings string

	// AllowUnauthenticated (allow_unauthenticated) must be false, the
	// default: clients that open with the gss-sample NOOP flag instead of
	// a context (MIT gss-client -na) are always refused. The key parses
	// so that files saying false keep working; Validate rejects true.
	AllowUnauthenticated bool

	// Backend (backend) is the service behind the workers: BackendSample
	// (default), "tcp:HOST:PORT" or "unix:/PATH" (the proxy backend,
	// docs/stream.md). Restart only.
	Backend string

	// BackendProxyProtocol (backend_proxy_protocol) is "" (none, the
	// default) or ProxyProtocolV2: a PROXY v2 header with the client's
	// address and principal precedes the stream to a proxy backend.
	BackendProxyProtocol string

	// BackendConnectTimeout (backend_connect_timeout) bounds a worker's
	// connection attempt to a proxy backend. Default
	// DefaultBackendConnectTimeout.
	BackendConnectTimeout time.Duration

	// ExecPath (exec_path), ExecArgs (exec_args) and ExecMaxPerWorker
	// (exec_max_per_worker, default DefaultExecMaxPerWorker) configure
	// backend: exec, a program run per session (docs/backends.md).
	ExecPath         string
	ExecArgs         []string
	ExecMaxPerWorker int

	// StreamIntegrityAllowed is the negation of stream_confidentiality
	// (default true): when set, stream records from clients may be
	// integrity-protected only. Stored negated so that the zero value is
	// the default.
	StreamIntegrityAllowed bool

	// LogLevel (log_level) is one of LogLevelDebug, LogLevelInfo,
	// LogLevelWarn or LogLevelError. Default DefaultLogLevel.
	LogLevel string

	// LogFormat (log_format) is LogFormatJSON or LogFormatConsole.
	// Default DefaultLogFormat.
	LogFormat string

	// LogFile (log_file) is the absolute path of the log file, reopened on
	// SIGUSR1 for rotation. Empty, the default, logs to standard error.
	LogFile string

	// MetricsAddress (metrics_address) is the "host:port" of the
	// Prometheus endpoint. Empty, the default, serves no metrics. It must
	// be a loopback address unless MetricsAllowNonLoopback is set: the
	// endpoint has no authentication.
	MetricsAddress string

	// MetricsAllowNonLoopback (metrics_allow_non_loopback) lets
	// MetricsAddress be any address. Default false.
	MetricsAllowNonLoopback bool

	// origin remembers where each key's value came from in the file, so
	// that Validate can name the line even after the caller changed other
	// fields. nil for a Config that did not come from a file. Shared by
	// clones: it is never modified after parsing.
	origin *origin
}

// Default returns a new Config holding every default. Its Keytab is empty,
// so it does not validate until one is set.
func Default() *Config {
	c := &Config{}
	c.ApplyDefaults()
	return c
}

// ApplyDefaults sets every zero-valued field to its default, so that a Config
// built as a literal, e.g. &Config{Keytab: "/etc/krb5.keytab"}, means the same
// as a file with only that key. Fields whose default is zero (Services,
// WorkerMaxSessions, WorkerPath, ...) are left as they are.
func (c *Config) ApplyDefaults() {
	if len(c.Listen) == 0 {
		c.Listen = []string{DefaultListen}
	}
	setDefault(&c.Workers, DefaultWorkers())
	setDefault(&c.MaxSessionsPerWorker, DefaultMaxSessionsPerWorker)
	setDefault(&c.WorkerCPUs, DefaultWorkerCPUs)
	setDefault(&c.WorkerRespawnBackoffMax, DefaultWorkerRespawnBackoffMax)
	setDefault(&c.WorkerAckTimeout, DefaultWorkerAckTimeout)
	setDefault(&c.WorkerHeartbeat, DefaultWorkerHeartbeat)
	setDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	setDefault(&c.MaxHandshakes, DefaultMaxHandshakes)
	setDefault(&c.MaxPendingConnections, DefaultMaxPendingConnections)
	setDefault(&c.MaxPendingPerSource, DefaultMaxPendingPerSource)
	setDefault(&c.FirstFrameTimeout, DefaultFirstFrameTimeout)
	setDefault(&c.DeferAccept, DefaultDeferAccept)
	setDefault(&c.IdleTimeout, DefaultIdleTimeout)
	setDefault(&c.MaxTokenSize, DefaultMaxTokenSize)
	setDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	setDefault(&c.ClockSkew, DefaultClockSkew)
	setDefault(&c.ReplayCacheSize, DefaultReplayCacheSize)
	setDefault(&c.ReplayCache, DefaultReplayCache)
	setDefault(&c.ReplayCacheFailure, DefaultReplayCacheFailure)
	setDefault(&c.ReplayCacheTimeout, DefaultReplayCacheTimeout)
	setDefault(&c.ReplayCacheKeyPrefix, DefaultReplayCacheKeyPrefix)
	setDefault(&c.ReplayCacheFsync, DefaultReplayCacheFsync)
	setDefault(&c.ReplayCacheFsyncInterval, DefaultReplayCacheFsyncInterval)
	setDefault(&c.ImportDeadline, DefaultImportDeadline)
	setDefault(&c.ShutdownTimeout, DefaultShutdownTimeout)
	setDefault(&c.Backend, DefaultBackend)
	setDefault(&c.BackendConnectTimeout, DefaultBackendConnectTimeout)
	setDefault(&c.ExecMaxPerWorker, DefaultExecMaxPerWorker)
	setDefault(&c.LogLevel, DefaultLogLevel)
	setDefault(&c.LogFormat, DefaultLogFormat)
}

// setDefault stores def in *p when *p is the zero value.
func setDefault[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// Clone returns a deep copy of c: changing the copy's slices does not change
// c. Clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	n := *c
	n.Listen = cloneStrings(c.Listen)
	n.Services = cloneStrings(c.Services)
	n.AllowClients = cloneStrings(c.AllowClients)
	n.ExecArgs = cloneStrings(c.ExecArgs)
	n.ProxyProtocolFrom = cloneStrings(c.ProxyProtocolFrom)
	return &n
}

// cloneStrings copies s, keeping nil as nil so that Clone preserves
// DeepEqual-ness.
func cloneStrings(s []string) []string {
	if s == nil {
		return nil
	}
	return append(make([]string, 0, len(s)), s...)
}

// Load reads the file at path and returns its configuration with defaults
// applied, after checking it with Validate with one exception: a missing
// keytab is not reported, because -keytab may still supply it. Callers apply
// their command-line overrides and then call Validate, which does report it.
//
// Errors from reading the file wrap the os error (errors.Is(err,
// fs.ErrNotExist) works). Problems with the content are *Error values joined
// with errors.Join, sorted by line.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	// Read one byte past the limit to tell "exactly MaxFileSize" from
	// "larger".
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(data, path)
}

// Parse parses data, a configuration file named name in error messages (name
// may be empty), applies defaults and validates the result as Load does.
func Parse(data []byte, name string) (*Config, error) {
	if len(data) > MaxFileSize {
		return nil, &Error{File: name, Msg: fmt.Sprintf("file larger than %s", formatSize(MaxFileSize))}
	}
	p := parser{name: name, cfg: Default(), origin: &origin{
		name:      name,
		lines:     make(map[string]int),
		itemLines: make(map[string][]int),
		values:    make(map[string]any),
	}}
	p.parse(data)
	p.cfg.origin = p.origin
	errs := p.errs
	errs = append(errs, p.cfg.validate(false)...)
	if err := joinSorted(errs); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// Validate checks every field and the relations between them, and reports
// all problems together (errors.Join of *Error, sorted by line). It is run by
// Load and Parse; call it again after changing a Config, e.g. after applying
// command-line overrides. An error names the file line of a value only when
// the value is still the one read from that line.
func (c *Config) Validate() error {
	return joinSorted(c.validate(true))
}

// ProxyNetworks returns ProxyProtocolFrom parsed; Validate has checked it,
// so an unparsable item is skipped.
func (c *Config) ProxyNetworks() []netip.Prefix {
	var ps []netip.Prefix
	for _, s := range c.ProxyProtocolFrom {
		if p, err := netip.ParsePrefix(s); err == nil {
			ps = append(ps, p)
		}
	}
	return ps
}
