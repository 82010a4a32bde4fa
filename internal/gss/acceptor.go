package gss

import (
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// Acceptor establishes krb5 mechanism contexts from AP-REQ tokens (RFC 4121
// §4.1, RFC 4120 §3.2.3). It is safe for concurrent use by any number of
// goroutines.
//
// Failures are *Error values carrying a GSS major status and the RFC 4120
// code sent in the KRB-ERROR token:
//
//	failure                                       major                        krb5 code
//	malformed framing, ASN.1, checksum structure  GSS_S_DEFECTIVE_TOKEN        KRB_ERR_GENERIC (60)
//	TOK_ID not AP-REQ, msg-type not 14            GSS_S_DEFECTIVE_TOKEN        KRB_AP_ERR_MSG_TYPE (40)
//	pvno or authenticator-vno not 5               GSS_S_DEFECTIVE_TOKEN        KRB_AP_ERR_BADVERSION (39)
//	no 0x8003 checksum in the authenticator       GSS_S_DEFECTIVE_TOKEN        KRB_AP_ERR_INAPP_CKSUM (50)
//	checksum shorter than 24 bytes                GSS_S_BAD_BINDINGS           KRB_AP_ERR_INAPP_CKSUM (50)
//	DCE-style or user-to-user request             GSS_S_UNAVAILABLE            KDC_ERR_BADOPTION (13)
//	token for another mechanism                   GSS_S_BAD_MECH               KRB_ERR_GENERIC (60)
//	service principal not in Services             GSS_S_UNAUTHORIZED           KRB_AP_ERR_NOT_US (35)
//	no key for the principal or enctype           GSS_S_NO_CRED                KRB_AP_ERR_NOKEY (45)
//	no key of the ticket's kvno                   GSS_S_NO_CRED                KRB_AP_ERR_BADKEYVER (44)
//	non-AES ticket, session key or subkey         GSS_S_UNAVAILABLE            KDC_ERR_ETYPE_NOSUPP (14)
//	ticket does not decrypt (wrong key, tampered) GSS_S_DEFECTIVE_CREDENTIAL   KRB_AP_ERR_MODIFIED (41)
//	ticket not yet valid or flagged INVALID       GSS_S_DEFECTIVE_CREDENTIAL   KRB_AP_ERR_TKT_NYV (33)
//	ticket expired                                GSS_S_CREDENTIALS_EXPIRED    KRB_AP_ERR_TKT_EXPIRED (32)
//	authenticator does not decrypt                GSS_S_BAD_SIG                KRB_AP_ERR_BAD_INTEGRITY (31)
//	authenticator client ≠ ticket client          GSS_S_DEFECTIVE_CREDENTIAL   KRB_AP_ERR_BADMATCH (36)
//	authenticator time outside the clock skew     GSS_S_CONTEXT_EXPIRED        KRB_AP_ERR_SKEW (37)
//	authenticator already presented               GSS_S_DUPLICATE_TOKEN        KRB_AP_ERR_REPEAT (34)
//	channel bindings missing or different         GSS_S_BAD_BINDINGS           KRB_ERR_GENERIC (60)
//	delegated credential does not decrypt         GSS_S_DEFECTIVE_CREDENTIAL   KRB_AP_ERR_MODIFIED (41)
//	replay cache full                             GSS_S_UNAVAILABLE            KRB_ERR_GENERIC (60)
//	replay store unreachable (ReplayStore error)  GSS_S_UNAVAILABLE            KRB_ERR_GENERIC (60)
//	local failure (random source, encoding)       GSS_S_FAILURE                KRB_ERR_GENERIC (60)
//
// An AP-REQ without the GSS checksum (MS-KILE tolerates it; so does MIT,
// with all flags cleared) or with an ordinary checksum over empty data
// (Samba's old style, which MIT also accepts) is refused: every client this
// service targets sends 0x8003, and a checksum-less request would silently
// skip the flags and the channel-binding check.
type Acceptor struct {
	// Immutable after NewAcceptor.
	principals []*servicePrincipal // keytab principals that Services allows
	allPrincs  []*servicePrincipal // every keytab principal, for error messages
	skew       time.Duration
	rc         ReplayStore
	haveCB     bool
	cbHash     [gssChecksumBndLen]byte
	allowDeleg bool
	now        func() time.Time
	rand       io.Reader
}

// Accept processes the initiator's first context token (an RFC 4121 §4.1
// AP-REQ token) and, on success, returns the established context and the
// token to send back: the AP-REP token when the initiator asked for mutual
// authentication, else nil.
//
// On failure ctx is nil and err is a *Error (see the table on Acceptor).
// out is then a KRB-ERROR token when the initiator is waiting for a reply
// (its AP-REQ could be decoded and asked for mutual authentication, as MIT
// decides), else nil; the caller sends out, if any, then closes.
//
// An SPNEGO token (RFC 4178) is negotiated as by a Handshake, and out is
// then a NegTokenResp; Accept fails with GSS_S_FAILURE when that
// negotiation needs a further token from the initiator (a mechListMIC
// exchange or a counter-proposal). Servers use NewHandshake, which
// handles every case.
func (a *Acceptor) Accept(token []byte) (ctx *Context, out []byte, err error) {
	if isSPNEGOToken(token) {
		return a.acceptSPNEGOOnce(token)
	}
	return a.acceptKRB5(token)
}

// acceptKRB5 is Accept for a krb5 mechanism token.
func (a *Acceptor) acceptKRB5(token []byte) (ctx *Context, out []byte, err error) {
	hs := acceptState{a: a, now: a.now()}
	defer func() {
		// Last line of defence: the decoders are guarded individually, so
		// a panic here is a bug, but it must not take the listener down.
		if r := recover(); r != nil {
			hs.zero()
			ctx, out = nil, nil
			err = krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC, "internal error processing the AP-REQ",
				fmt.Errorf("%w: %v", errDecodePanic, r))
		}
	}()
	ctx, err = hs.run(token)
	if err != nil {
		hs.zero()
		return nil, hs.errorToken(err), err
	}
	return ctx, hs.reply, nil
}

