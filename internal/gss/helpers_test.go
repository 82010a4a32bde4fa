package gss

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/gss/gsstest/forge"
	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// Test principals.
const (
	testRealm   = "EXAMPLE.COM"
	testService = "host/server.example.com"
	testClient  = "alice"
)

// testNow is the fixed clock of the tests: any instant works, and a fixed
// one makes failures reproducible.
var testNow = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

// fixedNow returns a clock stopped at t.
func fixedNow(t time.Time) func() time.Time { return func() time.Time { return t } }

// svcKey is one service key of a test keytab.
type svcKey struct {
	princ string
	realm string
	kvno  uint8
	etype int32
	key   []byte
}

// testKeytab builds an in-memory keytab holding keys. Keys of AES enctypes
// with a nil key get random bytes of the right size (gokrb5's string-to-key
// gives etype 20 a 24-byte key, so it is not used for AES); other enctypes
// get a password-derived key.
func testKeytab(t testing.TB, keys ...*svcKey) *keytab.Keytab {
	t.Helper()
	kt := keytab.New()
	for _, k := range keys {
		if err := kt.AddEntry(k.princ, k.realm, "password-"+k.princ, testNow.Add(-time.Hour), k.kvno, k.etype); err != nil {
			t.Fatalf("keytab entry %s etype %d: %v", k.princ, k.etype, err)
		}
		e := &kt.Entries[len(kt.Entries)-1]
		if krb5crypto.Supported(k.etype) {
			if k.key == nil {
				var err error
				if k.key, err = krb5crypto.RandomKey(k.etype, nil); err != nil {
					t.Fatal(err)
				}
			}
			e.Key = types.EncryptionKey{KeyType: k.etype, KeyValue: bytes.Clone(k.key)}
		} else {
			k.key = bytes.Clone(e.Key.KeyValue)
		}
	}
	return kt
}

// ticketSpec describes a service ticket to forge with a service key.
type ticketSpec struct {
	svc        *svcKey
	sname      string // default svc.princ
	srealm     string // default svc.realm
	cname      string // default testClient
	crealm     string // default testRealm
	sessEtype  int32  // default svc.etype when AES, else 18
	sessKey    []byte // default random
	start, end time.Time
	flags      []int
	encEtype   int32 // enc-part etype to claim; default svc.etype
	noKVNO     bool
}

// makeTicket forges a ticket as a KDC would, with forge.Ticket (an
// EncTicketPart encrypted in the service key with key usage 2).
func makeTicket(t testing.TB, s ticketSpec) (messages.Ticket, types.EncryptionKey) {
	t.Helper()
	if s.sname == "" {
		s.sname = s.svc.princ
	}
	if s.srealm == "" {
		s.srealm = s.svc.realm
	}
	if s.cname == "" {
		s.cname = testClient
	}
	if s.crealm == "" {
		s.crealm = testRealm
	}
	if s.sessEtype == 0 {
		s.sessEtype = s.svc.etype
		if !krb5crypto.Supported(s.sessEtype) {
			s.sessEtype = 18
		}
	}
	if s.sessKey == nil {
		var err error
		if s.sessKey, err = krb5crypto.RandomKey(s.sessEtype, nil); err != nil {
			t.Fatal(err)
		}
	}
	if s.start.IsZero() {
		s.start = testNow.Add(-time.Minute)
	}
	if s.end.IsZero() {
		s.end = testNow.Add(10 * time.Hour)
	}
	if s.encEtype == 0 {
		s.encEtype = s.svc.etype
	}
	tf := types.NewKrbFlags()
	for _, f := range s.flags {
		types.SetFlag(&tf, f)
	}
	sess := types.EncryptionKey{KeyType: s.sessEtype, KeyValue: s.sessKey}
	etp := messages.EncTicketPart{
		Flags:     tf,
		Key:       sess,
		CRealm:    s.crealm,
		CName:     types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, s.cname),
		AuthTime:  s.start.UTC().Truncate(time.Second),
		StartTime: s.start.UTC().Truncate(time.Second),
		EndTime:   s.end.UTC().Truncate(time.Second),
	}
	key := types.EncryptionKey{KeyType: s.svc.etype, KeyValue: s.svc.key}
	if !krb5crypto.Supported(key.KeyType) {
		// The acceptor refuses a non-AES ticket before it decrypts it: any
		// ciphertext does, under the claimed enctype set below.
		key = types.EncryptionKey{KeyType: 18, KeyValue: make([]byte, 32)}
	}
	kvno := int(s.svc.kvno)
	if s.noKVNO {
		kvno = 0
	}
	tkt, err := forge.Ticket(key, kvno, s.srealm, types.NewPrincipalName(nametype.KRB_NT_SRV_INST, s.sname), etp)
	if err != nil {
		t.Fatal(err)
	}
	tkt.EncPart.EType = s.encEtype
	return tkt, sess
}

// testClientName is the ticket client as a gokrb5 name.
func testClientName() types.PrincipalName {
	return types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, testClient)
}

// newTestAcceptor builds an acceptor for kt with the fixed clock.
func newTestAcceptor(t testing.TB, kt *keytab.Keytab, mod func(*AcceptorConfig)) *Acceptor {
	t.Helper()
	cfg := AcceptorConfig{Keytab: kt, Now: fixedNow(testNow)}
	if mod != nil {
		mod(&cfg)
	}
	a, err := NewAcceptor(cfg)
	if err != nil {
		t.Fatalf("NewAcceptor: %v", err)
	}
	return a
}

