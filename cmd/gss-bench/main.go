// Command gss-bench is a load generator for gss-sample servers: gss-acceptor
// and MIT's gss-server alike. It gets one service ticket, then builds a fresh
// authenticator (new subkey, new sequence numbers) for every connection, as
// a real client would, and measures handshakes/s, message round trips/s,
// MB/s and latency percentiles.
//
//	gss-bench [options] host service
//
// service is "service@host" (as MIT takes it) or "service/host[@REALM]".
// Credentials come from a credential cache (-ccache, else $KRB5CCNAME) or
// from a keytab (-keytab with -principal).
//
// Modes:
//
//   - handshake: each of -c goroutines loops connect, establish, -mcount
//     messages, NOOP, close. -mcount 0 is establish then NOOP.
//   - session: each goroutine establishes once, then loops wrap→MIC round
//     trips of -size bytes (sealed, or integrity-only with -nx).
//   - hold: opens -hold idle established sessions, reports how many are
//     held, then runs the handshake load beside them, checks the held
//     sessions still answer, and closes them.
//
// Every run is bounded: by -duration and, if set, by -n operations; and a
// hard cap (-max-time) aborts whatever is still in flight.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/version"
)

// Bounds on flags: a load generator that can be told to run forever or hold
// a billion sockets is a foot-gun on a shared machine.
const (
	maxDuration    = time.Hour
	maxConcurrency = 10_000
	maxHold        = 100_000
	maxSize        = 16 << 20
	maxMCount      = 1_000_000
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// options are the parsed command line.
type options struct {
	mode        string
	addr        string
	service     string
	concurrency int
	duration    time.Duration
	count       int64
	maxTime     time.Duration
	size        int
	mcount      int
	nx          bool
	seq         bool
	nomutual    bool
	quickAck    bool
	timeout     time.Duration
	hold        int
	settle      time.Duration
	holdCheck   bool
	progress    time.Duration
	jsonOut     bool

	ccache, keytab, principal, krb5conf string
}

// parseArgs parses and validates the command line. It returns flag.ErrHelp
// for -h and errVersion for -version.
func parseArgs(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("gss-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.mode, "mode", "handshake", "load: handshake, session or hold")
	port := fs.Int("port", 4444, "server port")
	fs.IntVar(&o.concurrency, "c", 16, "concurrent connections (goroutines) driving the load")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "how long the measured load runs (at most 1h)")
	fs.Int64Var(&o.count, "n", 0, "stop after this many operations (handshakes, or round trips in session mode); 0: -duration only")
	fs.DurationVar(&o.maxTime, "max-time", 0, "hard cap on the whole run, in-flight work is aborted (default 2×duration + 60s)")
	fs.IntVar(&o.size, "size", 32, "message size in bytes")
	fs.IntVar(&o.mcount, "mcount", 1, "messages per connection in handshake and hold modes (0: establish, then NOOP)")
	fs.BoolVar(&o.nx, "nx", false, "wrap for integrity only, without encryption (as gss-client -nx)")
	fs.BoolVar(&o.seq, "seq", false, "request sequence checking (GSS_C_SEQUENCE_FLAG)")
	fs.BoolVar(&o.nomutual, "nomutual", false, "do not request mutual authentication (no AP-REP)")
	fs.BoolVar(&o.quickAck, "quickack", true, "acknowledge the server at once (TCP_QUICKACK), so a server that writes replies in pieces without TCP_NODELAY (MIT gss-server) is not held up 40 ms per reply by Nagle and delayed ACKs")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "timeout for each network read, write or dial")
	fs.IntVar(&o.hold, "hold", 1000, "hold mode: idle established sessions to open and keep")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "hold mode: pause between holding the sessions and starting the load")
	fs.BoolVar(&o.holdCheck, "hold-check", true, "hold mode: after the load, exchange one message on every held session")
	fs.DurationVar(&o.progress, "progress", 5*time.Second, "interval of the progress line on stderr (0: none)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as one JSON object")
	fs.StringVar(&o.ccache, "ccache", "", "credential cache (default $KRB5CCNAME)")
	fs.StringVar(&o.keytab, "keytab", "", "client keytab (with -principal) instead of a credential cache")
	fs.StringVar(&o.principal, "principal", "", "client principal for -keytab, user[@REALM]")
	fs.StringVar(&o.krb5conf, "krb5conf", "", "krb5.conf (default $KRB5_CONFIG, then /etc/krb5.conf)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: gss-bench [options] host service")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if *showVersion {
		return o, errVersion
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return o, errors.New("want two arguments: host service")
	}
	o.addr = net.JoinHostPort(fs.Arg(0), strconv.Itoa(*port))
	o.service = fs.Arg(1)
	if o.maxTime == 0 {
		o.maxTime = 2*o.duration + time.Minute
	}
	return o, o.validate(*port)
}

