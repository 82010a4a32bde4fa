package gss

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// SPNEGO (RFC 4178) on the acceptor side, for Kerberos 5 only.
//
// The initiator's first token is an RFC 2743 §3.1 framed token with the
// SPNEGO OID 1.3.6.1.5.5.2 whose inner token is a NegTokenInit; every
// later token either way is a bare NegTokenResp (RFC 4178 §4.2):
//
//	NegotiationToken ::= CHOICE {
//	    negTokenInit  [0] NegTokenInit,
//	    negTokenResp  [1] NegTokenResp }
//	NegTokenInit ::= SEQUENCE {
//	    mechTypes     [0] MechTypeList,
//	    reqFlags      [1] ContextFlags  OPTIONAL,
//	    mechToken     [2] OCTET STRING  OPTIONAL,
//	    mechListMIC   [3] OCTET STRING  OPTIONAL, ... }
//	NegTokenResp ::= SEQUENCE {
//	    negState      [0] ENUMERATED    OPTIONAL,
//	    supportedMech [1] MechType      OPTIONAL,
//	    responseToken [2] OCTET STRING  OPTIONAL,
//	    mechListMIC   [3] OCTET STRING  OPTIONAL, ... }
//	MechTypeList ::= SEQUENCE OF MechType   -- MechType ::= OBJECT IDENTIFIER
//
// The codec is strict DER on cryptobyte, like der.go: minimal lengths,
// fields in order, elements after the last known field of a SEQUENCE
// skipped when well formed (the "..." extension marker). It is fuzzed by
// FuzzSPNEGO.

// negState values (RFC 4178 §4.2.2).
const (
	negStateAcceptCompleted  = 0
	negStateAcceptIncomplete = 1
	negStateReject           = 2
	negStateRequestMIC       = 3
	negStateAbsent           = -1 // no negState field
)

// Limits on what a NegTokenInit may list. MIT and Windows initiators
// offer a handful of mechanisms; the bounds keep a hostile token from
// costing more than its size.
const (
	maxSPNEGOMechs  = 32
	maxSPNEGOOIDLen = 64
)

// DER tags of the SPNEGO messages.
const (
	tagNegTokenInit cbasn1.Tag = 0 | 0x80 | 0x20 // [0] constructed
	tagNegTokenResp cbasn1.Tag = 1 | 0x80 | 0x20 // [1] constructed
)

// negTokenInit is a decoded NegTokenInit. The slices alias the token.
type negTokenInit struct {
	mechTypes    [][]byte // DER contents of each OID, in the initiator's order
	mechTypesDER []byte   // the whole MechTypeList element: the mechListMIC input (RFC 4178 §5)
	mechToken    []byte
	hasMechToken bool
	mechListMIC  []byte
	hasMIC       bool
}

// negTokenResp is a decoded or to-be-encoded NegTokenResp. The slices of
// a decoded one alias the token.
type negTokenResp struct {
	negState         int // negStateAbsent when the field is missing
	supportedMech    []byte
	responseToken    []byte
	hasResponseToken bool
	mechListMIC      []byte
	hasMIC           bool
}

// isSPNEGOToken reports whether b is framed as an RFC 2743 initial token
// of the SPNEGO mechanism. It does not validate the inner token.
func isSPNEGOToken(b []byte) bool {
	oid, _, err := parseTokenFraming(b)
	return err == nil && bytes.Equal(oid, oidSPNEGO)
}

// parseSPNEGOInit parses the initiator's first SPNEGO token: the RFC 2743
// framing with the SPNEGO OID around a NegTokenInit.
func parseSPNEGOInit(b []byte) (*negTokenInit, error) {
	oid, inner, err := parseTokenFraming(b)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(oid, oidSPNEGO) {
		return nil, newError(StatusBadMech, MinorBadMechOID,
			fmt.Sprintf("context token is for mechanism %s, not SPNEGO", oidString(oid)), nil)
	}
	return parseNegTokenInit(inner)
}

