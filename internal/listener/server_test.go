package listener

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// kerberos is a service in an in-memory realm and its acceptor, which
// keeps a replay cache as the daemon's does. Its ticket makes any number
// of AP-REQs.
type kerberos struct {
	*gsstest.Fixture
	acceptor *gss.Acceptor
}

func newKerberos(t *testing.T) *kerberos {
	t.Helper()
	f := gsstest.New(t, 18)
	return &kerberos{f, f.Acceptor(t, gss.AcceptorConfig{ReplayCache: gss.NewReplayCache(1000)})}
}

// apreq returns a fresh initial context token (mutual authentication).
func (k *kerberos) apreq(t *testing.T) []byte {
	t.Helper()
	return k.InitialToken(t, gss.FlagMutual|gss.FlagReplay)
}

// handshake returns what a client sends to establish a context: the
// opening NOOP with CONTEXT_NEXT, then a fresh AP-REQ in a CONTEXT frame.
func (k *kerberos) handshake(t *testing.T) []byte {
	t.Helper()
	return wire.AppendFrame(wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil), wire.FlagContext, k.apreq(t))
}

// recordingDispatcher takes every handoff at once and records it. While
// full is set, WaitCapacity blocks until it is cleared.
type recordingDispatcher struct {
	mu      sync.Mutex
	handed  []handed
	full    bool
	changed chan struct{}
	// onHandoff, if set, runs first in each Handoff with its descriptor.
	onHandoff func(fd int)
}

type handed struct {
	sockType  int // SO_TYPE of the descriptor at handoff time
	token     []byte
	readAhead []byte
	addrs     Addrs
}

func newRecordingDispatcher() *recordingDispatcher {
	return &recordingDispatcher{changed: make(chan struct{})}
}

