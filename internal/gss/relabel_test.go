package gss

import (
	"bytes"
	"slices"
	"testing"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/messages"
)

// A ticket's sname and realm are outside its encrypted part (RFC 4120
// §5.3): anyone on the path can rewrite them. The only thing that binds a
// ticket to its service is the key it decrypts with. These tests rewrite
// them in a captured AP-REQ and check what the acceptor makes of it.

// relabel returns tok, an AP-REQ context token, with its ticket's sname
// (and realm, when srealm is not empty) rewritten. The ticket's enc-part and
// the authenticator are carried over byte for byte, as an attacker without
// any key would have to.
func relabel(t testing.TB, tok []byte, sname []string, srealm string) []byte {
	t.Helper()
	mech, id, body, err := parseInitialToken(tok)
	if err != nil || id != tokIDAPReq {
		t.Fatalf("not an AP-REQ token (TOK_ID %04x): %v", id, err)
	}
	var req messages.APReq
	if !decodeAPReq(body, &req) {
		t.Fatal("AP-REQ does not decode")
	}
	req.Ticket.SName.NameString = slices.Clone(sname)
	if srealm != "" {
		req.Ticket.Realm = srealm
	}
	der, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	out := appendInitialToken(nil, mech, tokIDAPReq, der)

	// The rewrite touched the clear labels only.
	var got messages.APReq
	_, _, body2, err := parseInitialToken(out)
	if err != nil || !decodeAPReq(body2, &got) {
		t.Fatalf("relabelled AP-REQ does not decode: %v", err)
	}
	if !bytes.Equal(got.Ticket.EncPart.Cipher, req.Ticket.EncPart.Cipher) ||
		!bytes.Equal(got.EncryptedAuthenticator.Cipher, req.EncryptedAuthenticator.Cipher) ||
		!slices.Equal(got.Ticket.SName.NameString, sname) {
		t.Fatal("relabelling changed more than the ticket's sname and realm")
	}
	return out
}

// TestReplayRelabelledTicket: an AP-REQ that was accepted once is refused
// as a replay when presented again with its ticket relabelled to another
// principal of the keytab holding the same key (AD and msktutil keytabs
// give host/x and HTTP/x one key). The replay cache must not key on the
// unauthenticated sname or realm, or each relabelling is a fresh entry.
func TestReplayRelabelledTicket(t *testing.T) {
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(0xa0 + i)
	}
	host := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18, key: key}
	httpSvc := &svcKey{princ: "HTTP/server.example.com", realm: testRealm, kvno: 2, etype: 18, key: key}
	other := &svcKey{princ: testService, realm: "OTHER.ORG", kvno: 2, etype: 18, key: key}
	kt := testKeytab(t, host, httpSvc, other)
	tests := []struct {
		name   string
		sname  []string
		srealm string
	}{
		{"sname", []string{"HTTP", "server.example.com"}, ""},
		{"realm", []string{"host", "server.example.com"}, "OTHER.ORG"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, mutual := range []bool{true, false} {
				a := newTestAcceptor(t, kt, nil)
				tkt, sess := makeTicket(t, ticketSpec{svc: host})
				f := FlagReplay
				if mutual {
					f |= FlagMutual
				}
				tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: f}))
				ctx, _, err := a.Accept(tok)
				if err != nil {
					t.Fatalf("mutual=%v: original AP-REQ refused: %v", mutual, err)
				}
				ctx.Delete()
				ctx, _, err = a.Accept(relabel(t, tok, tc.sname, tc.srealm))
				if ctx != nil {
					t.Fatalf("mutual=%v: relabelled replay accepted, as %s", mutual, ctx.AcceptorName())
				}
				wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
			}
		})
	}
	// The order does not matter: relabelled first, original second.
	t.Run("relabelled first", func(t *testing.T) {
		a := newTestAcceptor(t, kt, nil)
		tkt, sess := makeTicket(t, ticketSpec{svc: host})
		tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
		ctx, _, err := a.Accept(relabel(t, tok, []string{"HTTP", "server.example.com"}, ""))
		if err != nil {
			t.Fatalf("relabelled AP-REQ refused: %v", err)
		}
		ctx.Delete()
		_, _, err = a.Accept(tok)
		wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
	})
}

// TestServicesRelabelledTicket checks what the Services allow-list
// (AcceptorConfig.Services) is worth against a relabelled ticket. It is
// matched against the ticket's sname, which nothing authenticates but the
// key: with a key of its own per principal it holds (the relabelled ticket
// does not decrypt), with a key shared between an allowed and a disallowed
// principal it does not (the ticket decrypts whatever its label says).
func TestServicesRelabelledTicket(t *testing.T) {
	allowed := []string{"HTTP/server.example.com"}
	httpName := []string{"HTTP", "server.example.com"}

	t.Run("distinct keys", func(t *testing.T) {
		host := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18}
		httpSvc := &svcKey{princ: "HTTP/server.example.com", realm: testRealm, kvno: 2, etype: 18}
		a := newTestAcceptor(t, testKeytab(t, host, httpSvc), func(c *AcceptorConfig) { c.Services = allowed })
		tkt, sess := makeTicket(t, ticketSpec{svc: host})
		tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
		_, _, err := a.Accept(tok)
		wantErr(t, err, StatusUnauthorized, errorcode.KRB_AP_ERR_NOT_US)
		// Relabelled to the allowed principal, the ticket is tried with
		// that principal's key, which is not the one it was sealed with.
		ctx, _, err := a.Accept(relabel(t, tok, httpName, ""))
		if ctx != nil {
			t.Fatalf("ticket for %s relabelled to an allowed service accepted as %s", testService, ctx.AcceptorName())
		}
		wantErr(t, err, StatusDefectiveCredential, errorcode.KRB_AP_ERR_MODIFIED)
	})

	// The documented limit (AcceptorConfig.Services, SECURITY.md): when
	// principals share a key, the allow-list only routes. If this starts
	// failing because the acceptor learnt to tell them apart, update both.
	t.Run("shared key", func(t *testing.T) {
		key := make([]byte, 32)
		for i := range key {
			key[i] = byte(0x50 + i)
		}
		host := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18, key: key}
		httpSvc := &svcKey{princ: "HTTP/server.example.com", realm: testRealm, kvno: 2, etype: 18, key: key}
		a := newTestAcceptor(t, testKeytab(t, host, httpSvc), func(c *AcceptorConfig) { c.Services = allowed })
		tkt, sess := makeTicket(t, ticketSpec{svc: host})
		tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
		_, _, err := a.Accept(tok)
		wantErr(t, err, StatusUnauthorized, errorcode.KRB_AP_ERR_NOT_US)
		ctx, _, err := a.Accept(relabel(t, tok, httpName, ""))
		if err != nil {
			t.Fatalf("relabelled ticket refused (%v): the allow-list now separates principals sharing a key; update the AcceptorConfig.Services doc and SECURITY.md", err)
		}
		if got, want := ctx.AcceptorName(), "HTTP/server.example.com@"+testRealm; got != want {
			t.Errorf("AcceptorName %q, want the relabelled %q", got, want)
		}
		ctx.Delete()
	})
}
