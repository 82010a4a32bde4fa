package testrealm

import (
	"bufio"
	"bytes"
	"context"
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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

// runBounded runs a program with the realm's environment (plus extra) and a
// timeout, returning combined output.
func runBounded(t *testing.T, r *Realm, extra []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(r.Env(), extra...)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// processGone reports whether pid no longer exists (not even as a zombie:
// Close reaps the KDC).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

func TestStartAndClose(t *testing.T) {
	RequireMIT(t)
	dir := t.TempDir()
	log := &syncWriter{}
	r, err := Start(Options{Dir: dir, Realm: "EXAMPLE.TEST", Log: log})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			r.Close()
		}
	})

	if r.Name != "EXAMPLE.TEST" || r.ServicePrincipal != "host/localhost@EXAMPLE.TEST" || r.UserPrincipal != "alice@EXAMPLE.TEST" {
		t.Errorf("names: %q %q %q", r.Name, r.ServicePrincipal, r.UserPrincipal)
	}
	host, port, err := net.SplitHostPort(r.KDCAddr)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Errorf("KDCAddr = %q, want 127.0.0.1:<port>", r.KDCAddr)
	}
	for _, p := range []string{r.Krb5Conf, r.KDCConf, r.ServiceKeytab, r.UserKeytab, strings.TrimPrefix(r.CCache, "FILE:")} {
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Errorf("%s is outside the realm directory %s", p, dir)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("missing: %v", err)
		}
	}
	conf, err := os.ReadFile(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kdc = " + r.KDCAddr, "dns_canonicalize_hostname = false", "rdns = false", "localhost = EXAMPLE.TEST"} {
		if !bytes.Contains(conf, []byte(want)) {
			t.Errorf("krb5.conf lacks %q", want)
		}
	}
	if bytes.Contains(conf, []byte("rc4")) || bytes.Contains(conf, []byte("des3")) {
		t.Error("krb5.conf names a non-AES enctype")
	}

	// The KDC answers on both transports at KDCAddr.
	c, err := net.DialTimeout("tcp", r.KDCAddr, time.Second)
	if err != nil {
		t.Fatalf("KDC not listening on tcp: %v", err)
	}
	c.Close()
	if _, err := net.ListenPacket("udp4", r.KDCAddr); err == nil {
		t.Error("udp port is free: the KDC is not bound to it")
	}

	pid := r.KDCPid()
	if pid == 0 || processGone(pid) {
		t.Fatalf("KDC pid %d is not running", pid)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	closed = true
	if !processGone(pid) {
		t.Errorf("KDC pid %d still exists after Close", pid)
	}
	if r.KDCPid() != 0 {
		t.Error("KDCPid is not 0 after Close")
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := net.DialTimeout("tcp", r.KDCAddr, time.Second); err == nil {
		t.Error("KDC port still accepts connections after Close")
	}
	if !strings.Contains(log.String(), "commencing operation") {
		t.Errorf("Options.Log did not receive the KDC log:\n%s", log.String())
	}
	if strings.Contains(log.String(), r.UserPassword) {
		t.Error("the user password appears in the log")
	}
}

// syncWriter is a writer safe for the KDC output goroutine and the test.
type syncWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *syncWriter) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func TestStartRejectsBadOptions(t *testing.T) {
	RequireMIT(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{name: "no dir", opts: Options{}, want: "Dir is required"},
		{name: "lower-case realm", opts: Options{Dir: t.TempDir(), Realm: "example.test"}, want: "realm name"},
		{name: "realm with space", opts: Options{Dir: t.TempDir(), Realm: "A B"}, want: "realm name"},
		{name: "dir with space", opts: Options{Dir: filepath.Join(t.TempDir(), "a b")}, want: "directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Start(tt.opts)
			if err == nil {
				r.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "testrealm: ") {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestEnvIsHermetic(t *testing.T) {
	r := Shared(t)
	t.Setenv("KRB5_TRACE", "/dev/stderr")
	t.Setenv("KRB5_KTNAME", "/etc/krb5.keytab")
	t.Setenv("KRB5CCNAME", "FILE:/tmp/elsewhere")
	env := r.Env()
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := got[k]; dup && strings.HasPrefix(k, "KRB5") {
			t.Errorf("%s appears twice", k)
		}
		got[k] = v
	}
	want := map[string]string{
		"KRB5_CONFIG":      r.Krb5Conf,
		"KRB5_KDC_PROFILE": r.KDCConf,
		"KRB5CCNAME":       r.CCache,
		"KRB5RCACHEDIR":    filepath.Join(r.Dir, "rcache"),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for _, k := range []string{"KRB5_TRACE", "KRB5_KTNAME"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s leaked into the realm environment", k)
		}
	}
	if got["PATH"] != os.Getenv("PATH") {
		t.Error("PATH not passed through")
	}
}

func TestKinitAndKlist(t *testing.T) {
	r := Shared(t)
	out, err := runBounded(t, r, nil, "klist")
	if err != nil {
		t.Fatalf("klist: %v\n%s", err, out)
	}
	if !strings.Contains(out, "Default principal: "+r.UserPrincipal) || !strings.Contains(out, "krbtgt/"+r.Name+"@"+r.Name) {
		t.Errorf("klist of the standard ccache:\n%s", out)
	}

	// The password is valid too: kinit with it on stdin.
	cc := "FILE:" + filepath.Join(t.TempDir(), "pw.ccache")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "kinit", r.UserPrincipal)
	cmd.Env = append(r.Env(), "KRB5CCNAME="+cc)
	cmd.Stdin = strings.NewReader(r.UserPassword + "\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("kinit with the password: %v\n%s", err, out)
	}
	cmd = exec.CommandContext(ctx, "kinit", r.UserPrincipal)
	cmd.Env = append(r.Env(), "KRB5CCNAME="+cc)
	cmd.Stdin = strings.NewReader("wrong" + r.UserPassword + "\n")
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("kinit with a wrong password succeeded:\n%s", out)
	}
}

func TestClientKrb5ConfForcesSessionEnctype(t *testing.T) {
	r := Shared(t)
	for _, e := range []int32{17, 18, 19, 20} {
		t.Run(enctypeNames[e], func(t *testing.T) {
			conf, err := r.ClientKrb5Conf(e)
			if err != nil {
				t.Fatal(err)
			}
			cc := filepath.Join(t.TempDir(), "cc")
			if err := r.KinitWith(conf, cc); err != nil {
				t.Fatal(err)
			}
			// kvno fetches a service ticket; klist -e shows "Etype
			// (skey, tkt)" for each ticket.
			extra := []string{"KRB5_CONFIG=" + conf, "KRB5CCNAME=FILE:" + cc}
			if out, err := runBounded(t, r, extra, "kvno", r.ServicePrincipal); err != nil {
				t.Fatalf("kvno: %v\n%s", err, out)
			}
			out, err := runBounded(t, r, extra, "klist", "-e")
			if err != nil {
				t.Fatalf("klist: %v\n%s", err, out)
			}
			want := "Etype (skey, tkt): " + enctypeNames[e] + ", "
			if n := strings.Count(out, want); n != 2 {
				t.Errorf("want the TGT and the service ticket with session key %s, got:\n%s", enctypeNames[e], out)
			}
		})
	}
	if _, err := r.ClientKrb5Conf(23); err == nil {
		t.Error("ClientKrb5Conf(23) (RC4) succeeded")
	}
}

func TestKadmin(t *testing.T) {
	r := Shared(t)
	out, err := r.Kadmin("getprinc " + r.UserPrincipal)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Principal: "+r.UserPrincipal) || !strings.Contains(out, "Number of keys: 4") {
		t.Errorf("getprinc output:\n%s", out)
	}
	tests := []struct {
		name, query, want string
	}{
		{name: "command fails", query: "addprinc -randkey " + r.UserPrincipal, want: "already exists"},
		{name: "unknown command", query: "frobnicate", want: "exit status"},
		{name: "two lines", query: "getprinc x\ngetprinc y", want: "single line"},
		{name: "password redacted", query: "addprinc -pw s3cret " + r.UserPrincipal, want: "<redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.Kadmin(tt.query)
			if err == nil {
				t.Fatal("Kadmin succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want it to mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error shows the password: %q", err)
			}
		})
	}
}

