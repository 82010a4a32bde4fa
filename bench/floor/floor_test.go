package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/rtune"
)

// workerEnv makes the test binary run the worker role (see TestMain).
const workerEnv = "FLOOR_TEST_WORKER"

// TestMain lets the test binary serve as its own worker process.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := runWorker(context.Background(), workerChannelFD, endFlushDelay); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    options
		wantErr string
	}{
		{"serve defaults", []string{"-serve", "-port", "0"},
			options{role: roleServe, port: 0, workers: 2, reply: 160, token: 200, steadySysmon: true, deferAccept: time.Second, conc: 16, duration: 8 * time.Second, req: 620}, ""},
		{"serve inline", []string{"-serve", "-port", "9000", "-inline", "-reply", "0", "-token", "8"},
			options{role: roleServe, port: 9000, inline: true, workers: 2, reply: 0, token: 8, steadySysmon: true, deferAccept: time.Second, conc: 16, duration: 8 * time.Second, req: 620}, ""},
		{"client", []string{"-client", "-port", "9000", "-c", "32", "-duration", "1h", "-n", "5", "-req", "0", "-json"},
			options{role: roleClient, port: 9000, workers: 2, reply: 160, token: 200, steadySysmon: true, deferAccept: time.Second, conc: 32, duration: time.Hour, n: 5, json: true}, ""},
		{"worker", []string{"-worker"},
			options{role: roleWorker, port: -1, workers: 2, reply: 160, token: 200, steadySysmon: true, deferAccept: time.Second, conc: 16, duration: 8 * time.Second, req: 620}, ""},
		{"serve the old way", []string{"-serve", "-port", "0", "-steady-sysmon=false", "-acceptor-cpus", "2", "-defer-accept", "0"},
			options{role: roleServe, port: 0, workers: 2, reply: 160, token: 200, acceptorCPUs: 2, conc: 16, duration: 8 * time.Second, req: 620}, ""},
		{"no role", []string{"-port", "1"}, options{}, "exactly one"},
		{"two roles", []string{"-serve", "-client", "-port", "1"}, options{}, "exactly one"},
		{"serve without port", []string{"-serve"}, options{}, "-port -1"},
		{"client port 0", []string{"-client", "-port", "0"}, options{}, "-port 0"},
		{"port too big", []string{"-serve", "-port", "65536"}, options{}, "-port 65536"},
		{"inline on client", []string{"-client", "-port", "1", "-inline"}, options{}, "-inline is for -serve"},
		{"json on serve", []string{"-serve", "-port", "0", "-json"}, options{}, "-json is for -client"},
		{"port on worker", []string{"-worker", "-port", "1"}, options{}, "-port is not for -worker"},
		{"duration too long", []string{"-client", "-port", "1", "-duration", "61m"}, options{}, "-duration"},
		{"duration zero", []string{"-client", "-port", "1", "-duration", "0s"}, options{}, "-duration"},
		{"no clients", []string{"-client", "-port", "1", "-c", "0"}, options{}, "-c 0"},
		{"negative n", []string{"-client", "-port", "1", "-n", "-1"}, options{}, "-n -1"},
		{"request too big", []string{"-client", "-port", "1", "-req", "1048577"}, options{}, "-req"},
		{"no workers", []string{"-serve", "-port", "0", "-workers", "0"}, options{}, "-workers 0"},
		{"token shorter than an ID", []string{"-serve", "-port", "0", "-token", "7"}, options{}, "-token 7"},
		{"token too big", []string{"-serve", "-port", "0", "-token", "65537"}, options{}, "-token 65537"},
		{"reply negative", []string{"-serve", "-port", "0", "-reply", "-1"}, options{}, "-reply -1"},
		{"acceptor cpus negative", []string{"-serve", "-port", "0", "-acceptor-cpus", "-1"}, options{}, "-acceptor-cpus -1"},
		{"acceptor cpus too many", []string{"-serve", "-port", "0", "-acceptor-cpus", "1025"}, options{}, "-acceptor-cpus 1025"},
		{"defer accept negative", []string{"-serve", "-port", "0", "-defer-accept", "-1s"}, options{}, "-defer-accept -1s"},
		{"defer accept on client", []string{"-client", "-port", "1", "-defer-accept", "1s"}, options{}, "-defer-accept is for -serve"},
		{"steady sysmon on worker", []string{"-worker", "-steady-sysmon=false"}, options{}, "-steady-sysmon is for -serve"},
		{"stray argument", []string{"-worker", "x"}, options{}, "unexpected arguments"},
		{"unknown flag", []string{"-serve", "-bogus"}, options{}, "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseOptions(%q) = %+v, %v; want an error containing %q", tt.args, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseOptions(%q) = %+v, %v; want %+v", tt.args, got, err, tt.want)
			}
		})
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// roundTrip runs a server with cfg and 200 client connections against it,
// checks the counts and that nothing leaked, and returns the server.
func roundTrip(t *testing.T, cfg serveConfig) *server {
	t.Helper()
	// The first network use opens the poller's descriptors for good.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	ignore := goleak.IgnoreCurrent()
	fds := openFDs(t)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := listen(ctx, "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.serve(serveCtx) }()

	const conns = 200
	r := runClient(ctx, clientConfig{addr: s.Addr().String(), conc: 8, duration: 45 * time.Second, n: conns, req: 620})
	stop()
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if r.ErrorsTotal != 0 || r.Handshakes != conns {
		t.Errorf("client: %d connections, %d errors (last %q); want %d, none", r.Handshakes, r.ErrorsTotal, r.LastError, conns)
	}
	if st := s.stats(); st.Served != conns || st.Failed != 0 {
		t.Errorf("server: %d served, %d failed (last %v); want %d, none", st.Served, st.Failed, st.LastError, conns)
	}
	if got := openFDs(t); got != fds {
		t.Errorf("%d open descriptors after the run, %d before", got, fds)
	}
	goleak.VerifyNone(t, ignore)
	return s
}

// testWorker returns a workerCmd that re-runs the test binary exe as a
// worker. Under the race detector the worker would sleep a second before
// exiting (GORACE atexit_sleep_ms); it is told not to.
func testWorker(exe string) func() *exec.Cmd {
	return func() *exec.Cmd {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), workerEnv+"=1", "GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
		return cmd
	}
}

