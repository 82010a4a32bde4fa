package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

const service = "host@localhost" // host/localhost@REALM, in the realm's service keytab

// TestMITClientOptions runs MIT's gss-client with each option set the
// sample protocol has against an acceptor with two workers.
func TestMITClientOptions(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	big := filepath.Join(t.TempDir(), "256k")
	payload := make([]byte, 256<<10)
	rand.Read(payload)
	if err := os.WriteFile(big, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		args     []string
		verified int // "Signature verified." lines expected
		received int // "Response received." lines expected
	}{
		{"default", nil, 1, 0},
		{"seq mcount 200", []string{"-seq", "-mcount", "200"}, 200, 0},
		{"integrity only", []string{"-nx"}, 1, 0},
		{"no wrap", []string{"-nw"}, 1, 0},
		{"no mic", []string{"-nm"}, 0, 1},
		{"no mutual", []string{"-nomutual", "-mcount", "3"}, 3, 0},
		{"no mutual seq", []string{"-nomutual", "-seq", "-mcount", "3"}, 3, 0},
		{"no replay", []string{"-noreplay"}, 1, 0},
		{"ccount 20", []string{"-ccount", "20"}, 20, 0},
		{"krb5 mech", []string{"-krb5", "-seq"}, 1, 0},
		{"v1 framing", []string{"-v1", "-mcount", "3"}, 3, 0},
		{"256 KiB file", []string{"-f"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := "testmsg"
			if tt.name == "256 KiB file" {
				msg = big
			}
			args := append(append([]string{}, tt.args...), "127.0.0.1", service, msg)
			out, err := mitClient(t, r, a.port, nil, args...)
			if err != nil {
				t.Fatalf("gss-client %v: %v\n%s\nacceptor log:\n%s", args, err, out, a.logs)
			}
			if got := strings.Count(out, "Signature verified."); got != tt.verified {
				t.Errorf("%d \"Signature verified.\" lines, want %d\n%s", got, tt.verified, out)
			}
			if got := strings.Count(out, "Response received."); got != tt.received {
				t.Errorf("%d \"Response received.\" lines, want %d\n%s", got, tt.received, out)
			}
		})
	}
}

// TestParallelMITClients runs 16 MIT clients at once.
func TestParallelMITClients(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := mitClient(t, r, a.port, nil, "-seq", "-mcount", "5", "-ccount", "3", "127.0.0.1", service, fmt.Sprintf("client %d", i))
			if err != nil {
				errs <- fmt.Errorf("client %d: %v\n%s", i, err, out)
				return
			}
			if n := strings.Count(out, "Signature verified."); n != 15 {
				errs <- fmt.Errorf("client %d: %d verified MICs, want 15\n%s", i, n, out)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Both workers took sessions: the dispatcher spreads load.
	pids := map[float64]bool{}
	for _, l := range a.logs.find(msgIs("session handed off")) {
		pids[l["worker_pid"].(float64)] = true
	}
	if len(pids) < 2 {
		t.Errorf("sessions went to %d worker(s), want both", len(pids))
	}
}

// TestEnctypes forces each AES session-key enctype through the client's
// krb5.conf and checks the acceptor served it.
func TestEnctypes(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	for _, et := range []int32{17, 18, 19, 20} {
		t.Run(strconv.Itoa(int(et)), func(t *testing.T) {
			conf, err := r.ClientKrb5Conf(et)
			if err != nil {
				t.Fatal(err)
			}
			cc := "FILE:" + filepath.Join(t.TempDir(), "ccache")
			if err := r.KinitWith(conf, cc); err != nil {
				t.Fatal(err)
			}
			msg := fmt.Sprintf("enctype %d", et)
			out, err := mitClient(t, r, a.port, []string{"KRB5_CONFIG=" + conf, "KRB5CCNAME=" + cc}, "-seq", "-mcount", "3", "127.0.0.1", service, msg)
			if err != nil {
				t.Fatalf("gss-client: %v\n%s", err, out)
			}
			if n := strings.Count(out, "Signature verified."); n != 3 {
				t.Errorf("%d verified, want 3\n%s", n, out)
			}
			ended := a.logs.wait(t, 10*time.Second, 1, "session with enctype", func(m map[string]any) bool {
				return m["msg"] == "session ended" && m["enctype"] == float64(et) && m["messages_in"] == float64(4)
			})
			if ended[0]["result"] != "ok" {
				t.Errorf("session result %v, want ok", ended[0]["result"])
			}
		})
	}
}

// TestGoClient runs our own client binary against the acceptor.
func TestGoClient(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	for _, args := range [][]string{
		{"-seq", "-mcount", "10"},
		{"-nx", "-ccount", "3"},
		{"-nomutual", "-seq", "-mcount", "3"},
		{"-nm"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			full := append(append([]string{}, args...), "127.0.0.1", service, "hello from Go")
			out, err := goClient(t, r, a.port, full...)
			if err != nil {
				t.Fatalf("gss-client %v: %v\n%s", full, err, out)
			}
		})
	}
}

