package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// startHAProxy runs a real haproxy in the foreground on a free loopback
// port, balancing round-robin over backends with send-proxy-v2.
func startHAProxy(t *testing.T, backends ...string) int {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	requireTool(t, "haproxy (Debian haproxy)", err)
	port := freeLoopbackPort(t)
	var b strings.Builder
	fmt.Fprintf(&b, "global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\n")
	fmt.Fprintf(&b, "frontend fe\n  bind 127.0.0.1:%d\n  default_backend be\nbackend be\n  balance roundrobin\n", port)
	for i, addr := range backends {
		fmt.Fprintf(&b, "  server a%d %s send-proxy-v2\n", i+1, addr)
	}
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("haproxy output:\n%s", out.String())
		}
	})
	// Probe with a raw socket: a connect-and-close through haproxy reaches
	// an acceptor as a PROXY header and then EOF (client_closed).
	waitDial(t, "127.0.0.1:"+strconv.Itoa(port))
	return port
}

// dialFromIP connects to addr from the loopback address ip.
func dialFromIP(t *testing.T, ip, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: ioTimeout}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHAProxyFront: the scale-out deployment of docs/operations.md. A real
// HAProxy with send-proxy-v2 in front of two gss-acceptor instances that
// trust it (proxy_protocol_from 127.0.0.1/32) and share a real
// redis-server as their replay cache. MIT gss-client through HAProxy is
// served by both instances, each logging the client's own address as peer
// and HAProxy's as proxy; a client on 127.0.0.2 shows as 127.0.0.2; an
// AP-REQ accepted through HAProxy is refused (34) when replayed through it. Straight to an instance, a PROXY header
// from 127.0.0.2 (untrusted) and no header from 127.0.0.1 (trusted) are
// both closed with proxy_header.
func TestHAProxyFront(t *testing.T) {
	r := testrealm.Shared(t)
	redisAddr, _, _ := startRedisServer(t)
	opts := acceptorOptions{
		"workers":             "1",
		"proxy_protocol_from": `["127.0.0.1/32"]`,
		"replay_cache":        strconv.Quote("redis://" + redisAddr + "/0"),
	}
	h1 := startAcceptor(t, r, opts)
	h2 := startAcceptor(t, r, opts)
	lbPort := startHAProxy(t, h1.addr, h2.addr)
	lb := "127.0.0.1:" + strconv.Itoa(lbPort)

	handedOffLines := func() []map[string]any {
		return append(h1.logs.find(msgIs("session handed off")), h2.logs.find(msgIs("session handed off"))...)
	}
	const n = 4
	for i := range n {
		out, err := mitClient(t, r, lbPort, nil, "127.0.0.1", service, fmt.Sprintf("through haproxy %d", i))
		if err != nil {
			t.Fatalf("gss-client through haproxy: %v\n%s\nacceptor 1:\n%s\nacceptor 2:\n%s", err, out, h1.logs, h2.logs)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(handedOffLines()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	lines := handedOffLines()
	if len(lines) != n {
		t.Fatalf("%d sessions handed off, want %d", len(lines), n)
	}
	if len(h1.logs.find(msgIs("session handed off"))) == 0 || len(h2.logs.find(msgIs("session handed off"))) == 0 {
		t.Errorf("round robin did not reach both instances")
	}
	for _, l := range lines {
		peer, _ := l["peer"].(string)
		proxy, _ := l["proxy"].(string)
		if !strings.HasPrefix(peer, "127.0.0.1:") || !strings.HasPrefix(proxy, "127.0.0.1:") || peer == proxy {
			t.Errorf("session line peer %q proxy %q: want the client's address as peer and haproxy's as proxy", peer, proxy)
		}
	}
	t.Logf("through haproxy: peer %v, proxy %v", lines[0]["peer"], lines[0]["proxy"])

	// A client on 127.0.0.2: its address, not haproxy's, is the peer.
	tkt := goTicket(t, r)
	init, apreq := initialToken(t, tkt)
	c := dialFromIP(t, "127.0.0.2", lb)
	c.Write(wire.AppendFrame(opener(), wire.FlagContext, apreq))
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := wire.NewReader(c, 4096).ReadFrame(64 << 10)
	if err != nil || !accepted(init, f.Body) {
		t.Fatalf("client on 127.0.0.2 through haproxy: %v", err)
	}
	peer := c.LocalAddr().String()
	if _, ok := findWithin(h1.logs, 5*time.Second, handedOff(peer)); !ok {
		if _, ok := findWithin(h2.logs, 5*time.Second, handedOff(peer)); !ok {
			t.Errorf("no session line with peer %s", peer)
		}
	}
	c.Close()

	// The same AP-REQ again through haproxy, to whichever instance round
	// robin picks: refused as a replay (the instances share Redis).
	assertKRBError(t, handshakeReply(t, lb, apreq), 34)

	// Straight to an instance: a header from an untrusted address, and
	// no header from the trusted one.
	for _, tc := range []struct {
		from string
		send []byte
	}{
		{"127.0.0.2", append([]byte("PROXY TCP4 192.0.2.66 127.0.0.1 1234 4444\r\n"), opener()...)},
		{"127.0.0.1", wire.AppendFrame(opener(), wire.FlagContext, apreq)},
	} {
		before := len(h1.logs.find(resultIs("proxy_header")))
		c := dialFromIP(t, tc.from, h1.addr)
		c.Write(tc.send)
		if reply, err := readUntilClosed(c, ioTimeout); err != nil || len(reply) != 0 {
			t.Errorf("from %s: reply %x, %v; want closed without a reply", tc.from, reply, err)
		}
		h1.logs.wait(t, 10*time.Second, before+1, "proxy_header from "+tc.from, resultIs("proxy_header"))
	}
}

// proxyV2TCP4 is a PROXY v2 PROXY-command header for TCP over IPv4 from
// src to dst, built by hand (the e2e suite does not import internals).
func proxyV2TCP4(src, dst netip.AddrPort) []byte {
	b := []byte("\r\n\r\n\x00\r\nQUIT\n")
	b = append(b, 0x21, 0x11, 0, 12)
	s, d := src.Addr().As4(), dst.Addr().As4()
	b = append(b, s[:]...)
	b = append(b, d[:]...)
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(b, src.Port()), dst.Port())
}

// startHeaderProxy is a minimal balancer on a free loopback port: each
// connection to it is forwarded to backend after header(its client's
// address) has been written, like HAProxy's send-proxy-v2 with a header
// that names another client.
func startHeaderProxy(t *testing.T, backend string, header []byte) string {
	t.Helper()
	_, addr := goBackend(t, func(c *net.TCPConn) {
		b, err := net.DialTimeout("tcp", backend, ioTimeout)
		if err != nil {
			return
		}
		defer b.Close()
		if _, err := b.Write(header); err != nil {
			return
		}
		go func() { io.Copy(b, c); b.(*net.TCPConn).CloseWrite() }()
		io.Copy(c, b)
	})
	return addr
}

// TestProxyClientAddrToExec: behind a balancer that sends a PROXY v2
// header naming client 192.0.2.66:1234, an exec backend's GSS_CLIENT_ADDR
// is that address (handed to the worker in HANDOFF), not the balancer's.
func TestProxyClientAddrToExec(t *testing.T) {
	r := testrealm.Shared(t)
	prog := filepath.Join(t.TempDir(), "backend.sh")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\necho \"addr=$GSS_CLIENT_ADDR\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := startAcceptor(t, r, acceptorOptions{"backend": `"exec"`, "exec_path": strconv.Quote(prog),
		"allow_clients": `["*@` + r.Name + `"]`, "proxy_protocol_from": `["127.0.0.1/32"]`})
	client := netip.MustParseAddrPort("192.0.2.66:1234")
	lb := *a
	lb.addr = startHeaderProxy(t, a.addr, proxyV2TCP4(client, netip.MustParseAddrPort("198.51.100.1:4444")))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := tunnelCmd(ctx, r, &lb, "-stdio")
	cmd.Stdin = strings.NewReader("")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gss-tunnel through the balancer: %v\n%s\nacceptor:\n%s", err, stderr.String(), a.logs)
	}
	if got, want := string(out), "addr="+client.String()+"\n"; got != want {
		t.Fatalf("exec backend saw %q, want %q", got, want)
	}
}
