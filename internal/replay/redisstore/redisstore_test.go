package redisstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"go.uber.org/goleak"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// redisServer is a real redis-server on 127.0.0.1, started for one test.
type redisServer struct {
	t    testing.TB
	bin  string
	port int
	dir  string
	cmd  *exec.Cmd
	// cpu is the user+system time of the last redis-server stop ended.
	cpu  time.Duration
	args []string // more redis-server arguments (TLS files, requirepass)
	tls  bool     // port is a TLS port, and there is no plain one
}

// startRedis starts redis-server on a free loopback port with no
// persistence, or skips (fails under CI) when it is not installed.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	return startRedisWith(t, false)
}

// startRedisWith is startRedis with only a TLS port when tls is set, and
// more redis-server arguments.
func startRedisWith(t testing.TB, tls bool, args ...string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := fmt.Sprintf("redis-server (Debian redis-server) is not available: %v", err)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + "; CI is set, so this is fatal")
		}
		t.Skip("skipping: " + msg)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir(), args: args, tls: tls}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }
func (r *redisServer) url() string  { return "redis://" + r.addr() + "/0" }

func (r *redisServer) start() {
	r.t.Helper()
	ports := []string{"--port", strconv.Itoa(r.port)}
	if r.tls {
		ports = []string{"--port", "0", "--tls-port", strconv.Itoa(r.port)}
	}
	r.cmd = exec.Command(r.bin, append(append(ports, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--protected-mode", "yes"), r.args...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for range 200 {
		if c, err := net.Dial("tcp", r.addr()); err == nil {
			c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	r.t.Fatalf("redis-server did not listen on %s", r.addr())
}

func (r *redisServer) stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		if ps := r.cmd.ProcessState; ps != nil {
			r.cpu = ps.UserTime() + ps.SystemTime()
		}
		r.cmd = nil
	}
}

func newStore(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func key(b byte) gss.ReplayKey {
	var k gss.ReplayKey
	k[0], k[31] = b, b
	return k
}

// TestInsert: fresh once, a replay after, independent keys independent,
// and the key is gone once its TTL has passed.
func TestInsert(t *testing.T) {
	r := startRedis(t)
	s := newStore(t, Options{URL: r.url()})
	if err := s.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for i, want := range []bool{true, false, false} {
		fresh, err := s.Insert(t.Context(), key(1), now, now.Add(time.Minute))
		if err != nil || fresh != want {
			t.Fatalf("insert %d: fresh %v err %v, want %v", i, fresh, err, want)
		}
	}
	if fresh, err := s.Insert(t.Context(), key(2), now, now.Add(time.Minute)); err != nil || !fresh {
		t.Fatalf("another key: fresh %v err %v", fresh, err)
	}
	// Expiry: a 200 ms TTL, then the key is fresh again.
	if fresh, err := s.Insert(t.Context(), key(3), now, now.Add(200*time.Millisecond)); err != nil || !fresh {
		t.Fatalf("short key: fresh %v err %v", fresh, err)
	}
	if fresh, _ := s.Insert(t.Context(), key(3), now, now.Add(200*time.Millisecond)); fresh {
		t.Fatal("short key fresh twice before expiry")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		fresh, err := s.Insert(t.Context(), key(3), time.Now(), time.Now().Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if fresh {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("key did not expire within 5 s of a 200 ms TTL")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The key is namespaced and carries a TTL on the server.
	got, err := s.client.PTTL(t.Context(), DefaultKeyPrefix+fmt.Sprintf("%x", key(1))).Result()
	if err != nil || got <= 0 || got > time.Minute {
		t.Errorf("PTTL of the key: %v, %v; want in (0, 1m]", got, err)
	}
}

// TestConcurrent: of 32 stores (32 hosts) inserting one key at once,
// exactly one is fresh.
func TestConcurrent(t *testing.T) {
	r := startRedis(t)
	var fresh atomic.Int32
	var wg sync.WaitGroup
	now := time.Now()
	stores := make([]*Store, 32)
	for i := range stores {
		stores[i] = newStore(t, Options{URL: r.url()})
	}
	for _, s := range stores {
		wg.Go(func() {
			f, err := s.Insert(context.Background(), key(9), now, now.Add(time.Minute))
			if err != nil {
				t.Error(err)
			}
			if f {
				fresh.Add(1)
			}
		})
	}
	wg.Wait()
	if fresh.Load() != 1 {
		t.Errorf("%d of 32 concurrent inserts were fresh, want 1", fresh.Load())
	}
}

// TestTwoAcceptors: two Acceptors (two hosts, same keytab) sharing one
// Redis: the AP-REQ the first accepted is refused by the second as a
// replay (KRB_AP_ERR_REPEAT); with private memory caches it is accepted
// by both, which is the hole the shared store closes.
func TestTwoAcceptors(t *testing.T) {
	r := startRedis(t)
	f := gsstest.New(t, 18)
	h1 := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: newStore(t, Options{URL: r.url()})})
	h2 := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: newStore(t, Options{URL: r.url()})})
	tok := f.InitialToken(t, gss.FlagMutual)
	ctx, _, err := h1.Accept(tok)
	if err != nil {
		t.Fatalf("host 1: %v", err)
	}
	ctx.Delete()
	_, out, err := h2.Accept(tok)
	var ge *gss.Error
	if !errors.As(err, &ge) || ge.KRBCode != errorcode.KRB_AP_ERR_REPEAT || !errors.Is(err, gss.StatusDuplicateToken) {
		t.Fatalf("host 2 on the replay: %v, want KRB_AP_ERR_REPEAT", err)
	}
	if len(out) == 0 {
		t.Error("no KRB-ERROR token for the replay")
	}
	// A fresh authenticator goes through on host 2.
	ctx, _, err = h2.Accept(f.InitialToken(t, gss.FlagMutual))
	if err != nil {
		t.Fatalf("host 2, fresh token: %v", err)
	}
	ctx.Delete()

	// Control: private memory caches accept the same bytes twice.
	m1 := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: gss.NewReplayCache(0)})
	m2 := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: gss.NewReplayCache(0)})
	tok = f.InitialToken(t, gss.FlagMutual)
	for i, a := range []*gss.Acceptor{m1, m2} {
		c, _, err := a.Accept(tok)
		if err != nil {
			t.Fatalf("memory host %d: %v", i+1, err)
		}
		c.Delete()
	}
}

