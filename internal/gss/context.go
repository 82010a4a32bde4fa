package gss

import (
	"bytes"
	"sync"
	"time"
)

// Mechanism OIDs, as DER contents (no tag, no length).
var (
	// oidKRB5 is the Kerberos 5 GSS-API mechanism, 1.2.840.113554.1.2.2.
	oidKRB5 = []byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	// oidKRB5MS is the OID early Microsoft clients use for Kerberos 5,
	// 1.2.840.48018.1.2.2 (a mis-encoding of the real one that stuck).
	oidKRB5MS = []byte{0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02}
	// oidSPNEGO is RFC 4178's 1.3.6.1.5.5.2.
	oidSPNEGO = []byte{0x2b, 0x06, 0x01, 0x05, 0x05, 0x02}
)

// Context is an established RFC 4121 security context, seen from either side.
//
// It is made by Acceptor.Accept, by an Initiator, or by Importer.Import. Its
// per-message methods (Wrap, Unwrap, GetMIC, VerifyMIC) are safe for
// concurrent use. After Export or Delete every method fails with
// GSS_S_NO_CONTEXT, and the key material is zeroed: a context lives in at
// most one place at a time (RFC 2743 §2.2.8).
type Context struct {
	// Immutable after establishment or import.
	initiator      bool   // locally initiated
	flags          Flags  // ret_flags
	mech           []byte // mechanism OID the peer used (oidKRB5 or oidKRB5MS)
	viaSPNEGO      bool   // established inside SPNEGO
	initName       string // initiator principal, "alice@REALM"
	acceptName     string // acceptor principal, "host/h.example@REALM"
	expiry         time.Time
	sessionKey     Key    // ticket session key
	subkey         Key    // initiator's authenticator subkey, or the session key if none (MIT ctx->subkey)
	acceptorSubkey Key    // acceptor subkey from the AP-REP; zero if none was asserted
	delegated      []byte // delegated KRB-CRED (DER) when FlagDeleg is set
	keys           tokenKeys

	mu sync.Mutex
	// Guarded by mu.
	sendSeq uint64             // next SND_SEQ to put in a Wrap or MIC token
	recv    seqState           // receive window for the peer's tokens
	err     error              // sticky: once set (export, delete), every call returns it
	h0      [cfxHeaderLen]byte // Unwrap's scratch header copy (a local would escape to the heap)
}

// contextParams is everything needed to build a Context; the acceptor, the
// initiator and Import fill it in.
type contextParams struct {
	initiator      bool
	flags          Flags
	mech           []byte
	viaSPNEGO      bool
	initName       string
	acceptName     string
	expiry         time.Time
	sessionKey     Key
	subkey         Key
	acceptorSubkey Key
	delegated      []byte
	sendSeq        uint64 // first sequence number this side sends
	recvSeq        uint64 // first sequence number expected from the peer
}

// newContext builds a context from p. It takes ownership of the key bytes
// in p and derives the per-message keys once.
func newContext(p contextParams) (*Context, error) {
	c := &Context{
		initiator:      p.initiator,
		flags:          p.flags,
		mech:           p.mech,
		viaSPNEGO:      p.viaSPNEGO,
		initName:       p.initName,
		acceptName:     p.acceptName,
		expiry:         p.expiry,
		sessionKey:     p.sessionKey,
		subkey:         p.subkey,
		acceptorSubkey: p.acceptorSubkey,
		delegated:      p.delegated,
		sendSeq:        p.sendSeq,
		recv:           newSeqState(p.recvSeq, p.flags&FlagReplay != 0, p.flags&FlagSequence != 0),
	}
	if c.mech == nil {
		c.mech = oidKRB5
	}
	if err := c.setupKeys(); err != nil {
		c.zeroLocked()
		return nil, err
	}
	return c, nil
}

// Flags returns the context's ret_flags.
func (c *Context) Flags() Flags { return c.flags }

// IsInitiator reports whether this side initiated the context.
func (c *Context) IsInitiator() bool { return c.initiator }

// InitiatorName returns the initiator's principal name, "user@REALM".
func (c *Context) InitiatorName() string { return c.initName }

// AcceptorName returns the acceptor's principal name, "service/host@REALM".
// On the accepting side it is the ticket's sname and realm, which nothing
// authenticates but the key that decrypted the ticket: principals sharing
// a key cannot be told apart (see AcceptorConfig.Services).
func (c *Context) AcceptorName() string { return c.acceptName }

// PeerName returns the other side's principal name.
func (c *Context) PeerName() string {
	if c.initiator {
		return c.acceptName
	}
	return c.initName
}

// Expiry returns the time the context expires: the ticket end time. Like
// MIT, per-message calls do not check it; Import refuses an expired context.
func (c *Context) Expiry() time.Time { return c.expiry }

// Enctype returns the enctype of the keys protecting per-message tokens.
func (c *Context) Enctype() int32 {
	if !c.acceptorSubkey.IsZero() {
		return c.acceptorSubkey.Etype
	}
	return c.subkey.Etype
}

// HaveAcceptorSubkey reports whether an acceptor subkey was asserted.
func (c *Context) HaveAcceptorSubkey() bool { return !c.acceptorSubkey.IsZero() }

// ViaSPNEGO reports whether the context was negotiated inside SPNEGO.
func (c *Context) ViaSPNEGO() bool { return c.viaSPNEGO }

// MicrosoftOID reports whether the peer used the Microsoft Kerberos OID.
func (c *Context) MicrosoftOID() bool { return bytes.Equal(c.mech, oidKRB5MS) }

// DelegatedCredential returns the delegated KRB-CRED (DER), its enc-part in
// the clear, or nil when the initiator delegated nothing (or delegation is
// off). The slice is the context's own, not a copy: Delete and Export zero
// it, so a caller that needs it longer copies it, and wipes its copy.
func (c *Context) DelegatedCredential() []byte { return c.delegated }

// Delete destroys the context (gss_delete_sec_context): keys are zeroed and
// every later call fails with GSS_S_NO_CONTEXT. It is idempotent.
func (c *Context) Delete() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = newError(StatusNoContext, MinorNone, "context deleted", nil)
	}
	c.zeroLocked()
}

// usableLocked returns the sticky error, if any. c.mu must be held.
func (c *Context) usableLocked() error { return c.err }

// zeroLocked overwrites every key the context holds.
func (c *Context) zeroLocked() {
	c.sessionKey.Zero()
	c.subkey.Zero()
	c.acceptorSubkey.Zero()
	clear(c.delegated)
	c.delegated = nil
	c.keys.zero()
}
