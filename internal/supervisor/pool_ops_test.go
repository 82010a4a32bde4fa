package supervisor

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
)

// fakeWorkerEnv marks the test binary's re-execution as a fake worker.
const fakeWorkerEnv = "GSS_SUPERVISOR_FAKE_WORKER=1"

// TestMain turns the test binary into a fake worker when the pool starts
// it (see startFakePool), and otherwise runs the tests.
func TestMain(m *testing.M) {
	if os.Getenv("GSS_SUPERVISOR_FAKE_WORKER") == "1" {
		if mode := os.Getenv(fakeModeEnv); mode != "" {
			os.Exit(faultyWorker(mode))
		}
		os.Exit(fakeWorker())
	}
	os.Exit(m.Run())
}

// fakeStart opens the fake worker's channel (fd 3), takes the HELLO
// (its key wiped) and answers READY. On failure it returns a nil channel
// and the exit status to use.
func fakeStart() (*handoff.Conn, *handoff.Hello, int) {
	ch, err := handoff.FromFD(3)
	if err != nil {
		return nil, nil, handoff.ExitFatal
	}
	m, err := ch.Recv()
	hello, ok := m.(*handoff.Hello)
	if err != nil || !ok {
		return nil, nil, handoff.ExitFatal
	}
	hello.Zero()
	if ch.Send(&handoff.Ready{PID: uint32(os.Getpid())}) != nil {
		return nil, nil, 1
	}
	return ch, hello, 0
}

// fakeWorker speaks the handoff protocol without Kerberos. For each
// HANDOFF it answers ACK, then a SESSION_END whose counters echo what it
// learned, so the tests can see it: MessagesIn = HELLO's MaxMessageBytes,
// MessagesOut = HELLO's MaxSessions, BytesIn = the token's length.
func fakeWorker() int {
	ch, hello, code := fakeStart()
	if ch == nil {
		return code
	}
	for {
		m, err := ch.Recv()
		if err != nil {
			return 0
		}
		switch m := m.(type) {
		case *handoff.Handoff:
			m.Close()
			ch.Send(&handoff.Ack{ID: m.ID, Load: 1})
			ch.Send(&handoff.SessionEnd{ID: m.ID, Result: handoff.SessionOK, Load: 0, DurationUS: 1,
				MessagesIn: uint64(hello.MaxMessageBytes), MessagesOut: uint64(hello.MaxSessions), BytesIn: uint64(len(m.Token))})
		case *handoff.Ping:
			ch.Send(&handoff.Pong{Seq: m.Seq})
		case *handoff.Drain:
			ch.Send(&handoff.Bye{Reason: handoff.ByeDrained})
			return 0
		}
	}
}

func startFakePool(t *testing.T, workers int, limits handoff.Hello, ends chan<- SessionEnd) *Pool {
	t.Helper()
	seal, err := gss.GenerateSealKey(1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(PoolConfig{
		Path:                 os.Args[0],
		Env:                  []string{fakeWorkerEnv},
		Workers:              workers,
		MaxSessionsPerWorker: 10,
		SealKey:              seal,
		Limits:               limits,
		OnSessionEnd:         func(e SessionEnd) { ends <- e },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return p
}

// handoffOne hands a /dev/null descriptor and token to the pool.
func handoffOne(t *testing.T, p *Pool, token string) listener.HandoffResult {
	t.Helper()
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.Handoff(ctx, int(f.Fd()), []byte(token), nil, listener.Addrs{})
	if err != nil {
		t.Fatalf("Handoff: %v", err)
	}
	return res
}

func waitEnd(t *testing.T, ends <-chan SessionEnd) SessionEnd {
	t.Helper()
	select {
	case e := <-ends:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no SESSION_END reported")
		return SessionEnd{}
	}
}

// Each SESSION_END reaches OnSessionEnd with the worker's slot and pid,
// and its load report updates the pool's view of the worker.
func TestPoolSessionEndHook(t *testing.T) {
	ends := make(chan SessionEnd, 16)
	p := startFakePool(t, 1, handoff.Hello{MaxMessageBytes: 111, MaxSessions: 7}, ends)
	tests := []struct {
		name  string
		token string
	}{
		{"short token", "abc"},
		{"longer token", "a sealed context token stand-in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := handoffOne(t, p, tt.token)
			e := waitEnd(t, ends)
			if e.PID != res.PID || e.Slot != 0 || e.ID == 0 {
				t.Errorf("report from slot %d pid %d id %d; handoff went to pid %d", e.Slot, e.PID, e.ID, res.PID)
			}
			if e.BytesIn != uint64(len(tt.token)) || e.MessagesIn != 111 || e.MessagesOut != 7 || e.Result != handoff.SessionOK {
				t.Errorf("report %+v does not carry the session's values", e.SessionEnd)
			}
			ws, _ := p.Status()
			if len(ws) != 1 || ws[0].Sessions != 0 {
				t.Errorf("status %+v after the session ended, want one worker with 0 sessions", ws)
			}
		})
	}
}

// SetLimits: new HELLO limits reach only workers started afterwards; the
// worker already running keeps its own.
func TestPoolSetLimits(t *testing.T) {
	ends := make(chan SessionEnd, 64)
	p := startFakePool(t, 1, handoff.Hello{MaxMessageBytes: 111, MaxSessions: 7}, ends)
	first := handoffOne(t, p, "t")
	if e := waitEnd(t, ends); e.MessagesIn != 111 {
		t.Fatalf("first worker saw MaxMessageBytes %d, want 111", e.MessagesIn)
	}
	if err := p.SetLimits(handoff.Hello{MaxMessageBytes: 222, MaxSessions: 9}, 0, 0, 0); err == nil {
		t.Fatal("SetLimits accepted a session cap of 0")
	}
	if err := p.SetLimits(handoff.Hello{MaxMessageBytes: 222, MaxSessions: 9}, 10, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Resize(2); err != nil {
		t.Fatal(err)
	}
	if p.Target() != 2 {
		t.Fatalf("Target %d after Resize(2)", p.Target())
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		ws, _ := p.Status()
		ready := 0
		for _, w := range ws {
			if w.Ready {
				ready++
			}
		}
		if ready == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("second worker not ready: %+v", ws)
		}
		time.Sleep(20 * time.Millisecond)
	}
	seen := map[uint64]bool{}
	for i := 0; i < 20 && len(seen) < 2; i++ {
		res := handoffOne(t, p, "t")
		e := waitEnd(t, ends)
		want := uint64(222)
		if res.PID == first.PID {
			want = 111
		}
		if e.MessagesIn != want {
			t.Fatalf("worker %d (first %d) saw MaxMessageBytes %d, want %d", res.PID, first.PID, e.MessagesIn, want)
		}
		seen[e.MessagesIn] = true
	}
	if len(seen) != 2 {
		t.Fatalf("sessions did not reach both workers: %v", seen)
	}
}
