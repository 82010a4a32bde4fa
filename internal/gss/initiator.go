package gss

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/jcmturner/gofork/encoding/asn1"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// InitiatorConfig is the request of an Initiator.
type InitiatorConfig struct {
	// Flags are the requested context flags, e.g. FlagMutual|FlagReplay
	// (+FlagSequence). CONF, INTEG and TRANS are always added, as MIT's
	// initiator does; DELEG is sent only together with Delegation.
	Flags Flags

	// ChannelBindings, when non-nil, is the application data the context
	// is bound to (see AcceptorConfig.ChannelBindings for the exact hash).
	ChannelBindings []byte

	// UseMicrosoftOID frames the tokens with 1.2.840.48018.1.2.2 instead
	// of the standard krb5 OID, as early Windows clients did.
	UseMicrosoftOID bool

	// Delegation is a KRB-CRED (DER) to forward to the acceptor when Flags
	// has FlagDeleg. Without it DELEG is dropped from the request, which
	// is what MIT does when it cannot make a credential to forward.
	Delegation []byte

	// TicketEndTime is the service ticket's end time, which the client
	// learns from the KDC reply (the ticket itself is opaque to it). It
	// becomes the context's Expiry; zero leaves the expiry unknown (zero).
	TicketEndTime time.Time

	// Now returns the current time. nil: time.Now.
	Now func() time.Time

	// Rand is the source of subkeys, sequence numbers and confounders.
	// nil: crypto/rand.
	Rand io.Reader
}

// Initiator establishes one krb5 mechanism context with a service ticket
// (RFC 4121 §4.1): InitialToken makes the AP-REQ token, and with mutual
// authentication Complete processes the acceptor's reply. An Initiator is
// used for one context; a load generator makes a new one per connection,
// from the same ticket. Its methods may be called from any goroutine.
type Initiator struct {
	// Immutable after NewInitiator.
	cfg        InitiatorConfig
	cname      types.PrincipalName
	crealm     string
	tkt        messages.Ticket
	mech       []byte
	reqFlags   Flags // flags sent in the checksum
	mutual     bool
	now        func() time.Time
	rand       io.Reader
	initName   string
	acceptName string

	mu sync.Mutex
	// Guarded by mu.
	sessionKey Key
	state      initState
	subkey     Key // our authenticator subkey
	seq        uint32
	ctime      time.Time // authenticator ctime (whole seconds, UTC)
	cusec      int
	ctx        *Context
	err        error // sticky failure
}

type initState uint8

const (
	initNew    initState = iota // InitialToken not called yet
	initSent                    // AP-REQ sent, AP-REP awaited
	initDone                    // established
	initFailed                  // failed; err holds why
)

// NewInitiator prepares a context for one service ticket, as returned with
// its session key by gokrb5's client.GetServiceTicket. cname and crealm
// name the ticket's client. The session key is copied.
func NewInitiator(cname types.PrincipalName, crealm string, tkt messages.Ticket, sessionKey types.EncryptionKey, cfg InitiatorConfig) (*Initiator, error) {
	if len(cname.NameString) == 0 || crealm == "" {
		return nil, errors.New("gss: initiator needs a client name and realm")
	}
	if len(tkt.SName.NameString) == 0 || tkt.Realm == "" {
		return nil, errors.New("gss: service ticket has no server name or realm")
	}
	if err := checkKeyPolicy("session key", sessionKey); err != nil {
		return nil, err
	}
	if cfg.Delegation != nil && len(cfg.Delegation) > maxChecksumDelegLen {
		return nil, fmt.Errorf("gss: delegated credential of %d bytes exceeds %d", len(cfg.Delegation), maxChecksumDelegLen)
	}
	i := &Initiator{
		cfg:        cfg,
		cname:      cname,
		crealm:     crealm,
		tkt:        tkt,
		mech:       oidKRB5,
		now:        cfg.Now,
		rand:       cfg.Rand,
		sessionKey: keyFromKrb(sessionKey),
		initName:   PrincipalString(cname.NameString, crealm),
		acceptName: PrincipalString(tkt.SName.NameString, tkt.Realm),
	}
	if cfg.UseMicrosoftOID {
		i.mech = oidKRB5MS
	}
	if i.now == nil {
		i.now = time.Now
	}
	if i.rand == nil {
		i.rand = rand.Reader
	}
	i.reqFlags = cfg.Flags&(initiatorFlagsMask|FlagDeleg)&^FlagDCEStyle | FlagConf | FlagInteg | FlagTrans
	if cfg.Delegation == nil {
		i.reqFlags &^= FlagDeleg
	} else if i.reqFlags&FlagDeleg == 0 {
		i.cfg.Delegation = nil
	}
	i.mutual = i.reqFlags&FlagMutual != 0
	return i, nil
}

