package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gss-acceptor/gss-acceptor/internal/client"
	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

func TestMain(m *testing.M) { testrealm.Main(m) }

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		name  string
		phase phase
		err   error
		want  errKind
	}{
		{"dial refused", phaseDial, refused, errDial},
		{"dial deadline", phaseDial, fmt.Errorf("client: %w", os.ErrDeadlineExceeded), errTimeout},
		{"context deadline", phaseDial, context.DeadlineExceeded, errTimeout},
		{"establish eof", phaseEstablish, fmt.Errorf("client: reading: %w", io.ErrUnexpectedEOF), errHandshake},
		{"establish read timeout", phaseEstablish, fmt.Errorf("client: %w", os.ErrDeadlineExceeded), errTimeout},
		{"krb error", phaseEstablish, fmt.Errorf("client: %w", &gss.Error{Major: gss.StatusContextExpired, KRBCode: 37}), errKRB},
		{"gss error without code", phaseEstablish, &gss.Error{Major: gss.StatusDefectiveToken}, errHandshake},
		{"bad mic", phaseMessage, fmt.Errorf("%w: %w", client.ErrBadMIC, errors.New("x")), errMIC},
		{"message eof", phaseMessage, io.EOF, errMessage},
		{"message timeout", phaseMessage, os.ErrDeadlineExceeded, errTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classify(tt.phase, tt.err); got != tt.want {
				t.Fatalf("classify = %v, want %v", got, tt.want)
			}
		})
	}
	seen := map[string]bool{}
	for k := range numErrKinds {
		if s := k.String(); seen[s] || strings.HasPrefix(s, "errKind(") {
			t.Fatalf("kind %d has name %q (duplicate or unnamed)", int(k), s)
		} else {
			seen[s] = true
		}
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, o options)
	}{
		{"defaults", []string{"h", "host@h"}, "", func(t *testing.T, o options) {
			if o.addr != "h:4444" || o.mode != "handshake" || o.concurrency != 16 || o.maxTime != 2*10*time.Second+time.Minute {
				t.Fatalf("got %+v", o)
			}
			if f := o.gssFlags(); f != gss.FlagMutual|gss.FlagReplay {
				t.Fatalf("flags %v", f)
			}
		}},
		{"seq nomutual", []string{"-seq", "-nomutual", "-port", "99", "::1", "s"}, "", func(t *testing.T, o options) {
			if o.addr != "[::1]:99" {
				t.Fatalf("addr %q", o.addr)
			}
			if f := o.gssFlags(); f != gss.FlagReplay|gss.FlagSequence {
				t.Fatalf("flags %v", f)
			}
		}},
		{"missing args", []string{"h"}, "two arguments", nil},
		{"bad mode", []string{"-mode", "x", "h", "s"}, "-mode", nil},
		{"zero concurrency", []string{"-c", "0", "h", "s"}, "-c 0", nil},
		{"unbounded duration", []string{"-duration", "2h", "h", "s"}, "-duration", nil},
		{"negative count", []string{"-n", "-1", "h", "s"}, "-n", nil},
		{"cap below duration", []string{"-duration", "10s", "-max-time", "5s", "h", "s"}, "-max-time", nil},
		{"huge size", []string{"-size", "999999999", "h", "s"}, "-size", nil},
		{"bad port", []string{"-port", "70000", "h", "s"}, "-port", nil},
		{"hold zero", []string{"-mode", "hold", "-hold", "0", "h", "s"}, "-hold", nil},
		{"keytab without principal", []string{"-keytab", "k", "h", "s"}, "-principal", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseArgs(tt.args, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o)
		})
	}
}

func TestMessageIsPrintable(t *testing.T) {
	m := message(100)
	if len(m) != 100 {
		t.Fatalf("len %d", len(m))
	}
	for i, c := range m {
		if c < 0x21 || c > 0x7e {
			t.Fatalf("byte %d is %#x, not printable", i, c)
		}
	}
}

