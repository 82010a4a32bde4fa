package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// replayVariant is one gss-acceptor configuration of the replay-cache
// comparison (bench/run -replay).
type replayVariant struct {
	name  string // server name in rows and the report
	title string
	extra func(dir, redisAddr string) string // YAML lines added to the config
}

var replayVariants = []replayVariant{
	{"memory", "memory (default)", func(string, string) string { return "" }},
	{"file", "file:, fsync interval (default)", func(dir, _ string) string {
		return fmt.Sprintf("replay_cache: %q\n", "file:"+filepath.Join(dir, "rcache-interval"))
	}},
	{"file-always", "file:, fsync always", func(dir, _ string) string {
		return fmt.Sprintf("replay_cache: %q\nreplay_cache_fsync: always\n", "file:"+filepath.Join(dir, "rcache-always"))
	}},
	{"redis", "redis:// on loopback (default)", func(_, addr string) string {
		return fmt.Sprintf("replay_cache: %q\n", "redis://"+addr+"/0")
	}},
	{"redis-batched", "redis:// on loopback, replay_cache_batch: true", func(_, addr string) string {
		return fmt.Sprintf("replay_cache: %q\nreplay_cache_batch: true\n", "redis://"+addr+"/0")
	}},
}

// replayFigures are one variant's measurements in one round.
type replayFigures struct {
	Variant      string        `json:"variant"`
	Round        int           `json:"round"`
	Handshakes   int64         `json:"handshakes"`
	PerSec       float64       `json:"handshakes_per_s"`
	CPU          time.Duration `json:"server_cpu_ns"` // acceptor + workers
	RedisCPU     time.Duration `json:"redis_cpu_ns"`  // redis-server during the load
	ClientP50    float64       `json:"client_p50_ms"` // gss-bench connect→done
	ClientP99    float64       `json:"client_p99_ms"`
	EstablishP50 time.Duration `json:"establish_p50_ns"` // accept→established, from the log
	Errors       int64         `json:"errors"`
	LastError    string        `json:"last_error,omitempty"`
}

func (f replayFigures) cpuPerHS() time.Duration {
	if f.Handshakes == 0 {
		return 0
	}
	return f.CPU / time.Duration(f.Handshakes)
}

// startRedisServer runs redis-server without persistence on a free
// loopback port.
func (h *harness) startRedisServer() (*server, string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, "", errors.New("redis-server not found (apt-get install redis-server)")
	}
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "no", "--dir", h.dir, "--protected-mode", "yes")
	out, err := os.Create(filepath.Join(h.dir, "redis-server.log"))
	if err != nil {
		return nil, "", err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, "", fmt.Errorf("runner: redis-server: %w", err)
	}
	s := &server{name: "redis-server", title: "redis-server", port: port, cmd: cmd, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		for range 500 {
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				ready <- nil
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		ready <- errors.New("runner: redis-server did not listen")
	}()
	s, err = s.awaitReady(cmd, out, ready, "redis-server")
	return s, addr, err
}

// replayRun compares the replay-cache backends: one gss-acceptor per
// variant (same workers, same realm), each under the same handshake load
// (-mcount 0, -c clients) in rounds, the variants in a rotated order in each
// round so that a drift of the machine's speed spreads over all of them.
// It writes replay.md (ratios to memory within each round, and pooled)
// and raw/replay-STAMP.json.
func (h *harness) replayRun() error {
	redis, redisAddr, err := h.startRedisServer()
	if err != nil {
		return err
	}
	defer redis.stop()
	var servers []*server
	for _, v := range replayVariants {
		s, err := startOursNamed(h.realm, h.cfg.binDir, h.dir, v.name, 2, 4096, v.extra(h.dir, redisAddr))
		if err != nil {
			return fmt.Errorf("gss-acceptor %s: %w", v.name, err)
		}
		defer s.stop()
		s.title = v.title
		servers = append(servers, s)
		h.printf("  %-12s port %d pids %v\n", s.name, s.port, s.pids())
	}
	for _, s := range servers {
		if _, _, err := h.bench(s, nil, "-mode", "handshake", "-c", "2", "-duration", "1s", "-mcount", "0"); err != nil {
			return fmt.Errorf("warm-up against %s: %w", s.name, err)
		}
	}
	d, conc := h.cfg.duration.String(), strconv.Itoa(h.cfg.conc)
	var figs []replayFigures
	for round := range h.cfg.replayRounds {
		h.printf("== replay cache round %d of %d\n", round+1, h.cfg.replayRounds)
		for i := range servers {
			s := servers[(i+round)%len(servers)]
			mark := s.lines.mark()
			rb := cpu([]int{redis.cmd.Process.Pid})
			r, err := h.measure(fmt.Sprintf("replay round %d", round+1), s,
				"-mode", "handshake", "-c", conc, "-duration", d, "-mcount", "0")
			if err != nil {
				return err
			}
			f := replayFigures{Variant: s.name, Round: round + 1, Handshakes: r.Ops, PerSec: r.OpsPerSec, CPU: r.CPU,
				RedisCPU: cpu([]int{redis.cmd.Process.Pid}) - rb, ClientP50: r.Result.Latency.P50,
				ClientP99: r.Result.Latency.P99, Errors: r.Errors, LastError: r.Result.LastError}
			if lat, err := latencyFrom(s.lines.since(mark), r); err == nil {
				f.EstablishP50 = lat.HsP50
			}
			figs = append(figs, f)
		}
	}
	return h.writeReplay(servers, figs)
}

