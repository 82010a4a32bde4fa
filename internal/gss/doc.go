// Package gss implements the Kerberos 5 GSS-API mechanism (RFC 4121) for
// the acceptor daemon: context establishment on both sides, the
// per-message tokens, and moving an established context between processes.
//
// # Establishment
//
// An Acceptor holds the service keys of a keytab and a ReplayCache. Its
// Accept method takes the initiator's first context token (RFC 2743 §3.1
// framing, the krb5 OID 1.2.840.113554.1.2.2 or Microsoft's
// 1.2.840.48018.1.2.2, TOK_ID 01 00, an RFC 4120 AP-REQ), verifies it as
// RFC 4120 §3.2.3 and RFC 4121 §4.1.1 require, and returns an established
// *Context plus the reply token: an AP-REP (TOK_ID 02 00) with a fresh
// acceptor subkey when the initiator asked for mutual authentication,
// nothing otherwise. On failure it returns a *Error and, when the initiator
// waits for a reply, a KRB-ERROR token (TOK_ID 03 00). The behaviour
// follows MIT krb5's acceptor, so that MIT's gss-client and other MIT,
// Heimdal, Windows and Java initiators work unchanged; the places where it
// is deliberately stricter (AES only, the GSS checksum required, channel
// bindings enforced once configured, strict DER framing) are documented on
// the types.
//
// SPNEGO (RFC 4178, OID 1.3.6.1.5.5.2) is negotiated in front of the
// Kerberos mechanism: Accept takes a NegTokenInit with an optimistic
// Kerberos token in one step, and a Handshake (NewHandshake, Step) runs the
// exchanges that need more legs: a counter-proposal when Kerberos is not
// the client's first choice, and the mechListMIC exchange. The context is
// complete, MICs verified, before it is returned, so it can be exported;
// Context.ViaSPNEGO records how it was made.
//
// An Initiator does the client side with a service ticket obtained
// elsewhere (gokrb5's client): InitialToken, then Complete with the
// acceptor's reply when mutual authentication was requested.
//
// # Errors
//
// Every failure is a *Error carrying the RFC 2743 major status, testable
// with errors.Is(err, gss.StatusBadSig) and the like, a minor code and,
// for Kerberos protocol failures, the RFC 4120 §7.5.9 error code. Messages
// say what was wrong in operator terms and never contain key material: Key
// values do not format their bytes, and keys are zeroed once no longer
// needed.
//
// # Untrusted input
//
// The three messages every handshake decodes (AP-REQ, EncTicketPart,
// Authenticator) are read by strict DER decoders written on cryptobyte
// (der.go), several times faster than gokrb5's reflective decoder and
// checked against it; the rarer messages (KRB-CRED, AP-REP, KRB-ERROR) go
// through gokrb5, each call guarded against panics. Accept recovers as a
// last resort, so no token can crash the process. The parsers are fuzzed
// (FuzzParseInitialToken, FuzzParseAuthChecksum, FuzzDERDecoders,
// FuzzAccept, FuzzSPNEGO, FuzzComplete).
package gss