// fault makes the test server misbehave in one way.
type fault int

const (
	faultNone      fault = iota
	faultBadMIC          // flips a bit of every MIC
	faultHangUp          // closes after the opening NOOP
	faultSilent          // reads everything, answers nothing
	faultClockSkew       // acceptor clock an hour ahead: KRB_AP_ERR_SKEW
)

// testServer is a concurrent gss-sample server built on internal/gss, so
// the hold mode and the error paths can be exercised in-process.
type testServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	open  int // sessions established and not yet ended
	max   int // highest open seen
}

func startTestServer(t *testing.T, realm *testrealm.Realm, f fault) (*testServer, int) {
	t.Helper()
	kt, err := keytab.Load(realm.ServiceKeytab)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gss.AcceptorConfig{Keytab: kt}
	if f == faultClockSkew {
		cfg.Now = func() time.Time { return time.Now().Add(time.Hour) }
	}
	acc, err := gss.NewAcceptor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Go(func() {
				s.serve(c, acc, f)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s, ln.Addr().(*net.TCPAddr).Port
}

func (s *testServer) serve(c net.Conn, acc *gss.Acceptor, f fault) {
	r := wire.NewReader(c, 64<<10)
	if _, err := r.ReadFrame(0); err != nil {
		return
	}
	switch f {
	case faultHangUp:
		return
	case faultSilent:
		io.Copy(io.Discard, c)
		return
	}
	tok, err := r.ReadFrame(64 << 10)
	if err != nil {
		return
	}
	ctx, out, err := acc.Accept(tok.Body)
	if len(out) > 0 {
		c.Write(wire.AppendFrame(nil, wire.FlagContext, out))
	}
	if err != nil {
		return
	}
	defer ctx.Delete()
	s.mu.Lock()
	s.open++
	s.max = max(s.max, s.open)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
	}()
	for {
		fr, err := r.ReadFrame(1 << 20)
		if err != nil || fr.Flags&wire.FlagNoop != 0 {
			return
		}
		msg, _, err := ctx.Unwrap(fr.Body)
		if err != nil {
			return
		}
		mic, err := ctx.GetMIC(msg)
		if err != nil {
			return
		}
		if f == faultBadMIC {
			mic[len(mic)-1] ^= 1
		}
		if _, err := c.Write(wire.AppendFrame(nil, wire.FlagMIC, mic)); err != nil {
			return
		}
	}
}

// runJSON runs gss-bench in-process with -json and decodes the result.
func runJSON(t *testing.T, realm *testrealm.Realm, port int, args ...string) (*Result, int, string) {
	t.Helper()
	args = append([]string{"-json", "-progress", "0", "-ccache", realm.CCache, "-krb5conf", realm.Krb5Conf,
		"-port", strconv.Itoa(port)}, args...)
	args = append(args, "127.0.0.1", "host@localhost")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	var r Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("exit %d, output not JSON: %v\nstdout: %s\nstderr: %s", code, err, stdout.String(), stderr.String())
	}
	return &r, code, stderr.String()
}

