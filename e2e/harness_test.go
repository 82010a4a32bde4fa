// Package e2e runs gss-acceptor end to end: a real MIT KDC on 127.0.0.1,
// the real gss-acceptor and gss-worker binaries, real sockets, and real
// clients (MIT's gss-client and ours).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// binDir holds the binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "gss-e2e-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binDir = dir
		args := []string{"build", "-o", dir}
		if raceEnabled {
			// The daemon's own races matter most under real load.
			args = append(args, "-race")
		}
		args = append(args, "../cmd/gss-acceptor", "../cmd/gss-worker", "../cmd/gss-client", "../cmd/gss-tunnel")
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building binaries:", err)
			return 1
		}
		// Run the tests, then stop the shared realm.
		return testrealm.RunMain(m)
	}())
}

func bin(name string) string { return filepath.Join(binDir, name) }

// logLines collects a process's JSON log lines and lets tests wait for one.
type logLines struct {
	// keep, if set, selects the lines worth remembering; a long run that
	// kept every per-session line would fill the test's memory.
	keep func(line []byte) bool

	mu    sync.Mutex
	lines []map[string]any
	raw   bytes.Buffer
	cond  chan struct{}
}

func newLogLines() *logLines { return &logLines{cond: make(chan struct{})} }

func (l *logLines) consume(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if l.keep != nil && !l.keep(line) {
			continue
		}
		var m map[string]any
		l.mu.Lock()
		l.raw.Write(line)
		l.raw.WriteByte('\n')
		if json.Unmarshal(line, &m) == nil {
			l.lines = append(l.lines, m)
		}
		close(l.cond)
		l.cond = make(chan struct{})
		l.mu.Unlock()
	}
}

// find returns the log lines for which match is true.
func (l *logLines) find(match func(map[string]any) bool) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, m := range l.lines {
		if match(m) {
			out = append(out, m)
		}
	}
	return out
}

// wait blocks until n lines match, or fails the test after d.
func (l *logLines) wait(t testing.TB, d time.Duration, n int, what string, match func(map[string]any) bool) []map[string]any {
	t.Helper()
	deadline := time.After(d)
	for {
		l.mu.Lock()
		ch := l.cond
		l.mu.Unlock()
		if got := l.find(match); len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("timed out after %v waiting for %d log line(s): %s\nlog:\n%s", d, n, what, l.String())
			return nil
		}
	}
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.raw.String()
	if len(s) > 20000 {
		s = "...\n" + s[len(s)-20000:]
	}
	return s
}

func msgIs(msg string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["msg"] == msg }
}

// acceptor is a running gss-acceptor with its workers.
type acceptor struct {
	t      testing.TB
	cmd    *exec.Cmd
	addr   string
	port   int
	logs   *logLines
	done   chan struct{}
	status *os.ProcessState
	cfg    string
}

// acceptorOptions are config-file keys (YAML) added to the defaults below.
type acceptorOptions map[string]string

// startAcceptor runs gss-acceptor on 127.0.0.1 with 2 workers and waits
// until it is ready.
func startAcceptor(t testing.TB, r *testrealm.Realm, extra acceptorOptions) *acceptor {
	t.Helper()
	return startAcceptorLogs(t, r, extra, nil)
}

// startAcceptorLogs is startAcceptor keeping only the log lines keep
// selects (all when keep is nil).
func startAcceptorLogs(t testing.TB, r *testrealm.Realm, extra acceptorOptions, keep func([]byte) bool) *acceptor {
	t.Helper()
	keys := map[string]string{
		"listen":            `["127.0.0.1:0"]`,
		"keytab":            strconv.Quote(r.ServiceKeytab),
		"workers":           "2",
		"worker_path":       strconv.Quote(bin("gss-worker")),
		"log_level":         "debug",
		"log_format":        "json",
		"shutdown_timeout":  "20s",
		"handshake_timeout": "5s",
	}
	for k, v := range extra {
		keys[k] = v
	}
	var b strings.Builder
	for k, v := range keys {
		fmt.Fprintf(&b, "%s: %s\n", k, v)
	}
	cfg := filepath.Join(t.TempDir(), "gss-acceptor.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &acceptor{t: t, logs: newLogLines(), done: make(chan struct{}), cfg: cfg}
	a.logs.keep = keep
	a.cmd = exec.Command(bin("gss-acceptor"), "-config", cfg)
	a.cmd.Env = r.Env()
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.logs.consume(stderr)
		a.cmd.Wait()
		a.status = a.cmd.ProcessState
		close(a.done)
	}()
	t.Cleanup(func() { a.stop() })
	lines := a.logs.wait(t, 30*time.Second, 1, "listening", msgIs("listening"))
	addr, _ := lines[0]["address"].(string)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("bad listening address %q: %v", addr, err)
	}
	a.addr = addr
	a.port, _ = strconv.Atoi(port)
	a.logs.wait(t, 30*time.Second, 1, "ready", msgIs("ready"))
	return a
}

