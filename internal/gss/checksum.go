package gss

import (
	"crypto/md5"
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
)

// The authenticator checksum of a krb5 mechanism AP-REQ (RFC 4121 §4.1.1)
// is not a checksum at all but a structure carried in the checksum field,
// marked by the checksum type 0x8003:
//
//	off  len  field   encoding
//	0    4    Lgth    little-endian, always 16
//	4    16   Bnd     MD5 of the channel bindings (§4.1.1.2), or all zero
//	20   4    Flags   little-endian GSS request flags (§4.1.1.1)
//	24   2    DlgOpt  little-endian, 1; only when Flags has DELEG
//	26   2    Dlgth   little-endian length of Deleg
//	28   n    Deleg   a KRB-CRED (RFC 4120 §5.8.1)
//	...       Exts    type (4, big-endian), length (4, big-endian), data
//
// Unlike the rest of Kerberos, the integers are little-endian: the layout
// predates RFC 4121 and was fixed by RFC 1964 implementations.
const (
	cksumTypeGSS        int32  = 0x8003 // CKSUMTYPE_KG_CB
	gssChecksumBndLen          = 16     // Lgth: MD5 output size
	gssChecksumMinLen          = 4 + gssChecksumBndLen + 4
	gssForCredsOption   uint16 = 1 // DlgOpt value KRB5_GSS_FOR_CREDS_OPTION
	maxChecksumDelegLen        = 0xffff
)

// initiatorFlagsMask is the set of request flags an acceptor takes from
// the checksum (MIT's INITIATOR_FLAGS). DELEG comes back only when a
// credential was actually delivered; TRANS, ANON, PROT_READY and
// CHANNEL_BOUND are the acceptor's to decide.
const initiatorFlagsMask = FlagInteg | FlagConf | FlagMutual | FlagReplay |
	FlagSequence | FlagDCEStyle | FlagIdentify | FlagExtendedError

// authChecksum is a decoded 0x8003 checksum.
type authChecksum struct {
	bindings [gssChecksumBndLen]byte
	flags    Flags  // the Flags field as sent, unmasked
	deleg    []byte // the KRB-CRED when DELEG was set and one is present; aliases the input
}

// parseAuthChecksum decodes the value of a 0x8003 authenticator checksum.
// Errors carry the major status MIT reports for the same defect: a value
// shorter than the fixed 24 bytes is GSS_S_BAD_BINDINGS (the bindings cannot
// be checked); any other structural defect is GSS_S_DEFECTIVE_TOKEN.
// Extensions are checked for framing and otherwise ignored: the only one
// defined (IAKERB "finished", MIT) does not apply to a plain krb5 exchange.
func parseAuthChecksum(b []byte) (authChecksum, error) {
	var c authChecksum
	if len(b) < gssChecksumMinLen {
		return c, krbError(StatusBadBindings, errorcode.KRB_AP_ERR_INAPP_CKSUM,
			fmt.Sprintf("authenticator checksum is %d bytes, want at least %d (RFC 4121 §4.1.1)", len(b), gssChecksumMinLen), nil)
	}
	if n := binary.LittleEndian.Uint32(b); n != gssChecksumBndLen {
		return c, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_INAPP_CKSUM,
			fmt.Sprintf("authenticator checksum Lgth is %d, want %d", n, gssChecksumBndLen), nil)
	}
	copy(c.bindings[:], b[4:20])
	c.flags = Flags(binary.LittleEndian.Uint32(b[20:24]))
	rest := b[24:]
	// MIT reads the delegation option only when DELEG is set and at least
	// four bytes remain; a DELEG flag with nothing after it is tolerated and
	// simply delivers no credential.
	if c.flags&FlagDeleg != 0 && len(rest) >= 4 {
		opt := binary.LittleEndian.Uint16(rest)
		n := int(binary.LittleEndian.Uint16(rest[2:]))
		if opt != gssForCredsOption {
			return c, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_INAPP_CKSUM,
				fmt.Sprintf("authenticator checksum DlgOpt is %d, want %d", opt, gssForCredsOption), nil)
		}
		if len(rest) < 4+n {
			return c, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_INAPP_CKSUM,
				fmt.Sprintf("authenticator checksum Dlgth is %d but only %d bytes follow", n, len(rest)-4), nil)
		}
		c.deleg = rest[4 : 4+n : 4+n]
		rest = rest[4+n:]
	}
	for len(rest) > 0 {
		if len(rest) < 8 {
			return c, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_INAPP_CKSUM,
				fmt.Sprintf("authenticator checksum has %d trailing bytes, too few for an extension header", len(rest)), nil)
		}
		n := binary.BigEndian.Uint32(rest[4:])
		if uint64(n) > uint64(len(rest)-8) {
			return c, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_INAPP_CKSUM,
				fmt.Sprintf("authenticator checksum extension %d claims %d bytes, %d follow", binary.BigEndian.Uint32(rest), n, len(rest)-8), nil)
		}
		rest = rest[8+int(n):]
	}
	return c, nil
}

// appendAuthChecksum appends the value of a 0x8003 checksum. deleg, when
// non-nil, is sent with DlgOpt 1 and forces DELEG on; when nil, DELEG is
// cleared (as MIT does when it could not make a credential to forward).
func appendAuthChecksum(dst []byte, bindings [gssChecksumBndLen]byte, flags Flags, deleg []byte) ([]byte, error) {
	if deleg != nil {
		if len(deleg) > maxChecksumDelegLen {
			return dst, newError(StatusFailure, MinorBadLength,
				fmt.Sprintf("delegated credential of %d bytes does not fit the checksum's 16-bit Dlgth", len(deleg)), nil)
		}
		flags |= FlagDeleg
	} else {
		flags &^= FlagDeleg
	}
	dst = binary.LittleEndian.AppendUint32(dst, gssChecksumBndLen)
	dst = append(dst, bindings[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(flags))
	if deleg != nil {
		dst = binary.LittleEndian.AppendUint16(dst, gssForCredsOption)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(deleg)))
		dst = append(dst, deleg...)
	}
	return dst, nil
}

// channelBindingsHash returns the Bnd value for channel bindings whose only
// content is application data (RFC 4121 §4.1.1.2, RFC 2744 §3.11): the MD5
// of
//
//	initiator addrtype (4, LE) = 0 | initiator address length (4, LE) = 0 |
//	acceptor addrtype (4, LE) = 0  | acceptor address length (4, LE) = 0 |
//	application data length (4, LE) | application data
//
// which is what MIT's kg_checksum_channel_bindings computes for a
// gss_channel_bindings_struct with GSS_C_AF_UNSPEC (0) addresses of length
// zero, the form used by TLS channel bindings (RFC 5929, "tls-server-end-
// point:..." as application data). nil application data still yields the
// hash of the 20-byte header: only "no bindings at all" is all zero.
func channelBindingsHash(appData []byte) [gssChecksumBndLen]byte {
	h := md5.New()
	var hdr [20]byte
	binary.LittleEndian.PutUint32(hdr[16:], uint32(len(appData)))
	h.Write(hdr[:])
	h.Write(appData)
	var out [gssChecksumBndLen]byte
	h.Sum(out[:0])
	return out
}
