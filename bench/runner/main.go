// Command runner is the benchmark harness behind bench/run: it starts a
// throwaway MIT realm, gss-acceptor (two workers) and two MIT gss-servers
// (replay cache off and on), drives the same loads against each with
// gss-bench and with parallel MIT gss-client processes, measures the
// architecture floor (bench/floor: the same socket choreography without
// Kerberos), samples the servers' CPU time and memory from /proc, and
// writes a Markdown table of ratios plus the raw results.
//
// Everything runs on one machine: the load generator competes with the
// server for the same cores, which the report states.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "runner:", err)
		os.Exit(1)
	}
}

// config holds the command line.
type config struct {
	binDir     string
	outDir     string
	duration   time.Duration
	conc       int
	hold       int
	mitClients int
	ccount     int
	keep       bool
	serve      bool
	// replay runs only the replay-cache comparison (replay.go) in
	// replayRounds rounds.
	replay       bool
	replayRounds int
	// serial is the -ccount of the one-client-at-a-time section, run in
	// serialRounds rounds; only limits the run to some sections.
	serial       int
	serialRounds int
	only         map[string]bool
	// extraConfig is appended to gss-acceptor's configuration (A/B runs
	// of a setting).
	extraConfig string
	// bConfig, if set, starts a second gss-acceptor ("ours-b") with these
	// lines appended, for A/B pairs measured in the same run.
	bConfig string
	bEnv    listFlag
	bBin    string // ours-b's gss-acceptor and gss-worker; "": binDir
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// Sections of a run, for -only.
var sections = []string{"serial", "handshake", "floor", "messages", "mit", "hold"}

// runs reports whether section is part of this run.
func (c config) runs(section string) bool { return len(c.only) == 0 || c.only[section] }

func run() error {
	var c config
	flag.StringVar(&c.binDir, "bin", "", "directory holding gss-acceptor, gss-worker, gss-bench and floor (required)")
	flag.StringVar(&c.outDir, "out", "bench/results", "directory for latest.md and raw/")
	flag.DurationVar(&c.duration, "d", 6*time.Second, "duration of each measured load")
	flag.IntVar(&c.conc, "c", 16, "concurrent clients of the handshake loads")
	flag.IntVar(&c.hold, "hold", 10_000, "idle sessions held against gss-acceptor")
	flag.IntVar(&c.mitClients, "mit-clients", 8, "parallel MIT gss-client processes")
	flag.IntVar(&c.ccount, "ccount", 300, "connections per MIT gss-client process (-ccount)")
	flag.BoolVar(&c.keep, "keep", false, "keep the temporary directory (logs) and print its path")
	flag.BoolVar(&c.serve, "serve", false, "only start the realm and the servers, print how to reach them, and wait for SIGINT/SIGTERM (for profiling)")
	flag.BoolVar(&c.replay, "replay", false, "only compare the replay cache backends (memory, file, redis) and write replay.md")
	flag.IntVar(&c.replayRounds, "rounds", 3, "rounds of the -replay comparison")
	flag.IntVar(&c.serial, "serial", 1000, "connections of the one-client-at-a-time MIT gss-client")
	flag.IntVar(&c.serialRounds, "serial-rounds", 2, "rounds of the one-client-at-a-time section")
	flag.StringVar(&c.extraConfig, "config", "", "YAML lines appended to gss-acceptor's configuration, e.g. $'acceptor_cpus: 1\\n'")
	flag.StringVar(&c.bBin, "b-bin", "", "directory of ours-b's gss-acceptor and gss-worker, e.g. built from another commit (implies ours-b)")
	flag.Var(&c.bEnv, "b-env", "KEY=VALUE in ours-b's environment (repeatable; implies ours-b)")
	flag.StringVar(&c.bConfig, "b-config", "", "YAML lines for a second gss-acceptor, ours-b, measured beside ours in each load (A/B)")
	only := flag.String("only", "", "comma-separated sections to run (default all): "+strings.Join(sections, ","))
	flag.Parse()
	if *only != "" {
		c.only = map[string]bool{}
		for sec := range strings.SplitSeq(*only, ",") {
			if !slices.Contains(sections, sec) {
				return fmt.Errorf("-only: unknown section %q (want some of %s)", sec, strings.Join(sections, ","))
			}
			c.only[sec] = true
		}
	}
	switch {
	case c.binDir == "":
		return errors.New("-bin is required")
	case c.duration <= 0 || c.duration > 10*time.Minute:
		return errors.New("-d: want > 0 and ≤ 10m")
	case c.conc < 1 || c.conc > 1000, c.hold < 0 || c.hold > 50_000,
		c.mitClients < 1 || c.mitClients > 64, c.ccount < 1 || c.ccount > 100_000:
		return errors.New("-c, -hold, -mit-clients or -ccount out of range")
	case c.replayRounds < 1 || c.replayRounds > 20:
		return errors.New("-rounds: want 1 to 20")
	case c.serial < 1 || c.serial > 100_000, c.serialRounds < 1 || c.serialRounds > 20:
		return errors.New("-serial or -serial-rounds out of range")
	}
	if err := testrealm.Available(); err != nil {
		return err
	}
	if _, err := exec.LookPath("gss-server"); err != nil {
		return errors.New("MIT gss-server not found (apt-get install krb5-gss-samples)")
	}

	dir, err := os.MkdirTemp("", "gss-bench-")
	if err != nil {
		return err
	}
	if c.keep {
		fmt.Println("logs and realm in", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	h := &harness{cfg: c, dir: dir, started: time.Now(), loadBefore: loadAvg()}
	h.log, err = os.Create(filepath.Join(dir, "runner.log"))
	if err != nil {
		return err
	}
	defer h.log.Close()
	h.logw = io.MultiWriter(h.log, os.Stderr)
	return h.run()
}

// harness carries one benchmark run.
type harness struct {
	cfg        config
	dir        string
	log        *os.File
	logw       io.Writer
	started    time.Time
	loadBefore float64

	realm *testrealm.Realm
	env   []string

	ours, mitNone, mitRcache *server
	// oursB is a second gss-acceptor with -b-config, measured beside
	// ours in every load (nil without -b-config).
	oursB *server
	rows  []row
	raw   []rawEntry

	hold    holdFigures
	latency latencyFigures
}

// row is one measured load against one server.
type row struct {
	Load   string        `json:"load"`
	Server string        `json:"server"`
	Result *benchResult  `json:"result,omitempty"`
	CPU    time.Duration `json:"server_cpu_ns"`
	// AcceptorCPU is our acceptor process alone (workers excluded).
	AcceptorCPU time.Duration `json:"acceptor_cpu_ns,omitempty"`
	// Elapsed is the load's wall-clock time, where the load is a fixed
	// number of operations (MIT gss-client runs).
	Elapsed time.Duration `json:"elapsed_ns,omitempty"`
	// ClientCPU is the load generator's own CPU time, where it is
	// separate processes whose rusage is known (MIT gss-client runs).
	ClientCPU time.Duration `json:"client_cpu_ns,omitempty"`
	Ops       int64         `json:"ops"`
	OpsPerSec float64       `json:"ops_per_s"`
	MBPerSec  float64       `json:"mb_per_s,omitempty"`
	Errors    int64         `json:"errors"`
	LoadAvg   float64       `json:"loadavg"`
}

// cpuPerOp is the server CPU per operation in microseconds.
func (r row) cpuPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.CPU.Microseconds()) / float64(r.Ops)
}

// clientCPUPerOp is the load generator's CPU per operation in
// microseconds, 0 when it was not measured.
func (r row) clientCPUPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.ClientCPU.Microseconds()) / float64(r.Ops)
}

