package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The architecture floor (bench/floor) mimics gss-acceptor's socket
// choreography without Kerberos: these sizes stand for an AP-REQ, an
// AP-REP and an exported context token, and the worker count matches
// startOurs.
const (
	floorWorkers = 2
	floorReq     = 620
	floorReply   = 160
	floorToken   = 200
)

// Server names of the floor rows.
const (
	floorInline  = "floor-inline"
	floorHandoff = "floor-handoff"
)

// parseListening parses floor -serve's readiness line, "listening
// 127.0.0.1:PORT", and returns the port.
func parseListening(line string) (int, error) {
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		return 0, fmt.Errorf("runner: floor: not a listening line: %q", line)
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("runner: floor: listening line: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return 0, fmt.Errorf("runner: floor: listening port %q", p)
	}
	return port, nil
}

// startFloor runs floor -serve, in handoff mode with floorWorkers workers
// or inline, and waits for its "listening" line. Its stderr goes to a log
// file in dir.
func startFloor(binDir, dir string, inline bool) (*server, error) {
	name, title := floorHandoff, fmt.Sprintf("floor (handoff to %d workers)", floorWorkers)
	args := []string{"-serve", "-port", "0", "-reply", strconv.Itoa(floorReply)}
	if inline {
		name, title = floorInline, "floor (inline, no handoff)"
		args = append(args, "-inline")
	} else {
		args = append(args, "-workers", strconv.Itoa(floorWorkers), "-token", strconv.Itoa(floorToken))
	}
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("runner: %w", err)
	}
	cmd := exec.Command(filepath.Join(binDir, "floor"), args...)
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("runner: floor: %w", err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("runner: floor: %w", err)
	}
	s := &server{name: name, title: title, cmd: cmd, done: make(chan struct{}), withChildren: true}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, err := parseListening(sc.Text()); err == nil {
				s.port = port
				ready <- nil
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- errors.New("runner: floor exited during startup (see " + name + ".log)")
	}()
	return s.awaitReady(cmd, logFile, ready, "floor")
}

// floorRun measures the floor inline and with the handoff, one server at
// a time: start, warm up for a second, run load with conc clients for d,
// stop.
func (h *harness) floorRun(load, d, conc string) error {
	return h.floorRunWith(load, "-c", conc, "-duration", d)
}

// floorRunWith is floorRun with the measured load's floor -client
// arguments.
func (h *harness) floorRunWith(load string, args ...string) error {
	for _, inline := range []bool{true, false} {
		s, err := startFloor(h.cfg.binDir, h.dir, inline)
		if err != nil {
			return err
		}
		h.printf("  %-13s port %d pids %v\n", s.name, s.port, s.pids())
		_, _, err = h.floorClient(s, "-c", "2", "-duration", "1s")
		if err != nil {
			err = fmt.Errorf("warm-up against %s: %w", s.name, err)
		} else {
			err = h.measureFloor(load, s, args...)
		}
		s.stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// floorClient runs floor -client against s.
func (h *harness) floorClient(s *server, args ...string) (*benchResult, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*h.cfg.duration+3*time.Minute)
	defer cancel()
	args = append([]string{"-client", "-port", strconv.Itoa(s.port), "-req", strconv.Itoa(floorReq)}, args...)
	return runBench(ctx, filepath.Join(h.cfg.binDir, "floor"), os.Environ(), h.logw, nil, args...)
}

// measureFloor runs one floor -client load against s, sampling the CPU
// time of the server and its workers around it.
func (h *harness) measureFloor(load string, s *server, args ...string) error {
	before := cpu(s.pids())
	r, raw, err := h.floorClient(s, args...)
	if err != nil {
		return err
	}
	after := cpu(s.pids())
	fr := row{Load: load, Server: s.name, Result: r, CPU: after - before, Ops: r.Handshakes,
		OpsPerSec: r.HandshakesPerSec, Errors: r.ErrorsTotal, LoadAvg: loadAvg()}
	h.rows = append(h.rows, fr)
	h.raw = append(h.raw, rawEntry{Load: load, Server: s.name, Bench: raw})
	h.printf("  %-13s %9.1f connections/s  %7.1f µs server CPU/connection  errors %d  (load avg %.1f)\n",
		s.name, fr.OpsPerSec, fr.cpuPerOp(), r.ErrorsTotal, fr.LoadAvg)
	if r.ErrorsTotal > 0 {
		h.printf("    last error: %s\n", r.LastError)
	}
	return nil
}

// floorSection renders the report's "Architecture floor" section from the
// floor rows and the -mcount 0 rows of gss-acceptor and MIT rcache=none;
// any of them may be missing.
func floorSection(inline, handoff, ours, mit *row, conc int) string {
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("\n## Architecture floor\n\n")
	p("`bench/floor` repeats gss-acceptor's socket choreography with no Kerberos, no logging and no GSS work. ")
	p("Its client sends what gss-bench -mcount 0 sends (the opener and a %d-byte context frame in one write, then a NOOP) ", floorReq)
	p("and waits for the server to close. The server answers with one %d-byte frame; with the handoff it then passes a ", floorReply)
	p("%d-byte token and the socket (SCM_RIGHTS, SOCK_SEQPACKET) to one of %d worker processes, round robin, ", floorToken, floorWorkers)
	p("and closes its copy on the worker's ACK; the worker reads until the NOOP, closes and reports the session's end ")
	p("as gss-worker does, just ahead of its next ACK or after 20 ms. ")
	p("Its processes run as gss-acceptor's do by default: the steady sysmon (GODEBUG schedtrace, inherited by the workers), ")
	p("the acceptor on half the CPUs (acceptor_cpus), each worker on one, and TCP_DEFER_ACCEPT on the listener. ")
	p("Inline, the accepting process serves the connection itself. Same %d clients and duration as the handshake loads; ", conc)
	p("server CPU includes the workers.\n\n")
	p("| server | connections/s | server CPU µs per connection |\n|---|---:|---:|\n")
	for _, r := range []struct {
		title string
		row   *row
	}{
		{"floor, inline (no handoff)", inline},
		{fmt.Sprintf("floor, handoff to %d workers", floorWorkers), handoff},
		{"gss-acceptor (2 workers), handshake -mcount 0", ours},
		{"MIT gss-server rcache=none, handshake -mcount 0", mit},
	} {
		p("| %s | %s | %s |\n", r.title, fmtRate(r.row, "/s"), fmtCPU(r.row))
	}
	o, f, i := val(ours, row.cpuPerOp), val(handoff, row.cpuPerOp), val(inline, row.cpuPerOp)
	p("\ngss-acceptor ÷ floor-handoff, server CPU per connection: %s", ratio(o, f))
	if o > 0 && f > 0 {
		p(" (the floor is %.0f %% of gss-acceptor's CPU per handshake)", pct(f, o))
	}
	p(".")
	if f > 0 && i > 0 {
		p(" The handoff itself (floor-handoff − floor-inline) costs %.0f µs per connection.", f-i)
	}
	p("\n")
	return b.String()
}