func (d *recordingDispatcher) Handoff(_ context.Context, fd int, token, readAhead []byte, addrs Addrs) (HandoffResult, error) {
	if d.onHandoff != nil {
		d.onHandoff(fd)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return HandoffResult{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.handed = append(d.handed, handed{typ, bytes.Clone(token), bytes.Clone(readAhead), addrs})
	return HandoffResult{PID: 1, Attempts: 1}, nil
}

func (d *recordingDispatcher) WaitCapacity(ctx context.Context) error {
	for {
		d.mu.Lock()
		full, ch := d.full, d.changed
		d.mu.Unlock()
		if !full {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (d *recordingDispatcher) setFull(full bool) {
	d.mu.Lock()
	d.full = full
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *recordingDispatcher) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.handed)
}

// testServer is a Server on 127.0.0.1 with its outcomes and logs recorded.
type testServer struct {
	s        *Server
	addr     string
	disp     *recordingDispatcher
	outcomes chan Outcome
	logs     *observer.ObservedLogs
	served   chan error
}

func startServer(t *testing.T, k *kerberos, cfg Config, ln net.Listener) *testServer {
	t.Helper()
	seal, err := gss.GenerateSealKey(1)
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	ts := &testServer{disp: newRecordingDispatcher(), outcomes: make(chan Outcome, 1024), logs: logs, served: make(chan error, 1)}
	cfg.Acceptor, cfg.SealKey, cfg.Dispatcher = k.acceptor, seal, ts.disp
	cfg.Logger = zap.New(core)
	cfg.OnOutcome = func(o Outcome) { ts.outcomes <- o }
	if ts.s, err = NewServer(cfg); err != nil {
		t.Fatal(err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	ts.addr = ln.Addr().String()
	go func() { ts.served <- ts.s.Serve(ln) }()
	t.Cleanup(func() {
		ts.s.Close()
		select {
		case err := <-ts.served:
			if !errors.Is(err, ErrServerClosed) {
				t.Errorf("Serve: %v, want ErrServerClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after Close")
		}
	})
	return ts
}

// dial connects to the server; the connection is closed when the test
// ends.
func (ts *testServer) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (ts *testServer) outcome(t *testing.T) Outcome {
	t.Helper()
	select {
	case o := <-ts.outcomes:
		return o
	case <-time.After(10 * time.Second):
		t.Fatal("no outcome")
		return Outcome{}
	}
}

// waitHandshaking waits up to 5 s for the server to count n connections
// in their handshake, and reports whether it did.
func (ts *testServer) waitHandshaking(n int) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, _, _, hs := ts.s.Stats(); hs == n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// readUntilClosed returns what the server sent before closing, or fails
// if it keeps the connection open for d.
func readUntilClosed(t *testing.T, c net.Conn, d time.Duration) []byte {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("connection not closed by the server: %v", err)
	}
	return buf.Bytes()
}

// Each kind of handshake ends with its outcome, the connection closed
// (after the reply, if any), and only a good one reaches the dispatcher,
// with the client bytes read past the context token.
func TestServerHandshakeOutcomes(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{HandshakeTimeout: 300 * time.Millisecond, MaxTokenSize: 4096}, nil)
	opener := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	early := wire.AppendFrame(nil, wire.FlagData, []byte("sent before the AP-REP"))
	good := func() []byte {
		return append(wire.AppendFrame(bytes.Clone(opener), wire.FlagContext, k.apreq(t)), early...)
	}
	tests := []struct {
		name      string
		send      func() []byte
		replay    bool // send the bytes once first (a good handshake), then again
		halfClose bool
		result    Result
		reply     byte // flags of the reply frame; 0: no reply
	}{
		{"good AP-REQ with early data", good, false, false, ResultOK, wire.FlagContext},
		{"replayed AP-REQ", good, true, false, ResultRejected, wire.FlagContext},
		{"garbage context token", func() []byte { return wire.AppendFrame(bytes.Clone(opener), wire.FlagContext, []byte("junk")) }, false, false, ResultRejected, 0},
		{"silent client", func() []byte { return nil }, false, false, ResultTimeout, 0},
		{"client hangs up", func() []byte { return opener[:2] }, false, true, ResultClientClosed, 0},
		{"DATA first", func() []byte { return early }, false, false, ResultBadFrame, 0},
		{"unauthenticated", func() []byte { return wire.AppendFrame(nil, wire.FlagNoop, nil) }, false, false, ResultUnauthenticated, 0},
		{"token over MaxTokenSize", func() []byte { return append(bytes.Clone(opener), wire.FlagContext, 0, 0, 0x10, 1) }, false, false, ResultTooLarge, 0},
	}
	// Connections made by the subtests that ran, for the Stats check.
	var accepted, established uint64
	// try sends one connection's bytes and checks how its handshake ended.
	try := func(t *testing.T, send []byte, halfClose bool, result Result, replyFlags byte) {
		t.Helper()
		before := ts.disp.count()
		c := ts.dial(t)
		c.Write(send)
		if halfClose {
			c.(*net.TCPConn).CloseWrite()
		}
		reply := readUntilClosed(t, c, 5*time.Second)
		accepted++
		if o := ts.outcome(t); o.Result != result {
			t.Errorf("outcome %q, want %q", o.Result, result)
		}
		if replyFlags == 0 && len(reply) != 0 || replyFlags != 0 && (len(reply) < 5 || reply[0] != replyFlags) {
			t.Errorf("reply %x, want flags %#x", reply, replyFlags)
		}
		wantHanded := before
		if result == ResultOK {
			established++
			wantHanded++
		}
		if got := ts.disp.count(); got != wantHanded {
			t.Fatalf("%d handoffs, want %d", got, wantHanded)
		}
		if result == ResultOK {
			h := ts.disp.handed[wantHanded-1]
			if h.sockType != unix.SOCK_STREAM || len(h.token) == 0 || !bytes.Equal(h.readAhead, early) {
				t.Errorf("handoff: socket type %d, %d token bytes, read-ahead %q", h.sockType, len(h.token), h.readAhead)
			}
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			send := tt.send()
			if tt.replay {
				try(t, send, false, ResultOK, wire.FlagContext)
			}
			try(t, send, tt.halfClose, tt.result, tt.reply)
		})
	}
	// The last handshake's slot is released just after its outcome.
	ts.waitHandshaking(0)
	if acc, est, failed, hs := ts.s.Stats(); acc != accepted || est != established || failed != accepted-established || hs != 0 {
		t.Errorf("Stats %d accepted, %d established, %d failed, %d handshaking; want %d, %d, %d, 0",
			acc, est, failed, hs, accepted, established, accepted-established)
	}
}

// Connections that send nothing hold no handshake slot: with every slot's
// worth of them open, a client that sends its token is served (issue #11:
// 256 silent connections denied all service).
func TestServerSilentConnectionsHoldNoSlot(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{MaxHandshakes: 2, HandshakeTimeout: 10 * time.Second}, nil)
	for range 5 {
		ts.dial(t)
	}
	if !ts.waitHandshaking(5) {
		t.Fatal("the silent connections were not all accepted")
	}
	c := ts.dial(t)
	c.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Errorf("outcome %q with 5 silent connections open, want ok", o.Result)
	}
}

// A context token waits for a free slot of CPU work until the handshake
// deadline, then ends with handshake_limit; once a slot is free it is
// served.
func TestServerHandshakeLimit(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{MaxHandshakes: 1, HandshakeTimeout: 500 * time.Millisecond}, nil)
	ts.s.slots <- struct{}{} // the only slot, busy
	c := ts.dial(t)
	start := time.Now()
	c.Write(k.handshake(t))
	readUntilClosed(t, c, 5*time.Second)
	if o := ts.outcome(t); o.Result != ResultHandshakeLimit {
		t.Errorf("outcome %q, want handshake_limit", o.Result)
	}
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("closed after %v, before the handshake deadline", d)
	}
	<-ts.s.slots
	c = ts.dial(t)
	c.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Errorf("outcome %q after the slot freed, want ok", o.Result)
	}
}

