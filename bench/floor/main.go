// Command floor measures the architecture floor of gss-acceptor: the same
// socket choreography as the real daemon with no Kerberos, no logging and
// no GSS work at all, so that the benchmark report can say which part of
// the server CPU per handshake the kernel and the process topology cost.
//
// One binary, three roles:
//
//	floor -serve -port 0 [-inline] [-workers 2] [-reply 160] [-token 200]
//	      [-steady-sysmon=true] [-acceptor-cpus 0] [-defer-accept 1s]
//	floor -worker                      (started by -serve, channel on fd 3)
//	floor -client -port P [-c 16] [-duration 8s] [-n 0] [-req 620] [-json]
//
// The processes run as gss-acceptor's do by default (ARCHITECTURE.md §11):
// -serve re-executes itself with the steady sysmon (rtune.Reexec; GODEBUG
// schedtrace, which its workers inherit), sets its own GOMAXPROCS as
// acceptor_cpus does (the GOMAXPROCS variable, else half the CPUs), starts
// each worker with GOMAXPROCS=1 (worker_cpus) and sets the listener's
// options with listener.SetInheritedOptions: keep-alive and TCP_NODELAY
// inherited by accepted connections, and TCP_DEFER_ACCEPT, so a connection
// is accepted once its first bytes are there. -steady-sysmon=false
// -defer-accept 0 -acceptor-cpus N (N = the CPUs) measures the old way.
//
// The acceptor (-serve) accepts TCP on 127.0.0.1, one goroutine per
// connection, reads the gss-sample opener and one context frame, writes
// one reply frame, then passes an opaque token and the connection's
// descriptor over a SOCK_SEQPACKET socketpair (SCM_RIGHTS) to one of its
// workers, round robin, waits for the worker's ACK and closes its copy of
// the descriptor. The worker serves the connection until the client's
// NOOP and reports the session's end on the channel as gss-worker does:
// queued, and sent just ahead of its next ACK, or after 20 ms when no
// handoff comes (gss-worker also sends it at once when at its session
// cap; the floor has none), so that one client at a time the acceptor
// wakes once per connection for both.
// With -inline the acceptor serves the connection itself: the difference
// is what the handoff costs.
//
// The client sends what gss-bench -mode handshake -mcount 0 sends (the
// NOOP|CONTEXT_NEXT opener and a context token in one write, then a NOOP
// after the reply) and then waits for the server to close.
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
	"runtime"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/rtune"
)

// Roles of the binary.
const (
	roleServe  = "serve"
	roleWorker = "worker"
	roleClient = "client"
)

// Bounds on the command line.
const (
	maxWorkers     = 64
	maxConc        = 1000
	maxDuration    = time.Hour
	maxFrameBody   = 1 << 20  // -req and -reply
	minToken       = idLen    // the token carries the handoff ID
	maxToken       = 64 << 10 // fits a SOCK_SEQPACKET message with default buffers
	defaultWorkers = 2
	maxDeferAccept = time.Hour
)

// options is the parsed command line.
type options struct {
	role         string
	port         int
	inline       bool
	workers      int
	reply        int
	token        int
	steadySysmon bool
	acceptorCPUs int // 0: acceptorCPUs decides
	deferAccept  time.Duration
	conc         int
	duration     time.Duration
	n            int64
	req          int
	json         bool
}

// flagRoles names the role each role-specific flag belongs to; -port is
// shared by -serve and -client.
var flagRoles = map[string]string{
	"inline": roleServe, "workers": roleServe, "reply": roleServe, "token": roleServe,
	"steady-sysmon": roleServe, "acceptor-cpus": roleServe, "defer-accept": roleServe,
	"c": roleClient, "duration": roleClient, "n": roleClient, "req": roleClient, "json": roleClient,
}

