// Package gsstest is an in-process Kerberos realm for the tests of packages
// built on gss: an in-memory keytab for one service and a service ticket
// for one client, forged with the service key, from which initiators make
// as many AP-REQs as a test needs. No KDC runs and nothing touches the
// network or the file system.
//
// Only tests import this package; no binary of the project links it. The
// in-package tests of gss cannot import it (it imports gss) and use
// package forge, which it is built on, instead.
package gsstest

import (
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/gss"
	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest/forge"
	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// The fixture's names, and how long its ticket is valid from New on.
const (
	realm          = "EXAMPLE.COM"
	service        = "host/server.example.com"
	client         = "alice"
	ticketLifetime = time.Hour
)

// Fixture is a realm without a KDC: an in-memory keytab holding a random
// key (kvno 1) for host/server.example.com@EXAMPLE.COM, and a ticket for
// alice@EXAMPLE.COM to that service forged with the key, valid for an hour
// from New on. The service key, the session key and the ticket's enctype
// are all of the enctype given to New.
type Fixture struct {
	// Realm is the realm of both the service and the client.
	Realm string
	// Service is the service principal's name, without the realm.
	Service string
	// Keytab holds the service key, as a keytab file would.
	Keytab *keytab.Keytab
	// CName is the ticket's client principal.
	CName types.PrincipalName
	// Ticket is the service ticket, opaque to the client as a KDC's is.
	Ticket messages.Ticket
	// SessionKey is the ticket's session key, which the KDC reply gives
	// the client.
	SessionKey types.EncryptionKey
}

// New returns a fixture whose keys are of etype, one of the four AES
// enctypes 17, 18, 19 and 20 (RFC 3962, RFC 8009); any other fails t.
func New(t testing.TB, etype int32) *Fixture {
	t.Helper()
	if !krb5crypto.Supported(etype) {
		t.Fatalf("gsstest: etype %d is not an AES enctype", etype)
	}
	now := time.Now().UTC().Truncate(time.Second)
	kt := keytab.New()
	// AddEntry only derives keys from passwords, and gives etype 20 a
	// 24-byte key where RFC 8009 takes 32: the entry gets a random key of
	// the right size instead.
	if err := kt.AddEntry(service, realm, "", now, 1, etype); err != nil {
		t.Fatalf("gsstest: keytab entry: %v", err)
	}
	svcKey := randomKey(t, etype)
	kt.Entries[0].Key = svcKey

	f := &Fixture{
		Realm:      realm,
		Service:    service,
		Keytab:     kt,
		CName:      types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, client),
		SessionKey: randomKey(t, etype),
	}
	tf := types.NewKrbFlags()
	types.SetFlag(&tf, flags.Initial)
	part := messages.EncTicketPart{
		Flags:     tf,
		Key:       f.SessionKey,
		CRealm:    realm,
		CName:     f.CName,
		AuthTime:  now,
		StartTime: now,
		EndTime:   now.Add(ticketLifetime),
	}
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_HST, service)
	var err error
	if f.Ticket, err = forge.Ticket(svcKey, 1, realm, sname, part); err != nil {
		t.Fatalf("gsstest: %v", err)
	}
	return f
}

// randomKey returns a fresh key of etype or fails t.
func randomKey(t testing.TB, etype int32) types.EncryptionKey {
	t.Helper()
	k, err := krb5crypto.RandomKey(etype, nil)
	if err != nil {
		t.Fatalf("gsstest: %v", err)
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: k}
}

// Acceptor returns an acceptor for the fixture's service: cfg with its
// Keytab set to the fixture's.
func (f *Fixture) Acceptor(t testing.TB, cfg gss.AcceptorConfig) *gss.Acceptor {
	t.Helper()
	cfg.Keytab = f.Keytab
	acc, err := gss.NewAcceptor(cfg)
	if err != nil {
		t.Fatalf("gsstest: %v", err)
	}
	return acc
}

// initiator returns a new initiator for the fixture's ticket requesting
// flags.
func (f *Fixture) initiator(t testing.TB, flags gss.Flags) *gss.Initiator {
	t.Helper()
	init, err := gss.NewInitiator(f.CName, f.Realm, f.Ticket, f.SessionKey, gss.InitiatorConfig{Flags: flags})
	if err != nil {
		t.Fatalf("gsstest: %v", err)
	}
	return init
}

// InitialToken returns a fresh initial context token (an AP-REQ with a new
// authenticator, RFC 4121 §4.1) for the fixture's ticket requesting flags.
func (f *Fixture) InitialToken(t testing.TB, flags gss.Flags) []byte {
	t.Helper()
	tok, err := f.initiator(t, flags).InitialToken()
	if err != nil {
		t.Fatalf("gsstest: %v", err)
	}
	return tok
}

// Establish establishes a context pair with acc, an acceptor of the
// fixture's service, requesting flags: the AP-REQ goes to acc and, with
// FlagMutual, its AP-REP back to the initiator. Both contexts are deleted
// when the test ends.
func (f *Fixture) Establish(t testing.TB, acc *gss.Acceptor, flags gss.Flags) (initiator, acceptor *gss.Context) {
	t.Helper()
	init := f.initiator(t, flags)
	tok, err := init.InitialToken()
	if err != nil {
		t.Fatalf("gsstest: %v", err)
	}
	acceptor, reply, err := acc.Accept(tok)
	if err != nil {
		t.Fatalf("gsstest: Accept: %v", err)
	}
	t.Cleanup(acceptor.Delete)
	if init.Established() {
		initiator, err = init.Context()
	} else {
		initiator, err = init.Complete(reply)
	}
	if err != nil {
		t.Fatalf("gsstest: initiator: %v", err)
	}
	t.Cleanup(initiator.Delete)
	return initiator, acceptor
}