// acceptState is the state of one Accept call, discarded when it returns.
// The steps of run fill it in order.
type acceptState struct {
	a   *Acceptor
	now time.Time

	mech    []byte         // OID the initiator used
	req     messages.APReq // decoded AP-REQ
	decoded bool           // req holds a decoded AP-REQ
	mutual  bool           // the initiator expects a reply token

	sp  *servicePrincipal
	key *serviceKey
	tkt messages.EncTicketPart
	ath types.Authenticator

	sessionKey Key // owned; moves into the Context
	subkey     Key // initiator subkey, owned; zero if none
	accSubkey  Key // acceptor subkey, owned; zero without mutual

	flags     Flags
	delegated []byte // clear KRB-CRED when kept
	sendSeq   uint32
	reply     []byte
}

// run performs the checks of RFC 4120 §3.2.3 and RFC 4121 §4.1 in order.
func (hs *acceptState) run(token []byte) (*Context, error) {
	if err := hs.decodeToken(token); err != nil {
		return nil, err
	}
	if err := hs.selectKey(); err != nil {
		return nil, err
	}
	if err := hs.decryptTicket(); err != nil {
		return nil, err
	}
	if err := hs.checkTicket(); err != nil {
		return nil, err
	}
	if err := hs.decryptAuthenticator(); err != nil {
		return nil, err
	}
	if err := hs.checkAuthenticator(); err != nil {
		return nil, err
	}
	if err := hs.processChecksum(); err != nil {
		return nil, err
	}
	if err := hs.checkReplay(); err != nil {
		return nil, err
	}
	if hs.mutual {
		if err := hs.makeReply(); err != nil {
			return nil, err
		}
	}
	return hs.buildContext()
}