// parseNegTokenInit parses the innerContextToken of the initiator's first
// token: [0] NegTokenInit. RFC 4178 §4.2.1 makes mechTypes mandatory; an
// empty list is refused as well, since nothing could be negotiated.
func parseNegTokenInit(b []byte) (*negTokenInit, error) {
	s := cryptobyte.String(b)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, tagNegTokenInit) || !s.Empty() {
		return nil, spnegoDefective("not a DER [0] NegTokenInit")
	}
	var body cryptobyte.String
	if !seq.ReadASN1(&body, cbasn1.SEQUENCE) || !seq.Empty() {
		return nil, spnegoDefective("NegTokenInit is not a SEQUENCE")
	}
	t := &negTokenInit{}

	var mt cryptobyte.String
	if !body.ReadASN1(&mt, ctx(0)) {
		return nil, spnegoDefective("NegTokenInit has no mechTypes")
	}
	var list cryptobyte.String
	if !mt.ReadASN1Element(&list, cbasn1.SEQUENCE) || !mt.Empty() {
		return nil, spnegoDefective("NegTokenInit mechTypes is not a SEQUENCE OF")
	}
	t.mechTypesDER = list
	var oids cryptobyte.String
	if !list.ReadASN1(&oids, cbasn1.SEQUENCE) {
		return nil, spnegoDefective("NegTokenInit mechTypes is not a SEQUENCE OF")
	}
	for !oids.Empty() {
		var oid cryptobyte.String
		if !oids.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || len(oid) == 0 || len(oid) > maxSPNEGOOIDLen {
			return nil, spnegoDefective("NegTokenInit mechTypes holds something other than an OID")
		}
		if len(t.mechTypes) == maxSPNEGOMechs {
			return nil, spnegoDefective(fmt.Sprintf("NegTokenInit lists more than %d mechanisms", maxSPNEGOMechs))
		}
		t.mechTypes = append(t.mechTypes, oid)
	}
	if len(t.mechTypes) == 0 {
		return nil, spnegoDefective("NegTokenInit lists no mechanism")
	}

	// reqFlags [1] ContextFlags: informative only (RFC 4178 §4.2.1 says
	// the acceptor takes the flags from the mechanism), but it must be a
	// well-formed BIT STRING.
	var f cryptobyte.String
	var present bool
	if !body.ReadOptionalASN1(&f, &present, ctx(1)) {
		return nil, spnegoDefective("malformed NegTokenInit reqFlags")
	}
	if present {
		var bits cryptobyte.String
		if !f.ReadASN1(&bits, cbasn1.BIT_STRING) || !f.Empty() || len(bits) == 0 || bits[0] > 7 || (len(bits) == 1 && bits[0] != 0) {
			return nil, spnegoDefective("malformed NegTokenInit reqFlags")
		}
	}
	var ok bool
	if t.mechToken, t.hasMechToken, ok = readOptionalOctets(&body, 2); !ok {
		return nil, spnegoDefective("malformed NegTokenInit mechToken")
	}
	if t.mechListMIC, t.hasMIC, ok = readOptionalOctets(&body, 3); !ok {
		return nil, spnegoDefective("malformed NegTokenInit mechListMIC")
	}
	if !skipExtensions(&body, 3) {
		return nil, spnegoDefective("malformed NegTokenInit extension")
	}
	return t, nil
}

