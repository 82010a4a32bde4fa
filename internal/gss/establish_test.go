package gss

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// TestEstablishRoundTrip runs initiator ⇄ acceptor for every AES enctype,
// with and without mutual authentication, and checks that both ends agree
// on keys, sequence numbers, names and flags.
func TestEstablishRoundTrip(t *testing.T) {
	for _, etype := range []int32{17, 18, 19, 20} {
		for _, mutual := range []bool{true, false} {
			t.Run(fmt.Sprintf("etype%d/mutual=%v", etype, mutual), func(t *testing.T) {
				svc := &svcKey{princ: testService, realm: testRealm, kvno: 3, etype: etype}
				a := newTestAcceptor(t, testKeytab(t, svc), nil)
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				req := FlagReplay
				if mutual {
					req |= FlagMutual
				}
				end := testNow.Add(10 * time.Hour).Truncate(time.Second)
				in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: req, TicketEndTime: end})
				tok, err := in.InitialToken()
				if err != nil {
					t.Fatal(err)
				}
				if got := in.Established(); got == mutual {
					t.Errorf("Established after InitialToken = %v, want %v", got, !mutual)
				}
				actx, out, err := a.Accept(tok)
				if err != nil {
					t.Fatalf("Accept: %v", err)
				}
				var ictx *Context
				if mutual {
					if out == nil {
						t.Fatal("no AP-REP for a mutual request")
					}
					if _, err := in.Context(); err == nil {
						t.Error("Context before Complete succeeded")
					}
					if ictx, err = in.Complete(out); err != nil {
						t.Fatalf("Complete: %v", err)
					}
				} else {
					if out != nil {
						t.Fatalf("reply token %x without mutual", out)
					}
					if ictx, err = in.Context(); err != nil {
						t.Fatal(err)
					}
				}
				if !in.Established() {
					t.Error("initiator not established")
				}

				if !bytes.Equal(actx.sessionKey.Value, sess.KeyValue) || !bytes.Equal(ictx.sessionKey.Value, sess.KeyValue) {
					t.Error("session keys differ")
				}
				if !bytes.Equal(actx.subkey.Value, ictx.subkey.Value) || actx.subkey.Etype != etype {
					t.Errorf("initiator subkeys differ or wrong etype %d", actx.subkey.Etype)
				}
				wantLen, _ := krb5crypto.KeySize(etype)
				if mutual {
					if len(actx.acceptorSubkey.Value) != wantLen || actx.acceptorSubkey.Etype != etype {
						t.Errorf("acceptor subkey %v, want etype %d of %d bytes", actx.acceptorSubkey, etype, wantLen)
					}
					if !bytes.Equal(actx.acceptorSubkey.Value, ictx.acceptorSubkey.Value) {
						t.Error("acceptor subkey not adopted by the initiator")
					}
					if bytes.Equal(actx.acceptorSubkey.Value, actx.subkey.Value) {
						t.Error("acceptor subkey reuses the initiator subkey")
					}
					if actx.sendSeq == 0 || actx.sendSeq >= 1<<30 {
						t.Errorf("acceptor seq %d not a non-zero 30-bit number", actx.sendSeq)
					}
				} else {
					if !actx.acceptorSubkey.IsZero() || !ictx.acceptorSubkey.IsZero() {
						t.Error("acceptor subkey without mutual")
					}
					if actx.sendSeq != ictx.sendSeq {
						t.Errorf("acceptor send seq %d, want the initiator's %d", actx.sendSeq, ictx.sendSeq)
					}
				}
				if ictx.sendSeq == 0 || ictx.sendSeq >= 1<<30 {
					t.Errorf("initiator seq %d not a non-zero 30-bit number", ictx.sendSeq)
				}
				wantFlags := FlagReplay | FlagConf | FlagInteg | FlagTrans
				if mutual {
					wantFlags |= FlagMutual | FlagProtReady
				}
				if actx.Flags() != wantFlags {
					t.Errorf("acceptor flags %v, want %v", actx.Flags(), wantFlags)
				}
				if actx.InitiatorName() != "alice@EXAMPLE.COM" || actx.AcceptorName() != "host/server.example.com@EXAMPLE.COM" {
					t.Errorf("acceptor names %q, %q", actx.InitiatorName(), actx.AcceptorName())
				}
				if ictx.PeerName() != actx.AcceptorName() || actx.PeerName() != ictx.InitiatorName() {
					t.Errorf("peer names %q, %q", ictx.PeerName(), actx.PeerName())
				}
				if actx.IsInitiator() || !ictx.IsInitiator() {
					t.Error("initiator/acceptor roles swapped")
				}
				if want := end.Add(DefaultClockSkew); !actx.Expiry().Equal(want) {
					t.Errorf("acceptor expiry %v, want ticket end + skew %v", actx.Expiry(), want)
				}
				if !ictx.Expiry().Equal(end) {
					t.Errorf("initiator expiry %v, want %v", ictx.Expiry(), end)
				}
				if actx.MicrosoftOID() || actx.Enctype() != etype {
					t.Errorf("MicrosoftOID %v enctype %d", actx.MicrosoftOID(), actx.Enctype())
				}
				if actx.HaveAcceptorSubkey() != mutual || ictx.HaveAcceptorSubkey() != mutual {
					t.Errorf("HaveAcceptorSubkey %v/%v, want %v", actx.HaveAcceptorSubkey(), ictx.HaveAcceptorSubkey(), mutual)
				}

				// A message each way through the established contexts, as
				// gss-sample does: sealed wrap from the initiator, MIC back.
				for i := range 3 {
					msg := []byte(fmt.Sprintf("message %d", i))
					w, err := ictx.Wrap(msg, true)
					if err != nil {
						t.Fatal(err)
					}
					got, conf, err := actx.Unwrap(w)
					if err != nil || !conf || !bytes.Equal(got, msg) {
						t.Fatalf("acceptor Unwrap: %q conf=%v err=%v", got, conf, err)
					}
					mic, err := actx.GetMIC(got)
					if err != nil {
						t.Fatal(err)
					}
					if err := ictx.VerifyMIC(msg, mic); err != nil {
						t.Fatalf("initiator VerifyMIC: %v", err)
					}
					w, err = actx.Wrap(msg, false)
					if err != nil {
						t.Fatal(err)
					}
					if got, conf, err := ictx.Unwrap(w); err != nil || conf || !bytes.Equal(got, msg) {
						t.Fatalf("initiator Unwrap: %q conf=%v err=%v", got, conf, err)
					}
				}
				// A replayed wrap token is caught by the receive window
				// started at the initiator's sequence number.
				w, err := ictx.Wrap([]byte("once"), true)
				if err != nil {
					t.Fatal(err)
				}
				if _, _, err := actx.Unwrap(w); err != nil {
					t.Fatal(err)
				}
				if _, _, err := actx.Unwrap(w); !errors.Is(err, StatusDuplicateToken) {
					t.Errorf("replayed wrap token: %v, want GSS_S_DUPLICATE_TOKEN", err)
				}
			})
		}
	}
}

