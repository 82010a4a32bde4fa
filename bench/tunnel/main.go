// Command tunnel is the harness of bench/tunnel/run: it puts one real
// redis-server behind four paths and measures each in the same run:
//
//   - direct: redis-benchmark to redis;
//   - gss-tunnel: gss-tunnel -listen -> gss-acceptor (proxy backend,
//     2 workers) -> redis, in a throwaway MIT realm (internal/testrealm);
//   - stunnel: stunnel4 client -> stunnel4 server (TLS, a throwaway
//     self-signed certificate the client verifies) -> redis;
//   - ssh -L: ssh -L to a throwaway sshd on 127.0.0.1 (temporary host and
//     user keys) -> redis.
//
// For each it runs redis-benchmark -t set,get -c 8 (with -n sized from a
// short probe so each run takes about -seconds), then -c 1 -P 1 GET for
// the round-trip latency, sampling the CPU time of the tunnel's processes
// (both ends) from /proc; the paths take turns for -rounds rounds and the
// report gives the median of each figure. Last, it opens -idle idle sessions through
// gss-acceptor (the stream protocol, as gss-tunnel speaks it, one context
// each; every one answers a PING) and reports the workers' RSS. Everything
// it starts binds 127.0.0.1 and is stopped at the end.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/csv"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// readyTimeout bounds every process's startup.
const readyTimeout = 30 * time.Second

type config struct {
	bin      string
	seconds  float64
	latN     int
	idle     int
	rssLimit int64
	keep     bool
	loads    bool
	rounds   int
}