func TestFloorRoundTrip(t *testing.T) {
	roundTrip(t, serveConfig{inline: true, reply: 160, token: 200})
}

func TestFloorHandoff(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("no executable to re-run as a worker: %v", err)
	}
	s := roundTrip(t, serveConfig{workers: 2, reply: 160, token: 200, deferAccept: time.Second, workerCmd: testWorker(exe)})
	// Every session ended before its client saw end of stream, and the
	// workers drained their SESSION_ENDs before exiting.
	if st := s.stats(); st.Ended != 200 {
		t.Errorf("%d session ends, want 200", st.Ended)
	}
}

// TestWorkerExitStopsServer checks that a worker that dies makes serve
// return an error instead of leaving handoffs to hang.
func TestWorkerExitStopsServer(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("no executable to re-run as a worker: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := listen(ctx, "127.0.0.1:0", serveConfig{workers: 1, reply: 1, token: 8, workerCmd: testWorker(exe)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.serve(ctx) }()
	s.workers[0].cmd.Process.Kill()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed its channel") {
			t.Fatalf("serve = %v, want a channel error", err)
		}
	case <-ctx.Done():
		t.Fatal("serve did not return after its worker died")
	}
}

// TestWorkerCommand checks that a worker inherits the acceptor's
// environment, the steady sysmon's GODEBUG with it, and runs on one CPU
// whatever the acceptor's GOMAXPROCS variable says.
func TestWorkerCommand(t *testing.T) {
	t.Setenv("GODEBUG", rtune.Schedtrace)
	t.Setenv("GOMAXPROCS", "4")
	cmd := workerCommand("/bin/floor")
	if !slices.Equal(cmd.Args, []string{"/bin/floor", "-worker"}) {
		t.Errorf("args %q, want /bin/floor -worker", cmd.Args)
	}
	// exec.Cmd keeps the last of duplicate variables.
	env := map[string]string{}
	for _, kv := range cmd.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["GODEBUG"] != rtune.Schedtrace || env["GOMAXPROCS"] != "1" {
		t.Errorf("worker GODEBUG=%q GOMAXPROCS=%q, want %q and 1", env["GODEBUG"], env["GOMAXPROCS"], rtune.Schedtrace)
	}
}

// TestListenerOptions checks that the floor's listener gets the daemon's
// inherited options, TCP_DEFER_ACCEPT with them.
func TestListenerOptions(t *testing.T) {
	for _, tt := range []struct {
		deferAccept time.Duration
		want        int
	}{{time.Second, 1}, {0, 0}} {
		s, err := listen(context.Background(), "127.0.0.1:0", serveConfig{inline: true, deferAccept: tt.deferAccept})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := s.ln.(*net.TCPListener).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		var got, nodelay int
		var gerr error
		raw.Control(func(fd uintptr) {
			got, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT)
			if gerr == nil {
				nodelay, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY)
			}
		})
		s.stop()
		if gerr != nil {
			t.Fatal(gerr)
		}
		// Linux reports TCP_DEFER_ACCEPT as the retransmission count's
		// time, at least what was asked for.
		if (tt.want == 0) != (got == 0) || got < tt.want || nodelay == 0 {
			t.Errorf("defer %v: TCP_DEFER_ACCEPT %d, TCP_NODELAY %d; want %d and on", tt.deferAccept, got, nodelay, tt.want)
		}
	}
}
