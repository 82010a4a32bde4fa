package main

// The worker processes' command line, environment, account and HELLO
// limits, derived from the configuration (ARCHITECTURE.md §7).

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/config"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
)

// workerPath finds the gss-worker executable: as configured, else beside
// this executable, else in ../libexec/gss-acceptor/ from this executable's
// directory (the Debian package's /usr/sbin/gss-acceptor and
// /usr/libexec/gss-acceptor/gss-worker), so that neither layout needs
// worker_path.
func workerPath(cfg *config.Config) (string, error) {
	exe := ""
	if cfg.WorkerPath == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return "", fmt.Errorf("locating gss-worker: %w", err)
		}
	}
	return findWorker(cfg.WorkerPath, exe)
}

// findWorker is workerPath with the acceptor's own path given: configured
// when non-empty, else the first of defaultWorkerPaths(exe) that exists.
func findWorker(configured, exe string) (string, error) {
	if configured != "" {
		return checkWorker(configured)
	}
	candidates := defaultWorkerPaths(exe)
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return checkWorker(p)
		}
	}
	return "", fmt.Errorf("worker executable: none of %s exists (set worker_path)", strings.Join(candidates, ", "))
}

// defaultWorkerPaths are where the worker is looked for when worker_path
// is empty, in order, for an acceptor at exe.
func defaultWorkerPaths(exe string) []string {
	dir := filepath.Dir(exe)
	return []string{
		filepath.Join(dir, config.DefaultWorkerName),
		filepath.Join(filepath.Dir(dir), "libexec", "gss-acceptor", config.DefaultWorkerName),
	}
}

// checkWorker returns p if it is an executable file.
func checkWorker(p string) (string, error) {
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("worker executable: %w", err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("worker executable %s is not executable", p)
	}
	return p, nil
}

// helloLimits are the per-worker limits sent in HELLO.
func helloLimits(cfg *config.Config) handoff.Hello {
	idle := max(cfg.IdleTimeout, 0) // config.NoIdleTimeout is negative
	return handoff.Hello{
		MaxSessions:      uint32(cfg.MaxSessionsPerWorker),
		MaxMessageBytes:  uint32(cfg.MaxMessageSize),
		IdleTimeoutMS:    uint32(idle / time.Millisecond),
		ImportDeadlineMS: uint32(cfg.ImportDeadline / time.Millisecond),
	}
}

// workerEnv is the workers' whole environment: no secrets, no
// NOTIFY_SOCKET or LISTEN_* (only the acceptor talks to systemd).
// GOMAXPROCS is worker_cpus, whatever the acceptor's own is.
func workerEnv(cpus int) []string {
	env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "GOMAXPROCS=" + strconv.Itoa(cpus)}
	for _, k := range []string{"TZ", "GOGC", "GOMEMLIMIT", "GODEBUG", "GOTRACEBACK"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// workerCredential resolves worker_user/worker_group for privilege
// separation; nil when unset.
func workerCredential(cfg *config.Config) (*syscall.Credential, error) {
	if cfg.WorkerUser == "" && cfg.WorkerGroup == "" {
		return nil, nil
	}
	cred := &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid()), NoSetGroups: false}
	if cfg.WorkerUser != "" {
		u, err := lookupUser(cfg.WorkerUser)
		if err != nil {
			return nil, err
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		cred.Uid, cred.Gid = uint32(uid), uint32(gid)
	}
	if cfg.WorkerGroup != "" {
		g, err := lookupGroup(cfg.WorkerGroup)
		if err != nil {
			return nil, err
		}
		gid, _ := strconv.ParseUint(g.Gid, 10, 32)
		cred.Gid = uint32(gid)
	}
	cred.Groups = []uint32{} // drop supplementary groups
	return cred, nil
}

func lookupUser(s string) (*user.User, error) {
	if _, err := strconv.Atoi(s); err == nil {
		if u, err := user.LookupId(s); err == nil {
			return u, nil
		}
		return &user.User{Uid: s, Gid: s}, nil
	}
	u, err := user.Lookup(s)
	if err != nil {
		return nil, fmt.Errorf("worker_user: %w", err)
	}
	return u, nil
}

func lookupGroup(s string) (*user.Group, error) {
	if _, err := strconv.Atoi(s); err == nil {
		return &user.Group{Gid: s}, nil
	}
	g, err := user.LookupGroup(s)
	if err != nil {
		return nil, fmt.Errorf("worker_group: %w", err)
	}
	return g, nil
}

// workerArgs is the worker's command line: logging, and the backend
// settings (none of them secret) when the backend is not the default.
func workerArgs(cfg *config.Config) []string {
	args := []string{"-log-level", cfg.LogLevel, "-log-format", cfg.LogFormat}
	if cfg.Backend == config.BackendSample {
		return args
	}
	if cfg.Backend == config.BackendExec {
		args = append(args, "-backend", cfg.Backend, "-exec", cfg.ExecPath,
			"-exec-max-per-worker", strconv.Itoa(cfg.ExecMaxPerWorker))
		for _, a := range cfg.ExecArgs {
			args = append(args, "-exec-arg="+a)
		}
		if cfg.StreamIntegrityAllowed {
			args = append(args, "-stream-confidentiality=false")
		}
		return args
	}
	args = append(args, "-backend", cfg.Backend,
		"-backend-connect-timeout", cfg.BackendConnectTimeout.String())
	if cfg.BackendProxyProtocol != "" {
		args = append(args, "-backend-proxy-protocol", cfg.BackendProxyProtocol)
	}
	if cfg.StreamIntegrityAllowed {
		args = append(args, "-stream-confidentiality=false")
	}
	return args
}