func main() {
	var c config
	var rssMiB int64
	flag.StringVar(&c.bin, "bin", "", "directory holding gss-acceptor, gss-worker and gss-tunnel (required)")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds of loads; each figure is the median over them")
	flag.Float64Var(&c.seconds, "seconds", 10, "target length of each redis-benchmark -c 8 run, in seconds")
	flag.IntVar(&c.latN, "latency-n", 20000, "GET requests of the -c 1 -P 1 latency run per path")
	flag.IntVar(&c.idle, "idle", 10000, "idle gss-acceptor sessions to hold for the memory figure (0: skip)")
	flag.Int64Var(&rssMiB, "rss-limit", 300, "worker RSS limit in MiB for -idle sessions; above it the run fails")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory with the logs")
	flag.BoolVar(&c.loads, "loads", true, "run the redis-benchmark loads (false: only the idle sessions)")
	flag.Parse()
	c.rssLimit = rssMiB << 20
	if c.bin == "" || flag.NArg() > 0 || c.rounds < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// path is one way to reach redis.
type path struct {
	name  string
	port  int
	procs []*proc // the tunnel's processes (both ends); none for direct
}

func (p *path) pids() []int {
	var roots []int
	for _, pr := range p.procs {
		roots = append(roots, pr.pid())
	}
	return tree(roots...)
}

type harness struct {
	mu     sync.Mutex // procs, realm, closed: cleanup may run from the signal handler
	closed bool
	once   sync.Once
	cfg    config
	dir    string
	realm  *testrealm.Realm
	redis  int
	procs  []*proc
	acc    *proc
	accPt  int
}

func run(c config) (err error) {
	for _, p := range []string{"redis-server", "redis-benchmark", "stunnel4", "ssh", "ssh-keygen", "/usr/sbin/sshd"} {
		if _, err := exec.LookPath(p); err != nil {
			return fmt.Errorf("tunnel: %s not found (run scripts/install-deps): %w", p, err)
		}
	}
	dir, err := os.MkdirTemp("", "gss-tunnel-bench-")
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	h := &harness{cfg: c, dir: dir}
	defer h.cleanup()
	// An interrupt (or the run script's timeout) stops everything too.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		fmt.Fprintf(os.Stderr, "tunnel: %v: stopping everything\n", s)
		h.cleanup()
		os.Exit(1)
	}()
	realm, err := testrealm.Start(testrealm.Options{Dir: filepath.Join(dir, "realm")})
	if err != nil {
		return err
	}
	h.mu.Lock()
	h.realm = realm
	closed := h.closed
	h.mu.Unlock()
	if closed {
		realm.Close()
		return errors.New("tunnel: interrupted")
	}
	paths, err := h.startAll()
	if err != nil {
		return err
	}
	fmt.Printf("== %s, %d CPUs, redis %s\n", time.Now().UTC().Format(time.RFC3339), numCPU(), redisVersion())

	if !c.loads {
		return h.idleSessions(c.idle)
	}
	// Probe each path, then size -n so each run takes about cfg.seconds.
	// The paths take turns, round after round, so that a change in the
	// shared machine's speed hits them all; each figure is the median
	// over the rounds.
	sizes := map[string]int{}
	for _, p := range paths {
		probe, err := h.benchmark(p, 8, 1, 20000, "set,get")
		if err != nil {
			return err
		}
		rate := (probe.rps["SET"] + probe.rps["GET"]) / 2
		sizes[p.name] = max(int(rate*c.seconds/2)/1000*1000, 10000)
	}
	tputRuns, latRuns := map[string][]*benchRow{}, map[string][]*benchRow{}
	for round := 1; round <= c.rounds; round++ {
		fmt.Printf("-- round %d of %d\n", round, c.rounds)
		for _, p := range paths {
			n := sizes[p.name]
			r, err := h.benchmark(p, 8, 1, n, "set,get")
			if err != nil {
				return err
			}
			tputRuns[p.name] = append(tputRuns[p.name], r)
			fmt.Printf("  %-10s -c 8 -n %-8d SET %9.0f/s  GET %9.0f/s  tunnel CPU %6.1f µs/request  (%.1fs)\n",
				p.name, n, r.rps["SET"], r.rps["GET"], r.cpuPerReq, r.elapsed.Seconds())
		}
		for _, p := range paths {
			r, err := h.benchmark(p, 1, 1, c.latN, "get")
			if err != nil {
				return err
			}
			latRuns[p.name] = append(latRuns[p.name], r)
			fmt.Printf("  %-10s -c 1 -P 1 GET p50 %.3f ms  p99 %.3f ms  (%.0f/s)\n", p.name, r.p50["GET"], r.p99["GET"], r.rps["GET"])
		}
	}
	tput, lat := map[string]*benchRow{}, map[string]*benchRow{}
	for _, p := range paths {
		tput[p.name], lat[p.name] = medianRow(tputRuns[p.name]), medianRow(latRuns[p.name])
	}
	fmt.Printf("\nmedians over %d rounds:\n", c.rounds)
	report(paths, tput, lat)

	if c.idle > 0 {
		return h.idleSessions(c.idle)
	}
	return nil
}

func numCPU() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "\nprocessor") + 1
}

func redisVersion() string {
	out, _ := exec.Command("redis-server", "--version").Output()
	for _, f := range strings.Fields(string(out)) {
		if v, ok := strings.CutPrefix(f, "v="); ok {
			return v
		}
	}
	return "?"
}

func (h *harness) start(name string, env []string, argv ...string) (*proc, error) {
	p, err := startProc(h.dir, name, env, argv...)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		p.stop()
		return nil, errors.New("tunnel: interrupted")
	}
	h.procs = append(h.procs, p)
	return p, nil
}

// cleanup stops every process in the reverse order of their start, the
// KDC last, and removes the directory unless -keep. Only the first call
// does anything; a concurrent one waits for it to finish, so that the
// program cannot exit halfway through.
func (h *harness) cleanup() { h.once.Do(h.doCleanup) }

