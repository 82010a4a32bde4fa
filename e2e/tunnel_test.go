package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/proxyproto"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// tunnelCmd is gss-tunnel logged in with the realm's user keytab, to
// the acceptor a, for service.
func tunnelCmd(ctx context.Context, r *testrealm.Realm, a *acceptor, args ...string) *exec.Cmd {
	full := append([]string{"-connect", a.addr, "-service", service,
		"-keytab", r.UserKeytab, "-principal", r.UserPrincipal, "-krb5conf", r.Krb5Conf}, args...)
	cmd := exec.CommandContext(ctx, bin("gss-tunnel"), full...)
	cmd.Env = r.Env()
	return cmd
}

// tunnelStdio runs one gss-tunnel -stdio session with input on its stdin
// and returns its stdout; a failure ends the test with its stderr.
func tunnelStdio(t *testing.T, r *testrealm.Realm, a *acceptor, input string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := tunnelCmd(ctx, r, a, "-stdio")
	cmd.Stdin = strings.NewReader(input)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gss-tunnel: %v\n%s", err, stderr.String())
	}
	return string(out)
}

// startTunnelListen runs gss-tunnel -listen on a free loopback port and
// returns its address.
func startTunnelListen(t *testing.T, r *testrealm.Realm, a *acceptor) string {
	t.Helper()
	cmd := tunnelCmd(context.Background(), r, a, "-listen", "127.0.0.1:0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Log("gss-tunnel: " + sc.Text())
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("gss-tunnel exited before listening")
			}
			if _, rest, ok := strings.Cut(l, "listening on "); ok {
				return strings.TrimSuffix(strings.Fields(rest)[0], ",")
			}
		case <-deadline:
			t.Fatal("gss-tunnel did not listen")
		}
	}
}

// goBackend serves each connection on a loopback port with handle.
func goBackend(t *testing.T, handle func(c *net.TCPConn)) (net.Listener, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c.(*net.TCPConn))
			}()
		}
	}()
	return ln, ln.Addr().String()
}

// echo copies everything back and half-closes after the client's EOF.
func echo(c *net.TCPConn) {
	io.Copy(c, c)
	c.CloseWrite()
}

func freeLoopbackPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestTunnelRedis: a real redis-server behind the proxy backend, driven by
// redis-cli through gss-tunnel -listen.
func TestTunnelRedis(t *testing.T) {
	server, err := exec.LookPath("redis-server")
	requireTool(t, "redis-server (Debian redis-server)", err)
	cli, err := exec.LookPath("redis-cli")
	requireTool(t, "redis-cli (Debian redis-tools)", err)
	r := testrealm.Shared(t)

	port := freeLoopbackPort(t)
	redis := exec.Command(server, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir(), "--protected-mode", "yes")
	if err := redis.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redis.Process.Kill(); redis.Wait() })
	redisAddr := "127.0.0.1:" + strconv.Itoa(port)
	waitDial(t, redisAddr)

	a := startAcceptor(t, r, acceptorOptions{"backend": strconv.Quote("tcp:" + redisAddr)})
	tun := startTunnelListen(t, r, a)
	host, tport, _ := net.SplitHostPort(tun)
	redisCLI := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(cli, append([]string{"-h", host, "-p", tport}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := redisCLI("SET", "greeting", "hello through Kerberos"); got != "OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := redisCLI("GET", "greeting"); got != "hello through Kerberos" {
		t.Fatalf("GET: %q", got)
	}

	// Round trips on one connection, tunnelled and direct (logged).
	const n = 200
	rtt := func(addr string) time.Duration {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		br := bufio.NewReader(c)
		c.SetDeadline(time.Now().Add(30 * time.Second))
		ping := func() {
			if _, err := c.Write([]byte("PING\r\n")); err != nil {
				t.Fatal(err)
			}
			if l, err := br.ReadString('\n'); err != nil || l != "+PONG\r\n" {
				t.Fatalf("PING: %q, %v", l, err)
			}
		}
		ping() // establishes the tunnel's context
		start := time.Now()
		for range n {
			ping()
		}
		return time.Since(start) / n
	}
	tunnelled, direct := rtt(tun), rtt(redisAddr)
	t.Logf("redis PING round trip: %v through gss-tunnel, %v direct", tunnelled, direct)

	// redis-benchmark through the tunnel: 8 connections, each its own
	// tunnel session and context. Its last SET is read back directly.
	bench, err := exec.LookPath("redis-benchmark")
	requireTool(t, "redis-benchmark (Debian redis-tools)", err)
	if got := redisCLIDirect(t, cli, redisAddr, "DEL", "key:__rand_int__"); got != "0" && got != "1" {
		t.Fatalf("DEL: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bench, "-h", host, "-p", tport, "-t", "set,get",
		"-n", "2000", "-c", "8", "-d", "16", "--csv").CombinedOutput()
	if err != nil {
		t.Fatalf("redis-benchmark: %v\n%s", err, out)
	}
	rps := map[string]float64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, ",")
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseFloat(strings.Trim(f[1], `"`), 64); err == nil {
			rps[strings.Trim(f[0], `"`)] = v
		}
	}
	if rps["SET"] <= 0 || rps["GET"] <= 0 {
		t.Fatalf("redis-benchmark through gss-tunnel gave no SET and GET rates:\n%s", out)
	}
	t.Logf("redis-benchmark -c 8 through gss-tunnel: SET %.0f/s, GET %.0f/s", rps["SET"], rps["GET"])
	if got := redisCLIDirect(t, cli, redisAddr, "STRLEN", "key:__rand_int__"); got != "16" {
		t.Fatalf("after redis-benchmark through the tunnel, STRLEN key:__rand_int__ = %q directly, want 16", got)
	}
}

