package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/metrics"
	"github.com/gss-acceptor/gss-acceptor/internal/replay/redisstore"
)

// replayFallbackLogEvery is the least time between two log lines about
// authenticators remembered locally because the shared cache failed.
const replayFallbackLogEvery = 10 * time.Second

// newReplayStore returns the replay store cfg names: local itself for
// "memory", else a Redis store that falls back to local when
// replay_cache_failure is fallback. m and log may be nil (-check-config).
// The Redis store is not contacted here; the caller pings it.
func newReplayStore(cfg *config.Config, local *gss.ReplayCache, m *metrics.Metrics, log *zap.Logger) (gss.ReplayStore, *redisstore.Store, error) {
	if !redisstore.IsURL(cfg.ReplayCache) {
		return local, nil, nil
	}
	policy, err := redisstore.ParsePolicy(cfg.ReplayCacheFailure)
	if err != nil {
		return nil, nil, err
	}
	o := redisstore.Options{
		URL:         cfg.ReplayCache,
		KeyPrefix:   cfg.ReplayCacheKeyPrefix,
		TLSCAFile:   cfg.ReplayCacheTLSCA,
		TLSCertFile: cfg.ReplayCacheTLSCert,
		TLSKeyFile:  cfg.ReplayCacheTLSKey,
		Pipelines:   map[bool]int{true: redisstore.DefaultPipelines, false: 0}[cfg.ReplayCacheBatch],
		Timeout:     cfg.ReplayCacheTimeout,
		Policy:      policy,
		Local:       local,
	}
	if m != nil {
		o.Observe = m.ObserveReplayOp
		o.ObserveBatch = m.ObserveReplayBatch
	}
	if log != nil {
		var mu sync.Mutex
		var last time.Time
		var suppressed int
		o.OnFallback = func(err error) {
			if m != nil {
				m.ObserveReplayFallback()
			}
			mu.Lock()
			now := time.Now()
			if now.Sub(last) < replayFallbackLogEvery {
				suppressed++
				mu.Unlock()
				return
			}
			n := suppressed
			last, suppressed = now, 0
			mu.Unlock()
			log.Warn("shared replay cache failed; authenticator remembered on this host only (replay_cache_failure: fallback)",
				zap.Error(err), zap.Int("fallbacks_not_logged", n))
		}
	} else if m != nil {
		o.OnFallback = func(error) { m.ObserveReplayFallback() }
	}
	s, err := redisstore.New(o)
	if err != nil {
		return nil, nil, fmt.Errorf("replay_cache: %w", err)
	}
	return s, s, nil
}

// pingReplayStore checks a Redis replay store at start. An unreachable
// server does not stop the daemon (every host of a fleet would otherwise
// fail to start together): it is logged, and the failure policy applies to
// each handshake until the server answers.
func pingReplayStore(s *redisstore.Store, cfg *config.Config, log *zap.Logger) {
	if err := s.Ping(context.Background()); err != nil {
		log.Warn("shared replay cache unreachable at start; handshakes are "+verb(cfg.ReplayCacheFailure)+" until it answers",
			zap.String("replay_cache", redisstore.Redact(cfg.ReplayCache)), zap.Error(err))
		return
	}
	log.Info("shared replay cache", zap.String("replay_cache", redisstore.Redact(cfg.ReplayCache)),
		zap.String("replay_cache_failure", cfg.ReplayCacheFailure))
}

func verb(policy string) string {
	if policy == "fallback" {
		return "remembered on this host only"
	}
	return "refused"
}
