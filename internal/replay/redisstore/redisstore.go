// Package redisstore is a gss.ReplayStore kept in Redis or Valkey, shared
// by every acceptor host serving the same principals: an authenticator
// accepted by one host is a replay on every other (ARCHITECTURE.md §4,
// docs/operations.md "Running several hosts").
//
// Each authenticator is one key, PREFIX + hex(SHA-256 of its authenticated
// fields), set with SET key 1 NX PX ttl: the check and the insertion are one
// atomic command on the server, so of two hosts presented the same AP-REQ
// at once exactly one gets OK. The key expires by itself when the
// authenticator can no longer pass the skew check.
package redisstore

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
)

// DefaultKeyPrefix namespaces the replay entries in a Redis database
// other applications may share.
const DefaultKeyPrefix = "gss-acceptor:rc:"

// DefaultTimeout bounds one insertion, dial included: a handshake waits at
// most this long on Redis before the failure policy applies.
const DefaultTimeout = 250 * time.Millisecond

// Policy says what an insertion does when Redis cannot answer.
type Policy int

const (
	// Refuse fails the insertion: the Acceptor refuses the handshake
	// (GSS_S_UNAVAILABLE, KRB_ERR_GENERIC). No replay can slip through,
	// and no handshake succeeds while Redis is down.
	Refuse Policy = iota
	// Fallback records the authenticator in the local (per-host) cache
	// instead: handshakes go on, and a replay to the same host is still
	// refused, but one to another host is not while Redis is down.
	Fallback
)

// ParsePolicy reads the replay_cache_failure value: "refuse" or "fallback".
func ParsePolicy(s string) (Policy, error) {
	switch s {
	case "", "refuse":
		return Refuse, nil
	case "fallback":
		return Fallback, nil
	}
	return Refuse, fmt.Errorf("replay cache failure policy %q: want refuse or fallback", s)
}

// String is the policy's configuration spelling.
func (p Policy) String() string {
	if p == Fallback {
		return "fallback"
	}
	return "refuse"
}

// Options configures a Store.
type Options struct {
	// URL is redis://[user:pass@]HOST:PORT/DB, or rediss://... for TLS
	// (the server's certificate is verified against TLSCAFile, else the
	// system roots, for the URL's host name). The user and password go in
	// AUTH. go-redis query parameters (dial_timeout, pool_size, ...) are
	// honoured.
	URL string
	// TLSCAFile is a PEM file of the CA certificates that verify the
	// server under rediss:// ("": the system roots).
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key,
	// presented under rediss:// (Redis's tls-auth-clients). Both or neither.
	TLSCertFile, TLSKeyFile string
	// KeyPrefix is prepended to every key. "": DefaultKeyPrefix.
	KeyPrefix string
	// Timeout bounds one insertion, and is the dial, read and write
	// timeout unless the URL sets them. 0: DefaultTimeout.
	Timeout time.Duration
	// Policy applies when Redis cannot answer.
	Policy Policy
	// Local is the cache used under Fallback. nil: a private
	// gss.NewReplayCache(0).
	Local gss.ReplayStore
	// Observe, when set, is called after every Redis round trip with its
	// duration and error (nil on success, replays included).
	Observe func(d time.Duration, err error)
	// OnFallback, when set, is called each time an insertion went to the
	// local cache because Redis failed with err.
	OnFallback func(err error)
}

// Store is a gss.ReplayStore in Redis. Safe for concurrent use; the
// go-redis client pools connections and pipelines nothing itself (each
// insertion is one round trip on a pooled connection).
type Store struct {
	client     *redis.Client
	prefix     string
	timeout    time.Duration
	policy     Policy
	local      gss.ReplayStore
	observe    func(time.Duration, error)
	onFallback func(error)
	keyPool    sync.Pool
}

var _ gss.ReplayStore = (*Store)(nil)

// quietDriver replaces go-redis's own logging (unstructured lines on
// stderr, such as every failed dial) once: its errors reach the caller of
// Insert, which logs them through the daemon's logger, rate-limited.
var quietDriver sync.Once

type discardLog struct{}

func (discardLog) Printf(context.Context, string, ...any) {}

