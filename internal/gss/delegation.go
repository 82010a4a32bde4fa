package gss

import (
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// tagAppKRBCred is KRB-CRED's APPLICATION 22, constructed.
const tagAppKRBCred cbasn1.Tag = 0x60 | asnAppTag.KRBCred

// krbCredDER is KRB-CRED (RFC 4120 §5.8.1) with the tickets kept as raw
// DER, so that a credential can be re-encoded without re-encoding them.
type krbCredDER struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	Tickets asn1.RawValue       `asn1:"explicit,tag:2"`
	EncPart types.EncryptedData `asn1:"explicit,tag:3"`
}

// readDelegation decrypts and checks a delegated KRB-CRED. Like MIT's
// rd_cred it tries the initiator subkey, then the session key (key usage
// 14), and accepts an unencrypted enc-part (etype 0; MIT initiators send
// that, the authenticator being encrypted already). It returns the
// credential re-encoded with a clear enc-part, so that its holder needs no
// key of this context to read it, or nil when delegation is off.
//
// The clear enc-part holds the forwarded tickets' session keys (a TGT's,
// usually). Every copy of it made here is wiped before returning, whatever
// the outcome; the one returned is the caller's to wipe. b, the checksum
// it came in, may hold it in the clear too: the caller wipes it.
func (hs *acceptState) readDelegation(b []byte) ([]byte, error) {
	var raw krbCredDER
	err := guardedUnmarshal("delegated KRB-CRED", func() error {
		_, err := asn1.UnmarshalWithParams(b, &raw, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.KRBCred))
		return err
	})
	// The decoder copied the enc-part out of b: clear when etype is 0.
	defer clear(raw.EncPart.Cipher)
	if err != nil {
		return nil, err
	}
	if raw.MsgType != msgtype.KRB_CRED {
		return nil, krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC, "malformed delegated KRB-CRED",
			fmt.Errorf("msg-type %d, want %d (KRB-CRED)", raw.MsgType, msgtype.KRB_CRED))
	}
	// gokrb5's decoder checks the tickets. It decodes the enc-part again,
	// into full.EncPart, before it reads them (the same decoder has just
	// read it into raw, and the msg-type it checks in between is right).
	var full messages.KRBCred
	err = guardedUnmarshal("delegated KRB-CRED", func() error { return full.Unmarshal(b) })
	clear(full.EncPart.Cipher)
	if err != nil {
		return nil, err
	}
	var plain []byte
	if raw.EncPart.EType == 0 {
		plain = raw.EncPart.Cipher // wiped by the deferred clear
	} else {
		for _, k := range []Key{hs.subkey, hs.sessionKey} {
			if k.IsZero() || k.Etype != raw.EncPart.EType {
				continue
			}
			u, err := krb5crypto.DeriveUsage(k.Etype, k.Value, keyusage.KRB_CRED_ENCPART)
			if err != nil {
				continue
			}
			plain, err = u.Decrypt(nil, raw.EncPart.Cipher)
			u.Zero()
			if err == nil {
				break
			}
		}
		if plain == nil {
			return nil, krbError(StatusDefectiveCredential, errorcode.KRB_AP_ERR_MODIFIED,
				fmt.Sprintf("delegated credential from %s (etype %d) does not decrypt with the subkey or the session key",
					hs.clientName(), raw.EncPart.EType), nil)
		}
		defer clear(plain)
	}
	var part messages.EncKrbCredPart
	err = guardedUnmarshal("delegated EncKrbCredPart", func() error { return part.Unmarshal(plain) })
	for _, ci := range part.TicketInfo {
		clear(ci.Key.KeyValue)
	}
	if err == nil && (len(part.TicketInfo) == 0 || len(part.TicketInfo) != len(full.Tickets)) {
		err = krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("delegated credential has %d tickets and %d ticket infos", len(full.Tickets), len(part.TicketInfo)), nil)
	}
	if err != nil || !hs.a.allowDeleg {
		return nil, err
	}
	der, err := marshalClearKRBCred(raw.Tickets.FullBytes, plain)
	if err != nil {
		return nil, krbError(StatusFailure, errorcode.KRB_ERR_GENERIC, "re-encoding the delegated credential", err)
	}
	return der, nil
}

// marshalClearKRBCred encodes the KRB-CRED (RFC 4120 §5.8.1) that
// readDelegation returns: pvno 5, msg-type 22, tickets (the [2] element as
// received, tag included) and an enc-part EncryptedData of etype 0 (no
// kvno) whose cipher is plain, the DER of the EncKrbCredPart. The encoding
// is the one gofork gives krbCredDER (TestMarshalClearKRBCred checks it).
//
// It is written into one buffer of its exact final size, never regrown: an
// encoder that builds in intermediate buffers (gofork's goes through one
// bytes.Buffer per element) leaves a clear copy of the credential's keys in
// each of them.
func marshalClearKRBCred(tickets, plain []byte) ([]byte, error) {
	const fixedInts = 5 // [n] { INTEGER 0..127 }: a0 03 02 01 xx
	encPart := derElemLen(fixedInts + derElemLen(derElemLen(len(plain))))
	total := derElemLen(derElemLen(2*fixedInts + len(tickets) + derElemLen(encPart)))
	b := cryptobyte.NewFixedBuilder(make([]byte, 0, total))
	b.AddASN1(tagAppKRBCred, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1Int64(iana.PVNO) })
			addExplicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1Int64(msgtype.KRB_CRED) })
			b.AddBytes(tickets)
			addExplicit(b, 3, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addExplicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1Int64(0) })
					addExplicit(b, 2, func(b *cryptobyte.Builder) { b.AddASN1OctetString(plain) })
				})
			})
		})
	})
	out, err := b.Bytes()
	if err != nil || len(out) != total {
		clear(out)
		if err == nil {
			err = fmt.Errorf("gss: KRB-CRED is %d bytes, expected %d", len(out), total)
		}
		return nil, err
	}
	return out, nil
}

// derElemLen is the length of a DER element with a one-byte tag and n
// bytes of contents.
func derElemLen(n int) int {
	l := 1 + n
	switch {
	case n < 0x80:
		return l + 1
	case n <= 0xff:
		return l + 2
	case n <= 0xffff:
		return l + 3
	case n <= 0xffffff:
		return l + 4
	default:
		return l + 5
	}
}
