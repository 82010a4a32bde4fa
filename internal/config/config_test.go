package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// withoutOrigin returns a copy of c without its file bookkeeping, so that a
// parsed Config can be compared with one built in code.
func withoutOrigin(c *Config) Config {
	n := *c
	n.origin = nil
	return n
}

// errorsOf flattens an error returned by Parse or Validate into its *Error
// parts, failing the test on anything else.
func errorsOf(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		return nil
	}
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	out := make([]*Error, 0, len(list))
	for _, e := range list {
		ce, ok := e.(*Error)
		if !ok {
			t.Fatalf("error %v (%T) is not a *config.Error", e, e)
		}
		out = append(out, ce)
	}
	return out
}

func TestDefaults(t *testing.T) {
	c := Default()
	want := Config{
		Listen:                   []string{DefaultListen},
		Workers:                  DefaultWorkers(),
		MaxSessionsPerWorker:     DefaultMaxSessionsPerWorker,
		WorkerMaxSessions:        DefaultWorkerMaxSessions,
		WorkerMaxLifetime:        DefaultWorkerMaxLifetime,
		WorkerCPUs:               DefaultWorkerCPUs,
		WorkerRespawnBackoffMax:  DefaultWorkerRespawnBackoffMax,
		WorkerAckTimeout:         DefaultWorkerAckTimeout,
		WorkerHeartbeat:          DefaultWorkerHeartbeat,
		HandshakeTimeout:         DefaultHandshakeTimeout,
		MaxHandshakes:            DefaultMaxHandshakes,
		MaxPendingConnections:    DefaultMaxPendingConnections,
		MaxPendingPerSource:      DefaultMaxPendingPerSource,
		FirstFrameTimeout:        DefaultFirstFrameTimeout,
		DeferAccept:              DefaultDeferAccept,
		IdleTimeout:              DefaultIdleTimeout,
		MaxTokenSize:             DefaultMaxTokenSize,
		MaxMessageSize:           DefaultMaxMessageSize,
		ClockSkew:                DefaultClockSkew,
		ReplayCacheSize:          DefaultReplayCacheSize,
		ReplayCache:              DefaultReplayCache,
		ReplayCacheFailure:       DefaultReplayCacheFailure,
		ReplayCacheTimeout:       DefaultReplayCacheTimeout,
		ReplayCacheKeyPrefix:     DefaultReplayCacheKeyPrefix,
		ReplayCacheFsync:         DefaultReplayCacheFsync,
		ReplayCacheFsyncInterval: DefaultReplayCacheFsyncInterval,
		ImportDeadline:           DefaultImportDeadline,
		ShutdownTimeout:          DefaultShutdownTimeout,
		Backend:                  DefaultBackend,
		BackendConnectTimeout:    DefaultBackendConnectTimeout,
		ExecMaxPerWorker:         DefaultExecMaxPerWorker,
		LogLevel:                 DefaultLogLevel,
		LogFormat:                DefaultLogFormat,
	}
	if !reflect.DeepEqual(*c, want) {
		t.Fatalf("Default() = %+v\nwant %+v", *c, want)
	}

	// The documented values of the constants themselves.
	consts := []struct {
		name      string
		got, want any
	}{
		{"DefaultListen", DefaultListen, ":4444"},
		{"DefaultMaxSessionsPerWorker", DefaultMaxSessionsPerWorker, 4096},
		{"DefaultWorkerMaxSessions", DefaultWorkerMaxSessions, 0},
		{"DefaultWorkerMaxLifetime", DefaultWorkerMaxLifetime, time.Duration(0)},
		{"DefaultWorkerRespawnBackoffMax", DefaultWorkerRespawnBackoffMax, 30 * time.Second},
		{"DefaultWorkerAckTimeout", DefaultWorkerAckTimeout, 2 * time.Second},
		{"DefaultWorkerHeartbeat", DefaultWorkerHeartbeat, 30 * time.Second},
		{"DefaultWorkerCPUs", DefaultWorkerCPUs, 1},
		{"DefaultHandshakeTimeout", DefaultHandshakeTimeout, 10 * time.Second},
		{"DefaultMaxHandshakes", DefaultMaxHandshakes, 256},
		{"DefaultIdleTimeout", DefaultIdleTimeout, 5 * time.Minute},
		{"DefaultMaxTokenSize", DefaultMaxTokenSize, 65536},
		{"DefaultMaxMessageSize", DefaultMaxMessageSize, 1048576},
		{"DefaultClockSkew", DefaultClockSkew, 300 * time.Second},
		{"DefaultReplayCacheSize", DefaultReplayCacheSize, 1000000},
		{"DefaultImportDeadline", DefaultImportDeadline, 30 * time.Second},
		{"DefaultShutdownTimeout", DefaultShutdownTimeout, 30 * time.Second},
		{"DefaultLogLevel", DefaultLogLevel, "info"},
		{"DefaultLogFormat", DefaultLogFormat, "json"},
		{"DefaultWorkerName", DefaultWorkerName, "gss-worker"},
	}
	for _, tc := range consts {
		if !reflect.DeepEqual(tc.got, tc.want) {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if n := DefaultWorkers(); n < 1 || n > MaxWorkers {
		t.Errorf("DefaultWorkers() = %d, outside [1, %d]", n, MaxWorkers)
	}

	// The zero Config means the defaults.
	var z Config
	z.ApplyDefaults()
	if !reflect.DeepEqual(z, *c) {
		t.Errorf("ApplyDefaults on the zero Config = %+v, want Default()", z)
	}

	// Defaults are valid except for the keytab nobody can guess.
	errs := errorsOf(t, c.Validate())
	if len(errs) != 1 || errs[0].Key != "keytab" || errs[0].Line != 0 {
		t.Fatalf("Default().Validate() = %v, want only the missing keytab", errs)
	}
	c.Keytab = "/etc/krb5.keytab"
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() with a keytab: %v", err)
	}
}

func TestApplyDefaultsKeepsSetFields(t *testing.T) {
	c := &Config{Workers: 3, IdleTimeout: NoIdleTimeout, LogLevel: LogLevelWarn, Listen: []string{"127.0.0.1:1"}}
	c.ApplyDefaults()
	if c.Workers != 3 || c.IdleTimeout != NoIdleTimeout || c.LogLevel != LogLevelWarn ||
		!reflect.DeepEqual(c.Listen, []string{"127.0.0.1:1"}) {
		t.Fatalf("ApplyDefaults overwrote set fields: %+v", c)
	}
	if c.HandshakeTimeout != DefaultHandshakeTimeout || c.MaxTokenSize != DefaultMaxTokenSize {
		t.Fatalf("ApplyDefaults left zero fields: %+v", c)
	}
}

func TestParseFullFile(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen:                   []string{"127.0.0.1:4444", "[::1]:4445", "gss.example.com:4446"},
		Keytab:                   "/var/lib/gss-acceptor/service.keytab",
		Services:                 []string{"host/h.example.com@EXAMPLE.COM", "HTTP/www.example.com"},
		AllowClients:             []string{"alice@EXAMPLE.COM", "*@PARTNER.EXAMPLE"},
		AllowClientsFile:         "/etc/gss-acceptor/clients",
		ExecMaxPerWorker:         DefaultExecMaxPerWorker, // exec keys need backend exec
		Workers:                  7,
		MaxSessionsPerWorker:     1000,
		WorkerMaxSessions:        50000,
		WorkerMaxLifetime:        2 * time.Hour,
		WorkerPath:               "/usr/libexec/gss-acceptor/gss-worker",
		WorkerUser:               "gssworker",
		WorkerGroup:              "4242",
		WorkerCPUs:               3,
		WorkerRespawnBackoffMax:  90 * time.Second,
		WorkerAckTimeout:         1500 * time.Millisecond,
		WorkerHeartbeat:          NoWorkerHeartbeat,
		HandshakeTimeout:         3 * time.Second,
		MaxHandshakes:            64,
		MaxPendingConnections:    10000,
		MaxPendingPerSource:      16,
		FirstFrameTimeout:        1500 * time.Millisecond,
		AcceptorCPUs:             2,
		SysmonDeepSleep:          true,
		DeferAccept:              NoDeferAccept,
		IdleTimeout:              NoIdleTimeout,
		MaxTokenSize:             32 << 10,
		MaxMessageSize:           4 << 20,
		ClockSkew:                2 * time.Minute,
		ReplayCacheSize:          250000,
		ProxyProtocolFrom:        []string{"10.0.0.0/24", "2001:db8::/64"},
		ReplayCache:              "rediss://acceptor:secret@cache.example.com:6380/2",
		ReplayCacheFailure:       "fallback",
		ReplayCacheTimeout:       100 * time.Millisecond,
		ReplayCacheKeyPrefix:     "site-a:rc:",
		ReplayCacheTLSCA:         "/etc/ssl/redis-ca.pem",
		ReplayCacheTLSCert:       "/etc/gss-acceptor/redis.pem",
		ReplayCacheTLSKey:        "/etc/gss-acceptor/redis.key",
		ReplayCacheBatch:         true,
		ReplayCacheFsync:         "always",
		ReplayCacheFsyncInterval: 250 * time.Millisecond,
		ImportDeadline:           5 * time.Second,
		ShutdownTimeout:          45 * time.Second,
		AllowDelegation:          true,
		ChannelBindings:          "tls-server-end-point:abc",
		Backend:                  "tcp:127.0.0.1:6379",
		BackendProxyProtocol:     "v2",
		BackendConnectTimeout:    2 * time.Second,
		StreamIntegrityAllowed:   true,
		LogLevel:                 LogLevelDebug,
		LogFormat:                LogFormatConsole,
		LogFile:                  "/var/log/gss-acceptor.log",
		MetricsAddress:           "192.0.2.10:9464",
		MetricsAllowNonLoopback:  true,
	}
	if got := withoutOrigin(c); !reflect.DeepEqual(got, want) {
		t.Fatalf("parsed\n%+v\nwant\n%+v", got, want)
	}
	// exec_path, exec_args and exec_max_per_worker need backend exec:
	// full-exec.yaml has them.
	e, err := Load(filepath.Join("testdata", "full-exec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Backend != BackendExec || e.ExecPath != "/usr/libexec/app/serve" || !reflect.DeepEqual(e.ExecArgs, []string{"--stdio", "-v"}) ||
		e.ExecMaxPerWorker != 8 {
		t.Fatalf("full-exec.yaml parsed as %+v", withoutOrigin(e))
	}
	// The files must exercise every key with a non-default value, or this
	// test would not notice a key that is silently ignored.
	def := Default()
	for i := range keys {
		k := &keys[i]
		f := c
		if _, ok := c.origin.lines[k.name]; !ok {
			f = e
		}
		if _, ok := f.origin.lines[k.name]; !ok {
			t.Errorf("neither testdata/full.yaml nor full-exec.yaml sets %s", k.name)
			continue
		}
		if reflect.DeepEqual(k.get(f), k.get(def)) && k.name != "allow_unauthenticated" { // only false is valid
			t.Errorf("%s sets %s to its default", f.origin.name, k.name)
		}
	}
}

func TestExampleFile(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "gss-acceptor.yaml")
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("example file does not validate: %v", err)
	}
	want := Default()
	want.Keytab = "/etc/gss-acceptor/gss-acceptor.keytab"
	want.Services = []string{"host/h.example.com"}
	if got := withoutOrigin(c); !reflect.DeepEqual(got, *want) {
		t.Fatalf("example file\n%+v\nwant Default() with keytab and services\n%+v", got, *want)
	}

	// Every key is documented: it appears set or commented out at the
	// start of a line, with a comment block above it.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range keyNames {
		re := regexp.MustCompile(`(?m)^# ?[^\n]*\n(#? ?` + name + `:)`)
		if !re.Match(data) {
			t.Errorf("example file does not document %s", name)
		}
	}
}

