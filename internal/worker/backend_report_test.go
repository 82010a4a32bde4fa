package worker

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// serveSession is serveStream that also returns the session, to read
// what the service reported once done has delivered Serve's result.
func serveSession(t *testing.T, svc Service) (*stream.Conn, <-chan error, *Session) {
	t.Helper()
	var s *Session
	client, done := serveStreamWith(t, svc, func(sess *Session) { s = sess })
	return client, done, s
}

// greetEcho accepts one connection on ln, writes greeting, then echoes
// until EOF.
func greetEcho(ln net.Listener, greeting string) {
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.WriteString(c, greeting)
		io.Copy(c, c)
		c.(interface{ CloseWrite() error }).CloseWrite()
	}()
}

// A proxy session reports its plaintext bytes each way and a successful
// connect with its time.
func TestStreamServiceReportsBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	greetEcho(ln, "hello\n")
	client, done, s := serveSession(t, &StreamService{Backend: Backend{"tcp", ln.Addr().String()}})
	data := strings.Repeat("x", 100000)
	go func() { io.WriteString(client, data); client.CloseWrite() }()
	got, err := io.ReadAll(client)
	if err != nil || len(got) != len("hello\n")+len(data) {
		t.Fatalf("client read %d bytes, %v", len(got), err)
	}
	if err := waitServe(t, done); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	b := s.Backend
	if b.Kind != handoff.BackendProxy || b.Connect != handoff.ConnectOK || b.ConnectUS == 0 || b.ConnectUS > 5e6 ||
		b.ToBackend != uint64(len(data)) || b.FromBackend != uint64(len(got)) || b.Exit != handoff.ExitNone {
		t.Fatalf("backend report %+v, want proxy, connect ok, %d bytes to and %d from the backend", b, len(data), len(got))
	}
}

// A failed connect is reported with its reason and no bytes.
func TestStreamServiceReportsConnectFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name    string
		backend Backend
		want    handoff.ConnectResult
	}{
		{"refused", Backend{"tcp", closedPort}, handoff.ConnectRefused},
		{"unix socket missing", Backend{"unix", filepath.Join(t.TempDir(), "none.sock")}, handoff.ConnectUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, done, s := serveSession(t, &StreamService{Backend: tt.backend})
			io.ReadAll(client)
			if err := waitServe(t, done); err == nil {
				t.Fatal("Serve returned nil")
			}
			b := s.Backend
			if b.Kind != handoff.BackendProxy || b.Connect != tt.want || b.ConnectUS == 0 || b.ToBackend != 0 || b.FromBackend != 0 {
				t.Fatalf("backend report %+v, want connect %v", b, tt.want)
			}
		})
	}
}