// decodeToken parses the framing and the AP-REQ.
func (hs *acceptState) decodeToken(token []byte) error {
	mech, tokID, body, err := parseInitialToken(token)
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) && ge.KRBCode == 0 {
			ge.KRBCode = errorcode.KRB_ERR_GENERIC
		}
		return err
	}
	hs.mech = mech
	if tokID != tokIDAPReq {
		return krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_MSG_TYPE,
			fmt.Sprintf("context token has TOK_ID %04x, want %04x (AP-REQ)", tokID, tokIDAPReq), nil)
	}
	// An AP-REQ is APPLICATION 14 (0x6e); checking the tag first keeps
	// the decoder from trying to make sense of some other message.
	if len(body) == 0 || body[0] != 0x6e {
		return krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_MSG_TYPE, "context token does not hold an AP-REQ", nil)
	}
	if !decodeAPReq(body, &hs.req) {
		return krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC, "malformed AP-REQ (not a DER RFC 4120 §5.5.1 AP-REQ)", nil)
	}
	if hs.req.PVNO != iana.PVNO || hs.req.Ticket.TktVNO != iana.PVNO {
		return krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_BADVERSION,
			fmt.Sprintf("AP-REQ has pvno %d, ticket tkt-vno %d; want %d", hs.req.PVNO, hs.req.Ticket.TktVNO, iana.PVNO), nil)
	}
	if hs.req.MsgType != msgtype.KRB_AP_REQ {
		return krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_MSG_TYPE,
			fmt.Sprintf("AP-REQ has msg-type %d, want %d", hs.req.MsgType, msgtype.KRB_AP_REQ), nil)
	}
	hs.decoded = true
	// BitString.At is bounds-checked (types.IsFlagSet is not): a short
	// ap-options field reads as "no options".
	hs.mutual = hs.req.APOptions.At(flags.APOptionMutualRequired) == 1
	if hs.req.APOptions.At(flags.APOptionUseSessionKey) == 1 {
		return krbError(StatusUnavailable, errorcode.KDC_ERR_BADOPTION,
			"AP-REQ asks for user-to-user authentication (use-session-key), which this acceptor does not support", nil)
	}
	return nil
}

// decryptTicket decrypts the ticket's enc-part with the service key (key
// usage 2) and decodes it.
func (hs *acceptState) decryptTicket() error {
	t := &hs.req.Ticket
	plain, err := hs.key.usage.Decrypt(nil, t.EncPart.Cipher)
	if err != nil {
		return krbError(StatusDefectiveCredential, errorcode.KRB_AP_ERR_MODIFIED,
			fmt.Sprintf("ticket for %s does not decrypt with keytab kvno %d etype %d (wrong key or tampered ticket)",
				PrincipalString(t.SName.NameString, t.Realm), hs.key.kvno, hs.key.etype), err)
	}
	defer clear(plain) // holds the session key
	// An EncTicketPart is APPLICATION 3 (0x63).
	if len(plain) == 0 || plain[0] != 0x63 {
		return krbError(StatusDefectiveCredential, errorcode.KRB_ERR_GENERIC, "decrypted ticket is not an EncTicketPart", nil)
	}
	if !decodeEncTicketPart(plain, &hs.tkt) {
		clear(hs.tkt.Key.KeyValue)
		return krbError(StatusDefectiveCredential, errorcode.KRB_ERR_GENERIC, "malformed EncTicketPart in a ticket that decrypted", nil)
	}
	// The decoder copied the key out of plain; take ownership of that copy.
	hs.sessionKey = Key{Etype: hs.tkt.Key.KeyType, Value: hs.tkt.Key.KeyValue}
	return nil
}

// checkTicket checks the ticket's times, flags and session key.
func (hs *acceptState) checkTicket() error {
	e := &hs.tkt
	skew := hs.a.skew
	start := e.StartTime
	if start.IsZero() {
		start = e.AuthTime // RFC 4120 §5.3: starttime absent means authtime
	}
	if e.Flags.At(flags.Invalid) == 1 {
		return krbError(StatusDefectiveCredential, errorcode.KRB_AP_ERR_TKT_NYV,
			fmt.Sprintf("ticket of %s is flagged INVALID (postdated, not yet validated)", hs.clientName()), nil)
	}
	if start.Sub(hs.now) > skew {
		return krbError(StatusDefectiveCredential, errorcode.KRB_AP_ERR_TKT_NYV,
			fmt.Sprintf("ticket of %s is not valid before %s (server time %s, skew %s)",
				hs.clientName(), fmtTime(start), fmtTime(hs.now), fmtSeconds(skew)), nil)
	}
	if hs.now.Sub(e.EndTime) > skew {
		return krbError(StatusCredentialsExpired, errorcode.KRB_AP_ERR_TKT_EXPIRED,
			fmt.Sprintf("ticket of %s expired at %s (server time %s, skew %s)",
				hs.clientName(), fmtTime(e.EndTime), fmtTime(hs.now), fmtSeconds(skew)), nil)
	}
	return checkKeyPolicy("ticket session key", e.Key)
}