// writeReplay renders replay.md and the raw JSON.
func (h *harness) writeReplay(servers []*server, figs []replayFigures) error {
	if err := os.MkdirAll(filepath.Join(h.cfg.outDir, "raw"), 0o755); err != nil {
		return err
	}
	stamp := h.started.UTC().Format("20060102T150405Z")
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Replay cache backends\n\n")
	p("Generated by `bench/run -replay -rounds %d -d %v -c %d` on %s (%s). Machine: %s. ",
		h.cfg.replayRounds, h.cfg.duration, h.cfg.conc, h.started.UTC().Format(time.RFC3339), stamp, machine())
	p("Load average (1 min) at start %.1f, at end %.1f.\n\n", h.loadBefore, loadAvg())
	p("One gss-acceptor (2 workers) per backend, same realm and keytab; each round runs `gss-bench -mode handshake -mcount 0 -c %d -duration %v` ", h.cfg.conc, h.cfg.duration)
	p("against every backend, in an order rotated each round. CPU is utime+stime of the acceptor and its workers; ")
	p("redis-server's own CPU is shown apart. Latency p50 is gss-bench's (connect to close); ")
	p("establish p50 is accept→established from the acceptor's log.\n\n")

	base := func(round int) *replayFigures {
		for i := range figs {
			if figs[i].Variant == "memory" && figs[i].Round == round {
				return &figs[i]
			}
		}
		return nil
	}
	p("| backend | handshakes/s | CPU µs/handshake | ×memory CPU (per round) | redis-server CPU µs/handshake | p50 ms | +p50 vs memory (per round) | establish p50 | errors |\n")
	p("|---|---:|---:|---|---:|---:|---|---:|---:|\n")
	for _, s := range servers {
		var hs int64
		var cpuT, redisT time.Duration
		var rate float64
		var p50s []float64
		var est []time.Duration
		var ratios, dp50 []string
		var errs int64
		for _, f := range figs {
			if f.Variant != s.name {
				continue
			}
			hs += f.Handshakes
			cpuT += f.CPU
			redisT += f.RedisCPU
			rate += f.PerSec
			p50s = append(p50s, f.ClientP50)
			est = append(est, f.EstablishP50)
			errs += f.Errors
			if m := base(f.Round); m != nil && m.cpuPerHS() > 0 {
				ratios = append(ratios, fmt.Sprintf("%.2f", float64(f.cpuPerHS())/float64(m.cpuPerHS())))
				dp50 = append(dp50, fmt.Sprintf("%+.2f", f.ClientP50-m.ClientP50))
			}
		}
		n := len(p50s)
		if n == 0 || hs == 0 {
			continue
		}
		slices.Sort(p50s)
		slices.Sort(est)
		p("| %s | %.0f | %.0f | %s | %.1f | %.2f | %s | %s | %d |\n", s.title, rate/float64(n),
			float64((cpuT/time.Duration(hs)).Nanoseconds())/1e3, strings.Join(ratios, " / "),
			float64((redisT/time.Duration(hs)).Nanoseconds())/1e3, p50s[n/2], strings.Join(dp50, " / "),
			fmtDur(est[n/2]), errs)
	}
	p("\nErrors: ")
	var errs []string
	for _, f := range figs {
		if f.Errors > 0 {
			errs = append(errs, fmt.Sprintf("%s round %d: %d (last: %s)", f.Variant, f.Round, f.Errors, f.LastError))
		}
	}
	if len(errs) == 0 {
		p("none.\n")
	} else {
		p("%s.\n", strings.Join(errs, "; "))
	}
	if err := os.WriteFile(filepath.Join(h.cfg.outDir, "replay.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(figs, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(h.cfg.outDir, "raw", "replay-"+stamp+".json"), raw, 0o644); err != nil {
		return err
	}
	h.printf("\n%s", b.String())
	return nil
}