// TestAcceptRetFlags checks ret_flags against MIT's (src/lib/gssapi/krb5/accept_sec_context.c).
func TestAcceptRetFlags(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	kt := testKeytab(t, svc)
	tests := []struct {
		name string
		req  Flags
		want Flags
	}{
		{"gss-client default", FlagMutual | FlagReplay, 0x1b6},
		{"nomutual", FlagReplay, 0x134},
		{"seq", FlagMutual | FlagReplay | FlagSequence, 0x1be},
		{"seq nomutual", FlagReplay | FlagSequence, 0x13c},
		{"nothing", 0, FlagConf | FlagInteg | FlagTrans},
		{"deleg without credential", FlagDeleg | FlagMutual, 0x1b2},
		{"identify", FlagIdentify, FlagIdentify | FlagConf | FlagInteg | FlagTrans},
		{"anon is the acceptor's to decide", FlagAnon | FlagReplay, 0x134},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, nil)
			tkt, sess := makeTicket(t, ticketSpec{svc: svc})
			in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: tc.req})
			tok, err := in.InitialToken()
			if err != nil {
				t.Fatal(err)
			}
			ctx, out, err := a.Accept(tok)
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Flags() != tc.want {
				t.Errorf("ret_flags %#x (%v), want %#x (%v)", uint32(ctx.Flags()), ctx.Flags(), uint32(tc.want), tc.want)
			}
			if (out != nil) != (tc.want&FlagMutual != 0) {
				t.Errorf("reply token present = %v with flags %v", out != nil, tc.want)
			}
		})
	}
}

// TestAcceptMutualFromAPOptions: the AP option alone (checksum without
// MUTUAL) also yields an AP-REP, as in MIT.
func TestAcceptMutualFromAPOptions(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	a := newTestAcceptor(t, testKeytab(t, svc), nil)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	tok := makeAPReqToken(t, apReqSpec{tkt: tkt, sess: sess, auth: defaultAuth(t, sess, FlagConf|FlagInteg), mutual: true})
	ctx, out, err := a.Accept(tok)
	if err != nil {
		t.Fatal(err)
	}
	if out == nil || ctx.Flags()&(FlagMutual|FlagProtReady) != FlagMutual|FlagProtReady {
		t.Errorf("reply %v flags %v: want an AP-REP and MUTUAL|PROT_READY", out != nil, ctx.Flags())
	}
	if !ctx.HaveAcceptorSubkey() {
		t.Error("no acceptor subkey")
	}
}

