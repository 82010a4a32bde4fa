// Command gss-worker serves established GSS-API sessions handed to it by
// gss-acceptor. It is started by gss-acceptor only: it expects the handoff
// channel on file descriptor 3 and its seal key in the first message on it,
// and it never reads a keytab.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/logging"
	"github.com/gss-acceptor/gss-acceptor/internal/version"
	"github.com/gss-acceptor/gss-acceptor/internal/worker"
)

// Exit statuses. handoff.ExitFatal tells the acceptor not to respawn
// this worker: a restart cannot fix it.
const (
	exitOK    = 0
	exitError = 1
)

// channelFD is where gss-acceptor puts the worker's end of the socketpair.
const channelFD = 3

func main() { os.Exit(run()) }

func run() int {
	logLevel := flag.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := flag.String("log-format", "json", "log format: json or console")
	showVersion := flag.Bool("version", false, "print the version and exit")
	backend := flag.String("backend", "sample", "sample, tcp:HOST:PORT or unix:/PATH (set by gss-acceptor from its backend key)")
	proxyProto := flag.String("backend-proxy-protocol", "", `"v2": send a PROXY v2 header to the backend first`)
	connectTimeout := flag.Duration("backend-connect-timeout", worker.DefaultConnectTimeout, "backend connection timeout")
	confidentiality := flag.Bool("stream-confidentiality", true, "refuse integrity-only stream records")
	execPath := flag.String("exec", "", "backend exec: the program run per session")
	var execArgs []string
	flag.Func("exec-arg", "backend exec: one argument of the program (repeatable, in order)", func(v string) error {
		execArgs = append(execArgs, v)
		return nil
	})
	execMax := flag.Int("exec-max-per-worker", worker.DefaultExecMaxPerWorker, "backend exec: programs at once")
	flag.Parse()
	if *showVersion {
		fmt.Println("gss-worker", version.String())
		return exitOK
	}
	var service worker.Service
	err := execFlagsOnlyWithExec(flag.CommandLine, *backend)
	if err == nil && *backend == "exec" {
		if *execPath == "" {
			err = errors.New("-backend exec needs -exec PATH")
		}
		service = &worker.ExecService{Path: *execPath, Args: execArgs, MaxPerWorker: *execMax, AllowIntegrity: !*confidentiality}
	} else if err == nil {
		service, err = newService(*backend, *proxyProto, *connectTimeout, *confidentiality)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-worker:", err)
		return handoff.ExitFatal
	}
	if !isSeqpacket(channelFD) {
		fmt.Fprintln(os.Stderr, "gss-worker: this program is started by gss-acceptor, not by hand: "+
			"it needs the acceptor's handoff channel on file descriptor 3. Run gss-acceptor instead.")
		return handoff.ExitFatal
	}
	lg, err := logging.New(logging.Options{Level: *logLevel, Format: *logFormat})
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-worker:", err)
		return handoff.ExitFatal
	}
	log := lg.With(zap.Int("pid", os.Getpid()))
	defer log.Sync()

	ch, err := handoff.FromFD(channelFD)
	if err != nil {
		log.Error("opening the handoff channel", zap.Error(err))
		return handoff.ExitFatal
	}
	if err := handoff.CheckParent(ch); err != nil {
		log.Error("handoff channel peer is not our parent", zap.Error(err))
		return handoff.ExitFatal
	}

	// SIGTERM from the acceptor (drain deadline passed) cuts the sessions.
	// SIGINT and SIGHUP reach the whole process group from a terminal; the
	// acceptor decides what they mean and tells us over the channel.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1)

	w := worker.New(worker.Config{Channel: ch, Service: service, Logger: log})
	err = w.Run(ctx)
	switch {
	case err == nil, errors.Is(err, worker.ErrParentGone):
		return exitOK
	case errors.Is(err, context.Canceled):
		log.Info("terminated; open sessions were closed")
		return exitOK
	case errors.Is(err, worker.ErrBadHello):
		log.Error("worker cannot start", zap.Error(err))
		return handoff.ExitFatal
	default:
		log.Error("worker failed", zap.Error(err))
		return exitError
	}
}

// isSeqpacket reports whether fd is an open SOCK_SEQPACKET socket.
func isSeqpacket(fd int) bool {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_SEQPACKET
}

// newService is the session service the flags choose: SampleService for
// "sample", else the proxy StreamService.
func newService(backend, proxyProto string, connectTimeout time.Duration, confidentiality bool) (worker.Service, error) {
	if backend == "sample" {
		if proxyProto != "" {
			return nil, errors.New("-backend-proxy-protocol needs a proxy backend")
		}
		return worker.SampleService{}, nil
	}
	b, err := worker.ParseBackend(backend)
	if err != nil {
		return nil, err
	}
	if proxyProto != "" && proxyProto != "v2" {
		return nil, fmt.Errorf("-backend-proxy-protocol %q: want v2", proxyProto)
	}
	return &worker.StreamService{
		Backend:        b,
		ProxyProtocol:  proxyProto == "v2",
		ConnectTimeout: connectTimeout,
		AllowIntegrity: !confidentiality,
	}, nil
}

// execFlagsOnlyWithExec refuses the exec backend's flags with any other
// backend, where they would be ignored: the acceptor's configuration
// refuses the matching keys the same way.
func execFlagsOnlyWithExec(fs *flag.FlagSet, backend string) error {
	if backend == "exec" {
		return nil
	}
	var set []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "exec", "exec-arg", "exec-max-per-worker":
			set = append(set, "-"+f.Name)
		}
	})
	if len(set) > 0 {
		return fmt.Errorf("%s: only with -backend exec (backend is %s)", strings.Join(set, ", "), backend)
	}
	return nil
}