// clientBoundCeiling is the most the server of row o could reach in
// operations/s, as a multiple of row m's rate, on a machine of cpus cores
// that the load generator shares with it: the clients alone, at their CPU
// per operation measured in o, on every core all the time, against a
// server that costs nothing. 0 when o's client CPU or m's rate is not
// known.
func clientBoundCeiling(o, m row, cpus int) float64 {
	c := o.clientCPUPerOp()
	if c == 0 || m.OpsPerSec == 0 {
		return 0
	}
	return float64(cpus) * 1e6 / c / m.OpsPerSec
}

type rawEntry struct {
	Load   string          `json:"load"`
	Server string          `json:"server"`
	Bench  json.RawMessage `json:"gss_bench,omitempty"`
}

// holdFigures are the idle-session measurements on gss-acceptor.
type holdFigures struct {
	Requested, Held, Alive int
	BaseRSS, HeldRSS       int64 // sum over workers, bytes
	Workers                int
	RateHeld               float64
	RateUnloaded           float64
	Errors                 int64
}

// latencyFigures come from the acceptor's "session handed off" lines.
type latencyFigures struct {
	N                     int
	P50, P99, Max         time.Duration
	HsP50, HsP99          time.Duration
	HoP50, HoP99          time.Duration
	AcceptorCPUPerHS      time.Duration
	TotalCPUPerHS         time.Duration
	ConcurrentClientCount int
}