// dialFrom connects from a loopback source address (127.0.0.0/8 is all
// local on Linux).
func (ts *testServer) dialFrom(t *testing.T, ip string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (ts *testServer) waitPending(n int) bool {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if ts.s.Pending() == n {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// A full pre-authentication table closes its oldest waiting connection to
// make room, so a newcomer is served; under a run of evictions the log
// has one line per class per second.
func TestServerPendingEvictsOldest(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{MaxPending: 3, HandshakeTimeout: 10 * time.Second}, nil)
	var idle []net.Conn
	for range 3 {
		idle = append(idle, ts.dial(t))
		if !ts.waitPending(len(idle)) {
			t.Fatalf("%d pending, want %d", ts.s.Pending(), len(idle))
		}
	}
	c := ts.dial(t)
	c.Write(k.handshake(t))
	readUntilClosed(t, idle[0], 2*time.Second)
	got := map[Result]int{}
	for range 2 {
		got[ts.outcome(t).Result]++
	}
	if got[ResultPendingFull] != 1 || got[ResultOK] != 1 {
		t.Errorf("outcomes %v, want one pending_full (the oldest) and one ok", got)
	}
	// The served connection left the table; fill it again, then five
	// more newcomers each evict the oldest waiting connection.
	if !ts.waitPending(2) {
		t.Fatalf("%d pending after the handoff, want 2", ts.s.Pending())
	}
	queue := append(idle[1:], ts.dial(t))
	if !ts.waitPending(3) {
		t.Fatalf("%d pending, want 3", ts.s.Pending())
	}
	for range 5 {
		n := ts.dial(t)
		readUntilClosed(t, queue[0], 2*time.Second)
		queue = append(queue[1:], n)
		if o := ts.outcome(t); o.Result != ResultPendingFull {
			t.Errorf("outcome %q, want pending_full", o.Result)
		}
	}
	lines := ts.logs.FilterMessage("pre-authentication connections closed").All()
	if len(lines) != 1 || lines[0].ContextMap()["result"] != string(ResultPendingFull) {
		t.Errorf("log lines %v, want one pending_full line for 6 evictions within a second", lines)
	}
}

// The descriptor a Dispatcher gets stays the client's socket for the
// whole Handoff, even when Close or an expired Shutdown closes the
// connection meanwhile and new sockets take the freed descriptor numbers
// (finding 5 of issue #11: a raw fd number used after Control returned).
func TestServerHandoffDescriptorSurvivesClose(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{}, nil)
	var peer unix.Sockaddr
	var peerErr error
	ts.disp.onHandoff = func(fd int) {
		// What Close does to connections in handshake, while this
		// handoff is in progress; then sockets that reuse numbers.
		ts.s.closeConns()
		for range 4 {
			if s, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err == nil {
				defer unix.Close(s)
			}
		}
		peer, peerErr = unix.Getpeername(fd)
	}
	c := ts.dial(t)
	c.Write(k.handshake(t))
	o := ts.outcome(t)
	local := c.LocalAddr().(*net.TCPAddr)
	sa, ok := peer.(*unix.SockaddrInet4)
	if peerErr != nil || !ok || sa.Port != local.Port {
		t.Errorf("handed-off descriptor's peer %#v (%v), want the client %v", peer, peerErr, local)
	}
	if o.Result != ResultOK {
		t.Errorf("outcome %q, want ok", o.Result)
	}
}

// flakyListener fails Accept with errs before passing through.
type flakyListener struct {
	net.Listener
	mu   sync.Mutex
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		l.mu.Unlock()
		return nil, err
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

func (l *flakyListener) inject(err error) {
	l.mu.Lock()
	l.errs = append(l.errs, err)
	l.mu.Unlock()
}

// When accept fails for want of descriptors, the oldest connection still
// waiting for its first token gives its descriptor back (issue #11: the
// accept loop keeps going under EMFILE).
func TestServerEMFILEEvictsIdle(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner}
	ts := startServer(t, k, Config{HandshakeTimeout: 10 * time.Second}, ln)
	idle := ts.dial(t)
	if !ts.waitPending(1) {
		t.Fatal("the idle connection was not accepted")
	}
	ln.inject(&net.OpError{Op: "accept", Err: syscall.EMFILE})
	c := ts.dial(t) // returns the Accept in progress; the next one fails
	readUntilClosed(t, idle, 2*time.Second)
	if o := ts.outcome(t); o.Result != ResultPendingFull {
		t.Errorf("idle connection's outcome %q, want pending_full", o.Result)
	}
	c.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Errorf("outcome %q, want ok", o.Result)
	}
	if errs, _ := ts.s.AcceptErrors(); errs != 1 {
		t.Errorf("%d accept errors counted, want 1", errs)
	}
}