// addServiceRuns numbers TestAddService's runs: the shared realm outlives
// one run under -count=N, and a principal can be created only once.
var addServiceRuns atomic.Int32

func TestAddService(t *testing.T) {
	r := Shared(t)
	kt := filepath.Join(t.TempDir(), "matrix.keytab")
	run := addServiceRuns.Add(1)
	svc := func(e int32) string { return fmt.Sprintf("svc%d-addservice%d/localhost", e, run) }
	for _, e := range []int32{17, 18, 19, 20} {
		if err := r.AddService(svc(e), []int32{e}, kt); err != nil {
			t.Fatal(err)
		}
	}
	ktab, err := keytab.Load(kt)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int32{}
	for _, ent := range ktab.Entries {
		name := strings.Join(ent.Principal.Components, "/") + "@" + ent.Principal.Realm
		got[name] = append(got[name], ent.Key.KeyType)
	}
	if len(got) != 4 {
		t.Errorf("keytab principals: %v, want 4", got)
	}

	cl, err := r.GoClient(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Destroy()
	for _, e := range []int32{17, 18, 19, 20} {
		name := svc(e)
		if etypes := got[name+"@"+r.Name]; len(etypes) != 1 || etypes[0] != e {
			t.Errorf("%s has keys %v, want [%d]", name, etypes, e)
		}
		tkt, _, err := cl.GetServiceTicket(name)
		if err != nil {
			t.Fatalf("service ticket for %s: %v", name, err)
		}
		if tkt.EncPart.EType != e {
			t.Errorf("ticket for %s encrypted with %d, want %d", name, tkt.EncPart.EType, e)
		}
		if err := tkt.DecryptEncPart(ktab, nil); err != nil {
			t.Errorf("ticket for %s does not decrypt with the keytab: %v", name, err)
		}
	}

	bad := []struct {
		name      string
		principal string
		enctypes  []int32
		keytab    string
	}{
		{name: "rc4", principal: "x/localhost", enctypes: []int32{23}, keytab: kt},
		{name: "no enctypes", principal: "x/localhost", keytab: kt},
		{name: "space in principal", principal: "x/local host", enctypes: []int32{17}, keytab: kt},
		{name: "option injection", principal: "-pw", enctypes: []int32{17}, keytab: kt},
		{name: "newline in keytab", principal: "x/localhost", enctypes: []int32{17}, keytab: kt + "\nquit"},
		{name: "existing principal", principal: "host/localhost", enctypes: []int32{17}, keytab: kt},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := r.AddService(tt.principal, tt.enctypes, tt.keytab); err == nil {
				t.Error("AddService succeeded")
			}
		})
	}
}