// InitialToken returns the AP-REQ context token: a fresh authenticator
// with a random subkey of the session key's enctype, a random non-zero
// 30-bit sequence number and the 0x8003 checksum carrying the flags and
// channel bindings, with the mutual-required AP option when FlagMutual was
// requested (MIT sets the option exactly then). It may be called once.
// Without mutual authentication the context is established when it
// returns.
func (i *Initiator) InitialToken() ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.state != initNew {
		return nil, newError(StatusFailure, MinorNone, "initial token already produced; use a new Initiator per context", nil)
	}
	tok, err := i.initialTokenLocked()
	if err != nil {
		i.failLocked(err)
		return nil, err
	}
	return tok, nil
}

func (i *Initiator) initialTokenLocked() ([]byte, error) {
	etype := i.sessionKey.Etype
	kb, err := krb5crypto.RandomKey(etype, i.rand)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "generating the initiator subkey", err)
	}
	i.subkey = Key{Etype: etype, Value: kb}
	if i.seq, err = randomSeq(i.rand); err != nil {
		return nil, newError(StatusFailure, MinorNone, "generating the initiator sequence number", err)
	}
	i.ctime, i.cusec = authenticatorTime(i.now())

	var bnd [gssChecksumBndLen]byte
	if i.cfg.ChannelBindings != nil {
		bnd = channelBindingsHash(i.cfg.ChannelBindings)
	}
	ck, err := appendAuthChecksum(nil, bnd, i.reqFlags, i.cfg.Delegation)
	if err != nil {
		return nil, err
	}
	auth := types.Authenticator{
		AVNO:      iana.PVNO,
		CRealm:    i.crealm,
		CName:     i.cname,
		Cksum:     types.Checksum{CksumType: cksumTypeGSS, Checksum: ck},
		Cusec:     i.cusec,
		CTime:     i.ctime,
		SubKey:    i.subkey.toKrb(),
		SeqNumber: int64(i.seq),
	}
	plain, err := auth.Marshal()
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encoding the authenticator", err)
	}
	defer clear(plain) // holds the subkey
	u, err := krb5crypto.DeriveUsage(etype, i.sessionKey.Value, keyusage.AP_REQ_AUTHENTICATOR)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "deriving the authenticator key", err)
	}
	defer u.Zero()
	ct, err := u.Encrypt(nil, i.rand, plain)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encrypting the authenticator", err)
	}
	opts := asn1.BitString{Bytes: make([]byte, 4), BitLength: 32}
	if i.mutual {
		types.SetFlag(&opts, flags.APOptionMutualRequired)
	}
	req := messages.APReq{
		PVNO:      iana.PVNO,
		MsgType:   msgtype.KRB_AP_REQ,
		APOptions: opts,
		Ticket:    i.tkt,
		// The authenticator is encrypted in the session key, which has no
		// kvno: leave it out (gokrb5's NewAPReq wrongly copies the
		// ticket's).
		EncryptedAuthenticator: types.EncryptedData{EType: etype, Cipher: ct},
	}
	der, err := req.Marshal()
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encoding the AP-REQ", err)
	}
	tok := appendInitialToken(make([]byte, 0, len(der)+32), i.mech, tokIDAPReq, der)
	if !i.mutual {
		// No reply: both directions start at our sequence number (MIT).
		if err := i.establishLocked(nil, uint64(i.seq)); err != nil {
			return nil, err
		}
		return tok, nil
	}
	i.state = initSent
	return tok, nil
}

// lastAuthMicros is the last authenticator time handed out, in
// microseconds since the epoch. Distinct authenticators from one process
// get distinct (ctime, cusec) pairs, as MIT's krb5_us_timeofday ensures:
// acceptors key their replay caches on that pair, and a load generator
// firing many handshakes with one ticket within a microsecond would
// otherwise be refused as replaying itself.
var lastAuthMicros atomic.Int64

// authenticatorTime returns now as a Kerberos (ctime, cusec) pair,
// strictly after the previous pair handed out unless the clock is more
// than a second behind it. Then now is used as is and the sequence
// restarts from it: the clock was stepped back (or a caller-supplied clock
// jumped), and pinning every later authenticator to a time in the future
// would make them all fail the acceptor's skew check.
func authenticatorTime(now time.Time) (time.Time, int) {
	us := now.UnixMicro()
	for {
		last := lastAuthMicros.Load()
		v := us
		if v <= last && last-v < int64(time.Second/time.Microsecond) {
			v = last + 1
		}
		if lastAuthMicros.CompareAndSwap(last, v) {
			return time.Unix(v/1e6, 0).UTC(), int(v % 1e6)
		}
	}
}

