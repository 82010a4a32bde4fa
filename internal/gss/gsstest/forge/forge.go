// Package forge makes Kerberos messages for tests that run without a KDC:
// the service ticket a KDC would issue, encrypted in a service key the test
// chose (RFC 4120 §5.3), and the KRB-CRED a client delegates (RFC 4120
// §5.8).
//
// Only tests import this package; no binary of the project links it. It is
// apart from package gsstest because it must not import package gss: the
// in-package tests of gss use it too, and they cannot import a package that
// imports gss.
package forge

import (
	"fmt"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// encrypt encrypts the DER of v, given application tag tag, in key with
// key usage usage.
func encrypt(key types.EncryptionKey, usage uint32, tag int, v any) ([]byte, error) {
	u, err := krb5crypto.DeriveUsage(key.KeyType, key.KeyValue, usage)
	if err != nil {
		return nil, err
	}
	defer u.Zero()
	plain, err := marshalApp(tag, v)
	if err != nil {
		return nil, err
	}
	// The plaintexts forged here hold session keys.
	defer clear(plain)
	return u.Encrypt(nil, nil, plain)
}

// marshalApp returns the DER of v wrapped in application tag tag.
func marshalApp(tag int, v any) ([]byte, error) {
	der, err := asn1.Marshal(v)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	return asn1tools.AddASNAppTag(der, tag), nil
}

// Ticket returns the ticket a KDC would issue for sname@srealm: part, the
// EncTicketPart, encrypted in the service key with key usage 2
// (KDC_REP_TICKET, RFC 4120 §7.5.1) and labelled with the key's enctype and
// kvno (0: none, as a KDC may leave it out, RFC 4120 §5.2.9).
//
// The key must be of an AES enctype (RFC 3962, RFC 8009) and of its size.
// gokrb5's messages.NewTicket is no substitute: it makes 24-byte keys for
// aes256-cts-hmac-sha384-192 (etype 20), which takes 32.
func Ticket(key types.EncryptionKey, kvno int, srealm string, sname types.PrincipalName, part messages.EncTicketPart) (messages.Ticket, error) {
	ct, err := encrypt(key, keyusage.KDC_REP_TICKET, asnAppTag.EncTicketPart, part)
	if err != nil {
		return messages.Ticket{}, fmt.Errorf("forge: ticket: %w", err)
	}
	return messages.Ticket{
		TktVNO:  iana.PVNO,
		Realm:   srealm,
		SName:   sname,
		EncPart: types.EncryptedData{EType: key.KeyType, KVNO: kvno, Cipher: ct},
	}, nil
}

// krbCred is KRB-CRED (RFC 4120 §5.8.1) with the tickets as raw DER:
// gokrb5 can decode a KRB-CRED but not encode one.
type krbCred struct {
	PVNO    int                 `asn1:"explicit,tag:0"`
	MsgType int                 `asn1:"explicit,tag:1"`
	Tickets asn1.RawValue       `asn1:"explicit,tag:2"`
	EncPart types.EncryptedData `asn1:"explicit,tag:3"`
}

// KRBCred returns the DER of a KRB-CRED (RFC 4120 §5.8.1) forwarding tkt
// with part, the EncKrbCredPart, as its enc-part: in the clear (etype 0)
// when key is nil, or else encrypted in key (of an AES enctype) with key
// usage 14 (KRB_CRED_ENCPART). Delegation in a GSS-API context carries it
// in the authenticator checksum (RFC 4121 §4.1.1.1).
func KRBCred(tkt messages.Ticket, part messages.EncKrbCredPart, key *types.EncryptionKey) ([]byte, error) {
	var enc types.EncryptedData
	if key == nil {
		plain, err := marshalApp(asnAppTag.EncKrbCredPart, part)
		if err != nil {
			return nil, fmt.Errorf("forge: EncKrbCredPart: %w", err)
		}
		enc = types.EncryptedData{EType: 0, Cipher: plain}
	} else {
		ct, err := encrypt(*key, keyusage.KRB_CRED_ENCPART, asnAppTag.EncKrbCredPart, part)
		if err != nil {
			return nil, fmt.Errorf("forge: KRB-CRED enc-part: %w", err)
		}
		enc = types.EncryptedData{EType: key.KeyType, Cipher: ct}
	}
	tb, err := tkt.Marshal()
	if err != nil {
		return nil, fmt.Errorf("forge: KRB-CRED ticket: %w", err)
	}
	// tickets [2] SEQUENCE OF Ticket, of one ticket.
	seq, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: tb})
	if err != nil {
		return nil, fmt.Errorf("forge: KRB-CRED tickets: %w", err)
	}
	der, err := asn1.Marshal(krbCred{
		PVNO:    iana.PVNO,
		MsgType: msgtype.KRB_CRED,
		// The [2] tag is part of the raw value, as gokrb5 encodes it.
		Tickets: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 2, IsCompound: true, Bytes: seq},
		EncPart: enc,
	})
	if err != nil {
		return nil, fmt.Errorf("forge: KRB-CRED: %w", err)
	}
	return asn1tools.AddASNAppTag(der, asnAppTag.KRBCred), nil
}