func TestLoads(t *testing.T) {
	realm := testrealm.Shared(t)
	_, port := startTestServer(t, realm, faultNone)
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, r *Result)
	}{
		{"handshake -n", []string{"-mode", "handshake", "-c", "4", "-n", "40", "-duration", "30s", "-mcount", "2"}, func(t *testing.T, r *Result) {
			if r.Handshakes != 40 || r.Messages != 80 || r.Latency.Count != 40 || r.HandshakeLatency.Count != 40 {
				t.Fatalf("handshakes %d messages %d latency n %d/%d, want 40, 80, 40", r.Handshakes, r.Messages, r.Latency.Count, r.HandshakeLatency.Count)
			}
		}},
		{"handshake mcount 0", []string{"-mode", "handshake", "-c", "2", "-n", "10", "-mcount", "0"}, func(t *testing.T, r *Result) {
			if r.Handshakes != 10 || r.Messages != 0 {
				t.Fatalf("handshakes %d messages %d", r.Handshakes, r.Messages)
			}
		}},
		{"session sealed", []string{"-mode", "session", "-c", "2", "-n", "100", "-size", "1024"}, func(t *testing.T, r *Result) {
			if r.Messages != 100 || r.Handshakes != 2 || r.Latency.Count != 100 {
				t.Fatalf("messages %d handshakes %d latency n %d", r.Messages, r.Handshakes, r.Latency.Count)
			}
			want := float64(r.Messages) * 1024 / r.Elapsed / 1e6
			if r.MBPerSec < want*0.999 || r.MBPerSec > want*1.001 || !r.Conf {
				t.Fatalf("MB/s %v, want %v; conf %v", r.MBPerSec, want, r.Conf)
			}
		}},
		{"session integrity seq", []string{"-mode", "session", "-c", "1", "-n", "20", "-nx", "-seq"}, func(t *testing.T, r *Result) {
			if r.Messages != 20 || r.Conf || !r.Seq {
				t.Fatalf("messages %d conf %v seq %v", r.Messages, r.Conf, r.Seq)
			}
		}},
		{"duration bound", []string{"-mode", "session", "-c", "1", "-duration", "300ms"}, func(t *testing.T, r *Result) {
			if r.Elapsed != 0.3 || r.Messages == 0 {
				t.Fatalf("elapsed %v messages %d, want 0.3 s and some", r.Elapsed, r.Messages)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, code, stderr := runJSON(t, realm, port, tt.args...)
			if code != 0 || r.ErrorsTotal != 0 || r.Aborted {
				t.Fatalf("exit %d, errors %v (%s), aborted %v; stderr %s", code, r.Errors, r.LastError, r.Aborted, stderr)
			}
			tt.check(t, r)
		})
	}
}

func TestHold(t *testing.T) {
	realm := testrealm.Shared(t)
	srv, port := startTestServer(t, realm, faultNone)
	r, code, stderr := runJSON(t, realm, port, "-mode", "hold", "-hold", "50", "-c", "4", "-n", "20",
		"-mcount", "0", "-settle", "0")
	if code != 0 || r.Hold == nil {
		t.Fatalf("exit %d, hold %v; stderr %s", code, r.Hold, stderr)
	}
	h := r.Hold
	if h.Held != 50 || !h.Checked || h.Alive != 50 || r.Handshakes != 20 {
		t.Fatalf("held %d checked %v alive %d handshakes %d", h.Held, h.Checked, h.Alive, r.Handshakes)
	}
	if !strings.Contains(stderr, "gss-bench: held 50 of 50 sessions") || !strings.Contains(stderr, "gss-bench: load starting") {
		t.Fatalf("stderr lacks the hold markers: %s", stderr)
	}
	srv.mu.Lock()
	maxOpen, open := srv.max, srv.open
	srv.mu.Unlock()
	if maxOpen < 50 {
		t.Fatalf("server saw at most %d sessions at once, want ≥ 50 held", maxOpen)
	}
	// The held sessions were closed with a NOOP; the server ends them.
	deadline := time.Now().Add(5 * time.Second)
	for open > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		srv.mu.Lock()
		open = srv.open
		srv.mu.Unlock()
	}
	if open != 0 {
		t.Fatalf("%d sessions still open on the server after gss-bench exited", open)
	}
}