// TestRedisDown: with Redis unreachable, the refuse policy refuses the
// handshake with GSS_S_UNAVAILABLE / KRB_ERR_GENERIC within the timeout;
// the fallback policy accepts it once through the local cache (a replay
// to the same host still refused) and reports the fallback; when Redis
// comes back, inserts go to it again with no restart.
func TestRedisDown(t *testing.T) {
	r := startRedis(t)
	f := gsstest.New(t, 18)
	var errs, fallbacks atomic.Int32
	var lat []time.Duration
	var mu sync.Mutex
	obs := func(d time.Duration, err error) {
		mu.Lock()
		lat = append(lat, d)
		mu.Unlock()
		if err != nil {
			errs.Add(1)
		}
	}
	refuse := newStore(t, Options{URL: r.url(), Timeout: 200 * time.Millisecond, Observe: obs})
	fb := newStore(t, Options{URL: r.url(), Timeout: 200 * time.Millisecond, Policy: Fallback,
		OnFallback: func(error) { fallbacks.Add(1) }})
	hr := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: refuse})
	hf := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: fb})
	// Both connected while up.
	for _, a := range []*gss.Acceptor{hr, hf} {
		c, _, err := a.Accept(f.InitialToken(t, gss.FlagMutual))
		if err != nil {
			t.Fatal(err)
		}
		c.Delete()
	}

	r.stop()
	start := time.Now()
	_, out, err := hr.Accept(f.InitialToken(t, gss.FlagMutual))
	took := time.Since(start)
	var ge *gss.Error
	if !errors.As(err, &ge) || ge.KRBCode != errorcode.KRB_ERR_GENERIC || !errors.Is(err, gss.StatusUnavailable) {
		t.Fatalf("refuse policy, redis down: %v, want GSS_S_UNAVAILABLE / KRB_ERR_GENERIC", err)
	}
	if len(out) == 0 {
		t.Error("refuse policy: no KRB-ERROR token")
	}
	if took > 2*time.Second {
		t.Errorf("refusal took %v, want within the timeout", took)
	}
	t.Logf("refuse policy, redis down: %v in %v", err, took)
	if errs.Load() == 0 {
		t.Error("no error observed")
	}

	tok := f.InitialToken(t, gss.FlagMutual)
	c, _, err := hf.Accept(tok)
	if err != nil {
		t.Fatalf("fallback policy, redis down: %v", err)
	}
	c.Delete()
	if _, _, err := hf.Accept(tok); !errors.Is(err, gss.StatusDuplicateToken) {
		t.Fatalf("fallback policy, replay to the same host: %v, want a duplicate", err)
	}
	if fallbacks.Load() != 2 {
		t.Errorf("%d fallbacks, want 2", fallbacks.Load())
	}

	// Recovery: same port, no restart of the stores.
	r.start()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, _, err := hr.Accept(f.InitialToken(t, gss.FlagMutual))
		if err == nil {
			c.Delete()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within 5 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestURL: the URL forms, TLS, credentials and a bad one; passwords are
// redacted in errors.
func TestURL(t *testing.T) {
	for _, u := range []string{"redis://127.0.0.1:6379/0", "rediss://u:secret@cache.example:6380/2",
		"redis://:secret@127.0.0.1:6379/1?pool_size=4&dial_timeout=1s"} {
		s, err := New(Options{URL: u})
		if err != nil {
			t.Errorf("%s: %v", u, err)
			continue
		}
		o := s.client.Options()
		if (o.TLSConfig != nil) != (u[:6] == "rediss") {
			t.Errorf("%s: TLS %v", u, o.TLSConfig != nil)
		}
		if o.MaxRetries > 0 {
			t.Errorf("%s: MaxRetries %d, want retries off (SET NX is not idempotent)", u, o.MaxRetries)
		}
		s.Close()
	}
	_, err := New(Options{URL: "redis://:hunter2@127.0.0.1:6379/notadb"})
	if err == nil {
		t.Fatal("bad DB accepted")
	}
	if e := err.Error(); strings.Contains(e, "hunter2") {
		t.Errorf("error shows the password: %s", e)
	}
	if !IsURL("redis://h:1/0") || !IsURL("rediss://h:1/0") || IsURL("memory") || IsURL("file:/x") {
		t.Error("IsURL")
	}
	for _, p := range []string{"", "refuse", "fallback"} {
		if _, err := ParsePolicy(p); err != nil {
			t.Error(err)
		}
	}
	if _, err := ParsePolicy("ignore"); err == nil {
		t.Error("bad policy accepted")
	}
}

// TestInsertLatency measures insertions on loopback, 1 and 16 at once,
// and logs the percentiles (the figures in the commit and docs).
func TestInsertLatency(t *testing.T) {
	r := startRedis(t)
	s := newStore(t, Options{URL: r.url()})
	for _, par := range []int{1, 16} {
		const per = 500
		lat := make([]time.Duration, par*per)
		var wg sync.WaitGroup
		start := time.Now()
		for g := range par {
			wg.Go(func() {
				for i := range per {
					var k gss.ReplayKey
					k[0], k[1], k[2], k[3] = byte(par), byte(g), byte(i), byte(i>>8)
					now := time.Now()
					t0 := time.Now()
					fresh, err := s.Insert(context.Background(), k, now, now.Add(time.Minute))
					lat[g*per+i] = time.Since(t0)
					if err != nil || !fresh {
						t.Errorf("insert: fresh %v err %v", fresh, err)
						return
					}
				}
			})
		}
		wg.Wait()
		wall := time.Since(start)
		slices.Sort(lat)
		t.Logf("redis insert, %2d concurrent: p50 %v p99 %v max %v, %.0f inserts/s",
			par, lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1], float64(len(lat))/wall.Seconds())
	}
}