// TestAcceptMicrosoftOID: the reply uses the OID the client used.
func TestAcceptMicrosoftOID(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 17}
	a := newTestAcceptor(t, testKeytab(t, svc), nil)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual, UseMicrosoftOID: true})
	tok, err := in.InitialToken()
	if err != nil {
		t.Fatal(err)
	}
	ctx, out, err := a.Accept(tok)
	if err != nil {
		t.Fatal(err)
	}
	mech, id, _, err := parseInitialToken(out)
	if err != nil || !bytes.Equal(mech, oidKRB5MS) || id != tokIDAPRep {
		t.Fatalf("reply OID %s TOK_ID %04x err %v; want the Microsoft OID and 0200", oidString(mech), id, err)
	}
	if !ctx.MicrosoftOID() {
		t.Error("context does not record the Microsoft OID")
	}
	ictx, err := in.Complete(out)
	if err != nil {
		t.Fatal(err)
	}
	if !ictx.MicrosoftOID() {
		t.Error("initiator context does not record the Microsoft OID")
	}
}

// TestAcceptSameMicrosecond: two different authenticators from one client
// with the same (ctime, cusec), as separate processes sharing a ticket can
// make them, are both accepted; only a byte-for-byte copy is a replay.
func TestAcceptSameMicrosecond(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	a := newTestAcceptor(t, testKeytab(t, svc), nil)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	auth := defaultAuth(t, sess, FlagMutual|FlagReplay)
	first := makeAPReqToken(t, apReqSpec{tkt: tkt, sess: sess, auth: auth, mutual: true})
	// Same authenticator fields, encrypted again: a fresh confounder.
	second := makeAPReqToken(t, apReqSpec{tkt: tkt, sess: sess, auth: auth, mutual: true})
	if bytes.Equal(first, second) {
		t.Fatal("two encryptions produced the same token")
	}
	for i, tok := range [][]byte{first, second} {
		if _, _, err := a.Accept(tok); err != nil {
			t.Fatalf("authenticator %d with the shared microsecond refused: %v", i+1, err)
		}
	}
	_, _, err := a.Accept(second)
	wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
}

// TestAcceptReplay: the second presentation of an AP-REQ is a replay, with
// a KRB-ERROR token carrying code 34 when mutual was requested.
func TestAcceptReplay(t *testing.T) {
	for _, mutual := range []bool{true, false} {
		t.Run(fmt.Sprintf("mutual=%v", mutual), func(t *testing.T) {
			svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
			a := newTestAcceptor(t, testKeytab(t, svc), nil)
			tkt, sess := makeTicket(t, ticketSpec{svc: svc})
			f := FlagReplay
			if mutual {
				f |= FlagMutual
			}
			in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: f})
			tok, err := in.InitialToken()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := a.Accept(tok); err != nil {
				t.Fatal(err)
			}
			ctx, out, err := a.Accept(tok)
			if ctx != nil {
				t.Fatal("replay accepted")
			}
			wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
			if !strings.Contains(err.Error(), "alice@EXAMPLE.COM") {
				t.Errorf("message %q does not name the client", err)
			}
			if !mutual {
				if out != nil {
					t.Error("error token sent to an initiator that expects no reply")
				}
				return
			}
			if code := errorTokenCode(t, out, oidKRB5); code != errorcode.KRB_AP_ERR_REPEAT {
				t.Errorf("KRB-ERROR code %d, want 34", code)
			}
			// The initiator's view of the error token.
			in2 := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual})
			if _, err := in2.InitialToken(); err != nil {
				t.Fatal(err)
			}
			_, err = in2.Complete(out)
			wantErr(t, err, StatusDuplicateToken, errorcode.KRB_AP_ERR_REPEAT)
			if _, err2 := in2.Context(); err2 == nil {
				t.Error("failed initiator returned a context")
			}
		})
	}
}