func (h *harness) doCleanup() {
	h.mu.Lock()
	h.closed = true
	procs, realm := h.procs, h.realm
	h.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].stop()
	}
	if realm != nil {
		realm.Close()
	}
	if h.cfg.keep {
		fmt.Println("logs kept in", h.dir)
	} else {
		os.RemoveAll(h.dir)
	}
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// startAll starts redis and the three tunnels in front of it.
func (h *harness) startAll() ([]*path, error) {
	var err error
	if h.redis, err = freePort(); err != nil {
		return nil, err
	}
	// Room for the idle sessions' backend connections.
	r, err := h.start("redis", nil, "redis-server", "--bind", "127.0.0.1", "--port", strconv.Itoa(h.redis),
		"--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", h.dir,
		"--maxclients", strconv.Itoa(h.cfg.idle+100))
	if err != nil {
		return nil, err
	}
	if err := r.waitReady(addr(h.redis), "", readyTimeout); err != nil {
		return nil, err
	}
	gssPath, err := h.startGSS()
	if err != nil {
		return nil, err
	}
	stPath, err := h.startStunnel()
	if err != nil {
		return nil, err
	}
	sshPath, err := h.startSSH()
	if err != nil {
		return nil, err
	}
	return []*path{{name: "direct", port: h.redis}, gssPath, stPath, sshPath}, nil
}

// startGSS starts gss-acceptor (proxy backend to redis, 2 workers) and
// gss-tunnel -listen in front of it.
func (h *harness) startGSS() (*path, error) {
	var err error
	if h.accPt, err = freePort(); err != nil {
		return nil, err
	}
	perWorker := max(4096, h.cfg.idle)
	cfg := fmt.Sprintf(`listen: [%q]
keytab: %q
workers: 2
worker_path: %q
max_sessions_per_worker: %d
max_pending_connections: 4096
idle_timeout: 10m
backend: %q
allow_clients: [%q]
log_format: json
log_level: info
shutdown_timeout: 5s
`, addr(h.accPt), h.realm.ServiceKeytab, filepath.Join(h.cfg.bin, "gss-worker"), perWorker,
		"tcp:"+addr(h.redis), h.realm.UserPrincipal)
	cfgPath := filepath.Join(h.dir, "gss-acceptor.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	h.acc, err = h.start("gss-acceptor", h.realm.Env(), filepath.Join(h.cfg.bin, "gss-acceptor"), "-config", cfgPath)
	if err != nil {
		return nil, err
	}
	if err := h.acc.waitReady(addr(h.accPt), `"msg":"ready"`, readyTimeout); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tun, err := h.start("gss-tunnel", h.realm.Env(), filepath.Join(h.cfg.bin, "gss-tunnel"),
		"-listen", addr(port), "-connect", addr(h.accPt), "-service", "host@localhost")
	if err != nil {
		return nil, err
	}
	if err := tun.waitReady(addr(port), "listening on", readyTimeout); err != nil {
		return nil, err
	}
	return &path{name: "gss-tunnel", port: port, procs: []*proc{tun, h.acc}}, nil
}

// startStunnel starts a TLS server stunnel in front of redis and a client
// stunnel that verifies its certificate.
func (h *harness) startStunnel() (*path, error) {
	certPath, keyPath := filepath.Join(h.dir, "stunnel.crt"), filepath.Join(h.dir, "stunnel.key")
	if err := selfSigned(certPath, keyPath); err != nil {
		return nil, err
	}
	srvPort, err := freePort()
	if err != nil {
		return nil, err
	}
	cliPort, err := freePort()
	if err != nil {
		return nil, err
	}
	srvConf := fmt.Sprintf("foreground = yes\npid =\ndebug = 4\n[redis]\naccept = %s\nconnect = %s\ncert = %s\nkey = %s\n",
		addr(srvPort), addr(h.redis), certPath, keyPath)
	cliConf := fmt.Sprintf("foreground = yes\npid =\ndebug = 4\n[redis]\nclient = yes\naccept = %s\nconnect = %s\nverifyPeer = yes\nCAfile = %s\n",
		addr(cliPort), addr(srvPort), certPath)
	var procs []*proc
	for _, c := range []struct{ name, conf string }{{"stunnel-server", srvConf}, {"stunnel-client", cliConf}} {
		p := filepath.Join(h.dir, c.name+".conf")
		if err := os.WriteFile(p, []byte(c.conf), 0o600); err != nil {
			return nil, fmt.Errorf("tunnel: %w", err)
		}
		pr, err := h.start(c.name, nil, "stunnel4", p)
		if err != nil {
			return nil, err
		}
		procs = append(procs, pr)
	}
	if err := procs[0].waitReady(addr(srvPort), "", readyTimeout); err != nil {
		return nil, err
	}
	if err := procs[1].waitReady(addr(cliPort), "", readyTimeout); err != nil {
		return nil, err
	}
	return &path{name: "stunnel", port: cliPort, procs: procs}, nil
}

// selfSigned writes a P-256 certificate for localhost/127.0.0.1 and its key.
func selfSigned(certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "localhost"},
		DNSNames:              []string{"localhost"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("tunnel: %w", err)
	}
	return os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
}