// parseOptions parses and checks the command line (without the program
// name). Usage and flag errors go to out.
func parseOptions(args []string, out io.Writer) (options, error) {
	var o options
	var serve, worker, client bool
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.BoolVar(&serve, "serve", false, "run the acceptor (prints \"listening 127.0.0.1:PORT\" when ready)")
	fs.BoolVar(&worker, "worker", false, "run a worker (started by -serve; channel on fd 3)")
	fs.BoolVar(&client, "client", false, "run the load generator")
	fs.IntVar(&o.port, "port", -1, "TCP port on 127.0.0.1 (0 with -serve: any free port)")
	fs.BoolVar(&o.inline, "inline", false, "serve each connection in the acceptor, without a handoff")
	fs.IntVar(&o.workers, "workers", defaultWorkers, "worker processes")
	fs.IntVar(&o.reply, "reply", 160, "reply frame body bytes (about an AP-REP)")
	fs.IntVar(&o.token, "token", 200, "opaque token bytes passed with each handoff")
	fs.BoolVar(&o.steadySysmon, "steady-sysmon", true, "re-execute with GODEBUG="+rtune.Schedtrace+", as gss-acceptor's steady_sysmon (workers inherit it)")
	fs.IntVar(&o.acceptorCPUs, "acceptor-cpus", 0, "the acceptor's GOMAXPROCS, as gss-acceptor's acceptor_cpus (0: the GOMAXPROCS variable, else half the CPUs)")
	fs.DurationVar(&o.deferAccept, "defer-accept", config.DefaultDeferAccept, "TCP_DEFER_ACCEPT of the listener, as gss-acceptor's defer_accept (0: off)")
	fs.IntVar(&o.conc, "c", 16, "concurrent connections")
	fs.DurationVar(&o.duration, "duration", 8*time.Second, "how long to start new connections")
	fs.Int64Var(&o.n, "n", 0, "stop after this many connections (0: no limit)")
	fs.IntVar(&o.req, "req", 620, "context frame body bytes (about an AP-REQ)")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	if fs.NArg() > 0 {
		return options{}, fmt.Errorf("floor: unexpected arguments %q", fs.Args())
	}
	nroles := 0
	for _, r := range []struct {
		set  bool
		name string
	}{{serve, roleServe}, {worker, roleWorker}, {client, roleClient}} {
		if r.set {
			nroles++
			o.role = r.name
		}
	}
	if nroles != 1 {
		return options{}, errors.New("floor: want exactly one of -serve, -worker, -client")
	}
	var misplaced error
	fs.Visit(func(f *flag.Flag) {
		if misplaced != nil {
			return
		}
		if r, ok := flagRoles[f.Name]; ok && r != o.role {
			misplaced = fmt.Errorf("floor: -%s is for -%s, not -%s", f.Name, r, o.role)
		} else if f.Name == "port" && o.role == roleWorker {
			misplaced = errors.New("floor: -port is not for -worker")
		}
	})
	if misplaced != nil {
		return options{}, misplaced
	}
	switch o.role {
	case roleServe:
		switch {
		case o.port < 0 || o.port > 65535:
			return options{}, fmt.Errorf("floor: -port %d: want 0..65535", o.port)
		case o.workers < 1 || o.workers > maxWorkers:
			return options{}, fmt.Errorf("floor: -workers %d: want 1..%d", o.workers, maxWorkers)
		case o.reply < 0 || o.reply > maxFrameBody:
			return options{}, fmt.Errorf("floor: -reply %d: want 0..%d", o.reply, maxFrameBody)
		case o.token < minToken || o.token > maxToken:
			return options{}, fmt.Errorf("floor: -token %d: want %d..%d", o.token, minToken, maxToken)
		case o.acceptorCPUs < 0 || o.acceptorCPUs > config.MaxWorkers:
			return options{}, fmt.Errorf("floor: -acceptor-cpus %d: want 0..%d", o.acceptorCPUs, config.MaxWorkers)
		case o.deferAccept < 0 || o.deferAccept > maxDeferAccept:
			return options{}, fmt.Errorf("floor: -defer-accept %v: want 0..%v", o.deferAccept, maxDeferAccept)
		}
	case roleClient:
		switch {
		case o.port < 1 || o.port > 65535:
			return options{}, fmt.Errorf("floor: -port %d: want 1..65535", o.port)
		case o.conc < 1 || o.conc > maxConc:
			return options{}, fmt.Errorf("floor: -c %d: want 1..%d", o.conc, maxConc)
		case o.duration <= 0 || o.duration > maxDuration:
			return options{}, fmt.Errorf("floor: -duration %v: want > 0 and ≤ %v", o.duration, maxDuration)
		case o.n < 0:
			return options{}, fmt.Errorf("floor: -n %d: want ≥ 0", o.n)
		case o.req < 0 || o.req > maxFrameBody:
			return options{}, fmt.Errorf("floor: -req %d: want 0..%d", o.req, maxFrameBody)
		}
	}
	return o, nil
}