func (h *harness) printf(format string, a ...any) { fmt.Fprintf(h.logw, format, a...) }

func (h *harness) run() error {
	var err error
	h.printf("== realm\n")
	h.realm, err = testrealm.Start(testrealm.Options{Dir: filepath.Join(h.dir, "realm")})
	if err != nil {
		return err
	}
	defer h.realm.Close()
	h.env = h.realm.Env()
	if h.cfg.replay {
		return h.replayRun()
	}

	h.printf("== servers\n")
	maxPerWorker := max(4096, h.cfg.hold) // all held sessions fit even on one worker
	if h.ours, err = startOurs(h.realm, h.cfg.binDir, h.dir, 2, maxPerWorker, h.cfg.extraConfig); err != nil {
		return err
	}
	defer h.ours.stop()
	if h.mitNone, err = startMIT(h.realm, h.dir, true); err != nil {
		return err
	}
	defer h.mitNone.stop()
	if h.mitRcache, err = startMIT(h.realm, h.dir, false); err != nil {
		return err
	}
	defer h.mitRcache.stop()
	all := []*server{h.ours, h.mitNone, h.mitRcache}
	if h.cfg.bConfig != "" || len(h.cfg.bEnv) > 0 || h.cfg.bBin != "" {
		bBin := h.cfg.binDir
		if h.cfg.bBin != "" {
			bBin = h.cfg.bBin
		}
		if h.oursB, err = startOursEnv(h.realm, bBin, h.dir, "ours-b", 2, maxPerWorker, h.cfg.bConfig, h.cfg.bEnv); err != nil {
			return err
		}
		defer h.oursB.stop()
		all = []*server{h.ours, h.oursB, h.mitNone, h.mitRcache}
	}
	for _, s := range all {
		h.printf("  %-10s port %d pids %v\n", s.name, s.port, s.pids())
	}

	if h.cfg.serve {
		return h.serveOnly(all)
	}

	// Warm up: first connections load keytabs, fill caches, fault in pages.
	for _, s := range all {
		if _, _, err := h.bench(s, nil, "-mode", "handshake", "-c", "2", "-duration", "1s", "-mcount", "1"); err != nil {
			return fmt.Errorf("warm-up against %s: %w", s.name, err)
		}
	}

	d := h.cfg.duration.String()
	conc := strconv.Itoa(h.cfg.conc)
	hsLoad := func(mcount string) []string {
		return []string{"-mode", "handshake", "-c", conc, "-duration", d, "-mcount", mcount, "-size", "32"}
	}
	loadHS0 := fmt.Sprintf("handshake, -mcount 0, %d clients", h.cfg.conc)
	loadHS1 := fmt.Sprintf("handshake + one 32 B message, %d clients", h.cfg.conc)
	load1K := "session: 1 KiB sealed wrap→MIC round trips, 1 session"
	load64K := "session: 64 KiB sealed wrap→MIC round trips, 1 session"
	loadMIT := fmt.Sprintf("%d MIT gss-client -ccount %d -mcount 0 in parallel", h.cfg.mitClients, h.cfg.ccount)

	if h.cfg.runs("serial") {
		h.printf("== one client at a time (MIT gss-client -ccount %d), %d rounds\n", h.cfg.serial, h.cfg.serialRounds)
		if err := h.serialRun(all, d); err != nil {
			return err
		}
	}
	if h.cfg.runs("handshake") {
		h.printf("== %s\n", loadHS0)
		for _, s := range all {
			mark := 0
			if s.lines != nil {
				mark = s.lines.mark()
			}
			r, err := h.measure(loadHS0, s, hsLoad("0")...)
			if err != nil {
				return err
			}
			if s == h.ours {
				h.latency, err = latencyFrom(s.lines.since(mark), r)
				if err != nil {
					return err
				}
				h.latency.ConcurrentClientCount = h.cfg.conc
				h.hold.RateUnloaded = r.OpsPerSec
			}
		}
	}
	loadFloor := fmt.Sprintf("architecture floor, %d clients", h.cfg.conc)
	if h.cfg.runs("floor") {
		h.printf("== %s\n", loadFloor)
		if err := h.floorRun(loadFloor, d, conc); err != nil {
			return err
		}
	}
	if h.cfg.runs("handshake") {
		h.printf("== %s\n", loadHS1)
		for _, s := range all {
			if _, err := h.measure(loadHS1, s, hsLoad("1")...); err != nil {
				return err
			}
		}
	}
	if h.cfg.runs("messages") {
		// MIT's gss-server serves one connection at a time, so one session
		// is the only per-message comparison it supports.
		for _, l := range []struct{ name, size string }{{load1K, "1024"}, {load64K, "65536"}} {
			h.printf("== %s\n", l.name)
			for _, s := range []*server{h.ours, h.mitNone} {
				if _, err := h.measure(l.name, s, "-mode", "session", "-c", "1", "-duration", d, "-size", l.size); err != nil {
					return err
				}
			}
		}
	}
	if h.cfg.runs("mit") {
		h.printf("== %s\n", loadMIT)
		if err := h.prepareMITClients(); err != nil {
			return err
		}
		for _, s := range all {
			if err := h.mitClients(loadMIT, s); err != nil {
				return err
			}
		}
	}
	if h.cfg.hold > 0 && h.cfg.runs("hold") {
		h.printf("== hold %d idle sessions on gss-acceptor\n", h.cfg.hold)
		if err := h.holdRun(d, conc); err != nil {
			return err
		}
	}
	return h.write(loadHS0, loadHS1, load1K, load64K, loadMIT, loadFloor)
}

