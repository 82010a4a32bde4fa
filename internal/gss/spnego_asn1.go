package gss

import (
	"bytes"
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
