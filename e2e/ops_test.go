package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/rtune"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// opsAcceptor is an acceptor started with a config file the test can
// rewrite and reload.
type opsAcceptor struct {
	*acceptor
	keys        map[string]string
	metricsAddr string
}

// opsOptions start an acceptor in a particular way.
type opsOptions struct {
	keys    acceptorOptions // config keys over the defaults of baseKeys
	env     []string        // added to the realm's environment
	prefix  []string        // argv before the acceptor (e.g. systemd-socket-activate ...)
	noWait  bool            // do not wait for "ready" (socket activation waits for a client)
	cfgPath string          // config file path (default: in t.TempDir())
}

// baseKeys are the defaults of startAcceptor, plus metrics on loopback.
func baseKeys(r *testrealm.Realm) map[string]string {
	return map[string]string{
		"listen":            `["127.0.0.1:0"]`,
		"keytab":            strconv.Quote(r.ServiceKeytab),
		"workers":           "2",
		"worker_path":       strconv.Quote(bin("gss-worker")),
		"log_level":         "debug",
		"log_format":        "json",
		"shutdown_timeout":  "20s",
		"handshake_timeout": "5s",
		"metrics_address":   `"127.0.0.1:0"`,
	}
}

func writeConfig(t testing.TB, path string, keys map[string]string) {
	t.Helper()
	var b strings.Builder
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if keys[k] != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, keys[k])
		}
	}
	// Write and rename: a SIGHUP never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startOps starts gss-acceptor with the options and, unless noWait, waits
// until it is ready and learns its addresses from its log.
func startOps(t *testing.T, r *testrealm.Realm, o opsOptions) *opsAcceptor {
	t.Helper()
	keys := baseKeys(r)
	for k, v := range o.keys {
		keys[k] = v
	}
	cfg := o.cfgPath
	if cfg == "" {
		cfg = filepath.Join(t.TempDir(), "gss-acceptor.yaml")
	}
	writeConfig(t, cfg, keys)
	a := &acceptor{t: t, logs: newLogLines(), done: make(chan struct{}), cfg: cfg}
	argv := append(append([]string{}, o.prefix...), bin("gss-acceptor"), "-config", cfg)
	a.cmd = exec.Command(argv[0], argv[1:]...)
	a.cmd.Env = append(r.Env(), o.env...)
	stderr, err := a.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	a.cmd.Stdout = os.Stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.logs.consume(stderr)
		a.cmd.Wait()
		a.status = a.cmd.ProcessState
		close(a.done)
	}()
	t.Cleanup(a.stop)
	oa := &opsAcceptor{acceptor: a, keys: keys}
	if !o.noWait {
		oa.waitReady(t)
	}
	return oa
}

// waitReady waits for the "ready" line and records the addresses.
func (a *opsAcceptor) waitReady(t *testing.T) {
	t.Helper()
	a.logs.wait(t, 30*time.Second, 1, "ready", msgIs("ready"))
	if l := a.logs.find(msgIs("listening")); len(l) > 0 {
		a.addr, _ = l[0]["address"].(string)
		_, port, _ := net.SplitHostPort(a.addr)
		a.port, _ = strconv.Atoi(port)
	}
	if l := a.logs.find(msgIs("metrics listening")); len(l) > 0 {
		a.metricsAddr, _ = l[0]["address"].(string)
	}
}

// reload rewrites the config with changes applied and sends SIGHUP; it
// waits for the n-th "reloaded" or "reload refused" line, whichever
// outcome want names, and returns it.
func (a *opsAcceptor) reload(t *testing.T, changes acceptorOptions, want string) map[string]any {
	t.Helper()
	for k, v := range changes {
		a.keys[k] = v
	}
	writeConfig(t, a.cfg, a.keys)
	return a.hup(t, want)
}

// hup sends SIGHUP and waits for the next reload outcome line, which must
// be want ("reloaded" or a "reload refused: ..." message prefix).
func (a *opsAcceptor) hup(t *testing.T, want string) map[string]any {
	t.Helper()
	isOutcome := func(m map[string]any) bool {
		msg, _ := m["msg"].(string)
		return msg == "reloaded" || strings.HasPrefix(msg, "reload refused")
	}
	n := len(a.logs.find(isOutcome))
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	got := a.logs.wait(t, 30*time.Second, n+1, "reload outcome", isOutcome)[n]
	if msg := got["msg"].(string); !strings.HasPrefix(msg, want) {
		t.Fatalf("reload outcome %q, want %q: %v", msg, want, got)
	}
	return got
}

