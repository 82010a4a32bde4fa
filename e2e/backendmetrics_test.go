package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
)

// TestBackendMetrics: real gss-tunnel sessions through a proxy backend
// (one relayed, one refused) and an exec backend show up in the
// acceptor's metrics (from the workers' SESSION_END) and in each session's
// one "session ended" line.
func TestBackendMetrics(t *testing.T) {
	r := testrealm.Shared(t)
	// tunnel runs one gss-tunnel -stdio session with input and returns its
	// output and error.
	tunnel := func(t *testing.T, a *opsAcceptor, input string) (string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := tunnelCmd(ctx, r, a.acceptor, "-stdio")
		cmd.Stdin = strings.NewReader(input)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Logf("gss-tunnel: %v: %s", err, stderr.String())
		}
		return string(out), err
	}
	sessionEnded := func(t *testing.T, a *opsAcceptor, n int) []map[string]any {
		t.Helper()
		return a.logs.wait(t, 15*time.Second, n, "session ended", msgIs("session ended"))
	}

	t.Run("proxy", func(t *testing.T) {
		ln, addr := goBackend(t, echo)
		a := startOps(t, r, opsOptions{keys: acceptorOptions{"backend": strconv.Quote("tcp:" + addr)}})
		input := strings.Repeat("proxied ", 1000) // 8000 bytes
		if out, err := tunnel(t, a, input); err != nil || out != input {
			t.Fatalf("echoed %d bytes of %d, %v", len(out), len(input), err)
		}
		ln.Close() // the next session's connect is refused
		if _, err := tunnel(t, a, "lost"); err == nil {
			t.Fatal("gss-tunnel exited 0 with the backend refusing")
		}
		m := a.waitMetric(t, `gss_acceptor_backend_connect_failures_total{reason="refused"}`, 1)
		for series, want := range map[string]float64{
			`gss_acceptor_backend_bytes_total{direction="client_to_backend"}`:   8000,
			`gss_acceptor_backend_bytes_total{direction="backend_to_client"}`:   8000,
			`gss_acceptor_backend_connect_failures_total{reason="unreachable"}`: 0,
			`gss_acceptor_backend_connect_failures_total{reason="timeout"}`:     0,
			`gss_acceptor_backend_connect_duration_seconds_count`:               1,
			`gss_acceptor_backend_connect_duration_seconds_bucket{le="+Inf"}`:   1,
			`gss_acceptor_sessions_total{result="ok"}`:                          1,
			`gss_acceptor_sessions_total{result="error"}`:                       1,
		} {
			if got, ok := m[series]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
			}
		}
		if s := m[`gss_acceptor_backend_connect_duration_seconds_sum`]; s <= 0 || s > 5 {
			t.Errorf("connect duration sum %v s", s)
		}
		ended := sessionEnded(t, a, 2)
		byConnect := map[any]map[string]any{}
		for _, l := range ended {
			byConnect[l["backend_connect"]] = l
		}
		ok, refused := byConnect["ok"], byConnect["refused"]
		if ok == nil || refused == nil {
			t.Fatalf("session ended lines %v, want one connect ok and one refused", ended)
		}
		if ok["backend"] != "proxy" || ok["client_to_backend"] != 8000.0 || ok["backend_to_client"] != 8000.0 || ok["backend_connect_time"] == nil {
			t.Errorf("relayed session's line %v", ok)
		}
		if refused["result"] != "error" || refused["client_to_backend"] != 0.0 {
			t.Errorf("refused session's line %v", refused)
		}
	})

	t.Run("exec", func(t *testing.T) {
		prog := filepath.Join(t.TempDir(), "backend.sh")
		if err := os.WriteFile(prog, []byte("#!/bin/sh\ncat\necho bye\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		a := startOps(t, r, opsOptions{keys: acceptorOptions{"backend": `"exec"`, "exec_path": strconv.Quote(prog),
			"allow_clients": `["*@` + r.Name + `"]`}})
		if out, err := tunnel(t, a, "ping\n"); err != nil || out != "ping\nbye\n" {
			t.Fatalf("got %q, %v", out, err)
		}
		m := a.waitMetric(t, `gss_acceptor_exec_exits_total{status="exit_3"}`, 1)
		for series, want := range map[string]float64{
			`gss_acceptor_backend_bytes_total{direction="client_to_backend"}`: 5,
			`gss_acceptor_backend_bytes_total{direction="backend_to_client"}`: 9,
			`gss_acceptor_backend_connect_duration_seconds_count`:             0,
		} {
			if got, ok := m[series]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", series, got, ok, want)
			}
		}
		l := sessionEnded(t, a, 1)[0]
		if l["backend"] != "exec" || l["exec_status"] != "exit_3" || l["client_to_backend"] != 5.0 || l["backend_to_client"] != 9.0 ||
			l["backend_connect"] != nil {
			t.Errorf("session ended line %v", l)
		}
	})
}