func TestErrorsAreClassified(t *testing.T) {
	realm := testrealm.Shared(t)
	tests := []struct {
		name  string
		fault fault
		args  []string
		kind  string
	}{
		{"bad mic", faultBadMIC, []string{"-mode", "handshake", "-c", "2", "-duration", "300ms", "-mcount", "1"}, "mic"},
		{"hang up", faultHangUp, []string{"-mode", "handshake", "-c", "2", "-duration", "300ms"}, "handshake"},
		{"silent", faultSilent, []string{"-mode", "handshake", "-c", "2", "-duration", "1s", "-timeout", "200ms"}, "timeout"},
		{"krb error", faultClockSkew, []string{"-mode", "session", "-c", "1", "-duration", "300ms"}, "krb_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, port := startTestServer(t, realm, tt.fault)
			r, code, _ := runJSON(t, realm, port, tt.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1: no operation succeeded", code)
			}
			if r.Errors[tt.kind] == 0 || r.Errors[tt.kind] != r.ErrorsTotal || r.ok() != 0 {
				t.Fatalf("errors %v (ok %d), want only %s", r.Errors, r.ok(), tt.kind)
			}
			if r.LastError == "" {
				t.Fatal("no last error reported")
			}
		})
	}
	t.Run("dial", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close() // nothing listens there now
		r, code, _ := runJSON(t, realm, port, "-c", "1", "-duration", "200ms")
		if code != 1 || r.Errors["dial"] == 0 || r.Errors["dial"] != r.ErrorsTotal {
			t.Fatalf("exit %d errors %v, want dial errors only", code, r.Errors)
		}
	})
}

func TestHardCapAborts(t *testing.T) {
	realm := testrealm.Shared(t)
	_, port := startTestServer(t, realm, faultSilent)
	start := time.Now()
	// Every read would wait 10 s; the hard cap cuts the run at 500 ms.
	r, code, _ := runJSON(t, realm, port, "-c", "3", "-duration", "200ms", "-max-time", "500ms", "-timeout", "10s")
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("run took %v despite -max-time 500ms", took)
	}
	if code != 1 || !r.Aborted || r.ErrorsTotal != 0 {
		t.Fatalf("exit %d aborted %v errors %v: an abort is not a server error", code, r.Aborted, r.Errors)
	}
}

func TestAgainstMITServer(t *testing.T) {
	realm := testrealm.Shared(t)
	if _, err := exec.LookPath("gss-server"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("gss-server not installed")
		}
		t.Skip("MIT gss-server not installed (krb5-gss-samples)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command("gss-server", "-port", strconv.Itoa(port), "-keytab", realm.ServiceKeytab,
		"-logfile", t.TempDir()+"/gss-server.log", "host@localhost")
	cmd.Env = append(realm.Env(), "KRB5RCACHETYPE=none")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	ready := make(chan bool, 1)
	go func() {
		buf := make([]byte, 256)
		var seen []byte
		for {
			n, err := stderr.Read(buf)
			seen = append(seen, buf[:n]...)
			if bytes.Contains(seen, []byte("starting...")) {
				ready <- true
				io.Copy(io.Discard, stderr)
				return
			}
			if err != nil {
				ready <- false
				return
			}
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("gss-server exited during startup")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("gss-server did not start")
	}
	// gss-server serves one connection at a time: one session, then
	// sequential handshakes.
	r, code, stderrOut := runJSON(t, realm, port, "-mode", "session", "-c", "1", "-n", "200", "-size", "1024")
	if code != 0 || r.Messages != 200 || r.ErrorsTotal != 0 {
		t.Fatalf("session: exit %d messages %d errors %v %s; %s", code, r.Messages, r.Errors, r.LastError, stderrOut)
	}
	// With quick ACKs, MIT's three-write replies do not stall 40 ms each:
	// 200 round trips take far less than the 8 s they would otherwise.
	if r.Elapsed > 4 {
		t.Fatalf("200 round trips took %.1fs: replies are being held by delayed ACKs", r.Elapsed)
	}
	r, code, _ = runJSON(t, realm, port, "-mode", "handshake", "-c", "1", "-n", "20", "-mcount", "1")
	if code != 0 || r.Handshakes != 20 || r.ErrorsTotal != 0 {
		t.Fatalf("handshake: exit %d handshakes %d errors %v %s", code, r.Handshakes, r.Errors, r.LastError)
	}
}
