package gsstest

import (
	"bytes"
	"testing"
	"time"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// Every AES enctype gives keys of its size (32 bytes for etype 20, which
// gokrb5's own ticket maker gets wrong) and a ticket from which a context
// pair is established, with or without mutual authentication, that
// protects messages both ways.
func TestEstablish(t *testing.T) {
	tests := []struct {
		name  string
		etype int32
		flags gss.Flags
	}{
		{"aes128-cts-hmac-sha1-96", 17, gss.FlagMutual | gss.FlagReplay},
		{"aes256-cts-hmac-sha1-96", 18, gss.FlagMutual | gss.FlagReplay | gss.FlagSequence},
		{"aes256-cts-hmac-sha1-96 without mutual", 18, gss.FlagReplay | gss.FlagSequence},
		{"aes128-cts-hmac-sha256-128", 19, gss.FlagMutual},
		{"aes256-cts-hmac-sha384-192", 20, gss.FlagMutual | gss.FlagReplay},
		{"aes256-cts-hmac-sha384-192 without mutual", 20, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := New(t, tt.etype)
			size, err := krb5crypto.KeySize(tt.etype)
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Keytab.Entries) != 1 {
				t.Fatalf("%d keytab entries, want 1", len(f.Keytab.Entries))
			}
			if k := f.Keytab.Entries[0].Key; k.KeyType != tt.etype || len(k.KeyValue) != size {
				t.Errorf("service key: etype %d, %d bytes; want %d, %d", k.KeyType, len(k.KeyValue), tt.etype, size)
			}
			if k := f.SessionKey; k.KeyType != tt.etype || len(k.KeyValue) != size {
				t.Errorf("session key: etype %d, %d bytes; want %d, %d", k.KeyType, len(k.KeyValue), tt.etype, size)
			}
			if f.Ticket.EncPart.EType != tt.etype || f.Ticket.EncPart.KVNO != 1 {
				t.Errorf("ticket enc-part etype %d kvno %d", f.Ticket.EncPart.EType, f.Ticket.EncPart.KVNO)
			}

			ictx, actx := f.Establish(t, f.Acceptor(t, gss.AcceptorConfig{}), tt.flags)
			if got := actx.InitiatorName(); got != "alice@EXAMPLE.COM" {
				t.Errorf("acceptor sees initiator %q", got)
			}
			if got := ictx.AcceptorName(); got != "host/server.example.com@EXAMPLE.COM" {
				t.Errorf("initiator sees acceptor %q", got)
			}
			for _, c := range []*gss.Context{ictx, actx} {
				if c.Enctype() != tt.etype {
					t.Errorf("context enctype %d, want %d", c.Enctype(), tt.etype)
				}
				if c.Flags()&tt.flags != tt.flags {
					t.Errorf("context flags %v, want %v among them", c.Flags(), tt.flags)
				}
			}
			msg := []byte("through the fixture")
			tok, err := ictx.Wrap(msg, true)
			if err != nil {
				t.Fatal(err)
			}
			if got, conf, err := actx.Unwrap(tok); err != nil || !conf || !bytes.Equal(got, msg) {
				t.Fatalf("Unwrap: %q, conf %v, %v", got, conf, err)
			}
			mic, err := actx.GetMIC(msg)
			if err != nil {
				t.Fatal(err)
			}
			if err := ictx.VerifyMIC(msg, mic); err != nil {
				t.Fatalf("VerifyMIC: %v", err)
			}
		})
	}
}

// Every InitialToken carries a new authenticator: an acceptor with a
// replay cache takes each of them.
func TestInitialTokenFresh(t *testing.T) {
	f := New(t, 18)
	acc := f.Acceptor(t, gss.AcceptorConfig{ReplayCache: gss.NewReplayCache(16)})
	first := f.InitialToken(t, gss.FlagMutual|gss.FlagReplay)
	for i := range 3 {
		tok := f.InitialToken(t, gss.FlagMutual|gss.FlagReplay)
		if bytes.Equal(tok, first) {
			t.Fatal("InitialToken repeated itself")
		}
		if _, _, err := acc.Accept(tok); err != nil {
			t.Fatalf("token %d: %v", i, err)
		}
	}
	if _, _, err := acc.Accept(first); err != nil {
		t.Fatalf("first token: %v", err)
	}
	if _, _, err := acc.Accept(first); gss.KRBCodeOf(err) != 34 {
		t.Fatalf("replayed token: %v, want KRB_AP_ERR_REPEAT (34)", err)
	}
}

// Acceptor keeps the rest of the configuration it is given, and each
// fixture has a service key of its own.
func TestAcceptorConfig(t *testing.T) {
	f, other := New(t, 18), New(t, 18)
	tests := []struct {
		name string
		acc  *gss.Acceptor
		code int32
	}{
		{"this fixture", f.Acceptor(t, gss.AcceptorConfig{}), 0},
		{"clock past the ticket's end", f.Acceptor(t, gss.AcceptorConfig{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }}), 32},
		{"another fixture's key", other.Acceptor(t, gss.AcceptorConfig{}), 41},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := tt.acc.Accept(f.InitialToken(t, gss.FlagMutual))
			if tt.code == 0 && err != nil {
				t.Fatalf("Accept: %v", err)
			}
			if tt.code != 0 && gss.KRBCodeOf(err) != tt.code {
				t.Fatalf("Accept: %v, want KRB-ERROR %d", err, tt.code)
			}
		})
	}
}
