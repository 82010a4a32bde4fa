package config

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// kind is how a key's value is written in the file.
type kind int

const (
	kindString   kind = iota // a YAML string
	kindID                   // a string or an integer (user or group name or id)
	kindInt                  // a YAML integer
	kindSize                 // a byte count: an integer or "64KiB"
	kindDuration             // a Go duration with a unit, or 0
	kindIdle                 // a duration where the file's 0 means off, stored as -1 (NoIdleTimeout, NoDeferAccept)
	kindBool                 // true or false
	kindNotBool              // true or false, stored negated (a default-true key)
	kindList                 // a list of strings
)

// keyDef describes one key of the file: its name, how it is written, and the
// Config field it sets (exactly one accessor, matching kind, is non-nil).
type keyDef struct {
	name string
	kind kind
	str  func(*Config) *string
	num  func(*Config) *int
	dur  func(*Config) *time.Duration
	flag func(*Config) *bool
	list func(*Config) *[]string
}

// get returns the key's current value in c, copied so that later changes to
// c do not change it.
func (k *keyDef) get(c *Config) any {
	switch {
	case k.str != nil:
		return *k.str(c)
	case k.num != nil:
		return *k.num(c)
	case k.dur != nil:
		return *k.dur(c)
	case k.flag != nil:
		return *k.flag(c)
	default:
		return slices.Clone(*k.list(c))
	}
}

// keys lists every key of the file, in the order of configs/gss-acceptor.yaml.
// Validate reports problems without a line in this order.
var keys = []keyDef{
	{name: "listen", kind: kindList, list: func(c *Config) *[]string { return &c.Listen }},
	{name: "keytab", kind: kindString, str: func(c *Config) *string { return &c.Keytab }},
	{name: "services", kind: kindList, list: func(c *Config) *[]string { return &c.Services }},
	{name: "allow_clients", kind: kindList, list: func(c *Config) *[]string { return &c.AllowClients }},
	{name: "allow_clients_file", kind: kindString, str: func(c *Config) *string { return &c.AllowClientsFile }},

	{name: "workers", kind: kindInt, num: func(c *Config) *int { return &c.Workers }},
	{name: "max_sessions_per_worker", kind: kindInt, num: func(c *Config) *int { return &c.MaxSessionsPerWorker }},
	{name: "worker_max_sessions", kind: kindInt, num: func(c *Config) *int { return &c.WorkerMaxSessions }},
	{name: "worker_max_lifetime", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.WorkerMaxLifetime }},
	{name: "worker_path", kind: kindString, str: func(c *Config) *string { return &c.WorkerPath }},
	{name: "worker_user", kind: kindID, str: func(c *Config) *string { return &c.WorkerUser }},
	{name: "worker_group", kind: kindID, str: func(c *Config) *string { return &c.WorkerGroup }},
	{name: "worker_cpus", kind: kindInt, num: func(c *Config) *int { return &c.WorkerCPUs }},
	{name: "worker_respawn_backoff_max", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.WorkerRespawnBackoffMax }},

	{name: "worker_ack_timeout", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.WorkerAckTimeout }},
	{name: "worker_heartbeat", kind: kindIdle, dur: func(c *Config) *time.Duration { return &c.WorkerHeartbeat }},
	{name: "handshake_timeout", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.HandshakeTimeout }},
	{name: "max_handshakes", kind: kindInt, num: func(c *Config) *int { return &c.MaxHandshakes }},
	{name: "max_pending_connections", kind: kindInt, num: func(c *Config) *int { return &c.MaxPendingConnections }},
	{name: "max_pending_per_source", kind: kindInt, num: func(c *Config) *int { return &c.MaxPendingPerSource }},
	{name: "first_frame_timeout", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.FirstFrameTimeout }},
	{name: "acceptor_cpus", kind: kindInt, num: func(c *Config) *int { return &c.AcceptorCPUs }},
	{name: "steady_sysmon", kind: kindNotBool, flag: func(c *Config) *bool { return &c.SysmonDeepSleep }},
	{name: "defer_accept", kind: kindIdle, dur: func(c *Config) *time.Duration { return &c.DeferAccept }},
	{name: "idle_timeout", kind: kindIdle, dur: func(c *Config) *time.Duration { return &c.IdleTimeout }},
	{name: "max_token_size", kind: kindSize, num: func(c *Config) *int { return &c.MaxTokenSize }},
	{name: "max_message_size", kind: kindSize, num: func(c *Config) *int { return &c.MaxMessageSize }},
	{name: "clock_skew", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.ClockSkew }},
	{name: "replay_cache_size", kind: kindInt, num: func(c *Config) *int { return &c.ReplayCacheSize }},
	{name: "proxy_protocol_from", kind: kindList, list: func(c *Config) *[]string { return &c.ProxyProtocolFrom }},
	{name: "replay_cache", kind: kindString, str: func(c *Config) *string { return &c.ReplayCache }},
	{name: "replay_cache_failure", kind: kindString, str: func(c *Config) *string { return &c.ReplayCacheFailure }},
	{name: "replay_cache_timeout", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.ReplayCacheTimeout }},
	{name: "replay_cache_key_prefix", kind: kindString, str: func(c *Config) *string { return &c.ReplayCacheKeyPrefix }},
	{name: "replay_cache_tls_ca", kind: kindString, str: func(c *Config) *string { return &c.ReplayCacheTLSCA }},
	{name: "replay_cache_tls_cert", kind: kindString, str: func(c *Config) *string { return &c.ReplayCacheTLSCert }},
	{name: "replay_cache_tls_key", kind: kindString, str: func(c *Config) *string { return &c.ReplayCacheTLSKey }},
	{name: "replay_cache_batch", kind: kindBool, flag: func(c *Config) *bool { return &c.ReplayCacheBatch }},
	{name: "replay_cache_fsync", kind: kindString, str: func(c *Config) *string { return &c.ReplayCacheFsync }},
	{name: "replay_cache_fsync_interval", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.ReplayCacheFsyncInterval }},
	{name: "import_deadline", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.ImportDeadline }},
	{name: "shutdown_timeout", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.ShutdownTimeout }},
	{name: "allow_delegation", kind: kindBool, flag: func(c *Config) *bool { return &c.AllowDelegation }},
	{name: "channel_bindings", kind: kindString, str: func(c *Config) *string { return &c.ChannelBindings }},
	{name: "allow_unauthenticated", kind: kindBool, flag: func(c *Config) *bool { return &c.AllowUnauthenticated }},

	{name: "backend", kind: kindString, str: func(c *Config) *string { return &c.Backend }},
	{name: "backend_proxy_protocol", kind: kindString, str: func(c *Config) *string { return &c.BackendProxyProtocol }},
	{name: "backend_connect_timeout", kind: kindDuration, dur: func(c *Config) *time.Duration { return &c.BackendConnectTimeout }},
	{name: "exec_path", kind: kindString, str: func(c *Config) *string { return &c.ExecPath }},
	{name: "exec_args", kind: kindList, list: func(c *Config) *[]string { return &c.ExecArgs }},
	{name: "exec_max_per_worker", kind: kindInt, num: func(c *Config) *int { return &c.ExecMaxPerWorker }},
	{name: "stream_confidentiality", kind: kindNotBool, flag: func(c *Config) *bool { return &c.StreamIntegrityAllowed }},

	{name: "log_level", kind: kindString, str: func(c *Config) *string { return &c.LogLevel }},
	{name: "log_format", kind: kindString, str: func(c *Config) *string { return &c.LogFormat }},
	{name: "log_file", kind: kindString, str: func(c *Config) *string { return &c.LogFile }},
	{name: "metrics_address", kind: kindString, str: func(c *Config) *string { return &c.MetricsAddress }},
	{name: "metrics_allow_non_loopback", kind: kindBool, flag: func(c *Config) *bool { return &c.MetricsAllowNonLoopback }},
}