// decryptAuthenticator decrypts the authenticator with the session key
// (key usage 11) and decodes it.
func (hs *acceptState) decryptAuthenticator() error {
	ea := &hs.req.EncryptedAuthenticator
	if ea.EType != hs.sessionKey.Etype {
		return krbError(StatusBadSig, errorcode.KRB_AP_ERR_BAD_INTEGRITY,
			fmt.Sprintf("authenticator of %s is encrypted with etype %d, the session key is etype %d",
				hs.clientName(), ea.EType, hs.sessionKey.Etype), nil)
	}
	u, err := krb5crypto.DeriveUsage(hs.sessionKey.Etype, hs.sessionKey.Value, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return krbError(StatusFailure, errorcode.KRB_ERR_GENERIC, "deriving the authenticator key", err)
	}
	defer u.Zero()
	plain, err := u.Decrypt(nil, ea.Cipher)
	if err != nil {
		return krbError(StatusBadSig, errorcode.KRB_AP_ERR_BAD_INTEGRITY,
			fmt.Sprintf("authenticator of %s does not decrypt with the ticket session key (tampered)", hs.clientName()), err)
	}
	defer clear(plain) // holds the subkey
	// An Authenticator is APPLICATION 2 (0x62).
	if len(plain) == 0 || plain[0] != 0x62 {
		return krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC, "decrypted authenticator is not an Authenticator", nil)
	}
	if !decodeAuthenticator(plain, &hs.ath) {
		clear(hs.ath.SubKey.KeyValue)
		return krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC, "malformed Authenticator", nil)
	}
	if sk := hs.ath.SubKey; len(sk.KeyValue) > 0 || sk.KeyType != 0 {
		hs.subkey = Key{Etype: sk.KeyType, Value: sk.KeyValue}
	}
	return nil
}

// checkAuthenticator checks the authenticator against the ticket and the
// clock (RFC 4120 §3.2.3).
func (hs *acceptState) checkAuthenticator() error {
	a := &hs.ath
	if a.AVNO != iana.PVNO {
		return krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_BADVERSION,
			fmt.Sprintf("authenticator-vno is %d, want %d", a.AVNO, iana.PVNO), nil)
	}
	// gokrb5 compares only the name strings; the realm matters as much
	// (a ticket for alice@A must not be presented as alice@B).
	if a.CRealm != hs.tkt.CRealm || !slices.Equal(a.CName.NameString, hs.tkt.CName.NameString) {
		return krbError(StatusDefectiveCredential, errorcode.KRB_AP_ERR_BADMATCH,
			fmt.Sprintf("authenticator names %s but the ticket was issued to %s",
				PrincipalString(a.CName.NameString, a.CRealm), hs.clientName()), nil)
	}
	if a.Cusec < 0 || a.Cusec > 999999 {
		return krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("authenticator cusec %d is out of range", a.Cusec), nil)
	}
	ct := hs.ctime()
	if d := hs.now.Sub(ct); d > hs.a.skew || -d > hs.a.skew {
		return krbError(StatusContextExpired, errorcode.KRB_AP_ERR_SKEW,
			fmt.Sprintf("clock skew %s exceeds %s (authenticator time %s, server time %s)",
				fmtSeconds(d.Abs()), fmtSeconds(hs.a.skew), fmtTime(ct), fmtTime(hs.now)), nil)
	}
	if !hs.subkey.IsZero() || hs.subkey.Etype != 0 {
		if err := checkKeyPolicy("authenticator subkey", a.SubKey); err != nil {
			return err
		}
	}
	return nil
}