// TestBatchedConcurrent: through one store, 64 goroutines inserting
// distinct keys all at once (so pipelines carry many) are each fresh once,
// then replays; 16 inserting the same key at once get exactly one fresh,
// also when it is several times in one pipeline. After Close, Insert fails
// at once.
func TestBatchedConcurrent(t *testing.T) {
	r := startRedis(t)
	for _, pipelines := range []int{1, DefaultPipelines, 0} {
		t.Run(fmt.Sprintf("pipelines=%d", pipelines), func(t *testing.T) {
			var batches, batched atomic.Int64
			s := newStore(t, Options{URL: r.url(), Pipelines: pipelines, Timeout: 5 * time.Second,
				KeyPrefix: fmt.Sprintf("batch%d:", pipelines),
				ObserveBatch: func(n int) {
					if n < 1 || n > MaxBatch {
						t.Errorf("ObserveBatch(%d): want 1 to %d", n, MaxBatch)
					}
					batches.Add(1)
					batched.Add(int64(n))
				}})
			now := time.Now()
			for round, want := range []bool{true, false} {
				var wg sync.WaitGroup
				for g := range 64 {
					wg.Go(func() {
						fresh, err := s.Insert(t.Context(), key(byte(g)), now, now.Add(time.Minute))
						if err != nil || fresh != want {
							t.Errorf("round %d key %d: fresh %v err %v, want %v", round, g, fresh, err, want)
						}
					})
				}
				wg.Wait()
			}
			for k := range 20 {
				var fresh atomic.Int32
				var wg sync.WaitGroup
				for range 16 {
					wg.Go(func() {
						f, err := s.Insert(t.Context(), key(byte(100+k)), now, now.Add(time.Minute))
						if err != nil {
							t.Error(err)
						}
						if f {
							fresh.Add(1)
						}
					})
				}
				wg.Wait()
				if fresh.Load() != 1 {
					t.Fatalf("key %d: %d of 16 concurrent insertions fresh, want 1", k, fresh.Load())
				}
			}
			// Every insertion went through a batch with pipelines, none
			// without (2×64 + 20×16 of them).
			if want := int64(2*64 + 20*16); pipelines > 0 && (batched.Load() != want || batches.Load() < 1 || batches.Load() > want) ||
				pipelines == 0 && batches.Load() != 0 {
				t.Errorf("pipelines=%d: %d insertions in %d batches observed, want %d insertions (0 batches without pipelines)",
					pipelines, batched.Load(), batches.Load(), want)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if _, err := s.Insert(t.Context(), key(200), now, now.Add(time.Minute)); err == nil {
				t.Error("Insert after Close succeeded")
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Insert after Close took %v", d)
			}
		})
	}
}

// BenchmarkAccept: a whole Kerberos Accept (decrypt, checks, replay
// store, AP-REP) with the memory cache and with Redis on loopback, 16
// goroutines, tokens made beforehand. Compare ns/op (wall per handshake
// across the goroutines) and the CPU the process used per handshake.
func BenchmarkAccept(b *testing.B) {
	r := startRedis(b)
	f := gsstest.New(b, 18)
	for _, tc := range []struct {
		name  string
		store func() gss.ReplayStore
	}{
		{"memory", func() gss.ReplayStore { return gss.NewReplayCache(0) }},
		{"redis", func() gss.ReplayStore { return newStore(b, Options{URL: r.url()}) }},
		{"redis-pipelined", func() gss.ReplayStore { return newStore(b, Options{URL: r.url(), Pipelines: DefaultPipelines}) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			acc := f.Acceptor(b, gss.AcceptorConfig{ReplayCache: tc.store()})
			toks := make([][]byte, b.N)
			for i := range toks {
				toks[i] = f.InitialToken(b, gss.FlagMutual)
			}
			var next atomic.Int64
			b.SetParallelism(8) // 16 goroutines on 2 CPUs
			cpu0 := selfCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					ctx, _, err := acc.Accept(toks[next.Add(1)-1])
					if err != nil {
						b.Error(err)
						return
					}
					ctx.Delete()
				}
			})
			b.StopTimer()
			cpu := (selfCPU() - cpu0) / time.Duration(b.N)
			b.ReportMetric(float64(cpu.Microseconds()), "cpu-us/op")
		})
	}
}

