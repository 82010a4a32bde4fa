package e2e

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
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

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/proctest"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// TestFaults is the hostile-input and fault suite: real KDC, real
// gss-acceptor and gss-worker processes, raw sockets. Each scenario checks
// what the attacker or the fault gets (a closed connection, a KRB-ERROR, an
// ended session, a respawned worker), the log line that explains it, and
// that real clients are served during or after it. The summary line counts
// what was checked.
func TestFaults(t *testing.T) {
	var ft faultTally
	failed := 0
	for _, sc := range []struct {
		name string
		run  func(*testing.T, *faultTally)
	}{
		{"Slowloris", faultSlowloris},
		{"SlowlorisEvicting", faultSlowlorisEvicting},
		{"HandshakeFlood", faultHandshakeFlood},
		{"HandshakeFrames", faultHandshakeFrames},
		{"SessionFrames", faultSessionFrames},
		{"Replays", faultReplays},
		{"Credentials", faultCredentials},
		{"KillWorkerDuringHandoff", faultKillWorkerDuringHandoff},
		{"KillWorkerMidSession", faultKillWorkerMidSession},
		{"StoppedWorker", faultStoppedWorker},
		{"StoppedIdleWorker", faultStoppedIdleWorker},
		{"KillAcceptor", faultKillAcceptor},
		{"FDExhaustion", faultFDExhaustion},
	} {
		if !t.Run(sc.name, func(t *testing.T) { sc.run(t, &ft) }) {
			failed++
		}
	}
	t.Logf("faults: %d scenarios, %d connections refused as expected, %d real sessions served, %d unexpected",
		ft.scenarios.Load(), ft.refused.Load(), ft.served.Load(), failed)
}

// faultSlowloris (issue #11): 1,000 idle and 1,000 partial-frame
// connections from 100 source addresses (127.0.0.2-101), each re-opened as
// soon as the acceptor closes it, against the default configuration.
// Meanwhile 20 of 20 MIT gss-client sessions from 127.0.0.1 succeed, each
// within 3 s, and the acceptor's RSS stays bounded. Before issue #11, 400
// idle connections denied every session (max_handshakes counted them).
func faultSlowloris(t *testing.T, ft *faultTally) {
	slowloris(t, ft, nil)
}

// faultSlowlorisEvicting: the same attack against a table half its size
// and a per-source cap below each source's 20: every attack connection
// that re-opens evicts another (pending_full, source_limit), and the
// sessions are still served. The cap, 12, is just above a source's
// average share of the full table (1000 / 100 sources): a cap of 16 was
// reached only when a source's re-opened connections bunched up, which
// with the acceptor on one CPU happened in some runs and not in others.
// defer_accept is off, so that every attack connection reaches the table
// at once (faultSlowloris runs with it on).
func faultSlowlorisEvicting(t *testing.T, ft *faultTally) {
	slowloris(t, ft, acceptorOptions{"max_pending_connections": "1000", "max_pending_per_source": "12", "defer_accept": "0"})
}