// processChecksum interprets the 0x8003 checksum: flags, channel
// bindings, delegation.
func (hs *acceptState) processChecksum() error {
	ck := hs.ath.Cksum
	// A delegated KRB-CRED travels in the checksum, its enc-part in the
	// clear when the initiator sent it so (MIT does): wipe it once read,
	// whatever the outcome. Nothing after this step reads the checksum.
	defer clear(ck.Checksum)
	if ck.CksumType != cksumTypeGSS {
		what := "no checksum"
		if ck.CksumType != 0 || len(ck.Checksum) > 0 {
			what = "checksum type " + strconv.Itoa(int(ck.CksumType))
		}
		return krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_INAPP_CKSUM,
			fmt.Sprintf("authenticator of %s carries %s, not the GSS-API checksum 0x8003 (RFC 4121 §4.1.1)", hs.clientName(), what), nil)
	}
	c, err := parseAuthChecksum(ck.Checksum)
	if err != nil {
		return err
	}
	accepted := c.flags & initiatorFlagsMask
	// The checksum is authenticated now: its MUTUAL flag counts as much
	// as the ap-option does.
	if accepted&FlagMutual != 0 {
		hs.mutual = true
	}
	if accepted&FlagDCEStyle != 0 {
		return krbError(StatusUnavailable, errorcode.KDC_ERR_BADOPTION,
			"initiator asked for DCE-style establishment, which this acceptor does not support", nil)
	}
	if hs.a.haveCB {
		if subtle.ConstantTimeCompare(c.bindings[:], hs.a.cbHash[:]) != 1 {
			msg := "channel bindings do not match this channel"
			var zero [gssChecksumBndLen]byte
			if c.bindings == zero {
				msg = "initiator sent no channel bindings, and this acceptor requires them"
			}
			return krbError(StatusBadBindings, errorcode.KRB_ERR_GENERIC, msg+" ("+hs.clientName()+")", nil)
		}
		accepted |= FlagChannelBound
	}
	if c.deleg != nil {
		cred, err := hs.readDelegation(c.deleg)
		if err != nil {
			return err
		}
		if hs.a.allowDeleg {
			hs.delegated = cred
			accepted |= FlagDeleg
		} else {
			clear(cred)
		}
	}
	hs.flags = accepted | FlagConf | FlagInteg | FlagTrans
	if hs.mutual {
		hs.flags |= FlagMutual | FlagProtReady
	}
	return nil
}

// checkReplay records the authenticator, refusing one already seen. It
// runs after every other check so that a rejected request never occupies
// the cache. The entry is made of authenticated fields only (see
// ReplayCache): the ticket's sname, which a replay may have rewritten, is
// not one of them.
func (hs *acceptState) checkReplay() error {
	t := replayTuple{
		crealm: hs.ath.CRealm,
		cname:  hs.ath.CName.NameString,
		ctime:  hs.ath.CTime,
		cusec:  hs.ath.Cusec,
		cipher: hs.req.EncryptedAuthenticator.Cipher,
	}
	// The entry is needed while the authenticator could pass the skew
	// check, i.e. until ctime + skew.
	return checkAndInsert(hs.a.rc, &t, hs.ctime().Add(hs.a.skew), hs.now)
}

// makeReply builds the AP-REP token (RFC 4121 §4.1, RFC 4120 §3.2.4): a
// fresh acceptor subkey of the initiator subkey's enctype (RFC 4121 §2:
// once asserted, it protects every later token), a random non-zero 30-bit
// sequence number (MIT's gen_seqnum mask; older peers treat the field as
// signed), and ctime/cusec echoed, encrypted in the session key.
func (hs *acceptState) makeReply() error {
	etype := hs.sessionKey.Etype
	if !hs.subkey.IsZero() {
		etype = hs.subkey.Etype
	}
	kb, err := krb5crypto.RandomKey(etype, hs.a.rand)
	if err != nil {
		return krbError(StatusFailure, errorcode.KRB_ERR_GENERIC, "generating the acceptor subkey", err)
	}
	hs.accSubkey = Key{Etype: etype, Value: kb}
	if hs.sendSeq, err = randomSeq(hs.a.rand); err != nil {
		return krbError(StatusFailure, errorcode.KRB_ERR_GENERIC, "generating the acceptor sequence number", err)
	}
	rep, err := marshalAPRep(hs.sessionKey, &apRepPart{
		ctime:  hs.ath.CTime,
		cusec:  hs.ath.Cusec,
		subkey: hs.accSubkey,
		seq:    hs.sendSeq,
	}, hs.a.rand)
	if err != nil {
		return err
	}
	hs.reply = appendInitialToken(make([]byte, 0, len(rep)+32), hs.mech, tokIDAPRep, rep)
	return nil
}

