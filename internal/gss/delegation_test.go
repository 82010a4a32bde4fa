package gss

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// TestDelegatedCredentialWiped: a delegated credential carries a TGT's
// session key in the clear once the acceptor has read it. No copy of that
// key may outlive the handshake when delegation is off, nor the context
// (Delete, or Export and then the imported context's Delete) when it is on.
//
// The test looks for the key in a heap dump (runtime/debug.WriteHeapDump),
// which holds every allocated object, live or garbage. The garbage
// collector is off from the handshake to the dump, so a buffer the
// acceptor dropped without wiping is still allocated and shows; a wiped
// one holds zeros. The test keeps only the complement of the key, so that
// the needle itself is not in the heap.
func TestDelegatedCredentialWiped(t *testing.T) {
	// One enctype of each MAC style: RFC 3962's covers the plaintext,
	// RFC 8009's the ciphertext.
	for _, etype := range []int32{18, 20} {
		for _, enc := range []string{"clear", "session", "subkey"} {
			for _, end := range []string{"off", "delete", "export"} {
				t.Run(fmt.Sprintf("etype%d/%s/%s", etype, enc, end), func(t *testing.T) {
					testDelegatedCredentialWiped(t, etype, enc, end)
				})
			}
		}
	}
}

func testDelegatedCredentialWiped(t *testing.T, etype int32, enc, end string) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: etype}
	a := newTestAcceptor(t, testKeytab(t, svc), func(c *AcceptorConfig) { c.AllowDelegation = end != "off" })
	sealKey, err := GenerateSealKey(1)
	if err != nil {
		t.Fatal(err)
	}
	defer sealKey.Zero()
	im := NewImporter(sealKey)
	im.SetNow(fixedNow(testNow))

	inv := make([]byte, 32)
	tok := delegatingToken(t, svc, enc, inv)
	runtime.GC() // the test's own copies are garbage by now
	if n := heapCopies(t, inv); n != 0 {
		t.Fatalf("%d copies of the TGT key in the heap before the handshake: the test leaves its own, so proves nothing", n)
	}

	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	ctx, _, err := a.Accept(tok)
	if err != nil {
		t.Fatal(err)
	}
	if end != "off" {
		// The detector sees the copy that is meant to be there.
		if n := heapCopies(t, inv); n == 0 {
			t.Fatal("the delegated credential is not in the heap while the context holds it: the detector is blind")
		}
		switch end {
		case "delete":
			ctx.Delete()
		case "export":
			token, err := ctx.ExportWith(sealKey, ExportOptions{Now: fixedNow(testNow)})
			if err != nil {
				t.Fatal(err)
			}
			imported, err := im.Import(token)
			if err != nil {
				t.Fatal(err)
			}
			if len(imported.DelegatedCredential()) == 0 {
				t.Fatal("the imported context has no delegated credential")
			}
			imported.Delete()
		}
	}
	if n := heapCopies(t, inv); n != 0 {
		t.Errorf("%d clear copies of the delegated TGT key remain in the heap", n)
	}
	ctx.Delete()
}

// delegatingToken returns an AP-REQ token delegating a KRB-CRED with a
// random TGT key, its enc-part clear ("clear", as MIT sends it), under the
// session key ("session") or under the authenticator subkey ("subkey"). It
// writes the complement of the TGT key into inv and wipes every copy of the
// key it made; what the encoders it calls left behind is garbage on
// return.
func delegatingToken(t *testing.T, svc *svcKey, enc string, inv []byte) []byte {
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	tgt := types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	if _, err := io.ReadFull(rand.Reader, tgt.KeyValue); err != nil {
		t.Fatal(err)
	}
	for i, b := range tgt.KeyValue {
		inv[i] = ^b
	}
	auth := defaultAuth(t, sess, FlagMutual)
	var encKey *types.EncryptionKey
	switch enc {
	case "session":
		encKey = &sess
	case "subkey":
		encKey = &auth.SubKey
	}
	cred := makeKRBCred(t, tkt, tgt, encKey)
	clear(tgt.KeyValue)
	ck, err := appendAuthChecksum(nil, [16]byte{}, FlagMutual, cred)
	if err != nil {
		t.Fatal(err)
	}
	clear(cred)
	auth.Cksum.Checksum = ck
	tok := makeAPReqToken(t, apReqSpec{tkt: tkt, sess: sess, auth: auth, mutual: true})
	clear(ck)
	return tok
}

// heapCopies dumps the heap and counts the places holding the bytes whose
// complement is inv.
func heapCopies(t *testing.T, inv []byte) int {
	t.Helper()
	name := filepath.Join(t.TempDir(), "heap")
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	debug.WriteHeapDump(f.Fd())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	defer os.Remove(name)

	// One buffer, wiped after use: a dump read into an ordinary slice and
	// dropped would be found, key and all, by the next dump.
	buf := make([]byte, 1<<20)
	defer clear(buf)
	needle := inv[0] ^ 0xff
	n, kept := 0, 0
	for {
		r, err := f.Read(buf[kept:])
		end := kept + r
		for i := 0; i+len(inv) <= end; {
			j := bytes.IndexByte(buf[i:end-len(inv)+1], needle)
			if j < 0 {
				break
			}
			i += j
			match := true
			for k := range inv {
				if buf[i+k] != ^inv[k] {
					match = false
					break
				}
			}
			if match {
				n++
			}
			i++
		}
		// Keep a tail shorter than the key for a match across reads.
		kept = min(len(inv)-1, end)
		copy(buf, buf[end-kept:end])
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestMarshalClearKRBCred: the hand-built KRB-CRED is byte for byte what
// gofork makes of krbCredDER, at every length-of-length boundary.
func TestMarshalClearKRBCred(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	testKeytab(t, svc) // gives svc its key
	tkt, _ := makeTicket(t, ticketSpec{svc: svc})
	cred := makeKRBCred(t, tkt, types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}, nil)
	var raw krbCredDER
	if _, err := asn1.UnmarshalWithParams(cred, &raw, "application,explicit,tag:22"); err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff - 0x200, 0xffff, 0x10000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			plain := bytes.Repeat([]byte{0x5a}, n)
			got, err := marshalClearKRBCred(raw.Tickets.FullBytes, plain)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != cap(got) {
				t.Errorf("buffer of %d bytes for %d: allocated at the wrong size", cap(got), len(got))
			}
			der, err := asn1.Marshal(krbCredDER{
				PVNO:    iana.PVNO,
				MsgType: msgtype.KRB_CRED,
				Tickets: asn1.RawValue{FullBytes: raw.Tickets.FullBytes},
				EncPart: types.EncryptedData{EType: 0, Cipher: plain},
			})
			if err != nil {
				t.Fatal(err)
			}
			if want := asn1tools.AddASNAppTag(der, asnAppTag.KRBCred); !bytes.Equal(got, want) {
				t.Fatalf("encoding differs from gofork's:\n got %x\nwant %x", got[:min(len(got), 64)], want[:min(len(want), 64)])
			}
			var kc messages.KRBCred
			if err := kc.Unmarshal(got); err != nil || kc.EncPart.EType != 0 || !bytes.Equal(kc.EncPart.Cipher, plain) || len(kc.Tickets) != 1 {
				t.Fatalf("gokrb5 reads it as %+v, %v", kc.EncPart.EType, err)
			}
		})
	}
}
