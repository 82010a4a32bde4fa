package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// startTimeout bounds the wait for a server's readiness line.
const startTimeout = 30 * time.Second

// server is one gss-sample server under test.
type server struct {
	name  string // "ours", "mit-none", "mit-rcache"
	title string // for the report
	port  int
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has been waited for
	// lines holds our acceptor's log lines (nil for MIT and the floor).
	lines *lineSink
	// withChildren counts the child processes (workers) as part of the
	// server: set for our acceptor and the floor.
	withChildren bool
}

// pids returns the processes whose CPU counts as the server's: the process
// itself and, for our acceptor and the floor, its workers.
func (s *server) pids() []int {
	if s.cmd.Process == nil {
		return nil
	}
	p := s.cmd.Process.Pid
	out := []int{p}
	if s.withChildren {
		out = append(out, children(p)...)
	}
	return out
}

// workerPids returns our acceptor's workers.
func (s *server) workerPids() []int {
	if s.lines == nil || s.cmd.Process == nil {
		return nil
	}
	return children(s.cmd.Process.Pid)
}

// cpu sums the CPU time of pids, skipping any that have exited.
func cpu(pids []int) time.Duration {
	var t time.Duration
	for _, p := range pids {
		if c, err := cpuTime(p); err == nil {
			t += c
		}
	}
	return t
}

// stop asks the server to exit and waits, escalating to SIGKILL.
func (s *server) stop() {
	if s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// lineSink keeps the acceptor's log lines and copies them to a file.
type lineSink struct {
	mu    sync.Mutex
	lines [][]byte
	file  io.Writer
}

func (l *lineSink) add(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, append([]byte(nil), b...))
	l.file.Write(append(b, '\n'))
}

// mark returns the number of lines so far.
func (l *lineSink) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// since returns the lines after mark m.
func (l *lineSink) since(m int) [][]byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines[m:]
}

// startOurs runs gss-acceptor with two workers on a loopback port and waits
// for its "ready" log line.
func startOurs(realm *testrealm.Realm, binDir, dir string, workers, maxPerWorker int, extra string) (*server, error) {
	return startOursNamed(realm, binDir, dir, "ours", workers, maxPerWorker, extra)
}

// startOursNamed is startOurs for an instance called name (its config and
// log files are named after it; "ours" keeps the plain names), with extra
// YAML lines appended to the configuration.
func startOursNamed(realm *testrealm.Realm, binDir, dir, name string, workers, maxPerWorker int, extra string) (*server, error) {
	return startOursEnv(realm, binDir, dir, name, workers, maxPerWorker, extra, nil)
}

// startOursEnv is startOursNamed with env added to the acceptor's
// environment (which its workers inherit in part: GODEBUG, GOGC, ...).
func startOursEnv(realm *testrealm.Realm, binDir, dir, name string, workers, maxPerWorker int, extra string, env []string) (*server, error) {
	base := "gss-acceptor"
	if name != "ours" {
		base += "-" + name
	}
	cfgPath := filepath.Join(dir, base+".yaml")
	cfg := fmt.Sprintf(`listen: ["127.0.0.1:0"]
keytab: %q
workers: %d
worker_path: %q
max_sessions_per_worker: %d
idle_timeout: 10m
log_format: json
log_level: info
shutdown_timeout: 5s
`, realm.ServiceKeytab, workers, filepath.Join(binDir, "gss-worker"), maxPerWorker) + extra
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, base+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(binDir, "gss-acceptor"), "-config", cfgPath)
	cmd.Env = append(realm.Env(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("runner: gss-acceptor: %w", err)
	}
	s := &server{name: name, title: fmt.Sprintf("gss-acceptor (%d workers)", workers), cmd: cmd, done: make(chan struct{}),
		lines: &lineSink{file: logFile}, withChildren: true}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		signalled := false
		for sc.Scan() {
			line := sc.Bytes()
			s.lines.add(line)
			if signalled {
				continue
			}
			var m map[string]any
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			switch m["msg"] {
			case "listening":
				addr, _ := m["address"].(string)
				if i := strings.LastIndexByte(addr, ':'); i >= 0 {
					s.port, _ = strconv.Atoi(addr[i+1:])
				}
			case "ready":
				signalled = true
				if s.port == 0 {
					ready <- errors.New("runner: gss-acceptor is ready but logged no address")
				} else {
					ready <- nil
				}
			case "cannot start", "cannot start workers":
				signalled = true
				ready <- fmt.Errorf("runner: gss-acceptor: %v: %v", m["msg"], m["error"])
			}
		}
		if !signalled {
			ready <- errors.New("runner: gss-acceptor exited during startup")
		}
	}()
	return s.awaitReady(cmd, logFile, ready, "gss-acceptor")
}

