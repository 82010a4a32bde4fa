package client

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// TestMain fails the package if any test leaves a goroutine running: a
// client that gives up (timeout, bad reply) must not strand one.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serverBehaviour says how the in-process gss-sample server misbehaves.
type serverBehaviour int

const (
	serveWell      serverBehaviour = iota
	serveWrongMIC                  // MIC over other bytes
	serveSilently                  // reads messages, never answers
	serveHangUp                    // closes after establishment
	serveWrongFlag                 // answers a MIC request with a NOOP
)

// ticketOf returns the client's credentials in f: its ticket for f's
// service and the session key.
func ticketOf(f *gsstest.Fixture) *Ticket {
	return &Ticket{CName: f.CName, CRealm: f.Realm, Ticket: f.Ticket, SessionKey: f.SessionKey}
}

// serve runs one gss-sample server connection on a listener with the
// service key of keys, behaving as b. It returns the address; the server
// is gone when the test's cleanups have run.
func serve(t *testing.T, keys *gsstest.Fixture, b serverBehaviour) string {
	t.Helper()
	acc := keys.Acceptor(t, gss.AcceptorConfig{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Bounded: the server never outlives a stuck test for long.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := wire.NewReader(c, 4096)
		if f, err := r.ReadFrame(1 << 16); err != nil || f.Flags != wire.FlagNoop|wire.FlagContextNext {
			return
		}
		f, err := r.ReadFrame(1 << 16)
		if err != nil {
			return
		}
		ctx, out, err := acc.Accept(f.Body)
		if len(out) > 0 {
			wire.WriteFrame(c, wire.FlagContext, out)
		}
		if err != nil {
			return
		}
		defer ctx.Delete()
		if b == serveHangUp {
			return
		}
		for {
			f, err := r.ReadFrame(1 << 16)
			if err != nil || f.Flags&wire.FlagNoop != 0 {
				return
			}
			if b == serveSilently {
				continue
			}
			msg := f.Body
			if f.Flags&wire.FlagWrapped != 0 {
				if msg, _, err = ctx.Unwrap(f.Body); err != nil {
					return
				}
			}
			if f.Flags&wire.FlagSendMIC == 0 || b == serveWrongFlag {
				wire.WriteFrame(c, wire.FlagNoop, nil)
				continue
			}
			if b == serveWrongMIC {
				msg = append(msg, '!')
			}
			mic, err := ctx.GetMIC(msg)
			if err != nil {
				return
			}
			wire.WriteFrame(c, wire.FlagMIC, mic)
		}
	}()
	return ln.Addr().String()
}

// A good server: every option combination exchanges and closes cleanly.
func TestExchange(t *testing.T) {
	fx := gsstest.New(t, 18)
	tests := []struct {
		name  string
		flags gss.Flags
		opts  MessageOptions
	}{
		{"default", gss.FlagMutual | gss.FlagReplay, MessageOptions{}},
		{"seq", gss.FlagMutual | gss.FlagReplay | gss.FlagSequence, MessageOptions{}},
		{"no mutual", gss.FlagReplay, MessageOptions{}},
		{"integrity only", gss.FlagMutual, MessageOptions{NoEncrypt: true}},
		{"no wrap", gss.FlagMutual, MessageOptions{NoWrap: true}},
		{"no mic", gss.FlagMutual, MessageOptions{NoMIC: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, fx, serveWell)
			c, err := Dial(context.Background(), addr, ticketOf(fx), Options{Flags: tt.flags, Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if err := c.Exchange([]byte("hello"), tt.opts); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A misbehaving server makes the client fail with a clear error, within
// its timeout, and leak nothing (TestMain checks goroutines).
func TestServerFaults(t *testing.T) {
	fx := gsstest.New(t, 18)
	wrongKey := gsstest.New(t, 18) // the same service with another key
	tests := []struct {
		name      string
		keys      *gsstest.Fixture // the server's service key
		b         serverBehaviour
		dialErr   string // non-empty: Dial fails with this in its error
		exchange  func(error) bool
		exchWhat  string
		maxWaited time.Duration
	}{
		{"server MIC over other bytes", fx, serveWrongMIC, "", func(err error) bool { return errors.Is(err, ErrBadMIC) }, "ErrBadMIC", time.Second},
		{"server silent", fx, serveSilently, "", func(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }, "a deadline error", 3 * time.Second},
		{"server hangs up", fx, serveHangUp, "", func(err error) bool { return err != nil }, "an error", time.Second},
		{"server answers NOOP to a MIC request", fx, serveWrongFlag, "", func(err error) bool {
			return err != nil && strings.Contains(err.Error(), "want MIC")
		}, "a flags error", time.Second},
		{"service key mismatch: KRB-ERROR", wrongKey, serveWell, "KRB_AP_ERR_MODIFIED", nil, "", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := serve(t, tt.keys, tt.b)
			c, err := Dial(context.Background(), addr, ticketOf(fx), Options{Flags: gss.FlagMutual | gss.FlagReplay, Timeout: time.Second})
			if tt.dialErr != "" {
				if err == nil || gss.KRBCodeOf(err) != 41 {
					t.Fatalf("Dial: %v, want KRB-ERROR 41 (%s)", err, tt.dialErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Abort()
			start := time.Now()
			err = c.Exchange([]byte("hello"), MessageOptions{})
			if !tt.exchange(err) {
				t.Fatalf("Exchange: %v, want %s", err, tt.exchWhat)
			}
			if d := time.Since(start); d > tt.maxWaited {
				t.Errorf("Exchange took %v", d)
			}
		})
	}
}

func TestServicePrincipal(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"host-based", "host@server.example.com", "host/server.example.com"},
		{"already a principal", "host/server.example.com", "host/server.example.com"},
		{"principal with realm", "host/server.example.com@EXAMPLE.COM", "host/server.example.com@EXAMPLE.COM"},
		{"bare name", "server", "server"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ServicePrincipal(tt.in); got != tt.want {
				t.Errorf("ServicePrincipal(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