// stop sends SIGTERM and waits; it kills after 30 s.
func (a *acceptor) stop() {
	select {
	case <-a.done:
		return
	default:
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		a.cmd.Process.Kill()
		<-a.done
	}
	// No worker may outlive a stopped acceptor.
	for _, pid := range a.workerPIDs() {
		a.t.Errorf("worker %d still running after the acceptor stopped", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// wait waits for the acceptor to exit on its own.
func (a *acceptor) wait(d time.Duration) *os.ProcessState {
	select {
	case <-a.done:
		return a.status
	case <-time.After(d):
		a.t.Fatalf("acceptor did not exit within %v\nlog:\n%s", d, a.logs)
		return nil
	}
}

// workerPIDs lists the live gss-worker children of the acceptor.
// waitWorkerReplaced waits until the acceptor again has n workers, none of
// them victim, and fails t after d.
func (a *acceptor) waitWorkerReplaced(t testing.TB, victim, n int, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		pids := a.workerPIDs()
		if len(pids) == n && !slices.Contains(pids, victim) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("worker %d not replaced; workers now %v", victim, pids)
		}
	}
}

func (a *acceptor) workerPIDs() []int {
	return childrenNamed(a.cmd.Process.Pid, "gss-worker")
}

// childrenNamed lists the processes whose parent is ppid and whose command
// name is name, from /proc.
func childrenNamed(ppid int, name string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(stat)
		open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || close < open {
			continue
		}
		comm := s[open+1 : close]
		fields := strings.Fields(s[close+1:])
		if len(fields) < 2 || fields[0] == "Z" {
			continue
		}
		if p, _ := strconv.Atoi(fields[1]); p == ppid && comm == name {
			out = append(out, pid)
		}
	}
	return out
}

// fdCount counts a process's open descriptors.
func fdCount(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}

// mitClient runs MIT's gss-client against the acceptor and returns its
// output. env adds to the realm's environment.
func mitClient(t testing.TB, r *testrealm.Realm, port int, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"-port", strconv.Itoa(port)}, args...)
	cmd := exec.CommandContext(ctx, "gss-client", full...)
	cmd.Env = append(r.Env(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// goClient runs our gss-client binary.
func goClient(t testing.TB, r *testrealm.Realm, port int, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"-port", strconv.Itoa(port)}, args...)
	cmd := exec.CommandContext(ctx, bin("gss-client"), full...)
	cmd.Env = r.Env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// socketOwners returns the pids holding a descriptor for the server side
// of the TCP connection whose client end is local (127.0.0.1:port).
func socketOwners(t testing.TB, serverPort, clientPort int, pids []int) []int {
	t.Helper()
	inode := tcpInode(t, serverPort, clientPort)
	if inode == "" {
		t.Fatalf("no server-side socket for client port %d in /proc/net/tcp", clientPort)
	}
	want := "socket:[" + inode + "]"
	var owners []int
	for _, pid := range pids {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range ents {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); l == want {
				owners = append(owners, pid)
				break
			}
		}
	}
	return owners
}

// tcpInode finds the inode of the established socket with local port
// serverPort and remote port clientPort.
func tcpInode(t testing.TB, serverPort, clientPort int) string {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(":%04X", serverPort)
	remote := fmt.Sprintf(":%04X", clientPort)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		if strings.HasSuffix(f[1], local) && strings.HasSuffix(f[2], remote) && f[3] == "01" {
			return f[9]
		}
	}
	return ""
}

func init() {
	// Parallel clients need more than the default when -race slows us.
	if runtime.NumCPU() < 2 {
		runtime.GOMAXPROCS(2)
	}
}