func TestParseEmptyAndNull(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
	}{
		{"empty", ""},
		{"comments only", "# nothing here\n\n# at all\n"},
		{"null document", "~\n"},
		{"document marker", "---\n"},
		{"null values keep defaults", "workers:\nlog_level: ~\nlisten:\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.data), "x.yaml")
			if err != nil {
				t.Fatal(err)
			}
			if got := withoutOrigin(c); !reflect.DeepEqual(got, *Default()) {
				t.Fatalf("got %+v, want Default()", got)
			}
		})
	}
}

func TestValueSyntax(t *testing.T) {
	for _, tc := range []struct {
		name  string
		data  string
		check func(*Config) bool
	}{
		{"duration 1m30s", "handshake_timeout: 1m30s", func(c *Config) bool { return c.HandshakeTimeout == 90*time.Second }},
		{"duration 500ms", "first_frame_timeout: 500ms", func(c *Config) bool { return c.FirstFrameTimeout == 500*time.Millisecond }},
		{"defer_accept default", "workers: 1", func(c *Config) bool { return c.DeferAccept == time.Second }},
		{"defer_accept off", "defer_accept: 0", func(c *Config) bool { return c.DeferAccept == NoDeferAccept }},
		{"defer_accept 5s", "defer_accept: 5s", func(c *Config) bool { return c.DeferAccept == 5*time.Second }},
		{"worker_heartbeat default", "workers: 1", func(c *Config) bool { return c.WorkerHeartbeat == 30*time.Second }},
		{"worker_heartbeat off", "worker_heartbeat: 0", func(c *Config) bool { return c.WorkerHeartbeat == NoWorkerHeartbeat }},
		{"worker_heartbeat 5m", "worker_heartbeat: 5m", func(c *Config) bool { return c.WorkerHeartbeat == 5*time.Minute }},
		{"steady_sysmon default", "workers: 1", func(c *Config) bool { return !c.SysmonDeepSleep }},
		{"steady_sysmon off", "steady_sysmon: false", func(c *Config) bool { return c.SysmonDeepSleep }},
		{"acceptor_cpus default", "workers: 1", func(c *Config) bool { return c.AcceptorCPUs == 0 }},
		{"acceptor_cpus 3", "acceptor_cpus: 3", func(c *Config) bool { return c.AcceptorCPUs == 3 }},
		{"duration quoted", `handshake_timeout: "20s"`, func(c *Config) bool { return c.HandshakeTimeout == 20*time.Second }},
		{"duration bare zero", "worker_max_lifetime: 0", func(c *Config) bool { return c.WorkerMaxLifetime == 0 }},
		{"duration zero with unit", "worker_max_lifetime: 0s", func(c *Config) bool { return c.WorkerMaxLifetime == 0 }},
		{"idle zero disables", "idle_timeout: 0", func(c *Config) bool { return c.IdleTimeout == NoIdleTimeout }},
		{"idle 0s disables", "idle_timeout: 0s", func(c *Config) bool { return c.IdleTimeout == NoIdleTimeout }},
		{"idle set", "idle_timeout: 1h", func(c *Config) bool { return c.IdleTimeout == time.Hour }},
		{"size plain bytes", "max_token_size: 2048", func(c *Config) bool { return c.MaxTokenSize == 2048 }},
		{"size B", "max_token_size: 4096B", func(c *Config) bool { return c.MaxTokenSize == 4096 }},
		{"size KiB", "max_token_size: 8KiB", func(c *Config) bool { return c.MaxTokenSize == 8192 }},
		{"size MiB", "max_message_size: 16MiB", func(c *Config) bool { return c.MaxMessageSize == 16<<20 }},
		{"size GiB", "max_message_size: 1GiB", func(c *Config) bool { return c.MaxMessageSize == 1<<30 }},
		{"int underscores", "replay_cache_size: 2_000_000", func(c *Config) bool { return c.ReplayCacheSize == 2000000 }},
		{"int hex", "max_handshakes: 0x40", func(c *Config) bool { return c.MaxHandshakes == 64 }},
		{"numeric user", "worker_user: 1000", func(c *Config) bool { return c.WorkerUser == "1000" }},
		{"quoted numeric group", `worker_group: "1000"`, func(c *Config) bool { return c.WorkerGroup == "1000" }},
		{"flow list", `listen: ["127.0.0.1:1", "[::1]:1"]`, func(c *Config) bool {
			return reflect.DeepEqual(c.Listen, []string{"127.0.0.1:1", "[::1]:1"})
		}},
		{"empty services", "services: []", func(c *Config) bool { return c.Services != nil && len(c.Services) == 0 }},
		{"escaped principal", `services: ['a\/b/h.example.com@R\@X']`, func(c *Config) bool { return c.Services[0] == `a\/b/h.example.com@R\@X` }},
		{"loopback metrics v6", `metrics_address: "[::1]:9464"`, func(c *Config) bool { return c.MetricsAddress == "[::1]:9464" }},
		{"loopback metrics name", `metrics_address: "localhost:9464"`, func(c *Config) bool { return c.MetricsAddress == "localhost:9464" }},
		{"lifetime equal to shutdown", "worker_max_lifetime: 30s\nshutdown_timeout: 30s", func(c *Config) bool { return c.WorkerMaxLifetime == 30*time.Second }},
		{"channel bindings with NUL", `channel_bindings: "a\0b"`, func(c *Config) bool { return c.ChannelBindings == "a\x00b" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse([]byte(tc.data+"\n"), "")
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected result %+v", withoutOrigin(c))
			}
		})
	}
}

