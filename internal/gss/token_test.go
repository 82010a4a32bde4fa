package gss

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseInitialToken covers the RFC 2743 §3.1 framing rules, strictly
// as MIT's g_verify_token_header applies them, plus DER minimality.
func TestParseInitialToken(t *testing.T) {
	const krb5 = "06092a864886f712010202"
	const ms = "06092a864882f712010202"
	tests := []struct {
		name  string
		hex   string
		major Major // 0 = success
		mech  []byte
		tokID uint16
		body  string
	}{
		{"krb5 AP-REQ", "6012" + krb5 + "0100" + "6e03010203", 0, oidKRB5, 0x0100, "6e03010203"},
		{"microsoft OID", "6010" + ms + "0200" + "6f01ff", 0, oidKRB5MS, 0x0200, "6f01ff"},
		{"empty body", "600d" + krb5 + "0300", 0, oidKRB5, 0x0300, ""},
		{"empty", "", StatusDefectiveToken, nil, 0, ""},
		{"wrong tag", "6112" + krb5 + "0100" + "6e03010203", StatusDefectiveToken, nil, 0, ""},
		{"length too long", "6013" + krb5 + "0100" + "6e03010203", StatusDefectiveToken, nil, 0, ""},
		{"length too short", "6011" + krb5 + "0100" + "6e03010203", StatusDefectiveToken, nil, 0, ""},
		{"trailing byte", "6012" + krb5 + "0100" + "6e03010203" + "00", StatusDefectiveToken, nil, 0, ""},
		{"long form for a short length", "608112" + krb5 + "0100" + "6e03010203", StatusDefectiveToken, nil, 0, ""},
		{"leading zero length byte", "60820012" + krb5 + "0100" + "6e03010203", StatusDefectiveToken, nil, 0, ""},
		{"indefinite length", "6080" + krb5 + "0100" + "6e03010203" + "0000", StatusDefectiveToken, nil, 0, ""},
		{"five length bytes", "60850000000010" + krb5, StatusDefectiveToken, nil, 0, ""},
		{"truncated length", "6082", StatusDefectiveToken, nil, 0, ""},
		{"no OID tag", "600d" + "05092a864886f712010202" + "0100", StatusDefectiveToken, nil, 0, ""},
		{"zero OID length", "6004" + "0600" + "0100", StatusDefectiveToken, nil, 0, ""},
		{"long OID length", "600c" + "0681092a864886f712010202", StatusDefectiveToken, nil, 0, ""},
		{"OID overruns", "6004" + "06092a86", StatusDefectiveToken, nil, 0, ""},
		{"no TOK_ID", "600c" + krb5 + "01", StatusDefectiveToken, nil, 0, ""},
		{"SPNEGO", "600a" + "06062b0601050502" + "a000", StatusBadMech, nil, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mech, id, body, err := parseInitialToken(hexBytes(t, tc.hex))
			if tc.major != 0 {
				if err == nil || MajorOf(err) != tc.major {
					t.Fatalf("err %v, want %v", err, tc.major)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mech, tc.mech) || id != tc.tokID || hex.EncodeToString(body) != tc.body {
				t.Errorf("got %x %04x %x", mech, id, body)
			}
		})
	}
}

// TestAppendInitialToken: lengths around every DER length-form boundary
// round-trip, and the encoding is byte-exact for a known token.
func TestAppendInitialToken(t *testing.T) {
	for _, n := range []int{0, 1, 112, 113, 114, 127, 128, 243, 244, 255, 256, 65520, 65521, 70000} {
		body := bytes.Repeat([]byte{0xab}, n)
		tok := appendInitialToken([]byte("prefix"), oidKRB5, tokIDAPRep, body)
		if !bytes.HasPrefix(tok, []byte("prefix")) {
			t.Fatal("dst not preserved")
		}
		mech, id, got, err := parseInitialToken(tok[6:])
		if err != nil {
			t.Fatalf("body %d bytes: %v", n, err)
		}
		if !bytes.Equal(mech, oidKRB5) || id != tokIDAPRep || !bytes.Equal(got, body) {
			t.Fatalf("body %d bytes did not round-trip", n)
		}
	}
	want := "6012" + "06092a864886f712010202" + "0100" + "6e03010203"
	if got := hex.EncodeToString(appendInitialToken(nil, oidKRB5, tokIDAPReq, hexBytes(t, "6e03010203"))); got != want {
		t.Errorf("token %s, want %s", got, want)
	}
}

// TestOIDString checks the dotted rendering used in messages.
func TestOIDString(t *testing.T) {
	tests := []struct {
		name string
		der  []byte
		want string
	}{
		{"krb5", oidKRB5, "1.2.840.113554.1.2.2"},
		{"ms", oidKRB5MS, "1.2.840.48018.1.2.2"},
		{"spnego", oidSPNEGO, "1.3.6.1.5.5.2"},
		{"empty", nil, "(empty OID)"},
		{"truncated", []byte{0x2a, 0x86}, "2a86"},
		{"joint-iso", []byte{0x88, 0x37}, "2.999"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := oidString(tc.der); got != tc.want {
				t.Errorf("oidString = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzParseInitialToken: no input panics, and whatever parses re-encodes
// to exactly the input (the parser accepts only the canonical form).
func FuzzParseInitialToken(f *testing.F) {
	f.Add(hexBytes(f, "601206092a864886f71201020201006e03010203"))
	f.Add(hexBytes(f, "601006092a864882f7120102020200"+"6f01ff"))
	f.Add(hexBytes(f, "60820010"))
	f.Add([]byte{0x60})
	f.Fuzz(func(t *testing.T, b []byte) {
		mech, id, body, err := parseInitialToken(b)
		if err != nil {
			if MajorOf(err) != StatusDefectiveToken && MajorOf(err) != StatusBadMech {
				t.Fatalf("unexpected major %v", MajorOf(err))
			}
			return
		}
		if re := appendInitialToken(nil, mech, id, body); !bytes.Equal(re, b) {
			t.Fatalf("accepted non-canonical token %x (canonical %x)", b, re)
		}
	})
}