func slowloris(t *testing.T, ft *faultTally, opts acceptorOptions) {
	ft.scenario()
	r := testrealm.Shared(t)
	const (
		sources  = 100
		idle     = 1000
		partial  = 1000
		sessions = 20
		within   = 3 * time.Second
	)
	raiseNOFILE(t, 2*(idle+partial)+1024)
	a := startAcceptor(t, r, opts) // nil: the defaults are what is under test
	evicting := opts != nil
	pid := a.cmd.Process.Pid
	serveReal(t, r, a, ft, "before the attack") // warm: the worker's lazily opened files
	base := fdCount(pid)
	rssBefore, err := procStatusKiB(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}

	// A partial frame: the opener, then a context frame header announcing
	// 1 KiB and the first byte of the token.
	part := append(opener(), wire.FlagContext, 0, 0, 4, 0, 0x60)
	attackStart := time.Now()
	stop := make(chan struct{})
	var (
		wg                sync.WaitGroup
		opened, dialFails atomic.Int64
	)
	attacker := func(src string, send []byte) {
		defer wg.Done()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: ioTimeout}
		for {
			select {
			case <-stop:
				return
			default:
			}
			c, err := d.Dial("tcp", a.addr)
			if err != nil {
				dialFails.Add(1)
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				continue
			}
			opened.Add(1)
			if len(send) > 0 {
				c.Write(send)
			}
			// Hold it until the acceptor closes it (then re-open) or the
			// attack stops.
			closed := make(chan struct{})
			go func() {
				io.Copy(io.Discard, c)
				close(closed)
			}()
			select {
			case <-closed:
			case <-stop:
			}
			c.Close()
			<-closed
		}
	}
	for i := range idle + partial {
		src := fmt.Sprintf("127.0.0.%d", 2+i%sources)
		send := []byte(nil)
		if i >= idle {
			send = part
		}
		wg.Add(1)
		go attacker(src, send)
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	want := idle + partial - 100
	if evicting {
		want = 1000 - 100
	}
	if got := waitFDs(pid, 30*time.Second, func(n int) bool { return n >= base+want }); got < base+want {
		t.Fatalf("the acceptor holds %d descriptors, want at least %d + %d attack connections", got, base, want)
	}

	// RSS sampled through the whole attack.
	var rssMax atomic.Int64
	sampleDone := make(chan struct{})
	sampling := make(chan struct{})
	go func() {
		defer close(sampleDone)
		for {
			if kib, err := procStatusKiB(pid, "VmRSS"); err == nil && int64(kib) > rssMax.Load() {
				rssMax.Store(int64(kib))
			}
			select {
			case <-sampling:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	openedBefore := opened.Load()
	var slowest time.Duration
	ok := 0
	// Sessions spread over 8 s: the attack churns through more than two
	// first_frame_timeout cycles (3 s) meanwhile.
	for i := range sessions {
		if i > 0 {
			time.Sleep(400 * time.Millisecond)
		}
		start := time.Now()
		out, err := mitClient(t, r, a.port, nil, "-seq", "-mcount", "2", "127.0.0.1", service, fmt.Sprintf("under attack %d", i))
		d := time.Since(start)
		slowest = max(slowest, d)
		switch {
		case err != nil:
			t.Errorf("session %d under attack: %v\n%s", i, err, out)
		case strings.Count(out, "Signature verified.") != 2:
			t.Errorf("session %d under attack: MICs not verified\n%s", i, out)
		case d > within:
			t.Errorf("session %d under attack took %v, want within %v", i, d, within)
			ok++
		default:
			ok++
		}
		ft.served.Add(1)
	}
	close(sampling)
	<-sampleDone
	reopened := opened.Load() - openedBefore
	pending := fdCount(pid) - base
	t.Logf("under %d idle + %d partial-frame connections from %d sources: %d/%d sessions served, slowest %v; "+
		"attackers re-opened %d connections meanwhile (%d dial failures); acceptor holds %d attack descriptors; "+
		"acceptor RSS %d KiB before, at most %d KiB during the attack",
		idle, partial, sources, ok, sessions, slowest, reopened, dialFails.Load(), pending, rssBefore, rssMax.Load())
	if reopened < idle+partial {
		t.Errorf("attackers re-opened only %d connections during the sessions: the attack did not churn", reopened)
	}
	// Bounded: a 2,000-connection table costs tens of MiB, not more. The
	// race detector's shadow memory multiplies every allocation and
	// goroutine stack several times over (245–345 MiB measured under
	// -race, against 38–54 MiB without).
	budget := int64(128 << 10)
	if raceEnabled {
		budget *= 4
	}
	if rssMax.Load() > int64(rssBefore)+budget {
		t.Errorf("acceptor RSS grew from %d KiB to %d KiB during the attack", rssBefore, rssMax.Load())
	}
	// One log line per second per class of close, however many.
	closes := msgIs("pre-authentication connections closed")
	lines := a.logs.find(closes)
	classes := map[any]int{}
	total := 0.0
	for _, l := range lines {
		classes[l["result"]]++
		total += l["count"].(float64)
	}
	t.Logf("%d pre-authentication close lines %v counting %.0f closes", len(lines), classes, total)
	if limit := 3 * (int(time.Since(attackStart)/time.Second) + 2); len(lines) > limit {
		t.Errorf("%d close log lines in %v, want at most %d", len(lines), time.Since(attackStart), limit)
	}
	if evicting && (classes["pending_full"] == 0 || classes["source_limit"] == 0) {
		t.Errorf("close lines by class %v, want pending_full and source_limit evictions", classes)
	}
	ft.refused.Add(opened.Load())
	close(stop)
	wg.Wait()
	stop = make(chan struct{}) // for the deferred close
	if got := waitFDs(pid, 20*time.Second, func(n int) bool { return n <= base }); got > base {
		t.Errorf("acceptor has %d descriptors after the attack, baseline %d", got, base)
	}
	serveReal(t, r, a, ft, "after the attack")
}

// raiseNOFILE makes sure this test process may open n descriptors,
// raising its soft RLIMIT_NOFILE toward the hard limit (the acceptor it
// starts inherits it, and raises its own to the hard limit anyway).
func raiseNOFILE(t *testing.T, n uint64) {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur >= n {
		return
	}
	if rl.Max < n {
		t.Fatalf("RLIMIT_NOFILE hard limit %d, this test needs %d descriptors (raise it: ulimit -Hn)", rl.Max, n)
	}
	rl.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatalf("raising RLIMIT_NOFILE to %d: %v", n, err)
	}
}

// faultHandshakeFlood: with max_pending_connections 8 filled by silent
// connections, 512 more silent connections each evict the oldest waiting
// one (rate-limited log lines, not one per connection); descriptors and
// RSS stay bounded, and a real client is served while the table is full.
func faultHandshakeFlood(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	const (
		table = 8
		flood = 512
		batch = 64
	)
	// defer_accept off: the test checks that the table evicts oldest
	// first, in the order the connections were dialled. With it on, the
	// kernel hands silent connections to accept only after its SYN-ACK
	// timer for each, about a second later and not in dial order.
	a := startAcceptor(t, r, acceptorOptions{"max_pending_connections": strconv.Itoa(table),
		"first_frame_timeout": "20s", "handshake_timeout": "20s", "defer_accept": "0"})
	pid := a.cmd.Process.Pid
	evictLine := func(m map[string]any) bool {
		return m["msg"] == "pre-authentication connections closed" && m["result"] == "pending_full" &&
			m["max_pending_connections"] == float64(table)
	}
	base := fdCount(pid)
	rssBefore, err := procStatusKiB(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", a.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		return c
	}
	for range table {
		dial()
	}
	if got := waitFDs(pid, 10*time.Second, func(n int) bool { return n >= base+table }); got < base+table {
		t.Fatalf("acceptor holds %d descriptors, want %d + %d waiting connections", got, base, table)
	}
	start := time.Now()
	for done := 0; done < flood; done += batch {
		for range batch {
			dial()
		}
		// The table never holds more than its size.
		if got := fdCount(pid); got > base+table+batch {
			t.Errorf("acceptor holds %d descriptors during the flood, want at most %d", got, base+table+batch)
		}
	}
	// Every connection but the newest table-full was evicted, oldest
	// first: the server closed it without a word.
	evicted := conns[:len(conns)-table]
	for i, c := range evicted {
		if err := expectClosed(c, 10*time.Second); err != nil {
			t.Fatalf("connection %d of %d not evicted: %v", i, len(evicted), err)
		}
	}
	ft.refused.Add(int64(len(evicted)))
	if got := waitFDs(pid, 10*time.Second, func(n int) bool { return n <= base+table }); got > base+table {
		t.Errorf("acceptor holds %d descriptors after the flood, want at most %d", got, base+table)
	}
	// One line per second for the class, counting the evictions.
	lines := a.logs.wait(t, 10*time.Second, 1, "pending_full eviction lines", evictLine)
	if limit := int(time.Since(start)/time.Second) + 2; len(lines) > limit {
		t.Errorf("%d eviction log lines for %d evictions in %v, want at most %d", len(lines), len(evicted), time.Since(start), limit)
	}

	rssAfter, err := procStatusKiB(pid, "VmRSS")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("acceptor RSS %d KiB before, %d KiB after %d evicted connections", rssBefore, rssAfter, len(evicted))
	if rssAfter > rssBefore+64<<10 {
		t.Errorf("acceptor RSS grew from %d KiB to %d KiB during the flood", rssBefore, rssAfter)
	}
	// The table is full of silent connections: a real client evicts one.
	serveReal(t, r, a, ft, "with the pending table full")
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	if got := waitFDs(pid, 10*time.Second, func(n int) bool { return n <= base }); got > base {
		t.Errorf("acceptor has %d descriptors after the flood, baseline %d", got, base)
	}
}

// faultHandshakeFrames sends garbage, truncated and oversized frames and
// tokens at each step of the handshake: each connection is closed with
// the right outcome in the log, a KRB-ERROR where Kerberos refused it.
func faultHandshakeFrames(t *testing.T, ft *faultTally) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, acceptorOptions{"handshake_timeout": "2s", "worker_ack_timeout": "500ms", "max_token_size": "16KiB"})
	tkt := goTicket(t, r)
	_, apreq, err := tkt.InitialToken(gss.InitiatorConfig{Flags: gss.FlagMutual | gss.FlagReplay})
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(apreq)
	flipped[len(flipped)/2] ^= 0x01
	// A header whose length goes beyond what follows.
	cut := func(flags byte, n uint32, body int) []byte {
		return append([]byte{flags, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}, make([]byte, body)...)
	}
	op := opener()
	tests := []struct {
		name      string
		send      []byte
		closeSend bool   // half-close after sending
		result    string // the acceptor's outcome
		krbError  bool   // the reply is a KRB-ERROR context token; else nothing
	}{
		{"first frame: DATA before the opener", wire.AppendFrame(nil, wire.FlagData, []byte("abc")), false, "bad_frame", false},
		// 0x16 0x03010200: flags without NOOP, but the 48 MiB length is refused first.
		{"first frame: TLS ClientHello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), false, "too_large", false},
		{"first frame: opener with a body", wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, []byte("x")), false, "bad_frame", false},
		{"first frame: unauthenticated NOOP", wire.AppendFrame(nil, wire.FlagNoop, nil), false, "unauthenticated", false},
		{"first frame: header cut off, client closes", []byte{0x11, 0x00}, true, "client_closed", false},
		{"first frame: header cut off, client silent", []byte{0x11, 0x00}, false, "timeout", false},
		{"first frame: length over max_token_size", cut(0x11, 16<<10+1, 0), false, "too_large", false},
		{"first frame: 4 GiB length", cut(0x11, 1<<32-1, 0), false, "too_large", false},
		{"first frame: v1 framing, garbage token", []byte{0, 0, 0, 4, 'j', 'u', 'n', 'k'}, false, "rejected", false},
		// Like MIT, no KRB-ERROR before an AP-REQ decoded: nothing says
		// the peer speaks Kerberos, or wants mutual authentication.
		{"context token: garbage", wire.AppendFrame(op, wire.FlagContext, []byte("not a token")), false, "rejected", false},
		{"context token: empty", wire.AppendFrame(op, wire.FlagContext, nil), false, "rejected", false},
		{"context token: AP-REQ cut in half", wire.AppendFrame(op, wire.FlagContext, apreq[:len(apreq)/2]), false, "rejected", false},
		{"context token: AP-REQ with a flipped bit", wire.AppendFrame(op, wire.FlagContext, flipped), false, "rejected", true},
		{"context token: DATA instead of CONTEXT", wire.AppendFrame(op, wire.FlagData, apreq), false, "bad_frame", false},
		{"context token: length over max_token_size", append(bytes.Clone(op), cut(wire.FlagContext, 16<<10+1, 0)...), false, "too_large", false},
		{"context token: body cut off, client closes", append(bytes.Clone(op), cut(wire.FlagContext, 100, 10)...), true, "client_closed", false},
		{"context token: body cut off, client silent", append(bytes.Clone(op), cut(wire.FlagContext, 100, 10)...), false, "timeout", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft.scenario()
			before := len(a.logs.find(resultIs(tt.result)))
			c, err := net.DialTimeout("tcp", a.addr, ioTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			if tt.closeSend {
				c.(*net.TCPConn).CloseWrite()
			}
			reply, err := readUntilClosed(c, 8*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.krbError:
				if len(reply) < 5 || reply[0] != wire.FlagContext || !bytes.Contains(reply, []byte{0x03, 0x00, 0x7e}) {
					t.Errorf("reply %x is not a KRB-ERROR context token", reply)
				}
			case len(reply) != 0:
				t.Errorf("server replied %d bytes to %s", len(reply), tt.name)
			}
			a.logs.wait(t, 10*time.Second, before+1, "outcome "+tt.result, resultIs(tt.result))
			ft.refused.Add(1)
		})
	}
	serveReal(t, r, a, ft, "after bad handshakes")
}

