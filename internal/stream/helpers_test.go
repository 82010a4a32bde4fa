package stream

import (
	"net"
	"testing"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/wire"
)

// contexts establishes an initiator/acceptor context pair in process
// (AES256, mutual, replay and sequence detection, as gss-tunnel asks).
func contexts(t testing.TB) (initiator, acceptor *gss.Context) {
	t.Helper()
	f := gsstest.New(t, 18)
	return f.Establish(t, f.Acceptor(t, gss.AcceptorConfig{}), gss.FlagMutual|gss.FlagReplay|gss.FlagSequence)
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		ch <- res{c, err}
	}()
	ac, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { ac.Close(); r.c.Close() })
	return ac.(*net.TCPConn), r.c.(*net.TCPConn)
}

// streamPair returns a client (initiator) and server (acceptor) stream
// over loopback TCP.
func streamPair(t testing.TB, ccfg, scfg Config) (client, server *Conn) {
	t.Helper()
	ictx, actx := contexts(t)
	a, b := tcpPair(t)
	var err error
	if client, err = New(a, nil, ictx, ccfg); err != nil {
		t.Fatal(err)
	}
	if server, err = New(b, nil, actx, scfg); err != nil {
		t.Fatal(err)
	}
	return client, server
}

// rawRecord wraps typ|payload with ctx (sealed or not) and frames it with
// flags, bypassing Conn's checks, to forge what a peer could send.
func rawRecord(t testing.TB, ctx *gss.Context, flags byte, sealed bool, pt []byte) []byte {
	t.Helper()
	tok, err := ctx.Wrap(pt, sealed)
	if err != nil {
		t.Fatal(err)
	}
	return wire.AppendFrame(nil, flags, tok)
}
