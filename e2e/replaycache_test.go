package e2e

import (
	"bytes"
	"maps"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/testpki"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// startRedisServer starts a real redis-server on a free loopback port,
// without persistence, and returns its address and a function that
// (re)starts it on that port; it is killed when the test ends.
func startRedisServer(t *testing.T) (addr string, stop, restart func()) {
	t.Helper()
	return startRedisServerTLS(t)
}

// startRedisServerTLS is startRedisServer with tlsArgs: when given, the
// server listens only on a TLS port (its address is returned) configured
// by them.
func startRedisServerTLS(t *testing.T, tlsArgs ...string) (addr string, stop, restart func()) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	requireTool(t, "redis-server (Debian redis-server)", err)
	port := freeLoopbackPort(t)
	dir := t.TempDir()
	addr = "127.0.0.1:" + strconv.Itoa(port)
	var cmd *exec.Cmd
	stop = func() {
		if cmd != nil {
			cmd.Process.Kill()
			cmd.Wait()
			cmd = nil
		}
	}
	restart = func() {
		ports := []string{"--port", strconv.Itoa(port)}
		if len(tlsArgs) > 0 {
			ports = append([]string{"--port", "0", "--tls-port", strconv.Itoa(port)}, tlsArgs...)
		}
		cmd = exec.Command(server, append(ports, "--bind", "127.0.0.1",
			"--save", "", "--appendonly", "no", "--dir", dir, "--protected-mode", "yes")...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitDial(t, addr)
	}
	restart()
	t.Cleanup(stop)
	return addr, stop, restart
}

// acceptOnce sends the AP-REQ to addr and completes the context with the
// AP-REP, failing t if the acceptor refuses it.
func acceptOnce(t *testing.T, addr string, init *gss.Initiator, apreq []byte) {
	t.Helper()
	if body := firstReply(t, addr, apreq); !accepted(init, body) {
		t.Fatalf("%s refused the AP-REQ: %x", addr, body)
	}
}

// firstReply sends apreq to addr and returns the body of the first context
// frame back, nil if none.
func firstReply(t *testing.T, addr string, apreq []byte) []byte {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(wire.AppendFrame(opener(), wire.FlagContext, apreq))
	c.SetReadDeadline(time.Now().Add(ioTimeout))
	f, err := wire.NewReader(c, 4096).ReadFrame(64 << 10)
	if err != nil || f.Flags != wire.FlagContext {
		return nil
	}
	return f.Body
}

// accepted reports whether body is an AP-REP completing init; with init
// nil, whether it is an AP-REP token at all (token ID 02 00, then the
// [APPLICATION 15] AP-REP).
func accepted(init *gss.Initiator, body []byte) bool {
	if init == nil {
		return bytes.Contains(body, []byte{0x02, 0x00, 0x6f})
	}
	ctx, err := init.Complete(body)
	if err != nil {
		return false
	}
	ctx.Delete()
	return true
}

func initialToken(t *testing.T, tkt *client.Ticket) (*gss.Initiator, []byte) {
	t.Helper()
	init, apreq, err := tkt.InitialToken(gss.InitiatorConfig{Flags: gss.FlagMutual})
	if err != nil {
		t.Fatal(err)
	}
	return init, apreq
}

// TestSharedReplayCache: two gss-acceptor instances (two hosts, one keytab)
// sharing a real redis-server: the AP-REQ bytes the first accepted are
// refused by the second with KRB-ERROR 34. With Redis killed, the default
// policy refuses handshakes with KRB-ERROR 60 and a log line; once Redis is
// back they succeed again without a restart. The second instance batches
// its insertions (replay_cache_batch: true), the first does not. Control:
// two instances with their own memory caches both accept the same bytes.
func TestSharedReplayCache(t *testing.T) {
	r := testrealm.Shared(t)
	redisAddr, stop, restart := startRedisServer(t)
	opts := acceptorOptions{"workers": "1", "replay_cache": strconv.Quote("redis://" + redisAddr + "/0"),
		"replay_cache_timeout": "200ms"}
	h1 := startAcceptor(t, r, opts)
	batched := maps.Clone(opts)
	batched["replay_cache_batch"] = "true"
	h2 := startAcceptor(t, r, batched)
	tkt := goTicket(t, r)

	init, apreq := initialToken(t, tkt)
	acceptOnce(t, h1.addr, init, apreq)
	before := len(h2.logs.find(handshakeFailed("rejected", 34, "")))
	assertKRBError(t, handshakeReply(t, h2.addr, apreq), 34)
	h2.logs.wait(t, 10*time.Second, before+1, "replay refused by the other host", handshakeFailed("rejected", 34, "already presented"))
	// And by the first host itself.
	assertKRBError(t, handshakeReply(t, h1.addr, apreq), 34)

	// A fresh AP-REQ on host 2 is fine.
	init, apreq = initialToken(t, tkt)
	acceptOnce(t, h2.addr, init, apreq)

	// Redis down: refused with KRB_ERR_GENERIC, and said why.
	stop()
	_, apreq = initialToken(t, tkt)
	before = len(h1.logs.find(handshakeFailed("rejected", 60, "")))
	assertKRBError(t, handshakeReply(t, h1.addr, apreq), 60)
	h1.logs.wait(t, 10*time.Second, before+1, "refusal while redis is down",
		handshakeFailed("rejected", 60, "replay cache unavailable"))

	// Redis back (empty): recovery without a restart.
	restart()
	deadline := time.Now().Add(10 * time.Second)
	for {
		init, apreq = initialToken(t, tkt)
		if accepted(init, firstReply(t, h1.addr, apreq)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no recovery within 10 s of redis coming back")
		}
		time.Sleep(100 * time.Millisecond)
	}

	t.Run("control: private memory caches", func(t *testing.T) {
		m1 := startAcceptor(t, r, acceptorOptions{"workers": "1"})
		m2 := startAcceptor(t, r, acceptorOptions{"workers": "1"})
		init, apreq := initialToken(t, tkt)
		acceptOnce(t, m1.addr, init, apreq)
		// The same bytes on the other instance: accepted again, an AP-REP
		// (the hole the shared cache closes).
		if body := firstReply(t, m2.addr, apreq); !accepted(nil, body) {
			t.Fatalf("a second memory-cache instance refused the bytes: %x", body)
		}
	})
}

// TestSharedReplayCacheTLS: the shared cache through rediss:// end to
// end, as the operator configures it: a real redis-server on a TLS port
// only, client certificates required and a password, two acceptors with
// replay_cache_tls_ca/cert/key. The AP-REQ the first accepted is refused by
// the second (KRB-ERROR 34). Control: an acceptor that does not trust the
// server's CA (system roots) cannot use the cache and refuses handshakes
// (KRB-ERROR 60) instead of accepting them unchecked.
func TestSharedReplayCacheTLS(t *testing.T) {
	r := testrealm.Shared(t)
	pki := testpki.New(t, t.TempDir(), "e2e")
	const password = "e2e-tls-pw"
	redisAddr, _, _ := startRedisServerTLS(t, "--tls-cert-file", pki.ServerCert, "--tls-key-file", pki.ServerKey,
		"--tls-ca-cert-file", pki.CA, "--tls-auth-clients", "yes", "--requirepass", password)
	opts := acceptorOptions{"workers": "1", "replay_cache": strconv.Quote("rediss://:" + password + "@" + redisAddr + "/0"),
		"replay_cache_timeout": "2s", "replay_cache_tls_ca": strconv.Quote(pki.CA),
		"replay_cache_tls_cert": strconv.Quote(pki.ClientCert), "replay_cache_tls_key": strconv.Quote(pki.ClientKey)}
	h1 := startAcceptor(t, r, opts)
	h2 := startAcceptor(t, r, opts)
	tkt := goTicket(t, r)

	init, apreq := initialToken(t, tkt)
	acceptOnce(t, h1.addr, init, apreq)
	assertKRBError(t, handshakeReply(t, h2.addr, apreq), 34)
	init, apreq = initialToken(t, tkt)
	acceptOnce(t, h2.addr, init, apreq)

	untrusting := maps.Clone(opts)
	delete(untrusting, "replay_cache_tls_ca")
	h3 := startAcceptor(t, r, untrusting)
	_, apreq = initialToken(t, tkt)
	assertKRBError(t, handshakeReply(t, h3.addr, apreq), 60)
	h3.logs.wait(t, 10*time.Second, 1, "refusal without the cache", handshakeFailed("rejected", 60, "replay cache unavailable"))
}

// TestFileReplayCacheSurvivesSIGKILL: with replay_cache: file:PATH, an
// AP-REQ accepted before the acceptor is killed with SIGKILL is refused
// (KRB-ERROR 34) by the acceptor restarted on the same file; a fresh one
// is accepted, with the default fsync policy (interval) and with always.
// Control: with the memory cache the restarted acceptor accepts the
// captured AP-REQ again.
func TestFileReplayCacheSurvivesSIGKILL(t *testing.T) {
	r := testrealm.Shared(t)
	tkt := goTicket(t, r)
	for _, tc := range []struct {
		name   string
		cache  string
		replay bool   // the restarted acceptor refuses the captured AP-REQ
		fsync  string // replay_cache_fsync, "" for the default
	}{
		{"file", strconv.Quote("file:" + filepath.Join(t.TempDir(), "rcache")), true, ""},
		{"file fsync always", strconv.Quote("file:" + filepath.Join(t.TempDir(), "rcache")), true, "always"},
		{"memory (control)", "memory", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := acceptorOptions{"workers": "1", "replay_cache": tc.cache}
			if tc.fsync != "" {
				opts["replay_cache_fsync"] = strconv.Quote(tc.fsync)
			}
			a := startAcceptor(t, r, opts)
			init, apreq := initialToken(t, tkt)
			acceptOnce(t, a.addr, init, apreq)
			workers := a.workerPIDs()
			if err := a.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			<-a.done
			// The orphaned worker has no session left and exits.
			if alive := waitGone(workers, 15*time.Second); len(alive) != 0 {
				t.Fatalf("workers %v still alive", alive)
			}
			b := startAcceptor(t, r, opts)
			if tc.replay {
				want := tc.fsync
				if want == "" {
					want = "interval"
				}
				b.logs.wait(t, 10*time.Second, 1, "replay cache file line with fsync "+want, func(m map[string]any) bool {
					return m["msg"] == "replay cache file" && m["fsync"] == want
				})
			}
			body := firstReply(t, b.addr, apreq)
			if tc.replay {
				if accepted(nil, body) {
					t.Fatal("the restarted acceptor accepted the captured AP-REQ")
				}
				assertKRBError(t, handshakeReply(t, b.addr, apreq), 34)
			} else if !accepted(nil, body) {
				t.Fatalf("memory cache: the restarted acceptor refused the AP-REQ: %x", body)
			}
			init, apreq = initialToken(t, tkt)
			acceptOnce(t, b.addr, init, apreq)
		})
	}
}
