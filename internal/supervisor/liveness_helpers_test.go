package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
)

// Fake-worker modes for the liveness tests (TestMain runs faultyWorker
// when fakeModeEnv is set). Each mode misbehaves at one point of the
// handoff; a mode's fault happens once per pool, in the first worker that
// creates the marker file fakeOnceEnv names, and every later HANDOFF is
// served as fakeWorker serves it. Before each ACK 0 the worker appends
// "<pid> <token>\n" to the file fakeTakenEnv names: the sessions it took.
const (
	fakeModeEnv  = "GSS_SUPERVISOR_FAKE_MODE"
	fakeOnceEnv  = "GSS_SUPERVISOR_FAKE_ONCE"
	fakeTakenEnv = "GSS_SUPERVISOR_FAKE_TAKEN"

	// modeFDSpam: on the first HANDOFF, send the parent fakeSpamCount
	// HANDOFF messages of its own, each with a descriptor, then ACK.
	modeFDSpam    = "fd-spam"
	fakeSpamCount = 500
	// modeExitBeforeAck: take the HANDOFF off the channel and exit 1
	// without answering (a crash between receive and import).
	modeExitBeforeAck = "exit-before-ack"
	// modeAckThenExit: report a session end, ACK 0, exit 1 at once (a
	// crash right after taking the session: the ACK is the last message
	// in the channel when the parent sees the exit).
	modeAckThenExit = "ack-then-exit"
	// modeEndThenExit: send a SESSION_END and exit 1 without an ACK: the
	// process is gone while the parent's reader is still busy.
	modeEndThenExit = "end-then-exit"
	// modeStallBeforeAck: stop answering (sleep forever) on the HANDOFF.
	modeStallBeforeAck = "stall-before-ack"
	// modeAckThenStall: ACK 0, then stop reading the channel for good.
	modeAckThenStall = "ack-then-stall"
	// modeAckThenExitQueued: wait until the parent has queued another
	// message behind the HANDOFF, then report a session end, ACK 0 and
	// exit 1 with that message unread.
	// The kernel then reports ECONNRESET to the parent once, ahead of the
	// ACK still queued for it.
	modeAckThenExitQueued = "ack-then-exit-queued"
)

// faultyWorker is fakeWorker with the fault of one mode.
func faultyWorker(mode string) int {
	// A second descriptor for the channel, to see what is queued on it.
	peek, err := unix.Dup(3)
	if err != nil {
		return handoff.ExitFatal
	}
	ch, _, code := fakeStart()
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
			if faultOnce() {
				switch mode {
				case modeFDSpam:
					f, err := os.Open(os.DevNull)
					if err != nil {
						return 1
					}
					for range fakeSpamCount {
						if ch.Send(&handoff.Handoff{ID: 1, Token: []byte("stray"), File: f}) != nil {
							return 1
						}
					}
					f.Close()
				case modeExitBeforeAck:
					return 1
				case modeAckThenExit:
					ch.Send(&handoff.SessionEnd{ID: m.ID, Result: handoff.SessionOK, Load: 1, DurationUS: 1})
					recordTaken(m.Token)
					ch.Send(&handoff.Ack{ID: m.ID, Load: 1})
					return 1
				case modeEndThenExit:
					ch.Send(&handoff.SessionEnd{ID: m.ID, Result: handoff.SessionOK, Load: 0, DurationUS: 1})
					return 1
				case modeStallBeforeAck:
					for {
						time.Sleep(time.Hour)
					}
				case modeAckThenExitQueued:
					for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
						if n, err := unix.IoctlGetInt(peek, unix.SIOCINQ); err != nil || n > 0 {
							break
						}
					}
					ch.Send(&handoff.SessionEnd{ID: m.ID, Result: handoff.SessionOK, Load: 1, DurationUS: 1})
					recordTaken(m.Token)
					ch.Send(&handoff.Ack{ID: m.ID, Load: 1})
					return 1
				case modeAckThenStall:
					recordTaken(m.Token)
					ch.Send(&handoff.Ack{ID: m.ID, Load: 1})
					for {
						time.Sleep(time.Hour)
					}
				}
			}
			recordTaken(m.Token)
			ch.Send(&handoff.Ack{ID: m.ID, Load: 1})
			ch.Send(&handoff.SessionEnd{ID: m.ID, Result: handoff.SessionOK, Load: 0, DurationUS: 1})
		case *handoff.Ping:
			ch.Send(&handoff.Pong{Seq: m.Seq})
		case *handoff.Drain:
			ch.Send(&handoff.Bye{Reason: handoff.ByeDrained})
			return 0
		}
	}
}

// faultOnce reports whether this worker is the one that misbehaves: the
// first to create the marker file.
func faultOnce() bool {
	path := os.Getenv(fakeOnceEnv)
	if path == "" {
		return true
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// recordTaken appends "<pid> <token>" to the taken-sessions file.
func recordTaken(token []byte) {
	path := os.Getenv(fakeTakenEnv)
	if path == "" {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	fmt.Fprintf(f, "%d %s\n", os.Getpid(), token)
	f.Close()
}

// faultyPool is a pool of fake workers in one mode, with the files the
// mode uses.
type faultyPool struct {
	*Pool
	taken string // the taken-sessions file
}

// startFaultyPool starts workers fake workers in mode. edit, if set,
// changes the configuration first.
func startFaultyPool(t *testing.T, workers int, mode string, edit func(*PoolConfig)) *faultyPool {
	t.Helper()
	seal, err := gss.GenerateSealKey(1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	fp := &faultyPool{taken: dir + "/taken"}
	cfg := PoolConfig{
		Path: os.Args[0],
		Env: []string{fakeWorkerEnv, fakeModeEnv + "=" + mode,
			fakeOnceEnv + "=" + dir + "/once", fakeTakenEnv + "=" + fp.taken},
		Workers:              workers,
		MaxSessionsPerWorker: 10,
		SealKey:              seal,
		RespawnBackoffMax:    200 * time.Millisecond,
	}
	if edit != nil {
		edit(&cfg)
	}
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fp.Pool = p
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return fp
}

// takenBy returns, per token, the pids of the workers that took it.
func (fp *faultyPool) takenBy(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(fp.taken)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if pid, tok, ok := strings.Cut(line, " "); ok {
			m[tok] = append(m[tok], pid)
		}
	}
	return m
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