// TestAcceptFailures covers every refusal with its major status, Kerberos
// code and KRB-ERROR token.
func TestAcceptFailures(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 3, etype: 18}
	other := &svcKey{princ: "HTTP/www.example.com", realm: testRealm, kvno: 1, etype: 18}
	rc4 := &svcKey{princ: testService, realm: testRealm, kvno: 3, etype: 23}
	kt := testKeytab(t, svc, other, rc4)
	policy := func(c *AcceptorConfig) { c.Services = []string{testService + "@" + testRealm} }

	tests := []struct {
		name  string
		token func(t *testing.T) []byte
		cfg   func(*AcceptorConfig)
		major Major
		code  int32
		// errToken: whether a KRB-ERROR token must come back.
		errToken bool
		msg      string // substring of the error message
	}{
		{
			name: "skewed authenticator",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual, Now: fixedNow(testNow.Add(-412 * time.Second))})
				return mustInitialToken(t, in)
			},
			major: StatusContextExpired, code: errorcode.KRB_AP_ERR_SKEW, errToken: true,
			msg: "clock skew 412s exceeds 300s",
		},
		{
			name: "skew in the future",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual, Now: fixedNow(testNow.Add(time.Hour))})
				return mustInitialToken(t, in)
			},
			major: StatusContextExpired, code: errorcode.KRB_AP_ERR_SKEW, errToken: true,
			msg: "clock skew 3600s exceeds 300s",
		},
		{
			name: "expired ticket",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc, start: testNow.Add(-10 * time.Hour), end: testNow.Add(-6 * time.Minute)})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusCredentialsExpired, code: errorcode.KRB_AP_ERR_TKT_EXPIRED, errToken: true,
			msg: "expired at",
		},
		{
			name: "not yet valid ticket",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc, start: testNow.Add(6 * time.Minute)})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_TKT_NYV, errToken: true,
			msg: "not valid before",
		},
		{
			name: "invalid ticket flag",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc, flags: []int{flags.Invalid}})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_TKT_NYV, errToken: true,
			msg: "INVALID",
		},
		{
			name: "principal outside Services",
			cfg:  policy,
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: other})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusUnauthorized, code: errorcode.KRB_AP_ERR_NOT_US, errToken: true,
			msg: "HTTP/www.example.com@EXAMPLE.COM, which is not an allowed service",
		},
		{
			name: "principal not in keytab",
			token: func(t *testing.T) []byte {
				ghost := &svcKey{princ: "ldap/x.example.com", realm: testRealm, kvno: 1, etype: 18, key: make([]byte, 32)}
				tkt, sess := makeTicket(t, ticketSpec{svc: ghost})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusNoCred, code: errorcode.KRB_AP_ERR_NOKEY, errToken: true,
			msg: "ldap/x.example.com@EXAMPLE.COM, which has no key",
		},
		{
			name: "kvno not in keytab",
			token: func(t *testing.T) []byte {
				old := *svc
				old.kvno = 2
				tkt, sess := makeTicket(t, ticketSpec{svc: &old})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusNoCred, code: errorcode.KRB_AP_ERR_BADKEYVER, errToken: true,
			msg: "no key for host/server.example.com@EXAMPLE.COM kvno 2 etype 18 in keytab (have kvno 3 etype 18,23)",
		},
		{
			name: "etype not in keytab",
			token: func(t *testing.T) []byte {
				e17 := *svc
				e17.etype, e17.key = 17, make([]byte, 16)
				tkt, sess := makeTicket(t, ticketSpec{svc: &e17})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusNoCred, code: errorcode.KRB_AP_ERR_NOKEY, errToken: true,
			msg: "kvno 3 etype 17 in keytab (have kvno 3 etype 18,23)",
		},
		{
			name: "wrong service key",
			token: func(t *testing.T) []byte {
				wrong := *svc
				wrong.key = bytes.Repeat([]byte{7}, 32)
				tkt, sess := makeTicket(t, ticketSpec{svc: &wrong})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_MODIFIED, errToken: true,
			msg: "does not decrypt with keytab kvno 3 etype 18",
		},
		{
			name: "tampered ticket",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				tkt.EncPart.Cipher[20] ^= 1
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_MODIFIED, errToken: true,
		},
		{
			name: "tampered authenticator",
			token: func(t *testing.T) []byte {
				wrong := types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{9}, 32)}
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.authKey = &wrong })
			},
			major: StatusBadSig, code: errorcode.KRB_AP_ERR_BAD_INTEGRITY, errToken: true,
			msg: "authenticator of alice@EXAMPLE.COM does not decrypt",
		},
		{
			name: "non-AES ticket",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: rc4})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusUnavailable, code: errorcode.KDC_ERR_ETYPE_NOSUPP, errToken: true,
			msg: "etype 23",
		},
		{
			name: "non-AES session key",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc, sessEtype: 23, sessKey: make([]byte, 16)})
				aes := types.EncryptionKey{KeyType: 17, KeyValue: make([]byte, 16)}
				return makeAPReqToken(t, apReqSpec{tkt: tkt, sess: sess, authKey: &aes, auth: defaultAuth(t, aes, FlagMutual), mutual: true})
			},
			major: StatusUnavailable, code: errorcode.KDC_ERR_ETYPE_NOSUPP, errToken: true,
			msg: "ticket session key has enctype 23",
		},
		{
			name: "non-AES subkey",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.auth.SubKey = types.EncryptionKey{KeyType: 23, KeyValue: make([]byte, 16)} })
			},
			major: StatusUnavailable, code: errorcode.KDC_ERR_ETYPE_NOSUPP, errToken: true,
			msg: "authenticator subkey has enctype 23",
		},
		{
			name: "etype 20 subkey of 24 bytes",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.auth.SubKey = types.EncryptionKey{KeyType: 20, KeyValue: make([]byte, 24)} })
			},
			major: StatusDefectiveToken, code: errorcode.KRB_ERR_GENERIC, errToken: true,
			msg: "is 24 bytes, want 32",
		},
		{
			name: "crealm mismatch",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.auth.CRealm = "EVIL.ORG" })
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_BADMATCH, errToken: true,
			msg: "authenticator names alice@EVIL.ORG but the ticket was issued to alice@EXAMPLE.COM",
		},
		{
			name: "cname mismatch",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.auth.CName.NameString = []string{"bob"} })
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_BADMATCH, errToken: true,
		},
		{
			name: "no checksum",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, 0, func(s *apReqSpec) { s.auth.Cksum = types.Checksum{} })
			},
			major: StatusDefectiveToken, code: errorcode.KRB_AP_ERR_INAPP_CKSUM, errToken: true,
			msg: "carries no checksum",
		},
		{
			name: "ordinary checksum",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, 0, func(s *apReqSpec) {
					s.auth.Cksum = types.Checksum{CksumType: 16, Checksum: make([]byte, 12)}
					s.mutual = false
				})
			},
			major: StatusDefectiveToken, code: errorcode.KRB_AP_ERR_INAPP_CKSUM, errToken: false,
			msg: "checksum type 16",
		},
		{
			name: "short checksum",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.auth.Cksum.Checksum = s.auth.Cksum.Checksum[:23] })
			},
			major: StatusBadBindings, code: errorcode.KRB_AP_ERR_INAPP_CKSUM, errToken: true,
		},
		{
			name: "DCE style",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual|FlagDCEStyle, nil)
			},
			major: StatusUnavailable, code: errorcode.KDC_ERR_BADOPTION, errToken: true,
			msg: "DCE-style",
		},
		{
			name: "user to user",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.apOptions = []int{flags.APOptionUseSessionKey} })
			},
			major: StatusUnavailable, code: errorcode.KDC_ERR_BADOPTION, errToken: true,
		},
		{
			name: "wrong TOK_ID",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.tokID = tokIDAPRep })
			},
			major: StatusDefectiveToken, code: errorcode.KRB_AP_ERR_MSG_TYPE,
		},
		{
			name: "pvno 4",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.pvno = 4 })
			},
			major: StatusDefectiveToken, code: errorcode.KRB_AP_ERR_BADVERSION,
		},
		{
			name: "other mechanism",
			token: func(t *testing.T) []byte {
				return alteredAPReq(t, svc, FlagMutual, func(s *apReqSpec) { s.mech = []byte{0x2b, 0x06, 0x01, 0x05, 0x02, 0x05} }) // IAKERB, 1.3.6.1.5.2.5
			},
			major: StatusBadMech, code: errorcode.KRB_ERR_GENERIC,
		},
		{
			name:  "garbage",
			token: func(t *testing.T) []byte { return []byte("GET / HTTP/1.1\r\n") },
			major: StatusDefectiveToken, code: errorcode.KRB_ERR_GENERIC,
		},
		{
			name: "framed garbage",
			token: func(t *testing.T) []byte {
				return appendInitialToken(nil, oidKRB5, tokIDAPReq, []byte{0x6e, 0x03, 0x01, 0x02, 0x03})
			},
			major: StatusDefectiveToken, code: errorcode.KRB_ERR_GENERIC,
		},
		{
			name: "missing channel bindings",
			cfg:  func(c *AcceptorConfig) { c.ChannelBindings = []byte("tls-server-end-point:abc") },
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
			},
			major: StatusBadBindings, code: errorcode.KRB_ERR_GENERIC, errToken: true,
			msg: "sent no channel bindings",
		},
		{
			name: "different channel bindings",
			cfg:  func(c *AcceptorConfig) { c.ChannelBindings = []byte("tls-server-end-point:abc") },
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual, ChannelBindings: []byte("tls-server-end-point:abd")}))
			},
			major: StatusBadBindings, code: errorcode.KRB_ERR_GENERIC, errToken: true,
			msg: "do not match",
		},
		{
			name: "undecryptable delegation",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				wrong := types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{5}, 32)}
				cred := makeKRBCred(t, tkt, sess, &wrong)
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagDeleg, Delegation: cred}))
			},
			major: StatusDefectiveCredential, code: errorcode.KRB_AP_ERR_MODIFIED, errToken: true,
		},
		{
			name: "malformed delegation",
			token: func(t *testing.T) []byte {
				tkt, sess := makeTicket(t, ticketSpec{svc: svc})
				return mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagDeleg, Delegation: []byte{0x76, 0x01}}))
			},
			major: StatusDefectiveToken, code: errorcode.KRB_ERR_GENERIC, errToken: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, tc.cfg)
			tok := tc.token(t)
			ctx, out, err := a.Accept(tok)
			if ctx != nil {
				t.Fatal("context established")
			}
			wantErr(t, err, tc.major, tc.code)
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("message %q does not contain %q", err, tc.msg)
			}
			if !tc.errToken {
				if out != nil {
					t.Errorf("unexpected reply token %x", out)
				}
			} else {
				if out == nil {
					t.Fatal("no KRB-ERROR token for a mutual request")
				}
				if code := errorTokenCode(t, out, oidKRB5); code != tc.code {
					t.Errorf("KRB-ERROR code %d, want %d", code, tc.code)
				}
			}
			if a.rc.(*ReplayCache).Len() != 0 {
				t.Errorf("a refused handshake left %d replay cache entries", a.rc.(*ReplayCache).Len())
			}
		})
	}
}