// goTicket gets a service ticket for the Go client in-process.
func goTicket(t testing.TB, r *testrealm.Realm) *client.Ticket {
	t.Helper()
	cfg, err := client.LoadKrb5Conf(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := client.FromKeytab(r.UserPrincipal, r.UserKeytab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tkt, err := creds.ServiceTicket("host/localhost")
	if err != nil {
		t.Fatal(err)
	}
	return tkt
}

// TestSessionLivesInWorker proves the handoff: while a session is open,
// its server-side socket is held by a gss-worker and not by the acceptor.
func TestSessionLivesInWorker(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	tkt := goTicket(t, r)
	c, err := client.Dial(context.Background(), a.addr, tkt, client.Options{Flags: gss.FlagMutual | gss.FlagReplay | gss.FlagSequence})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Exchange([]byte("first"), client.MessageOptions{}); err != nil {
		t.Fatal(err)
	}
	clientPort := c.LocalAddr().(*net.TCPAddr).Port
	workers := a.workerPIDs()
	if len(workers) != 2 {
		t.Fatalf("%d workers, want 2", len(workers))
	}
	owners := socketOwners(t, a.port, clientPort, append([]int{a.cmd.Process.Pid}, workers...))
	if len(owners) != 1 || owners[0] == a.cmd.Process.Pid {
		t.Fatalf("socket held by %v; want exactly one of the workers %v, not the acceptor %d", owners, workers, a.cmd.Process.Pid)
	}
	if err := c.Exchange([]byte("second"), client.MessageOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestKillWorker kills one worker with SIGKILL while clients loop: the
// other worker's sessions complete, new connections succeed, the worker is
// respawned and the acceptor's descriptor count returns to its baseline.
func TestKillWorker(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	tkt := goTicket(t, r)
	baseline := fdCount(a.cmd.Process.Pid)

	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		start time.Time
		err   error
	}
	results := make(chan result, 100000)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < 10000 && ctx.Err() == nil; n++ {
				start := time.Now()
				err := oneSession(a.addr, tkt, 5)
				results <- result{start, err}
			}
		}()
	}
	time.Sleep(1 * time.Second)
	victims := a.workerPIDs()
	if len(victims) != 2 {
		t.Fatalf("%d workers before the kill, want 2", len(victims))
	}
	killedAt := time.Now()
	syscall.Kill(victims[0], syscall.SIGKILL)
	a.waitWorkerReplaced(t, victims[0], 2, 15*time.Second)
	time.Sleep(1 * time.Second)
	cancel()
	wg.Wait()
	close(results)
	var before, after, failedBefore, failedAfter int
	for res := range results {
		// Sessions that began well after the kill must all succeed; the
		// ones open on the killed worker at the kill may fail.
		if res.start.After(killedAt.Add(200 * time.Millisecond)) {
			after++
			if res.err != nil {
				failedAfter++
				t.Errorf("session started %v after the kill failed: %v", res.start.Sub(killedAt), res.err)
			}
		} else {
			before++
			if res.err != nil {
				failedBefore++
			}
		}
	}
	t.Logf("sessions: %d before/around the kill (%d failed), %d after (%d failed)", before, failedBefore, after, failedAfter)
	if after == 0 {
		t.Fatal("no session ran after the kill")
	}
	if failedBefore > 8 {
		t.Errorf("%d sessions failed around the kill; at most the 8 in flight may", failedBefore)
	}
	a.logs.wait(t, 5*time.Second, 1, "respawn log", msgIs("worker exited; respawning"))
	// Descriptors return to the baseline once the in-flight handshakes end.
	var now int
	for i := 0; i < 50; i++ {
		if now = fdCount(a.cmd.Process.Pid); now <= baseline {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if now > baseline {
		t.Errorf("acceptor has %d descriptors, baseline %d", now, baseline)
	}
}

// oneSession connects, sends n messages and closes.
func oneSession(addr string, tkt *client.Ticket, n int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, tkt, client.Options{Flags: gss.FlagMutual | gss.FlagReplay | gss.FlagSequence, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		if err := c.Exchange([]byte("loop message"), client.MessageOptions{}); err != nil {
			c.Abort()
			return err
		}
	}
	return c.Close()
}

// TestSIGTERMDrains sends SIGTERM with sessions open: they complete, new
// connections are refused, and the acceptor exits 0.
func TestSIGTERMDrains(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	tkt := goTicket(t, r)
	var conns []*client.Conn
	for i := 0; i < 4; i++ {
		c, err := client.Dial(context.Background(), a.addr, tkt, client.Options{Flags: gss.FlagMutual | gss.FlagSequence})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Exchange([]byte("before"), client.MessageOptions{}); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	a.logs.wait(t, 10*time.Second, 1, "shutting down", msgIs("shutting down"))
	time.Sleep(300 * time.Millisecond)
	// The listener is closed: new connections are refused.
	if c, err := net.DialTimeout("tcp", a.addr, time.Second); err == nil {
		c.Close()
		t.Error("new connection accepted during drain")
	}
	for i, c := range conns {
		for j := 0; j < 3; j++ {
			if err := c.Exchange([]byte("during drain"), client.MessageOptions{}); err != nil {
				t.Fatalf("session %d message %d during drain: %v", i, j, err)
			}
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	st := a.wait(30 * time.Second)
	if st.ExitCode() != 0 {
		t.Errorf("acceptor exit status %d, want 0\n%s", st.ExitCode(), a.logs)
	}
}

// TestBadInput sends what a broken or hostile client would: each
// connection is closed with a log line, and a real client is still served.
func TestBadInput(t *testing.T) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, acceptorOptions{"handshake_timeout": "1s", "worker_ack_timeout": "500ms"})
	tkt := goTicket(t, r)

	// A real AP-REQ, recorded from an exchange, replayed afterwards.
	_, apreq, err := tkt.InitialToken(gss.InitiatorConfig{Flags: gss.FlagMutual | gss.FlagReplay})
	if err != nil {
		t.Fatal(err)
	}
	opener := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)

	tests := []struct {
		name   string
		send   []byte
		result string // the outcome in the acceptor's log
	}{
		// "GET ..." parses as flags 0x47 and a ~1 GiB length: refused from the header.
		{"http request", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "too_large"},
		{"data before context", wire.AppendFrame(nil, wire.FlagData, []byte("abc")), "bad_frame"},
		{"oversized length", append(append([]byte{}, opener...), 0x02, 0x7f, 0xff, 0xff, 0xff), "too_large"},
		{"garbage context token", wire.AppendFrame(append([]byte{}, opener...), wire.FlagContext, []byte("not a token")), "rejected"},
		{"silent client", nil, "timeout"},
		{"truncated frame", append(append([]byte{}, opener...), 0x02, 0, 0, 0x10, 0, 1, 2, 3), "timeout"},
		{"unauthenticated session", wire.AppendFrame(nil, wire.FlagNoop, nil), "unauthenticated"},
		{"first AP-REQ", wire.AppendFrame(append([]byte{}, opener...), wire.FlagContext, apreq), "ok"},
		{"replayed AP-REQ", wire.AppendFrame(append([]byte{}, opener...), wire.FlagContext, apreq), "rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(a.logs.find(resultIs(tt.result)))
			c, err := net.Dial("tcp", a.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if len(tt.send) > 0 {
				c.Write(tt.send)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if tt.result == "ok" {
				// Handed off: the AP-REP arrives and the worker waits for data.
				f, err := wire.NewReader(c, 4096).ReadFrame(64 << 10)
				if err != nil || f.Flags != wire.FlagContext {
					t.Fatalf("no AP-REP: flags %#x, %v", f.Flags, err)
				}
			}
			var reply []byte
			if tt.result != "ok" {
				reply, _ = io.ReadAll(c) // until the server closes (or the deadline)
			}
			switch tt.result {
			case "ok":
			case "rejected":
				if tt.name == "replayed AP-REQ" {
					assertKRBError(t, reply, 34)
				}
			default:
				if len(reply) != 0 {
					t.Errorf("server replied %d bytes", len(reply))
				}
			}
			a.logs.wait(t, 5*time.Second, before+1, "outcome "+tt.result, resultIs(tt.result))
			if out, err := mitClient(t, r, a.port, nil, "-seq", "127.0.0.1", service, "still served"); err != nil {
				t.Fatalf("real client after %s: %v\n%s", tt.name, err, out)
			}
		})
	}
}

func resultIs(result string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["result"] == result && (m["msg"] == "handshake failed; connection closed" || m["msg"] == "session handed off" || m["msg"] == "connection closed before a context was established")
	}
}

// assertKRBError checks that reply is one CONTEXT frame holding a GSS
// KRB-ERROR token (TOK_ID 03 00) with the given Kerberos error code.
func assertKRBError(t *testing.T, reply []byte, code int) {
	t.Helper()
	if len(reply) < 5 || reply[0] != wire.FlagContext {
		t.Fatalf("reply %x is not a context frame", reply)
	}
	n := binary.BigEndian.Uint32(reply[1:5])
	body := reply[5:]
	if int(n) != len(body) {
		t.Fatalf("frame length %d, body %d", n, len(body))
	}
	if !bytes.Contains(body, []byte{0x03, 0x00, 0x7e}) {
		t.Fatalf("no KRB-ERROR token in %x", body)
	}
	// error-code [6] Int32: a0..a6 tags; find "a6 03 02 01 <code>".
	if !bytes.Contains(body, []byte{0xa6, 0x03, 0x02, 0x01, byte(code)}) {
		t.Errorf("KRB-ERROR does not carry code %d: %x", code, body)
	}
}