// startMIT runs MIT's gss-server on a free port: with KRB5RCACHETYPE=none
// when noRcache, else with its default replay cache (file2 under
// KRB5RCACHEDIR, inside the realm directory). gss-server binds its port
// itself, so a port picked free can be taken in between; a few attempts
// cover that.
func startMIT(realm *testrealm.Realm, dir string, noRcache bool) (*server, error) {
	name, title := "mit-rcache", "MIT gss-server (default rcache)"
	if noRcache {
		name, title = "mit-none", "MIT gss-server (KRB5RCACHETYPE=none)"
	}
	var lastErr error
	for range 4 {
		s, err := tryStartMIT(realm, dir, name, title, noRcache)
		if err == nil {
			return s, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func tryStartMIT(realm *testrealm.Realm, dir, name, title string, noRcache bool) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	// -logfile must name a real file: "-logfile /dev/null" disables the
	// display stream, which gss-server then writes to unchecked
	// (MIT's src/appl/gss-sample/gss-server.c).
	logPath := filepath.Join(dir, name+".log")
	out, err := os.OpenFile(filepath.Join(dir, name+".stdout"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("gss-server", "-port", strconv.Itoa(port), "-keytab", realm.ServiceKeytab,
		"-logfile", logPath, "host@localhost")
	cmd.Env = realm.Env()
	if noRcache {
		cmd.Env = append(cmd.Env, "KRB5RCACHETYPE=none")
	}
	cmd.Stdout = out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		out.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("runner: gss-server: %w", err)
	}
	s := &server{name: name, title: title, port: port, cmd: cmd, done: make(chan struct{})}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var tail []string
		for sc.Scan() {
			if strings.Contains(sc.Text(), "starting...") {
				ready <- nil
				io.Copy(io.Discard, stderr)
				return
			}
			tail = append(tail, sc.Text())
		}
		ready <- fmt.Errorf("runner: gss-server exited during startup: %s", strings.Join(tail, "; "))
	}()
	return s.awaitReady(cmd, out, ready, "gss-server")
}

// awaitReady reaps cmd in the background (closing its log file when it
// exits) and waits for the startup verdict on ready, stopping the server
// when it fails or does not become ready within startTimeout.
func (s *server) awaitReady(cmd *exec.Cmd, log io.Closer, ready <-chan error, name string) (*server, error) {
	go func() {
		cmd.Wait()
		log.Close()
		close(s.done)
	}()
	select {
	case err := <-ready:
		if err != nil {
			s.stop()
			return nil, err
		}
	case <-time.After(startTimeout):
		s.stop()
		return nil, fmt.Errorf("runner: %s not ready after %v", name, startTimeout)
	}
	return s, nil
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runBench runs the load generator bin (gss-bench, or floor -client) with
// -json and returns its result; a failed exit status is ignored when the
// JSON result is there. onLine, if set, sees every stderr line as it
// arrives.
func runBench(ctx context.Context, bin string, env []string, logw io.Writer, onLine func(string), args ...string) (*benchResult, []byte, error) {
	name := filepath.Base(bin)
	cmd := exec.CommandContext(ctx, bin, append([]string{"-json"}, args...)...)
	cmd.Env = env
	cmd.WaitDelay = 5 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, err
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	fmt.Fprintf(logw, "$ %s -json %s\n", name, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("runner: %s: %w", name, err)
	}
	var tail []string
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		line := sc.Text()
		fmt.Fprintln(logw, "  ", line)
		tail = append(tail[max(0, len(tail)-4):], line)
		if onLine != nil {
			onLine(line)
		}
	}
	werr := cmd.Wait()
	raw := []byte(stdout.String())
	var r benchResult
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, raw, fmt.Errorf("runner: %s %s: %v (%s)", name, strings.Join(args, " "), errors.Join(werr, err), strings.Join(tail, "; "))
	}
	return &r, raw, nil
}
