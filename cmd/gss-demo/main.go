// Command gss-demo shows gss-acceptor working on a throwaway Kerberos realm:
// it starts an MIT KDC on 127.0.0.1 in a temporary directory, runs
// gss-acceptor with two workers against the realm's service keytab, runs
// MIT's gss-client and our Go gss-client against it, shows what each side
// printed, then stops everything and removes the directory.
//
// It needs MIT krb5 (krb5-kdc, krb5-admin-server, krb5-user,
// krb5-gss-samples); scripts/demo installs them and runs this program.
//
// With -installed it runs the Debian package's binaries instead
// (scripts/package-check): /usr/sbin/gss-acceptor, which finds its worker
// by itself, and /usr/bin/gss-acceptor-client; it first runs
// gss-acceptor -check-config on its configuration and on each -check-conffile
// (with the realm's keytab and service), and -worker-user runs the workers
// under that account.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gss-demo:", err)
		os.Exit(1)
	}
}

func run() error {
	binDir := flag.String("bin", "", "directory holding gss-acceptor, gss-worker and gss-client (default: beside this program)")
	workers := flag.Int("workers", 2, "acceptor worker processes")
	messages := flag.Int("mcount", 5, "messages per client session")
	keep := flag.Bool("keep", false, "keep the realm directory (printed) for inspection")
	installed := flag.Bool("installed", false, "run the installed Debian package: "+installedAcceptor+" and "+installedClient)
	workerUser := flag.String("worker-user", "", "worker_user of the acceptor (needs root)")
	var conffiles []string
	flag.Func("check-conffile", "with -installed, also run -check-config on this configuration file with the realm's keytab and service (repeatable)", func(s string) error {
		conffiles = append(conffiles, s)
		return nil
	})
	flag.Parse()
	if len(conffiles) > 0 && !*installed {
		return errors.New("-check-conffile needs -installed")
	}
	if *binDir == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		*binDir = filepath.Dir(exe)
	}
	if err := testrealm.Available(); err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "gss-demo-")
	if err != nil {
		return err
	}
	if *keep {
		fmt.Println("realm directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	step("starting a throwaway MIT realm on 127.0.0.1")
	realm, err := testrealm.Start(testrealm.Options{Dir: filepath.Join(dir, "realm")})
	if err != nil {
		return err
	}
	defer realm.Close()
	fmt.Printf("  realm %s, KDC %s, service %s, user %s\n", realm.Name, realm.KDCAddr, realm.ServicePrincipal, realm.UserPrincipal)

	step(fmt.Sprintf("starting gss-acceptor with %d workers", *workers))
	cfgPath := filepath.Join(dir, "gss-acceptor.yaml")
	cfg := fmt.Sprintf("listen: [\"127.0.0.1:0\"]\nkeytab: %q\nworkers: %d\nlog_format: json\nlog_level: info\nshutdown_timeout: 10s\n",
		realm.ServiceKeytab, *workers)
	acceptor, goClient := filepath.Join(*binDir, "gss-acceptor"), filepath.Join(*binDir, "gss-client")
	if *installed {
		// The acceptor finds /usr/libexec/gss-acceptor/gss-worker itself.
		acceptor, goClient = installedAcceptor, installedClient
	} else {
		cfg += fmt.Sprintf("worker_path: %q\n", filepath.Join(*binDir, "gss-worker"))
	}
	if *workerUser != "" {
		cfg += fmt.Sprintf("worker_user: %q\n", *workerUser)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return err
	}
	if *installed {
		checks := [][]string{{"-config", cfgPath}}
		for _, f := range conffiles {
			checks = append(checks, []string{"-config", f, "-keytab", realm.ServiceKeytab, "-service", strings.SplitN(realm.ServicePrincipal, "@", 2)[0]})
		}
		for _, args := range checks {
			if err := checkConfig(acceptor, args, realm.Env()); err != nil {
				return err
			}
		}
	}
	acc := exec.Command(acceptor, "-config", cfgPath)
	acc.Env = realm.Env()
	stderr, err := acc.StderrPipe()
	if err != nil {
		return err
	}
	if err := acc.Start(); err != nil {
		return err
	}
	logs := make(chan map[string]any, 1024)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				logs <- m
			}
		}
		close(logs)
	}()
	defer func() {
		if acc.ProcessState == nil {
			acc.Process.Kill()
			acc.Wait()
		}
	}()
	port, err := waitReady(logs, 30*time.Second)
	if err != nil {
		return err
	}
	fmt.Printf("  listening on 127.0.0.1:%d, acceptor pid %d\n", port, acc.Process.Pid)

	type clientRun struct {
		title string
		bin   string
		args  []string
	}
	mc := strconv.Itoa(*messages)
	runs := []clientRun{
		{"MIT gss-client (sealed wrap, MIC, -seq)", "gss-client", []string{"-seq", "-mcount", mc}},
		{"MIT gss-client -nx (integrity-only wrap)", "gss-client", []string{"-nx", "-mcount", "2"}},
		{"MIT gss-client -nomutual", "gss-client", []string{"-nomutual", "-mcount", "2"}},
		{"Go gss-client (this project)", goClient, []string{"-seq", "-mcount", mc}},
	}
	for _, r := range runs {
		step(r.title)
		args := append([]string{"-port", strconv.Itoa(port)}, r.args...)
		args = append(args, "127.0.0.1", "host@localhost", "hello from gss-demo")
		fmt.Printf("  $ %s %s\n", filepath.Base(r.bin), strings.Join(args, " "))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := exec.CommandContext(ctx, r.bin, args...)
		cmd.Env = realm.Env()
		out, err := cmd.CombinedOutput()
		cancel()
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			fmt.Println("  |", line)
		}
		if err != nil {
			return fmt.Errorf("%s failed: %w", r.title, err)
		}
	}

	if *workerUser != "" {
		step("the workers' account")
		if err := checkWorkerUser(acc.Process.Pid, *workerUser); err != nil {
			return err
		}
	}

	step("stopping gss-acceptor (SIGTERM: drain, then exit)")
	acc.Process.Signal(syscall.SIGTERM)
	var handed, ended int
	for m := range logs {
		switch m["msg"] {
		case "session handed off":
			handed++
			fmt.Printf("  acceptor: %s handed to worker %v (%v, enctype %v, flags %v)\n", m["client"], m["worker_pid"], m["handshake"], m["enctype"], m["flags"])
		case "session ended":
			ended++
			fmt.Printf("  worker %v: session %v ended %v, %v messages in\n", m["pid"], m["session"], m["result"], m["messages_in"])
		case "stopped":
			fmt.Println("  acceptor stopped")
		}
	}
	if err := acc.Wait(); err != nil {
		return fmt.Errorf("gss-acceptor: %w", err)
	}
	fmt.Printf("\ngss-demo: ok: %d sessions handed off to workers, %d ended cleanly\n", handed, ended)
	return nil
}

