package worker

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
)

// addrService records each session's addresses and ends it.
type addrService struct{ got chan [2]net.Addr }

func (a *addrService) Serve(_ context.Context, s *Session) error {
	a.got <- [2]net.Addr{s.Conn.RemoteAddr(), s.Conn.LocalAddr()}
	return nil
}

// A HANDOFF with a trusted PROXY header's addresses gives the session
// those addresses (the client's, not the balancer's); one without keeps
// the socket's own.
func TestHandoffAddrsBecomeSessionAddrs(t *testing.T) {
	parent, ch := newChannel(t)
	seal, err := gss.GenerateSealKey(7)
	if err != nil {
		t.Fatal(err)
	}
	svc := &addrService{got: make(chan [2]net.Addr, 2)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(Config{Channel: ch, Service: svc}).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		parent.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("worker did not stop")
		}
	})
	sendHello(t, parent, seal, 0)

	for _, tt := range []struct {
		name           string
		client, server string // "" : no addresses in the HANDOFF
	}{
		{"IPv4", "192.0.2.66:1234", "198.51.100.1:4444"},
		{"IPv6", "[2001:db8::66]:40000", "[2001:db8::1]:4444"},
		{"none", "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			token, _ := establish(t, seal)
			srv, _ := socketPair(t)
			h := &handoff.Handoff{ID: 1, Token: token, File: srv}
			if tt.client != "" {
				h.Client, h.Server = netip.MustParseAddrPort(tt.client), netip.MustParseAddrPort(tt.server)
			}
			if err := parent.Send(h); err != nil {
				t.Fatal(err)
			}
			srv.Close()
			var got [2]net.Addr
			select {
			case got = <-svc.got:
			case <-time.After(10 * time.Second):
				t.Fatal("session not served")
			}
			if tt.client == "" {
				if _, ok := got[0].(*net.UnixAddr); !ok {
					t.Errorf("remote %T %v, want the socket's own (unix) address", got[0], got[0])
				}
				return
			}
			if got[0].String() != tt.client || got[1].String() != tt.server {
				t.Errorf("session addresses %v, %v; want %s, %s", got[0], got[1], tt.client, tt.server)
			}
		})
	}
}

// The exec backend's GSS_CLIENT_ADDR and the proxy backend's PROXY v2
// source are the handed-off client address.
func TestBackendsSeeHandedOffClient(t *testing.T) {
	client := netip.MustParseAddrPort("192.0.2.66:1234")
	server := netip.MustParseAddrPort("198.51.100.1:4444")
	wrap := func(c net.Conn) net.Conn { return withAddrs(c, client, server) }

	svc := &ExecService{Path: script(t, `echo "addr=$GSS_CLIENT_ADDR"`)}
	c, done := serveStreamConn(t, svc, wrap)
	c.CloseWrite()
	out, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "addr=192.0.2.66:1234" {
		t.Errorf("exec program saw %q, want addr=192.0.2.66:1234", got)
	}
	if err := waitServe(t, done); err != nil {
		t.Fatalf("Serve: %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	headers := identityBackend(t, ln)
	c, done = serveStreamConn(t, &StreamService{Backend: Backend{Network: "tcp", Address: ln.Addr().String()}, ProxyProtocol: true}, wrap)
	c.CloseWrite()
	if _, err := io.ReadAll(c); err != nil {
		t.Fatal(err)
	}
	h := <-headers
	if h.Source != client || h.Dest != server {
		t.Errorf("PROXY header source %v dest %v, want %v %v", h.Source, h.Dest, client, server)
	}
	if err := waitServe(t, done); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
