package worker

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/proxyproto"
	"github.com/gss-acceptor/gss-acceptor/internal/stream"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

func TestParseBackend(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Backend
		wantErr bool
	}{
		{in: "tcp:127.0.0.1:6379", want: Backend{"tcp", "127.0.0.1:6379"}},
		{in: "tcp:[::1]:80", want: Backend{"tcp", "[::1]:80"}},
		{in: "tcp:redis.internal:6379", want: Backend{"tcp", "redis.internal:6379"}},
		{in: "unix:/run/app.sock", want: Backend{"unix", "/run/app.sock"}},
		{in: "unix:relative.sock", wantErr: true},
		{in: "tcp:6379", wantErr: true},
		{in: "tcp::6379", wantErr: true},
		{in: "udp:1.2.3.4:5", wantErr: true},
		{in: "sample", wantErr: true},
		{in: "", wantErr: true},
	} {
		got, err := ParseBackend(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseBackend(%q) = %v, %v", tc.in, got, err)
		}
	}
}

// identityBackend accepts one connection on ln, parses the PROXY v2
// header, answers "principal service\n" and then echoes until EOF.
func identityBackend(t *testing.T, ln net.Listener) <-chan *proxyproto.Header {
	t.Helper()
	got := make(chan *proxyproto.Header, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		h, err := proxyproto.Read(br)
		if err != nil {
			t.Errorf("backend: %v", err)
			return
		}
		got <- h
		io.WriteString(c, h.ClientPrincipal+" "+h.ServicePrincipal+"\n")
		io.Copy(c, br)
	}()
	return got
}

// serveStream runs svc on a session over loopback TCP and returns the
// client's stream and the channel Serve's result arrives on.
func serveStream(t *testing.T, svc Service) (*stream.Conn, <-chan error) {
	t.Helper()
	return serveStreamFull(t, svc, nil, nil)
}

// serveStreamWith is serveStream that first gives the session to seen.
func serveStreamWith(t *testing.T, svc Service, seen func(*Session)) (*stream.Conn, <-chan error) {
	t.Helper()
	return serveStreamFull(t, svc, nil, seen)
}

// serveStreamConn is serveStream with the server's connection passed
// through wrap.
func serveStreamConn(t *testing.T, svc Service, wrap func(net.Conn) net.Conn) (*stream.Conn, <-chan error) {
	t.Helper()
	return serveStreamFull(t, svc, wrap, nil)
}

// serveStreamFull is serveStream with the server's connection passed
// through wrap and the session given to seen (either may be nil).
func serveStreamFull(t *testing.T, svc Service, wrap func(net.Conn) net.Conn, seen func(*Session)) (*stream.Conn, <-chan error) {
	t.Helper()
	f := gsstest.New(t, 18)
	ictx, actx := f.Establish(t, f.Acceptor(t, gss.AcceptorConfig{}), gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close(); sc.Close() })
	if wrap != nil {
		sc = wrap(sc)
	}
	s := &Session{ID: 1, Context: actx, Conn: sc, Reader: wire.NewReader(sc, readBufferSize), Log: zap.NewNop(), IdleTimeout: 10 * time.Second}
	if seen != nil {
		seen(s)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Serve(context.Background(), s) }()
	client, err := stream.New(cc, nil, ictx, stream.Config{})
	if err != nil {
		t.Fatal(err)
	}
	return client, done
}

func waitServe(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestStreamServiceProxyV2(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "backend.sock")
			}
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			headers := identityBackend(t, ln)
			client, done := serveStream(t, &StreamService{
				Backend:       Backend{Network: network, Address: ln.Addr().String()},
				ProxyProtocol: true,
			})
			if _, err := client.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			client.CloseWrite()
			got, err := io.ReadAll(client)
			if err != nil {
				t.Fatalf("client read: %v", err)
			}
			h := <-headers
			want := h.ClientPrincipal + " " + h.ServicePrincipal + "\nping"
			if string(got) != want || !strings.Contains(h.ClientPrincipal, "@") || h.ServicePrincipal == "" {
				t.Fatalf("client got %q, want %q", got, want)
			}
			if !h.Source.IsValid() || h.Source.Addr().String() != "127.0.0.1" {
				t.Errorf("PROXY source %v, want the client's 127.0.0.1 address", h.Source)
			}
			if err := waitServe(t, done); err != nil {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

func TestStreamServiceBackendRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	client, done := serveStream(t, &StreamService{Backend: Backend{"tcp", addr}})
	_, err = io.ReadAll(client)
	var pe *stream.PeerError
	if !errors.As(err, &pe) || !strings.HasPrefix(pe.Reason, "backend unreachable: ") || !strings.Contains(pe.Reason, "refused") {
		t.Fatalf("client read %v, want an ERROR record naming the refused backend", err)
	}
	if err := waitServe(t, done); err == nil || !strings.Contains(err.Error(), "backend unreachable") {
		t.Fatalf("Serve = %v, want the backend failure", err)
	}
}

// TestStreamServiceClientVanishes: the client's connection drops; the
// backend connection is closed.
func TestStreamServiceClientVanishes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	closed := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c)
		closed <- err
	}()
	client, done := serveStream(t, &StreamService{Backend: Backend{"tcp", ln.Addr().String()}})
	client.Write([]byte("half a request"))
	client.Close()
	if err := waitServe(t, done); !errors.Is(err, stream.ErrTruncated) {
		t.Fatalf("Serve = %v, want truncation", err)
	}
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("backend read ended with %v, want EOF", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("backend connection not closed")
	}
}
