// Command gss-acceptor is a prefork Kerberos 5 GSS-API acceptor. It accepts
// TCP connections speaking MIT's gss-sample protocol, establishes each
// security context with keys from a keytab, exports the context as a sealed
// interprocess token and hands it, with the connection's socket, to one of
// its gss-worker processes, which serve the session's messages.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/rtune"
	"github.com/gss-acceptor/gss-acceptor/internal/version"
)

// Exit statuses.
const (
	exitOK          = 0
	exitFailure     = 1 // runtime failure, or -check-config found a problem
	exitUsage       = 2 // bad command line
	exitFailedStart = 3 // could not start (config, keytab, bind, workers)
)

// listFlag is a repeatable flag that also splits comma lists.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// options are the command-line flags; set ones override the config file.
type options struct {
	configPath  string
	listen      listFlag
	keytab      string
	services    listFlag
	allow       listFlag
	workers     int
	logLevel    string
	logFormat   string
	backend     string
	proxyProto  string
	execPath    string
	replayCache string
	proxyFrom   listFlag
	checkConfig bool
	version     bool
	set         map[string]bool
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("gss-acceptor", flag.ContinueOnError)
	fs.StringVar(&o.configPath, "config", "", "configuration file (YAML); flags override its values")
	fs.Var(&o.listen, "listen", "TCP address to listen on, host:port (repeatable or comma list)")
	fs.StringVar(&o.keytab, "keytab", "", "keytab with the service keys")
	fs.Var(&o.services, "service", "allowed acceptor principal, e.g. host/h.example.com@REALM (repeatable or comma list; default: any principal in the keytab)")
	fs.Var(&o.allow, "allow-clients", "admitted client principals, NAME@REALM or *@REALM (repeatable or comma list; default: every client; see allow_clients)")
	fs.IntVar(&o.workers, "workers", 0, "number of worker processes (default: number of CPUs)")
	fs.StringVar(&o.backend, "backend", "", "service behind the workers: sample (default), tcp:HOST:PORT or unix:/PATH (docs/stream.md)")
	fs.StringVar(&o.proxyProto, "backend-proxy-protocol", "", `"v2": send a PROXY v2 header with the client's address and principal to the backend`)
	fs.StringVar(&o.execPath, "exec", "", "backend exec: program run per session, stream on stdin/stdout (no arguments; exec_args in the config file)")
	fs.Var(&o.proxyFrom, "proxy-protocol-from", "CIDR networks of load balancers that send a PROXY v1/v2 header (repeatable or comma list)")
	fs.StringVar(&o.replayCache, "replay-cache", "", "replay cache: memory (default), file:/PATH (survives restarts), redis://[user:pass@]HOST:PORT/DB or rediss://... shared by every host (docs/operations.md)")
	fs.StringVar(&o.logLevel, "log-level", "", "log level: debug, info, warn, error")
	fs.StringVar(&o.logFormat, "log-format", "", "log format: json or console")
	fs.BoolVar(&o.checkConfig, "check-config", false, "validate the configuration and keytab, then exit 0 (ok) or 1")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// loadConfig reads the config file (or the defaults) and applies the flags.
func loadConfig(o *options) (*config.Config, error) {
	cfg := config.Default()
	if o.configPath != "" {
		// Load reports every problem but a missing keytab, which -keytab
		// may still supply; Validate below catches it.
		c, err := config.Load(o.configPath)
		if err != nil {
			return nil, err
		}
		cfg = c
	}
	if o.set["listen"] {
		cfg.Listen = append([]string(nil), o.listen...)
	}
	if o.set["keytab"] {
		kt, err := filepath.Abs(o.keytab)
		if err != nil {
			return nil, fmt.Errorf("-keytab: %w", err)
		}
		cfg.Keytab = kt
	}
	if o.set["service"] {
		cfg.Services = append([]string(nil), o.services...)
	}
	if o.set["allow-clients"] {
		cfg.AllowClients = append([]string(nil), o.allow...)
	}
	if o.set["workers"] {
		cfg.Workers = o.workers
	}
	if o.set["backend"] {
		cfg.Backend = o.backend
	}
	if o.set["exec"] {
		if o.set["backend"] && o.backend != config.BackendExec {
			return nil, fmt.Errorf("-exec selects backend exec; it cannot be combined with -backend %s", o.backend)
		}
		p, err := filepath.Abs(o.execPath)
		if err != nil {
			return nil, fmt.Errorf("-exec: %w", err)
		}
		cfg.Backend, cfg.ExecPath = config.BackendExec, p
	}
	if o.set["backend-proxy-protocol"] {
		cfg.BackendProxyProtocol = o.proxyProto
	}
	if o.set["proxy-protocol-from"] {
		cfg.ProxyProtocolFrom = append([]string(nil), o.proxyFrom...)
	}
	if o.set["replay-cache"] {
		cfg.ReplayCache = o.replayCache
	}
	if o.set["log-level"] {
		cfg.LogLevel = o.logLevel
	}
	if o.set["log-format"] {
		cfg.LogFormat = o.logFormat
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	o, err := parseFlags(args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(os.Stderr, "gss-acceptor:", err)
		return exitUsage
	}
	if o.version {
		fmt.Println("gss-acceptor", version.String())
		return exitOK
	}
	cfg, err := loadConfig(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-acceptor:", err)
		if o.checkConfig {
			return exitFailure
		}
		return exitFailedStart
	}
	if o.checkConfig {
		return checkConfig(cfg, o.configPath, os.Stdout, os.Stderr)
	}
	var reexecErr error
	if !cfg.SysmonDeepSleep {
		// Nothing is open yet: the exec starts over with the same
		// arguments, and only returns if it failed; then the daemon runs
		// without it and says so.
		reexecErr = rtune.Reexec()
	}
	d, err := newDaemon(cfg, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gss-acceptor:", err)
		return exitFailedStart
	}
	d.reexecErr = reexecErr
	return d.run()
}

// checkConfig validates the configuration and the keytab like `nginx -t`:
// it builds the acceptor exactly as the daemon would (gss.NewAcceptor
// judges the keytab against the services) and finds the worker
// executable. Problems and warnings go to stderr, the verdict and the
// keytab's principals to stdout.
func checkConfig(cfg *config.Config, path string, stdout, stderr io.Writer) int {
	// A shared replay cache's URL is parsed, not contacted.
	store, rs, err := newReplayStore(cfg, gss.NewReplayCache(cfg.ReplayCacheSize), nil, nil)
	if err != nil {
		fmt.Fprintln(stderr, "gss-acceptor:", err)
		return exitFailure
	}
	if rs != nil {
		defer rs.Close()
	}
	// A replay cache file is not opened (the running daemon holds its
	// lock): its directory must exist.
	if path, ok := strings.CutPrefix(cfg.ReplayCache, "file:"); ok {
		if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
			fmt.Fprintln(stderr, "gss-acceptor: replay_cache: directory of", path, "is not usable:", err)
			return exitFailure
		}
	}
	_, summary, err := buildAcceptor(cfg, store, func(entry string) {
		fmt.Fprintln(stderr, "gss-acceptor: warning:", entry)
	})
	if err != nil {
		fmt.Fprintln(stderr, "gss-acceptor:", err)
		return exitFailure
	}
	if _, err := workerPath(cfg); err != nil {
		fmt.Fprintln(stderr, "gss-acceptor:", err)
		return exitFailure
	}
	name := path
	if name == "" {
		name = "(defaults and flags)"
	}
	fmt.Fprintf(stdout, "gss-acceptor: configuration %s is ok\n", name)
	for _, p := range summary.principals() {
		fmt.Fprintf(stdout, "gss-acceptor: keytab principal %s\n", p)
	}
	return exitOK
}
