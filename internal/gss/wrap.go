package gss

import (
	"encoding/binary"
	"errors"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// RFC 4121 §4.2.6 token identifiers and layout.
const (
	tokIDWrap0, tokIDWrap1 = 0x05, 0x04 // TOK_ID of a Wrap token
	tokIDMIC0, tokIDMIC1   = 0x04, 0x04 // TOK_ID of a MIC token
	cfxHeaderLen           = 16         // every CFX token starts with a 16-byte header
)

// putWrapHeader writes a Wrap token header (RFC 4121 §4.2.6.2) to h.
func putWrapHeader(h []byte, flags byte, ec, rrc uint16, seq uint64) {
	h[0], h[1], h[2], h[3] = tokIDWrap0, tokIDWrap1, flags, 0xff
	binary.BigEndian.PutUint16(h[4:6], ec)
	binary.BigEndian.PutUint16(h[6:8], rrc)
	binary.BigEndian.PutUint64(h[8:16], seq)
}

// Wrap protects msg as an RFC 4121 §4.2.6.2 Wrap token (gss_wrap): sealed
// (encrypted and integrity-protected) when conf is true, integrity-only
// otherwise. Each token takes the next send sequence number, shared with
// GetMIC.
//
// As MIT does, a sealed token uses EC = 0 (AES-CTS needs no padding) and
// the header copy inside the ciphertext; an integrity-only token carries
// the checksum after the payload with EC = checksum length. RRC is always
// 0. Both kinds use the SEAL key usage, 22 from the acceptor and 24 from
// the initiator (RFC 4121 §2).
func (c *Context) Wrap(msg []byte, conf bool) ([]byte, error) {
	return c.AppendWrap(nil, conf, msg)
}

// AppendWrap appends the Wrap token of the concatenation of parts to dst
// and returns the extended slice: the token Wrap makes of that message,
// built in place (dst grows at most once, and the parts are copied once, into
// the token). On error dst is returned unchanged. The stream data path uses
// it to wrap a record's type byte and payload straight into its frame buffer.
func (c *Context) AppendWrap(dst []byte, conf bool, parts ...[]byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.readyLocked(); err != nil {
		return dst, err
	}
	k := &c.keys
	u := k.send.seal
	seq := c.sendSeq
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	start := len(dst)
	out := dst
	if conf {
		flags := k.sendFlags | tokFlagSealed
		ctLen := krb5crypto.CiphertextLen(u.Etype(), n+cfxHeaderLen)
		out = grow(dst, cfxHeaderLen+ctLen)[:start+cfxHeaderLen]
		hdr := out[start:]
		putWrapHeader(hdr, flags, 0, 0, seq)
		// Encrypt(payload || header copy); with RRC = 0 and EC = 0 the
		// copy is the header itself (RFC 4121 §4.2.4).
		var ps [4][]byte
		all := append(append(ps[:0], parts...), hdr)
		var err error
		out, err = u.Encrypt(out, k.confRand, all...)
		if err != nil {
			return dst, newError(StatusFailure, MinorNone, "encrypting wrap token", err)
		}
	} else {
		h := u.ChecksumSize()
		out = grow(dst, cfxHeaderLen+n+h)[:start+cfxHeaderLen+n]
		// The checksum covers payload || header with EC = RRC = 0 (RFC
		// 4121 §4.2.4); EC is set to the checksum length afterwards.
		hdr := out[start : start+cfxHeaderLen]
		putWrapHeader(hdr, k.sendFlags, 0, 0, seq)
		off := start + cfxHeaderLen
		for _, p := range parts {
			off += copy(out[off:], p)
		}
		out = u.Checksum(out, out[start+cfxHeaderLen:], hdr)
		binary.BigEndian.PutUint16(out[start+4:start+6], uint16(h))
	}
	c.sendSeq++
	return out, nil
}

// grow returns b with room for n more bytes beyond its length (its length
// unchanged), reallocating at most once.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b
	}
	nb := make([]byte, len(b), len(b)+n)
	copy(nb, b)
	return nb
}

