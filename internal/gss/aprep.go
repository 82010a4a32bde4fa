package gss

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// apRepPart is what an AP-REP carries inside its enc-part (RFC 4120
// §5.5.2 EncAPRepPart), decoded.
type apRepPart struct {
	ctime  time.Time
	cusec  int
	subkey Key    // acceptor subkey; zero when the acceptor asserted none
	seq    uint32 // acceptor's initial sequence number; 0 when absent
}

// marshalAPRep builds the DER AP-REP (RFC 4120 §5.5.2) for p, its
// enc-part encrypted with the ticket session key under key usage 12
// (RFC 4120 §7.5.1), no kvno (the session key has none).
//
// gokrb5 has no marshaller for AP-REP; the encoders in der.go write it.
// EncAPRepPart's ctime must be the authenticator's, to the second and in
// UTC, and a zero seq-number would be left out as an absent OPTIONAL
// field, which is why callers never generate one.
func marshalAPRep(sessionKey Key, p *apRepPart, rand io.Reader) ([]byte, error) {
	plain, err := marshalEncAPRepPartDER(p)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encoding EncAPRepPart", err)
	}
	defer clear(plain) // holds the acceptor subkey

	u, err := krb5crypto.DeriveUsage(sessionKey.Etype, sessionKey.Value, keyusage.AP_REP_ENCPART)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "deriving the AP-REP key", err)
	}
	defer u.Zero()
	ct, err := u.Encrypt(nil, rand, plain)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encrypting the AP-REP", err)
	}
	der, err := marshalAPRepDER(sessionKey.Etype, ct)
	if err != nil {
		return nil, newError(StatusFailure, MinorNone, "encoding AP-REP", err)
	}
	return der, nil
}

// parseAPRep decodes and decrypts an AP-REP received by the initiator.
// Every failure is a *Error: undecodable input is GSS_S_DEFECTIVE_TOKEN, a
// failed integrity check GSS_S_BAD_SIG with KRB_AP_ERR_MODIFIED.
func parseAPRep(b []byte, sessionKey Key) (p apRepPart, err error) {
	var rep messages.APRep
	if err := guardedUnmarshal("AP-REP", func() error { return rep.Unmarshal(b) }); err != nil {
		return p, err
	}
	if rep.PVNO != iana.PVNO {
		return p, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_BADVERSION,
			fmt.Sprintf("AP-REP has pvno %d, want %d", rep.PVNO, iana.PVNO), nil)
	}
	if rep.EncPart.EType != sessionKey.Etype {
		return p, krbError(StatusDefectiveToken, errorcode.KRB_AP_ERR_MODIFIED,
			fmt.Sprintf("AP-REP is encrypted with etype %d, the session key is etype %d", rep.EncPart.EType, sessionKey.Etype), nil)
	}
	u, err := krb5crypto.DeriveUsage(sessionKey.Etype, sessionKey.Value, keyusage.AP_REP_ENCPART)
	if err != nil {
		return p, newError(StatusFailure, MinorNone, "deriving the AP-REP key", err)
	}
	defer u.Zero()
	plain, err := u.Decrypt(nil, rep.EncPart.Cipher)
	if err != nil {
		return p, krbError(StatusBadSig, errorcode.KRB_AP_ERR_MODIFIED, "AP-REP does not decrypt with the session key", err)
	}
	defer clear(plain)
	var enc messages.EncAPRepPart
	if err := guardedUnmarshal("EncAPRepPart", func() error { return enc.Unmarshal(plain) }); err != nil {
		return p, err
	}
	if enc.Cusec < 0 || enc.Cusec > 999999 {
		return p, krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("AP-REP cusec %d is out of range", enc.Cusec), nil)
	}
	p.ctime = enc.CTime
	p.cusec = enc.Cusec
	// RFC 4120 §5.5.2 makes seq-number a UInt32; old implementations encode
	// values ≥ 2^31 as negative INTEGERs, which the uint32 view repairs.
	p.seq = uint32(enc.SequenceNumber)
	if len(enc.Subkey.KeyValue) > 0 || enc.Subkey.KeyType != 0 {
		if err := checkKeyPolicy("AP-REP subkey", enc.Subkey); err != nil {
			clear(enc.Subkey.KeyValue)
			return p, err
		}
		// Take ownership of the decoder's copy rather than copying again.
		p.subkey = Key{Etype: enc.Subkey.KeyType, Value: enc.Subkey.KeyValue}
	}
	return p, nil
}

// checkKeyPolicy enforces the enctype policy on a key received in a
// message: only the four AES enctypes (RFC 3962, RFC 8009), with exactly
// their key length (32 bytes for etype 20, whose gokrb5 size is wrong).
func checkKeyPolicy(what string, k types.EncryptionKey) error {
	if !krb5crypto.Supported(k.KeyType) {
		return krbError(StatusUnavailable, errorcode.KDC_ERR_ETYPE_NOSUPP,
			fmt.Sprintf("%s has enctype %d; only AES enctypes 17, 18, 19 and 20 are accepted", what, k.KeyType), nil)
	}
	if n, _ := krb5crypto.KeySize(k.KeyType); len(k.KeyValue) != n {
		return krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("%s of enctype %d is %d bytes, want %d", what, k.KeyType, len(k.KeyValue), n), nil)
	}
	return nil
}

// errDecodePanic marks a panic recovered inside a gokrb5 decoder.
var errDecodePanic = errors.New("gss: ASN.1 decoder panicked")

// guardedUnmarshal runs a gokrb5 decoder on untrusted bytes. Besides
// mapping its error to GSS_S_DEFECTIVE_TOKEN it recovers a panic: gokrb5's
// decoders index into their input without length checks in places (ticket
// sequences inside a KRB-CRED, for one), and no input may crash the
// process.
func guardedUnmarshal(what string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC,
				"malformed "+what, fmt.Errorf("%w: %v", errDecodePanic, r))
		}
	}()
	if e := f(); e != nil {
		return krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC, "malformed "+what, e)
	}
	return nil
}