// startSSH starts a throwaway sshd on 127.0.0.1 (temporary host key, one
// temporary authorized key) and ssh -N -L through it to redis.
func (h *harness) startSSH() (*path, error) {
	hostKey, userKey := filepath.Join(h.dir, "ssh_host_key"), filepath.Join(h.dir, "ssh_user_key")
	for _, k := range []string{hostKey, userKey} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("tunnel: ssh-keygen: %w: %s", err, out)
		}
	}
	pub, err := os.ReadFile(userKey + ".pub")
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	authKeys := filepath.Join(h.dir, "authorized_keys")
	if err := os.WriteFile(authKeys, pub, 0o600); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	// sshd refuses to start without its privilege separation directory,
	// which the Debian unit creates at boot.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	sshdPort, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`ListenAddress 127.0.0.1
Port %d
HostKey %s
PidFile none
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowTcpForwarding yes
LogLevel ERROR
`, sshdPort, hostKey, authKeys)
	confPath := filepath.Join(h.dir, "sshd_config")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	sshd, err := h.start("sshd", nil, "/usr/sbin/sshd", "-D", "-e", "-f", confPath)
	if err != nil {
		return nil, err
	}
	if err := sshd.waitReady(addr(sshdPort), "", readyTimeout); err != nil {
		return nil, err
	}
	u, err := user.Current()
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	ssh, err := h.start("ssh", nil, "ssh", "-F", "/dev/null", "-N", "-T",
		"-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
		"-o", "ExitOnForwardFailure=yes", "-o", "LogLevel=ERROR", "-i", userKey, "-p", strconv.Itoa(sshdPort),
		"-L", addr(port)+":"+addr(h.redis), u.Username+"@127.0.0.1")
	if err != nil {
		return nil, err
	}
	if err := ssh.waitReady(addr(port), "", readyTimeout); err != nil {
		return nil, err
	}
	return &path{name: "ssh -L", port: port, procs: []*proc{ssh, sshd}}, nil
}

// benchRow is one redis-benchmark run.
type benchRow struct {
	rps, p50, p99 map[string]float64 // by test name (SET, GET); latencies in ms
	requests      int
	elapsed       time.Duration
	cpuPerReq     float64 // tunnel CPU (both ends), µs per request
}

// benchmark runs redis-benchmark through p and samples the tunnel's CPU.
func (h *harness) benchmark(p *path, clients, pipeline, n int, tests string) (*benchRow, error) {
	pids := p.pids()
	cpu0 := cpuOf(pids)
	start := time.Now()
	// Bounded: no path is slower than 1,000 requests/s.
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(n/1000+60)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "redis-benchmark", "-h", "127.0.0.1", "-p", strconv.Itoa(p.port),
		"-t", tests, "-c", strconv.Itoa(clients), "-P", strconv.Itoa(pipeline), "-n", strconv.Itoa(n), "--csv").Output()
	elapsed := time.Since(start)
	cpu := cpuOf(pids) - cpu0
	if err != nil {
		return nil, fmt.Errorf("tunnel: redis-benchmark through %s: %w", p.name, err)
	}
	r, err := parseCSV(out)
	if err != nil {
		return nil, fmt.Errorf("tunnel: redis-benchmark through %s: %w", p.name, err)
	}
	r.requests = n * len(strings.Split(tests, ","))
	r.elapsed = elapsed
	r.cpuPerReq = float64(cpu.Microseconds()) / float64(r.requests)
	return r, nil
}

// medianRow is the median of each figure over rows.
func medianRow(rows []*benchRow) *benchRow {
	m := &benchRow{rps: map[string]float64{}, p50: map[string]float64{}, p99: map[string]float64{}}
	med := func(get func(r *benchRow) float64) float64 {
		v := make([]float64, len(rows))
		for i, r := range rows {
			v[i] = get(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	for test := range rows[0].rps {
		m.rps[test] = med(func(r *benchRow) float64 { return r.rps[test] })
		m.p50[test] = med(func(r *benchRow) float64 { return r.p50[test] })
		m.p99[test] = med(func(r *benchRow) float64 { return r.p99[test] })
	}
	m.cpuPerReq = med(func(r *benchRow) float64 { return r.cpuPerReq })
	return m
}

// parseCSV reads redis-benchmark --csv output: a header line naming the
// columns, then one line per test.
func parseCSV(out []byte) (*benchRow, error) {
	recs, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("csv: %d lines, want a header and results: %q", len(recs), out)
	}
	col := map[string]int{}
	for i, name := range recs[0] {
		col[name] = i
	}
	for _, need := range []string{"test", "rps", "p50_latency_ms", "p99_latency_ms"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("csv: no %q column in %q", need, recs[0])
		}
	}
	r := &benchRow{rps: map[string]float64{}, p50: map[string]float64{}, p99: map[string]float64{}}
	for _, rec := range recs[1:] {
		if len(rec) != len(recs[0]) {
			return nil, fmt.Errorf("csv: line %q has %d fields, want %d", rec, len(rec), len(recs[0]))
		}
		test := rec[col["test"]]
		for _, f := range []struct {
			m   map[string]float64
			col string
		}{{r.rps, "rps"}, {r.p50, "p50_latency_ms"}, {r.p99, "p99_latency_ms"}} {
			v, err := strconv.ParseFloat(rec[col[f.col]], 64)
			if err != nil {
				return nil, fmt.Errorf("csv: %s %s: %w", test, f.col, err)
			}
			f.m[test] = v
		}
	}
	return r, nil
}

// report prints the tables with ratios to direct.
func report(paths []*path, tput, lat map[string]*benchRow) {
	d, dl := tput["direct"], lat["direct"]
	fmt.Println()
	fmt.Println("| path | SET/s | GET/s | ÷ direct (SET / GET) | tunnel CPU µs/request | GET p50 / p99 ms (-c 1) | added p50 / p99 µs |")
	fmt.Println("|---|---:|---:|---:|---:|---:|---:|")
	for _, p := range paths {
		t, l := tput[p.name], lat[p.name]
		cpu := "—"
		if p.name != "direct" {
			cpu = fmt.Sprintf("%.1f", t.cpuPerReq)
		}
		fmt.Printf("| %s | %.0f | %.0f | %.2f / %.2f | %s | %.3f / %.3f | %.0f / %.0f |\n",
			p.name, t.rps["SET"], t.rps["GET"], t.rps["SET"]/d.rps["SET"], t.rps["GET"]/d.rps["GET"], cpu,
			l.p50["GET"], l.p99["GET"], 1000*(l.p50["GET"]-dl.p50["GET"]), 1000*(l.p99["GET"]-dl.p99["GET"]))
	}
	g := tput["gss-tunnel"]
	fmt.Println()
	for _, p := range paths[2:] {
		t := tput[p.name]
		fmt.Printf("gss-tunnel ÷ %s: SET %.2f×, GET %.2f×, tunnel CPU per request %.2f× (theirs ÷ ours)\n",
			p.name, g.rps["SET"]/t.rps["SET"], g.rps["GET"]/t.rps["GET"], t.cpuPerReq/g.cpuPerReq)
	}
	fmt.Println()
}

// idleSessions opens n sessions straight to gss-acceptor with the stream
// protocol (what gss-tunnel does for each local connection), checks that
// each reaches redis (PING, +PONG), samples the workers' RSS, checks them
// all again and closes them.
func (h *harness) idleSessions(n int) error {
	cfg, err := client.LoadKrb5Conf(h.realm.Krb5Conf)
	if err != nil {
		return err
	}
	creds, err := client.FromKeytab(h.realm.UserPrincipal, h.realm.UserKeytab, cfg)
	if err != nil {
		return err
	}
	tkt, err := creds.ServiceTicket("host@localhost")
	if err != nil {
		return err
	}
	workers := tree(h.acc.pid())[1:]
	time.Sleep(time.Second) // let the sessions of the loads above end
	before, err := rssOf(workers)
	if err != nil {
		return err
	}
	sessions := make([]*stream.Conn, n)
	defer func() {
		for _, s := range sessions {
			if s != nil {
				s.Close()
				s.Context().Delete()
			}
		}
	}()
	start := time.Now()
	err = parallel(n, 8, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := client.Dial(ctx, addr(h.accPt), tkt, client.Options{
			Flags: gss.FlagMutual | gss.FlagReplay | gss.FlagSequence | gss.FlagConf | gss.FlagInteg,
		})
		if err != nil {
			return fmt.Errorf("tunnel: idle session %d: %w", i, err)
		}
		nc, r := c.Raw()
		st, err := stream.New(nc, r, c.Context(), stream.Config{})
		if err != nil {
			c.Abort()
			return err
		}
		sessions[i] = st
		return ping(st)
	})
	if err != nil {
		return err
	}
	opened := time.Since(start)
	time.Sleep(time.Second)
	after, err := rssOf(workers)
	if err != nil {
		return err
	}
	if err := parallel(n, 8, func(i int) error { return ping(sessions[i]) }); err != nil {
		return fmt.Errorf("tunnel: after the RSS sample: %w", err)
	}
	fmt.Printf("idle sessions: %d held through gss-acceptor -> redis (opened in %.1fs, each answered PING twice)\n", n, opened.Seconds())
	fmt.Printf("worker RSS (%d workers): %.1f MiB before, %.1f MiB with %d sessions; %.2f MiB per 1000 sessions; limit %d MiB\n",
		len(workers), mib(before), mib(after), n, mib(after-before)*1000/float64(n), h.cfg.rssLimit>>20)
	if after > h.cfg.rssLimit {
		return fmt.Errorf("tunnel: worker RSS %.1f MiB with %d idle sessions exceeds %d MiB", mib(after), n, h.cfg.rssLimit>>20)
	}
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// ping sends a redis PING through st and expects +PONG.
func ping(st *stream.Conn) error {
	nc := st.NetConn()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	defer nc.SetDeadline(time.Time{})
	if _, err := st.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	buf := make([]byte, 7)
	if _, err := io.ReadFull(st, buf); err != nil {
		return fmt.Errorf("tunnel: reading PONG: %w", err)
	}
	if string(buf) != "+PONG\r\n" {
		return fmt.Errorf("tunnel: redis answered %q to PING", buf)
	}
	return nil
}

// parallel runs fn(0..n-1) on k goroutines, stopping at the first error.
func parallel(n, k int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					next.Store(int64(n))
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return nil
}