// errVersion asks run to print the version.
var errVersion = errors.New("version requested")

func (o *options) validate(port int) error {
	switch {
	case o.mode != "handshake" && o.mode != "session" && o.mode != "hold":
		return fmt.Errorf("-mode %q: want handshake, session or hold", o.mode)
	case port < 1 || port > 65535:
		return fmt.Errorf("-port %d: out of range", port)
	case o.concurrency < 1 || o.concurrency > maxConcurrency:
		return fmt.Errorf("-c %d: want 1..%d", o.concurrency, maxConcurrency)
	case o.duration <= 0 || o.duration > maxDuration:
		return fmt.Errorf("-duration %v: want > 0 and ≤ %v", o.duration, maxDuration)
	case o.count < 0:
		return fmt.Errorf("-n %d: must not be negative", o.count)
	case o.maxTime < o.duration || o.maxTime > 3*maxDuration:
		return fmt.Errorf("-max-time %v: want between -duration and %v", o.maxTime, 3*maxDuration)
	case o.size < 0 || o.size > maxSize:
		return fmt.Errorf("-size %d: want 0..%d", o.size, maxSize)
	case o.mcount < 0 || o.mcount > maxMCount:
		return fmt.Errorf("-mcount %d: want 0..%d", o.mcount, maxMCount)
	case o.timeout <= 0 || o.timeout > 10*time.Minute:
		return fmt.Errorf("-timeout %v: want > 0 and ≤ 10m", o.timeout)
	case o.mode == "hold" && (o.hold < 1 || o.hold > maxHold):
		return fmt.Errorf("-hold %d: want 1..%d", o.hold, maxHold)
	case o.settle < 0 || o.settle > time.Minute:
		return fmt.Errorf("-settle %v: want 0..1m", o.settle)
	case o.progress < 0:
		return fmt.Errorf("-progress %v: must not be negative", o.progress)
	case o.keytab != "" && o.principal == "":
		return errors.New("-keytab needs -principal")
	}
	return nil
}

// run is main without the process exit: 0 on success, 1 when the run
// failed or was aborted, 2 on a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errVersion):
		fmt.Fprintln(stdout, "gss-bench", version.String())
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "gss-bench:", err)
		return 2
	}
	tkt, err := serviceTicket(o)
	if err != nil {
		fmt.Fprintln(stderr, "gss-bench:", err)
		return 1
	}
	res, err := newBench(o, tkt, stderr).run(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "gss-bench:", err)
		return 1
	}
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintln(stderr, "gss-bench:", err)
			return 1
		}
	} else {
		res.writeText(stdout)
	}
	if res.Aborted || res.ok() == 0 {
		return 1
	}
	return 0
}

// serviceTicket gets the one service ticket every connection reuses.
func serviceTicket(o options) (*client.Ticket, error) {
	cfg, err := client.LoadKrb5Conf(o.krb5conf)
	if err != nil {
		return nil, err
	}
	var creds *client.Credentials
	if o.keytab != "" {
		creds, err = client.FromKeytab(o.principal, o.keytab, cfg)
	} else {
		creds, err = client.FromCCache(o.ccache, cfg)
	}
	if err != nil {
		return nil, err
	}
	return creds.ServiceTicket(o.service)
}

// gssFlags are the context flags requested: MIT gss-client's defaults
// (mutual, replay), plus sequence with -seq, minus mutual with -nomutual.
func (o options) gssFlags() gss.Flags {
	f := gss.FlagMutual | gss.FlagReplay
	if o.seq {
		f |= gss.FlagSequence
	}
	if o.nomutual {
		f &^= gss.FlagMutual
	}
	return f
}