// TestInvalidValues has one row per key and kind of mistake. Each error must
// name the key and the line of the value.
func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string // the bad value (or list item) is on the last line
		key  string
		want string // a substring of the message
	}{
		{"listen not a list", `listen: ":4444"`, "listen", "must be a list"},
		{"proxy_protocol_from not CIDR", "proxy_protocol_from:\n  - 10.0.0.1", "proxy_protocol_from", "not a CIDR network"},
		{"proxy_protocol_from host bits", "proxy_protocol_from:\n  - 10.0.0.1/8", "proxy_protocol_from", "the network is 10.0.0.0/8"},
		{"proxy_protocol_from not list", "proxy_protocol_from: 10.0.0.0/8", "proxy_protocol_from", "must be a list"},
		{"replay_cache unknown", `replay_cache: memcached://x:1`, "replay_cache", "must be memory, file:/PATH, redis://"},
		{"replay_cache file relative", `replay_cache: "file:rcache"`, "replay_cache", "absolute, clean path"},
		{"replay_cache no port", `replay_cache: "redis://cache.example/0"`, "replay_cache", "needs HOST:PORT"},
		{"replay_cache no host redacted", `replay_cache: "redis://u:hunter2@:6379/0"`, "replay_cache", "u:xxxxx@"},
		{"replay_cache_failure", `replay_cache_failure: ignore`, "replay_cache_failure", "refuse"},
		{"replay_cache_timeout", `replay_cache_timeout: 2m`, "replay_cache_timeout", "1m"},
		{"replay_cache_key_prefix", `replay_cache_key_prefix: ""`, "replay_cache_key_prefix", "empty"},
		{"replay_cache_fsync", `replay_cache_fsync: sometimes`, "replay_cache_fsync", "interval"},
		{"replay_cache_fsync_interval", `replay_cache_fsync_interval: 0s`, "replay_cache_fsync_interval", "1ms"},
		{"replay_cache_tls_ca without rediss", "replay_cache: \"redis://127.0.0.1:6379/0\"\nreplay_cache_tls_ca: /etc/ca.pem", "replay_cache_tls_ca", "needs replay_cache: rediss://"},
		{"replay_cache_tls_ca relative", "replay_cache: \"rediss://127.0.0.1:6379/0\"\nreplay_cache_tls_ca: ca.pem", "replay_cache_tls_ca", "absolute path"},
		{"replay_cache_tls_cert without key", "replay_cache: \"rediss://127.0.0.1:6379/0\"\nreplay_cache_tls_cert: /etc/c.pem", "replay_cache_tls_cert", "set both or neither"},
		{"listen empty", `listen: []`, "listen", "at least one address"},
		{"listen no port", "listen:\n  - \"127.0.0.1\"", "listen", `must be "host:port"`},
		{"listen named port", "listen:\n  - \"127.0.0.1:gss\"", "listen", "port must be a number"},
		{"listen port too big", "listen:\n  - \":65536\"", "listen", "port must be a number"},
		{"listen bad host", "listen:\n  - \"bad_host!:1\"", "listen", "invalid host name"},
		{"listen bracketed v4", "listen:\n  - \"[127.0.0.1]:1\"", "listen", "only IPv6"},
		{"listen bad v6", "listen:\n  - \"[::g]:1\"", "listen", "invalid IPv6"},
		{"listen duplicate", "listen:\n  - \":1\"\n  - \":1\"", "listen", "more than once"},
		{"listen item not string", "listen:\n  - 4444", "listen", "list item must be a string"},
		{"listen item mapping", "listen:\n  - a: b", "listen", "list item must be a string, got a mapping"},
		{"keytab relative", "keytab: krb5.keytab", "keytab", "absolute path"},
		{"keytab FILE prefix", "keytab: FILE:/etc/krb5.keytab", "keytab", `"FILE:" prefix`},
		{"keytab not string", "keytab: 12", "keytab", "must be a string"},
		{"keytab list", "keytab: [a]", "keytab", "must be a string, got a list"},
		{"services not list", "services: host/h", "services", "must be a list"},
		{"services empty realm", "services:\n  - host/h@", "services", "empty realm"},
		{"services two at", "services:\n  - host/h@A@B", "services", `more than one unescaped "@"`},
		{"services empty component", "services:\n  - host//h", "services", "empty component"},
		{"services trailing backslash", "services:\n  - 'host/h\\'", "services", "lone"},
		{"services hostbased", "services:\n  - host@h.example.com", "services", `"host/h.example.com"`},
		{"services duplicate", "services:\n  - a/b\n  - a/b", "services", "more than once"},
		{"services control char", "services:\n  - \"a/b\\x01\"", "services", "control character"},
		{"workers zero", "workers: 0", "workers", "must be between 1 and 1024, got 0"},
		{"workers too many", "workers: 1025", "workers", "must be between 1 and 1024, got 1025"},
		{"workers string", `workers: "4"`, "workers", "must be an integer"},
		{"workers float", "workers: 4.5", "workers", "must be an integer"},
		{"workers bool", "workers: true", "workers", "must be an integer"},
		{"workers overflow", "workers: 99999999999999999999", "workers", "must be an integer"},
		{"max_sessions_per_worker zero", "max_sessions_per_worker: 0", "max_sessions_per_worker", "between 1 and"},
		{"max_sessions_per_worker product", "workers: 1024\nmax_sessions_per_worker: 16777216", "max_sessions_per_worker", "workers (1024) × max_sessions_per_worker"},
		{"worker_max_sessions negative", "worker_max_sessions: -1", "worker_max_sessions", "must not be negative"},
		{"worker_max_lifetime bare", "worker_max_lifetime: 3600", "worker_max_lifetime", "has no unit"},
		{"worker_max_lifetime negative", "worker_max_lifetime: -1h", "worker_max_lifetime", "must not be negative"},
		{"worker_max_lifetime tiny", "worker_max_lifetime: 10ms", "worker_max_lifetime", "at least 1s"},
		{"worker_max_lifetime below shutdown", "shutdown_timeout: 1m\nworker_max_lifetime: 30s", "worker_max_lifetime", "at least shutdown_timeout (1m0s)"},
		{"worker_path relative", "worker_path: bin/gss-worker", "worker_path", "absolute path"},
		{"worker_path NUL", `worker_path: "/bin/a\0b"`, "worker_path", "NUL"},
		{"worker_user colon", "worker_user: a:b", "worker_user", `must not contain ':'`},
		{"worker_user space", `worker_user: "a b"`, "worker_user", "must not contain"},
		{"worker_user dash", "worker_user: -root", "worker_user", "must not start with"},
		{"worker_user id too big", "worker_user: 4294967295", "worker_user", "numeric id must be from 0 to 4294967294"},
		{"worker_user negative", "worker_user: -1", "worker_user", "numeric id"},
		{"worker_user bool", "worker_user: false", "worker_user", "must be a name or a numeric id"},
		{"worker_group id too big", "worker_group: 99999999999", "worker_group", "numeric id"},
		{"worker_group slash", "worker_group: a/b", "worker_group", `must not contain '/'`},
		{"worker_cpus zero", "worker_cpus: 0", "worker_cpus", "between 1 and 1024"},
		{"worker_cpus huge", "worker_cpus: 5000", "worker_cpus", "between 1 and 1024"},
		{"worker_respawn_backoff_max zero", "worker_respawn_backoff_max: 0", "worker_respawn_backoff_max", "between 100ms and 1h0m0s"},
		{"worker_respawn_backoff_max huge", "worker_respawn_backoff_max: 2h", "worker_respawn_backoff_max", "between 100ms and 1h0m0s"},
		{"worker_ack_timeout zero", "worker_ack_timeout: 0", "worker_ack_timeout", "between 100ms and 1m0s"},
		{"worker_ack_timeout huge", "worker_ack_timeout: 2m", "worker_ack_timeout", "between 100ms and 1m0s"},
		{"worker_ack_timeout equals handshake_timeout", "handshake_timeout: 2s\nworker_ack_timeout: 2s", "worker_ack_timeout", "must be less than handshake_timeout (2s), got 2s"},
		{"worker_ack_timeout over default handshake_timeout", "worker_ack_timeout: 30s", "worker_ack_timeout", "must be less than handshake_timeout (10s), got 30s"},
		{"handshake_timeout under default worker_ack_timeout", "handshake_timeout: 1s", "handshake_timeout", "must be more than worker_ack_timeout (2s), got 1s"},
		{"exec_path with sample backend", "exec_path: /usr/libexec/app", "exec_path", "is used only with backend exec (backend is sample)"},
		{"exec_path with proxy backend", "backend: tcp:127.0.0.1:6379\nexec_path: /usr/libexec/app", "exec_path", "is used only with backend exec (backend is tcp:127.0.0.1:6379)"},
		{"exec_args with sample backend", "exec_args: [--stdio]", "exec_args", "is used only with backend exec (backend is sample)"},
		{"exec_max_per_worker with sample backend", "exec_max_per_worker: 8", "exec_max_per_worker", "is used only with backend exec (backend is sample)"},
		{"exec_max_per_worker default with proxy backend", "backend: tcp:127.0.0.1:6379\nexec_max_per_worker: 64", "exec_max_per_worker", "is used only with backend exec (backend is tcp:127.0.0.1:6379)"},
		{"backend_proxy_protocol with exec backend", "backend: exec\nexec_path: /usr/libexec/app\nbackend_proxy_protocol: v2", "backend_proxy_protocol", "needs a proxy backend (backend is exec)"},
		{"handshake_timeout bare", "handshake_timeout: 30", "handshake_timeout", `has no unit; write e.g. "30s"`},
		{"handshake_timeout bare float", "handshake_timeout: 1.5", "handshake_timeout", "has no unit"},
		{"handshake_timeout garbage", "handshake_timeout: soon", "handshake_timeout", `must be a duration with a unit`},
		{"handshake_timeout bad unit", "handshake_timeout: 10sec", "handshake_timeout", `must be a duration with a unit`},
		{"handshake_timeout list", "handshake_timeout: [1s]", "handshake_timeout", "got a list"},
		{"handshake_timeout bool", "handshake_timeout: true", "handshake_timeout", "got the boolean"},
		{"handshake_timeout zero", "handshake_timeout: 0", "handshake_timeout", "between 100ms and 10m0s, got 0"},
		{"handshake_timeout huge", "handshake_timeout: 1h", "handshake_timeout", "between 100ms and 10m0s"},
		{"max_handshakes zero", "max_handshakes: 0", "max_handshakes", "between 1 and 65536"},
		{"max_handshakes huge", "max_handshakes: 65537", "max_handshakes", "between 1 and 65536"},
		{"max_pending_connections zero", "max_pending_connections: 0", "max_pending_connections", "between 1 and 1048576"},
		{"max_pending_connections huge", "max_pending_connections: 2_000_000", "max_pending_connections", "between 1 and 1048576"},
		{"max_pending_per_source zero", "max_pending_per_source: 0", "max_pending_per_source", "between 1 and 1048576"},
		{"first_frame_timeout zero", "first_frame_timeout: 0", "first_frame_timeout", "between 100ms and 10m0s"},
		{"first_frame_timeout bare", "first_frame_timeout: 3", "first_frame_timeout", "has no unit"},
		{"defer_accept fraction", "defer_accept: 1500ms", "defer_accept", "whole seconds from 1s to 1m0s"},
		{"defer_accept huge", "defer_accept: 2m", "defer_accept", "whole seconds from 1s to 1m0s"},
		{"defer_accept negative", "defer_accept: -1s", "defer_accept", "must not be negative"},
		{"worker_heartbeat too short", "worker_heartbeat: 500ms", "worker_heartbeat", "0 (off) or from 1s to 1h0m0s"},
		{"worker_heartbeat huge", "worker_heartbeat: 2h", "worker_heartbeat", "0 (off) or from 1s to 1h0m0s"},
		{"worker_heartbeat negative", "worker_heartbeat: -1s", "worker_heartbeat", "must not be negative"},
		{"acceptor_cpus negative", "acceptor_cpus: -1", "acceptor_cpus", "between 1 and 1024"},
		{"acceptor_cpus huge", "acceptor_cpus: 1025", "acceptor_cpus", "between 1 and 1024"},
		{"idle_timeout negative", "idle_timeout: -5m", "idle_timeout", "must not be negative"},
		{"idle_timeout tiny", "idle_timeout: 10ms", "idle_timeout", "at least 1s"},
		{"idle_timeout bare", "idle_timeout: 300", "idle_timeout", "has no unit"},
		{"max_token_size small", "max_token_size: 512", "max_token_size", "between 1KiB and 16MiB, got 512B"},
		{"max_token_size big", "max_token_size: 17MiB", "max_token_size", "between 1KiB and 16MiB, got 17MiB"},
		{"max_token_size decimal unit", "max_token_size: 64KB", "max_token_size", `unknown size unit "KB"`},
		{"max_token_size lower unit", "max_token_size: 64kib", "max_token_size", "unknown size unit"},
		{"max_token_size no digits", "max_token_size: KiB", "max_token_size", "must be a size"},
		{"max_token_size negative", "max_token_size: -1", "max_token_size", "got -1B"},
		{"max_token_size overflow", "max_token_size: 99999999999999GiB", "max_token_size", "size out of range"},
		{"max_token_size float", "max_token_size: 1.5", "max_token_size", "must be a size"},
		{"max_message_size small", "max_message_size: 1000", "max_message_size", "between 1KiB and 1GiB, got 1000B"},
		{"max_message_size big", "max_message_size: 2GiB", "max_message_size", "between 1KiB and 1GiB"},
		{"clock_skew zero", "clock_skew: 0", "clock_skew", "between 1s and 24h0m0s"},
		{"clock_skew bare", "clock_skew: 300", "clock_skew", "has no unit"},
		{"clock_skew huge", "clock_skew: 48h", "clock_skew", "between 1s and 24h0m0s"},
		{"replay_cache_size zero", "replay_cache_size: 0", "replay_cache_size", "between 1 and 100000000"},
		{"replay_cache_size huge", "replay_cache_size: 100_000_001", "replay_cache_size", "between 1 and 100000000"},
		{"replay_cache_size size syntax", "replay_cache_size: 1MiB", "replay_cache_size", "must be an integer"},
		{"import_deadline zero", "import_deadline: 0", "import_deadline", "between 100ms and 10m0s"},
		{"import_deadline huge", "import_deadline: 11m", "import_deadline", "between 100ms and 10m0s"},
		{"shutdown_timeout zero", "shutdown_timeout: 0", "shutdown_timeout", "between 100ms and 24h0m0s"},
		{"shutdown_timeout huge", "shutdown_timeout: 25h", "shutdown_timeout", "between 100ms and 24h0m0s"},
		{"allow_delegation yes", "allow_delegation: yes", "allow_delegation", `must be true or false, got the string "yes"`},
		{"allow_delegation number", "allow_delegation: 1", "allow_delegation", "must be true or false"},
		{"channel_bindings number", "channel_bindings: 5", "channel_bindings", "quote it"},
		{"channel_bindings too long", "channel_bindings: " + strings.Repeat("x", 64<<10+1), "channel_bindings", "more than 64KiB"},
		{"allow_unauthenticated string", `allow_unauthenticated: "true"`, "allow_unauthenticated", "must be true or false"},
		{"allow_unauthenticated true", "allow_unauthenticated: true", "allow_unauthenticated", "must be false: unauthenticated sessions are not supported"},
		{"log_level unknown", "log_level: warning", "log_level", `must be one of debug, info, warn, error; got "warning" (did you mean "warn"?)`},
		{"log_level case", "log_level: INFO", "log_level", `(did you mean "info"?)`},
		{"log_level empty", `log_level: ""`, "log_level", "must be one of"},
		{"log_format unknown", "log_format: text", "log_format", "must be one of json, console"},
		{"log_format typo", "log_format: jsno", "log_format", `did you mean "json"`},
		{"log_file relative", "log_file: gss.log", "log_file", "absolute path"},
		{"metrics_address no port", "metrics_address: 127.0.0.1", "metrics_address", `must be "host:port"`},
		{"metrics_address wildcard", `metrics_address: ":9464"`, "metrics_address", "not a loopback address"},
		{"metrics_address public", `metrics_address: "192.0.2.1:9464"`, "metrics_address", "metrics_allow_non_loopback"},
		{"metrics_address hostname", `metrics_address: "metrics.example.com:9464"`, "metrics_address", "not a loopback address"},
		{"metrics_address overlaps listen", "listen: [\"127.0.0.1:4444\"]\nmetrics_address: \"127.0.0.1:4444\"", "metrics_address", "overlaps listen"},
		{"metrics_address overlaps wildcard listen", "metrics_address: \"127.0.0.1:4444\"", "metrics_address", "overlaps listen"},
		{"metrics_address overlaps 0.0.0.0 listen", "listen: [\"0.0.0.0:9464\"]\nmetrics_address: \"localhost:9464\"", "metrics_address", "overlaps listen"},
		{"timestamp for duration", "handshake_timeout: 2001-12-14", "handshake_timeout", "got the timestamp"},
		{"custom tag", "keytab: !custom /k", "keytab", `got a value tagged "!custom"`},
		{"explicit str tag for int", "workers: !!str 4", "workers", `must be an integer, got the string "4"`},
		{"float for size", "max_message_size: 1.5", "max_message_size", "got the number"},
		{"metrics_allow_non_loopback string", "metrics_allow_non_loopback: on", "metrics_allow_non_loopback", "must be true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data := "# leading comment\n" + tc.data + "\n"
			line := strings.Count(data, "\n")
			_, err := Parse([]byte(data), "t.yaml")
			if err == nil {
				t.Fatalf("no error for %q", tc.data)
			}
			var found bool
			for _, e := range errorsOf(t, err) {
				if e.Key == tc.key && strings.Contains(e.Msg, tc.want) {
					found = true
					if tc.key != "" {
						prefix := "config: t.yaml: line " + strconv.Itoa(line) + ": " + tc.key + ": "
						if !strings.HasPrefix(e.Error(), prefix) {
							t.Errorf("error %q does not start with %q", e.Error(), prefix)
						}
					}
				}
			}
			if !found {
				t.Fatalf("error %q does not name key %q with %q", err, tc.key, tc.want)
			}
		})
	}
}

func TestDocumentErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		data string
		want string // the full text of the first error
	}{
		{"unknown key with suggestion", "workers: 2\n\nwrokers: 3\n", `config: f: line 3: unknown key "wrokers" (did you mean "workers"?)`},
		{"unknown key case", "Workers: 2\n", `config: f: line 1: unknown key "Workers" (did you mean "workers"?)`},
		{"unknown key missing underscore", "maxhandshakes: 2\n", `config: f: line 1: unknown key "maxhandshakes" (did you mean "max_handshakes"?)`},
		{"unknown key no suggestion", "colour: blue\n", `config: f: line 1: unknown key "colour"`},
		{"duplicate key", "workers: 2\nlog_level: info\nworkers: 3\n", `config: f: line 3: workers: set more than once (first on line 1)`},
		{"syntax error", "workers: 2\nlisten: [\n", `config: f: line 2: invalid YAML: did not find expected node content`},
		{"tab indentation", "listen:\n\t- \":1\"\n", `config: f: line 2: invalid YAML: found character that cannot start any token`},
		{"two documents", "workers: 2\n---\nworkers: 3\n", `config: f: line 2: the file holds more than one YAML document`},
		{"root list", "- a\n- b\n", `config: f: line 1: the file must be a mapping of keys to values, got a list`},
		{"root scalar", "workers\n", `config: f: line 1: the file must be a mapping of keys to values, got the string "workers"`},
		{"non-string key", "1: a\n", `config: f: line 1: keys must be plain names, got the integer "1"`},
		{"merge key", "base: &b {workers: 2}\n<<: *b\n", `config: f: line 1: unknown key "base"`},
		{"alias", "log_format: &f json\nlog_level: *f\n", `config: f: line 2: log_level: aliases (*name) are not supported`},
		{"long unknown key", strings.Repeat("k", 100) + ": 1\n", `config: f: line 1: unknown key "` + strings.Repeat("k", 64) + `"...`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.data), "f")
			errs := errorsOf(t, err)
			if len(errs) == 0 {
				t.Fatalf("no error")
			}
			if got := errs[0].Error(); !strings.HasPrefix(got, tc.want) {
				t.Fatalf("error\n%q\nwant prefix\n%q", got, tc.want)
			}
		})
	}
}