// parseNegTokenResp parses a bare [1] NegTokenResp, the form of every
// SPNEGO token after the first (RFC 4178 §4.2.2).
func parseNegTokenResp(b []byte) (*negTokenResp, error) {
	s := cryptobyte.String(b)
	var seq cryptobyte.String
	if !s.ReadASN1(&seq, tagNegTokenResp) || !s.Empty() {
		return nil, spnegoDefective("not a DER [1] NegTokenResp")
	}
	var body cryptobyte.String
	if !seq.ReadASN1(&body, cbasn1.SEQUENCE) || !seq.Empty() {
		return nil, spnegoDefective("NegTokenResp is not a SEQUENCE")
	}
	t := &negTokenResp{negState: negStateAbsent}

	var f cryptobyte.String
	var present bool
	if !body.ReadOptionalASN1(&f, &present, ctx(0)) {
		return nil, spnegoDefective("malformed NegTokenResp negState")
	}
	if present {
		var v int64
		if !f.ReadASN1Int64WithTag(&v, cbasn1.ENUM) || !f.Empty() || v < negStateAcceptCompleted || v > negStateRequestMIC {
			return nil, spnegoDefective("malformed NegTokenResp negState")
		}
		t.negState = int(v)
	}
	if !body.ReadOptionalASN1(&f, &present, ctx(1)) {
		return nil, spnegoDefective("malformed NegTokenResp supportedMech")
	}
	if present {
		var oid cryptobyte.String
		if !f.ReadASN1(&oid, cbasn1.OBJECT_IDENTIFIER) || !f.Empty() || len(oid) == 0 || len(oid) > maxSPNEGOOIDLen {
			return nil, spnegoDefective("malformed NegTokenResp supportedMech")
		}
		t.supportedMech = oid
	}
	var ok bool
	if t.responseToken, t.hasResponseToken, ok = readOptionalOctets(&body, 2); !ok {
		return nil, spnegoDefective("malformed NegTokenResp responseToken")
	}
	if t.mechListMIC, t.hasMIC, ok = readOptionalOctets(&body, 3); !ok {
		return nil, spnegoDefective("malformed NegTokenResp mechListMIC")
	}
	if !skipExtensions(&body, 3) {
		return nil, spnegoDefective("malformed NegTokenResp extension")
	}
	return t, nil
}

// readOptionalOctets reads an optional [n] OCTET STRING field.
func readOptionalOctets(s *cryptobyte.String, n uint8) (v []byte, present, ok bool) {
	var f cryptobyte.String
	if !s.ReadOptionalASN1(&f, &present, ctx(n)) {
		return nil, false, false
	}
	if !present {
		return nil, false, true
	}
	var o cryptobyte.String
	if !f.ReadASN1(&o, cbasn1.OCTET_STRING) || !f.Empty() {
		return nil, false, false
	}
	return o, true, true
}

// skipExtensions skips the elements after the known fields of a SEQUENCE
// with an extension marker: well-formed, context-specific, and numbered
// above last, the highest known field (so a known field out of order, or
// twice, is refused rather than skipped).
func skipExtensions(s *cryptobyte.String, last uint8) bool {
	for !s.Empty() {
		var e cryptobyte.String
		var tag cbasn1.Tag
		if !s.ReadAnyASN1Element(&e, &tag) {
			return false
		}
		if tag&0xc0 != 0x80 || uint8(tag&0x1f) <= last {
			return false
		}
	}
	return true
}

// marshalNegTokenResp encodes t as a bare [1] NegTokenResp.
func marshalNegTokenResp(t *negTokenResp) []byte {
	var b cryptobyte.Builder
	b.AddASN1(tagNegTokenResp, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			if t.negState != negStateAbsent {
				b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
					b.AddASN1Int64WithTag(int64(t.negState), cbasn1.ENUM)
				})
			}
			if t.supportedMech != nil {
				b.AddASN1(ctx(1), func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(t.supportedMech) })
				})
			}
			if t.hasResponseToken {
				b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { b.AddASN1OctetString(t.responseToken) })
			}
			if t.hasMIC {
				b.AddASN1(ctx(3), func(b *cryptobyte.Builder) { b.AddASN1OctetString(t.mechListMIC) })
			}
		})
	})
	// The builder fails only on lengths beyond 2^32, which the frame
	// limits rule out; BytesOrPanic would be the only panic on this path.
	out, err := b.Bytes()
	if err != nil {
		return nil
	}
	return out
}

// marshalSPNEGOInit encodes an initiator's first SPNEGO token: the RFC
// 2743 framing with the SPNEGO OID around [0] NegTokenInit listing mechs
// (DER OID contents), with the optimistic mechToken and mechListMIC when
// non-nil. The acceptor never sends one; it is the inverse of
// parseSPNEGOInit for initiators written on this package.
func marshalSPNEGOInit(mechs [][]byte, mechToken, mic []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(tagNegTokenInit, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(ctx(0), func(b *cryptobyte.Builder) {
				b.AddBytes(marshalMechTypeList(mechs))
			})
			if mechToken != nil {
				b.AddASN1(ctx(2), func(b *cryptobyte.Builder) { b.AddASN1OctetString(mechToken) })
			}
			if mic != nil {
				b.AddASN1(ctx(3), func(b *cryptobyte.Builder) { b.AddASN1OctetString(mic) })
			}
		})
	})
	inner, err := b.Bytes()
	if err != nil {
		return nil
	}
	out := make([]byte, 0, len(inner)+16)
	out = append(out, 0x60)
	out = appendDERLength(out, 2+len(oidSPNEGO)+len(inner))
	out = append(out, 0x06, byte(len(oidSPNEGO)))
	out = append(out, oidSPNEGO...)
	return append(out, inner...)
}

