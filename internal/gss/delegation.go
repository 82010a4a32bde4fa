package gss

import (
	"fmt"
	"slices"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

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
// key of this context to read it.
func (hs *acceptState) readDelegation(b []byte) ([]byte, error) {
	var full messages.KRBCred
	if err := guardedUnmarshal("delegated KRB-CRED", func() error { return full.Unmarshal(b) }); err != nil {
		return nil, err
	}
	var raw krbCredDER
	if err := guardedUnmarshal("delegated KRB-CRED", func() error {
		_, err := asn1.UnmarshalWithParams(b, &raw, fmt.Sprintf("application,explicit,tag:%d", asnAppTag.KRBCred))
		return err
	}); err != nil {
		return nil, err
	}
	var plain []byte
	if raw.EncPart.EType == 0 {
		plain = slices.Clone(raw.EncPart.Cipher)
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
	}
	var part messages.EncKrbCredPart
	err := guardedUnmarshal("delegated EncKrbCredPart", func() error { return part.Unmarshal(plain) })
	for _, ci := range part.TicketInfo {
		clear(ci.Key.KeyValue)
	}
	if err == nil && (len(part.TicketInfo) == 0 || len(part.TicketInfo) != len(full.Tickets)) {
		err = krbError(StatusDefectiveToken, errorcode.KRB_ERR_GENERIC,
			fmt.Sprintf("delegated credential has %d tickets and %d ticket infos", len(full.Tickets), len(part.TicketInfo)), nil)
	}
	if err != nil || !hs.a.allowDeleg {
		clear(plain)
		return nil, err
	}
	out, merr := asn1.Marshal(krbCredDER{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_CRED,
		// gofork decodes an explicitly tagged RawValue as the [2] element
		// itself and writes FullBytes verbatim, tag included.
		Tickets: asn1.RawValue{FullBytes: raw.Tickets.FullBytes},
		EncPart: types.EncryptedData{EType: 0, Cipher: plain},
	})
	clear(plain)
	if merr != nil {
		return nil, krbError(StatusFailure, errorcode.KRB_ERR_GENERIC, "re-encoding the delegated credential", merr)
	}
	der := asn1tools.AddASNAppTag(out, asnAppTag.KRBCred)
	clear(out)
	return der, nil
}
