package gss

import (
	"bytes"
	"fmt"
)

// Token identifiers of the krb5 mechanism's context-establishment tokens
// (RFC 4121 §4.1): two big-endian bytes between the mechanism OID and the
// Kerberos message.
const (
	tokIDAPReq    uint16 = 0x0100 // KRB_AP_REQ
	tokIDAPRep    uint16 = 0x0200 // KRB_AP_REP
	tokIDKRBError uint16 = 0x0300 // KRB_ERROR
)

// maxTokenLen bounds the DER length we are willing to decode in a token
// header. Context tokens are capped far lower by the wire layer (64 KiB by
// default); the bound only keeps the arithmetic below well away from
// overflow on 32-bit platforms.
const maxTokenLen = 1 << 30

// parseTokenFraming splits an RFC 2743 §3.1 mechanism-independent token
// ("InitialContextToken"):
//
//	0x60 <DER length> 0x06 <OID length> <OID> <innerContextToken>
//
// It is strict in the way MIT's g_verify_token_header is: the DER length must
// be minimally encoded and equal to the exact number of bytes that follow,
// and the OID length must fit in one byte (short form). The returned slices
// alias b.
func parseTokenFraming(b []byte) (oid, inner []byte, err error) {
	if len(b) == 0 {
		return nil, nil, defectiveToken(MinorBadLength, "empty context token")
	}
	if b[0] != 0x60 {
		return nil, nil, defectiveToken(MinorWrongTokenID,
			fmt.Sprintf("context token starts with 0x%02x, want 0x60 (RFC 2743 §3.1 framing)", b[0]))
	}
	n, hdr, err := parseDERLength(b[1:])
	if err != nil {
		return nil, nil, err
	}
	rest := b[1+hdr:]
	if n != len(rest) {
		return nil, nil, defectiveToken(MinorBadLength,
			fmt.Sprintf("context token length field says %d bytes, %d follow", n, len(rest)))
	}
	if len(rest) < 2 || rest[0] != 0x06 {
		return nil, nil, defectiveToken(MinorBadMechOID, "context token has no mechanism OID")
	}
	oidLen := int(rest[1])
	if oidLen == 0 || oidLen >= 0x80 {
		return nil, nil, defectiveToken(MinorBadMechOID,
			fmt.Sprintf("context token mechanism OID length 0x%02x is not a short-form length", rest[1]))
	}
	if len(rest) < 2+oidLen {
		return nil, nil, defectiveToken(MinorBadLength, "context token truncated inside the mechanism OID")
	}
	return rest[2 : 2+oidLen], rest[2+oidLen:], nil
}

// parseDERLength decodes a DER length (X.690 §8.1.3 with the §10.1 minimal
// encoding rule) at the start of b. It returns the length and the number of
// bytes the length field used.
func parseDERLength(b []byte) (n, used int, err error) {
	if len(b) == 0 {
		return 0, 0, defectiveToken(MinorBadLength, "context token truncated before its length")
	}
	first := b[0]
	if first < 0x80 {
		return int(first), 1, nil
	}
	k := int(first & 0x7f)
	switch {
	case k == 0:
		return 0, 0, defectiveToken(MinorBadLength, "context token uses the indefinite length form")
	case k > 4:
		return 0, 0, defectiveToken(MinorBadLength,
			fmt.Sprintf("context token length field of %d bytes is too long", k))
	case len(b) < 1+k:
		return 0, 0, defectiveToken(MinorBadLength, "context token truncated inside its length")
	}
	if b[1] == 0 {
		return 0, 0, defectiveToken(MinorBadLength, "context token length has a leading zero byte (not DER)")
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n < 0x80 {
		return 0, 0, defectiveToken(MinorBadLength,
			fmt.Sprintf("context token length %d uses the long form (not DER)", n))
	}
	if n > maxTokenLen {
		return 0, 0, defectiveToken(MinorBadLength, fmt.Sprintf("context token length %d is too large", n))
	}
	return n, 1 + k, nil
}

// parseInitialToken parses a krb5 mechanism context token (RFC 4121 §4.1):
// the RFC 2743 framing with the Kerberos OID (or Microsoft's variant, which
// is answered in kind), a two-byte TOK_ID and the Kerberos message. It
// returns the OID as found in the token (so the reply can echo it), the
// TOK_ID and the message; the slices alias b.
//
// A well-formed token for another mechanism is GSS_S_BAD_MECH; every other
// defect, including trailing bytes, is GSS_S_DEFECTIVE_TOKEN.
func parseInitialToken(b []byte) (mech []byte, tokID uint16, body []byte, err error) {
	oid, inner, err := parseTokenFraming(b)
	if err != nil {
		return nil, 0, nil, err
	}
	switch {
	case bytes.Equal(oid, oidKRB5):
		mech = oidKRB5
	case bytes.Equal(oid, oidKRB5MS):
		mech = oidKRB5MS
	default:
		return nil, 0, nil, newError(StatusBadMech, MinorBadMechOID,
			fmt.Sprintf("context token is for mechanism %s, not Kerberos 5", oidString(oid)), nil)
	}
	if len(inner) < 2 {
		return nil, 0, nil, defectiveToken(MinorBadLength, "context token truncated before its TOK_ID")
	}
	return mech, uint16(inner[0])<<8 | uint16(inner[1]), inner[2:], nil
}

// appendInitialToken appends to dst the krb5 context token for body:
// 0x60, the DER length, the OID mech, the big-endian tokID and body
// (RFC 4121 §4.1, RFC 2743 §3.1).
func appendInitialToken(dst, mech []byte, tokID uint16, body []byte) []byte {
	inner := 2 + len(mech) + 2 + len(body)
	dst = append(dst, 0x60)
	dst = appendDERLength(dst, inner)
	dst = append(dst, 0x06, byte(len(mech)))
	dst = append(dst, mech...)
	dst = append(dst, byte(tokID>>8), byte(tokID))
	return append(dst, body...)
}

// appendDERLength appends the minimal DER encoding of the length n ≥ 0.
func appendDERLength(dst []byte, n int) []byte {
	if n < 0x80 {
		return append(dst, byte(n))
	}
	var tmp [8]byte
	i := len(tmp)
	for v := n; v > 0; v >>= 8 {
		i--
		tmp[i] = byte(v)
	}
	dst = append(dst, 0x80|byte(len(tmp)-i))
	return append(dst, tmp[i:]...)
}

// oidString renders DER OID contents in dotted form for error messages. It
// never fails: undecodable contents are shown in hex.
func oidString(der []byte) string {
	if len(der) == 0 {
		return "(empty OID)"
	}
	var b []byte
	var v uint64
	first := true
	for i, c := range der {
		if v > 1<<56 {
			return fmt.Sprintf("%x", der)
		}
		v = v<<7 | uint64(c&0x7f)
		if c&0x80 != 0 {
			if i == len(der)-1 {
				return fmt.Sprintf("%x", der)
			}
			continue
		}
		if first {
			// X.690 §8.19.4: the first subidentifier packs two arcs.
			switch {
			case v < 40:
				b = fmt.Appendf(b, "0.%d", v)
			case v < 80:
				b = fmt.Appendf(b, "1.%d", v-40)
			default:
				b = fmt.Appendf(b, "2.%d", v-80)
			}
			first = false
		} else {
			b = fmt.Appendf(b, ".%d", v)
		}
		v = 0
	}
	return string(b)
}

// defectiveToken is the error for a malformed token.
func defectiveToken(minor uint32, msg string) *Error {
	return newError(StatusDefectiveToken, minor, msg, nil)
}