// Unwrap verifies and opens a Wrap token from the peer (gss_unwrap),
// returning the message and whether it was sealed.
//
// Checks, in order (RFC 4121 §4.2.6.2, MIT k5sealv3.c):
// header length, TOK_ID 05 04 and the 0xff filler (DEFECTIVE_TOKEN), the
// SentByAcceptor flag against the direction (BAD_SIG, MinorBadDirection),
// then the body is rotated left by RRC. A sealed token must be long enough
// for a confounder, 16+EC bytes of trailer and a MAC before anything is
// decrypted; a bad MAC is BAD_SIG; the decrypted header copy must match
// TOK_ID, flags, filler, EC (CVE-2024-37370) and SND_SEQ. An integrity-only
// token must have EC ≤ its body and EC equal to the checksum length.
//
// The sequence window is consulted only after the token has verified. When
// it reports GSS_S_DUPLICATE_TOKEN, OLD, UNSEQ or GAP, Unwrap returns the
// message, conf and an *Error whose Major is that supplementary bit, as MIT
// returns the output with a supplementary status; the caller decides.
func (c *Context) Unwrap(token []byte) (msg []byte, conf bool, err error) {
	return c.AppendUnwrap(nil, token)
}

// AppendUnwrap is Unwrap appending the message to dst: it returns dst
// extended by the message (on failure, dst unchanged and nothing of the
// message left beyond its length), conf, and Unwrap's error. dst must not
// overlap token. The message never aliases token, so a caller may reuse
// the token's buffer, and the stream data path reuses one plaintext buffer
// for every record.
func (c *Context) AppendUnwrap(dst, token []byte) (out []byte, conf bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.readyLocked(); err != nil {
		return dst, false, err
	}
	if len(token) < cfxHeaderLen {
		return dst, false, newError(StatusDefectiveToken, MinorBadLength, "wrap token shorter than its header", nil)
	}
	hdr := token[:cfxHeaderLen]
	if hdr[0] != tokIDWrap0 || hdr[1] != tokIDWrap1 {
		return dst, false, newError(StatusDefectiveToken, MinorWrongTokenID, "not a wrap token", nil)
	}
	if hdr[3] != 0xff {
		return dst, false, newError(StatusDefectiveToken, MinorBadFiller, "wrap token filler is not 0xff", nil)
	}
	flags := hdr[2]
	if err := c.checkDirectionLocked(flags); err != nil {
		return dst, false, err
	}
	ec := int(binary.BigEndian.Uint16(hdr[4:6]))
	rrc := int(binary.BigEndian.Uint16(hdr[6:8]))
	seq := binary.BigEndian.Uint64(hdr[8:16])
	keys, err := c.recvKeysLocked(flags)
	if err != nil {
		return dst, false, err
	}
	u := keys.seal

	// RFC 4121 §4.2.5: undo the sender's right rotation. Only a non-zero
	// rotation needs a copy; MIT and our Wrap send RRC = 0.
	body := token[cfxHeaderLen:]
	if len(body) > 0 {
		if r := rrc % len(body); r != 0 {
			rot := make([]byte, len(body))
			copy(rot, body[r:])
			copy(rot[len(body)-r:], body[:r])
			body = rot
		}
	}

	if flags&tokFlagSealed != 0 {
		conf = true
		out, err = unwrapSealed(dst, u, hdr, body, ec)
	} else {
		out, err = unwrapIntegrity(dst, u, hdr, body, ec, &c.h0)
	}
	if err != nil {
		return dst, false, err
	}
	if s := c.recv.check(seq); s != StatusComplete {
		return out, conf, seqError(s)
	}
	return out, conf, nil
}