func TestListLimits(t *testing.T) {
	var b strings.Builder
	b.WriteString("listen:\n")
	for i := range maxListen + 1 {
		fmt.Fprintf(&b, "  - \"127.0.0.1:%d\"\n", 1000+i)
	}
	b.WriteString("services:\n")
	for i := range maxServices + 1 {
		fmt.Fprintf(&b, "  - \"s%d/h\"\n", i)
	}
	_, err := Parse([]byte(b.String()), "")
	errs := errorsOf(t, err)
	if len(errs) != 2 || errs[0].Key != "listen" || errs[0].Line != 2 || errs[1].Key != "services" ||
		!strings.Contains(errs[0].Msg, "more than 64") || !strings.Contains(errs[1].Msg, "more than 1024") {
		t.Fatalf("got %v", err)
	}
}

func TestQuoteCutsOnRuneBoundary(t *testing.T) {
	s := strings.Repeat("a", maxQuoted-1) + "é" + strings.Repeat("b", 10)
	got := quote(s)
	if got != strconv.Quote(strings.Repeat("a", maxQuoted-1))+"..." {
		t.Fatalf("quote = %s", got)
	}
	if quote("short") != `"short"` {
		t.Fatal("short string changed")
	}
}

func TestMergeKeyRefused(t *testing.T) {
	_, err := Parse([]byte("<<: {workers: 2}\n"), "")
	if err == nil || !strings.Contains(err.Error(), "line 1: merge keys (<<) are not supported") {
		t.Fatalf("got %v", err)
	}
}