// Established reports whether the context is established: after
// InitialToken without mutual authentication, or after a successful
// Complete.
func (i *Initiator) Established() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.state == initDone
}

// Complete processes the acceptor's reply token. An AP-REP must decrypt
// with the session key and echo our authenticator's ctime and cusec (RFC
// 4120 §3.2.5); its subkey, if any, becomes the acceptor subkey and its
// sequence number the first one expected from the acceptor (0 if absent,
// as MIT). A KRB-ERROR token gives a *Error carrying the acceptor's code.
// Either way the Initiator is finished: a failure is final.
func (i *Initiator) Complete(reply []byte) (*Context, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch i.state {
	case initNew:
		return nil, newError(StatusFailure, MinorNone, "Complete called before InitialToken", nil)
	case initDone:
		if !i.mutual {
			return nil, newError(StatusFailure, MinorNone, "no reply expected: mutual authentication was not requested", nil)
		}
		return nil, newError(StatusFailure, MinorNone, "context already established", nil)
	case initFailed:
		return nil, i.err
	}
	ctx, err := i.completeLocked(reply)
	if err != nil {
		i.failLocked(err)
		return nil, err
	}
	return ctx, nil
}

func (i *Initiator) completeLocked(reply []byte) (*Context, error) {
	mech, tokID, body, err := parseInitialToken(reply)
	if err != nil {
		return nil, err
	}
	if string(mech) != string(i.mech) {
		return nil, defectiveToken(MinorBadMechOID,
			fmt.Sprintf("reply is framed with OID %s, we sent %s", oidString(mech), oidString(i.mech)))
	}
	switch tokID {
	case tokIDKRBError:
		return nil, parseKRBError(body)
	case tokIDAPRep:
	default:
		return nil, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_MSG_TYPE,
			fmt.Sprintf("reply has TOK_ID %04x, want %04x (AP-REP) or %04x (KRB-ERROR)", tokID, tokIDAPRep, tokIDKRBError), nil)
	}
	p, err := parseAPRep(body, i.sessionKey)
	if err != nil {
		return nil, err
	}
	if !p.ctime.Equal(i.ctime) || p.cusec != i.cusec {
		p.subkey.Zero()
		return nil, krbError(StatusDefectiveCredential, errorcode.KRB_AP_ERR_MUT_FAIL,
			fmt.Sprintf("AP-REP echoes time %s.%06d, our authenticator had %s.%06d (not a reply to our request)",
				fmtTime(p.ctime), p.cusec, fmtTime(i.ctime), i.cusec), nil)
	}
	if err := i.establishLocked(&p, uint64(p.seq)); err != nil {
		return nil, err
	}
	return i.ctx, nil
}

// establishLocked builds the context. rep is nil without mutual
// authentication.
func (i *Initiator) establishLocked(rep *apRepPart, recvSeq uint64) error {
	var accSubkey Key
	if rep != nil {
		accSubkey = rep.subkey
	}
	f := i.reqFlags | FlagProtReady
	ctx, err := newContext(contextParams{
		initiator:      true,
		flags:          f,
		mech:           i.mech,
		initName:       i.initName,
		acceptName:     i.acceptName,
		expiry:         i.cfg.TicketEndTime,
		sessionKey:     i.sessionKey,
		subkey:         i.subkey,
		acceptorSubkey: accSubkey,
		sendSeq:        uint64(i.seq),
		recvSeq:        recvSeq,
	})
	// The keys now belong to the context (zeroed by newContext on failure).
	i.sessionKey, i.subkey = Key{}, Key{}
	if err != nil {
		return err
	}
	i.ctx = ctx
	i.state = initDone
	return nil
}

// failLocked records a final failure and wipes the keys.
func (i *Initiator) failLocked(err error) {
	i.state = initFailed
	i.err = err
	i.sessionKey.Zero()
	i.subkey.Zero()
}

// Context returns the established context. Before establishment it fails:
// with mutual authentication the acceptor's reply must go to Complete
// first.
func (i *Initiator) Context() (*Context, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch i.state {
	case initDone:
		return i.ctx, nil
	case initFailed:
		return nil, i.err
	case initSent:
		return nil, newError(StatusContinueNeeded, MinorNone, "context not established: pass the acceptor's reply to Complete", nil)
	}
	return nil, newError(StatusContinueNeeded, MinorNone, "context not established: call InitialToken first", nil)
}
