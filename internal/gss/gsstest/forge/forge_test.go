package forge

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/gss-acceptor/gss-acceptor/internal/krb5crypto"
)

// A forged ticket carries its labels in the clear and decrypts, with the
// service key and key usage 2 only, to the EncTicketPart it was given.
func TestTicketDecrypts(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/server.example.com")
	tests := []struct {
		name  string
		etype int32
		kvno  int
	}{
		{"aes128-cts-hmac-sha1-96", 17, 1},
		{"aes256-cts-hmac-sha1-96", 18, 2},
		{"aes128-cts-hmac-sha256-128", 19, 3},
		{"aes256-cts-hmac-sha384-192, 32-byte key", 20, 4},
		{"no kvno", 18, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := randomKey(t, tt.etype)
			tf := types.NewKrbFlags()
			types.SetFlag(&tf, flags.Initial)
			part := messages.EncTicketPart{
				Flags:     tf,
				Key:       randomKey(t, tt.etype),
				CRealm:    "EXAMPLE.COM",
				CName:     types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, "alice"),
				AuthTime:  now,
				StartTime: now,
				EndTime:   now.Add(time.Hour),
			}
			tkt, err := Ticket(svc, tt.kvno, "EXAMPLE.COM", sname, part)
			if err != nil {
				t.Fatal(err)
			}
			if tkt.TktVNO != 5 || tkt.Realm != "EXAMPLE.COM" || !tkt.SName.Equal(sname) ||
				tkt.EncPart.EType != tt.etype || tkt.EncPart.KVNO != tt.kvno {
				t.Errorf("ticket labels: vno %d, %s@%s, etype %d, kvno %d", tkt.TktVNO,
					tkt.SName.PrincipalNameString(), tkt.Realm, tkt.EncPart.EType, tkt.EncPart.KVNO)
			}
			// The ticket must survive its own encoding, as it travels in
			// an AP-REQ.
			der, err := tkt.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			var back messages.Ticket
			if err := back.Unmarshal(der); err != nil {
				t.Fatal(err)
			}
			got := decrypt(t, svc, keyusage.KDC_REP_TICKET, back.EncPart.Cipher)
			if got == nil {
				t.Fatal("ticket does not decrypt with the service key and usage 2")
			}
			if got.Key.KeyType != part.Key.KeyType || !bytes.Equal(got.Key.KeyValue, part.Key.KeyValue) || got.CRealm != part.CRealm || !got.CName.Equal(part.CName) ||
				!got.EndTime.Equal(part.EndTime) || !types.IsFlagSet(&got.Flags, flags.Initial) {
				// Not formatted whole: it holds the session key.
				t.Errorf("EncTicketPart for %s@%s ending %v does not match the one forged",
					got.CName.PrincipalNameString(), got.CRealm, got.EndTime)
			}
			if decrypt(t, svc, keyusage.AP_REQ_AUTHENTICATOR, back.EncPart.Cipher) != nil {
				t.Error("ticket decrypts with key usage 11")
			}
		})
	}
}

// Keys that no AES enctype takes are refused, gokrb5's 24-byte etype 20
// key among them.
func TestTicketRefusesBadKeys(t *testing.T) {
	tests := []struct {
		name string
		key  types.EncryptionKey
	}{
		{"rc4-hmac", types.EncryptionKey{KeyType: 23, KeyValue: make([]byte, 16)}},
		{"24-byte etype 20 key", types.EncryptionKey{KeyType: 20, KeyValue: make([]byte, 24)}},
		{"no key", types.EncryptionKey{KeyType: 18}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Ticket(tt.key, 1, "EXAMPLE.COM", types.NewPrincipalName(nametype.KRB_NT_SRV_HST, "host/x"), messages.EncTicketPart{})
			if err == nil || !strings.HasPrefix(err.Error(), "forge: ") {
				t.Fatalf("Ticket: %v, want a forge error", err)
			}
			if tt.key.KeyType == 23 && !errors.Is(err, krb5crypto.ErrUnsupported) {
				t.Errorf("Ticket: %v, want krb5crypto.ErrUnsupported", err)
			}
		})
	}
}

// randomKey returns a fresh key of etype.
func randomKey(t *testing.T, etype int32) types.EncryptionKey {
	t.Helper()
	k, err := krb5crypto.RandomKey(etype, nil)
	if err != nil {
		t.Fatal(err)
	}
	return types.EncryptionKey{KeyType: etype, KeyValue: k}
}