// New parses o.URL and returns a Store. It does not contact the server:
// Ping does, and an unreachable server at start is the failure policy's
// business like at any other time.
func New(o Options) (*Store, error) {
	ro, err := redis.ParseURL(o.URL)
	if err != nil {
		return nil, fmt.Errorf("replay cache %s: %w", Redact(o.URL), err)
	}
	s := &Store{
		prefix:     o.KeyPrefix,
		timeout:    o.Timeout,
		policy:     o.Policy,
		local:      o.Local,
		observe:    o.Observe,
		onFallback: o.OnFallback,
	}
	if s.prefix == "" {
		s.prefix = DefaultKeyPrefix
	}
	if s.timeout <= 0 {
		s.timeout = DefaultTimeout
	}
	if s.local == nil {
		s.local = gss.NewReplayCache(0)
	}
	q, _ := url.ParseQuery(urlQuery(o.URL))
	if !q.Has("dial_timeout") {
		ro.DialTimeout = s.timeout
	}
	if !q.Has("read_timeout") {
		ro.ReadTimeout = s.timeout
	}
	if !q.Has("write_timeout") {
		ro.WriteTimeout = s.timeout
	}
	// No retries: SET NX is not idempotent. A retry after a write that
	// reached the server but whose reply was lost would find the key and
	// report a false replay; the failure policy handles the error instead.
	if err := setTLS(ro, o); err != nil {
		return nil, fmt.Errorf("replay cache %s: %w", Redact(o.URL), err)
	}
	ro.MaxRetries = -1
	ro.ContextTimeoutEnabled = true
	ro.DisableIdentity = true
	quietDriver.Do(func() { redis.SetLogger(discardLog{}) })
	s.client = redis.NewClient(ro)
	s.keyPool.New = func() any { b := make([]byte, 0, len(s.prefix)+2*len(gss.ReplayKey{})); return &b }
	return s, nil
}

// errNoTLS: TLS files were given for a redis:// (plain) URL.
var errNoTLS = errors.New("TLS CA, certificate or key given, but the URL is not rediss://")

// setTLS applies the TLS files of o to ro, whose TLSConfig ParseURL set
// for rediss:// (with the URL's host as ServerName).
func setTLS(ro *redis.Options, o Options) error {
	if o.TLSCAFile == "" && o.TLSCertFile == "" && o.TLSKeyFile == "" {
		return nil
	}
	if ro.TLSConfig == nil {
		return errNoTLS
	}
	ro.TLSConfig.MinVersion = tls.VersionTLS12
	if o.TLSCAFile != "" {
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return fmt.Errorf("TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("TLS CA file %s: no PEM certificate in it", o.TLSCAFile)
		}
		ro.TLSConfig.RootCAs = pool
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("TLS client certificate and key: give both or neither")
	}
	if o.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("TLS client certificate: %w", err)
		}
		ro.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return nil
}

// urlQuery returns the query part of a URL string, "" if none or unparsable.
func urlQuery(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.RawQuery
}

// Redact returns the URL with any password replaced, for logs and errors.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Ping checks that the server answers, within the store's timeout.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if err := s.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("replay cache redis %s: %w", s.client.Options().Addr, err)
	}
	return nil
}

// Close closes the pooled connections.
func (s *Store) Close() error { return s.client.Close() }

// Insert implements gss.ReplayStore with SET key 1 NX PX ttl, ttl the time
// from now to expiry (at least a millisecond). Redis expires the key on
// its own clock; the hosts' clocks only need to agree within the skew, as
// they must anyway for Kerberos.
func (s *Store) Insert(ctx context.Context, key gss.ReplayKey, now, expiry time.Time) (bool, error) {
	ttl := expiry.Sub(now)
	if ttl < time.Millisecond {
		ttl = time.Millisecond
	}
	bp := s.keyPool.Get().(*[]byte)
	k := append((*bp)[:0], s.prefix...)
	k = hex.AppendEncode(k, key[:])
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	start := time.Now()
	// SetNX with a TTL sends SET k 1 PX ms NX (EX s for whole seconds).
	fresh, err := s.client.SetNX(rctx, string(k), "1", ttl.Round(time.Millisecond)).Result()
	d := time.Since(start)
	cancel()
	*bp = k
	s.keyPool.Put(bp)
	if s.observe != nil {
		s.observe(d, err)
	}
	if err == nil {
		return fresh, nil
	}
	err = fmt.Errorf("redis %s: %w", s.client.Options().Addr, err)
	if s.policy != Fallback {
		return false, err
	}
	if s.onFallback != nil {
		s.onFallback(err)
	}
	return s.local.Insert(ctx, key, now, expiry)
}

// IsURL reports whether v names a Redis replay cache.
func IsURL(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "redis" || u.Scheme == "rediss")
}
