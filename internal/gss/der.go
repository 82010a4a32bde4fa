package gss

import (
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// Direct DER decoders for the three messages every handshake decodes: the
// AP-REQ (with its Ticket), the EncTicketPart and the Authenticator (RFC
// 4120 §5.3, §5.5.1). They fill in gokrb5's types, so the rest of the
// package is unaware of them, but they walk the bytes with cryptobyte
// instead of gofork's reflection-driven decoder, which re-parses every
// struct tag on every call and was half of Accept's cost (about 55 µs of a
// 115 µs handshake). They are strict DER (minimal lengths and integers, no
// indefinite lengths, single-byte tags), as every Kerberos implementation
// emits; elements after the last known field of a SEQUENCE are skipped for
// extensibility, as gofork does. FuzzDERDecoders checks them against
// gokrb5's decoders.
//
// Byte strings are copied out of the input, which callers wipe after
// decoding (it holds keys).

// DER tags.
const (
	tagGeneralString cbasn1.Tag = 27
	tagAppTicket     cbasn1.Tag = 0x60 | 1
	tagAppAuth       cbasn1.Tag = 0x60 | 2
	tagAppEncTicket  cbasn1.Tag = 0x60 | 3
	tagAppAPReq      cbasn1.Tag = 0x60 | 14
)

// ctx returns the tag of an explicit [n] wrapper.
func ctx(n uint8) cbasn1.Tag { return cbasn1.Tag(n).ContextSpecific().Constructed() }

// derReader wraps a cryptobyte.String and remembers the first failure, so
// that decoders read as a straight list of fields.
type derReader struct {
	s  cryptobyte.String
	ok bool
}

// enter replaces the reader's input by the contents of the next element
// with the given tag, requiring that nothing follows it.
func (r *derReader) enter(tag cbasn1.Tag) {
	var inner cryptobyte.String
	if !r.ok || !r.s.ReadASN1(&inner, tag) || !r.s.Empty() {
		r.ok = false
		return
	}
	r.s = inner
}

// element reads the next element with the given tag and hands its
// contents to fn, which must consume them all. An absent optional element
// is skipped without calling fn.
func (r *derReader) element(tag cbasn1.Tag, optional bool, fn func(f *derReader)) {
	if !r.ok {
		return
	}
	var inner cryptobyte.String
	if optional {
		var present bool
		if !r.s.ReadOptionalASN1(&inner, &present, tag) {
			r.ok = false
			return
		}
		if !present {
			return
		}
	} else if !r.s.ReadASN1(&inner, tag) {
		r.ok = false
		return
	}
	// fn reads the contents through r itself (a sub-reader handed to a
	// func value would escape to the heap on every field).
	rest := r.s
	r.s = inner
	fn(r)
	if !r.s.Empty() {
		r.ok = false
	}
	r.s = rest
}

// field reads an explicitly tagged [n] field.
func (r *derReader) field(n uint8, optional bool, fn func(f *derReader)) {
	r.element(ctx(n), optional, fn)
}

// sequence reads a SEQUENCE whose fields fn reads; elements after the
// last field fn knows are skipped (extensibility).
func (r *derReader) sequence(fn func(f *derReader)) {
	r.element(cbasn1.SEQUENCE, false, func(f *derReader) {
		fn(f)
		f.skipRest()
	})
}

// sequenceOf reads a SEQUENCE OF, calling item until it is consumed.
func (r *derReader) sequenceOf(item func(f *derReader)) {
	r.element(cbasn1.SEQUENCE, false, func(f *derReader) {
		for f.ok && !f.s.Empty() {
			item(f)
		}
	})
}

// skipRest skips any further well-formed elements.
func (r *derReader) skipRest() {
	for r.ok && !r.s.Empty() {
		var e cryptobyte.String
		var tag cbasn1.Tag
		if !r.s.ReadAnyASN1Element(&e, &tag) {
			r.ok = false
		}
	}
}

func (r *derReader) int64(out *int64) {
	if r.ok && !r.s.ReadASN1Int64WithTag(out, cbasn1.INTEGER) {
		r.ok = false
	}
}

func (r *derReader) int32(out *int32) {
	var v int64
	r.int64(&v)
	if r.ok && int64(int32(v)) != v {
		r.ok = false
	}
	*out = int32(v)
}

func (r *derReader) int(out *int) {
	var v int64
	r.int64(&v)
	if r.ok && int64(int(v)) != v {
		r.ok = false
	}
	*out = int(v)
}

func (r *derReader) generalString(out *string) {
	var b cryptobyte.String
	if !r.ok || !r.s.ReadASN1(&b, tagGeneralString) {
		r.ok = false
		return
	}
	*out = string(b)
}

func (r *derReader) octets(out *[]byte) {
	var b cryptobyte.String
	if !r.ok || !r.s.ReadASN1(&b, cbasn1.OCTET_STRING) {
		r.ok = false
		return
	}
	*out = append([]byte{}, b...)
}

func (r *derReader) bitString(out *asn1.BitString) {
	var b cryptobyte.String
	if !r.ok || !r.s.ReadASN1(&b, cbasn1.BIT_STRING) || len(b) == 0 {
		r.ok = false
		return
	}
	// X.690 §8.6.2: the first octet counts the unused bits of the last;
	// DER (§11.2.1) wants them zero.
	unused := int(b[0])
	if unused > 7 || (len(b) == 1 && unused != 0) || (unused > 0 && b[len(b)-1]&(1<<unused-1) != 0) {
		r.ok = false
		return
	}
	*out = asn1.BitString{Bytes: append([]byte{}, b[1:]...), BitLength: (len(b)-1)*8 - unused}
}

// kerberosTime reads a KerberosTime: a GeneralizedTime of exactly the form
// YYYYMMDDHHMMSSZ (RFC 4120 §5.2.3).
func (r *derReader) kerberosTime(out *time.Time) {
	var b cryptobyte.String
	if !r.ok || !r.s.ReadASN1(&b, cbasn1.GeneralizedTime) || len(b) != 15 || b[14] != 'Z' {
		r.ok = false
		return
	}
	var v [6]int
	widths := [6]int{4, 2, 2, 2, 2, 2}
	p := 0
	for i, w := range widths {
		for range w {
			c := b[p]
			if c < '0' || c > '9' {
				r.ok = false
				return
			}
			v[i] = v[i]*10 + int(c-'0')
			p++
		}
	}
	t := time.Date(v[0], time.Month(v[1]), v[2], v[3], v[4], v[5], 0, time.UTC)
	// time.Date normalises out-of-range fields; a valid time survives.
	if t.Year() != v[0] || int(t.Month()) != v[1] || t.Day() != v[2] || t.Hour() != v[3] || t.Minute() != v[4] || t.Second() != v[5] {
		r.ok = false
		return
	}
	*out = t
}

// principalName reads a PrincipalName (RFC 4120 §5.2.2).
func (r *derReader) principalName(out *types.PrincipalName) {
	r.sequence(func(f *derReader) {
		f.field(0, false, func(f *derReader) { f.int32(&out.NameType) })
		f.field(1, false, func(f *derReader) {
			f.sequenceOf(func(f *derReader) {
				var s string
				f.generalString(&s)
				out.NameString = append(out.NameString, s)
			})
		})
	})
}

// encryptedData reads an EncryptedData (RFC 4120 §5.2.9).
func (r *derReader) encryptedData(out *types.EncryptedData) {
	r.sequence(func(f *derReader) {
		f.field(0, false, func(f *derReader) { f.int32(&out.EType) })
		f.field(1, true, func(f *derReader) { f.int(&out.KVNO) })
		f.field(2, false, func(f *derReader) { f.octets(&out.Cipher) })
	})
}

// typedOctets reads the SEQUENCE { [0] Int32, [1] OCTET STRING } shape
// shared by EncryptionKey, Checksum, HostAddress and AuthorizationData
// entries (RFC 4120 §5.2.5, §5.2.6, §5.2.9).
func (r *derReader) typedOctets(typ *int32, data *[]byte) {
	r.sequence(func(f *derReader) {
		f.field(0, false, func(f *derReader) { f.int32(typ) })
		f.field(1, false, func(f *derReader) { f.octets(data) })
	})
}

// hostAddresses reads HostAddresses (RFC 4120 §5.2.5).
func (r *derReader) hostAddresses(out *types.HostAddresses) {
	r.sequenceOf(func(f *derReader) {
		var a types.HostAddress
		f.typedOctets(&a.AddrType, &a.Address)
		*out = append(*out, a)
	})
}

// authorizationData reads AuthorizationData (RFC 4120 §5.2.6).
func (r *derReader) authorizationData(out *types.AuthorizationData) {
	r.sequenceOf(func(f *derReader) {
		var e types.AuthorizationDataEntry
		f.typedOctets(&e.ADType, &e.ADData)
		*out = append(*out, e)
	})
}

// ticket reads a Ticket (RFC 4120 §5.3).
func (r *derReader) ticket(out *messages.Ticket) {
	r.element(tagAppTicket, false, func(f *derReader) {
		f.sequence(func(f *derReader) {
			f.field(0, false, func(f *derReader) { f.int(&out.TktVNO) })
			f.field(1, false, func(f *derReader) { f.generalString(&out.Realm) })
			f.field(2, false, func(f *derReader) { f.principalName(&out.SName) })
			f.field(3, false, func(f *derReader) { f.encryptedData(&out.EncPart) })
		})
	})
}

// decodeAPReq decodes a DER AP-REQ (RFC 4120 §5.5.1) into req.
func decodeAPReq(b []byte, req *messages.APReq) bool {
	r := derReader{s: b, ok: true}
	r.enter(tagAppAPReq)
	r.sequence(func(f *derReader) {
		f.field(0, false, func(f *derReader) { f.int(&req.PVNO) })
		f.field(1, false, func(f *derReader) { f.int(&req.MsgType) })
		f.field(2, false, func(f *derReader) { f.bitString(&req.APOptions) })
		f.field(3, false, func(f *derReader) { f.ticket(&req.Ticket) })
		f.field(4, false, func(f *derReader) { f.encryptedData(&req.EncryptedAuthenticator) })
	})
	return r.ok && r.s.Empty()
}

// decodeEncTicketPart decodes a DER EncTicketPart (RFC 4120 §5.3).
func decodeEncTicketPart(b []byte, e *messages.EncTicketPart) bool {
	r := derReader{s: b, ok: true}
	r.enter(tagAppEncTicket)
	r.sequence(func(f *derReader) {
		f.field(0, false, func(f *derReader) { f.bitString(&e.Flags) })
		f.field(1, false, func(f *derReader) { f.typedOctets(&e.Key.KeyType, &e.Key.KeyValue) })
		f.field(2, false, func(f *derReader) { f.generalString(&e.CRealm) })
		f.field(3, false, func(f *derReader) { f.principalName(&e.CName) })
		f.field(4, false, func(f *derReader) {
			f.typedOctets(&e.Transited.TRType, &e.Transited.Contents)
		})
		f.field(5, false, func(f *derReader) { f.kerberosTime(&e.AuthTime) })
		f.field(6, true, func(f *derReader) { f.kerberosTime(&e.StartTime) })
		f.field(7, false, func(f *derReader) { f.kerberosTime(&e.EndTime) })
		f.field(8, true, func(f *derReader) { f.kerberosTime(&e.RenewTill) })
		f.field(9, true, func(f *derReader) { f.hostAddresses(&e.CAddr) })
		f.field(10, true, func(f *derReader) { f.authorizationData(&e.AuthorizationData) })
	})
	return r.ok && r.s.Empty()
}

// decodeAuthenticator decodes a DER Authenticator (RFC 4120 §5.5.1).
func decodeAuthenticator(b []byte, a *types.Authenticator) bool {
	r := derReader{s: b, ok: true}
	r.enter(tagAppAuth)
	r.sequence(func(f *derReader) {
		f.field(0, false, func(f *derReader) { f.int(&a.AVNO) })
		f.field(1, false, func(f *derReader) { f.generalString(&a.CRealm) })
		f.field(2, false, func(f *derReader) { f.principalName(&a.CName) })
		f.field(3, true, func(f *derReader) { f.typedOctets(&a.Cksum.CksumType, &a.Cksum.Checksum) })
		f.field(4, false, func(f *derReader) { f.int(&a.Cusec) })
		f.field(5, false, func(f *derReader) { f.kerberosTime(&a.CTime) })
		f.field(6, true, func(f *derReader) { f.typedOctets(&a.SubKey.KeyType, &a.SubKey.KeyValue) })
		f.field(7, true, func(f *derReader) { f.int64(&a.SeqNumber) })
		f.field(8, true, func(f *derReader) { f.authorizationData(&a.AuthorizationData) })
	})
	return r.ok && r.s.Empty()
}

// DER encoders for the AP-REP, the one message every mutual handshake
// builds (gofork's reflective encoder cost about a quarter of Accept).
// TestDEREncodersMatchGofork checks them byte for byte against gofork.

const (
	tagAppAPRep        cbasn1.Tag = 0x60 | 15
	tagAppEncAPRepPart cbasn1.Tag = 0x60 | 27
)

// addExplicit adds an [n] element around the content f adds.
func addExplicit(b *cryptobyte.Builder, n uint8, f cryptobyte.BuilderContinuation) {
	b.AddASN1(ctx(n), f)
}

// addKerberosTime adds a KerberosTime, YYYYMMDDHHMMSSZ (RFC 4120 §5.2.3).
func addKerberosTime(b *cryptobyte.Builder, t time.Time) {
	b.AddASN1(cbasn1.GeneralizedTime, func(b *cryptobyte.Builder) {
		b.AddBytes(t.UTC().AppendFormat(make([]byte, 0, 15), "20060102150405Z"))
	})
}

// marshalEncAPRepPartDER encodes an EncAPRepPart (RFC 4120 §5.5.2). A
// zero subkey or seq-number is left out, as OPTIONAL fields.
func marshalEncAPRepPartDER(p *apRepPart) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(tagAppEncAPRepPart, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicit(b, 0, func(b *cryptobyte.Builder) { addKerberosTime(b, p.ctime) })
			addExplicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(p.cusec)) })
			if !p.subkey.IsZero() {
				addExplicit(b, 2, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						addExplicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(p.subkey.Etype)) })
						addExplicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1OctetString(p.subkey.Value) })
					})
				})
			}
			if p.seq != 0 {
				addExplicit(b, 3, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(p.seq)) })
			}
		})
	})
	return b.Bytes()
}

// marshalAPRepDER encodes an AP-REP (RFC 4120 §5.5.2) around an enc-part
// of the given etype, without kvno.
func marshalAPRepDER(etype int32, cipher []byte) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(tagAppAPRep, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			addExplicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1Int64(5) })  // pvno
			addExplicit(b, 1, func(b *cryptobyte.Builder) { b.AddASN1Int64(15) }) // msg-type KRB_AP_REP
			addExplicit(b, 2, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addExplicit(b, 0, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(etype)) })
					addExplicit(b, 2, func(b *cryptobyte.Builder) { b.AddASN1OctetString(cipher) })
				})
			})
		})
	})
	return b.Bytes()
}