func TestGoClientGetsServiceTicket(t *testing.T) {
	r := Shared(t)
	svc, err := keytab.Load(r.ServiceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []int32{17, 18, 19, 20} {
		t.Run(enctypeNames[e], func(t *testing.T) {
			conf, err := r.ClientKrb5Conf(e)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := r.GoClient(conf)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Destroy()
			tkt, key, err := cl.GetServiceTicket("host/localhost")
			if err != nil {
				t.Fatal(err)
			}
			if key.KeyType != e {
				t.Errorf("session key enctype %d, want %d", key.KeyType, e)
			}
			if err := tkt.DecryptEncPart(svc, nil); err != nil {
				t.Fatalf("ticket does not decrypt with the service keytab: %v", err)
			}
			if cname := tkt.DecryptedEncPart.CName.PrincipalNameString() + "@" + tkt.DecryptedEncPart.CRealm; cname != r.UserPrincipal {
				t.Errorf("ticket client %q, want %q", cname, r.UserPrincipal)
			}
			if !bytes.Equal(tkt.DecryptedEncPart.Key.KeyValue, key.KeyValue) {
				t.Error("ticket session key differs from the client's")
			}
		})
	}
}

// TestMITSampleSession runs MIT's gss-server against the realm's service
// keytab and gss-client with the realm's ccache: the realm is usable by
// MIT's GSS-API library end to end.
func TestMITSampleSession(t *testing.T) {
	r := Shared(t)
	for _, p := range []string{"gss-server", "gss-client"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not found (krb5-gss-samples)", p)
			}
			t.Skipf("skipping: %s not found (install krb5-gss-samples)", p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	port, srv, srvOut := startGSSServer(t, ctx, r)
	client := exec.CommandContext(ctx, "gss-client", "-port", strconv.Itoa(port), "-seq", "-mcount", "3",
		"127.0.0.1", "host@localhost", "hello from the test")
	client.Env = r.Env()
	client.WaitDelay = time.Second
	out, err := client.CombinedOutput()
	if err != nil {
		t.Fatalf("gss-client: %v\n%s\nserver:\n%s", err, out, srvOut.String())
	}
	if n := strings.Count(string(out), "Signature verified."); n != 3 {
		t.Errorf("gss-client verified %d signatures, want 3:\n%s", n, out)
	}
	// gss-server's stdout is a pipe, so stdio buffers its lines until it
	// flushes after the connection ends, which may be after gss-client has
	// exited; stopping it before then loses the line (seen on a loaded
	// machine). Wait for the line first, bounded.
	accepted := `Accepted connection: "` + r.UserPrincipal + `"`
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(srvOut.String(), accepted) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	stopProcess(t, srv)
	if !strings.Contains(srvOut.String(), accepted) {
		t.Errorf("gss-server did not report alice:\n%s", srvOut.String())
	}
}

// startGSSServer starts MIT's gss-server for host@localhost on a free port
// and waits for its "starting..." line.
func startGSSServer(t *testing.T, ctx context.Context, r *Realm) (int, *exec.Cmd, *syncWriter) {
	t.Helper()
	for attempt := 0; attempt < 5; attempt++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		out := &syncWriter{}
		srv := exec.CommandContext(ctx, "gss-server", "-port", strconv.Itoa(port), "-keytab", r.ServiceKeytab, "host@localhost")
		srv.Env = append(r.Env(), "KRB5RCACHETYPE=none")
		srv.Stdout = out
		stderr, err := srv.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		srv.WaitDelay = time.Second
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			ok := false
			for sc.Scan() {
				fmt.Fprintln(out, sc.Text())
				if !ok && strings.Contains(sc.Text(), "starting...") {
					ok = true
					ready <- true
				}
			}
			if !ok {
				ready <- false
			}
		}()
		select {
		case ok := <-ready:
			if ok {
				return port, srv, out
			}
			srv.Wait()
			if strings.Contains(out.String(), "in use") {
				continue // another process took the port
			}
			t.Fatalf("gss-server exited:\n%s", out.String())
		case <-time.After(10 * time.Second):
			stopProcess(t, srv)
			t.Fatalf("gss-server not ready after 10s:\n%s", out.String())
		}
	}
	t.Fatal("no free port for gss-server")
	return 0, nil, nil
}

