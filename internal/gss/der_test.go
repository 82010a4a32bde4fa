package gss

import (
	"bytes"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"reflect"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// derSamples returns DER AP-REQ, EncTicketPart and Authenticator samples
// as real initiators produce them (plus optional fields gokrb5 can encode).
func derSamples(t testing.TB) (apreqs, tickets, auths [][]byte) {
	svc := &svcKey{princ: testService, realm: testRealm, kvno: 7, etype: 18, key: bytes.Repeat([]byte{3}, 32)}
	tkt, sess := makeTicket(t, ticketSpec{svc: svc, flags: []int{1, 8}})
	for _, f := range []Flags{FlagMutual, 0} {
		tok := mustInitialToken(t, newTestInitiator(t, tkt, sess, InitiatorConfig{Flags: f}))
		_, _, body, err := parseInitialToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		apreqs = append(apreqs, body)
	}
	u, err := krb5crypto.DeriveUsage(18, svc.key, keyusage.KDC_REP_TICKET)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := u.Decrypt(nil, tkt.EncPart.Cipher)
	if err != nil {
		t.Fatal(err)
	}
	tickets = append(tickets, plain)
	// A ticket with every optional field.
	full := messages.EncTicketPart{
		Flags:             types.NewKrbFlags(),
		Key:               sess,
		CRealm:            testRealm,
		CName:             types.PrincipalName{NameType: 1, NameString: []string{"a", "b"}},
		Transited:         messages.TransitedEncoding{TRType: 1, Contents: []byte("X.ORG,")},
		AuthTime:          testNow.Truncate(time.Second),
		StartTime:         testNow.Truncate(time.Second),
		EndTime:           testNow.Add(time.Hour).Truncate(time.Second),
		RenewTill:         testNow.Add(24 * time.Hour).Truncate(time.Second),
		CAddr:             types.HostAddresses{{AddrType: 2, Address: []byte{127, 0, 0, 1}}},
		AuthorizationData: types.AuthorizationData{{ADType: 1, ADData: []byte{0x30, 0x00}}},
	}
	b, err := asn1.Marshal(full)
	if err != nil {
		t.Fatal(err)
	}
	tickets = append(tickets, asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart))

	a := defaultAuth(t, sess, FlagMutual|FlagReplay)
	a.AuthorizationData = types.AuthorizationData{{ADType: 129, ADData: []byte{1, 2}}}
	for _, seq := range []int64{12345, 0, -5, 1<<32 - 1} {
		a.SeqNumber = seq
		m, err := a.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		auths = append(auths, m)
	}
	a.SubKey = types.EncryptionKey{}
	a.Cksum = types.Checksum{}
	m, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	auths = append(auths, m)
	return apreqs, tickets, auths
}

// gokrb5 views of the three messages, for the differential checks.
func gokrbAPReq(b []byte) (r messages.APReq, err error) {
	err = guardedUnmarshal("AP-REQ", func() error { return r.Unmarshal(b) })
	return r, err
}

func gokrbEncTicketPart(b []byte) (e messages.EncTicketPart, err error) {
	err = guardedUnmarshal("EncTicketPart", func() error { return e.Unmarshal(b) })
	return e, err
}

func gokrbAuthenticator(b []byte) (a types.Authenticator, err error) {
	err = guardedUnmarshal("Authenticator", func() error { return a.Unmarshal(b) })
	return a, err
}