func TestMultipleErrorsSorted(t *testing.T) {
	data := strings.Join([]string{
		"log_level: loud",         // 1
		"workers: 0",              // 2
		"wrokers: 3",              // 3
		"handshake_timeout: 30",   // 4
		"listen:",                 // 5
		"  - \":1\"",              // 6
		"  - \"nope\"",            // 7
		"max_token_size: 1EiB",    // 8
		"metrics_address: \":9\"", // 9
	}, "\n") + "\n"
	_, err := Parse([]byte(data), "")
	errs := errorsOf(t, err)
	want := []struct {
		line int
		key  string
	}{{1, "log_level"}, {2, "workers"}, {3, ""}, {4, "handshake_timeout"}, {7, "listen"}, {8, "max_token_size"}, {9, "metrics_address"}}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if errs[i].Line != w.line || errs[i].Key != w.key {
			t.Errorf("error %d = line %d key %q, want line %d key %q", i, errs[i].Line, errs[i].Key, w.line, w.key)
		}
	}
	// errors.Join renders one error per line, in the same order.
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) || !strings.HasPrefix(lines[1], "config: line 2: workers: ") {
		t.Fatalf("joined error text:\n%s", err)
	}
	var first *Error
	if !errors.As(err, &first) || first.Line != 1 {
		t.Fatalf("errors.As found %v", first)
	}
}