// scrape fetches /metrics and returns every sample keyed by its series as
// printed ("name" or `name{a="b",c="d"}`; promhttp sorts the labels).
func (a *opsAcceptor) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	if a.metricsAddr == "" {
		t.Fatal("no metrics address in the log")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + a.metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape status %d", resp.StatusCode)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// waitMetric polls the endpoint until series has value want.
func (a *opsAcceptor) waitMetric(t *testing.T, series string, want float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := a.scrape(t)
		if m[series] == want {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", series, m[series], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitWorkers waits until the acceptor has exactly n gss-worker children
// (from /proc) and returns their pids.
func (a *opsAcceptor) waitWorkers(t *testing.T, n int) []int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		pids := a.workerPIDs()
		if len(pids) == n {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d worker processes, want %d\nlog:\n%s", len(pids), n, a.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serviceTicket gets a fresh service ticket for principal from the KDC.
func serviceTicket(t testing.TB, r *testrealm.Realm, principal string) *client.Ticket {
	t.Helper()
	cfg, err := client.LoadKrb5Conf(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := client.FromKeytab(r.UserPrincipal, r.UserKeytab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tkt, err := creds.ServiceTicket(principal)
	if err != nil {
		t.Fatal(err)
	}
	return tkt
}

// loadGen runs sessions in a loop from several goroutines until stopped.
type loadGen struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	ok      atomic.Int64
	mu      sync.Mutex
	errs    []error
	stopped bool
}

func startLoad(addr string, tkt *client.Ticket, goroutines, messages int) *loadGen {
	ctx, cancel := context.WithCancel(context.Background())
	g := &loadGen{cancel: cancel}
	for i := 0; i < goroutines; i++ {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for ctx.Err() == nil {
				if err := oneSession(addr, tkt, messages); err != nil {
					g.mu.Lock()
					g.errs = append(g.errs, err)
					g.mu.Unlock()
				} else {
					g.ok.Add(1)
				}
			}
		}()
	}
	return g
}

// waitSessions waits until n more sessions than now have succeeded.
func (g *loadGen) waitSessions(t *testing.T, n int64) {
	t.Helper()
	target := g.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for g.ok.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("load stalled at %d sessions, want %d", g.ok.Load(), target)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (g *loadGen) stop() (ok int64, errs []error) {
	g.cancel()
	g.wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ok.Load(), g.errs
}

// TestReloadResizeUnderLoad resizes the pool 2 → 4 → 1 with SIGHUP while
// eight goroutines loop sessions: not one session fails, the worker count
// (gss-worker children in /proc) follows the config, the new workers take
// sessions, and the drained ones exit without being counted as restarts.
func TestReloadResizeUnderLoad(t *testing.T) {
	r := testrealm.Shared(t)
	a := startOps(t, r, opsOptions{})
	tkt := goTicket(t, r)
	initial := a.waitWorkers(t, 2)

	load := startLoad(a.addr, tkt, 8, 3)
	defer load.stop()
	load.waitSessions(t, 50)

	steps := []struct {
		name    string
		workers int
	}{
		{"grow to 4", 4},
		{"shrink to 1", 1},
		{"back to 3", 3},
	}
	for _, st := range steps {
		// Before shrinking, open long sessions: they land on several
		// workers, and those that are resized away must drain, not cut
		// them.
		var long []*client.Conn
		var owners []int
		if st.workers == 1 {
			before := a.workerPIDs()
			for i := 0; i < 4; i++ {
				c, err := client.Dial(context.Background(), a.addr, tkt, client.Options{Flags: gss.FlagMutual | gss.FlagSequence})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Abort()
				if err := c.Exchange([]byte("long-lived"), client.MessageOptions{}); err != nil {
					t.Fatal(err)
				}
				long = append(long, c)
				owners = append(owners, socketOwners(t, a.port, c.LocalAddr().(*net.TCPAddr).Port, before)...)
			}
		}
		a.reload(t, acceptorOptions{"workers": strconv.Itoa(st.workers)}, "reloaded")
		if len(long) > 0 {
			// The short sessions on the surplus workers end within
			// milliseconds; the workers holding a long session must still
			// be there, draining, and its session must still work.
			time.Sleep(500 * time.Millisecond)
			alive := a.workerPIDs()
			for _, pid := range owners {
				if !slices.Contains(alive, pid) {
					t.Fatalf("worker %d holding an open session is gone after the shrink (alive: %v)", pid, alive)
				}
			}
			if len(alive) < 2 {
				t.Fatalf("long sessions on workers %v, but only %v alive: nothing was left to drain", owners, alive)
			}
			if m := a.scrape(t); m[`gss_acceptor_workers{state="draining"}`] != float64(len(alive)-1) {
				t.Errorf("draining gauge %v with %d workers alive, want %d", m[`gss_acceptor_workers{state="draining"}`], len(alive), len(alive)-1)
			}
			for i, c := range long {
				for j := 0; j < 3; j++ {
					if err := c.Exchange([]byte("after the shrink"), client.MessageOptions{}); err != nil {
						t.Fatalf("long session %d on worker %d cut by the shrink: %v", i, owners[i], err)
					}
				}
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			}
			t.Logf("long sessions on workers %v survived the shrink; %d workers drained", owners, len(alive)-1)
		}
		pids := a.waitWorkers(t, st.workers)
		// The pool serves with the new size: sessions keep succeeding and
		// each current worker takes some.
		load.waitSessions(t, int64(20*st.workers))
		a.waitMetric(t, `gss_acceptor_workers{state="ready"}`, float64(st.workers))
		m := a.waitMetric(t, `gss_acceptor_workers{state="draining"}`, 0)
		if got := m["gss_acceptor_workers_desired"]; got != float64(st.workers) {
			t.Errorf("%s: workers_desired %v", st.name, got)
		}
		for _, pid := range pids {
			if took := a.logs.find(func(m map[string]any) bool {
				return m["msg"] == "session handed off" && m["worker_pid"] == float64(pid)
			}); len(took) == 0 {
				t.Errorf("%s: worker %d took no session", st.name, pid)
			}
		}
		t.Logf("%s: workers %v, %d sessions so far", st.name, pids, load.ok.Load())
	}
	ok, errs := load.stop()
	for _, err := range errs {
		t.Errorf("session failed: %v", err)
	}
	if len(errs) > 0 {
		t.Fatalf("%d of %d sessions failed across the resizes", len(errs), ok+int64(len(errs)))
	}
	t.Logf("%d sessions, none failed; first workers were %v", ok, initial)
	if l := a.logs.find(msgIs("worker exited; respawning")); len(l) > 0 {
		t.Errorf("drained workers were respawned: %v", l)
	}
	m := a.scrape(t)
	if m["gss_acceptor_worker_restarts_total"] != 0 {
		t.Errorf("worker_restarts_total %v after resizes, want 0", m["gss_acceptor_worker_restarts_total"])
	}
	if m[`gss_acceptor_reloads_total{result="ok"}`] != 3 {
		t.Errorf("reloads ok = %v, want 3", m[`gss_acceptor_reloads_total{result="ok"}`])
	}
	// The loop's sessions and the four long ones.
	if got, want := m[`gss_acceptor_handshakes_total{result="ok"}`], float64(ok+4); got != want {
		t.Errorf("handshakes ok %v, want the %v sessions made", got, want)
	}
}

// TestReloadRefused: a bad configuration or keytab on SIGHUP is refused
// with a log line naming the problem; the running configuration keeps
// serving with the same workers; a later good file is applied.
func TestReloadRefused(t *testing.T) {
	r := testrealm.Shared(t)
	a := startOps(t, r, opsOptions{})
	tkt := goTicket(t, r)
	pids := a.waitWorkers(t, 2)
	corruptKeytab := filepath.Join(t.TempDir(), "corrupt.keytab")
	if err := os.WriteFile(corruptKeytab, []byte{0x05, 0x02}, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		changes acceptorOptions
		refusal string // message of the log line
		detail  string // in its error field
	}{
		{"unknown key", acceptorOptions{"wrokers": "4"}, "reload refused: configuration invalid; keeping the running one", `unknown key "wrokers"`},
		{"bad value", acceptorOptions{"workers": "lots"}, "reload refused: configuration invalid; keeping the running one", "workers"},
		{"missing keytab", acceptorOptions{"keytab": `"/nonexistent/gss.keytab"`}, "reload refused: keytab unusable; keeping the running one", "/nonexistent/gss.keytab"},
		{"corrupt keytab", acceptorOptions{"keytab": strconv.Quote(corruptKeytab)}, "reload refused: keytab unusable; keeping the running one", "reading keytab " + corruptKeytab},
		{"service not in keytab", acceptorOptions{"services": `["nosuch/localhost"]`}, "reload refused: keytab unusable; keeping the running one", `service "nosuch/localhost" has no AES key in the keytab`},
	}
	good := map[string]string{}
	for k, v := range a.keys {
		good[k] = v
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.keys = map[string]string{}
			for k, v := range good {
				a.keys[k] = v
			}
			line := a.reload(t, tt.changes, tt.refusal)
			if line["msg"] != tt.refusal || !strings.Contains(fmt.Sprint(line["error"]), tt.detail) {
				t.Errorf("refusal line %v, want %q with %q", line, tt.refusal, tt.detail)
			}
			if err := oneSession(a.addr, tkt, 2); err != nil {
				t.Fatalf("session after the refused reload: %v", err)
			}
			if now := a.workerPIDs(); !sameSet(now, pids) {
				t.Errorf("workers %v after a refused reload, want the same %v", now, pids)
			}
			m := a.scrape(t)
			if m[`gss_acceptor_reloads_total{result="refused"}`] != float64(i+1) || m["gss_acceptor_config_last_reload_successful"] != 0 {
				t.Errorf("reload metrics: refused %v, successful %v", m[`gss_acceptor_reloads_total{result="refused"}`], m["gss_acceptor_config_last_reload_successful"])
			}
		})
	}
	a.keys = good
	a.reload(t, acceptorOptions{"workers": "3"}, "reloaded")
	a.waitWorkers(t, 3)
	if m := a.scrape(t); m["gss_acceptor_config_last_reload_successful"] != 1 {
		t.Error("config_last_reload_successful not 1 after a good reload")
	}
	if err := oneSession(a.addr, tkt, 2); err != nil {
		t.Fatal(err)
	}
}

func sameSet(a, b []int) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestReloadRestartOnlyKeys: keys that need a restart are named in a
// warning and keep their running values.
func TestReloadRestartOnlyKeys(t *testing.T) {
	r := testrealm.Shared(t)
	a := startOps(t, r, opsOptions{})
	a.reload(t, acceptorOptions{"listen": `["127.0.0.1:1"]`, "max_handshakes": "3", "idle_timeout": "1m"}, "reloaded")
	w := a.logs.wait(t, 5*time.Second, 1, "restart-only warning", msgIs("some changes take effect only after a restart; their running values stay"))
	keys := fmt.Sprint(w[0]["keys"])
	for _, k := range []string{"listen", "max_handshakes"} {
		if !strings.Contains(keys, k) {
			t.Errorf("warning %v does not name %s", keys, k)
		}
	}
	if strings.Contains(keys, "idle_timeout") {
		t.Errorf("warning %v names idle_timeout, which reload applies", keys)
	}
	// Still listening where it was.
	if err := oneSession(a.addr, goTicket(t, r), 1); err != nil {
		t.Fatal(err)
	}
}

// TestKeytabRotation rotates a service key (new kvno) and reloads: a
// ticket for the new kvno fails before the reload (KRB_AP_ERR_BADKEYVER)
// and succeeds after it, and a ticket for the old kvno keeps working
// because the new keytab keeps the old key too.
func TestKeytabRotation(t *testing.T) {
	r := testrealm.Shared(t)
	dir := t.TempDir()
	kt := filepath.Join(dir, "rot.keytab")
	svc := uniqueService("rot")
	if err := r.AddService(svc, []int32{18}, kt); err != nil {
		t.Fatal(err)
	}
	a := startOps(t, r, opsOptions{keys: acceptorOptions{"keytab": strconv.Quote(kt), "services": `["` + svc + `"]`}})
	oldTkt := serviceTicket(t, r, svc)
	if oldTkt.Ticket.EncPart.KVNO != 1 {
		t.Fatalf("first ticket kvno %d, want 1", oldTkt.Ticket.EncPart.KVNO)
	}
	if err := oneSession(a.addr, oldTkt, 2); err != nil {
		t.Fatalf("kvno 1 before rotation: %v", err)
	}

	// Rotate in the KDC, keeping the old key there too.
	if _, err := r.Kadmin("cpw -randkey -keepold -e aes256-cts-hmac-sha1-96:normal " + svc + "@" + r.Name); err != nil {
		t.Fatal(err)
	}
	newTkt := serviceTicket(t, r, svc)
	if newTkt.Ticket.EncPart.KVNO != 2 {
		t.Fatalf("ticket after cpw has kvno %d, want 2", newTkt.Ticket.EncPart.KVNO)
	}
	before := len(a.logs.find(resultIs("rejected")))
	if err := oneSession(a.addr, newTkt, 1); err == nil {
		t.Fatal("kvno 2 ticket accepted before the keytab was reloaded")
	}
	rej := a.logs.wait(t, 5*time.Second, before+1, "kvno rejection", resultIs("rejected"))[before]
	if rej["krb_error"] != float64(44) {
		t.Errorf("rejection krb_error %v, want 44 (KRB_AP_ERR_BADKEYVER): %v", rej["krb_error"], rej)
	}
	t.Logf("kvno not in keytab: %s", rawLine(a, rej))

	// The operator's procedure: build the new keytab beside the old one
	// (a copy plus the new kvno), move it into place, SIGHUP.
	next := filepath.Join(dir, "rot.keytab.new")
	data, err := os.ReadFile(kt)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(next, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Kadmin("ktadd -k FILE:" + next + " -norandkey " + svc + "@" + r.Name); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, kt); err != nil {
		t.Fatal(err)
	}
	line := a.hup(t, "reloaded")
	if p := fmt.Sprint(line["principals"]); !strings.Contains(p, "kvno 2") || !strings.Contains(p, "kvno 1") {
		t.Errorf("reload line principals %s, want kvno 1 and 2", p)
	}
	if err := oneSession(a.addr, newTkt, 2); err != nil {
		t.Fatalf("kvno 2 after the reload: %v", err)
	}
	if err := oneSession(a.addr, oldTkt, 2); err != nil {
		t.Fatalf("kvno 1 after the reload (old key kept): %v", err)
	}
}

// TestSocketActivation runs the acceptor under systemd-socket-activate,
// which binds the port, waits for the first client and then execs the
// acceptor with LISTEN_FDS: that client is served, and so are later ones.
func TestSocketActivation(t *testing.T) {
	r := testrealm.Shared(t)
	sa := systemdTool(t, "systemd-socket-activate")
	port := freeTCPPort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	a := startOps(t, r, opsOptions{
		// listen is ignored under socket activation; a port that nothing
		// could bind shows that it really is.
		keys:   acceptorOptions{"listen": `["127.0.0.1:1"]`, "metrics_address": ""},
		prefix: []string{sa, "-l", addr},
		noWait: true,
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close() // systemd-socket-activate is listening; the acceptor starts now
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("systemd-socket-activate not listening on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	a.waitReady(t)
	if l := a.logs.find(msgIs("using socket-activated listeners")); len(l) != 1 || l[0]["count"] != float64(1) {
		t.Fatalf("no socket-activated listener in the log:\n%s", a.logs)
	}
	if l := a.logs.find(msgIs("listening")); len(l) != 0 {
		t.Errorf("acceptor bound its own listener under socket activation: %v", l)
	}
	out, err := mitClient(t, r, port, nil, "-seq", "-mcount", "2", "127.0.0.1", service, "via systemd socket")
	if err != nil || strings.Count(out, "Signature verified.") != 2 {
		t.Fatalf("MIT client through the activated socket: %v\n%s", err, out)
	}
	if err := oneSession(addr, goTicket(t, r), 3); err != nil {
		t.Fatal(err)
	}
	// The acceptor re-executed itself with a steady sysmon (steady_sysmon,
	// internal/rtune) and still found the activated socket: the exec kept
	// its PID, which LISTEN_PID names.
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", a.cmd.Process.Pid)); err != nil ||
		!slices.Contains(strings.Split(string(env), "\x00"), "GODEBUG="+rtune.Schedtrace) {
		t.Errorf("acceptor environment lacks GODEBUG=%s (steady_sysmon): %v", rtune.Schedtrace, err)
	}
	// LISTEN_* are unset for the workers (and the acceptor itself); their
	// GOMAXPROCS is worker_cpus (default 1), and they inherit GODEBUG.
	for _, pid := range a.workerPIDs() {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(env), "LISTEN_") {
			t.Errorf("worker %d inherited LISTEN_*", pid)
		}
		if !slices.Contains(strings.Split(string(env), "\x00"), "GOMAXPROCS=1") {
			t.Errorf("worker %d environment %q lacks GOMAXPROCS=1 (worker_cpus)", pid, env)
		}
		if !slices.Contains(strings.Split(string(env), "\x00"), "GODEBUG="+rtune.Schedtrace) {
			t.Errorf("worker %d environment %q lacks GODEBUG=%s (steady_sysmon)", pid, env, rtune.Schedtrace)
		}
	}
}

// systemdTool finds a systemd helper program (Debian's systemd package).
func systemdTool(t *testing.T, name string) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/" + name, "/lib/systemd/" + name, "/usr/lib/systemd/" + name} {
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	t.Fatalf("%s not found: install the systemd package (scripts/install-deps)", name)
	return ""
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// notifySocket is a test NOTIFY_SOCKET: a unixgram socket collecting the
// sd_notify datagrams the acceptor sends.
type notifySocket struct {
	path string
	conn *net.UnixConn
	mu   sync.Mutex
	msgs []string
	cond chan struct{}
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn, cond: make(chan struct{})}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.mu.Lock()
			n.msgs = append(n.msgs, string(buf[:k]))
			close(n.cond)
			n.cond = make(chan struct{})
			n.mu.Unlock()
		}
	}()
	return n
}

// wait returns the first datagram at or after index from that starts with
// prefix (its first state, e.g. "READY=1"), and its index.
func (n *notifySocket) wait(t *testing.T, from int, prefix string, d time.Duration) (string, int) {
	t.Helper()
	deadline := time.After(d)
	for {
		n.mu.Lock()
		for i := from; i < len(n.msgs); i++ {
			if strings.HasPrefix(n.msgs[i], prefix) {
				m := n.msgs[i]
				n.mu.Unlock()
				return m, i
			}
		}
		ch := n.cond
		all := strings.Join(n.msgs, " | ")
		n.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("no %q notification within %v; got: %s", prefix, d, all)
			return "", 0
		}
	}
}

// TestSdNotify watches the acceptor's sd_notify messages on a test
// NOTIFY_SOCKET, as systemd would with Type=notify and WatchdogSec=2s.
func TestSdNotify(t *testing.T) {
	r := testrealm.Shared(t)
	n := newNotifySocket(t)
	// WATCHDOG_PID must be the acceptor's pid: a shell puts its own pid
	// there and execs the acceptor, which keeps it.
	a := startOps(t, r, opsOptions{
		env:    []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=2000000"},
		prefix: []string{"/bin/sh", "-c", `WATCHDOG_PID=$$ exec "$0" "$@"`},
	})
	ready, i := n.wait(t, 0, "READY=1", 10*time.Second)
	if !strings.Contains(ready, "STATUS=2 workers, 0 sessions") {
		t.Errorf("READY without the status line: %q", ready)
	}
	n.wait(t, 0, "WATCHDOG=1", 5*time.Second)

	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		t.Fatal(err)
	}
	before := ts.Sec*1e6 + ts.Nsec/1e3
	a.hup(t, "reloaded")
	rel, j := n.wait(t, i+1, "RELOADING=1", 10*time.Second)
	var usec int64 = -1
	for _, line := range strings.Split(rel, "\n") {
		if v, ok := strings.CutPrefix(line, "MONOTONIC_USEC="); ok {
			usec, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if usec < before || usec > before+10e6 {
		t.Errorf("RELOADING=1 with MONOTONIC_USEC %d, want CLOCK_MONOTONIC now (%d µs)", usec, before)
	}
	n.wait(t, j+1, "READY=1", 10*time.Second)
	// STATUS= lines also come on their own, every 10 s.
	n.wait(t, j+1, "STATUS=", 15*time.Second)

	// Only the acceptor talks to systemd: workers get no NOTIFY_SOCKET.
	for _, pid := range a.workerPIDs() {
		env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(env), "NOTIFY_SOCKET") || strings.Contains(string(env), "WATCHDOG_") {
			t.Errorf("worker %d has the systemd notification environment", pid)
		}
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	n.wait(t, j+1, "STOPPING=1", 10*time.Second)
	if st := a.wait(30 * time.Second); st.ExitCode() != 0 {
		t.Errorf("exit status %d", st.ExitCode())
	}
}

// TestWatchdogPidMismatch: with WATCHDOG_PID naming another process the
// acceptor is not the watched one and sends no WATCHDOG=1.
func TestWatchdogPidMismatch(t *testing.T) {
	r := testrealm.Shared(t)
	n := newNotifySocket(t)
	startOps(t, r, opsOptions{env: []string{"NOTIFY_SOCKET=" + n.path, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=1"}})
	n.wait(t, 0, "READY=1", 10*time.Second)
	time.Sleep(2 * time.Second) // four watchdog periods' worth of pings, were it enabled
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, m := range n.msgs {
		if strings.Contains(m, "WATCHDOG=1") {
			t.Fatalf("WATCHDOG=1 sent although WATCHDOG_PID is another process: %q", m)
		}
	}
}

// TestMetricsEndpoint makes a known number of sessions and checks the
// counters the endpoint reports against them.
func TestMetricsEndpoint(t *testing.T) {
	r := testrealm.Shared(t)
	a := startOps(t, r, opsOptions{})
	tkt := goTicket(t, r)
	const sessions, messages = 5, 3
	m0 := a.scrape(t)
	for _, series := range []string{
		`gss_acceptor_handshakes_total{result="ok"}`, `gss_acceptor_sessions_total{result="ok"}`,
		`gss_acceptor_session_messages_total{direction="in"}`, "gss_acceptor_worker_restarts_total",
	} {
		if v, ok := m0[series]; !ok || v != 0 {
			t.Errorf("fresh %s = %v (present %v), want 0", series, v, ok)
		}
	}
	for i := 0; i < sessions; i++ {
		if err := oneSession(a.addr, tkt, messages); err != nil {
			t.Fatal(err)
		}
	}
	// One rejected token too: garbage where the AP-REQ belongs.
	c, err := net.Dial("tcp", a.addr)
	if err != nil {
		t.Fatal(err)
	}
	out := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	c.Write(wire.AppendFrame(out, wire.FlagContext, []byte("not a token")))
	io.Copy(io.Discard, c)
	c.Close()

	m := a.waitMetric(t, `gss_acceptor_sessions_total{result="ok"}`, sessions)
	m = a.waitMetric(t, `gss_acceptor_handshakes_total{result="rejected"}`, 1)
	tests := []struct {
		series string
		want   float64
	}{
		{`gss_acceptor_handshakes_total{result="ok"}`, sessions},
		{`gss_acceptor_sessions_total{result="error"}`, 0},
		// Each session: messages DATA frames and the closing NOOP in, one
		// MIC per message out.
		{`gss_acceptor_session_messages_total{direction="in"}`, sessions * (messages + 1)},
		{`gss_acceptor_session_messages_total{direction="out"}`, sessions * messages},
		{"gss_acceptor_handshake_duration_seconds_count", sessions},
		{"gss_acceptor_handoff_duration_seconds_count", sessions},
		{"gss_acceptor_session_duration_seconds_count", sessions},
		{`gss_acceptor_workers{state="ready"}`, 2},
		{"gss_acceptor_workers_desired", 2},
		{"gss_acceptor_sessions_active", 0},
		{"gss_acceptor_handshakes_in_progress", 0},
		{"gss_acceptor_worker_restarts_total", 0},
		// The garbage token got no Kerberos error code.
		{`gss_acceptor_handshakes_total{result="timeout"}`, 0},
	}
	for _, tt := range tests {
		if got, ok := m[tt.series]; !ok || got != tt.want {
			t.Errorf("%s = %v (present %v), want %v", tt.series, got, ok, tt.want)
		}
	}
	// Bytes: each frame is a 5-byte header and its body, so at least that.
	if in := m[`gss_acceptor_session_bytes_total{direction="in"}`]; in < 5*sessions*(messages+1)+sessions*messages*16 {
		t.Errorf("bytes in %v too small for %d frames", in, sessions*(messages+1))
	}
	if out := m[`gss_acceptor_session_bytes_total{direction="out"}`]; out < 5*sessions*messages+sessions*messages*16 {
		t.Errorf("bytes out %v too small", out)
	}
	// Every handshake's authenticator is in the replay cache.
	if rc := m["gss_acceptor_replay_cache_entries"]; rc < sessions {
		t.Errorf("replay cache %v entries, want at least %d", rc, sessions)
	}
	// One per-worker series per live worker, with its pid.
	for _, pid := range a.workerPIDs() {
		found := false
		for k := range m {
			if strings.HasPrefix(k, "gss_acceptor_worker_sessions{") && strings.Contains(k, `pid="`+strconv.Itoa(pid)+`"`) {
				found = true
			}
		}
		if !found {
			t.Errorf("no worker_sessions series for worker %d", pid)
		}
	}
	var build bool
	for k, v := range m {
		if strings.HasPrefix(k, "gss_acceptor_build_info{") && v == 1 {
			build = true
		}
	}
	if !build {
		t.Error("no build_info")
	}
	// An open session shows in the gauges while it lasts.
	cl, err := client.Dial(context.Background(), a.addr, tkt, client.Options{Flags: gss.FlagMutual | gss.FlagSequence})
	if err != nil {
		t.Fatal(err)
	}
	a.waitMetric(t, "gss_acceptor_sessions_active", 1)
	cl.Close()
	a.waitMetric(t, "gss_acceptor_sessions_active", 0)
}

// TestCheckConfig runs -check-config: 0 for a usable configuration, 1 for
// a bad file or a keytab that cannot serve a listed service.
func TestCheckConfig(t *testing.T) {
	r := testrealm.Shared(t)
	dir := t.TempDir()
	tests := []struct {
		name   string
		keys   acceptorOptions
		status int
		output string
	}{
		{"good", nil, 0, "is ok"},
		{"good, listed service", acceptorOptions{"services": `["host/localhost"]`}, 0, "keytab principal host/localhost@" + r.Name},
		{"unknown key", acceptorOptions{"wrokers": "2"}, 1, `unknown key "wrokers"`},
		{"bad duration", acceptorOptions{"handshake_timeout": "30"}, 1, "handshake_timeout"},
		{"service not in keytab", acceptorOptions{"services": `["nosuch/localhost"]`}, 1, `service "nosuch/localhost" has no AES key in the keytab`},
		{"missing keytab", acceptorOptions{"keytab": `"/nonexistent/x.keytab"`}, 1, "/nonexistent/x.keytab"},
		{"missing worker", acceptorOptions{"worker_path": `"/nonexistent/gss-worker"`}, 1, "worker executable"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := baseKeys(r)
			for k, v := range tt.keys {
				keys[k] = v
			}
			cfg := filepath.Join(dir, fmt.Sprintf("c%d.yaml", i))
			writeConfig(t, cfg, keys)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin("gss-acceptor"), "-config", cfg, "-check-config")
			out, err := cmd.CombinedOutput()
			status := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				status = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if status != tt.status || !strings.Contains(string(out), tt.output) {
				t.Fatalf("exit %d, want %d; output must contain %q:\n%s", status, tt.status, tt.output, out)
			}
		})
	}
}

// TestSystemdUnitsVerify checks systemd/gss-acceptor.{service,socket}
// with systemd-analyze verify. The units are installed in a temporary
// directory with the binary paths pointing at the built binaries, so the
// only thing verify could otherwise complain about (the binary not being
// installed) cannot happen; any other complaint fails the test. A unit with
// a misspelt directive shows that verify does report problems here.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze := systemdTool(t, "systemd-analyze")
	dir := t.TempDir()
	install := func(name string, edit func(string) string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("..", "systemd", name))
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(data), "/usr/sbin/gss-acceptor", bin("gss-acceptor"))
		if edit != nil {
			s = edit(s)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	verify := func(units ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, analyze, append([]string{"verify", "--man=no"}, units...)...)
		out, _ := cmd.CombinedOutput()
		return strings.TrimSpace(string(out))
	}
	svc := install("gss-acceptor.service", nil)
	sock := install("gss-acceptor.socket", nil)
	if out := verify(svc, sock); out != "" {
		t.Errorf("systemd-analyze verify complains about the units:\n%s", out)
	}
	bad := filepath.Join(dir, "bad", "gss-acceptor.service")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	data, _ := os.ReadFile(svc)
	os.WriteFile(bad, []byte(strings.Replace(string(data), "WatchdogSec=", "WatchdogSecs=", 1)), 0o644)
	if out := verify(bad); !strings.Contains(out, "WatchdogSecs") {
		t.Errorf("verify did not report a misspelt directive; output %q", out)
	}
}

// TestPrivilegeSeparation runs the workers as nobody/nogroup (needs root,
// as CI runs): their /proc status shows the account and no supplementary
// groups, the keytab (root, 0600) cannot be opened with their credentials
// and is not open in them, and sessions work.
func TestPrivilegeSeparation(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must run the e2e tests as root to test worker_user")
		}
		t.Skip("needs root to start workers as another user")
	}
	r := testrealm.Shared(t)
	// A directory everybody may traverse, so that the worker binary can be
	// executed as nobody; the keytab in it stays root's, 0600.
	dir, err := os.MkdirTemp("", "gss-e2e-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	worker := filepath.Join(dir, "gss-worker")
	copyFile(t, bin("gss-worker"), worker, 0o755)
	kt := filepath.Join(dir, "service.keytab")
	copyFile(t, r.ServiceKeytab, kt, 0o600)

	a := startOps(t, r, opsOptions{keys: acceptorOptions{
		"worker_user": "nobody", "worker_group": "nogroup",
		"worker_path": strconv.Quote(worker), "keytab": strconv.Quote(kt),
	}})
	pids := a.waitWorkers(t, 2)
	for _, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		fields := map[string]string{}
		for _, line := range strings.Split(string(st), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.Join(strings.Fields(v), " ")
			}
		}
		if fields["Uid"] != "65534 65534 65534 65534" || fields["Gid"] != "65534 65534 65534 65534" || fields["Groups"] != "" {
			t.Errorf("worker %d runs as Uid %q Gid %q Groups %q, want nobody/nogroup and no groups", pid, fields["Uid"], fields["Gid"], fields["Groups"])
		}
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, e := range ents {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); l == kt {
				t.Errorf("worker %d has the keytab open", pid)
			}
		}
	}
	// The acceptor itself stays root: it reads the keytab.
	if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", a.cmd.Process.Pid)); !strings.Contains(string(st), "Uid:\t0\t0\t0\t0") {
		t.Error("acceptor does not run as root")
	}
	// The worker's identity cannot read the keytab.
	cat := exec.Command("/bin/cat", kt)
	cat.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	if out, err := cat.CombinedOutput(); err == nil || !strings.Contains(string(out), "Permission denied") {
		t.Errorf("nobody could read the keytab: %v %q", err, out)
	}
	tkt := goTicket(t, r)
	for i := 0; i < 4; i++ {
		if err := oneSession(a.addr, tkt, 3); err != nil {
			t.Fatalf("session %d with unprivileged workers: %v\n%s", i, err, a.logs)
		}
	}
	if out, err := mitClient(t, r, a.port, nil, "-seq", "-mcount", "2", "127.0.0.1", service, "unprivileged"); err != nil {
		t.Fatalf("MIT client: %v\n%s", err, out)
	}
}

