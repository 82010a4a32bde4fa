package supervisor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/listener"
	"github.com/gss-acceptor/gss-acceptor/internal/proctest"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// kerberos is a service in an in-memory realm and its acceptor, which
// keeps a replay cache as the daemon's does.
type kerberos struct {
	*gsstest.Fixture
	acceptor *gss.Acceptor
}

func newKerberos(t *testing.T) *kerberos {
	t.Helper()
	f := gsstest.New(t, 18)
	return &kerberos{f, f.Acceptor(t, gss.AcceptorConfig{ReplayCache: gss.NewReplayCache(1000)})}
}

// checkLeaks fails t if goroutines started during the test are still
// running after it and its cleanups (registered first, it runs last).
func checkLeaks(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) })
}

// buildWorker builds the real gss-worker into a temporary directory.
func buildWorker(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gss-worker")
	cmd := exec.Command("go", "build", "-o", path, "../../cmd/gss-worker")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building gss-worker: %v\n%s", err, out)
	}
	return path
}

// session is a context exported for the pool plus the client's ends.
type session struct {
	token  []byte
	server *os.File // handed to the pool
	client *os.File
	ctx    *gss.Context
	r      *wire.Reader
}

func newSession(t *testing.T, k *kerberos, seal *gss.SealKey) *session {
	t.Helper()
	cctx, sctx := k.Establish(t, k.acceptor, gss.FlagReplay|gss.FlagSequence)
	token, err := sctx.Export(seal)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := &session{token: token, server: os.NewFile(uintptr(fds[0]), "server"), client: os.NewFile(uintptr(fds[1]), "client"), ctx: cctx}
	s.r = wire.NewReader(s.client, 4096)
	t.Cleanup(func() { s.server.Close(); s.client.Close() })
	return s
}

func (s *session) exchange(t *testing.T, msg string) {
	t.Helper()
	tok, err := s.ctx.Wrap([]byte(msg), true)
	if err != nil {
		t.Fatal(err)
	}
	s.client.SetDeadline(time.Now().Add(10 * time.Second))
	if err := wire.WriteFrame(s.client, wire.FlagData|wire.FlagWrapped|wire.FlagEncrypted|wire.FlagSendMIC, tok); err != nil {
		t.Fatal(err)
	}
	f, err := s.r.ReadFrame(1 << 16)
	if err != nil {
		t.Fatalf("session reply: %v", err)
	}
	if err := s.ctx.VerifyMIC([]byte(msg), f.Body); err != nil {
		t.Fatal(err)
	}
}

// A worker that dies holding an unacknowledged handoff loses nothing: the
// pool re-sends the connection to another worker, which serves it. The
// dead worker is respawned, Shutdown drains everything, and no goroutine
// is left behind.
func TestPoolResendsWhenWorkerDiesBeforeAck(t *testing.T) {
	checkLeaks(t)
	k := newKerberos(t)
	seal, err := gss.GenerateSealKey(3)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPool(PoolConfig{
		Path:                 buildWorker(t),
		Args:                 []string{"-log-level", "error"},
		Workers:              2,
		MaxSessionsPerWorker: 16,
		SealKey:              seal,
		Limits:               handoff.Hello{MaxMessageBytes: 1 << 16},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	shut := false
	defer func() {
		if !shut {
			// After a failure: the sessions' clients are still open (their
			// cleanup runs later), so the drain cannot finish; a bounded
			// Shutdown terminates the workers instead of hanging the test
			// until the binary's timeout, which would hide the failure.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			p.Shutdown(ctx)
		}
	}()
	ws, _ := p.Status()
	if len(ws) != 2 {
		t.Fatalf("%d workers", len(ws))
	}
	victim := ws[0].PID
	proctest.Stop(t, victim)
	killed := false
	defer func() {
		if !killed {
			syscall.Kill(victim, syscall.SIGCONT)
		}
	}()

	// Hand off sessions until one hangs on the stopped worker; the live
	// worker's load grows with each open session, so it takes at most two.
	type outcome struct {
		res listener.HandoffResult
		err error
	}
	var served []*session
	var pending *session
	var result chan outcome
	for i := 0; i < 4 && pending == nil; i++ {
		s := newSession(t, k, seal)
		ch := make(chan outcome, 1)
		go func() {
			res, err := p.Handoff(ctx, int(s.server.Fd()), s.token, nil, listener.Addrs{})
			ch <- outcome{res, err}
		}()
		select {
		case o := <-ch:
			if o.err != nil || o.res.PID == victim {
				t.Fatalf("handoff to %d: %v", o.res.PID, o.err)
			}
			served = append(served, s)
		case <-time.After(500 * time.Millisecond):
			pending, result = s, ch
		}
	}
	if pending == nil {
		t.Fatal("no handoff went to the stopped worker")
	}
	syscall.Kill(victim, syscall.SIGKILL)
	killed = true
	select {
	case o := <-result:
		if o.err != nil || o.res.Attempts != 2 || o.res.PID == victim {
			t.Fatalf("re-sent handoff: %+v, %v; want 2 attempts, not the killed worker %d", o.res, o.err, victim)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("handoff not re-sent after the worker died")
	}
	pending.server.Close() // the acceptor's copy goes once acknowledged
	pending.exchange(t, "after the re-send")
	for _, s := range served {
		s.exchange(t, "on the live worker")
	}

	// The killed worker is replaced.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		ws, restarts := p.Status()
		ready := 0
		for _, w := range ws {
			if w.Ready && w.PID != victim {
				ready++
			}
		}
		if ready == 2 && restarts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("workers %+v, %d restarts: the killed worker was not replaced", ws, restarts)
		}
	}
	// Drain: the sessions end when their clients close.
	for _, s := range append(served, pending) {
		wire.WriteFrame(s.client, wire.FlagNoop, nil)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer scancel()
	if err := p.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	shut = true
	if ws, _ := p.Status(); len(ws) != 0 {
		t.Errorf("workers left after Shutdown: %+v", ws)
	}
}