// alteredAPReq returns the AP-REQ token of a fresh ticket for svc with a
// valid authenticator for flags f, mutual authentication required, after
// alter (if not nil) has broken what a case is about.
func alteredAPReq(t testing.TB, svc *svcKey, f Flags, alter func(*apReqSpec)) []byte {
	t.Helper()
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	s := apReqSpec{tkt: tkt, sess: sess, auth: defaultAuth(t, sess, f), mutual: true}
	if alter != nil {
		alter(&s)
	}
	return makeAPReqToken(t, s)
}

func mustInitialToken(t testing.TB, in *Initiator) []byte {
	t.Helper()
	tok, err := in.InitialToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestAcceptServices checks the allowed-principal policy, including
// realm-less entries, and NewAcceptor's validation.
func TestAcceptServices(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	svc2 := &svcKey{princ: testService, realm: "OTHER.ORG", kvno: 1, etype: 17}
	kt := testKeytab(t, svc, svc2)
	tests := []struct {
		name     string
		services []string
		ok1, ok2 bool
	}{
		{"any", nil, true, true},
		{"realm-less", []string{testService}, true, true},
		{"one realm", []string{testService + "@OTHER.ORG"}, false, true},
		{"both", []string{testService + "@OTHER.ORG", testService + "@" + testRealm}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.Services = tc.services })
			for i, s := range []*svcKey{svc, svc2} {
				tkt, sess := makeTicket(t, ticketSpec{svc: s})
				_, _, err := a.Accept(mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{})))
				want := []bool{tc.ok1, tc.ok2}[i]
				if (err == nil) != want {
					t.Errorf("ticket for %s@%s: err %v, want success %v", s.princ, s.realm, err, want)
				}
				if err != nil {
					wantErr(t, err, StatusUnauthorized, errorcode.KRB_AP_ERR_NOT_US)
				}
			}
		})
	}

	bad := []struct {
		name string
		cfg  AcceptorConfig
		msg  string
	}{
		{"no keytab", AcceptorConfig{}, "needs a keytab"},
		{"negative skew", AcceptorConfig{Keytab: kt, ClockSkew: -time.Second}, "negative clock skew"},
		{"unknown service", AcceptorConfig{Keytab: kt, Services: []string{"imap/x"}}, `service "imap/x" has no AES key`},
		{"empty realm", AcceptorConfig{Keytab: kt, Services: []string{"imap/x@"}}, "empty realm"},
		{"empty component", AcceptorConfig{Keytab: kt, Services: []string{"imap//x"}}, "empty name component"},
		{"rc4 only", AcceptorConfig{Keytab: testKeytab(t, &svcKey{princ: "a/b", realm: testRealm, kvno: 1, etype: 23})}, "no AES key"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAcceptor(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.HasPrefix(err.Error(), "gss: ") {
				t.Errorf("NewAcceptor error %v, want one containing %q", err, tc.msg)
			}
		})
	}
}