// marshalMechTypeList encodes a MechTypeList: the bytes both sides MIC.
func marshalMechTypeList(mechs [][]byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, m := range mechs {
			b.AddASN1(cbasn1.OBJECT_IDENTIFIER, func(b *cryptobyte.Builder) { b.AddBytes(m) })
		}
	})
	out, err := b.Bytes()
	if err != nil {
		return nil
	}
	return out
}

// spnegoDefective is the error for a malformed SPNEGO token.
func spnegoDefective(msg string) *Error {
	return newError(StatusDefectiveToken, MinorNone, "SPNEGO: "+msg, nil)
}

// isKRB5Mech reports whether oid (DER contents) names Kerberos 5, under
// the standard OID or Microsoft's.
func isKRB5Mech(oid []byte) bool {
	return bytes.Equal(oid, oidKRB5) || bytes.Equal(oid, oidKRB5MS)
}

// handshakeState is where a Handshake stands.
type handshakeState uint8

const (
	hsStart          handshakeState = iota // nothing received yet
	hsAwaitMechToken                       // SPNEGO: krb5 selected, its AP-REQ not received yet
	hsAwaitMIC                             // SPNEGO: context established, the initiator's mechListMIC awaited
	hsDone                                 // finished, successfully or not
)

// maxHandshakeTokens bounds the tokens one Handshake takes from the
// initiator: NegTokenInit, the krb5 token after a counter-proposal, and
// the mechListMIC.
const maxHandshakeTokens = 3

// Handshake establishes one acceptor context over as many initiator tokens
// as the exchange needs (the loop of gss_accept_sec_context calls): one for
// a raw krb5 AP-REQ; for SPNEGO (RFC 4178) one when the MIC exchange is not
// needed, two when the acceptor sends a mechListMIC first and waits for
// the initiator's, and one more when the initiator's preferred mechanism
// was not Kerberos and it must send its AP-REQ after the counter-proposal.
//
// SPNEGO policy. The acceptor selects the first Kerberos OID the initiator
// lists and answers with that OID as supportedMech: 1.2.840.48018.1.2.2
// when the client listed Microsoft's OID first, as MS-SPNG asks. When it
// is the first mechanism and an optimistic token came with it, the token
// is processed at once; otherwise the answer is request-mic (Kerberos
// further down the list) or accept-incomplete (no optimistic token) and
// the initiator sends its AP-REQ next. A NegTokenInit without any Kerberos
// OID is rejected (GSS_S_BAD_MECH).
//
// mechListMIC (RFC 4178 §5). The initiator's MIC, when sent, is verified
// over the DER MechTypeList with the krb5 context. The acceptor sends its
// own when the initiator listed more than one mechanism, when Kerberos was
// not its first choice, or when it sent a MIC itself; then the exchange
// ends only once both MICs have been checked. The acceptor's MIC is made
// with its first send sequence number and the initiator's MIC consumes
// the initiator's first one, as MIT does, before any Wrap or MIC of the
// session. The context returned at the end is complete and records that
// it was negotiated through SPNEGO (Context.ViaSPNEGO).
//
// A Handshake is used by one goroutine; the Acceptor behind it may be
// shared.
type Handshake struct {
	a      *Acceptor
	state  handshakeState
	tokens int

	mechTypesDER  []byte // copy of the initiator's MechTypeList
	supportedMech []byte // the OID answered as supportedMech
	micRequired   bool   // a mechListMIC exchange must take place
	ctx           *Context
}

// NewHandshake starts the establishment of one context.
func (a *Acceptor) NewHandshake() *Handshake { return &Handshake{a: a} }