// serveOnly prints the servers' ports and pids and the environment for
// clients, then waits for a signal.
func (h *harness) serveOnly(all []*server) error {
	fmt.Println("servers running; stop with Ctrl-C")
	for _, s := range all {
		fmt.Printf("  %-10s port %d pids %v\n", s.name, s.port, s.pids())
	}
	for _, kv := range h.env {
		if strings.HasPrefix(kv, "KRB5") {
			fmt.Printf("export %s\n", kv)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// bench runs gss-bench against s with the realm's credentials.
func (h *harness) bench(s *server, onLine func(string), args ...string) (*benchResult, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*h.cfg.duration+3*time.Minute)
	defer cancel()
	args = append(args, "-port", strconv.Itoa(s.port), "-progress", "0", "127.0.0.1", "host@localhost")
	return runBench(ctx, filepath.Join(h.cfg.binDir, "gss-bench"), h.env, h.logw, onLine, args...)
}

// measure runs one gss-bench load against s, sampling the server's CPU
// time around it.
func (h *harness) measure(load string, s *server, args ...string) (*row, error) {
	pids := s.pids()
	acc := s.cmd.Process.Pid
	before, accBefore := cpu(pids), cpu([]int{acc})
	r, raw, err := h.bench(s, nil, args...)
	if err != nil {
		return nil, err
	}
	after, accAfter := cpu(s.pids()), cpu([]int{acc})
	row := &row{Load: load, Server: s.name, Result: r, CPU: after - before, LoadAvg: loadAvg(),
		Errors: r.ErrorsTotal, MBPerSec: r.MBPerSec}
	if s.lines != nil {
		row.AcceptorCPU = accAfter - accBefore
	}
	if r.Mode == "session" {
		row.Ops, row.OpsPerSec = r.Messages, r.MessagesPerSec
	} else {
		row.Ops, row.OpsPerSec = r.Handshakes, r.HandshakesPerSec
	}
	h.rows = append(h.rows, *row)
	h.raw = append(h.raw, rawEntry{Load: load, Server: s.name, Bench: raw})
	h.printf("  %-10s %9.1f ops/s  %7.1f µs server CPU/op  p50 %.2f ms  p99 %.2f ms  errors %d  (load avg %.1f)\n",
		s.name, row.OpsPerSec, row.cpuPerOp(), r.Latency.P50, r.Latency.P99, r.ErrorsTotal, row.LoadAvg)
	if r.ErrorsTotal > 0 {
		h.printf("    last error: %s\n", r.LastError)
	}
	return row, nil
}

// prepareMITClients gives each MIT gss-client process its own copy of a
// credential cache that already holds the service ticket, so the parallel
// clients neither contend on one cache file's lock nor all ask the KDC.
func (h *harness) prepareMITClients() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "gss-client", "-q", "-port", strconv.Itoa(h.ours.port), "-mcount", "0",
		"127.0.0.1", "host@localhost", "warm")
	cmd.Env = h.env
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("gss-client warm-up: %w: %s", err, out)
	}
	src := strings.TrimPrefix(h.realm.CCache, "FILE:")
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	for i := range h.cfg.mitClients {
		if err := os.WriteFile(filepath.Join(h.dir, fmt.Sprintf("cc%d", i)), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// mitClients runs the parallel MIT gss-client processes against s and
// records contexts/s and server CPU per context.
func (h *harness) mitClients(load string, s *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pids := s.pids()
	before := cpu(pids)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, h.cfg.mitClients)
	clientCPU := make([]time.Duration, h.cfg.mitClients)
	for i := range h.cfg.mitClients {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, "gss-client", "-q", "-port", strconv.Itoa(s.port),
				"-ccount", strconv.Itoa(h.cfg.ccount), "-mcount", "0", "127.0.0.1", "host@localhost", "bench")
			cmd.Env = append(slices.Clone(h.env), "KRB5CCNAME=FILE:"+filepath.Join(h.dir, fmt.Sprintf("cc%d", i)))
			cmd.WaitDelay = 5 * time.Second
			out, err := cmd.CombinedOutput()
			if err != nil {
				errs[i] = fmt.Errorf("gss-client %d: %w: %s", i, err, strings.TrimSpace(string(out)))
			}
			if ps := cmd.ProcessState; ps != nil {
				clientCPU[i] = ps.UserTime() + ps.SystemTime()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	after := cpu(s.pids())
	var failed int64
	for _, err := range errs {
		if err != nil {
			failed++
			h.printf("    %v\n", err)
		}
	}
	// A failing gss-client stops at its first error: count only the
	// processes that finished every connection.
	ops := (int64(h.cfg.mitClients) - failed) * int64(h.cfg.ccount)
	var ccpu time.Duration
	for i, c := range clientCPU {
		if errs[i] == nil {
			ccpu += c
		}
	}
	r := row{Load: load, Server: s.name, CPU: after - before, Ops: ops, OpsPerSec: float64(ops) / elapsed.Seconds(),
		Elapsed: elapsed, ClientCPU: ccpu, Errors: failed, LoadAvg: loadAvg()}
	h.rows = append(h.rows, r)
	h.printf("  %-10s %9.1f contexts/s  %7.1f µs server CPU/context  %7.1f µs client CPU/context  %.2fs  failed processes %d  (load avg %.1f)\n",
		s.name, r.OpsPerSec, r.cpuPerOp(), r.clientCPUPerOp(), elapsed.Seconds(), failed, r.LoadAvg)
	return nil
}

// holdRun holds -hold idle sessions on our acceptor, samples the workers'
// RSS before and while they are held, and measures the handshake rate of a
// second load beside them.
func (h *harness) holdRun(d, conc string) error {
	workers := h.ours.workerPids()
	h.hold.Workers = len(workers)
	for _, p := range workers {
		if v, err := rss(p); err == nil {
			h.hold.BaseRSS += v
		}
	}
	var sampled sync.Once
	onLine := func(line string) {
		if strings.HasPrefix(line, "gss-bench: held ") {
			// Give the workers a moment to finish registering the last
			// sessions before sampling.
			time.Sleep(500 * time.Millisecond)
			sampled.Do(func() {
				for _, p := range h.ours.workerPids() {
					if v, err := rss(p); err == nil {
						h.hold.HeldRSS += v
					}
				}
			})
		}
	}
	r, raw, err := h.bench(h.ours, onLine, "-mode", "hold", "-hold", strconv.Itoa(h.cfg.hold), "-c", conc,
		"-duration", d, "-mcount", "0", "-settle", "1s")
	if err != nil {
		return err
	}
	h.raw = append(h.raw, rawEntry{Load: "hold", Server: h.ours.name, Bench: raw})
	if r.Hold != nil {
		h.hold.Requested, h.hold.Held, h.hold.Alive = r.Hold.Requested, r.Hold.Held, r.Hold.Alive
	}
	h.hold.RateHeld = r.HandshakesPerSec
	h.hold.Errors = r.ErrorsTotal
	h.printf("  held %d/%d (alive after load %d), worker RSS %.1f → %.1f MiB, handshakes/s %.1f while held vs %.1f unloaded\n",
		h.hold.Held, h.hold.Requested, h.hold.Alive, mib(h.hold.BaseRSS), mib(h.hold.HeldRSS), h.hold.RateHeld, h.hold.RateUnloaded)
	return nil
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// latencyFrom computes accept→worker-ACK percentiles from the acceptor's
// log lines of one load, and CPU per handshake from its row.
func latencyFrom(lines [][]byte, r *row) (latencyFigures, error) {
	var tot, hs, ho []time.Duration
	for _, l := range lines {
		x, ok, err := parseHandoff(l)
		if err != nil || !ok {
			continue
		}
		tot = append(tot, x.Handshake+x.Handoff)
		hs = append(hs, x.Handshake)
		ho = append(ho, x.Handoff)
	}
	if len(tot) == 0 {
		return latencyFigures{}, errors.New("no \"session handed off\" lines in the acceptor's log")
	}
	f := latencyFigures{N: len(tot), P50: quantile(tot, 0.5), P99: quantile(tot, 0.99), Max: quantile(tot, 1),
		HsP50: quantile(hs, 0.5), HsP99: quantile(hs, 0.99), HoP50: quantile(ho, 0.5), HoP99: quantile(ho, 0.99)}
	if r.Ops > 0 {
		f.AcceptorCPUPerHS = r.AcceptorCPU / time.Duration(r.Ops)
		f.TotalCPUPerHS = r.CPU / time.Duration(r.Ops)
	}
	return f, nil
}

// quantile returns the nearest-rank q-quantile of ds (sorted in place).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(q*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// machine describes where the run happened.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s", runtime.NumCPU(), model, kernel, runtime.Version())
}