// With no idle connection to close, the reserve descriptor takes one
// connection off the backlog and closes it, and is taken again; with an
// empty backlog shed returns at once.
func TestServerShedWithReserve(t *testing.T) {
	k := newKerberos(t)
	seal, err := gss.GenerateSealKey(1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(Config{Acceptor: k.acceptor, SealKey: seal, Dispatcher: newRecordingDispatcher()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if s.reserve < 0 {
		t.Fatal("no reserve descriptor")
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !s.shed(ln) {
		t.Fatal("nothing shed with a connection in the backlog")
	}
	readUntilClosed(t, c, 2*time.Second)
	if s.reserve < 0 {
		t.Error("reserve descriptor not taken again")
	}
	start := time.Now()
	if s.shed(ln) {
		t.Error("shed a connection from an empty backlog")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shed with an empty backlog took %v", d)
	}
}

// Temporary accept errors (fd exhaustion) back off, doubling from 5 ms,
// and the loop goes on serving; a permanent one ends Serve.
func TestServerAcceptBackoff(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &flakyListener{Listener: inner, errs: []error{
		&net.OpError{Op: "accept", Err: syscall.EMFILE},
		&net.OpError{Op: "accept", Err: syscall.ENFILE},
		&net.OpError{Op: "accept", Err: syscall.ECONNABORTED},
	}}
	ts := startServer(t, k, Config{}, ln)
	c := ts.dial(t)
	c.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != "ok" {
		t.Fatalf("outcome %q after the errors, want ok", o.Result)
	}
	lines := ts.logs.FilterMessage("accept failed; backing off").All()
	var got []time.Duration
	for _, l := range lines {
		got = append(got, l.ContextMap()["backoff"].(time.Duration))
	}
	want := []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("backoffs %v, want %v", got, want)
	}
}

// While the dispatcher has no room the loop does not accept: connections
// wait in the kernel backlog and are served once there is room. Close
// ends a Serve that is waiting for room.
func TestServerBackpressure(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{}, nil)
	hello := func() net.Conn {
		c := ts.dial(t)
		c.Write(k.handshake(t))
		return c
	}
	accepted := func() uint64 { acc, _, _, _ := ts.s.Stats(); return acc }
	// The loop checks for room before each Accept, so while every worker
	// is full it takes at most one connection (an Accept already waiting)
	// and leaves the rest in the kernel backlog. Only that bound is
	// asserted: how soon the loop gets to each step depends on the
	// scheduler.
	ts.disp.setFull(true)
	for range 3 {
		hello()
	}
	time.Sleep(500 * time.Millisecond)
	if got := accepted(); got > 1 {
		t.Fatalf("%d connections accepted while every worker was full, want at most 1", got)
	}
	ts.disp.setFull(false)
	for range 3 {
		if o := ts.outcome(t); o.Result != "ok" {
			t.Fatalf("outcome %q once there is room, want ok", o.Result)
		}
	}
	// Full again with the loop waiting for room: Close must still end
	// Serve (startServer's cleanup checks it).
	ts.disp.setFull(true)
	hello()
	hello()
	time.Sleep(300 * time.Millisecond)
	if got := accepted(); got > 4 {
		t.Fatalf("%d connections accepted, want at most 4", got)
	}
}

// Shutdown stops accepting, and when its context ends closes the
// handshakes still in progress; no goroutine is left behind.
func TestServerShutdown(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{HandshakeTimeout: time.Minute}, nil)
	c := ts.dial(t)
	if !ts.waitHandshaking(1) {
		t.Fatal("handshake did not start")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ts.s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	readUntilClosed(t, c, 5*time.Second)
	if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}

// checkLeaks fails t if goroutines started during the test are still
// running after it and its cleanups (registered first, it runs last).
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// A source address at max_pending_per_source loses its own oldest waiting
// connection to its newcomer; other sources are not touched.
func TestServerPendingPerSource(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{MaxPendingPerSource: 2, HandshakeTimeout: 10 * time.Second}, nil)
	other := ts.dialFrom(t, "127.0.0.1")
	a := ts.dialFrom(t, "127.0.0.2")
	ts.dialFrom(t, "127.0.0.2")
	if !ts.waitPending(3) {
		t.Fatalf("%d pending, want 3", ts.s.Pending())
	}
	ts.dialFrom(t, "127.0.0.2")
	readUntilClosed(t, a, 2*time.Second)
	if o := ts.outcome(t); o.Result != ResultSourceLimit {
		t.Errorf("outcome %q, want source_limit", o.Result)
	}
	if !ts.waitPending(3) || ts.s.pending.sourceCount(netip.MustParseAddr("127.0.0.2")) != 2 {
		t.Errorf("%d pending, %d from 127.0.0.2; want 3 and 2", ts.s.Pending(), ts.s.pending.sourceCount(netip.MustParseAddr("127.0.0.2")))
	}
	other.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Errorf("the other source's outcome %q, want ok", o.Result)
	}
}