// Step processes the next context token from the initiator. It returns the
// token to send back (nil when there is none) and, once the context is
// established, the context. ctx == nil and err == nil means the exchange
// continues: send out and call Step with the initiator's next token.
//
// On failure err is a *Error (the Acceptor table, plus SPNEGO's: malformed
// negotiation tokens are GSS_S_DEFECTIVE_TOKEN, no Kerberos mechanism
// offered GSS_S_BAD_MECH, a mechListMIC that does not verify
// GSS_S_BAD_SIG) and out, when non-nil, is the error token to send before
// closing: a KRB-ERROR token for raw krb5, a NegTokenResp with negState
// reject (carrying the KRB-ERROR when there is one) for SPNEGO. After a
// context or an error the Handshake is finished.
func (h *Handshake) Step(token []byte) (ctx *Context, out []byte, err error) {
	if h.state == hsDone {
		return nil, nil, newError(StatusFailure, MinorNone, "handshake already finished", nil)
	}
	h.tokens++
	defer func() {
		if r := recover(); r != nil {
			h.abort()
			ctx, out = nil, nil
			err = newError(StatusDefectiveToken, MinorNone, "internal error processing an SPNEGO token",
				fmt.Errorf("%w: %v", errDecodePanic, r))
		}
		if err != nil || ctx != nil {
			h.state = hsDone
		}
	}()
	switch h.state {
	case hsStart:
		if !isSPNEGOToken(token) {
			return h.a.acceptKRB5(token)
		}
		return h.negTokenInit(token)
	default:
		if h.tokens > maxHandshakeTokens {
			h.abort()
			return nil, nil, spnegoDefective("too many negotiation tokens")
		}
		return h.negTokenResp(token)
	}
}

// Close abandons a handshake that will not finish (the connection broke):
// a context established but still waiting for the initiator's mechListMIC
// is deleted. It is a no-op on a finished Handshake; a context Step
// returned belongs to the caller.
func (h *Handshake) Close() {
	if h.state != hsDone {
		h.abort()
		h.state = hsDone
	}
}

// abort drops the pending context, if any.
func (h *Handshake) abort() {
	if h.ctx != nil {
		h.ctx.Delete()
		h.ctx = nil
	}
}

// negTokenInit processes the initiator's first SPNEGO token.
func (h *Handshake) negTokenInit(token []byte) (*Context, []byte, error) {
	init, err := parseSPNEGOInit(token)
	if err != nil {
		return nil, h.reject(nil), err
	}
	idx := -1
	for i, m := range init.mechTypes {
		if isKRB5Mech(m) {
			idx = i
			break
		}
	}
	if idx < 0 {
		names := make([]string, len(init.mechTypes))
		for i, m := range init.mechTypes {
			names[i] = oidString(m)
		}
		return nil, h.reject(nil), newError(StatusBadMech, MinorBadMechOID,
			fmt.Sprintf("SPNEGO: initiator offers %v, none of them Kerberos 5", names), nil)
	}
	h.mechTypesDER = bytes.Clone(init.mechTypesDER)
	if bytes.Equal(init.mechTypes[idx], oidKRB5MS) {
		h.supportedMech = oidKRB5MS
	} else {
		h.supportedMech = oidKRB5
	}
	// RFC 4178 §5: the exchange is optional only when the initiator's
	// first choice, and only choice, was taken; the initiator's own MIC
	// always calls for ours.
	h.micRequired = idx > 0 || len(init.mechTypes) > 1 || init.hasMIC

	if idx > 0 || !init.hasMechToken {
		// The optimistic token, if any, is for a mechanism we do not
		// speak: counter-propose Kerberos (RFC 4178 §3.2 step 3c).
		state := negStateAcceptIncomplete
		if idx > 0 {
			state = negStateRequestMIC
		}
		h.state = hsAwaitMechToken
		return nil, marshalNegTokenResp(&negTokenResp{negState: state, supportedMech: h.supportedMech}), nil
	}
	return h.mechToken(init.mechToken, init.mechListMIC, init.hasMIC)
}

