package gss

import (
	"fmt"
	"io"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// RFC 4121 §2 key usage numbers for per-message tokens.
const (
	usageAcceptorSeal  uint32 = 22 // KG-USAGE-ACCEPTOR-SEAL: Wrap tokens sent by the acceptor
	usageAcceptorSign  uint32 = 23 // KG-USAGE-ACCEPTOR-SIGN: MIC tokens sent by the acceptor
	usageInitiatorSeal uint32 = 24 // KG-USAGE-INITIATOR-SEAL: Wrap tokens sent by the initiator
	usageInitiatorSign uint32 = 25 // KG-USAGE-INITIATOR-SIGN: MIC tokens sent by the initiator
)

// RFC 4121 §4.2.2 token flags.
const (
	tokFlagSentByAcceptor byte = 0x01
	tokFlagSealed         byte = 0x02
	tokFlagAcceptorSubkey byte = 0x04
)

// usagePair is the seal (Wrap) and sign (MIC) keys of one direction for
// one base key.
type usagePair struct {
	seal, sign *krb5crypto.Usage
}

// derivePair derives the seal and sign keys of k for the given usages.
func derivePair(k Key, seal, sign uint32) (usagePair, error) {
	s, err := krb5crypto.DeriveUsage(k.Etype, k.Value, seal)
	if err != nil {
		return usagePair{}, err
	}
	g, err := krb5crypto.DeriveUsage(k.Etype, k.Value, sign)
	if err != nil {
		s.Zero()
		return usagePair{}, err
	}
	return usagePair{seal: s, sign: g}, nil
}

func (p *usagePair) zero() {
	if p.seal != nil {
		p.seal.Zero()
	}
	if p.sign != nil {
		p.sign.Zero()
	}
	*p = usagePair{}
}

// tokenKeys holds the per-message keys of a context, derived once from the
// base keys so that no token pays for key derivation.
//
// Derivation is lazy: it happens on the context's first per-message call,
// not when the context is made. An acceptor exports its contexts without
// ever protecting a message, so it never pays for these keys; the worker
// that imports the context derives them once, on the session's first
// token.
//
// Key choice follows RFC 4121 §2 as MIT implements it (k5sealv3.c):
// both sides send with the acceptor subkey when one was asserted, else with
// the initiator subkey (c.subkey, which is the session key when the
// initiator sent none). A receiver uses the acceptor subkey only when it has
// one and the token carries the AcceptorSubkey flag; otherwise it uses
// c.subkey, because an initiator may send tokens before it has processed
// the AP-REP. That fallback set is rarely needed, so it is derived lazily.
type tokenKeys struct {
	// Immutable after setupKeys.
	sendFlags byte      // flags every token we send carries: SentByAcceptor, AcceptorSubkey
	haveASK   bool      // an acceptor subkey exists (recv is keyed with it)
	confRand  io.Reader // source of sealed-token confounders; nil means crypto/rand (tests pin it)

	// Guarded by Context.mu; set once by deriveLocked.
	derived bool
	send    usagePair // this side's seal/sign usages under the sending key
	recv    usagePair // the peer's seal/sign usages under the sending key

	// Guarded by Context.mu: the peer's usages under c.subkey, used for
	// tokens without the AcceptorSubkey flag when haveASK is set.
	fallback     usagePair
	fallbackDone bool  // fallback derivation was attempted
	fallbackErr  error // why the fallback keys could not be derived
}

// zero overwrites every derived key.
func (k *tokenKeys) zero() {
	k.send.zero()
	k.recv.zero()
	k.fallback.zero()
	k.fallbackDone = true
	k.fallbackErr = errKeysZeroed
}

var errKeysZeroed = newError(StatusNoContext, MinorNone, "context keys have been zeroed", nil)

// usages returns the seal and sign usage numbers for tokens sent by the
// acceptor (acceptorSent) or by the initiator (RFC 4121 §2).
func usages(acceptorSent bool) (seal, sign uint32) {
	if acceptorSent {
		return usageAcceptorSeal, usageAcceptorSign
	}
	return usageInitiatorSeal, usageInitiatorSign
}

// setupKeys checks that the context's keys can protect per-message tokens
// and fixes the flags its tokens carry; deriveLocked derives the keys on
// first use. Only RFC 4121 CFX tokens are supported, so the sending enctype
// must be one of the four AES enctypes (17-20); RFC 1964 (DES3) and RFC 4757
// (RC4) tokens are not implemented.
func (c *Context) setupKeys() error {
	base := c.sendBaseKey()
	if base.IsZero() {
		return newError(StatusFailure, MinorNone, "no key for per-message tokens", nil)
	}
	if !krb5crypto.Supported(base.Etype) {
		return newError(StatusFailure, MinorNone,
			fmt.Sprintf("enctype %d cannot protect RFC 4121 tokens (need 17-20)", base.Etype), nil)
	}
	if n, err := krb5crypto.KeySize(base.Etype); err != nil || n != len(base.Value) {
		return newError(StatusFailure, MinorNone,
			fmt.Sprintf("enctype %d key has %d bytes", base.Etype, len(base.Value)), err)
	}
	if !c.initiator {
		c.keys.sendFlags |= tokFlagSentByAcceptor
	}
	if !c.acceptorSubkey.IsZero() {
		c.keys.haveASK = true
		c.keys.sendFlags |= tokFlagAcceptorSubkey
	}
	return nil
}

// sendBaseKey is the key both sides send with (RFC 4121 §2): the acceptor
// subkey when one was asserted, else c.subkey.
func (c *Context) sendBaseKey() Key {
	if !c.acceptorSubkey.IsZero() {
		return c.acceptorSubkey
	}
	return c.subkey
}

// readyLocked returns the sticky error, if any, and otherwise makes sure
// the per-message keys are derived. Every per-message call starts with it.
// c.mu is held.
func (c *Context) readyLocked() error {
	if err := c.usableLocked(); err != nil {
		return err
	}
	if c.keys.derived {
		return nil
	}
	base := c.sendBaseKey()
	ourSeal, ourSign := usages(!c.initiator)
	peerSeal, peerSign := usages(c.initiator)
	send, err := derivePair(base, ourSeal, ourSign)
	if err != nil {
		return newError(StatusFailure, MinorNone, "deriving send keys", err)
	}
	recv, err := derivePair(base, peerSeal, peerSign)
	if err != nil {
		send.zero()
		return newError(StatusFailure, MinorNone, "deriving receive keys", err)
	}
	c.keys.send, c.keys.recv, c.keys.derived = send, recv, true
	return nil
}

// recvKeysLocked returns the keys for a received token with the given
// flags byte: the acceptor-subkey set when we have one and the token says
// it used it, else the c.subkey set, derived on first use. c.mu is held.
func (c *Context) recvKeysLocked(tokFlags byte) (usagePair, error) {
	k := &c.keys
	if !k.haveASK || tokFlags&tokFlagAcceptorSubkey != 0 {
		return k.recv, nil
	}
	if !k.fallbackDone {
		k.fallbackDone = true
		peerSeal, peerSign := usages(c.initiator)
		p, err := derivePair(c.subkey, peerSeal, peerSign)
		if err != nil {
			k.fallbackErr = newError(StatusBadSig, MinorBadFlags,
				"token without the acceptor-subkey flag, and the initiator subkey cannot protect CFX tokens", err)
		} else {
			k.fallback = p
		}
	}
	if k.fallbackErr != nil {
		return usagePair{}, k.fallbackErr
	}
	return k.fallback, nil
}
