package main

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// The "one client at a time" section: a single MIT gss-client process
// making -serial connections one after another (-mcount 0), against each
// server in turn, for serialRounds rounds, and the architecture floor with
// one client. This is the load of a lightly used service, where what a
// connection costs is mostly waking processes up, not doing work.

// serialLoad names the rows of round k (1-based).
func serialLoad(n, k int) string {
	return fmt.Sprintf("one client at a time: MIT gss-client -ccount %d -mcount 0, round %d", n, k)
}

// serialFloorLoad names the floor rows of the section.
const serialFloorLoad = "architecture floor, one client at a time"

// serialRun measures every server with one MIT gss-client process, the
// servers alternating within each round so that drift in the machine's
// state falls on all of them alike.
func (h *harness) serialRun(all []*server, d string) error {
	for k := 1; k <= h.cfg.serialRounds; k++ {
		for _, s := range all {
			if err := h.serialClient(serialLoad(h.cfg.serial, k), s); err != nil {
				return err
			}
		}
	}
	return h.floorRunWith(serialFloorLoad, "-c", "1", "-duration", d)
}

// serialClient runs one MIT gss-client -ccount N -mcount 0 against s and
// records server CPU (and the acceptor's alone) and elapsed time per
// context.
func (h *harness) serialClient(load string, s *server) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	acc := s.cmd.Process.Pid
	before, accBefore := cpu(s.pids()), cpu([]int{acc})
	start := time.Now()
	cmd := exec.CommandContext(ctx, "gss-client", "-q", "-port", strconv.Itoa(s.port),
		"-ccount", strconv.Itoa(h.cfg.serial), "-mcount", "0", "127.0.0.1", "host@localhost", "bench")
	cmd.Env = h.env
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(start)
	after, accAfter := cpu(s.pids()), cpu([]int{acc})
	if err != nil {
		return fmt.Errorf("gss-client against %s: %w: %s", s.name, err, strings.TrimSpace(string(out)))
	}
	r := row{Load: load, Server: s.name, CPU: after - before, Ops: int64(h.cfg.serial),
		OpsPerSec: float64(h.cfg.serial) / elapsed.Seconds(), Elapsed: elapsed, LoadAvg: loadAvg()}
	if s.lines != nil {
		r.AcceptorCPU = accAfter - accBefore
	}
	h.rows = append(h.rows, r)
	h.printf("  %-10s %9.1f contexts/s  %7.1f µs elapsed/context  %7.1f µs server CPU/context  (load avg %.1f)\n",
		s.name, r.OpsPerSec, r.elapsedPerOp(), r.cpuPerOp(), r.LoadAvg)
	return nil
}

// elapsedPerOp is the wall-clock time per operation in microseconds.
func (r row) elapsedPerOp() float64 {
	if r.Ops == 0 {
		return 0
	}
	return float64(r.Elapsed.Microseconds()) / float64(r.Ops)
}

// serialTotals sums server's rows over the section's rounds.
func (h *harness) serialTotals(server string) *row {
	var t row
	found := false
	for k := 1; k <= h.cfg.serialRounds; k++ {
		if r := h.find(serialLoad(h.cfg.serial, k), server); r != nil {
			found = true
			t.CPU += r.CPU
			t.AcceptorCPU += r.AcceptorCPU
			t.Elapsed += r.Elapsed
			t.Ops += r.Ops
		}
	}
	if !found {
		return nil
	}
	t.Server = server
	if t.Elapsed > 0 {
		t.OpsPerSec = float64(t.Ops) / t.Elapsed.Seconds()
	}
	return &t
}

// serialSection renders the section from the rows serialRun recorded.
func (h *harness) serialSection() string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	n := h.cfg.serial
	p("\n## One client at a time\n\n")
	p("One MIT `gss-client -ccount %d -mcount 0` process against each server, the servers alternating, %d rounds. ", n, h.cfg.serialRounds)
	p("Server CPU is the server's processes (for gss-acceptor the acceptor and its workers) over the whole run; ")
	p("elapsed is the client's wall-clock time per context, connection set-up included. ")
	p("\"ours ÷ MIT\" below 1 means gss-acceptor is cheaper or faster.\n\n")
	p("| round | server | contexts/s | elapsed µs per context | server CPU µs per context | acceptor alone |\n|---|---|---:|---:|---:|---:|\n")
	for k := 1; k <= h.cfg.serialRounds; k++ {
		for _, name := range []string{"ours", "ours-b", "mit-none", "mit-rcache"} {
			r := h.find(serialLoad(n, k), name)
			if r == nil {
				continue
			}
			acc := "—"
			if r.AcceptorCPU > 0 {
				acc = fmt.Sprintf("%.0f", float64(r.AcceptorCPU.Microseconds())/float64(r.Ops))
			}
			p("| %d | %s | %.0f | %.0f | %.0f | %s |\n", k, name, r.OpsPerSec, r.elapsedPerOp(), r.cpuPerOp(), acc)
		}
	}
	o, none, rc := h.serialTotals("ours"), h.serialTotals("mit-none"), h.serialTotals("mit-rcache")
	cpuOf := func(x row) float64 { return x.cpuPerOp() }
	elOf := func(x row) float64 { return x.elapsedPerOp() }
	p("\nAll rounds, ours ÷ MIT: server CPU per context %s (vs default rcache), %s (vs rcache=none); ",
		ratio(val(o, cpuOf), val(rc, cpuOf)), ratio(val(o, cpuOf), val(none, cpuOf)))
	p("elapsed per context %s (vs default rcache), %s (vs rcache=none).\n",
		ratio(val(o, elOf), val(rc, elOf)), ratio(val(o, elOf), val(none, elOf)))
	if b := h.serialTotals("ours-b"); b != nil && o != nil {
		p("\nA/B, all rounds: ours-b (%s) ÷ ours, server CPU per context %s, acceptor alone %s, elapsed per context %s.\n",
			h.cfg.bLabel(), ratio(val(b, cpuOf), val(o, cpuOf)),
			ratio(float64(b.AcceptorCPU)/float64(b.Ops), float64(o.AcceptorCPU)/float64(o.Ops)), ratio(val(b, elOf), val(o, elOf)))
	}
	inline, handoff := h.find(serialFloorLoad, floorInline), h.find(serialFloorLoad, floorHandoff)
	if inline != nil || handoff != nil {
		p("\nThe architecture floor with one client (floor -client -c 1): %s server CPU per connection inline, %s with the handoff",
			fmtCPU(inline), fmtCPU(handoff))
		if o != nil {
			p("; gss-acceptor ÷ floor-handoff %s", ratio(val(o, cpuOf), val(handoff, cpuOf)))
		}
		p(".\n")
	}
	return b.String()
}

// bLabel describes what ours-b runs with: its configuration lines, its
// environment and its binaries' directory, those that are set.
func (c config) bLabel() string {
	var parts []string
	for line := range strings.SplitSeq(c.bConfig, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			parts = append(parts, line)
		}
	}
	parts = append(parts, c.bEnv...)
	if c.bBin != "" {
		parts = append(parts, c.bBin)
	}
	return strings.Join(parts, "; ")
}