func TestLoadKeytabFromFlag(t *testing.T) {
	// A file without keytab loads, since -keytab may supply it; Validate
	// reports it if nothing does.
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(path, []byte("workers: 2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatalf("Load without keytab: %v", err)
	}
	err = c.Validate()
	errs := errorsOf(t, err)
	if len(errs) != 1 || errs[0].Key != "keytab" || !strings.Contains(errs[0].Msg, "required") {
		t.Fatalf("Validate = %v, want keytab required", err)
	}
	if got := err.Error(); got != "config: keytab: required: set it in the file or with -keytab" {
		t.Fatalf("message %q", got)
	}
	c.Keytab = "/etc/krb5.keytab"
	if err := c.Validate(); err != nil {
		t.Fatalf("after override: %v", err)
	}
}

func TestValidateLineAttribution(t *testing.T) {
	data := "keytab: /k\nworkers: 3\nworker_max_lifetime: 30m\nlisten:\n  - \":1\"\n  - \":2\"\n"
	c, err := Parse([]byte(data), "c.yaml")
	if err != nil {
		t.Fatal(err)
	}

	// Fields changed after parsing are reported without a line or file.
	changed := c.Clone()
	changed.MaxHandshakes = 0   // not in the file
	changed.Listen[1] = "bad"   // the list no longer is the file's
	changed.Keytab = "relative" // as if from -keytab
	errs := errorsOf(t, changed.Validate())
	if len(errs) != 3 {
		t.Fatalf("got %v", errs)
	}
	for _, e := range errs {
		if e.Line != 0 || e.File != "" {
			t.Errorf("changed field reported at %s line %d: %v", e.File, e.Line, e)
		}
	}

	// A value still as in the file keeps its line, also when another
	// field made it wrong: raising shutdown_timeout (not in the file)
	// above worker_max_lifetime blames line 3.
	cross := c.Clone()
	cross.ShutdownTimeout = time.Hour
	errs = errorsOf(t, cross.Validate())
	if len(errs) != 1 || errs[0].Key != "worker_max_lifetime" || errs[0].Line != 3 || errs[0].File != "c.yaml" {
		t.Fatalf("got %v", errs)
	}

	// Setting a changed value back to the file's restores the line.
	back := c.Clone()
	back.Workers = 0
	if errs = errorsOf(t, back.Validate()); len(errs) != 1 || errs[0].Line != 0 {
		t.Fatalf("got %v", errs)
	}
	back.Workers = 3
	back.WorkerMaxLifetime = time.Millisecond
	back.WorkerMaxLifetime = 30 * time.Minute
	back.ShutdownTimeout = 2 * time.Hour
	if errs = errorsOf(t, back.Validate()); len(errs) != 1 || errs[0].Line != 3 {
		t.Fatalf("got %v", errs)
	}
}

func TestValidateItemLine(t *testing.T) {
	data := "services:\n  - a/b\n  - c@d.example.com\n"
	_, err := Parse([]byte(data), "")
	errs := errorsOf(t, err)
	if len(errs) != 1 || errs[0].Line != 3 || errs[0].Key != "services" {
		t.Fatalf("got %v", err)
	}
}

func TestValidateNil(t *testing.T) {
	var c *Config
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "nil configuration") {
		t.Fatalf("got %v", err)
	}
	if c.Clone() != nil {
		t.Fatal("Clone of nil is not nil")
	}
	if c.Redacted() != nil {
		t.Fatal("Redacted of nil is not nil")
	}
}

