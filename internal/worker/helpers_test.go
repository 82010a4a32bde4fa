package worker

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest"
	"github.com/gss-acceptor/gss-acceptor/internal/handoff"
)

// newChannel returns both ends of a handoff channel: the acceptor's end,
// closed when the test ends, and the worker's end made as a worker makes
// it from fd 3. FromFD takes ownership of the descriptor it is given, so
// it gets a copy and the child end of the pair is closed here.
func newChannel(t *testing.T) (parent, worker *handoff.Conn) {
	t.Helper()
	parent, child, err := handoff.Pair()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { parent.Close() })
	dup, err := unix.Dup(int(child.Fd()))
	child.Close()
	if err != nil {
		t.Fatal(err)
	}
	if worker, err = handoff.FromFD(uintptr(dup)); err != nil {
		t.Fatal(err)
	}
	return parent, worker
}

// establish makes a context pair the way the acceptor does, from an
// in-memory realm (AES256, etype 18) without mutual authentication, and
// exports the acceptor's context with seal. It returns the sealed token and
// the initiator's context.
func establish(t *testing.T, seal *gss.SealKey) (token []byte, client *gss.Context) {
	t.Helper()
	f := gsstest.New(t, 18)
	client, sctx := f.Establish(t, f.Acceptor(t, gss.AcceptorConfig{}), gss.FlagSequence|gss.FlagReplay)
	token, err := sctx.Export(seal)
	if err != nil {
		t.Fatal(err)
	}
	return token, client
}

// socketPair returns a connected pair of stream sockets: the server end as
// a file for the HANDOFF, the client end as a file to talk through.
func socketPair(t *testing.T) (server, client *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The client end is non-blocking, so that os.File uses the poller and
	// the deadlines the tests set on it work.
	if err := unix.SetNonblock(fds[1], true); err != nil {
		t.Fatal(err)
	}
	server, client = os.NewFile(uintptr(fds[0]), "server"), os.NewFile(uintptr(fds[1]), "client")
	t.Cleanup(func() { server.Close(); client.Close() })
	return server, client
}

// sendHello configures the worker on the other end of parent with seal
// and maxMessage and waits for its READY.
func sendHello(t *testing.T, parent *handoff.Conn, seal *gss.SealKey, maxMessage uint32) {
	t.Helper()
	hello := &handoff.Hello{KeyID: seal.ID(), MaxMessageBytes: maxMessage}
	copy(hello.Key[:], seal.AppendKey(nil))
	if err := parent.Send(hello); err != nil {
		t.Fatal(err)
	}
	if m, err := parent.Recv(); err != nil || m.Type() != handoff.TypeReady {
		t.Fatalf("want READY, got %v, %v", m, err)
	}
}