// selfCPU is this process's user+system CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkRoundTrip measures one lone insertion at a time: the client
// waits for each reply, so both processes go idle and wake up for every
// round trip, as at low load. It reports the CPU per insertion of this
// process (client-cpu-us/op) and of redis-server (server-cpu-us/op, from
// its rusage when it is stopped, start-up included), for the Store and
// for a minimal hand-written client (one write of the SET command, one
// read of the reply), which shows what the round trip itself costs on
// this machine whatever the client library.
func BenchmarkRoundTrip(b *testing.B) {
	for _, tc := range []struct {
		name   string
		insert func(b *testing.B, r *redisServer) func(i int)
	}{
		{"store", func(b *testing.B, r *redisServer) func(int) {
			s := newStore(b, Options{URL: r.url()})
			now := time.Now()
			return func(i int) {
				var k gss.ReplayKey
				binary.BigEndian.PutUint64(k[:], uint64(i))
				if fresh, err := s.Insert(context.Background(), k, now, now.Add(time.Minute)); err != nil || !fresh {
					b.Fatalf("insert %d: fresh %v, %v", i, fresh, err)
				}
			}
		}},
		{"minimal-client", func(b *testing.B, r *redisServer) func(int) {
			c, err := net.Dial("tcp", r.addr())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { c.Close() })
			reply := make([]byte, 64)
			return func(i int) {
				k := strconv.Itoa(i)
				cmd := fmt.Sprintf("*6\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$1\r\n1\r\n$2\r\nPX\r\n$5\r\n60000\r\n$2\r\nNX\r\n", len(k), k)
				if _, err := c.Write([]byte(cmd)); err != nil {
					b.Fatal(err)
				}
				if n, err := c.Read(reply); err != nil || string(reply[:n]) != "+OK\r\n" {
					b.Fatalf("reply %q, %v", reply[:n], err)
				}
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			r := startRedis(b)
			insert := tc.insert(b, r)
			insert(-1) // connect
			cpu0 := selfCPU()
			b.ResetTimer()
			for i := range b.N {
				insert(i)
			}
			b.StopTimer()
			client := (selfCPU() - cpu0) / time.Duration(b.N)
			r.stop()
			b.ReportMetric(float64(client.Nanoseconds())/1e3, "client-cpu-us/op")
			b.ReportMetric(float64(r.cpu.Nanoseconds())/1e3/float64(b.N), "server-cpu-us/op")
		})
	}
}