func TestClone(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Clone()
	if !reflect.DeepEqual(n, c) {
		t.Fatal("clone differs")
	}
	n.Listen[0] = "changed:1"
	n.Services[0] = "changed/x"
	n.Listen = append(n.Listen, "more:2")
	n.Workers = 1
	if c.Listen[0] != "127.0.0.1:4444" || c.Services[0] != "host/h.example.com@EXAMPLE.COM" ||
		len(c.Listen) != 3 || c.Workers != 7 {
		t.Fatalf("changing the clone changed the original: %+v", withoutOrigin(c))
	}
	// Clone keeps nil slices nil, so DeepEqual of defaults holds.
	d := Default()
	if dc := d.Clone(); dc.Services != nil || !reflect.DeepEqual(dc, d) {
		t.Fatalf("Clone(Default()) = %+v", dc)
	}
}

func TestRedacted(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Redacted()
	if len(m) != len(keys) {
		t.Fatalf("Redacted has %d entries, want %d", len(m), len(keys))
	}
	want := map[string]any{
		"listen":                     []string{"127.0.0.1:4444", "[::1]:4445", "gss.example.com:4446"},
		"workers":                    7,
		"worker_max_lifetime":        "2h0m0s",
		"worker_group":               "4242",
		"idle_timeout":               "0",
		"max_token_size":             "32KiB",
		"max_message_size":           "4MiB",
		"handshake_timeout":          "3s",
		"allow_delegation":           true,
		"channel_bindings":           "(24 bytes)",
		"log_format":                 "console",
		"metrics_allow_non_loopback": true,
		"replay_cache":               "rediss://acceptor:xxxxx@cache.example.com:6380/2",
	}
	for k, v := range want {
		if !reflect.DeepEqual(m[k], v) {
			t.Errorf("Redacted()[%q] = %#v, want %#v", k, m[k], v)
		}
	}
	for k, v := range m {
		if s, ok := v.(string); ok && strings.Contains(s, "tls-server-end-point") {
			t.Errorf("Redacted()[%q] shows the channel bindings", k)
		}
	}
	// The map holds copies.
	m["listen"].([]string)[0] = "x"
	if c.Listen[0] != "127.0.0.1:4444" {
		t.Fatal("Redacted shares the Listen slice")
	}
	d := Default().Redacted()
	if d["channel_bindings"] != "" || d["idle_timeout"] != "5m0s" || d["worker_max_lifetime"] != "0" {
		t.Fatalf("Default().Redacted() = %v", d)
	}
	// Every duration and size in the map parses back to the same value.
	back := make([]string, 0, len(keys))
	for _, k := range keys {
		switch k.kind {
		case kindDuration, kindIdle, kindSize:
			back = append(back, k.name+": "+m[k.name].(string))
		}
	}
	r, err := Parse([]byte(strings.Join(back, "\n")+"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		switch k.kind {
		case kindDuration, kindIdle, kindSize:
			if !reflect.DeepEqual(k.get(r), k.get(c)) {
				t.Errorf("%s: %v did not round-trip (got %v)", k.name, m[k.name], k.get(r))
			}
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte("# "+strings.Repeat("x", MaxFileSize)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(big)
	if err == nil || !strings.Contains(err.Error(), big+": file larger than 1MiB") {
		t.Fatalf("big file: %v", err)
	}
	// Exactly MaxFileSize is accepted.
	exact := filepath.Join(dir, "exact.yaml")
	body := "workers: 2\n#"
	body += strings.Repeat("x", MaxFileSize-len(body)-1) + "\n"
	if err := os.WriteFile(exact, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load(exact); err != nil || c.Workers != 2 {
		t.Fatalf("file of exactly MaxFileSize: %v", err)
	}
	if _, err := Load(dir); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
		t.Fatalf("directory: %v", err)
	}
}

func TestErrorFormat(t *testing.T) {
	for _, tc := range []struct {
		name string
		e    Error
		want string
	}{
		{"all parts", Error{File: "a.yaml", Line: 12, Key: "workers", Msg: "m"}, "config: a.yaml: line 12: workers: m"},
		{"no file", Error{Line: 12, Key: "workers", Msg: "m"}, "config: line 12: workers: m"},
		{"no line", Error{Key: "keytab", Msg: "m"}, "config: keytab: m"},
		{"no key", Error{Line: 7, Msg: "m"}, "config: line 7: m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.e.Error(); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// The acceptor's GOMAXPROCS: the setting wins, then the operator's
// GOMAXPROCS, then half the CPUs (at least one).
func TestAcceptorCPUs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		setting int
		env     string
		want    int
	}{
		{"setting", 3, "5", 3},
		{"GOMAXPROCS", 0, "5", 5},
		{"GOMAXPROCS unusable", 0, "x", DefaultAcceptorCPUs()},
		{"default", 0, "", DefaultAcceptorCPUs()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("GOMAXPROCS", tt.env)
			if got := AcceptorCPUs(tt.setting); got != tt.want {
				t.Errorf("AcceptorCPUs(%d) = %d, want %d", tt.setting, got, tt.want)
			}
		})
	}
	if d, w := DefaultAcceptorCPUs(), DefaultWorkers(); d < 1 || d > max(w/2, 1) {
		t.Errorf("DefaultAcceptorCPUs() = %d with %d CPUs, want half, at least 1", d, w)
	}
}
