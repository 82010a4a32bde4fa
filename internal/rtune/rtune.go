// Package rtune sets the Go runtime up the way the daemon's processes run
// best (ARCHITECTURE.md §11): today, the steady
// system monitor.
//
// The Go runtime's system monitor (sysmon) goes into a deep sleep whenever
// every P of the process is idle, and the next system call any goroutine
// makes wakes it again with its polling interval reset to 20 µs. A
// lightly loaded acceptor goes idle between connections, so every
// connection paid for waking sysmon and for the dozen or so 20 µs naps that
// followed, each a context switch: a sixth of the acceptor's CPU per
// connection, one client at a time. With GODEBUG schedtrace set, sysmon
// never takes the deep sleep: it settles on its longest interval (10 ms)
// and stays there, so it wakes 100 times a second whether the process is
// busy or idle, and not per connection.
//
// The setting is read by the runtime at start, so the acceptor re-executes
// itself with it (Reexec) and its workers inherit it with GODEBUG. Its side
// effects: each process prints one "SCHED ..." line to standard error
// every SchedtracePeriod (about 24.8 days) of the host's uptime, so once
// when it starts on a host up longer than that (the acceptor, and each
// worker it starts), and a fatal runtime error prints the scheduler's state
// before the stack traces.
package rtune

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// Schedtrace is the GODEBUG setting that keeps sysmon steady: the largest
// schedtrace period the runtime accepts (an int32 of milliseconds).
const Schedtrace = "schedtrace=2147483647"

// SchedtracePeriod is how often the runtime prints its "SCHED" line with
// Schedtrace set, in days (2^31-1 ms).
const SchedtracePeriod = 24.8

// WithSteadySysmon returns env with Schedtrace added to GODEBUG. An
// environment whose GODEBUG already sets schedtrace (the operator's
// choice) is returned as it is, with changed false.
func WithSteadySysmon(env []string) (out []string, changed bool) {
	out = make([]string, 0, len(env)+1)
	found := false
	for _, kv := range env {
		v, ok := strings.CutPrefix(kv, "GODEBUG=")
		if !ok {
			out = append(out, kv)
			continue
		}
		if found {
			continue // a duplicate: the first one is what the runtime reads
		}
		found = true
		if _, set := schedtrace(v); set {
			return env, false
		}
		if v == "" {
			kv = "GODEBUG=" + Schedtrace
		} else {
			kv = "GODEBUG=" + v + "," + Schedtrace
		}
		out = append(out, kv)
	}
	if !found {
		out = append(out, "GODEBUG="+Schedtrace)
	}
	return out, true
}

// Steady reports whether this process runs with a steady sysmon: its
// GODEBUG sets schedtrace to a positive period.
func Steady() bool {
	v, set := schedtrace(os.Getenv("GODEBUG"))
	n, err := strconv.Atoi(v)
	return set && err == nil && n > 0
}

// schedtrace returns the value of the first schedtrace setting in a
// GODEBUG value, and whether there is one.
func schedtrace(godebug string) (value string, set bool) {
	for s := range strings.SplitSeq(godebug, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(s), "schedtrace="); ok {
			return v, true
		}
	}
	return "", false
}

// Reexec re-executes the running program with the same arguments and
// WithSteadySysmon applied to its environment, keeping its process ID
// (systemd's LISTEN_PID and the unit's main PID stay right, and inherited
// descriptors stay open). It returns nil without doing anything when the
// environment already has the setting; otherwise it returns only if the
// exec failed. Call it before the process has opened anything of its
// own.
func Reexec() error {
	env, changed := WithSteadySysmon(os.Environ())
	if !changed {
		return nil
	}
	// /proc/self/exe is the running binary even if its path was replaced
	// (a package upgrade) since it started.
	return syscall.Exec("/proc/self/exe", os.Args, env)
}