// TestRedisRestartUnderLoad: 8 goroutines insert without pause while
// redis-server is killed and started again. Every insertion either
// succeeds or fails with an error within the timeout (no hang, no false
// replay: every key is distinct), insertions succeed again after the
// restart without a new Store, and once the store is closed no descriptor
// is left open (goroutines: goleak in TestMain).
func TestRedisRestartUnderLoad(t *testing.T) {
	fds := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Skip("no /proc/self/fd")
		}
		return len(ents)
	}
	r := startRedis(t)
	before := fds()
	s, err := New(Options{URL: r.url(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var ok, failed, replays atomic.Int64
	var slowest atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Uint64
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var k gss.ReplayKey
				n := seq.Add(1)
				for i := range 8 {
					k[i] = byte(n >> (8 * i))
				}
				k[31] = 0xAA
				now := time.Now()
				t0 := time.Now()
				fresh, err := s.Insert(context.Background(), k, now, now.Add(time.Minute))
				if d := int64(time.Since(t0)); d > slowest.Load() {
					slowest.Store(d)
				}
				switch {
				case err != nil:
					failed.Add(1)
					time.Sleep(time.Millisecond)
				case !fresh:
					replays.Add(1)
				default:
					ok.Add(1)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	r.stop()
	time.Sleep(300 * time.Millisecond)
	failedDown := failed.Load()
	r.start()
	okAfter := ok.Load()
	deadline := time.Now().Add(5 * time.Second)
	for ok.Load() < okAfter+100 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d inserted, %d failed while down, %d replays, slowest %v", ok.Load(), failed.Load(), replays.Load(), time.Duration(slowest.Load()))
	if failedDown == 0 {
		t.Error("no insertion failed while redis was down")
	}
	if ok.Load() < okAfter+100 {
		t.Errorf("no recovery: %d insertions after the restart", ok.Load()-okAfter)
	}
	if replays.Load() != 0 {
		t.Errorf("%d distinct keys reported as replays", replays.Load())
	}
	if d := time.Duration(slowest.Load()); d > time.Second {
		t.Errorf("an insertion took %v with a 100ms timeout", d)
	}
	s.Close()
	for deadline := time.Now().Add(2 * time.Second); fds() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := fds(); n > before {
		t.Errorf("%d descriptors open after Close, %d before New", n, before)
	}
}
