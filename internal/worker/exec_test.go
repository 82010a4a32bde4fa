package worker

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/stream"
)

// script writes a /bin/sh script to t.TempDir() and returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "backend.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExecEnvironment(t *testing.T) {
	svc := &ExecService{Path: script(t, `echo "client=$GSS_CLIENT_PRINCIPAL service=$GSS_SERVICE_PRINCIPAL addr=$GSS_CLIENT_ADDR id=$GSS_SESSION_ID home=${HOME:-unset}"`)}
	c, done := serveStream(t, svc)
	c.CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.TrimSpace(string(out))
	if !strings.HasPrefix(got, "client=alice@EXAMPLE.COM service=host/server.example.com@EXAMPLE.COM addr=127.0.0.1:") ||
		!strings.HasSuffix(got, " id=1 home=unset") {
		t.Fatalf("program saw %q", got)
	}
	if err := waitServe(t, done); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// cat echoes; the client's EOF closes its stdin, its exit closes stdout
// and the client reads everything then EOF.
func TestExecHalfClose(t *testing.T) {
	svc := &ExecService{Path: "/bin/cat"}
	c, done := serveStream(t, svc)
	data := strings.Repeat("0123456789", 10000)
	go func() { io.WriteString(c, data); c.CloseWrite() }()
	out, err := io.ReadAll(c)
	if err != nil || string(out) != data {
		t.Fatalf("echoed %d bytes of %d: %v", len(out), len(data), err)
	}
	if err := waitServe(t, done); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := svc.Running.Load(); n != 0 {
		t.Fatalf("%d programs still running", n)
	}
}

// The program's exit ends the session even while the client has not sent
// its EOF: its output, then the EOF record, then the close.
func TestExecExitEndsSession(t *testing.T) {
	svc := &ExecService{Path: script(t, "echo bye\nexit 3\n")}
	c, done := serveStream(t, svc)
	out, err := io.ReadAll(c)
	if err != nil || string(out) != "bye\n" {
		t.Fatalf("read %q, %v", out, err)
	}
	if err := waitServe(t, done); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// The client vanishing kills the program's whole process group, a child
// it spawned included, and reaps it.
func TestExecClientGoneKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	svc := &ExecService{Path: script(t, "sleep 300 &\necho $! > "+pidFile+"\necho started\nwait\n"), KillGrace: 200 * time.Millisecond}
	c, done := serveStream(t, svc)
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "started\n" {
		t.Fatalf("read %q, %v", buf, err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(child, 0); err != nil {
		t.Fatalf("child %d not running: %v", child, err)
	}
	c.NetConn().Close() // the client vanishes without EOF
	if err := waitServe(t, done); err == nil {
		t.Fatal("Serve returned nil for a truncated session")
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if err := syscall.Kill(child, 0); errors.Is(err, syscall.ESRCH) {
			break
		}
		// A zombie child of the reaped leader is re-parented and
		// reaped by init; /proc tells a zombie from a live one.
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(child) + "/stat"); strings.Contains(string(st), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("child %d survived the session", child)
		}
	}
	if n := svc.Running.Load(); n != 0 {
		t.Fatalf("%d programs still running", n)
	}
}

// Over exec_max_per_worker the client gets an ERROR record.
func TestExecCap(t *testing.T) {
	svc := &ExecService{Path: "/bin/cat", MaxPerWorker: 1}
	c1, done1 := serveStream(t, svc)
	io.WriteString(c1, "x")
	buf := make([]byte, 1)
	if _, err := io.ReadFull(c1, buf); err != nil {
		t.Fatal(err)
	}
	c2, done2 := serveStream(t, svc)
	_, err := c2.Read(buf)
	var pe *stream.PeerError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "exec_max_per_worker 1") {
		t.Fatalf("second session read %v, want the cap's ERROR record", err)
	}
	if err := waitServe(t, done2); err == nil {
		t.Fatal("capped session: Serve returned nil")
	}
	c1.CloseWrite()
	io.ReadAll(c1)
	if err := waitServe(t, done1); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A program that cannot start: the client gets an ERROR record.
func TestExecStartFails(t *testing.T) {
	svc := &ExecService{Path: filepath.Join(t.TempDir(), "missing")}
	c, done := serveStream(t, svc)
	_, err := c.Read(make([]byte, 1))
	var pe *stream.PeerError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Reason, "exec failed: ") {
		t.Fatalf("read %v", err)
	}
	waitServe(t, done)
}
