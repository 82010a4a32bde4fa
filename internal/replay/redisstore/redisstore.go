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
	// ObserveBatch, when set, is called after every round trip of the
	// batching pipelines (Pipelines > 0) with the insertions it carried.
	ObserveBatch func(n int)
	// OnFallback, when set, is called each time an insertion went to the
	// local cache because Redis failed with err.
	OnFallback func(err error)
	// Pipelines, when positive, batches insertions: at most this many
	// pipelines are in flight at once, concurrent insertions queue, and
	// each pipeline takes every queued one (up to MaxBatch) in one round
	// trip. 0: no batching, one SET per insertion from the caller's
	// goroutine on its own pooled connection. Batching saves system calls
	// (a quarter of the server's CPU at 16 concurrent handshakes), but a
	// slow round trip then delays every insertion queued behind it.
	Pipelines int
}

// DefaultPipelines is the number of pipelines replay_cache_batch: true
// asks for.
const DefaultPipelines = 2

// MaxBatch is the most insertions one pipeline carries.
const MaxBatch = 64

// Store is a gss.ReplayStore in Redis. Safe for concurrent use. Each
// insertion is one SET round trip on a pooled connection, or with
// Options.Pipelines insertions made at the same time share a pipeline:
// one write and one read for all of them, which divides the system calls
// of client and server; alone, an insertion is one SET round trip as
// without batching.
type Store struct {
	client       *redis.Client
	prefix       string
	timeout      time.Duration
	policy       Policy
	local        gss.ReplayStore
	observe      func(time.Duration, error)
	observeBatch func(n int)
	onFallback   func(error)
	keyPool      sync.Pool

	// Batching (Options.Pipelines > 0): Insert queues on reqs, pipeline
	// goroutines answer; done stops them, wg waits for them.
	reqs chan *insertReq
	done chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// errClosed: Insert after Close.
var errClosed = errors.New("replay cache store closed")

// insertReq is one queued insertion.
type insertReq struct {
	key string
	ttl time.Duration
	res chan insertRes // capacity 1: the answer never blocks the pipeline
}

type insertRes struct {
	fresh bool
	err   error
	d     time.Duration // the round trip that carried it
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
		prefix:       o.KeyPrefix,
		timeout:      o.Timeout,
		policy:       o.Policy,
		local:        o.Local,
		observe:      o.Observe,
		observeBatch: o.ObserveBatch,
		onFallback:   o.OnFallback,
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
	if n := o.Pipelines; n > 0 {
		s.reqs = make(chan *insertReq, 4*MaxBatch)
		s.done = make(chan struct{})
		for range n {
			s.wg.Go(s.pipeline)
		}
	}
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
func (s *Store) Close() error {
	if s.done != nil {
		s.once.Do(func() { close(s.done) })
		s.wg.Wait()
	}
	return s.client.Close()
}

// pipeline answers queued insertions until Close: it takes one, then every
// other already queued (up to MaxBatch), and sends them in one round trip;
// a lone insertion goes as a plain SET.
func (s *Store) pipeline() {
	batch := make([]*insertReq, 0, MaxBatch)
	cmds := make([]*redis.BoolCmd, 0, MaxBatch)
	for {
		batch = batch[:0]
		select {
		case <-s.done:
			return
		case r := <-s.reqs:
			batch = append(batch, r)
		}
	drain:
		for len(batch) < MaxBatch {
			select {
			case r := <-s.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if s.observeBatch != nil {
			s.observeBatch(len(batch))
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		start := time.Now()
		if len(batch) == 1 {
			fresh, err := s.client.SetNX(ctx, batch[0].key, "1", batch[0].ttl).Result()
			batch[0].res <- insertRes{fresh, err, time.Since(start)}
			cancel()
			continue
		}
		cmds = cmds[:0]
		pipe := s.client.Pipeline()
		for _, r := range batch {
			cmds = append(cmds, pipe.SetNX(ctx, r.key, "1", r.ttl))
		}
		_, _ = pipe.Exec(ctx) // each command carries its own result or error
		d := time.Since(start)
		cancel()
		for i, r := range batch {
			fresh, err := cmds[i].Result()
			r.res <- insertRes{fresh, err, d}
		}
	}
}

// setNX runs one SET key 1 NX PX ttl, queued for a pipeline when batching.
func (s *Store) setNX(ctx context.Context, key string, ttl time.Duration) (bool, time.Duration, error) {
	if s.reqs == nil {
		start := time.Now()
		fresh, err := s.client.SetNX(ctx, key, "1", ttl).Result()
		return fresh, time.Since(start), err
	}
	r := &insertReq{key: key, ttl: ttl, res: make(chan insertRes, 1)}
	start := time.Now()
	select {
	case s.reqs <- r:
	case <-s.done:
		return false, 0, errClosed
	case <-ctx.Done():
		return false, time.Since(start), fmt.Errorf("queued for a pipeline: %w", ctx.Err())
	}
	select {
	case res := <-r.res:
		return res.fresh, time.Since(start), res.err
	case <-s.done:
		return false, time.Since(start), errClosed
	case <-ctx.Done():
		return false, time.Since(start), fmt.Errorf("waiting for a pipeline: %w", ctx.Err())
	}
}

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
	// SetNX with a TTL sends SET k 1 PX ms NX (EX s for whole seconds).
	fresh, d, err := s.setNX(rctx, string(k), ttl.Round(time.Millisecond))
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