// redisCLIDirect runs redis-cli against addr, not through the tunnel.
func redisCLIDirect(t *testing.T, cli, addr string, args ...string) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command(cli, append([]string{"-h", host, "-p", port}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func waitDial(t *testing.T, addr string) {
	t.Helper()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if i == 100 {
			t.Fatalf("%s not reachable: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTunnelIdentity: a backend that parses the PROXY v2 header answers
// with the principals it received; the client's is the realm user's.
func TestTunnelIdentity(t *testing.T) {
	r := testrealm.Shared(t)
	_, addr := goBackend(t, func(c *net.TCPConn) {
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err != nil {
			fmt.Fprintf(c, "bad header: %v", err)
			return
		}
		fmt.Fprintf(c, "client=%s service=%s source=%s", h.ClientPrincipal, h.ServicePrincipal, h.Source.Addr())
		io.Copy(io.Discard, br)
		c.CloseWrite()
	})
	a := startAcceptor(t, r, acceptorOptions{"backend": strconv.Quote("tcp:" + addr), "backend_proxy_protocol": "v2"})
	out := tunnelStdio(t, r, a, "")
	want := "client=" + r.UserPrincipal + " service=" + r.ServicePrincipal + " source=127.0.0.1"
	if out != want {
		t.Fatalf("backend saw %q, want %q", out, want)
	}
}

// TestTunnelStdio100MiB: 100 MiB out and the same back through an echo
// backend, with half-close: stdin's EOF ends the upload, the backend's EOF
// ends the download and gss-tunnel exits 0.
func TestTunnelStdio100MiB(t *testing.T) {
	r := testrealm.Shared(t)
	_, addr := goBackend(t, echo)
	a := startAcceptor(t, r, acceptorOptions{"backend": strconv.Quote("tcp:" + addr)})
	// A proxy backend without an allow-list: the acceptor says so.
	a.logs.wait(t, 10*time.Second, 1, "no allow-list warning", func(m map[string]any) bool {
		msg, _ := m["msg"].(string)
		return m["level"] == "warn" && strings.HasPrefix(msg, "no client allow-list: every principal of the realm")
	})
	data := make([]byte, 100<<20)
	rand.Read(data)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := tunnelCmd(ctx, r, a, "-stdio")
	cmd.Stdin = bytes.NewReader(data)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	back := sha256.New()
	n, copyErr := io.Copy(back, stdout)
	err = cmd.Wait()
	elapsed := time.Since(start)
	if copyErr != nil || err != nil {
		t.Fatalf("gss-tunnel: %v, %v\n%s", copyErr, err, stderr.String())
	}
	if want := sha256.Sum256(data); n != int64(len(data)) || !bytes.Equal(back.Sum(nil), want[:]) {
		t.Fatalf("echo differs: %d bytes back of %d", n, len(data))
	}
	t.Logf("100 MiB each way through gss-tunnel -stdio in %v (context establishment and process start included)", elapsed)
	a.logs.wait(t, 10*time.Second, 1, "session ended ok", func(m map[string]any) bool {
		return m["msg"] == "session ended" && m["result"] == "ok"
	})
}

// TestTunnelBackendRefused: with the backend gone, a new session gets the
// ERROR record (gss-tunnel prints the reason, exits 1); a session opened
// before keeps working.
func TestTunnelBackendRefused(t *testing.T) {
	r := testrealm.Shared(t)
	ln, addr := goBackend(t, echo)
	a := startAcceptor(t, r, acceptorOptions{"backend": strconv.Quote("tcp:" + addr)})

	// Session A: connected while the backend listens.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	first := tunnelCmd(ctx, r, a, "-stdio")
	stdin, err := first.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := first.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var firstErr bytes.Buffer
	first.Stderr = &firstErr
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "before ")
	got := make([]byte, len("before "))
	if _, err := io.ReadFull(stdout, got); err != nil || string(got) != "before " {
		t.Fatalf("session A echoed %q, %v\n%s", got, err, firstErr.String())
	}

	ln.Close() // the backend stops accepting
	cmd := tunnelCmd(ctx, r, a, "-stdio")
	cmd.Stdin = strings.NewReader("lost")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("gss-tunnel exited 0 with the backend refusing:\n%s", out)
	}
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("gss-tunnel: %v, want exit status 1", err)
	}
	msg := strings.TrimSpace(string(out))
	if !strings.HasPrefix(msg, "gss-tunnel: server: backend unreachable: ") || !strings.Contains(msg, "connection refused") || strings.Count(msg, "\n") != 0 {
		t.Fatalf("stderr %q, want one line with the server's reason", msg)
	}
	a.logs.wait(t, 10*time.Second, 1, "session ended with the backend failure", func(m map[string]any) bool {
		e, _ := m["error"].(string)
		return m["msg"] == "session ended" && m["result"] == "error" && strings.Contains(e, "backend unreachable")
	})

	// Session A is unaffected.
	io.WriteString(stdin, "and after")
	stdin.Close()
	rest, err := io.ReadAll(stdout)
	if err != nil || string(rest) != "and after" {
		t.Fatalf("session A echoed %q, %v", rest, err)
	}
	if err := first.Wait(); err != nil {
		t.Fatalf("session A: %v\n%s", err, firstErr.String())
	}
}