// buildContext hands the keys to a new Context.
func (hs *acceptState) buildContext() (*Context, error) {
	recvSeq := uint64(uint32(hs.ath.SeqNumber)) // UInt32 on the wire; see parseAPRep
	sendSeq := recvSeq                          // no mutual: MIT starts both directions at the initiator's number
	if hs.mutual {
		sendSeq = uint64(hs.sendSeq)
	}
	subkey := hs.subkey
	if subkey.IsZero() {
		subkey = hs.sessionKey.Clone()
	}
	p := contextParams{
		initiator:  false,
		flags:      hs.flags,
		mech:       hs.mech,
		initName:   hs.clientName(),
		acceptName: PrincipalString(hs.sp.name, hs.sp.realm),
		// MIT reports the ticket end time plus the skew as the context
		// lifetime (krb5 PR #344): the ticket is honoured that long.
		expiry:         hs.tkt.EndTime.Add(hs.a.skew),
		sessionKey:     hs.sessionKey,
		subkey:         subkey,
		acceptorSubkey: hs.accSubkey,
		delegated:      hs.delegated,
		sendSeq:        sendSeq,
		recvSeq:        recvSeq,
	}
	// Ownership has moved to p; newContext zeroes it on failure.
	hs.sessionKey, hs.subkey, hs.accSubkey, hs.delegated = Key{}, Key{}, Key{}, nil
	ctx, err := newContext(p)
	if err != nil {
		var ge *Error
		if errors.As(err, &ge) && ge.KRBCode == 0 {
			ge.KRBCode = errorcode.KRB_ERR_GENERIC
		}
		return nil, err
	}
	return ctx, nil
}

// errorToken returns the KRB-ERROR token for err when the initiator waits
// for one, else nil.
func (hs *acceptState) errorToken(err error) []byte {
	if !hs.decoded || !hs.mutual {
		return nil
	}
	code := KRBCodeOf(err)
	if code <= 0 || code > 127 { // MIT: anything outside the krb5 table is KRB_ERR_GENERIC
		code = errorcode.KRB_ERR_GENERIC
	}
	t := &hs.req.Ticket
	tok, e := marshalKRBErrorToken(hs.mech, code, t.SName, t.Realm, hs.a.now())
	if e != nil {
		return nil
	}
	return tok
}

// zero wipes every key the state still owns.
func (hs *acceptState) zero() {
	hs.sessionKey.Zero()
	hs.subkey.Zero()
	hs.accSubkey.Zero()
	clear(hs.tkt.Key.KeyValue)
	clear(hs.ath.SubKey.KeyValue)
	clear(hs.ath.Cksum.Checksum) // may hold a clear delegated credential
	clear(hs.delegated)
	hs.delegated = nil
}

// ctime is the authenticator's time with its microseconds.
func (hs *acceptState) ctime() time.Time {
	return hs.ath.CTime.Add(time.Duration(hs.ath.Cusec) * time.Microsecond)
}

// clientName is the ticket's client, "alice@REALM".
func (hs *acceptState) clientName() string {
	return PrincipalString(hs.tkt.CName.NameString, hs.tkt.CRealm)
}

// randomSeq returns a random sequence number in [1, 2^30).
func randomSeq(r io.Reader) (uint32, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		if s := binary.BigEndian.Uint32(b[:]) & 0x3fffffff; s != 0 {
			return s, nil
		}
	}
}