// keyNames is the name of every key, for suggestions.
var keyNames = func() []string {
	names := make([]string, len(keys))
	for i := range keys {
		names[i] = keys[i].name
	}
	return names
}()

// lookupKey returns the definition of the key called name, or nil.
func lookupKey(name string) *keyDef {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

// KeyInfo describes one key of the file for generated documentation: the
// man page gss-acceptor.yaml(5), which internal/manpage checks against the
// tables of docs/configuration.md.
type KeyInfo struct {
	Name string
	// Kind is how the value is written: "string", "id" (a name or a
	// number), "int", "size", "duration", "boolean" or "list".
	Kind string
	// Default is the default value as written in the file ("4096", "30s",
	// "64KiB", `[":4444"]`, `""`), or "" when there is no fixed one: the
	// key is required (keytab) or computed at start (workers).
	Default string
}

// Keys describes every key of the file, in the order of
// configs/gss-acceptor.yaml.
func Keys() []KeyInfo {
	def := Default()
	out := make([]KeyInfo, 0, len(keys))
	for i := range keys {
		k := &keys[i]
		info := KeyInfo{Name: k.name, Kind: k.kind.String()}
		switch k.name {
		case "keytab", "workers", "acceptor_cpus":
			// required, or computed from the CPUs at start
		default:
			info.Default = k.formatDefault(def)
		}
		out = append(out, info)
	}
	return out
}

// String names the kind as KeyInfo.Kind does.
func (k kind) String() string {
	switch k {
	case kindString:
		return "string"
	case kindID:
		return "id"
	case kindInt:
		return "int"
	case kindSize:
		return "size"
	case kindDuration, kindIdle:
		return "duration"
	case kindBool, kindNotBool:
		return "boolean"
	default:
		return "list"
	}
}

// formatDefault writes the key's value in c the way the file would.
func (k *keyDef) formatDefault(c *Config) string {
	switch v := k.get(c).(type) {
	case string:
		if v == "" {
			return `""`
		}
		return v
	case int:
		if k.kind == kindSize {
			return formatSize(v)
		}
		return strconv.Itoa(v)
	case time.Duration:
		return shortDuration(v)
	case bool:
		return strconv.FormatBool(v != (k.kind == kindNotBool))
	default:
		list, _ := v.([]string)
		if len(list) == 0 {
			return "[]"
		}
		b, _ := json.Marshal(list) // a []string always marshals
		return string(b)
	}
}

// shortDuration writes d with the largest unit that divides it: "5m", not
// time.Duration's "5m0s" (formatDuration's).
func shortDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}, {"µs", time.Microsecond}} {
		if d%u.size == 0 {
			return strconv.FormatInt(int64(d/u.size), 10) + u.name
		}
	}
	return d.String()
}