func main() {
	o, err := parseOptions(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if o.role == roleServe && o.steadySysmon {
		// Nothing is open yet: the exec starts over with the same
		// arguments, and returns only if it failed.
		if err := rtune.Reexec(); err != nil {
			fmt.Fprintln(os.Stderr, "floor: re-executing with a steady sysmon:", err)
			os.Exit(1)
		}
	}
	sigs := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if o.role == roleWorker {
		// Ctrl-C reaches the whole process group: a worker leaves it to
		// the acceptor, which ends the worker by shutting its channel.
		signal.Ignore(os.Interrupt)
		sigs = sigs[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), sigs...)
	defer stop()
	switch o.role {
	case roleServe:
		err = mainServe(ctx, o)
	case roleWorker:
		err = runWorker(ctx, workerChannelFD, endFlushDelay)
	case roleClient:
		err = mainClient(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}

// mainServe runs the acceptor role until a signal.
func mainServe(ctx context.Context, o options) error {
	runtime.GOMAXPROCS(config.AcceptorCPUs(o.acceptorCPUs))
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("floor: finding this executable: %w", err)
	}
	cfg := serveConfig{
		inline:      o.inline,
		workers:     o.workers,
		reply:       o.reply,
		token:       o.token,
		deferAccept: o.deferAccept,
		workerCmd:   func() *exec.Cmd { return workerCommand(exe) },
	}
	s, err := listen(ctx, fmt.Sprintf("127.0.0.1:%d", o.port), cfg)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", s.Addr())
	err = s.serve(ctx)
	st := s.stats()
	fmt.Fprintf(os.Stderr, "floor: %d connections served, %d failed, %d session ends from workers\n", st.Served, st.Failed, st.Ended)
	if st.LastError != nil {
		fmt.Fprintf(os.Stderr, "floor: last connection error: %v\n", st.LastError)
	}
	return err
}

// workerCommand is one worker process of the acceptor exe: its
// environment, with the steady sysmon's GODEBUG when -serve re-executed
// itself with it, and one CPU, as gss-acceptor's worker_cpus default.
func workerCommand(exe string) *exec.Cmd {
	cmd := exec.Command(exe, "-worker")
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1")
	return cmd
}

// mainClient runs the load generator and prints its result. It fails when
// any connection failed, after printing the result.
func mainClient(ctx context.Context, o options) error {
	r := runClient(ctx, clientConfig{
		addr:     fmt.Sprintf("127.0.0.1:%d", o.port),
		conc:     o.conc,
		duration: o.duration,
		n:        o.n,
		req:      o.req,
	})
	if o.json {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return fmt.Errorf("floor: encoding the result: %w", err)
		}
		fmt.Printf("%s\n", b)
	} else {
		fmt.Printf("%d connections in %.2f s: %.1f/s, %d errors\n", r.Handshakes, r.ElapsedS, r.HandshakesPerSec, r.ErrorsTotal)
	}
	if r.ErrorsTotal > 0 {
		return fmt.Errorf("floor: %d connections failed; last: %s", r.ErrorsTotal, r.LastError)
	}
	return nil
}