// decrypt decrypts ct with key for usage and decodes an EncTicketPart; it
// returns nil when ct does not decrypt.
func decrypt(t *testing.T, key types.EncryptionKey, usage uint32, ct []byte) *messages.EncTicketPart {
	t.Helper()
	u, err := krb5crypto.DeriveUsage(key.KeyType, key.KeyValue, usage)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := u.Decrypt(nil, ct)
	if err != nil {
		return nil
	}
	var part messages.EncTicketPart
	if err := part.Unmarshal(plain); err != nil {
		t.Fatalf("decrypted ticket is no EncTicketPart: %v", err)
	}
	return &part
}

// A forged KRB-CRED decodes with gokrb5 to the ticket it forwards and,
// in the clear or decrypted with its key and key usage 14, to the
// EncKrbCredPart it was given.
func TestKRBCred(t *testing.T) {
	sname := types.NewPrincipalName(nametype.KRB_NT_SRV_INST, "krbtgt/EXAMPLE.COM")
	tkt, err := Ticket(randomKey(t, 18), 3, "EXAMPLE.COM", sname, messages.EncTicketPart{})
	if err != nil {
		t.Fatal(err)
	}
	aes128, aes384 := randomKey(t, 17), randomKey(t, 20)
	tests := []struct {
		name  string
		key   *types.EncryptionKey
		infos int
	}{
		{"clear", nil, 1},
		{"clear, two infos", nil, 2},
		{"clear, no info", nil, 0},
		{"aes128-cts-hmac-sha1-96", &aes128, 1},
		{"aes256-cts-hmac-sha384-192", &aes384, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var part messages.EncKrbCredPart
			for i := range tt.infos {
				part.TicketInfo = append(part.TicketInfo, messages.KrbCredInfo{
					Key:    randomKey(t, 18),
					PRealm: "EXAMPLE.COM",
					PName:  types.NewPrincipalName(nametype.KRB_NT_PRINCIPAL, []string{"alice", "bob"}[i]),
					SRealm: "EXAMPLE.COM",
					SName:  sname,
				})
			}
			der, err := KRBCred(tkt, part, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			var cred messages.KRBCred
			if err := cred.Unmarshal(der); err != nil {
				t.Fatalf("KRB-CRED does not decode: %v", err)
			}
			if cred.PVNO != 5 || cred.MsgType != 22 || len(cred.Tickets) != 1 {
				t.Fatalf("KRB-CRED pvno %d, msg-type %d, %d tickets", cred.PVNO, cred.MsgType, len(cred.Tickets))
			}
			if got := cred.Tickets[0]; got.Realm != tkt.Realm || !got.SName.Equal(sname) || got.EncPart.KVNO != 3 ||
				!bytes.Equal(got.EncPart.Cipher, tkt.EncPart.Cipher) {
				t.Errorf("forwarded ticket %+v, want %+v", got, tkt)
			}
			plain := cred.EncPart.Cipher
			if tt.key == nil {
				if cred.EncPart.EType != 0 {
					t.Fatalf("clear enc-part has etype %d", cred.EncPart.EType)
				}
			} else {
				if cred.EncPart.EType != tt.key.KeyType {
					t.Fatalf("enc-part etype %d, want %d", cred.EncPart.EType, tt.key.KeyType)
				}
				u, err := krb5crypto.DeriveUsage(tt.key.KeyType, tt.key.KeyValue, keyusage.KRB_CRED_ENCPART)
				if err != nil {
					t.Fatal(err)
				}
				if plain, err = u.Decrypt(nil, plain); err != nil {
					t.Fatalf("enc-part does not decrypt with key usage 14: %v", err)
				}
			}
			var got messages.EncKrbCredPart
			if err := got.Unmarshal(plain); err != nil {
				t.Fatalf("enc-part is no EncKrbCredPart: %v", err)
			}
			if len(got.TicketInfo) != tt.infos {
				t.Fatalf("%d ticket infos, want %d", len(got.TicketInfo), tt.infos)
			}
			for i, info := range got.TicketInfo {
				want := part.TicketInfo[i]
				if !bytes.Equal(info.Key.KeyValue, want.Key.KeyValue) || !info.PName.Equal(want.PName) || info.PRealm != want.PRealm {
					t.Errorf("ticket info %d for %s@%s does not match the one forged", i, info.PName.PrincipalNameString(), info.PRealm)
				}
			}
		})
	}
}