// connectResult classifies real dial errors.
func TestConnectResult(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := ln.Addr().String()
	ln.Close()
	dial := func(d net.Dialer, network, addr string) error {
		c, err := d.Dial(network, addr)
		if err == nil {
			c.Close()
		}
		return err
	}
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	_, expiredErr := (&net.Dialer{}).DialContext(expired, "tcp", closedPort)
	tests := []struct {
		name string
		err  error
		want handoff.ConnectResult
	}{
		{"connected", nil, handoff.ConnectOK},
		{"refused", dial(net.Dialer{}, "tcp", closedPort), handoff.ConnectRefused},
		{"unix socket missing", dial(net.Dialer{}, "unix", filepath.Join(t.TempDir(), "none.sock")), handoff.ConnectUnreachable},
		{"deadline passed", expiredErr, handoff.ConnectTimeout},
		{"os deadline", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}, handoff.ConnectTimeout},
		{"unreachable network", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ENETUNREACH}}, handoff.ConnectUnreachable},
		{"refused, wrapped", &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}, handoff.ConnectRefused},
		{"no such host", &net.DNSError{Err: "no such host", Name: "backend.invalid", IsNotFound: true}, handoff.ConnectUnreachable},
	}
	for _, tt := range tests {
		if got := connectResult(tt.err); got != tt.want {
			t.Errorf("%s: connectResult(%v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

// An exec session reports the bytes to the program's stdin and from its
// stdout, and how the program ended.
func TestExecReportsBackend(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		input    string
		vanish   bool // the client drops the connection after the first output
		wantOut  int
		wantExit handoff.ExitKind
		wantVal  uint8
	}{
		{"cat", "/bin/cat", strings.Repeat("abc", 30000), false, 90000, handoff.ExitCode, 0},
		{"exit 3", script(t, "head -c 4 >/dev/null\necho bye\nexit 3\n"), "four", false, 4, handoff.ExitCode, 3},
		{"killed at the session's end", script(t, "echo started\nexec sleep 300\n"), "", true, 8, handoff.ExitSignal, uint8(syscall.SIGTERM)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &ExecService{Path: tt.path, KillGrace: 2 * time.Second}
			client, done, s := serveSession(t, svc)
			if tt.vanish {
				buf := make([]byte, tt.wantOut)
				if _, err := io.ReadFull(client, buf); err != nil {
					t.Fatal(err)
				}
				client.NetConn().Close()
			} else {
				go func() { io.WriteString(client, tt.input); client.CloseWrite() }()
				out, err := io.ReadAll(client)
				if err != nil || len(out) != tt.wantOut {
					t.Fatalf("client read %d bytes, %v", len(out), err)
				}
			}
			waitServe(t, done)
			b := s.Backend
			wantIn := uint64(len(tt.input))
			if b.Kind != handoff.BackendExec || b.Connect != handoff.ConnectNone || b.ToBackend != wantIn ||
				b.FromBackend != uint64(tt.wantOut) || b.Exit != tt.wantExit || b.ExitValue != tt.wantVal {
				t.Fatalf("backend report %+v, want exec, %d bytes in, %d out, exit %d/%d", b, wantIn, tt.wantOut, tt.wantExit, tt.wantVal)
			}
		})
	}
}

// Through a worker: the proxy session's SESSION_END carries the backend
// block, and its one "session ended" line the same values.
func TestSessionEndCarriesBackend(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	greetEcho(ln, "hi\n")

	core, logs := observer.New(zapcore.InfoLevel)
	rw := startWorkerWith(t, Config{Logger: zap.New(core), Service: &StreamService{Backend: Backend{"tcp", ln.Addr().String()}}}, 1<<20)
	s := rw.send(t)
	if m, err := rw.parent.Recv(); err != nil || m.Type() != handoff.TypeAck {
		t.Fatalf("want ACK, got %v, %v", m, err)
	}
	nc, err := net.FileConn(s.conn)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	client, err := stream.New(nc, wire.NewReader(nc, 4096), s.ctx, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(client, "ping")
	client.CloseWrite()
	if got, err := io.ReadAll(client); err != nil || string(got) != "hi\nping" {
		t.Fatalf("client read %q, %v", got, err)
	}

	m, err := rw.parent.Recv()
	if err != nil {
		t.Fatal(err)
	}
	end, ok := m.(*handoff.SessionEnd)
	if !ok {
		t.Fatalf("want SESSION_END, got %#v", m)
	}
	b := end.Backend
	if end.ID != s.id || end.Result != handoff.SessionOK || b.Kind != handoff.BackendProxy || b.Connect != handoff.ConnectOK ||
		b.ConnectUS == 0 || b.ToBackend != 4 || b.FromBackend != 7 {
		t.Fatalf("SESSION_END %+v, want ID %d, ok, proxy, connect ok, 4 bytes to and 7 from the backend", *end, s.id)
	}

	var ended []observer.LoggedEntry
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if ended = logs.FilterMessage("session ended").All(); len(ended) > 0 {
			break
		}
	}
	if len(ended) != 1 {
		t.Fatalf("%d session ended lines, want 1", len(ended))
	}
	f := ended[0].ContextMap()
	if f["backend"] != "proxy" || f["backend_connect"] != "ok" || f["client_to_backend"] != uint64(4) ||
		f["backend_to_client"] != uint64(7) || f["backend_connect_time"] == nil || f["exec_status"] != nil {
		t.Fatalf("session ended fields %v", f)
	}
	rw.drain(t)
}