// newTestInitiator builds an initiator for tkt with the fixed clock.
func newTestInitiator(t testing.TB, tkt messages.Ticket, sess types.EncryptionKey, cfg InitiatorConfig) *Initiator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = fixedNow(testNow)
	}
	i, err := NewInitiator(testClientName(), testRealm, tkt, sess, cfg)
	if err != nil {
		t.Fatalf("NewInitiator: %v", err)
	}
	return i
}

// apReqSpec is a hand-made AP-REQ, for the cases an Initiator refuses to
// produce.
type apReqSpec struct {
	tkt       messages.Ticket
	sess      types.EncryptionKey
	auth      types.Authenticator
	authKey   *types.EncryptionKey // key encrypting the authenticator; default sess
	mutual    bool
	apOptions []int
	mech      []byte
	tokID     uint16
	pvno      int
}

// defaultAuth returns a valid authenticator: subkey of the session key's
// enctype, 0x8003 checksum with flags, seq 12345.
func defaultAuth(t testing.TB, sess types.EncryptionKey, f Flags) types.Authenticator {
	t.Helper()
	sub, err := krb5crypto.RandomKey(sess.KeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := appendAuthChecksum(nil, [16]byte{}, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	ct, cusec := authenticatorTime(testNow)
	return types.Authenticator{
		AVNO:      iana.PVNO,
		CRealm:    testRealm,
		CName:     testClientName(),
		Cksum:     types.Checksum{CksumType: cksumTypeGSS, Checksum: ck},
		Cusec:     cusec,
		CTime:     ct,
		SubKey:    types.EncryptionKey{KeyType: sess.KeyType, KeyValue: sub},
		SeqNumber: 12345,
	}
}

// makeAPReqToken encrypts s.auth and frames the AP-REQ.
func makeAPReqToken(t testing.TB, s apReqSpec) []byte {
	t.Helper()
	key := s.sess
	if s.authKey != nil {
		key = *s.authKey
	}
	plain, err := s.auth.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	u, err := krb5crypto.DeriveUsage(key.KeyType, key.KeyValue, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := u.Encrypt(nil, nil, plain)
	if err != nil {
		t.Fatal(err)
	}
	opts := types.NewKrbFlags()
	if s.mutual {
		types.SetFlag(&opts, flags.APOptionMutualRequired)
	}
	for _, o := range s.apOptions {
		types.SetFlag(&opts, o)
	}
	if s.pvno == 0 {
		s.pvno = iana.PVNO
	}
	req := messages.APReq{
		PVNO:                   s.pvno,
		MsgType:                msgtype.KRB_AP_REQ,
		APOptions:              opts,
		Ticket:                 s.tkt,
		EncryptedAuthenticator: types.EncryptedData{EType: key.KeyType, Cipher: ct},
	}
	der, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if s.mech == nil {
		s.mech = oidKRB5
	}
	if s.tokID == 0 {
		s.tokID = tokIDAPReq
	}
	return appendInitialToken(nil, s.mech, s.tokID, der)
}

// makeKRBCred builds a KRB-CRED forwarding tkt, with its enc-part in the
// clear (etype 0) or encrypted in key with key usage 14.
func makeKRBCred(t testing.TB, tkt messages.Ticket, credKey types.EncryptionKey, encKey *types.EncryptionKey) []byte {
	t.Helper()
	part := messages.EncKrbCredPart{TicketInfo: []messages.KrbCredInfo{{
		Key:    credKey,
		PRealm: testRealm,
		PName:  testClientName(),
		SRealm: tkt.Realm,
		SName:  tkt.SName,
	}}}
	cred, err := forge.KRBCred(tkt, part, encKey)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// wantErr checks that err is a *Error with the given major status and
// Kerberos code.
func wantErr(t testing.TB, err error, major Major, code int32) {
	t.Helper()
	if err == nil {
		t.Fatalf("got success, want %v (krb5 code %d)", major, code)
	}
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("error %v (%T) is not a *gss.Error", err, err)
	}
	if !errors.Is(err, major) {
		t.Errorf("major = %v, want %v (error: %v)", ge.Major, major, err)
	}
	if ge.KRBCode != code {
		t.Errorf("krb5 code = %d, want %d (error: %v)", ge.KRBCode, code, err)
	}
}

// errorTokenCode parses a KRB-ERROR context token and returns its code.
func errorTokenCode(t testing.TB, tok []byte, wantMech []byte) int32 {
	t.Helper()
	mech, id, body, err := parseInitialToken(tok)
	if err != nil {
		t.Fatalf("error token does not parse: %v", err)
	}
	if !bytes.Equal(mech, wantMech) {
		t.Errorf("error token OID %s, want %s", oidString(mech), oidString(wantMech))
	}
	if id != tokIDKRBError {
		t.Fatalf("error token TOK_ID %04x, want %04x", id, tokIDKRBError)
	}
	var ke messages.KRBError
	if err := ke.Unmarshal(body); err != nil {
		t.Fatalf("KRB-ERROR does not decode: %v", err)
	}
	if ke.EText != "" {
		t.Errorf("KRB-ERROR e-text %q: the reason must stay in the acceptor's log", ke.EText)
	}
	if !ke.STime.Equal(testNow.Truncate(time.Second)) || ke.Susec != testNow.Nanosecond()/1000 {
		t.Errorf("KRB-ERROR stime %v.%06d, want the acceptor's clock %v", ke.STime, ke.Susec, testNow)
	}
	return ke.ErrorCode
}