// TestAcceptKVNOSelection: without a kvno the newest key version is used;
// with one, that version.
func TestAcceptKVNOSelection(t *testing.T) {
	k2 := &svcKey{princ: testService, realm: testRealm, kvno: 2, etype: 18}
	k3 := &svcKey{princ: testService, realm: testRealm, kvno: 3, etype: 18}
	a := newTestAcceptor(t, testKeytab(t, k2, k3), nil)
	tests := []struct {
		name   string
		svc    *svcKey
		noKVNO bool
		ok     bool
	}{
		{"kvno 2", k2, false, true},
		{"kvno 3", k3, false, true},
		{"absent kvno, newest key", k3, true, true},
		{"absent kvno, old key", k2, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tkt, sess := makeTicket(t, ticketSpec{svc: tc.svc, noKVNO: tc.noKVNO})
			_, _, err := a.Accept(mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{})))
			if (err == nil) != tc.ok {
				t.Errorf("err %v, want success %v", err, tc.ok)
			}
		})
	}
}

// TestChannelBindings: matching bindings give CHANNEL_BOUND; an acceptor
// without bindings ignores the initiator's.
func TestChannelBindings(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 19}
	kt := testKeytab(t, svc)
	cb := []byte("tls-server-end-point:0123456789")
	tests := []struct {
		name      string
		acceptCB  []byte
		initCB    []byte
		wantBound bool
	}{
		{"match", cb, cb, true},
		{"empty application data matches", []byte{}, []byte{}, true},
		{"acceptor has none", nil, cb, false},
		{"neither", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.ChannelBindings = tc.acceptCB })
			tkt, sess := makeTicket(t, ticketSpec{svc: svc})
			ctx, _, err := a.Accept(mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual, ChannelBindings: tc.initCB})))
			if err != nil {
				t.Fatal(err)
			}
			if got := ctx.Flags()&FlagChannelBound != 0; got != tc.wantBound {
				t.Errorf("CHANNEL_BOUND = %v, want %v", got, tc.wantBound)
			}
		})
	}
}

