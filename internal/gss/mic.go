package gss

import "encoding/binary"

// putMICHeader writes a MIC token header (RFC 4121 §4.2.6.1) to h.
func putMICHeader(h []byte, flags byte, seq uint64) {
	h[0], h[1], h[2] = tokIDMIC0, tokIDMIC1, flags
	h[3], h[4], h[5], h[6], h[7] = 0xff, 0xff, 0xff, 0xff, 0xff
	binary.BigEndian.PutUint64(h[8:16], seq)
}

// GetMIC returns an RFC 4121 §4.2.6.1 MIC token for msg (gss_get_mic): the
// 16-byte header followed by the keyed checksum of msg || header, with the
// SIGN key usage (23 from the acceptor, 25 from the initiator). It takes the
// next send sequence number, shared with Wrap.
func (c *Context) GetMIC(msg []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.readyLocked(); err != nil {
		return nil, err
	}
	u := c.keys.send.sign
	out := make([]byte, cfxHeaderLen, cfxHeaderLen+u.ChecksumSize())
	putMICHeader(out, c.keys.sendFlags, c.sendSeq)
	out = u.Checksum(out, msg, out[:cfxHeaderLen])
	c.sendSeq++
	return out, nil
}

// VerifyMIC checks a MIC token from the peer over msg (gss_verify_mic).
//
// Structural errors (short token, TOK_ID other than 04 04, filler bytes not
// exactly ff ff ff ff ff, the Sealed flag, which a MIC never carries) give
// DEFECTIVE_TOKEN; the wrong direction and a bad checksum give BAD_SIG. As
// with Unwrap, the sequence window runs after the checksum verified and a
// supplementary result comes back as an *Error with that Major.
func (c *Context) VerifyMIC(msg, token []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.readyLocked(); err != nil {
		return err
	}
	if len(token) < cfxHeaderLen {
		return newError(StatusDefectiveToken, MinorBadLength, "MIC token shorter than its header", nil)
	}
	hdr := token[:cfxHeaderLen]
	if hdr[0] != tokIDMIC0 || hdr[1] != tokIDMIC1 {
		return newError(StatusDefectiveToken, MinorWrongTokenID, "not a MIC token", nil)
	}
	if hdr[3] != 0xff || hdr[4] != 0xff || hdr[5] != 0xff || hdr[6] != 0xff || hdr[7] != 0xff {
		return newError(StatusDefectiveToken, MinorBadFiller, "MIC token filler is not ff ff ff ff ff", nil)
	}
	flags := hdr[2]
	if flags&tokFlagSealed != 0 {
		return newError(StatusDefectiveToken, MinorBadFlags, "MIC token carries the sealed flag", nil)
	}
	if err := c.checkDirectionLocked(flags); err != nil {
		return err
	}
	keys, err := c.recvKeysLocked(flags)
	if err != nil {
		return err
	}
	if !keys.sign.VerifyChecksum(token[cfxHeaderLen:], msg, hdr) {
		return newError(StatusBadSig, MinorNone, "MIC does not verify", nil)
	}
	if s := c.recv.check(binary.BigEndian.Uint64(hdr[8:16])); s != StatusComplete {
		return seqError(s)
	}
	return nil
}
