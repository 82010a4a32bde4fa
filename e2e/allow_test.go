package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// TestTunnelClientNotAllowed: a client not on allow_clients_file gets a
// clear refusal from gss-tunnel (exit 1, one line naming its principal),
// the acceptor logs client_not_allowed and no worker sees a session;
// after the file admits it and a SIGHUP, the same client gets through.
func TestTunnelClientNotAllowed(t *testing.T) {
	r := testrealm.Shared(t)
	_, addr := goBackend(t, echo)
	list := filepath.Join(t.TempDir(), "clients")
	if err := os.WriteFile(list, []byte("# only bob\nbob@"+r.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := startAcceptor(t, r, acceptorOptions{
		"backend":            strconv.Quote("tcp:" + addr),
		"allow_clients":      `["carol@` + r.Name + `"]`,
		"allow_clients_file": strconv.Quote(list),
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	cmd := tunnelCmd(ctx, r, a, "-stdio")
	cmd.Stdin = strings.NewReader("let me in")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("gss-tunnel: %v, want exit status 1\n%s", err, out)
	}
	want := "gss-tunnel: server: client principal " + r.UserPrincipal + " is not allowed"
	if msg := strings.TrimSpace(string(out)); msg != want {
		t.Fatalf("stderr %q, want %q", msg, want)
	}
	a.logs.wait(t, 10*time.Second, 1, "client not allowed", func(m map[string]any) bool {
		return m["msg"] == "client not allowed; connection closed" && m["result"] == "client_not_allowed" && m["client"] == r.UserPrincipal
	})
	if n := len(a.logs.find(func(m map[string]any) bool { return m["msg"] == "session ended" })); n != 0 {
		t.Fatalf("%d sessions reached a worker, want none", n)
	}

	// Admit alice through the file; SIGHUP re-reads it.
	if err := os.WriteFile(list, []byte("bob@"+r.Name+"\n*@"+r.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	a.logs.wait(t, 30*time.Second, 1, "reloaded", func(m map[string]any) bool { return m["msg"] == "reloaded" })
	cmd = tunnelCmd(ctx, r, a, "-stdio")
	cmd.Stdin = strings.NewReader("let me in")
	got, err := cmd.Output()
	if err != nil || string(got) != "let me in" {
		t.Fatalf("allowed client: %q, %v", got, err)
	}
}

// TestTunnelExecStdio: gss-tunnel -stdio to an exec backend script that
// greets with the client's principal, then echoes until its stdin's EOF
// (half-close), then says bye: everything arrives and both exit 0.
func TestTunnelExecStdio(t *testing.T) {
	r := testrealm.Shared(t)
	prog := filepath.Join(t.TempDir(), "backend.sh")
	os.WriteFile(prog, []byte("#!/bin/sh\necho \"hello $GSS_CLIENT_PRINCIPAL\"\ncat\necho bye\n"), 0o755)
	a := startAcceptor(t, r, acceptorOptions{"backend": `"exec"`, "exec_path": strconv.Quote(prog), "allow_clients": `["*@` + r.Name + `"]`})
	out := tunnelStdio(t, r, a, "ping\n")
	if want := "hello " + r.UserPrincipal + "\nping\nbye\n"; out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
	a.logs.wait(t, 10*time.Second, 1, "session ended ok", func(m map[string]any) bool {
		return m["msg"] == "session ended" && m["result"] == "ok"
	})
}