// TestDelegation: a delegated KRB-CRED (clear, under the subkey or under
// the session key) is parsed; kept only when allowed.
func TestDelegation(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	kt := testKeytab(t, svc)
	tests := []struct {
		name  string
		enc   string // "clear", "session"
		allow bool
	}{
		{"clear allowed", "clear", true},
		{"session key allowed", "session", true},
		{"clear refused", "clear", false},
		{"session key refused", "session", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.AllowDelegation = tc.allow })
			tkt, sess := makeTicket(t, ticketSpec{svc: svc})
			tgtKey := types.EncryptionKey{KeyType: 18, KeyValue: bytes.Repeat([]byte{0x42}, 32)}
			var encKey *types.EncryptionKey
			if tc.enc == "session" {
				encKey = &sess
			}
			cred := makeKRBCred(t, tkt, tgtKey, encKey)
			in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagDeleg, Delegation: cred})
			ctx, _, err := a.Accept(mustInitialToken(t, in))
			if err != nil {
				t.Fatal(err)
			}
			if got := ctx.Flags()&FlagDeleg != 0; got != tc.allow {
				t.Errorf("DELEG = %v, want %v", got, tc.allow)
			}
			d := ctx.DelegatedCredential()
			if !tc.allow {
				if d != nil {
					t.Error("credential kept though delegation is off")
				}
				return
			}
			var kc messages.KRBCred
			if err := kc.Unmarshal(d); err != nil {
				t.Fatalf("delegated credential does not decode: %v", err)
			}
			if kc.EncPart.EType != 0 || len(kc.Tickets) != 1 || kc.Tickets[0].SName.PrincipalNameString() != testService {
				t.Fatalf("delegated credential etype %d, %d tickets", kc.EncPart.EType, len(kc.Tickets))
			}
			var part messages.EncKrbCredPart
			if err := part.Unmarshal(kc.EncPart.Cipher); err != nil {
				t.Fatal(err)
			}
			if len(part.TicketInfo) != 1 || !bytes.Equal(part.TicketInfo[0].Key.KeyValue, tgtKey.KeyValue) {
				t.Error("delegated credential key lost")
			}
		})
	}
	t.Run("subkey", func(t *testing.T) {
		a := newTestAcceptor(t, kt, func(c *AcceptorConfig) { c.AllowDelegation = true })
		tkt, sess := makeTicket(t, ticketSpec{svc: svc})
		auth := defaultAuth(t, sess, 0)
		cred := makeKRBCred(t, tkt, sess, &auth.SubKey)
		ck, err := appendAuthChecksum(nil, [16]byte{}, FlagMutual, cred)
		if err != nil {
			t.Fatal(err)
		}
		auth.Cksum.Checksum = ck
		ctx, _, err := a.Accept(makeAPReqToken(t, apReqSpec{tkt: tkt, sess: sess, auth: auth, mutual: true}))
		if err != nil {
			t.Fatal(err)
		}
		if ctx.Flags()&FlagDeleg == 0 || ctx.DelegatedCredential() == nil {
			t.Error("credential under the subkey not delivered")
		}
	})
}

// TestAcceptTruncations: no prefix of a valid token, framed or not, is
// accepted or crashes.
func TestAcceptTruncations(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	a := newTestAcceptor(t, testKeytab(t, svc), func(c *AcceptorConfig) { c.AllowDelegation = true })
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	cred := makeKRBCred(t, tkt, sess, nil)
	tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagDeleg, Delegation: cred}))
	for n := 0; n < len(tok); n++ {
		ctx, out, err := a.Accept(tok[:n])
		if ctx != nil || out != nil {
			t.Fatalf("prefix of %d bytes: context %v reply %x", n, ctx != nil, out)
		}
		if !errorsIsMajor(err, StatusDefectiveToken) {
			t.Fatalf("prefix of %d bytes: %v, want GSS_S_DEFECTIVE_TOKEN", n, err)
		}
	}
	_, _, body, err := parseInitialToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(body); n++ {
		ctx, out, err := a.Accept(appendInitialToken(nil, oidKRB5, tokIDAPReq, body[:n]))
		if ctx != nil || out != nil || !errorsIsMajor(err, StatusDefectiveToken) {
			t.Fatalf("re-framed AP-REQ prefix of %d bytes: context %v reply %v err %v", n, ctx != nil, out != nil, err)
		}
	}
	if _, _, err := a.Accept(tok); err != nil {
		t.Fatalf("the whole token: %v", err)
	}
}

func errorsIsMajor(err error, m Major) bool {
	return err != nil && MajorOf(err).Routine() == m
}

// TestAcceptConcurrent: distinct tokens all succeed in parallel, and of
// many concurrent copies of one token exactly one wins.
func TestAcceptConcurrent(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	a := newTestAcceptor(t, testKeytab(t, svc), nil)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	const n = 32
	toks := make([][]byte, n)
	for i := range toks {
		toks[i] = mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual | FlagReplay}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, tok := range toks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := a.Accept(tok); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("distinct token refused: %v", err)
	}

	same := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual}))
	var wins, repeats atomic.Int32
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := a.Accept(same)
			switch {
			case err == nil:
				wins.Add(1)
			case KRBCodeOf(err) == errorcode.KRB_AP_ERR_REPEAT:
				repeats.Add(1)
			default:
				t.Errorf("unexpected error %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 || repeats.Load() != n-1 {
		t.Errorf("%d wins and %d replays, want 1 and %d", wins.Load(), repeats.Load(), n-1)
	}
}