// stopProcess kills a child started by the test and reaps it.
func stopProcess(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if !processGone(cmd.Process.Pid) {
		t.Errorf("pid %d still exists", cmd.Process.Pid)
	}
}

// TestStartRetriesTakenPort occupies the port written to the configuration
// before the KDC starts, as another process racing for it would, and checks
// that startKDC moves to a new port.
func TestStartRetriesTakenPort(t *testing.T) {
	RequireMIT(t)
	r := &Realm{
		Name: DefaultRealm, Dir: t.TempDir(), log: io.Discard, kdcOutput: &tailBuffer{max: logTail},
		ServicePrincipal: "host/localhost@" + DefaultRealm, UserPrincipal: "alice@" + DefaultRealm,
		UserPassword: "pTest",
	}
	r.Krb5Conf = filepath.Join(r.Dir, "krb5.conf")
	r.KDCConf = filepath.Join(r.Dir, "kdc.conf")
	r.ServiceKeytab = filepath.Join(r.Dir, "service.keytab")
	r.UserKeytab = filepath.Join(r.Dir, "alice.keytab")
	if err := r.create(); err != nil {
		t.Fatal(err)
	}
	taken := r.KDCAddr
	l, err := net.Listen("tcp4", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := r.startKDC(); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.KDCAddr == taken {
		t.Fatalf("KDC still configured on the taken address %s", taken)
	}
	conf, err := os.ReadFile(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(conf, []byte("kdc = "+r.KDCAddr)) {
		t.Errorf("krb5.conf not rewritten for %s:\n%s", r.KDCAddr, conf)
	}
	if err := r.KinitWith(r.Krb5Conf, filepath.Join(r.Dir, "cc")); err != nil {
		t.Fatalf("KDC on the new port does not serve: %v", err)
	}
}

func TestNewClosesOnCleanup(t *testing.T) {
	var pid int
	t.Run("inner", func(t *testing.T) {
		r := New(t)
		pid = r.KDCPid()
		if pid == 0 || processGone(pid) {
			t.Fatalf("KDC pid %d not running", pid)
		}
	})
	if pid != 0 && !processGone(pid) {
		t.Errorf("KDC pid %d survived the test's cleanup", pid)
	}
}

func TestSharedIsShared(t *testing.T) {
	a, b := Shared(t), Shared(t)
	if a != b {
		t.Fatal("Shared returned two realms")
	}
	if a.KDCPid() == 0 {
		t.Fatal("shared realm not running")
	}
}