// TestDERDecodersMatchGokrb5: on real messages the direct decoders give
// exactly what gokrb5's decoders give.
func TestDERDecodersMatchGokrb5(t *testing.T) {
	apreqs, tickets, auths := derSamples(t)
	for i, b := range apreqs {
		want, err := gokrbAPReq(b)
		if err != nil {
			t.Fatal(err)
		}
		var got messages.APReq
		if !decodeAPReq(b, &got) {
			t.Fatalf("AP-REQ %d: direct decoder refused it", i)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("AP-REQ %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	for i, b := range tickets {
		want, err := gokrbEncTicketPart(b)
		if err != nil {
			t.Fatal(err)
		}
		var got messages.EncTicketPart
		if !decodeEncTicketPart(b, &got) {
			t.Fatalf("EncTicketPart %d: direct decoder refused it", i)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("EncTicketPart %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
	for i, b := range auths {
		want, err := gokrbAuthenticator(b)
		if err != nil {
			t.Fatal(err)
		}
		var got types.Authenticator
		if !decodeAuthenticator(b, &got) {
			t.Fatalf("Authenticator %d: direct decoder refused it", i)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Authenticator %d:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

// TestDERDecodersStrict: non-DER and malformed variants of a valid
// Authenticator are refused.
func TestDERDecodersStrict(t *testing.T) {
	_, _, auths := derSamples(t)
	good := auths[0]
	var a types.Authenticator
	if !decodeAuthenticator(good, &a) {
		t.Fatal("valid authenticator refused")
	}
	ctime := []byte(a.CTime.Format("20060102150405Z"))
	i := bytes.Index(good, ctime)
	if i < 0 {
		t.Fatal("ctime not found")
	}
	withTime := func(s string) []byte {
		b := bytes.Clone(good)
		copy(b[i:], s)
		return b
	}
	tests := []struct {
		name string
		b    []byte
	}{
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-1]},
		{"wrong application tag", append([]byte{0x63}, good[1:]...)},
		{"fractional-looking time", withTime("2026031415092.Z")},
		{"month 13", withTime("20261314150926Z")},
		{"February 30", withTime("20260230150926Z")},
		{"local time", withTime("20260314150926+")},
		{"empty", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a types.Authenticator
			if decodeAuthenticator(tc.b, &a) {
				t.Error("accepted")
			}
		})
	}
	// Non-minimal length encoding of the outer element.
	long := append([]byte{0x62, 0x82, 0x00, byte(len(good) - 2)}, good[2:]...)
	if good[1] < 0x80 && decodeAuthenticator(long, &a) {
		t.Error("non-minimal length accepted")
	}
	// BIT STRING with non-zero padding bits.
	var bs asn1.BitString
	r := derReader{s: []byte{0x03, 0x02, 0x07, 0x81}, ok: true}
	if r.bitString(&bs); r.ok {
		t.Error("BIT STRING with set padding bits accepted")
	}
	r = derReader{s: []byte{0x03, 0x02, 0x07, 0x80}, ok: true}
	if r.bitString(&bs); !r.ok || bs.BitLength != 1 || bs.At(0) != 1 {
		t.Errorf("one-bit BIT STRING: ok=%v %+v", r.ok, bs)
	}
}

// TestDEREncodersMatchGofork: the AP-REP encoders produce the bytes
// gokrb5's structs encode to.
func TestDEREncodersMatchGofork(t *testing.T) {
	tests := []struct {
		name string
		p    apRepPart
	}{
		{"subkey and seq", apRepPart{ctime: testNow.Truncate(time.Second), cusec: 535897, subkey: Key{Etype: 18, Value: bytes.Repeat([]byte{1}, 32)}, seq: 0x3fffffff}},
		{"etype 20", apRepPart{ctime: testNow.Truncate(time.Second), cusec: 0, subkey: Key{Etype: 20, Value: bytes.Repeat([]byte{2}, 32)}, seq: 1}},
		{"no subkey", apRepPart{ctime: testNow.Truncate(time.Second), cusec: 999999, seq: 77}},
		{"nothing optional", apRepPart{ctime: testNow.Truncate(time.Second), cusec: 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := marshalEncAPRepPartDER(&tc.p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := asn1.Marshal(messages.EncAPRepPart{CTime: tc.p.ctime, Cusec: tc.p.cusec, Subkey: tc.p.subkey.toKrb(), SequenceNumber: int64(tc.p.seq)})
			if err != nil {
				t.Fatal(err)
			}
			want = asn1tools.AddASNAppTag(want, asnAppTag.EncAPRepPart)
			if !bytes.Equal(got, want) {
				t.Errorf("EncAPRepPart\n got %x\nwant %x", got, want)
			}
			cipher := bytes.Repeat([]byte{0xee}, 60+int(tc.p.cusec%7))
			gotRep, err := marshalAPRepDER(tc.p.subkey.Etype+17, cipher)
			if err != nil {
				t.Fatal(err)
			}
			wantRep, err := asn1.Marshal(messages.APRep{PVNO: 5, MsgType: 15, EncPart: types.EncryptedData{EType: tc.p.subkey.Etype + 17, Cipher: cipher}})
			if err != nil {
				t.Fatal(err)
			}
			wantRep = asn1tools.AddASNAppTag(wantRep, asnAppTag.APREP)
			if !bytes.Equal(gotRep, wantRep) {
				t.Errorf("AP-REP\n got %x\nwant %x", gotRep, wantRep)
			}
		})
	}
}

// FuzzDERDecoders: the direct decoders never panic, and whatever they
// accept gokrb5's decoders accept with the same result (they may refuse
// more: they insist on DER). The direct AP-REQ decoder is structural only;
// gokrb5's also refuses a msg-type other than 14, which the acceptor
// checks right after decoding (KRB_AP_ERR_MSG_TYPE), so such inputs are
// compared only for not panicking.
func FuzzDERDecoders(f *testing.F) {
	apreqs, tickets, auths := derSamples(f)
	for _, b := range apreqs {
		f.Add(byte(0), b)
	}
	for _, b := range tickets {
		f.Add(byte(1), b)
	}
	for _, b := range auths {
		f.Add(byte(2), b)
	}
	f.Fuzz(func(t *testing.T, which byte, b []byte) {
		switch which % 3 {
		case 0:
			var got messages.APReq
			if !decodeAPReq(b, &got) || got.MsgType != msgtype.KRB_AP_REQ {
				return
			}
			want, err := gokrbAPReq(b)
			if err != nil {
				t.Fatalf("direct decoder accepted an AP-REQ gokrb5 refuses: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("AP-REQ differs:\n got %+v\nwant %+v", got, want)
			}
		case 1:
			var got messages.EncTicketPart
			if !decodeEncTicketPart(b, &got) {
				return
			}
			want, err := gokrbEncTicketPart(b)
			if err != nil {
				t.Fatalf("direct decoder accepted an EncTicketPart gokrb5 refuses: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("EncTicketPart differs:\n got %+v\nwant %+v", got, want)
			}
		case 2:
			var got types.Authenticator
			if !decodeAuthenticator(b, &got) {
				return
			}
			want, err := gokrbAuthenticator(b)
			if err != nil {
				t.Fatalf("direct decoder accepted an Authenticator gokrb5 refuses: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Authenticator differs:\n got %+v\nwant %+v", got, want)
			}
		}
	})
}
