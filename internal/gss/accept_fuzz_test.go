package gss

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/keytab"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz for FuzzParseInitialToken, FuzzParseAuthChecksum and FuzzAccept")

// fuzzSvc is the service key of FuzzAccept. It is fixed so that the
// seed tokens stored in testdata stay valid.
func fuzzSvc() *svcKey {
	return &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18, key: bytes.Repeat([]byte{0x5a}, 32)}
}

// acceptFuzzSeeds returns valid tokens of several shapes for FuzzAccept.
func acceptFuzzSeeds(t testing.TB, kt *keytab.Keytab) [][]byte {
	svc := fuzzSvc()
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	var out [][]byte
	for _, cfg := range []InitiatorConfig{
		{Flags: FlagMutual | FlagReplay},
		{Flags: FlagReplay | FlagSequence},
		{Flags: FlagMutual, ChannelBindings: []byte("cb")},
		{Flags: FlagMutual | FlagDeleg, Delegation: makeKRBCred(t, tkt, sess, nil)},
		{Flags: FlagMutual | FlagDeleg, Delegation: makeKRBCred(t, tkt, sess, &sess)},
		{Flags: FlagMutual, UseMicrosoftOID: true},
	} {
		out = append(out, mustInitialToken(t, newTestInitiator(t, tkt, sess, cfg)))
	}
	return out
}

// FuzzAccept feeds arbitrary bytes to a live Acceptor: no input may panic
// (Accept's own recover is bypassed by checking the error's cause), and
// every outcome is either a context or a *Error with a major status and a
// Kerberos code.
func FuzzAccept(f *testing.F) {
	svc := fuzzSvc()
	kt := testKeytab(f, svc)
	for _, s := range acceptFuzzSeeds(f, kt) {
		f.Add(s)
	}
	f.Add([]byte{0x60, 0x00})
	a := newTestAcceptor(f, kt, func(c *AcceptorConfig) {
		c.AllowDelegation = true
		c.ReplayCache = NewReplayCache(1 << 22)
	})
	f.Fuzz(func(t *testing.T, b []byte) {
		ctx, out, err := a.Accept(b)
		if isSPNEGOToken(b) {
			// Accept negotiates SPNEGO tokens; FuzzSPNEGO covers them.
			checkSPNEGOOutcome(t, ctx, out, err)
			return
		}
		if err == nil {
			if ctx == nil {
				t.Fatal("nil context without error")
			}
			ctx.Delete()
			return
		}
		if ctx != nil {
			t.Fatal("context with an error")
		}
		var ge *Error
		if !errors.As(err, &ge) || ge.Major == 0 || ge.KRBCode == 0 {
			t.Fatalf("error %v lacks a major status or Kerberos code", err)
		}
		if errors.Is(err, errDecodePanic) && ge.Msg == "internal error processing the AP-REQ" {
			t.Fatalf("Accept panicked: %v", err)
		}
		if out != nil {
			if _, id, _, perr := parseInitialToken(out); perr != nil || id != tokIDKRBError {
				t.Fatalf("reply token %x is not a KRB-ERROR token", out)
			}
		}
	})
}

// TestWriteFuzzCorpus writes the seed corpora (go test -run
// TestWriteFuzzCorpus -update-corpus). Without the flag it checks that
// they are present, so a missing corpus does not go unnoticed.
func TestWriteFuzzCorpus(t *testing.T) {
	kt := testKeytab(t, fuzzSvc())
	corpora := map[string][][]byte{
		"FuzzAccept": acceptFuzzSeeds(t, kt),
		"FuzzParseInitialToken": {
			hexBytes(t, "601206092a864886f71201020201006e03010203"),
			hexBytes(t, "601006092a864882f71201020202006f01ff"),
			hexBytes(t, "608110"),
		},
		"FuzzParseAuthChecksum": {
			checksum(16, 0, 0x136),
			checksum(16, 0x11, FlagDeleg, 1, 0, 2, 0, 0x76, 0x00),
			checksum(16, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 9),
		},
	}
	// Each corpus file lists the fuzz function's arguments, one a line.
	files := map[string][]string{}
	for name, seeds := range corpora {
		for i, s := range seeds {
			files[filepath.Join(name, fmt.Sprintf("seed-%d", i))] = []string{fmt.Sprintf("[]byte(%q)", s)}
		}
	}
	apreqs, tickets, auths := derSamples(t)
	for which, set := range [][][]byte{apreqs, tickets, auths} {
		for i, s := range set {
			files[filepath.Join("FuzzDERDecoders", fmt.Sprintf("seed-%d-%d", which, i))] =
				[]string{fmt.Sprintf("byte(%q)", byte(which)), fmt.Sprintf("[]byte(%q)", s)}
		}
	}
	for name, args := range files {
		{
			dir := filepath.Join("testdata", "fuzz", filepath.Dir(name))
			path := filepath.Join("testdata", "fuzz", name)
			if !*updateCorpus {
				if _, err := os.Stat(path); err != nil {
					t.Errorf("seed corpus file missing: %v (run go test -run TestWriteFuzzCorpus -update-corpus)", err)
				}
				continue
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			data := "go test fuzz v1\n" + strings.Join(args, "\n") + "\n"
			if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
