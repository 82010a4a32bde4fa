package gss

import (
	"bytes"
	"errors"
	"fmt"
)

// isKRB5Mech reports whether oid (DER contents) names Kerberos 5, under
// the standard OID or Microsoft's.
func isKRB5Mech(oid []byte) bool {
	return bytes.Equal(oid, oidKRB5) || bytes.Equal(oid, oidKRB5MS)
}

// negPhase is where a Handshake stands in its exchange.
type negPhase uint8

const (
	hsStart          negPhase = iota // nothing received yet
	hsAwaitMechToken                 // SPNEGO: krb5 selected, its AP-REQ not received yet
	hsAwaitMIC                       // SPNEGO: context established, the initiator's mechListMIC awaited
	hsDone                           // finished, successfully or not
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
	phase  negPhase
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
	if h.phase == hsDone {
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
			h.phase = hsDone
		}
	}()
	switch h.phase {
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
	if h.phase != hsDone {
		h.abort()
		h.phase = hsDone
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
		h.phase = hsAwaitMechToken
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
	switch h.phase {
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
			h.phase = hsAwaitMIC
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
