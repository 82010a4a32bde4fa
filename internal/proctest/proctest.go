// Package proctest holds process helpers for the tests of the supervisor
// and the end-to-end suite. Only tests import it; no binary links it.
package proctest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Stop sends SIGSTOP to pid and waits until every one of its threads is
// stopped. kill(2) only queues SIGSTOP: the group stop begins when one
// thread takes the signal, and on a loaded machine another thread (say the
// one reading a worker's channel) can run meanwhile, read a HANDOFF and
// ACK it.
func Stop(t testing.TB, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !AllThreadsStopped(t, pid); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("process %d not stopped 10s after SIGSTOP", pid)
		}
	}
}

// AllThreadsStopped reports whether every thread of pid is in state T
// (stopped) or t (traced), from /proc/PID/task/*/stat.
func AllThreadsStopped(t testing.TB, pid int) bool {
	t.Helper()
	stats, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(stats) == 0 {
		t.Fatalf("threads of %d: %v", pid, err)
	}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			return false // a thread that just exited; look again
		}
		// The state follows the command name, which may hold ") ".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
			return false
		}
	}
	return true
}
