package gss

import (
	"bytes"
	"encoding/hex"
	"testing"

	krbcrypto "github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/crypto/common"
)

// CFX vectors from MIT krb5 src/tests/gssapi/t_invalid.c:
// aes128-cts-hmac-sha1-96 key "1234567887654321", no acceptor subkey,
// tokens sent by the initiator with sequence number 0, message "message".
const (
	mitKeyASCII = "1234567887654321"
	mitMessage  = "message"
	mitMIC      = "040400ffffffffff0000000000000000" + "97e9633f9d822b7467948ad0"
	mitWrapInt  = "050400ff000c0000" + "0000000000000000" + "6d657373616765" + "df57b95ea2b17331dbce6162"
	mitWrapConf = "050402ff00000000" + "0000000000000000" +
		"72bbd7cfdeb0f920e29a98a7a4e7c99b30d3fe61512e1b5688b78af5a9bf8f82b1ebcc88e63313bf524bc03b243f3ef5f1e064"
)

// mitContext builds one side of the t_invalid.c context: subkey = the
// aes128 key, no acceptor subkey, both sequence numbers 0.
func mitContext(t testing.TB, initiator bool, flags Flags) *Context {
	t.Helper()
	c, err := newContext(contextParams{
		initiator: initiator,
		flags:     flags | FlagConf | FlagInteg,
		subkey:    Key{Etype: 17, Value: []byte(mitKeyASCII)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// mitConfounder recovers the confounder of the sealed vector so that our
// Wrap can be checked byte for byte (gokrb5 exposes raw CTS decryption).
func mitConfounder(t testing.TB) []byte {
	t.Helper()
	e, err := krbcrypto.GetEtype(17)
	if err != nil {
		t.Fatal(err)
	}
	ke, err := e.DeriveKey([]byte(mitKeyASCII), common.GetUsageKe(usageInitiatorSeal))
	if err != nil {
		t.Fatal(err)
	}
	tok := pmUnhex(t, mitWrapConf)
	ct := tok[cfxHeaderLen : len(tok)-12]
	pt, err := e.DecryptData(ke, ct)
	if err != nil {
		t.Fatal(err)
	}
	// The plaintext is confounder || "message" || header copy.
	if want := append([]byte(mitMessage), tok[:cfxHeaderLen]...); !bytes.Equal(pt[16:], want) {
		t.Fatalf("vector plaintext %x, want confounder || %x", pt, want)
	}
	return pt[:16]
}

func pmUnhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMITVectorsProduce checks that an initiator context produces the
// exact t_invalid.c tokens.
func TestMITVectorsProduce(t *testing.T) {
	tests := []struct {
		name string
		make func(c *Context) ([]byte, error)
		want string
	}{
		{"mic", func(c *Context) ([]byte, error) { return c.GetMIC([]byte(mitMessage)) }, mitMIC},
		{"wrap integrity", func(c *Context) ([]byte, error) { return c.Wrap([]byte(mitMessage), false) }, mitWrapInt},
		{"wrap sealed", func(c *Context) ([]byte, error) { return c.Wrap([]byte(mitMessage), true) }, mitWrapConf},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mitContext(t, true, 0)
			c.keys.confRand = bytes.NewReader(mitConfounder(t))
			got, err := tt.make(c)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != tt.want {
				t.Fatalf("token\n got %x\nwant %s", got, tt.want)
			}
			if c.sendSeq != 1 {
				t.Fatalf("sendSeq = %d after one token, want 1", c.sendSeq)
			}
		})
	}
}

// TestMITVectorsConsume checks that an acceptor context accepts the
// t_invalid.c tokens.
func TestMITVectorsConsume(t *testing.T) {
	t.Run("mic", func(t *testing.T) {
		c := mitContext(t, false, FlagReplay|FlagSequence)
		if err := c.VerifyMIC([]byte(mitMessage), pmUnhex(t, mitMIC)); err != nil {
			t.Fatal(err)
		}
	})
	for _, tt := range []struct {
		name     string
		tok      string
		wantConf bool
	}{
		{"wrap integrity", mitWrapInt, false},
		{"wrap sealed", mitWrapConf, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := mitContext(t, false, FlagReplay|FlagSequence)
			msg, conf, err := c.Unwrap(pmUnhex(t, tt.tok))
			if err != nil {
				t.Fatal(err)
			}
			if string(msg) != mitMessage || conf != tt.wantConf {
				t.Fatalf("Unwrap = %q, %v", msg, conf)
			}
		})
	}
}