// TestInitiatorComplete covers the initiator's checks on the reply.
func TestInitiatorComplete(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18}
	a := newTestAcceptor(t, testKeytab(t, svc), nil)
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})

	reply := func(t *testing.T) []byte {
		in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual})
		_, out, err := a.Accept(mustInitialToken(t, in))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name  string
		reply func(t *testing.T) []byte
		major Major
		code  int32
	}{
		{"reply to another request", reply, StatusDefectiveCredential, errorcode.KRB_AP_ERR_MUT_FAIL},
		{"tampered reply", func(t *testing.T) []byte {
			r := reply(t)
			r[len(r)-3] ^= 1
			return r
		}, StatusBadSig, errorcode.KRB_AP_ERR_MODIFIED},
		{"wrong OID", func(t *testing.T) []byte {
			_, id, body, _ := parseInitialToken(reply(t))
			return appendInitialToken(nil, oidKRB5MS, id, body)
		}, StatusDefectiveToken, 0},
		{"AP-REQ TOK_ID", func(t *testing.T) []byte {
			_, _, body, _ := parseInitialToken(reply(t))
			return appendInitialToken(nil, oidKRB5, tokIDAPReq, body)
		}, StatusDefectiveToken, errorcode.KRB_AP_ERR_MSG_TYPE},
		{"truncated", func(t *testing.T) []byte { return reply(t)[:40] }, StatusDefectiveToken, 0},
		{"skew error", func(t *testing.T) []byte {
			tok, err := marshalKRBErrorToken(oidKRB5, errorcode.KRB_AP_ERR_SKEW, tkt.SName, tkt.Realm, testNow)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}, StatusContextExpired, errorcode.KRB_AP_ERR_SKEW},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: FlagMutual})
			if _, err := in.Complete(nil); err == nil {
				t.Error("Complete before InitialToken succeeded")
			}
			mustInitialToken(t, in)
			if _, err := in.InitialToken(); err == nil {
				t.Error("second InitialToken succeeded")
			}
			ctx, err := in.Complete(tc.reply(t))
			if ctx != nil {
				t.Fatal("context established")
			}
			wantErr(t, err, tc.major, tc.code)
			if in.Established() {
				t.Error("Established after a failure")
			}
			if _, err2 := in.Complete(nil); err2 != err {
				t.Errorf("failure not sticky: %v", err2)
			}
			if !in.sessionKey.IsZero() || !in.subkey.IsZero() {
				t.Error("keys not wiped after failure")
			}
		})
	}
}

// TestNewInitiatorChecks covers NewInitiator's validation.
func TestNewInitiatorChecks(t *testing.T) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 1, etype: 18, key: make([]byte, 32)}
	tkt, sess := makeTicket(t, ticketSpec{svc: svc})
	tests := []struct {
		name   string
		cname  types.PrincipalName
		crealm string
		tkt    messages.Ticket
		sess   types.EncryptionKey
	}{
		{"no client", types.PrincipalName{}, testRealm, tkt, sess},
		{"no realm", testClientName(), "", tkt, sess},
		{"no server", testClientName(), testRealm, messages.Ticket{}, sess},
		{"rc4 session key", testClientName(), testRealm, tkt, types.EncryptionKey{KeyType: 23, KeyValue: make([]byte, 16)}},
		{"short etype 20 key", testClientName(), testRealm, tkt, types.EncryptionKey{KeyType: 20, KeyValue: make([]byte, 24)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewInitiator(tc.cname, tc.crealm, tc.tkt, tc.sess, InitiatorConfig{}); err == nil || !strings.HasPrefix(err.Error(), "gss: ") {
				t.Errorf("err %v, want a gss: error", err)
			}
		})
	}
}

// TestAuthenticatorTimeUnique: back-to-back authenticators at one instant
// get distinct (ctime, cusec), which is what acceptors' replay caches key
// on.
func TestAuthenticatorTimeUnique(t *testing.T) {
	// The clock runs far ahead here; put the process-wide state back so
	// that later tests at testNow keep getting distinct times.
	saved := lastAuthMicros.Load()
	t.Cleanup(func() { lastAuthMicros.Store(saved) })
	at := testNow.Add(1000 * time.Hour)
	seen := map[[2]int64]bool{}
	for range 1000 {
		ct, us := authenticatorTime(at)
		if ct.Nanosecond() != 0 || us < 0 || us > 999999 {
			t.Fatalf("ctime %v cusec %d not a whole second and a microsecond count", ct, us)
		}
		k := [2]int64{ct.Unix(), int64(us)}
		if seen[k] {
			t.Fatalf("authenticator time %v repeated", k)
		}
		seen[k] = true
	}
	// A clock far behind the last handed out is used as is.
	ct, us := authenticatorTime(testNow.Add(-1000 * time.Hour))
	if got := ct.Add(time.Duration(us) * time.Microsecond); !got.Equal(testNow.Add(-1000 * time.Hour).Truncate(time.Microsecond)) {
		t.Errorf("far-behind clock gave %v", got)
	}
}
