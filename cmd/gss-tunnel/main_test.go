package main

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/testrealm"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

func TestMain(m *testing.M) { testrealm.Main(m) }

// runCaptured runs gss-tunnel's run with args and returns its exit status
// and what it wrote to standard error. Standard input is an empty pipe
// (for -stdio); standard output is not redirected, so a test must not
// reach a relay that writes to it. Tests using it must not run in
// parallel.
func runCaptured(t *testing.T, args ...string) (int, string) {
	t.Helper()
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldErr, oldIn := os.Stderr, os.Stdin
	os.Stderr, os.Stdin = errW, inR
	collected := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(errR)
		collected <- string(b)
	}()
	code := run(args)
	os.Stderr, os.Stdin = oldErr, oldIn
	errW.Close()
	inW.Close() // the -stdio reader, if any, sees EOF and ends
	out := <-collected
	errR.Close()
	t.Logf("gss-tunnel %s: exit %d, stderr %q", strings.Join(args, " "), code, out)
	t.Cleanup(func() { inR.Close() })
	return code, out
}

// Command-line mistakes: exit status 2 and one line saying what is wrong,
// before any Kerberos or network work.
func TestUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"nothing", nil, exitUsage, "gss-tunnel: give exactly one of -listen ADDR and -stdio\n"},
		{"both modes", []string{"-stdio", "-listen", "127.0.0.1:0", "-connect", "h:1", "-service", "s@h"}, exitUsage,
			"gss-tunnel: give exactly one of -listen ADDR and -stdio\n"},
		{"no -connect", []string{"-stdio", "-service", "s@h"}, exitUsage, "gss-tunnel: -connect and -service are required\n"},
		{"no -service", []string{"-listen", "127.0.0.1:0", "-connect", "h:1"}, exitUsage, "gss-tunnel: -connect and -service are required\n"},
		{"keytab without principal", []string{"-stdio", "-connect", "h:1", "-service", "s@h", "-keytab", "/k"}, exitUsage,
			"gss-tunnel: -keytab and -principal go together\n"},
		{"principal without keytab", []string{"-stdio", "-connect", "h:1", "-service", "s@h", "-principal", "alice"}, exitUsage,
			"gss-tunnel: -keytab and -principal go together\n"},
		{"stray argument", []string{"-stdio", "-connect", "h:1", "-service", "s@h", "extra"}, exitUsage,
			"gss-tunnel: unexpected arguments: extra\n"},
		{"unknown flag", []string{"-stdio", "-port", "1"}, exitUsage, "flag provided but not defined: -port\n"},
		{"bad duration", []string{"-stdio", "-timeout", "soon"}, exitUsage, `invalid value "soon" for flag -timeout`},
		{"help", []string{"-h"}, exitOK, "-connect string\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stderr := runCaptured(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, stderr, tt.code, tt.want)
			}
			if tt.code == exitUsage && strings.HasPrefix(tt.want, "gss-tunnel: ") && stderr != tt.want {
				t.Fatalf("stderr %q, want exactly %q", stderr, tt.want)
			}
		})
	}
}