// faultSessionFrames sends bad frames after establishment: each ends only
// its own session (the worker logs why), while a session on the same
// worker goes on.
func faultSessionFrames(t *testing.T, ft *faultTally) {
	r := testrealm.Shared(t)
	const maxMsg = 4096
	a := startAcceptor(t, r, acceptorOptions{"workers": "1", "max_message_size": strconv.Itoa(maxMsg)})
	tkt := goTicket(t, r)
	flags := gss.FlagMutual | gss.FlagReplay | gss.FlagSequence
	bystander := dialRaw(t, a.addr, tkt, flags)
	// The limit is on the frame body; a message that fits is served.
	if err := bystander.exchange(strings.Repeat("b", maxMsg-100)); err != nil {
		t.Fatalf("message under max_message_size: %v", err)
	}
	header := func(flags byte, n uint32) []byte {
		return []byte{flags, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	}
	tests := []struct {
		name      string
		send      func(s *rawSession) []byte
		closeSend bool
		want      string // in the worker's "session ended" error
	}{
		{"garbage wrap token", func(*rawSession) []byte {
			return wire.AppendFrame(nil, dataFlags, []byte("this is not a wrap token at all"))
		}, false, "GSS_S_DEFECTIVE_TOKEN"},
		{"wrap token cut in half", func(s *rawSession) []byte {
			tok := s.wrap("a message", true)
			return wire.AppendFrame(nil, dataFlags, tok[:len(tok)/2])
		}, false, "GSS_S_DEFECTIVE_TOKEN"},
		{"MIC frame from the client", func(s *rawSession) []byte {
			return wire.AppendFrame(nil, wire.FlagMIC, []byte("mic"))
		}, false, "unexpected frame flags"},
		{"context token after establishment", func(s *rawSession) []byte {
			return wire.AppendFrame(nil, wire.FlagContext, s.wrap("x", true))
		}, false, "unexpected frame flags"},
		{"frame cut off, then EOF", func(*rawSession) []byte {
			return append(header(dataFlags, 100), make([]byte, 10)...)
		}, true, "unexpected EOF"},
		{"DATA length over max_message_size", func(*rawSession) []byte {
			return header(dataFlags, maxMsg+1)
		}, false, "exceeds the limit"},
		{"DATA length 4 GiB", func(*rawSession) []byte {
			return header(dataFlags, 1<<32-1)
		}, false, "exceeds the limit"},
		{"wrapped message over max_message_size", func(s *rawSession) []byte {
			return wire.AppendFrame(nil, dataFlags, s.wrap(strings.Repeat("x", 2*maxMsg), true))
		}, false, "exceeds the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft.scenario()
			before := len(a.logs.find(sessionFailed(tt.want)))
			v := dialRaw(t, a.addr, tkt, flags)
			if err := v.exchange("before"); err != nil {
				t.Fatal(err)
			}
			if err := v.write(tt.send(v)); err != nil {
				t.Fatal(err)
			}
			if tt.closeSend {
				v.nc.(*net.TCPConn).CloseWrite()
			}
			if err := v.expectClosed(8 * time.Second); err != nil {
				t.Fatal(err)
			}
			a.logs.wait(t, 10*time.Second, before+1, "session ended: "+tt.want, sessionFailed(tt.want))
			ft.refused.Add(1)
			if err := bystander.exchange("still here after " + tt.name); err != nil {
				t.Fatalf("bystander session on the same worker: %v", err)
			}
		})
	}
	bystander.end()
	ft.served.Add(1)
	serveReal(t, r, a, ft, "after bad session frames")
}

