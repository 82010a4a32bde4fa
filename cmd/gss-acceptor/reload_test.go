package main

import (
	"slices"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
)

// keepRestartOnly names each key a reload cannot apply and puts its
// running value back, and leaves the keys a reload applies alone.
func TestKeepRestartOnly(t *testing.T) {
	tests := []struct {
		name    string
		change  func(c *config.Config)
		changed []string
		applied func(c *config.Config) bool // the reloadable change survived
	}{
		{"nothing", func(*config.Config) {}, nil, nil},
		{"workers and keytab apply", func(c *config.Config) { c.Workers = 7; c.Keytab = "/new.keytab"; c.IdleTimeout = time.Minute }, nil,
			func(c *config.Config) bool {
				return c.Workers == 7 && c.Keytab == "/new.keytab" && c.IdleTimeout == time.Minute
			}},
		{"listen", func(c *config.Config) { c.Listen = []string{"127.0.0.1:1"} }, []string{"listen"}, nil},
		{"limits of the listener", func(c *config.Config) {
			c.MaxHandshakes = 3
			c.HandshakeTimeout = time.Second
			c.MaxTokenSize = 1024
			c.MaxPendingConnections = 5
			c.MaxPendingPerSource = 2
			c.FirstFrameTimeout = time.Second
		}, []string{"handshake_timeout", "max_handshakes", "max_token_size", "max_pending_connections", "max_pending_per_source", "first_frame_timeout"}, nil},
		{"metrics and logging", func(c *config.Config) {
			c.MetricsAddress = "127.0.0.1:9"
			c.MetricsAllowNonLoopback = true
			c.LogFormat = "console"
			c.LogFile = "/x.log"
			c.LogLevel = "warn"
		}, []string{"log_format", "log_file", "metrics_address", "metrics_allow_non_loopback"},
			func(c *config.Config) bool { return c.LogLevel == "warn" }},
		{"worker process", func(c *config.Config) {
			c.WorkerPath = "/w"
			c.WorkerUser = "nobody"
			c.WorkerGroup = "nogroup"
			c.WorkerCPUs = 2
			c.WorkerRespawnBackoffMax = time.Minute
			c.WorkerAckTimeout = 7 * time.Second
			c.MaxSessionsPerWorker = 9
		}, []string{"worker_path", "worker_user", "worker_group", "worker_cpus", "worker_respawn_backoff_max", "worker_ack_timeout"},
			func(c *config.Config) bool { return c.MaxSessionsPerWorker == 9 }},
		{"caches and tokens", func(c *config.Config) {
			c.ImportDeadline = time.Second
			c.ReplayCacheSize = 5
			c.AllowUnauthenticated = !c.AllowUnauthenticated
		}, []string{"import_deadline", "replay_cache_size", "allow_unauthenticated"}, nil},
		{"proxy protocol", func(c *config.Config) { c.ProxyProtocolFrom = []string{"10.0.0.0/8"} }, []string{"proxy_protocol_from"}, nil},
		{"shared replay cache", func(c *config.Config) {
			c.ReplayCache = "redis://127.0.0.1:6379/0"
			c.ReplayCacheFailure = "fallback"
			c.ReplayCacheTimeout = time.Second
			c.ReplayCacheKeyPrefix = "x:"
		}, []string{"replay_cache", "replay_cache_failure", "replay_cache_timeout", "replay_cache_key_prefix"}, nil},
		{"shared replay cache TLS files", func(c *config.Config) {
			c.ReplayCache = "rediss://127.0.0.1:6379/0"
			c.ReplayCacheTLSCA = "/etc/ssl/redis-ca.pem"
			c.ReplayCacheTLSCert = "/etc/gss-acceptor/redis.pem"
			c.ReplayCacheTLSKey = "/etc/gss-acceptor/redis.key"
			c.ReplayCacheBatch = true
		}, []string{"replay_cache", "replay_cache_tls_ca", "replay_cache_tls_cert", "replay_cache_tls_key", "replay_cache_batch"}, nil},
		{"file replay cache fsync", func(c *config.Config) {
			c.ReplayCacheFsync = "always"
			c.ReplayCacheFsyncInterval = 100 * time.Millisecond
		}, []string{"replay_cache_fsync", "replay_cache_fsync_interval"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			running := config.Default()
			running.Listen = []string{"127.0.0.1:4444"}
			next := config.Default()
			next.Listen = []string{"127.0.0.1:4444"}
			tt.change(next)
			got := keepRestartOnly(next, running)
			slices.Sort(got)
			want := slices.Clone(tt.changed)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("changed keys %v, want %v", got, want)
			}
			// Every restart-only key is back at its running value.
			check := config.Default()
			check.Listen = []string{"127.0.0.1:4444"}
			tt.change(check)
			keepRestartOnly(check, running)
			if again := keepRestartOnly(next, running); len(again) != 0 {
				t.Errorf("keys %v still differ after the reset", again)
			}
			if tt.applied != nil && !tt.applied(next) {
				t.Errorf("a reloadable change was reset: %+v", next)
			}
		})
	}
}