// serviceSeq makes service names unique in the shared realm, which lives
// as long as the test binary (-count=N runs a test N times in it).
var serviceSeq atomic.Int64

// uniqueService returns "<prefix><n>/localhost", new for each call.
func uniqueService(prefix string) string {
	return fmt.Sprintf("%s%d/localhost", prefix, serviceSeq.Add(1))
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(to, mode); err != nil {
		t.Fatal(err)
	}
}

// TestTroubleshootingErrors produces the common Kerberos failures an
// operator meets and checks the log line and Kerberos error code each one
// gives (docs/operations.md, "Troubleshooting Kerberos errors"): clock
// skew, a kvno the keytab lacks, a service the acceptor does not serve,
// and an enctype the keytab lacks.
func TestTroubleshootingErrors(t *testing.T) {
	r := testrealm.Shared(t)
	dir := t.TempDir()
	// A service whose KDC keys are AES256 (18) and AES128 (17) but whose
	// keytab was exported with AES128 only: tickets come in etype 18.
	enc := filepath.Join(dir, "enc-all.keytab")
	encSvc, otherSvc := uniqueService("enc"), uniqueService("other")
	if err := r.AddService(encSvc, []int32{18, 17}, enc); err != nil {
		t.Fatal(err)
	}
	// Another service, known to the KDC but not in the acceptor's keytab.
	if err := r.AddService(otherSvc, []int32{18}, filepath.Join(dir, "other.keytab")); err != nil {
		t.Fatal(err)
	}
	// The acceptor's keytab: the realm's host/localhost keys plus the
	// AES128 key of enc/localhost.
	acc, err := keytab.Load(r.ServiceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	encKT, err := keytab.Load(enc)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range encKT.Entries {
		if e.Key.KeyType == 17 {
			acc.Entries = append(acc.Entries, e)
		}
	}
	data, err := acc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	kt := filepath.Join(dir, "acceptor.keytab")
	if err := os.WriteFile(kt, data, 0o600); err != nil {
		t.Fatal(err)
	}
	a := startOps(t, r, opsOptions{keys: acceptorOptions{"keytab": strconv.Quote(kt), "log_level": "info"}})

	hostTkt := goTicket(t, r)
	tests := []struct {
		name   string
		tkt    *client.Ticket
		skew   time.Duration
		code   float64
		errMsg string
	}{
		{"clock skew", hostTkt, 10 * time.Minute, 37, "skew"},
		{"service not in keytab", serviceTicket(t, r, otherSvc), 0, 45, otherSvc},
		{"enctype not in keytab", serviceTicket(t, r, encSvc), 0, 45, "etype 18 in keytab (have kvno 1 etype 17)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(a.logs.find(resultIs("rejected")))
			if err := rawHandshake(a.addr, tt.tkt, tt.skew); err == nil {
				t.Fatal("handshake succeeded")
			}
			l := a.logs.wait(t, 5*time.Second, before+1, "rejection", resultIs("rejected"))[before]
			if l["krb_error"] != tt.code || !strings.Contains(strings.ToLower(fmt.Sprint(l["error"])), tt.errMsg) {
				t.Errorf("log line %v, want krb_error %v and %q", l, tt.code, tt.errMsg)
			}
			t.Logf("%s: %s", tt.name, rawLine(a, l))
		})
	}
	// kvno: TestKeytabRotation covers the rejection (44) and the fix.
	m := a.scrape(t)
	if m[`gss_acceptor_handshake_krb_errors_total{code="37"}`] != 1 || m[`gss_acceptor_handshake_krb_errors_total{code="45"}`] != 2 {
		t.Errorf("krb error metrics: %v %v", m[`gss_acceptor_handshake_krb_errors_total{code="37"}`], m[`gss_acceptor_handshake_krb_errors_total{code="45"}`])
	}
}

// rawHandshake opens a session with an AP-REQ whose authenticator time is
// off by skew, and reports whether the acceptor answered with an AP-REP.
func rawHandshake(addr string, tkt *client.Ticket, skew time.Duration) error {
	init, tok, err := tkt.InitialToken(gss.InitiatorConfig{
		Flags: gss.FlagMutual, Now: func() time.Time { return time.Now().Add(skew) }})
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	out := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	if _, err := c.Write(wire.AppendFrame(out, wire.FlagContext, tok)); err != nil {
		return err
	}
	f, err := wire.NewReader(c, 4096).ReadFrame(64 << 10)
	if err != nil {
		return err
	}
	_, err = init.Complete(f.Body)
	return err
}

// rawLine finds the raw JSON text of a parsed log line, for
// docs/operations.md.
func rawLine(a *opsAcceptor, l map[string]any) string {
	conn := fmt.Sprint(l["conn"])
	for _, line := range strings.Split(a.logs.String(), "\n") {
		if strings.Contains(line, `"conn":`+conn+",") && strings.Contains(line, `"result":"rejected"`) {
			return line
		}
	}
	return fmt.Sprint(l)
}