// unwrapSealed decrypts a sealed Wrap body, checks the header copy and
// appends the message to dst.
func unwrapSealed(dst []byte, u *krb5crypto.Usage, hdr, body []byte, ec int) ([]byte, error) {
	h := u.ChecksumSize()
	// Lengths before crypto: confounder, at least the 16-byte header copy
	// plus EC filler bytes (CVE-2024-37371), and the MAC.
	if len(body) < krb5crypto.ConfounderSize+cfxHeaderLen+ec+h {
		return dst, newError(StatusDefectiveToken, MinorBadLength, "sealed wrap token too short for its EC", nil)
	}
	start := len(dst)
	out, err := u.Decrypt(grow(dst, len(body)-krb5crypto.ConfounderSize-h), body)
	if err != nil {
		if errors.Is(err, krb5crypto.ErrShort) {
			return dst, newError(StatusDefectiveToken, MinorBadLength, "sealed wrap token too short", err)
		}
		return dst, newError(StatusBadSig, MinorNone, "wrap token does not verify", err)
	}
	pt := out[start:]
	// The copy has RRC 0 by definition; MIT compares everything else,
	// including EC since the CVE-2024-37370 fix.
	alt := pt[len(pt)-cfxHeaderLen:]
	if alt[0] != hdr[0] || alt[1] != hdr[1] || alt[2] != hdr[2] || alt[3] != hdr[3] ||
		alt[4] != hdr[4] || alt[5] != hdr[5] || [8]byte(alt[8:16]) != [8]byte(hdr[8:16]) {
		clear(pt)
		return dst, newError(StatusDefectiveToken, MinorNone, "encrypted header copy does not match the wrap token header", nil)
	}
	// The header copy and EC filler stay beyond the returned length, as
	// plaintext bytes of no value; they are overwritten by the next use.
	return out[:len(out)-cfxHeaderLen-ec], nil
}

// unwrapIntegrity verifies an integrity-only Wrap body: payload ||
// checksum, with EC the checksum length.
func unwrapIntegrity(dst []byte, u *krb5crypto.Usage, hdr, body []byte, ec int, h0 *[cfxHeaderLen]byte) ([]byte, error) {
	if ec > len(body) {
		return dst, newError(StatusDefectiveToken, MinorBadLength, "wrap token EC exceeds its body", nil)
	}
	if ec != u.ChecksumSize() {
		return dst, newError(StatusBadSig, MinorBadLength, "wrap token EC is not the checksum length", nil)
	}
	payload, sum := body[:len(body)-ec], body[len(body)-ec:]
	copy(h0[:], hdr)
	h0[4], h0[5], h0[6], h0[7] = 0, 0, 0, 0 // checksummed with EC = RRC = 0
	if !u.VerifyChecksum(sum, payload, h0[:]) {
		return dst, newError(StatusBadSig, MinorNone, "wrap token checksum does not verify", nil)
	}
	// Copy: the caller may reuse the token buffer.
	return append(dst, payload...), nil
}

// checkDirectionLocked rejects a token whose SentByAcceptor flag says it
// came from this side (a reflected token): RFC 4121 §4.2.2, MIT
// G_BAD_DIRECTION.
func (c *Context) checkDirectionLocked(flags byte) error {
	fromAcceptor := flags&tokFlagSentByAcceptor != 0
	if fromAcceptor != c.initiator {
		return newError(StatusBadSig, MinorBadDirection, "token sent in the wrong direction", nil)
	}
	return nil
}

// seqError wraps a supplementary status from the receive window.
func seqError(s Major) *Error {
	minor := MinorNone
	msg := "token out of sequence"
	switch {
	case s&StatusDuplicateToken != 0:
		minor, msg = MinorReplayedToken, "token replayed"
	case s&StatusOldToken != 0:
		msg = "token too old for the replay window"
	case s&StatusGapToken != 0:
		msg = "tokens missing before this one"
	}
	return newError(s, minor, msg, nil)
}