// faultReplays: a replayed AP-REQ gets KRB-ERROR 34; replayed, reordered,
// tampered and foreign wrap tokens end the session with the GSS status MIT
// would give (or pass, where MIT's flags say so); other sessions go on.
func faultReplays(t *testing.T, ft *faultTally) {
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, acceptorOptions{"workers": "1"})
	tkt := goTicket(t, r)
	bystander := dialRaw(t, a.addr, tkt, gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)

	t.Run("replayed AP-REQ", func(t *testing.T) {
		ft.scenario()
		init, apreq, err := tkt.InitialToken(gss.InitiatorConfig{Flags: gss.FlagMutual | gss.FlagReplay})
		if err != nil {
			t.Fatal(err)
		}
		// The first use establishes a session.
		c, err := net.DialTimeout("tcp", a.addr, ioTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write(wire.AppendFrame(opener(), wire.FlagContext, apreq))
		c.SetReadDeadline(time.Now().Add(ioTimeout))
		rd := wire.NewReader(c, 4096)
		f, err := rd.ReadFrame(64 << 10)
		if err != nil || f.Flags != wire.FlagContext {
			t.Fatalf("no AP-REP: flags %#x, %v", f.Flags, err)
		}
		gctx, err := init.Complete(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		defer gctx.Delete()
		first := &rawSession{t: t, nc: c, r: rd, ctx: gctx}
		if err := first.exchange("first use"); err != nil {
			t.Fatal(err)
		}
		// The same bytes again: the replay cache refuses them.
		before := len(a.logs.find(handshakeFailed("rejected", 34, "")))
		assertKRBError(t, handshakeReply(t, a.addr, apreq), 34)
		a.logs.wait(t, 10*time.Second, before+1, "replay refused", handshakeFailed("rejected", 34, ""))
		ft.refused.Add(1)
		if err := first.exchange("the original session is unaffected"); err != nil {
			t.Fatal(err)
		}
		first.end()
	})

	type script struct {
		toks [][]byte
		msgs []string
	}
	tests := []struct {
		name   string
		flags  gss.Flags
		make   func(v, other *rawSession) script
		failAt int    // index of the token that ends the session; -1: all pass
		status string // in the worker's "session ended" error
	}{
		{"replayed wrap token (replay detection)", gss.FlagMutual | gss.FlagReplay, func(v, _ *rawSession) script {
			t0 := v.wrap("m0", true)
			return script{[][]byte{t0, t0}, []string{"m0", "m0"}}
		}, 1, "GSS_S_DUPLICATE_TOKEN"},
		{"replayed wrap token (-seq)", gss.FlagMutual | gss.FlagReplay | gss.FlagSequence, func(v, _ *rawSession) script {
			t0 := v.wrap("m0", true)
			return script{[][]byte{t0, t0}, []string{"m0", "m0"}}
		}, 1, "GSS_S_DUPLICATE_TOKEN"},
		{"replayed wrap token (no replay detection asked)", gss.FlagMutual, func(v, _ *rawSession) script {
			t0 := v.wrap("m0", true)
			return script{[][]byte{t0, t0, t0}, []string{"m0", "m0", "m0"}}
		}, -1, ""},
		{"reordered wrap tokens (replay detection only)", gss.FlagMutual | gss.FlagReplay, func(v, _ *rawSession) script {
			t0, t1 := v.wrap("m0", true), v.wrap("m1", true)
			return script{[][]byte{t1, t0}, []string{"m1", "m0"}}
		}, -1, ""},
		{"reordered wrap tokens (-seq)", gss.FlagMutual | gss.FlagReplay | gss.FlagSequence, func(v, _ *rawSession) script {
			_, t1 := v.wrap("m0", true), v.wrap("m1", true)
			return script{[][]byte{t1}, []string{"m1"}}
		}, 0, "GSS_S_GAP_TOKEN"},
		{"reordered then replayed (replay detection only)", gss.FlagMutual | gss.FlagReplay, func(v, _ *rawSession) script {
			t0, t1 := v.wrap("m0", true), v.wrap("m1", true)
			return script{[][]byte{t1, t0, t1}, []string{"m1", "m0", "m1"}}
		}, 2, "GSS_S_DUPLICATE_TOKEN"},
		{"tampered ciphertext", gss.FlagMutual | gss.FlagReplay, func(v, _ *rawSession) script {
			t0 := v.wrap("a sealed message", true)
			t0[16+8] ^= 0x80
			return script{[][]byte{t0}, []string{"a sealed message"}}
		}, 0, "GSS_S_BAD_SIG"},
		{"tampered integrity-only payload", gss.FlagMutual | gss.FlagReplay, func(v, _ *rawSession) script {
			t0 := v.wrap("a signed message", false)
			t0[16] ^= 0x01
			return script{[][]byte{t0}, []string{"a signed message"}}
		}, 0, "GSS_S_BAD_SIG"},
		{"tampered sequence number in the header", gss.FlagMutual | gss.FlagReplay, func(v, _ *rawSession) script {
			t0 := v.wrap("a sealed message", true)
			t0[15] ^= 0x01
			return script{[][]byte{t0}, []string{"a sealed message"}}
		}, 0, "GSS_S_DEFECTIVE_TOKEN"},
		{"wrap token from another session", gss.FlagMutual | gss.FlagReplay, func(_, other *rawSession) script {
			return script{[][]byte{other.wrap("foreign", true)}, []string{"foreign"}}
		}, 0, "GSS_S_BAD_SIG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft.scenario()
			v := dialRaw(t, a.addr, tkt, tt.flags)
			other := dialRaw(t, a.addr, tkt, tt.flags)
			sc := tt.make(v, other)
			before := 0
			if tt.failAt >= 0 {
				before = len(a.logs.find(sessionFailed(tt.status)))
			}
			for i, tok := range sc.toks {
				if i == tt.failAt {
					if err := v.write(wire.AppendFrame(nil, dataFlags, tok)); err != nil {
						t.Fatal(err)
					}
					if err := v.expectClosed(8 * time.Second); err != nil {
						t.Fatalf("token %d: %v", i, err)
					}
					a.logs.wait(t, 10*time.Second, before+1, "session ended: "+tt.status, sessionFailed(tt.status))
					ft.refused.Add(1)
					break
				}
				if err := v.sendToken(tok, sc.msgs[i]); err != nil {
					t.Fatalf("token %d: %v", i, err)
				}
			}
			if tt.failAt < 0 {
				// MIT semantics: nothing was asked to be checked, or the
				// order did not matter; the session goes on.
				if err := v.exchange("after"); err != nil {
					t.Fatal(err)
				}
				v.end()
				ft.served.Add(1)
			}
			// The other sessions on the same worker are untouched.
			if err := other.exchange("other session"); err != nil {
				t.Fatalf("other session: %v", err)
			}
			other.end()
			if err := bystander.exchange("bystander after " + tt.name); err != nil {
				t.Fatalf("bystander: %v", err)
			}
		})
	}
	bystander.end()
	ft.served.Add(1)
}