// oneConnServer accepts one connection on loopback and hands it to serve.
func oneConnServer(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		serve(c)
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

// acceptOnce reads the opener and the context token as the acceptor does
// and answers with a's reply token. It returns the established context (nil
// when a refused it) and the reader holding any bytes past the token.
func acceptOnce(t *testing.T, c net.Conn, a *gss.Acceptor) (*gss.Context, *wire.Reader) {
	r := wire.NewReader(c, 4096)
	if f, err := r.ReadFrame(64 << 10); err != nil || f.Flags != wire.FlagNoop|wire.FlagContextNext {
		t.Errorf("opener: %+v, %v", f, err)
		return nil, nil
	}
	f, err := r.ReadFrame(64 << 10)
	if err != nil || f.Flags&wire.FlagContext == 0 {
		t.Errorf("context token: %+v, %v", f, err)
		return nil, nil
	}
	ctx, out, err := a.Accept(f.Body)
	if out != nil {
		if werr := wire.WriteFrame(c, wire.FlagContext, out); werr != nil {
			t.Errorf("writing the reply token: %v", werr)
		}
	}
	if err != nil {
		return nil, r
	}
	return ctx, r
}

// acceptor is an in-process acceptor with the keys of keytabPath.
func acceptor(t *testing.T, keytabPath string) *gss.Acceptor {
	t.Helper()
	kt, err := keytab.Load(keytabPath)
	if err != nil {
		t.Fatal(err)
	}
	a, err := gss.NewAcceptor(gss.AcceptorConfig{Keytab: kt})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// Failures after the command line: exit status 1 and one line that names
// the cause (no ticket, a service the KDC does not know, a server that
// refuses the context or the session, no server at all).
func TestErrors(t *testing.T) {
	r := testrealm.Shared(t)
	// r.ServicePrincipal is host/localhost@REALM.
	const service = "host@localhost"
	login := []string{"-krb5conf", r.Krb5Conf, "-keytab", r.UserKeytab, "-principal", r.UserPrincipal}
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()

	t.Run("no ticket", func(t *testing.T) {
		t.Setenv("KRB5CCNAME", "FILE:"+filepath.Join(t.TempDir(), "no-such-ccache"))
		code, stderr := runCaptured(t, "-stdio", "-connect", closed, "-service", service, "-krb5conf", r.Krb5Conf)
		want := "gss-tunnel: no Kerberos ticket (run kinit, or use -keytab and -principal): "
		if code != exitError || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, stderr, want)
		}
	})

	t.Run("unknown service", func(t *testing.T) {
		code, stderr := runCaptured(t, append([]string{"-stdio", "-connect", closed, "-service", "nosuch@localhost"}, login...)...)
		want := "gss-tunnel: service principal nosuch/localhost is unknown to the KDC: "
		if code != exitError || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, stderr, want)
		}
	})

	t.Run("keytab missing", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "none.keytab")
		code, stderr := runCaptured(t, "-stdio", "-connect", closed, "-service", service,
			"-krb5conf", r.Krb5Conf, "-keytab", missing, "-principal", r.UserPrincipal)
		if code != exitError || !strings.HasPrefix(stderr, "gss-tunnel: ") || !strings.Contains(stderr, missing) {
			t.Fatalf("exit %d, stderr %q; want exit 1 naming %s", code, stderr, missing)
		}
	})

	t.Run("no server", func(t *testing.T) {
		code, stderr := runCaptured(t, append([]string{"-stdio", "-connect", closed, "-service", service}, login...)...)
		if code != exitError || !strings.HasPrefix(stderr, "gss-tunnel: ") || !strings.Contains(stderr, "connection refused") {
			t.Fatalf("exit %d, stderr %q; want exit 1 and connection refused", code, stderr)
		}
	})

	t.Run("server refuses the context", func(t *testing.T) {
		// An acceptor with another principal's keys only (a wrong
		// keytab): the ticket is refused with a KRB-ERROR.
		kt := filepath.Join(t.TempDir(), "other.keytab")
		name := "tunnel-refusal-" + strconv.FormatInt(time.Now().UnixNano(), 36) + "/localhost" // unique in the shared realm
		if err := r.AddService(name, []int32{18}, kt); err != nil {
			t.Fatal(err)
		}
		a := acceptor(t, kt)
		addr := oneConnServer(t, func(c net.Conn) {
			if ctx, _ := acceptOnce(t, c, a); ctx != nil {
				t.Error("the acceptor established a context for a principal it does not serve")
			}
		})
		code, stderr := runCaptured(t, append([]string{"-stdio", "-connect", addr, "-service", service}, login...)...)
		want := "gss-tunnel: server " + addr + " refused the context: "
		if code != exitError || !strings.HasPrefix(stderr, want) || strings.Count(stderr, "\n") != 1 {
			t.Fatalf("exit %d, stderr %q; want exit 1 and one line starting %q", code, stderr, want)
		}
	})

	t.Run("server refuses the session", func(t *testing.T) {
		// The context is established, then the server ends the stream
		// with an ERROR record, as an acceptor with an allow-list does.
		a := acceptor(t, r.ServiceKeytab)
		addr := oneConnServer(t, func(c net.Conn) {
			ctx, rd := acceptOnce(t, c, a)
			if ctx == nil {
				t.Error("no context established")
				return
			}
			defer ctx.Delete()
			st, err := stream.New(c, rd, ctx, stream.Config{})
			if err != nil {
				t.Error(err)
				return
			}
			st.Abort("client principal " + ctx.InitiatorName() + " is not allowed")
		})
		code, stderr := runCaptured(t, append([]string{"-stdio", "-connect", addr, "-service", service}, login...)...)
		want := "gss-tunnel: server: client principal " + r.UserPrincipal + " is not allowed\n"
		if code != exitError || stderr != want {
			t.Fatalf("exit %d, stderr %q; want exit 1 and %q", code, stderr, want)
		}
	})
}
