package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat. It
// is 100 on every Linux architecture Go supports (the kernel exports a
// fixed USER_HZ to user space whatever CONFIG_HZ is).
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat a benchmark needs.
type procStat struct {
	PPID  int
	Utime uint64 // clock ticks
	Stime uint64 // clock ticks
}

// parseStat parses the contents of /proc/PID/stat. The second field, the
// command name, is in parentheses and may itself contain spaces and
// parentheses, so the fields after it are found from the last ')'
// (proc(5)).
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("runner: stat: no command name")
	}
	// After ") ": state(3) ppid(4) pgrp(5) session(6) tty_nr(7) tpgid(8)
	// flags(9) minflt(10) cminflt(11) majflt(12) cmajflt(13) utime(14)
	// stime(15): utime is the 12th field after the name.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("runner: stat: %d fields after the name, want at least 13", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return procStat{}, fmt.Errorf("runner: stat: ppid: %w", err)
	}
	ut, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("runner: stat: utime: %w", err)
	}
	st, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("runner: stat: stime: %w", err)
	}
	return procStat{PPID: ppid, Utime: ut, Stime: st}, nil
}

// readStat reads /proc/PID/stat.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, fmt.Errorf("runner: %w", err)
	}
	return parseStat(b)
}

// cpuTime is a process's user+system CPU time.
func cpuTime(pid int) (time.Duration, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	return time.Duration(st.Utime+st.Stime) * time.Second / clockTicks, nil
}

// children returns the pids whose parent is ppid.
func children(ppid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err == nil && st.PPID == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// parseRSS returns VmRSS from the contents of /proc/PID/status, in bytes.
func parseRSS(b []byte) (int64, error) {
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("runner: status: VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("runner: status: VmRSS %q", f[0])
		}
		return kb << 10, nil
	}
	return 0, errors.New("runner: status: no VmRSS line")
}

// rss reads a process's resident set size in bytes.
func rss(pid int) (int64, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, fmt.Errorf("runner: %w", err)
	}
	return parseRSS(b)
}

// handoff is one "session handed off" line of the acceptor's JSON log.
type handoff struct {
	Handshake time.Duration
	Handoff   time.Duration
}

// parseHandoff parses one acceptor log line. ok is false for other lines.
// Durations are zap's string encoding ("1.2ms"); a bare number is taken
// as seconds, zap's other common encoding.
func parseHandoff(line []byte) (h handoff, ok bool, err error) {
	var m struct {
		Msg       string          `json:"msg"`
		Handshake json.RawMessage `json:"handshake"`
		Handoff   json.RawMessage `json:"handoff"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return handoff{}, false, fmt.Errorf("runner: log line: %w", err)
	}
	if m.Msg != "session handed off" {
		return handoff{}, false, nil
	}
	if h.Handshake, err = parseLogDuration(m.Handshake); err != nil {
		return handoff{}, false, fmt.Errorf("runner: log line: handshake: %w", err)
	}
	if h.Handoff, err = parseLogDuration(m.Handoff); err != nil {
		return handoff{}, false, fmt.Errorf("runner: log line: handoff: %w", err)
	}
	return h, true, nil
}

func parseLogDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 {
		return 0, errors.New("missing")
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, err
		}
		if d < 0 {
			return 0, fmt.Errorf("negative duration %q", s)
		}
		return d, nil
	}
	var secs float64
	if err := json.Unmarshal(raw, &secs); err != nil {
		return 0, fmt.Errorf("not a duration: %s", raw)
	}
	if secs < 0 || secs > 1e6 {
		return 0, fmt.Errorf("duration %v s out of range", secs)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

// loadAvg returns the first field of /proc/loadavg, or -1.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
