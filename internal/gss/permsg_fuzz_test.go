package gss

import (
	"bytes"
	"testing"
)

// fuzzPermsgContext is an acceptor context for the t_invalid.c key, with
// an acceptor subkey when ask is set (deterministic, so failures replay).
func fuzzPermsgContext(t testing.TB, ask bool) *Context {
	t.Helper()
	p := contextParams{flags: FlagReplay | FlagSequence | FlagConf | FlagInteg,
		subkey: Key{Etype: 17, Value: []byte(mitKeyASCII)}}
	if ask {
		p.acceptorSubkey = Key{Etype: 18, Value: bytes.Repeat([]byte{0x42}, 32)}
	}
	c, err := newContext(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// permsgStatusOK reports whether err is nil or carries one of the statuses
// Unwrap and VerifyMIC may return for a hostile token.
func permsgStatusOK(err error) bool {
	if err == nil {
		return true
	}
	switch m := MajorOf(err); m {
	case StatusDefectiveToken, StatusBadSig, StatusDuplicateToken, StatusOldToken, StatusUnseqToken, StatusGapToken:
		return true
	}
	return false
}

// FuzzUnwrap feeds arbitrary tokens to Unwrap: it must never panic, must
// classify every failure, and returns no message with a routine error.
func FuzzUnwrap(f *testing.F) {
	f.Add(false, pmUnhex(f, mitWrapConf))
	f.Add(false, pmUnhex(f, mitWrapInt))
	f.Add(true, pmUnhex(f, mitWrapConf))
	f.Add(false, pmUnhex(f, mitMIC))
	f.Add(false, []byte{0x05, 0x04, 0x06, 0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, ask bool, tok []byte) {
		c := fuzzPermsgContext(t, ask)
		orig := bytes.Clone(tok)
		msg, _, err := c.Unwrap(tok)
		if !permsgStatusOK(err) {
			t.Fatalf("unexpected status: %v", err)
		}
		if MajorOf(err).Routine() != 0 && msg != nil {
			t.Fatalf("message returned with %v", err)
		}
		if len(msg) > len(tok) {
			t.Fatalf("message longer than the token")
		}
		if !bytes.Equal(tok, orig) {
			t.Fatal("Unwrap modified its input")
		}
	})
}

// FuzzVerifyMIC feeds arbitrary messages and tokens to VerifyMIC.
func FuzzVerifyMIC(f *testing.F) {
	f.Add(false, []byte(mitMessage), pmUnhex(f, mitMIC))
	f.Add(true, []byte(mitMessage), pmUnhex(f, mitMIC))
	f.Add(false, []byte{}, pmUnhex(f, mitMIC)[:16])
	f.Add(false, []byte(mitMessage), pmUnhex(f, mitWrapInt))
	f.Fuzz(func(t *testing.T, ask bool, msg, tok []byte) {
		c := fuzzPermsgContext(t, ask)
		if err := c.VerifyMIC(msg, tok); !permsgStatusOK(err) {
			t.Fatalf("unexpected status: %v", err)
		}
	})
}