// negTokenResp processes a later token from the initiator.
func (h *Handshake) negTokenResp(token []byte) (*Context, []byte, error) {
	resp, err := parseNegTokenResp(token)
	if err != nil {
		h.abort()
		return nil, h.reject(nil), err
	}
	if resp.negState == negStateReject {
		h.abort()
		return nil, nil, newError(StatusFailure, MinorNone, "SPNEGO: initiator rejected the negotiation", nil)
	}
	switch h.state {
	case hsAwaitMechToken:
		if !resp.hasResponseToken {
			return nil, h.reject(nil), spnegoDefective("initiator sent no Kerberos token after the counter-proposal")
		}
		return h.mechToken(resp.responseToken, resp.mechListMIC, resp.hasMIC)
	case hsAwaitMIC:
		if resp.hasResponseToken {
			h.abort()
			return nil, h.reject(nil), spnegoDefective("initiator sent a mechanism token after the context was established")
		}
		if !resp.hasMIC {
			h.abort()
			return nil, h.reject(nil), spnegoDefective("initiator sent no mechListMIC, which this negotiation requires")
		}
		if err := h.verifyMIC(resp.mechListMIC); err != nil {
			return nil, h.reject(nil), err
		}
		ctx := h.ctx
		h.ctx = nil
		return ctx, nil, nil
	}
	return nil, nil, newError(StatusFailure, MinorNone, "handshake in an impossible state", nil)
}

// mechToken runs the krb5 acceptor on the initiator's AP-REQ token and
// then the mechListMIC exchange.
func (h *Handshake) mechToken(tok, micIn []byte, hasMIC bool) (*Context, []byte, error) {
	// acceptKRB5, not Accept: an SPNEGO token nested inside SPNEGO is
	// refused by the krb5 framing check like any foreign mechanism.
	c, rep, err := h.a.acceptKRB5(tok)
	if err != nil {
		return nil, h.reject(rep), err
	}
	c.viaSPNEGO = true
	h.ctx = c
	resp := negTokenResp{
		negState:         negStateAcceptCompleted,
		supportedMech:    h.supportedMech,
		responseToken:    rep,
		hasResponseToken: rep != nil,
	}
	if hasMIC {
		h.micRequired = true
		if err := h.verifyMIC(micIn); err != nil {
			return nil, h.reject(nil), err
		}
	}
	// Every context this acceptor makes has INTEG (the krb5 mechanism
	// always offers it), the condition RFC 4178 §5 puts on the exchange.
	if h.micRequired {
		mic, err := c.GetMIC(h.mechTypesDER)
		if err != nil {
			h.abort()
			return nil, h.reject(nil), err
		}
		resp.mechListMIC, resp.hasMIC = mic, true
		if !hasMIC {
			resp.negState = negStateAcceptIncomplete
			h.state = hsAwaitMIC
			return nil, marshalNegTokenResp(&resp), nil
		}
	}
	h.ctx = nil
	return c, marshalNegTokenResp(&resp), nil
}

// verifyMIC checks the initiator's mechListMIC; on failure the pending
// context is deleted.
func (h *Handshake) verifyMIC(mic []byte) error {
	if err := h.ctx.VerifyMIC(h.mechTypesDER, mic); err != nil {
		h.abort()
		var ge *Error
		major := StatusBadSig
		if errors.As(err, &ge) && ge.Major.IsError() {
			major = ge.Major
		}
		return newError(major, MinorNone, "SPNEGO: initiator's mechListMIC does not verify (mechanism list tampered with?)", err)
	}
	return nil
}

// reject returns the NegTokenResp that ends a failed negotiation, carrying
// the mechanism's error token when there is one (MIT's initiator then
// reports the Kerberos error rather than a bare negotiation failure).
func (h *Handshake) reject(mechErr []byte) []byte {
	resp := negTokenResp{negState: negStateReject}
	if mechErr != nil {
		resp.supportedMech = h.supportedMech
		resp.responseToken, resp.hasResponseToken = mechErr, true
	}
	return marshalNegTokenResp(&resp)
}

// acceptSPNEGOOnce is Accept for an SPNEGO token: it succeeds when the
// negotiation completes with this one token.
func (a *Acceptor) acceptSPNEGOOnce(token []byte) (*Context, []byte, error) {
	h := a.NewHandshake()
	ctx, out, err := h.Step(token)
	if err != nil || ctx != nil {
		return ctx, out, err
	}
	h.Close()
	return nil, nil, newError(StatusFailure, MinorNone,
		"this SPNEGO negotiation needs more than one token; use Acceptor.NewHandshake", nil)
}