// faultCredentials: expired tickets, tickets for principals the acceptor
// does not serve, non-AES enctypes and skewed clocks each get the
// Kerberos error MIT gives, and the log says why.
//
// The realm is AES-only, so its KDC issues no rc4 or des3 tickets; those
// are crafted here with gokrb5 types and the service's real key, which is
// what an attacker holding a weak-enctype ticket would present.
func faultCredentials(t *testing.T, ft *faultTally) {
	r := testrealm.Shared(t)
	cfg, err := client.LoadKrb5Conf(r.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// A ticket that expires in 3 s: kinit -l, then a service ticket, whose
	// lifetime the TGT bounds.
	cc := filepath.Join(dir, "short.ccache")
	kinit := exec.Command("kinit", "-l", "3s", "-k", "-t", r.UserKeytab, r.UserPrincipal)
	kinit.Env = append(r.Env(), "KRB5CCNAME=FILE:"+cc)
	if out, err := kinit.CombinedOutput(); err != nil {
		t.Fatalf("kinit -l 3s: %v\n%s", err, out)
	}
	shortCreds, err := client.FromCCache(cc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	expiring, err := shortCreds.ServiceTicket("host/localhost")
	if err != nil {
		t.Fatal(err)
	}
	expiresBy := time.Now().Add(3 * time.Second)

	// A keytab with a second principal that the acceptor may not serve,
	// and a principal whose key it does not have at all.
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	other, nokey := "faultother"+suffix+"/localhost", "faultnokey"+suffix+"/localhost"
	kt := filepath.Join(dir, "service.keytab")
	data, err := os.ReadFile(r.ServiceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(kt, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.AddService(other, []int32{18}, kt); err != nil {
		t.Fatal(err)
	}
	if err := r.AddService(nokey, []int32{18}, filepath.Join(dir, "elsewhere.keytab")); err != nil {
		t.Fatal(err)
	}
	a := startAcceptor(t, r, acceptorOptions{
		"keytab":     strconv.Quote(kt),
		"services":   fmt.Sprintf("[%q]", r.ServicePrincipal),
		"clock_skew": "1s",
	})

	creds, err := client.FromKeytab(r.UserPrincipal, r.UserKeytab, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ticket := func(spn string) *client.Ticket {
		tk, err := creds.ServiceTicket(spn)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	good := ticket("host/localhost")
	skewed := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(d) } }

	tests := []struct {
		name string
		tkt  func() *client.Ticket
		now  func() time.Time
		wait time.Time // not before
		code int       // KRB-ERROR code; 0: accepted
		log  string    // in the acceptor's error text
	}{
		{"valid ticket with a 1 s clock skew", func() *client.Ticket { return good }, nil, time.Time{}, 0, ""},
		{"ticket for a principal not in services", func() *client.Ticket { return ticket(other) }, nil, time.Time{}, 35, "not an allowed service"},
		{"ticket for a principal not in the keytab", func() *client.Ticket { return ticket(nokey) }, nil, time.Time{}, 45, "has no key in the keytab"},
		{"ticket encrypted with rc4-hmac", func() *client.Ticket {
			tk := *good
			tk.Ticket.EncPart.EType = etypeID.RC4_HMAC
			return &tk
		}, nil, time.Time{}, 14, "etype 23"},
		{"ticket with an rc4-hmac session key", func() *client.Ticket {
			return forgeTicket(t, r, good, etypeID.RC4_HMAC, 16)
		}, nil, time.Time{}, 14, "session key has enctype 23"},
		{"ticket with a des3 session key", func() *client.Ticket {
			return forgeTicket(t, r, good, etypeID.DES3_CBC_SHA1_KD, 24)
		}, nil, time.Time{}, 14, "session key has enctype 16"},
		{"client clock 10 minutes ahead", func() *client.Ticket { return good }, skewed(10 * time.Minute), time.Time{}, 37, "clock skew"},
		{"client clock 10 minutes behind", func() *client.Ticket { return good }, skewed(-10 * time.Minute), time.Time{}, 37, "clock skew"},
		// Last, so that the wait overlaps the cases above.
		{"expired ticket", func() *client.Ticket { return expiring }, nil, expiresBy.Add(2 * time.Second), 32, "expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft.scenario()
			if d := time.Until(tt.wait); d > 0 {
				time.Sleep(d) // bounded: a few seconds at most
			}
			tk := tt.tkt()
			init, err := gss.NewInitiator(tk.CName, tk.CRealm, tk.Ticket, tk.SessionKey,
				gss.InitiatorConfig{Flags: gss.FlagMutual | gss.FlagReplay, Now: tt.now})
			if err != nil {
				t.Fatal(err)
			}
			apreq, err := init.InitialToken()
			if err != nil {
				t.Fatal(err)
			}
			if tt.code == 0 {
				c, err := net.DialTimeout("tcp", a.addr, ioTimeout)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.Write(wire.AppendFrame(opener(), wire.FlagContext, apreq))
				c.SetReadDeadline(time.Now().Add(ioTimeout))
				rd := wire.NewReader(c, 4096)
				f, err := rd.ReadFrame(64 << 10)
				if err != nil {
					t.Fatal(err)
				}
				gctx, err := init.Complete(f.Body)
				if err != nil {
					t.Fatalf("valid ticket refused: %v\n%s", err, a.logs)
				}
				defer gctx.Delete()
				s := &rawSession{t: t, nc: c, r: rd, ctx: gctx}
				if err := s.exchange("accepted"); err != nil {
					t.Fatal(err)
				}
				s.end()
				ft.served.Add(1)
				return
			}
			match := handshakeFailed("rejected", tt.code, tt.log)
			before := len(a.logs.find(match))
			assertKRBError(t, handshakeReply(t, a.addr, apreq), tt.code)
			a.logs.wait(t, 10*time.Second, before+1, fmt.Sprintf("KRB-ERROR %d (%s)", tt.code, tt.log), match)
			ft.refused.Add(1)
		})
	}
	serveReal(t, r, a, ft, "after bad credentials")
}

// forgeTicket re-issues good's ticket with a session key of the given
// enctype, encrypted with the service's real AES256 key from the realm's
// keytab: exactly what a KDC that allows weak enctypes would issue.
func forgeTicket(t *testing.T, r *testrealm.Realm, good *client.Ticket, etype int32, keyLen int) *client.Ticket {
	t.Helper()
	kt, err := keytab.Load(r.ServiceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/localhost")
	skey, kvno, err := kt.GetEncryptionKey(sname, r.Name, 0, etypeID.AES256_CTS_HMAC_SHA1_96)
	if err != nil {
		t.Fatal(err)
	}
	weak := make([]byte, keyLen)
	rand.Read(weak)
	now := time.Now().UTC().Truncate(time.Second)
	tf := types.NewKrbFlags()
	types.SetFlag(&tf, flags.Initial)
	etp := messages.EncTicketPart{
		Flags:     tf,
		Key:       types.EncryptionKey{KeyType: etype, KeyValue: weak},
		CRealm:    good.CRealm,
		CName:     good.CName,
		Transited: messages.TransitedEncoding{},
		AuthTime:  now,
		StartTime: now,
		EndTime:   now.Add(time.Hour),
		RenewTill: now.Add(time.Hour),
	}
	b, err := asn1.Marshal(etp)
	if err != nil {
		t.Fatal(err)
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart)
	ed, err := krbcrypto.GetEncryptedData(b, skey, keyusage.KDC_REP_TICKET, kvno)
	if err != nil {
		t.Fatal(err)
	}
	tk := *good
	tk.Ticket = messages.Ticket{TktVNO: 5, Realm: r.Name, SName: sname, EncPart: ed}
	// The client's idea of the session key: any AES key, since the
	// acceptor must refuse the ticket before it looks at the authenticator.
	aes := make([]byte, 32)
	rand.Read(aes)
	tk.SessionKey = types.EncryptionKey{KeyType: etypeID.AES256_CTS_HMAC_SHA1_96, KeyValue: aes}
	return &tk
}

// faultKillWorkerDuringHandoff: a stopped worker holds a handoff it cannot
// acknowledge; when it is killed the acceptor re-sends the connection to
// the other worker and the session completes.
func faultKillWorkerDuringHandoff(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	// The test kills the stopped worker itself, before the watchdog would.
	a := startAcceptor(t, r, acceptorOptions{"handshake_timeout": "40s", "worker_ack_timeout": "30s"})
	tkt := goTicket(t, r)
	pids := a.workerPIDs()
	if len(pids) != 2 {
		t.Fatalf("%d workers, want 2", len(pids))
	}
	victim := pids[0]
	proctest.Stop(t, victim)
	killed := false
	defer func() {
		if !killed {
			syscall.Kill(victim, syscall.SIGCONT)
		}
	}()

	// The AP-REP comes from the acceptor before the handoff, so Dial
	// returns either way. A session not handed off within a second went
	// to the stopped worker: the live one acknowledges at once. The
	// least-loaded dispatcher gets there within two sessions, since the
	// live worker's load grows with each open session.
	var pending *rawSession
	for i := 0; i < 6 && pending == nil; i++ {
		s := dialRaw(t, a.addr, tkt, gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)
		if l, ok := findWithin(a.logs, time.Second, handedOff(s.peer())); ok {
			if int(l["worker_pid"].(float64)) == victim {
				t.Fatalf("a stopped worker (%d) acknowledged a handoff", victim)
			}
			continue
		}
		pending = s
	}
	if pending == nil {
		t.Fatal("no handoff went to the stopped worker")
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed = true
	a.logs.wait(t, 10*time.Second, 1, "re-send log", func(m map[string]any) bool {
		return m["msg"] == "worker died before acknowledging a handoff; re-sending" && m["pid"] == float64(victim)
	})
	l := a.logs.wait(t, 10*time.Second, 1, "handed off on the second attempt", handedOff(pending.peer()))[0]
	if l["attempts"] != float64(2) || int(l["worker_pid"].(float64)) == victim {
		t.Errorf("pending session handed off with attempts %v to worker %v; want 2 attempts, not the killed %d", l["attempts"], l["worker_pid"], victim)
	}
	if err := pending.exchange("after the re-send"); err != nil {
		t.Fatalf("re-sent session: %v", err)
	}
	pending.end()
	ft.refused.Add(1)
	ft.served.Add(1)
	serveReal(t, r, a, ft, "after the worker died mid-handoff")
}

// faultStoppedWorker: with one of two workers stopped (SIGSTOP), 8
// concurrent MIT gss-clients of 5 sessions each are all served: a handoff
// the stopped worker does not acknowledge within worker_ack_timeout gets
// it killed, and the connection goes to the other worker; no session
// waits more than the handshake plus 3 s. The stopped worker is replaced,
// and the acceptor's descriptors come back to where they were.
func faultStoppedWorker(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	const (
		clients    = 8
		perClient  = 5
		ackTimeout = 2 * time.Second
		maxExtra   = 3 * time.Second // over the handshake, per session
	)
	a := startAcceptor(t, r, acceptorOptions{"handshake_timeout": "10s", "worker_ack_timeout": ackTimeout.String()})
	pids := a.workerPIDs()
	if len(pids) != 2 {
		t.Fatalf("%d workers, want 2", len(pids))
	}
	// One session first, so that the acceptor's descriptors (ccache,
	// replay cache, KDC config) are all open before counting.
	serveReal(t, r, a, ft, "before the stop")
	fdsBefore := fdCount(a.cmd.Process.Pid)
	victim := pids[0]
	defer syscall.Kill(victim, syscall.SIGCONT) // if the watchdog missed it
	proctest.Stop(t, victim)
	start := time.Now()
	handedBefore := len(a.logs.find(msgIs("session handed off")))

	var wg sync.WaitGroup
	var ok atomic.Int64
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := mitClient(t, r, a.port, nil, "-seq", "-mcount", "1", "-ccount", strconv.Itoa(perClient),
				"127.0.0.1", service, fmt.Sprintf("client %d", i))
			n := strings.Count(out, "Signature verified.")
			ok.Add(int64(n))
			if err != nil || n != perClient {
				errs <- fmt.Errorf("client %d: %d of %d sessions verified, %v\n%s", i, n, perClient, err, out)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	ft.served.Add(ok.Load())

	// Every session's wait: its handshake plus its handoff (re-sends
	// included), from the acceptor's log line.
	handed := a.logs.find(msgIs("session handed off"))[handedBefore:]
	var maxHandoff, maxTotal time.Duration
	resent := 0
	for _, l := range handed {
		hs, err1 := time.ParseDuration(fmt.Sprint(l["handshake"]))
		ho, err2 := time.ParseDuration(fmt.Sprint(l["handoff"]))
		if err1 != nil || err2 != nil {
			t.Fatalf("handoff line without durations: %v", l)
		}
		maxHandoff, maxTotal = max(maxHandoff, ho), max(maxTotal, hs+ho)
		if l["attempts"] != float64(1) {
			resent++
		}
		if l["worker_pid"] == float64(victim) {
			t.Errorf("the stopped worker %d acknowledged a handoff: %v", victim, l)
		}
	}
	if len(handed) != clients*perClient {
		t.Errorf("%d sessions handed off, want %d", len(handed), clients*perClient)
	}
	if maxHandoff > maxExtra {
		t.Errorf("a session waited %v for its handoff, want at most %v", maxHandoff, maxExtra)
	}

	// The watchdog killed the stopped worker, once, and it was replaced.
	kills := a.logs.wait(t, 10*time.Second, 1, "kill of the stopped worker", func(m map[string]any) bool {
		return m["msg"] == "killing worker" && m["pid"] == float64(victim) && m["reason"] == "ack_timeout"
	})
	if len(kills) != 1 {
		t.Errorf("%d kill lines for worker %d, want 1", len(kills), victim)
	}
	var replaced time.Duration
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		now := a.workerPIDs()
		if len(now) == 2 && !slices.Contains(now, victim) && len(a.logs.find(func(m map[string]any) bool {
			return m["msg"] == "worker ready" && m["slot"] == float64(0) && m["pid"] != float64(victim)
		})) > 0 {
			replaced = time.Since(start)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stopped worker %d not replaced: workers %v", victim, now)
		}
	}
	if procAlive(victim) {
		t.Errorf("stopped worker %d still alive", victim)
	}
	// Nothing leaks: the descriptors of the killed worker's channel and of
	// the re-sent connections are all closed.
	if n := waitFDs(a.cmd.Process.Pid, 10*time.Second, func(n int) bool { return n <= fdsBefore }); n > fdsBefore {
		t.Errorf("acceptor holds %d descriptors, %d before the stop", n, fdsBefore)
	}
	t.Logf("stopped worker: %d/%d sessions ok from %d clients in %v; %d re-sent; max handoff %v, max handshake+handoff %v; replaced after %v",
		ok.Load(), clients*perClient, clients, elapsed.Round(time.Millisecond), resent,
		maxHandoff.Round(time.Millisecond), maxTotal.Round(time.Millisecond), replaced.Round(time.Millisecond))
	serveReal(t, r, a, ft, "after the stopped worker was replaced")
}

// faultStoppedIdleWorker: a worker stopped (SIGSTOP) while no connection
// comes is found by the heartbeat, not by a client: silent for
// worker_heartbeat, it gets a PING, does not answer within
// worker_ack_timeout, and is killed and replaced. The other worker answers
// its PINGs and is left alone.
func faultStoppedIdleWorker(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, acceptorOptions{"worker_heartbeat": "1s", "worker_ack_timeout": "500ms"})
	pids := a.workerPIDs()
	if len(pids) != 2 {
		t.Fatalf("%d workers, want 2", len(pids))
	}
	victim := pids[0]
	defer syscall.Kill(victim, syscall.SIGCONT) // if the heartbeat missed it
	proctest.Stop(t, victim)
	start := time.Now()
	a.logs.wait(t, 15*time.Second, 1, "heartbeat kill of the stopped worker", func(m map[string]any) bool {
		return m["msg"] == "killing worker" && m["pid"] == float64(victim) && m["reason"] == "heartbeat"
	})
	killed := time.Since(start)
	a.waitWorkerReplaced(t, victim, 2, 15*time.Second)
	if procAlive(victim) {
		t.Errorf("stopped worker %d still alive", victim)
	}
	// Three more intervals: the workers that answer are never killed.
	time.Sleep(3 * time.Second)
	if other := a.logs.find(func(m map[string]any) bool { return m["msg"] == "killing worker" && m["pid"] != float64(victim) }); len(other) > 0 {
		t.Errorf("workers that answer their PINGs were killed: %v", other)
	}
	t.Logf("stopped idle worker: killed %v after the stop, before any connection", killed.Round(time.Millisecond))
	serveReal(t, r, a, ft, "after the stopped idle worker was replaced")
}

// faultKillWorkerMidSession: SIGKILL of a worker ends its sessions only;
// the other worker's sessions go on and new sessions are served.
func faultKillWorkerMidSession(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	tkt := goTicket(t, r)
	byWorker := map[int][]*rawSession{}
	for range 4 {
		s := dialRaw(t, a.addr, tkt, gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)
		if err := s.exchange("open"); err != nil {
			t.Fatal(err)
		}
		l := a.logs.wait(t, 10*time.Second, 1, "handoff of "+s.peer(), handedOff(s.peer()))[0]
		pid := int(l["worker_pid"].(float64))
		byWorker[pid] = append(byWorker[pid], s)
	}
	if len(byWorker) != 2 {
		t.Fatalf("sessions on %d worker(s), want both", len(byWorker))
	}
	var victim, survivor int
	for pid := range byWorker {
		if victim == 0 {
			victim = pid
		} else {
			survivor = pid
		}
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for _, s := range byWorker[victim] {
		if err := s.expectClosed(8 * time.Second); err != nil {
			t.Errorf("session on the killed worker: %v", err)
		}
		ft.refused.Add(1)
	}
	for _, s := range byWorker[survivor] {
		if err := s.exchange("survivor"); err != nil {
			t.Errorf("session on the surviving worker %d: %v", survivor, err)
		}
		s.end()
		ft.served.Add(1)
	}
	a.logs.wait(t, 10*time.Second, 1, "respawn", func(m map[string]any) bool {
		return m["msg"] == "worker exited; respawning" && m["pid"] == float64(victim)
	})
	serveReal(t, r, a, ft, "after a worker was killed")
}

// faultKillAcceptor: after SIGKILL of the acceptor its workers finish
// their open sessions and exit on their own; a new acceptor on the same
// port serves.
func faultKillAcceptor(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, nil)
	tkt := goTicket(t, r)
	var sessions []*rawSession
	for range 2 {
		s := dialRaw(t, a.addr, tkt, gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)
		if err := s.exchange("open"); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	workers := a.workerPIDs()
	if len(workers) != 2 {
		t.Fatalf("%d workers, want 2", len(workers))
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	a.logs.wait(t, 10*time.Second, 2, "workers notice", msgIs("acceptor went away; finishing sessions"))
	// Orphaned, the workers keep serving what they have.
	for i, s := range sessions {
		for j := range 3 {
			if err := s.exchange(fmt.Sprintf("after the acceptor died %d", j)); err != nil {
				t.Fatalf("session %d: %v", i, err)
			}
		}
	}
	if alive := waitGone(workers, 0); len(alive) != 2 {
		t.Fatalf("workers alive %v, want both of %v while their sessions are open", alive, workers)
	}
	for _, s := range sessions {
		s.end()
		ft.served.Add(1)
	}
	if alive := waitGone(workers, 15*time.Second); len(alive) != 0 {
		for _, pid := range alive {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.Fatalf("workers %v still running 15 s after their sessions ended", alive)
	}
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("acceptor's log pipe still open after its workers exited")
	}
	// The port is free again.
	b := startAcceptor(t, r, acceptorOptions{"listen": fmt.Sprintf("[%q]", a.addr)})
	if b.addr != a.addr {
		t.Fatalf("new acceptor on %s, want %s", b.addr, a.addr)
	}
	serveReal(t, r, b, ft, "new acceptor on the same port")
}

// faultFDExhaustion: with RLIMIT_NOFILE lowered under the acceptor, a
// connection storm makes accept fail with EMFILE; the loop backs off and
// recovers, no descriptor leaks, and real clients are served afterwards.
func faultFDExhaustion(t *testing.T, ft *faultTally) {
	ft.scenario()
	r := testrealm.Shared(t)
	a := startAcceptor(t, r, acceptorOptions{"handshake_timeout": "2s", "worker_ack_timeout": "500ms"})
	pid := a.cmd.Process.Pid
	serveReal(t, r, a, ft, "before the storm") // warm: every lazily opened descriptor is open
	base := fdCount(pid)
	// RLIMIT_NOFILE bounds descriptor numbers, not their count: pick the
	// limit that leaves exactly 8 free numbers below it.
	const room = 8
	limit := fdLimitWithRoom(t, pid, room)
	lim := strconv.Itoa(limit)
	t.Logf("acceptor: %d descriptors; RLIMIT_NOFILE lowered to %d", base, limit)
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile="+lim+":"+lim).CombinedOutput(); err != nil {
		t.Fatalf("prlimit: %v\n%s", err, out)
	}
	backoff := msgIs("accept failed; backing off")
	before := len(a.logs.find(backoff))

	const storm = 64
	var conns []net.Conn
	for range storm {
		c, err := net.DialTimeout("tcp", a.addr, ioTimeout)
		if err != nil {
			t.Fatalf("dial during the storm: %v", err) // the kernel backlog takes them
		}
		conns = append(conns, c)
	}
	a.logs.wait(t, 10*time.Second, before+1, "EMFILE backoff", backoff)
	l := a.logs.find(backoff)[before]
	if !strings.Contains(fmt.Sprint(l["error"]), "too many open files") {
		t.Errorf("backoff for %v, want EMFILE", l["error"])
	}
	if n := fdCount(pid); n > base+room {
		t.Errorf("acceptor holds %d descriptors during the storm, more than the %d its limit allows", n, base+room)
	}
	// The loop keeps going: each EMFILE evicts the oldest silent
	// connection, whose descriptor takes the next one off the backlog,
	// so the whole storm is accepted without waiting for deadlines.
	evictions := msgIs("pre-authentication connections closed")
	a.logs.wait(t, 10*time.Second, 1, "evictions when out of descriptors", evictions)
	for i, c := range conns[:storm-room] {
		if err := expectClosed(c, 10*time.Second); err != nil {
			t.Fatalf("storm connection %d not evicted: %v", i, err)
		}
	}
	ft.refused.Add(int64(storm - room))
	// Never spinning: the CPU the acceptor used during the storm.
	if ticks := cpuTicks(t, pid); ticks > 500 {
		t.Errorf("acceptor used %d CPU ticks in all; the accept loop spins", ticks)
	}
	for _, c := range conns {
		c.Close()
	}
	// The backlog drains (each connection is accepted, reads EOF and is
	// closed) and the loop serves again.
	if got := waitFDs(pid, 20*time.Second, func(n int) bool { return n <= base }); got > base {
		t.Errorf("acceptor has %d descriptors after the storm, baseline %d", got, base)
	}
	serveReal(t, r, a, ft, "after the storm")
	if got := waitFDs(pid, 10*time.Second, func(n int) bool { return n <= base }); got > base {
		t.Errorf("acceptor has %d descriptors after serving, baseline %d", got, base)
	}
	// Restore a normal limit so that the drain at cleanup is not starved.
	exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile=4096:4096").Run()
}
