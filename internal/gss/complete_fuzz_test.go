package gss

import (
	"bytes"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// completeFuzzFixture is a ticket with a fixed session key, its keytab,
// and initiators whose randomness is fixed, so that the fuzzer's inputs
// can be applied to a real acceptor reply made for each initiator: the
// authenticator's microseconds differ per initiator (they are made unique
// per process), so a reply recorded once would never verify again.
type completeFuzzFixture struct {
	tkt  messages.Ticket
	sess types.EncryptionKey
	kt   *keytab.Keytab
}

func newCompleteFuzzFixture(t testing.TB) completeFuzzFixture {
	tkt, sess := makeTicket(t, ticketSpec{svc: fuzzSvc(), sessKey: bytes.Repeat([]byte{0x33}, 32)})
	return completeFuzzFixture{tkt, sess, testKeytab(t, fuzzSvc())}
}

// exchange makes a fresh Initiator, sends its AP-REQ to a fresh acceptor
// and returns both replies the acceptor can give it: the AP-REP, and the
// KRB-ERROR (replay) for the same AP-REQ again.
func (fx completeFuzzFixture) exchange(t testing.TB) (i *Initiator, apRep, krbErr []byte) {
	i = newTestInitiator(t, fx.tkt, fx.sess, InitiatorConfig{
		Flags: FlagMutual | FlagReplay | FlagSequence,
		Rand:  constReader{},
	})
	tok, err := i.InitialToken()
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAcceptor(t, fx.kt, func(c *AcceptorConfig) { c.ReplayCache = NewReplayCache(4) })
	ctx, apRep, err := a.Accept(tok)
	if err != nil {
		t.Fatal(err)
	}
	ctx.Delete()
	if _, krbErr, err = a.Accept(tok); err == nil || len(krbErr) == 0 {
		t.Fatalf("replayed AP-REQ: %v, %d-byte reply", err, len(krbErr))
	}
	return i, apRep, krbErr
}

// constReader is a deterministic randomness source: all 0x5c.
type constReader struct{}

func (constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 0x5c
	}
	return len(p), nil
}

// FuzzComplete feeds acceptor replies to Initiator.Complete, the parser of
// what a server sends a client (AP-REP, KRB-ERROR). With raw set the input
// is the whole reply; otherwise it is XORed over the real AP-REP made for
// this initiator, so that mutations reach the checks behind the
// decryption. No input may panic; every outcome is a context or an *Error
// with a major status, never both; and the unmodified AP-REP
// establishes the context.
func FuzzComplete(f *testing.F) {
	fx := newCompleteFuzzFixture(f)
	_, _, krbErr := fx.exchange(f)
	f.Add(false, []byte{})
	f.Add(false, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add(true, krbErr)
	f.Add(true, []byte{0x60, 0x00})
	f.Fuzz(func(t *testing.T, raw bool, b []byte) {
		i, rep, _ := fx.exchange(t)
		if raw {
			rep = b
		} else {
			for k, x := range b {
				rep[k%len(rep)] ^= x
			}
		}
		ctx, err := i.Complete(rep)
		switch {
		case err == nil && ctx == nil:
			t.Fatal("Complete returned neither a context nor an error")
		case err == nil:
			ctx.Delete()
		case ctx != nil:
			t.Fatalf("Complete returned a context and %v", err)
		case MajorOf(err) == StatusComplete:
			t.Fatalf("error without a major status: %v", err)
		case !raw && !bytes.ContainsFunc(b, func(r rune) bool { return r != 0 }):
			t.Fatalf("the acceptor's own AP-REP was refused: %v", err)
		}
	})
}

// The replies Complete is fuzzed around do what the fuzzer relies on: the
// AP-REP establishes the context, and the KRB-ERROR reports code 34.
func TestCompleteFuzzReplies(t *testing.T) {
	fx := newCompleteFuzzFixture(t)
	i, rep, _ := fx.exchange(t)
	ctx, err := i.Complete(rep)
	if err != nil {
		t.Fatalf("AP-REP: %v", err)
	}
	ctx.Delete()
	i, _, krbErr := fx.exchange(t)
	if _, err := i.Complete(krbErr); KRBCodeOf(err) != 34 {
		t.Fatalf("KRB-ERROR: %v, want code 34", err)
	}
}