// With no waiting connection to evict (every one has sent its token and
// waits for CPU), a full table refuses the newcomer at once.
func TestServerPendingFullRefusesNewcomer(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{MaxPending: 1, MaxHandshakes: 1, HandshakeTimeout: 10 * time.Second}, nil)
	ts.s.slots <- struct{}{} // the only slot, busy
	c := ts.dial(t)
	c.Write(k.handshake(t))
	// c's entry stops being idle once its token is read.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ts.s.pending.mu.Lock()
		idle := ts.s.pending.idle.Len()
		ts.s.pending.mu.Unlock()
		if idle == 0 && ts.s.Pending() == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the token never arrived")
		}
	}
	n := ts.dial(t)
	start := time.Now()
	readUntilClosed(t, n, 2*time.Second)
	if o := ts.outcome(t); o.Result != ResultPendingFull {
		t.Errorf("newcomer outcome %q, want pending_full", o.Result)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("newcomer closed after %v, want at once", d)
	}
	<-ts.s.slots
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Errorf("waiting token's outcome %q, want ok", o.Result)
	}
}

// A connection whose first context token has not fully arrived within
// FirstFrameTimeout is closed then, long before the handshake deadline:
// silent, opener only, or a partial token.
func TestServerFirstFrameTimeout(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	ts := startServer(t, k, Config{FirstFrameTimeout: 200 * time.Millisecond, HandshakeTimeout: 10 * time.Second}, nil)
	opener := wire.AppendFrame(nil, wire.FlagNoop|wire.FlagContextNext, nil)
	for _, send := range [][]byte{nil, opener, append(bytes.Clone(opener), wire.FlagContext, 0, 0, 4, 0, 0x60)} {
		c := ts.dial(t)
		c.Write(send)
		start := time.Now()
		readUntilClosed(t, c, 5*time.Second)
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("sent %x: closed after %v, want about 200ms", send, d)
		}
		if o := ts.outcome(t); o.Result != ResultFirstFrameTimeout {
			t.Errorf("sent %x: outcome %q, want first_frame_timeout", send, o.Result)
		}
	}
	c := ts.dial(t)
	c.Write(k.handshake(t))
	if o := ts.outcome(t); o.Result != ResultOK {
		t.Errorf("outcome %q, want ok", o.Result)
	}
}