func step(s string) { fmt.Printf("\n== %s\n", s) }

// The Debian package's acceptor and Go client (scripts/package).
const (
	installedAcceptor = "/usr/sbin/gss-acceptor"
	installedClient   = "/usr/bin/gss-acceptor-client"
)

// checkWorkerUser checks that every child of the acceptor (its workers)
// runs as name, real and effective uid, as /proc shows it.
func checkWorkerUser(acceptor int, name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("worker user: %w", err)
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	workers := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		var ppid, uids string
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "PPid:"); ok {
				ppid = strings.TrimSpace(v)
			} else if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				uids = strings.Join(strings.Fields(v), " ")
			}
		}
		if ppid != strconv.Itoa(acceptor) {
			continue
		}
		workers++
		want := strings.Repeat(u.Uid+" ", 4)
		if uids != want[:len(want)-1] {
			return fmt.Errorf("worker %d runs with uids %q, want %s (%s) for all four", pid, uids, u.Uid, name)
		}
		fmt.Printf("  worker %d runs as %s (uid %s)\n", pid, name, u.Uid)
	}
	if workers == 0 {
		return fmt.Errorf("no worker process of acceptor %d found", acceptor)
	}
	return nil
}

// checkConfig runs acceptor -check-config with args and shows its output.
func checkConfig(acceptor string, args, env []string) error {
	args = append(args, "-check-config")
	step(fmt.Sprintf("%s %s", acceptor, strings.Join(args, " ")))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, acceptor, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fmt.Println("  |", line)
	}
	if err != nil {
		return fmt.Errorf("%s -check-config: %w", acceptor, err)
	}
	return nil
}

// waitReady reads the acceptor's log until it is ready, returning its port.
func waitReady(logs <-chan map[string]any, d time.Duration) (int, error) {
	timeout := time.After(d)
	port := 0
	for {
		select {
		case m, ok := <-logs:
			if !ok {
				return 0, errors.New("gss-acceptor exited during startup")
			}
			switch m["msg"] {
			case "listening":
				addr, _ := m["address"].(string)
				if i := strings.LastIndexByte(addr, ':'); i >= 0 {
					port, _ = strconv.Atoi(addr[i+1:])
				}
			case "ready":
				if port == 0 {
					return 0, errors.New("gss-acceptor is ready but logged no address")
				}
				return port, nil
			case "cannot start", "cannot start workers":
				return 0, fmt.Errorf("gss-acceptor: %v: %v", m["msg"], m["error"])
			}
		case <-timeout:
			return 0, fmt.Errorf("gss-acceptor not ready after %v", d)
		}
	}
}
